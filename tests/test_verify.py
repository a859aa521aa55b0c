"""mlpack.verify: the report, tampering found by check, unpack into a new directory only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlpack import keys
from mlpack.archive import SIGNATURE_NAME
from mlpack.errors import UsageError
from mlpack.pack import pack_directory
from mlpack.report import CHECK_IDS
from mlpack.verify import unpack_pack, verify_pack


@pytest.fixture
def signed(model_dir: Path, tmp_path: Path, keypair) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / "model.mlpack"
    pack_directory(model_dir, out, key=keys.load_signing_key(keypair.private))
    return out


def trust_of(*pairs) -> tuple[keys.PublicKey, ...]:  # type: ignore[no-untyped-def]
    return keys.load_trust([str(p.public) for p in pairs], [])


def test_verified_report_lists_every_check(signed: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    report = verify_pack(signed, trust=trust_of(keypair))
    assert report.ok and report.verdict == "verified"
    assert [c.id for c in report.checks] == list(CHECK_IDS)
    assert all(c.status == "pass" for c in report.checks), report.render()
    assert report.signers == [keypair.fingerprint]
    doc = report.to_dict()
    assert doc["archive"]["files"] == 6 and doc["error"] is None


def test_trust_set_accepts_any_trusted_key(signed: Path, keypair, other_keypair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert verify_pack(signed, trust=trust_of(other_keypair, keypair)).ok
    trust_dir = tmp_path / "trusted"
    trust_dir.mkdir()
    (trust_dir / "author.pub").write_bytes(keypair.public.read_bytes())
    assert verify_pack(signed, trust=keys.load_trust([], [str(trust_dir)])).ok
    report = verify_pack(signed, trust=trust_of(other_keypair))
    assert not report.ok and report.error is not None and report.error.code == "E_UNTRUSTED_KEY"


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _offset_of(path: Path, needle: bytes) -> int:
    return path.read_bytes().index(needle)


@pytest.mark.parametrize(
    ("where", "code", "check"),
    [
        (lambda p: _offset_of(p, b"print('training')"), "E_DIGEST", "digests"),
        (lambda p: _offset_of(p, b'"hidden"'), "E_DIGEST", "digests"),
        (lambda p: _offset_of(p, b'"payload":"') + 20, "E_BAD_SIGNATURE", "signature"),
        (lambda p: 300, "E_HEADER", "signature-member"),  # header byte: checksum mismatch
    ],
)
def test_one_flipped_byte_fails_the_right_check(signed: Path, keypair, where, code: str, check: str) -> None:  # type: ignore[no-untyped-def]
    _flip(signed, where(signed))
    report = verify_pack(signed, trust=trust_of(keypair))
    assert not report.ok and report.error is not None
    assert report.error.code == code, report.render()
    assert report.check(check).status == "fail"


def test_digest_failure_names_the_file(signed: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    _flip(signed, _offset_of(signed, b"id,label"))
    report = verify_pack(signed, trust=trust_of(keypair))
    assert report.error is not None and report.error.member == "data/labels.csv"


def test_truncation_and_trailing_bytes(signed: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    data = signed.read_bytes()
    signed.write_bytes(data[:-1024])
    assert verify_pack(signed, trust=trust_of(keypair)).error.code == "E_TRUNCATED"  # type: ignore[union-attr]
    signed.write_bytes(data + b"\0" * 512)
    assert verify_pack(signed, trust=trust_of(keypair)).error.code == "E_NONCANONICAL"  # type: ignore[union-attr]
    signed.write_bytes(data[:5000])
    assert verify_pack(signed, trust=trust_of(keypair)).error.code == "E_TRUNCATED"  # type: ignore[union-attr]


def test_not_a_pack(tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    junk = tmp_path / "junk.mlpack"
    junk.write_bytes(os.urandom(4096))
    assert verify_pack(junk, trust=trust_of(keypair)).error.code == "E_HEADER"  # type: ignore[union-attr]
    with pytest.raises(UsageError):
        verify_pack(tmp_path / "missing.mlpack", trust=trust_of(keypair))
    with pytest.raises(UsageError):
        verify_pack(tmp_path, trust=trust_of(keypair))


def test_unsigned_pack(model_dir: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "u.mlpack"
    pack_directory(model_dir, out, key=None)
    report = verify_pack(out, trust=trust_of(keypair))
    assert report.error is not None and report.error.code == "E_UNSIGNED"
    report = verify_pack(out, trust=(), allow_unsigned=True)
    assert report.ok and report.verdict == "unsigned"
    assert report.check("signature").status == "skip"


def test_unpack_writes_exact_tree(signed: Path, model_dir: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "out"
    report = unpack_pack(signed, dest, trust=trust_of(keypair))
    assert report.ok
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    want = sorted([str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()]
                  + ["mlpack.json", SIGNATURE_NAME])
    assert got == want
    for p in model_dir.rglob("*"):
        if p.is_file():
            q = dest / p.relative_to(model_dir)
            assert q.read_bytes() == p.read_bytes()
            assert os.access(q, os.X_OK) == os.access(p, os.X_OK)


def test_unpack_refuses_existing_destination(signed: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "exists"
    dest.mkdir()
    with pytest.raises(UsageError) as info:
        unpack_pack(signed, dest, trust=trust_of(keypair))
    assert info.value.code == "E_EXISTS"


def test_failed_unpack_leaves_nothing(signed: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    _flip(signed, _offset_of(signed, b"id,label"))
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "canary").write_text("keep")
    report = unpack_pack(signed, parent / "out", trust=trust_of(keypair))
    assert not report.ok
    assert sorted(p.name for p in parent.iterdir()) == ["canary"]


@pytest.fixture
def many_files_pack(tmp_path: Path, keypair) -> Path:  # type: ignore[no-untyped-def]
    """More members than the process-pool threshold: the forked scan path."""
    src = tmp_path / "many"
    for i in range(900):
        d = src / f"d{i % 9}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(os.urandom(64 + i))
    out = tmp_path / "many.mlpack"
    pack_directory(src, out, key=keys.load_signing_key(keypair.private))
    return out


def test_many_members_verify_in_worker_processes(many_files_pack: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    from mlpack import _scan

    assert _scan.FORK_MIN_MEMBERS < 900
    report = verify_pack(many_files_pack, trust=trust_of(keypair))
    assert report.ok, report.render()


def test_errors_cross_the_process_boundary_intact(many_files_pack: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    import tarfile

    with tarfile.open(many_files_pack) as tar:
        member = tar.getmembers()[-3]
    data = bytearray(many_files_pack.read_bytes())
    data[member.offset_data + 5] ^= 0xFF
    many_files_pack.write_bytes(bytes(data))
    report = verify_pack(many_files_pack, trust=trust_of(keypair))
    assert report.error is not None and report.error.code == "E_DIGEST"
    assert report.error.member == member.name
