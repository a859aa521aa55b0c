"""mlpack.cli: every verb end to end; one-line errors, documented exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .conftest import run_process


def test_keygen_pack_inspect_verify_unpack(cli, tmp_path: Path, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("keygen", "-o", tmp_path / "me")
    assert r.code == 0 and "fingerprint  sha256:" in r.out
    assert stat.S_IMODE((tmp_path / "me.pem").stat().st_mode) == 0o600
    fingerprint = r.out.split("fingerprint  ")[1].strip()

    pack = tmp_path / "model.mlpack"
    r = cli("pack", model_dir, "-o", pack, "--key", tmp_path / "me.pem", "--name", "demo")
    assert r.code == 0, r.err
    assert f"signed by {fingerprint}" in r.out

    r = cli("inspect", pack)
    assert r.code == 0 and "demo" in r.out and "NOT verified" in r.out and fingerprint in r.out
    r = cli("inspect", pack, "--json")
    info = json.loads(r.out)
    assert info["manifest"]["name"] == "demo" and info["signature"]["hint"] == fingerprint
    assert info["manifest"]["weights"] == [{"path": "model.safetensors", "format": "safetensors",
                                             "size": (model_dir / "model.safetensors").stat().st_size}]

    r = cli("verify", pack, "--key", tmp_path / "me.pub")
    assert r.code == 0 and "VERIFIED" in r.out
    r = cli("verify", pack, "--key", tmp_path / "me.pub", "--json")
    assert json.loads(r.out)["verdict"] == "verified"

    r = cli("unpack", pack, "-d", tmp_path / "out", "--key", tmp_path / "me.pub")
    assert r.code == 0 and (tmp_path / "out" / "model.safetensors").is_file()


def test_verify_failure_is_exit_1_with_one_error_line(cli, tmp_path: Path, model_dir: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    pack = tmp_path / "m.mlpack"
    assert cli("pack", model_dir, "-o", pack, "--key", keypair.private).code == 0
    data = bytearray(pack.read_bytes())
    data[data.index(b"print('training')")] ^= 1
    pack.write_bytes(bytes(data))
    r = cli("verify", pack, "--key", keypair.public)
    assert r.code == 1
    assert r.err.startswith("mlpack: error: [E_DIGEST]") and "code/train.py" in r.err
    r = cli("verify", pack, "--key", keypair.public, "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and doc["verdict"] == "failed" and doc["error"]["code"] == "E_DIGEST"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["verify", "{tmp}/nope.mlpack", "--key", "{pub}"], 2, "[E_INPUT]"),
        (["verify", "{pack}"], 2, "[E_USAGE]"),  # signed pack, no key given
        (["verify", "{pack}", "--key", "{tmp}/nokey.pub"], 2, "[E_INPUT]"),
        (["verify", "{pack}", "--key", "{pack}"], 2, "[E_KEY]"),
        (["verify", "{pack}", "--key", "{other}"], 1, "[E_UNTRUSTED_KEY]"),
        (["verify", "{pack}", "--bogus"], 2, "No such option"),
        (["verify", "{pack}", "--key", "{pub}", "--threshold", "0"], 2, "threshold"),
        (["pack", "{model}", "-o", "{tmp}/x.mlpack"], 2, "[E_USAGE]"),  # neither --key nor --unsigned
        (["pack", "{model}", "-o", "{tmp}/x.mlpack", "--unsigned", "--hash", "md5"], 2, "[E_USAGE]"),
        (["pack", "{tmp}/nodir", "-o", "{tmp}/x.mlpack", "--unsigned"], 2, "[E_INPUT]"),
        (["pack", "{model}", "-o", "{pack}", "--unsigned"], 2, "[E_EXISTS]"),
        (["pack", "{model}", "-o", "{tmp}/x.mlpack", "--key", "{pub}"], 2, "[E_KEY]"),
        (["unpack", "{pack}", "-d", "{tmp}", "--key", "{pub}"], 2, "[E_EXISTS]"),
        (["inspect", "{tmp}/nope.mlpack"], 2, "[E_INPUT]"),
        (["inspect", "{model}/config.json"], 1, "[E_HEADER]"),
        (["keygen", "-o", "{tmp}/author"], 2, "[E_EXISTS]"),
    ],
)
def test_user_errors(cli, tmp_path: Path, model_dir: Path, keypair, other_keypair, args, code, needle) -> None:  # type: ignore[no-untyped-def]
    pack = tmp_path / "m.mlpack"
    assert cli("pack", model_dir, "-o", pack, "--key", keypair.private).code == 0
    (tmp_path / "author.pem").write_text("x")
    values = {"tmp": tmp_path, "pub": keypair.public, "pack": pack, "model": model_dir,
              "other": other_keypair.public}
    r = cli(*[a.format(**values) for a in args])
    assert r.code == code, (r.out, r.err)
    assert needle in r.err
    assert "Traceback" not in r.err


def test_real_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    proc = run_process("verify", tmp_path / "missing.mlpack", "--allow-unsigned")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"mlpack: error: [E_INPUT] {tmp_path / 'missing.mlpack'} does not exist"
    proc = run_process("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("mlpack ")


def test_unsigned_flow(cli, tmp_path: Path, model_dir: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    pack = tmp_path / "u.mlpack"
    r = cli("pack", model_dir, "-o", pack, "--unsigned")
    assert r.code == 0 and "UNSIGNED" in r.out
    r = cli("verify", pack)
    assert r.code == 2 and "[E_USAGE] no trusted key given" in r.err
    r = cli("verify", pack, "--key", keypair.public)
    assert r.code == 1 and "[E_UNSIGNED]" in r.err and "--allow-unsigned" in r.err
    r = cli("verify", pack, "--allow-unsigned")
    assert r.code == 0 and "UNSIGNED" in r.out and "NOT SIGNED" in r.out


def test_private_key_can_verify_too_and_password_protected_keys(cli, tmp_path: Path, model_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "enc.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret")))
    r = cli("pack", model_dir, "-o", tmp_path / "m.mlpack", "--key", tmp_path / "enc.pem")
    assert r.code == 2 and "MLPACK_KEY_PASSWORD" in r.err
    monkeypatch.setenv("MLPACK_KEY_PASSWORD", "s3cret")
    assert cli("pack", model_dir, "-o", tmp_path / "m.mlpack", "--key", tmp_path / "enc.pem").code == 0
    assert cli("verify", tmp_path / "m.mlpack", "--key", tmp_path / "enc.pem").code == 0


def test_ed25519_key_is_refused_with_a_hint(cli, tmp_path: Path, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    r = cli("pack", model_dir, "-o", tmp_path / "m.mlpack", "--key", tmp_path / "ed.pem")
    assert r.code == 2 and "[E_KEY]" in r.err and "mlpack keygen" in r.err


def test_inspect_reads_under_one_mib(tmp_path: Path) -> None:
    """inspect seeks past the signature member: measured with /proc/self/io of the process."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "weights.bin", "wb") as f:
        f.write(os.urandom(4 << 20))
    for i in range(3000):  # a large signature member too
        (src / f"f{i:04d}.txt").write_text(str(i))
    pack = tmp_path / "m.mlpack"
    assert run_process("pack", src, "-o", pack, "--unsigned").returncode == 0
    code = ("import sys; from mlpack.cli import main; main(sys.argv[1:]); "
            "io = dict(l.split(': ') for l in open('/proc/self/io').read().splitlines()); "
            "print('READ', io['rchar'].strip())")
    base = run_process_code(code, "--version")
    proc = run_process_code(code, "inspect", str(pack))
    assert proc.returncode == 0, proc.stderr
    read = int(proc.stdout.split("READ ")[1]) - int(base.stdout.split("READ ")[1])
    assert read < 1 << 20, read
    assert os.path.getsize(pack) > 4 << 20


def run_process_code(code: str, *args: str):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
