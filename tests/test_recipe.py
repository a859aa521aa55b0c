"""mlpack.recipe: mlpack.toml parsing and checks, command templates, and ``mlpack init``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mlpack import schema
from mlpack.errors import MlpackError, UsageError, VerificationError
from mlpack.init import init_recipe, write_init
from mlpack.recipe import (
    WEIGHTS_TODO,
    Command,
    Entrypoints,
    Recipe,
    license_problem,
    load_recipe,
)

REPO = Path(__file__).resolve().parents[1]
SPEC = (REPO / "spec" / "recipe.md").read_text()
VALID = re.findall(r"^```toml recipe\n(.*?)^```", SPEC, re.MULTILINE | re.DOTALL)
INVALID = re.findall(r"^```toml recipe-invalid\n# (.*?)\n(.*?)^```", SPEC, re.MULTILINE | re.DOTALL)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

BASE = """\
[model]
name = "digits"
weights = ["model.safetensors"]
"""


def recipe_text(extra: str = "", base: str = BASE) -> str:
    return base + extra


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlpack.toml").write_text(text)
    return root


def refused(root: Path, text: str) -> MlpackError:
    write(root, text)
    with pytest.raises(UsageError) as info:
        load_recipe(root)
    err = info.value
    assert err.code == "E_RECIPE", err
    assert "\n" not in err.message and err.message.startswith("mlpack.toml")
    assert err.hint and "\n" not in err.hint
    return err


@pytest.fixture(autouse=True)
def no_user_git_config(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own git identity must not leak into what init detects."""
    empty = tmp_path_factory.mktemp("gitcfg") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


# ---------------------------------------------------------------- the spec's examples


def test_spec_has_valid_and_invalid_recipe_examples() -> None:
    assert len(VALID) >= 3 and len(INVALID) >= 5


@pytest.mark.parametrize("text", VALID, ids=[f"recipe{i}" for i in range(len(VALID))])
def test_spec_recipe_examples_parse_and_validate(text: str, tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, text))
    doc = recipe.to_dict()
    assert schema.validate(doc, "recipe") == []
    assert schema.validate(tomllib.loads(text), "recipe") == []  # as written, before defaults
    assert Recipe.from_dict(doc, root=recipe.root) == recipe
    assert schema.validate(recipe.entrypoints_section(), "entrypoints") == []


@pytest.mark.parametrize(("message", "text"), INVALID, ids=[m for m, _ in INVALID])
def test_spec_invalid_examples_are_refused_with_their_message(message: str, text: str,
                                                              tmp_path: Path) -> None:
    err = refused(tmp_path, text)
    assert err.message.startswith(message), err.message


def test_spec_smallest_recipe_data_model_is_the_json_example() -> None:
    block = re.search(r"^```json schema=recipe\n(.*?)^```", SPEC, re.MULTILINE | re.DOTALL)
    assert block is not None
    smallest = Recipe.from_dict(tomllib.loads(VALID[1]))
    assert smallest.to_dict() == json.loads(block.group(1))


def test_packaged_schemas_are_identical() -> None:
    for name in ("recipe", "entrypoints"):
        spec = (REPO / "spec" / "schema" / f"{name}.schema.json").read_bytes()
        assert (REPO / "mlpack" / "schemas" / f"{name}.schema.json").read_bytes() == spec
        assert json.loads(spec)["$id"] == f"https://mlpack.dev/schema/v1/{name}.schema.json"


# ---------------------------------------------------------------- parsing


def test_full_recipe_fields_and_round_trip(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, VALID[0]))
    assert r.root == tmp_path
    assert r.model.name == "digits-logreg" and r.model.weights == ("model.safetensors",)
    assert r.model.authors == ("Ada Lovelace <ada@example.org>",)
    assert r.code.exclude == ("data/**", "notebooks/**")
    assert r.environment.mode == "lock" and r.environment.python == ".venv/bin/python"
    assert [(d.name, d.mode) for d in r.datasets] == [
        ("digits-train", "referenced"), ("digits-test", "included"), ("digits-raw", "referenced")]
    assert r.datasets[2].endpoint == "http://127.0.0.1:5001"
    assert r.evaluate is not None and r.evaluate.metrics == "metrics.json"
    assert r.train is not None and r.train.metrics is None
    acc, loss = r.metrics
    assert (acc.name, acc.dataset, acc.split, acc.direction, acc.value, acc.absolute, acc.relative) \
        == ("accuracy", "digits-test", "test", "higher", 0.9689, 0.005, 0.01)
    assert (loss.direction, loss.value, loss.absolute, loss.relative) == ("lower", None, None, 0.05)
    again = Recipe.from_dict(json.loads(json.dumps(r.to_dict())), root=tmp_path)
    assert again == r and again.to_dict() == r.to_dict()


def test_defaults(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, BASE))
    assert r.code.include == ("**",) and r.code.exclude == () and r.code.allow_secrets == ()
    assert r.environment.mode == "lock" and r.environment.python is None
    assert r.datasets == () and r.metrics == () and r.train is None and r.evaluate is None
    assert r.entrypoints_section() == {}
    ev = Recipe.from_dict(tomllib.loads(BASE + '[entrypoints.evaluate]\ncommand = "e {output}"\n'))
    assert ev.entrypoints_section() == {"evaluate": {"command": "e {output}",
                                                     "metrics": "metrics.json"}}


def test_load_recipe_accepts_the_file_path(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    assert load_recipe(tmp_path / "mlpack.toml") == load_recipe(tmp_path)


def test_int_values_become_floats_and_licenses_compare_case_insensitively(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, BASE.replace("[model]", '[model]\nlicense = "apache-2.0 OR mit"')
                          + '[[metrics]]\nname = "a"\ndirection = "lower"\nvalue = 1\n'
                            "tolerance = { absolute = 0 }\n"))
    assert r.metrics[0].value == 1.0 and isinstance(r.metrics[0].value, float)
    assert r.metrics[0].absolute == 0.0 and r.model.license == "apache-2.0 OR mit"


def test_metric_dataset_is_free_when_no_dataset_is_declared(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, BASE + '[[metrics]]\nname = "a"\ndataset = "sklearn-digits"\n'
                                           'direction = "higher"\ntolerance = { relative = 0.1 }\n'))
    assert r.metrics[0].dataset == "sklearn-digits"


def test_same_metric_on_two_datasets_or_splits_is_allowed(tmp_path: Path) -> None:
    m = '[[metrics]]\nname = "acc"\ndataset = "{d}"\nsplit = "{s}"\ndirection = "higher"\n' \
        'tolerance = {{ absolute = 0.1 }}\n'
    text = BASE + '[[datasets]]\nname = "a"\nuri = "a"\n[[datasets]]\nname = "b"\nuri = "b"\n' + \
        m.format(d="a", s="test") + m.format(d="b", s="test") + m.format(d="a", s="val")
    assert len(load_recipe(write(tmp_path, text)).metrics) == 3


# ---------------------------------------------------------------- every refusal

MODEL_ONLY = '[model]\nname = "m"\nweights = ["m.onnx"]\n'
DS = '[[datasets]]\nname = "test"\nuri = "data/test"\n'
MET = '[[metrics]]\nname = "acc"\ndirection = "higher"\n'
EV = "[entrypoints.evaluate]\n"

CASES: list[tuple[str, str, str]] = [
    # (id, recipe text, the key path and rule the message must contain)
    ("no-model", '[code]\ninclude = ["*"]\n', "model is required"),
    ("model-not-table", 'model = 1\n', "model must be a table (got an integer)"),
    ("name-missing", '[model]\nweights = ["m.onnx"]\n', "model.name is required"),
    ("name-empty", '[model]\nname = ""\nweights = ["m.onnx"]\n', "model.name must be 1 to 200"),
    ("name-long", f'[model]\nname = "{"x" * 201}"\nweights = ["m.onnx"]\n', "model.name must be"),
    ("name-int", '[model]\nname = 3\nweights = ["m.onnx"]\n', "model.name must be 1 to 200 characters (got an integer)"),
    ("weights-missing", '[model]\nname = "m"\n', "model.weights is required"),
    ("weights-empty", '[model]\nname = "m"\nweights = []\n', "model.weights must list at least one"),
    ("weights-string", '[model]\nname = "m"\nweights = "m.onnx"\n', "model.weights must be an array of strings"),
    ("weights-item-int", '[model]\nname = "m"\nweights = [1]\n', "model.weights[0] must be a non-empty string"),
    ("weights-absolute", '[model]\nname = "m"\nweights = ["/m.onnx"]\n', "model.weights[0] must be a project-relative path"),
    ("weights-dotdot", '[model]\nname = "m"\nweights = ["a/../../m.onnx"]\n', "model.weights[0] must be a project-relative path"),
    ("weights-backslash", '[model]\nname = "m"\nweights = ["a\\\\m.onnx"]\n', "model.weights[0] must be a project-relative"),
    ("weights-twice", '[model]\nname = "m"\nweights = ["m.onnx", "m.onnx"]\n', 'model.weights lists "m.onnx" twice'),
    ("weights-todo", f'[model]\nname = "m"\nweights = ["{WEIGHTS_TODO}"]\n', "model.weights still holds the placeholder"),
    ("version-empty", MODEL_ONLY + 'version = ""\n', "model.version must be a non-empty string"),
    ("authors-string", MODEL_ONLY + 'authors = "Ada"\n', "model.authors must be an array of strings"),
    ("authors-empty-item", MODEL_ONLY + 'authors = [""]\n', "model.authors[0] must be a non-empty string"),
    ("parent-bad", MODEL_ONLY + 'parent = "sha256:ABC"\n', "model.parent must be sha256:<64 lowercase hex digits>"),
    ("license-unknown", MODEL_ONLY + 'license = "Apache 2.0"\n', "model.license has an unknown license id 'Apache'"),
    ("license-syntax", MODEL_ONLY + 'license = "MIT OR"\n', "model.license ends where a license id is expected"),
    ("license-lower-op", MODEL_ONLY + 'license = "MIT or Apache-2.0"\n', "model.license has an unexpected 'or'"),
    ("license-deprecated", MODEL_ONLY + 'license = "GPL-3.0"\n', "model.license uses the deprecated SPDX id"),
    ("license-llama", MODEL_ONLY + 'license = "llama3"\n', "model.license names 'llama3', which has no SPDX id"),
    ("model-typo", MODEL_ONLY + 'descripton = "x"\n', "model.descripton is not a known key"),
    ("top-typo", MODEL_ONLY + '[enviroment]\nmode = "lock"\n', "enviroment is not a known key"),
    ("code-typo", MODEL_ONLY + '[code]\nexlude = ["a"]\n', "code.exlude is not a known key"),
    ("code-include-empty", MODEL_ONLY + '[code]\ninclude = []\n', "code.include must not be empty"),
    ("code-pattern-negated", MODEL_ONLY + '[code]\nexclude = ["!keep.py"]\n', "code.exclude[0] starts with '!': negation is not supported"),
    ("code-pattern-dotdot", MODEL_ONLY + '[code]\ninclude = ["../*.py"]\n', "code.include[0] has an empty, '.' or '..' component (got \"../*.py\")"),
    ("code-pattern-bracket", MODEL_ONLY + '[code]\ninclude = ["[ab.py"]\n', "code.include[0] has an unclosed '['"),
    ("code-pattern-empty", MODEL_ONLY + '[code]\ninclude = [""]\n', "code.include[0] must be a non-empty string"),
    ("code-secret-abs", MODEL_ONLY + '[code]\nallow-secrets = ["/home/a/.env"]\n', "code.allow-secrets[0] must be a project-relative path"),
    ("code-not-table", 'code = ["a"]\n' + MODEL_ONLY, "code must be a table (got an array)"),
    ("env-mode", MODEL_ONLY + '[environment]\nmode = "conda"\n', 'environment.mode must be "lock", "wheelhouse", "conda-pack" or "none" (got "conda")'),
    ("env-python-int", MODEL_ONLY + '[environment]\npython = 3\n', "environment.python must be a non-empty string"),
    ("ds-name", MODEL_ONLY + '[[datasets]]\nname = "-x"\nuri = "d"\n', "datasets[0].name must be 1-128 of"),
    ("ds-name-missing", MODEL_ONLY + '[[datasets]]\nuri = "d"\n', "datasets[0].name is required"),
    ("ds-twice", MODEL_ONLY + DS + DS, 'datasets[1].name repeats "test"'),
    ("ds-uri-empty", MODEL_ONLY + '[[datasets]]\nname = "d"\nuri = ""\n', "datasets[0].uri must be a non-empty path"),
    ("ds-uri-missing", MODEL_ONLY + '[[datasets]]\nname = "d"\n', "datasets[0].uri is required"),
    ("ds-uri-gs", MODEL_ONLY + '[[datasets]]\nname = "d"\nuri = "gs://b/p"\n', "datasets[0].uri must be a path or s3://bucket/prefix"),
    ("ds-uri-no-bucket", MODEL_ONLY + '[[datasets]]\nname = "d"\nuri = "s3:///p"\n', "datasets[0].uri must be a path or s3://"),
    ("ds-endpoint-local", MODEL_ONLY + DS + 'endpoint = "http://127.0.0.1:9000"\n', "datasets[0].endpoint is only for s3:// URIs"),
    ("ds-endpoint-bad", MODEL_ONLY + '[[datasets]]\nname = "d"\nuri = "s3://b/p"\nendpoint = "localhost:9000"\n', "datasets[0].endpoint must be an http:// or https:// URL"),
    ("ds-mode", MODEL_ONLY + DS + 'mode = "copied"\n', 'datasets[0].mode must be "referenced" or "included" (got "copied")'),
    ("ds-typo", MODEL_ONLY + DS + 'endpiont = "http://x"\n', "datasets[0].endpiont is not a known key"),
    ("ds-not-array", 'datasets = "data"\n' + MODEL_ONLY, "datasets must be an array of tables"),
    ("ds-item-not-table", 'datasets = ["data"]\n' + MODEL_ONLY, "datasets[0] must be a table"),
    ("metric-name-missing", MODEL_ONLY + '[[metrics]]\ndirection = "higher"\ntolerance = { absolute = 1 }\n', "metrics[0].name is required"),
    ("metric-direction", MODEL_ONLY + MET.replace("higher", "up") + 'tolerance = { absolute = 1 }\n', 'metrics[0].direction must be "higher" or "lower" (got "up")'),
    ("metric-direction-missing", MODEL_ONLY + '[[metrics]]\nname = "a"\ntolerance = { absolute = 1 }\n', "metrics[0].direction is required"),
    ("metric-tol-missing", MODEL_ONLY + MET, "metrics[0].tolerance is required"),
    ("metric-tol-empty", MODEL_ONLY + MET + "tolerance = {}\n", "metrics[0].tolerance must have absolute or relative"),
    ("metric-tol-negative", MODEL_ONLY + MET + "tolerance = { absolute = -0.1 }\n", "metrics[0].tolerance.absolute must be >= 0 (got -0.1)"),
    ("metric-tol-nan", MODEL_ONLY + MET + "tolerance = { relative = nan }\n", "metrics[0].tolerance.relative must be a finite number (got nan)"),
    ("metric-tol-bool", MODEL_ONLY + MET + "tolerance = { relative = true }\n", "metrics[0].tolerance.relative must be a finite number (got a boolean)"),
    ("metric-tol-typo", MODEL_ONLY + MET + "tolerance = { abs = 0.1 }\n", "metrics[0].tolerance.abs is not a known key"),
    ("metric-tol-not-table", MODEL_ONLY + MET + "tolerance = 0.1\n", "metrics[0].tolerance must be a table (got a float)"),
    ("metric-value-inf", MODEL_ONLY + MET + "value = inf\ntolerance = { absolute = 1 }\n", "metrics[0].value must be a finite number (got inf)"),
    ("metric-value-str", MODEL_ONLY + MET + 'value = "0.9"\ntolerance = { absolute = 1 }\n', 'metrics[0].value must be a finite number (got "0.9")'),
    ("metric-dataset-undeclared", MODEL_ONLY + DS + MET + 'dataset = "tset"\ntolerance = { absolute = 1 }\n', 'metrics[0].dataset names no declared dataset (got "tset")'),
    ("metric-twice", MODEL_ONLY + (MET + "tolerance = { absolute = 1 }\n") * 2, "metrics[1] repeats metrics[0] (same name, dataset and split)"),
    ("ep-placeholder", MODEL_ONLY + EV + 'command = "python e.py {dataset:x}"\n', "entrypoints.evaluate.command has an unknown placeholder {dataset:x}"),
    ("ep-placeholder-empty", MODEL_ONLY + EV + 'command = "python e.py {}"\n', "entrypoints.evaluate.command has an unknown placeholder {}"),
    ("ep-weights-path", MODEL_ONLY + EV + 'command = "e {weights:other.onnx}"\n', "entrypoints.evaluate.command uses {weights:other.onnx}, but 'other.onnx' is not in model.weights"),
    ("ep-weights-ambiguous", MODEL_ONLY.replace('["m.onnx"]', '["a.onnx", "b.onnx"]') + EV + 'command = "e {weights}"\n', "entrypoints.evaluate.command uses {weights}, but model.weights lists 2 files"),
    ("ep-data-undeclared", MODEL_ONLY + DS + EV + 'command = "e {data:tset}"\n', "entrypoints.evaluate.command uses {data:tset}, but no dataset is named 'tset'"),
    ("ep-brace", MODEL_ONLY + EV + 'command = "e {output"\n', "entrypoints.evaluate.command has an unmatched '{' in '{output'"),
    ("ep-split-placeholder", MODEL_ONLY + EV + 'command = "e {weights: m.onnx}"\n', "entrypoints.evaluate.command has an unmatched '{'"),
    ("ep-quote", MODEL_ONLY + EV + "command = \"e 'unclosed\"\n", "entrypoints.evaluate.command cannot be split into words (No closing quotation)"),
    ("ep-empty", MODEL_ONLY + EV + 'command = "  "\n', "entrypoints.evaluate.command is empty"),
    ("ep-missing", MODEL_ONLY + EV + 'metrics = "m.json"\n', "entrypoints.evaluate.command is required"),
    ("ep-shell-pipe", MODEL_ONLY + '[entrypoints.train]\ncommand = "python t.py | tee log"\n', "entrypoints.train.command uses the shell operator '|'"),
    ("ep-shell-redirect", MODEL_ONLY + '[entrypoints.train]\ncommand = "python t.py > log"\n', "entrypoints.train.command uses the shell operator '>'"),
    ("ep-shell-and", MODEL_ONLY + '[entrypoints.train]\ncommand = "cd x && python t.py"\n', "entrypoints.train.command uses the shell operator '&&'"),
    ("ep-metrics-abs", MODEL_ONLY + EV + 'command = "e"\nmetrics = "/tmp/m.json"\n', "entrypoints.evaluate.metrics must be a project-relative path"),
    ("ep-train-metrics", MODEL_ONLY + '[entrypoints.train]\ncommand = "t"\nmetrics = "m.json"\n', "entrypoints.train.metrics is not a known key"),
    ("ep-typo", MODEL_ONLY + '[entrypoints.eval]\ncommand = "e"\n', "entrypoints.eval is not a known key"),
    ("key-after-table", MODEL_ONLY + '[environment]\nmode = "lock"\ndatasets = []\n', "environment.datasets is not a known key"),
    ("ep-not-table", MODEL_ONLY + '[entrypoints]\ntrain = "python t.py"\n', "entrypoints.train must be a table (got \"python t.py\")"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_invalid_recipe_is_refused_naming_the_key(text: str, expected: str,
                                                         tmp_path: Path) -> None:
    err = refused(tmp_path, text)
    assert err.message.startswith(f"mlpack.toml: {expected}"), err.message


@pytest.mark.parametrize(("text", "hint"), [
    (MODEL_ONLY.replace("name", "nmae"), "did you mean model.name?"),
    (MODEL_ONLY + 'lisence = "MIT"\n', "did you mean model.license?"),
    (MODEL_ONLY + '[code]\nexlude = ["a"]\n', "did you mean code.exclude?"),
    (MODEL_ONLY + '[[dataset]]\nname = "d"\nuri = "d"\n', "did you mean datasets?"),
    (MODEL_ONLY + '[entrypoints.eval]\ncommand = "e"\n', "did you mean entrypoints.evaluate?"),
    (MODEL_ONLY + MET + "tolerence = { absolute = 1 }\n", "did you mean metrics[0].tolerance?"),
    (MODEL_ONLY + '[environment]\nmode = "wheelhous"\n', 'did you mean "wheelhouse"?'),
    (MODEL_ONLY + DS + EV + 'command = "e {data:tset}"\n', "did you mean {data:test}?"),
    (MODEL_ONLY + 'license = "Apache-2"\n', "did you mean Apache-2.0?"),
    (MODEL_ONLY + 'license = "GPL-2.0"\n', "write GPL-2.0-only or GPL-2.0-or-later"),
    (MODEL_ONLY + 'license = "creativeml-openrail-m"\n', "write LicenseRef-creativeml-openrail-m"),
    (MODEL_ONLY + 'license = "Frobnicate-1.0"\n', "use an SPDX id (https://spdx.org/licenses/) or LicenseRef-NAME"),
    (MODEL_ONLY + 'zzz = 1\n', "the keys of model are: name, version, license"),
])
def test_hints_suggest_the_fix(text: str, hint: str, tmp_path: Path) -> None:
    err = refused(tmp_path, text)
    assert err.hint is not None and hint in err.hint, err.hint


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    err = refused(tmp_path, BASE + "[code\ninclude = []\n")
    assert err.message == "mlpack.toml:4:6: invalid TOML: Expected ']' at the end of a table declaration"
    assert err.hint == "fix the TOML syntax at line 4, column 6"
    err = refused(tmp_path, BASE + "version = ")  # reported at the end of the document
    assert err.message == "mlpack.toml:4: invalid TOML: Invalid value"
    err = refused(tmp_path, BASE + "name = 'again'\n")
    assert err.message == "mlpack.toml:4:15: invalid TOML: Cannot overwrite a value"


def test_recipe_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mlpack.toml").write_bytes(BASE.encode() + b'description = "caf\xe9"\n')
    with pytest.raises(UsageError) as info:
        load_recipe(tmp_path)
    assert info.value.code == "E_RECIPE" and info.value.message == "mlpack.toml:4: not UTF-8"


def test_missing_recipe_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_recipe(tmp_path)
    assert info.value.code == "E_RECIPE"
    assert info.value.message == f"no mlpack.toml in {tmp_path}"
    assert info.value.hint is not None and "mlpack init" in info.value.hint
    with pytest.raises(UsageError) as info:
        load_recipe(tmp_path / "no-such-project")
    assert info.value.code == "E_INPUT"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_unreadable_recipe_is_e_input(tmp_path: Path) -> None:
    write(tmp_path, BASE)
    (tmp_path / "mlpack.toml").chmod(0)
    try:
        with pytest.raises(UsageError) as info:
            load_recipe(tmp_path)
        assert info.value.code == "E_INPUT" and "cannot be read" in info.value.message
    finally:
        (tmp_path / "mlpack.toml").chmod(0o644)


@pytest.mark.parametrize("expr", [
    "MIT", "Apache-2.0", "apache-2.0", "MIT OR Apache-2.0", "(MIT OR Apache-2.0) AND BSD-3-Clause",
    "GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-only+", "LicenseRef-llama3",
    "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2", "CC-BY-4.0", "CC-BY-SA-4.0",
    "CC-BY-NC-4.0", "CC0-1.0", "Unlicense", "ISC", "BSL-1.0", "MPL-2.0", "LGPL-3.0-or-later",
    "Apache-2.0 WITH LLVM-exception", "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)",
    "GPL-3.0-only WITH AdditionRef-my-exception"])
def test_accepted_license_expressions(expr: str) -> None:
    assert license_problem(expr) is None


@pytest.mark.parametrize(("expr", "why"), [
    ("", "is empty"), ("MIT AND", "ends where a license id is expected"),
    ("(MIT", "has an unclosed '('"), ("(MIT OR ISC", "has an unclosed '('"),
    ("MIT)", "has an unexpected ')'"), ("MIT ISC", "has an unexpected 'ISC'"),
    ("AND MIT", "has 'AND' where a license id is expected"),
    ("MIT WITH Frob-exception", "has an unknown license exception 'Frob-exception'"),
    ("LicenseRef-", "has an unknown license id 'LicenseRef-'"),
    ("LicenseRef-a_b", "has an unknown license id 'LicenseRef-a_b'"),
    ("openrail", "names 'openrail', which has no SPDX id"),
    ("LGPL-2.1", "uses the deprecated SPDX id 'LGPL-2.1'"),
])
def test_refused_license_expressions(expr: str, why: str) -> None:
    problem = license_problem(expr)
    assert problem is not None and problem[0] == why, problem


# ---------------------------------------------------------------- commands


def cmd(template: str) -> Command:
    return Command(template=template)


def test_argv_splits_first_then_substitutes() -> None:
    c = cmd("{python} 'my eval.py' --weights {weights} --data={data:test} --out {output}/x")
    argv = c.argv({"m.onnx": "/w/my model.onnx"}, {"test": "/d/it's \"quoted\" set"},
                  "/tmp/out dir", "/venv/bin/python")
    assert argv == ["/venv/bin/python", "my eval.py", "--weights", "/w/my model.onnx",
                    "--data=/d/it's \"quoted\" set", "--out", "/tmp/out dir/x"]


def test_argv_values_are_never_reparsed() -> None:
    argv = cmd("run {data:a}").argv({}, {"a": "{output} $HOME '; rm -rf /"}, "/o", "py")
    assert argv == ["run", "{output} $HOME '; rm -rf /"]


def test_argv_braces_and_named_weights() -> None:
    c = cmd('py -c "print({{1: 2}})" {weights:a/x.safetensors} "{weights:b c.onnx}"')
    argv = c.argv({"a/x.safetensors": "/p/x", "b c.onnx": "/p/b c"}, {}, "/o", "py")
    assert argv == ["py", "-c", "print({1: 2})", "/p/x", "/p/b c"]
    assert c.placeholders() == ("weights:a/x.safetensors", "weights:b c.onnx")


def test_argv_data_path_with_spaces_is_one_argument_in_a_real_process(tmp_path: Path) -> None:
    data = tmp_path / "my data" / "test set"
    data.mkdir(parents=True)
    c = cmd("{python} -c \"import json, sys; print(json.dumps(sys.argv[1:]))\" {data:t} {output}")
    argv = c.argv({}, {"t": str(data)}, str(tmp_path / "out"), sys.executable)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [str(data), str(tmp_path / "out")]


@pytest.mark.parametrize(("template", "weights", "data", "missing"), [
    ("e {data:test}", {}, {"train": "/d"}, "{data:test}"),
    ("e {weights:a.onnx}", {"b.onnx": "/b"}, {}, "{weights:a.onnx}"),
    ("e {weights}", {"a": "/a", "b": "/b"}, {}, "{weights}"),
    ("e {weights}", {}, {}, "{weights}"),
])
def test_argv_missing_binding_names_the_placeholder(template: str, weights: dict[str, str],
                                                    data: dict[str, str], missing: str) -> None:
    with pytest.raises(UsageError) as info:
        cmd(template).argv(weights, data, "/o", "py")
    assert info.value.code == "E_USAGE"
    assert info.value.message == f"the command's placeholder {missing} has no value"
    assert info.value.hint and "\n" not in info.value.hint


def test_entrypoints_section_of_the_manifest() -> None:
    section = {"evaluate": {"command": "{python} e.py {weights:m.onnx} --out {output}",
                            "metrics": "m.json", "x-example": 1},
               "train": {"command": "{python} t.py {data:d}"}, "x-future": {}}
    ep = Entrypoints.from_dict(section, source="mlpack.json")  # unknown members are ignored
    assert ep.evaluate == Command(template="{python} e.py {weights:m.onnx} --out {output}",
                                  metrics="m.json")
    assert schema.validate(ep.to_dict(), "entrypoints") == []
    assert schema.validate(section, "entrypoints") == []
    with pytest.raises(VerificationError) as info:
        Entrypoints.from_dict({"train": {"command": "t {model}"}}, source="mlpack.json")
    assert info.value.code == "E_MANIFEST"
    assert info.value.message == \
        "mlpack.json: entrypoints.train.command has an unknown placeholder {model}"
    with pytest.raises(VerificationError, match=r"entrypoints\.evaluate\.command must be"):
        Entrypoints.from_dict({"evaluate": {"command": 1}}, source="mlpack.json")
    with pytest.raises(VerificationError) as info:
        Entrypoints.from_dict({"evaluate": {"command": "e"}}, source="mlpack.json")
    assert info.value.message == "mlpack.json: entrypoints.evaluate.metrics is required"
    with pytest.raises(VerificationError) as info:
        Entrypoints.from_dict([], source="mlpack.json")
    assert info.value.message == "mlpack.json: entrypoints must be a table (got an array)"


def test_entrypoints_schema_refuses_what_the_reader_refuses() -> None:
    assert schema.validate({"evaluate": {"command": "e"}}, "entrypoints")  # metrics required
    assert schema.validate({"train": {"command": ""}}, "entrypoints")
    assert schema.validate({"evaluate": {"command": "e", "metrics": "../m.json"}}, "entrypoints")


# ---------------------------------------------------------------- mlpack init


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


MIT = """MIT License

Copyright (c) 2026 Ada Lovelace

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
"""


def test_init_empty_dir_writes_every_section_and_a_weights_todo(tmp_path: Path) -> None:
    root = tmp_path / "My Project!"
    root.mkdir()
    path = write_init(root)
    assert path == root / "mlpack.toml"
    text = path.read_text()
    for section in ("[model]", "[code]", "[environment]", "# [[datasets]]",
                    "# [entrypoints.train]", "# [entrypoints.evaluate]", "# [[metrics]]"):
        assert f"\n{section}\n" in text, section
    doc = tomllib.loads(text)
    assert doc["model"] == {"name": "My-Project", "weights": [WEIGHTS_TODO]}
    assert "authors" not in doc["model"]  # no git identity configured
    with pytest.raises(UsageError) as info:
        load_recipe(root)
    assert info.value.code == "E_RECIPE"
    assert info.value.message == "mlpack.toml: model.weights still holds the placeholder mlpack init wrote"
    assert info.value.hint and "list the trained weights files" in info.value.hint
    assert "# No .safetensors or .onnx file was found" in text
    path.write_text(text.replace(f'"{WEIGHTS_TODO}"', '"model.onnx"'))
    r = load_recipe(root)
    assert r.model.weights == ("model.onnx",) and r.datasets == () and r.metrics == ()
    assert r.train is None and r.evaluate is None
    assert r.environment.mode == "lock" and r.code.include == ("**",)


def test_init_before_training_names_the_weights_train_py_saves(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text('run.save_weights(model, "out/model.safetensors")\n'
                                       "export(m, 'model.onnx')\n")
    text = init_recipe(tmp_path)
    assert '# No weights file was found; train.py names ["model.onnx", "out/model.safetensors"].' \
        in text.splitlines()
    assert tomllib.loads(text)["model"]["weights"] == [WEIGHTS_TODO]


def test_init_uncommented_examples_are_valid(tmp_path: Path) -> None:
    """Removing the # of every commented example gives a recipe that parses: they are correct."""
    (tmp_path / "model.safetensors").write_bytes(b"x")
    text = init_recipe(tmp_path)
    lines = [ln[2:] if re.match(r"# (\[|[a-z-]+ = )", ln) else ln for ln in text.splitlines()]
    write(tmp_path, "\n".join(lines) + "\n")
    r = load_recipe(tmp_path)
    assert (r.model.version, r.model.license, r.model.authors) == \
        ("0.1.0", "Apache-2.0", ("Ada Lovelace <ada@example.org>",))
    assert r.code.include == ("**/*.py", "mlpack.toml", "requirements*.txt")
    assert r.code.exclude == ("notebooks/**",) and r.environment.python == ".venv/bin/python"
    assert [(d.name, d.uri) for d in r.datasets] == [("digits-test", "data/test")]
    assert r.train is not None and r.evaluate is not None
    assert [(m.name, m.direction, m.value, m.absolute, m.relative) for m in r.metrics] == \
        [("accuracy", "higher", 0.97, 0.005, 0.01)]


@needs_git
def test_init_full_project(tmp_path: Path) -> None:
    root = tmp_path / "digits.v2"
    (root / "data" / "train").mkdir(parents=True)
    (root / "data" / "test").mkdir()
    (root / "data" / "train" / "x.csv").write_text("a\n1\n")
    (root / "LICENSE").write_text(MIT)
    (root / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (root / "export").mkdir()
    (root / "export" / "model.onnx").write_bytes(b"onnx")
    (root / "train.py").write_text("print('train')\n")
    (root / "evaluate.py").write_text("print('eval')\n")
    (root / "README.md").write_text("# Digits\n\n[![ci](x)](y)\n\nLogistic regression on\nthe"
                                    " digits.\n\nMore text.\n")
    git(root, "init", "-q")
    git(root, "config", "user.name", "Ada Lovelace")
    git(root, "config", "user.email", "ada@example.org")
    write_init(root)
    r = load_recipe(root)
    assert r.model.name == "digits.v2"
    assert r.model.license == "MIT"
    assert r.model.authors == ("Ada Lovelace <ada@example.org>",)
    assert r.model.description == "Logistic regression on the digits."
    assert r.model.weights == ("export/model.onnx", "model.safetensors")
    assert [(d.name, d.uri, d.mode) for d in r.datasets] == [
        ("test", "data/test", "referenced"), ("train", "data/train", "referenced")]
    assert r.code.exclude == ("data/**",)
    assert r.train is not None and r.train.template == "{python} train.py --out {output}"
    assert r.evaluate is not None and r.evaluate.metrics == "metrics.json"
    assert r.evaluate.template == ("{python} evaluate.py --weights '{weights:export/model.onnx}' "
                                   "--data {data:test} --out {output}")
    assert r.evaluate.argv({"export/model.onnx": "/w/m.onnx"}, {"test": "/d/t"}, "/o", "py") == \
        ["py", "evaluate.py", "--weights", "/w/m.onnx", "--data", "/d/t", "--out", "/o"]
    assert r.environment.python is None
    assert schema.validate(r.to_dict(), "recipe") == []


def test_init_project_with_a_venv(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = next((root / ".venv" / "lib").glob("python*/site-packages"))
    (site / "pkg").mkdir()
    (site / "pkg" / "bundled.safetensors").write_bytes(b"x")  # a package's file, not the model
    (root / "other-env").mkdir()
    (root / "other-env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "other-env" / "w.onnx").write_bytes(b"x")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "w.onnx").write_bytes(b"x")
    (root / "model.safetensors").write_bytes(b"x")
    (root / "eval.py").write_text("")
    (root / "datasets" / "digits").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "2.1.0"\n'
                                         'license = "Apache-2.0 OR MIT"\ndescription = "A model"\n')
    r = Recipe.from_dict(tomllib.loads(init_recipe(root)), root=root)
    assert r.model.weights == ("model.safetensors",)
    assert r.environment.python == ".venv/bin/python"
    assert (root / r.environment.python).exists()
    assert r.code.exclude == ("datasets/**", ".venv/**")
    assert (r.model.version, r.model.license, r.model.description) == \
        ("2.1.0", "Apache-2.0 OR MIT", "A model")
    assert [(d.name, d.uri) for d in r.datasets] == [("datasets", "datasets")]
    assert r.train is None
    assert r.evaluate is not None and r.evaluate.template == \
        "{python} eval.py --weights {weights} --data {data:datasets} --out {output}"


BSD3 = ("BSD 3-Clause License\n\nRedistribution and use in source and binary forms, with or\n"
        "3. Neither the name of the copyright holder")


@pytest.mark.parametrize(("text", "spdx"), [
    ("                     Apache License\n               Version 2.0, January 2004\n", "Apache-2.0"),
    (BSD3, "BSD-3-Clause"),
    ("Redistribution and use in source and binary forms, with or without", "BSD-2-Clause"),
    ("          GNU GENERAL PUBLIC LICENSE\n             Version 3, 29 June 2007\n",
     "GPL-3.0-or-later"),
    ("All rights reserved.\n", None),
])
def test_init_detects_the_license_file(text: str, spdx: str | None, tmp_path: Path) -> None:
    (tmp_path / "COPYING").write_text(text)
    (tmp_path / "m.onnx").write_bytes(b"x")
    assert load_recipe(write(tmp_path, init_recipe(tmp_path))).model.license == spdx


def test_init_escapes_odd_names(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "a dir").mkdir(parents=True)
    (root / "a dir" / "it's.safetensors").write_bytes(b"x")
    (root / "b.onnx").write_bytes(b"x")
    (root / "bad*name.onnx").write_bytes(b"x")  # not a portable name: left out
    (root / "evaluate.py").write_text("")
    (root / "README.rst").write_text('Says "hi" \\ back\tslash\n=====\n')
    r = load_recipe(write(root, init_recipe(root)))
    assert r.model.weights == ("a dir/it's.safetensors", "b.onnx")
    assert r.model.description == 'Says "hi" \\ back\tslash'
    assert r.evaluate is not None
    bound = {"a dir/it's.safetensors": "/w/a b", "b.onnx": "/w/b"}
    assert r.evaluate.argv(bound, {}, "/o", "py") == ["py", "evaluate.py", "--weights", "/w/a b",
                                                       "--out", "/o"]


def test_init_refuses_an_existing_recipe(tmp_path: Path) -> None:
    write(tmp_path, "# mine\n" + BASE)
    with pytest.raises(UsageError) as info:
        write_init(tmp_path)
    assert info.value.code == "E_EXISTS" and "mlpack.toml already exists" in info.value.message
    assert info.value.hint is not None and "--force" in info.value.hint
    assert (tmp_path / "mlpack.toml").read_text().startswith("# mine\n")
    write_init(tmp_path, force=True)
    assert (tmp_path / "mlpack.toml").read_text().startswith("# mlpack.toml:")
    assert [p.name for p in tmp_path.iterdir()] == ["mlpack.toml"]  # no temp file left behind


def test_init_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        write_init(tmp_path / "missing")
    assert info.value.code == "E_INPUT"


def test_init_through_the_cli(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    result = cli("init", tmp_path)
    assert result.code == 0, result.err
    assert load_recipe(tmp_path).model.weights == ("m.onnx",)
    result = cli("init", tmp_path)
    assert result.code == 2 and "already exists" in result.err


def test_docstring_examples_run() -> None:
    import doctest

    import mlpack.recipe
    import mlpack.spdx

    for module, examples in ((mlpack.recipe, 2), (mlpack.spdx, 1)):
        result = doctest.testmod(module)
        assert result.attempted >= examples and result.failed == 0
