"""Benchmark `mlpack pack`, `verify`, `inspect` and `--help` against their targets and peers.

Targets (issue text; W = one 2 GiB safetensors file, D = 20,000 files of 4-64 KiB):

1. `mlpack verify` of a pack of W: <= 1.1x a plain hashlib sha256 stream over W (1 MiB
   readinto buffer), and <= 1.0x `model_signing verify key` on the same files.
2. `mlpack verify` of a pack of W made with `--hash blake3`: >= 5 GB/s (pack bytes / wall time).
3. `mlpack verify` of a pack of D: >= 5x faster than `model_signing verify key` on D (ratio <= 0.2).
4. `mlpack pack` of W+D: <= 1.3x `tar cf OUT -C DATA W.safetensors D`.
5. `mlpack inspect` of any pack: reads < 1 MiB (rchar of the whole process) and takes < 0.3 s;
   `mlpack --help` < 0.3 s.
6. Peak RSS of every mlpack run < 256 MiB (ru_maxrss, see _harness.py).

All timings are whole-process wall-clock (see _harness.py for the method). Run with the venv's
interpreter, where mlpack and the bench extra are installed:

    pip install -e '.[bench]'
    python benchmarks/bench_pack_verify.py            # full: W 2 GiB, D 20,000 files
    python benchmarks/bench_pack_verify.py --quick    # smoke: W 256 MiB, D 2,000 files
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
import gen_data
from _harness import (
    Cmd,
    CommandFailed,
    Comparison,
    MiB,
    Row,
    Series,
    TreeSampler,
    compare,
    fmt_bytes,
    fmt_bytes_exact,
    fmt_s,
    measure,
    render_markdown,
    render_text,
    resolve,
    run_once,
    verdict,
)

HERE = Path(__file__).resolve().parent
GB = 1e9

# Targets, as numbers (kept here, in one place, exactly as the issue states them).
T_VERIFY_W_VS_HASHLIB = 1.10
T_VERIFY_W_VS_MS = 1.00
T_VERIFY_B3_GBPS = 5.0
T_VERIFY_D_VS_MS = 1 / 5
T_PACK_VS_TAR = 1.30
T_INSPECT_S = 0.3
T_INSPECT_READ = 1 * MiB
T_HELP_S = 0.3
T_RSS = 256 * MiB


def _rm(*paths: Path) -> Callable[[], None]:
    """Setup step: remove the outputs of the previous run, then sync (both untimed)."""
    def setup() -> None:
        for p in paths:
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
        os.sync()
    return setup


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.runs: int = args.runs
        self.rows: list[Row] = []
        self.raw: list[dict[str, object]] = []
        self.mem: dict[str, list[Series]] = {}  # mlpack command -> series (for the RSS rows)
        self.ref_mem: dict[str, int] = {}  # mlpack command -> peak RSS of its reference
        self.mem_cmd: dict[str, Cmd] = {}  # mlpack command -> the Cmd (for the sampled run)
        self.other_cpu = 0.0  # CPU seconds used by other processes during the timed series

    # ---------------------------------------------------------------- bookkeeping

    def _record(self, kind: str, *series: Series, comparison: Comparison | None = None) -> None:
        self.raw.append({
            "kind": kind,
            "series": [{"label": s.cmd.label, "argv": list(s.cmd.argv),
                        "runs": [asdict(r) for r in s.runs]} for s in series],
            "ratios": comparison.ratios if comparison else None,
        })

    def _mem(self, group: str, s: Series, ref: Series | None = None) -> None:
        self.mem.setdefault(group, []).append(s)
        self.mem_cmd.setdefault(group, s.cmd)
        if ref is not None:
            self.ref_mem[group] = max(self.ref_mem.get(group, 0), ref.peak_rss)

    def _load_note(self, s: Series) -> None:
        """Append to the last row's note how much CPU other processes took during the series."""
        i = s.interference
        self.other_cpu += i.seconds
        if i.cores >= 0.05:
            worst = max((r.other_cpu / r.wall for r in s.runs), default=0.0)
            row = self.rows[-1]
            extra = (f"other processes used {i.seconds:.1f} CPU s during this series "
                     f"({i.cores:.2f} cores on average, {worst:.2f} in the worst mlpack run)")
            row.note = f"{row.note}; {extra}" if row.note else extra

    def _error(self, check: str, target: str, err: Exception) -> None:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"ERROR in {check}:\n{err}", file=sys.stderr)
        self.rows.append(Row(check, "ERROR", "", "", target, "ERROR", first[:300]))

    # ---------------------------------------------------------------- commands

    def mlpack(self, *a: str) -> list[str]:
        return [self.mlpack_exe, *a]

    def verify_cmd(self, label: str, pack: Path) -> Cmd:
        return Cmd(label, self.mlpack("verify", str(pack), "--key", str(self.p.pub)))

    def ms_verify_cmd(self, label: str, model_dir: Path, sig: Path) -> Cmd:
        return Cmd(label, [self.ms_exe, "verify", "key", "--signature", str(sig),
                           "--public_key", str(self.p.pub), str(model_dir)])

    # ---------------------------------------------------------------- steps

    def setup(self) -> None:
        a = self.args
        self.scale = "quick" if a.quick else "full"
        self.root = (a.dir or gen_data.default_root()).absolute()
        t = time.perf_counter()
        self.p = gen_data.ensure_scale(self.root, self.scale)
        print(f"data ready in {time.perf_counter() - t:.1f} s: {self.p.base}", file=sys.stderr)
        _harness.BASE_ENV = _harness.child_env(str(self.root / "pycache"))
        _harness.WAIT_IDLE_S = a.wait_idle
        self.mlpack_exe = resolve(a.mlpack)
        self.ms_exe = resolve("model_signing")
        self.tar_exe = resolve("tar")
        self.out = self.p.out
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        self.w_size = self.p.w_file.stat().st_size
        self.d_files = sum(len(fs) for _, _, fs in os.walk(self.p.d_dir))
        self.d_size = sum(f.stat().st_size for f in self.p.d_dir.rglob("*") if f.is_file())

    def step_help(self) -> None:
        check = "mlpack --help (wall)"
        target = f"< {T_HELP_S} s"
        try:
            c = compare(Cmd("mlpack --help", self.mlpack("--help")),
                        Cmd("model_signing --help", [self.ms_exe, "--help"]), self.runs)
        except CommandFailed as e:
            return self._error(check, target, e)
        self._record("help", c.a, c.b, comparison=c)
        self._mem("--help", c.a, c.b)
        self.help_rchar = c.a.rchar_max
        self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} model_signing --help",
                             c.fmt_ratio(), target, verdict(c.a.median < T_HELP_S)))
        self._load_note(c.a)

    def make_pack(self, label: str, src: Path, out: Path, *extra: str) -> bool:
        check = f"{label} (1 run, creates {out.name})"
        cmd = Cmd(label, self.mlpack("pack", str(src), "-o", str(out), "--key", str(self.p.priv),
                                     *extra), setup=_rm(out))
        if _harness.WAIT_IDLE_S > 0:
            _harness.wait_idle()
        try:
            r = run_once(cmd)
        except CommandFailed as e:
            self._error(check, "info", e)
            return False
        s = Series(cmd, [r])
        self._record("pack-once", s)
        self._mem(label.removeprefix("mlpack "), s)
        size = out.stat().st_size
        self.rows.append(Row(check, fmt_s(r.wall), "", "", "info", "INFO",
                             f"pack size {size:,} B, {size / r.wall / GB:.2f} GB/s, "
                             f"peak RSS {fmt_bytes(r.maxrss)}"))
        return True

    def sanity_json(self, pack: Path, want_hash: str, want_files: int) -> None:
        """One untimed `verify --json`: the pack really verifies, with the expected hash."""
        cmd = Cmd("verify --json", self.mlpack("verify", str(pack), "--key", str(self.p.pub),
                                                "--json"))
        report: dict[str, object] = {}

        def check(out: str, _err: str) -> str | None:
            nonlocal report
            try:
                report = json.loads(out)
            except ValueError as e:
                return f"not JSON ({e})"
            arch = report.get("archive") or {}
            assert isinstance(arch, dict)
            if report.get("verdict") != "verified":
                return f"verdict {report.get('verdict')!r}"
            if arch.get("hash") != want_hash:
                return f"archive.hash {arch.get('hash')!r}, expected {want_hash!r}"
            if want_files and arch.get("files") not in (want_files, want_files + 1):
                return f"archive.files {arch.get('files')!r}, expected about {want_files}"
            return None

        cmd.check = check
        try:
            run_once(cmd)
        except CommandFailed as e:
            print(f"WARNING: sanity check of {pack.name}: {e}", file=sys.stderr)
            self.warnings.append(f"`verify --json` sanity check of {pack.name}: "
                                 f"{str(e).splitlines()[0]}")

    def step_verify_w(self, pack: Path) -> None:
        gbps = self.w_size / GB
        check = "verify W (sha256) vs hashlib sha256 stream"
        target = f"ratio <= {T_VERIFY_W_VS_HASHLIB:.2f}"
        try:
            c = compare(self.verify_cmd("mlpack verify W", pack),
                        Cmd("hashlib sha256 W", [sys.executable, str(HERE / "sha256_stream.py"),
                                                 str(self.p.w_file), "1"]), self.runs)
        except CommandFailed as e:
            self._error(check, target, e)
        else:
            self._record("verify-w-hashlib", c.a, c.b, comparison=c)
            self._mem("verify W", c.a, c.b)
            self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} hashlib", c.fmt_ratio(), target,
                                 verdict(c.ratio <= T_VERIFY_W_VS_HASHLIB),
                                 f"{gbps / c.a.median:.2f} GB/s vs {gbps / c.b.median:.2f} GB/s "
                                 f"(W = {self.w_size:,} B)"))
            self._load_note(c.a)
        check = "verify W (sha256) vs model_signing verify key W"
        target = f"ratio <= {T_VERIFY_W_VS_MS:.2f}"
        try:
            c = compare(self.verify_cmd("mlpack verify W", pack),
                        self.ms_verify_cmd("model_signing verify W", self.p.w_dir,
                                           self.p.sigs / "W.sig"), self.runs)
        except CommandFailed as e:
            self._error(check, target, e)
        else:
            self._record("verify-w-ms", c.a, c.b, comparison=c)
            self._mem("verify W", c.a, c.b)
            self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} model_signing", c.fmt_ratio(),
                                 target, verdict(c.ratio <= T_VERIFY_W_VS_MS)))
            self._load_note(c.a)

    def step_verify_b3(self, pack: Path) -> None:
        check = "verify W (--hash blake3) throughput"
        target = f">= {T_VERIFY_B3_GBPS:.1f} GB/s"
        try:
            s = measure(self.verify_cmd("mlpack verify W blake3", pack), self.runs)
        except CommandFailed as e:
            return self._error(check, target, e)
        self._record("verify-w-b3", s)
        self._mem("verify W (blake3)", s)
        size = pack.stat().st_size
        rate = size / s.median / GB
        self.rows.append(Row(check, f"{rate:.2f} GB/s; {s.fmt()}", "", "", target,
                             verdict(rate >= T_VERIFY_B3_GBPS),
                             f"pack bytes {size:,} / median whole-process wall time; "
                             f"best run {size / s.min / GB:.2f} GB/s"))
        self._load_note(s)

    def step_verify_d(self, pack: Path) -> None:
        check = "verify D vs model_signing verify key D"
        target = f"ratio <= {T_VERIFY_D_VS_MS:.2f} (>= 5x faster)"
        try:
            c = compare(self.verify_cmd("mlpack verify D", pack),
                        self.ms_verify_cmd("model_signing verify D", self.p.d_dir,
                                           self.p.sigs / "D.sig"), self.runs)
        except CommandFailed as e:
            return self._error(check, target, e)
        self._record("verify-d-ms", c.a, c.b, comparison=c)
        self._mem("verify D", c.a, c.b)
        self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} model_signing", c.fmt_ratio(), target,
                             verdict(c.ratio <= T_VERIFY_D_VS_MS),
                             f"{1 / c.ratio:.1f}x faster; {self.d_files / c.a.median:,.0f} files/s "
                             f"vs {self.d_files / c.b.median:,.0f} files/s "
                             f"(D = {self.d_files:,} files, {self.d_size:,} B)"))
        self._load_note(c.a)

    def step_pack_wd(self, out: Path, tar_out: Path) -> None:
        check = "pack W+D vs tar cf"
        target = f"ratio <= {T_PACK_VS_TAR:.2f}"
        a = Cmd("mlpack pack W+D", self.mlpack("pack", str(self.p.wd_dir), "-o", str(out),
                                               "--key", str(self.p.priv)), setup=_rm(out))
        b = Cmd("tar cf W+D", [self.tar_exe, "cf", str(tar_out), "-C", str(self.p.wd_dir),
                               "W.safetensors", "D"], setup=_rm(tar_out))
        try:
            c = compare(a, b, self.runs)
        except CommandFailed as e:
            return self._error(check, target, e)
        self._record("pack-wd-tar", c.a, c.b, comparison=c)
        self._mem("pack W+D", c.a, c.b)
        size = self.w_size + self.d_size
        self.rows.append(Row(check, c.a.fmt(), f"{c.b.fmt()} tar", c.fmt_ratio(), target,
                             verdict(c.ratio <= T_PACK_VS_TAR),
                             f"input {size:,} B: {size / c.a.median / GB:.2f} GB/s vs "
                             f"{size / c.b.median / GB:.2f} GB/s; pack {out.stat().st_size:,} B, "
                             f"tar {tar_out.stat().st_size:,} B; outputs removed and sync'd "
                             f"before each run (untimed)"))
        self._load_note(c.a)

    def step_inspect(self, pack: Path, name: str) -> None:
        check_t = f"inspect {name} (wall)"
        check_r = f"inspect {name} (bytes read, whole process)"
        try:
            s = measure(Cmd(f"mlpack inspect {name}", self.mlpack("inspect", str(pack))),
                        self.runs)
        except CommandFailed as e:
            self._error(check_t, f"< {T_INSPECT_S} s", e)
            return
        self._record(f"inspect-{name}", s)
        self._mem("inspect", s)
        self.rows.append(Row(check_t, s.fmt(), "", "", f"< {T_INSPECT_S} s",
                             verdict(s.median < T_INSPECT_S)))
        self._load_note(s)
        rchar = s.rchar_max
        base = getattr(self, "help_rchar", None)
        self.rows.append(Row(check_r, fmt_bytes_exact(rchar), "",
                             "", f"< {fmt_bytes(T_INSPECT_READ)} (rchar)",
                             verdict(rchar is not None and rchar < T_INSPECT_READ),
                             f"whole process, interpreter start-up and imports included; pack is "
                             f"{pack.stat().st_size:,} B"
                             + (f"; `mlpack --help` alone reads {base:,} B" if base else "")))
        probe = self.rchar_probe(pack, "inspect", str(pack))
        after_open = probe.get("RCHAR_AFTER_OPEN")
        after_import = probe.get("RCHAR_AFTER_IMPORT")
        self.rows.append(Row(f"inspect {name} (bytes read from opening the pack)",
                             fmt_bytes_exact(after_open), "", "",
                             f"< {fmt_bytes(T_INSPECT_READ)} (rchar)",
                             verdict(after_open < T_INSPECT_READ) if after_open is not None
                             else "INFO",
                             "upper bound on the bytes read from the pack (rchar from the first "
                             "open() of the pack to exit, via benchmarks/_rchar_probe.py)"
                             + (f"; after the entry point's import: {after_import:,} B"
                                if after_import is not None else "")
                             if after_open is not None else
                             "the in-process probe could not run (see warnings)"))

    def rchar_probe(self, pack: Path, *args: str) -> dict[str, int]:
        """One untimed run of mlpack through _rchar_probe.py (bytes read, in phases)."""
        got: dict[str, int] = {}

        def check(_out: str, err: str) -> str | None:
            for line in err.splitlines():
                if line.startswith("RCHAR_AFTER_"):
                    k, v = line.split()
                    got[k] = int(v)
            return None if "RCHAR_AFTER_OPEN" in got else "no RCHAR_AFTER_OPEN line on stderr"

        cmd = Cmd("rchar probe", [sys.executable, str(HERE / "_rchar_probe.py"), "--watch",
                                  str(pack), "mlpack", *args], check=check)
        try:
            run_once(cmd)
        except CommandFailed as e:
            self.warnings.append(f"rchar probe ({' '.join(args)}): {str(e).splitlines()[0]}")
        return got

    def memory_rows(self) -> None:
        """ru_maxrss of every recorded run, plus one untimed run with the tree's Pss sampled."""
        for group, series in self.mem.items():
            peak = max(s.peak_rss for s in series)
            n = sum(len(s.runs) for s in series)
            ref = self.ref_mem.get(group)
            sampler: TreeSampler | None = TreeSampler()
            try:
                run_once(self.mem_cmd[group], sampler)
            except CommandFailed as e:
                self.warnings.append(f"sampled memory run of {group}: {str(e).splitlines()[0]}")
                sampler = None
            cell = f"ru_maxrss {fmt_bytes(peak)} ({n} run{'s' if n != 1 else ''})"
            note = ""
            ok = peak < T_RSS
            if sampler is not None and sampler.samples:
                cell += f"; tree Pss {fmt_bytes(sampler.peak_pss)}"
                note = (f"sampled run: peak Pss sum {sampler.peak_pss:,} B, peak Rss sum "
                        f"{sampler.peak_rss:,} B, up to {sampler.max_procs} process(es), "
                        f"{sampler.samples} samples")
                ok = ok and sampler.peak_pss < T_RSS
            self.rows.append(Row(f"peak RSS: mlpack {group}", cell,
                                 f"{fmt_bytes(ref)} (reference)" if ref else "", "",
                                 f"< {fmt_bytes(T_RSS)}", verdict(ok), note))

    # ---------------------------------------------------------------- main

    def run(self) -> int:
        self.warnings: list[str] = []
        self.src_at_start = self.source_id()
        self.setup()
        t0 = time.perf_counter()
        out = self.out
        self.step_help()
        packs: dict[str, Path] = {}
        # D first: the first pack run also fills the bytecode cache of the pack code path.
        if self.make_pack("mlpack pack D", self.p.d_dir, out / "D.mlpack"):
            packs["D.mlpack"] = out / "D.mlpack"
            self.sanity_json(out / "D.mlpack", "sha256", self.d_files)
        if self.make_pack("mlpack pack W", self.p.w_dir, out / "W.mlpack"):
            packs["W.mlpack"] = out / "W.mlpack"
            self.sanity_json(out / "W.mlpack", "sha256", 1)
        if self.make_pack("mlpack pack W --hash blake3", self.p.w_dir, out / "W-b3.mlpack",
                          "--hash", "blake3"):
            packs["W-b3.mlpack"] = out / "W-b3.mlpack"
            self.sanity_json(out / "W-b3.mlpack", "blake3", 1)
        if "W.mlpack" in packs:
            self.step_verify_w(packs["W.mlpack"])
        if "W-b3.mlpack" in packs:
            self.step_verify_b3(packs["W-b3.mlpack"])
        if "D.mlpack" in packs:
            self.step_verify_d(packs["D.mlpack"])
        self.step_pack_wd(out / "WD.mlpack", out / "WD.tar")
        if (out / "WD.mlpack").is_file():
            packs["WD.mlpack"] = out / "WD.mlpack"
        for name, pack in packs.items():
            self.step_inspect(pack, name)
        self.memory_rows()
        elapsed = time.perf_counter() - t0
        if not self.args.keep:
            shutil.rmtree(out)
        self.report(elapsed)
        bad = [r for r in self.rows if r.result in ("FAIL", "ERROR")]
        return 1 if bad else 0

    def header(self, elapsed: float) -> list[str]:
        from importlib.metadata import PackageNotFoundError, version

        def ver(dist: str) -> str:
            try:
                return version(dist)
            except PackageNotFoundError:
                return "unknown"

        cpu = "unknown"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next((line.split(":", 1)[1].strip() for line in f
                            if line.startswith("model name")), cpu)
        except OSError:
            pass
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        src = self.source_id()
        if src != self.src_at_start:
            self.warnings.append(f"mlpack's source changed during the run ({self.src_at_start} "
                                 f"at the start): the figures may mix two versions")
        return [
            (f"mlpack benchmark, scale={self.scale}, runs={self.runs} (+1 warm-up), {when}, "
             f"bench time {elapsed:.0f} s"),
            (f"machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
             f"Python {platform.python_version()}; mlpack {ver('mlpack')}, "
             f"model-signing {ver('model-signing')}; mlpack from {src}"),
            (f"data: W = {self.p.w_file} ({self.w_size:,} B); D = {self.p.d_dir} "
             f"({self.d_files:,} files, {self.d_size:,} B)"),
            ("times: whole-process wall clock, median [min-max]; ratio = mlpack/reference, "
             "median of per-pair ratios [min-max] (A/B alternating)"),
            (f"other load: processes other than the benchmark used {self.other_cpu:.1f} CPU s "
             f"during the timed series (kernel writeback of the files written included)"),
        ]

    @staticmethod
    def source_id() -> str:
        """Where mlpack is imported from, its git revision, and a digest of its .py files."""
        import hashlib
        import importlib.util
        import subprocess

        spec = importlib.util.find_spec("mlpack")
        if spec is None or spec.origin is None:
            return "source unknown"
        pkg = Path(spec.origin).parent
        h = hashlib.sha256()
        for f in sorted(pkg.rglob("*.py")):
            h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
        try:
            rev = subprocess.run(["git", "-C", str(pkg), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            rev = ""
        return f"{pkg}" + (f" at git {rev}" if rev else "") + f", .py digest {h.hexdigest()[:12]}"

    def report(self, elapsed: float) -> None:
        head = self.header(elapsed)
        print("\n".join(head))
        print()
        print(render_text(self.rows))
        if self.warnings:
            print("\nwarnings:\n" + "\n".join(f"  {w}" for w in self.warnings))
        counts = {k: sum(r.result == k for r in self.rows) for k in ("PASS", "FAIL", "ERROR")}
        print(f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['ERROR']} ERROR")
        if self.args.markdown:
            md = "\n".join(f"{h}  " for h in head) + "\n\n" + render_markdown(self.rows) + "\n"
            if self.warnings:
                md += "\nWarnings:\n\n" + "\n".join(f"- {w}" for w in self.warnings) + "\n"
            self.args.markdown.write_text(md)
        if self.args.json:
            self.args.json.write_text(json.dumps({
                "header": head, "rows": [asdict(r) for r in self.rows], "raw": self.raw,
                "warnings": self.warnings}, indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="mlpack pack/verify/inspect benchmark "
                                 "(see benchmarks/README.md)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: W 256 MiB, D 2,000 files (targets are still checked)")
    ap.add_argument("--runs", type=int, default=5, help="recorded runs per command (default 5)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="data directory (default $MLPACK_BENCH_DIR or /tmp/mlpack-bench)")
    ap.add_argument("--mlpack", default="mlpack",
                    help="mlpack command (default: next to this interpreter, else PATH)")
    ap.add_argument("--wait-idle", type=float, default=30.0, metavar="S",
                    help="before each series wait up to S seconds for other processes to use "
                         "under 0.15 cores (default 30; 0 = do not wait)")
    ap.add_argument("--keep", action="store_true", help="keep the packs and tar files written")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table as Markdown")
    ap.add_argument("--json", type=Path, default=None, help="also write raw results as JSON")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
