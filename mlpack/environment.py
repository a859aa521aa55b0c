"""The ``environment`` section of mlpack.json (spec/environment.md): the Python environment.

:func:`capture_environment` runs the target interpreter (``python -I``) to list every installed
distribution, then writes a PEP 751 ``pylock.toml`` in which each one is pinned to the exact wheel
(URL and sha256, found by the user's own pip and its configuration) or, for PEP 610 direct-URL
installs, to its VCS commit, local directory or archive. Mode ``wheelhouse`` also packs the wheels
(the lock then names them by relative path, so a rebuild needs no index); mode ``conda-pack``
packs a conda prefix with conda-pack. The lock's records, :func:`parse_lock` and :func:`compare`
(how an environment differs from a lock) live in :mod:`mlpack.pylock` and are re-exported here.

    >>> lock = parse_lock(b'lock-version = "1.0"\\ncreated-by = "x"\\n[[packages]]\\n'
    ...                   b'name = "six"\\nversion = "1.17.0"\\ndirectory = { path = "/s" }\\n')
    >>> [(d.name, d.change) for d in compare(lock, {"six": "1.16.0", "numpy": "2.4.6"})]
    [('numpy', 'added'), ('six', 'changed')]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .capture import Captured
from .digest import sha256_file
from .errors import IOFailure, UsageError
from .hardware import NUMERICS_ENV
from .pack import Source
from .pylock import (  # re-exported: the lock's records and helpers are part of this module's API
    LOCK_MEMBER,
    CondaInfo,
    CondaPackage,
    Difference,
    Distribution,
    EnvironmentSection,
    Interpreter,
    LocalInstall,
    Lock,
    LockedArchive,
    LockedDirectory,
    LockedFile,
    LockedPackage,
    LockedVcs,
    _capture_error,
    _conda_url,
    _file_path,
    _last_line,
    _public_url,
    _wheel_tags,
    compare,
    normalize,
    parse_lock,
    parse_requirements,
    render_lock,
)

__all__ = ["MODES", "CondaPackage", "Difference", "Distribution", "EnvironmentSection",
           "Interpreter", "LocalInstall", "Lock", "LockedArchive", "LockedDirectory", "LockedFile",
           "LockedPackage", "LockedVcs",
           "capture_environment", "compare", "installed", "introspect", "normalize", "parse_lock",
           "parse_requirements", "render_lock"]

MODES = ("lock", "wheelhouse", "conda-pack", "none")
REQUIREMENTS_MEMBER = "environment/requirements.txt"
WHEELHOUSE = "environment/wheelhouse"
CONDA_ARCHIVE = "environment/conda-env.tar.gz"
CONDA_EXPLICIT = "environment/conda-explicit.txt"
PIP_MIN = (22, 2)  # --dry-run and --report
PIP_PYTHON_MIN = (22, 3)  # --python
PIP_CHUNK = 25  # pins per pip process; pip's candidate search is CPU-bound and serial
NOT_CAPTURED = ("the Python environment was not captured ([environment] mode = \"none\"): a "
                "rebuild must recreate it by hand")

# Runs in the target interpreter (any CPython/PyPy >= 3.8): one JSON line on stdout.
_PROBE = r"""
import json, os, platform, re, site, sys, sysconfig
from importlib import metadata, util

def tag():
    for mod in ("packaging.tags", "pip._vendor.packaging.tags"):
        try:
            tags = list(__import__(mod, fromlist=["sys_tags"]).sys_tags())
        except Exception:
            continue
        # the first interpreter/ABI pair; a manylinux/musllinux platform over bare linux_*
        same = [t for t in tags if (t.interpreter, t.abi) == (tags[0].interpreter, tags[0].abi)]
        return str(next((t for t in same if not t.platform.startswith("linux_")), tags[0]))
    name = sys.implementation.name
    interp = {"cpython": "cp", "pypy": "pp"}.get(name, name) + "%d%d" % sys.version_info[:2]
    abi = (sysconfig.get_config_var("SOABI") or "").split("-")[0]
    abi = interp + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "") \
        if name == "cpython" or not abi else abi.replace(".", "_")
    plat = re.sub(r"[-.]", "_", sysconfig.get_platform())
    libc = platform.libc_ver()
    if plat.startswith("linux_") and libc[0] == "glibc" and re.match(r"\d+\.\d+", libc[1]):
        plat = "manylinux_%s_%s_%s" % (tuple(libc[1].split(".")[:2]) + (plat[6:],))
    return "%s-%s-%s" % (interp, abi, plat)

roots = set()
for key in ("purelib", "platlib"):
    roots.add(os.path.realpath(sysconfig.get_paths()[key]))
try:
    roots.update(os.path.realpath(p) for p in site.getsitepackages())
except Exception:
    pass
dists, seen = [], set()
for d in metadata.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        continue
    seen.add(key)
    where = getattr(d, "_path", None)
    du = d.read_text("direct_url.json")
    try:
        du = json.loads(du) if du else None
    except ValueError:
        du = {"invalid": True}
    wheel = d.read_text("WHEEL") or ""
    dists.append({
        "name": name, "version": d.version, "direct_url": du,
        "tags": [ln.split(":", 1)[1].strip() for ln in wheel.splitlines()
                 if ln.startswith("Tag:")],
        "installer": (d.read_text("INSTALLER") or "").strip() or None,
        "location": str(where.parent) if where is not None else None,
        "outside": where is not None and os.path.realpath(str(where.parent)) not in roots,
    })
libc = platform.libc_ver()
print(json.dumps({
    "version": platform.python_version(), "implementation": platform.python_implementation(),
    "tag": tag(), "sys_platform": sys.platform, "machine": platform.machine(),
    "libc": "%s %s" % libc if libc[0] and libc[1] else None, "prefix": sys.prefix,
    "pip": util.find_spec("pip") is not None, "distributions": dists}))
"""


# ----------------------------------------------------------------------------- introspection

def _executable(python: str | os.PathLike[str] | None) -> str:
    # Not resolved: a venv's bin/python is a symlink whose own path selects the venv.
    exe = os.path.abspath(os.fspath(python)) if python is not None else sys.executable
    if not exe or not os.path.exists(exe):
        raise UsageError(f"Python interpreter {exe or '(unknown)'} does not exist",
                         code="E_INPUT", hint="set [environment] python to an existing "
                         "interpreter, e.g. .venv/bin/python")
    if not os.path.isfile(exe) or not os.access(exe, os.X_OK):
        raise UsageError(f"Python interpreter {exe} is not an executable file", code="E_INPUT",
                         hint="point [environment] python at the interpreter itself")
    return exe


def introspect(python: str | os.PathLike[str] | None = None) -> Interpreter:
    """Ask the interpreter (``None``: this one) about itself and its distributions.

    Runs ``python -I`` (no ``PYTHONPATH``, no user site, not the current directory), so what
    is listed is what the interpreter imports by default. The first of several copies of a
    distribution on ``sys.path`` wins, as it does for imports.

    Raises:
        UsageError: ``E_INPUT`` if the path is missing, not executable or not a Python 3.
    """
    exe = _executable(python)
    try:
        proc = subprocess.run([exe, "-I", "-c", _PROBE], capture_output=True, check=False,
                              encoding="utf-8", errors="replace", stdin=subprocess.DEVNULL)
    except OSError as e:
        raise UsageError(f"cannot run the Python interpreter {exe}: {e.strerror or e}",
                         code="E_INPUT", hint="check the interpreter path") from None
    out = proc.stdout.strip().splitlines()
    try:
        doc = json.loads(out[-1]) if proc.returncode == 0 and out else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise UsageError(f"{exe} is not a working Python 3 interpreter: "
                         f"{_last_line(proc.stderr)}", code="E_INPUT",
                         hint="point [environment] python at a Python 3.8+ interpreter")
    return Interpreter(
        executable=exe, version=doc["version"], implementation=doc["implementation"],
        tag=doc["tag"], sys_platform=doc["sys_platform"], machine=doc["machine"],
        libc=doc["libc"], prefix=doc["prefix"], has_pip=doc["pip"],
        distributions=tuple(Distribution(
            name=d["name"], version=d["version"], direct_url=d["direct_url"],
            tags=tuple(d["tags"]), installer=d["installer"], location=d["location"],
            outside=bool(d["outside"]) and d["direct_url"] is None)
            for d in doc["distributions"]))


def installed(python: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Normalized name -> version of every distribution the interpreter sees."""
    return {d.key: d.version for d in introspect(python).distributions}


# ----------------------------------------------------------------------------- locking

def _direct(d: Distribution) -> tuple[LockedPackage, LocalInstall]:
    """The lock entry and section record of a PEP 610 direct-URL (or legacy develop) install."""
    du: Mapping[str, Any] = d.direct_url or {}
    url, vcs, info = du.get("url"), du.get("vcs_info"), du.get("dir_info")
    sub = du.get("subdirectory") if isinstance(du.get("subdirectory"), str) else None
    source: dict[str, Any]
    if d.outside:  # egg-link / setup.py develop: the metadata sits in the source tree
        path = d.location or ""
        source = {"directory": LockedDirectory(path=path, editable=True)}
        rec = LocalInstall(name=d.key, version=d.version, kind="editable", path=path)
    elif not isinstance(url, str) or (vcs is not None and not (
            isinstance(vcs, dict) and isinstance(vcs.get("vcs"), str)
            and isinstance(vcs.get("commit_id"), str))) or not (
            isinstance(vcs, dict) or isinstance(info, dict)
            or isinstance(du.get("archive_info"), dict)):
        raise _capture_error(f"{d.name} {d.version}: its direct_url.json (PEP 610) is malformed",
                             f"reinstall {d.name}, or set [environment] mode = \"none\"")
    elif isinstance(vcs, dict):
        revision = vcs.get("requested_revision")
        v = LockedVcs(type=vcs["vcs"], url=_public_url(url), commit_id=vcs["commit_id"],
                      requested_revision=revision if isinstance(revision, str) else None,
                      subdirectory=sub)
        source = {"vcs": v}
        rec = LocalInstall(name=d.key, version=d.version, kind="vcs", vcs=v.type, url=v.url,
                           commit=v.commit_id, requested_revision=v.requested_revision)
    elif isinstance(info, dict):
        path = _file_path(url) or url
        editable = info.get("editable") is True
        source = {"directory": LockedDirectory(path=path, editable=editable or None,
                                               subdirectory=sub)}
        rec = LocalInstall(name=d.key, version=d.version, path=path,
                           kind="editable" if editable else "directory")
    else:
        source, rec = _direct_archive(d, url, du["archive_info"], sub)
    return LockedPackage(name=d.key, installed_version=d.version, **source), rec


def _direct_archive(d: Distribution, url: str, info: Mapping[str, Any], sub: str | None
                    ) -> tuple[dict[str, Any], LocalInstall]:
    hashes = {k: v for k, v in (info.get("hashes") or {}).items() if isinstance(v, str)}
    algo, _, value = str(info.get("hash") or "").partition("=")  # PEP 610's older single hash
    if value and algo not in hashes:
        hashes[algo] = value
    local = _file_path(url)
    if "sha256" not in hashes and local and os.path.isfile(local):
        hashes["sha256"] = sha256_file(local)
    public = _public_url(url)
    if "sha256" not in hashes:
        raise _capture_error(
            f"{d.name} {d.version} was installed from {public} with no recorded sha256, so it "
            "cannot be locked", f"reinstall {d.name} from an index or with a hash, or set "
            "[environment] mode = \"none\"")
    return ({"archive": LockedArchive(url=public, hashes=hashes, subdirectory=sub)},
            LocalInstall(name=d.key, version=d.version, kind="archive", url=public,
                         sha256=hashes["sha256"]))


def _version(text: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text or "")[:3]) or (0,)


def _pip_command(interp: Interpreter) -> list[str]:
    """The newer of the target's pip and this interpreter's (run with ``--python``).

    Both read the same configuration (pip.conf files, including the target's
    ``<prefix>/pip.conf``, and ``PIP_*`` variables); newer pips search an index much faster
    (114 pins: 4.8 s with pip 26.3, 11.4 s with pip 23.2).
    """
    from importlib import metadata

    target = next((d.version for d in interp.distributions if d.key == "pip"), None)
    target_ok = interp.has_pip and _version(target) >= PIP_MIN
    try:
        own: str | None = metadata.version("pip")
    except metadata.PackageNotFoundError:
        own = None
    own_ok = own is not None and _version(own) >= PIP_PYTHON_MIN
    if target_ok and not (own_ok and _version(own) > _version(target)):
        return [interp.executable, "-I", "-m", "pip"]
    if own_ok:
        return [sys.executable, "-I", "-m", "pip", "--python", interp.executable]
    raise _capture_error(f"no pip >= 22.3 to lock {interp.executable} with",
                         f"install pip in that environment ({interp.executable} -m ensurepip), "
                         "or set [environment] mode = \"none\"")


def _pip_env() -> dict[str, str]:
    # The user's pip configuration (files and PIP_* variables) stays in force, except a
    # PIP_PYTHON that would make pip look at another interpreter than the one captured.
    env = {k: v for k, v in os.environ.items() if k != "PIP_PYTHON"}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _pip_failure(stderr: str) -> IOFailure:
    line = _last_line(stderr)
    if m := re.search(r"(?:No matching distribution found for|satisfies the requirement) "
                      r"(\S+)", line):
        return _capture_error(
            f"pip found no wheel of {m.group(1)} on the configured indexes ({line})",
            "make the wheel available (pip download it to a --find-links directory), or set "
            "[environment] mode = \"none\" in mlpack.toml")
    return _capture_error(f"pip failed: {line}", "check the pip configuration and network, "
                          "then retry, or set [environment] mode = \"none\" in mlpack.toml")


def _run_pip(pip: list[str], jobs: Sequence[list[str]]) -> list[str]:
    """Run the pip invocations concurrently; their stdouts, or the first failure."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for args in jobs:
            procs.append(subprocess.Popen(
                [*pip, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, encoding="utf-8", errors="replace", env=_pip_env()))
        results = [p.communicate() for p in procs]
    except OSError as e:
        raise _capture_error(f"cannot run pip: {e.strerror or e}",
                             "check that pip can be run, or set [environment] mode = \"none\"") \
            from None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, results, strict=True):
        if p.returncode != 0:
            raise _pip_failure(err)
    return [out for out, _ in results]


def _find_wheels(pip: list[str], pins: Mapping[str, Distribution],
                 scratch: Path) -> dict[str, tuple[str, str]]:
    """normalized name -> (wheel URL, sha256) of the exact wheels pip would install."""
    names = sorted(pins)
    n = max(1, min(os.cpu_count() or 1, 4, -(-len(names) // PIP_CHUNK)))
    jobs = []
    for i in range(n):
        req = scratch / f"pins-{i}.txt"
        req.write_text("".join(f"{pins[k].name}=={pins[k].version}\n" for k in names[i::n]),
                       encoding="utf-8")
        # a wheel whenever that exact version has one; else its sdist (locked as such)
        jobs.append(["install", "--dry-run", "--ignore-installed", "--no-deps", "--prefer-binary",
                     "--quiet", "--report", "-", "-r", str(req)])
    found: dict[str, tuple[str, str]] = {}
    for out in _run_pip(pip, jobs) if names else []:
        try:
            items = json.loads(out)["install"]
        except (ValueError, KeyError, TypeError):
            raise _capture_error("pip's installation report is not readable JSON",
                                 "upgrade pip in the environment, then retry") from None
        for item in items:
            info = item.get("download_info") or {}
            archive = info.get("archive_info") or {}
            sha = (archive.get("hashes") or {}).get("sha256")
            if sha is None and str(archive.get("hash", "")).startswith("sha256="):
                sha = archive["hash"][7:]
            name = normalize(item["metadata"]["name"])
            if not sha or not info.get("url"):
                raise _capture_error(f"pip reported no sha256 for the wheel of {name}",
                                     "upgrade pip in the environment, then retry")
            found[name] = (info["url"], sha)
    if missing := sorted(set(names) - set(found)):
        raise _capture_error(f"pip reported no wheel for {', '.join(missing)}",
                             "upgrade pip in the environment, then retry")
    return found


def _cache_path() -> Path | None:
    """The wheel-hash cache (``$MLPACK_CACHE_DIR`` or ``$XDG_CACHE_HOME/mlpack``); None when
    ``MLPACK_NO_CACHE`` is set."""
    if os.environ.get("MLPACK_NO_CACHE"):
        return None
    base = os.environ.get("MLPACK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlpack")
    return Path(base) / "wheel-hashes.json"


def _cache_key(interp: Interpreter, d: Distribution) -> str:
    return f"{interp.tag}|{d.key}=={d.version}|{','.join(sorted(d.tags))}"


def _read_cache() -> dict[str, list[str]]:
    path = _cache_path()
    try:
        data = json.loads(path.read_bytes()) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cached_wheels(interp: Interpreter, pins: Mapping[str, Distribution]) -> dict[str, tuple[str, str]]:
    """The (URL, sha256) pip found earlier for the same interpreter tag, version and build.

    pip takes seconds to search an index for a hundred pins; what it found for an exact
    version of a wheel does not change, so later builds reuse it. A ``file:`` wheel is
    reused only while that file still exists.
    """
    cache = _read_cache()
    out = {}
    for key, d in pins.items():
        hit = cache.get(_cache_key(interp, d))
        if (isinstance(hit, list) and len(hit) == 2 and all(isinstance(x, str) for x in hit)
                and re.fullmatch(r"[0-9a-f]{64}", hit[1])):
            local = _file_path(hit[0])
            if local is None or os.path.isfile(local):
                out[key] = (hit[0], hit[1])
    return out


def _remember_wheels(interp: Interpreter, pins: Mapping[str, Distribution],
                     found: Mapping[str, tuple[str, str]]) -> None:
    path = _cache_path()
    if path is None or not found:
        return
    cache = _read_cache()
    cache.update({_cache_key(interp, pins[k]): list(v) for k, v in found.items() if k in pins})
    try:  # best effort: a cache that cannot be written only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def _download(pip: list[str], wheels: Mapping[str, LockedFile], scratch: Path) -> Path:
    """Fetch each locked wheel (by its exact URL) into scratch/wheelhouse; check sha256."""
    house = scratch / "wheelhouse"
    house.mkdir(parents=True, exist_ok=True)
    req = scratch / "wheelhouse.txt"
    req.write_text("".join(f"{k} @ {w.url}\n" for k, w in sorted(wheels.items())),
                   encoding="utf-8")
    if wheels:
        _run_pip(pip, [["download", "--no-deps", "--quiet", "-d", str(house), "-r", str(req)]])
    for w in wheels.values():
        got = house / w.filename
        if not got.is_file():
            raise _capture_error(f"pip download did not produce {w.filename}",
                                 "retry, or use mode = \"lock\"")
        if (sha := sha256_file(got)) != w.hashes["sha256"]:
            raise _capture_error(f"{w.filename}: sha256 {sha} differs from the locked "
                                 f"{w.hashes['sha256']}", "the index serves a different file "
                                 "under the same name; retry, or use mode = \"lock\"")
    return house


# ----------------------------------------------------------------------------- conda

def _conda_note(message: str) -> str:
    """One line for a conda-pack warning (its own text lists URLs, which may hold tokens)."""
    if "without entries in the package cache" in message:
        names = re.findall(r"^- ([^=\s]+)=", message, re.MULTILINE)
        return (f"conda-pack: {len(names)} conda packages have no package-cache entry and were "
                f"packed as plain files (prefix rewriting is less robust): {', '.join(names)}")
    first = message.strip().split("\n\n")[0]
    return "conda-pack: " + " ".join(_public_url(w) for w in first.split())


def _conda(prefix: Path, scratch: Path) -> tuple[CondaInfo, list[Source], list[str]]:
    """Pack the conda prefix with conda-pack; list its packages from conda-meta/*.json."""
    packages, explicit = [], ["# conda packages of the environment (conda list --explicit --md5)",
                              "# rebuild: conda create --name ENV --file conda-explicit.txt",
                              "@EXPLICIT"]
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            name, version = str(rec["name"]), str(rec["version"])
        except (OSError, ValueError, KeyError, TypeError):
            raise _capture_error(f"{path}: not a readable conda-meta record",
                                 "repair the conda environment (conda install --force-reinstall)"
                                 ) from None
        channel = rec.get("channel")
        packages.append(CondaPackage(
            name=name, version=version, build=str(rec.get("build") or rec.get("build_string")),
            channel=_conda_url(channel) if isinstance(channel, str) and channel else None))
        if isinstance(url := rec.get("url"), str) and url:
            explicit.append(_conda_url(url) + (f"#{rec['md5']}" if rec.get("md5") else ""))
    try:
        import conda_pack  # type: ignore[import-untyped]
    except ImportError:
        raise _capture_error("mode \"conda-pack\" needs the conda-pack package",
                             "pip install conda-pack, or set [environment] mode = \"lock\"") \
            from None
    archive = scratch / "conda-env.tar.gz"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # Editable installs are recorded in the lock and the notes; conda-pack refuses
            # them unless told to leave them out.
            conda_pack.pack(prefix=str(prefix), output=str(archive), force=True,
                            ignore_editable_packages=True, verbose=False)
        except (conda_pack.CondaPackException, OSError) as e:
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise _capture_error(f"conda-pack failed: {first.strip()}",
                                 "repair the conda environment, or set [environment] mode = "
                                 "\"lock\"") from None
    notes = [_conda_note(str(w.message)) for w in caught]
    info = CondaInfo(archive=CONDA_ARCHIVE, explicit=CONDA_EXPLICIT, packages=tuple(packages))
    files = [Source(name=CONDA_ARCHIVE, path=archive),
             Source(name=CONDA_EXPLICIT, data=("\n".join(explicit) + "\n").encode("utf-8"))]
    return info, files, notes


# ----------------------------------------------------------------------------- capture

def _local_note(rec: LocalInstall, wheelhouse: bool) -> str:
    where = {"editable": f"the local directory {rec.path} (editable)",
             "directory": f"the local directory {rec.path}",
             "vcs": f"{rec.vcs} {rec.url} at {rec.commit}",
             "archive": f"{rec.url}"}[rec.kind]
    extra = "; it is not in the wheelhouse" if wheelhouse else ""
    return f"{rec.name} {rec.version} is installed from {where}: a rebuild needs it{extra}"


def _requirements(entries: Sequence[LockedPackage]) -> bytes:
    lines = ["# Exact pins of the environment, written by mlpack without querying a package",
             "# index (no hashes): a rebuild resolves these names and versions itself."]
    for p in entries:
        if p.vcs is not None:
            ref = f"{p.vcs.type}+{p.vcs.url}@{p.vcs.commit_id}"
        elif p.directory is not None:
            ref = Path(p.directory.path).as_uri() if os.path.isabs(p.directory.path) \
                else p.directory.path
        elif p.archive is not None:
            ref = p.archive.url or ""
        else:
            lines.append(f"{p.name}=={p.version}")
            continue
        lines.append(f"{p.name} @ {ref}  # {p.kind} install of version {p.installed_version}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _marker(interp: Interpreter) -> str:
    """The PEP 508 environment the lock is for (its wheels are for this platform)."""
    return (f"sys_platform == '{interp.sys_platform}' and platform_machine == "
            f"'{interp.machine}' and implementation_name == '{interp.implementation.lower()}'")


def capture_environment(python: str | os.PathLike[str] | None = None, *, mode: str = "lock",
                        workdir: Path, index_check: bool = True) -> Captured:
    """Capture the environment of ``python`` (``None``: this interpreter) for a pack.

    Args:
        python: the interpreter whose distributions are locked.
        mode: ``lock`` (PEP 751 lock), ``wheelhouse`` (lock plus the wheels themselves),
            ``conda-pack`` (lock plus a conda-pack archive of the conda prefix) or ``none``.
        workdir: a scratch directory; downloaded wheels and archives are written under
            ``workdir/environment`` and packed from there.
        index_check: ask pip for the exact wheel (URL and sha256) of every index-installed
            distribution. Without it the lock is ``environment/requirements.txt``: exact
            ``name==version`` pins and no hashes (not allowed with ``wheelhouse``).

    Returns:
        The section, the pack files (``environment/...``) and notes: every local, editable
        or VCS install, wheels locked to this machine's files, installed builds that differ
        from the locked wheel.

    Raises:
        UsageError: ``E_RECIPE`` for an unknown mode, ``E_INPUT`` for a missing or broken
            interpreter or ``conda-pack`` outside a conda environment, ``E_USAGE`` for
            ``wheelhouse`` without ``index_check``.
        IOFailure: ``E_CAPTURE`` when pip fails or finds no exact wheel.
    """
    if mode not in MODES:
        raise UsageError(f"[environment] mode = {mode!r} is not a capture mode",
                         code="E_RECIPE", hint=f"use one of {', '.join(map(repr, MODES))}")
    if mode == "wheelhouse" and not index_check:
        raise UsageError("mode \"wheelhouse\" needs the package index to find the wheels",
                         code="E_USAGE", hint="allow the index check, or use mode \"lock\"")
    interp = introspect(python)
    section: dict[str, Any] = {
        "mode": mode,
        "python": {"version": interp.version, "implementation": interp.implementation,
                   "tag": interp.tag},
        "platform": {k: v for k, v in (("sys_platform", interp.sys_platform),
                                       ("machine", interp.machine), ("libc", interp.libc)) if v},
        "variables": {k: os.environ[k] for k in NUMERICS_ENV if k in os.environ},
    }
    if mode == "none":
        return Captured(section=section, notes=(NOT_CAPTURED,))
    prefix = Path(interp.prefix)
    if mode == "conda-pack" and not (prefix / "conda-meta").is_dir():
        raise UsageError(f"{prefix} is not a conda environment (it has no conda-meta directory)",
                         code="E_INPUT", hint="run the capture with the conda environment's "
                         "python, or set [environment] mode = \"lock\"")
    scratch = workdir / "environment"
    scratch.mkdir(parents=True, exist_ok=True)
    entries: list[LockedPackage] = []
    local: list[LocalInstall] = []
    pins: dict[str, Distribution] = {}
    for d in sorted(interp.distributions, key=lambda d: d.key):
        if mode == "conda-pack" and d.installer == "conda":
            continue  # in the conda archive and the conda package list
        if d.direct_url is not None or d.outside:
            entry, rec = _direct(d)
            entries.append(entry)
            local.append(rec)
        else:
            pins[d.key] = d
    notes = [_local_note(rec, mode == "wheelhouse") for rec in local]
    files: list[Source] = []
    if not index_check:
        entries += [LockedPackage(name=k, version=d.version) for k, d in pins.items()]
        entries.sort(key=lambda p: p.name)
        files.append(Source(name=REQUIREMENTS_MEMBER, data=_requirements(entries)))
        section["lock"] = REQUIREMENTS_MEMBER
        notes.append("the environment was pinned by name and version only (no package index "
                     "was asked for wheel hashes)")
    else:
        pip = _pip_command(interp) if mode == "wheelhouse" or pins else []
        known = _cached_wheels(interp, pins)
        todo = {k: d for k, d in pins.items() if k not in known}
        found = _find_wheels(pip or _pip_command(interp), todo, scratch) if todo else {}
        _remember_wheels(interp, pins, found)
        wheels: dict[str, LockedFile] = {}
        sdists: dict[str, LockedFile] = {}
        for key, (url, sha) in sorted({**known, **found}.items()):
            name = unquote(urlsplit(url).path).rsplit("/")[-1]
            if not name.endswith(".whl"):
                sdists[key] = LockedFile(name=name, url=_public_url(url), hashes={"sha256": sha})
                notes.append(f"{key} {pins[key].version} has no wheel on the index: locked as its source "
                             f"distribution {name} (a rebuild builds it)")
                continue
            wheels[key] = LockedFile(name=name, url=_public_url(url), hashes={"sha256": sha})
            built = set(pins[key].tags)
            if built and not built & _wheel_tags(name):
                notes.append(f"{key} {pins[key].version}: the installed build "
                             f"({', '.join(sorted(built))}) is not the locked wheel {name}")
        if mode == "wheelhouse":
            house = _download(pip, {**wheels, **sdists}, scratch)
            for table in (wheels, sdists):
                for key, w in list(table.items()):
                    table[key] = LockedFile(name=w.name, url=w.url, path=f"wheelhouse/{w.filename}",
                                            size=(house / w.filename).stat().st_size, hashes=w.hashes)
                    files.append(Source(name=f"{WHEELHOUSE}/{w.filename}", path=house / w.filename))
            section["wheelhouse"] = WHEELHOUSE
        elif on_disk := sorted(k for k, w in wheels.items() if (w.url or "").startswith("file:")):
            notes.append(f"{len(on_disk)} wheels are locked to files on this machine (file:// "
                         f"URLs: {', '.join(on_disk[:5])}{', ...' if len(on_disk) > 5 else ''}): "
                         "a rebuild elsewhere needs them; mode = \"wheelhouse\" packs them")
        entries += [LockedPackage(name=k, version=pins[k].version, wheels=(w,))
                    for k, w in wheels.items()]
        entries += [LockedPackage(name=k, version=pins[k].version, sdist=w) for k, w in sdists.items()]
        entries.sort(key=lambda p: p.name)
        major, minor = interp.version.split(".")[:2]
        lock = Lock(
            requires_python=f"=={major}.{minor}.*",
            environments=(_marker(interp),),
            packages=tuple(entries))
        files.insert(0, Source(name=LOCK_MEMBER, data=render_lock(lock)))
        section["lock"] = LOCK_MEMBER
    section["packages"] = len(entries)
    if local:
        section["local"] = [rec.to_dict() for rec in local]
    if mode == "conda-pack":
        info, conda_files, conda_notes = _conda(prefix, scratch)
        section["conda"] = info.to_dict()
        files += conda_files
        notes += conda_notes
    # key order of the section as documented
    order = ("mode", "python", "platform", "lock", "packages", "local", "variables",
             "wheelhouse", "conda")
    return Captured(section={k: section[k] for k in order if k in section},
                    files=tuple(files), notes=tuple(notes))
