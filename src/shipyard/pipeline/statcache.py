"""Content ids of workspace paths, with a stat cache so unchanged files are not re-read.

An entry maps a path to (inode, mtime_ns, size) and the content id computed when those
were seen. It is trusted only while all three are unchanged *and* the file was last
modified comfortably before it was hashed: a file written in the same timestamp tick as
its hashing could change again without its mtime moving ("racily clean", as git calls
it), so such an entry is re-hashed once on the next look-up.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from shipyard.store.hashing import FileEntry, hash_file, hash_tree

__all__ = ["StatCache"]

_RACY_NS = 2_000_000_000  # coarse filesystems (FAT, some network mounts) tick in 2 s


class StatCache:
    """A small SQLite table beside the project's other caches."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Callers serialise access; the connection may be used from worker threads.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # a lost entry only costs a re-hash
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, inode INTEGER, "
            "mtime_ns INTEGER, size INTEGER, oid TEXT, hashed_ns INTEGER)"
        )
        self._pending: list[tuple[str, int, int, int, str, int]] = []

    def close(self) -> None:
        self.flush()
        self._db.close()

    def flush(self) -> None:
        if self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO stat VALUES (?,?,?,?,?,?)", self._pending)
            self._db.execute("COMMIT")
            self._pending.clear()

    def file_oid(self, path: Path, st: os.stat_result | None = None) -> str:
        """The content id of one file, from the cache when its stat is unchanged."""
        st = st or path.stat()
        key = str(path)
        row = self._db.execute(
            "SELECT inode, mtime_ns, size, oid, hashed_ns FROM stat WHERE path = ?", (key,)
        ).fetchone()
        unchanged = row is not None and row[:3] == (st.st_ino, st.st_mtime_ns, st.st_size)
        if unchanged and st.st_mtime_ns + _RACY_NS < row[4]:
            return str(row[3])
        oid = hash_file(path, st.st_size)
        self._pending.append((key, st.st_ino, st.st_mtime_ns, st.st_size, oid, time.time_ns()))
        return oid

    def tree(self, path: Path) -> tuple[str, list[FileEntry]]:
        """A directory's id and manifest, each file through the cache."""
        return hash_tree(path, lambda p, st: self.file_oid(p, st))

    def oid(self, path: Path) -> str | None:
        """The id of a file or directory, or None when it does not exist."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if path.is_dir():
            return self.tree(path)[0]
        return self.file_oid(path, st)
