"""Whole-process timing of commands, for the mlpack benchmarks.

Method (the same as /work/shared/design/performance.md, "whole-process wall-clock medians"):

- Every run starts a fresh process with ``os.posix_spawn`` (stdin /dev/null, stdout and stderr to
  scratch files) and times it from just before the spawn to the moment the process has exited:
  interpreter start-up and imports are included.
- The exit is awaited with ``waitid(..., WEXITED | WNOWAIT)``, which leaves the child a zombie.
  While it is a zombie the harness reads ``/proc/<pid>/io`` (``rchar``: every byte the process
  obtained from read()-like syscalls, its reaped children included; mmap()ed pages are not
  counted), and then reaps it with ``os.wait4``, whose rusage gives ``ru_maxrss``: the peak RSS of
  the child or of the largest of its reaped descendants (a max, not a sum of concurrent
  processes). No strace, no wrapper inside the measured process, no polling race.
- One warm-up run per command (not recorded; page cache warm), then N recorded runs.
- When two commands are compared, the runs alternate A B B A A B ... and the ratio A/B is taken
  per pair (A's i-th run over B's i-th run); the table reports the median pair ratio and its
  min..max. Timings are medians with min..max.
- A ``setup`` callable may run, untimed, before every run (e.g. removing the output file and
  ``sync`` so that no run pays for the previous run's dirty pages).
- A run whose exit status is not expected raises ``CommandFailed`` with the tail of its stderr.

Only the Python standard library is used.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Self

MiB = 1024 * 1024


def child_env(pycache_prefix: str | None = None) -> dict[str, str]:
    """The environment for measured children: this one, with bytecode caching on.

    An installed package has .pyc files; with PYTHONDONTWRITEBYTECODE=1 (set in some shells and
    CI images) an editable install would recompile its sources in every run and the start-up
    figures would measure the compiler. So the flag is dropped, and with `pycache_prefix` all
    .pyc files go to that directory (PYTHONPYCACHEPREFIX) instead of __pycache__ folders in the
    source tree. The warm-up run fills the cache.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pycache_prefix is not None:
        env["PYTHONPYCACHEPREFIX"] = pycache_prefix
    return env


BASE_ENV: dict[str, str] | None = None  # used when Cmd.env is None; None means os.environ


class CommandFailed(RuntimeError):
    """A measured command exited with an unexpected status (or timed out)."""


@dataclass
class Cmd:
    """A command to measure."""

    label: str
    argv: Sequence[str]
    cwd: str | None = None
    setup: Callable[[], None] | None = None  # untimed, before every run (warm-up included)
    ok_codes: tuple[int, ...] = (0,)
    env: dict[str, str] | None = None
    timeout: float = 600.0
    check: Callable[[str, str], str | None] | None = None  # (stdout, stderr) -> error or None


@dataclass
class Run:
    """One measured run."""

    wall: float  # seconds
    rc: int
    maxrss: int  # bytes (ru_maxrss is in KiB on Linux)
    rchar: int | None  # bytes, from /proc/<pid>/io
    utime: float
    stime: float
    other_cpu: float = 0.0  # CPU s used by other processes during the run (see Interference)


@dataclass
class Series:
    """The recorded runs of one command."""

    cmd: Cmd
    runs: list[Run] = field(default_factory=list)
    interference: Interference = field(default_factory=lambda: Interference())

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def min(self) -> float:
        return min(self.walls)

    @property
    def max(self) -> float:
        return max(self.walls)

    @property
    def peak_rss(self) -> int:
        return max(r.maxrss for r in self.runs)

    @property
    def rchar_max(self) -> int | None:
        vals = [r.rchar for r in self.runs if r.rchar is not None]
        return max(vals) if vals else None

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.utime + r.stime for r in self.runs)

    def fmt(self) -> str:
        """'1.234 s [1.200-1.300]'."""
        return f"{fmt_s(self.median)} [{fmt_s(self.min, unit=False)}-{fmt_s(self.max, unit=False)}]"


@dataclass
class Comparison:
    """A/B alternating series with per-pair ratios A/B."""

    a: Series
    b: Series
    ratios: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def fmt_ratio(self) -> str:
        return f"{self.ratio:.3f} [{min(self.ratios):.3f}-{max(self.ratios):.3f}]"


def fmt_s(x: float, unit: bool = True) -> str:
    s = f"{x:.3f}" if x < 10 else f"{x:.2f}"
    return s + " s" if unit else s


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 10 * 1024:
        return f"{n:,} B"
    if n < 10 * MiB:
        return f"{n / 1024:.0f} KiB"
    return f"{n / MiB:.0f} MiB"


def fmt_bytes_exact(n: int | None) -> str:
    """'9,384 B' or '5820 KiB (5,959,447 B)'."""
    if n is None:
        return "n/a"
    short = fmt_bytes(n)
    return short if short.endswith(" B") else f"{short} ({n:,} B)"


def resolve(prog: str) -> str:
    """A console script next to sys.executable (the venv's bin dir), else shutil.which."""
    if os.sep in prog:
        return prog
    cand = os.path.join(os.path.dirname(sys.executable), prog)
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    found = shutil.which(prog)
    if found is None:
        raise FileNotFoundError(f"{prog}: not found next to {sys.executable} nor on PATH")
    return found


def _read_rchar(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            for line in f:
                if line.startswith(b"rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _tail(path: str, n: int = 2000) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read().decode("utf-8", "replace")


class TreeSampler:
    """Samples the memory of a process tree while it runs (for one untimed run).

    Every `interval` seconds: find the process and all its descendants (by scanning the ppid of
    every /proc/<pid>/stat) and sum their Pss and Rss from /proc/<pid>/smaps_rollup. Pss divides
    shared pages (copy-on-write pages of forked workers, shared libraries, mapped file pages)
    among the processes that map them, so the Pss sum is the tree's real footprint; the Rss sum
    counts shared pages once per process. A peak shorter than the interval can be missed.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_pss = 0
        self.peak_rss = 0
        self.max_procs = 0
        self.samples = 0

    @staticmethod
    def _descendants(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(b")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(name))
        out, todo = [], [root]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, ()))
        return out

    def sample(self, root: int) -> None:
        pss = rss = procs = 0
        for p in self._descendants(root):
            try:
                with open(f"/proc/{p}/smaps_rollup", "rb") as f:
                    for line in f:
                        if line.startswith(b"Pss:"):
                            pss += int(line.split()[1]) * 1024
                        elif line.startswith(b"Rss:"):
                            rss += int(line.split()[1]) * 1024
                procs += 1
            except (OSError, ValueError):
                continue
        self.samples += 1
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.max_procs = max(self.max_procs, procs)


def run_once(cmd: Cmd, sampler: TreeSampler | None = None) -> Run:
    """Spawn cmd once; return its wall time, rusage and rchar. Raises CommandFailed.

    With a `sampler`, the process tree's memory is sampled while it runs (this costs CPU in
    the harness, so sampled runs are not used for timing).
    """
    if cmd.setup is not None:
        cmd.setup()
    if WAIT_IDLE_S > 0 and sampler is None:
        wait_idle(min(WAIT_IDLE_S, 10.0), window=0.25, quiet=True)
    busy0, own0 = busy_cpu_seconds(), own_cpu_seconds()
    argv = list(cmd.argv)
    exe = resolve(argv[0])
    env = cmd.env if cmd.env is not None else (BASE_ENV if BASE_ENV is not None else
                                                  dict(os.environ))
    with tempfile.TemporaryDirectory(prefix="mlpack-harness-") as tmp:
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        fa = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        ]
        old_cwd = None
        if cmd.cwd is not None:  # posix_spawn has no portable chdir action in 3.11
            old_cwd = os.getcwd()
            os.chdir(cmd.cwd)
        try:
            t0 = time.perf_counter()
            pid = os.posix_spawn(exe, argv, env, file_actions=fa)
        finally:
            if old_cwd is not None:
                os.chdir(old_cwd)
        timed_out = False
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = -1
        if pidfd >= 0:
            try:
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                deadline = t0 + cmd.timeout
                step = cmd.timeout if sampler is None else sampler.interval
                while True:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        timed_out = True
                        os.kill(pid, 9)
                        break
                    if poller.poll(min(step, left) * 1000):
                        break
                    if sampler is not None:
                        sampler.sample(pid)
            finally:
                os.close(pidfd)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        t1 = time.perf_counter()
        rchar = _read_rchar(pid)
        _, status, ru = os.wait4(pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        if timed_out:
            raise CommandFailed(f"{cmd.label}: timed out after {cmd.timeout:g} s")
        if rc not in cmd.ok_codes:
            raise CommandFailed(f"{cmd.label}: exit status {rc} (expected {cmd.ok_codes}); "
                                f"argv={argv}\nstderr tail:\n{_tail(err_path)}\n"
                                f"stdout tail:\n{_tail(out_path, 600)}")
        if cmd.check is not None:
            with open(out_path, encoding="utf-8", errors="replace") as fo, \
                 open(err_path, encoding="utf-8", errors="replace") as fe:
                problem = cmd.check(fo.read(), fe.read())
            if problem:
                raise CommandFailed(f"{cmd.label}: output check failed: {problem}")
    other = max(0.0, (busy_cpu_seconds() - busy0) - (own_cpu_seconds() - own0))
    return Run(wall=t1 - t0, rc=rc, maxrss=ru.ru_maxrss * 1024, rchar=rchar,
               utime=ru.ru_utime, stime=ru.ru_stime, other_cpu=other)


def _progress(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- other load

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU seconds spent non-idle on the whole machine since boot (/proc/stat, all CPUs)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def own_cpu_seconds() -> float:
    """CPU seconds of this process plus its reaped children (the measured commands)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Interference:
    """CPU time that other processes used while a series ran.

    "Other" is the machine's non-idle CPU time minus this process's and its children's. It
    includes kernel threads working for us (e.g. writeback of the files a `pack` wrote), so on
    writing rows it is not all foreign load.
    """

    seconds: float = 0.0
    elapsed: float = 0.0

    @property
    def cores(self) -> float:
        return self.seconds / self.elapsed if self.elapsed > 0 else 0.0

    def __enter__(self) -> Self:
        self._t, self._busy, self._own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self._t
        self.seconds = max(0.0, (busy_cpu_seconds() - self._busy)
                           - (own_cpu_seconds() - self._own))


WAIT_IDLE_S = 0.0  # before each series, wait up to this long for the machine to be idle
IDLE_CORES = 0.15  # "idle": other processes use less than this many cores over 1 s


def wait_idle(max_wait: float | None = None, window: float = 1.0, quiet: bool = False) -> float:
    """Wait (up to max_wait s) until other processes use < IDLE_CORES; return the last load.

    The load is measured over `window` seconds at a time.
    """
    max_wait = WAIT_IDLE_S if max_wait is None else max_wait
    deadline = time.perf_counter() + max_wait
    while True:
        with Interference() as i:
            time.sleep(window)
        if i.cores < IDLE_CORES or time.perf_counter() >= deadline:
            if i.cores >= IDLE_CORES and not quiet:
                _progress(f"machine not idle after {max_wait:.0f} s "
                          f"(other load {i.cores:.2f} cores); going on")
            return i.cores


def measure(cmd: Cmd, runs: int = 5, warmup: int = 1) -> Series:
    """Warm-up run(s), then `runs` recorded runs of one command."""
    if WAIT_IDLE_S > 0:
        wait_idle()
    s = Series(cmd)
    with s.interference:
        for _ in range(warmup):
            run_once(cmd)
        for _ in range(runs):
            s.runs.append(run_once(cmd))
    _progress(f"{cmd.label}: {s.fmt()}{_load_note(s.interference)}")
    return s


def compare(a: Cmd, b: Cmd, runs: int = 5, warmup: int = 1) -> Comparison:
    """A/B alternating (A B, B A, A B, ...) with a per-pair ratio A/B."""
    if WAIT_IDLE_S > 0:
        wait_idle()
    sa, sb = Series(a), Series(b)
    inter = Interference()
    with inter:
        for _ in range(warmup):
            run_once(a)
            run_once(b)
        for i in range(runs):
            if i % 2 == 0:
                ra = run_once(a)
                rb = run_once(b)
            else:
                rb = run_once(b)
                ra = run_once(a)
            sa.runs.append(ra)
            sb.runs.append(rb)
    sa.interference = sb.interference = inter
    c = Comparison(sa, sb, [x / y for x, y in zip(sa.walls, sb.walls)])
    _progress(f"{a.label}: {sa.fmt()} | {b.label}: {sb.fmt()} | ratio {c.fmt_ratio()}"
              f"{_load_note(inter)}")
    return c


def _load_note(i: Interference) -> str:
    return f" | other CPU {i.seconds:.1f} s ({i.cores:.2f} cores)" if i.seconds >= 0.05 else ""


# --------------------------------------------------------------------------- table


@dataclass
class Row:
    """One line of the result table."""

    check: str
    mlpack: str
    reference: str
    ratio: str
    target: str
    result: str  # PASS | FAIL | INFO | ERROR
    note: str = ""


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


COLUMNS = ("check", "mlpack", "reference", "ratio", "target", "result")


def render_text(rows: Sequence[Row]) -> str:
    cells = [COLUMNS] + [tuple(getattr(r, c) for c in COLUMNS) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    sep = "-+-".join("-" * w for w in widths)
    lines = [" | ".join(c.ljust(w) for c, w in zip(cells[0], widths)), sep]
    lines += [" | ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells[1:]]
    notes = [f"  [{i}] {r.check}: {r.note}" for i, r in enumerate(rows, 1) if r.note]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(esc(getattr(r, c)) for c in COLUMNS) + " |" for r in rows]
    notes = [f"- {esc(r.check)}: {esc(r.note)}" for r in rows if r.note]
    if notes:
        lines += ["", "Notes:", ""] + notes
    return "\n".join(lines)
