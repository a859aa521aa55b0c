"""Run a pack's code in a bubblewrap sandbox (spec/sandbox.md).

No network, a read-only view of the system (no home directories, no ``/tmp``, no
``/run``), one writable scratch directory, an unprivileged user, a scrubbed environment,
and limits on time, memory, file size and processes. When no sandbox can be set up,
:func:`run` refuses with ``E_SANDBOX`` unless the caller passes ``unsafe_no_sandbox``.

    out = run([str(venv / "bin/python"), "train.py"], scratch=work, cwd=work,
              read_only=[venv, data], env={"PYTHONHASHSEED": "0"},
              limits=Limits(time_s=600), log_dir=work.parent / "logs")
    if out.timed_out or out.returncode != 0:
        ...
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._sandbox_exec import Supervised, supervise
from ._sandbox_mounts import (
    OPTIONAL,
    SANDBOX_GID,
    SANDBOX_UID,
    bwrap_argv,
    interpreter_paths,
    visible,
    writable,
)
from .errors import IOFailure, UsageError

__all__ = ["ENV_BWRAP", "Limits", "Outcome", "available", "run"]

ENV_BWRAP = "MLPACK_BWRAP"
"""Names the bubblewrap executable; when set, ``PATH`` is not searched (spec/sandbox.md)."""
SANDBOX_BUBBLEWRAP = "bubblewrap"
SANDBOX_NONE = "none (--unsafe-no-sandbox)"
DEFAULT_PATH = "/usr/bin:/bin"
_HINT = "install bubblewrap (apt-get install bubblewrap), or pass --unsafe-no-sandbox to run " \
        "the pack's code without isolation"


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Resource limits of one sandboxed command (spec/sandbox.md, "Limits")."""

    time_s: float = 3600.0
    """Wall clock; the whole process tree is killed after it."""
    memory_bytes: int | None = 8 << 30
    """``RLIMIT_AS`` of each process (None: unlimited)."""
    file_size_bytes: int = 16 << 30
    """``RLIMIT_FSIZE``: largest file a process may write."""
    processes: int = 256
    """``RLIMIT_NPROC``: processes and threads of the sandbox user."""
    cpu_s: int | None = None
    """``RLIMIT_CPU`` of each process in seconds (None: unlimited)."""
    tmpfs_bytes: int = 512 << 20
    """Size of each in-memory file system (``/tmp``, ``/dev/shm``) inside the sandbox."""
    log_bytes: int = 64 << 20
    """Largest log file written to ``log_dir`` per stream; the rest is dropped."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What a sandboxed command did."""

    returncode: int
    """The command's exit status (negative: killed by that signal)."""
    duration_s: float
    """Wall-clock seconds, sandbox start-up included."""
    timed_out: bool
    """``Limits.time_s`` was reached and every process of the command was killed."""
    stdout_tail: str
    """The last 8 KiB of standard output (all of it is in ``log_dir/stdout.log``)."""
    stderr_tail: str
    """The last 8 KiB of standard error (all of it is in ``log_dir/stderr.log``)."""
    sandbox: str
    """``"bubblewrap"``, or ``"none (--unsafe-no-sandbox)"``."""


def available() -> tuple[str | None, str]:
    """Which sandbox :func:`run` would use, after starting one to prove that it works.

    Returns:
        ``("bubblewrap", "/usr/bin/bwrap 0.8.0")``, or ``(None, reason)``.
    """
    bwrap = os.environ.get(ENV_BWRAP) or shutil.which("bwrap")
    if not bwrap:
        return None, "bubblewrap (bwrap) is not installed"
    if not os.path.isabs(bwrap) or not os.access(bwrap, os.X_OK):
        return None, f"{ENV_BWRAP}={bwrap}: not an executable file" if os.environ.get(
            ENV_BWRAP) else f"{bwrap} is not executable"
    return _probe(os.path.realpath(bwrap), os.geteuid() == 0)


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str, as_root: bool) -> tuple[str | None, str]:
    tools = _tools(as_root)
    if isinstance(tools, str):
        return None, tools
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, timeout=10,
                                 check=False, env={"PATH": DEFAULT_PATH})
        argv = bwrap_argv(bwrap, ["true"], binds=(), cwd=Path("/"), as_root=as_root,
                          limits=_prlimits(Limits()), tools=tools, tmpfs_bytes=1 << 20,
                          status_fd=True, supported=_supported(bwrap))
        argv[argv.index("--json-status-fd") + 1] = "1"
        test = subprocess.run(argv, capture_output=True, timeout=30, check=False,
                              env={"PATH": DEFAULT_PATH}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"{bwrap} cannot start: {err}"
    if version.returncode != 0 or test.returncode != 0 or b'"child-pid"' not in test.stdout:
        why = _last_line(test.stderr or version.stderr) or f"exit status {test.returncode}"
        return None, f"{bwrap} cannot create a sandbox here: {why}"
    name = version.stdout.decode("utf-8", "replace").strip().removeprefix("bubblewrap ")
    return SANDBOX_BUBBLEWRAP, f"{bwrap} {name}".strip()


@functools.lru_cache(maxsize=8)
def _supported(bwrap: str) -> frozenset[str]:
    """Which optional options this bubblewrap has (from ``--help``)."""
    try:
        shown = subprocess.run([bwrap, "--help"], capture_output=True, timeout=10, check=False,
                               env={"PATH": DEFAULT_PATH}).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(opt for opt in OPTIONAL if f"{opt} " in shown)


def run(
    argv: Sequence[str],
    *,
    scratch: Path,
    cwd: Path,
    read_only: Sequence[Path] = (),
    env: Mapping[str, str] = {},
    limits: Limits = Limits(),
    unsafe_no_sandbox: bool = False,
    log_dir: Path | None = None,
    on_output: Callable[[str], None] | None = None,
) -> Outcome:
    """Run ``argv`` in the sandbox and wait for it (or for ``limits.time_s``).

    Args:
        argv: The command; ``argv[0]`` is looked up on the sandbox's ``PATH`` unless it is
            a path. When it is a Python interpreter, its venv and installation prefix are
            made visible (read-only).
        scratch: The one writable directory, mounted at its own (resolved) path.
        cwd: Working directory; inside ``scratch`` or one of ``read_only``.
        read_only: More host paths made visible, read-only, at their own resolved paths.
        env: Variables added to the scrubbed environment (they override its defaults).
        limits: Time, memory, file-size, process and CPU limits.
        unsafe_no_sandbox: Run directly, without isolation (the environment is still
            scrubbed and the limits and time-out still apply).
        log_dir: Where ``stdout.log`` and ``stderr.log`` go (created when missing).
        on_output: Called on this thread with each output line (untrusted text: escape it).

    Returns:
        The command's :class:`Outcome`; a failing command is not an error.

    Raises:
        UsageError: ``E_SANDBOX`` (no sandbox can be set up), ``E_INPUT`` (a path is
            missing or unreadable by the sandbox user), ``E_USAGE`` (bad arguments).
        IOFailure: The scratch directory or a log file could not be prepared or written.
    """
    if not argv:
        raise UsageError("nothing to run: the command is empty")
    scratch_r, cwd_r, ro = _check_paths(scratch, cwd, read_only)
    full_env = _environment(argv[0], scratch_r, env)
    exe = _find(argv[0], full_env["PATH"], cwd_r)
    rlimits = _prlimits(limits)
    if unsafe_no_sandbox:
        _prepare_scratch(scratch_r, chown=False)
        try:
            done = supervise(argv, cwd=cwd_r, env=full_env, time_s=limits.time_s,
                             preexec=functools.partial(_setrlimits, rlimits), log_dir=log_dir,
                             log_bytes=limits.log_bytes, on_output=on_output)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot run {argv[0]}") from err
        return _outcome(done.returncode, done, SANDBOX_NONE)
    kind, detail = available()
    if kind is None:
        raise UsageError(f"no sandbox: {detail}", code="E_SANDBOX", hint=_HINT)
    as_root = os.geteuid() == 0
    tools = _tools(as_root)
    assert not isinstance(tools, str)  # available() checked them
    binds = [(p, False) for p in (*interpreter_paths(exe), *ro)] + [(scratch_r, True)]
    for path in ro if as_root else ():
        if not _readable_by_others(path):
            raise UsageError(
                f"the sandbox user (uid {SANDBOX_UID}) cannot read {path}",
                code="E_INPUT", hint=f"make it readable by others: chmod o+rX {path}")
    bwrap = os.path.realpath(os.environ.get(ENV_BWRAP) or shutil.which("bwrap") or "bwrap")
    cmd = bwrap_argv(bwrap, argv, binds=binds, cwd=cwd_r, as_root=as_root,
                     limits=rlimits, tools=tools, tmpfs_bytes=limits.tmpfs_bytes,
                     status_fd=True, supported=_supported(bwrap))
    _prepare_scratch(scratch_r, chown=as_root)
    new_log_dir = log_dir is not None and not log_dir.exists()
    try:
        done = supervise(cmd, cwd=Path("/"), env=full_env, time_s=limits.time_s,
                         log_dir=log_dir, log_bytes=limits.log_bytes, on_output=on_output,
                         status_pipe=True, status_flag="--json-status-fd")
    except OSError as err:
        raise IOFailure.from_os_error(err, "cannot run the sandbox") from err
    if not done.timed_out and b'"child-pid"' not in done.status:
        why = _last_line(done.stderr_tail) or f"exit status {done.returncode}"
        _remove_logs(log_dir, new_log_dir)
        raise UsageError(f"the sandbox could not start: {why}", code="E_SANDBOX", hint=_HINT)
    code = done.returncode
    if 128 < code <= 128 + 64:  # the sandbox's init reports "killed by signal N" as 128 + N
        code = 128 - code
    return _outcome(code, done, SANDBOX_BUBBLEWRAP)


def _outcome(code: int, done: Supervised, sandbox: str) -> Outcome:
    return Outcome(returncode=code, duration_s=done.duration_s, timed_out=done.timed_out,
                   stdout_tail=done.stdout_tail.decode("utf-8", "replace"),
                   stderr_tail=done.stderr_tail.decode("utf-8", "replace"), sandbox=sandbox)


def _check_paths(scratch: Path, cwd: Path,
                 read_only: Sequence[Path]) -> tuple[Path, Path, tuple[Path, ...]]:
    """Resolve the paths and apply the rules of spec/sandbox.md, "Paths"."""
    resolved = []
    for what, path in [("scratch", scratch), ("cwd", cwd)] + [("read-only", p) for p in read_only]:
        real = Path(os.path.realpath(path))
        if not real.exists():
            raise UsageError(f"{what} path {path} does not exist", code="E_INPUT",
                             hint="check the path")
        if not (writable(real) if what == "scratch" else visible(real)):
            raise UsageError(f"{what} path {path} cannot be exposed to the sandbox",
                             hint="pass a narrower directory: not /, a home directory or above, "
                             "a top-level or system directory, or anything in /proc, /dev, /sys")
        resolved.append(real)
    scratch_r, cwd_r, *ro = resolved
    if not scratch_r.is_dir():
        raise UsageError(f"scratch path {scratch} is not a directory", code="E_INPUT",
                         hint="create the directory first")
    if not any(cwd_r.is_relative_to(p) for p in (scratch_r, *ro)):
        raise UsageError(f"cwd {cwd} is neither inside the scratch directory nor read-only",
                         hint="pass a cwd inside scratch or one of the read-only paths")
    return scratch_r, cwd_r, tuple(ro)


def _environment(program: str, scratch: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The scrubbed environment: nothing is inherited (spec/sandbox.md, "Environment")."""
    path = DEFAULT_PATH
    if os.sep in program:
        bin_dir = os.path.dirname(os.path.abspath(program))
        if bin_dir not in DEFAULT_PATH.split(":"):
            path = f"{bin_dir}:{DEFAULT_PATH}"
    env = {"PATH": path, "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    for key, value in extra.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise UsageError(f"invalid environment variable {key!r}")
        env[key] = value
    return env


def _find(program: str, path: str, cwd: Path) -> Path:
    """Absolute path of the program (not resolved: a venv's ``bin/python`` stays a venv's)."""
    if os.sep in program:
        found: str | None = os.path.join(cwd, program)
    else:
        found = shutil.which(program, path=path)
    if found is None or not os.access(found, os.X_OK) or not os.path.isfile(found):
        raise UsageError(f"command not found: {program}", code="E_INPUT",
                         hint="pass an executable path (the environment's python)")
    return Path(os.path.normpath(found))


def _tools(as_root: bool) -> dict[str, str] | str:
    """``prlimit`` (and, for root, ``setpriv``) from util-linux, which the sandbox runs."""
    tools = {}
    for name in ("prlimit", "setpriv") if as_root else ("prlimit",):
        found = shutil.which(name, path=DEFAULT_PATH)
        if found is None:
            return f"{name} (util-linux) is not installed"
        tools[name] = found
    return tools


_RLIMITS = {"nproc": resource.RLIMIT_NPROC, "fsize": resource.RLIMIT_FSIZE,
            "core": resource.RLIMIT_CORE, "as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU}


def _prlimits(limits: Limits) -> dict[str, int]:
    """The rlimits, by ``prlimit`` option name; soft = hard, so none can be raised.

    A value above this process's own hard limit is lowered to it (it could not be raised).
    """
    if min(limits.processes, limits.file_size_bytes, limits.cpu_s or 1, limits.tmpfs_bytes,
           limits.memory_bytes or 1, limits.log_bytes) < 1 or not limits.time_s > 0:
        raise UsageError("every limit must be positive")
    out = {"nproc": limits.processes, "fsize": limits.file_size_bytes, "core": 0}
    if limits.memory_bytes is not None:
        out["as"] = limits.memory_bytes
    if limits.cpu_s is not None:
        out["cpu"] = limits.cpu_s
    for name, value in out.items():
        hard = resource.getrlimit(_RLIMITS[name])[1]
        if hard != resource.RLIM_INFINITY and value > hard:
            out[name] = hard
    return out


def _setrlimits(limits: dict[str, int]) -> None:
    """The same limits in the child, before exec (unsandboxed runs)."""
    for name, value in limits.items():
        resource.setrlimit(_RLIMITS[name], (value, value))


def _prepare_scratch(scratch: Path, *, chown: bool) -> None:
    """Create ``home`` and ``tmp``; for root, hand the tree to the sandbox user."""
    try:
        for sub in ("home", "tmp"):
            (scratch / sub).mkdir(mode=0o700, exist_ok=True)
        if chown:
            os.chown(scratch, SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)
            for top, dirs, files in os.walk(scratch):
                for name in dirs + files:
                    path = os.path.join(top, name)
                    st = os.lstat(path)
                    if stat.S_ISDIR(st.st_mode) or st.st_nlink == 1:
                        # a hard link's other names lie outside: leave it (read-only inside)
                        os.chown(path, SANDBOX_UID, SANDBOX_GID, follow_symlinks=False)
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot prepare the scratch directory {scratch}") \
            from err


def _remove_logs(log_dir: Path | None, made: bool) -> None:
    """Nothing ran: leave no log behind (and no log directory this call created)."""
    if log_dir is None:
        return
    for name in ("stdout.log", "stderr.log"):
        (log_dir / name).unlink(missing_ok=True)
    if made:
        with contextlib.suppress(OSError):
            log_dir.rmdir()


def _readable_by_others(path: Path) -> bool:
    st = path.stat()
    need = 0o005 if path.is_dir() else 0o004
    return st.st_uid == SANDBOX_UID or st.st_mode & need == need


def _last_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return "".join(ch if ch.isprintable() else "?" for ch in lines[-1])[:300] if lines else ""
