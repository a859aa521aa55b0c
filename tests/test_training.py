"""mlpack.training: the run record written by mlpack.run(), weights, E_STALE, the section."""

from __future__ import annotations

import argparse
import enum
import hashlib
import importlib.metadata
import json
import os
import random
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from mlpack import training
from mlpack.convert import load_sklearn
from mlpack.errors import IOFailure, MlpackError, UsageError, VerificationError
from mlpack.training import (
    check_code,
    check_run,
    check_weights,
    display_path,
    jsonable_params,
    load_run,
    resolve_recorded,
    run,
    save_weights,
    training_section,
)

REPO = Path(__file__).resolve().parents[1]


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "spec" / "schema" / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def one_line(err: MlpackError) -> str:
    assert "\n" not in str(err) and err.hint
    return err.message


def record_of(project: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((project / ".mlpack" / "run.json").read_text())
    return doc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text("print('train')\n")
    (root / "mlpack.toml").write_text(
        '[model]\nname = "m"\nweights = ["model.safetensors"]\n'
        '[code]\ninclude = ["**/*.py", "mlpack.toml"]\n')
    return root


@dataclass
class Optim:
    lr: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)


DEEP: Any = 1
for _ in range(26):
    DEEP = [DEEP]


class Mode(enum.Enum):
    FAST = "fast"


@dataclass
class Config:
    epochs: int = 3
    optim: Optim = field(default_factory=Optim)
    out: Path = Path("out/model.safetensors")
    mode: Mode = Mode.FAST
    scale: Any = field(default_factory=lambda: np.float32(0.5))


# -- the record -----------------------------------------------------------------------------


def test_run_writes_a_complete_schema_valid_record(project: Path) -> None:
    weights = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    with run(params=Config(), seed=0, threads=1, deterministic=True, project=project,
             parent="sha256:" + "ab" * 32) as r:
        r.log_metric("accuracy", np.float64(0.5), dataset="digits-test", split="test",
                     direction="higher")
        r.log_metric("loss", 0.25)
        r.log_metric("accuracy", 0.75, dataset="digits-test", split="test", direction="higher")
        saved = r.save_weights(weights, project / "model.safetensors")
    rec = record_of(project)
    assert rec == r.record
    validator("run").validate(rec)
    validator("hardware").validate(rec["hardware"])
    validator("training").validate(training_section(rec))
    assert rec["status"] == "completed" and rec["mlpack_run"] == "1.0" and "error" not in rec
    assert rec["params"] == {"epochs": 3, "optim": {"lr": 0.1, "betas": [0.9, 0.99]},
                             "out": "out/model.safetensors", "mode": "fast", "scale": 0.5}
    assert rec["seeds"] == {"python": 0, "numpy": 0} | (
        {"torch": 0} if "torch" in sys.modules else {})
    assert rec["determinism"]["requested"] is True
    assert rec["threads"]["requested"] == 1 and rec["threads"]["pools"]
    assert all(p["num_threads"] == 1 for p in rec["threads"]["pools"])
    assert all(p["num_threads"] == 1 for p in rec["hardware"]["threadpools"])
    assert rec["variables"]["OMP_NUM_THREADS"] == "1"
    assert rec["variables"]["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert rec["command"][0] == "python" and rec["command"][1:] == sys.orig_argv[1:]
    assert rec["cwd"] == display_path(os.getcwd(), project)
    assert resolve_recorded(rec["python"]["executable"], project) == Path(sys.executable)
    assert rec["parent"] == "sha256:" + "ab" * 32
    assert rec["started"] <= rec["ended"] and rec["duration_s"] >= 0
    assert rec["packages"]["numpy"] == np.__version__
    assert rec["packages"]["jsonschema"] == importlib.metadata.version("jsonschema")
    assert rec["metrics"] == [
        {"name": "accuracy", "value": 0.75, "dataset": "digits-test", "split": "test",
         "direction": "higher"},
        {"name": "loss", "value": 0.25}]
    digest = hashlib.sha256((project / "model.safetensors").read_bytes()).hexdigest()
    assert rec["weights"] == [{"path": "model.safetensors", "size": saved.size, "sha256": digest,
                               "recorded": saved.recorded, "how": "saved",
                               "format": "safetensors"}]
    pytest.importorskip("mlpack.code")
    from mlpack.code import fingerprint

    assert rec["code_fingerprint"] == fingerprint(project, ["**/*.py", "mlpack.toml"], [],
                                                  skip=["model.safetensors", "mlpack.toml"])  # the recipe is not training code


def test_seeds_give_equal_draws(project: Path) -> None:
    def draws(seed: int) -> tuple[float, float]:
        with run(seed=seed, project=project):
            return random.random(), float(np.random.rand())

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert record_of(project)["seeds"]["numpy"] == 4


def test_no_seed_is_recorded_as_such(project: Path) -> None:
    with run(project=project):
        pass
    rec = record_of(project)
    assert rec["seeds"] == {} and any("no seed" in n for n in rec["notes"])


def test_threads_are_pinned_inside_and_restored_after(project: Path) -> None:
    before_env = os.environ.get("OPENBLAS_NUM_THREADS")
    with threadpool_limits(limits=2):
        assert {p["num_threads"] for p in threadpool_info()} == {2}
        with run(threads=1, project=project):
            assert {p["num_threads"] for p in threadpool_info()} == {1}
            assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
            # a child process inherits the pin
            out = subprocess.run([sys.executable, "-c",
                                  "import os; print(os.environ['OMP_NUM_THREADS'])"],
                                 capture_output=True, text=True, check=True).stdout
            assert out.strip() == "1"
        assert {p["num_threads"] for p in threadpool_info()} == {2}
    assert os.environ.get("OPENBLAS_NUM_THREADS") == before_env


def test_pythonhashseed_is_recorded(project: Path) -> None:
    code = ("import mlpack.training as t, sys\n"
            f"with t.run(project={str(project)!r}): pass\n"
            "print('torch' in sys.modules, 'jsonschema' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONHASHSEED": "0"},
                         capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # run() imports no framework the script did not
    rec = record_of(project)
    assert rec["determinism"]["pythonhashseed"] == "0"
    assert rec["variables"]["PYTHONHASHSEED"] == "0"
    assert not any("PYTHONHASHSEED" in n for n in rec["notes"])
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    rec = record_of(project)
    assert "pythonhashseed" not in rec["determinism"]
    assert any(n.startswith("PYTHONHASHSEED is not set") for n in rec["notes"])


def test_installed_packages_match_importlib_metadata() -> None:
    import re

    expected: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        expected.setdefault(re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(), dist.version)
    assert training.installed_packages() == dict(sorted(expected.items()))


def test_importing_the_module_stays_light() -> None:
    code = ("import sys, mlpack.training\n"
            "heavy = {'numpy', 'torch', 'jsonschema', 'threadpoolctl', 'mlpack.pack', 'tomllib'}\n"
            "print(sorted(heavy & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_failed_run_is_recorded_and_the_exception_propagates(project: Path) -> None:
    before = os.environ.get("MKL_NUM_THREADS")
    with pytest.raises(KeyError, match="secret-value"), run(threads=1, project=project):
        raise KeyError("secret-value")
    rec = record_of(project)
    validator("run").validate(rec)
    assert rec["status"] == "failed" and rec["error"] == {"type": "KeyError"}
    assert "secret-value" not in (project / ".mlpack" / "run.json").read_text()
    assert os.environ.get("MKL_NUM_THREADS") == before


def test_an_error_of_a_module_is_qualified(project: Path) -> None:
    with pytest.raises(json.JSONDecodeError), run(project=project):
        json.loads("{")
    assert record_of(project)["error"] == {"type": "json.decoder.JSONDecodeError"}


def test_sys_exit_zero_completes(project: Path) -> None:
    with pytest.raises(SystemExit), run(project=project):
        sys.exit(0)
    assert record_of(project)["status"] == "completed"
    with pytest.raises(SystemExit), run(project=project):
        sys.exit(2)
    assert record_of(project)["status"] == "failed"


def test_an_unwritable_record_never_hides_the_training_error(project: Path) -> None:
    (project / ".mlpack").write_text("a file where the directory should be")
    with pytest.raises(ZeroDivisionError) as info, run(project=project):
        _ = 1 / 0
    assert any("run record was not written" in n for n in info.value.__notes__)
    with pytest.raises(IOFailure) as io_info, run(project=project):
        pass
    assert io_info.value.code == "E_IO" and "run.json" in one_line(io_info.value)


# -- arguments ------------------------------------------------------------------------------


def test_params_convert_plain_containers() -> None:
    ns = argparse.Namespace(lr=0.1, layers=[64, 32], name=None, flag=True)
    assert jsonable_params(ns) == {"lr": 0.1, "layers": [64, 32], "name": None, "flag": True}
    assert jsonable_params(None) == {}
    assert jsonable_params({"a": {"b": (1, 2)}}) == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(("params", "where"), [
    ({"opt": {"schedule": lambda e: e}}, "params.opt.schedule is a function"),
    ({"lr": float("nan")}, "params.lr is nan"),
    ({"layers": [1, float("inf")]}, "params.layers[1] is inf"),
    ({"map": {1: "a"}}, "params.map has the key 1"),
    ({"data": np.zeros(3)}, "params.data is a ndarray"),
    ({"tags": {"a", "b"}}, "params.tags is a set"),
    ([1, 2], "params is a list, not a mapping"),
    ({"a": DEEP}, "nested more than 24"),
])
def test_params_that_are_not_json_are_refused_naming_the_key(params: object, where: str,
                                                             project: Path) -> None:
    with pytest.raises(UsageError) as info:
        run(params=params, project=project)
    assert info.value.code == "E_USAGE" and where in one_line(info.value)
    assert not (project / ".mlpack").exists()


@pytest.mark.parametrize(("kw", "code", "text"), [
    ({"seed": -1}, "E_USAGE", "seed=-1"),
    ({"seed": True}, "E_USAGE", "seed=True"),
    ({"seed": 2**32}, "E_USAGE", "seed="),
    ({"threads": 0}, "E_USAGE", "threads=0"),
    ({"parent": "sha256:XYZ"}, "E_USAGE", "not a pack digest"),
    ({"frameworks": ("jax",)}, "E_USAGE", "unknown 'jax'"),
    ({"project": "/nonexistent/project"}, "E_INPUT", "is not a directory"),
])
def test_bad_arguments_are_refused(kw: dict[str, Any], code: str, text: str,
                                   project: Path) -> None:
    with pytest.raises(UsageError) as info:
        run(**{"project": project, **kw})
    assert info.value.code == code and text in one_line(info.value)


def test_runs_do_not_nest_and_enter_once(project: Path) -> None:
    r = run(project=project)
    with r, pytest.raises(UsageError) as info, run(project=project):
        pass
    assert info.value.code == "E_USAGE" and "nested" in one_line(info.value)
    with pytest.raises(UsageError), r:
        pass
    with pytest.raises(UsageError) as info:
        r.log_metric("accuracy", 1.0)
    assert "outside the mlpack.run() block" in one_line(info.value)


@pytest.mark.parametrize(("value", "kw", "text"), [
    (float("nan"), {}, "must be a finite number"),
    ("0.9", {}, "is not a number"),
    (True, {}, "is not a number"),
    ([0.9], {}, "a list is not a number"),
    (0.9, {"direction": "up"}, "direction"),
    (0.9, {"dataset": "no spaces allowed"}, "dataset"),
])
def test_bad_metrics_are_refused(value: object, kw: dict[str, Any], text: str,
                                 project: Path) -> None:
    with run(project=project) as r, pytest.raises(UsageError) as info:
        r.log_metric("accuracy", value, **kw)
    assert info.value.code == "E_USAGE" and text in one_line(info.value)


def test_a_bad_recipe_fails_at_entry_before_any_change(project: Path) -> None:
    (project / "mlpack.toml").write_text("[model\n")
    before = os.environ.get("VECLIB_MAXIMUM_THREADS")
    with pytest.raises(UsageError) as info, run(threads=1, project=project):
        pass
    assert info.value.code == "E_RECIPE" and "not valid TOML" in one_line(info.value)
    assert os.environ.get("VECLIB_MAXIMUM_THREADS") == before
    assert not (project / ".mlpack").exists()
    (project / "mlpack.toml").write_text('[code]\ninclude = "**/*.py"\n')
    with pytest.raises(UsageError) as info, run(project=project):
        pass
    assert info.value.code == "E_RECIPE" and "code.include" in one_line(info.value)
    # after a refused entry a new run works
    (project / "mlpack.toml").write_text('[model]\nname = "m"\nweights = ["model.safetensors"]\n')
    with run(project=project):
        pass


# -- weights --------------------------------------------------------------------------------


def test_numpy_weights_round_trip_and_are_reproducible(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays: dict[str, Any] = {"w": np.arange(12, dtype=np.float64).reshape(3, 4).T,
                              "b": np.ones(2, np.int8)}
    meta = {f"k{i}": str(i) for i in range(6)}
    first = save_weights(arrays, tmp_path / "sub" / "a.safetensors", metadata=meta)
    back = load_file(str(tmp_path / "sub" / "a.safetensors"))
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())
    with safe_open(str(tmp_path / "sub" / "a.safetensors"), "np") as f:
        assert f.metadata() == meta
    # safetensors writes metadata in hash-map order; mlpack sorts it: same input, same bytes
    for i in range(5):
        again = save_weights(arrays, tmp_path / f"b{i}.safetensors", metadata=meta)
        assert again.sha256 == first.sha256 and again.size == first.size
    raw = (tmp_path / "b0.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert list(header["__metadata__"]) == sorted(meta)


@pytest.mark.parametrize(("path", "text"), [
    ("model.pt", ".pt files are pickles"), ("model.pkl", ".pkl files are pickles"),
    ("model.bin", ".bin files are pickles"), ("model.npz", "name the file *.safetensors"),
])
def test_pickle_paths_are_refused(tmp_path: Path, path: str, text: str) -> None:
    with pytest.raises(UsageError) as info:
        save_weights({"w": np.zeros(2)}, tmp_path / path)
    assert info.value.code == "E_USAGE" and text in one_line(info.value)
    assert "safetensors" in (info.value.hint or "")
    assert not (tmp_path / path).exists()


@pytest.mark.parametrize(("obj", "meta", "text"), [
    ({"w": np.zeros(2), "n": 3}, None, "a dict mixing kinds"),
    ({}, None, "cannot save a dict"),
    ([np.zeros(2)], None, "cannot save a list"),
    ({"w": np.array(["a"])}, None, "is not numeric"),
    ({"w": np.zeros(2)}, {"mlpack.x": "1"}, "reserved"),
    ({"w": np.zeros(2)}, {"k": 1}, "must be strings"),
])
def test_unsavable_objects_are_refused(tmp_path: Path, obj: object, meta: Any, text: str) -> None:
    with pytest.raises(UsageError) as info:
        save_weights(obj, tmp_path / "m.safetensors", metadata=meta)
    assert info.value.code == "E_USAGE" and text in one_line(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def _digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.mark.parametrize("kind", ["logreg", "mlp", "mlp-binary-str"])
def test_sklearn_estimators_round_trip_without_pickle(tmp_path: Path, kind: str) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    X, y = _digits()
    if kind == "logreg":
        est = LogisticRegression(max_iter=300)
    else:
        est = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=15, random_state=0)
    if kind == "mlp-binary-str":
        y = np.where(y % 2 == 0, "even", "odd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    path = tmp_path / "model.safetensors"
    save_weights(est, path)
    assert b"\x80" not in path.read_bytes()[:2]  # not a pickle
    rebuilt = load_sklearn(path)
    assert type(rebuilt) is type(est) and rebuilt is not est
    assert rebuilt.get_params() == est.get_params()
    assert np.array_equal(rebuilt.predict(X), est.predict(X))
    assert np.array_equal(rebuilt.predict_proba(X), est.predict_proba(X))
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        names = set(f.keys())
        meta = f.metadata()
    expect = {"coef", "intercept"} if kind == "logreg" else {"coefs.0", "coefs.1", "coefs.2"}
    assert expect <= names
    assert meta["mlpack.sklearn.class"] == f"sklearn.{type(est).__module__.split('.')[1]}." \
                                           f"{type(est).__name__}"


def test_unsupported_or_unfitted_estimators_are_refused(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, _ = _digits()
    with pytest.raises(UsageError) as info:
        save_weights(StandardScaler().fit(X), tmp_path / "m.safetensors")
    assert info.value.code == "E_USAGE" and "StandardScaler cannot be saved" in one_line(
        info.value)
    with pytest.raises(UsageError) as info:
        save_weights(LogisticRegression(), tmp_path / "m.safetensors")
    assert "is not fitted" in one_line(info.value)


def test_load_sklearn_imports_only_allowed_classes(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    forged = tmp_path / "forged.safetensors"
    for cls, why in (("os.system", "refusing to rebuild 'os.system'"),
                     ("sklearn.ensemble.RandomForestClassifier", "refusing to rebuild"),
                     ("sklearn.linear_model.__import__", "is not a scikit-learn estimator"),
                     ("sklearn.linear_model.Ridge;x", "refusing to rebuild")):
        save_file({"w": np.zeros(1)}, str(forged),
                  metadata={"mlpack.sklearn.class": cls, "mlpack.sklearn.attributes": "{}"})
        with pytest.raises(UsageError) as info:
            load_sklearn(forged)
        assert info.value.code == "E_INPUT" and why in one_line(info.value)
    save_file({"w": np.zeros(1)}, str(forged))
    with pytest.raises(UsageError) as info:
        load_sklearn(forged)
    assert info.value.code == "E_INPUT" and "no mlpack.sklearn.class" in one_line(info.value)
    with pytest.raises(UsageError) as info:
        load_sklearn(tmp_path / "missing.safetensors")
    assert info.value.code == "E_INPUT"


def test_torch_modules_and_tied_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import load_file

    torch.manual_seed(0)
    emb, head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight  # tied: one storage, two names
    model = torch.nn.ModuleDict({"emb": emb, "head": head, "norm": torch.nn.LayerNorm(4)})
    save_weights(model, tmp_path / "m.safetensors")
    back = load_file(str(tmp_path / "m.safetensors"))
    state = model.state_dict()
    assert set(back) == set(state) and all(torch.equal(back[k], v) for k, v in state.items())
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["mlpack.shared"]) == {"head.weight": "emb.weight"}


def test_torch_is_seeded_and_deterministic_inside_a_run(project: Path) -> None:
    torch = pytest.importorskip("torch")
    before = torch.are_deterministic_algorithms_enabled()
    env_before = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    draws = []
    for _ in range(2):
        with run(seed=5, threads=1, deterministic=True, project=project):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.get_num_threads() == 1
            assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
            draws.append(torch.rand(3))
    assert torch.equal(draws[0], draws[1])
    assert torch.are_deterministic_algorithms_enabled() == before
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == env_before
    rec = record_of(project)
    assert rec["seeds"]["torch"] == 5 and rec["threads"]["torch"] == 1
    assert rec["determinism"]["torch_deterministic_algorithms"] is True
    assert rec["hardware"]["torch_version"] == str(torch.__version__)


def test_record_weights(tmp_path: Path, project: Path) -> None:
    data = project / "model.onnx.data"
    data.write_bytes(os.urandom(1000))
    pickled = project / "model.onnx"
    pickled.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    (project / "link.safetensors").symlink_to(data)
    with run(project=project) as r:
        wf = r.record_weights(data)
        assert wf.format is None and wf.how == "recorded" and wf.size == 1000
        with pytest.raises(VerificationError) as info:
            r.record_weights(pickled)
        assert info.value.code == "E_UNSAFE_FORMAT" and "pickle" in one_line(info.value)
        for bad in (project / "link.safetensors", project / "missing.onnx"):
            with pytest.raises(UsageError) as uinfo:
                r.record_weights(bad)
            assert uinfo.value.code == "E_INPUT"
    assert record_of(project)["weights"] == [wf.to_dict() | {"path": "model.onnx.data"}]


# -- checks for build -----------------------------------------------------------------------


def _trained(project: Path) -> dict[str, Any]:
    with run(seed=0, project=project) as r:
        r.save_weights({"w": np.ones(3, np.float32)}, project / "model.safetensors")
        r.save_weights({"w": np.zeros(3, np.float32)}, project / "other.safetensors")
    return load_run(project) or {}


def test_check_weights_refuses_changed_or_missing_weights(project: Path) -> None:
    rec = _trained(project)
    check_run(rec, project, ["model.safetensors"])
    save_weights({"w": np.full(3, 2, np.float32)}, project / "other.safetensors")
    check_weights(rec, project, paths=["model.safetensors"])  # only the recipe's are checked
    with pytest.raises(VerificationError) as info:
        check_weights(rec, project)
    when = rec["weights"][1]["recorded"]
    assert info.value.code == "E_STALE"
    assert one_line(info.value) == (f"other.safetensors changed since the training run recorded "
                                    f"it at {when}")
    (project / "model.safetensors").unlink()
    with pytest.raises(UsageError) as uinfo:
        check_run(rec, project, ["model.safetensors"])
    assert uinfo.value.code == "E_INPUT"
    assert one_line(uinfo.value) == (f"model.safetensors does not exist (the training run "
                                     f"recorded it at {rec['weights'][0]['recorded']})")


def test_same_size_change_is_caught(project: Path) -> None:
    rec = _trained(project)
    data = bytearray((project / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (project / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(VerificationError) as info:
        check_weights(rec, project)
    assert info.value.code == "E_STALE"


def test_check_code_refuses_changed_code_but_not_rewritten_weights(project: Path) -> None:
    pytest.importorskip("mlpack.code")
    rec = _trained(project)
    save_weights({"w": np.full(3, 7, np.float32)}, project / "model.safetensors")
    check_code(rec, project)  # the recipe's weights are not code
    check_code(rec, project, digest=rec["code_fingerprint"])
    (project / "train.py").write_text("print('changed')\n")
    with pytest.raises(VerificationError) as info:
        check_run(rec, project, [], code=True)
    assert info.value.code == "E_STALE" and rec["started"] in one_line(info.value)
    check_run(rec, project, [], code=False)
    with pytest.raises(VerificationError):
        check_code(rec, project, digest="sha256:" + "0" * 64)


def test_load_run(project: Path) -> None:
    assert load_run(project) is None
    rec = _trained(project)
    assert rec["mlpack_run"] == "1.0"
    path = project / ".mlpack" / "run.json"
    for text, why in (("{", "not valid JSON"), ('{"a": 1, "a": 2}', "duplicate"),
                      (json.dumps({**rec, "mlpack_run": "2.0"}), "unsupported mlpack_run"),
                      (json.dumps({**rec, "seeds": {"python": -1}}), "$.seeds.python")):
        path.write_text(text)
        with pytest.raises(UsageError) as info:
            load_run(project)
        assert info.value.code == "E_INPUT" and ".mlpack/run.json" in one_line(info.value)
        assert why in info.value.message or why == "not valid JSON", info.value.message


# -- the section ----------------------------------------------------------------------------


def test_training_section(project: Path) -> None:
    rec = _trained(project)
    section = training_section(rec)
    validator("training").validate(section)
    assert set(section) == set(training.TRAINING_KEYS) & set(rec)
    assert "packages" not in section and "hardware" not in section and "weights" not in section
    parent = "sha256:" + "cd" * 32
    assert training_section(rec, {"model": {"parent": parent}})["parent"] == parent
    assert training_section(None, {"model": {"parent": parent}}) == {"parent": parent}
    assert training_section(None) == {}
    validator("training").validate(training_section(None, {"model": {"parent": parent}}))

    class Model:
        parent = "sha256:" + "ef" * 32

    class Recipe:
        model = Model()

    with pytest.raises(UsageError) as info:
        training_section({**rec, "parent": parent}, Recipe())
    assert info.value.code == "E_RECIPE" and "model.parent" in one_line(info.value)


def test_recorded_paths(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    assert display_path(proj / "a" / "b.txt", proj) == "a/b.txt"
    assert display_path(proj, proj) == "."
    assert display_path(Path.home() / "envs" / "python", proj) == "~/envs/python"
    assert resolve_recorded("~/envs/python", proj) == Path.home() / "envs" / "python"
    assert resolve_recorded("a/b.txt", proj) == proj / "a" / "b.txt"
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert display_path(tmp_path / "link" / "w.safetensors", real.resolve()) == "w.safetensors"
    if not Path("/opt").is_relative_to(Path.home()):
        assert display_path("/opt/x", proj) == "/opt/x"
