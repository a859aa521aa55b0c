"""A peer verifier agrees: OpenSSF `model_signing verify key` accepts an unpacked pack."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlpack import keys
from mlpack.pack import pack_directory
from mlpack.verify import unpack_pack

MODEL_SIGNING = shutil.which("model_signing") or str(Path(sys.executable).with_name("model_signing"))


def peer_verify(directory: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MODEL_SIGNING, "verify", "key", str(directory), "--signature",
         str(directory / ".mlpack" / "model.sig"), "--public_key", str(public)],
        capture_output=True, text=True, timeout=120)


@pytest.fixture
def unpacked(model_dir: Path, tmp_path: Path, keypair) -> Path:  # type: ignore[no-untyped-def]
    pack = tmp_path / "m.mlpack"
    pack_directory(model_dir, pack, key=keys.load_signing_key(keypair.private))
    out = tmp_path / "out"
    assert unpack_pack(pack, out, trust=keys.load_trust([str(keypair.public)], [])).ok
    return out


def test_peer_cli_accepts_unpacked_pack(unpacked: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    proc = peer_verify(unpacked, keypair.public)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Verification succeeded" in proc.stdout


@pytest.mark.parametrize("algorithm", [
    "sha256",
    pytest.param("blake2b", marks=pytest.mark.xfail(
        strict=True, raises=ValueError,
        reason="model_signing 1.1.1 writes hash_type 'blake2b' but cannot verify it (only 'blake2')")),
    "blake3",
])
def test_peer_library_accepts_every_hash(model_dir: Path, tmp_path: Path, keypair, algorithm: str) -> None:  # type: ignore[no-untyped-def]
    """model_signing 1.1.1's CLI always re-hashes with sha256; its library follows the signed hash."""
    import model_signing

    pack = tmp_path / "m.mlpack"
    pack_directory(model_dir, pack, key=keys.load_signing_key(keypair.private), algorithm=algorithm)
    out = tmp_path / "out"
    assert unpack_pack(pack, out, trust=keys.load_trust([str(keypair.public)], [])).ok
    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keypair.public)
    verifier.verify(out, out / ".mlpack" / "model.sig")  # raises on mismatch
    (out / "config.json").write_text("changed")
    with pytest.raises(ValueError):
        verifier.verify(out, out / ".mlpack" / "model.sig")


def test_peer_rejects_one_changed_byte(unpacked: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    target = unpacked / "config.json"
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    proc = peer_verify(unpacked, keypair.public)
    assert proc.returncode != 0 and "config.json" in proc.stdout + proc.stderr


def test_peer_rejects_extra_file_and_wrong_key(unpacked: Path, keypair, other_keypair) -> None:  # type: ignore[no-untyped-def]
    assert peer_verify(unpacked, other_keypair.public).returncode != 0
    (unpacked / "extra.txt").write_text("sneaked in")
    assert peer_verify(unpacked, keypair.public).returncode != 0


def test_root_digest_equals_model_signing_library(unpacked: Path) -> None:
    """Resources are in the reference library's order, so the root digest is the same."""
    from model_signing import hashing

    manifest = hashing.Config().use_file_serialization().set_ignored_paths(
        paths=[".mlpack/model.sig"], ignore_git_paths=False).hash(unpacked)
    raw = b"".join(rd.digest.digest_value for rd in manifest.resource_descriptors())
    import json

    bundle = json.loads((unpacked / ".mlpack" / "model.sig").read_text())
    import base64

    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert payload["subject"][0]["digest"]["sha256"] == hashlib.sha256(raw).hexdigest()
