"""Verify a pack, and unpack one safely (spec/verification.md).

The order is the normative algorithm: a bounded read of the signature member, the
signature checked before the payload is parsed, the payload parsed strictly, then
every member streamed once against the canonical layout computed from the signed
list: each header compared byte for byte, each digest computed from one private
buffer with two threads (hashlib and blake3 release the GIL). Nothing in the pack is
executed, imported or unpickled.

    report = verify_pack("model.mlpack", trust=load_trust(["author.pub"], []))
    print(report.render()); assert report.ok
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import archive
from .archive import BLOCK, MANIFEST_NAME, SIGNATURE_NAME, Layout, Member, Slot
from .digest import new_hasher
from .errors import IOFailure, UsageError, VerificationError
from .formats import WINDOW, check_content, detect_format
from .keys import PublicKey
from .manifest import Manifest
from .names import check_name
from .report import Report
from .signing import (
    MAX_BUNDLE,
    Bundle,
    Statement,
    UntrustedKey,
    check_statement_names,
    open_bundle,
    parse_statement,
)

__all__ = ["unpack_pack", "verify_pack"]

BATCH = 4 << 20  # members grouped into reads of about this size
_ZEROS = bytes(BLOCK)
CHUNK = 8 << 20  # streaming chunk for large members
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
FORK_MIN_MEMBERS = 512


class _Mismatch(Exception):
    """A header differs from the canonical layout at slot ``index`` (diagnosed later)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


@dataclass(slots=True)
class _Result:
    """One member's outcome: its digest and, when that digest matched, its format check."""

    index: int
    digest: str
    fmt: str | None = None
    fmt_error: VerificationError | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every scan worker needs: the layout and the signed digest of each slot."""

    fd: int
    layout: Layout
    expected: tuple[str, ...]  # aligned with layout.slots; "" for the signature member
    algorithm: str


def _finish(plan: _Plan, index: int, digest: str, size: int, head: memoryview | bytes,
            tail: memoryview | bytes, read_at: Callable[[int, int], bytes]) -> _Result:
    """Format checks run only on bytes whose digest matched (spec step 8 after step 6)."""
    result = _Result(index, digest)
    if digest == plan.expected[index]:
        name = plan.layout.slots[index].member.name
        try:
            result.fmt = check_content(name, size, head, tail, read_at)
        except VerificationError as err:
            result.fmt, result.fmt_error = detect_format(name, head, size), err
    return result


class _Sink:
    """Writes verified members into a staging directory (unpack)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def open(self, name: str) -> int:
        path = self.root / name
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    @staticmethod
    def write(fd: int, data: memoryview) -> None:
        while data:
            data = data[os.write(fd, data):]

    @staticmethod
    def close(fd: int, mode: int) -> None:
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)


def _read_at(fd: int) -> Callable[[int, int], bytes]:
    return lambda offset, n: os.pread(fd, n, offset)


def _scan_batch(plan: _Plan, indices: range, sink: _Sink | None) -> list[_Result]:
    """Members ``indices`` (contiguous) from one read: headers, padding, digests, formats."""
    slots = plan.layout.slots
    start, end = slots[indices[0]].offset, slots[indices[-1]].end
    buf = os.pread(plan.fd, end - start, start)
    view = memoryview(buf)
    results = []
    for index in indices:
        slot = slots[index]
        o = slot.offset - start
        if slot.end - start > len(buf) or view[o : o + len(slot.header)] != slot.header:
            raise _Mismatch(index)
        size = slot.member.size
        d = slot.data_offset - start
        data = view[d : d + size]
        pad = slot.end - slot.data_offset - size
        if pad and view[d + size : d + size + pad] != _ZEROS[:pad]:
            raise VerificationError(f"non-zero padding after {slot.member.name}", code="E_NONCANONICAL",
                                    member=slot.member.name)
        hasher = new_hasher(plan.algorithm, size)
        hasher.update(data)
        if sink is not None:
            out = sink.open(slot.member.name)
            try:
                sink.write(out, data)
            finally:
                sink.close(out, slot.member.mode)
        results.append(_finish(plan, index, hasher.hexdigest(), size, data[:WINDOW], data[-WINDOW:],
                               lambda off, n, data=data: bytes(data[off : off + n])))  # type: ignore[misc]
    return results


def _scan_large(plan: _Plan, index: int, sink: _Sink | None) -> list[_Result]:
    """One large member streamed in chunks through one private buffer (hashed = written)."""
    fd, slot = plan.fd, plan.layout.slots[index]
    if os.pread(fd, len(slot.header), slot.offset) != slot.header:
        raise _Mismatch(index)
    name, size = slot.member.name, slot.member.size
    hasher = new_hasher(plan.algorithm, size)
    buf = bytearray(min(CHUNK, size))
    view = memoryview(buf)
    head = tail = b""
    pos, remaining = slot.data_offset, size
    out = sink.open(name) if sink is not None else None
    try:
        while remaining:
            n = os.preadv(fd, [view[: min(len(buf), remaining)]], pos)
            if n == 0:
                raise VerificationError(f"archive ends inside {name}", code="E_TRUNCATED", member=name)
            chunk = view[:n]
            hasher.update(chunk)
            if out is not None:
                _Sink.write(out, chunk)
            if not head:
                head = bytes(chunk[:WINDOW])
            tail = (tail + bytes(chunk[-WINDOW:]))[-WINDOW:]
            pos += n
            remaining -= n
    finally:
        if out is not None:
            _Sink.close(out, slot.member.mode)
    if any(os.pread(fd, archive.padding(size), pos)):
        raise VerificationError(f"non-zero padding after {name}", code="E_NONCANONICAL", member=name)
    start = slot.data_offset
    return [_finish(plan, index, hasher.hexdigest(), size, head, tail,
                    lambda off, n: os.pread(fd, n, start + off))]


def _batches(layout: Layout) -> list[range]:
    """Slot ranges of about BATCH bytes; a member over CHUNK is a range of its own."""
    batches: list[range] = []
    first = 1  # slot 0, the signature member, was read already
    size = 0
    for index in range(1, len(layout.slots)):
        slot = layout.slots[index]
        length = slot.end - slot.offset
        if length > CHUNK:
            if index > first:
                batches.append(range(first, index))
            batches.append(range(index, index + 1))
            first, size = index + 1, 0
            continue
        size += length
        if size >= BATCH:
            batches.append(range(first, index + 1))
            first, size = index + 1, 0
    if first < len(layout.slots):
        batches.append(range(first, len(layout.slots)))
    return batches


def _run(plan: _Plan, indices: range, sink: _Sink | None) -> list[_Result]:
    slot = plan.layout.slots[indices[0]]
    if len(indices) == 1 and slot.end - slot.offset > CHUNK:
        return _scan_large(plan, indices[0], sink)
    return _scan_batch(plan, indices, sink)


_FORKED: _Plan | None = None  # what forked scan workers inherit


def _run_forked(indices: range) -> list[_Result]:
    assert _FORKED is not None
    return _run(_FORKED, indices, None)


def _scan(plan: _Plan, sink: _Sink | None, meanwhile: Callable[[], None]) -> dict[int, _Result]:
    """Check every header and hash every member; raises on the first structural problem.

    Many small members go to forked processes (their per-member Python work then runs
    on every core); unpacking and a few large members use threads (hashing releases
    the GIL). ``meanwhile`` runs on this thread while the workers hash; its error wins.
    """
    global _FORKED
    forked = sink is None and len(plan.layout.slots) > FORK_MIN_MEMBERS and hasattr(os, "fork")
    pool: Executor
    if forked:
        import multiprocessing  # only here: it costs 10 ms of start-up
        from concurrent.futures import ProcessPoolExecutor

        _FORKED = plan
        pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("fork"))
    else:
        pool = ThreadPoolExecutor(max_workers=WORKERS)
    jobs = []
    results: dict[int, _Result] = {}
    try:
        for indices in _batches(plan.layout):
            jobs.append(pool.submit(_run_forked, indices) if forked else pool.submit(_run, plan, indices, sink))
        meanwhile()
        # Collect in archive order, so the first structural problem is the one reported.
        for job in jobs:
            for r in job.result():
                results[r.index] = r
    except BaseException:
        for job in jobs:
            job.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED = None
    return results


def _diagnose(fd: int, layout: Layout, first: int, file_size: int) -> VerificationError:
    """Explain why the archive departs from the canonical layout at slot ``first``."""
    expected = {s.member.name: i for i, s in enumerate(layout.slots)}
    read_at = _read_at(fd)
    for index in range(first, len(layout.slots)):
        slot = layout.slots[index]
        name = slot.member.name
        if slot.offset + len(slot.header) > file_size:
            return VerificationError(f"archive ends before member {name}", code="E_TRUNCATED", member=name)
        if read_at(slot.offset, len(slot.header)) == slot.header:
            if slot.end > file_size:
                return VerificationError(f"archive ends inside {name}", code="E_TRUNCATED", member=name)
            continue
        try:
            found = archive.parse_header(read_at, slot.offset, file_size)
        except VerificationError as err:
            err.member = err.member or name
            return err
        if found is None:
            return VerificationError(f"member {name} is missing (archive ends early)", code="E_MISSING",
                                     member=name)
        unexpected = _unexpected_member(found, expected, index)
        if unexpected is not None:
            return unexpected
        other = expected[found.name]
        if other > index:
            later = _names_after(read_at, slot.offset, file_size, len(layout.slots) + 16)
            if name in later:
                return VerificationError(f"member {name!r} is out of order", code="E_NONCANONICAL", member=name)
            return VerificationError(f"member {name!r} is missing", code="E_MISSING", member=name)
        if found.size != slot.member.size:
            return VerificationError(
                f"member {name!r} is {found.size} bytes; the signed size is {slot.member.size}",
                code="E_SIZE", member=name)
        return VerificationError(f"header of {name!r} is not canonical (metadata differs)",
                                 code="E_NONCANONICAL", member=name)
    return _after_last_member(fd, layout, file_size)


def _after_last_member(fd: int, layout: Layout, file_size: int) -> VerificationError:
    """Every expected header matched: explain what follows the last member."""
    expected = {s.member.name: i for i, s in enumerate(layout.slots)}
    if file_size >= layout.data_end + BLOCK:
        try:
            found = archive.parse_header(_read_at(fd), layout.data_end, file_size)
        except VerificationError:
            found = None
        if found is not None:  # a member smuggled in after the last signed one
            unexpected = _unexpected_member(found, expected, len(layout.slots))
            if unexpected is not None:
                return unexpected
    if file_size < layout.total:
        return VerificationError("archive ends before its end-of-archive blocks", code="E_TRUNCATED")
    if file_size > layout.total:
        return VerificationError(f"{file_size - layout.total} unexpected bytes after the end of the archive",
                                 code="E_NONCANONICAL")
    return VerificationError("non-zero bytes in the end-of-archive blocks", code="E_NONCANONICAL")


_KINDS = {b"1": "hard link", b"2": "symbolic link", b"3": "character device", b"4": "block device",
          b"5": "directory", b"6": "FIFO", b"7": "contiguous file", b"S": "sparse file",
          b"L": "GNU long name", b"K": "GNU long link name"}


def _unexpected_member(found: archive.ParsedHeader, expected: dict[str, int],
                       index: int) -> VerificationError | None:
    """Rows 4-9 of the diagnosis table: a member of the wrong kind or name; None otherwise."""
    if found.typeflag != b"0":
        kind = _KINDS.get(found.typeflag, f"type {found.typeflag!r}")
        code = "E_NONCANONICAL" if found.typeflag in (b"L", b"K") else "E_MEMBER_TYPE"
        return VerificationError(f"member {found.name!r} is a {kind}; only regular files are allowed",
                                 code=code, member=found.name)
    if any(k.startswith("GNU.sparse") for k in found.pax_keys):
        return VerificationError(f"member {found.name!r} is a sparse file", code="E_MEMBER_TYPE",
                                 member=found.name)
    other = expected.get(found.name)
    if other is None:
        try:
            check_name(found.name)
        except VerificationError as err:
            return err
        return VerificationError(f"member {found.name!r} is not in the signed file list",
                                 code="E_UNLISTED", member=found.name)
    if other < index:
        return VerificationError(f"member {found.name!r} appears twice", code="E_DUPLICATE",
                                 member=found.name)
    return None


def _names_after(read_at: Callable[[int, int], bytes], offset: int, file_size: int, cap: int) -> set[str]:
    names: set[str] = set()
    while offset < file_size and len(names) < cap:
        try:
            found = archive.parse_header(read_at, offset, file_size)
        except VerificationError:
            break
        if found is None:
            break
        names.add(found.name)
        offset += found.length + found.size + archive.padding(found.size)
    return names


def _read_signature_member(fd: int, file_size: int) -> tuple[bytes, int]:
    if file_size < 3 * BLOCK:
        raise VerificationError(f"file is {file_size} bytes: too short to be a pack", code="E_HEADER")
    if file_size % BLOCK:
        raise VerificationError(f"file size {file_size} is not a multiple of {BLOCK}: truncated",
                                code="E_TRUNCATED")
    block = os.pread(fd, BLOCK, 0)
    try:
        head = archive.parse_header(_read_at(fd), 0, file_size)
    except VerificationError as err:
        if err.code == "E_HEADER":
            err.message = f"not an mlpack pack (first header: {err.message})"
        raise
    if head is None:
        raise VerificationError("not an mlpack pack (starts with zero bytes)", code="E_HEADER")
    if head.name != SIGNATURE_NAME:
        raise VerificationError(f"first member is {head.name!r}, not the signature {SIGNATURE_NAME}",
                                code="E_UNSIGNED", member=head.name,
                                hint="this is not a signed pack (or not a pack at all)")
    if head.typeflag != b"0":
        raise VerificationError("the signature member is not a regular file", code="E_MEMBER_TYPE",
                                member=SIGNATURE_NAME)
    if head.size > MAX_BUNDLE:
        raise VerificationError(f"signature member of {head.size} bytes exceeds {MAX_BUNDLE}",
                                code="E_LIMIT", member=SIGNATURE_NAME)
    if block != archive.encode_header(SIGNATURE_NAME, head.size, 0o644, head.mtime):
        raise VerificationError("signature member header is not canonical", code="E_NONCANONICAL",
                                member=SIGNATURE_NAME)
    data = os.pread(fd, head.size + archive.padding(head.size), BLOCK)
    if len(data) != head.size + archive.padding(head.size):
        raise VerificationError("archive ends inside the signature member", code="E_TRUNCATED",
                                member=SIGNATURE_NAME)
    if any(data[head.size :]):
        raise VerificationError("non-zero padding after the signature member", code="E_NONCANONICAL",
                                member=SIGNATURE_NAME)
    return data[: head.size], head.mtime


def _open(path: str | os.PathLike[str]) -> tuple[int, int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", code="E_INPUT") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a pack file", code="E_INPUT") from None
    except OSError as err:
        raise UsageError(f"cannot open {path}: {err.strerror}", code="E_INPUT") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UsageError(f"{path} is not a regular file", code="E_INPUT")
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:
        pass
    return fd, st.st_size


def verify_pack(
    path: str | os.PathLike[str],
    *,
    trust: Sequence[PublicKey],
    threshold: int = 1,
    allow_unsigned: bool = False,
    _sink: _Sink | None = None,
) -> Report:
    """Run every check of the verification algorithm; never raises for a bad pack.

    Raises only :class:`UsageError` (missing file, no key given for a signed pack) and
    :class:`IOFailure`; everything wrong with the pack itself is in the report.
    """
    if threshold < 1 or (trust and threshold > len(trust)):
        raise UsageError(f"--threshold must be between 1 and the number of trusted keys ({len(trust)})")
    if not trust and not allow_unsigned:
        raise UsageError("no trusted key given", hint="pass --key AUTHOR.pub (or --trust-dir DIR), "
                         "or --allow-unsigned to accept an unsigned pack")
    report = Report(pack=str(path))
    fd, file_size = _open(path)
    try:
        _verify(fd, file_size, report, trust, threshold, allow_unsigned, _sink)
    except OSError as err:
        raise IOFailure.from_os_error(err, f"reading {path}") from None
    finally:
        os.close(fd)
    return report


def _verify(fd: int, file_size: int, report: Report, trust: Sequence[PublicKey], threshold: int,
            allow_unsigned: bool, sink: _Sink | None) -> None:
    step = "file"
    try:
        report.passed("file", f"{file_size} bytes")
        step = "signature-member"
        bundle_bytes, mtime = _read_signature_member(fd, file_size)
        report.passed(step, f"{len(bundle_bytes)} bytes")
        step = "envelope"
        try:
            bundle: Bundle = open_bundle(bundle_bytes, trust, threshold=threshold,
                                         allow_unsigned=allow_unsigned)
        except VerificationError as err:
            if err.code not in ("E_MANIFEST", "E_PAYLOAD_TYPE"):
                report.passed("envelope", "OMS v1.0 bundle")
                step = "signature"
            if isinstance(err, UntrustedKey):
                report.claimed_signer = err.claimed
            raise
        report.passed("envelope", f"OMS v1.0 bundle, {bundle.signature_count} signature(s)")
        step = "signature"
        if bundle.signature_count:
            report.signers = [k.fingerprint for k in bundle.signers]
            report.passed(step, f"valid, by {len(bundle.signers)} trusted key(s)")
        else:
            report.unsigned = True
            report.check(step).detail = "unsigned"
        step = "payload"
        # Names reach the file system only when unpacking: then they are checked before
        # anything is written; a plain verify checks them while the workers hash.
        statement: Statement = parse_statement(bundle.payload, check_names_now=sink is not None)
        if statement.mtime != mtime:
            raise VerificationError("header mtime differs from the signed mtime", code="E_NONCANONICAL",
                                    member=SIGNATURE_NAME)
        members = [Member(SIGNATURE_NAME, len(bundle_bytes), 0o644)] + _archive_order(statement)
        layout = Layout.plan(members, mtime=mtime)
        digests = {r.name: r.digest for r in statement.resources}
        plan = _Plan(fd, layout, tuple(digests.get(s.member.name, "") for s in layout.slots),
                     statement.algorithm)
        names_checked = sink is not None

        def check_names_meanwhile() -> None:
            nonlocal names_checked
            if not names_checked:
                check_statement_names(statement)
                names_checked = True

        if file_size != layout.total:
            check_names_meanwhile()
            _payload_passed(report, statement, file_size)
            step = "members"
            raise _diagnose(fd, layout, 1, file_size)
        if sink is not None:
            out = sink.open(SIGNATURE_NAME)
            try:
                sink.write(out, memoryview(bundle_bytes))
            finally:
                sink.close(out, 0o644)
        try:
            results = _scan(plan, sink, check_names_meanwhile)
        except _Mismatch as mismatch:
            _payload_passed(report, statement, file_size)
            step = "members"
            raise _diagnose(fd, layout, mismatch.index, file_size) from None
        except VerificationError:
            if names_checked:
                _payload_passed(report, statement, file_size)
                step = "members"
            raise
        _payload_passed(report, statement, file_size)
        step = "members"
        if any(os.pread(fd, layout.total - layout.data_end, layout.data_end)):
            raise _after_last_member(fd, layout, file_size)
        report.passed(step, f"{len(members)} members in canonical form, nothing else")
        step = "digests"
        bad = [layout.slots[i].member.name for i in sorted(results) if results[i].digest != plan.expected[i]]
        if bad:
            raise VerificationError(
                f"{len(bad)} file(s) differ from the signed digest: {', '.join(bad[:5])}"
                + (" ..." if len(bad) > 5 else ""), code="E_DIGEST", member=bad[0])
        report.passed(step, f"{len(results)} files match their signed {statement.algorithm} digest")
        step = "manifest"
        manifest = Manifest.from_bytes(_member_bytes(fd, layout, MANIFEST_NAME))
        _check_manifest(manifest, statement, results, layout)
        report.manifest = {"name": manifest.name, "version": manifest.version, "mlpack": manifest.mlpack}
        report.passed(step, f"{manifest.name} {manifest.version or ''}".strip())
        step = "formats"
        for i in sorted(results):
            if results[i].fmt_error is not None:
                raise results[i].fmt_error  # type: ignore[misc]
        weights = sum(1 for r in results.values() if r.fmt)
        report.passed(step, f"no pickle; {weights} weights file(s) checked")
    except VerificationError as err:
        report.failed(step, err)


def _payload_passed(report: Report, statement: Statement, file_size: int) -> None:
    report.archive = {"size": file_size, "files": len(statement.resources),
                      "hash": statement.algorithm, "root_digest": f"sha256:{statement.root_digest}"}
    report.passed("payload", f"{len(statement.resources)} files, {statement.algorithm}")


def _archive_order(statement: Statement) -> list[Member]:
    by_name = {r.name: r.member for r in statement.resources}
    rest = sorted((n for n in by_name if n != MANIFEST_NAME), key=lambda n: n.encode())
    return [by_name[MANIFEST_NAME]] + [by_name[n] for n in rest]


def _member_bytes(fd: int, layout: Layout, name: str) -> bytes:
    slot = next(s for s in layout.slots if s.member.name == name)
    return os.pread(fd, slot.member.size, slot.data_offset)


def _check_manifest(manifest: Manifest, statement: Statement, results: dict[int, _Result],
                    layout: Layout) -> None:
    others = [r for r in statement.resources if r.name != MANIFEST_NAME]
    if (manifest.files.count, manifest.files.size) != (len(others), sum(r.size for r in others)):
        raise VerificationError(
            f"{MANIFEST_NAME} says {manifest.files.count} files / {manifest.files.size} bytes; "
            f"the pack holds {len(others)} / {sum(r.size for r in others)}",
            code="E_MANIFEST", member=MANIFEST_NAME)
    sizes = {r.name: r.size for r in statement.resources}
    formats = {layout.slots[i].member.name: r.fmt for i, r in results.items()}
    for w in manifest.weights:
        if w.path not in formats:
            raise VerificationError(f"{MANIFEST_NAME} lists weights {w.path!r}, which the pack lacks",
                                    code="E_MANIFEST", member=MANIFEST_NAME)
        if sizes[w.path] != w.size:
            raise VerificationError(f"{MANIFEST_NAME} gives {w.path!r} {w.size} bytes; it has {sizes[w.path]}",
                                    code="E_MANIFEST", member=MANIFEST_NAME)
        if formats[w.path] != w.format:
            raise VerificationError(f"{w.path!r} is not {w.format} content", code="E_MANIFEST",
                                    member=MANIFEST_NAME)


def unpack_pack(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    trust: Sequence[PublicKey],
    threshold: int = 1,
    allow_unsigned: bool = False,
) -> Report:
    """Verify ``path`` while writing its files into the NEW directory ``dest``.

    Files are written into a staging directory beside ``dest`` from the same bytes
    that are hashed; the staging directory is renamed to ``dest`` only if every check
    passed, and removed otherwise (also on Ctrl-C).
    """
    target = Path(dest)
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} already exists", code="E_EXISTS",
                         hint="unpack creates a new directory; choose a path that does not exist")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"directory {parent} does not exist", code="E_INPUT")
    import shutil
    import tempfile

    try:
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp"))
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot create a directory in {parent}") from None
    done = False
    try:
        try:
            report = verify_pack(path, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned,
                                 _sink=_Sink(staging))
        except OSError as err:
            raise IOFailure.from_os_error(err, f"writing into {staging}") from None
        if report.ok:
            os.chmod(staging, 0o755)
            if target.exists():
                raise UsageError(f"{target} appeared while unpacking", code="E_EXISTS")
            os.rename(staging, target)
            done = True
        return report
    finally:
        if not done:
            shutil.rmtree(staging, ignore_errors=True)
