"""Code and other-file differences of ``mlpack diff`` (spec/diff.md, sections 3 and 10).

Members are compared by signed digest (or by sha256 of their bytes when the packs hash with
different algorithms); text files get a unified diff (UTF-8 without NUL, at most
:attr:`~mlpack.diff.DiffOptions.text_diff_bytes` per side, cut after 5,000 lines).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

from ._diff_model import Change, DiffOptions, SectionDiff
from ._diff_sections import (
    _presence_summary,
    describe_changes,
    field_changes,
    present,
    same_member,
    section_status,
)
from ._read import VerifiedPack
from .archive import MANIFEST_NAME

__all__ = ["code", "compare_members", "files", "unified"]

MAX_DIFF_LINES = 5000


def _text(data: bytes) -> list[str] | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def unified(a: list[str], b: list[str], old_name: str, new_name: str, context: int) -> tuple[str, bool]:
    """A unified diff as text (``\\ No newline at end of file`` marked), and whether it was cut."""
    out: list[str] = []
    truncated = False
    for line in difflib.unified_diff(a, b, old_name, new_name, n=context):
        if len(out) >= MAX_DIFF_LINES:
            truncated = True
            break
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n")
            if line[:1] in (" ", "-", "+"):
                out.append("\\ No newline at end of file\n")
    return "".join(out), truncated


def _file_diff(old: VerifiedPack | None, new: VerifiedPack | None, name: str, shown: str,
               opts: DiffOptions) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": shown}
    if old is not None:
        entry["old_size"] = old.size(name)
    if new is not None:
        entry["new_size"] = new.size(name)
    sides = [p for p in (old, new) if p is not None]
    if any(p.size(name) > opts.text_diff_bytes for p in sides):
        entry["diff"] = None
        entry["note"] = f"larger than {opts.text_diff_bytes} bytes: no line diff"
        return entry
    texts = [_text(p.read(name)) if p is not None else [] for p in (old, new)]
    if texts[0] is None or texts[1] is None:
        entry["diff"] = None
        entry["note"] = "binary"
        return entry
    text, truncated = unified(texts[0], texts[1], f"a/{shown}" if old else "/dev/null",
                              f"b/{shown}" if new else "/dev/null", opts.context)
    entry["diff"] = text
    if truncated:
        entry["truncated"] = True
    return entry


def compare_members(old: VerifiedPack, new: VerifiedPack, names_old: Iterable[str],
                    names_new: Iterable[str]) -> tuple[list[str], list[str], list[str], int]:
    """(added, removed, changed, unchanged count) of two sets of member names, sorted."""
    sa, sb = set(names_old), set(names_new)
    key: Callable[[str], bytes] = lambda n: n.encode()
    added = sorted(sb - sa, key=key)
    removed = sorted(sa - sb, key=key)
    both = sorted(sa & sb, key=key)
    changed = [n for n in both if not same_member(old, new, n)]
    return added, removed, changed, len(both) - len(changed)


def code(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    a, b = present(old, "code"), present(new, "code")
    if a is None or b is None:
        return SectionDiff(name="code", status=section_status(a is not None, b is not None, ()),
                           summary=_presence_summary("code", a is not None, b is not None))
    prefix = "code/"
    added, removed, changed, unchanged = compare_members(
        old, new, (n for n in old.names if n.startswith(prefix)), (n for n in new.names if n.startswith(prefix)))
    limit = opts.limit
    files: dict[str, Any] = {
        "added": [_file_diff(None, new, n, n[len(prefix):], opts) for n in added[:limit]],
        "removed": [_file_diff(old, None, n, n[len(prefix):], opts) for n in removed[:limit]],
        "changed": [_file_diff(old, new, n, n[len(prefix):], opts) for n in changed[:limit]],
        "counts": {"added": len(added), "removed": len(removed), "changed": len(changed),
                   "unchanged": unchanged},
    }
    if max(len(added), len(removed), len(changed)) > limit:
        files["truncated"] = True
    changes = field_changes(a, b, skip=("files", "size", "digest"))
    ga, gb = (a.get("git") or {}).get("diff"), (b.get("git") or {}).get("diff")
    if isinstance(ga, str) and isinstance(gb, str) and old.has(ga) and new.has(gb) \
            and not same_member(old, new, ga, gb):
        changes.append(Change(path="git.uncommitted_diff", change="changed",
                              old=f"{old.algorithm}:{old.digest(ga)}", new=f"{new.algorithm}:{new.digest(gb)}",
                              note="the uncommitted changes differ"))
    n_files = len(added) + len(removed) + len(changed)
    status = section_status(True, True, changes, material=n_files > 0)
    parts = []
    for what, names in (("changed", changed), ("added", added), ("removed", removed)):
        if names:
            shown = ", ".join(n[len(prefix):] for n in names[:3]) + (" …" if len(names) > 3 else "")
            parts.append(f"{len(names)} file(s) {what} ({shown})")
    if changes:
        parts.append(describe_changes(changes))
    summary = "; ".join(p for p in parts if p) or f"{unchanged} file(s), same content"
    return SectionDiff(name="code", status=status, summary=summary, changes=tuple(changes),
                       detail={"files": files})




def _other_members(p: VerifiedPack, everything: bool = False) -> list[str]:
    if everything:
        return [n for n in p.names if n != MANIFEST_NAME]
    weights: set[str] = set()
    for w in p.manifest.weights:
        weights.add(w.path)
        weights.update((w.index or {}).get("external_data", []) if p.manifest.at_least(1) else [])
    if p.manifest.at_least(1):  # members a section names (the uncommitted diff, the lock, ...)
        from .sections import member_references

        weights.update(name for _, name in member_references(p.manifest))
    # members a section compares: only when that section is there to compare them
    # (an included data set's files are compared through its manifest's digests)
    prefixes = tuple(f"{name}/" for name in ("code", "datasets") if present(p, name) is not None)
    return [n for n in p.names
            if n != MANIFEST_NAME and n not in weights and not (prefixes and n.startswith(prefixes))]


def files(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions, *, everything: bool = False) -> SectionDiff:
    """Files no section compares (``everything``: all files but mlpack.json)."""
    added, removed, changed, unchanged = compare_members(old, new, _other_members(old, everything),
                                                         _other_members(new, everything))
    limit = opts.limit
    detail: dict[str, Any] = {"files": {
        "added": [{"path": n, "new_size": new.size(n)} for n in added[:limit]],
        "removed": [{"path": n, "old_size": old.size(n)} for n in removed[:limit]],
        "changed": [{"path": n, "old_size": old.size(n), "new_size": new.size(n)} for n in changed[:limit]],
        "counts": {"added": len(added), "removed": len(removed), "changed": len(changed),
                   "unchanged": unchanged}}}
    if max(len(added), len(removed), len(changed)) > limit:
        detail["files"]["truncated"] = True
    n = len(added) + len(removed) + len(changed)
    parts = [f"{len(x)} {w}" for w, x in (("changed", changed), ("added", added), ("removed", removed)) if x]
    summary = ", ".join(parts) + " other file(s)" if n else f"{unchanged} other file(s), same content"
    return SectionDiff(name="files", status="changed" if n else "equal", summary=summary, detail=detail)
