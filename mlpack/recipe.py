"""The recipe ``mlpack.toml`` (spec/recipe.md) and the ``entrypoints`` section of mlpack.json.

The recipe says what ``mlpack build`` captures: the model's metadata and weights files, which
project files are code, how the environment is locked, the datasets, the ``train`` and
``evaluate`` commands and the expected metrics. Every key is checked; an unknown key is
refused with the closest known one (a typo must never drop a rule silently). ``mlpack.init``
drafts a commented recipe from what a project holds.

    >>> r = Recipe.from_dict({"model": {"name": "m", "weights": ["model.safetensors"]},
    ...     "entrypoints": {"evaluate": {"command": "python ev.py --w {weights} --out {output}"}}})
    >>> r.entrypoints.evaluate.argv({"model.safetensors": "/p/m.st"}, {}, "/tmp/o", "py")
    ['python', 'ev.py', '--w', '/p/m.st', '--out', '/tmp/o']
"""

from __future__ import annotations

import difflib
import json
import math
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from .errors import UsageError, VerificationError
from .names import check_name
from .spdx import license_problem

__all__ = ["RECIPE_NAME", "WEIGHTS_TODO", "CodeRules", "Command", "DatasetSpec", "Entrypoints",
           "EnvironmentRules", "ExpectedMetric", "ModelInfo", "Recipe", "license_problem",
           "load_recipe"]

RECIPE_NAME = "mlpack.toml"
WEIGHTS_TODO = "TODO: list the weights files"
"""What ``mlpack init`` writes when it found no weights; :func:`load_recipe` refuses it."""
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ENV_MODES = ("lock", "wheelhouse", "conda-pack", "none")
DATASET_MODES = ("referenced", "included")
DIRECTIONS = ("higher", "lower")
PLACEHOLDERS = ("{weights}", "{weights:PATH}", "{data:NAME}", "{output}", "{python}")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SHELL_OPS = re.compile(r"[;&|<>()]+")

# ---------------------------------------------------------------- typed getters


@dataclass(frozen=True, slots=True)
class _Ctx:
    """Where a document came from; decides the error class and code."""

    source: str = RECIPE_NAME
    strict: bool = True  # refuse unknown keys (the recipe) or ignore them (mlpack.json)

    def fail(self, path: str, why: str, hint: str) -> NoReturn:
        if self.source.endswith(".json"):
            raise VerificationError(f"{self.source}: {path} {why}", code="E_MANIFEST", hint=hint,
                                    member=self.source)
        raise UsageError(f"{self.source}: {path} {why}", code="E_RECIPE", hint=hint)


_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
               list: "an array", dict: "a table"}


def _shown(v: Any) -> str:
    if isinstance(v, str):
        text = json.dumps(v, ensure_ascii=False)
        return text if len(text) <= 60 else text[:56] + '..."'
    return _TOML_TYPES.get(type(v), type(v).__name__)


class _Table:
    """One TOML table: typed getters that name the key path, and the unknown-key check."""

    def __init__(self, ctx: _Ctx, value: Any, path: str, known: Sequence[str]) -> None:
        if not isinstance(value, dict):
            ctx.fail(path or "the document", f"must be a table (got {_shown(value)})",
                     f"write [{path}] with its keys" if path else "write TOML tables such as [model]")
        self.ctx, self.d, self.path = ctx, value, path
        if ctx.strict:
            for key in value:
                if key not in known:
                    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
                    hint = (f"did you mean {self.key(close[0])}?" if close
                            else f"the keys of {path or 'the document'} are: {', '.join(known)}")
                    ctx.fail(self.key(key), "is not a known key", hint)

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, why: str, hint: str) -> NoReturn:
        self.ctx.fail(self.key(key), why, hint)

    def text(self, key: str, *, required: bool = False, what: str = "a non-empty string",
             check: Callable[[str], bool] | None = None, hint: str = "") -> str | None:
        if key not in self.d:
            if required:
                self.fail(key, "is required", hint or f"add {key} = ... to [{self.path}]")
            return None
        v = self.d[key]
        if not isinstance(v, str) or not v or (check is not None and not check(v)):
            self.fail(key, f"must be {what} (got {_shown(v)})", hint or f"write {what}")
        return v

    def short(self, key: str, *, required: bool = False, hint: str = "") -> str | None:
        return self.text(key, required=required, what="1 to 200 characters",
                         check=lambda s: len(s) <= 200, hint=hint)

    def texts(self, key: str, *, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if key not in self.d:
            return default
        v = self.d[key]
        if not isinstance(v, list):
            self.fail(key, f"must be an array of strings (got {_shown(v)})", f'write {key} = ["..."]')
        for i, item in enumerate(v):
            if not isinstance(item, str) or not item:
                self.ctx.fail(f"{self.key(key)}[{i}]", f"must be a non-empty string (got {_shown(item)})",
                              "remove it or write a string")
        return tuple(v)

    def number(self, key: str, *, minimum: float | None = None) -> float | None:
        if key not in self.d:
            return None
        v = self.d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(key, f"must be a finite number (got {_shown(v) if not isinstance(v, float) else v})",
                      "write a number such as 0.01")
        if minimum is not None and v < minimum:
            self.fail(key, f"must be >= {minimum:g} (got {v})", "write a non-negative number")
        return float(v)

    def choice(self, key: str, choices: Sequence[str], default: str | None) -> str:
        if key not in self.d:
            if default is None:
                self.fail(key, "is required", f"add {key} = {' or '.join(map(json.dumps, choices))}")
            return default
        v = self.d[key]
        if v not in choices:
            alts = " or ".join(f'"{c}"' for c in choices) if len(choices) < 3 else \
                ", ".join(f'"{c}"' for c in choices[:-1]) + f' or "{choices[-1]}"'
            close = difflib.get_close_matches(v, choices, n=1) if isinstance(v, str) else []
            self.fail(key, f"must be {alts} (got {_shown(v)})",
                      f'did you mean "{close[0]}"?' if close else f"write one of {alts}")
        return str(v)

    def tables(self, key: str) -> list[Any]:
        v = self.d.get(key, [])
        if not isinstance(v, list):
            self.fail(key, f"must be an array of tables (got {_shown(v)})", f"write [[{key}]] tables")
        return v


def _rel_path(ctx: _Ctx, path: str, value: str, what: str) -> None:
    try:
        check_name(value)
    except VerificationError as err:
        why = err.message.split(": ", 1)[-1]
        ctx.fail(path, f"must be a project-relative path without '..' ({why}: {_shown(value)})",
                 f"write the {what} relative to the project directory, with / separators")


def _check_pattern(ctx: _Ctx, path: str, pattern: str) -> None:
    from .code import translate_glob  # the pattern syntax belongs to spec/code.md

    try:
        translate_glob(pattern)
    except UsageError as err:
        why = err.message.rpartition(f"pattern {pattern!r} ")[2]
        ctx.fail(path, f"{why} (got {_shown(pattern)})", err.hint or "fix the pattern")


# ---------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelInfo:
    """``[model]``: what the pack is and which files are its weights."""

    name: str
    """1 to 200 characters; the pack's name."""
    weights: tuple[str, ...]
    """Project-relative paths of the weights files (at least one)."""
    version: str | None = None
    license: str | None = None
    """An SPDX license expression."""
    authors: tuple[str, ...] = ()
    description: str | None = None
    parent: str | None = None
    """``sha256:<hex>`` of the pack whose weights training started from."""

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx = _Ctx()) -> ModelInfo:
        t = _Table(ctx, d, "model", ("name", "version", "license", "authors", "description",
                                     "weights", "parent"))
        name = t.short("name", required=True, hint='add name = "my-model" to [model]')
        if "weights" not in t.d:
            t.fail("weights", "is required", 'list the weights files: weights = ["model.safetensors"]')
        weights = t.texts("weights")
        if not weights:
            t.fail("weights", "must list at least one file", 'weights = ["model.safetensors"]')
        if any(w.startswith("TODO") for w in weights):
            t.fail("weights", "still holds the placeholder mlpack init wrote",
                   'list the trained weights files, e.g. weights = ["model.safetensors"]')
        for i, w in enumerate(weights):
            _rel_path(ctx, f"model.weights[{i}]", w, "weights file")
        if len(set(weights)) != len(weights):
            dup = next(w for w in weights if weights.count(w) > 1)
            t.fail("weights", f"lists {_shown(dup)} twice", "list each file once")
        license = t.text("license")
        if license is not None:
            problem = license_problem(license)
            if problem:
                t.fail("license", f"{problem[0]} (in {_shown(license)})", problem[1])
        parent = t.text("parent", what="sha256:<64 lowercase hex digits>",
                        check=lambda s: DIGEST.fullmatch(s) is not None,
                        hint="write the parent pack's digest as mlpack inspect shows it")
        return cls(name=name or "", weights=weights, version=t.text("version"), license=license,
                   authors=t.texts("authors"), description=t.text("description"), parent=parent)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in ("version", "license", "authors", "description"):
            value = getattr(self, key)
            if value:
                out[key] = list(value) if isinstance(value, tuple) else value
        out["weights"] = list(self.weights)
        if self.parent is not None:
            out["parent"] = self.parent
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeRules:
    """``[code]``: which project files are packed as code."""

    include: tuple[str, ...] = ("**",)
    """Glob patterns over project-relative paths; the default selects every file."""
    exclude: tuple[str, ...] = ()
    """Applied after ``include``."""
    allow_secrets: tuple[str, ...] = ()
    """Project-relative paths that look like secrets but must be packed."""

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx = _Ctx()) -> CodeRules:
        t = _Table(ctx, d, "code", ("include", "exclude", "allow-secrets"))
        include, exclude = t.texts("include", default=("**",)), t.texts("exclude")
        if not include:
            t.fail("include", "must not be empty", 'remove it (default: every file) or list patterns')
        for key, patterns in (("include", include), ("exclude", exclude)):
            for i, p in enumerate(patterns):
                _check_pattern(ctx, f"code.{key}[{i}]", p)
        allow = t.texts("allow-secrets")
        for i, p in enumerate(allow):
            _rel_path(ctx, f"code.allow-secrets[{i}]", p, "file")
        return cls(include=include, exclude=exclude, allow_secrets=allow)

    def to_dict(self) -> dict[str, Any]:
        return {"include": list(self.include), "exclude": list(self.exclude),
                "allow-secrets": list(self.allow_secrets)}


EnvMode = Literal["lock", "wheelhouse", "conda-pack", "none"]


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentRules:
    """``[environment]``: how the training environment is captured."""

    mode: EnvMode = "lock"
    python: str | None = None
    """The interpreter whose packages are locked (project-relative or absolute)."""

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx = _Ctx()) -> EnvironmentRules:
        t = _Table(ctx, d, "environment", ("mode", "python"))
        mode: Any = t.choice("mode", ENV_MODES, "lock")
        return cls(mode=mode, python=t.text("python", hint='e.g. python = ".venv/bin/python"'))

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, **({"python": self.python} if self.python else {})}


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetSpec:
    """One ``[[datasets]]`` entry."""

    name: str
    uri: str
    """Project-relative path, absolute path, or ``s3://bucket/prefix``."""
    mode: Literal["referenced", "included"] = "referenced"
    endpoint: str | None = None
    """S3-compatible endpoint URL, for ``s3://`` URIs only."""

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx = _Ctx(), where: str = "datasets[0]") -> DatasetSpec:
        t = _Table(ctx, d, where, ("name", "uri", "mode", "endpoint"))
        name = t.text("name", required=True, what="1-128 of A-Z a-z 0-9 . _ - (first: letter or digit)",
                      check=lambda s: DATASET_NAME.fullmatch(s) is not None,
                      hint='e.g. name = "digits-test"')
        uri = t.text("uri", required=True, what="a non-empty path or s3:// URI",
                     hint='e.g. uri = "data/test"') or ""
        if "://" in uri:
            scheme, _, rest = uri.partition("://")
            if scheme != "s3" or not rest.split("/")[0]:
                t.fail("uri", f"must be a path or s3://bucket/prefix (got {_shown(uri)})",
                       "local data is a path (no file://); object stores use s3://")
        endpoint = t.text("endpoint", what="an http:// or https:// URL",
                          check=lambda s: re.fullmatch(r"https?://\S+", s) is not None)
        if endpoint is not None and not uri.startswith("s3://"):
            t.fail("endpoint", "is only for s3:// URIs", "remove it, or use an s3:// uri")
        mode: Any = t.choice("mode", DATASET_MODES, "referenced")
        return cls(name=name or "", uri=uri, mode=mode, endpoint=endpoint)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "uri": self.uri, "mode": self.mode}
        return {**out, "endpoint": self.endpoint} if self.endpoint else out


def _placeholders(ctx: _Ctx, path: str, template: str) -> list[str]:
    """The placeholder bodies of ``template`` in order (checks braces and quoting)."""
    try:
        words = shlex.split(template)
    except ValueError as err:
        ctx.fail(path, f"cannot be split into words ({err})", "close every quote")
    if not words:
        ctx.fail(path, "is empty", 'write a command, e.g. "{python} evaluate.py --out {output}"')
    lexer = shlex.shlex(template, posix=False, punctuation_chars=True)
    lexer.commenters = ""
    try:
        raw = list(lexer)
    except ValueError:  # an escaped quote that only the POSIX split understands
        raw = []
    ops = [w for w in raw if _SHELL_OPS.fullmatch(w)]
    if ops:
        ctx.fail(path, f"uses the shell operator {ops[0]!r}, but commands run without a shell",
                 f"quote it to pass it as an argument, or run a script: sh -c '...' (got {template!r})")
    found: list[str] = []
    for word in words:
        for m in _TOKEN.finditer(word):
            if m.group() in ("{{", "}}"):
                continue
            if m.group(1) is None:
                ctx.fail(path, f"has an unmatched {m.group()!r} in {word!r}",
                         "write {{ or }} for a literal brace; quote a placeholder holding spaces")
            found.append(m.group(1))
    return found


@dataclass(frozen=True, kw_only=True, slots=True)
class Command:
    """An entry point: a command template and, for ``evaluate``, its metrics file."""

    template: str
    metrics: str | None = None
    """The file (relative to ``{output}``) where the command writes its metrics."""

    def placeholders(self) -> tuple[str, ...]:
        """The placeholders used, without braces (``weights``, ``data:NAME``...), in order."""
        found = _placeholders(_Ctx(), "command", self.template)
        return tuple(dict.fromkeys(found))

    def argv(self, weights: Mapping[str, str], data: Mapping[str, str], output: str,
             python: str) -> list[str]:
        """The argument vector: split with shlex first, then substitute inside each word.

        ``weights`` maps each ``model.weights`` path to the file to use, ``data`` each
        dataset name to its local path. A value with spaces stays one argument.

        Raises:
            UsageError: ``E_USAGE`` when a placeholder the command uses has no binding.
        """
        def resolve(body: str) -> str:
            kind, _, arg = body.partition(":")
            value: str | None = None
            if body == "weights":
                value = next(iter(weights.values())) if len(weights) == 1 else None
            elif kind == "weights" and arg:
                value = weights.get(arg)
            elif kind == "data" and arg:
                value = data.get(arg)
            elif body == "output":
                value = output
            elif body == "python":
                value = python
            if value is None:
                raise UsageError(f"the command's placeholder {{{body}}} has no value",
                                 hint=f"bind {{{body}}} (bound: weights {sorted(weights)}, "
                                      f"data {sorted(data)})")
            return value

        _placeholders(_Ctx(), "command", self.template)  # braces and quotes are well formed
        return [_TOKEN.sub(lambda m: {"{{": "{", "}}": "}"}.get(m.group()) or resolve(m.group(1)),
                           word) for word in shlex.split(self.template)]

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx, path: str, *, evaluate: bool,
                  weights: Sequence[str] | None, datasets: Sequence[str] | None) -> Command:
        t = _Table(ctx, d, path, ("command", "metrics") if evaluate else ("command",))
        template = t.text("command", required=True, what="a non-empty command",
                          hint=f'add command = "{{python}} {path.rpartition(".")[2]}.py --out {{output}}"')
        assert template is not None
        for body in _placeholders(ctx, t.key("command"), template):
            kind, _, arg = body.partition(":")
            if body in ("weights", "output", "python"):
                if body == "weights" and weights is not None and len(weights) != 1:
                    t.fail("command", f"uses {{weights}}, but model.weights lists {len(weights)} files",
                           "name one: {weights:PATH}")
            elif kind == "weights" and arg:
                if weights is not None and arg not in weights:
                    t.fail("command", f"uses {{{body}}}, but {arg!r} is not in model.weights",
                           f"use one of: {', '.join(weights)}")
            elif kind == "data" and arg:
                if datasets is not None and arg not in datasets:
                    close = difflib.get_close_matches(arg, datasets, n=1)
                    t.fail("command", f"uses {{{body}}}, but no dataset is named {arg!r}",
                           f"did you mean {{data:{close[0]}}}?" if close
                           else f'declare it: [[datasets]] name = "{arg}"')
            else:
                t.fail("command", f"has an unknown placeholder {{{body}}}",
                       f"placeholders are {', '.join(PLACEHOLDERS)} ({{{{ for a literal brace)")
        metrics = None
        if evaluate:
            # the recipe may omit it (default); the manifest section always carries it
            metrics = t.text("metrics", required=not ctx.strict) or "metrics.json"
            _rel_path(ctx, t.key("metrics"), metrics, "metrics file (inside {output})")
        return cls(template=template, metrics=metrics)

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.template, **({"metrics": self.metrics} if self.metrics else {})}


@dataclass(frozen=True, kw_only=True, slots=True)
class Entrypoints:
    """``[entrypoints]``; also the ``entrypoints`` section of mlpack.json 1.1."""

    train: Command | None = None
    evaluate: Command | None = None

    @classmethod
    def from_dict(cls, d: Any, *, weights: Sequence[str] | None = None,
                  datasets: Sequence[str] | None = None, source: str = RECIPE_NAME) -> Entrypoints:
        """Parse ``[entrypoints]`` (``source`` mlpack.toml: ``E_RECIPE``, unknown keys refused)
        or the mlpack.json section (``source`` mlpack.json: ``E_MANIFEST``, unknown keys
        ignored). ``weights``/``datasets``, when given, are what placeholders may name."""
        return cls._parse(d, _Ctx(source, strict=not source.endswith(".json")), weights, datasets)

    @classmethod
    def _parse(cls, d: Any, ctx: _Ctx, weights: Sequence[str] | None,
               datasets: Sequence[str] | None) -> Entrypoints:
        t = _Table(ctx, d, "entrypoints", ("train", "evaluate"))
        cmds = {k: Command.from_dict(t.d[k], ctx, t.key(k), evaluate=k == "evaluate",
                                     weights=weights, datasets=datasets)
                for k in ("train", "evaluate") if k in t.d}
        return cls(**cmds)

    def to_dict(self) -> dict[str, Any]:
        return {k: c.to_dict() for k, c in (("train", self.train), ("evaluate", self.evaluate)) if c}


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpectedMetric:
    """One ``[[metrics]]`` entry: a claimed result and how far a reproduction may differ."""

    name: str
    direction: Literal["higher", "lower"]
    """Which way is better."""
    dataset: str | None = None
    split: str | None = None
    value: float | None = None
    """None: the value the recorded training run logged."""
    absolute: float | None = None
    relative: float | None = None

    @classmethod
    def from_dict(cls, d: Any, ctx: _Ctx = _Ctx(), where: str = "metrics[0]",
                  datasets: Sequence[str] = ()) -> ExpectedMetric:
        t = _Table(ctx, d, where, ("name", "dataset", "split", "direction", "value", "tolerance"))
        name = t.short("name", required=True, hint='e.g. name = "accuracy"')
        dataset = t.short("dataset")
        if dataset is not None and datasets and dataset not in datasets:
            close = difflib.get_close_matches(dataset, datasets, n=1)
            t.fail("dataset", f"names no declared dataset (got {_shown(dataset)})",
                   f'did you mean "{close[0]}"?' if close else f"use one of: {', '.join(datasets)}")
        direction: Any = t.choice("direction", DIRECTIONS, None)
        if "tolerance" not in t.d:
            t.fail("tolerance", "is required", "add tolerance = { absolute = 0.01 } (and/or relative)")
        tol = _Table(ctx, t.d["tolerance"], t.key("tolerance"), ("absolute", "relative"))
        absolute, relative = tol.number("absolute", minimum=0), tol.number("relative", minimum=0)
        if absolute is None and relative is None:
            t.fail("tolerance", "must have absolute or relative (or both)",
                   "e.g. tolerance = { absolute = 0.005, relative = 0.01 }")
        return cls(name=name or "", direction=direction, dataset=dataset,
                   split=t.short("split"), value=t.number("value"),
                   absolute=absolute, relative=relative)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in ("dataset", "split"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["direction"] = self.direction
        if self.value is not None:
            out["value"] = self.value
        out["tolerance"] = {k: v for k, v in (("absolute", self.absolute),
                                               ("relative", self.relative)) if v is not None}
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Recipe:
    """A parsed, checked ``mlpack.toml``."""

    model: ModelInfo
    code: CodeRules = CodeRules()
    environment: EnvironmentRules = EnvironmentRules()
    datasets: tuple[DatasetSpec, ...] = ()
    entrypoints: Entrypoints = Entrypoints()
    metrics: tuple[ExpectedMetric, ...] = ()
    root: Path = field(default=Path("."))
    """The project directory (where mlpack.toml is); not part of the document."""

    @classmethod
    def from_dict(cls, d: Any, *, root: Path = Path("."), source: str = RECIPE_NAME) -> Recipe:
        """Check a recipe document (the TOML as a dict); errors are ``E_RECIPE``."""
        ctx = _Ctx(source)
        t = _Table(ctx, d, "", ("model", "code", "environment", "datasets", "entrypoints",
                                "metrics"))
        if "model" not in t.d:
            ctx.fail("model", "is required", 'add a [model] table with name and weights')
        model = ModelInfo.from_dict(t.d["model"], ctx)
        datasets = tuple(DatasetSpec.from_dict(x, ctx, f"datasets[{i}]")
                         for i, x in enumerate(t.tables("datasets")))
        names = [s.name for s in datasets]
        for i, n in enumerate(names):
            if n in names[:i]:
                ctx.fail(f"datasets[{i}].name", f"repeats {_shown(n)}", "give each dataset its own name")
        metrics = tuple(ExpectedMetric.from_dict(x, ctx, f"metrics[{i}]", names)
                        for i, x in enumerate(t.tables("metrics")))
        seen: dict[tuple[str, str | None, str | None], int] = {}
        for i, m in enumerate(metrics):
            key = (m.name, m.dataset, m.split)
            if key in seen:
                ctx.fail(f"metrics[{i}]", f"repeats metrics[{seen[key]}] (same name, dataset and split)",
                         "remove one, or give them different datasets or splits")
            seen[key] = i
        return cls(
            model=model,
            code=CodeRules.from_dict(t.d.get("code", {}), ctx),
            environment=EnvironmentRules.from_dict(t.d.get("environment", {}), ctx),
            datasets=datasets,
            entrypoints=Entrypoints._parse(t.d.get("entrypoints", {}), ctx, model.weights, names),
            metrics=metrics, root=root)

    def to_dict(self) -> dict[str, Any]:
        """The document (``root`` excluded); ``from_dict(to_dict())`` gives an equal recipe."""
        out: dict[str, Any] = {"model": self.model.to_dict(), "code": self.code.to_dict(),
                               "environment": self.environment.to_dict()}
        if self.datasets:
            out["datasets"] = [s.to_dict() for s in self.datasets]
        if self.train or self.evaluate:
            out["entrypoints"] = self.entrypoints.to_dict()
        if self.metrics:
            out["metrics"] = [m.to_dict() for m in self.metrics]
        return out

    @property
    def train(self) -> Command | None:
        return self.entrypoints.train

    @property
    def evaluate(self) -> Command | None:
        return self.entrypoints.evaluate

    def entrypoints_section(self) -> dict[str, Any]:
        """The ``entrypoints`` section of mlpack.json 1.1 (empty when none is declared)."""
        return self.entrypoints.to_dict()


def load_recipe(path: Path | str) -> Recipe:
    """Read and check ``path`` (a mlpack.toml, or a project directory holding one).

    Raises:
        UsageError: ``E_RECIPE`` (missing, not TOML, invalid; the message names the key),
            ``E_INPUT`` (the directory does not exist, the file cannot be read).
    """
    path = Path(path)
    if not path.exists() and path.suffix != ".toml":
        raise UsageError(f"{path} is not a directory", code="E_INPUT", hint="check the path")
    file = path / RECIPE_NAME if path.is_dir() else path
    if not file.parent.is_dir():
        raise UsageError(f"{file.parent} is not a directory", code="E_INPUT", hint="check the path")
    if not file.exists():
        raise UsageError(f"no {file.name} in {file.parent}", code="E_RECIPE",
                         hint="run mlpack init to write one")
    try:
        data = file.read_bytes()
    except OSError as err:
        raise UsageError(f"{file}: cannot be read ({err.strerror or err})", code="E_INPUT",
                         hint="check the file's permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise UsageError(f"{file.name}:{line}: not UTF-8", code="E_RECIPE",
                         hint="save the file as UTF-8") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = str(err)
        m = re.search(r" \(at line (\d+), column (\d+)\)$", msg)
        if m:
            where, msg = f"{m.group(1)}:{m.group(2)}", msg[:m.start()]
        else:  # "(at end of document)"
            where, msg = f"{text.count(chr(10)) + 1}", msg.replace(" (at end of document)", "")
        raise UsageError(f"{file.name}:{where}: invalid TOML: {msg}", code="E_RECIPE",
                         hint=f"fix the TOML syntax at line {where.replace(':', ', column ')}") from None
    return Recipe.from_dict(doc, root=file.parent, source=file.name)
