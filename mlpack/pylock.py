"""PEP 751 ``pylock.toml`` and the ``environment`` section's records (spec/environment.md).

Pure: frozen records for a lock (:class:`Lock`, :class:`LockedPackage` and its sources) and
for the section, parsed with the strict codec of :mod:`mlpack._records`; :func:`parse_lock`
and :func:`render_lock` (writing then reading gives the same bytes), the pins file of mode
``lock`` without an index, and :func:`compare` of a lock with installed distributions.
:mod:`mlpack.environment` captures, :mod:`mlpack.envbuild` rebuilds.

    >>> lock = parse_lock(b'lock-version = "1.0"\\ncreated-by = "x"\\n[[packages]]\\n'
    ...                   b'name = "six"\\nversion = "1.17.0"\\ndirectory = { path = "/s" }\\n')
    >>> [(d.name, d.change) for d in compare(lock, {"six": "1.16.0", "numpy": "2.4.6"})]
    [('numpy', 'added'), ('six', 'changed')]
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from ._records import Codec, Record
from .errors import IOFailure, VerificationError

LOCK_MEMBER = "environment/pylock.toml"
CREATED_BY = "mlpack"
Change = Literal["added", "removed", "changed"]
SourceKind = Literal["wheels", "sdist", "vcs", "directory", "archive", "pin"]

# ----------------------------------------------------------------------------- records

def _err(path: str, why: str, member: str) -> VerificationError:
    return VerificationError(f"{member}: {path} {why}", code="E_MANIFEST", member=member)


def _value(v: Any, kind: str, path: str, member: str) -> Any:
    """One value checked against a field annotation of this module (strict types)."""
    return _CODEC.value(v, kind, path, member)


def _get(d: Mapping[str, Any], key: str, kind: str, where: str, member: str) -> Any:
    """A required value, type-checked; the key path names it when it is absent or wrong."""
    path = f"{where}.{key}" if where else key
    if key not in d:
        raise _err(path, "is required", member)
    return _value(d[key], kind, path, member)


class _Record(Record):
    """A record of this module; decoded by its codec (mlpack/_records.py)."""

    __slots__ = ()
    _where: ClassVar[str] = "environment"


@dataclass(frozen=True, kw_only=True, slots=True)
class Distribution:
    """One installed distribution as the target interpreter sees it."""

    name: str
    version: str
    direct_url: Mapping[str, Any] | None = None
    """PEP 610 ``direct_url.json``, when the distribution was installed from a direct URL."""
    tags: tuple[str, ...] = ()
    """The ``Tag:`` lines of the dist-info ``WHEEL`` file (empty for egg-info)."""
    installer: str | None = None
    location: str | None = None
    outside: bool = False
    """True when the metadata lives outside site-packages (a legacy ``setup.py develop``)."""

    @property
    def key(self) -> str:
        return normalize(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class Interpreter:
    """What :func:`introspect` learns about a Python interpreter."""

    executable: str
    version: str
    implementation: str
    tag: str
    sys_platform: str
    machine: str
    libc: str | None
    prefix: str
    has_pip: bool
    distributions: tuple[Distribution, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedFile(_Record):
    """A wheel, sdist or archive of a lock entry."""

    name: str | None = None
    url: str | None = None
    path: str | None = None
    size: int | None = None
    hashes: Mapping[str, str]

    @property
    def filename(self) -> str:
        return self.name or (self.path or unquote(urlsplit(self.url or "").path)).rsplit("/")[-1]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedVcs(_Record):
    """``[packages.vcs]``: a VCS checkout at an exact commit."""

    type: str
    url: str | None = None
    path: str | None = None
    requested_revision: str | None = None
    commit_id: str
    subdirectory: str | None = None
    _keys: ClassVar[dict[str, str]] = {"requested_revision": "requested-revision",
                                       "commit_id": "commit-id"}


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedDirectory(_Record):
    """``[packages.directory]``: a local source tree, possibly installed editable."""

    path: str
    editable: bool | None = None
    subdirectory: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedArchive(_Record):
    """``[packages.archive]``: a direct URL or path to a wheel or sdist, with its hashes."""

    url: str | None = None
    path: str | None = None
    size: int | None = None
    hashes: Mapping[str, str]
    subdirectory: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedPackage:
    """One ``[[packages]]`` entry of a PEP 751 lock (the fields mlpack reads and writes)."""

    name: str
    version: str | None = None
    """Absent for direct-URL entries (PEP 751: a source tree's version is not guaranteed)."""
    wheels: tuple[LockedFile, ...] = ()
    sdist: LockedFile | None = None
    vcs: LockedVcs | None = None
    directory: LockedDirectory | None = None
    archive: LockedArchive | None = None
    installed_version: str | None = None
    """``[packages.tool.mlpack] installed-version``: the version that was installed."""

    @property
    def kind(self) -> SourceKind:
        return ("wheels" if self.wheels else "sdist" if self.sdist else "vcs" if self.vcs
                else "directory" if self.directory else "archive" if self.archive else "pin")

    @property
    def recorded_version(self) -> str | None:
        return self.version or self.installed_version

    @classmethod
    def from_dict(cls, d: object, where: str, member: str) -> LockedPackage:
        if not isinstance(d, dict):
            raise _err(where, "must be a table", member)
        name = _get(d, "name", "str", where, member)
        if name != normalize(name):
            raise _err(f"{where}.name", f"{name!r} is not a normalized name", member)
        kw: dict[str, Any] = {"name": name}
        if "version" in d:
            kw["version"] = _value(d["version"], "str", f"{where}.version", member)
        for key, rec in (("sdist", LockedFile), ("vcs", LockedVcs), ("directory", LockedDirectory),
                         ("archive", LockedArchive)):
            if key in d:
                kw[key] = rec.from_dict(d[key], f"{where}.{key}", member)
        if "wheels" in d:
            kw["wheels"] = _value(d["wheels"], "tuple[LockedFile, ...]", f"{where}.wheels",
                                  member)
        tool = d.get("tool", {}).get("mlpack", {}) if isinstance(d.get("tool"), dict) else {}
        if isinstance(tool, dict) and "installed-version" in tool:
            kw["installed_version"] = _value(tool["installed-version"], "str",
                                             f"{where}.tool.mlpack.installed-version", member)
        pkg = cls(**kw)
        dists = bool(pkg.wheels) + bool(pkg.sdist)
        direct = bool(pkg.vcs) + bool(pkg.directory) + bool(pkg.archive)
        if (dists and direct) or (not dists and direct != 1):
            raise _err(where, "must have wheels/sdist, or exactly one of vcs, directory, "
                       "archive", member)
        files: list[tuple[str, LockedFile | LockedArchive]] = [
            *((f"{where}.wheels[{i}]", w) for i, w in enumerate(pkg.wheels)),
            *(((f"{where}.sdist", pkg.sdist),) if pkg.sdist else ()),
            *(((f"{where}.archive", pkg.archive),) if pkg.archive else ())]
        for path, f in files:
            if f.url is None and f.path is None:
                raise _err(path, "needs a url or a path", member)
            if not f.hashes:
                raise _err(f"{path}.hashes", "needs at least one hash", member)
        return pkg

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            out["version"] = self.version
        for key in ("vcs", "directory", "archive", "sdist"):
            if (rec := getattr(self, key)) is not None:
                out[key] = rec.to_dict()
        if self.wheels:
            out["wheels"] = [w.to_dict() for w in self.wheels]
        if self.installed_version is not None:
            out["tool"] = {"mlpack": {"installed-version": self.installed_version}}
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Lock:
    """A PEP 751 lock file (``pylock.toml``), reduced to what mlpack uses."""

    lock_version: str = "1.0"
    created_by: str = CREATED_BY
    requires_python: str | None = None
    environments: tuple[str, ...] = ()
    packages: tuple[LockedPackage, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], member: str = LOCK_MEMBER) -> Lock:
        version = _get(d, "lock-version", "str", "", member)
        if not re.fullmatch(r"1(\.\d+)?", version):
            raise _err("lock-version", f"{version!r} is not supported (1.x is)", member)
        packages = d.get("packages")
        if not isinstance(packages, list):
            raise _err("packages", "must be an array of tables", member)
        envs = d.get("environments", [])
        return cls(
            lock_version=version,
            created_by=_get(d, "created-by", "str", "", member),
            requires_python=(_value(d["requires-python"], "str", "requires-python", member)
                             if "requires-python" in d else None),
            environments=_value(envs, "tuple[str, ...]", "environments", member),
            packages=tuple(LockedPackage.from_dict(p, f"packages[{i}]", member)
                           for i, p in enumerate(packages)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lock-version": self.lock_version}
        if self.environments:
            out["environments"] = list(self.environments)
        if self.requires_python is not None:
            out["requires-python"] = self.requires_python
        out["created-by"] = self.created_by
        out["packages"] = [p.to_dict() for p in self.packages]
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Difference:
    """A package whose presence or version differs between a lock and an environment."""

    name: str
    change: Change
    locked: str | None = None
    installed: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PythonInfo(_Record):
    version: str
    implementation: str
    tag: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PlatformInfo(_Record):
    sys_platform: str
    machine: str
    libc: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalInstall(_Record):
    """A distribution installed from a direct URL (PEP 610), not from an index."""

    name: str
    version: str
    kind: str
    path: str | None = None
    url: str | None = None
    vcs: str | None = None
    commit: str | None = None
    requested_revision: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPackage(_Record):
    name: str
    version: str
    build: str
    channel: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaInfo(_Record):
    archive: str
    explicit: str
    packages: tuple[CondaPackage, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentSection(_Record):
    """The ``environment`` section of mlpack.json."""

    mode: str
    python: PythonInfo
    platform: PlatformInfo
    lock: str | None = None
    packages: int | None = None
    local: tuple[LocalInstall, ...] | None = None
    variables: Mapping[str, str] | None = None
    wheelhouse: str | None = None
    conda: CondaInfo | None = None


_RECORDS: dict[str, Any] = {
    "LockedFile": LockedFile, "PythonInfo": PythonInfo, "PlatformInfo": PlatformInfo,
    "LocalInstall": LocalInstall, "CondaPackage": CondaPackage, "CondaInfo": CondaInfo}
_CODEC = Codec(error=_err, records=_RECORDS, aliases={"Change": "str", "SourceKind": "str"},
               strings="a table of strings")
_Record._codec = _CODEC


# ----------------------------------------------------------------------------- pure helpers

def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(data: bytes, member: str = LOCK_MEMBER) -> Lock:
    """Read a ``pylock.toml`` back into records; malformed input is ``E_MANIFEST``."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise _err("", f"is not valid TOML: {e}", member) from None
    return Lock.from_dict(doc, member)


def compare(lock: Lock, installed: Mapping[str, str]) -> list[Difference]:
    """How an environment (normalized name -> version) differs from a lock, sorted by name.

    A locked package without a recorded version (a directory entry written by another tool)
    only counts as removed or present.
    """
    have = {normalize(k): v for k, v in installed.items()}
    locked = {p.name: p.recorded_version for p in lock.packages}
    out = []
    for name in sorted(locked.keys() | have.keys()):
        want, got = locked.get(name, ""), have.get(name)
        if name not in locked:
            out.append(Difference(name=name, change="added", installed=got))
        elif got is None:
            out.append(Difference(name=name, change="removed", locked=want))
        elif want is not None and want != got:
            out.append(Difference(name=name, change="changed", locked=want, installed=got))
    return out


def toml_value(v: Any) -> str:
    """One TOML value (inline tables and arrays included) for the lock writers."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, _dt.date | _dt.time):  # datetime is a date
        return v.isoformat()
    if isinstance(v, str):
        # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else toml_value(k)


def render_lock(lock: Lock) -> bytes:
    """The lock as TOML, in PEP 751's key order, one ``[[packages]]`` table per package."""
    doc = lock.to_dict()
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if k != "packages"]
    for pkg in doc["packages"]:
        lines += ["", "[[packages]]"]
        for k, v in pkg.items():
            if k == "wheels":
                lines += ["wheels = ["] + [f"    {toml_value(w)}," for w in v] + ["]"]
            else:
                lines.append(f"{toml_key(k)} = {toml_value(v)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_requirements(data: bytes) -> Lock:
    """Read back the pins file written when the capture did not query an index.

    ``name==version`` lines become versioned entries; ``name @ url`` lines (direct installs)
    entries without a version. Such a lock has no hashes: it names versions, not files.
    """
    packages = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.split(" #", 1)[0].strip()
        if m := re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*(\S+)|@\s*\S+)", line):
            packages.append(LockedPackage(name=normalize(m.group(1)), version=m.group(2)))
    return Lock(created_by=CREATED_BY, packages=tuple(packages))


def _wheel_tags(filename: str) -> set[str]:
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        return set()
    return {f"{i}-{a}-{p}" for i in parts[-3].split(".") for a in parts[-2].split(".")
            for p in parts[-1].split(".")}


def _public_url(url: str) -> str:
    """The URL without user name and password (``git@`` of SSH URLs is kept)."""
    parts = urlsplit(url)
    user, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    return urlunsplit(parts._replace(netloc=("git@" if user == "git" else "") + host))


def _conda_url(url: str) -> str:
    """A conda channel or package URL without credentials or an anaconda.org ``/t/`` token."""
    return re.sub(r"/t/[^/]+/", "/t/<TOKEN>/", _public_url(url))


def _file_path(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    return url2pathname(parts.path)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["(no output)"])[-1]


def _capture_error(message: str, hint: str) -> IOFailure:
    return IOFailure(message, code="E_CAPTURE", hint=hint)


