"""What the sandbox shows of the host, and the bubblewrap command line (spec/sandbox.md).

Pure apart from reading symbolic links and ``pyvenv.cfg``: given the command, the paths to
expose and the limits, build the ``bwrap`` argument vector.

    argv = bwrap_argv("/usr/bin/bwrap", ["python3", "-c", "pass"], binds=[(work, True)],
                      cwd=work, as_root=True, limits={"nproc": 256},
                      tools={"prlimit": "/usr/bin/prlimit", "setpriv": "/usr/bin/setpriv"})
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from .errors import UsageError

__all__ = [
    "SANDBOX_GID", "SANDBOX_UID", "bwrap_argv", "interpreter_paths", "visible", "writable",
]

SANDBOX_UID = 65534
"""The user the command runs as (``nobody``); for root callers a real host uid."""
SANDBOX_GID = 65534
SYSTEM_DIRS = ("/usr", "/etc")
"""Mounted read-only: programs, libraries, configuration (root-only files stay unreadable)."""
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Recreated as the same symbolic links (merged /usr), else mounted read-only."""
SYSFS = ("/sys/devices/system/cpu", "/sys/devices/system/node")
"""CPU and NUMA topology, which BLAS and PyTorch read to size their thread pools."""
NOT_EXPOSABLE = (Path("/proc"), Path("/dev"), Path("/sys"))
HOSTNAME = "mlpack-sandbox"
OPTIONAL = frozenset({"--disable-userns", "--size", "--perms"})
"""Options used only when this bubblewrap has them (added in 0.6 to 0.8)."""


def visible(path: Path) -> bool:
    """Whether a host path may be exposed read-only (spec/sandbox.md, "Paths").

    Not ``/``, ``/home``, a home directory or a directory above one, nothing under /proc,
    /dev or /sys.
    """
    return not _holds_a_home(path) and not any(path.is_relative_to(p) for p in NOT_EXPOSABLE)


def writable(path: Path) -> bool:
    """Whether a host path may be the scratch directory (spec/sandbox.md, "Paths").

    As :func:`visible`, and also not a top-level directory (``/tmp``, ``/var``), not a
    directory directly in ``/home``, and neither inside nor above the system directories.
    """
    system = (*SYSTEM_DIRS, *SYSTEM_LINKS)
    return visible(path) and not _too_wide(path) and not any(
        path.is_relative_to(d) or Path(d).is_relative_to(path) for d in system)


def interpreter_paths(exe: Path) -> list[Path]:
    """The directories an interpreter needs beyond /usr: its venv and installation prefix.

    Follows ``exe``'s chain of symbolic links and a venv's ``pyvenv.cfg`` ``home`` key;
    nothing is executed. A prefix is the parent of the ``bin`` directory holding the
    executable.

    Raises:
        UsageError: A prefix would expose ``/``, a top-level directory or a home directory.
    """
    found: list[Path] = []
    venv = exe.parent.parent
    if exe.parent.name == "bin" and (venv / "pyvenv.cfg").is_file():
        found.append(venv)
        home = _venv_home(venv / "pyvenv.cfg")
        if home is not None:
            found.append(_prefix(Path(os.path.realpath(home)) / "python"))
    link = exe
    for _ in range(40):
        found.append(_prefix(link))
        if not link.is_symlink():
            break
        link = Path(os.path.normpath(link.parent / os.readlink(link)))
    found.append(_prefix(Path(os.path.realpath(exe))))
    out: list[Path] = []
    for path in found:
        path = Path(os.path.realpath(path))
        if path in out or any(path.is_relative_to(d) for d in (*SYSTEM_DIRS, *SYSTEM_LINKS)):
            continue
        if _too_wide(path):
            raise UsageError(f"the interpreter's directory {path} is too wide to expose to the "
                             "sandbox", hint="use an interpreter installed in its own directory "
                             "(a venv, pyenv or conda environment)")
        out.append(path)
    return out


def bwrap_argv(
    bwrap: str,
    argv: Sequence[str],
    *,
    binds: Sequence[tuple[Path, bool]],
    cwd: Path,
    as_root: bool,
    limits: Mapping[str, int],
    tools: Mapping[str, str],
    tmpfs_bytes: int = 512 << 20,
    status_fd: bool = False,
    supported: Collection[str] = OPTIONAL,
) -> list[str]:
    """The bubblewrap command that runs ``argv`` under spec/sandbox.md's rules.

    Args:
        bwrap: Path of the bubblewrap executable.
        argv: The command to run inside.
        binds: ``(host path, writable)``, each mounted at its own path, parents first.
        cwd: Working directory inside.
        as_root: The caller is root: bubblewrap runs privileged without a user namespace
            and ``setpriv`` drops to :data:`SANDBOX_UID`, so file permissions apply.
            Otherwise a user namespace maps :data:`SANDBOX_UID` to the caller.
        limits: ``prlimit`` options (``nproc``, ``fsize``, ``as``, ``cpu``, ``core``).
        tools: Paths of ``prlimit`` and (for root) ``setpriv``.
        tmpfs_bytes: Size of ``/tmp`` and ``/dev/shm``.
        status_fd: Add ``--json-status-fd -1`` (the caller substitutes the fd).
        supported: Which of :data:`OPTIONAL` this bubblewrap accepts.

    Returns:
        The argument vector.
    """
    out = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", HOSTNAME, "--new-session", "--die-with-parent"]
    if as_root:
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            out += ["--cap-add", cap]
    else:
        out += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]
        out += ["--disable-userns"] if "--disable-userns" in supported else []
    for system in SYSTEM_DIRS:
        out += ["--ro-bind", system, system]
    for system in SYSTEM_LINKS:
        if os.path.islink(system):
            out += ["--symlink", os.readlink(system), system]
        elif os.path.isdir(system):
            out += ["--ro-bind", system, system]
    for system in SYSFS:
        out += ["--ro-bind-try", system, system]
    out += ["--proc", "/proc", "--dev", "/dev"]
    for system in ("/dev/shm", "/tmp"):
        out += ["--perms", "1777"] if "--perms" in supported else []
        out += ["--size", str(tmpfs_bytes)] if "--size" in supported else []
        out += ["--tmpfs", system]
    ordered = sorted(binds, key=lambda b: len(b[0].parts))
    made: set[Path] = set()
    for i, (path, writable) in enumerate(ordered):
        for parent in reversed(path.parents):
            if parent in made or parent == Path("/") or any(
                    parent.is_relative_to(p) for p, _ in ordered[:i]) or any(
                    parent.is_relative_to(d) for d in (*SYSTEM_DIRS, *SYSTEM_LINKS)):
                continue
            # bubblewrap would create missing parents as 0700 root: unreadable for the user
            out += ["--perms", "0755"] if "--perms" in supported else []
            out += ["--dir", str(parent)]
            made.add(parent)
        out += ["--bind" if writable else "--ro-bind", str(path), str(path)]
    out += ["--chdir", str(cwd)]
    out += ["--json-status-fd", "-1"] if status_fd else []
    out.append("--")
    if as_root:
        out += [tools["setpriv"], f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_GID}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
    out += [tools["prlimit"], *(f"--{k}={v}" for k, v in sorted(limits.items())), "--"]
    return out + list(argv)


def _prefix(exe: Path) -> Path:
    return exe.parent.parent if exe.parent.name == "bin" else exe.parent


def _venv_home(cfg: Path) -> str | None:
    try:
        text = cfg.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "home" and os.path.isabs(value.strip()):
            return value.strip()
    return None


def _holds_a_home(path: Path) -> bool:
    homes = {Path(os.path.realpath(Path.home())), Path("/root"), Path("/home")}
    return any(h == path or h.is_relative_to(path) for h in homes)


def _too_wide(path: Path) -> bool:
    return len(path.parts) < 3 or path.parent == Path("/home") or _holds_a_home(path)
