"""Each example's one command (run.sh) trains, builds a signed pack and verifies --rebuild: reproduced.

The examples run in virtual environments of their own (made with uv), like a user's project;
the verifier rebuilds a fresh environment from each pack's lock inside the sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def uv() -> str:
    found = Path(sys.executable).with_name("uv")
    return str(found) if found.exists() else (shutil.which("uv") or pytest.skip("uv is not installed"))


def run_example(name: str, tmp_path: Path, *packages: str) -> str:
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "-q", str(venv)], check=True, capture_output=True)
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-e", str(REPO),
                    "scikit-learn", *packages], check=True, capture_output=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
           "MLPACK_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(REPO / "examples" / name / "run.sh"), str(tmp_path / "work")], env=env,
                          capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_digits_sklearn_is_reproduced(tmp_path: Path) -> None:
    out = run_example("digits", tmp_path)
    assert "REPRODUCED" in out and "[ok  ] rebuild" in out
    assert "**Verdict: reproduced**" in (tmp_path / "work" / "report.md").read_text()


@pytest.mark.slow
def test_digits_torch_with_onnx_is_reproduced(tmp_path: Path) -> None:
    wheels = Path("/opt/wheels")  # where this machine keeps the CPU build of torch 2.13.0
    extra = ["--find-links", str(wheels)] if wheels.is_dir() else []
    out = run_example("digits-torch", tmp_path, *extra, "torch==2.13.0", "onnx", "onnxruntime")
    assert "REPRODUCED" in out and "[ok  ] rebuild" in out
    report = (tmp_path / "work" / "report.md").read_text()
    assert "**Verdict: reproduced**" in report and "bit-identical" in report


@pytest.mark.slow
def test_the_demo_the_readme_runs(tmp_path: Path) -> None:
    """README command 1's main job, with this interpreter's environment."""
    pytest.importorskip("sklearn")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "MLPACK_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([str(REPO / "examples" / "demo.sh"), str(tmp_path / "work")], env=env,
                          capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for section in ("metrics", "training", "code", "datasets", "environment", "hardware", "entrypoints"):
        assert f"\n  {section}\n" in out  # inspect shows every section
    assert "digits.mlpack: VERIFIED" in out and "digits.mlpack: REPRODUCED" in out
    assert "tampered.mlpack: FAILED" in out and "[E_DIGEST]" in proc.stderr
