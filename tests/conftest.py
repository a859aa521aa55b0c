"""Shared fixtures: key pairs, small real model directories, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlpack import keys
from mlpack.cli import main

REPO = Path(__file__).resolve().parents[1]


@dataclass
class KeyPair:
    private: Path
    public: Path
    fingerprint: str


def make_keypair(directory: Path, name: str = "author") -> KeyPair:
    private, public, fingerprint = keys.generate(directory / name)
    return KeyPair(private, public, fingerprint)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets an empty mlpack cache (the wheel-hash cache must not leak between tests)."""
    monkeypatch.setenv("MLPACK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return make_keypair(tmp_path_factory.mktemp("keys2"), "stranger")


def write_model(root: Path) -> Path:
    """A small but real model directory: safetensors weights, config, code, nested data."""
    import numpy as np
    from safetensors.numpy import save_file

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    save_file(
        {"layer1.weight": rng.standard_normal((16, 8)).astype(np.float32),
         "layer1.bias": np.zeros(16, dtype=np.float32)},
        str(root / "model.safetensors"),
        metadata={"arch": "mlp"},
    )
    (root / "config.json").write_text('{"hidden": 16}\n')
    (root / "code").mkdir()
    (root / "code" / "train.py").write_text("print('training')\n")
    run = root / "code" / "run.sh"
    run.write_text("#!/bin/sh\necho run\n")
    run.chmod(0o755)
    (root / "data").mkdir()
    (root / "data" / "labels.csv").write_text("id,label\n1,cat\n")
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_model(tmp_path / "model")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``mlpack ARGS`` in-process through the real entry point."""

    def run(*args: str | os.PathLike[str]) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_process(*args: str | os.PathLike[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mlpack ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "mlpack", *map(str, args)], capture_output=True,
                          text=True, **kwargs)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- S3 (moto_server)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API server on loopback: ``moto_server`` as a subprocess."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        found = shutil.which("moto_server")
        if found is None:
            pytest.skip("moto_server is not installed (pip install 'moto[server]')")
        exe = Path(found)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(endpoint + "/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start (exit status {proc.poll()})")
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    pytest.importorskip("boto3")
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                       "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    bucket = "data-" + os.urandom(4).hex()
    client.create_bucket(Bucket=bucket)
    return client, bucket
