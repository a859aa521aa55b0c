"""Attestations: a verifier signs what it reproduced, in a file beside the pack
(spec/reproduction.md, "Attestations").

An attestation is a DSSE envelope over an in-toto Statement v1 whose subject is the pack
file (its sha256) and whose predicate is the outcome of ``verify --eval/--rebuild``: the
verdict per level, the reproduced metrics, the verifier's hardware profile. It is signed
with the verifier's own key and carries that public key, so anyone can check the
signature; whether to *trust* the verifier is the reader's decision (``--key``,
``--trust-dir``), as for packs. Attestations live beside the pack as
``<pack>.<12 hex of the key fingerprint>.att.json``; ``verify`` lists those it finds.

    path = attest("model.mlpack", reproduction_dict, key=load_signing_key("verifier.pem"))
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import jsonstrict
from ._atomic import atomic_write_bytes
from .digest import sha256_file
from .errors import IOFailure, UsageError, VerificationError
from .keys import PublicKey, SigningKey
from .signing import pae

__all__ = ["ATTESTATION_MEDIA_TYPE", "Attestation", "attest", "find_attestations", "read_attestation"]

ATTESTATION_MEDIA_TYPE = "application/vnd.mlpack.attestation.v1+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://mlpack.dev/attestation/reproduction/v1"
SUFFIX = ".att.json"
MAX_ATTESTATION = 4 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class Attestation:
    """One attestation read back: who signed, whether that key is trusted, what it says."""

    path: str
    signer: str
    trusted: bool
    subject_matches: bool
    verdict: str
    requested: tuple[str, ...]
    metrics: tuple[dict[str, Any], ...]
    time: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "signer": self.signer, "trusted": self.trusted,
                "subject_matches": self.subject_matches, "verdict": self.verdict,
                "requested": list(self.requested), "metrics": list(self.metrics), "time": self.time}

    def line(self) -> str:
        who = f"{self.signer} ({'trusted' if self.trusted else 'NOT a trusted key'})"
        if not self.subject_matches:
            return f"{os.path.basename(self.path)}: by {who}: about ANOTHER file, ignored"
        got = ", ".join(f"{m['name']} {m.get('observed')}" for m in self.metrics if "observed" in m)
        return (f"{os.path.basename(self.path)}: {self.verdict} ({'/'.join(self.requested)}) by {who}"
                + (f": {got}" if got else ""))


def attest(pack: str | os.PathLike[str], reproduction: Mapping[str, Any], *, key: SigningKey,
           out: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Sign ``reproduction`` (a ``verify --eval/--rebuild --json`` document) about ``pack``."""
    from cryptography.hazmat.primitives import serialization

    from . import __version__
    from .hardware import capture

    pack_path = Path(pack)
    if not pack_path.is_file():
        raise UsageError(f"{pack_path} is not a file", code="E_INPUT")
    if reproduction.get("mlpack_reproduction") is None or "verdict" not in reproduction:
        raise UsageError("the report is not the output of mlpack verify --eval/--rebuild --json",
                         code="E_INPUT", hint="run: mlpack verify PACK --eval --json > report.json")
    digest = sha256_file(pack_path)
    if reproduction.get("pack_sha256") not in (None, digest):
        raise UsageError("the report is about another file than this pack (sha256 differs)", code="E_INPUT")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": pack_path.name, "digest": {"sha256": digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verdict": reproduction["verdict"], "requested": reproduction.get("requested", []),
            "levels": reproduction.get("levels", []), "metrics": reproduction.get("metrics", []),
            "data": reproduction.get("data", []), "weights": reproduction.get("weights"),
            "environment": reproduction.get("environment", {}),
            "hardware": capture().to_dict(), "verifier": {"tool": "mlpack", "version": __version__},
            "time": _now(),
        },
    }
    payload = jsonstrict.dumps(statement)
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    pem = key.key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    doc = {"mediaType": ATTESTATION_MEDIA_TYPE, "publicKey": pem,
           "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                            "signatures": [{"keyid": key.fingerprint, "sig": base64.b64encode(sig).decode()}]}}
    target = Path(out) if out else pack_path.with_name(f"{pack_path.name}.{key.hint[:12]}{SUFFIX}")
    if target.exists() and not force:
        raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
    try:
        atomic_write_bytes(target, jsonstrict.dumps(doc) + b"\n")
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return target


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def find_attestations(pack: str | os.PathLike[str]) -> list[Path]:
    p = Path(pack)
    return sorted(p.parent.glob(f"{p.name}.*{SUFFIX}")) if p.parent.is_dir() else []


def _bad(path: Path, why: str) -> VerificationError:
    return VerificationError(f"attestation {path.name}: {why}", code="E_MANIFEST", member=path.name)


def read_attestation(path: str | os.PathLike[str], pack_sha256: str, trust: Sequence[PublicKey]) -> Attestation:
    """Check an attestation's signature (with its embedded key) and its subject; E_MANIFEST or
    E_BAD_SIGNATURE when it is malformed or its signature does not verify."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from .keys import fingerprint_of

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot read {p}") from None
    doc = jsonstrict.loads(raw, what=p.name, max_size=MAX_ATTESTATION, max_depth=32, member=p.name)
    if not isinstance(doc, dict) or doc.get("mediaType") != ATTESTATION_MEDIA_TYPE:
        raise _bad(p, "is not an mlpack attestation")
    env = doc.get("dsseEnvelope")
    if not isinstance(env, dict) or env.get("payloadType") != PAYLOAD_TYPE:
        raise _bad(p, "has no in-toto DSSE envelope")
    try:
        public = load_pem_public_key(str(doc.get("publicKey", "")).encode())
        payload = base64.b64decode(str(env.get("payload", "")), validate=True)
        sigs = [base64.b64decode(str(s.get("sig", "")), validate=True) for s in env.get("signatures", [])]
    except (ValueError, TypeError, AttributeError):
        raise _bad(p, "has a malformed key, payload or signature") from None
    fingerprint = fingerprint_of(public)
    key = PublicKey(public, fingerprint, p.name)
    if not sigs or not any(key.verify(s, pae(PAYLOAD_TYPE, payload)) for s in sigs):
        raise VerificationError(f"attestation {p.name}: the signature does not verify", code="E_BAD_SIGNATURE",
                                member=p.name)
    statement = jsonstrict.loads(payload, what=f"{p.name} payload", max_size=MAX_ATTESTATION, max_depth=32,
                                 member=p.name)
    if not isinstance(statement, dict) or statement.get("predicateType") != PREDICATE_TYPE:
        raise _bad(p, "is not a reproduction attestation")
    subjects = statement.get("subject") or []
    matches = any(isinstance(s, dict) and (s.get("digest") or {}).get("sha256") == pack_sha256 for s in subjects)
    pred = statement.get("predicate") or {}
    return Attestation(path=str(p), signer=fingerprint, trusted=any(k.fingerprint == fingerprint for k in trust),
                       subject_matches=matches, verdict=str(pred.get("verdict")),
                       requested=tuple(map(str, pred.get("requested") or ())),
                       metrics=tuple(m for m in pred.get("metrics") or () if isinstance(m, dict)),
                       time=pred.get("time") if isinstance(pred.get("time"), str) else None)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = json.loads(p.read_bytes())
    except OSError as err:
        raise UsageError(f"cannot read {p}: {err.strerror}", code="E_INPUT") from None
    except ValueError:
        raise UsageError(f"{p} is not JSON", code="E_INPUT",
                         hint="use the output of mlpack verify --eval --json") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{p} is not a JSON object", code="E_INPUT")
    return doc
