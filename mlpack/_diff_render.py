"""Text and Markdown forms of a :class:`~mlpack.diff.PackDiff` (spec/diff.md, "Output").

Strings from a pack (names, paths, diff lines) are shown with control characters escaped,
so a hostile pack cannot send terminal escape sequences or forge lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._diff_model import Change, PackDiff, SectionDiff

__all__ = ["render_markdown", "render_text", "safe"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def safe(text: object, *, newlines: bool = False) -> str:
    """``text`` with control characters as ``\\xNN`` (newlines too unless ``newlines``)."""
    s = str(text)
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return s if newlines else s.replace("\n", "\\n")


def _value(v: Any, width: int = 80) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)
    text = safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _ref(ref: Any) -> str:
    signed = f"signed by {', '.join(s[:19] + '…' for s in ref.signers)}" if ref.signers else ref.verdict
    return f"{safe(ref.pack)}  {safe(ref.label)}  ({signed}; root {ref.root_digest[:19]}…)"


def _headline(d: PackDiff) -> str:
    if d.identical:
        return "IDENTICAL: the same signed content"
    if d.equal:
        inc = [s.name for s in d.sections if s.status == "incidental"]
        return "EQUAL" + (f" (incidental differences only: {', '.join(inc)})" if inc else "")
    return "DIFFERENT: " + ", ".join(d.changed_sections)


def _change_line(c: Change) -> str:
    tag = " (incidental)" if c.incidental else ""
    note = f" [{safe(c.note)}]" if c.note else ""
    if c.change == "changed":
        return f"{safe(c.path)}: {_value(c.old)} → {_value(c.new)}{note}{tag}"
    if c.change == "added":
        return f"{safe(c.path)}: added {_value(c.new)}{note}{tag}"
    return f"{safe(c.path)}: removed (was {_value(c.old)}){note}{tag}"


def _metric_label(m: Mapping[str, Any]) -> str:
    on = "/".join(str(m[k]) for k in ("dataset", "split") if m.get(k))
    return safe(f"{m['name']} on {on}" if on else m["name"])


def _metric_line(m: Mapping[str, Any]) -> str:
    label = _metric_label(m)
    if m["change"] in ("added", "removed"):
        return f"{label}: {m['change']} ({m.get('new', m.get('old'))})"
    text = f"{label}: {m['old']:.6g} → {m['new']:.6g}"
    if m["change"] == "equal":
        return text + " (same claim)"
    if "difference" in m:
        text += f"  Δ {m['difference']:+.4g}"
    if m.get("allowed") is not None:
        text += f"  tolerance ±{m['allowed']:.4g}: {m['outcome']}"
    else:
        text += f"  ({m['outcome']})"
    if "new_tolerance" in m:
        text += f"  (tolerance {_value(m.get('tolerance'))} → {_value(m['new_tolerance'])})"
    return text


def _size(n: Any) -> str:
    return f"{n:,} B" if isinstance(n, int) else "?"


def _detail_lines(s: SectionDiff, *, diffs: bool) -> list[str]:
    """Readable detail lines of one section (no indentation)."""
    out: list[str] = []
    d = s.detail
    if s.name == "metrics":
        out += [_metric_line(m) for m in d.get("metrics", [])]
    if s.name in ("code", "files"):
        f = d.get("files", {})
        for what in ("changed", "added", "removed"):
            for e in f.get(what, []):
                sizes = (f"{_size(e.get('old_size'))} → {_size(e.get('new_size'))}" if what == "changed"
                         else _size(e.get("new_size", e.get("old_size"))))
                out.append(f"{what:<8} {safe(e['path'])}  ({sizes})" + (f" [{e['note']}]" if e.get("note") else ""))
        if f.get("truncated"):
            out.append("… (lists cut; counts: " + _value(f.get("counts")) + ")")
    if s.name == "environment":
        for p in d.get("packages", []):
            old = " ".join(str(x) for x in (p.get("old_version"), p.get("old_build")) if x)
            new = " ".join(str(x) for x in (p.get("new_version"), p.get("new_build")) if x)
            text = {"changed": f"{old} → {new}", "added": f"added {new}", "removed": f"removed (was {old})"}
            out.append(f"{safe(p['name'])}: {safe(text[p['change']])}" + (f" [{p['note']}]" if p.get("note") else ""))
    if s.name == "datasets":
        for e in d.get("datasets", []):
            if e["change"] == "equal":
                continue
            out.append(f"{safe(e['name'])}: {e['change']}")
            for k in ("old", "new"):
                if k in e:
                    side = e[k]
                    rows = f", {side['rows']} rows" if side.get("rows") is not None else ""
                    out.append(f"  {k}: {side.get('file_count')} files, {_size(side.get('total_bytes'))}"
                               f"{rows}, root {str(side.get('root_digest'))[:19]}…")
            c = e.get("counts")
            if c:
                out.append(f"  files: {c['changed']} changed, {c['added']} added, {c['removed']} removed, "
                           f"{c['unchanged']} unchanged")
            for what in ("changed", "added", "removed"):
                for x in e.get(what, []):
                    sizes = (f"{_size(x.get('old_size'))} → {_size(x.get('new_size'))}" if what == "changed"
                             else _size(x.get("size")))
                    out.append(f"  {what:<8} {safe(x['path'])}  ({sizes})")
            for fc in e.get("fields", []):
                out.append(f"  {safe(fc['path'])}: {_value(fc.get('old'))} → {_value(fc.get('new'))}")
            if e.get("note"):
                out.append(f"  {safe(e['note'])}")
    if s.name == "weights":
        for w in d.get("weights", []):
            if w["change"] == "equal":
                continue
            out.append(f"{safe(w['path'])} ({w.get('format')}): {w['change']}")
            for t in w.get("changed", []):
                stats = ""
                if t.get("max_abs_diff") is not None:
                    rel = t.get("max_rel_diff")
                    stats = (f"  max |Δ| {t['max_abs_diff']:.4g}, max rel "
                             f"{'n/a' if rel is None else format(rel, '.4g')}, "
                             f"{t.get('elements_differing')} element(s) differ")
                elif t.get("note"):
                    stats = f"  [{t['note']}]"
                out.append(f"  changed  {safe(t['name'])} {t['dtype']} {t['shape']}{stats}")
            for t in w.get("reshaped", []):
                out.append(f"  reshaped {safe(t['name'])} {t['old_dtype']} {t['old_shape']} → "
                           f"{t['new_dtype']} {t['new_shape']}")
            for what in ("added", "removed"):
                for t in w.get(what, []):
                    out.append(f"  {what:<8} {safe(t['name'])} {t['dtype']} {t['shape']}")
            for fc in w.get("fields", []):
                out.append(f"  {safe(fc['path'])}: {_value(fc.get('old'))} → {_value(fc.get('new'))}")
            if w.get("note"):
                out.append(f"  {safe(w['note'])}")
    material = [c for c in s.changes if not c.incidental]
    incidental = [c for c in s.changes if c.incidental]
    out += [_change_line(c) for c in material + incidental]
    if diffs and s.name == "code":
        for what in ("changed", "added", "removed"):
            for e in d.get("files", {}).get(what, []):
                if e.get("diff"):
                    out += safe(e["diff"], newlines=True).rstrip("\n").split("\n")
                    if e.get("truncated"):
                        out.append("… (diff cut)")
    return out


def render_text(d: PackDiff, *, color: bool = False) -> str:
    """The terminal form: a headline, one line per section, then the details of what differs."""
    lines = [f"old  {_ref(d.old)}", f"new  {_ref(d.new)}", _headline(d), ""]
    for s in d.sections:
        if s.status == "absent":
            continue
        lines.append(f"{s.name:<12} {s.status:<10} {safe(s.summary)}")
        if s.status in ("changed", "added", "removed", "incidental"):
            lines += [f"    {x}" for x in _detail_lines(s, diffs=True)]
    return "\n".join(lines)


def _md_cell(text: object) -> str:
    return safe(text).replace("|", "\\|")


def _md_table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return out


def render_markdown(d: PackDiff) -> str:
    """A Markdown report: a summary table, then one subsection per differing section."""
    out = ["# mlpack diff", "",
           (f"- **old**: `{_md_cell(d.old.pack)}` {_md_cell(d.old.label)} ({d.old.verdict}, root "
            f"`{d.old.root_digest}`)"),
           (f"- **new**: `{_md_cell(d.new.pack)}` {_md_cell(d.new.label)} ({d.new.verdict}, root "
            f"`{d.new.root_digest}`)"), "", f"**{_md_cell(_headline(d))}**", ""]
    out += _md_table(["section", "status", "summary"],
                     ([s.name, s.status, s.summary] for s in d.sections if s.status != "absent"))
    for s in d.sections:
        if s.status not in ("changed", "added", "removed", "incidental"):
            continue
        out += ["", f"## {s.name}", ""]
        if s.name == "metrics":
            out += _md_table(["metric", "old", "new", "Δ", "tolerance", "outcome"], (
                [_metric_label(m), m.get("old", ""), m.get("new", ""),
                 f"{m['difference']:+.4g}" if "difference" in m else "",
                 f"±{m['allowed']:.4g}" if m.get("allowed") is not None else "",
                 m.get("outcome", m["change"])] for m in s.detail.get("metrics", [])))
            out.append("")
        lines = _detail_lines(s, diffs=False)
        if s.name != "metrics":
            out += [f"- {_md_cell(x)}" if not x.startswith("  ") else f"  - {_md_cell(x.strip())}"
                    for x in lines]
        else:
            out += [f"- {_md_cell(_change_line(c))}" for c in s.changes]
        if s.name == "code":
            for what in ("changed", "added", "removed"):
                for e in s.detail.get("files", {}).get(what, []):
                    if e.get("diff"):
                        body = safe(e["diff"], newlines=True).replace("```", "`\u200b``")
                        out += ["", f"`{_md_cell(e['path'])}`", "", "```diff", body.rstrip("\n"), "```"]
    return "\n".join(out) + "\n"
