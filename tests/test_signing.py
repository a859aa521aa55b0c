"""mlpack.signing: OMS v1.0 bundles, signature before parsing, strict payload rules."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from mlpack import keys
from mlpack.errors import VerificationError
from mlpack.signing import (
    Resource,
    Statement,
    encode_bundle,
    open_bundle,
    pae,
    parse_statement,
)


def test_pae_matches_dsse_spec_vector() -> None:
    # DSSE protocol.md test vector
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def _statement() -> Statement:
    return Statement.build("demo", "sha256", [
        Resource("mlpack.json", "a" * 64, 10),
        Resource("w/model.safetensors", "b" * 64, 100),
        Resource("w.txt", "c" * 64, 5, 0o755),
    ], mtime=0)


def test_resources_use_oms_component_order_and_root_digest() -> None:
    st = _statement()
    # By components "w" < "w.txt"; by bytes "w.txt" < "w/..." -- OMS uses components.
    assert [r.name for r in st.resources] == ["mlpack.json", "w/model.safetensors", "w.txt"]
    raw = b"".join(bytes.fromhex(r.digest) for r in st.resources)
    assert st.root_digest == hashlib.sha256(raw).hexdigest()
    doc = st.to_dict()
    assert doc["predicate"]["mlpack"]["sizes"] == [10, 100, 5]
    assert doc["predicate"]["mlpack"]["executable"] == ["w.txt"]
    assert parse_statement(st.to_bytes()) == st


@pytest.fixture
def signer(keypair):  # type: ignore[no-untyped-def]
    return keys.load_signing_key(keypair.private)


def test_sign_and_open(signer, keypair) -> None:  # type: ignore[no-untyped-def]
    payload = _statement().to_bytes()
    bundle = open_bundle(encode_bundle(payload, [signer]), keys.load_trust([str(keypair.public)], []))
    assert bundle.payload == payload
    assert [k.fingerprint for k in bundle.signers] == [keypair.fingerprint]
    assert bundle.hint == keypair.fingerprint


def _tamper(bundle: bytes, **changes: object) -> bytes:
    doc = json.loads(bundle)
    env = doc["dsseEnvelope"]
    for key, value in changes.items():
        env[key] = value
    return json.dumps(doc).encode()


def test_swapped_payload_is_bad_signature(signer, keypair) -> None:  # type: ignore[no-untyped-def]
    good = encode_bundle(_statement().to_bytes(), [signer])
    other = base64.b64encode(b'{"_type":"x"}').decode()
    with pytest.raises(VerificationError) as info:
        open_bundle(_tamper(good, payload=other), keys.load_trust([str(keypair.public)], []))
    assert info.value.code == "E_BAD_SIGNATURE"


def test_untrusted_key(signer, other_keypair) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationError) as info:
        open_bundle(encode_bundle(b"{}", [signer]), keys.load_trust([str(other_keypair.public)], []))
    assert info.value.code == "E_UNTRUSTED_KEY"
    assert signer.fingerprint in info.value.message  # the hint is shown, never trusted


def test_payload_type_checked_before_signatures(signer, keypair) -> None:  # type: ignore[no-untyped-def]
    """A constant comparison, before any key is tried (the PAE binds the type anyway)."""
    trust = keys.load_trust([str(keypair.public)], [])
    with pytest.raises(VerificationError) as info:
        open_bundle(_tamper(encode_bundle(b"{}", [signer]), payloadType="text/plain"), trust)
    assert info.value.code == "E_PAYLOAD_TYPE"
    # Correctly signed with an unsupported type: E_PAYLOAD_TYPE.
    message = pae("text/plain", b"{}")
    sig = base64.b64encode(signer.sign(message)).decode()
    doc = json.loads(encode_bundle(b"{}", [signer]))
    doc["dsseEnvelope"].update(payloadType="text/plain", signatures=[{"sig": sig, "keyid": ""}])
    with pytest.raises(VerificationError) as info:
        open_bundle(json.dumps(doc).encode(), trust)
    assert info.value.code == "E_PAYLOAD_TYPE"


def test_threshold_counts_distinct_keys(signer, keypair, other_keypair) -> None:  # type: ignore[no-untyped-def]
    trust = keys.load_trust([str(keypair.public), str(other_keypair.public)], [])
    doubled = json.loads(encode_bundle(b"{}", [signer]))
    sigs = doubled["dsseEnvelope"]["signatures"]
    sigs.append({"sig": sigs[0]["sig"], "keyid": "another-id"})
    with pytest.raises(VerificationError) as info:
        open_bundle(json.dumps(doubled).encode(), trust, threshold=2)
    assert info.value.code == "E_THRESHOLD"
    both = encode_bundle(b"{}", [signer, keys.load_signing_key(other_keypair.private)])
    assert len(open_bundle(both, trust, threshold=2).signers) == 2


def test_unsigned_needs_permission() -> None:
    with pytest.raises(VerificationError) as info:
        open_bundle(encode_bundle(b"{}", []), ())
    assert info.value.code == "E_UNSIGNED"
    assert open_bundle(encode_bundle(b"{}", []), (), allow_unsigned=True).signature_count == 0


def test_signed_pack_without_trust_is_untrusted(signer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerificationError) as info:
        open_bundle(encode_bundle(b"{}", [signer]), (), allow_unsigned=True)
    assert info.value.code == "E_UNTRUSTED_KEY"


def test_too_many_signatures(signer, keypair) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(encode_bundle(b"{}", [signer]))
    doc["dsseEnvelope"]["signatures"] *= 65
    with pytest.raises(VerificationError) as info:
        open_bundle(json.dumps(doc).encode(), keys.load_trust([str(keypair.public)], []))
    assert info.value.code == "E_LIMIT"


@pytest.mark.parametrize("hint", ["ABC", "g" * 64, 5])
def test_malformed_hint(signer, keypair, hint) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(encode_bundle(b"{}", [signer]))
    doc["verificationMaterial"]["publicKey"]["hint"] = hint
    with pytest.raises(VerificationError) as info:
        open_bundle(json.dumps(doc).encode(), keys.load_trust([str(keypair.public)], []))
    assert info.value.code == "E_MANIFEST"


def _payload(**predicate_changes: object) -> bytes:
    doc = _statement().to_dict()
    doc["predicate"].update(predicate_changes)  # type: ignore[union-attr]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), "E_PAYLOAD_TYPE"),
        (lambda d: d.update(predicateType="https://model_signing/Digests/v0.1"), "E_PAYLOAD_TYPE"),
        (lambda d: d["predicate"]["serialization"].update(hash_type="md5"), "E_ALGORITHM"),
        (lambda d: d["predicate"]["resources"][0].update(algorithm="sha1"), "E_ALGORITHM"),
        (lambda d: d["predicate"]["resources"][1].update(name="mlpack.json"), "E_DUPLICATE"),
        (lambda d: d["predicate"].update(resources=[]), "E_MANIFEST"),
        (lambda d: d["subject"][0]["digest"].update(sha256="0" * 64), "E_MANIFEST"),
        (lambda d: d["predicate"]["mlpack"].update(sizes=[1, 2]), "E_MANIFEST"),
        (lambda d: d["predicate"]["mlpack"].update(sizes=[1, True, 3]), "E_MANIFEST"),
        (lambda d: d["predicate"]["resources"][0].update(size=3), "E_MANIFEST"),
        (lambda d: d["predicate"]["serialization"].update(shard_size=10), "E_MANIFEST"),
        (lambda d: d["predicate"]["serialization"].update(allow_symlinks=True), "E_MANIFEST"),
        (lambda d: d["predicate"]["mlpack"].update(executable=["mlpack.json"]), "E_MANIFEST"),
        (lambda d: d["predicate"]["mlpack"].update(sizes=[1, 2**63, 3]), "E_LIMIT"),
        (lambda d: d["predicate"]["mlpack"].update(version="2.0"), "E_MANIFEST"),
        (lambda d: d["predicate"]["mlpack"].update(executable=["nope"]), "E_MANIFEST"),
        (lambda d: d["predicate"]["serialization"].update(ignore_paths=[".mlpack/model.sig", ".git"]),
         "E_MANIFEST"),
        (lambda d: d["predicate"]["resources"].reverse(), "E_MANIFEST"),
    ],
)
def test_payload_rules(mutate, code) -> None:  # type: ignore[no-untyped-def]
    doc = _statement().to_dict()
    mutate(doc)
    with pytest.raises(VerificationError) as info:
        parse_statement(json.dumps(doc).encode())
    assert info.value.code == code


@pytest.mark.parametrize(("name", "code"), [("../secret", "E_PATH"), ("/etc/passwd", "E_PATH"),
                                           (".mlpack/extra", "E_PATH"), ("a\nb", "E_NAME"),
                                           ("MLPACK.JSON", "E_NAME_COLLISION")])
def test_signed_names_are_checked(name: str, code: str) -> None:
    """Signed is not safe: a consistent, signed payload naming ../secret still fails."""
    st = Statement.build("x", "sha256", [Resource("mlpack.json", "a" * 64, 1), Resource(name, "b" * 64, 1)], 0)
    with pytest.raises(VerificationError) as info:
        parse_statement(st.to_bytes())
    assert info.value.code == code


def test_too_many_resources_refused_before_the_loop() -> None:
    doc = _statement().to_dict()
    doc["predicate"]["resources"] = [{"name": f"f{i}"} for i in range(100_001)]  # type: ignore[index]
    doc["predicate"]["mlpack"]["sizes"] = [0] * 100_001  # type: ignore[index]
    with pytest.raises(VerificationError) as info:
        parse_statement(json.dumps(doc).encode())
    assert info.value.code == "E_LIMIT"
