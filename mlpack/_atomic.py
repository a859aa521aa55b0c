"""Atomic output files: temp file in the target directory, fsync, rename.

If the process fails or is interrupted, the target is either absent or the previous
complete file, and the temp file is removed (after SIGKILL a ``.NAME.*.tmp`` may stay
behind; its name says what it is).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import UsageError

__all__ = ["allocate", "atomic_output", "atomic_write_bytes", "fsync_dir", "install", "write_all"]


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def allocate(fd: int, size: int) -> None:
    """Give the file its final size now, zero-filled (a full disk fails here, not half-way);
    a sparse file where the file system cannot allocate."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno not in (95, 22):  # EOPNOTSUPP, EINVAL
            raise
        os.ftruncate(fd, size)


def install(tmp: str | os.PathLike[str], target: Path, *, replace: bool) -> None:
    """Put the finished (fsynced) temp file ``tmp`` at ``target`` and make the name durable.

    ``replace=False`` never overwrites: ``os.link`` fails if ``target`` appeared meanwhile.
    """
    if replace:
        os.replace(tmp, target)
    else:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise UsageError(f"{target} already exists", code="E_EXISTS",
                             hint="choose another name or pass --force") from None
        os.unlink(tmp)
    fsync_dir(target.parent if str(target.parent) else Path("."))


@contextmanager
def atomic_output(target: Path, *, replace: bool = True, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a file object; on clean exit it becomes ``target`` atomically.

    With ``replace=False`` an existing target is never overwritten (``os.link`` fails
    with ``EEXIST``), even if it appeared while we were writing.
    """
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    done = False
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", buffering=0) as f:
            yield f  # type: ignore[misc]
            os.fsync(f.fileno())
        install(tmp, target, replace=replace)
        done = True
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def write_all(f: BinaryIO, data: bytes | memoryview) -> None:
    """``write`` until every byte is written (an unbuffered write may be partial)."""
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError("short write")
        view = view[n:]


def atomic_write_bytes(target: Path, data: bytes, *, mode: int = 0o644, replace: bool = True) -> None:
    with atomic_output(target, replace=replace, mode=mode) as f:
        write_all(f, data)
