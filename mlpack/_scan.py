"""Stream every member of a pack once: headers, padding, digests, format checks.

The engine behind verify and unpack (spec/verification.md, step 6). The layout of the
whole archive is known from the signed statement, so the work splits into independent
ranges: each is read with one ``pread`` into a private buffer, its headers compared
byte for byte, its data hashed (and, for unpack, written from that same buffer), and
its format checked only when its digest matched. Ranges of many small members go to
forked worker processes, so per-member Python work runs on every core; unpacking and
large members use threads, since hashing releases the GIL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import archive
from ._parallel import map_ranges, split
from .archive import BLOCK, Layout
from .digest import new_hasher
from .errors import VerificationError
from .formats import WINDOW, check_content, detect_format

__all__ = ["FORK_MIN_MEMBERS", "Mismatch", "Plan", "Result", "Sink", "scan"]

BATCH = 4 << 20  # members grouped into reads of about this size
CHUNK = 8 << 20  # streaming chunk for large members
FORK_MIN_MEMBERS = 512
_ZEROS = bytes(BLOCK)


class Mismatch(Exception):
    """A header differs from the canonical layout at slot ``index`` (diagnosed later)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class Result(NamedTuple):
    """One member's outcome: its digest and, when that digest matched, its format check.

    A tuple, because 20,000 of them cross the process-pool boundary as plain tuples.
    """

    index: int
    digest: str
    fmt: str | None = None
    fmt_error: VerificationError | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What every scan worker needs: the layout and the signed digest of each slot."""

    fd: int
    layout: Layout
    expected: tuple[str, ...]  # aligned with layout.slots; "" for the signature member
    algorithm: str


def _finish(plan: Plan, index: int, digest: str, size: int, head: memoryview | bytes,
            tail: memoryview | bytes, read_at: Callable[[int, int], bytes]) -> Result:
    """Format checks run only on bytes whose digest matched (spec step 8 after step 6)."""
    if digest != plan.expected[index]:
        return Result(index, digest)
    name = plan.layout.slots[index].member.name
    try:
        return Result(index, digest, check_content(name, size, head, tail, read_at))
    except VerificationError as err:
        return Result(index, digest, detect_format(name, head, size), err)


class Sink:
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


def _scan_batch(plan: Plan, indices: range, sink: Sink | None) -> list[Result]:
    """Members ``indices`` (contiguous) from one read: headers, padding, digests, formats."""
    slots = plan.layout.slots
    start, end = slots[indices[0]].offset, slots[indices[-1]].end
    buf = os.pread(plan.fd, end - start, start)
    view = memoryview(buf)
    results = []
    for index in indices:
        slot = slots[index]
        o = slot.offset - start
        if slot.end - start > len(buf) or view[o : o + slot.header_size] != slot.header:
            raise Mismatch(index)
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


def _scan_large(plan: Plan, index: int, sink: Sink | None) -> list[Result]:
    """One large member streamed in chunks through one private buffer (hashed = written)."""
    fd, slot = plan.fd, plan.layout.slots[index]
    if os.pread(fd, slot.header_size, slot.offset) != slot.header:
        raise Mismatch(index)
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
                Sink.write(out, chunk)
            if not head:
                head = bytes(chunk[:WINDOW])
            tail = (tail + bytes(chunk[-WINDOW:]))[-WINDOW:]
            pos += n
            remaining -= n
    finally:
        if out is not None:
            Sink.close(out, slot.member.mode)
    if any(os.pread(fd, archive.padding(size), pos)):
        raise VerificationError(f"non-zero padding after {name}", code="E_NONCANONICAL", member=name)
    start = slot.data_offset
    return [_finish(plan, index, hasher.hexdigest(), size, head, tail,
                    lambda off, n: os.pread(fd, n, start + off))]


def _run(plan: Plan, indices: range, sink: Sink | None = None) -> list[tuple[Any, ...]]:
    slot = plan.layout.slots[indices[0]]
    if len(indices) == 1 and slot.end - slot.offset > CHUNK:
        return [tuple(r) for r in _scan_large(plan, indices[0], sink)]
    return [tuple(r) for r in _scan_batch(plan, indices, sink)]


def _run_unpacking(context: tuple[Plan, Sink], indices: range) -> list[tuple[Any, ...]]:
    return _run(context[0], indices, context[1])


def scan(plan: Plan, sink: Sink | None, meanwhile: Callable[[], None]) -> dict[int, Result]:
    """Check every header and hash every member; raises on the first structural problem.

    Many small members go to forked processes, unpacking and large members to threads
    (:func:`map_ranges`). ``meanwhile`` runs on this thread while the workers hash.
    """
    slots = plan.layout.slots[1:]  # slot 0, the signature member, was read already
    ranges = split([s.end - s.offset for s in slots], batch=BATCH, alone=CHUNK, start=1)
    if sink is None:
        processes = len(plan.layout.slots) > FORK_MIN_MEMBERS
        rows = map_ranges(_run, plan, ranges, processes=processes, meanwhile=meanwhile)
    else:
        rows = map_ranges(_run_unpacking, (plan, sink), ranges, processes=False, meanwhile=meanwhile)
    return {row[0]: Result._make(row) for row in rows}
