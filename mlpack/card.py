"""Model cards from a verified pack (spec/card.md): Hugging Face Markdown, or one HTML page.

The card is built from what the pack signs, after verifying it with the caller's trust
options: the YAML front matter that ``huggingface_hub.ModelCard`` reads (license as a Hub
license id, datasets, ``base_model`` from lineage, ``model-index`` with the claimed metrics
and, when trusted attestations lie beside the pack, the reproduced ones), then sections for
the model, evaluation, training, training data (with manifest root digests), code,
environment, hardware, lineage and how to verify and rebuild. The same content renders as a
self-contained HTML page (:mod:`mlpack._card_html`) with the metrics drawn against their
tolerance bands and the lineage as a small graph.

    with open_verified("model.mlpack", trust=trust) as pack:
        text = to_markdown(gather(pack))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._card_model import (
    CARD_TASK,
    CardData,
    Cell,
    Code,
    Facts,
    LineageNode,
    Mono,
    Para,
    Reproduced,
    Section,
    Table,
)
from ._card_yaml import hf_license, yaml_dump
from ._read import VerifiedPack, open_verified
from .errors import IOFailure, MlpackError
from .keys import PublicKey
from .metrics import ExpectedMetric

__all__ = ["CardData", "Facts", "Mono", "Para", "Reproduced", "Section", "Table", "gather", "hf_license",
           "render_html", "sections", "to_markdown", "write_card", "yaml_dump"]



def _attested(p: VerifiedPack, trust: Sequence[PublicKey]) -> tuple[Reproduced, ...]:
    """Reproduced metrics from trusted attestations beside the pack (spec/reproduction.md)."""
    try:
        from .attest import find_attestations, read_attestation
    except ImportError:  # attestations are optional
        return ()
    out: list[Reproduced] = []
    sha = p.file_sha256().removeprefix("sha256:")
    for path in find_attestations(p.path):
        try:
            att = read_attestation(path, sha, trust)
        except MlpackError:  # a malformed or forged attestation never breaks the card
            continue
        if not att.trusted or not att.subject_matches:
            continue
        for m in att.metrics:
            if m.get("status") != "reproduced" or not isinstance(m.get("observed"), (int, float)):
                continue
            out.append(Reproduced(name=str(m.get("name")), dataset=m.get("dataset"), split=m.get("split"),
                                  value=float(m["observed"]), claimed=m.get("claimed"),
                                  passed=bool(m.get("passed")), level=str(m.get("level", "")),
                                  by=att.signer, attestation=os.path.basename(att.path)))
    return tuple(out)


def _packages(p: VerifiedPack, env: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    from .environment import parse_lock

    lock = env.get("lock")
    if not isinstance(lock, str) or not p.has(lock):
        return ()
    return tuple((pkg.name, pkg.recorded_version or pkg.kind) for pkg in parse_lock(p.read(lock), lock).packages)


def gather(p: VerifiedPack, *, trust: Sequence[PublicKey] = (), lineage: Any = None,
           reproduced: Sequence[Reproduced] | None = None, task: str = CARD_TASK) -> CardData:
    """Collect the card's content from a verified pack.

    ``lineage`` is a :class:`mlpack.lineage.Lineage` (drawn as the chain it found);
    ``reproduced`` defaults to the metrics of trusted attestations beside the pack.
    """
    from .metrics import parse_section

    m = p.manifest
    secs = {k: v for k, v in m.sections.items()} if m.at_least(1) else {}
    metrics = parse_section(secs["metrics"]) if "metrics" in secs else ()
    nodes: list[LineageNode] = []
    if lineage is not None:
        for i, s in enumerate(lineage.steps):
            label = f"{s.name} {s.version}" if s.version else s.name
            nodes.append(LineageNode(label=label, digest=s.digest,
                                     changes=", ".join(s.changes["changed"]) or "nothing material"
                                     if s.changes else None,
                                     status="this pack" if i == 0 else f"{s.verdict}, in the store"))
        last = lineage.steps[-1] if lineage.steps else None
        if last is not None and last.parent is not None:
            nodes.append(LineageNode(label="parent", digest=last.parent, found=False,
                                     status="not found in the store" if lineage.stop else ""))
    else:
        nodes.append(LineageNode(label=m.name + (f" {m.version}" if m.version else ""), digest=p.file_sha256(),
                                 status="this pack"))
        parent = (secs.get("training") or {}).get("parent")
        if isinstance(parent, str):
            nodes.append(LineageNode(label="parent", digest=parent, found=False,
                                     status="not looked up (mlpack card --store DIR walks the lineage)"))
    return CardData(
        pack=os.path.basename(p.path), file_digest=p.file_sha256(), root_digest=p.root_digest,
        verdict=p.verdict, signers=p.signers, manifest_dict=m.to_dict(), name=m.name, version=m.version,
        description=m.description, license=m.license, authors=m.authors, metrics=tuple(metrics),
        reproduced=tuple(reproduced) if reproduced is not None else _attested(p, trust),
        packages=_packages(p, secs.get("environment") or {}), lineage=tuple(nodes), task=task,
        sections=secs)


# ----------------------------------------------------------------------------- front matter


def _metric_label(name: str, dataset: str | None, split: str | None) -> str:
    on = "/".join(x for x in (dataset, split) if x)
    return f"{name} on {on}" if on else name


def _bound(m: ExpectedMetric) -> float | None:
    return m.tolerance.bound(m.value) if m.tolerance else None


def front_matter(c: CardData) -> dict[str, Any]:
    """The Hugging Face metadata (spec/card.md, "Front matter")."""
    fm: dict[str, Any] = dict(hf_license(c.license))
    formats = sorted({str(w.get("format")) for w in c.manifest_dict.get("weights", [])})
    fm["tags"] = ["mlpack", *formats]
    entries = (c.sections.get("datasets") or {}).get("entries", [])
    if entries:
        fm["datasets"] = [e["name"] for e in entries]
    if c.parent:
        fm["base_model"] = c.parent
    if c.metrics:
        fm["metrics"] = sorted({x.name for x in c.metrics})
    roots = {e["name"]: e.get("root_digest") for e in entries}
    results: list[dict[str, Any]] = []
    groups: dict[tuple[str | None, str | None, str], list[dict[str, Any]]] = {}
    for x in c.metrics:
        bound = _bound(x)
        note = f"claimed, ±{bound:.6g}" if bound is not None else "claimed, informational"
        groups.setdefault((x.dataset, x.split, "claimed"), []).append(
            {"type": x.name, "value": x.value, "name": f"{x.name} ({note})", "verified": False})
    for r in c.reproduced:
        groups.setdefault((r.dataset, r.split, f"reproduced:{r.by}"), []).append(
            {"type": r.name, "value": r.value,
             "name": f"{r.name} (reproduced by {r.by[:19]}…, {r.level})", "verified": False})
    for (dataset, split, _), metrics in groups.items():
        ds: dict[str, Any] = {"name": dataset or "unspecified", "type": dataset or "unspecified"}
        if split:
            ds["split"] = split
        if dataset and roots.get(dataset):
            ds["revision"] = roots[dataset]
        results.append({"task": {"type": c.task}, "dataset": ds, "metrics": metrics})
    if results:
        fm["model-index"] = [{"name": c.name, "results": results}]
    fm["mlpack"] = {"pack": c.pack, "pack_digest": c.file_digest, "root_digest": c.root_digest,
                    "name": c.name, "version": c.version, "verdict": c.verdict,
                    "signers": list(c.signers)}
    if c.parent:
        fm["mlpack"]["parent"] = c.parent
    return fm


# ----------------------------------------------------------------------------- sections


def _short(d: str | None, n: int = 19) -> str:
    return "?" if not d else d if len(d) <= n + 1 else d[:n] + "…"


def _fmt_bytes(n: Any) -> str:
    if not isinstance(n, int):
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def sections(c: CardData) -> list[Section]:
    """The card's sections, in order (the same for Markdown and HTML)."""
    s = c.sections
    out: list[Section] = []
    model: list[tuple[str, Cell]] = [("pack", Mono(c.pack)), ("pack digest", Mono(c.file_digest)),
             ("content root digest", Mono(c.root_digest)),
             ("verification", f"{c.verdict}" + (f", signed by {', '.join(c.signers)}" if c.signers else
                                                  " (NOT signed: nothing vouches for its origin)")),
             ("license", c.license or "not stated"), ("authors", ", ".join(c.authors) or "not stated")]
    weights = [(Mono(str(w.get("path"))), str(w.get("format")), _fmt_bytes(w.get("size")),
                str(len((w.get("index") or {}).get("tensors", []))) if w.get("index") else "?",
                Mono(_short((w.get("index") or {}).get("tensor_root"), 30)))
               for w in c.manifest_dict.get("weights", [])]
    blocks: list[Any] = [Facts(tuple(model))]
    if weights:
        blocks.append(Table(("weights file", "format", "size", "tensors", "tensor root"), tuple(weights)))
    out.append(Section("Model", tuple(blocks), "model"))

    rows: list[tuple[Cell, ...]] = []
    for x in c.metrics:
        bound = _bound(x)
        band = f"±{bound:.4g} ({_json(x.tolerance.to_dict())})" if x.tolerance and bound is not None else \
            "informational"
        repro = [f"{r.value:.6g} ({'within' if r.passed else 'NOT within'}, by {r.by[:19]}…)"
                 for r in c.reproduced if (r.name, r.dataset, r.split) == (x.name, x.dataset, x.split)]
        rows.append((x.name, x.dataset or "", x.split or "", f"{x.value:.6g}", band, x.direction or "",
                     "; ".join(repro) or "not yet"))
    blocks = [Para("Every value below is claimed by the pack's author. A claim counts as reproduced only "
                   "when someone re-runs the pack's evaluation (mlpack verify --eval or --rebuild) and "
                   "lands within the tolerance; signed reproductions (attestations) from keys you trust are "
                   "listed in the last column.")]
    if rows:
        blocks.append(Table(("metric", "dataset", "split", "claimed", "tolerance", "better", "reproduced"),
                            tuple(rows)))
    else:
        blocks.append(Para("The pack claims no metrics."))
    out.append(Section("Evaluation", tuple(blocks), "evaluation"))

    t = s.get("training")
    if t:
        cmd = t.get("command")
        facts: list[tuple[str, Cell]] = []
        if isinstance(cmd, list):
            facts.append(("command", Mono(" ".join(str(x) for x in cmd))))
        for key in ("params", "seeds", "determinism"):
            if t.get(key) is not None:
                facts.append((key, Mono(_json(t[key]))))
        threads = t.get("threads") or {}
        if threads.get("requested") is not None:
            facts.append(("threads", str(threads["requested"])))
        for key in ("status", "started", "ended", "duration_s"):
            if t.get(key) is not None:
                facts.append((key, str(t[key])))
        if t.get("parent"):
            facts.append(("parent (base model)", Mono(t["parent"])))
        out.append(Section("Training", (Facts(tuple(facts)),) if facts else (Para("No run was recorded."),),
                           "training"))

    entries = (s.get("datasets") or {}).get("entries", [])
    if entries:
        rows = [(e["name"], Mono(str(e.get("uri"))), str(e.get("mode")), str(e.get("file_count")),
                 _fmt_bytes(e.get("total_bytes")), str((e.get("tables") or {}).get("rows", "")),
                 Mono(str(e.get("root_digest")))) for e in entries]
        out.append(Section("Training data", (
            Para("Each data set is pinned by a manifest of every file (path, size, sha256) signed in the pack; "
                 "the root digest identifies the exact files. Compare a copy with mlpack diff, or re-check it "
                 "with mlpack verify --eval, which refuses data that drifted."),
            Table(("dataset", "source", "mode", "files", "size", "rows", "manifest root digest"), tuple(rows))),
            "training-data"))

    code = s.get("code")
    if code:
        git = code.get("git") or {}
        facts = [("files", f"{code.get('files')} ({_fmt_bytes(code.get('size'))})"),
                 ("code digest", Mono(str(code.get("digest"))))]
        if git:
            facts += [("git commit", Mono(str(git.get("commit")))), ("branch", str(git.get("branch"))),
                      ("working tree", "DIRTY (uncommitted changes are in the pack)" if git.get("dirty")
                       else "clean")]
            if git.get("remote"):
                facts.append(("remote", Mono(str(git["remote"]))))
        out.append(Section("Code", (Facts(tuple(facts)),), "code"))

    env = s.get("environment")
    if env:
        py = env.get("python") or {}
        plat = env.get("platform") or {}
        facts = [("mode", str(env.get("mode"))),
                 ("python", f"{py.get('implementation', '')} {py.get('version', '')} ({py.get('tag', '')})".strip()),
                 ("platform", " ".join(str(plat.get(k)) for k in ("sys_platform", "machine", "libc") if plat.get(k))),
                 ("packages", str(env.get("packages", len(c.packages))))]
        if env.get("lock"):
            facts.append(("lock", Mono(str(env["lock"]))))
        blocks = [Facts(tuple(facts))]
        if c.packages:
            blocks.append(Table(("package", "version"), tuple((n, v) for n, v in c.packages)))
        out.append(Section("Environment", tuple(blocks), "environment"))

    hw = s.get("hardware")
    if hw:
        accel = ", ".join(str(a.get("name", "?")) for a in hw.get("accelerators") or []) or "none"
        facts = [("processor", f"{hw.get('host_processor_model_name')} ({hw.get('host_processor_vendor', '?')})"),
                 ("cores / vCPUs", f"{hw.get('host_processor_core_count', '?')} / {hw.get('host_processor_vcpu_count', '?')}"),
                 ("memory", _fmt_bytes(hw.get("host_memory_capacity_bytes"))), ("accelerators", accel),
                 ("operating system", f"{hw.get('operating_system', '?')}, kernel {hw.get('kernel_release', '?')}"),
                 ("libc", str(hw.get("libc", "?"))),
                 ("numpy / BLAS", f"{hw.get('numpy_version', '?')} / {hw.get('numpy_blas', '?')}")]
        out.append(Section("Hardware", (Facts(tuple(facts)),), "hardware"))

    nodes = [(n.label, Mono(n.digest), n.status, n.changes or "") for n in c.lineage]
    out.append(Section("Lineage", (
        Para("This pack first, then the pack whose weights its training started from, and so on."),
        Table(("pack", "digest (sha256 of the pack file)", "status", "changed from its parent"), tuple(nodes))),
        "lineage"))

    key = "AUTHOR.pub"
    ep = s.get("entrypoints") or {}
    cmds = [f"mlpack verify {c.pack} --key {key}",
            f"mlpack unpack {c.pack} -d model/ --key {key}",
            f"mlpack verify {c.pack} --key {key} --eval       # re-run the evaluation in a sandbox",
            f"mlpack verify {c.pack} --key {key} --rebuild    # retrain, compare tensors and metrics",
            f"mlpack diff {c.pack} OTHER.mlpack --key {key}"]
    blocks = [Para("Verify the pack before using anything in it; every command below verifies it first. "
                   f"The signer's key fingerprint is {', '.join(c.signers) or 'absent (unsigned pack)'}."),
              Code("\n".join(cmds), "sh")]
    if isinstance(ep.get("train"), Mapping):
        blocks.append(Para("The training command recorded in the pack (placeholders are bound by mlpack):"))
        blocks.append(Code(str(ep["train"].get("command")), "text"))
    out.append(Section("Verify and rebuild", tuple(blocks), "verify"))
    return out


# ----------------------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """Pack text as inert Markdown: no HTML, no table breaks, no control characters."""
    from ._diff_render import safe

    return (safe(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("`", "\\`").replace("[", "\\[").replace("]", "\\]"))


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Mono):
        text = cell.text.replace("`", "'").replace("|", "\\|")
        from ._diff_render import safe

        return f"`{safe(text)}`" if text else ""
    return _md(cell)


def to_markdown(c: CardData) -> str:
    """The Hugging Face model card: YAML front matter, then the sections."""
    lines = ["---", yaml_dump(front_matter(c)), "---", "", f"# {_md(c.title)}", ""]
    if c.description:
        lines += [_md(c.description), ""]
    lines += [f"Generated by `mlpack card` from the {c.verdict} pack `{_md_cell(Mono(c.pack)).strip('`')}`.", ""]
    for sec in sections(c):
        lines += [f"## {sec.title}", ""]
        for b in sec.blocks:
            if isinstance(b, Para):
                lines += [_md(b.text), ""]
            elif isinstance(b, Facts):
                lines += [f"- **{_md(k)}**: {_md_cell(v)}" for k, v in b.items] + [""]
            elif isinstance(b, Table):
                lines.append("| " + " | ".join(_md(h) for h in b.header) + " |")
                lines.append("|" + "---|" * len(b.header))
                lines += ["| " + " | ".join(_md_cell(x) for x in row) + " |" for row in b.rows]
                lines.append("")
            elif isinstance(b, Code):
                from ._diff_render import safe

                body = safe(b.text, newlines=True).replace("```", "'''")
                lines += [f"```{b.lang}", body, "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- I/O edge


def write_card(pack: str | os.PathLike[str], output: str | os.PathLike[str] | None, *,
               trust: Sequence[PublicKey], threshold: int = 1, allow_unsigned: bool = False,
               html: bool = False, store: str | os.PathLike[str] | None = None, task: str = CARD_TASK,
               force: bool = False) -> str:
    """Verify ``pack``, build its card, and write it atomically to ``output`` (or return it).

    With ``store``, the lineage is walked through that directory of packs. Returns the text.
    """
    from ._atomic import atomic_write_bytes
    from .errors import UsageError

    target = Path(output) if output is not None else None
    if target is not None:
        if target.exists() and not force:
            raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"directory {parent} does not exist", code="E_INPUT")
    lineage = None
    if store is not None:
        from .lineage import DirectoryStore, walk

        lineage = walk(pack, DirectoryStore(store), trust=trust, threshold=threshold,
                       allow_unsigned=allow_unsigned)
    with open_verified(pack, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned) as p:
        data = gather(p, trust=trust, lineage=lineage, task=task)
    if html:
        text = render_html(data)
    else:
        text = to_markdown(data)
    if target is not None:
        try:
            atomic_write_bytes(target, text.encode("utf-8"), replace=force)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return text


def render_html(c: CardData) -> str:
    """The card as one self-contained HTML page (spec/card.md)."""
    from ._card_html import to_html

    return to_html(c, sections(c), front_matter(c))
