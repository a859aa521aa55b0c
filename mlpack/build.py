"""``mlpack build``: capture a training project into one signed pack (spec/manifest.md, 1.1).

The recipe (``mlpack.toml``) names the weights, code rules, environment mode, datasets,
entry points and expected metrics; the training run recorded by :func:`mlpack.run`
(``.mlpack/run.json``) adds the command, parameters, seeds, thread counts, hardware and
the metrics it logged. Each capture module returns a :class:`~mlpack.capture.Captured`
(section + files); this module only orders them, checks that what the run recorded still
holds (weights and code unchanged since training: ``E_STALE``), and hands everything to
:func:`mlpack.pack.write_pack`, which reads each file once, hashes, signs and writes
atomically. Nothing is written unless every capture succeeded.

    result = build_project("project/", "model.mlpack", key=load_signing_key("k.pem"))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema
from .capture import Captured
from .errors import UsageError, VerificationError
from .keys import SigningKey
from .manifest import FilesSummary, Manifest, WeightsFile
from .pack import PackResult, Source, write_pack

__all__ = ["BuildResult", "build_project", "capture_datasets", "capture_weights"]

RECIPE_NAME = "mlpack.toml"
RUN_RECORD = ".mlpack/run.json"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What ``build`` wrote, what each step took, and the warnings worth reading."""

    pack: PackResult
    manifest: Manifest
    notes: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)


def capture_weights(root: Path, paths: Sequence[str]) -> tuple[Captured, list[WeightsFile]]:
    """Index every weights file (``weights/<path>`` in the pack) without loading a model.

    Files that are neither safetensors nor ONNX (an ONNX model's external data) are packed
    beside them; the ONNX index checks that its external-data files are among them.
    """
    from .weights import index_onnx, index_safetensors

    members = {p: f"weights/{p}" for p in paths}
    sources, entries = [], []
    for rel, member in members.items():
        path = root / rel
        if path.is_symlink() or not path.is_file():
            what = "is a symbolic link" if path.is_symlink() else "does not exist"
            raise UsageError(f"weights file {rel} {what}", code="E_INPUT",
                             hint="train first, or fix [model] weights in mlpack.toml")
        sources.append(Source(member, path=str(path)))
    for rel, member in members.items():
        path = root / rel
        if rel.endswith(".safetensors"):
            index = index_safetensors(path, name=member)
        elif rel.endswith(".onnx"):
            base = member.rpartition("/")[0]
            index = index_onnx(path, frozenset(members.values()), base)
        else:
            continue
        entries.append(WeightsFile(path=member, format=index.format, size=index.size,
                                   index=index.to_dict()))
    if not entries:
        raise UsageError("no .safetensors or .onnx file among [model] weights", code="E_RECIPE",
                         hint="list the weights files in mlpack.toml (convert pickles with mlpack convert)")
    return Captured(section={}, files=tuple(sources)), entries


def capture_datasets(root: Path, specs: Sequence[Any], *, algorithm: str = "sha256") -> Captured:
    """A Parquet manifest per dataset (``datasets/<name>.parquet``), plus the files of the
    ``included`` ones under ``datasets/<name>/``."""
    from . import datasets

    entries, files = [], []
    for spec in sorted(specs, key=lambda s: s.name):
        uri = spec.uri if spec.uri.startswith("s3://") or os.path.isabs(spec.uri) else str(root / spec.uri)
        if not uri.startswith("s3://") and not os.path.exists(uri):
            raise UsageError(f"dataset {spec.name!r}: {spec.uri} does not exist", code="E_INPUT",
                             hint="fix its uri in mlpack.toml, or restore the data")
        manifest = datasets.build(uri, algorithm=algorithm, endpoint=spec.endpoint)
        # the recorded uri is the recipe's (project-relative paths stay portable)
        manifest = datasets.DatasetManifest(uri=spec.uri, algorithm=manifest.algorithm,
                                            paths=manifest.paths, sizes=manifest.sizes,
                                            digests=manifest.digests, tables=manifest.tables)
        entry = manifest.entry(spec.name, mode=spec.mode)
        files.append(Source(entry.manifest, data=manifest.to_parquet_bytes()))
        if spec.mode == "included":
            if uri.startswith("s3://"):
                raise UsageError(f"dataset {spec.name!r}: an s3:// dataset can only be referenced",
                                 code="E_RECIPE", hint='set mode = "referenced"')
            base = Path(uri)
            for rel in manifest.paths:
                local = base / rel if base.is_dir() else base
                files.append(Source(f"{entry.path}/{rel}", path=str(local)))
        entries.append(entry.to_dict())
    return Captured(section={"entries": entries} if entries else {}, files=tuple(files))


def _stale(notes: list[str], allow: bool, check: Callable[..., None], *args: Any, **kw: Any) -> None:
    """Run a staleness check; with ``allow`` its failure becomes a note instead."""
    try:
        check(*args, **kw)
    except VerificationError as err:
        if not allow or err.code != "E_STALE":
            raise
        notes.append(f"STALE (allowed by --allow-stale): {err.message}")


def _timed(timings: dict[str, float], name: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    start = time.perf_counter()
    try:
        return fn(*args, **kw)
    finally:
        timings[name] = round(time.perf_counter() - start, 4)


def build_project(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: SigningKey | None,
    algorithm: str = "sha256",
    replace_existing: bool = False,
    allow_stale: bool = False,
    environment_mode: str | None = None,
) -> BuildResult:
    """Capture the project at ``root`` as its ``mlpack.toml`` says and write the pack ``out``."""
    from . import code, environment, hardware, metrics, recipe, training

    project = Path(root)
    if not project.is_dir():
        raise UsageError(f"{project} is not a directory", code="E_INPUT")
    target = Path(out)
    if target.exists() and not replace_existing:
        raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
    timings: dict[str, float] = {}
    notes: list[str] = []
    rec = _timed(timings, "recipe", recipe.load_recipe, project / RECIPE_NAME)
    run = _timed(timings, "run", training.load_run, project)
    if run is None:
        notes.append("no training run recorded (.mlpack/run.json): the training section holds only "
                     "the recipe; wrap training in mlpack.run() to record it")
    else:
        if run.get("status") != "completed":
            notes.append(f"the recorded run did not complete (status {run.get('status')!r})")
        _stale(notes, allow_stale, training.check_run, run, project, rec.model.weights, code=False)

    weights_cap, weights = _timed(timings, "weights", capture_weights, project, rec.model.weights)
    skip = set(rec.model.weights) | {RUN_RECORD}
    if target.resolve().is_relative_to(project.resolve()):
        skip.add(target.resolve().relative_to(project.resolve()).as_posix())
    for spec in rec.datasets:
        if spec.mode == "included" and not spec.uri.startswith("s3://") and not os.path.isabs(spec.uri):
            skip.add(spec.uri.rstrip("/"))
    code_cap = _timed(timings, "code", code.capture_code, project, include=rec.code.include,
                      exclude=rec.code.exclude, allow_secrets=rec.code.allow_secrets, skip=skip)
    if run is not None:
        _stale(notes, allow_stale, training.check_code, run, project)
    mode = environment_mode or rec.environment.mode
    python: str | None = None
    if rec.environment.python:
        python = str(training.resolve_recorded(rec.environment.python, project))
    elif run is not None and (run.get("python") or {}).get("executable"):
        python = str(training.resolve_recorded(run["python"]["executable"], project))
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlpack-build-") as work:
        env_cap = _timed(timings, "environment", environment.capture_environment, python, mode=mode,
                         workdir=Path(work))
        data_cap = _timed(timings, "datasets", capture_datasets, project, rec.datasets)
        if run is not None and run.get("hardware"):
            hw_section = run["hardware"]
        else:
            hw_section = _timed(timings, "hardware", hardware.capture).to_dict()
            notes.append("hardware profiled at build time (no run record)")
        sections: dict[str, dict[str, Any]] = {
            "code": code_cap.section,
            "environment": env_cap.section,
            "hardware": hw_section,
            "training": training.training_section(run, rec),
            "metrics": metrics.merge([m.to_dict() for m in rec.metrics],
                                     list((run or {}).get("metrics", []))),
            "entrypoints": rec.entrypoints_section(),
        }
        if data_cap.section:
            sections["datasets"] = data_cap.section
        sections = {k: v for k, v in sections.items() if v}
        for name, value in sections.items():
            if name in schema.SCHEMA_NAMES:
                problems = schema.validate(value, name)
                if problems:  # a capture bug, not a user error: never write a non-conforming pack
                    raise VerificationError(f"the {name} section would not conform to the spec: "
                                            f"{problems[0]}", code="E_MANIFEST")
        m = rec.model
        manifest = Manifest(name=m.name, version=m.version, description=m.description, license=m.license,
                            authors=tuple(m.authors), files=FilesSummary(count=0, size=0),
                            weights=tuple(weights), sections=sections)
        for cap in (code_cap, env_cap, data_cap):
            notes.extend(cap.notes)
        sources = [*weights_cap.files, *code_cap.files, *env_cap.files, *data_cap.files]
        result = _timed(timings, "pack", write_pack, sources, manifest, target, key=key,
                        algorithm=algorithm, replace_existing=replace_existing, weights=weights)
    from .inspection import inspect_pack

    return BuildResult(result, inspect_pack(target).manifest, tuple(notes), timings)  # as written
