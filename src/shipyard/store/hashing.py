"""Content hashing of files and directories with blake3.

A file's object id is its blake3 hex digest. A directory's id is the digest of its
manifest (the sorted list of relative paths, file ids, sizes and executable bits)
followed by ``.dir``, so two trees with the same content get the same id whatever
order the filesystem lists them in.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import blake3

from shipyard.errors import StoreError

__all__ = [
    "DIR_SUFFIX",
    "FileEntry",
    "hash_bytes",
    "hash_file",
    "hash_tree",
    "manifest_bytes",
]

DIR_SUFFIX = ".dir"
_MMAP_MIN = 4 * 1024 * 1024  # below this, plain reads beat mmap set-up
_THREADED_MIN = 64 * 1024 * 1024  # multi-threaded hashing pays off only for big files


@dataclass(frozen=True)
class FileEntry:
    """One file of a directory manifest."""

    path: str  # POSIX, relative to the directory
    oid: str
    size: int
    executable: bool = False

    def as_json(self) -> dict[str, object]:
        return {"path": self.path, "oid": self.oid, "size": self.size, "exec": self.executable}


def hash_bytes(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """blake3 hex digest of a file's content, using all cores for large files."""
    if size is None:
        size = os.stat(path).st_size
    if size < _MMAP_MIN:
        with open(path, "rb") as handle:
            return blake3.blake3(handle.read()).hexdigest()
    threads = blake3.blake3.AUTO if size >= _THREADED_MIN else 1
    hasher = blake3.blake3(max_threads=threads)
    hasher.update_mmap(os.fspath(path))
    return hasher.hexdigest()


def manifest_bytes(entries: list[FileEntry]) -> bytes:
    """Canonical serialisation of a directory manifest (what its id is computed from)."""
    ordered = sorted(entries, key=lambda e: e.path)
    return json.dumps(
        [e.as_json() for e in ordered], separators=(",", ":"), ensure_ascii=False
    ).encode()


FileHasher = Callable[[Path, os.stat_result], str]


def _plain_hasher(path: Path, st: os.stat_result) -> str:
    return hash_file(path, st.st_size)


def hash_tree(
    root: str | os.PathLike[str], file_hasher: FileHasher = _plain_hasher
) -> tuple[str, list[FileEntry]]:
    """Hash every file under ``root``; return the directory id and its manifest.

    Symlinks are followed only when they stay inside ``root``; one that points out of
    it raises StoreError, since its content would not belong to the tree.
    """
    root = Path(root)
    real_root = root.resolve()
    entries: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in [
            *filenames,
            *[d for d in dirnames if os.path.islink(os.path.join(dirpath, d))],
        ]:
            full = Path(dirpath, name)
            if full.is_symlink() and not full.resolve().is_relative_to(real_root):
                raise StoreError(
                    f"'{full}' is a symlink to '{os.readlink(full)}', outside '{root}'",
                    hint="copy the target into the folder or remove the link",
                )
            st = full.stat()
            if stat.S_ISDIR(st.st_mode):
                _, sub_entries = hash_tree(full, file_hasher)
                rel = full.relative_to(root).as_posix()
                entries += [
                    FileEntry(f"{rel}/{e.path}", e.oid, e.size, e.executable) for e in sub_entries
                ]
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, fifos: not data
            entries.append(
                FileEntry(
                    full.relative_to(root).as_posix(),
                    file_hasher(full, st),
                    st.st_size,
                    bool(st.st_mode & stat.S_IXUSR),
                )
            )
    entries.sort(key=lambda e: e.path)
    return hash_bytes(manifest_bytes(entries)) + DIR_SUFFIX, entries
