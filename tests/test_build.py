"""mlpack build on the real scikit-learn example: every section filled from real captures.

The example project (examples/digits) is copied, put under git, its data prepared and the
model trained once per module (about 3 s); each test builds from a copy of that tree.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from mlpack import keys  # noqa: E402
from mlpack.build import build_project  # noqa: E402
from mlpack.cli import main  # noqa: E402
from mlpack.errors import MlpackError  # noqa: E402
from mlpack.inspection import inspect_pack  # noqa: E402
from mlpack.verify import unpack_pack, verify_pack  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def python(cwd: Path, *args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits") / "digits"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", ".mlpack", "*.safetensors",
                                                                 "__pycache__", "*.mlpack"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "digits")
    python(root, "prepare_data.py")
    python(root, "train.py")
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builds of this module share one wheel-hash cache: pip is asked once."""
    monkeypatch.setenv("MLPACK_CACHE_DIR", str(cache_dir))


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    root = tmp_path / "digits"
    shutil.copytree(trained, root, symlinks=True)
    return root


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[keys.SigningKey, keys.PublicKey]:
    prefix = tmp_path_factory.mktemp("key") / "author"
    private, public, _ = keys.generate(prefix)
    return keys.load_signing_key(private), keys.load_public_key(public)


def test_example_builds_with_every_section_filled(project: Path, key: tuple, tmp_path: Path) -> None:
    signing, public = key
    out = tmp_path / "digits.mlpack"
    result = build_project(project, out, key=signing)
    report = verify_pack(out, trust=[public])
    assert report.ok, report.render()

    m = inspect_pack(out).manifest
    assert m.mlpack == "1.1" and m.name == "digits-logreg" and m.license == "Apache-2.0"
    assert set(m.sections) == {"code", "environment", "datasets", "hardware", "training", "metrics",
                               "entrypoints"}
    s = m.sections
    # code: the commit of the repository, clean tree, the recipe's include rules applied
    assert s["code"]["git"]["commit"] == git(project, "rev-parse", "HEAD")
    assert s["code"]["git"]["dirty"] is False
    unpacked = tmp_path / "unpacked"
    assert unpack_pack(out, unpacked, trust=[public]).ok
    code_files = sorted(p.relative_to(unpacked / "code").as_posix()
                        for p in (unpacked / "code").rglob("*") if p.is_file())
    assert code_files == ["README.md", "common.py", "evaluate.py", "mlpack.toml", "prepare_data.py",
                          "train.py"]
    # environment: a PEP 751 lock with the exact installed versions
    lock = tomllib.loads((unpacked / s["environment"]["lock"]).read_text())
    versions = {p["name"]: p.get("version") for p in lock["packages"]}  # local installs have none
    assert versions["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert versions["numpy"] == importlib.metadata.version("numpy")
    # datasets: both splits, with Parquet schema and row counts (1797 rows in all)
    entries = {e["name"]: e for e in s["datasets"]["entries"]}
    assert set(entries) == {"digits-train", "digits-test"}
    assert entries["digits-train"]["tables"]["rows"] + entries["digits-test"]["tables"]["rows"] == 1797
    assert all(e["mode"] == "referenced" for e in entries.values())
    # training record and metrics: what the run logged
    run = json.loads((project / ".mlpack" / "run.json").read_text())
    assert s["training"]["params"] == {"C": 1.0, "max_iter": 2000, "solver": "lbfgs"}
    (metric,) = s["metrics"]["metrics"]
    logged = next(x for x in run["metrics"] if x["name"] == "accuracy")
    assert metric["value"] == logged["value"] and 0.9 < metric["value"] <= 1
    assert metric["tolerance"] == {"absolute": 0.005} and metric["status"] == "claimed"
    # weights index, read from the safetensors header and byte ranges
    (w,) = m.weights
    assert w.path == "weights/model.safetensors"
    assert sorted(t["name"] for t in w.index["tensors"]) == ["classes", "coef", "intercept"]
    assert s["hardware"]["host_processor_vcpu_count"] == os.cpu_count()
    assert s["entrypoints"]["evaluate"]["metrics"] == "metrics.json"
    assert any("mlpack" in n and "editable" in n for n in result.notes)  # told honestly

    # inspect --json of a 1.1 pack follows the inspect schema (which embeds the manifest's)
    from mlpack import schema

    assert schema.validate(inspect_pack(out).to_dict(), "inspect") == []
    assert schema.validate(m.to_dict(), "manifest") == []
    # the CLI shows every section in readable form
    text = inspect_pack(out).render()
    for word in ("metrics", "training", "code", "datasets", "environment", "hardware", "entrypoints",
                 "accuracy", "digits-test", "scikit-learn" if "scikit-learn" in text else "packages"):
        assert word in text


def test_build_cli_and_dirty_tree(project: Path, tmp_path: Path, key: tuple,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (project / "common.py").write_text((project / "common.py").read_text() + "\n# tuned\n")
    out = tmp_path / "d.mlpack"
    assert main(["build", "-C", str(project), "-o", str(out), "--unsigned", "--allow-stale"]) == 0
    m = inspect_pack(out).manifest
    assert m.sections["code"]["git"]["dirty"] is True
    assert "# tuned" in subprocess.run(["tar", "-xOf", str(out), m.sections["code"]["git"]["diff"]],
                                       capture_output=True, text=True, check=True).stdout


def _fails(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize("case", ["bad-recipe", "missing-dataset", "stale-weights", "missing-weights",
                                  "stale-code", "secret"])
def test_build_failures_are_one_clear_line(case: str, project: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    expected = {"bad-recipe": (2, "E_RECIPE"), "missing-dataset": (2, "E_INPUT"),
                "stale-weights": (1, "E_STALE"), "missing-weights": (2, "E_INPUT"),
                "stale-code": (1, "E_STALE"), "secret": (2, "E_SECRET")}[case]
    recipe = project / "mlpack.toml"
    if case == "bad-recipe":
        recipe.write_text(recipe.read_text().replace('direction = "higher"', 'direction = "up"'))
    elif case == "missing-dataset":
        shutil.rmtree(project / "data" / "test")
    elif case == "stale-weights":
        with open(project / "model.safetensors", "r+b") as f:
            f.seek(-1, 2)
            f.write(b"\x01")
    elif case == "missing-weights":
        (project / "model.safetensors").unlink()
    elif case == "stale-code":
        (project / "train.py").write_text((project / "train.py").read_text() + "\n# edited after the run\n")
    elif case == "secret":
        header = "-----BEGIN EC " + "PRIVATE KEY-----"  # not literal: this file is captured too
        (project / "deploy.py").write_text(f"KEY = '''{header}\nMHcCAQ\n'''\n")
    out = tmp_path / "x.mlpack"
    code, err = _fails(["build", "-C", str(project), "-o", str(out), "--unsigned"], capsys)
    assert (code, err.split("]")[0]) == (expected[0], f"mlpack: error: [{expected[1]}"), err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_build_without_git_or_run_record(project: Path, tmp_path: Path) -> None:
    shutil.rmtree(project / ".git")
    (project / ".mlpack" / "run.json").unlink()
    recipe = project / "mlpack.toml"
    with pytest.raises(MlpackError) as err:  # no run: the expected metric has no value to default to
        build_project(project, tmp_path / "p.mlpack", key=None)
    assert err.value.code == "E_RECIPE" and "accuracy" in err.value.message
    recipe.write_text(recipe.read_text().replace('direction = "higher"', 'direction = "higher"\nvalue = 0.97'))
    result = build_project(project, tmp_path / "p.mlpack", key=None)
    assert "git" not in result.manifest.sections["code"]
    assert any("no training run" in n for n in result.notes)
    assert any("git" in n for n in result.notes)
    assert result.manifest.sections["metrics"]["metrics"][0]["value"] == 0.97
    assert verify_pack(tmp_path / "p.mlpack", trust=[], allow_unsigned=True).ok


def test_output_exists_is_refused(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.mlpack"
    out.write_bytes(b"keep")
    with pytest.raises(MlpackError) as err:
        build_project(project, out, key=None)
    assert err.value.code == "E_EXISTS" and out.read_bytes() == b"keep"


def test_s3_referenced_and_included_datasets(project: Path, tmp_path: Path, s3, moto_endpoint: str,  # type: ignore[no-untyped-def]
                                             key: tuple) -> None:
    client, bucket = s3
    local_test = project / "data" / "test"
    for f in local_test.rglob("*"):
        if f.is_file():
            client.put_object(Bucket=bucket, Key=f"digits/test/{f.relative_to(local_test).as_posix()}",
                              Body=f.read_bytes())
    recipe = project / "mlpack.toml"
    text = recipe.read_text()
    text = text.replace('uri = "data/test"', f'uri = "s3://{bucket}/digits/test"\nendpoint = "{moto_endpoint}"')
    text = text.replace('uri = "data/train"', 'uri = "data/train"\nmode = "included"')
    recipe.write_text(text)
    signing, public = key
    out = tmp_path / "s3.mlpack"
    build_project(project, out, key=signing)
    assert verify_pack(out, trust=[public]).ok
    entries = {e["name"]: e for e in inspect_pack(out).manifest.sections["datasets"]["entries"]}
    assert entries["digits-test"]["uri"] == f"s3://{bucket}/digits/test"
    from mlpack.datasets import build as manifest_of

    assert entries["digits-test"]["root_digest"] == manifest_of(local_test).root_digest  # same bytes
    assert entries["digits-train"]["mode"] == "included"
    listed = subprocess.run(["tar", "-tf", str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert "datasets/digits-train/digits.parquet" in listed and "datasets/digits-test.parquet" in listed
    assert not any(n.startswith("datasets/digits-test/") for n in listed)  # referenced: manifest only


def _onnx_project(root: Path, weights: list[str]) -> None:
    onnx = pytest.importorskip("onnx")
    from tests.test_weights import mlp

    model, _ = mlp()
    (root / "onnx").mkdir(parents=True)
    onnx.save_model(model, str(root / "onnx" / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    (root / "predict.py").write_text("print('hello')\n")
    listed = ", ".join(f'"{w}"' for w in weights)
    (root / "mlpack.toml").write_text(f'[model]\nname = "mlp"\nweights = [{listed}]\n'
                                      '[environment]\nmode = "none"\n')


def test_onnx_weights_with_external_data(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    _onnx_project(root, ["onnx/model.onnx", "onnx/model.onnx.data"])
    out = tmp_path / "o.mlpack"
    result = build_project(root, out, key=None)
    (w,) = result.manifest.weights
    assert (w.path, w.format) == ("weights/onnx/model.onnx", "onnx")
    assert w.index["external_data"] == ["weights/onnx/model.onnx.data"]
    assert verify_pack(out, trust=[], allow_unsigned=True).ok
    assert result.manifest.sections["environment"]["mode"] == "none"


def test_onnx_external_data_must_be_packed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proj"
    _onnx_project(root, ["onnx/model.onnx"])  # its .data file is not among the weights
    out = tmp_path / "o.mlpack"
    code, err = _fails(["build", "-C", str(root), "-o", str(out), "--unsigned"], capsys)
    assert code == 1 and "model.onnx.data" in err and not out.exists()
