"""mlpack.archive: the canonical encoding is byte-identical to CPython tarfile's PAX output."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpack import archive
from mlpack.archive import BLOCK, RECORD, Layout, Member, encode_header, parse_header
from mlpack.errors import VerificationError


def tarfile_header(name: str, size: int, mode: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.PAX_FORMAT)


names = st.text(alphabet=st.sampled_from("abcXYZ019._-/é日Ω"), min_size=1, max_size=220)
sizes = st.one_of(st.integers(0, 4096), st.sampled_from([8**11 - 1, 8**11, 9 * 2**30, 2**62]))


@given(name=names, size=sizes, mode=st.sampled_from([0o644, 0o755]), mtime=st.integers(0, 8**11 - 1))
@settings(max_examples=400, deadline=None)
def test_header_equals_tarfile_pax(name: str, size: int, mode: int, mtime: int) -> None:
    """The spec's encoding rule is what tarfile writes: a second, independent implementation."""
    assert encode_header(name, size, mode, mtime) == tarfile_header(name, size, mode, mtime)


def test_pax_only_when_needed() -> None:
    assert len(encode_header("short.txt", 5, 0o644, 0)) == BLOCK
    assert len(encode_header("x" * 101, 5, 0o644, 0)) == 3 * BLOCK  # pax header + records + ustar
    assert len(encode_header("café", 5, 0o644, 0)) == 3 * BLOCK  # non-ASCII names go into PAX
    assert len(encode_header("big", 8**11, 0o644, 0)) == 3 * BLOCK


def test_layout_is_a_valid_tar_that_tarfile_reads() -> None:
    members = [Member("a.txt", 3, 0o644), Member("d/" + "n" * 150, 700, 0o755), Member("z", 0, 0o644)]
    layout = Layout.plan(members, mtime=1234)
    buf = bytearray()
    for slot, data in zip(layout.slots, [b"abc", b"\x01" * 700, b""]):
        assert len(buf) == slot.offset
        buf += slot.header + data + b"\0" * archive.padding(len(data))
    buf += layout.trailer()
    assert len(buf) == layout.total and layout.total % RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(bytes(buf))) as tar:
        got = [(m.name, m.size, m.mode, m.mtime, m.isfile()) for m in tar.getmembers()]
    assert got == [(m.name, m.size, m.mode, 1234, True) for m in members]


def test_parse_header_reads_back_pax_overrides() -> None:
    name = "deep/" + "x" * 200
    data = encode_header(name, 8**11 + 5, 0o755, 7)
    parsed = parse_header(lambda off, n: data[off : off + n], 0, 10**13)
    assert parsed is not None
    assert (parsed.name, parsed.size, parsed.mode, parsed.mtime) == (name, 8**11 + 5, 0o755, 7)
    assert parsed.pax_keys == ("path", "size") and parsed.length == len(data)


def test_parse_header_zero_block_is_end() -> None:
    assert parse_header(lambda off, n: bytes(n), 0, 1024) is None


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h: h[:148] + b"0000000\0" + h[156:], "E_HEADER"),  # wrong checksum
        (lambda h: h[:124] + b"\x80" + h[125:], "E_HEADER"),  # base-256 size
        (lambda h: h[:124] + b"0000000009x\0" + h[136:], "E_HEADER"),  # non-octal
    ],
)
def test_parse_header_rejects_malformed_numbers(mutate, code) -> None:  # type: ignore[no-untyped-def]
    block = bytearray(mutate(encode_header("f", 10, 0o644, 0)))
    if code != "E_HEADER" or b"9x" in block:
        # keep the checksum right so that the number field itself is what fails
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(VerificationError) as info:
        parse_header(lambda off, n: bytes(block[off : off + n]), 0, 4096)
    assert info.value.code == code


def test_parse_header_bounds_pax_size_before_reading() -> None:
    """A PAX header declaring 1 GiB is refused from its header alone (no allocation)."""
    pax = archive._ustar(b"././@PaxHeader", 1 << 30, 0, 0, b"x")
    reads: list[int] = []

    def read_at(off: int, n: int) -> bytes:
        reads.append(n)
        return pax[off : off + n] if off < BLOCK else b""

    with pytest.raises(VerificationError) as info:
        parse_header(read_at, 0, 2 << 30)
    assert info.value.code == "E_LIMIT" and max(reads) == BLOCK
