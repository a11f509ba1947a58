"""Content-addressed artifact store over a local folder or any fsspec URL.

Objects live at ``objects/<2 hex>/<62 hex>[.dir]``. The only names this store accepts
are object ids it computes itself (64 lowercase hex digits, optionally ``.dir``): an
allow-list, so no user-supplied string can reach a path outside the store.

Writes are atomic: a local object is written to a temporary file, fsynced, renamed into
place and the directory fsynced; on object stores (S3, GCS, Azure) a single PUT is
atomic already; on other fsspec filesystems the object is written under a temporary key
and moved. A reader therefore sees an object whole or not at all, and every read is
verified against the id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shipyard.errors import ArtifactCorrupt, ArtifactNotFound, StoreError, UnsafePath
from shipyard.store.hashing import (
    DIR_SUFFIX,
    FileEntry,
    hash_bytes,
    hash_file,
    hash_tree,
    manifest_bytes,
)

__all__ = ["ArtifactRef", "ArtifactStore", "check_oid", "safe_join"]

_OID = re.compile(r"^[0-9a-f]{64}(\.dir)?$")
_PARALLEL_MIN = 32 * 1024 * 1024  # below this, one thread is faster than two
T = TypeVar("T")
_ATOMIC_PUT_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}


def check_oid(oid: str) -> str:
    """Return ``oid`` if it is a well-formed object id, else raise UnsafePath."""
    if not isinstance(oid, str) or not _OID.match(oid):
        raise UnsafePath(
            f"{oid!r} is not an artifact id (64 hex digits, optionally '.dir')",
            hint="use the id Shipyard printed when the artifact was stored",
        )
    return oid


def safe_join(root: str | os.PathLike[str], relative: str) -> Path:
    """Join a relative POSIX path under ``root``, refusing anything that escapes it.

    The check runs on the resolved real path, so '..', absolute paths, NUL bytes and
    symlinks that point out of ``root`` are all refused the same way.
    """
    parts = relative.split("/")
    if (
        not relative
        or "\x00" in relative
        or relative.startswith("/")
        or "\\" in relative
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise UnsafePath(f"refusing unsafe path {relative!r}: it must stay inside '{root}'")
    base = Path(root).resolve()
    target = base.joinpath(*parts)
    if not target.resolve().is_relative_to(base):
        raise UnsafePath(f"refusing path {relative!r}: it resolves outside '{root}'")
    return target


@dataclass(frozen=True)
class ArtifactRef:
    """What ``put`` returns: the object id, total size and file count."""

    oid: str
    size: int
    files: int = 1

    @property
    def is_dir(self) -> bool:
        return self.oid.endswith(DIR_SUFFIX)


class Backend(Protocol):
    """Where object bytes live; keys are already-validated object paths."""

    location: str

    def exists(self, key: str) -> bool: ...
    def put_file(self, source: Path, key: str) -> None: ...
    def put_bytes(self, data: bytes, key: str) -> None: ...
    def get_file(self, key: str, dest: Path) -> None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def list_keys(self) -> Iterator[str]: ...
    def delete(self, key: str) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_target(dest: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``dest``; on success rename it into place.

    The path does not exist yet: writers create it with O_EXCL (never O_TRUNC, which
    makes ext4 flush the whole file at close). ``durable`` also fsyncs the file and
    its folder, so the object survives power loss; restores into a working tree skip
    that (a killed process still leaves no half file under the real name).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, dest)
        if durable:
            _fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy(source: Path, target: Path, mode: int = 0o644) -> None:
    """Copy in the kernel (sendfile) into a new file created with O_EXCL."""
    with open(source, "rb") as src:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            size = os.fstat(src.fileno()).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, src.fileno(), offset, min(size - offset, 1 << 30))
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(fd)


def _write_new(target: Path, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _concurrently(first: Callable[[], T], second: Callable[[], object]) -> T:
    """Run ``first`` in a helper thread while ``second`` runs here (both release the
    GIL: hashing with blake3, copying with sendfile); return ``first``'s result."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(first)
        try:
            second()
        finally:
            result = future.result()
    return result


class LocalBackend:
    """Objects as files under a local folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.location = str(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put_file(self, source: Path, key: str) -> None:
        with _atomic_target(self.path(key)) as tmp:
            _copy(source, tmp, 0o444)

    def put_hashing(self, source: Path, key_for: Callable[[str], str], size: int) -> str:
        """Copy ``source`` in while hashing it on the other core; publish it under the
        key its hash names (or drop the copy when that object exists). Returns the id."""
        staging = self.root / "objects" / "incoming"
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f".{os.getpid()}.{os.urandom(6).hex()}.tmp"
        try:
            oid = _concurrently(lambda: hash_file(source, size), lambda: _copy(source, tmp, 0o444))
            dest = self.path(key_for(oid))
            if not dest.exists():  # else stored already: the staged copy is dropped below
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, dest)
                _fsync_dir(dest.parent)
            return oid
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, key: str) -> None:
        with _atomic_target(self.path(key)) as tmp:
            _write_new(tmp, data, 0o444)

    def get_file(self, key: str, dest: Path) -> None:
        try:
            _copy(self.path(key), dest)
        except FileNotFoundError:
            raise KeyError(key) from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def list_keys(self) -> Iterator[str]:
        objects = self.root / "objects"
        if objects.is_dir():
            for prefix in sorted(objects.iterdir()):
                if len(prefix.name) != 2:
                    continue  # "incoming" staging, not objects
                for item in sorted(prefix.iterdir()):
                    if not item.name.startswith("."):
                        yield f"objects/{prefix.name}/{item.name}"

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


class FsspecBackend:
    """Objects under any fsspec URL (s3://bucket/prefix, gs://…, memory://…)."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec

        protocol = url.split("://", 1)[0]
        try:
            # Listings must not be cached: another writer may add objects at any time.
            options = {"use_listings_cache": False, **(storage_options or {})}
            self.fs, self.base = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            extra = _EXTRAS.get(protocol, protocol)
            raise StoreError(
                f"artifact store '{url}' needs a package that is not installed ({exc.name})",
                hint=f"pip install 'shipyard-ml[{extra}]'",
            ) from None
        except ValueError as exc:
            raise StoreError(f"cannot open artifact store '{url}': {exc}") from None
        self.location = url
        self.atomic_put = protocol in _ATOMIC_PUT_PROTOCOLS

    def _path(self, key: str) -> str:
        return f"{self.base.rstrip('/')}/{key}"

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def _publish(self, key: str, write: Any) -> None:
        if self.atomic_put:
            write(self._path(key))
            return
        tmp = self._path(f"tmp/{os.urandom(8).hex()}")
        write(tmp)
        self.fs.mv(tmp, self._path(key))

    def put_file(self, source: Path, key: str) -> None:
        self._publish(key, lambda target: self.fs.put_file(str(source), target))

    def put_bytes(self, data: bytes, key: str) -> None:
        self._publish(key, lambda target: self.fs.pipe_file(target, data))

    def get_file(self, key: str, dest: Path) -> None:
        try:
            self.fs.get_file(self._path(key), str(dest))
        except FileNotFoundError:
            raise KeyError(key) from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key)))
        except FileNotFoundError:
            raise KeyError(key) from None

    def list_keys(self) -> Iterator[str]:
        prefix = self._path("objects")
        with contextlib.suppress(FileNotFoundError):
            for path in sorted(self.fs.find(prefix)):
                rel = path[len(prefix.split("://", 1)[-1]) - len("objects") :].lstrip("/")
                if not rel.rsplit("/", 1)[-1].startswith("."):
                    yield rel

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))


def _backend_for(url: str, storage_options: dict[str, Any] | None) -> Backend:
    if "://" not in url:
        return LocalBackend(url)
    if url.startswith("file://"):
        return LocalBackend(url.removeprefix("file://"))
    return FsspecBackend(url, storage_options)


class ArtifactStore:
    """Content-addressed storage of files and directories."""

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.backend = _backend_for(url, storage_options)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    @staticmethod
    def key(oid: str) -> str:
        check_oid(oid)
        return f"objects/{oid[:2]}/{oid[2:]}"

    # --- writing -----------------------------------------------------------------
    def put(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Store a file or a whole directory; return its ref. Stores each object once."""
        path = Path(path)
        if path.is_dir():
            return self.put_dir(path)
        if not path.is_file():
            raise StoreError(f"cannot store '{path}': no such file or directory")
        return self.put_file(path)

    def put_file(self, path: Path, oid: str | None = None) -> ArtifactRef:
        """Store one file. ``oid`` may be passed when the caller has just hashed it."""
        size = path.stat().st_size
        if oid is None and size >= _PARALLEL_MIN and isinstance(self.backend, LocalBackend):
            return ArtifactRef(self.backend.put_hashing(path, self.key, size), size)
        oid = oid or hash_file(path, size)
        key = self.key(oid)
        if not self.backend.exists(key):
            self.backend.put_file(path, key)
        return ArtifactRef(oid, size)

    def put_bytes(self, data: bytes) -> ArtifactRef:
        oid = hash_bytes(data)
        key = self.key(oid)
        if not self.backend.exists(key):
            self.backend.put_bytes(data, key)
        return ArtifactRef(oid, len(data))

    def put_dir(self, path: Path, entries: list[FileEntry] | None = None) -> ArtifactRef:
        """Store every file of a directory, then its manifest (so a manifest's presence
        implies all its files are present)."""
        if entries is None:
            oid, entries = hash_tree(path)
        else:
            oid = hash_bytes(manifest_bytes(entries)) + DIR_SUFFIX
        for entry in entries:
            self.put_file(path / entry.path, entry.oid)
        data = manifest_bytes(entries)
        key = self.key(oid)
        if not self.backend.exists(key):
            self.backend.put_bytes(data, key)
        return ArtifactRef(oid, sum(e.size for e in entries), len(entries))

    # --- reading -----------------------------------------------------------------
    def exists(self, oid: str) -> bool:
        return self.backend.exists(self.key(oid))

    def read_bytes(self, oid: str) -> bytes:
        """Return a (file) object's content, verified against its id."""
        try:
            data = self.backend.read_bytes(self.key(oid))
        except KeyError:
            raise ArtifactNotFound(oid, store=self.url) from None
        actual = hash_bytes(data)
        if actual != oid.removesuffix(DIR_SUFFIX):
            raise ArtifactCorrupt(oid, actual, store=self.url)
        return data

    def manifest(self, oid: str) -> list[FileEntry]:
        """The entries of a directory object, each path checked to be a safe relative path."""
        if not oid.endswith(DIR_SUFFIX):
            raise StoreError(f"artifact {oid} is a file, not a directory")
        try:
            raw = json.loads(self.read_bytes(oid))
            entries = [FileEntry(e["path"], e["oid"], int(e["size"]), bool(e["exec"])) for e in raw]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"directory manifest {oid} is malformed: {exc}") from None
        for entry in entries:
            check_oid(entry.oid)
            safe_join("/", entry.path)  # shape check: no '..', no absolute, no NUL
        return entries

    def get(self, oid: str, dest: str | os.PathLike[str]) -> Path:
        """Restore an object (file or directory) to ``dest``, atomically, verified."""
        dest = Path(dest)
        if oid.endswith(DIR_SUFFIX):
            return self.get_dir(oid, dest)
        return self.get_file(oid, dest)

    def get_file(self, oid: str, dest: Path) -> Path:
        """Restore one file object, verified: a local object is hashed on the other core
        while it is copied; a remote one is hashed after download."""
        key = self.key(oid)
        with _atomic_target(dest, durable=False) as tmp:
            try:
                if isinstance(self.backend, LocalBackend) and self.backend.exists(key):
                    source = self.backend.path(key)
                    actual = _concurrently(
                        lambda: hash_file(source), lambda: self.backend.get_file(key, tmp)
                    )
                else:
                    self.backend.get_file(key, tmp)
                    actual = hash_file(tmp)
            except KeyError:
                raise ArtifactNotFound(oid, store=self.url) from None
            if actual != oid:
                raise ArtifactCorrupt(oid, actual, store=self.url)
        return dest

    def get_dir(self, oid: str, dest: Path) -> Path:
        """Build the tree in a temporary folder beside ``dest`` and swap it into place."""
        entries = self.manifest(oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for entry in entries:
                target = safe_join(staging, entry.path)
                self.get_file(entry.oid, target)
                if entry.executable:
                    target.chmod(target.stat().st_mode | 0o111)
            _replace_tree(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return dest

    def verify(self, oid: str) -> None:
        """Raise ArtifactCorrupt/ArtifactNotFound unless the object (and, for a
        directory, every file in it) matches its id."""
        if oid.endswith(DIR_SUFFIX):
            for entry in self.manifest(oid):
                self.verify(entry.oid)
            return
        with tempfile.TemporaryDirectory() as tmp:
            self.get_file(oid, Path(tmp, "object"))

    def oids(self) -> Iterator[str]:
        """Every object id in the store."""
        for key in self.backend.list_keys():
            oid = key.removeprefix("objects/").replace("/", "", 1)
            if _OID.match(oid):
                yield oid

    def copy_to(self, other: ArtifactStore, oid: str) -> int:
        """Copy one object (with a directory's files) to another store; return the number
        of objects actually transferred."""
        sent = 0
        if oid.endswith(DIR_SUFFIX):
            for entry in self.manifest(oid):
                sent += self.copy_to(other, entry.oid)
        if other.exists(oid):
            return sent
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp, "object")
            try:
                self.backend.get_file(self.key(oid), local)
            except KeyError:
                raise ArtifactNotFound(oid, store=self.url) from None
            actual = hash_file(local)
            if actual != oid.removesuffix(DIR_SUFFIX):
                raise ArtifactCorrupt(oid, actual, store=self.url)
            other.backend.put_file(local, other.key(oid))
        return sent + 1


def _replace_tree(staging: Path, dest: Path) -> None:
    """Put ``staging`` at ``dest``; an existing tree or file there is replaced."""
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.urandom(4).hex()}")
        os.replace(dest, old)
        os.replace(staging, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, dest)
