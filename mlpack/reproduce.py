"""``verify --eval`` and ``--rebuild``: recompute a pack's metrics and say whether they hold
(spec/reproduction.md).

Levels, each reported separately, each run only if the ones before it passed:

1. **integrity**: the pack is verified and unpacked (``mlpack.verify.unpack_pack``);
   nothing of it runs otherwise;
2. **environment**: a fresh environment from the pack's lock (``mlpack.envbuild``), or
   the running interpreter checked against the lock (``--env current``); differences
   from the recorded hardware and platform are listed (they do not fail the level);
3. **data**: every dataset the entry points read is bound (``--data NAME=PATH``, an
   included dataset, or its recorded absolute or ``s3://`` URI) and checked file by file
   against the signed manifest; drift stops here unless ``--allow-data-drift``;
4. **evaluate**: the pack's evaluate command (or the verifier's own ``--eval-with``
   script) runs on the shipped weights in the sandbox (``mlpack.sandbox``), and each
   claimed metric is compared with the recomputed value (``mlpack.metrics.within``);
5. **rebuild**: the train command runs in the sandbox, the rebuilt weights are compared
   with the shipped ones tensor by tensor (``mlpack.tensors``), then evaluated like the
   shipped ones.

Pack code runs only here, only after the commands were shown (``on_progress``), with the
seeds' and thread counts' environment variables recorded at training re-applied.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .digest import sha256_file
from .errors import MlpackError, UsageError, VerificationError
from .keys import PublicKey

__all__ = ["DataCheck", "Level", "MetricResult", "Reproduction", "parse_bindings", "reproduce"]

REPRODUCTION_VERSION = "1.0"
LEVELS = ("integrity", "environment", "data", "evaluate", "rebuild")
Status = Literal["passed", "failed", "skipped", "not run", "error"]
Verdict = Literal["reproduced", "failed", "could not run"]
Progress = Callable[[str], None]
# variables that pin numerics; re-applied from what the run recorded (spec/training.md)
PINNED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
          "NUMEXPR_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES",
          "OPENBLAS_CORETYPE")


@dataclass
class Level:
    name: str
    status: Status = "not run"
    summary: str = ""
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "details": list(self.details)}


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricResult:
    """A claimed metric and what this verifier recomputed."""

    level: str  # evaluate | rebuild
    name: str
    dataset: str | None
    split: str | None
    claimed: float
    tolerance: dict[str, float] | None
    observed: float | None
    difference: float | None
    outcome: str
    passed: bool
    computed_by: str  # "pack" (its evaluate command) | "verifier" (--eval-with)

    @property
    def status(self) -> str:
        return "reproduced" if self.passed and self.outcome != "informational" else \
            ("informational" if self.outcome == "informational" else "not reproduced")

    def to_dict(self) -> dict[str, Any]:
        out = {"level": self.level, "name": self.name, "dataset": self.dataset, "split": self.split,
               "claimed": self.claimed, "tolerance": self.tolerance, "observed": self.observed,
               "difference": self.difference, "outcome": self.outcome, "passed": self.passed,
               "status": self.status, "computed_by": self.computed_by}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, kw_only=True, slots=True)
class DataCheck:
    name: str
    source: str
    files: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "files": self.files, "ok": self.ok,
                "added": list(self.added), "removed": list(self.removed), "changed": list(self.changed)}


@dataclass
class Reproduction:
    """The outcome of ``verify --eval/--rebuild``: one report, rendered three ways."""

    pack: str
    requested: tuple[str, ...]
    levels: dict[str, Level] = field(default_factory=lambda: {n: Level(n) for n in LEVELS})
    metrics: list[MetricResult] = field(default_factory=list)
    data: list[DataCheck] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    hardware_differences: list[dict[str, Any]] = field(default_factory=list)
    weights: dict[str, Any] | None = None
    commands: list[str] = field(default_factory=list)
    sandbox: str | None = None
    """What isolated the pack's commands: "bubblewrap", or "none (--unsafe-no-sandbox)"."""
    signer: str | None = None
    pack_sha256: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    error: MlpackError | None = None
    duration_s: float = 0.0

    @property
    def verdict(self) -> Verdict:
        if self.error is not None and self.error.exit_code != 1:
            return "could not run"
        if any(lv.status == "error" for lv in self.levels.values()):
            return "could not run"
        wanted = [self.levels[n] for n in ("integrity", "environment", "data", *self.requested)]
        if all(lv.status == "passed" for lv in wanted):
            return "reproduced"
        return "failed"

    @property
    def ok(self) -> bool:
        return self.verdict == "reproduced"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlpack_reproduction": REPRODUCTION_VERSION, "pack": self.pack, "pack_sha256": self.pack_sha256,
            "verdict": self.verdict, "requested": list(self.requested), "signer": self.signer,
            "model": {k: self.manifest.get(k) for k in ("name", "version") if self.manifest.get(k)},
            "levels": [lv.to_dict() for lv in self.levels.values()],
            "metrics": [m.to_dict() for m in self.metrics], "data": [d.to_dict() for d in self.data],
            "environment": self.environment, "hardware_differences": self.hardware_differences,
            "weights": self.weights, "commands": self.commands, "sandbox": self.sandbox, "duration_s": round(self.duration_s, 3),
            "error": self.error.to_dict() if self.error else None,
        }

    def render(self) -> str:
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip", "not run": "----", "error": "ERR "}
        lines = [f"{self.pack}: {self.verdict.upper()}"]
        for lv in self.levels.values():
            if lv.name in ("evaluate", "rebuild") and lv.name not in self.requested:
                continue
            lines.append(f"  [{mark[lv.status]}] {lv.name:<12} {lv.summary}")
            lines.extend(f"         {d}" for d in lv.details[:12])
        if self.metrics:
            lines.append("")
            lines.extend("  " + row for row in _metric_table(self.metrics))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A self-contained report to attach to a paper or a delivery."""
        m = self.manifest
        out = [f"# Reproduction report: {m.get('name', self.pack)} {m.get('version', '')}".rstrip(), "",
               f"**Verdict: {self.verdict}** (mlpack verify {' '.join('--' + r for r in self.requested)})", "",
               f"- pack: `{os.path.basename(self.pack)}`, sha256 `{self.pack_sha256}`",
               f"- signed by: `{self.signer or 'unsigned'}`",
               f"- duration: {self.duration_s:.1f} s", "", "## Levels", "", "| level | status | summary |",
               "|---|---|---|"]
        for lv in self.levels.values():
            if lv.name in ("evaluate", "rebuild") and lv.name not in self.requested:
                continue
            out.append(f"| {lv.name} | {lv.status} | {_md(lv.summary)} |")
        for lv in self.levels.values():
            if lv.details:
                out += ["", f"### {lv.name}", ""] + [f"- {_md(d)}" for d in lv.details]
        if self.metrics:
            out += ["", "## Metrics: claimed vs reproduced", "",
                    "| level | metric | dataset/split | claimed | tolerance | reproduced | difference | verdict | computed by |",
                    "|---|---|---|---|---|---|---|---|---|"]
            for r in self.metrics:
                out.append(f"| {r.level} | {r.name} | {r.dataset or ''}/{r.split or ''} | {r.claimed:.6g} | "
                           f"{_tol(r.tolerance)} | {_num(r.observed)} | {_num(r.difference)} | "
                           f"{r.status} ({r.outcome}) | {r.computed_by} |")
        if self.weights:
            w = self.weights
            out += ["", "## Rebuilt weights vs shipped", "",
                    f"{w.get('identical')} of {w.get('tensors')} tensors bit-identical."]
            for d in w.get("worst", []):
                out.append(f"- `{d['name']}` {d['status']}: max abs {_num(d.get('max_abs'))}, "
                           f"max rel {_num(d.get('max_rel'))}, {d.get('differing', '?')} elements differ")
        if self.data:
            out += ["", "## Data", "", "| dataset | source | files | added | removed | changed |",
                    "|---|---|---|---|---|---|"]
            for d in self.data:
                out.append(f"| {d.name} | `{d.source}` | {d.files} | {len(d.added)} | {len(d.removed)} | "
                           f"{len(d.changed)} |")
        if self.environment:
            out += ["", "## Environment", "", "```json", json.dumps(self.environment, indent=2), "```"]
        if self.hardware_differences:
            out += ["", "## Hardware and platform differences from training", ""]
            out += [f"- {d['field']}: {d['recorded']} → {d['current']} ({d['severity']})"
                    for d in self.hardware_differences]
        if self.commands:
            out += ["", f"## Commands run (sandbox: {self.sandbox or 'none'})", ""] + [f"    {c}" for c in self.commands]
        if self.error:
            out += ["", f"**Error:** [{self.error.code}] {_md(self.error.message)}"]
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.6g}"


def _tol(t: dict[str, float] | None) -> str:
    if not t:
        return "none"
    return " or ".join(f"±{v:g}" if k == "absolute" else f"±{v:g} rel" for k, v in t.items())


def _metric_table(rows: Sequence[MetricResult]) -> list[str]:
    head = ("level", "metric", "dataset", "claimed", "tolerance", "reproduced", "difference", "verdict", "by")
    cells = [head] + [(r.level, r.name, f"{r.dataset or ''}/{r.split or ''}", f"{r.claimed:.6g}", _tol(r.tolerance),
                       _num(r.observed), _num(r.difference), f"{r.status} ({r.outcome})", r.computed_by)
                      for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def parse_bindings(values: Sequence[str]) -> dict[str, str]:
    """``--data NAME=PATH|s3://...`` values (E_USAGE on a malformed or repeated one)."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, source = v.partition("=")
        if not sep or not name or not source:
            raise UsageError(f"--data {v!r} is not NAME=PATH", hint="e.g. --data digits-test=./data/test")
        if name in out:
            raise UsageError(f"--data {name} is given twice")
        out[name] = source
    return out


def _mlpack_root() -> Path:
    """This ``mlpack`` package's directory: linked alone into rebuilt environments (so pack code
    can ``import mlpack``), without the rest of the verifier's site-packages."""
    return Path(__file__).resolve().parent


@dataclass
class _Ctx:
    pack_dir: Path
    manifest: dict[str, Any]
    weights: dict[str, str]  # recipe path -> file in the unpacked pack
    python: str
    env_prefixes: list[Path]
    data: dict[str, str]
    data_paths: list[Path]
    variables: dict[str, str]
    work: Path
    limits: Any
    unsafe: bool
    progress: Progress


def reproduce(
    pack: str | os.PathLike[str],
    *,
    trust: Sequence[PublicKey],
    threshold: int = 1,
    allow_unsigned: bool = False,
    evaluate: bool = False,
    rebuild: bool = False,
    data: Mapping[str, str] | None = None,
    allow_data_drift: bool = False,
    env: str = "lock",
    eval_with: str | os.PathLike[str] | None = None,
    exact: bool = False,
    unsafe_no_sandbox: bool = False,
    timeout_s: float = 3600.0,
    work_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Reproduction:
    """Run the requested levels on ``pack``; errors a user can cause end up in the report."""
    from .verify import unpack_pack

    if not (evaluate or rebuild):
        raise UsageError("nothing to reproduce: pass --eval and/or --rebuild")
    if env not in ("lock", "current"):
        raise UsageError(f"--env {env!r} is not one of lock, current")
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    report = Reproduction(pack=str(pack), requested=tuple(n for n, on in (("evaluate", evaluate),
                                                                            ("rebuild", rebuild)) if on))
    owned = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="mlpack-verify-")) if owned else Path(work_dir)  # type: ignore[arg-type]
    try:
        # 1. integrity: nothing from the pack is read, let alone run, before this passes
        lv = report.levels["integrity"]
        say("verifying the pack")
        verified = unpack_pack(pack, work / "pack", trust=trust, threshold=threshold,
                               allow_unsigned=allow_unsigned)
        report.signer = ", ".join(verified.signers) if getattr(verified, "signers", None) else None
        if not verified.ok:
            lv.status, lv.summary = "failed", verified.error.message if verified.error else "failed"
            report.error = verified.error
            return report
        report.pack_sha256 = sha256_file(Path(pack))
        lv.status, lv.summary = "passed", "integrity and signature verified"
        manifest = json.loads((work / "pack" / "mlpack.json").read_bytes())
        report.manifest = manifest
        ctx = _prepare(report, manifest, work, data or {}, allow_data_drift, env, unsafe_no_sandbox,
                       timeout_s, say)
        if ctx is None:
            return report
        if evaluate:
            _evaluate(report, ctx, "evaluate", ctx.weights, eval_with)
        if rebuild:
            _rebuild(report, ctx, eval_with, exact)
        return report
    except MlpackError as err:
        report.error = err
        for lv in report.levels.values():
            if lv.status == "not run" and (lv.name in ("integrity", "environment", "data")
                                           or lv.name in report.requested):
                lv.status = "error" if err.exit_code != 1 else "failed"
                lv.summary = f"[{err.code}] {err.message}"
                break
        return report
    finally:
        report.duration_s = time.perf_counter() - started
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def _prepare(report: Reproduction, manifest: dict[str, Any], work: Path, bindings: Mapping[str, str],
             allow_drift: bool, env_mode: str, unsafe: bool, timeout_s: float, say: Progress) -> _Ctx | None:
    from . import envbuild, hardware, sandbox
    from .recipe import Entrypoints

    pack_dir = work / "pack"
    if not manifest.get("mlpack", "1.0").startswith("1.") or manifest["mlpack"] == "1.0":
        raise VerificationError("this pack has no entry points (manifest 1.0)", code="E_MANIFEST",
                                hint="only packs made by mlpack build can be re-evaluated")
    section = manifest.get("entrypoints")
    if not section:
        raise VerificationError("the pack has no entrypoints section: nothing says how to evaluate it",
                                code="E_MANIFEST", hint="rebuild the pack with [entrypoints] in mlpack.toml")
    weights = {w["path"].removeprefix("weights/"): str(pack_dir / w["path"]) for w in manifest.get("weights", [])}
    # every file under weights/ (ONNX external data too) is a weights path the commands may name
    for p in (pack_dir / "weights").rglob("*"):
        if p.is_file():
            weights.setdefault(p.relative_to(pack_dir / "weights").as_posix(), str(p))
    entry = Entrypoints.from_dict(section, source="mlpack.json")
    for name in report.requested:
        command = entry.evaluate if name == "evaluate" else entry.train
        if command is None:
            raise VerificationError(f"the pack has no {'evaluate' if name == 'evaluate' else 'train'} "
                                    "entry point", code="E_MANIFEST",
                                    hint="verify --eval needs [entrypoints.evaluate], --rebuild also train")
    if "rebuild" in report.requested and entry.evaluate is None:
        raise VerificationError("the pack has no evaluate entry point to check rebuilt weights with",
                                code="E_MANIFEST")

    # 2. environment
    lv = report.levels["environment"]
    training = manifest.get("training", {})
    recorded_hw = manifest.get("hardware")
    if recorded_hw:
        current = hardware.capture()
        # thread pools and numerics variables are process settings, re-applied below; not hardware
        diffs = [d for d in hardware.differences(hardware.HardwareProfile.from_dict(recorded_hw), current)
                 if not d.field.startswith(("threadpools", "environment.")) and d.current is not None]
        # (a field this process cannot see, like the version of a framework it has not imported,
        # is not a difference: the pack's code runs in the environment rebuilt from the lock)
        report.hardware_differences = [{"field": d.field, "recorded": d.recorded, "current": d.current,
                                        "severity": d.severity} for d in diffs]
        lv.details += [f"hardware {d.field}: {d.recorded} -> {d.current} ({d.severity})"
                       for d in diffs if d.severity == "numerics"]
    env_section = manifest.get("environment", {})
    prefixes = [Path(sys.prefix), Path(sys.base_prefix)]
    lock_member = env_section.get("lock")
    if env_mode == "current":
        python = sys.executable
        if lock_member:
            problems = envbuild.check_current((pack_dir / lock_member).read_bytes())
            report.environment = {"mode": "current", "python": python,
                                  "differences": [_difference(d) for d in problems]}
            bad = [d for d in problems if getattr(d, "change", "") != "added"]
            if bad:
                lv.status = "failed"
                lv.summary = f"the running interpreter does not satisfy the lock: {len(bad)} difference(s)"
                lv.details += [_describe(d) for d in bad[:20]]
                return None
        summary = f"running interpreter {python} satisfies the lock"
    else:
        if not lock_member:
            raise VerificationError("the pack has no environment lock", code="E_MANIFEST",
                                    hint="use --env current to run with this interpreter")
        conda = (env_section.get("conda") or {}).get("archive")
        say("preparing the environment (cached by lock digest)")
        if conda:
            prepared = envbuild.prepare_conda(pack_dir / conda)
        else:
            wheelhouse = pack_dir / env_section["wheelhouse"] if env_section.get("wheelhouse") else None
            prepared = envbuild.prepare((pack_dir / lock_member).read_bytes(), wheelhouse=wheelhouse,
                                        extra_paths=[_mlpack_root()], on_progress=say)
        python, prefixes = str(prepared.python), [Path(prepared.prefix)]
        report.environment = {"mode": "lock", "installer": prepared.installer, "cached": prepared.cached,
                              "duration_s": round(prepared.duration_s, 3), "skipped": list(prepared.skipped),
                              "notes": list(prepared.notes)}
        lv.details += [f"not installed (author's local install): {s}" for s in prepared.skipped]
        summary = (f"{'cached' if prepared.cached else 'fresh'} environment from the lock "
                   f"({prepared.installer}, {prepared.duration_s:.1f} s)")
    lv.status, lv.summary = "passed", summary

    # 3. data: bind and check every dataset the commands read
    lv = report.levels["data"]
    needed: list[str] = []
    for name in ("evaluate", *(("train",) if "rebuild" in report.requested else ())):
        command = entry.evaluate if name == "evaluate" else entry.train
        for ph in command.placeholders() if command else ():
            if ph.startswith("data:") and ph[5:] not in needed:
                needed.append(ph[5:])
    entries = {e["name"]: e for e in manifest.get("datasets", {}).get("entries", [])}
    unknown = sorted(set(bindings) - set(entries))
    if unknown:
        raise UsageError(f"--data names unknown dataset(s) {', '.join(unknown)}",
                         hint=f"the pack's datasets: {', '.join(sorted(entries)) or 'none'}")
    bound: dict[str, str] = {}
    data_paths: list[Path] = []
    from . import datasets

    for name in needed:
        e = entries[name]
        if name in bindings:  # relative to where the verifier runs, not to the sandbox's directory
            source = bindings[name] if bindings[name].startswith("s3://") else str(Path(bindings[name]).resolve())
        elif e.get("mode") == "included":
            source = str(pack_dir / e["path"])
        elif e["uri"].startswith("s3://") or os.path.isabs(e["uri"]):
            source = e["uri"]
        else:
            raise UsageError(f"dataset {name!r} ({e['uri']}) is referenced, not included: say where it is",
                             hint=f"pass --data {name}=PATH")
        say(f"checking dataset {name} at {source} against its signed manifest")
        signed = datasets.DatasetManifest.from_parquet((pack_dir / e["manifest"]).read_bytes())
        if not source.startswith("s3://") and not os.path.exists(source):
            raise UsageError(f"dataset {name!r}: {source} does not exist", code="E_INPUT")
        diff = datasets.compare(signed, source, contents=True)
        check = DataCheck(name=name, source=source, files=signed.file_count, added=diff.added,
                          removed=diff.removed, changed=diff.changed)
        report.data.append(check)
        if not check.ok:
            lv.details.append(f"{name}: {len(diff.added)} added, {len(diff.removed)} removed, "
                              f"{len(diff.changed)} changed: " + ", ".join(
                                  [f"+{p}" for p in diff.added[:3]] + [f"-{p}" for p in diff.removed[:3]]
                                  + [f"~{p}" for p in diff.changed[:3]]))
        bound[name] = source
        if not source.startswith("s3://"):
            data_paths.append(Path(source).resolve())
    drift = [c for c in report.data if not c.ok]
    if drift and not allow_drift:
        lv.status = "failed"
        lv.summary = f"{len(drift)} dataset(s) differ from the signed manifest: {', '.join(c.name for c in drift)}"
        return None
    lv.status = "passed"
    lv.summary = (f"{len(report.data)} dataset(s) match their signed manifests" if not drift else
                  f"DRIFT ALLOWED (--allow-data-drift): {', '.join(c.name for c in drift)} differ")
    if any(source.startswith("s3://") for source in bound.values()):
        raise UsageError("the sandbox has no network, so an s3:// dataset cannot be read by pack code",
                         hint="copy it locally and pass --data NAME=PATH")

    variables = {k: str(v) for k, v in (training.get("variables") or {}).items() if k in PINNED}
    threads = (training.get("threads") or {}).get("requested")
    if isinstance(threads, int) and threads > 0:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            variables.setdefault(k, str(threads))
    seeds = training.get("seeds") or {}
    if "PYTHONHASHSEED" not in variables and isinstance(seeds.get("python_hash"), (int, str)):
        variables["PYTHONHASHSEED"] = str(seeds["python_hash"])
    sandbox_name, why = sandbox.available()
    if sandbox_name is None and not unsafe:
        raise UsageError(f"no sandbox can be set up here ({why}); pack code will not run unsandboxed",
                         code="E_SANDBOX", hint="install bubblewrap, or pass --unsafe-no-sandbox")
    return _Ctx(pack_dir=pack_dir, manifest=manifest, weights=weights, python=python, env_prefixes=prefixes,
                data=bound, data_paths=data_paths, variables=variables, work=work,
                limits=sandbox.Limits(time_s=timeout_s), unsafe=unsafe, progress=say)


def _difference(d: Any) -> dict[str, Any]:
    return {k: getattr(d, k) for k in ("name", "change", "locked", "installed") if hasattr(d, k)}


def _describe(d: Any) -> str:
    return f"{d.name}: {d.change} (lock {getattr(d, 'locked', None)}, installed {getattr(d, 'installed', None)})"


def _run(ctx: _Ctx, label: str, argv: list[str], scratch: Path, cwd: Path, extra: Sequence[Path] = ()) -> Any:
    from . import sandbox

    shown = " ".join(argv)
    ctx.progress(f"running ({label}, {'UNSANDBOXED' if ctx.unsafe else 'sandboxed'}): {shown}")
    return sandbox.run(argv, scratch=scratch, cwd=cwd,
                       read_only=[ctx.pack_dir, *ctx.env_prefixes, *ctx.data_paths, _mlpack_root(), *extra],
                       env=ctx.variables, limits=ctx.limits, unsafe_no_sandbox=ctx.unsafe,
                       log_dir=ctx.work / "logs" / scratch.name,  # outside what the command can write
                       on_output=lambda line: ctx.progress(f"  | {_printable(line)}"))


def _scratch(ctx: _Ctx, name: str) -> tuple[Path, Path]:
    scratch = ctx.work / name
    code = scratch / "code"
    shutil.copytree(ctx.pack_dir / "code", code) if (ctx.pack_dir / "code").is_dir() else code.mkdir(parents=True)
    (ctx.work / "logs" / name).mkdir(parents=True, exist_ok=True)
    return scratch, code


def _untrusted_file(path: Path, scratch: Path, limit: int | None = None) -> bytes | None:
    """Read a file the pack's code wrote, or None if it is absent or not a regular file inside
    the scratch directory (the code may have put a link to a host file there). ``limit=None``
    only checks it."""
    import stat

    try:
        real = path.resolve(strict=True)
        if not real.is_relative_to(scratch.resolve()):
            return None
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if limit is None:
            return b""
        if st.st_size > limit:
            raise VerificationError(f"{path.name} written by the pack's code is over {limit} bytes",
                                    code="E_LIMIT")
        return os.pread(fd, st.st_size, 0)
    finally:
        os.close(fd)


def _printable(line: str) -> str:
    """Pack output shown on the verifier's terminal: no escape sequences or control characters."""
    return "".join(c if c.isprintable() or c == "\t" else "?" for c in line)


def _failed_command(label: str, outcome: Any) -> str:
    if outcome.timed_out:
        return f"{label} ran out of time after {outcome.duration_s:.0f} s"
    tail = (outcome.stderr_tail or outcome.stdout_tail or "").strip().splitlines()
    return f"{label} exited with status {outcome.returncode}" + (f": {tail[-1]}" if tail else "")


def _evaluate(report: Reproduction, ctx: _Ctx, level: str, weights: Mapping[str, str],
              eval_with: str | os.PathLike[str] | None) -> None:
    from . import metrics as metrics_mod
    from .recipe import Entrypoints

    lv = report.levels[level] if level == "evaluate" else report.levels["rebuild"]
    entry = Entrypoints.from_dict(ctx.manifest["entrypoints"], source="mlpack.json")
    assert entry.evaluate is not None
    scratch, code = _scratch(ctx, f"run-{level}-eval")
    out = scratch / "out"
    out.mkdir()
    if eval_with is not None:
        script = Path(eval_with).resolve()
        if not script.is_file():
            raise UsageError(f"--eval-with {eval_with}: no such file", code="E_INPUT")
        shutil.copy(script, scratch / script.name)
        argv = [ctx.python, str(scratch / script.name), "--out", str(out)]
        argv += [a for rel, path in weights.items() for a in ("--weights", path)][:2]
        argv += [a for name, path in ctx.data.items() for a in ("--data", f"{name}={path}")]
        computed_by, metrics_file = "verifier", out / "metrics.json"
    else:
        argv = entry.evaluate.argv(weights, ctx.data, str(out), ctx.python)
        computed_by, metrics_file = "pack", out / (entry.evaluate.metrics or "metrics.json")
    report.commands.append(" ".join(argv))
    outside = {Path(p).resolve().parent for p in weights.values()
               if not Path(p).resolve().is_relative_to(ctx.pack_dir.resolve())}  # rebuilt weights
    outcome = _run(ctx, f"{level}: evaluate", argv, scratch, code, sorted(outside))
    report.sandbox = outcome.sandbox
    if outcome.returncode != 0 or outcome.timed_out:
        lv.status, lv.summary = "failed", _failed_command("the evaluate command", outcome)
        lv.details += (outcome.stderr_tail or "").strip().splitlines()[-5:]
        return
    try:
        raw = _untrusted_file(metrics_file, scratch, limit=1 << 20)
        if raw is None:
            raise ValueError("absent, or not a regular file inside the output directory")
        observed = json.loads(raw)
        if not isinstance(observed, dict):
            raise ValueError("not an object")  # noqa: TRY004 - reported as unreadable below
    except (OSError, ValueError) as err:
        lv.status = "failed"
        lv.summary = f"the evaluate command wrote no readable {metrics_file.name} ({err})"
        return
    claims = metrics_mod.parse_section(ctx.manifest.get("metrics") or {"metrics": []})
    results = []
    for claim in claims:
        value = observed.get(claim.name)
        if isinstance(observed.get(claim.dataset or ""), dict):  # grouped by dataset
            value = observed[claim.dataset or ""].get(claim.name, value)
        if value is None and claim.tolerance is None:  # informational and not recomputed: no claim to check
            results.append(MetricResult(level=level, name=claim.name, dataset=claim.dataset, split=claim.split,
                                        claimed=claim.value, tolerance=None, observed=None, difference=None,
                                        outcome="informational", passed=True, computed_by=computed_by))
            continue
        v = metrics_mod.within(claim, value)
        tol = claim.tolerance.to_dict() if claim.tolerance is not None else None
        results.append(MetricResult(level=level, name=claim.name, dataset=claim.dataset, split=claim.split,
                                    claimed=claim.value, tolerance=tol, observed=v.observed,
                                    difference=v.difference, outcome=v.outcome, passed=v.passed,
                                    computed_by=computed_by))
    report.metrics += results
    failed = [r for r in results if not r.passed]
    checked = [r for r in results if r.outcome != "informational"]
    if not checked:
        lv.status, lv.summary = "passed", "evaluated; no claimed metric has a tolerance to check"
    elif failed:
        lv.status = "failed"
        lv.summary = (f"{len(failed)} of {len(results)} metric(s) not reproduced: "
                      + ", ".join(f"{r.name} {r.observed} vs claimed {r.claimed} ({r.outcome})" for r in failed))
    else:
        lv.status = "passed"
        lv.summary = f"{len(checked)} metric(s) reproduced within tolerance" + (
            f" ({len(results) - len(checked)} informational)" if len(results) > len(checked) else "")


def _rebuild(report: Reproduction, ctx: _Ctx, eval_with: str | os.PathLike[str] | None, exact: bool) -> None:
    from .recipe import Entrypoints
    from .tensors import compare_safetensors, summary

    lv = report.levels["rebuild"]
    entry = Entrypoints.from_dict(ctx.manifest["entrypoints"], source="mlpack.json")
    assert entry.train is not None
    scratch, code = _scratch(ctx, "run-train")
    out = scratch / "out"
    out.mkdir()
    argv = entry.train.argv(ctx.weights, ctx.data, str(out), ctx.python)
    report.commands.append(" ".join(argv))
    outcome = _run(ctx, "rebuild: train", argv, scratch, code)
    report.sandbox = outcome.sandbox
    if outcome.returncode != 0 or outcome.timed_out:
        lv.status, lv.summary = "failed", _failed_command("the train command", outcome)
        lv.details += (outcome.stderr_tail or "").strip().splitlines()[-5:]
        return
    rebuilt = {}
    for rel in ctx.weights:
        path = out / rel
        if _untrusted_file(path, scratch) is None:
            lv.status = "failed"
            lv.summary = f"the train command did not write {rel} under its output directory"
            lv.details.append("the train entry point must write each weights file at {output}/<its path>")
            return
        rebuilt[rel] = str(path.resolve())
    deltas = []
    for rel, shipped in ctx.weights.items():
        if rel.endswith(".safetensors"):
            deltas += [d for d in compare_safetensors(shipped, rebuilt[rel])]
    report.weights = summary(deltas)
    w = report.weights
    lv.details.append(f"weights: {w['identical']} of {w['tensors']} tensors bit-identical")
    lv.details += [f"{d['name']}: {d['status']}, max abs {_num(d.get('max_abs'))}, max rel {_num(d.get('max_rel'))}"
                   for d in w["worst"]]
    _evaluate(report, ctx, "rebuild", rebuilt, eval_with)
    if exact and w["identical"] != w["tensors"] and lv.status == "passed":
        lv.status = "failed"
        lv.summary = f"--exact: {w['tensors'] - w['identical']} tensor(s) are not bit-identical"
    elif lv.status == "passed":
        lv.summary += f"; {w['identical']}/{w['tensors']} tensors bit-identical"
