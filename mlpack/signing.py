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
from collections.abc import Sequence
from dataclasses import dataclass

from . import jsonstrict
from .archive import MANIFEST_NAME, SIGNATURE_NAME, Member
from .digest import ALGORITHMS, DIGEST_HEX, HASH_TYPES, check_algorithm, root_digest
from .errors import UsageError, VerificationError
from .keys import PublicKey, SigningKey
from .names import RESERVED_PREFIX, check_names

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "Bundle",
    "Resource",
    "Statement",
    "encode_bundle",
    "open_bundle",
    "pae",
    "check_statement_names",
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
    signatures = [
        {"sig": base64.b64encode(k.sign(message)).decode(), "keyid": ""} for k in keys
    ]
    public_key = {"hint": keys[0].hint} if keys else {}
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
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64", code="E_MANIFEST", member=SIGNATURE_NAME) from None


def _obj(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise VerificationError(f"{what} is not an object", code="E_MANIFEST", member=SIGNATURE_NAME)
    return value


def open_bundle(
    data: bytes, trust: Sequence[PublicKey], *, threshold: int = 1, allow_unsigned: bool = False
) -> Bundle:
    """Parse the bundle and check its DSSE signatures; the payload stays unparsed.

    Raises ``E_UNSIGNED``, ``E_UNTRUSTED_KEY``, ``E_BAD_SIGNATURE`` or ``E_THRESHOLD``.
    With ``allow_unsigned`` a bundle with no signature at all is accepted (and the
    caller reports the pack as unsigned); a bundle *with* signatures is always checked.
    """
    doc = _obj(jsonstrict.loads(data, what="signature bundle", max_size=MAX_BUNDLE,
                                member=SIGNATURE_NAME), "signature bundle")
    if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise VerificationError(f"signature bundle media type is {doc.get('mediaType')!r}",
                                code="E_PAYLOAD_TYPE", member=SIGNATURE_NAME)
    material = _obj(doc.get("verificationMaterial", {}), "verificationMaterial")
    hint_value = _obj(material.get("publicKey", {}), "publicKey").get("hint")
    hint = f"sha256:{hint_value}" if isinstance(hint_value, str) and hint_value else None
    envelope = _obj(doc.get("dsseEnvelope"), "dsseEnvelope")
    payload = _b64(envelope.get("payload"), "DSSE payload")
    payload_type = envelope.get("payloadType")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list):
        raise VerificationError("DSSE signatures is not a list", code="E_MANIFEST", member=SIGNATURE_NAME)
    if not signatures:
        if not allow_unsigned:
            raise VerificationError("the pack is not signed", code="E_UNSIGNED", member=SIGNATURE_NAME,
                                    hint="ask the author for a signed pack, or pass --allow-unsigned")
    elif not trust:
        raise UsageError("the pack is signed but no trusted key was given",
                         hint="pass --key AUTHOR.pub (or --trust-dir DIR)")
    message = pae(payload_type if isinstance(payload_type, str) else "", payload)
    signers: dict[str, PublicKey] = {}
    for entry in signatures:
        sig = _b64(_obj(entry, "DSSE signature").get("sig"), "DSSE signature")
        for key in trust:  # keyid/hint are hints at best: try every trusted key
            if key.fingerprint not in signers and key.verify(sig, message):
                signers[key.fingerprint] = key
                break
    if signatures and not signers:
        if hint and any(k.fingerprint == hint for k in trust):
            raise VerificationError("the signature does not match the signed content",
                                    code="E_BAD_SIGNATURE", member=SIGNATURE_NAME,
                                    hint="the pack was modified after signing")
        raise VerificationError(
            f"signed by a key you do not trust ({hint or 'unknown key'})",
            code="E_UNTRUSTED_KEY", member=SIGNATURE_NAME,
            hint="check the signer's fingerprint with the author, then pass their public key with --key",
        )
    if signatures and len(signers) < threshold:
        raise VerificationError(
            f"{len(signers)} distinct trusted key(s) signed; {threshold} required",
            code="E_THRESHOLD", member=SIGNATURE_NAME,
        )
    # DSSE: reject an unknown payload type only after the signature check, before parsing.
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"DSSE payload type is {payload_type!r}", code="E_PAYLOAD_TYPE",
                                member=SIGNATURE_NAME)
    return Bundle(payload, len(signatures), hint, tuple(signers.values()))


def _field(obj: dict[str, object], key: str, kind: type, where: str) -> object:
    value = obj.get(key)
    # bool is an int subclass; JSON true is not a size.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise VerificationError(f"{where}.{key} is missing or not a {kind.__name__}", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    return value


def check_statement_names(statement: Statement) -> None:
    """The portable-name rules and collision checks over every signed name."""
    names = [r.name for r in statement.resources]
    check_names(names)
    for name in names:
        if name.startswith(RESERVED_PREFIX):
            raise VerificationError(f"{name!r} uses the reserved prefix {RESERVED_PREFIX}",
                                    code="E_PATH", member=name)


def parse_statement(payload: bytes, *, check_names_now: bool = True) -> Statement:
    """Strictly parse a payload whose signature was already checked.

    With ``check_names_now=False`` the caller MUST call :func:`check_statement_names`
    before it uses any name on a file system (verify overlaps it with hashing).
    Exact duplicates are always refused here, by the strict ordering check.
    """
    doc = _obj(jsonstrict.loads(payload, what="signed payload", max_size=MAX_BUNDLE,
                                member=SIGNATURE_NAME), "payload")
    if doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError(
            f"payload is {doc.get('_type')!r} / {doc.get('predicateType')!r}, not an OMS v1.0 statement",
            code="E_PAYLOAD_TYPE", member=SIGNATURE_NAME)
    predicate = _obj(doc.get("predicate"), "predicate")
    serialization = _obj(predicate.get("serialization"), "predicate.serialization")
    if serialization.get("method") != "files":
        raise VerificationError(f"serialization method {serialization.get('method')!r} is not 'files'",
                                code="E_MANIFEST", member=SIGNATURE_NAME)
    hash_type = serialization.get("hash_type")
    if hash_type not in HASH_TYPES:
        raise VerificationError(f"hash type {hash_type!r} is not allowed", code="E_ALGORITHM",
                                member=SIGNATURE_NAME)
    algorithm = HASH_TYPES[str(hash_type)]
    if serialization.get("ignore_paths", [SIGNATURE_NAME]) != [SIGNATURE_NAME]:
        raise VerificationError("ignore_paths must list only the signature member",
                                code="E_MANIFEST", member=SIGNATURE_NAME)
    extra = _obj(predicate.get("mlpack"), "predicate.mlpack")
    version = str(_field(extra, "version", str, "predicate.mlpack"))
    if version.split(".")[0] != SPEC_VERSION.split(".")[0]:
        raise VerificationError(f"pack format version {version} is not supported (this is 1.x)",
                                code="E_MANIFEST", member=SIGNATURE_NAME, hint="upgrade mlpack")
    if extra.get("archive") != ARCHIVE_PROFILE:
        raise VerificationError(f"archive profile {extra.get('archive')!r} is not {ARCHIVE_PROFILE}",
                                code="E_MANIFEST", member=SIGNATURE_NAME)
    mtime = int(_field(extra, "mtime", int, "predicate.mlpack"))  # type: ignore[call-overload]
    if not 0 <= mtime < 8**11:
        raise VerificationError("predicate.mlpack.mtime out of range", code="E_MANIFEST", member=SIGNATURE_NAME)
    resources = predicate.get("resources")
    sizes = extra.get("sizes")
    executable = extra.get("executable", [])
    if not isinstance(resources, list) or not isinstance(sizes, list) or not isinstance(executable, list):
        raise VerificationError("resources, sizes and executable must be lists", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    if not resources:
        raise VerificationError("the signed payload lists no files", code="E_MANIFEST", member=SIGNATURE_NAME)
    if len(resources) > MAX_RESOURCES:
        raise VerificationError(f"{len(resources)} files exceed the limit of {MAX_RESOURCES}",
                                code="E_LIMIT", member=SIGNATURE_NAME)
    if len(sizes) != len(resources):
        raise VerificationError("predicate.mlpack.sizes does not match resources", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    names = []
    parsed = []
    hex_len = DIGEST_HEX[algorithm]
    for i, entry in enumerate(resources):
        entry = _obj(entry, f"resources[{i}]")
        name = str(_field(entry, "name", str, f"resources[{i}]"))
        if entry.get("algorithm") != algorithm:
            raise VerificationError(f"resource {name!r} uses algorithm {entry.get('algorithm')!r}, "
                                    f"not {algorithm}", code="E_ALGORITHM", member=name)
        digest = str(_field(entry, "digest", str, f"resources[{i}]"))
        if len(digest) != hex_len or digest.strip("0123456789abcdef"):
            raise VerificationError(f"resource {name!r} has a malformed digest", code="E_MANIFEST", member=name)
        size = sizes[i]
        if type(size) is not int or not 0 <= size < MAX_SIZE:
            raise VerificationError(f"resource {name!r} has an invalid size", code="E_LIMIT", member=name)
        names.append(name)
        parsed.append((name, digest, size))
    if MANIFEST_NAME not in names:
        raise VerificationError(f"the signed payload does not list {MANIFEST_NAME}", code="E_MANIFEST",
                                member=MANIFEST_NAME)
    keys = [resource_order(n) for n in names]
    for a, b, name in zip(keys, keys[1:], names[1:]):
        if a >= b:
            if a == b:
                raise VerificationError(f"{name!r} is listed twice", code="E_DUPLICATE", member=name)
            raise VerificationError("resources are not in canonical order", code="E_MANIFEST",
                                    member=SIGNATURE_NAME)
    exec_set = set()
    for e in executable:
        if not isinstance(e, str) or e not in names or e in exec_set:
            raise VerificationError("predicate.mlpack.executable names an unknown file",
                                    code="E_MANIFEST", member=SIGNATURE_NAME)
        exec_set.add(e)
    statement = Statement(
        name=str(_obj(_subject(doc), "subject").get("name", "")),
        algorithm=algorithm,
        resources=tuple(Resource(n, d, s, 0o755 if n in exec_set else 0o644) for n, d, s in parsed),
        mtime=mtime,
    )
    subject_digest = _obj(_obj(_subject(doc), "subject").get("digest"), "subject.digest").get("sha256")
    if subject_digest != statement.root_digest:
        raise VerificationError("root digest does not match the listed files", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    if check_names_now:
        check_statement_names(statement)
    return statement


def _subject(doc: dict[str, object]) -> object:
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise VerificationError("payload must have exactly one subject", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    return subjects[0]
