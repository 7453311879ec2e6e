"""The FileStore port on the local filesystem, under the data directory."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from farm_domain.errors import LogGap, StorageFull, TooLarge, WrittenAway

CHUNK = 64 * 1024
RECOUNT_SECONDS = 2.0
"""How long an append trusts the last count of the store's size (plus what this process added
since) before walking the tree again: every running frame sends a chunk every few seconds, and a
walk reads every file's size. Meanwhile another process's writes go uncounted: the budget may be
passed by what the others write in that time at most."""


def _size_of_tree(root: Path) -> int:
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # replaced or removed meanwhile
                pass
    return total


class FilesystemStore:
    """Files under ``root``, all of them together within ``budget`` bytes (counted by walking
    the tree at each write: every process sees the others' files, with no counter to drift)."""

    def __init__(self, root: Path, budget: int) -> None:
        self._root = root.resolve()
        self._budget = budget
        self._counted: tuple[float, int] | None = None
        """(when, size): the store's size at its last count, plus what was appended since."""
        self._count_lock = threading.Lock()

    def _size(self, recent: bool) -> int:
        """The store's size: walked, or (``recent``) the last count when it is recent."""
        now = time.monotonic()
        with self._count_lock:
            if recent and self._counted and now - self._counted[0] < RECOUNT_SECONDS:
                return self._counted[1]
        size = _size_of_tree(self._root)
        with self._count_lock:
            self._counted = (now, size)
        return size

    def _count(self, added: int) -> None:
        with self._count_lock:
            if self._counted is not None:
                self._counted = (self._counted[0], self._counted[1] + added)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"unsafe file key {key!r}")
        path = self._root.joinpath(*parts)
        if self._root not in path.parents:
            raise ValueError(f"unsafe file key {key!r}")
        return path

    def write(self, key: str, chunks: Iterable[bytes], limit: int) -> int:
        path = self._path(key)
        try:
            return self._write(path, chunks, limit)
        except FileNotFoundError:
            # A delete of a key above (a task's files, its job deleted) removed the folder, or
            # the file being written, between two steps: what it deleted is not brought back.
            raise WrittenAway(f"{key} was deleted while it was written") from None

    def _write(self, path: Path, chunks: Iterable[bytes], limit: int) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            replaced = path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # deleted since is_file
            replaced = 0
        room = self._budget - (self._size(recent=False) - replaced)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        size = 0
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"the upload is larger than the limit of {limit} bytes")
                    if size > room:
                        raise StorageFull(
                            "the master's disk budget for logs and update archives "
                            f"({self._budget} bytes) is full"
                        )
                    out.write(chunk)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._count(size - replaced)
        return size

    def append(self, key: str, offset: int, data: bytes, limit: int) -> int:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except FileNotFoundError:
            raise WrittenAway(f"{key} was deleted while it was written") from None
        try:
            # One appender at a time per file (several web workers): the size read here is
            # the size written after.
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            size = os.fstat(descriptor).st_size
            if offset > size:
                raise LogGap(f"the log has {size} bytes: a chunk at {offset} leaves a gap", size)
            new = data[size - offset :]
            if not new:
                return size
            if size + len(new) > limit:
                raise TooLarge(f"the log would be larger than the limit of {limit} bytes")
            if len(new) > self._budget - self._size(recent=True):
                raise StorageFull(
                    "the master's disk budget for logs and update archives "
                    f"({self._budget} bytes) is full"
                )
            written = 0
            while written < len(new):
                written += os.write(descriptor, new[written:])
            self._count(written)
            return size + written
        finally:
            os.close(descriptor)  # releases the lock

    def read(self, key: str, offset: int = 0) -> Iterator[bytes] | None:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None
        if offset:
            handle.seek(offset)

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        return chunks()

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._count_lock:
            self._counted = None  # walked again at the next append
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except FileNotFoundError:  # another process deleted it meanwhile
            pass
