"""The HTML model card: one self-contained page (spec/card.md, "HTML").

No external asset of any kind: the CSS is inline, the metrics chart and the lineage graph
are inline SVG, and there is no script. Every string from the pack is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._card_model import CardData, Code, Facts, Mono, Para, Section, Table
from ._card_yaml import yaml_dump

__all__ = ["lineage_svg", "metrics_svg", "to_html"]

CSS = """
:root { --fg:#1d2430; --muted:#5b6575; --line:#d8dde5; --band:#cfe3fb; --claim:#1f5fbf;
        --ok:#1c8a4a; --bad:#c0392b; --bg:#ffffff; --soft:#f5f7fa; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg);
       background:var(--bg); }
main { max-width: 980px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
p { margin: 8px 0; }
.sub { color: var(--muted); margin-bottom: 18px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
         background:var(--soft); border:1px solid var(--line); margin-right:6px; }
.badge.verified { background:#e3f4ea; border-color:#a9d8bb; color:#145c33; }
.badge.unsigned { background:#fdecea; border-color:#f2b8b1; color:#8c2316; }
code, .mono { font-family: ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size: 13px;
              word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dt { color: var(--muted); }
dd { margin: 0; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      overflow-x: auto; font-size: 13px; }
svg { display:block; max-width:100%; height:auto; }
svg text { font-family: system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
details { margin: 10px 0; }
summary { cursor: pointer; color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
"""


def _e(text: object) -> str:
    from ._diff_render import safe

    return html.escape(safe(str(text)), quote=True)


def _cell(c: object) -> str:
    return f"<code>{_e(c.text)}</code>" if isinstance(c, Mono) else _e(c)


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 6:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def metrics_svg(c: CardData) -> str:
    """One row per claimed metric: its tolerance band, the claimed value, reproduced values."""
    if not c.metrics:
        return ""
    width, left, right, row = 900, 230, 150, 64
    plot = width - left - right
    parts = []
    for i, m in enumerate(c.metrics):
        y = 28 + i * row
        bound = m.tolerance.bound(m.value) if m.tolerance else 0.0
        repro = [r for r in c.reproduced if (r.name, r.dataset, r.split) == (m.name, m.dataset, m.split)]
        values = [m.value - bound, m.value + bound, *(r.value for r in repro)]
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.35 or abs(m.value) * 0.01 or 0.01
        lo, hi = lo - pad, hi + pad

        def x(v: float, lo: float = lo, hi: float = hi) -> float:
            return left + (v - lo) / (hi - lo) * plot

        on = "/".join(s for s in (m.dataset, m.split) if s)
        parts.append(f'<text x="{left - 12}" y="{y + 4}" text-anchor="end" font-size="14" font-weight="600" '
                     f'fill="#1d2430">{_e(m.name)}</text>')
        if on:
            parts.append(f'<text x="{left - 12}" y="{y + 21}" text-anchor="end" font-size="12" '
                         f'fill="#5b6575">{_e(on)}</text>')
        parts.append(f'<line x1="{left}" y1="{y + 14}" x2="{left + plot}" y2="{y + 14}" stroke="#d8dde5"/>')
        for t in _ticks(lo, hi):
            parts.append(f'<line x1="{x(t):.1f}" y1="{y + 11}" x2="{x(t):.1f}" y2="{y + 17}" stroke="#9aa3b2"/>')
            parts.append(f'<text x="{x(t):.1f}" y="{y + 31}" text-anchor="middle" font-size="11" '
                         f'fill="#5b6575">{t:.4g}</text>')
        if m.tolerance:
            parts.append(f'<rect class="band" x="{x(m.value - bound):.1f}" y="{y - 6}" '
                         f'width="{max(x(m.value + bound) - x(m.value - bound), 1):.1f}" height="16" rx="3" '
                         f'fill="#cfe3fb" stroke="#8db8ee"><title>tolerance band ±{bound:.4g}</title></rect>')
        parts.append(f'<line class="claim" x1="{x(m.value):.1f}" y1="{y - 10}" x2="{x(m.value):.1f}" '
                     f'y2="{y + 14}" stroke="#1f5fbf" stroke-width="3"><title>claimed {m.value:.6g}</title></line>')
        for r in repro:
            color = "#1c8a4a" if r.passed else "#c0392b"
            parts.append(f'<circle class="reproduced" cx="{x(r.value):.1f}" cy="{y + 2}" r="6" fill="{color}" '
                         f'stroke="#fff" stroke-width="1.5"><title>reproduced {r.value:.6g} by '
                         f'{_e(r.by)}</title></circle>')
        label = f"{m.value:.4g}" + (f" ± {bound:.3g}" if m.tolerance else " (informational)")
        parts.append(f'<text x="{left + plot + 12}" y="{y + 6}" font-size="13" fill="#1d2430">{_e(label)}</text>')
    height = 28 + len(c.metrics) * row
    legend = (f'<g font-size="12" fill="#5b6575"><rect x="{left}" y="{height - 4}" width="18" height="10" '
              f'fill="#cfe3fb" stroke="#8db8ee"/><text x="{left + 24}" y="{height + 5}">tolerance band</text>'
              f'<line x1="{left + 130}" y1="{height - 6}" x2="{left + 130}" y2="{height + 8}" stroke="#1f5fbf" '
              f'stroke-width="3"/><text x="{left + 138}" y="{height + 5}">claimed value</text>'
              f'<circle cx="{left + 250}" cy="{height + 1}" r="5" fill="#1c8a4a"/>'
              f'<text x="{left + 260}" y="{height + 5}">reproduced (attested)</text></g>')
    return (f'<svg id="metrics-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 16}" '
            f'role="img" aria-label="claimed metrics and their tolerance bands">{"".join(parts)}{legend}</svg>')


def lineage_svg(c: CardData) -> str:
    """The chain as boxes, newest at the top, an arrow to each parent."""
    nodes = c.lineage
    if not nodes:
        return ""
    width, box_w, box_h, gap = 900, 560, 54, 40
    x0 = 40
    parts = [('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
              'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5b6575"/>'
              '</marker></defs>')]
    for i, n in enumerate(nodes):
        y = 10 + i * (box_h + gap)
        dash = "" if n.found else ' stroke-dasharray="6 4"'
        fill = "#eef4fd" if i == 0 else ("#ffffff" if n.found else "#fafafa")
        parts.append(f'<g class="node"><rect x="{x0}" y="{y}" width="{box_w}" height="{box_h}" rx="8" '
                     f'fill="{fill}" stroke="#8a96a8"{dash}/>'
                     f'<text x="{x0 + 14}" y="{y + 22}" font-size="14" font-weight="600" fill="#1d2430">'
                     f'{_e(n.label)}</text>'
                     f'<text x="{x0 + 14}" y="{y + 41}" font-size="12" fill="#5b6575" '
                     f'font-family="ui-monospace,monospace">{_e(n.digest[:40])}…</text></g>')
        if i + 1 < len(nodes):
            y1, y2 = y + box_h, y + box_h + gap
            parts.append(f'<line x1="{x0 + 60}" y1="{y1}" x2="{x0 + 60}" y2="{y2 - 2}" stroke="#5b6575" '
                         f'stroke-width="1.5" marker-end="url(#arrow)"/>')
            note = "trained from" + (f" — changed: {n.changes}" if n.changes else "")
            parts.append(f'<text x="{x0 + 72}" y="{y1 + gap / 2 + 4}" font-size="12" fill="#5b6575">'
                         f'{_e(note)}</text>')
    height = 10 + len(nodes) * (box_h + gap) - gap + 10
    return (f'<svg id="lineage-graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="lineage">{"".join(parts)}</svg>')


def _block(b: object) -> str:
    if isinstance(b, Para):
        return f"<p>{_e(b.text)}</p>"
    if isinstance(b, Facts):
        return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_cell(v)}</dd>" for k, v in b.items) + "</dl>"
    if isinstance(b, Table):
        head = "".join(f"<th>{_e(h)}</th>" for h in b.header)
        rows = "".join("<tr>" + "".join(f"<td>{_cell(x)}</td>" for x in row) + "</tr>" for row in b.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(b, Code):
        from ._diff_render import safe

        return f"<pre><code>{html.escape(safe(b.text, newlines=True))}</code></pre>"
    raise TypeError(type(b))


def _section(c: CardData, s: Section) -> str:
    body = []
    for b in s.blocks:
        if isinstance(b, Table) and s.anchor == "packages":
            continue
        if isinstance(b, Table) and s.title == "Environment" and len(b.rows) > 12:
            body.append(f"<details><summary>{len(b.rows)} locked packages</summary>{_block(b)}</details>")
            continue
        body.append(_block(b))
        if s.anchor == "evaluation" and isinstance(b, Para):
            body.append(metrics_svg(c))
        if s.anchor == "lineage" and isinstance(b, Para):
            body.append(lineage_svg(c))
    return f'<section id="{_e(s.anchor)}"><h2>{_e(s.title)}</h2>{"".join(body)}</section>'


def to_html(c: CardData, blocks: Sequence[Section], meta_doc: Mapping[str, Any]) -> str:
    """The complete page: ``blocks`` are the card's sections, ``meta_doc`` its front matter."""
    badge = f'<span class="badge {"verified" if c.verdict == "verified" else "unsigned"}">{_e(c.verdict)}</span>'
    lic = f'<span class="badge">license: {_e(c.license or "not stated")}</span>'
    desc = f"<p>{_e(c.description)}</p>" if c.description else ""
    body = "".join(_section(c, s) for s in blocks)
    meta = html.escape(yaml_dump(dict(meta_doc)))
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{_e(c.title)} — model card</title>'
            f"<style>{CSS}</style></head><body><main>"
            f"<h1>{_e(c.title)}</h1><div class=\"sub\">{badge}{lic}<span class=\"mono\">{_e(c.file_digest)}</span>"
            f"</div>{desc}{body}"
            f"<details><summary>Hugging Face metadata (YAML front matter of the Markdown card)</summary>"
            f"<pre><code>{meta}</code></pre></details>"
            f"<footer>Generated by mlpack card from {_e(c.pack)}. Values are the author's claims unless marked "
            f"reproduced.</footer></main></body></html>\n")
