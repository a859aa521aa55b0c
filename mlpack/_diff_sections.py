"""Section differences of ``mlpack diff``: metrics, training, entry points, environment, hardware
and the pack's metadata (spec/diff.md). Code and other files are in :mod:`mlpack._diff_code`,
datasets and weights in :mod:`mlpack._diff_data`.

Each builder takes the two verified packs and returns one :class:`~mlpack.diff.SectionDiff`;
nothing here prints or writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ._diff_model import Change, ChangeKind, DiffOptions, SectionDiff, Status
from ._read import VerifiedPack

__all__ = ["entrypoints", "environment", "field_changes", "hardware", "metrics", "pack", "present", "same",
           "same_member", "section_status", "training"]

TRAINING_ORDER = ("params", "seeds", "command", "determinism", "threads", "variables", "parent",
                  "code_fingerprint", "python", "cwd", "status", "error")
TRAINING_INCIDENTAL = frozenset(("started", "ended", "duration_s", "notes"))
HARDWARE_INCIDENTAL = frozenset(("host_processor_frequency_mhz",))


# ----------------------------------------------------------------------------- helpers


def present(p: VerifiedPack, name: str) -> Mapping[str, Any] | None:
    """A 1.1 section of ``p``, or None (a 1.0 document's sections have no meaning)."""
    if not p.manifest.at_least(1):
        return None
    return p.manifest.sections.get(name)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _is_incidental(path: str, incidental: Collection[str]) -> bool:
    return any(path == i or path.startswith(i + ".") for i in incidental)


def field_changes(old: Any, new: Any, prefix: str = "", *, incidental: Collection[str] = (),
                  order: Iterable[str] = (), skip: Collection[str] = ()) -> list[Change]:
    """Every differing value of two JSON documents; objects are compared member by member."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        first = [k for k in order if k in old or k in new]
        keys = first + sorted((old.keys() | new.keys()) - set(first))
        out: list[Change] = []
        for k in keys:
            if k in skip:
                continue
            path = f"{prefix}{k}"
            if k not in new:
                out.append(Change(path=path, change="removed", old=old[k],
                                  incidental=_is_incidental(path, incidental)))
            elif k not in old:
                out.append(Change(path=path, change="added", new=new[k],
                                  incidental=_is_incidental(path, incidental)))
            else:
                out.extend(field_changes(old[k], new[k], f"{path}.", incidental=incidental))
        return out
    if _same_value(old, new):
        return []
    path = prefix.rstrip(".")
    return [Change(path=path, change="changed", old=old, new=new,
                   incidental=_is_incidental(path, incidental))]


def section_status(in_old: bool, in_new: bool, changes: Iterable[Change], material: bool = False) -> Status:
    if not in_old and not in_new:
        return "absent"
    if not in_old:
        return "added"
    if not in_new:
        return "removed"
    changes = list(changes)
    if material or any(not c.incidental for c in changes):
        return "changed"
    return "incidental" if changes else "equal"


def short(value: Any, width: int = 60) -> str:
    """A value as compact text for summaries."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_changes(changes: Iterable[Change], most: int = 3) -> str:
    material = [c for c in changes if not c.incidental]
    parts = []
    for c in material[:most]:
        if c.change == "changed":
            parts.append(f"{c.path} {short(c.old, 30)} → {short(c.new, 30)}")
        else:
            parts.append(f"{c.path} {c.change}")
    if len(material) > most:
        parts.append(f"+{len(material) - most} more")
    return ", ".join(parts)


def _presence_summary(name: str, in_old: bool, in_new: bool) -> str:
    return f"only in the {'new' if in_new else 'old'} pack" if in_old != in_new else f"no {name} section"


def same(name: str, old: VerifiedPack, new: VerifiedPack) -> SectionDiff:
    """The section of two packs with the same signed content."""
    if name in ("pack", "files"):
        return SectionDiff(name=name, status="equal", summary="identical")
    here = present(old, name) is not None or (name == "weights" and bool(old.manifest.weights))
    return SectionDiff(name=name, status="equal" if here else "absent",
                       summary="identical" if here else f"no {name} section")


def _member_sha256(p: VerifiedPack, name: str) -> str:
    if p.algorithm == "sha256":
        return p.digest(name)
    return hashlib.sha256(p.read(name)).hexdigest()


def same_member(old: VerifiedPack, new: VerifiedPack, a: str, b: str | None = None) -> bool:
    """Whether member ``a`` of ``old`` has the same bytes as member ``b`` (default ``a``) of ``new``."""
    b = b or a
    if old.size(a) != new.size(b):
        return False
    if old.algorithm == new.algorithm:
        return old.digest(a) == new.digest(b)
    return _member_sha256(old, a) == _member_sha256(new, b)


# ----------------------------------------------------------------------------- metrics


def _label(name: str, dataset: str | None, split: str | None) -> str:
    on = "/".join(x for x in (dataset, split) if x)
    return f"{name} on {on}" if on else name


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def metrics(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    from .metrics import ExpectedMetric, parse_section, within

    a, b = present(old, "metrics"), present(new, "metrics")
    if a is None or b is None:
        return SectionDiff(name="metrics", status=section_status(a is not None, b is not None, ()),
                           summary=_presence_summary("metrics", a is not None, b is not None))
    ca = {(m.name, m.dataset, m.split): m for m in parse_section(a)}
    cb = {(m.name, m.dataset, m.split): m for m in parse_section(b)}
    entries: list[dict[str, Any]] = []
    notes: list[str] = []
    for key in [*ca, *(k for k in cb if k not in ca)]:
        ma, mb = ca.get(key), cb.get(key)
        entry: dict[str, Any] = {"name": key[0]}
        if key[1] is not None:
            entry["dataset"] = key[1]
        if key[2] is not None:
            entry["split"] = key[2]
        label = _label(*key)
        if ma is None or mb is None:
            m: ExpectedMetric = ma or mb  # type: ignore[assignment]
            entry.update({"change": "removed" if mb is None else "added",
                          ("old" if mb is None else "new"): m.value})
            notes.append(f"{label} {'removed' if mb is None else 'added'}")
            entries.append(entry)
            continue
        entry.update({"old": ma.value, "new": mb.value})
        if ma.direction or mb.direction:
            entry["direction"] = ma.direction or mb.direction
        tol_a = ma.tolerance.to_dict() if ma.tolerance else None
        tol_b = mb.tolerance.to_dict() if mb.tolerance else None
        if tol_a is not None:
            entry["tolerance"] = tol_a
        if tol_a != tol_b:
            entry["new_tolerance"] = tol_b
        if ma.direction != mb.direction:
            entry["new_direction"] = mb.direction
        verdict = within(ma, mb.value)
        for k in ("difference", "relative_difference", "allowed"):
            if getattr(verdict, k) is not None:
                entry[k] = getattr(verdict, k)
        entry["outcome"] = verdict.outcome
        entry["within_tolerance"] = verdict.outcome in ("within", "informational")
        unchanged = ma.value == mb.value and tol_a == tol_b and ma.direction == mb.direction
        entry["change"] = "equal" if unchanged else "changed"
        if not unchanged:
            band = f"±{_fmt(verdict.allowed)}" if verdict.allowed is not None else "no tolerance"
            what = {"within": "within", "better": "outside, better", "worse": "outside, worse",
                    "outside": "outside", "informational": "informational",
                    "invalid": "invalid"}[verdict.outcome]
            delta = f"{verdict.difference:+.4g}" if verdict.difference is not None else "?"
            extra = "" if tol_a == tol_b else "; tolerance changed"
            notes.append(f"{label} {_fmt(ma.value)} → {_fmt(mb.value)} ({delta}, {what} {band}{extra})")
        entries.append(entry)
    changed = [e for e in entries if e["change"] != "equal"]
    status: Status = "changed" if changed else "equal"
    if changed:
        summary = "; ".join(notes[:3]) + (f"; +{len(notes) - 3} more" if len(notes) > 3 else "")
    else:
        summary = f"{len(entries)} metric(s), same claims"
    return SectionDiff(name="metrics", status=status, summary=summary, detail={"metrics": entries})


# ----------------------------------------------------------------------------- training


def sorted_pools(section: Mapping[str, Any] | None, *path: str) -> Mapping[str, Any] | None:
    """A copy of ``section`` with the thread-pool list at ``path`` in a canonical order.

    threadpoolctl lists the loaded BLAS/OpenMP libraries in load order, which varies between
    runs (numpy's and scipy's OpenBLAS); the set is what matters.
    """
    if section is None:
        return None
    import json

    def fix(d: Mapping[str, Any], keys: tuple[str, ...]) -> Mapping[str, Any]:
        if not keys or not isinstance(d, Mapping) or keys[0] not in d:
            return d
        value = d[keys[0]]
        if len(keys) == 1 and isinstance(value, list):
            value = sorted(value, key=lambda x: json.dumps(x, sort_keys=True))
        elif len(keys) > 1:
            value = fix(value, keys[1:])
        return {**d, keys[0]: value}

    return fix(section, path)


def training(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    a = sorted_pools(present(old, "training"), "threads", "pools")
    b = sorted_pools(present(new, "training"), "threads", "pools")
    changes = field_changes(a or {}, b or {}, incidental=TRAINING_INCIDENTAL, order=TRAINING_ORDER) \
        if a is not None and b is not None else []
    status = section_status(a is not None, b is not None, changes)
    if status == "changed":
        summary = describe_changes(changes)
    elif status == "incidental":
        summary = "same run settings; only " + ", ".join(sorted({c.path.split(".")[0] for c in changes})) + \
            " differ"
    elif status == "equal":
        summary = "same run record"
    else:
        summary = _presence_summary("training", a is not None, b is not None)
    return SectionDiff(name="training", status=status, summary=summary, changes=tuple(changes))


def entrypoints(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    a, b = present(old, "entrypoints"), present(new, "entrypoints")
    changes = field_changes(a, b) if a is not None and b is not None else []
    status = section_status(a is not None, b is not None, changes)
    summary = (describe_changes(changes) if status == "changed" else "same commands" if status == "equal"
               else _presence_summary("entrypoints", a is not None, b is not None))
    return SectionDiff(name="entrypoints", status=status, summary=summary, changes=tuple(changes))


# ----------------------------------------------------------------------------- environment


def _packages(p: VerifiedPack, section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> {version, build, hashes, kind} of the lock (and conda packages)."""
    from .environment import parse_lock

    out: dict[str, dict[str, Any]] = {}
    lock = section.get("lock")
    if isinstance(lock, str) and p.has(lock):
        for pkg in parse_lock(p.read(lock), lock).packages:
            hashes: set[str] = set()
            if pkg.wheels:
                # the part of the file name after name-version: [build tag-]python-abi-platform
                build = ",".join(sorted({w.filename.removesuffix(".whl").split("-", 2)[-1]
                                         for w in pkg.wheels}))
                hashes = {w.hashes.get("sha256", "") for w in pkg.wheels}
            elif pkg.sdist is not None:
                build, hashes = "sdist", {pkg.sdist.hashes.get("sha256", "")}
            elif pkg.vcs is not None:
                build = f"{pkg.vcs.type} {pkg.vcs.commit_id}"
            elif pkg.directory is not None:
                build = "editable directory" if pkg.directory.editable else "directory"
            elif pkg.archive is not None:
                build, hashes = "archive", {pkg.archive.hashes.get("sha256", "")}
            else:
                build = "pin"
            out[pkg.name] = {"version": pkg.recorded_version, "build": build, "hashes": sorted(hashes),
                             "kind": "python"}
    conda = section.get("conda")
    if isinstance(conda, Mapping):
        for c in conda.get("packages") or []:
            if isinstance(c, Mapping) and isinstance(c.get("name"), str):
                out[f"conda:{c['name']}"] = {"version": c.get("version"), "build": c.get("build"),
                                             "hashes": [], "kind": "conda"}
    return out


def environment(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    a, b = present(old, "environment"), present(new, "environment")
    if a is None or b is None:
        return SectionDiff(name="environment", status=section_status(a is not None, b is not None, ()),
                           summary=_presence_summary("environment", a is not None, b is not None))
    pa, pb = _packages(old, a), _packages(new, b)
    entries: list[dict[str, Any]] = []
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    for name in sorted(pa.keys() | pb.keys()):
        x, y = pa.get(name), pb.get(name)
        kind = (x or y or {}).get("kind", "python")
        shown = name.removeprefix("conda:")
        if x is None or y is None:
            change = "added" if x is None else "removed"
            z = y if x is None else x
            assert z is not None
            entry = {"name": shown, "kind": kind, "change": change,
                     ("new_version" if x is None else "old_version"): z["version"],
                     ("new_build" if x is None else "old_build"): z["build"]}
        elif (x["version"], x["build"], x["hashes"]) == (y["version"], y["build"], y["hashes"]):
            counts["unchanged"] += 1
            continue
        else:
            change = "changed"
            entry = {"name": shown, "kind": kind, "change": change, "old_version": x["version"],
                     "new_version": y["version"], "old_build": x["build"], "new_build": y["build"]}
            if x["hashes"] != y["hashes"] and (x["version"], x["build"]) == (y["version"], y["build"]):
                entry["note"] = "same version and build, another file (sha256 differs)"
        counts[change] += 1
        entries.append({k: v for k, v in entry.items() if v is not None})
    changes = field_changes(a, b, skip=("lock", "packages", "conda"))
    if isinstance(a.get("conda"), Mapping) and isinstance(b.get("conda"), Mapping):
        changes += field_changes(a["conda"], b["conda"], "conda.", skip=("packages",))
    n_pkg = counts["added"] + counts["removed"] + counts["changed"]
    status = section_status(True, True, changes, material=n_pkg > 0)
    parts = []
    for e in entries[:3]:
        if e["change"] == "changed":
            old_v = e.get("old_version") or e.get("old_build")
            new_v = e.get("new_version") or e.get("new_build")
            if old_v == new_v:
                old_v, new_v = e.get("old_build"), e.get("new_build")
            parts.append(f"{e['name']} {old_v} → {new_v}")
        else:
            parts.append(f"{e['name']} {e.get('new_version') or e.get('old_version') or ''} {e['change']}".strip())
    if n_pkg > 3:
        parts.append(f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} removed in all")
    if changes:
        parts.append(describe_changes(changes))
    summary = "; ".join(p for p in parts if p) or f"{counts['unchanged']} package(s), same versions and files"
    detail: dict[str, Any] = {"packages": entries[: opts.limit], "counts": counts}
    if len(entries) > opts.limit:
        detail["truncated"] = True
    return SectionDiff(name="environment", status=status, summary=summary, changes=tuple(changes),
                       detail=detail)


# ----------------------------------------------------------------------------- hardware


def hardware(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    from .hardware import HardwareProfile, differences

    a, b = sorted_pools(present(old, "hardware"), "threadpools"), sorted_pools(present(new, "hardware"), "threadpools")
    if a is None or b is None:
        return SectionDiff(name="hardware", status=section_status(a is not None, b is not None, ()),
                           summary=_presence_summary("hardware", a is not None, b is not None))
    changes = []
    for d in differences(HardwareProfile.from_dict(a), HardwareProfile.from_dict(b)):
        old_v = d.recorded.to_dict() if hasattr(d.recorded, "to_dict") else d.recorded
        new_v = d.current.to_dict() if hasattr(d.current, "to_dict") else d.current
        old_v, new_v = _plain(old_v), _plain(new_v)
        kind: ChangeKind = "added" if old_v is None else "removed" if new_v is None else "changed"
        changes.append(Change(path=d.field, change=kind, old=old_v, new=new_v, note=d.severity,
                              incidental=d.field in HARDWARE_INCIDENTAL))
    changes += field_changes({"notes": a.get("notes")}, {"notes": b.get("notes")}, incidental=("notes",))
    status = section_status(True, True, changes)
    numerics = [c for c in changes if c.note == "numerics" and not c.incidental]
    if status == "changed":
        summary = (f"{len(numerics)} difference(s) that can change numerics ({describe_changes(numerics)})"
                   if numerics else describe_changes(changes))
        info = len([c for c in changes if c.note == "info" and not c.incidental])
        if numerics and info:
            summary += f"; {info} informational"
    else:
        summary = "same hardware and platform" if status == "equal" else \
            "same hardware; only " + " and ".join(
                "the probe notes" if c.path == "notes" else "the momentary processor clock" for c in changes) \
            + " differ"
    return SectionDiff(name="hardware", status=status, summary=summary, changes=tuple(changes))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- pack and files


def pack(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    ma, mb = old.manifest, new.manifest
    fields_a = {"name": ma.name, "version": ma.version, "description": ma.description,
                "license": ma.license, "authors": list(ma.authors), "mlpack": ma.mlpack,
                "hash": old.algorithm, "verdict": old.verdict, "signers": list(old.signers)}
    fields_b = {"name": mb.name, "version": mb.version, "description": mb.description,
                "license": mb.license, "authors": list(mb.authors), "mlpack": mb.mlpack,
                "hash": new.algorithm, "verdict": new.verdict, "signers": list(new.signers)}
    changes = field_changes(fields_a, fields_b, incidental=("verdict", "signers", "hash"),
                            order=("name", "version", "license", "description", "authors", "mlpack"))
    status = section_status(True, True, changes)
    summary = describe_changes(changes) if status == "changed" else \
        ("same metadata; signed differently" if status == "incidental" else "same metadata")
    return SectionDiff(name="pack", status=status, summary=summary, changes=tuple(changes))
