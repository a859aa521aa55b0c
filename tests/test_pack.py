"""mlpack.pack: deterministic, atomic, refuses what it cannot pack safely."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpack import keys
from mlpack.errors import IOFailure, UsageError, VerificationError
from mlpack.pack import pack_directory
from mlpack.verify import verify_pack

from .conftest import write_model


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_unsigned_pack_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same inputs, any creation order, mtimes, umask, locale, TZ: byte-identical unsigned pack."""
    a = write_model(tmp_path / "a")
    b = tmp_path / "b"
    old = os.umask(0o077)
    try:
        b.mkdir()
        for src in sorted(a.rglob("*"), reverse=True):  # other creation order
            dst = b / src.relative_to(a)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
        for src in sorted(a.rglob("*"), reverse=True):
            dst = b / src.relative_to(a)
            if src.is_file():
                dst.write_bytes(src.read_bytes())
                dst.chmod(0o700 if os.access(src, os.X_OK) else 0o600)
                os.utime(dst, (123456789, 123456789))
    finally:
        os.umask(old)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    monkeypatch.setenv("LC_ALL", "C")
    pack_directory(a, tmp_path / "a.mlpack", key=None, name="m")
    monkeypatch.setenv("TZ", "UTC")
    pack_directory(b, tmp_path / "b.mlpack", key=None, name="m")
    assert _digest(tmp_path / "a.mlpack") == _digest(tmp_path / "b.mlpack")


def test_source_date_epoch_sets_every_mtime(model_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = tmp_path / "m.mlpack"
    pack_directory(model_dir, out, key=None)
    with tarfile.open(out) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
    assert verify_pack(out, trust=(), allow_unsigned=True).ok
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UsageError):
        pack_directory(model_dir, tmp_path / "x.mlpack", key=None)


def test_signed_payload_is_reproducible(model_dir: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    """ECDSA signatures are randomized; everything else (payload, file members) is not."""
    key = keys.load_signing_key(keypair.private)
    r1 = pack_directory(model_dir, tmp_path / "1.mlpack", key=key)
    r2 = pack_directory(model_dir, tmp_path / "2.mlpack", key=key)
    assert r1.root_digest == r2.root_digest
    sig_end = lambda p: p.read_bytes()  # noqa: E731
    one, two = sig_end(tmp_path / "1.mlpack"), sig_end(tmp_path / "2.mlpack")
    assert len(one) == len(two) or abs(len(one) - len(two)) <= 512


def test_repack_of_unpacked_pack_is_identical(model_dir: Path, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    from mlpack.verify import unpack_pack

    first = tmp_path / "first.mlpack"
    pack_directory(model_dir, first, key=None)
    out = tmp_path / "out"
    assert unpack_pack(first, out, trust=(), allow_unsigned=True).ok
    second = tmp_path / "second.mlpack"
    pack_directory(out, second, key=None)  # mlpack.json is the base, the old signature is replaced
    assert _digest(first) == _digest(second)


def test_existing_output_is_not_clobbered(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.mlpack"
    out.write_text("precious")
    with pytest.raises(UsageError) as info:
        pack_directory(model_dir, out, key=None)
    assert info.value.code == "E_EXISTS" and out.read_text() == "precious"
    pack_directory(model_dir, out, key=None, replace_existing=True)
    assert verify_pack(out, trust=(), allow_unsigned=True).ok


def test_output_inside_the_packed_directory_is_skipped(model_dir: Path) -> None:
    out = model_dir / "model.mlpack"
    pack_directory(model_dir, out, key=None)
    result = pack_directory(model_dir, out, key=None, replace_existing=True)
    report = verify_pack(out, trust=(), allow_unsigned=True)
    assert report.ok and result.files == 6  # 5 model files + mlpack.json, not the old pack


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: (d / "link").symlink_to("config.json"), "E_MEMBER_TYPE"),
        (lambda d: os.mkfifo(d / "fifo"), "E_MEMBER_TYPE"),
        (lambda d: (d / "bad\nname").write_text("x"), "E_NAME"),
        (lambda d: (d / "CONFIG.json").write_text("x"), "E_NAME_COLLISION"),
        (lambda d: (d / "aux.txt").write_text("x"), "E_NAME"),
        (lambda d: (d / "w.bin").write_bytes(__import__("pickle").dumps({"a": [1, 2]}, protocol=4)),
         "E_UNSAFE_FORMAT"),
        (lambda d: (d / "x.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"{}"), "E_UNSAFE_FORMAT"),
        (lambda d: ((d / ".mlpack").mkdir(), (d / ".mlpack" / "x").write_text("1")), "E_PATH"),
    ],
)
def test_refused_inputs_leave_nothing(model_dir: Path, tmp_path: Path, make, code: str) -> None:  # type: ignore[no-untyped-def]
    make(model_dir)
    out = tmp_path / "out" / "m.mlpack"
    out.parent.mkdir()
    with pytest.raises(VerificationError) as info:
        pack_directory(model_dir, out, key=None)
    assert info.value.code == code
    assert list(out.parent.iterdir()) == []


def test_missing_and_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        pack_directory(tmp_path / "nope", tmp_path / "m.mlpack", key=None)
    assert info.value.code == "E_INPUT"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError):
        pack_directory(tmp_path / "empty", tmp_path / "m.mlpack", key=None)
    with pytest.raises(UsageError):
        pack_directory(tmp_path / "empty", tmp_path / "no-such-dir" / "m.mlpack", key=None)


def _pack_in_subprocess(src: Path, out: Path, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mlpack", "pack", str(src), "-o", str(out), "--unsigned"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]


def _big_dir(tmp_path: Path, mib: int = 192) -> Path:
    src = tmp_path / "big"
    src.mkdir()
    block = os.urandom(1 << 20)
    with open(src / "weights.bin", "wb") as f:
        for _ in range(mib):
            f.write(block)
    return src


def test_disk_full_leaves_no_partial_output(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the write fail like a full disk: one error line, exit 3, no files."""
    src = _big_dir(tmp_path, 8)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    limit = 4 << 20

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    proc = _pack_in_subprocess(src, out_dir / "m.mlpack", preexec_fn=small_files)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "E_NOSPACE" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_leaves_no_partial_output(tmp_path: Path, signum: int) -> None:
    src = _big_dir(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = _pack_in_subprocess(src, out_dir / "m.mlpack")
    deadline = time.monotonic() + 30
    while not any(out_dir.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.poll() is not None:
        pytest.skip("pack finished before it could be interrupted")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "E_INTERRUPTED" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_file_changed_while_packing_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpack import pack as pack_module

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("original")
    real = pack_module._stat_input

    def stat_then_modify(source):  # type: ignore[no-untyped-def]
        result = real(source)
        if source.name == "a.txt":
            (src / "a.txt").write_text("modified, and longer")
        return result

    monkeypatch.setattr(pack_module, "_stat_input", stat_then_modify)
    with pytest.raises(IOFailure) as info:
        pack_directory(src, tmp_path / "m.mlpack", key=None)
    assert "changed" in info.value.message
    assert not (tmp_path / "m.mlpack").exists()


@pytest.mark.slow
def test_member_over_8_gib_round_trips(tmp_path: Path) -> None:
    """A sparse 8 GiB + 1 KiB source: PAX size record, streamed, verified, bounded memory."""
    src = tmp_path / "huge"
    src.mkdir()
    with open(src / "zeros.bin", "wb") as f:
        f.truncate(8 * 2**30 + 1024)
    out = tmp_path / "huge.mlpack"
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and so counts the forked copy of pytest.
    code = ("import sys; from mlpack.cli import main; rc=main(sys.argv[1:]); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]); "
            "sys.exit(rc)")
    try:
        proc = subprocess.run([sys.executable, "-c", code, "pack", str(src), "-o", str(out), "--unsigned"],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run([sys.executable, "-c", code, "verify", str(out), "--allow-unsigned"],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        assert int(proc.stdout.strip().splitlines()[-1]) < 256 * 1024  # KiB
        import tarfile

        with tarfile.open(out) as tar:
            assert tar.getmember("zeros.bin").size == 8 * 2**30 + 1024
    finally:  # pytest keeps the last runs' temporary directories: do not leave 8 GiB behind
        out.unlink(missing_ok=True)
