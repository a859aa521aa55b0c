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
from collections.abc import Callable, Sequence
from pathlib import Path

from . import archive
from ._scan import Mismatch, Plan, Result, Sink, scan
from .archive import BLOCK, MANIFEST_NAME, SIGNATURE_NAME, Layout, Member
from .errors import IOFailure, UsageError, VerificationError
from .keys import PublicKey
from .manifest import Manifest
from .names import check_name
from .report import Report
from .sections import check_sections
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



def _read_at(fd: int) -> Callable[[int, int], bytes]:
    return lambda offset, n: os.pread(fd, n, offset)


def _diagnose(fd: int, layout: Layout, first: int, file_size: int) -> VerificationError:
    """Explain why the archive departs from the canonical layout at slot ``first``."""
    expected = {s.member.name: i for i, s in enumerate(layout.slots)}
    read_at = _read_at(fd)
    for index in range(first, len(layout.slots)):
        slot = layout.slots[index]
        name = slot.member.name
        if slot.offset + slot.header_size > file_size:
            return VerificationError(f"archive ends before member {name}", code="E_TRUNCATED", member=name)
        if read_at(slot.offset, slot.header_size) == slot.header:
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
    _sink: Sink | None = None,
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
            allow_unsigned: bool, sink: Sink | None) -> None:
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
        plan = Plan(fd, layout, tuple(digests.get(s.member.name, "") for s in layout.slots),
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
            results = scan(plan, sink, check_names_meanwhile)
        except Mismatch as mismatch:
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
        signed = {r.name: (r.size, r.digest) for r in statement.resources}
        checked = check_sections(manifest, signed, statement.algorithm,
                                 lambda name: _member_bytes(fd, layout, name))
        report.passed(step, "; ".join([f"{manifest.name} {manifest.version or ''}".strip(), *checked]))
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


def _check_manifest(manifest: Manifest, statement: Statement, results: dict[int, Result],
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
                                 _sink=Sink(staging))
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
