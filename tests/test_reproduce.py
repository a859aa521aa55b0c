"""verify --eval / --rebuild on the real scikit-learn example, in a fresh environment and the sandbox.

The example is trained in a small virtual environment of its own (mlpack + scikit-learn,
made with uv), so the pack's lock is what the example needs; the verifier then builds a
fresh environment from that lock (cached by its digest) and runs the pack's entry points
inside bubblewrap. Failing verdicts: a changed data file, a changed package version, a
metric outside its tolerance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from mlpack import keys  # noqa: E402
from mlpack.build import build_project  # noqa: E402
from mlpack.cli import main  # noqa: E402
from mlpack.reproduce import reproduce  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "digits"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def uv() -> str:
    found = Path(sys.executable).with_name("uv")
    return str(found) if found.exists() else (shutil.which("uv") or pytest.skip("uv is not installed"))


def make_venv(path: Path, *extra: str) -> Path:
    subprocess.run([uv(), "venv", "-q", str(path)], check=True, capture_output=True)
    python = path / "bin" / "python"
    subprocess.run([uv(), "pip", "install", "-q", "--python", str(python), "-e", str(REPO), "scikit-learn",
                    *extra], check=True, capture_output=True)
    return python


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPACK_CACHE_DIR", str(cache))  # environments and wheel hashes: built once


@pytest.fixture(scope="module")
def author(tmp_path_factory: pytest.TempPathFactory) -> tuple[keys.SigningKey, keys.PublicKey]:
    private, public, _ = keys.generate(tmp_path_factory.mktemp("key") / "author")
    return keys.load_signing_key(private), keys.load_public_key(public)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, cache: Path,
            author: tuple[keys.SigningKey, keys.PublicKey]) -> tuple[Path, Path, Path]:
    """(project, pack, the example's python): trained and built once for the module."""
    base = tmp_path_factory.mktemp("repro")
    python = make_venv(base / "venv")
    root = base / "digits"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", ".mlpack", "*.safetensors", "__pycache__"))
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "digits"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)
    for script in ("prepare_data.py", "train.py"):
        subprocess.run([str(python), script], cwd=root, check=True, capture_output=True)
    old = os.environ.get("MLPACK_CACHE_DIR")
    os.environ["MLPACK_CACHE_DIR"] = str(cache)
    try:
        build_project(root, base / "digits.mlpack", key=author[0])
    finally:
        if old is None:
            os.environ.pop("MLPACK_CACHE_DIR")
        else:
            os.environ["MLPACK_CACHE_DIR"] = old
    return root, base / "digits.mlpack", python


def data(root: Path) -> dict[str, str]:
    return {"digits-test": str(root / "data" / "test"), "digits-train": str(root / "data" / "train")}


def test_eval_and_rebuild_are_reproduced(example: tuple[Path, Path, Path], author: tuple, tmp_path: Path) -> None:
    root, pack, _ = example
    result = reproduce(pack, trust=[author[1]], evaluate=True, rebuild=True, data=data(root), exact=True)
    assert result.verdict == "reproduced", result.render()
    assert result.sandbox == "bubblewrap"
    levels = {lv.name: lv.status for lv in result.levels.values()}
    assert levels == {"integrity": "passed", "environment": "passed", "data": "passed", "evaluate": "passed",
                      "rebuild": "passed"}
    run = json.loads((root / ".mlpack" / "run.json").read_text())
    logged = next(m["value"] for m in run["metrics"] if m["name"] == "accuracy")
    by_level = {m.level: m for m in result.metrics}
    assert by_level["evaluate"].observed == logged and by_level["evaluate"].status == "reproduced"
    assert by_level["rebuild"].observed == logged and by_level["rebuild"].computed_by == "pack"
    # one thread, fixed seed: the rebuilt weights are bit-identical to the shipped ones
    assert result.weights is not None and result.weights["identical"] == result.weights["tensors"] == 3
    assert result.environment["mode"] == "lock" and result.environment["installer"] in ("uv", "pip")
    assert any("mlpack" in s for s in result.environment["skipped"])  # the author's editable install

    # the second verify reuses the environment built for this lock
    again = reproduce(pack, trust=[author[1]], evaluate=True, data=data(root))
    assert again.verdict == "reproduced" and again.environment["cached"] is True

    # CLI: --json follows the schema, --report writes Markdown, exit 0
    from mlpack import schema

    md = tmp_path / "report.md"
    args = ["verify", str(pack), "--key", str(author_pub(author, tmp_path)), "--eval", "--json", "--report", str(md)]
    args += [a for name, path in data(root).items() for a in ("--data", f"{name}={path}")]
    assert main(args) == 0
    text = md.read_text()
    assert "**Verdict: reproduced**" in text and "| evaluate | accuracy | digits-test/test |" in text
    assert schema.validate(result.to_dict(), "reproduction") == []


def author_pub(author: tuple, tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "author.pub"
    path.write_bytes(author[1].key.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_changed_data_file_stops_before_anything_runs(example: tuple[Path, Path, Path], author: tuple,
                                                      tmp_path: Path) -> None:
    root, pack, python = example
    drifted = tmp_path / "test"
    shutil.copytree(root / "data" / "test", drifted)
    (drifted / "extra.csv").write_text("x\n1\n")  # "someone added a file"
    result = reproduce(pack, trust=[author[1]], evaluate=True,
                       data={**data(root), "digits-test": str(drifted)})
    assert result.verdict == "failed" and result.levels["data"].status == "failed"
    assert "digits-test" in result.levels["data"].summary
    assert any("+extra.csv" in d for d in result.levels["data"].details)
    assert result.levels["evaluate"].status == "not run" and not result.commands
    allowed = reproduce(pack, trust=[author[1]], evaluate=True, allow_data_drift=True,
                        data={**data(root), "digits-test": str(drifted)})
    assert "DRIFT ALLOWED" in allowed.levels["data"].summary and allowed.levels["evaluate"].status == "passed"


def test_changed_package_version_fails_the_environment(example: tuple[Path, Path, Path], tmp_path: Path,
                                                       author: tuple) -> None:
    root, pack, _ = example
    other = make_venv(tmp_path / "other", "threadpoolctl==3.5.0")
    args = ["-m", "mlpack", "verify", str(pack), "--key", str(author_pub(author, tmp_path)), "--eval",
            "--env", "current", "--data", f"digits-test={root / 'data' / 'test'}"]
    proc = subprocess.run([str(other), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "MLPACK_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "environment" in proc.stdout and "threadpoolctl" in proc.stdout and "3.5.0" in proc.stdout
    assert "FAILED" in proc.stdout and "Traceback" not in proc.stderr


def test_metric_outside_tolerance_is_not_reproduced(example: tuple[Path, Path, Path], author: tuple,
                                                    tmp_path: Path) -> None:
    root, _, _ = example
    project = tmp_path / "digits"
    shutil.copytree(root, project, symlinks=True)
    evaluate = project / "evaluate.py"  # the evaluation shipped in this pack loses a band of pixels
    evaluate.write_text(evaluate.read_text().replace("x, y = load_split(args.data)",
                                                     "x, y = load_split(args.data)\n    x[:, 16:48] = 0.0"))
    pack = tmp_path / "stale.mlpack"
    build_project(project, pack, key=author[0], allow_stale=True)
    result = reproduce(pack, trust=[author[1]], evaluate=True, data=data(root))
    assert result.verdict == "failed" and result.levels["evaluate"].status == "failed"
    (metric,) = result.metrics
    assert metric.status == "not reproduced" and metric.outcome == "worse"
    assert metric.observed is not None and metric.observed < metric.claimed - 0.005
    assert "accuracy" in result.levels["evaluate"].summary and "worse" in result.levels["evaluate"].summary


def test_eval_with_the_verifiers_own_harness(example: tuple[Path, Path, Path], author: tuple, tmp_path: Path) -> None:
    root, pack, _ = example
    harness = tmp_path / "my_eval.py"
    harness.write_text(
        "import argparse, json, pathlib\n"
        "import numpy as np, pyarrow.parquet as pq\n"
        "from safetensors.numpy import load_file\n"
        "p = argparse.ArgumentParser(); p.add_argument('--out'); p.add_argument('--weights')\n"
        "p.add_argument('--data', action='append')\n"
        "a = p.parse_args(); data = dict(d.split('=', 1) for d in a.data)\n"
        "t = pq.read_table(next(pathlib.Path(data['digits-test']).rglob('*.parquet')))\n"
        "x = np.stack([t[f'p{i}'].to_numpy() for i in range(64)], axis=1) / 16.0\n"
        "w = load_file(a.weights)\n"
        "pred = w['classes'][np.argmax(x @ w['coef'].T + w['intercept'], axis=1)]\n"
        "acc = float(np.mean(pred == t['label'].to_numpy()))\n"
        "pathlib.Path(a.out, 'metrics.json').write_text(json.dumps({'accuracy': acc}))\n")
    result = reproduce(pack, trust=[author[1]], evaluate=True, data=data(root), eval_with=harness)
    assert result.verdict == "reproduced", result.render()
    assert result.metrics[0].computed_by == "verifier"


def test_attestation_is_signed_found_and_checked(example: tuple[Path, Path, Path], author: tuple, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, pack, _ = example
    copy = tmp_path / "digits.mlpack"
    shutil.copy(pack, copy)
    report = tmp_path / "r.json"
    result = reproduce(copy, trust=[author[1]], evaluate=True, data=data(root))
    report.write_text(json.dumps(result.to_dict()))
    private, public, fingerprint = keys.generate(tmp_path / "verifier")
    assert main(["attest", str(copy), str(report), "--key", str(private)]) == 0
    (att,) = list(tmp_path.glob("digits.mlpack.*.att.json"))
    capsys.readouterr()
    assert main(["verify", str(copy), "--key", str(author_pub(author, tmp_path)), "--key", str(public)]) == 0
    out = capsys.readouterr().out
    assert f"reproduced (evaluate) by {fingerprint} (trusted)" in out and "accuracy 0.96" in out
    doc = json.loads(att.read_text())  # altered: listed as a bad signature, the pack still verifies
    doc["dsseEnvelope"]["payload"] = doc["dsseEnvelope"]["payload"][:-8] + "AAAAAAA="
    att.write_text(json.dumps(doc))
    assert main(["verify", str(copy), "--key", str(author_pub(author, tmp_path))]) == 0
    assert "[E_BAD_SIGNATURE]" in capsys.readouterr().out


def test_refusals_are_one_line(example: tuple[Path, Path, Path], author: tuple, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    root, pack, _ = example
    pub = str(author_pub(author, tmp_path))
    cases = [
        (["verify", str(pack), "--key", pub, "--eval"], 2, "E_USAGE", "digits-test"),  # referenced, unbound
        (["verify", str(pack), "--key", pub, "--eval", "--data", "nope=/x"], 2, "E_USAGE", "nope"),
        (["verify", str(pack), "--key", pub, "--data", "a=b"], 2, "E_USAGE", "--eval"),
        (["verify", str(pack), "--key", pub, "--eval", "--data", "digits-test"], 2, "E_USAGE", "NAME=PATH"),
        (["verify", "oci://127.0.0.1:5/x:1", "--eval", "--allow-unsigned"], 2, "E_USAGE", "pull"),
        (["verify", str(pack), "--key", pub, "--eval", "--env", "conda"], 2, "E_USAGE", "--env"),
    ]
    for args, code, err_code, word in cases:
        assert main(args) == code, args
        err = capsys.readouterr().err
        assert f"[{err_code}]" in err and word in err and "Traceback" not in err
