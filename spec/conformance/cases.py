"""Hostile (and valid) mlpack packs built in code: the conformance case table.

In the style of CPython's ``test_tarfile`` ``ArchiveMaker``: packs are not hand-made
binaries but are built here from parts, so every case says in a few lines what it
is. :class:`HostileArchive` builds a pack from

* the signed content: files (name, bytes, executable bit), the ``mlpack.json``
  (generated, or given as a dict or raw bytes) and the in-toto Statement built from
  them (or any dict / raw bytes, to express invalid payloads; an object with a
  ``to_bytes()`` method such as ``mlpack.signing.Statement`` is accepted too);
* the signature member: an OMS v1.0 Sigstore bundle, signed by zero or more test
  keys, with every field overridable (payload type, hint, key ids, signatures,
  the payload that was actually signed);
* the archive: a list of :class:`RawMember` (any typeflag, name, size, mode, uid,
  mtime, linkname, uname, magic, PAX records, GNU long-name records, bad checksum,
  base-256 or non-octal numbers, non-zero padding), then the end-of-archive trailer;
  bytes can be prepended or appended and the result truncated.

This module deliberately does NOT import ``mlpack``: it re-implements the encoding of
design brief v1.0 (ustar headers, PAX records, the Statement, DSSE PAE, the bundle)
independently, so the corpus is a cross-check of the implementation rather than a
copy of it. ``tests/test_conformance.py`` also checks that an unsigned pack built here
is byte-identical to what ``mlpack pack`` writes.

:data:`CASES` is the table. Each :class:`Case` has a name, a description, the build
function (``build(keys) -> bytes | HostileArchive``), the verify options (trusted keys,
``allow_unsigned``, ``threshold``) and the expected verdict and error code.
``ref`` points at the numbered list "(a) Hostile-input test cases" of
``/work/shared/design/security.md`` (``a1`` ... ``a38``) where one applies.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
import pickle
import random
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "BLOCK",
    "CASES",
    "Case",
    "Header",
    "HostileArchive",
    "Keys",
    "RawMember",
    "materialize",
    "pax_records",
    "regular",
    "safetensors_bytes",
]

# -- constants of the format (design brief v1.0) -------------------------------------

BLOCK = 512
RECORD = 20 * BLOCK
SIG_NAME = ".mlpack/model.sig"
MANIFEST_NAME = "mlpack.json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
HASH_TYPES = {"sha256": "sha256", "blake2b": "blake2b", "blake3": "blake3"}  # algorithm -> hash_type (= algorithm)
MAX_OCTAL = 8**11
GiB = 1 << 30
MiB = 1 << 20

# -- keys ------------------------------------------------------------------------------


@dataclass
class Keys:
    """The TEST-ONLY key pairs the corpus is signed with, by role (``main``, ``other``)."""

    private: dict[str, ec.EllipticCurvePrivateKey]
    public_pem: dict[str, bytes]
    public_files: dict[str, str] = field(default_factory=dict)  # role -> path relative to cases.json

    @classmethod
    def from_pems(cls, private_pems: dict[str, bytes], public_files: dict[str, str] | None = None) -> Keys:
        private = {}
        public = {}
        for role, pem in private_pems.items():
            key = serialization.load_pem_private_key(pem, None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            private[role] = key
            public[role] = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(private, public, dict(public_files or {}))

    def hint(self, role: str) -> str:
        """OMS public-key hint: hex SHA-256 of the SubjectPublicKeyInfo PEM."""
        return hashlib.sha256(self.public_pem[role]).hexdigest()

    def sign(self, role: str, message: bytes) -> bytes:
        return self.private[role].sign(message, ec.ECDSA(hashes.SHA256()))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 " + str(len(t)).encode() + b" " + t + b" " + str(len(payload)).encode() + b" " + payload


# -- tar encoding -------------------------------------------------------------------------

Num = int | bytes  # an int is written canonically (zero-padded octal + NUL); bytes are raw


def octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def base256(value: int, width: int) -> bytes:
    """GNU base-256 number: first byte 0x80 (positive) or 0xff (negative), big-endian two's complement."""
    raw = (value % (1 << (8 * width))).to_bytes(width, "big")
    return bytes([0x80 if value >= 0 else 0xFF]) + raw[1:]


def _field(value: Num | str, width: int) -> bytes:
    if isinstance(value, int):
        return octal(value, width)
    raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return raw[:width].ljust(width, b"\0")


@dataclass
class Header:
    """One 512-byte tar header block; every field can be any value (ints: canonical octal)."""

    name: bytes | str
    mode: Num = 0o644
    uid: Num = 0
    gid: Num = 0
    size: Num = 0
    mtime: Num = 0
    typeflag: bytes = b"0"
    linkname: bytes | str = b""
    magic: bytes = b"ustar\0"
    version: bytes = b"00"
    uname: bytes = b""
    gname: bytes = b""
    devmajor: Num | str = b""  # canonical: 8 NUL (as CPython tarfile writes in PAX format)
    devminor: Num | str = b""
    prefix: bytes | str = b""
    chksum: int | bytes | None = None  # None: correct checksum; int: that value; bytes: raw field
    patch: dict[int, bytes] = field(default_factory=dict)  # raw bytes written at offsets (GNU fields)

    def encode(self) -> bytes:
        h = bytearray(BLOCK)
        h[0:100] = _field(self.name, 100)
        h[100:108] = _field(self.mode, 8)
        h[108:116] = _field(self.uid, 8)
        h[116:124] = _field(self.gid, 8)
        h[124:136] = _field(self.size, 12)
        h[136:148] = _field(self.mtime, 12)
        h[148:156] = b" " * 8
        h[156:157] = self.typeflag[:1].ljust(1, b"\0")
        h[157:257] = _field(self.linkname, 100)
        h[257:263] = _field(self.magic, 6)
        h[263:265] = _field(self.version, 2)
        h[265:297] = _field(self.uname, 32)
        h[297:329] = _field(self.gname, 32)
        h[329:337] = _field(self.devmajor, 8)
        h[337:345] = _field(self.devminor, 8)
        h[345:500] = _field(self.prefix, 155)
        for offset, raw in self.patch.items():
            h[offset : offset + len(raw)] = raw
        if self.chksum is None:
            h[148:156] = b"%06o\0 " % sum(h)
        elif isinstance(self.chksum, int):
            h[148:156] = b"%06o\0 " % self.chksum
        else:
            h[148:156] = _field(self.chksum, 8)
        return bytes(h)


def pax_records(records: list[tuple[str, bytes | str]]) -> bytes:
    """PAX extended header data: ``"%d %s=%s\\n"``, %d counting the whole record."""
    out = b""
    for key, value in records:
        v = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
        body = b" " + key.encode() + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def zero_pad(n: int) -> bytes:
    return b"\0" * (-n % BLOCK)


@dataclass
class RawMember:
    """One archive member: optional GNU long-name record, optional PAX header, header, data.

    ``label`` is how hooks find it (usually the file name it stands for).
    """

    label: str
    header: Header | bytes
    data: bytes = b""
    pax: list[tuple[str, bytes | str]] | bytes | None = None  # records, or raw extended-header data
    pax_header: Header | None = None  # the PAX member's own header (default: canonical for the data)
    pax_pad: bytes | None = None  # padding after the PAX data (default: zeros)
    gnu_longname: bytes | None = None  # GNU 'L' record content placed before the header
    pad: bytes | None = None  # bytes after the data (default: zero padding to the block)
    mtime: int = 0

    def encode(self) -> bytes:
        out = b""
        if self.gnu_longname is not None:
            data = self.gnu_longname
            out += Header(b"././@LongLink", size=len(data), mtime=self.mtime, typeflag=b"L").encode()
            out += data + zero_pad(len(data))
        if self.pax is not None:
            data = self.pax if isinstance(self.pax, bytes) else pax_records(self.pax)
            head = self.pax_header or Header(b"././@PaxHeader", mode=0, size=len(data), mtime=0, typeflag=b"x")
            out += head.encode() + data + (zero_pad(len(data)) if self.pax_pad is None else self.pax_pad)
        out += self.header if isinstance(self.header, bytes) else self.header.encode()
        out += self.data + (zero_pad(len(self.data)) if self.pad is None else self.pad)
        return out


def regular(name: str, data: bytes, *, mode: int = 0o644, mtime: int = 0, size: int | None = None,
            label: str | None = None) -> RawMember:
    """The canonical member for a regular file (PAX ``path``/``size`` records only when needed).

    A PAX ``path`` record when the name is not ASCII or longer than 100 UTF-8 bytes; the
    ustar name field then holds the name in ASCII with ``?`` for every other character,
    cut at 100 bytes. A PAX ``size`` record from 8 GiB. The PAX member itself has mode 0
    and mtime 0. ``size`` declares a size other than ``len(data)`` (a huge declared
    member whose data is absent, for instance).
    """
    raw = name.encode("utf-8", "surrogatepass")
    size = len(data) if size is None else size
    records: list[tuple[str, bytes | str]] = []
    if len(raw) > 100 or not name.isascii():
        records.append(("path", raw))
    if size >= MAX_OCTAL:
        records.append(("size", str(size)))
    ustar_name = name.encode("ascii", "replace")[:100]
    header = Header(ustar_name, mode=mode, size=0 if size >= MAX_OCTAL else size, mtime=mtime)
    return RawMember(label or name, header, data, pax=records or None, mtime=mtime)


def special(name: str, typeflag: bytes, *, linkname: str = "", mode: int = 0o644, mtime: int = 0,
            data: bytes = b"", **fields: Any) -> RawMember:
    """A non-regular member (link, device, FIFO, directory, sparse ...)."""
    header = Header(name, mode=mode, size=len(data), mtime=mtime, typeflag=typeflag, linkname=linkname,
                    **fields)
    return RawMember(name, header, data, mtime=mtime)


def trailer(length: int) -> bytes:
    """End-of-archive: two zero blocks, then zeros up to a multiple of 10240."""
    total = length + 2 * BLOCK
    return b"\0" * (2 * BLOCK + (-total % RECORD))


# -- content helpers ---------------------------------------------------------------------


def digest(algorithm: str, data: bytes) -> str:
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm == "blake2b":
        return hashlib.blake2b(data).hexdigest()
    if algorithm == "blake3":
        import blake3

        return blake3.blake3(data).hexdigest()  # type: ignore[no-any-return]
    return hashlib.new(algorithm, data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: keep them as JSON escapes
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]] | None = None, *,
                      header: Any = None, raw_header: bytes | None = None, data: bytes | None = None,
                      length: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length, JSON header, tensor data.

    Give ``tensors`` (name -> (dtype, shape, bytes)) for a valid file, or ``header``
    (any JSON value) / ``raw_header`` plus ``data`` for a broken one; ``length``
    overrides the declared header length.
    """
    if raw_header is None:
        if header is None:
            header = {}
            offset = 0
            buf = b""
            for name, (dtype, shape, content) in (tensors or {}).items():
                header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(content)]}
                offset += len(content)
                buf += content
            data = buf if data is None else data
        raw_header = json.dumps(header, separators=(",", ":")).encode()
        raw_header += b" " * (-len(raw_header) % 8)
    n = len(raw_header) if length is None else length
    return struct.pack("<Q", n) + raw_header + (data or b"")


SAFETENSORS_OK = safetensors_bytes({
    "layer.bias": ("F32", [2], struct.pack("<2f", 0.5, -0.5)),
    "layer.weight": ("F32", [2, 2], struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)),
})


class _Reduce:
    """Pickles as a call of os.system: the classic malicious-pickle shape (never loaded here)."""

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("echo pwned-by-pickle",))


def malicious_pickle(protocol: int) -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0], "x": _Reduce()}, protocol=protocol)


def torch_style_zip() -> bytes:
    """What torch.save writes: a zip with ``archive/data.pkl`` (stored, fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in (("archive/data.pkl", malicious_pickle(2)), ("archive/version", b"3\n"),
                              ("archive/data/0", b"\0" * 16)):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, content)
    return buf.getvalue()


def npy_object_array() -> bytes:
    """A .npy (format 1.0) whose dtype is object: its data is a pickle."""
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + malicious_pickle(2)


CODE_CANARY_ENV = "MLPACK_CONFORMANCE_CANARY"


def _canary_code(what: str) -> bytes:
    return (
        "# If mlpack ever imports or executes pack content, this writes the canary file.\n"
        "import os, pathlib\n"
        f"_p = os.environ.get({CODE_CANARY_ENV!r})\n"
        f"if _p:\n    pathlib.Path(_p).write_text({('pack code ran: ' + what)!r})\n"
    ).encode()


# -- the builder ---------------------------------------------------------------------------

_DEFAULT = object()
MembersHook = Callable[[list[RawMember]], list[RawMember]]


class HostileArchive:
    """Builds a pack (valid or not) from signed content, a bundle and raw members.

    Typical use::

        arc = HostileArchive(keys)
        arc.add("weights.safetensors", SAFETENSORS_OK, weights=True)
        arc.members_hook = lambda ms: ms + [special("l", b"2", linkname="x")]
        data = arc.build()
    """

    def __init__(self, keys: Keys, *, signers: tuple[str, ...] = ("main",), mtime: int = 0,
                 algorithm: str = "sha256", pack_name: str = "conformance-model") -> None:
        self.keys = keys
        self.signers = list(signers)
        self.mtime = mtime
        self.algorithm = algorithm
        self.pack_name = pack_name
        self.files: dict[str, tuple[bytes, bool]] = {}
        self.weights: list[str] = []
        self.manifest: bytes | dict[str, Any] | None = None  # None: generated
        self.manifest_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.payload: Any = None  # None: built from the files; dict, bytes or obj.to_bytes()
        self.payload_hook: Callable[[dict[str, Any]], Any] | None = None
        self.signed_payload: bytes | None = None  # what the signatures cover (default: the payload)
        self.payload_type = PAYLOAD_TYPE  # envelope field
        self.signed_payload_type: str | None = None  # type inside PAE (default: payload_type)
        self.hint: Any = _DEFAULT  # _DEFAULT: first signer's; None: publicKey {}; str: that hint
        self.signatures_hook: Callable[[list[dict[str, str]]], list[Any]] | None = None
        self.bundle_hook: Callable[[dict[str, Any]], Any] | None = None
        self.members_hook: MembersHook | None = None
        self.trailer: bytes | Callable[[bytes], bytes] | None = None  # None: canonical; callable(body)
        self.offsets: dict[str, tuple[int, int]] = {}  # after build(): label -> (member offset, data offset)
        self.prepend = b""
        self.append = b""
        self.truncate: int | None = None

    # signed content
    def add(self, name: str, data: bytes, *, executable: bool = False, weights: bool = False) -> HostileArchive:
        self.files[name] = (data, executable)
        if weights:
            self.weights.append(name)
        return self

    def manifest_dict(self) -> dict[str, Any]:
        others = {n: d for n, (d, _x) in self.files.items() if n != MANIFEST_NAME}
        doc: dict[str, Any] = {
            "mlpack": "1.1",
            "name": self.pack_name,
            "files": {"count": len(others), "size": sum(len(d) for d in others.values())},
        }
        if self.weights:
            doc["weights"] = [{"path": n, "format": "safetensors", "size": len(others[n])}
                              for n in sorted(self.weights, key=lambda n: n.encode())]
        return self.manifest_hook(doc) if self.manifest_hook else doc

    def manifest_bytes(self) -> bytes:
        if isinstance(self.manifest, bytes):
            return self.manifest
        return canonical_json(self.manifest if self.manifest is not None else self.manifest_dict()) + b"\n"

    def signed_files(self) -> dict[str, tuple[bytes, bool]]:
        """Every signed file, mlpack.json included (unless the payload is given)."""
        files = dict(self.files)
        files.setdefault(MANIFEST_NAME, (self.manifest_bytes(), False))
        return files

    def archive_order(self) -> list[str]:
        names = [n for n in self.signed_files() if n != MANIFEST_NAME]
        return [MANIFEST_NAME] + sorted(names, key=lambda n: n.encode("utf-8", "surrogatepass"))

    def statement(self) -> dict[str, Any]:
        files = self.signed_files()
        names = sorted(files, key=lambda n: tuple(n.split("/")))
        digests = [digest(self.algorithm, files[n][0]) for n in names]
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.pack_name, "digest": {"sha256": root_digest(digests)}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "serialization": {"method": "files", "hash_type": HASH_TYPES.get(self.algorithm, self.algorithm),
                                  "allow_symlinks": False, "ignore_paths": [SIG_NAME]},
                "resources": [{"name": n, "algorithm": self.algorithm, "digest": d}
                              for n, d in zip(names, digests)],
                "mlpack": {"version": "1.0", "archive": "mlpack-tar-v1", "mtime": self.mtime,
                           "sizes": [len(files[n][0]) for n in names],
                           "executable": sorted(n for n in names if files[n][1])},
            },
        }

    def payload_bytes(self) -> bytes:
        value = self.payload if self.payload is not None else self.statement()
        if self.payload_hook is not None:
            value = self.payload_hook(copy.deepcopy(value) if isinstance(value, dict) else value)
        if isinstance(value, bytes):
            return value
        if hasattr(value, "to_bytes"):
            return value.to_bytes()  # type: ignore[no-any-return]
        return canonical_json(value)

    # signature member
    def bundle_dict(self, payload: bytes) -> dict[str, Any]:
        signed = self.signed_payload if self.signed_payload is not None else payload
        ptype = self.signed_payload_type if self.signed_payload_type is not None else self.payload_type
        message = pae(ptype, signed)
        signatures: list[Any] = [{"sig": base64.b64encode(self.keys.sign(r, message)).decode(), "keyid": ""}
                                 for r in self.signers]
        if self.signatures_hook is not None:
            signatures = self.signatures_hook(signatures)
        if self.hint is _DEFAULT:
            public_key = {"hint": self.keys.hint(self.signers[0])} if self.signers else {}
        elif self.hint is None:
            public_key = {}
        else:
            public_key = {"hint": self.hint}
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": public_key, "tlogEntries": []},
            "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": self.payload_type,
                             "signatures": signatures},
        }

    def bundle_bytes(self) -> bytes:
        value: Any = self.bundle_dict(self.payload_bytes())
        if self.bundle_hook is not None:
            value = self.bundle_hook(value)
        if isinstance(value, bytes):
            return value
        return json.dumps(value, separators=(",", ":")).encode()

    # archive
    def member(self, name: str, data: bytes | None = None, **kw: Any) -> RawMember:
        """The canonical member of signed file ``name`` (optionally with other data)."""
        content, executable = self.signed_files()[name]
        kw.setdefault("mode", 0o755 if executable else 0o644)
        kw.setdefault("mtime", self.mtime)
        return regular(name, content if data is None else data, **kw)

    def members(self) -> list[RawMember]:
        bundle = self.bundle_bytes()
        members = [regular(SIG_NAME, bundle, mtime=self.mtime)]
        members += [self.member(n) for n in self.archive_order()]
        return self.members_hook(members) if self.members_hook else members

    def build(self) -> bytes:
        body = b""
        self.offsets = {}
        for m in self.members():
            enc = m.encode()
            data_at = len(body) + len(enc) - len(m.data) - (len(m.pad) if m.pad is not None else
                                                            len(zero_pad(len(m.data))))
            self.offsets.setdefault(m.label, (len(body), data_at))
            body += enc
        if self.trailer is None:
            body += trailer(len(body))
        elif callable(self.trailer):
            body += self.trailer(body)
        else:
            body += self.trailer
        data = self.prepend + body + self.append
        return data if self.truncate is None else data[: self.truncate]

    def expected_tree(self) -> dict[str, dict[str, Any]]:
        """For a valid pack: the files unpack must produce (name -> sha256, size, executable)."""
        return {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "executable": x}
                for n, (d, x) in sorted(self.signed_files().items())}


def root_digest(digests_hex: list[str]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests_hex)).hexdigest()


def fix_root(doc: dict[str, Any]) -> dict[str, Any]:
    """Recompute subject digest after a payload edit (so only the intended rule breaks)."""
    doc["subject"][0]["digest"]["sha256"] = root_digest([r["digest"] for r in doc["predicate"]["resources"]])
    return doc


def index_of(members: list[RawMember], label: str) -> int:
    return next(i for i, m in enumerate(members) if m.label == label)


def insert_after(label: str, *new: RawMember) -> MembersHook:
    def hook(members: list[RawMember]) -> list[RawMember]:
        i = index_of(members, label) + 1
        return members[:i] + list(new) + members[i:]
    return hook


def replace(label: str, fn: Callable[[RawMember], RawMember | list[RawMember]]) -> MembersHook:
    def hook(members: list[RawMember]) -> list[RawMember]:
        i = index_of(members, label)
        new = fn(members[i])
        return members[:i] + (new if isinstance(new, list) else [new]) + members[i + 1 :]
    return hook


def edit_header(label: str, **changes: Any) -> MembersHook:
    """Change fields of one member's ustar header (checksum recomputed unless given)."""
    def fn(m: RawMember) -> RawMember:
        assert isinstance(m.header, Header)
        h = copy.deepcopy(m.header)
        for k, v in changes.items():
            setattr(h, k, v)
        return RawMember(m.label, h, m.data, m.pax, m.pax_header, m.pax_pad, m.gnu_longname, m.pad, m.mtime)
    return replace(label, fn)


# -- the base pack most cases start from -----------------------------------------------------

README = b"# conformance model\n\nA tiny model used by the mlpack conformance corpus.\n"
CONFIG = b'{"hidden": 2, "layers": 1}\n'


def base(keys: Keys, **kw: Any) -> HostileArchive:
    """mlpack.json, README.md, config.json, weights.safetensors (archive order)."""
    arc = HostileArchive(keys, **kw)
    arc.add("README.md", README)
    arc.add("config.json", CONFIG)
    arc.add("weights.safetensors", SAFETENSORS_OK, weights=True)
    return arc


def named(keys: Keys, *names: str, **kw: Any) -> HostileArchive:
    """A pack whose signed files are ``names`` (plus mlpack.json), each with small text content."""
    arc = HostileArchive(keys, **kw)
    for i, n in enumerate(names):
        arc.add(n, b"file %d\n" % i)
    return arc


# -- the case table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    build: Callable[[Keys], Any]
    verdict: str  # verified | unsigned | failed
    code: str | None
    ref: str | None = None  # security.md (a) item, e.g. "a12"
    trust: tuple[str, ...] = ("main",)
    allow_unsigned: bool = False
    threshold: int = 1
    member: str | None = None  # expected error member, when it is certain
    note: str | None = None  # why this code (where the brief is not explicit)
    also: tuple[str, ...] = ()  # other codes accepted where the brief and spec/*.md disagree


CASES: list[Case] = []


def case(name: str, verdict: str, code: str | None, description: str, **kw: Any) -> Callable[[Callable[[Keys], Any]], Callable[[Keys], Any]]:
    def deco(fn: Callable[[Keys], Any]) -> Callable[[Keys], Any]:
        assert all(c.name != name for c in CASES), name
        CASES.append(Case(name, description, fn, verdict, code, **kw))
        return fn
    return deco


def add_case(name: str, verdict: str, code: str | None, description: str, build: Callable[[Keys], Any],
             **kw: Any) -> None:
    case(name, verdict, code, description, **kw)(build)


def with_(arc: HostileArchive, **attrs: Any) -> HostileArchive:
    for k, v in attrs.items():
        setattr(arc, k, v)
    return arc


def materialize(result: bytes | HostileArchive) -> tuple[bytes, dict[str, dict[str, Any]] | None]:
    if isinstance(result, HostileArchive):
        return result.build(), result.expected_tree()
    return result, None


# ---- valid packs ----

add_case("valid-minimal", "verified", None,
         "Smallest useful pack: mlpack.json and one file, signed by the trusted key.",
         lambda k: named(k, "hello.txt"))
add_case("valid-base", "verified", None,
         "The base pack most cases start from: README.md, config.json, weights.safetensors (listed as weights).",
         base)
add_case("valid-long-name-pax-path", "verified", None,
         "A file name longer than 100 bytes, stored with a PAX extended header holding only `path`.",
         lambda k: named(k, "checkpoints/" + "long-directory-name-" * 5 + "/weights-final-epoch-0100.bin"))
add_case("valid-unsigned-allowed", "unsigned", None,
         "Unsigned pack (signatures [], publicKey {}) verified with allow_unsigned: verdict unsigned.",
         lambda k: base(k, signers=()), allow_unsigned=True)
add_case("valid-empty-file", "verified", None,
         "A pack containing a file of 0 bytes (no data blocks).",
         lambda k: named(k, "hello.txt").add("empty.txt", b""))
add_case("valid-executable", "verified", None,
         "A file with mode 0755, listed in predicate.mlpack.executable.",
         lambda k: named(k, "hello.txt").add("run.sh", b"#!/bin/sh\necho hi\n", executable=True))
add_case("valid-nested-dirs", "verified", None,
         "Files in nested directories; archive order (UTF-8 bytes) differs from resource order (components).",
         lambda k: named(k, "a/b/c.txt", "a-b.txt", "a/b.txt", "a/b-c/d.txt", "z.txt"))
add_case("valid-unicode-names", "verified", None,
         "Non-ASCII portable names (NFC): café.txt, 模型/权重.bin.",
         lambda k: named(k, "caf\u00e9.txt", "\u6a21\u578b/\u6743\u91cd.bin"))
add_case("valid-mtime-nonzero", "verified", None,
         "Packed with SOURCE_DATE_EPOCH=1700000000: every header and predicate.mlpack.mtime carry it.",
         lambda k: base(k, mtime=1_700_000_000))
add_case("valid-blake2b", "verified", None, "hash_type and algorithm blake2b.",
         lambda k: base(k, algorithm="blake2b"))
add_case("valid-blake3", "verified", None, "hash_type blake3 / algorithm blake3.",
         lambda k: base(k, algorithm="blake3"))
add_case("valid-threshold-2", "verified", None,
         "Signed by two distinct trusted keys, threshold 2.",
         lambda k: base(k, signers=("main", "other")), trust=("main", "other"), threshold=2)
add_case("valid-extra-untrusted-signature", "verified", None,
         "Signed by the trusted key and by an untrusted one; threshold 1 is met by the trusted key.",
         lambda k: base(k, signers=("other", "main")))
add_case("valid-no-hint", "verified", None,
         "Signed pack whose bundle has publicKey {} (hints are never needed: every trusted key is tried).",
         lambda k: with_(base(k), hint=None))
add_case("valid-wrong-hint", "verified", None,
         "The hint names the untrusted key but the trusted key signed: hints are never trusted.",
         lambda k: with_(base(k), hint=k.hint("other")))
add_case("valid-keyid-set", "verified", None,
         "keyid set to an arbitrary string: keyids are ignored.",
         lambda k: with_(base(k), signatures_hook=lambda s: [dict(x, keyid="some-key-id") for x in s]))
add_case("valid-manifest-newer-minor", "verified", None,
         "mlpack.json version 1.7 with unknown top-level fields: accepted.",
         lambda k: with_(base(k), manifest_hook=lambda d: dict(d, mlpack="1.7", future_field={"x": 1},
                                                               future_section={"a": [1, None]})))
add_case("valid-manifest-1.0-reserved-content", "verified", None,
         "mlpack.json version 1.0 with content in reserved sections: it has no meaning and is ignored.",
         lambda k: with_(base(k), manifest_hook=lambda d: dict(d, mlpack="1.0",
                                                               metrics={"anything": [1, 2, {"a": None}]},
                                                               hardware={"machine": 3})))
add_case("manifest-1.1-bad-section", "failed", "E_MANIFEST",
         "mlpack.json version 1.1 whose hardware section breaks its schema (machine is a number).",
         lambda k: with_(base(k), manifest_hook=lambda d: dict(d, mlpack="1.1", hardware={"machine": 3})))
add_case("valid-manifest-only", "verified", None,
         "The only signed file is mlpack.json (files.count 0): the brief requires >= 1 resource and mlpack.json.",
         lambda k: HostileArchive(k),
         note="`mlpack pack` refuses an empty directory, but the verifier's rule is only '>= 1 resource'.")


@case("valid-code-files-not-run", "verified", None,
      "sitecustomize.py, conftest.py, setup.py, __init__.py and a .pth file in a valid pack: verify/unpack "
      "report integrity only; each file writes a canary (path from $MLPACK_CONFORMANCE_CANARY) if ever run.",
      ref="a38")
def _code_files(k: Keys) -> HostileArchive:
    arc = named(k, "README.md")
    for n in ("sitecustomize.py", "conftest.py", "setup.py", "usercustomize.py", "pkg/__init__.py"):
        arc.add(n, _canary_code(n))
    arc.add("zz-evil.pth", (f"import os; _p = os.environ.get({CODE_CANARY_ENV!r}); "
                            "_p and open(_p, 'w').write('pack code ran: .pth')\n").encode())
    return arc


# ---- file-level: not a pack at all ----

add_case("empty-file", "failed", "E_HEADER", "A 0-byte file (step 1: shorter than 1536 bytes).", lambda k: b"")
add_case("too-short", "failed", "E_HEADER", "1024 zero bytes: shorter than the 1536-byte minimum.",
         lambda k: b"\0" * 1024)
add_case("trailing-7-bytes", "failed", "E_TRUNCATED",
         "7 bytes appended after a valid pack: the size is not a multiple of 512 (step 1).",
         lambda k: with_(base(k), append=b"garbage"), ref="a21")
add_case("zero-record", "failed", "E_HEADER", "10240 zero bytes: an empty tar archive, no signature member.",
         lambda k: b"\0" * RECORD)
add_case("random-garbage", "failed", "E_HEADER", "4096 random bytes (fixed seed).",
         lambda k: random.Random(20240501).randbytes(4096))


@case("zip-file", "failed", "E_HEADER", "A zip archive holding the pack's files.")
def _zip_file(k: Keys) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for n, (d, _x) in base(k).signed_files().items():
            z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return buf.getvalue().ljust(2048, b"\0")


add_case("gzip-pack", "failed", "E_HEADER",
         "A valid pack compressed with gzip (compressed packs are not part of v1).",
         lambda k: gzip.compress(base(k).build(), mtime=0).ljust(2048, b"\0"))


# ---- signature member and signatures ----

add_case("unsigned-not-allowed", "failed", "E_UNSIGNED", "Unsigned pack (signatures []) without allow_unsigned.",
         lambda k: base(k, signers=()), ref="a27", member=SIG_NAME)
add_case("unsigned-allowed-tampered", "failed", "E_DIGEST",
         "Unsigned pack, allow_unsigned, but config.json does not match its listed digest.",
         lambda k: with_(base(k, signers=()), members_hook=replace(
             "config.json", lambda m: regular("config.json", CONFIG.replace(b"2", b"9")))),
         allow_unsigned=True, member="config.json")
add_case("signed-untrusted-allow-unsigned", "failed", "E_UNTRUSTED_KEY",
         "Signed by an untrusted key, verified with allow_unsigned: a bundle with signatures is always checked.",
         lambda k: base(k, signers=("other",)), allow_unsigned=True)
add_case("no-signature-member", "failed", "E_UNSIGNED",
         "A canonical tar of the files with no .mlpack/model.sig member (first member is mlpack.json).",
         lambda k: with_(base(k), members_hook=lambda ms: ms[1:]), ref="a27")
add_case("signature-member-second", "failed", "E_UNSIGNED",
         "The signature member is member 1 instead of member 0.",
         lambda k: with_(base(k), members_hook=lambda ms: [ms[1], ms[0]] + ms[2:]), ref="a27")
add_case("prepended-tar-member", "failed", "E_UNSIGNED",
         "A canonical regular member (install.sh) prepended before the signature member.",
         lambda k: with_(base(k), members_hook=lambda ms: [regular("install.sh", b"echo hi\n")] + ms), ref="a27")


@case("plain-tarfile-archive", "failed", "E_UNSIGNED",
      "A POSIX tar written by Python's tarfile module from the same files (not a pack).", ref="a27")
def _plain_tar(k: Keys) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for n, (d, _x) in base(k).signed_files().items():
            info = tarfile.TarInfo(n)
            info.size, info.mtime, info.mode = len(d), 0, 0o644
            t.addfile(info, io.BytesIO(d))
    return buf.getvalue()


add_case("untrusted-key", "failed", "E_UNTRUSTED_KEY",
         "Valid signature by a key not in the trust set (hint names that key).",
         lambda k: base(k, signers=("other",)), ref="a28", member=SIG_NAME)
add_case("untrusted-key-keyid-claims-trusted", "failed", "E_UNTRUSTED_KEY",
         "Signed by the untrusted key; keyid set to the trusted key's fingerprint (keyids are ignored).",
         lambda k: with_(base(k, signers=("other",)), signatures_hook=lambda s: [
             dict(x, keyid="sha256:" + k.hint("main")) for x in s]), ref="a28")
add_case("untrusted-key-hint-claims-trusted", "failed", "E_BAD_SIGNATURE",
         "Signed by the untrusted key; the hint names the trusted key: no trusted key verifies, hint names one.",
         lambda k: with_(base(k, signers=("other",)), hint=k.hint("main")), ref="a28",
         note="Brief step 4: E_BAD_SIGNATURE when the hint names a trusted key but the signature does not verify.")


def _swapped(k: Keys, hint: Any = _DEFAULT) -> HostileArchive:
    """Signature over the base payload; envelope carries the payload of a different (valid) file set."""
    signed = base(k).payload_bytes()
    arc = base(k)
    arc.add("config.json", b'{"hidden": 2, "layers": 1, "backdoor": true}\n')
    arc.signed_payload = signed
    arc.hint = hint
    return arc


add_case("payload-swapped", "failed", "E_BAD_SIGNATURE",
         "Envelope payload replaced by a different valid statement (matching the archive); signature kept.",
         _swapped, ref="a29", member=SIG_NAME)
add_case("payload-swapped-no-hint", "failed", "E_UNTRUSTED_KEY",
         "Same as payload-swapped, hint removed: no trusted key verifies and no hint names one.",
         lambda k: _swapped(k, hint=None), ref="a29",
         note="Brief step 4 distinguishes by the hint only; without a hint a forged signature is 'untrusted'.")
add_case("signature-garbage", "failed", "E_BAD_SIGNATURE",
         "The sig field is base64 of 70 random bytes (not DER); hint names the trusted key.",
         lambda k: with_(base(k), signatures_hook=lambda s: [
             {"sig": base64.b64encode(random.Random(7).randbytes(70)).decode(), "keyid": ""}]))
add_case("signature-not-base64", "failed", "E_BAD_SIGNATURE",
         "The sig field is not base64; the hint names the trusted key. spec/signing.md: a sig that is not "
         "valid base64 or DER is a signature that does not verify.",
         lambda k: with_(base(k), signatures_hook=lambda s: [{"sig": "not base64!", "keyid": ""}]))
add_case("threshold-2-duplicated-signature", "failed", "E_THRESHOLD",
         "One signature by the trusted key duplicated under two keyids; both keys trusted; threshold 2.",
         lambda k: with_(base(k), signatures_hook=lambda s: [dict(s[0], keyid="a"), dict(s[0], keyid="b")]),
         ref="a31", trust=("main", "other"), threshold=2, member=SIG_NAME)
add_case("threshold-2-one-signature", "failed", "E_THRESHOLD",
         "One valid signature, threshold 2.", base, trust=("main", "other"), threshold=2, ref="a31")
add_case("payload-type-wrong", "failed", "E_PAYLOAD_TYPE",
         "DSSE payloadType application/json, correctly signed over that type.",
         lambda k: with_(base(k), payload_type="application/json"), ref="a30")
add_case("payload-type-changed-after-signing", "failed", "E_PAYLOAD_TYPE",
         "payloadType changed after signing (the signature covers the in-toto type). The brief and "
         "spec/verification.md check payloadType in step 3, before the signatures (step 4).",
         lambda k: with_(base(k), payload_type="application/json", signed_payload_type=PAYLOAD_TYPE), ref="a30")
add_case("statement-type-wrong", "failed", "E_PAYLOAD_TYPE",
         "Signed payload with _type https://in-toto.io/Statement/v0.1.",
         lambda k: with_(base(k), payload_hook=lambda d: dict(d, _type="https://in-toto.io/Statement/v0.1")),
         ref="a30")
add_case("predicate-type-wrong", "failed", "E_PAYLOAD_TYPE",
         "Signed payload with predicateType https://slsa.dev/provenance/v1.",
         lambda k: with_(base(k), payload_hook=lambda d: dict(d, predicateType="https://slsa.dev/provenance/v1")),
         ref="a30")
add_case("bundle-media-type-wrong", "failed", "E_PAYLOAD_TYPE",
         "Bundle mediaType is a Sigstore bundle v0.1 type.",
         lambda k: with_(base(k), bundle_hook=lambda b: dict(
             b, mediaType="application/vnd.dev.sigstore.bundle+json;version=0.1")),
         note="The brief names no code for the bundle mediaType; spec/verification.md step 3: E_PAYLOAD_TYPE.")

# ---- JSON strictness (bundle, payload, mlpack.json) ----

add_case("bundle-not-json", "failed", "E_MANIFEST", "Signature member content is not JSON.",
         lambda k: with_(base(k), bundle_hook=lambda b: b"this is not json\n"), ref="a32")
add_case("bundle-duplicate-key", "failed", "E_MANIFEST",
         "Bundle JSON with dsseEnvelope twice (Python's json would keep the last).",
         lambda k: with_(base(k), bundle_hook=lambda b: json.dumps(b, separators=(",", ":")).encode()[:-1]
                         + b',"dsseEnvelope":{}}'), ref="a32")
add_case("bundle-deep-nesting", "failed", "E_MANIFEST", "Bundle JSON nested 40 levels deep.",
         lambda k: with_(base(k), bundle_hook=lambda b: dict(b, extra=_nest(40))), ref="a32")
add_case("bundle-payload-not-base64", "failed", "E_MANIFEST", "dsseEnvelope.payload is not base64.",
         lambda k: with_(base(k), bundle_hook=lambda b: _set(b, ("dsseEnvelope", "payload"), "{not base64}")))
add_case("bundle-no-envelope", "failed", "E_MANIFEST", "Bundle without dsseEnvelope.",
         lambda k: with_(base(k), bundle_hook=lambda b: {x: y for x, y in b.items() if x != "dsseEnvelope"}))
add_case("payload-not-json", "failed", "E_MANIFEST", "Correctly signed payload that is not JSON.",
         lambda k: with_(base(k), payload=b"not json"), ref="a32")
add_case("payload-duplicate-key", "failed", "E_MANIFEST",
         "Signed payload with predicate twice.",
         lambda k: with_(base(k), payload_hook=lambda d: canonical_json(d)[:-1] + b',"predicate":{}}'), ref="a32")
add_case("payload-nan", "failed", "E_MANIFEST", "Signed payload with NaN as the mtime.",
         lambda k: with_(base(k), payload_hook=lambda d: canonical_json(d).replace(b'"mtime":0', b'"mtime":NaN')),
         ref="a32")
add_case("payload-deep-nesting", "failed", "E_MANIFEST", "Signed payload nested 40 levels deep.",
         lambda k: with_(base(k), payload_hook=lambda d: dict(d, extra=_nest(40))), ref="a32")
add_case("signature-member-declared-17MiB", "failed", "E_LIMIT",
         "Signature member header declares 17 MiB (> 16 MiB); the file is small: refused before reading.",
         lambda k: with_(base(k), members_hook=lambda ms: [regular(SIG_NAME, b"", size=17 * MiB)] + ms[1:]),
         ref="a32", note="security.md says E_MANIFEST for a > 16 MiB envelope; the brief (step 2) says E_LIMIT.")


def _nest(depth: int) -> Any:
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(d)
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


def _manifest(k: Keys, raw: bytes | None = None, **hook: Any) -> HostileArchive:
    arc = base(k)
    if raw is not None:
        arc.manifest = raw
    if hook:
        arc.manifest_hook = hook["hook"]
    return arc


add_case("manifest-duplicate-key", "failed", "E_MANIFEST", "mlpack.json with the key name twice.",
         lambda k: _manifest(k, raw=base(k).manifest_bytes()[:-2] + b',"name":"evil"}\n'), ref="a32",
         member=MANIFEST_NAME)
add_case("manifest-nan", "failed", "E_MANIFEST", "mlpack.json with NaN in a reserved section.",
         lambda k: _manifest(k, raw=base(k).manifest_bytes()[:-2] + b',"metrics":{"acc":NaN}}\n'), ref="a32")
add_case("manifest-deep-nesting", "failed", "E_MANIFEST", "mlpack.json nested 100 levels deep (in metrics).",
         lambda k: _manifest(k, hook=lambda d: dict(d, metrics={"x": _nest(100)})), ref="a32")
add_case("manifest-not-json", "failed", "E_MANIFEST", "mlpack.json is not JSON.",
         lambda k: _manifest(k, raw=b"name = 'toml?'\n"))
add_case("manifest-major-2", "failed", "E_MANIFEST", "mlpack.json version 2.0 (unknown major).",
         lambda k: _manifest(k, hook=lambda d: dict(d, mlpack="2.0")))
add_case("manifest-files-count-wrong", "failed", "E_MANIFEST", "mlpack.json files.count says 2; the pack holds 3.",
         lambda k: _manifest(k, hook=lambda d: dict(d, files=dict(d["files"], count=2))))
add_case("manifest-files-size-wrong", "failed", "E_MANIFEST", "mlpack.json files.size off by one.",
         lambda k: _manifest(k, hook=lambda d: dict(d, files=dict(d["files"], size=d["files"]["size"] + 1))))
add_case("manifest-weights-missing", "failed", "E_MANIFEST",
         "mlpack.json lists weights/model.safetensors, which the pack lacks.",
         lambda k: _manifest(k, hook=lambda d: dict(d, weights=d["weights"] + [
             {"path": "weights/model.safetensors", "format": "safetensors", "size": 8}])))
add_case("manifest-not-listed", "failed", "E_MANIFEST",
         "mlpack.json is in the archive but not among the signed resources.",
         lambda k: with_(base(k), payload_hook=lambda d: _drop_resource(d, MANIFEST_NAME)))


def _drop_resource(d: dict[str, Any], name: str) -> dict[str, Any]:
    p = d["predicate"]
    i = [r["name"] for r in p["resources"]].index(name)
    del p["resources"][i]
    del p["mlpack"]["sizes"][i]
    return fix_root(d)


# ---- payload schema ----

def _with_algorithm(algo: str) -> Callable[[Keys], HostileArchive]:
    def build(k: Keys) -> HostileArchive:
        if algo == "none":
            return with_(base(k), payload_hook=lambda d: _algo(d, "none"))
        return base(k, algorithm=algo)
    return build


for algo in ("md5", "sha1", "none", "sha3_256"):
    add_case(f"hash-type-{algo.replace('_', '-')}", "failed", "E_ALGORITHM",
             f"Signed payload with hash_type and algorithm {algo!r}.", _with_algorithm(algo), ref="a34")


def _algo(d: dict[str, Any], algo: str) -> dict[str, Any]:
    d["predicate"]["serialization"]["hash_type"] = algo
    for r in d["predicate"]["resources"]:
        r["algorithm"] = algo
    return d


add_case("resource-algorithm-mismatch", "failed", "E_ALGORITHM",
         "hash_type sha256 but one resource says algorithm sha512.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "resources"), [
             dict(r, algorithm="sha512") if r["name"] == "config.json" else r
             for r in d["predicate"]["resources"]])), ref="a34")
add_case("root-digest-inconsistent", "failed", "E_MANIFEST",
         "subject digest is not sha256 over the resource digests.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("subject",), [
             {"name": "x", "digest": {"sha256": "0" * 64}}])), ref="a35")
add_case("resources-empty", "failed", "E_MANIFEST", "Signed payload with an empty resources array.",
         lambda k: with_(base(k), payload_hook=lambda d: fix_root(_set(_set(d, ("predicate", "resources"), []),
                                                                        ("predicate", "mlpack", "sizes"), []))),
         ref="a35")
add_case("resources-unsorted", "failed", "E_MANIFEST", "Resources not in path-component order.",
         lambda k: with_(base(k), payload_hook=lambda d: fix_root(_reverse(d))))
add_case("sizes-length-mismatch", "failed", "E_MANIFEST", "predicate.mlpack.sizes has one entry too many.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"),
                                                              d["predicate"]["mlpack"]["sizes"] + [0])))
add_case("executable-unknown-name", "failed", "E_MANIFEST", "predicate.mlpack.executable names a file not listed.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "executable"), ["x.sh"])))
add_case("digest-malformed", "failed", "E_MANIFEST", "A resource digest in upper-case hex.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "resources"), [
             dict(r, digest=r["digest"].upper()) for r in d["predicate"]["resources"]])))
add_case("predicate-version-2", "failed", "E_MANIFEST", "predicate.mlpack.version 2.0.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "version"), "2.0")))
add_case("archive-profile-wrong", "failed", "E_MANIFEST", "predicate.mlpack.archive mlpack-zip-v1.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "archive"), "mlpack-zip-v1")))
add_case("serialization-method-shards", "failed", "E_MANIFEST", "serialization.method shards.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "serialization", "method"), "shards")))
add_case("size-2-pow-63", "failed", "E_LIMIT", "A listed size of 2^63 bytes.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"),
                                                              [2**63] + d["predicate"]["mlpack"]["sizes"][1:])),
         ref="a26", note="security.md a26 also mentions E_NOSPACE (free disk); not part of plain verify.")


def _reverse(d: dict[str, Any]) -> dict[str, Any]:
    p = d["predicate"]
    p["resources"].reverse()
    p["mlpack"]["sizes"].reverse()
    return d


# ---- names in the signed payload (a12-a15, a33) ----

SIGNED_NAMES: list[tuple[str, str, tuple[str, ...], str, str | None]] = [
    # case name, code, names, description, ref
    ("signed-name-traversal", "E_PATH", ("../secret",), "Signed resource ../secret (signed is not safe).", "a33"),
    ("signed-name-absolute", "E_PATH", ("/etc/passwd",), "Signed resource /etc/passwd.", "a33"),
    ("signed-name-inner-dotdot", "E_PATH", ("a/../../evil",), "Signed resource a/../../evil.", "a3"),
    ("signed-name-dot-component", "E_PATH", ("a/./b",), "Signed resource a/./b.", "a3"),
    ("signed-name-double-slash", "E_PATH", ("a//b",), "Signed resource a//b.", "a3"),
    ("signed-name-trailing-slash", "E_PATH", ("a/",), "Signed resource a/.", "a3"),
    ("signed-name-backslash", "E_PATH", ("..\\..\\evil",), "Signed resource ..\\..\\evil.", "a4"),
    ("signed-name-drive-backslash", "E_PATH", ("C:\\x",), "Signed resource C:\\x.", "a4"),
    ("signed-name-drive-relative", "E_PATH", ("C:x",), "Signed resource C:x (drive-relative).", "a4"),
    ("signed-name-reserved-prefix", "E_PATH", (".mlpack/extra",), "Signed resource under the reserved .mlpack/.",
     None),
    ("signed-name-duplicate", "E_DUPLICATE", ("weights.bin", "weights.bin"), "The same resource listed twice.",
     "a11"),
    ("signed-name-case-collision", "E_NAME_COLLISION", ("Model.bin", "model.bin"), "Model.bin and model.bin.",
     "a12"),
    ("signed-name-nfc-nfd-collision", "E_NAME_COLLISION", ("caf\u00e9.txt", "cafe\u0301.txt"),
     "café.txt in NFC and in NFD.", "a12"),
    ("signed-name-file-and-dir", "E_NAME_COLLISION", ("a", "a/b"), "a is both a file and a directory.", "a12"),
    ("signed-name-stream-colon", "E_PATH", ("data.bin:stream",), "Colon (NTFS alternate stream) in a name.", "a4"),
    ("signed-name-nul", "E_NAME", ("evil\0.txt",), "NUL in a name.", "a13"),
    ("signed-name-newline", "E_NAME", ("evil\nname.txt",), "Newline in a name.", "a13"),
    ("signed-name-control", "E_NAME", ("bell\x07.txt",), "Control character U+0007 in a name.", "a13"),
    ("signed-name-del", "E_NAME", ("del\x7f.txt",), "U+007F in a name.", "a13"),
    ("signed-name-lone-surrogate", "E_MANIFEST", ("bad\ud800.txt",), ("A name with an escaped lone surrogate "
     "(\\ud800): the payload is not strict JSON (spec/README.md, strict JSON rule 5)."), "a13"),
    ("signed-name-asterisk", "E_NAME", ("what*.txt",), "'*' in a name.", "a14"),
    ("signed-name-con", "E_NAME", ("CON",), "Windows device name CON.", "a14"),
    ("signed-name-aux-ext", "E_NAME", ("sub/aux.txt",), "Windows device name aux.txt (with extension).", "a14"),
    ("signed-name-com1-lower", "E_NAME", ("com1.json",), "Windows device name com1 (lower case).", "a14"),
    ("signed-name-trailing-dot", "E_NAME", ("name.",), "Component ending in a dot.", "a14"),
    ("signed-name-trailing-space", "E_NAME", ("dir /x.txt",), "Component ending in a space.", "a14"),
    ("signed-name-component-256", "E_LIMIT", ("d/" + "c" * 256,), "A 256-byte path component.", "a15"),
    ("signed-name-1025-bytes", "E_LIMIT", ("/".join(["n" * 200] * 5) + "/" + "x" * 20,),
     "A 1025-byte name.", "a15"),
    ("signed-name-depth-33", "E_LIMIT", ("/".join("d" * 32) + "/f",), "A name of 33 components.", "a15"),
]

def _with_names(ns: tuple[str, ...]) -> Callable[[Keys], HostileArchive]:
    """A pack signing ``ns`` (a name listed twice is duplicated in the payload only)."""
    def build(k: Keys) -> HostileArchive:
        if len(set(ns)) == len(ns):
            return named(k, "hello.txt", *ns)
        return with_(named(k, "hello.txt", ns[0]), payload_hook=lambda d: fix_root(_dup_resource(d, ns[0])))
    return build


for _name, _code, _names, _desc, _ref in SIGNED_NAMES:
    add_case(_name, "failed", _code, _desc + " The name is in the signed payload and in the archive.",
             _with_names(_names), ref=_ref,
             note={"signed-name-stream-colon": "spec/archive.md N3: ':' anywhere is E_PATH (the brief lists ':' "
                   "among the E_NAME characters).",
                   "signed-name-dot-component": "spec/archive.md N3: empty, '.' and '..' components are E_PATH (the "
                   "brief says E_PATH only for '..', absolute and '\\\\').",
                   "signed-name-double-slash": "As signed-name-dot-component (spec N3).",
                   "signed-name-trailing-slash": "As signed-name-dot-component (spec N3).",
                   "signed-name-duplicate": "security.md a33 says E_PATH for a duplicate signed path; the brief "
                   "and spec S1 say E_DUPLICATE.",
                   "signed-name-reserved-prefix": "spec/archive.md N7 (the brief names no code)."}.get(_name))


def _dup_resource(d: dict[str, Any], name: str) -> dict[str, Any]:
    p = d["predicate"]
    i = [r["name"] for r in p["resources"]].index(name)
    p["resources"].insert(i + 1, dict(p["resources"][i]))
    p["mlpack"]["sizes"].insert(i + 1, p["mlpack"]["sizes"][i])
    return d


# ---- archive members: names not signed (a1-a4, a13, a16) ----

def _renamed(label: str, new_name: str | bytes) -> Callable[[Keys], HostileArchive]:
    """The archive member of signed file ``label`` carries another name (same size and data)."""
    def build(k: Keys) -> HostileArchive:
        arc = named(k, "evil", "tmp/evil", "zz-last.txt")
        arc.members_hook = edit_header(label, name=new_name)
        return arc
    return build


add_case("member-traversal", "failed", "E_PATH",
         "Archive member ../evil where the signed list has evil (must not be sanitised to evil).",
         _renamed("evil", "../evil"), ref="a1", member="../evil")
add_case("member-absolute", "failed", "E_PATH",
         "Archive member /tmp/evil where the signed list has tmp/evil (must not be stripped).",
         _renamed("tmp/evil", "/tmp/evil"), ref="a2", member="/tmp/evil")
add_case("member-inner-dotdot", "failed", "E_PATH", "Archive member a/../../evil.",
         _renamed("evil", "a/../../evil"), ref="a3")
add_case("member-backslash", "failed", "E_PATH", "Archive member ..\\..\\evil.",
         _renamed("evil", "..\\..\\evil"), ref="a4")
add_case("member-newline", "failed", "E_NAME", "Archive member named evil\\n (control character).",
         _renamed("evil", "evi\n"), ref="a13")
add_case("member-invalid-utf8", "failed", "E_NAME", "Archive member name with byte 0xff (not UTF-8).",
         _renamed("evil", b"ev\xffl"), ref="a13")
add_case("member-case-variant", "failed", "E_UNLISTED",
         "Archive member EVIL where the signed list has evil: a different (unlisted) name.",
         _renamed("evil", "EVIL"), ref="a12")
add_case("unlisted-gitattributes", "failed", "E_UNLISTED",
         "A regular .gitattributes member (sorted position) absent from the signed list.",
         lambda k: with_(base(k), members_hook=insert_after(MANIFEST_NAME, regular(".gitattributes", b"* -text\n"))),
         ref="a16", member=".gitattributes")
add_case("unlisted-reserved", "failed", "E_PATH",
         "A regular .mlpack/extra member (sorted position) absent from the signed list: its name breaks rule N7 "
         "(reserved prefix), which spec/verification.md's diagnosis table (row 7) checks before 'unlisted'.",
         lambda k: with_(base(k), members_hook=insert_after(MANIFEST_NAME, regular(".mlpack/extra", b"x\n"))),
         ref="a16", member=".mlpack/extra", note="security.md a16 says E_UNLISTED; spec diagnosis row 7 gives N7's E_PATH.")
add_case("unlisted-appended", "failed", "E_UNLISTED",
         "A regular member zz-extra.txt appended after the last listed member, before the end-of-archive blocks.",
         lambda k: with_(base(k), members_hook=lambda ms: ms + [regular("zz-extra.txt", b"extra\n")]),
         ref="a16", member="zz-extra.txt",
         note="spec/verification.md: a member header after the last signed member is diagnosed like one "
              "in the middle (rows 4-9).")
add_case("missing-member", "failed", "E_MISSING", "config.json is listed but absent from the archive.",
         lambda k: with_(base(k), members_hook=lambda ms: [m for m in ms if m.label != "config.json"]),
         ref="a17", member="config.json")
add_case("missing-last-member", "failed", "E_MISSING",
         "weights.safetensors (the last member) is listed but absent from the archive.",
         lambda k: with_(base(k), members_hook=lambda ms: ms[:-1]), ref="a17", member="weights.safetensors")
add_case("duplicate-member", "failed", "E_DUPLICATE",
         "README.md twice in the archive (second copy different, same size), signed once.",
         lambda k: with_(base(k), members_hook=insert_after("README.md", regular("README.md", README.upper()))),
         ref="a11", member="README.md")
add_case("duplicate-member-appended", "failed", "E_DUPLICATE",
         "A second weights.safetensors appended after the last member (tar 'last wins' attack).",
         lambda k: with_(base(k), members_hook=lambda ms: ms + [regular("weights.safetensors", SAFETENSORS_OK)]),
         ref="a11", member="weights.safetensors",
         note="As unlisted-appended: diagnosed like a member in the middle (rows 4-9).")
add_case("members-out-of-order", "failed", "E_NONCANONICAL",
         "README.md and config.json swapped: at README.md's offset is a member expected later.",
         lambda k: with_(base(k), members_hook=lambda ms: ms[:2] + [ms[3], ms[2]] + ms[4:]), member="README.md",
         note="spec/verification.md diagnosis row 10: out of order -> E_NONCANONICAL (expected name).")
add_case("manifest-not-second", "failed", "E_NONCANONICAL",
         "mlpack.json stored in sorted position instead of as member 1.",
         lambda k: with_(base(k), members_hook=lambda ms: [ms[0], ms[2], ms[3], ms[1], ms[4]]), member=MANIFEST_NAME,
         note="As members-out-of-order (diagnosis row 10).")
add_case("member-expected-later-missing", "failed", "E_MISSING",
         "README.md is absent and config.json sits at its offset: a member expected later, and README.md never "
         "follows.",
         lambda k: with_(base(k), members_hook=lambda ms: [m for m in ms if m.label != "README.md"]),
         member="README.md", ref="a17", note="spec/verification.md diagnosis row 11.")

# ---- member types (a5-a10) ----


def _typed(member: RawMember, signed: tuple[str, ...] = ()) -> Callable[[Keys], HostileArchive]:
    def build(k: Keys) -> HostileArchive:
        arc = base(k)
        for n in signed:
            arc.add(n, b"target\n")
        arc.members_hook = insert_after(MANIFEST_NAME, member)
        return arc
    return build


add_case("symlink-member", "failed", "E_MEMBER_TYPE", "Symlink l -> weights.safetensors.",
         _typed(special("l", b"2", linkname="weights.safetensors")), ref="a5", member="l")
add_case("symlink-absolute", "failed", "E_MEMBER_TYPE", "Symlink etc -> /etc.",
         _typed(special("etc", b"2", linkname="/etc")), ref="a5")
add_case("hardlink-member", "failed", "E_MEMBER_TYPE", "Hard link passwd -> /etc/passwd.",
         _typed(special("passwd", b"1", linkname="/etc/passwd")), ref="a6", member="passwd")
add_case("symlink-dot-then-file", "failed", "E_MEMBER_TYPE",
         "Symlink d -> . followed by d/f (signed): fails at the link, d/f never written.",
         lambda k: with_(named(k, "d/f"), members_hook=insert_after(MANIFEST_NAME, special("d", b"2", linkname="."))),
         ref="a7", member="d")
add_case("char-device", "failed", "E_MEMBER_TYPE", "Character device null (1,3).",
         _typed(special("null", b"3", devmajor=1, devminor=3)), ref="a9")
add_case("block-device", "failed", "E_MEMBER_TYPE", "Block device sda (8,0).",
         _typed(special("sda", b"4", devmajor=8, devminor=0)), ref="a9")
add_case("fifo-member", "failed", "E_MEMBER_TYPE", "FIFO member.", _typed(special("fifo", b"6")), ref="a9")
add_case("directory-4777", "failed", "E_MEMBER_TYPE", "Directory entry models/ with mode 4777.",
         _typed(special("models/", b"5", mode=0o4777)), ref="a9")
add_case("contiguous-file", "failed", "E_MEMBER_TYPE", "Typeflag 7 (contiguous file).",
         _typed(special("contig", b"7", data=b"x")))
add_case("signature-member-symlink", "failed", "E_MEMBER_TYPE",
         "Member 0 is a symlink named .mlpack/model.sig (spec/verification.md step 2: typeflag must be 0).",
         lambda k: with_(base(k), members_hook=lambda ms: [special(SIG_NAME, b"2", linkname="/etc/passwd")] + ms[1:]))


def _gnu_sparse(k: Keys, magic: bytes = b"ustar\0", version: bytes = b"00") -> HostileArchive:
    """Old GNU sparse (typeflag S): 512 stored bytes, realsize 10 GiB, one map entry at the end."""
    patch = {
        386: base256(10 * GiB - 512, 12),  # sp[0].offset
        398: octal(512, 12),  # sp[0].numbytes
        482: b"\0",  # isextended
        483: base256(10 * GiB, 12),  # realsize
    }
    m = special("zz-sparse.bin", b"S", data=b"\x01" * 512, magic=magic, version=version, patch=patch)
    arc = base(k)
    arc.members_hook = insert_after(MANIFEST_NAME, m)
    return arc


add_case("sparse-gnu-10GiB", "failed", "E_MEMBER_TYPE",
         "GNU sparse member (typeflag S) declaring a 10 GiB real size in a 10 KiB archive.",
         _gnu_sparse, ref="a10", member="zz-sparse.bin")
add_case("sparse-oldgnu-magic-10GiB", "failed", "E_MEMBER_TYPE",
         "The same sparse member with the old GNU magic 'ustar  \\0' (what GNU tar writes).",
         lambda k: _gnu_sparse(k, b"ustar ", b" \0"), ref="a10", member="zz-sparse.bin")


def _pax_sparse(records: list[tuple[str, bytes | str]], data: bytes) -> Callable[[Keys], HostileArchive]:
    def build(k: Keys) -> HostileArchive:
        m = RawMember("sparse", Header("GNUSparseFile.0/zz-sparse.bin", size=len(data)), data, pax=records)
        arc = base(k)
        arc.members_hook = insert_after(MANIFEST_NAME, m)
        return arc
    return build


add_case("sparse-pax-1.0-10GiB", "failed", "E_MEMBER_TYPE",
         "PAX GNU.sparse 1.0 member (GNU.sparse.major/minor/name/realsize) declaring 10 GiB.",
         _pax_sparse([("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", "zz-sparse.bin"),
                      ("GNU.sparse.realsize", str(10 * GiB))],
                     b"1\n%d\n512\n" % (10 * GiB - 512) + b"\0" * (512 - len(b"1\n%d\n512\n" % (10 * GiB - 512)))
                     + b"\x01" * 512), ref="a10")
add_case("sparse-pax-0.1-10GiB", "failed", "E_MEMBER_TYPE",
         "PAX GNU.sparse 0.1 member (GNU.sparse.size/numblocks/map) declaring 10 GiB.",
         _pax_sparse([("GNU.sparse.size", str(10 * GiB)), ("GNU.sparse.numblocks", "1"),
                      ("GNU.sparse.map", f"{10 * GiB - 512},512")], b"\x01" * 512), ref="a10")

# ---- sizes, truncation, trailing bytes (a19-a21) ----

add_case("size-longer-than-signed", "failed", "E_SIZE",
         "config.json member holds 600 bytes; the signed size is smaller.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: regular("config.json", CONFIG * 22))),
         ref="a19", member="config.json")
add_case("size-shorter-than-signed", "failed", "E_SIZE", "config.json member holds 5 bytes.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: regular("config.json", b"{}\n\n\n"))),
         ref="a19", member="config.json")
add_case("declared-10GiB-truncated", "failed", "E_TRUNCATED",
         "The signed list and the (canonical, PAX size) header declare a 10 GiB file; the archive ends after "
         "1 KiB of it.",
         lambda k: with_(base(k).add("zz-huge.bin", b""),
                         payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"), [
                             10 * GiB if r["name"] == "zz-huge.bin" else s
                             for r, s in zip(d["predicate"]["resources"], d["predicate"]["mlpack"]["sizes"])]),
                         members_hook=replace("zz-huge.bin", lambda m: RawMember(
                             m.label, regular("zz-huge.bin", b"", size=10 * GiB).header, b"\x01" * 1024,
                             pax=[("size", str(10 * GiB))])),
                         trailer=b""),
         ref="a19", member="zz-huge.bin",
         note="The signed digest is of the empty file; the archive is truncated long before it matters.")


def _cut(label: str, delta: int, *, data: bool = True) -> Callable[[Keys], bytes]:
    """The base pack cut ``delta`` bytes after the data (or header) offset of ``label``."""
    def build(k: Keys) -> bytes:
        arc = base(k)
        out = arc.build()
        member_at, data_at = arc.offsets[label]
        return out[: (data_at if data else member_at) + delta]
    return build


add_case("truncated-mid-member", "failed", "E_TRUNCATED", "Cut 100 bytes into the data of weights.safetensors.",
         _cut("weights.safetensors", 100), ref="a20")
add_case("truncated-mid-member-aligned", "failed", "E_TRUNCATED",
         "Cut right after the header of weights.safetensors (block aligned).",
         _cut("weights.safetensors", 0), ref="a20", member="weights.safetensors")
add_case("truncated-mid-header", "failed", "E_TRUNCATED", "Cut 200 bytes into the header of weights.safetensors.",
         _cut("weights.safetensors", 200, data=False), ref="a20")
add_case("truncated-no-eoa", "failed", "E_TRUNCATED", "The archive ends right after the last member's padding.",
         lambda k: with_(base(k), trailer=b""), ref="a20")
add_case("truncated-one-eoa-block", "failed", "E_TRUNCATED", "Only one of the two end-of-archive blocks.",
         lambda k: with_(base(k), trailer=b"\0" * BLOCK), ref="a20")
add_case("eoa-without-record-padding", "failed", "E_TRUNCATED",
         "Both end-of-archive blocks but no padding to a multiple of 10240.",
         lambda k: with_(base(k), trailer=b"\0" * 2 * BLOCK), ref="a20",
         note="The brief requires the 10240 padding; the file is shorter than the computed layout: E_TRUNCATED.")


def _sig_truncated(k: Keys) -> bytes:
    data = base(k).build()
    size = int(data[124:135], 8)
    cut = max(3 * BLOCK, BLOCK + size // 2)
    assert cut < BLOCK + size
    return data[:cut]


add_case("truncated-in-signature", "failed", "E_TRUNCATED", "Cut inside the signature member's data.",
         _sig_truncated, ref="a20")
add_case("trailing-block", "failed", "E_NONCANONICAL", "512 bytes appended after the end of the archive.",
         lambda k: with_(base(k), append=b"trailing junk".ljust(BLOCK, b"\0")), ref="a21")
add_case("trailing-zero-record", "failed", "E_NONCANONICAL", "A further 10240 zero bytes after the archive.",
         lambda k: with_(base(k), append=b"\0" * RECORD), ref="a21")
add_case("zip-polyglot", "failed", "E_NONCANONICAL", "A zip archive appended after the pack (tar/zip polyglot).",
         lambda k: with_(base(k), append=_zip_file(k)), ref="a21")
add_case("prepended-block", "failed", "E_HEADER", "512 bytes of a shell-script stub prepended (self-extractor).",
         lambda k: with_(base(k), prepend=b"#!/bin/sh\nexec tail -c +513 \"$0\"\n".ljust(BLOCK, b"\n")), ref="a21",
         note="security.md a21 says E_NONCANONICAL; by the brief (step 2) an unparseable first header is E_HEADER.")
add_case("eoa-nonzero", "failed", "E_NONCANONICAL", "A non-zero byte inside the first end-of-archive block.",
         lambda k: with_(base(k), trailer=lambda body: _poke(trailer(len(body)), 100)))
add_case("record-padding-nonzero", "failed", "E_NONCANONICAL", "A non-zero byte in the last byte of the record padding.",
         lambda k: with_(base(k), trailer=lambda body: _poke(trailer(len(body)), -1)))
add_case("padding-nonzero-after-file", "failed", "E_NONCANONICAL",
         "A non-zero byte in the zero padding after config.json's data.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: _with_pad(m, 5))),
         member="config.json")
add_case("padding-nonzero-after-signature", "failed", "E_NONCANONICAL",
         "A non-zero byte in the zero padding after the signature member's data.",
         lambda k: with_(base(k), members_hook=replace(SIG_NAME, lambda m: _with_pad(m, 0))),
         note="Every byte of a pack is fixed by the brief; the padding after member 0 too.")
add_case("padding-nonzero-after-pax", "failed", "E_NONCANONICAL",
         "A non-zero byte in the padding after the PAX records of a long name.",
         lambda k: with_(named(k, "d/" + "p" * 120), members_hook=replace(
             "d/" + "p" * 120, lambda m: _with_pax_pad(m))))


def _all_mtimes(mtime: int) -> MembersHook:
    def hook(members: list[RawMember]) -> list[RawMember]:
        out = []
        for m in members:
            assert isinstance(m.header, Header)
            h = copy.deepcopy(m.header)
            h.mtime = mtime
            out.append(RawMember(m.label, h, m.data, m.pax, m.pax_header, m.pax_pad, m.gnu_longname, m.pad, mtime))
        return out
    return hook


def _poke(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] = 0x01
    return bytes(b)


def _with_pad(m: RawMember, at: int) -> RawMember:
    pad = bytearray(zero_pad(len(m.data)))
    assert pad, m.label
    pad[at] = 0x41
    return RawMember(m.label, m.header, m.data, m.pax, m.pax_header, m.pax_pad, m.gnu_longname, bytes(pad), m.mtime)


def _with_pax_pad(m: RawMember) -> RawMember:
    assert isinstance(m.pax, list)
    n = len(pax_records(m.pax))
    pad = bytearray(zero_pad(n))
    pad[-1] = 0x41
    return RawMember(m.label, m.header, m.data, m.pax, m.pax_header, bytes(pad), m.gnu_longname, m.pad, m.mtime)


# ---- non-canonical headers (a22) ----

_DECODE = ("Decoding is lenient (spec/verification.md, 'Decoding a header'): magic, version and field "
           "terminators are not interpreted, so such a header decodes and differs only in form: E_NONCANONICAL. "
           "Base-256 or non-octal mode/size/mtime and bad checksums do not decode: E_HEADER.")

add_case("uid-1000", "failed", "E_NONCANONICAL", "config.json header with uid 1000.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", uid=1000)), ref="a22", member="config.json")
add_case("gid-1000", "failed", "E_NONCANONICAL", "config.json header with gid 1000.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", gid=1000)), ref="a22")
add_case("uname-root", "failed", "E_NONCANONICAL", "config.json header with uname root.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", uname=b"root")), ref="a22")
add_case("mtime-member-differs", "failed", "E_NONCANONICAL",
         "config.json header mtime 1; every other header and the signed mtime are 0.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", mtime=1)), ref="a22", member="config.json")
add_case("mtime-headers-differ-from-signed", "failed", "E_NONCANONICAL",
         "Every header has mtime 1700000000; the signed predicate.mlpack.mtime is 0.",
         lambda k: with_(base(k), members_hook=_all_mtimes(1_700_000_000)), ref="a22")
add_case("mode-0600", "failed", "E_NONCANONICAL", "config.json header with mode 0600.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", mode=0o600)), ref="a22")
add_case("mode-setuid", "failed", "E_NONCANONICAL", "config.json header with mode 04755 (and listed executable).",
         lambda k: with_(base(k).add("config.json", CONFIG, executable=True),
                         members_hook=edit_header("config.json", mode=0o4755)), ref="a9")
add_case("exec-bit-not-signed", "failed", "E_NONCANONICAL",
         "config.json stored with mode 0755 but not listed as executable.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", mode=0o755)))
add_case("exec-bit-signed-missing", "failed", "E_NONCANONICAL",
         "run.sh listed as executable but stored with mode 0644.",
         lambda k: with_(base(k).add("run.sh", b"#!/bin/sh\n", executable=True),
                         members_hook=edit_header("run.sh", mode=0o644)))
add_case("magic-gnu", "failed", "E_NONCANONICAL", "config.json header with the old GNU magic 'ustar  \\0'.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", magic=b"ustar ", version=b" \0")), ref="a22", note=_DECODE)
add_case("magic-v7", "failed", "E_NONCANONICAL", "config.json header without ustar magic (v7 tar).",
         lambda k: with_(base(k), members_hook=edit_header("config.json", magic=b"", version=b"")), ref="a22", note=_DECODE)
add_case("size-field-space-terminated", "failed", "E_NONCANONICAL",
         "config.json size written as 11 octal digits + space instead of NUL.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", size=b"%011o " % len(CONFIG))), ref="a22", note=_DECODE)
add_case("checksum-bad", "failed", "E_HEADER", "config.json header with a wrong checksum.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", chksum=1234)), ref="a22",
         note="security.md a22 lists a bad checksum under E_NONCANONICAL; a header that fails its own checksum "
              "is malformed (E_HEADER), as for the first header in the brief.")
add_case("checksum-bad-first-header", "failed", "E_HEADER", "Signature member header with a wrong checksum.",
         lambda k: with_(base(k), members_hook=edit_header(SIG_NAME, chksum=1)))
add_case("signature-header-mode-0600", "failed", "E_NONCANONICAL", "Signature member header with mode 0600.",
         lambda k: with_(base(k), members_hook=edit_header(SIG_NAME, mode=0o600)), member=SIG_NAME)
add_case("signature-header-uname", "failed", "E_NONCANONICAL", "Signature member header with uname root.",
         lambda k: with_(base(k), members_hook=edit_header(SIG_NAME, uname=b"root")))
add_case("gnu-longname", "failed", "E_NONCANONICAL",
         "A >100-byte name stored with a GNU 'L' long-name record instead of PAX path.",
         lambda k: with_(named(k, "d/" + "g" * 120), members_hook=replace("d/" + "g" * 120, lambda m: RawMember(
             m.label, m.header, m.data, gnu_longname=("d/" + "g" * 120).encode() + b"\0"))), ref="a22")
add_case("ustar-prefix-name", "failed", "E_NONCANONICAL",
         "A >100-byte name split into the ustar prefix and name fields instead of PAX path: decoded as the "
         "expected name (prefix/name) but not the canonical encoding.",
         lambda k: with_(named(k, "p" * 60 + "/" + "q" * 60), members_hook=replace(
             "p" * 60 + "/" + "q" * 60,
             lambda m: RawMember(m.label, Header("q" * 60, size=len(m.data), prefix="p" * 60), m.data))), ref="a22",
         member="p" * 60 + "/" + "q" * 60)
add_case("pax-path-redundant", "failed", "E_NONCANONICAL",
         "A PAX header with path=config.json before the (short-named) config.json header.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("path", "config.json")]))), ref="a22")
add_case("pax-atime", "failed", "E_NONCANONICAL", "A PAX header with an atime record before config.json.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("atime", "1700000000.5")]))), ref="a22")
add_case("pax-linkpath", "failed", "E_NONCANONICAL", "A PAX header with linkpath=/etc/passwd before config.json.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("linkpath", "/etc/passwd")]))), ref="a22")
add_case("pax-size-redundant", "failed", "E_NONCANONICAL",
         "A PAX size record (equal to the real size) for a small file.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("size", str(len(CONFIG)))]))), ref="a22")
add_case("pax-global-header", "failed", "E_NONCANONICAL", "A PAX global header (typeflag g) before config.json.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("comment", "hi")],
             pax_header=Header("././@PaxHeader", mode=0, size=len(pax_records([("comment", "hi")])),
                               typeflag=b"g")))),
         ref="a22")
add_case("pax-path-override-unlisted", "failed", "E_UNLISTED",
         "PAX path=evil.txt overriding the ustar name config.json: the member is evil.txt, which is not listed.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("path", "evil.txt")]))), ref="a22", member="evil.txt",
         note="A reader honouring PAX sees evil.txt, so the diagnosis is 'unlisted'; any non-zero code is safe.")
add_case("pax-path-override-traversal", "failed", "E_PATH",
         "PAX path=../../evil overriding the ustar name config.json.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=[("path", "../../evil")]))), ref="a22")

# ---- malformed headers and limits (a23, a24) ----

add_case("pax-declared-1GiB", "failed", "E_LIMIT",
         "A PAX extended header whose header declares 1 GiB of records (file is small).",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=b"", pax_header=Header("././@PaxHeader", mode=0, size=GiB, typeflag=b"x")))),
         ref="a23")
add_case("pax-declared-65537", "failed", "E_LIMIT",
         "A PAX extended header declaring 65537 bytes (> 64 KiB); the file is small.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=b"", pax_header=Header("././@PaxHeader", mode=0, size=65537, typeflag=b"x")))),
         ref="a23")
add_case("pax-bad-record-length", "failed", "E_HEADER", "A PAX record whose length prefix is wrong (99).",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=b"99 path=config.json\n"))), ref="a24")
add_case("pax-negative-record-length", "failed", "E_HEADER", "A PAX record with length -20 (Go pax-bad-hdr-file).",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: RawMember(
             m.label, m.header, m.data, pax=b"-20 path=config.json\n"))), ref="a24")
add_case("size-non-octal", "failed", "E_HEADER", "config.json size field with a non-octal digit.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", size=b"0000000009a\0")), ref="a24")
add_case("mode-non-octal", "failed", "E_HEADER", "config.json mode field 00006x4 (does not decode).",
         lambda k: with_(base(k), members_hook=edit_header("config.json", mode=b"00006x4\0")), ref="a24")
add_case("size-base256-negative", "failed", "E_HEADER",
         "config.json size field in base-256 with a negative value (Go neg-size.tar).",
         lambda k: with_(base(k), members_hook=edit_header("config.json", size=base256(-2, 12))), ref="a24",
         note=_DECODE)
add_case("size-base256-positive", "failed", "E_HEADER",
         "config.json size field in (valid, positive) base-256 encoding of its real size.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", size=base256(len(CONFIG), 12))),
         ref="a24", note=_DECODE)
add_case("mtime-base256", "failed", "E_HEADER", "config.json mtime 0 written in base-256.",
         lambda k: with_(base(k), members_hook=edit_header("config.json", mtime=base256(0, 12))), ref="a22", note=_DECODE)
add_case("signature-size-non-octal", "failed", "E_HEADER", "Signature member header size field is not octal.",
         lambda k: with_(base(k), members_hook=edit_header(SIG_NAME, size=b"00000zz1000\0")), ref="a24")

# ---- digests (a18) ----

add_case("digest-flip-tensor-data", "failed", "E_DIGEST",
         "One flipped byte in the tensor data of weights.safetensors (still a valid safetensors file).",
         lambda k: with_(base(k), members_hook=replace("weights.safetensors", lambda m: regular(
             "weights.safetensors", _flip(SAFETENSORS_OK, len(SAFETENSORS_OK) - 3)))),
         ref="a18", member="weights.safetensors")
add_case("digest-flip-config", "failed", "E_DIGEST", "One flipped byte in config.json.",
         lambda k: with_(base(k), members_hook=replace("config.json", lambda m: regular(
             "config.json", _flip(CONFIG, 3)))), ref="a18", member="config.json")
add_case("digest-flip-safetensors-header", "failed", "E_DIGEST",
         "One flipped byte in the JSON header of weights.safetensors, which makes it invalid safetensors too.",
         lambda k: with_(base(k), members_hook=replace("weights.safetensors", lambda m: regular(
             "weights.safetensors", _flip(SAFETENSORS_OK, 9)))), ref="a18", member="weights.safetensors",
         note="Digests (step 6) come before format checks (step 8) in the normative order; a tampered file "
              "is E_DIGEST whatever its content.")
add_case("digest-flip-manifest", "failed", "E_DIGEST", "One flipped byte in mlpack.json.",
         lambda k: with_(base(k), members_hook=replace(MANIFEST_NAME, lambda m: regular(
             MANIFEST_NAME, _flip(m.data, 2)))), ref="a18", member=MANIFEST_NAME)


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0x01
    return bytes(b)


# ---- unsafe formats (a36, a37) ----


def _with_file(name: str, data: bytes) -> Callable[[Keys], HostileArchive]:
    """README.md plus ``name`` holding ``data``, signed, digests matching."""
    return lambda k: named(k, "README.md").add(name, data)


for _proto, _fname in ((0, "notes.txt"), (1, "weights.bin"), (2, "weights.bin"), (4, "model.safetensors"),
                       (5, "model.safetensors")):
    add_case(f"pickle-protocol-{_proto}-as-{_fname.replace('.', '-')}", "failed", "E_UNSAFE_FORMAT",
             f"A pickle (protocol {_proto}, os.system __reduce__) named {_fname}; signed, digests match.",
             _with_file(_fname, malicious_pickle(_proto)), ref="a36", member=_fname)
add_case("torch-zip-pickle", "failed", "E_UNSAFE_FORMAT",
         "A PyTorch-style zip (archive/data.pkl) named model.pt.",
         lambda k: named(k, "README.md").add("model.pt", torch_style_zip()), ref="a36", member="model.pt")
add_case("numpy-object-array", "failed", "E_UNSAFE_FORMAT", "A .npy file with dtype object (pickled data).",
         lambda k: named(k, "README.md").add("embeddings.npy", npy_object_array()), ref="a36",
         member="embeddings.npy")

_F32x2 = struct.pack("<2f", 1.0, 2.0)
for _name, _desc, _bytes in (
    ("safetensors-header-length-huge", "Header length field 100,000,001 (> 100 MB limit), file of 64 bytes.",
     safetensors_bytes(raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data=_F32x2,
                       length=100_000_001)),
    ("safetensors-header-length-past-end", "Header length larger than the file.",
     safetensors_bytes(raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', data=_F32x2,
                       length=4096)),
    ("safetensors-overlap", "Two tensors with overlapping data offsets.",
     safetensors_bytes(header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, data=_F32x2 + b"\0" * 4)),
    ("safetensors-out-of-range", "Tensor data offsets past the end of the buffer.",
     safetensors_bytes(header={"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data=_F32x2)),
    ("safetensors-hole", "A gap between two tensors.",
     safetensors_bytes(header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}},
                       data=_F32x2 * 3)),
    ("safetensors-trailing-bytes", "Buffer bytes no tensor covers, after the last tensor.",
     safetensors_bytes(header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, data=_F32x2 * 2)),
    ("safetensors-unknown-dtype", "Unknown dtype F128.",
     safetensors_bytes(header={"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, data=b"\0" * 16)),
    ("safetensors-shape-mismatch", "Shape [3] F32 with 8 bytes of data.",
     safetensors_bytes(header={"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, data=_F32x2)),
    ("safetensors-duplicate-key", "The tensor name a twice in the header.",
     safetensors_bytes(raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                  b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}     ', data=_F32x2)),
    ("safetensors-header-not-json", "The header is not JSON.",
     safetensors_bytes(raw_header=b"{not json}      ", data=b"")),
):
    add_case(_name, "failed", "E_UNSAFE_FORMAT", _desc + " Named model.safetensors; signed, digests match.",
             _with_file("model.safetensors", _bytes), ref="a37", member="model.safetensors")


# ---- CVE-2025-4517 chain (a8), small version ----

def realpath_limit_chain(component: str, mtime: int = 0) -> list[RawMember]:
    """CPython test_realpath_limit_attack (CVE-2025-4517) members, PAX-encoded where names are long."""
    steps = "abcdefghijklmnop"
    out: list[RawMember] = []

    def add(name: str, typeflag: bytes, *, linkname: str = "", data: bytes = b"", mode: int = 0o644) -> None:
        raw = name.encode()
        records: list[tuple[str, bytes | str]] = []
        if len(raw) > 100:
            records.append(("path", raw))
        if len(linkname.encode()) > 100:
            records.append(("linkpath", linkname))
        h = Header(raw[:100], mode=mode, size=len(data), mtime=mtime, typeflag=typeflag,
                   linkname=linkname.encode()[:100])
        out.append(RawMember(name, h, data, pax=records or None, mtime=mtime))

    path = ""
    for s in steps:
        add(f"{path}{component}", b"5", mode=0o777)
        add(f"{path}{s}", b"2", linkname=component)
        path = f"{path}{component}/"
    linkpath = "/".join(steps) + "/" + "l" * 254
    add(linkpath, b"2", linkname="/".join([".."] * len(steps)))
    add("escape", b"2", linkname=linkpath + "/..")
    add("flaglink", b"1", linkname="escape/flag")
    add("flaglink", b"0", data=b"overwrite")
    add("escape/newfile", b"0", data=b"new")
    return out


def cve_2025_4517_pack(k: Keys, component: str = "d" * 40) -> HostileArchive:
    """The chain placed after mlpack.json, in the slot of the signed file escape/newfile."""
    arc = named(k, "escape/newfile")
    arc.members_hook = insert_after(MANIFEST_NAME, *realpath_limit_chain(component))
    return arc


add_case("cve-2025-4517-realpath-chain", "failed", "E_MEMBER_TYPE",
         "CPython test_realpath_limit_attack shape (dirs, symlink chain, hard link, overwrite): rejected at the "
         "first non-regular member (component shortened to 40 bytes to keep the file small).",
         cve_2025_4517_pack, ref="a8", member="d" * 40)


# ---- finer points of spec/*.md (bundle, statement, manifest, safetensors, order of checks) ----

add_case("typeflag-nul", "failed", "E_MEMBER_TYPE",
         "config.json header with typeflag NUL (pre-POSIX regular file).",
         lambda k: with_(base(k), members_hook=edit_header("config.json", typeflag=b"\0")),
         member="config.json", note="spec/verification.md diagnosis row 5 lists typeflag NUL under E_MEMBER_TYPE.")
add_case("signatures-65", "failed", "E_LIMIT", "65 copies of a valid signature (more than 64 entries).",
         lambda k: with_(base(k), signatures_hook=lambda s: s * 65),
         note="spec/verification.md step 4 and spec/signing.md: at most 64 signatures.")
add_case("hint-malformed", "failed", "E_MANIFEST",
         "The hint is the trusted key's fingerprint in upper-case hex (not 64 lowercase hex digits).",
         lambda k: with_(base(k), hint=k.hint("main").upper()), note="spec/signing.md, Bundle.")
add_case("signed-no-trust-allow-unsigned", "failed", "E_UNTRUSTED_KEY",
         "A signed pack verified with an empty trust set and allow_unsigned.",
         base, trust=(), allow_unsigned=True,
         note="spec/verification.md step 4: E_UNTRUSTED_KEY 'also when the trust set is empty' (an empty trust set "
              "is E_USAGE only without --allow-unsigned).")
add_case("resource-unknown-field", "failed", "E_MANIFEST", "A resource with an unknown member (size).",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "resources"), [
             dict(r, size=1) for r in d["predicate"]["resources"]])),
         note="spec/signing.md: unknown members of resources[] are refused (they could change what was hashed).")
add_case("serialization-unknown-field", "failed", "E_MANIFEST", "serialization with an unknown member shard_size.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "serialization", "shard_size"), 1024)),
         note="spec/signing.md: unknown members of serialization are refused.")
add_case("allow-symlinks-true", "failed", "E_MANIFEST", "serialization.allow_symlinks true.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "serialization", "allow_symlinks"),
                                                              True)),
         note="spec/signing.md: allow_symlinks is REQUIRED and false.")
add_case("executable-unsorted", "failed", "E_MANIFEST", "executable lists b.sh before a.sh.",
         lambda k: with_(named(k, "README.md").add("a.sh", b"#!/bin/sh\n", executable=True)
                         .add("b.sh", b"#!/bin/sh\n", executable=True),
                         payload_hook=lambda d: _set(d, ("predicate", "mlpack", "executable"), ["b.sh", "a.sh"])),
         note="spec/verification.md step 5.8: executable strictly increasing by UTF-8 bytes.")
add_case("executable-lists-manifest", "failed", "E_MANIFEST",
         "executable lists mlpack.json (and the archive stores it with mode 0755).",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "executable"), [MANIFEST_NAME]),
                         members_hook=edit_header(MANIFEST_NAME, mode=0o755)),
         note="spec/verification.md step 5.8: each executable entry is a resource other than mlpack.json.")
add_case("size-float", "failed", "E_MANIFEST", "A size written as a JSON number with a fraction (45.0).",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"),
                                                              [float(d["predicate"]["mlpack"]["sizes"][0])]
                                                              + d["predicate"]["mlpack"]["sizes"][1:])),
         note="spec/README.md: integers have no fraction; a wrong type is a structure error (step 5.3), "
              "not a limit.")
add_case("sizes-sum-overflow", "failed", "E_LIMIT", "Two sizes of 2^62 each: their sum is not < 2^63.",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"),
                                                              [2**62, 2**62] + d["predicate"]["mlpack"]["sizes"][2:])),
         note="spec/verification.md step 5.7.")
add_case("manifest-size-17MiB", "failed", "E_LIMIT", "The signed size of mlpack.json is 17 MiB (> 16 MiB).",
         lambda k: with_(base(k), payload_hook=lambda d: _set(d, ("predicate", "mlpack", "sizes"), [
             17 * MiB if r["name"] == MANIFEST_NAME else n
             for r, n in zip(d["predicate"]["resources"], d["predicate"]["mlpack"]["sizes"])])),
         note="spec/verification.md step 5.7: mlpack.json at most 16 MiB.")
add_case("manifest-weights-size-wrong", "failed", "E_MANIFEST", "mlpack.json weights[0].size off by one.",
         lambda k: _manifest(k, hook=lambda d: dict(d, weights=[dict(d["weights"][0], size=d["weights"][0]["size"] + 1)])),
         note="spec/manifest.md, consistency rule 3.")
add_case("manifest-nesting-33", "failed", "E_MANIFEST", "mlpack.json nested 33 levels deep (limit 32).",
         lambda k: _manifest(k, hook=lambda d: dict(d, metrics={"x": _nest(31)})),
         note="spec/README.md strict JSON rule 4: depth <= 32 for mlpack.json.")
add_case("valid-manifest-nesting-32", "verified", None, "mlpack.json nested exactly 32 levels deep (the limit).",
         lambda k: _manifest(k, hook=lambda d: dict(d, x_future={"x": _nest(30)})))
add_case("payload-nesting-17", "failed", "E_MANIFEST", "Signed payload nested 17 levels deep (limit 16).",
         lambda k: with_(base(k), payload_hook=lambda d: dict(d, extra=_nest(16))),
         note="spec/README.md strict JSON rule 4: depth <= 16 for the payload.")
add_case("hash-type-blake2", "failed", "E_ALGORITHM",
         "hash_type 'blake2' (the OMS library's API argument, not a hash_type value).",
         lambda k: with_(base(k, algorithm="blake2b"), payload_hook=lambda d: _set(
             d, ("predicate", "serialization", "hash_type"), "blake2")), ref="a34",
         note="spec/signing.md: 'blake2' is not a valid hash_type (the brief said hash_type blake2).")
add_case("manifest-bom", "failed", "E_MANIFEST", "mlpack.json starting with a UTF-8 byte order mark.",
         lambda k: _manifest(k, raw=b"\xef\xbb\xbf" + base(k).manifest_bytes()),
         note="spec/README.md strict JSON rule 1.")
add_case("digest-and-structure", "failed", "E_NONCANONICAL",
         "config.json has a flipped byte AND weights.safetensors (later) has uid 1000: structure is reported "
         "before content.",
         lambda k: with_(base(k), members_hook=lambda ms: edit_header("weights.safetensors", uid=1000)(
             replace("config.json", lambda m: regular("config.json", _flip(CONFIG, 3)))(ms))),
         member="weights.safetensors",
         note="spec/verification.md step 6: 'Structure takes precedence over content'.")
add_case("manifest-wrong-and-pickle", "failed", "E_MANIFEST",
         "mlpack.json files.count is wrong AND weights.bin is a pickle: step 7 (manifest) precedes step 8 (formats).",
         lambda k: with_(named(k, "README.md").add("weights.bin", malicious_pickle(4)),
                         manifest_hook=lambda d: dict(d, files=dict(d["files"], count=7))),
         note="Normative order (brief and spec/verification.md): manifest before formats.")
add_case("valid-safetensors-extra-field", "verified", None,
         "A tensor entry with a member other than dtype, shape and data_offsets (ignored, as the reference does).",
         lambda k: named(k, "README.md").add("model.safetensors", safetensors_bytes(
             header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}}, data=_F32x2),
             weights=True), note="spec/verification.md safetensors rule 3.")
add_case("safetensors-overlap-listed-as-weights", "failed", "E_UNSAFE_FORMAT",
         "Overlapping tensors in model.safetensors, which mlpack.json lists as safetensors weights.",
         lambda k: named(k, "README.md").add("model.safetensors", safetensors_bytes(header={
             "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, data=_F32x2 + b"\0" * 4), weights=True),
         ref="a37", member="model.safetensors",
         note="spec/manifest.md rule 3 compares weights[].format with the *detected* format (by name here), so "
              "step 7 passes and step 8 reports the broken header.")
add_case("safetensors-f4-odd-bits", "failed", "E_UNSAFE_FORMAT",
         "An F4 tensor of shape [3]: 12 bits, not a whole number of bytes.",
         lambda k: named(k, "README.md").add("model.safetensors", safetensors_bytes(
             header={"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, data=b"\x12\x34")),
         ref="a37", member="model.safetensors", note="spec/verification.md safetensors rule 5.")
add_case("valid-safetensors-f4-fnuz", "verified", None,
         "Valid safetensors with an F4 tensor (shape [4], 2 bytes) and an F8_E4M3FNUZ tensor (shape [2], 2 bytes).",
         lambda k: named(k, "README.md").add("model.safetensors", safetensors_bytes({
             "a": ("F4", [4], b"\x12\x34"), "b": ("F8_E4M3FNUZ", [2], b"\x01\x02")}), weights=True),
         note="spec/verification.md safetensors rules 3 and 5: F4 is 4 bits per element.")
add_case("valid-safetensors-metadata-only", "verified", None,
         "Valid safetensors with only __metadata__ and no tensors (size = 8 + N).",
         lambda k: named(k, "README.md").add("model.safetensors", safetensors_bytes(
             header={"__metadata__": {"format": "pt"}}, data=b""), weights=True))

assert len({c.name for c in CASES}) == len(CASES)
