"""The install plan of an environment rebuild (spec/environment.md, "Rebuilding"): which
entries of a PEP 751 lock are installed, from where, and which are skipped.

Local wheels (a pack's wheelhouse) are checked against the lock's size and sha256 here, before
any installer runs (``E_DIGEST``), and the lock is rewritten so that they are named by absolute
path with no URL beside them (uv before 0.9 prefers the URL when both are given).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from .digest import sha256_file
from .environment import LockedPackage, parse_lock, parse_requirements
from .errors import IOFailure, VerificationError
from .pylock import toml_key, toml_value

__all__ = ["Plan", "is_pylock", "plan", "plan_pins", "render_toml"]


def env_error(message: str, hint: str) -> IOFailure:
    return IOFailure(message, code="E_ENV", hint=hint)


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """What to install from a lock: the hash-locked entries, the VCS entries, the rest skipped."""

    lock: Mapping[str, Any]
    """The lock with only hash-locked entries, local files as absolute paths (no URL beside
    them, which older uv prefers over a path)."""
    requirements: tuple[str, ...]
    """The same entries as pip requirement lines with ``--hash`` options."""
    vcs: tuple[tuple[str, str], ...]
    """(name, PEP 508 direct reference) of VCS entries at an exact commit."""
    skipped: tuple[str, ...]
    notes: tuple[str, ...]
    requires_python: str | None
    environments: tuple[str, ...]
    offline_refs: tuple[str, ...]
    """Entries that would need a download (no local file): named in offline errors."""
    hashed: bool = True
    """False for a pins file: versions only, installed from the configured index unchecked."""


def _local(ref: str, where: str, wheelhouse: Path | None) -> Path | None:
    """The file a lock ``path`` names: ``wheelhouse/<file>`` is in the wheelhouse, any other
    relative path in the wheelhouse's parent (the lock's own directory in a pack)."""
    pure = PurePosixPath(ref)
    if pure.is_absolute() or ".." in pure.parts or "\\" in ref or not ref.strip("./"):
        raise VerificationError(f"environment/pylock.toml: {where}.path {ref!r} is not a "
                                "relative path inside the pack", code="E_MANIFEST",
                                hint="the lock points outside the pack; do not install it")
    if wheelhouse is None:
        return None
    parts = pure.parts
    if parts[0] == "wheelhouse" and len(parts) > 1:
        return wheelhouse.joinpath(*parts[1:])
    return wheelhouse.parent.joinpath(*parts)


def _check_file(path: Path, entry: Mapping[str, Any], name: str) -> None:
    if not path.is_file():
        raise env_error(f"{name}: {path.name} is missing from the wheelhouse ({path.parent})",
                        "unpack the whole pack, including environment/wheelhouse")
    want = (entry.get("hashes") or {}).get("sha256")
    size = entry.get("size")
    if (isinstance(size, int) and path.stat().st_size != size) or (
            want is not None and sha256_file(path) != want):
        raise VerificationError(f"{name}: the wheelhouse file {path.name} differs from its "
                                f"locked sha256 {want}", code="E_DIGEST",
                                hint="the wheelhouse was modified; use the pack's own files")


def _file_entry(entry: Mapping[str, Any], where: str, name: str, wheelhouse: Path | None,
                offline_refs: list[str]) -> tuple[dict[str, Any], str]:
    """The entry rewritten for installing, and the URL pip is given."""
    out = dict(entry)
    if isinstance(ref := entry.get("path"), str):
        path = _local(ref, where, wheelhouse)
        if path is not None:
            _check_file(path, entry, name)
            out.pop("url", None)
            out["path"] = str(path)
            return out, path.as_uri()
        if not isinstance(entry.get("url"), str):
            raise env_error(f"{name}: the lock names the file {ref} (relative to the lock) and "
                            "no URL, and no wheelhouse was given",
                            "verify with the pack's environment/wheelhouse")
        out.pop("path")
    url = str(entry["url"])
    parts = urlsplit(url)
    if parts.scheme != "file":
        offline_refs.append(f"{name} ({url})")
    elif not os.path.isfile(url2pathname(unquote(parts.path))):
        raise env_error(f"{name}: the lock names a file of the author's machine that is not "
                        f"here ({url})", "verify with a pack made in mode \"wheelhouse\", or "
                        "put the file at that path")
    return out, url


def _requirement(name: str, files: Sequence[tuple[dict[str, Any], str]], version: str | None,
                 marker: str | None) -> str:
    hashes = " ".join(f"--hash=sha256:{f['hashes']['sha256']}" for f, _ in files
                      if "sha256" in (f.get("hashes") or {}))
    ref = f"{name} @ {files[0][1]}" if len(files) == 1 else f"{name}=={version}"
    return f"{ref}{f' ; {marker}' if marker else ''} {hashes}".strip()


def plan(lock_bytes: bytes, wheelhouse: Path | None, *, vcs_ok: bool,
         provided: Sequence[str] = ()) -> Plan:
    """Split a lock into what can be installed and what is skipped; check local wheels.

    Args:
        lock_bytes: a PEP 751 lock (``parse_lock`` validates it: ``E_MANIFEST``).
        wheelhouse: the pack's ``environment/wheelhouse``: ``path = "wheelhouse/<file>"``
            entries are found there (other relative paths in its parent, the lock's
            directory); None when there is none (entries are then fetched from their URL).
        vcs_ok: VCS entries are planned (git and the network are available).
        provided: names that the verifier provides itself (``mlpack``).
    """
    parse_lock(lock_bytes)  # validation, with key paths, before anything else
    doc = tomllib.loads(lock_bytes.decode("utf-8"))
    keep: list[dict[str, Any]] = []
    reqs: list[str] = []
    vcs: list[tuple[str, str]] = []
    skipped: list[str] = []
    notes: list[str] = []
    offline_refs: list[str] = []
    for i, raw in enumerate(doc["packages"]):
        pkg = LockedPackage.from_dict(raw, f"packages[{i}]", "environment/pylock.toml")
        where, marker = f"packages[{i}]", raw.get("marker")
        label = f"{pkg.name} {pkg.recorded_version or ''}".strip()
        if pkg.kind in ("wheels", "sdist", "archive"):
            entry = dict(raw)
            files = []
            for key in ("wheels", "sdist", "archive"):
                if key not in raw:
                    continue
                items = raw[key] if key == "wheels" else [raw[key]]
                done = [_file_entry(f, f"{where}.{key}[{j}]", label, wheelhouse, offline_refs)
                        for j, f in enumerate(items)]
                entry[key] = [f for f, _ in done] if key == "wheels" else done[0][0]
                files += done
            keep.append(entry)
            reqs.append(_requirement(pkg.name, files, pkg.version, marker))
            continue
        if pkg.name in provided:
            skipped.append(pkg.name)
            notes.append(f"{label}: not installed from the lock ({pkg.kind}); the verifier's "
                         "own copy is on the environment's path")
            continue
        if pkg.vcs is not None and pkg.vcs.url and vcs_ok and shutil.which(pkg.vcs.type):
            sub = f"#subdirectory={pkg.vcs.subdirectory}" if pkg.vcs.subdirectory else ""
            ref = f"{pkg.name} @ {pkg.vcs.type}+{pkg.vcs.url}@{pkg.vcs.commit_id}{sub}"
            vcs.append((pkg.name, ref))
            continue
        skipped.append(pkg.name)
        if pkg.vcs is not None:
            notes.append(f"{label} (from {pkg.vcs.type} {pkg.vcs.url or pkg.vcs.path} at "
                         f"{pkg.vcs.commit_id}) was not installed: "
                         + ("a local repository" if not pkg.vcs.url else "offline"
                            if not vcs_ok else f"{pkg.vcs.type} is not installed"))
        else:
            assert pkg.directory is not None
            kind = "editable install" if pkg.directory.editable else "install"
            notes.append(f"{label} (a local {kind} of {pkg.directory.path} by the author) was "
                         "not installed: the code that needs it cannot run without it")
    rest = {k: v for k, v in doc.items() if k != "packages"}
    return Plan(lock={**rest, "packages": keep}, requirements=tuple(reqs), vcs=tuple(vcs),
                skipped=tuple(skipped), notes=tuple(notes),
                requires_python=doc.get("requires-python"),
                environments=tuple(doc.get("environments") or ()),
                offline_refs=tuple(offline_refs))


def is_pylock(data: bytes) -> bool:
    """A PEP 751 lock (TOML), not the pins file ``environment/requirements.txt``."""
    try:
        return isinstance(tomllib.loads(data.decode("utf-8")), dict)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def plan_pins(data: bytes) -> Plan:
    """The plan of a pins file (a capture made without asking an index): ``name==version``
    lines, no hashes; direct-URL lines (the author's local installs) are skipped."""
    reqs, skipped = [], []
    notes = [("the lock is a pins file without hashes (environment/requirements.txt): the "
             "versions were installed from the configured index and their files not checked")]
    for p in parse_requirements(data).packages:
        if p.version is None:
            skipped.append(p.name)
            notes.append(f"{p.name} (a direct-URL install of the author) was not installed")
        else:
            reqs.append(f"{p.name}=={p.version}")
    return Plan(lock={}, requirements=tuple(reqs), vcs=(), skipped=tuple(skipped),
                notes=tuple(notes), requires_python=None, environments=(),
                offline_refs=(), hashed=False)


# ----------------------------------------------------------------------------- TOML

def render_toml(doc: Mapping[str, Any]) -> bytes:
    """Any lock document (as ``tomllib`` reads it) as TOML; ``packages`` as an array of tables."""
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items() if k != "packages"]
    for pkg in doc.get("packages", ()):
        lines += ["", "[[packages]]"] + [f"{toml_key(k)} = {toml_value(v)}"
                                         for k, v in pkg.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")
