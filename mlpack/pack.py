"""Write a pack (spec/verification.md, "Packing").

Two cheap passes, because the signature member comes first and so every digest must
be known before the first file byte is written:

1. hash every input (two threads; hashlib and blake3 release the GIL), sniff it for
   pickle and validate safetensors headers, remembering each file's identity
   (device, inode, size, mtime);
2. sign, then write the canonical archive into a temp file beside the output: small
   files in batched writes, large ones with ``copy_file_range`` (in-kernel, from the
   page cache). A file whose identity changed between the passes aborts the pack.

The temp file is fsynced and renamed into place only when complete.

    result = pack_directory("model/", "model.mlpack", key=load_signing_key("k.pem"))
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from . import archive, schema
from ._atomic import atomic_output, write_all
from .archive import MANIFEST_NAME, SIGNATURE_NAME, Layout, Member
from .digest import check_algorithm, new_hasher
from .errors import IOFailure, UsageError, VerificationError
from .formats import WINDOW, check_content
from .keys import SigningKey
from .manifest import FilesSummary, Manifest, WeightsFile
from .names import check_names
from .signing import MAX_RESOURCES, Resource, Statement, encode_bundle

__all__ = ["PackResult", "Source", "pack_directory", "source_date_epoch", "write_pack"]

CHUNK = 8 << 20
SMALL = 1 << 20
BATCH = 4 << 20


@dataclass(frozen=True, slots=True)
class Source:
    """One file to pack: read from ``path`` on disk, or ``data`` held in memory."""

    name: str
    path: Path | None = None
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class _Hashed:
    source: Source
    size: int
    mode: int
    digest: str
    fmt: str | None
    identity: tuple[int, int, int, int] | None


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


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _open_input(source: Source) -> tuple[int, os.stat_result]:
    assert source.path is not None
    try:
        fd = os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise UsageError(f"cannot read {source.path}: {err.strerror}", code="E_INPUT") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise VerificationError(f"{source.path} is not a regular file", code="E_MEMBER_TYPE",
                                member=source.name)
    return fd, st


def _hash_one(source: Source, algorithm: str) -> _Hashed:
    if source.data is not None:
        data = source.data
        hasher = new_hasher(algorithm, len(data))
        hasher.update(data)
        fmt = check_content(source.name, len(data), data[:WINDOW], data[-WINDOW:],
                            lambda off, n: data[off : off + n])
        return _Hashed(source, len(data), 0o644, hasher.hexdigest(), fmt, None)
    fd, st = _open_input(source)
    try:
        size = st.st_size
        hasher = new_hasher(algorithm, size)
        buf = bytearray(min(CHUNK, max(size, 1)))
        view = memoryview(buf)
        head = tail = b""
        total = 0
        while True:
            n = os.readv(fd, [view])
            if not n:
                break
            chunk = view[:n]
            hasher.update(chunk)
            if len(head) < WINDOW:
                head += bytes(chunk[: WINDOW - len(head)])
            tail = (tail + bytes(chunk[-WINDOW:]))[-WINDOW:]
            total += n
        if total != size:
            raise IOFailure(f"{source.path} changed while it was read",
                            hint="pack a directory nothing is writing to")
        fmt = check_content(source.name, size, head, tail, lambda off, n: os.pread(fd, n, off))
        mode = 0o755 if st.st_mode & 0o100 else 0o644  # the owner's execute bit
        return _Hashed(source, size, mode, hasher.hexdigest(), fmt, _identity(st))
    finally:
        os.close(fd)


def _hash_batch(sources: Sequence[Source], algorithm: str) -> list[_Hashed]:
    return [_hash_one(s, algorithm) for s in sources]


def _hash_all(sources: Sequence[Source], algorithm: str) -> list[_Hashed]:
    batches: list[list[Source]] = [[]]
    weight = 0
    for s in sources:
        batches[-1].append(s)
        weight += 1 + (len(s.data) if s.data is not None else 0) // 65536
        if weight >= 256:
            batches.append([])
            weight = 0
    out: list[_Hashed] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for hashed in pool.map(_hash_batch, batches, [algorithm] * len(batches)):
            out.extend(hashed)
    return out


def _copy_into(out_fd: int, item: _Hashed) -> None:
    """Append one file's bytes to the archive, checking it did not change since hashing."""
    source = item.source
    if source.data is not None:
        _write_fd(out_fd, source.data)
        return
    fd, st = _open_input(source)
    try:
        if _identity(st) != item.identity:
            raise IOFailure(f"{source.path} changed while packing",
                            hint="pack a directory nothing is writing to")
        remaining = item.size
        while remaining:
            try:
                n = os.copy_file_range(fd, out_fd, remaining)
            except OSError:
                n = os.sendfile(out_fd, fd, None, remaining)
            if n == 0:
                raise IOFailure(f"{source.path} shrank while packing",
                            hint="pack a directory nothing is writing to")
            remaining -= n
        if _identity(os.fstat(fd)) != item.identity:
            raise IOFailure(f"{source.path} changed while packing",
                            hint="pack a directory nothing is writing to")
    finally:
        os.close(fd)


def _write_fd(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_small(item: _Hashed) -> bytes:
    source = item.source
    if source.data is not None:
        return source.data
    fd, st = _open_input(source)
    try:
        if _identity(st) != item.identity:
            raise IOFailure(f"{source.path} changed while packing",
                            hint="pack a directory nothing is writing to")
        data = os.pread(fd, item.size, 0)
        if len(data) != item.size:
            raise IOFailure(f"{source.path} shrank while packing",
                            hint="pack a directory nothing is writing to")
        return data
    finally:
        os.close(fd)


def write_pack(
    sources: Sequence[Source],
    manifest: Manifest,
    out: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    algorithm: str = "sha256",
    replace_existing: bool = False,
) -> PackResult:
    """Hash ``sources``, complete ``manifest`` (file summary, weights), sign and write.

    ``manifest.files`` and ``manifest.weights`` are recomputed from the sources.
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

    hashed = _hash_all(sources, algorithm)
    weights = tuple(WeightsFile(path=h.source.name, format=h.fmt, size=h.size)
                    for h in sorted(hashed, key=lambda h: h.source.name.encode()) if h.fmt)
    manifest = replace(manifest, files=FilesSummary(count=len(hashed), size=sum(h.size for h in hashed)),
                       weights=weights)
    problems = schema.validate(manifest.to_dict(), "manifest")
    if problems:  # never write a pack whose manifest breaks the normative schema
        raise VerificationError(f"{MANIFEST_NAME} would not conform to the spec: {problems[0]}",
                                code="E_MANIFEST", member=MANIFEST_NAME)
    manifest_item = _hash_one(Source(MANIFEST_NAME, data=manifest.to_bytes()), algorithm)
    items = [manifest_item] + sorted(hashed, key=lambda h: h.source.name.encode())
    statement = Statement.build(
        manifest.name, algorithm,
        [Resource(h.source.name, h.digest, h.size, h.mode) for h in items], mtime)
    bundle = encode_bundle(statement.to_bytes(), [key] if key else [])
    layout = Layout.plan([Member(SIGNATURE_NAME, len(bundle), 0o644)]
                         + [Member(h.source.name, h.size, h.mode) for h in items], mtime=mtime)

    try:
        with atomic_output(target, replace=replace_existing) as f:
            fd = f.fileno()
            _write_fd(fd, layout.slots[0].header + bundle + b"\0" * archive.padding(len(bundle)))
            pending = bytearray()
            for slot, item in zip(layout.slots[1:], items):
                size = item.size
                if size <= SMALL:
                    pending += slot.header
                    pending += _read_small(item)
                    pending += b"\0" * archive.padding(size)
                    if len(pending) >= BATCH:
                        _write_fd(fd, pending)
                        pending.clear()
                    continue
                _write_fd(fd, pending + slot.header)
                pending.clear()
                _copy_into(fd, item)
                pending += b"\0" * archive.padding(size)
            _write_fd(fd, pending + layout.trailer())
            if os.fstat(fd).st_size != layout.total:
                raise IOFailure(f"wrote {os.fstat(fd).st_size} bytes, expected {layout.total}")
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return PackResult(target, len(items), sum(h.size for h in items), layout.total, algorithm,
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
                    sources.append(Source(name, path=Path(entry.path)))
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
            base = Manifest.from_bytes(s.path.read_bytes())
        elif s.name != SIGNATURE_NAME:
            kept.append(s)
    pack_name = name or (base.name if base else root.resolve().name or "model")
    if not 1 <= len(pack_name) <= 200:
        raise UsageError("the pack name must be 1 to 200 characters", hint="pass --name NAME")
    manifest = replace(base, name=pack_name) if base else Manifest(name=pack_name, files=FilesSummary(count=0, size=0))
    return write_pack(kept, manifest, target, key=key, algorithm=algorithm, replace_existing=replace_existing)
