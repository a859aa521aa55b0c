"""The canonical archive profile, mlpack-tar-v1 (spec/archive.md).

A pack is an uncompressed POSIX tar in which every byte is determined by the list of
(name, size, mode) and one mtime. :func:`encode_header` is the single source of that
encoding: the writer emits it and the verifier re-encodes and compares byte for byte,
so pax overrides, GNU records, sparse maps, links and trailing junk are all simply
"not canonical". :func:`parse_header` is a lenient decoder used only to *explain* a
mismatch (which error code to report); it never drives extraction.

    >>> layout = Layout.plan([Member(".mlpack/model.sig", 10, 0o644)], mtime=0)
    >>> layout.total
    10240
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import VerificationError

__all__ = [
    "BLOCK",
    "EOA",
    "MANIFEST_NAME",
    "MAX_OCTAL_SIZE",
    "RECORD",
    "SIGNATURE_NAME",
    "Layout",
    "Member",
    "ParsedHeader",
    "encode_header",
    "padding",
    "parse_header",
]

BLOCK = 512
RECORD = 20 * BLOCK
EOA = 2 * BLOCK
MAX_OCTAL_SIZE = 8**11  # sizes from 8 GiB on need a PAX "size" record
SIGNATURE_NAME = ".mlpack/model.sig"
MANIFEST_NAME = "mlpack.json"
PAX_NAME = b"././@PaxHeader"
MODES = (0o644, 0o755)
MAX_PAX = 64 * 1024


def padding(size: int) -> int:
    """Zero bytes that follow ``size`` bytes of data to reach a block boundary."""
    return -size % BLOCK


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


_ZERO_FIELD = b"0000000\0"
_MAGIC = b"ustar\x0000"
_TAIL = b"\0" * 100 + _MAGIC + b"\0" * 247  # linkname, magic, version, then NUL to the end


_REST = {flag: flag + _TAIL for flag in (b"0", b"x")}
_REST_SUM = {flag: sum(rest) for flag, rest in _REST.items()}


def _ustar(name: bytes, size: int, mode: int, mtime: int, typeflag: bytes) -> bytes:
    head = (
        name.ljust(100, b"\0")
        + _octal(mode, 8)
        + _ZERO_FIELD * 2
        + _octal(size, 12)
        + _octal(mtime, 12)
    )
    rest = _REST.get(typeflag) or typeflag + _TAIL
    checksum = sum(head) + 8 * 0x20 + _REST_SUM.get(typeflag, sum(rest))
    return head + b"%06o\0 " % checksum + rest


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def encode_header(name: str, size: int, mode: int, mtime: int) -> bytes:
    """The canonical header block(s) of a regular-file member.

    One ustar block, preceded by a PAX extended header only when the name is not
    ASCII or its UTF-8 form is longer than 100 bytes (``path``), or the size is 8 GiB
    or more (``size``). The ustar name field then holds the name in ASCII, each other
    character replaced by ``?``, cut at 100 bytes. This is exactly what CPython's
    ``tarfile`` writes for the same member in PAX format (tests hold the two equal).
    """
    raw = name.encode("utf-8")
    records = b""
    if len(raw) > 100 or not name.isascii():
        records += _pax_record("path", raw)
    if size >= MAX_OCTAL_SIZE:
        records += _pax_record("size", str(size).encode())
    ustar_name = name.encode("ascii", "replace")[:100]
    ustar = _ustar(ustar_name, 0 if size >= MAX_OCTAL_SIZE else size, mode, mtime, b"0")
    if not records:
        return ustar
    pax = _ustar(PAX_NAME, len(records), 0, 0, b"x")
    return pax + records + b"\0" * padding(len(records)) + ustar


def header_length(name: str, size: int) -> int:
    """``len(encode_header(name, size, ...))``, computed without encoding the common case."""
    if size < MAX_OCTAL_SIZE and name.isascii() and len(name) <= 100:
        return BLOCK
    return len(encode_header(name, size, 0o644, 0))


@dataclass(frozen=True, slots=True)
class Member:
    """One regular file of the archive, as the signed payload describes it."""

    name: str
    size: int
    mode: int


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a member lives in the archive: header bytes at ``offset``, data after them."""

    member: Member
    offset: int
    data_offset: int
    end: int
    mtime: int

    @classmethod
    def at(cls, member: Member, offset: int, mtime: int) -> Slot:
        data_offset = offset + header_length(member.name, member.size)
        return cls(member, offset, data_offset, data_offset + member.size + padding(member.size), mtime)

    @property
    def header(self) -> bytes:
        """The canonical header bytes (built on demand: planning needs only their length)."""
        return encode_header(self.member.name, self.member.size, self.member.mode, self.mtime)

    @property
    def header_size(self) -> int:
        return self.data_offset - self.offset


@dataclass(frozen=True, slots=True)
class Layout:
    """The exact byte layout of a canonical archive: every header and its offset."""

    slots: tuple[Slot, ...]
    mtime: int
    data_end: int
    total: int

    @classmethod
    def plan(cls, members: Sequence[Member], *, mtime: int) -> Layout:
        slots = []
        offset = 0
        for member in members:
            slot = Slot.at(member, offset, mtime)
            slots.append(slot)
            offset = slot.end
        data_end = offset
        total = data_end + EOA
        total += -total % RECORD
        return cls(tuple(slots), mtime, data_end, total)

    def trailer(self) -> bytes:
        """End-of-archive blocks plus record padding (all zero)."""
        return b"\0" * (self.total - self.data_end)


@dataclass(frozen=True, slots=True)
class ParsedHeader:
    """A leniently decoded header, for diagnosis only."""

    name: str
    size: int
    mode: int
    mtime: int
    typeflag: bytes
    length: int  # bytes the header (with any PAX member) occupies
    pax_keys: tuple[str, ...] = ()


def _num(field: bytes, what: str, offset: int) -> int:
    if field and field[0] & 0x80:
        raise VerificationError(f"base-256 {what} field in header at offset {offset}", code="E_HEADER")
    text = field.rstrip(b"\0 ").lstrip(b" ")
    if not text:
        return 0
    if any(c not in b"01234567" for c in text):
        raise VerificationError(f"non-octal {what} field in header at offset {offset}", code="E_HEADER")
    return int(text, 8)


def _parse_block(block: bytes, offset: int) -> ParsedHeader:
    if len(block) < BLOCK:
        raise VerificationError(f"archive ends inside a header at offset {offset}", code="E_TRUNCATED")
    stored = _num(block[148:156], "checksum", offset)
    computed = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    if stored != computed:
        raise VerificationError(f"bad header checksum at offset {offset}", code="E_HEADER")
    raw_name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0]
    if prefix:
        raw_name = prefix + b"/" + raw_name
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError(f"member name at offset {offset} is not UTF-8", code="E_NAME") from None
    return ParsedHeader(
        name=name,
        size=_num(block[124:136], "size", offset),
        mode=_num(block[100:108], "mode", offset),
        mtime=_num(block[136:148], "mtime", offset),
        typeflag=block[156:157],
        length=BLOCK,
    )


def _parse_pax(data: bytes, offset: int) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0 or not data[pos:space].isdigit():
            raise VerificationError(f"malformed PAX record at offset {offset}", code="E_HEADER")
        length = int(data[pos:space])
        if length <= space - pos + 1 or pos + length > len(data) or data[pos + length - 1] != 0x0A:
            raise VerificationError(f"malformed PAX record at offset {offset}", code="E_HEADER")
        key, sep, value = data[space + 1 : pos + length - 1].partition(b"=")
        if not sep:
            raise VerificationError(f"malformed PAX record at offset {offset}", code="E_HEADER")
        records[key.decode("utf-8", "replace")] = value
        pos += length
    return records


def parse_header(read_at: object, offset: int, file_size: int) -> ParsedHeader | None:
    """Decode the member header at ``offset`` for diagnosis; ``None`` at a zero block.

    ``read_at(offset, n)`` returns up to ``n`` bytes. PAX extended headers are decoded
    (bounded to 64 KiB before anything is allocated) so that a PAX ``path`` or ``size``
    override is reported as what it claims to be.
    """
    assert callable(read_at)
    block = read_at(offset, BLOCK)
    if len(block) == BLOCK and not any(block):
        return None
    head = _parse_block(block, offset)
    if head.typeflag not in (b"x", b"g"):
        return head
    if head.size > MAX_PAX:
        raise VerificationError(
            f"PAX header of {head.size} bytes at offset {offset} exceeds {MAX_PAX}", code="E_LIMIT"
        )
    data_len = head.size + padding(head.size)
    if offset + BLOCK + data_len > file_size:
        raise VerificationError(f"archive ends inside a PAX header at offset {offset}", code="E_TRUNCATED")
    records = _parse_pax(read_at(offset + BLOCK, head.size), offset)
    if head.typeflag == b"g":
        raise VerificationError(f"global PAX header at offset {offset}", code="E_NONCANONICAL")
    real = _parse_block(read_at(offset + BLOCK + data_len, BLOCK), offset + BLOCK + data_len)
    name, size = real.name, real.size
    if "path" in records:
        try:
            name = records["path"].decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError(f"PAX path at offset {offset} is not UTF-8", code="E_NAME") from None
    if "size" in records:
        if not records["size"].isdigit():
            raise VerificationError(f"bad PAX size at offset {offset}", code="E_HEADER")
        size = int(records["size"])
    return ParsedHeader(
        name=name,
        size=size,
        mode=real.mode,
        mtime=real.mtime,
        typeflag=real.typeflag,
        length=BLOCK + data_len + BLOCK,
        pax_keys=tuple(sorted(records)),
    )
