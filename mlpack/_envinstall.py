"""The machinery of an environment rebuild (spec/environment.md, "Rebuilding"): finding an
interpreter that satisfies a lock, and the two installers (uv, pip) that carry out a plan.

:mod:`mlpack.envbuild` puts them together (cache, locking, conda-pack). Nothing here prints;
failures are :class:`~mlpack.errors.MlpackError` with code ``E_ENV`` (could not prepare),
``E_DIGEST`` (a wheel differs from its locked sha256) or ``E_MANIFEST`` (a malformed lock).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._envplan import Plan, env_error, render_toml
from .errors import IOFailure, UsageError, VerificationError

__all__ = ["BaseInterpreter", "env_error", "env_python", "find_interpreter", "install_pip",
           "install_uv", "last_line", "one_line", "probe", "run_tool", "satisfies",
           "site_packages", "uv_binary", "uv_version"]

PIP_PYTHON_MIN = (22, 3)  # pip --python
# Variables that would send an install somewhere else than the new environment.
_REDIRECTS = ("PIP_PYTHON", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_REQUIREMENT",
              "PIP_CONSTRAINT", "UV_PYTHON", "UV_SYSTEM_PYTHON", "UV_TARGET", "UV_PREFIX",
              "UV_CONSTRAINT", "UV_OVERRIDE", "UV_BREAK_SYSTEM_PACKAGES", "VIRTUAL_ENV",
              "CONDA_PREFIX", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME")

# Runs in a candidate interpreter (any Python 3): the PEP 508 marker environment, one JSON line.
_PROBE = r"""
import json, os, platform, sys
v = sys.implementation.version
iv = "%d.%d.%d" % (v.major, v.minor, v.micro)
if v.releaselevel != "final":
    iv += v.releaselevel[0] + str(v.serial)
print(json.dumps({
    "executable": os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable),
    "markers": {
        "implementation_name": sys.implementation.name, "implementation_version": iv,
        "os_name": os.name, "platform_machine": platform.machine(),
        "platform_release": platform.release(), "platform_system": platform.system(),
        "platform_version": platform.version(), "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform}}))
"""


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return one_line(lines[-1] if lines else "(no output)")


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def tool_env() -> dict[str, str]:
    """The installers' environment: the user's (proxies, certificates, indexes, credentials),
    minus what would redirect the install, and never a Python download."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTS}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", PIP_NO_INPUT="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def env_python(prefix: Path) -> Path:
    """The interpreter of a venv or conda prefix."""
    if os.name == "nt":
        return prefix / ("Scripts" if (prefix / "Scripts").is_dir() else "") / "python.exe"
    return prefix / "bin" / "python"


# ----------------------------------------------------------------------------- interpreters

@dataclass(frozen=True, kw_only=True, slots=True)
class BaseInterpreter:
    """A Python installation a new environment can be made from."""

    executable: str
    """The resolved base interpreter (a venv's python resolves to the Python it was made from)."""
    markers: Mapping[str, str]
    """The PEP 508 marker environment (``python_full_version``, ``sys_platform``...)."""

    @property
    def version(self) -> str:
        return self.markers["python_full_version"]

    @property
    def identity(self) -> str:
        """What a built environment depends on: implementation, version, platform, path."""
        m = self.markers
        return (f"{m['implementation_name']}-{m['python_full_version']}-{m['sys_platform']}-"
                f"{m['platform_machine']}:{self.executable}")


def probe(python: str) -> BaseInterpreter | None:
    """Ask an interpreter for its marker environment; None if it does not run the probe."""
    try:
        proc = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, check=False,
                              text=True, stdin=subprocess.DEVNULL, timeout=30)
        if proc.returncode != 0:
            return None
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        return BaseInterpreter(executable=str(doc["executable"]), markers=dict(doc["markers"]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError, KeyError, TypeError):
        return None


def satisfies(interp: BaseInterpreter, requires: str | None,
              environments: Sequence[str]) -> bool:
    from packaging.markers import InvalidMarker, Marker
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        if requires and not SpecifierSet(requires).contains(interp.version, prereleases=True):
            return False
        return not environments or any(Marker(m).evaluate(dict(interp.markers))
                                       for m in environments)
    except (InvalidSpecifier, InvalidMarker) as e:
        raise VerificationError(f"environment/pylock.toml: {e}", code="E_MANIFEST",
                                hint="the lock's requires-python or environments is not valid "
                                "PEP 440/508; ask its author for a new pack") from None


def _candidates(requires: str | None) -> list[str]:
    """Interpreters to try, best first: this one, PATH, then pyenv's (newest first)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    minor = re.fullmatch(r"\s*==\s*(\d+)\.(\d+)(?:\.\*)?\s*", requires or "")
    names = ([f"python{minor.group(1)}.{minor.group(2)}"] if minor else []) + ["python3",
                                                                               "python"]
    out = [sys.executable] + [p for n in names if (p := shutil.which(n))]
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    versions = []
    for d in root.iterdir() if root.is_dir() else ():
        try:
            v = Version(d.name)
            if requires and not SpecifierSet(requires).contains(v, prereleases=True):
                continue
        except (InvalidVersion, InvalidSpecifier):
            v = Version("0")
        versions.append((v, d))
    for _, d in sorted(versions, reverse=True):
        out += [str(p) for p in (d / "bin" / "python3", d / "bin" / "python") if p.exists()]
    return out


def find_interpreter(requires: str | None, environments: Sequence[str],
                     python: str | None) -> BaseInterpreter:
    """The interpreter to build with: ``python`` (a path, a command or a version such as
    ``3.12``) or the first candidate that satisfies ``requires-python`` and ``environments``.

    Raises:
        UsageError: ``E_INPUT`` for a ``python`` path that does not exist or does not run.
        IOFailure: ``E_ENV`` when no interpreter satisfies the lock (the message lists what
            the lock needs and what was found).
    """
    want = requires
    if python is not None and re.fullmatch(r"\d+(\.\d+){0,2}", python):
        want = ",".join(x for x in (requires, f"=={python}" + (".*" if python.count(".") < 2
                                                                else "")) if x)
        python = None
    if python is not None:
        exe = shutil.which(python) or python
        if not os.path.exists(exe):
            raise UsageError(f"Python interpreter {python} does not exist", code="E_INPUT",
                             hint="pass the path of an interpreter, e.g. /usr/bin/python3.11")
        found = probe(exe)
        if found is None:
            raise UsageError(f"{exe} is not a working Python 3 interpreter", code="E_INPUT",
                             hint="pass the path of a Python 3 interpreter")
        tried = [found]
    else:
        tried, seen = [], set()
        for exe in _candidates(want):
            if os.path.realpath(exe) in seen:
                continue
            seen.add(os.path.realpath(exe))
            if (found := probe(exe)) is None or found.executable in {t.executable for t in tried}:
                continue
            if satisfies(found, want, environments):
                return found
            tried.append(found)
    if python is not None and satisfies(tried[0], want, environments):
        return tried[0]
    need = "; ".join(x for x in (f"Python {want}" if want else "",
                                 " or ".join(environments)) if x)
    have = ", ".join(f"{t.version} ({t.markers['sys_platform']}, "
                     f"{t.markers['platform_machine']}) at {t.executable}" for t in tried)
    minor = re.fullmatch(r"\s*==\s*(\d+\.\d+)(?:\.\*)?\s*", want or "")
    version = minor.group(1) if minor else "as needed"
    raise env_error(f"no Python interpreter satisfies the lock: it needs {need}; found "
                    f"{have or 'none'}", f"install Python {version} (e.g. with pyenv or uv "
                    "python install) and pass it with --python, or verify on the platform the "
                    "pack names")


# ----------------------------------------------------------------------------- installers

UV_MIN = (0, 6, 15)  # reads pylock.toml


def uv_version(uv: str) -> tuple[int, ...]:
    """``uv --version`` as numbers; (0,) when it does not run."""
    try:
        out = subprocess.run([uv, "--version"], capture_output=True, text=True, check=False,
                             timeout=30, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    return tuple(int(x) for x in re.findall(r"\d+", out)[:3]) or (0,)


def uv_binary() -> str | None:
    """uv from ``$MLPACK_UV``, the ``uv`` Python package, or PATH."""
    if explicit := os.environ.get("MLPACK_UV"):
        return explicit
    try:
        import uv

        path = str(uv.find_uv_bin())
        if os.path.isfile(path):
            return path
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("uv")


def run_tool(cmd: Sequence[str], what: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        # run() kills the child on any exception, Ctrl-C included
        return subprocess.run(list(cmd), capture_output=True, text=True, errors="replace",
                              check=False, stdin=subprocess.DEVNULL, env=tool_env(), cwd=cwd)
    except OSError as e:
        raise env_error(f"cannot run {what}: {e.strerror or e}",
                        "check the installation, or set MLPACK_INSTALLER") from None


def _uv_failure(stderr: str, hint: str) -> IOFailure | VerificationError:
    """One line from uv's error chain: ``error: what`` + ``cause: why`` lines (uv >= 0.9), or
    ``× what`` + ``╰─▶ why`` (older uv)."""
    keep: list[str] = []
    for ln in stderr.splitlines():
        s = ln.strip()
        if not keep and not s.startswith(("error:", "×")):
            continue  # warnings and progress before the error
        for prefix in ("error:", "×", "╰─▶", "cause:", "Caused by:"):
            s = s.removeprefix(prefix).strip()
        if s:
            keep.append(s)
    lines = stderr.strip().splitlines()
    text = one_line(": ".join(keep) if keep else (lines[-1] if lines else "(no output)"))
    if "Hash mismatch" in text or "but the lockfile records" in text:
        return VerificationError(f"uv: a downloaded file differs from the lock: {text}",
                                 code="E_DIGEST", hint="the file at the locked URL changed; "
                                 "use a pack with a wheelhouse")
    return env_error(f"uv could not install the environment: {text}", hint)


def _offline_hint(offline: bool) -> str:
    return ("the lock needs downloads: verify with network access, or with a pack that has a "
            "wheelhouse" if offline else "check the network and the package index, then retry")


def _offline_error(the_plan: Plan) -> IOFailure:
    return env_error("offline, and the lock needs downloads: "
                     f"{one_line(', '.join(the_plan.offline_refs), 300)}", _offline_hint(True))


def install_uv(uv: str, interp: BaseInterpreter, prefix: Path, the_plan: Plan, lock_path: Path,
               *, offline: bool) -> list[tuple[str, str]]:
    """``uv venv`` + ``uv pip install -r pylock.toml``; returns the VCS entries that could
    not be installed, with a note each."""
    proc = run_tool([uv, "venv", "--quiet", "--no-project", "--python", interp.executable,
                     str(prefix)], "uv", prefix.parent)
    if proc.returncode != 0:
        raise _uv_failure(proc.stderr, "check the interpreter, or set MLPACK_INSTALLER=pip")
    python = str(env_python(prefix))
    # compiled now, once: the sandbox sees the environment read-only, so Python could never
    # cache the bytecode of what pack code imports and would recompile it on every run
    flags = ["--compile-bytecode", *(["--offline"] if offline else [])]
    if the_plan.hashed and the_plan.lock["packages"]:
        lock_path.write_bytes(render_toml(the_plan.lock))
        proc = run_tool([uv, "pip", "install", "--python", python, "--no-deps",
                         "--require-hashes", *flags, "-r", str(lock_path)], "uv", prefix.parent)
    elif not the_plan.hashed and the_plan.requirements:
        pins = lock_path.with_name("requirements.txt")
        pins.write_text("\n".join(the_plan.requirements) + "\n", encoding="utf-8")
        proc = run_tool([uv, "pip", "install", "--python", python, "--no-deps", *flags, "-r",
                         str(pins)], "uv", prefix.parent)
    if proc.returncode != 0:
        if offline and the_plan.offline_refs:  # uv's cache did not have them
            raise _offline_error(the_plan)
        raise _uv_failure(proc.stderr, _offline_hint(offline))
    failed = []
    for name, ref in the_plan.vcs:
        proc = run_tool([uv, "pip", "install", "--python", python, "--no-deps", *flags, ref],
                        "uv", prefix.parent)
        if proc.returncode != 0:
            failed.append((name, _vcs_note(name, proc.stderr, "uv")))
    return failed


def _vcs_note(name: str, stderr: str, tool: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return f"{name} was not installed: {tool} failed: {one_line(lines[-1] if lines else '?', 200)}"


def _pip_version(cmd: Sequence[str]) -> tuple[int, ...]:
    try:
        out = subprocess.run([*cmd, "-I", "-c", "import pip; print(pip.__version__)"],
                             capture_output=True, text=True, check=False, timeout=60,
                             stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    return tuple(int(x) for x in re.findall(r"\d+", out)[:3]) or (0,)


def _pip_failure(stderr: str, offline: bool) -> IOFailure | VerificationError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if any("DO NOT MATCH THE HASHES" in ln for ln in lines):
        got = next((ln for ln in lines if ln.startswith(("Expected", "Got"))), "")
        name = next((ln.split()[0].rstrip(":") for ln in lines if " from " in ln), "a package")
        return VerificationError(f"pip: the downloaded file of {name} differs from the lock "
                                 f"({one_line(got, 120)})", code="E_DIGEST",
                                 hint="the file at the locked URL changed; use a pack with a "
                                 "wheelhouse")
    # "ERROR: ..." lines, or pip's rich diagnostics ("× what" then "╰─> why")
    errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR:")]
    rich = [ln.lstrip("×╰─> ").strip() for ln in lines if ln.startswith(("×", "╰─>"))]
    plain = [ln for ln in lines if not ln.startswith("hint:")]
    text = one_line(errors[-1] if errors else ": ".join(rich) if rich
                    else (plain or ["(no output)"])[-1])
    return env_error(f"pip could not install the environment: {text}", _offline_hint(offline))


def install_pip(interp: BaseInterpreter, prefix: Path, the_plan: Plan, req_path: Path,
                *, offline: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """``python -m venv`` + pip with a ``--require-hashes`` requirements file made from the
    lock (any pip >= 22.3 can install it; pylock.toml itself needs pip >= 26.1).

    Returns the VCS entries that could not be installed (with a note each) and other notes.
    """
    if offline and the_plan.offline_refs:
        raise _offline_error(the_plan)
    proc = run_tool([interp.executable, "-m", "venv", "--without-pip", str(prefix)], "venv",
                    prefix.parent)
    if proc.returncode != 0:
        raise env_error(f"python -m venv failed: {one_line(proc.stderr or proc.stdout)}",
                        "check the interpreter (Debian: apt-get install python3-venv)")
    python = str(env_python(prefix))
    notes = []
    if _pip_version([sys.executable]) >= PIP_PYTHON_MIN:
        pip = [sys.executable, "-I", "-m", "pip", "--python", python]
    elif _pip_version([interp.executable]) >= PIP_PYTHON_MIN:
        pip = [interp.executable, "-I", "-m", "pip", "--python", python]
    else:
        proc = run_tool([python, "-I", "-m", "ensurepip", "--default-pip"], "ensurepip",
                        prefix.parent)
        if proc.returncode != 0:
            raise env_error("no pip >= 22.3 to install with, and ensurepip failed: "
                            f"{one_line(proc.stderr)}", "install uv (pip install uv)")
        pip = [python, "-I", "-m", "pip"]
        notes.append("pip was installed into the environment with ensurepip (no pip >= 22.3 "
                     "was available outside it)")
    base = ["install", "--no-deps", "--no-input", "--disable-pip-version-check"]
    if the_plan.requirements:
        req_path.write_text("\n".join(the_plan.requirements) + "\n", encoding="utf-8")
        checked = ["--require-hashes"] if the_plan.hashed else []
        proc = run_tool([*pip, *base, *checked, *(["--no-index"] if offline else []), "-r",
                         str(req_path)], "pip", prefix.parent)
        if proc.returncode != 0:
            raise _pip_failure(proc.stderr, offline)
    failed = []
    for name, ref in the_plan.vcs:
        if (proc := run_tool([*pip, *base, ref], "pip", prefix.parent)).returncode != 0:
            failed.append((name, _vcs_note(name, proc.stderr, "pip")))
    return failed, notes


def site_packages(python: Path) -> Path:
    """The purelib directory of an environment."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    proc = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise env_error(f"{python} does not run: {one_line(proc.stderr)}",
                        "the environment is broken; retry with a fresh cache")
    return Path(proc.stdout.strip())

