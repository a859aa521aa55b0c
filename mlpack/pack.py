"""Write a pack (spec/verification.md, "Pack algorithm").

The signature member comes first, yet every input is read exactly once: the whole
layout is known before any file is hashed. Names, sizes and modes come from the walk;
digests are fixed-length hex, so the signed payload's length is known; signatures
have a fixed length (:meth:`SigningKey.sign`), so the signature member's length is
known too. Then:

1. the temp file beside the output is allocated at its final size (``posix_fallocate``:
   a full disk fails now, not half-way);
2. workers read each file once into a private buffer, hash it, check its format and
   ``pwrite`` that same buffer at the file's final offset (threads; forked processes
   for many small files, so per-file Python work runs on every core);
3. the statement is completed with the digests and signed, and the signature member
   and ``mlpack.json`` are written at the start;
4. the temp file is fsynced and renamed (or linked) into place.

The bytes written are the bytes hashed, so a file that changes while it is packed
cannot make the pack lie; a change of its size or mtime is reported (``E_IO``).

    result = pack_directory("model/", "model.mlpack", key=load_signing_key("k.pem"))
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import schema
from ._atomic import allocate, atomic_output
from ._parallel import map_ranges, split
from .archive import MANIFEST_NAME, SIGNATURE_NAME, Layout, Member, Slot
from .digest import DIGEST_HEX, check_algorithm, new_hasher
from .errors import IOFailure, UsageError, VerificationError
from .formats import WINDOW, check_content
from .keys import SigningKey
from .manifest import SPEC_VERSION, FilesSummary, Manifest, WeightsFile
from .names import check_names
from .signing import MAX_RESOURCES, Resource, Statement, bundle_size, encode_bundle

__all__ = ["PackResult", "Source", "pack_directory", "source_date_epoch", "write_pack"]

CHUNK = 8 << 20  # read size for large files
BATCH = 4 << 20  # bytes of small files per task
FORK_MIN_FILES = 512
WEIGHT_SUFFIXES = {".safetensors": "safetensors", ".onnx": "onnx"}


@dataclass(frozen=True, slots=True)
class Source:
    """One file to pack: read from ``path`` on disk, or ``data`` held in memory."""

    name: str
    path: str | os.PathLike[str] | None = None
    data: bytes | None = None
    stat: os.stat_result | None = field(default=None, compare=False, repr=False)
    """The walk's ``lstat`` of ``path``, when it has one (saves a system call per file)."""


@dataclass(frozen=True, slots=True)
class _Input:
    """A source with what the walk learned: size, mode, identity (device, inode, mtime)."""

    source: Source
    size: int
    mode: int
    identity: tuple[int, int, int] | None


@dataclass(frozen=True, slots=True)
class PackResult:
    """What was written."""

    path: Path
    files: int
    size: int
    archive_size: int
    algorithm: str
    root_digest: str
    signer: str | None


def source_date_epoch() -> int:
    """The archive mtime: ``SOURCE_DATE_EPOCH`` if set (reproducible builds), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) >= 8**11:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r} is not a valid timestamp",
                         hint="use a non-negative integer number of seconds")
    return int(value)


def _stat_input(source: Source) -> _Input:
    if source.data is not None:
        return _Input(source, len(source.data), 0o644, None)
    assert source.path is not None
    try:
        st = source.stat or os.stat(source.path, follow_symlinks=False)
    except OSError as err:
        raise UsageError(f"cannot read {source.path}: {err.strerror}", code="E_INPUT") from None
    if not stat.S_ISREG(st.st_mode):
        raise VerificationError(f"{source.path} is not a regular file", code="E_MEMBER_TYPE",
                                member=source.name)
    mode = 0o755 if st.st_mode & 0o100 else 0o644  # the owner's execute bit
    return _Input(source, st.st_size, mode, (st.st_dev, st.st_ino, st.st_mtime_ns))


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing this range to disk now (Linux ``sync_file_range``).

    The final fsync then finds little left to do: disk writes overlap the hashing of
    the next files instead of following it. Best effort: a no-op where unsupported.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


def _load_sync_file_range() -> object:
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE: Any = _load_sync_file_range() if sys.platform == "linux" else None


def _write_at(out_fd: int, data: memoryview, offset: int) -> None:
    written = 0
    while written < len(data):
        written += os.pwrite(out_fd, data[written:], offset + written)
    _start_writeback(out_fd, offset, len(data))


def _stream_large(fd: int, out_fd: int, item: _Input, slot: Slot, hasher: Any) -> tuple[bytes, bytes]:
    """Read, hash and write a large file chunk by chunk; writing overlaps the next hash.

    A writer thread ``pwrite``s chunk k from its buffer while this thread reads and hashes
    chunk k+1 into another (both release the GIL); a buffer is reused only once its write
    finished. Returns the first and last :data:`WINDOW` bytes for the format checks.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    size = item.size
    buffers = [memoryview(bytearray(CHUNK)) for _ in range(3)]
    pending: list[Future[None] | None] = [None] * len(buffers)
    head = tail = b""
    pos = k = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        try:
            while pos < size:
                slot_k = k % len(buffers)
                if pending[slot_k] is not None:
                    pending[slot_k].result()  # type: ignore[union-attr]
                view = buffers[slot_k]
                n = os.preadv(fd, [view[: min(CHUNK, size - pos)]], pos)
                if n == 0:
                    raise _changed(item)
                chunk = view[:n]
                hasher.update(chunk)
                pending[slot_k] = writer.submit(_write_at, out_fd, chunk, slot.data_offset + pos)
                if not head:
                    head = bytes(chunk[:WINDOW])
                tail = (tail + bytes(chunk[-WINDOW:]))[-WINDOW:]
                pos += n
                k += 1
        finally:
            for future in pending:
                if future is not None:
                    future.result()
    return head, tail


def _changed(item: _Input) -> IOFailure:
    return IOFailure(f"{item.source.path} changed while packing", hint="pack a directory nothing is writing to")


def _copy_one(out_fd: int, item: _Input, slot: Slot, algorithm: str) -> tuple[str, str | None]:
    """Read one input once: hash it, check its format, write it at its final offset."""
    name, size = item.source.name, item.size
    hasher = new_hasher(algorithm, size)
    if item.source.data is not None:
        data = item.source.data
        hasher.update(data)
        os.pwrite(out_fd, slot.header + data, slot.offset)
        fmt = check_content(name, size, data[:WINDOW], data[-WINDOW:], lambda o, n: data[o : o + n])
        return hasher.hexdigest(), fmt
    assert item.source.path is not None
    try:
        fd = os.open(item.source.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise UsageError(f"cannot read {item.source.path}: {err.strerror}", code="E_INPUT") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino, st.st_mtime_ns) != item.identity \
                or st.st_size != size:
            raise _changed(item)
        if size + slot.header_size <= BATCH:  # small: one read, one write with its header
            data = os.pread(fd, size, 0)
            if len(data) != size:
                raise _changed(item)
            hasher.update(data)
            os.pwrite(out_fd, slot.header + data, slot.offset)
            head, tail = memoryview(data)[:WINDOW], memoryview(data)[-WINDOW:]
        else:
            os.pwrite(out_fd, slot.header, slot.offset)
            head, tail = _stream_large(fd, out_fd, item, slot, hasher)
        fmt = check_content(name, size, head, tail, lambda o, n: os.pread(fd, n, o))
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (size, st.st_mtime_ns):
            raise _changed(item)
        return hasher.hexdigest(), fmt
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _Job:
    out_fd: int
    items: tuple[_Input, ...]
    slots: tuple[Slot, ...]
    algorithm: str


def _copy_range(job: _Job, indices: range) -> list[tuple[Any, ...]]:
    done = [(i, *_copy_one(job.out_fd, job.items[i], job.slots[i], job.algorithm)) for i in indices]
    first, last = job.slots[indices[0]], job.slots[indices[-1]]
    _start_writeback(job.out_fd, first.offset, last.end - first.offset)
    return done


def write_pack(
    sources: Sequence[Source],
    manifest: Manifest,
    out: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    algorithm: str = "sha256",
    replace_existing: bool = False,
    weights: Sequence[WeightsFile] | None = None,
) -> PackResult:
    """Pack ``sources`` with ``manifest`` (its file summary is recomputed).

    ``weights`` lists the weights files (``mlpack build`` passes them with their index);
    by default the files whose names end in ``.safetensors`` or ``.onnx``. Every file's
    content is checked whatever its name (pickle, safetensors headers).
    """
    check_algorithm(algorithm)
    target = Path(out)
    if not replace_existing and target.exists():
        raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
    if not target.parent.is_dir():
        raise UsageError(f"directory {target.parent} does not exist", code="E_INPUT")
    names = [s.name for s in sources]
    if MANIFEST_NAME in names:
        raise UsageError(f"{MANIFEST_NAME} is written by mlpack; do not pass it as a file")
    if not sources:
        raise UsageError("nothing to pack: the directory holds no files", code="E_INPUT")
    if len(sources) + 1 > MAX_RESOURCES:
        raise VerificationError(f"{len(sources)} files exceed the limit of {MAX_RESOURCES}", code="E_LIMIT")
    check_names(names + [MANIFEST_NAME])
    mtime = source_date_epoch()

    # 1. Everything but the digests is known now: the manifest, the payload's length, the layout.
    inputs = sorted((_stat_input(s) for s in sources), key=lambda i: i.source.name.encode())
    if weights is None:
        weights = tuple(WeightsFile(path=i.source.name, format=fmt, size=i.size) for i in inputs
                        for suffix, fmt in WEIGHT_SUFFIXES.items() if i.source.name.endswith(suffix))
    manifest = replace(manifest, files=FilesSummary(count=len(inputs), size=sum(i.size for i in inputs)),
                       weights=tuple(weights))
    problems = schema.validate(manifest.to_dict(), "manifest")
    if problems:  # never write a pack whose manifest breaks the normative schema
        raise VerificationError(f"{MANIFEST_NAME} would not conform to the spec: {problems[0]}",
                                code="E_MANIFEST", member=MANIFEST_NAME)
    items = [_stat_input(Source(MANIFEST_NAME, data=manifest.to_bytes()))] + inputs
    placeholder = "0" * DIGEST_HEX[algorithm]
    draft = Statement.build(manifest.name, algorithm,
                            [Resource(i.source.name, placeholder, i.size, i.mode) for i in items], mtime)
    keys = [key] if key else []
    signature_size = bundle_size(len(draft.to_bytes()), keys)
    layout = Layout.plan([Member(SIGNATURE_NAME, signature_size, 0o644)]
                         + [Member(i.source.name, i.size, i.mode) for i in items], mtime=mtime)
    try:
        with atomic_output(target, replace=replace_existing) as f:
            fd = f.fileno()
            allocate(fd, layout.total)  # zero-filled; a full disk fails here
            # 2. Every file read once: hashed, checked, written at its final offset.
            job = _Job(fd, tuple(items), layout.slots[1:], algorithm)
            ranges = split([i.size + 1024 for i in items], batch=BATCH, alone=BATCH)
            rows = map_ranges(_copy_range, job, ranges, processes=len(items) > FORK_MIN_FILES)
            results = [(digest, fmt) for _i, digest, fmt in rows]
            # 3. Sign and write the signature member.
            statement = Statement.build(
                manifest.name, algorithm,
                [Resource(i.source.name, d, i.size, i.mode) for i, (d, _) in zip(items, results)], mtime)
            bundle = encode_bundle(statement.to_bytes(), keys)
            assert len(bundle) == signature_size, "signature member size drifted"
            os.pwrite(fd, layout.slots[0].header + bundle, 0)
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return PackResult(target, len(items), sum(i.size for i in items), layout.total, algorithm,
                      statement.root_digest, key.fingerprint if key else None)


def _walk(root: Path, skip: set[tuple[int, int]]) -> list[Source]:
    """Every regular file under ``root``; links and special files are refused."""
    sources: list[Source] = []
    stack = [("", str(root))]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as err:
            raise UsageError(f"cannot list {directory}: {err.strerror}", code="E_INPUT") from None
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink():
                raise VerificationError(
                    f"{name!r} is a symbolic link; packs hold regular files only", code="E_MEMBER_TYPE",
                    member=name, hint="replace the link by a copy of the file, or move it out")
            if entry.is_dir(follow_symlinks=False):
                stack.append((name + "/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) not in skip:
                    sources.append(Source(name, path=entry.path, stat=st))
            else:
                raise VerificationError(f"{name!r} is not a regular file (device, FIFO or socket)",
                                        code="E_MEMBER_TYPE", member=name)
    return sources


def pack_directory(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    algorithm: str = "sha256",
    name: str | None = None,
    replace_existing: bool = False,
) -> PackResult:
    """Pack every regular file under ``src`` plus a generated ``mlpack.json``.

    An ``mlpack.json`` already in ``src`` is the starting manifest (its metadata and
    sections are kept); a previous signature ``.mlpack/model.sig`` (an unpacked pack)
    is replaced by the new one.
    """
    root = Path(src)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise UsageError(f"{root} {what}", code="E_INPUT")
    skip = set()
    target = Path(out)
    if target.exists():
        st = target.stat()
        skip.add((st.st_dev, st.st_ino))
    sources = _walk(root, skip)
    base = None
    kept = []
    for s in sources:
        if s.name == MANIFEST_NAME:
            assert s.path is not None
            try:
                base = Manifest.from_bytes(Path(s.path).read_bytes())
            except OSError as err:
                raise UsageError(f"cannot read {s.path}: {err.strerror}", code="E_INPUT") from None
        elif s.name != SIGNATURE_NAME:
            kept.append(s)
    pack_name = name or (base.name if base else root.resolve().name or "model")
    if not 1 <= len(pack_name) <= 200:
        raise UsageError("the pack name must be 1 to 200 characters", hint="pass --name NAME")
    manifest = replace(base, name=pack_name, mlpack=SPEC_VERSION) if base else Manifest(name=pack_name, files=FilesSummary(count=0, size=0))
    return write_pack(kept, manifest, target, key=key, algorithm=algorithm, replace_existing=replace_existing)
