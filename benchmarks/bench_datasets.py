"""Benchmark dataset manifests (mlpack.datasets) against their targets and peer tools.

Targets (issue 3, item 8; /work/shared/design/performance.md, Recommendations 2, 4 and 5):

1. Build a manifest of D (20,000 files of 4-64 KiB in 100 subdirs) at >= 40,000 files/s, and of
   D2 (200,000 files of 1 KiB in 200 subdirs) at >= 100,000 files/s, whole-process, 2 cores.
2. >= 4x faster than `dvc add --no-commit` (ratio <= 0.25) and >= 5x faster than
   `model_signing sign key` (ratio <= 0.2), on D and D2.
3. Within 1.15x of `find DIR -type f | xargs sha256sum` on D2, and at or under 0.4x of it on D.
4. A stat-only re-check of D2 (read the Parquet manifest, walk, compare paths and sizes) at
   >= 150,000 files/s.
5. With --million: a manifest of 1,000,000 files built with peak memory under 1 GiB (the Pss
   of the whole process tree, sampled, and ru_maxrss of the largest process).

mlpack runs as `python -m mlpack.datasets build DIR -o OUT.parquet` (walk, hash, write the
Parquet manifest atomically) and `python -m mlpack.datasets check DIR OUT.parquet [--contents]`.
Every figure is whole-process wall clock (interpreter start-up included), the median over
--runs runs after one warm-up, with A/B alternation and per-pair ratios (see _harness.py).

Peers: DVC in its own virtual environment (default /tmp/dsbench/bin/dvc, since dvc's
dependencies conflict with the test tools; `--dvc PATH` picks another), run in a DVC repository
made here (`dvc init --no-scm`), with its state database wiped before every run as in
performance.md ("cold state"); `model_signing` 1.1.1 from this interpreter's venv with the EC
P-256 key of gen_data.py (made here if absent); coreutils `sha256sum` through find | xargs.

Data (under --dir, default /tmp/mlpack-bench-ds; about 0.9 GB, plus 1 GB with --million):
ws/D and ws/D2 (ws/ is the DVC workspace and holds nothing else, since `dvc add` walks the
whole workspace: with the 1M-file set inside it, `dvc add D` took 7.5 s instead of 3.3 s), M1,
out/ (manifests, signatures), dvcsite/ (DVC's state, wiped before each dvc run). D is copied from /tmp/mlpack-bench/full/WD/D when that exists (the D of performance.md), else
generated with the same parameters; D2 and M1 (1,000,000 files of 100 bytes in 1,000 subdirs)
are generated with fixed seeds. Markers outside the data directories record what was made.

    python benchmarks/bench_datasets.py                 # D and D2, about 5-8 minutes
    python benchmarks/bench_datasets.py --quick         # fewer runs, no model_signing on D2
    python benchmarks/bench_datasets.py --million       # also the 1M-file memory check (+2-3 min)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
from _harness import (
    Cmd,
    CommandFailed,
    Comparison,
    Row,
    Series,
    TreeSampler,
    compare,
    fmt_bytes,
    fmt_s,
    measure,
    render_markdown,
    render_text,
    resolve,
    run_once,
    verdict,
)

T_D_FILES_S = 40_000
T_D2_FILES_S = 100_000
T_VS_DVC = 1 / 4
T_VS_MS = 1 / 5
T_VS_SHA_D2 = 1.15
T_VS_SHA_D = 0.40
T_CHECK_FILES_S = 150_000
T_MILLION_MEM = 1 << 30

SOURCE_D = Path("/tmp/mlpack-bench/full/WD/D")
SOURCE_KEY = Path("/tmp/mlpack-bench/keys/ec.pem")
GEN_VERSION = 1


# --------------------------------------------------------------------------- data


def _marker(root: Path, name: str) -> Path:
    return root / "markers" / f"{name}.json"


def _data(root: Path, name: str) -> Path:
    """D and D2 live in ws/, the DVC workspace: DVC walks its whole workspace on every add, so
    nothing else (M1, outputs) may be there."""
    return root / ("ws" if name in ("D", "D2") else "") / name


def _done(root: Path, name: str, params: dict[str, object]) -> bool:
    path = _marker(root, name)
    return path.exists() and json.loads(path.read_text()) == params and _data(root, name).is_dir()


def _mark(root: Path, name: str, params: dict[str, object]) -> None:
    path = _marker(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params))


def generate(root: Path, name: str, *, files: int, subdirs: int, size: Callable[[random.Random], int],
             seed: int, params: dict[str, object]) -> Path:
    """``files`` files of random bytes (sizes from ``size``) in ``subdirs`` subdirectories."""
    params = {**params, "files": files, "subdirs": subdirs, "seed": seed, "version": GEN_VERSION}
    target = _data(root, name)
    if _done(root, name, params):
        return target
    print(f"  .. generating {target} ({files:,} files)", file=sys.stderr, flush=True)
    shutil.rmtree(target, ignore_errors=True)
    _marker(root, name).unlink(missing_ok=True)
    rng = random.Random(seed)
    per_dir = -(-files // subdirs)
    for i in range(files):
        sub = target / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            sub.mkdir(parents=True)
        fd = os.open(sub / f"f{i:07d}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, rng.randbytes(size(rng)))
        finally:
            os.close(fd)
    _mark(root, name, params)
    return target


def data_d(root: Path) -> Path:
    params: dict[str, object] = {"source": str(SOURCE_D) if SOURCE_D.is_dir() else "generated"}
    target = _data(root, "D")
    if _done(root, "D", params):
        return target
    if SOURCE_D.is_dir():
        print(f"  .. copying {SOURCE_D} to {target}", file=sys.stderr, flush=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SOURCE_D, target)
        _mark(root, "D", params)
        return target
    return generate(root, "D", files=20_000, subdirs=100, size=lambda r: r.randint(4096, 65536), seed=1,
                    params=params)


def key_pair(root: Path) -> Path:
    if SOURCE_KEY.exists():
        return SOURCE_KEY
    key = root / "keys" / "ec.pem"
    if not key.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key.parent.mkdir(parents=True, exist_ok=True)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return key


def dvc_repo(ws: Path, dvc: str) -> None:
    if not (ws / ".dvc").is_dir():
        subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=ws, check=True)
        subprocess.run([dvc, "config", "core.site_cache_dir", str(ws.parent / "dvcsite")], cwd=ws, check=True)


# --------------------------------------------------------------------------- bench


def _rm(*paths: Path) -> Callable[[], None]:
    def setup() -> None:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    return setup


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.root: Path = args.dir
        self.out = self.root / "out"
        self.rows: list[Row] = []
        self.raw: list[dict[str, object]] = []
        self.py = sys.executable

    def record(self, kind: str, *series: Series, comparison: Comparison | None = None) -> None:
        self.raw.append({"kind": kind, "ratios": comparison.ratios if comparison else None,
                         "series": [{"label": s.cmd.label, "argv": list(s.cmd.argv),
                                     "runs": [asdict(r) for r in s.runs]} for s in series]})

    def note_load(self, s: Series) -> None:
        i = s.interference
        if i.cores >= 0.05:
            extra = f"other processes used {i.seconds:.1f} CPU s ({i.cores:.2f} cores) during the series"
            row = self.rows[-1]
            row.note = f"{row.note}; {extra}" if row.note else extra

    def error(self, check: str, target: str, err: Exception) -> None:
        text = str(err).strip().splitlines()
        self.rows.append(Row(check, "ERROR", "", "", target, "ERROR", " / ".join(text[:3])[:300]))

    # -- commands

    def build_cmd(self, name: str, data: Path) -> Cmd:
        out = self.out / f"{name}.parquet"
        return Cmd(f"mlpack build {name}", [self.py, "-m", "mlpack.datasets", "build", str(data), "-o", str(out)],
                   setup=_rm(out))

    def check_cmd(self, name: str, data: Path, contents: bool) -> Cmd:
        argv = [self.py, "-m", "mlpack.datasets", "check", str(data), str(self.out / f"{name}.parquet")]
        return Cmd(f"mlpack check {name}{' --contents' if contents else ''}",
                   argv + (["--contents"] if contents else []))

    def dvc_cmd(self, name: str) -> Cmd:
        # performance.md's dvc_add.sh: wipe DVC's state database, then add without committing
        ws = self.root / "ws"
        return Cmd(f"dvc add --no-commit {name}", [self.args.dvc, "add", "-q", "--no-commit", name],
                   cwd=str(ws), setup=_rm(self.root / "dvcsite", ws / f"{name}.dvc"))

    def ms_cmd(self, name: str, data: Path, key: Path) -> Cmd:
        sig = self.out / f"{name}.sig"
        return Cmd(f"model_signing sign key {name}",
                   [resolve("model_signing"), "sign", "key", "--private_key", str(key), "--signature",
                    str(sig), str(data)], setup=_rm(sig))

    def sha_cmd(self, data: Path) -> Cmd:
        return Cmd("find | xargs sha256sum", ["/bin/sh", "-c", f"find '{data}' -type f | xargs sha256sum > /dev/null"])

    # -- rows

    def speed_row(self, name: str, files: int, s: Series, target: int) -> None:
        rate = files / s.median
        self.rows.append(Row(f"build {name}: files/s", s.fmt(), "", "", f">= {target:,} files/s",
                             verdict(rate >= target), f"{rate:,.0f} files/s (median of "
                             f"{len(s.runs)} mlpack runs from the comparisons)"))

    def ratio_row(self, check: str, c: Comparison, ref: str, limit: float, target: str) -> None:
        self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} {ref}", c.fmt_ratio(), target,
                             verdict(c.ratio <= limit)))
        self.note_load(c.a)

    def data_set(self, name: str, data: Path, files: int, key: Path, *, vs_sha: float,
                 files_target: int, ms_runs: int) -> Series | None:
        runs = self.args.runs
        mlpack_series: list[Series] = []
        build = self.build_cmd(name, data)
        comparisons: list[tuple[str, Callable[[], Cmd], str, float, str, int]] = [
            (f"build {name} vs sha256sum", lambda: self.sha_cmd(data), "find|xargs sha256sum", vs_sha,
             f"<= {vs_sha:.2f}", runs),
            (f"build {name} vs dvc", lambda: self.dvc_cmd(name), "dvc add --no-commit", T_VS_DVC,
             "<= 0.25 (4x faster)", runs),
            (f"build {name} vs model_signing", lambda: self.ms_cmd(name, data, key),
             "model_signing sign key", T_VS_MS, "<= 0.20 (5x faster)", ms_runs),
        ]
        for check, ref, label, limit, target, n in comparisons:
            if n < 1:
                self.rows.append(Row(check, "", "", "", target, "SKIP", "skipped (--quick)"))
                continue
            if "dvc" in check and not self.args.dvc:
                self.rows.append(Row(check, "", "", "", target, "SKIP", "dvc not found (--dvc PATH)"))
                continue
            try:
                c = compare(build, ref(), runs=n)
            except (CommandFailed, OSError) as err:
                self.error(check, target, err)
                continue
            self.record(check, c.a, c.b, comparison=c)
            self.ratio_row(check, c, label, limit, target)
            mlpack_series.append(c.a)
        if not mlpack_series:
            return None
        pooled = Series(build)
        for s in mlpack_series:
            pooled.runs.extend(s.runs)
        self.speed_row(name, files, pooled, files_target)
        self.rows.append(Row(f"build {name}: peak RSS", fmt_bytes(pooled.peak_rss), "", "", "info", "INFO",
                             "ru_maxrss: the largest single process (main or a worker)"))
        return pooled

    def checks(self, name: str, data: Path, files: int, build: Series | None, *, targeted: bool) -> None:
        """Stat-only and content re-checks; only D2's stat-only check has a target."""
        target = f">= {T_CHECK_FILES_S:,} files/s" if targeted else "info (perf.md: 100k files/s)"
        try:
            quick = measure(self.check_cmd(name, data, False), runs=self.args.runs)
        except (CommandFailed, OSError) as err:
            self.error(f"check {name} (stat-only)", target, err)
            return
        self.record(f"check {name}", quick)
        rate = files / quick.median
        self.rows.append(Row(f"check {name} stat-only: files/s", quick.fmt(), "", "", target,
                             verdict(rate >= T_CHECK_FILES_S) if targeted else "INFO", f"{rate:,.0f} files/s"))
        self.note_load(quick)
        try:
            full = measure(self.check_cmd(name, data, True), runs=max(1, self.args.runs // 2))
        except (CommandFailed, OSError) as err:
            self.error(f"check {name} --contents", "info", err)
            return
        self.record(f"check {name} --contents", full)
        ratio = f"{full.median / build.median:.2f} x build" if build else ""
        self.rows.append(Row(f"check {name} --contents (re-hash)", full.fmt(), "", ratio,
                             "~1.0-1.3x build (info)", "INFO", f"{files / full.median:,.0f} files/s"))
        self.note_load(full)

    def million(self) -> None:
        data = generate(self.root, "M1", files=1_000_000, subdirs=1_000, size=lambda r: 100, seed=3,
                        params={"size": 100})
        cmd = self.build_cmd("M1", data)
        sampler = TreeSampler(interval=0.05)
        target = f"< {fmt_bytes(T_MILLION_MEM)}"
        try:
            run = run_once(cmd, sampler)
        except (CommandFailed, OSError) as err:
            self.error("build 1M files: memory", target, err)
            return
        peak = max(sampler.peak_pss, run.maxrss)
        self.rows.append(Row("build 1M files: peak memory", fmt_bytes(peak), "", "", target,
                             verdict(peak < T_MILLION_MEM),
                             f"tree Pss {fmt_bytes(sampler.peak_pss)} (sum over up to {sampler.max_procs} "
                             f"processes, {sampler.samples} samples), tree Rss {fmt_bytes(sampler.peak_rss)}, "
                             f"largest process ru_maxrss {fmt_bytes(run.maxrss)}; {fmt_s(run.wall)} "
                             f"= {1_000_000 / run.wall:,.0f} files/s in this sampled run"))
        self.raw.append({"kind": "million", "run": asdict(run), "peak_pss": sampler.peak_pss,
                         "peak_rss_tree": sampler.peak_rss})
        try:
            quick = run_once(self.check_cmd("M1", data, False))
            self.rows.append(Row("check 1M files stat-only", fmt_s(quick.wall), "", "", "info", "INFO",
                                 f"{1_000_000 / quick.wall:,.0f} files/s, ru_maxrss {fmt_bytes(quick.maxrss)}"))
        except (CommandFailed, OSError) as err:
            self.error("check 1M files stat-only", "info", err)

    def run(self) -> int:
        args = self.args
        self.root.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(exist_ok=True)
        _harness.WAIT_IDLE_S = args.wait_idle
        _harness.BASE_ENV = _harness.child_env(str(self.root / "pycache"))
        d = data_d(self.root)
        d2 = generate(self.root, "D2", files=200_000, subdirs=200, size=lambda r: 1024, seed=2,
                      params={"size": 1024})
        key = key_pair(self.root)
        if args.dvc:
            dvc_repo(self.root / "ws", args.dvc)
        started = time.time()
        print(self.header(), flush=True)
        ms_d2 = 0 if args.quick else max(1, min(args.runs, 3))
        b = self.data_set("D", d, 20_000, key, vs_sha=T_VS_SHA_D, files_target=T_D_FILES_S, ms_runs=args.runs)
        b2 = self.data_set("D2", d2, 200_000, key, vs_sha=T_VS_SHA_D2, files_target=T_D2_FILES_S,
                           ms_runs=ms_d2)
        self.checks("D", d, 20_000, b, targeted=False)
        self.checks("D2", d2, 200_000, b2, targeted=True)
        if args.million:
            self.million()
        print()
        print(render_text(self.rows))
        print(f"\n({time.time() - started:.0f} s)")
        if args.markdown:
            args.markdown.write_text(render_markdown(self.rows) + "\n")
        if args.json:
            args.json.write_text(json.dumps({"rows": [asdict(r) for r in self.rows], "raw": self.raw}, indent=1))
        return 1 if any(r.result in ("FAIL", "ERROR") for r in self.rows) else 0

    def header(self) -> str:
        import platform

        import mlpack

        versions = []
        for argv in ([self.args.dvc, "--version"] if self.args.dvc else None,
                     [resolve("model_signing"), "--version"], ["sha256sum", "--version"]):
            if argv is None:
                continue
            try:
                text = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout
                versions.append(f"{Path(argv[0]).name} {text.splitlines()[0] if text else '?'}")
            except OSError as err:
                versions.append(f"{argv[0]}: {err}")
        from mlpack import _parallel

        return "\n".join([
            f"mlpack dataset benchmark: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            (f"mlpack from {Path(mlpack.__file__).parent}; {_parallel.WORKERS} worker process(es) + "
             f"the caller; data in {self.root}; runs {self.args.runs}"),
            (f"this machine now: hashlib sha256 {sha256_speed():.2f} GB/s in one process "
             "(performance.md measured 1.82 GB/s when the targets were set)"),
            "peers: " + "; ".join(versions),
        ])


def sha256_speed() -> float:
    """GB/s of hashlib sha256 over 256 MiB in memory, best of 3 (the machine's current speed)."""
    import hashlib

    data = bytes(256 * 1024 * 1024)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        best = min(best, time.perf_counter() - t)
    return len(data) / best / 1e9


def find_dvc() -> str | None:
    for cand in (Path("/tmp/dsbench/bin/dvc"), Path(sys.executable).with_name("dvc")):
        if cand.exists():
            return str(cand)
    return shutil.which("dvc")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="dataset manifest benchmark (see the module docstring)")
    ap.add_argument("--runs", type=int, default=5, help="recorded runs per comparison (default 5)")
    ap.add_argument("--quick", action="store_true", help="3 runs, no model_signing on D2")
    ap.add_argument("--million", action="store_true", help="also build a 1,000,000-file manifest "
                    "and check its peak memory (generates 1M files the first time, about 1-2 min)")
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("MLPACK_BENCH_DS_DIR", "/tmp/mlpack-bench-ds")))
    ap.add_argument("--dvc", default=None, help="dvc executable (default /tmp/dsbench/bin/dvc, else PATH)")
    ap.add_argument("--wait-idle", type=float, default=20.0, metavar="S",
                    help="before each series wait up to S s for the machine to be idle (0: no wait)")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.quick:
        args.runs = min(args.runs, 3)
    args.dvc = args.dvc or find_dvc()
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
