"""Verifier checks of the ``mlpack.json`` sections defined by manifest version 1.1.

Run after every member's digest matched (spec/verification.md, step 7): the sections
are then authenticated claims, and what they say about the pack's own files must hold.
Each section is checked against its JSON Schema, then against the signed file list:
every member a section names exists; a weights index gives the signed size and its
tensor root matches its tensors; a dataset manifest is the one its entry describes and
an included dataset's files are exactly its manifest's; the code section counts the
``code/`` members. All failures are ``E_MANIFEST`` (or the code of the file concerned).

A 1.0 document's sections have no meaning and are not looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import schema
from .archive import MANIFEST_NAME
from .errors import VerificationError
from .manifest import Manifest

__all__ = ["check_sections", "member_references"]

ReadMember = Callable[[str], bytes]


def _bad(why: str, member: str = MANIFEST_NAME) -> VerificationError:
    return VerificationError(f"{MANIFEST_NAME}: {why}", code="E_MANIFEST", member=member)


def member_references(manifest: Manifest) -> list[tuple[str, str]]:
    """(where, member) for every pack member a 1.1 section names."""
    refs: list[tuple[str, str]] = []
    s = manifest.sections
    for i, w in enumerate(manifest.weights):
        for name in (w.index or {}).get("external_data", []):
            refs.append((f"weights[{i}].index.external_data", name))
    for i, e in enumerate(s.get("datasets", {}).get("entries", [])):
        refs.append((f"datasets.entries[{i}].manifest", e["manifest"]))
    env = s.get("environment", {})
    for key in ("lock", "conda_pack"):
        if isinstance(env.get(key), str):
            refs.append((f"environment.{key}", env[key]))
    git = s.get("code", {}).get("git") or {}
    if isinstance(git.get("diff"), str):
        refs.append(("code.git.diff", git["diff"]))
    return refs


def check_sections(manifest: Manifest, signed: Mapping[str, tuple[int, str]], algorithm: str,
                   read: ReadMember) -> list[str]:
    """Check the 1.1 sections against the signed files; returns what was checked.

    ``signed`` maps each signed file name to (size, hex digest); ``read`` returns a
    member's (already verified) bytes.
    """
    if not manifest.at_least(1):
        return []
    problems = schema.validate(manifest.to_dict(), "manifest")
    if problems:
        raise _bad(problems[0])
    for where, name in member_references(manifest):
        if name not in signed or name == MANIFEST_NAME:
            raise _bad(f"{where} names {name!r}, which is not a file of the pack")
    done = []
    if manifest.weights:
        done.append(_check_weights(manifest, signed))
    if "datasets" in manifest.sections:
        done.append(_check_datasets(manifest.sections["datasets"], signed, algorithm, read))
    if "hardware" in manifest.sections:
        from .hardware import HardwareProfile

        HardwareProfile.from_dict(manifest.sections["hardware"])
    if "code" in manifest.sections:
        done.append(_check_code(manifest.sections["code"], signed))
    return [d for d in done if d]


def _check_weights(manifest: Manifest, signed: Mapping[str, tuple[int, str]]) -> str:
    from .weights import WeightsIndex

    indexed = 0
    for w in manifest.weights:
        if w.index is None:
            continue
        index = WeightsIndex.from_dict(w.index)  # checks the tensor root against the tensors
        if index.format != w.format or index.size != signed[w.path][0]:
            raise _bad(f"the index of {w.path} gives {index.format}, {index.size} bytes; the file is "
                       f"{w.format}, {signed[w.path][0]} bytes")
        indexed += 1
    return f"{indexed} weights index(es)" if indexed else ""


def _check_datasets(section: Mapping[str, Any], signed: Mapping[str, tuple[int, str]], algorithm: str,
                    read: ReadMember) -> str:
    from .datasets import DatasetEntry, DatasetManifest

    names = set()
    for i, raw in enumerate(section["entries"]):
        entry = DatasetEntry.from_dict(raw, f"datasets.entries[{i}].")
        if entry.name in names:
            raise _bad(f"dataset name {entry.name!r} occurs twice")
        names.add(entry.name)
        manifest = DatasetManifest.from_parquet(read(entry.manifest))
        entry.check_included(manifest, signed, algorithm)
    return f"{len(names)} dataset manifest(s)"


def _check_code(section: Mapping[str, Any], signed: Mapping[str, tuple[int, str]]) -> str:
    members = [n for n in signed if n.startswith("code/")]
    count, size = len(members), sum(signed[n][0] for n in members)
    if (section.get("files"), section.get("size")) != (count, size):
        raise _bad(f"code says {section.get('files')} files / {section.get('size')} bytes; the pack "
                   f"holds {count} / {size} under code/")
    return f"{count} code file(s)"
