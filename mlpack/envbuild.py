"""Prepare the Python environment a pack's code runs in (spec/environment.md, "Rebuilding").

:func:`prepare` builds a fresh virtual environment from the pack's PEP 751 lock with uv (pip
when uv is missing or ``MLPACK_INSTALLER=pip``), entirely from the pack's wheelhouse when it has
one, checking every wheel against its locked sha256. Environments are cached by the lock's
digest and the interpreter: a second :func:`prepare` of the same lock installs nothing.
:func:`prepare_conda` unpacks a conda-pack archive instead; :func:`check_current` tells how the
running interpreter differs from a lock (``--env current``).

    env = prepare((unpacked / "environment/pylock.toml").read_bytes(),
                  wheelhouse=unpacked / "environment/wheelhouse",
                  extra_paths=[Path(mlpack.__file__).parent])
    subprocess.run([env.python, "train.py"], check=True)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import tomllib
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import _envinstall as _inst
from ._atomic import atomic_write_bytes
from ._envplan import is_pylock, plan, plan_pins
from .digest import sha256_file as sha256
from .environment import (
    Difference,
    Lock,
    compare,
    installed,
    parse_lock,
    parse_requirements,
)
from .errors import IOFailure, UsageError, VerificationError

__all__ = ["INSTALLERS", "PreparedEnv", "cache_root", "check_current", "prepare",
           "prepare_conda"]

INSTALLERS = ("uv", "pip")
MARKER = ".mlpack-env.json"
"""Written last into a complete environment; a directory without it is never used."""
PTH = "_mlpack_extra_paths.pth"
EXTRA = ".extra"
"""The directory of an environment that holds links to the package directories it is given."""
_FORMAT = 1  # of the key and the marker: bump to stop reusing environments built before
Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedEnv:
    """An environment ready to run a pack's code."""

    python: Path
    """The interpreter to run the pack's code with."""
    prefix: Path
    cached: bool
    """True: an existing environment for this lock was reused, nothing installed."""
    installer: str
    """``uv``, ``pip``, ``current`` or ``conda-pack``."""
    duration_s: float
    skipped: tuple[str, ...] = ()
    """Lock entries not installed (the author's local directory or editable installs, VCS
    installs that could not be fetched, ``mlpack`` when the verifier provides its own)."""
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- the cache

def cache_root(cache_dir: Path | None = None) -> Path:
    """``cache_dir``, else ``$MLPACK_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlpack``, else
    ``~/.cache/mlpack`` (the base :mod:`mlpack.environment` keeps its wheel cache in)."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MLPACK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlpack"))


def _key(kind: str, *parts: bytes | str) -> str:
    h = hashlib.sha256(f"mlpack-{kind}/{_FORMAT}".encode())
    for p in parts:
        data = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
        h.update(len(data).to_bytes(8, "big") + data)
    # 32 hex digits (128 bits): short enough for the shebang lines of the installed scripts
    return h.hexdigest()[:32]


@contextmanager
def _exclusive(lock_file: Path, say: Progress) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (another build of the same environment waits)."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): the complete-marker still protects
        yield
        return
    with open(lock_file, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another mlpack process building the same environment")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove(prefix: Path) -> None:
    (prefix / MARKER).unlink(missing_ok=True)  # first: a half-removed env is never "complete"
    if prefix.is_symlink() or prefix.is_file():
        prefix.unlink()
    elif prefix.exists():
        shutil.rmtree(prefix)


def _cached(prefix: Path, started: float) -> PreparedEnv | None:
    try:
        doc = json.loads((prefix / MARKER).read_bytes())
        python = prefix / doc["python"]
        if doc["format"] != _FORMAT or not os.path.exists(python):  # the base Python is gone
            return None
        return PreparedEnv(python=python, prefix=prefix, cached=True,
                           installer=str(doc["installer"]),
                           duration_s=time.perf_counter() - started,
                           skipped=tuple(doc["skipped"]), notes=tuple(doc["notes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _obtain(prefix: Path, build: Callable[[], PreparedEnv], *, refresh: bool,
            say: Progress, started: float) -> PreparedEnv:
    """The complete environment at ``prefix``: reused, or built there under a lock file.

    A venv cannot move once made (its scripts and ``pyvenv.cfg`` hold absolute paths), so it
    is built at its final path; the marker written last makes it usable, and a directory
    without the marker (a crash, a Ctrl-C) is removed and built again.
    """
    if not refresh and (hit := _cached(prefix, started)):
        return hit
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(prefix.with_name(prefix.name + ".lock"), say):
            if not refresh and (hit := _cached(prefix, started)):
                return hit  # another process built it while we waited
            _remove(prefix)
            try:
                env = build()
                marker = {"format": _FORMAT, "installer": env.installer,
                          "python": str(env.python.relative_to(prefix)),
                          "skipped": list(env.skipped), "notes": list(env.notes),
                          "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                atomic_write_bytes(prefix / MARKER, json.dumps(marker, indent=1).encode())
            except BaseException:
                _remove(prefix)
                raise
    except OSError as e:
        raise IOFailure.from_os_error(e, f"cannot build the environment in {prefix}") from None
    return env


def _is_package(path: Path) -> bool:
    return (path / "__init__.py").is_file()


def _add_paths(python: Path, extras: Sequence[Path]) -> None:
    """Put ``extras`` on the environment's ``sys.path`` with a .pth file, after its own
    site-packages (a locked distribution wins over a provided one).

    A package directory (one with ``__init__.py``) is linked alone into ``<prefix>/.extra``,
    so that only that package becomes importable; any other directory is added whole.
    """
    if not extras:
        return
    lines = [str(p) for p in extras if not _is_package(p)]
    if packages := [p for p in extras if _is_package(p)]:
        linked = python.parent.parent / EXTRA
        linked.mkdir()
        for p in packages:
            try:
                (linked / p.name).symlink_to(p, target_is_directory=True)
            except OSError:  # no symbolic links (Windows without the privilege): a copy
                shutil.copytree(p, linked / p.name)
        lines.insert(0, str(linked))
    site = _inst.site_packages(python)
    (site / PTH).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _extras(extra_paths: Sequence[Path]) -> tuple[Path, ...]:
    out = tuple(Path(p).resolve() for p in extra_paths)
    names = [p.name for p in out if _is_package(p)]
    for p in out:
        if not p.is_dir():
            raise UsageError(f"extra path {p} is not a directory", code="E_INPUT",
                             hint="pass Python package directories, or directories that "
                             "hold them")
        if "\n" in str(p):
            raise UsageError(f"extra path {p!r} contains a newline", code="E_INPUT",
                             hint="use another directory")
        if names.count(p.name) > 1 and _is_package(p):
            raise UsageError(f"two extra packages are named {p.name!r}", code="E_INPUT",
                             hint="pass one package directory per name")
    return out


def _provided(extras: Sequence[Path]) -> tuple[str, ...]:
    """``mlpack`` when an extra path provides it (its lock entry then needs no install)."""
    return ("mlpack",) if any((p.name == "mlpack" and _is_package(p))
                              or _is_package(p / "mlpack") for p in extras) else ()


# ----------------------------------------------------------------------------- prepare

def _parsed(lock: bytes) -> Lock:
    return parse_lock(lock) if is_pylock(lock) else parse_requirements(lock)


def _lock_header(lock: bytes) -> tuple[str | None, tuple[str, ...]]:
    """``requires-python`` and ``environments`` of a valid lock (``E_MANIFEST`` otherwise);
    none for a pins file."""
    if not is_pylock(lock):
        return None, ()
    try:
        parse_lock(lock)
    except VerificationError as e:
        raise VerificationError(e.message, code=e.code, member=e.member,
                                hint="the pack's lock is not a PEP 751 1.x lock mlpack can "
                                "read; ask its author for a new pack") from None
    doc = tomllib.loads(lock.decode("utf-8"))
    return doc.get("requires-python"), tuple(doc.get("environments") or ())


def _installer(choice: str | None) -> tuple[str, str | None, list[str]]:
    choice = choice or os.environ.get("MLPACK_INSTALLER") or None
    uv = _inst.uv_binary() if choice != "pip" else None
    if uv is not None and (version := _inst.uv_version(uv)) >= _inst.UV_MIN:
        return "uv", uv, []
    minimum = ".".join(map(str, _inst.UV_MIN))
    why = (f"uv {'.'.join(map(str, version))} at {uv} is older than {minimum} (the first to "
           "read pylock.toml)" if uv is not None else "uv is not installed")
    if choice == "uv":
        raise _inst.env_error(f"uv was asked for: {why}", f"pip install 'uv>={minimum}'")
    return "pip", None, [] if choice == "pip" else [
        f"{why}: the environment was built with pip (slower; pip install 'uv>={minimum}')"]


def prepare(lock: bytes, *, wheelhouse: Path | None = None,
            python: str | os.PathLike[str] | None = None,
            cache_dir: Path | None = None, offline: bool | None = None,
            extra_paths: Sequence[Path] = (), on_progress: Progress | None = None,
            installer: str | None = None, refresh: bool = False) -> PreparedEnv:
    """A virtual environment with exactly the distributions of a PEP 751 lock.

    Args:
        lock: the pack's ``environment/pylock.toml`` (or its pins file
            ``environment/requirements.txt``: versions from the configured index, no hashes).
        wheelhouse: the pack's ``environment/wheelhouse``; its wheels are used (and checked
            against the lock's sha256 and size) instead of the lock's URLs.
        python: the interpreter to build with (a path, a command, or a version such as
            ``3.11``); default: the first of this interpreter, ``python3.X``/``python3`` on
            PATH and pyenv's versions that satisfies the lock's ``requires-python`` and
            ``environments``.
        cache_dir: the cache base (default :func:`cache_root`); environments are kept in its
            ``envs/`` directory.
        offline: no network at all (uv ``--offline``, pip ``--no-index``); default: True
            when a wheelhouse is given.
        extra_paths: made importable in the environment (after its own site-packages): a
            package directory (with ``__init__.py``, e.g. ``Path(mlpack.__file__).parent``)
            alone, any other directory whole. When ``mlpack`` is provided this way, a lock
            entry for ``mlpack`` that is a local directory or VCS install is skipped.
        on_progress: called with a short line before each long step.
        installer: ``uv`` or ``pip`` (default: ``$MLPACK_INSTALLER``, else uv when installed).
        refresh: rebuild even if a complete environment for this lock exists.

    Raises:
        IOFailure: ``E_ENV`` when no interpreter matches, a wheel is missing, an installer
            fails or needs the network offline; ``E_IO``/``E_NOSPACE`` for the cache.
        VerificationError: ``E_DIGEST`` when a wheel differs from its locked sha256;
            ``E_MANIFEST`` for a malformed lock.
        UsageError: ``E_INPUT`` for a ``python`` or extra path that does not exist.
    """
    started = time.perf_counter()
    say = on_progress or (lambda _: None)
    if (choice := installer or os.environ.get("MLPACK_INSTALLER")) and choice not in INSTALLERS:
        raise UsageError(f"installer {choice!r} is not one of {', '.join(INSTALLERS)}",
                         code="E_USAGE", hint="set MLPACK_INSTALLER to uv or pip, or unset it")
    offline = wheelhouse is not None if offline is None else offline
    extras = _extras(extra_paths)
    requires, environments = _lock_header(lock)
    interp = _inst.find_interpreter(requires, environments,
                                    os.fspath(python) if python is not None else None)
    prefix = cache_root(cache_dir) / "envs" / _key(
        "venv", lock, interp.identity, "\n".join(map(str, extras)))
    provided = _provided(extras)

    def build() -> PreparedEnv:
        tool, uv, notes = _installer(installer)
        the_plan = plan(lock, Path(wheelhouse) if wheelhouse is not None else None,
                        vcs_ok=not offline, provided=provided) if is_pylock(lock) \
            else plan_pins(lock)
        count = len(the_plan.requirements) + len(the_plan.vcs)
        say(f"installing {count} packages with {tool} (Python {interp.version}"
            f"{', offline' if offline else ''})")
        with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".tmp-") as tmp:
            if uv is not None:
                failed = _inst.install_uv(uv, interp, prefix, the_plan,
                                          Path(tmp) / "pylock.toml", offline=offline)
            else:
                failed, more = _inst.install_pip(interp, prefix, the_plan,
                                                 Path(tmp) / "requirements.txt", offline=offline)
                notes += more
        env_py = _inst.env_python(prefix)
        _add_paths(env_py, extras)
        skipped = (*the_plan.skipped, *(name for name, _ in failed))
        _check_installed(lock, env_py, skipped)
        return PreparedEnv(python=env_py, prefix=prefix, cached=False, installer=tool,
                           duration_s=time.perf_counter() - started, skipped=skipped,
                           notes=(*the_plan.notes, *(n for _, n in failed), *notes))

    return _obtain(prefix, build, refresh=refresh, say=say, started=started)


def _check_installed(lock: bytes, python: Path, skipped: Sequence[str]) -> None:
    """Whatever the installer did, the environment has the locked versions."""
    wrong = [d for d in compare(_parsed(lock), installed(python))
             if d.change != "added" and d.name not in skipped]
    if wrong:
        what = ", ".join(f"{d.name} {d.installed or 'missing'} (locked {d.locked})"
                         for d in wrong[:5])
        raise _inst.env_error(f"the installed environment differs from the lock: {what}",
                              "report this; set MLPACK_INSTALLER to the other installer")


def check_current(lock: bytes, python: str | os.PathLike[str] | None = None
                  ) -> list[Difference]:
    """How an existing interpreter (default: this one) falls short of a lock, by name.

    Distributions the lock does not name are fine (not listed). Each locked distribution
    that is missing (``removed``) or has another version (``changed``) is listed; when the
    interpreter does not satisfy the lock's ``requires-python`` or ``environments``, a
    ``changed`` entry named ``python`` comes first. ``lock`` may also be the pins file
    ``environment/requirements.txt``.
    """
    exe = os.fspath(python) if python is not None else sys.executable
    out: list[Difference] = []
    parsed = _parsed(lock)
    if is_pylock(lock):
        requires, environments = _lock_header(lock)
        interp = _inst.probe(exe)
        if interp is not None and not _inst.satisfies(interp, requires, environments):
            out.append(Difference(name="python", change="changed", installed=(
                f"{interp.version} ({interp.markers['sys_platform']}, "
                f"{interp.markers['platform_machine']})"), locked="; ".join(
                x for x in (requires, " or ".join(environments)) if x)))
    return out + [d for d in compare(parsed, installed(exe)) if d.change != "added"]


# ----------------------------------------------------------------------------- conda-pack

def _safe(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter (no links or devices pointing outside, no setuid bits), and
    no absolute names at all (the ``data`` filter would strip the leading ``/``)."""
    if member.name.startswith(("/", "\\")) or ".." in PurePosixPath(member.name).parts:
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def _extract(archive: Path, prefix: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(prefix, filter=_safe)
    except tarfile.FilterError as e:
        name = e.tarinfo.name if e.tarinfo is not None else "?"
        raise VerificationError(f"{archive.name}: member {name!r} would be written outside "
                                f"the environment ({type(e).__name__})", code="E_PATH",
                                hint="the conda archive is hostile; do not unpack it by "
                                "other means") from None
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise _inst.env_error(f"{archive.name} is not a readable conda-pack archive: "
                              f"{_inst.one_line(str(e), 200)}",
                              "rebuild the pack's conda archive with conda-pack") from None


def prepare_conda(archive: Path, *, cache_dir: Path | None = None,
                  extra_paths: Sequence[Path] = (), on_progress: Progress | None = None,
                  refresh: bool = False) -> PreparedEnv:
    """The environment of a conda-pack archive (``environment/conda-env.tar.gz``), unpacked
    into the cache (keyed by the archive's sha256) and relocated with its ``conda-unpack``.

    Raises:
        VerificationError: ``E_PATH`` for a member that would land outside the environment.
        IOFailure: ``E_ENV`` for an unreadable archive, one without ``bin/python``, or a
            failing ``conda-unpack``.
        UsageError: ``E_INPUT`` when the archive does not exist.
    """
    started = time.perf_counter()
    say = on_progress or (lambda _: None)
    archive = Path(archive)
    if not archive.is_file():
        raise UsageError(f"conda archive {archive} does not exist", code="E_INPUT",
                         hint="unpack the whole pack, including environment/conda-env.tar.gz")
    extras = _extras(extra_paths)
    prefix = cache_root(cache_dir) / "envs" / ("conda-" + _key(
        "conda", sha256(archive), "\n".join(map(str, extras))))

    def build() -> PreparedEnv:
        say(f"unpacking the conda environment {archive.name}")
        prefix.mkdir()
        _extract(archive, prefix)
        python = _inst.env_python(prefix)
        unpack = prefix / ("Scripts" if os.name == "nt" else "bin") / "conda-unpack"
        if not python.exists():
            raise _inst.env_error(f"{archive.name} holds no Python interpreter "
                                  f"({python.relative_to(prefix)})",
                                  "pack a conda environment that has python installed")
        if unpack.is_file():
            proc = _inst.run_tool([str(python), str(unpack)], "conda-unpack", prefix)
            if proc.returncode != 0:
                raise _inst.env_error(f"conda-unpack failed: {_inst.last_line(proc.stderr)}",
                                      "rebuild the pack's conda archive with conda-pack")
        if _inst.probe(str(python)) is None:
            raise _inst.env_error(f"the Python interpreter of {archive.name} does not run on "
                                  "this machine", "verify on the platform the pack names")
        notes = [] if unpack.is_file() else [
            "the archive has no conda-unpack script: prefixes were not rewritten"]
        _add_paths(python, extras)
        return PreparedEnv(python=python, prefix=prefix, cached=False, installer="conda-pack",
                           duration_s=time.perf_counter() - started, notes=tuple(notes))

    return _obtain(prefix, build, refresh=refresh, say=say, started=started)
