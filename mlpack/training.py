"""The training record (spec/training.md): ``mlpack.run()`` and the ``training`` section.

A training script wraps its work in :func:`run`. On entry the run fixes the seeds, pins
thread counts and determinism switches, and fingerprints the code; on exit (also when
training raises) it writes ``<project>/.mlpack/run.json``: the command, parameters,
seeds, thread counts, numerics variables, times, status, installed packages, hardware
profile, the metrics logged and the weights saved, each weights file with its sha256.
``mlpack build`` reads that record: :func:`check_run` refuses weights or code changed
since (``E_STALE``) and :func:`training_section` turns it into the pack's section.

    import mlpack
    with mlpack.run(params=cfg, seed=0, threads=1, deterministic=True) as run:
        model = train(cfg)
        run.log_metric("accuracy", acc, dataset="digits-test", split="test")
        run.save_weights(model, "model.safetensors")

The module imports only the standard library; frameworks are touched only when the
script already imported them (or names them in ``frameworks=``), numpy when installed.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, Self

from .errors import IOFailure, MlpackError, UsageError, VerificationError

__all__ = ["RUN_RECORD", "RUN_VERSION", "Run", "WeightsFile", "check_code", "check_run",
           "check_weights", "code_fingerprint", "code_rules", "display_path", "installed_packages",
           "jsonable_params", "load_run", "record_weights", "resolve_recorded", "run",
           "save_weights", "training_section"]

RUN_VERSION = "1.0"
RUN_RECORD = ".mlpack/run.json"
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
"""Set to ``threads`` inside a run: libraries loaded later and child processes obey them."""
CUBLAS_DETERMINISTIC = ":4096:8"
FRAMEWORKS = ("numpy", "torch")
MAX_PARAMS_DEPTH = 24
"""mlpack.json nests at most 32 deep; params sit 3 levels down (spec/README.md)."""
PROBE_WAIT = 15.0
TRAINING_KEYS = ("status", "error", "started", "ended", "duration_s", "command", "cwd", "python",
                 "params", "seeds", "determinism", "threads", "variables", "code_fingerprint",
                 "notes")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ACTIVE: Run | None = None


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _usage(message: str, hint: str, code: str = "E_USAGE") -> UsageError:
    return UsageError(message, code=code, hint=hint)


def _io(err: OSError, what: str, hint: str) -> IOFailure:
    failure = IOFailure.from_os_error(err, what)
    failure.hint = failure.hint or hint
    return failure


# -- paths as recorded ---------------------------------------------------------------------


def display_path(path: str | os.PathLike[str], project: Path) -> str:
    """A path as the record writes it: project-relative if inside, else ``~/...`` or absolute.

    Reason: records are published in packs; a home directory names the user.
    """
    p = Path(os.path.abspath(path))
    for q in (p, Path(os.path.realpath(p))):  # the project is resolved; the path may not be
        if q.is_relative_to(project):
            return q.relative_to(project).as_posix()
    home = Path.home()
    if home != Path(home.anchor) and p.is_relative_to(home):
        return "~/" + p.relative_to(home).as_posix()
    return p.as_posix()


def resolve_recorded(path: str, project: Path) -> Path:
    """The file a recorded path names (the inverse of :func:`display_path`)."""
    if path.startswith("~/"):
        return Path.home() / path[2:]
    p = Path(path)
    return p if p.is_absolute() else project / p


# -- params ---------------------------------------------------------------------------------


def jsonable_params(params: object) -> dict[str, Any]:
    """``params`` as a JSON object: mappings, dataclasses and argparse Namespaces of plain values.

    Lists and tuples become arrays, paths strings, enums their value, numpy scalars numbers.

    Raises:
        UsageError: ``E_USAGE`` naming the key (``params.optimizer.schedule``) of a value
            that is not JSON (a function, a tensor, NaN, a non-string key, too deep).
    """
    if params is None:
        return {}
    value = _jsonable(params, "params", 0)
    if not isinstance(value, dict):
        raise _usage(f"params is a {type(params).__name__}, not a mapping",
                     "pass a dict, a dataclass or an argparse.Namespace")
    return value


def _jsonable(v: object, path: str, depth: int) -> Any:
    if depth > MAX_PARAMS_DEPTH:
        raise _usage(f"{path} is nested more than {MAX_PARAMS_DEPTH} levels deep",
                     "flatten the configuration")
    if v is None or isinstance(v, (bool, str)):
        return v
    import enum

    if isinstance(v, enum.Enum):
        return _jsonable(v.value, path, depth)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _usage(f"{path} is {v}, which JSON cannot hold", "use None or a finite number")
        return float(v)
    if isinstance(v, PurePath):
        return v.as_posix()
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return _jsonable(v.item(), path, depth)
    argparse = sys.modules.get("argparse")
    if is_dataclass(v) and not isinstance(v, type):
        v = {f.name: getattr(v, f.name) for f in fields(v)}
    elif argparse is not None and isinstance(v, argparse.Namespace):
        v = vars(v)
    if isinstance(v, Mapping):
        out = {}
        for key, item in v.items():
            if not isinstance(key, str):
                raise _usage(f"{path} has the key {key!r}, which is not a string",
                             "use string keys (JSON objects have only those)")
            out[key] = _jsonable(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, f"{path}[{i}]", depth + 1) for i, x in enumerate(v)]
    what = type(v).__name__
    hint = ("convert it to a list (x.tolist()) if it is a small constant; data belongs in a "
            "dataset, not in params" if hasattr(v, "tolist") else
            "pass plain values (str, int, float, bool, None, lists, dicts) or a name for it")
    raise _usage(f"{path} is a {what}, which is not JSON-serializable", hint)


# -- recipe and code ------------------------------------------------------------------------


def code_rules(project: Path) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """``(include, exclude, skip)`` for :func:`mlpack.code.fingerprint`, read from mlpack.toml.

    ``skip`` is what ``mlpack build`` captures elsewhere: the recipe's weights and the
    project-relative ``included`` datasets. No recipe: every file, nothing skipped.

    Raises:
        UsageError: ``E_RECIPE`` when mlpack.toml is not TOML or a key has the wrong type.
    """
    path = project / "mlpack.toml"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return (), (), ()
    except OSError as err:
        raise _io(err, f"cannot read {path}", "check the file's permissions") from None
    import tomllib

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise _usage(f"mlpack.toml is not valid TOML: {err}", "fix the syntax, or run mlpack init",
                     "E_RECIPE") from None

    def strings(table: Any, where: str, key: str) -> tuple[str, ...]:
        value = table.get(key, []) if isinstance(table, dict) else None
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise _usage(f"mlpack.toml: {where}{key} must be a list of strings",
                         f'write {key} = ["..."]', "E_RECIPE")
        return tuple(value)

    skip = list(strings(doc.get("model", {}), "model.", "weights"))
    datasets = doc.get("datasets", [])
    for i, d in enumerate(datasets if isinstance(datasets, list) else []):
        uri = d.get("uri") if isinstance(d, dict) else None
        if (isinstance(uri, str) and d.get("mode") == "included" and "://" not in uri
                and not os.path.isabs(uri)):
            skip.append(uri.rstrip("/"))
    code = doc.get("code", {})
    return strings(code, "code.", "include"), strings(code, "code.", "exclude"), tuple(skip)


def code_fingerprint(project: Path) -> str:
    """The code fingerprint of the project as ``mlpack build`` would select its code.

    The files of the ``code`` section except the recipe ``mlpack.toml``.
    """
    from .code import fingerprint

    include, exclude, skip = code_rules(project)
    # the recipe is packaging, not training code: editing it after the run is not "stale"
    return fingerprint(project, include, exclude, skip=(*skip, "mlpack.toml"))


def installed_packages() -> dict[str, str]:
    """``{normalized name: version}`` of the distributions the running interpreter can import.

    Reads the ``Name`` and ``Version`` headers of every ``*.dist-info/METADATA`` (and
    ``*.egg-info``) on ``sys.path``; the first of two same-named distributions wins, as for
    imports (``importlib.metadata`` finds the same set, but parses every header: 0.1 s).
    Versions are exact (``2.13.0+cpu``).
    """
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                found = sorted((e.name, e.path, e.is_file()) for e in it
                               if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
        for name, path, is_file in found:
            meta = path if is_file else os.path.join(
                path, "METADATA" if name.endswith(".dist-info") else "PKG-INFO")
            dist, version = _name_version(meta)
            if dist and version:
                out.setdefault(re.sub(r"[-_.]+", "-", dist).lower(), version)
    return dict(sorted(out.items()))


def _name_version(path: str) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` headers of a core metadata file (they come first)."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, sep, value = line.partition(":")
                if sep and key in ("Name", "Version"):
                    found.setdefault(key, value.strip())
                    if len(found) == 2:
                        break
    except OSError:
        pass
    return found.get("Name"), found.get("Version")


# -- weights --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightsFile:
    """A weights file as the run recorded it."""

    path: str
    """As given, or project-relative inside a run (see :func:`display_path`)."""
    size: int
    sha256: str
    """64 lowercase hex digits."""
    recorded: str
    """When the run hashed it (RFC 3339, UTC)."""
    how: Literal["saved", "recorded"]
    """``saved`` by :func:`save_weights`, or ``recorded`` after other code wrote it."""
    format: str | None = None
    """``safetensors`` or ``onnx``; None for other files (ONNX external data)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256,
                               "recorded": self.recorded, "how": self.how}
        if self.format:
            out["format"] = self.format
        return out


def _hash(path: Path) -> tuple[int, str]:
    import hashlib

    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return size, hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as err:
        raise _io(err, f"cannot read {path}", "check the file's permissions") from None


def save_weights(obj: object, path: str | os.PathLike[str], *,
                 metadata: Mapping[str, str] | None = None) -> WeightsFile:
    """Write ``obj`` as safetensors (:func:`mlpack.convert.save_safetensors`) and hash it.

    Raises:
        UsageError: ``E_USAGE`` for a path other than ``*.safetensors`` or an object that
            cannot be stored without pickling.
    """
    from .convert import save_safetensors

    save_safetensors(obj, path, metadata=metadata)
    size, digest = _hash(Path(path))
    return WeightsFile(path=str(path), size=size, sha256=digest, recorded=_now(), how="saved",
                       format="safetensors")


def record_weights(path: str | os.PathLike[str]) -> WeightsFile:
    """Hash a weights file written by other code (ONNX export, a framework's own saver).

    Raises:
        UsageError: ``E_INPUT`` when it is missing, a link or not a regular file.
        VerificationError: ``E_UNSAFE_FORMAT`` when it is a pickle or a broken safetensors.
    """
    from .formats import WINDOW, check_content

    target = Path(path)
    if target.is_symlink() or not target.is_file():
        what = "is a symbolic link" if target.is_symlink() else "is not a file"
        raise _usage(f"{target} {what}", "record the weights file itself, after writing it",
                     "E_INPUT")
    try:
        with open(target, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(WINDOW)
            tail = os.pread(f.fileno(), WINDOW, max(0, size - WINDOW))
            fmt = check_content(target.name, size, head, tail,
                                lambda off, n: os.pread(f.fileno(), n, off))
    except OSError as err:
        raise _io(err, f"cannot read {target}", "check the file's permissions") from None
    size, digest = _hash(target)
    return WeightsFile(path=str(path), size=size, sha256=digest, recorded=_now(),
                       how="recorded", format=fmt)


# -- checks for mlpack build ----------------------------------------------------------------


def _stale(message: str, hint: str) -> VerificationError:
    return VerificationError(message, code="E_STALE", hint=hint)


def check_weights(record: Mapping[str, Any], root: str | os.PathLike[str], *,
                  paths: Collection[str] | None = None) -> None:
    """Refuse weights that changed since the run recorded them.

    Args:
        record: The run record (``.mlpack/run.json``).
        root: The project directory.
        paths: Check only these recorded paths (the recipe's weights); None: all.

    Raises:
        VerificationError: ``E_STALE`` naming the file and when the run recorded it.
        UsageError: ``E_INPUT`` when a recorded file no longer exists.
    """
    project = Path(root)
    for entry in record.get("weights", []):
        rel, when = entry["path"], entry["recorded"]
        if paths is not None and rel not in paths:
            continue
        file = resolve_recorded(rel, project)
        hint = "re-run training, or restore the weights the run saved"
        if not file.is_file():
            raise _usage(f"{rel} does not exist (the training run recorded it at {when})", hint,
                         "E_INPUT")
        size = file.stat().st_size
        if size != entry["size"] or _hash(file)[1] != entry["sha256"]:
            raise _stale(f"{rel} changed since the training run recorded it at {when}", hint)


def check_code(record: Mapping[str, Any], root: str | os.PathLike[str], *,
               digest: str | None = None) -> None:
    """Refuse a project whose code changed since the run started (``E_STALE``).

    ``digest`` is the ``code`` section's digest when the caller captured the code already;
    otherwise the fingerprint is computed now (:func:`code_fingerprint`).
    """
    recorded = record.get("code_fingerprint")
    if recorded is None:
        return
    if (digest or code_fingerprint(Path(root))) != recorded:
        raise _stale(f"the project's code changed since the training run started at "
                     f"{record.get('started', '?')}",
                     "re-run training, or restore the code; restrict [code] include to source "
                     "files if training writes into the project")


def check_run(record: Mapping[str, Any], root: str | os.PathLike[str],
              weights: Collection[str] | None = None, *, code: bool = True) -> None:
    """:func:`check_weights` (``weights``: the recipe's) then, if ``code``, :func:`check_code`."""
    check_weights(record, root, paths=weights)
    if code:
        check_code(record, root)


def load_run(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run record of the project, or None when no run was recorded.

    Raises:
        UsageError: ``E_INPUT`` when the record is not strict JSON, has another major
            version, or breaks the ``run`` schema.
    """
    from . import jsonstrict, schema

    path = Path(root) / RUN_RECORD
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise _io(err, f"cannot read {path}", "check the file's permissions") from None
    hint = "re-run training to write a new record, or delete the file"
    try:
        doc = jsonstrict.loads(data, what=RUN_RECORD, max_size=16 << 20, max_depth=40)
    except MlpackError as err:
        raise _usage(err.message, hint, "E_INPUT") from None
    version = doc.get("mlpack_run") if isinstance(doc, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise _usage(f"{RUN_RECORD}: unsupported mlpack_run version {version!r}", hint, "E_INPUT")
    problems = schema.validate(doc, "run")
    if problems:
        raise _usage(f"{RUN_RECORD}: {problems[0]}", hint, "E_INPUT")
    return doc  # type: ignore[no-any-return]


def _recipe_parent(recipe: object) -> str | None:
    model = recipe.get("model") if isinstance(recipe, Mapping) else getattr(recipe, "model", None)
    parent = model.get("parent") if isinstance(model, Mapping) else getattr(model, "parent", None)
    return parent if isinstance(parent, str) else None


def training_section(run: Mapping[str, Any] | None, recipe: object = None) -> dict[str, Any]:
    """The ``training`` section from a run record (pure).

    ``recipe`` (a mapping or an object with ``model.parent``) only supplies ``parent``
    when the run recorded none; without a run the section holds at most ``parent``.

    Raises:
        UsageError: ``E_RECIPE`` when ``model.parent`` differs from the run's parent.
    """
    declared = _recipe_parent(recipe) if recipe is not None else None
    if run is None:
        return {"parent": declared} if declared else {}
    parent = run.get("parent")
    if declared and parent and declared != parent:
        raise _usage(f"mlpack.toml: model.parent ({declared}) differs from the parent the "
                     f"training run recorded ({parent})",
                     "fix model.parent, or re-run training from the right parent", "E_RECIPE")
    out = {k: run[k] for k in TRAINING_KEYS if k in run}
    if parent or declared:
        out["parent"] = parent or declared
    return out


# -- the run --------------------------------------------------------------------------------


class Run:
    """One training run; use as a context manager (see :func:`run`)."""

    def __init__(self, *, params: object = None, seed: int | None = None,
                 threads: int | None = None, deterministic: bool = False,
                 project: str | os.PathLike[str] = ".", parent: str | None = None,
                 frameworks: Collection[str] = ()) -> None:
        self.project = Path(project).resolve()
        if not self.project.is_dir():
            raise _usage(f"project {project} is not a directory", "pass project= the directory "
                         "that holds mlpack.toml", "E_INPUT")
        self.params = jsonable_params(params)
        for name, value, low in (("seed", seed, 0), ("threads", threads, 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not low <= value < 2**32):
                raise _usage(f"{name}={value!r} must be an integer from {low} to 2**32-1",
                             f"pass {name}={low}")
        if parent is not None and (not isinstance(parent, str) or not _DIGEST.fullmatch(parent)):
            raise _usage(f"parent={parent!r} is not a pack digest",
                         'pass the digest mlpack inspect shows: "sha256:<64 hex digits>"')
        unknown = set(frameworks) - set(FRAMEWORKS)
        if unknown:
            raise _usage(f"frameworks: unknown {min(unknown)!r}",
                         f"choose from {', '.join(FRAMEWORKS)}")
        self.seed, self.threads, self.deterministic = seed, threads, bool(deterministic)
        self.parent, self.frameworks = parent, frozenset(frameworks)
        self.path = self.project / RUN_RECORD
        """Where the record is written at exit."""
        self.record: dict[str, Any] | None = None
        """The record written at exit (None before)."""
        self._state = "new"
        self._metrics: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
        self._weights: dict[str, WeightsFile] = {}
        self._notes: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self._probe: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._seeds: dict[str, int] = {}
        self._determinism: dict[str, Any] = {}
        self._environ: dict[str, str] = {}
        self._fingerprint: str | None = None
        self._torch_at_entry = False
        self._pools: list[dict[str, Any]] = []
        self._started, self._t0, self._cwd = "", 0.0, "."

    # entry ------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        global _ACTIVE
        if self._state != "new":
            raise _usage("this mlpack.run() was already used", "call mlpack.run() again")
        if _ACTIVE is not None:
            raise _usage("mlpack.run() blocks cannot be nested", "use one run per training")
        self._started = _now()
        self._t0 = time.perf_counter()
        self._cwd = display_path(os.getcwd(), self.project)
        try:
            fingerprint: str | None = code_fingerprint(self.project)  # a bad recipe fails here
        except ModuleNotFoundError as err:  # mlpack.code missing from a partial install
            fingerprint = None
            self._notes.append(f"code fingerprint: {err}")
        try:
            self._seeds = self._fix_seeds()
            self._determinism = self._fix_determinism()
            self._pin_threads()
            self._environ = dict(os.environ)  # filtered to the numerics variables at exit
        except BaseException:
            self._restore()
            raise
        self._fingerprint = fingerprint
        self._torch_at_entry = "torch" in sys.modules
        self._thread = threading.Thread(target=self._run_probes, name="mlpack-probe",
                                        daemon=True)
        self._thread.start()
        self._state = "active"
        _ACTIVE = self
        return self

    def _setenv(self, name: str, value: str) -> None:
        old = os.environ.get(name)
        os.environ[name] = value

        def undo() -> None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old

        self._undo.append(undo)

    def _frameworks(self) -> tuple[Any, Any]:
        """numpy (loaded, named or installed) and torch (loaded or named), else None."""
        import importlib
        import importlib.util

        np = sys.modules.get("numpy")
        if np is None and ("numpy" in self.frameworks or importlib.util.find_spec("numpy")):
            np = importlib.import_module("numpy")
        torch = sys.modules.get("torch")
        if torch is None and "torch" in self.frameworks:
            torch = importlib.import_module("torch")
        return np, torch

    def _fix_seeds(self) -> dict[str, int]:
        if self.seed is None:
            self._notes.append("no seed given: random draws differ from run to run")
            return {}
        import random

        np, torch = self._frameworks()
        random.seed(self.seed)
        seeds = {"python": self.seed}
        if np is not None:
            np.random.seed(self.seed)
            seeds["numpy"] = self.seed
        if torch is not None:
            torch.manual_seed(self.seed)  # every device
            seeds["torch"] = self.seed
        return seeds

    def _fix_determinism(self) -> dict[str, Any]:
        hashseed = os.environ.get("PYTHONHASHSEED")
        out: dict[str, Any] = {"requested": self.deterministic}
        if hashseed is not None:
            out["pythonhashseed"] = hashseed
        if hashseed in (None, "random"):
            self._notes.append("PYTHONHASHSEED is not set: the order of sets of strings differs "
                               "from run to run; start training as PYTHONHASHSEED=0 python ...")
            # (PYTHONHASHSEED=random is the same as unset)
        torch = sys.modules.get("torch")
        if not self.deterministic:
            return out
        if self.seed is None:
            self._notes.append("deterministic=True without a seed: initial weights still differ")
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
            self._setenv("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
        if torch is not None:
            if torch.cuda.is_initialized():
                self._notes.append("CUDA was initialized before mlpack.run(): "
                                   "CUBLAS_WORKSPACE_CONFIG may not apply")
            old_alg = torch.are_deterministic_algorithms_enabled()
            cudnn = torch.backends.cudnn
            old_det, old_bench = cudnn.deterministic, cudnn.benchmark
            torch.use_deterministic_algorithms(True)
            cudnn.deterministic, cudnn.benchmark = True, False

            def undo() -> None:
                torch.use_deterministic_algorithms(old_alg)
                cudnn.deterministic, cudnn.benchmark = old_det, old_bench

            self._undo.append(undo)
            out.update(torch_deterministic_algorithms=True, cudnn_deterministic=True,
                       cudnn_benchmark=False)
        return out

    def _pin_threads(self) -> None:
        if self.threads is None:
            return
        for name in THREAD_ENV:
            self._setenv(name, str(self.threads))
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=self.threads)
        self._undo.append(limiter.restore_original_limits)
        torch = sys.modules.get("torch")
        if torch is not None:
            old = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            self._undo.append(lambda: torch.set_num_threads(old))

    def _run_probes(self) -> None:
        """Hardware profile (without torch: it could initialize CUDA) and packages.

        Runs in a thread while training starts: nvidia-smi alone can take 0.1 s or more.
        """
        try:
            from . import hardware

            self._probe["hardware"] = hardware.capture(torch=False)
        except Exception as err:  # noqa: BLE001 -- a probe never breaks training
            self._probe["note_hw"] = f"hardware: {type(err).__name__}: {err}"
        try:
            self._probe["packages"] = installed_packages()
        except Exception as err:  # noqa: BLE001
            self._probe["note_pkg"] = f"packages: {type(err).__name__}: {err}"

    # during -----------------------------------------------------------------------------

    def _check_active(self, what: str) -> None:
        if self._state != "active":
            raise _usage(f"{what} outside the mlpack.run() block",
                         "call it inside 'with mlpack.run(...) as run:'")

    def log_metric(self, name: str, value: object, *, dataset: str | None = None,
                   split: str | None = None, direction: str | None = None) -> None:
        """Record a metric; logging the same (name, dataset, split) again replaces it.

        ``value`` is any real number (Python, numpy or a one-element tensor), finite.
        ``direction`` is ``"higher"`` or ``"lower"`` (which is better).
        """
        from .metrics import check_logged

        self._check_active("log_metric")
        if isinstance(value, (str, bytes, bool)):
            raise _usage(f"metric {name!r}: {value!r} is not a number", "log a float")
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _usage(f"metric {name!r}: a {type(value).__name__} is not a number",
                         "log a float (x.item() for a tensor)") from None
        entry: dict[str, Any] = {"name": name, "value": number}
        for key, v in (("dataset", dataset), ("split", split), ("direction", direction)):
            if v is not None:
                entry[key] = v
        try:
            check_logged(entry, "")
        except UsageError as err:
            why = err.message.split(": .", 1)[1]  # "value must be a finite number"
            raise _usage(f"metric {name!r}: {why}", "names: 1 to 200 characters; values: finite "
                         "numbers; direction: higher or lower; dataset: a recipe dataset name"
                         ) from None
        self._metrics[(name, dataset, split)] = entry  # keeps the place it was first logged

    def _keep(self, wf: WeightsFile, path: str | os.PathLike[str]) -> WeightsFile:
        shown = display_path(path, self.project)
        kept = WeightsFile(path=shown, size=wf.size, sha256=wf.sha256, recorded=wf.recorded,
                           how=wf.how, format=wf.format)
        self._weights[shown] = kept
        return kept

    def save_weights(self, obj: object, path: str | os.PathLike[str], *,
                     metadata: Mapping[str, str] | None = None) -> WeightsFile:
        """:func:`save_weights`, recorded in the run (path shown relative to the project)."""
        self._check_active("save_weights")
        return self._keep(save_weights(obj, path, metadata=metadata), path)

    def record_weights(self, path: str | os.PathLike[str]) -> WeightsFile:
        """:func:`record_weights`, recorded in the run (hash taken now)."""
        self._check_active("record_weights")
        return self._keep(record_weights(path), path)

    # exit -------------------------------------------------------------------------------

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        global _ACTIVE
        ended, duration = _now(), round(time.perf_counter() - self._t0, 3)
        ok = exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None))
        try:
            record = self._finish(ended, duration, "completed" if ok else "failed", exc)
        except Exception as err:  # noqa: BLE001 -- a bug here must not hide the training's error
            record = None
            problem: BaseException = err
        finally:
            self._restore()
            _ACTIVE = None
            self._state = "done"
        if record is not None:
            try:
                self._write(record)
                self.record = record
                return False
            except MlpackError as err:
                problem = err
        if exc is not None:  # never hide the training's own exception
            exc.add_note(f"mlpack: the run record was not written: {problem}")
            return False
        raise problem

    def _finish(self, ended: str, duration: float, status: str, exc: BaseException | None
                ) -> dict[str, Any]:
        import platform

        if self._thread is not None:
            self._thread.join(PROBE_WAIT)
            if self._thread.is_alive():
                self._notes.append("hardware and packages: probe did not finish in time")
        notes = [*self._notes, *(v for k, v in sorted(self._probe.items())
                                 if k.startswith("note_"))]
        torch = sys.modules.get("torch")
        if torch is not None and not self._torch_at_entry and self.seed is not None:
            notes.append("torch was imported inside the run and was not seeded: import it "
                         "before mlpack.run() or pass frameworks=('torch',)")
        threads = self._thread_counts(torch)
        from .hardware import NUMERICS_ENV

        variables = {k: self._environ[k] for k in NUMERICS_ENV if k in self._environ}
        record: dict[str, Any] = {
            "mlpack_run": RUN_VERSION, "status": status,
            "started": self._started, "ended": ended, "duration_s": duration,
            "command": ["python", *sys.orig_argv[1:]],
            "cwd": self._cwd,
            "python": {"executable": display_path(sys.executable, self.project),
                       "version": platform.python_version(),
                       "implementation": platform.python_implementation()},
            "params": self.params, "seeds": self._seeds, "determinism": self._determinism,
            "threads": threads, "variables": variables,
            "metrics": list(self._metrics.values()),
            "weights": [w.to_dict() for w in self._weights.values()],
        }
        if status == "failed" and exc is not None:
            kind = type(exc)
            module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
            record["error"] = {"type": f"{module}{kind.__qualname__}"}
        if self.parent:
            record["parent"] = self.parent
        if self._fingerprint is not None:
            record["code_fingerprint"] = self._fingerprint
        if "packages" in self._probe:
            record["packages"] = self._probe["packages"]
        if "hardware" in self._probe:
            record["hardware"] = self._hardware(self._probe["hardware"], torch, self._pools)
        record["notes"] = list(dict.fromkeys(notes))
        return record

    def _thread_counts(self, torch: Any) -> dict[str, Any]:
        """Effective thread counts at the end of training, limits still in place."""
        from threadpoolctl import threadpool_info

        out: dict[str, Any] = {}
        if self.threads is not None:
            out["requested"] = self.threads
        keep = ("user_api", "internal_api", "prefix", "version", "num_threads")
        self._pools = threadpool_info()
        out["pools"] = [{k: p[k] for k in keep if p.get(k) is not None} for p in self._pools]
        if torch is not None:
            out["torch"] = torch.get_num_threads()
            out["torch_interop"] = torch.get_num_interop_threads()
        return out

    @staticmethod
    def _hardware(profile: Any, torch: Any, info: list[dict[str, Any]]) -> dict[str, Any]:
        """The profile with the thread pools and torch as they are at the end of training."""
        from dataclasses import replace

        from .hardware import Accelerator, ThreadPool

        keep = {f.name for f in fields(ThreadPool)}
        pools = tuple(ThreadPool.from_dict({k: v for k, v in p.items()
                                            if k in keep and v is not None}) for p in info)
        extra: dict[str, Any] = {"threadpools": pools}
        if torch is not None:
            extra["torch_version"] = str(torch.__version__)
            if torch.version.cuda:
                extra["cuda_runtime_version"] = torch.version.cuda
            if torch.cuda.is_initialized():  # training used CUDA; probing costs nothing now
                extra["cudnn_version"] = torch.backends.cudnn.version()
                if not profile.accelerators:
                    extra["accelerators"] = tuple(
                        Accelerator(name=torch.cuda.get_device_name(i),
                                    compute_capability="{}.{}".format(
                                        *torch.cuda.get_device_capability(i)))
                        for i in range(torch.cuda.device_count()))
        return replace(profile, **extra).to_dict()  # type: ignore[no-any-return]

    def _restore(self) -> None:
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as err:  # noqa: BLE001 -- restore the rest regardless
                self._notes.append(f"restoring a setting failed: {type(err).__name__}: {err}")

    def _write(self, record: dict[str, Any]) -> None:
        import json

        from ._atomic import atomic_write_bytes

        data = (json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False,
                           allow_nan=False) + "\n").encode()
        try:
            self.path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(self.path, data)
        except OSError as err:
            raise _io(err, f"cannot write {self.path}",
                      "make .mlpack/ in the project a writable directory") from None


def run(*, params: object = None, seed: int | None = None, threads: int | None = None,
        deterministic: bool = False, project: str | os.PathLike[str] = ".",
        parent: str | None = None, frameworks: Collection[str] = ()) -> Run:
    """Record a training run; use it as ``with mlpack.run(...) as run:``.

    Args:
        params: The configuration (dict, dataclass, argparse Namespace), JSON-serializable.
        seed: Seeds Python's ``random``, numpy's global RNG (numpy is imported when
            installed) and torch (when already imported, or named in ``frameworks``).
        threads: Pins BLAS/OpenMP pools (threadpoolctl), torch and the thread variables
            for libraries loaded later and child processes; weights are bit-identical
            only at equal thread counts.
        deterministic: torch deterministic algorithms, cuDNN deterministic without
            benchmark, ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` if unset.
        project: The project directory; the record goes to ``<project>/.mlpack/run.json``.
        parent: ``sha256:<hex>`` digest of the pack whose weights training started from.
        frameworks: Frameworks to import and seed even if not yet imported ("torch").

    Settings (threads, determinism, variables) are restored when the block ends.

    Raises:
        UsageError: ``E_USAGE`` for invalid arguments (params not JSON), ``E_INPUT`` for a
            missing project, ``E_RECIPE`` (on entry) for an invalid mlpack.toml.
    """
    return Run(params=params, seed=seed, threads=threads, deterministic=deterministic,
               project=project, parent=parent, frameworks=frameworks)
