"""Read members of a pack that verified, by offset, without unpacking it.

:func:`open_verified` runs the full verification of spec/verification.md on the file
once (with the caller's trust options), then keeps the file descriptor it verified and
plans the canonical layout from the signed statement, so each member can be read at its
known offset. Bytes read later are checked again where that is cheap: :meth:`VerifiedPack.read`
re-hashes the member against its signed digest, and ranges are hashed by the caller
against the digests it knows (weights tensors against the weights index). A file that is
replaced or modified while it is being verified is refused (``E_IO``).

    with open_verified("model.mlpack", trust=load_trust(["author.pub"], [])) as pack:
        manifest = pack.manifest
        lock = pack.read("environment/pylock.toml")
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from typing import Any, Self

from .archive import MANIFEST_NAME, SIGNATURE_NAME, Layout, Member, Slot
from .digest import new_hasher
from .errors import IOFailure, VerificationError
from .keys import PublicKey
from .manifest import Manifest
from .report import Report
from .signing import Resource, Statement, open_bundle, parse_statement

__all__ = ["CHUNK", "VerifiedPack", "open_pair", "open_verified"]

CHUNK = 4 << 20
MAX_READ = 1 << 30
"""Largest member :meth:`VerifiedPack.read` returns whole (larger ones are streamed)."""


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class VerifiedPack:
    """A pack that passed verification, open for reading (use as a context manager)."""

    def __init__(self, path: str, fd: int, report: Report, statement: Statement, layout: Layout) -> None:
        self.path = path
        self.report = report
        self.statement = statement
        self._fd = fd
        self._slots: dict[str, Slot] = {s.member.name: s for s in layout.slots}
        self._resources: dict[str, Resource] = {r.name: r for r in statement.resources}
        self._file_sha256: str | None = None
        try:
            self.manifest: Manifest = Manifest.from_bytes(self.read(MANIFEST_NAME))
        except BaseException:
            self._fd = -1  # the caller closes the descriptor; __del__ must not close it again
            raise

    # -- identity ------------------------------------------------------------------------

    @property
    def algorithm(self) -> str:
        """The hash algorithm of the signed statement (``sha256``, ``blake2b``, ``blake3``)."""
        return self.statement.algorithm

    @property
    def root_digest(self) -> str:
        """``sha256:`` + the OMS root digest: the same for every signing of the same content."""
        return f"sha256:{self.statement.root_digest}"

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(sorted(self.report.signers))

    @property
    def verdict(self) -> str:
        return self.report.verdict

    def file_sha256(self) -> str:
        """``sha256:`` + the SHA-256 of the whole pack file (streamed once, then cached)."""
        if self._file_sha256 is None:
            h = hashlib.sha256()
            offset = 0
            while True:
                block = os.pread(self._fd, CHUNK, offset)
                if not block:
                    break
                h.update(block)
                offset += len(block)
            self._file_sha256 = "sha256:" + h.hexdigest()
        return self._file_sha256

    # -- members -------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Every signed file name except the signature member, in statement order."""
        return tuple(self._resources)

    def has(self, name: str) -> bool:
        return name in self._resources

    def resource(self, name: str) -> Resource:
        try:
            return self._resources[name]
        except KeyError:
            raise VerificationError(f"{self.path}: no member {name!r}", code="E_MANIFEST",
                                    member=name) from None

    def size(self, name: str) -> int:
        return self.resource(name).size

    def digest(self, name: str) -> str:
        """The signed hex digest of a member (in :attr:`algorithm`)."""
        return self.resource(name).digest

    def read(self, name: str, *, max_size: int = MAX_READ) -> bytes:
        """A whole member, checked against its signed digest again."""
        resource = self.resource(name)
        if resource.size > max_size:
            raise VerificationError(f"{name} is {resource.size} bytes, more than {max_size} to read whole",
                                    code="E_LIMIT", member=name)
        data = self.read_range(name, 0, resource.size)
        h = new_hasher(self.algorithm, len(data))
        h.update(data)
        if h.hexdigest() != resource.digest:
            raise self.changed(name)
        return data

    def read_range(self, name: str, begin: int, end: int) -> bytes:
        """Bytes ``[begin, end)`` of a member (not re-checked: hash them against a known digest)."""
        slot = self._slots.get(name) if name in self._resources else None
        if slot is None:
            raise VerificationError(f"{self.path}: no member {name!r}", code="E_MANIFEST", member=name)
        if not 0 <= begin <= end <= slot.member.size:
            raise VerificationError(f"{name}: byte range [{begin}, {end}) is outside its "
                                    f"{slot.member.size} bytes", code="E_MANIFEST", member=name)
        try:
            data = os.pread(self._fd, end - begin, slot.data_offset + begin)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"reading {self.path}") from None
        if len(data) != end - begin:
            raise self.changed(name)
        return data

    def iter_range(self, name: str, begin: int, end: int, chunk: int = CHUNK) -> Iterator[bytes]:
        """Bytes ``[begin, end)`` of a member in pieces of at most ``chunk`` bytes."""
        offset = begin
        while offset < end:
            step = min(chunk, end - offset)
            yield self.read_range(name, offset, offset + step)
            offset += step

    def open_member(self, name: str) -> io.BufferedReader:
        """A read-only, seekable binary stream over one member (bytes not re-checked)."""
        return io.BufferedReader(_MemberStream(self, name), buffer_size=1 << 20)

    def changed(self, name: str) -> IOFailure:
        """The error for bytes that no longer match what verification saw."""
        return IOFailure(f"{self.path} changed after it was verified ({name} differs)", code="E_IO",
                         hint="do not modify a pack while mlpack reads it; retry")

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a forgotten close must not leak descriptors
        with contextlib.suppress(OSError):
            self.close()


class _MemberStream(io.RawIOBase):
    def __init__(self, pack: VerifiedPack, name: str) -> None:
        self._pack, self._name, self._size, self._pos = pack, name, pack.size(name), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        data = self._pack.read_range(self._name, self._pos, end)
        memoryview(buffer)[: len(data)] = data
        self._pos = end
        return len(data)


def _refused(path: str, err: VerificationError) -> VerificationError:
    return VerificationError(f"{path} failed verification: {err.message}", code=err.code,
                             member=err.member,
                             hint=err.hint or f"run mlpack verify {path} for the full report")


def open_verified(
    path: str | os.PathLike[str],
    *,
    trust: Sequence[PublicKey],
    threshold: int = 1,
    allow_unsigned: bool = False,
) -> VerifiedPack:
    """Verify ``path`` as ``mlpack verify`` does, then open it for reading.

    Raises:
        UsageError: ``E_INPUT`` (missing or not a regular file), ``E_USAGE`` (no trusted key
            and no ``allow_unsigned``; bad threshold).
        VerificationError: the pack failed verification; the code is that of the failed
            check (``E_DIGEST``, ``E_UNTRUSTED_KEY``, ``E_HEADER`` for a file that is not a
            pack...), the message names the file.
        IOFailure: the file could not be read, or changed while it was verified.
    """
    from .verify import _archive_order, _open, _read_signature_member, verify_pack

    shown = os.fspath(path)
    fd, _ = _open(path)
    try:
        before = _identity(os.fstat(fd))
        proc = f"/proc/self/fd/{fd}"
        # Verifying through /proc reopens this very file, whatever happens to the path meanwhile.
        target: str = proc if os.path.exists(proc) else shown
        report = verify_pack(target, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
        report.pack = shown
        if _identity(os.fstat(fd)) != before or (target == shown and _identity(os.stat(shown)) != before):
            raise IOFailure(f"{shown} changed while it was verified", code="E_IO",
                            hint="do not modify a pack while mlpack reads it; retry")
        if not report.ok:
            assert report.error is not None
            raise _refused(shown, report.error)
        file_size = before[2]
        bundle_bytes, mtime = _read_signature_member(fd, file_size)
        bundle = open_bundle(bundle_bytes, trust, threshold=threshold, allow_unsigned=allow_unsigned)
        statement = parse_statement(bundle.payload)
        members = [Member(SIGNATURE_NAME, len(bundle_bytes), 0o644)] + _archive_order(statement)
        layout = Layout.plan(members, mtime=mtime)
        return VerifiedPack(shown, fd, report, statement, layout)
    except VerificationError as err:
        os.close(fd)
        if err.message.startswith(f"{shown} "):
            raise
        raise _refused(shown, err) from None
    except OSError as err:
        os.close(fd)
        raise IOFailure.from_os_error(err, f"reading {shown}") from None
    except BaseException:
        os.close(fd)
        raise


def open_pair(old: str | os.PathLike[str], new: str | os.PathLike[str], *, trust: Sequence[PublicKey],
              threshold: int = 1, allow_unsigned: bool = False) -> tuple[VerifiedPack, VerifiedPack]:
    """Open two packs with the same trust options (both verified; the first closed on failure)."""
    a = open_verified(old, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    try:
        b = open_verified(new, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    except BaseException:
        a.close()
        raise
    return a, b
