"""The signature member: an OpenSSF Model Signing v1.0 bundle (spec/signing.md).

Three layers, outer to inner: a Sigstore bundle v0.3 (JSON) holding a DSSE envelope
whose payload is an in-toto Statement with predicate
``https://model_signing/signature/v1.0``: one resource per pack file (name, algorithm,
digest), the OMS serialization block, and mlpack's own predicate field (sizes, modes,
mtime) that OMS verifiers ignore.

DSSE signs the exact payload bytes (PAE), so the signature is checked *before* the
payload is parsed (:func:`open_bundle`), and the payload is parsed strictly after
(:func:`parse_statement`). Key ids and hints are never trusted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from . import jsonstrict
from .archive import MANIFEST_NAME, SIGNATURE_NAME, Member
from .digest import ALGORITHMS, DIGEST_HEX, HASH_TYPES, check_algorithm, root_digest
from .errors import VerificationError
from .keys import PublicKey, SigningKey
from .names import check_names

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "Bundle",
    "Resource",
    "Statement",
    "bundle_size",
    "check_statement_names",
    "encode_bundle",
    "open_bundle",
    "pae",
    "parse_statement",
    "resource_order",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
ARCHIVE_PROFILE = "mlpack-tar-v1"
SPEC_VERSION = "1.0"
MAX_BUNDLE = 16 << 20
MAX_SIGNATURES = 64
_SERIALIZATION_KEYS = frozenset(["method", "hash_type", "allow_symlinks", "ignore_paths"])
_RESOURCE_KEYS = frozenset(["name", "algorithm", "digest"])
MAX_MANIFEST_SIZE = 16 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_RESOURCES = 100_000
MAX_SIZE = 1 << 63


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def resource_order(name: str) -> tuple[str, ...]:
    """OMS resource order: by path components, as the reference library sorts."""
    return tuple(name.split("/"))


@dataclass(frozen=True, slots=True)
class Resource:
    """One signed file: name, digest (hex) and the mlpack extras (size, mode)."""

    name: str
    digest: str
    size: int
    mode: int = 0o644

    @property
    def member(self) -> Member:
        return Member(self.name, self.size, self.mode)


@dataclass(frozen=True, slots=True)
class Statement:
    """The signed payload: what the pack holds."""

    name: str
    algorithm: str
    resources: tuple[Resource, ...]
    mtime: int

    @property
    def root_digest(self) -> str:
        return root_digest(r.digest for r in self.resources)

    def to_dict(self) -> dict[str, object]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.name, "digest": {"sha256": self.root_digest}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "serialization": {
                    "method": "files",
                    "hash_type": ALGORITHMS[self.algorithm],
                    "allow_symlinks": False,
                    "ignore_paths": [SIGNATURE_NAME],
                },
                "resources": [
                    {"name": r.name, "algorithm": self.algorithm, "digest": r.digest}
                    for r in self.resources
                ],
                "mlpack": {
                    "version": SPEC_VERSION,
                    "archive": ARCHIVE_PROFILE,
                    "mtime": self.mtime,
                    "sizes": [r.size for r in self.resources],
                    "executable": sorted(r.name for r in self.resources if r.mode == 0o755),
                },
            },
        }

    def to_bytes(self) -> bytes:
        return jsonstrict.dumps(self.to_dict())

    @classmethod
    def build(cls, name: str, algorithm: str, resources: Sequence[Resource], mtime: int) -> Statement:
        ordered = tuple(sorted(resources, key=lambda r: resource_order(r.name)))
        return cls(name, check_algorithm(algorithm), ordered, mtime)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed signature member whose signatures have been checked."""

    payload: bytes
    signature_count: int
    hint: str | None
    signers: tuple[PublicKey, ...]  # distinct trusted keys with a valid signature


def encode_bundle(payload: bytes, keys: Sequence[SigningKey]) -> bytes:
    """The signature member's bytes; ``keys`` empty gives an unsigned pack."""
    message = pae(PAYLOAD_TYPE, payload)
    return _bundle(payload, [k.sign(message) for k in keys], keys[0].hint if keys else None)


def bundle_size(payload_size: int, keys: Sequence[SigningKey]) -> int:
    """The exact length :func:`encode_bundle` will have for a payload of this size."""
    return len(_bundle(bytes(payload_size), [bytes(k.signature_size) for k in keys],
                       keys[0].hint if keys else None))


def _bundle(payload: bytes, sigs: Sequence[bytes], hint: str | None) -> bytes:
    signatures = [{"sig": base64.b64encode(sig).decode(), "keyid": ""} for sig in sigs]
    public_key = {"hint": hint} if hint else {}
    # Key order is fixed so `inspect` finds the hint before the (large) envelope.
    import json

    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": public_key, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": signatures,
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode()


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string", code="E_MANIFEST", member=SIGNATURE_NAME)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64", code="E_MANIFEST", member=SIGNATURE_NAME) from None
    if base64.b64encode(raw).decode() != text:  # non-zero padding bits: one encoding per payload
        raise VerificationError(f"{what} is not canonical base64", code="E_MANIFEST", member=SIGNATURE_NAME)
    return raw


def _obj(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise VerificationError(f"{what} is not an object", code="E_MANIFEST", member=SIGNATURE_NAME)
    return value


def open_bundle(
    data: bytes, trust: Sequence[PublicKey], *, threshold: int = 1, allow_unsigned: bool = False
) -> Bundle:
    """Parse the bundle and check its DSSE signatures; the payload stays unparsed.

    Steps 3 and 4 of spec/verification.md. Raises ``E_MANIFEST``, ``E_PAYLOAD_TYPE``,
    ``E_UNSIGNED``, ``E_LIMIT``, ``E_UNTRUSTED_KEY``, ``E_BAD_SIGNATURE`` or ``E_THRESHOLD``.
    With ``allow_unsigned`` a bundle with no signature at all is accepted (the caller
    reports the pack as unsigned); a bundle *with* signatures is always checked.
    """
    doc = _obj(jsonstrict.loads(data, what="signature bundle", max_size=MAX_BUNDLE,
                                member=SIGNATURE_NAME), "signature bundle")
    material = _obj(doc.get("verificationMaterial"), "verificationMaterial")
    public_key = _obj(material.get("publicKey"), "verificationMaterial.publicKey")
    envelope = _obj(doc.get("dsseEnvelope"), "dsseEnvelope")
    hint_value = public_key.get("hint")
    if hint_value is not None and (not isinstance(hint_value, str) or not _HEX64.fullmatch(hint_value)):
        raise VerificationError("the bundle's key hint is not 64 lowercase hex digits", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    hint = f"sha256:{hint_value}" if hint_value else None
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list):
        raise VerificationError("dsseEnvelope.signatures is not a list", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    sigs = [_obj(entry, "DSSE signature").get("sig") for entry in signatures]
    if not all(isinstance(sig, str) for sig in sigs):
        raise VerificationError("a DSSE signature has no sig string", code="E_MANIFEST", member=SIGNATURE_NAME)
    if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise VerificationError(f"signature bundle media type is {doc.get('mediaType')!r}",
                                code="E_PAYLOAD_TYPE", member=SIGNATURE_NAME)
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type is {payload_type!r}, not {PAYLOAD_TYPE}",
                                code="E_PAYLOAD_TYPE", member=SIGNATURE_NAME)
    payload = _b64(envelope.get("payload"), "DSSE payload")
    if not signatures:
        if allow_unsigned:
            return Bundle(payload, 0, hint, ())
        raise VerificationError("the pack is not signed", code="E_UNSIGNED", member=SIGNATURE_NAME,
                                hint="ask the author for a signed pack, or pass --allow-unsigned")
    if len(signatures) > MAX_SIGNATURES:
        raise VerificationError(f"{len(signatures)} signatures exceed the limit of {MAX_SIGNATURES}",
                                code="E_LIMIT", member=SIGNATURE_NAME)
    message = pae(PAYLOAD_TYPE, payload)
    signers: dict[str, PublicKey] = {}
    for sig_text in sigs:
        try:
            sig = base64.b64decode(str(sig_text), validate=True)
        except (binascii.Error, ValueError):
            continue  # not base64: a signature that does not verify
        for key in trust:  # keyid/hint are hints at best: try every trusted key
            if key.fingerprint not in signers and key.verify(sig, message):
                signers[key.fingerprint] = key
    if not signers:
        if hint and any(k.fingerprint == hint for k in trust):
            raise VerificationError("the signature does not match the signed content",
                                    code="E_BAD_SIGNATURE", member=SIGNATURE_NAME,
                                    hint="the pack was modified after signing")
        raise UntrustedKey(
            f"signed by a key you do not trust ({hint or 'no key hint'})", claimed=hint,
            hint="check the signer's fingerprint with the author, then pass their public key with --key",
        )
    if len(signers) < threshold:
        raise VerificationError(f"{len(signers)} distinct trusted key(s) signed; {threshold} required",
                                code="E_THRESHOLD", member=SIGNATURE_NAME)
    return Bundle(payload, len(signatures), hint, tuple(sorted(signers.values(), key=lambda k: k.fingerprint)))


class UntrustedKey(VerificationError):
    """``E_UNTRUSTED_KEY``, carrying the (unverified) fingerprint the bundle claims."""

    def __init__(self, message: str, *, claimed: str | None = None, hint: str | None = None,
                 code: str | None = None, member: str | None = None) -> None:
        super().__init__(message, code="E_UNTRUSTED_KEY", hint=hint, member=SIGNATURE_NAME)
        self.claimed = claimed


def _field(obj: dict[str, object], key: str, kind: type, where: str) -> object:
    value = obj.get(key)
    # bool is an int subclass; JSON true is not a size.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError(f"{where}.{key} is missing or not a {kind.__name__}", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    return value


def check_statement_names(statement: Statement) -> None:
    """The portable-name rules and collision checks over every signed name."""
    check_names([r.name for r in statement.resources])


def _manifest_error(why: str, member: str = SIGNATURE_NAME) -> VerificationError:
    return VerificationError(why, code="E_MANIFEST", member=member)


def parse_statement(payload: bytes, *, check_names_now: bool = True) -> Statement:
    """Strictly parse a payload whose signature was already checked (spec step 5).

    With ``check_names_now=False`` the caller MUST call :func:`check_statement_names`
    before it uses any name on a file system (verify overlaps it with hashing).
    """
    doc = _obj(jsonstrict.loads(payload, what="signed payload", max_size=MAX_BUNDLE,
                                member=SIGNATURE_NAME), "payload")
    # 5.2 statement and predicate types
    if doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(
            f"payload is {doc.get('_type')!r} / {doc.get('predicateType')!r}, not an OMS v1.0 statement",
            code="E_PAYLOAD_TYPE", member=SIGNATURE_NAME)
    # 5.3 structure
    subject = _obj(_subject(doc), "subject[0]")
    _field(subject, "name", str, "subject[0]")
    subject_digest = _obj(subject.get("digest"), "subject[0].digest").get("sha256")
    if not isinstance(subject_digest, str):
        raise _manifest_error("subject[0].digest.sha256 is missing")
    predicate = _obj(doc.get("predicate"), "predicate")
    serialization = _obj(predicate.get("serialization"), "predicate.serialization")
    unknown = set(serialization) - _SERIALIZATION_KEYS
    if unknown:
        raise _manifest_error(f"unknown serialization field(s): {', '.join(sorted(unknown))}")
    if serialization.get("method") != "files":
        raise _manifest_error(f"serialization method {serialization.get('method')!r} is not 'files'")
    if serialization.get("allow_symlinks") is not False:
        raise _manifest_error("serialization.allow_symlinks must be false")
    if serialization.get("ignore_paths") != [SIGNATURE_NAME]:
        raise _manifest_error(f"serialization.ignore_paths must be exactly [{SIGNATURE_NAME!r}]")
    extra = _obj(predicate.get("mlpack"), "predicate.mlpack")
    version = str(_field(extra, "version", str, "predicate.mlpack"))
    if version.split(".")[0] != SPEC_VERSION.split(".")[0]:
        raise VerificationError(f"pack format version {version} is not supported (this is 1.x)",
                                code="E_MANIFEST", member=SIGNATURE_NAME, hint="upgrade mlpack")
    if extra.get("archive") != ARCHIVE_PROFILE:
        raise _manifest_error(f"archive profile {extra.get('archive')!r} is not {ARCHIVE_PROFILE}")
    mtime = _field(extra, "mtime", int, "predicate.mlpack")
    assert isinstance(mtime, int)
    if not 0 <= mtime < 8**11:
        raise _manifest_error("predicate.mlpack.mtime is out of range")
    resources = predicate.get("resources")
    sizes = extra.get("sizes")
    executable = extra.get("executable")
    if not isinstance(resources, list) or not isinstance(sizes, list) or not isinstance(executable, list):
        raise _manifest_error("resources, mlpack.sizes and mlpack.executable must be lists")
    if len(resources) > MAX_RESOURCES:  # bound the work below before doing it
        raise VerificationError(f"{len(resources)} files exceed the limit of {MAX_RESOURCES}",
                                code="E_LIMIT", member=SIGNATURE_NAME)
    if len(sizes) != len(resources):
        raise _manifest_error("predicate.mlpack.sizes does not match resources")
    entries = []
    for i, (entry, size) in enumerate(zip(resources, sizes)):  # the hot loop: 100,000 at most
        if type(entry) is not dict or entry.keys() - _RESOURCE_KEYS:
            entry = _obj(entry, f"resources[{i}]")
            unknown = sorted(set(entry) - _RESOURCE_KEYS)
            raise _manifest_error(f"unknown field(s) in resources[{i}]: {', '.join(unknown)}")
        name, algorithm, digest = entry.get("name"), entry.get("algorithm"), entry.get("digest")
        if type(name) is not str or type(algorithm) is not str or type(digest) is not str:
            raise _manifest_error(f"resources[{i}] needs string name, algorithm and digest")
        if type(size) is not int:
            raise _manifest_error(f"predicate.mlpack.sizes[{i}] is not an integer")
        entries.append((name, algorithm, digest, size))
    if not all(isinstance(e, str) for e in executable):
        raise _manifest_error("predicate.mlpack.executable must list names")
    # 5.4 algorithm, then digests
    hash_type = serialization.get("hash_type")
    if hash_type not in HASH_TYPES:
        raise VerificationError(f"hash type {hash_type!r} is not allowed (sha256, blake2b, blake3)",
                                code="E_ALGORITHM", member=SIGNATURE_NAME)
    algorithm_name = HASH_TYPES[str(hash_type)]
    hex_len = DIGEST_HEX[algorithm_name]
    for name, algorithm, _digest, _size in entries:
        if algorithm != algorithm_name:
            raise VerificationError(f"resource {name!r} uses algorithm {algorithm!r}, not {algorithm_name}",
                                    code="E_ALGORITHM", member=str(name))
    for name, _algorithm, digest, _size in entries:
        if len(str(digest)) != hex_len or str(digest).strip("0123456789abcdef"):
            raise _manifest_error(f"resource {name!r} has a malformed digest", str(name))
    names = [str(e[0]) for e in entries]
    exec_set = set(executable)
    statement = Statement(
        name=str(subject["name"]),
        algorithm=algorithm_name,
        resources=tuple(Resource(n, str(d), int(z), 0o755 if n in exec_set else 0o644)
                        for n, (_, _, d, z) in zip(names, entries)),
        mtime=mtime,
    )
    # 5.5 names (possibly deferred); exact duplicates are caught by the order check below
    if check_names_now:
        check_statement_names(statement)
    # 5.6 presence
    if not names:
        raise _manifest_error("the signed payload lists no files")
    if MANIFEST_NAME not in names:
        raise _manifest_error(f"the signed payload does not list {MANIFEST_NAME}", MANIFEST_NAME)
    # 5.7 limits
    total = 0
    for name, _a, _d, size in entries:
        if not 0 <= size < MAX_SIZE:
            raise VerificationError(f"resource {name!r} has an invalid size", code="E_LIMIT", member=str(name))
        total += size
        if name == MANIFEST_NAME and size > MAX_MANIFEST_SIZE:
            raise VerificationError(f"{MANIFEST_NAME} is over {MAX_MANIFEST_SIZE} bytes", code="E_LIMIT",
                                    member=MANIFEST_NAME)
    if total >= MAX_SIZE:
        raise VerificationError("the files add up to 2^63 bytes or more", code="E_LIMIT", member=SIGNATURE_NAME)
    # 5.8 order
    keys = [resource_order(n) for n in names]
    for a, b, name in zip(keys, keys[1:], names[1:]):
        if a >= b:
            if a == b:
                raise VerificationError(f"{name!r} is listed twice", code="E_DUPLICATE", member=name)
            raise _manifest_error("resources are not in canonical order")
    exec_bytes = [str(e).encode() for e in executable]
    if any(a >= b for a, b in zip(exec_bytes, exec_bytes[1:])) or not set(executable) <= set(names) \
            or MANIFEST_NAME in executable:
        raise _manifest_error("predicate.mlpack.executable must list resource names, sorted, once each")
    # 5.9 root digest
    if subject_digest != statement.root_digest:
        raise _manifest_error("root digest does not match the listed files")
    return statement


def _subject(doc: dict[str, object]) -> object:
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise VerificationError("payload must have exactly one subject", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    return subjects[0]
