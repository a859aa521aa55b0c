"""Dataset and weights differences of ``mlpack diff`` (spec/diff.md).

Datasets: the two Parquet manifests are read as Arrow tables (path, size, digest) and
joined on ``path`` (a hash join, or a plain column comparison when both list the same
paths), so a manifest of a million files diffs in about a second; only the first paths of
each kind become Python strings. Weights: tensors are matched by name in the two weights
indexes; for a tensor whose bytes changed, both byte ranges are streamed from the packs in
4 MiB pieces, hashed against the index, and reduced with numpy to the largest absolute and
relative difference. No weights file or tensor is loaded whole.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from ._diff_model import Change, DiffOptions, SectionDiff, Status
from ._diff_sections import _presence_summary, field_changes, present, same_member, section_status
from ._read import VerifiedPack

__all__ = ["ManifestDiff", "datasets", "diff_manifest_tables", "manifest_table", "tensor_stats", "weights"]

STREAM = 4 << 20
# safetensors and ONNX element types numpy can read directly (little-endian)
NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "u1",
    "DOUBLE": "<f8", "FLOAT": "<f4", "FLOAT16": "<f2", "INT64": "<i8", "INT32": "<i4", "INT16": "<i2",
    "INT8": "i1", "UINT64": "<u8", "UINT32": "<u4", "UINT16": "<u2", "UINT8": "u1",
}
BFLOAT16 = ("BF16", "BFLOAT16")


# ----------------------------------------------------------------------------- datasets


def manifest_table(data: bytes) -> Any:
    """A Parquet dataset manifest as an Arrow table ``path``, ``size``, ``digest`` (+ ``rows``)."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from .datasets import META

    pf = pq.ParquetFile(pa.BufferReader(data))
    meta = pf.schema_arrow.metadata or {}
    algorithm = meta.get((META + "algorithm").encode(), b"sha256").decode()
    columns = ["path", "size", algorithm] + (["rows"] if "rows" in pf.schema_arrow.names else [])
    table = pf.read(columns=columns)
    return table.rename_columns(["path", "size", "digest"] + (["rows"] if len(columns) == 4 else []))


class ManifestDiff:
    """Added, removed and changed files of two manifests (Arrow tables, paths sorted)."""

    def __init__(self, added: Any, removed: Any, changed: Any, unchanged: int) -> None:
        self.added, self.removed, self.changed = added, removed, changed
        self.unchanged = unchanged

    @property
    def counts(self) -> dict[str, int]:
        return {"added": self.added.num_rows, "removed": self.removed.num_rows,
                "changed": self.changed.num_rows, "unchanged": self.unchanged}

    @property
    def empty(self) -> bool:
        return not (self.added.num_rows or self.removed.num_rows or self.changed.num_rows)


def diff_manifest_tables(old: Any, new: Any) -> ManifestDiff:
    """Join two manifest tables on ``path`` (digests compared as fixed-size binary)."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    if old.column("path").equals(new.column("path")):  # the usual case: same files, some edited
        same = pc.and_(pc.equal(old.column("digest"), new.column("digest")),
                       pc.equal(old.column("size"), new.column("size")))
        differ = pc.invert(same)
        changed = pa.table({"path": pc.filter(old.column("path"), differ),
                            "old_size": pc.filter(old.column("size"), differ),
                            "new_size": pc.filter(new.column("size"), differ)})
        empty = old.slice(0, 0).select(["path", "size"])
        return ManifestDiff(empty, empty, changed, old.num_rows - changed.num_rows)
    keep = ["path", "size", "digest"]
    joined = old.select(keep).join(new.select(keep), keys="path", join_type="full outer",
                                   left_suffix="_old", right_suffix="_new", coalesce_keys=True)
    in_old = pc.is_valid(joined.column("digest_old"))
    in_new = pc.is_valid(joined.column("digest_new"))
    both = pc.and_(in_old, in_new)
    differ = pc.and_(both, pc.invert(pc.and_(
        pc.equal(joined.column("digest_old"), joined.column("digest_new")),
        pc.equal(joined.column("size_old"), joined.column("size_new")))))
    differ = pc.fill_null(differ, False)

    def pick(mask: Any, columns: dict[str, str]) -> Any:
        t = joined.filter(mask).select(list(columns)).rename_columns(list(columns.values()))
        return t.sort_by("path")

    added = pick(pc.invert(in_old), {"path": "path", "size_new": "size"})
    removed = pick(pc.invert(in_new), {"path": "path", "size_old": "size"})
    changed = pick(differ, {"path": "path", "size_old": "old_size", "size_new": "new_size"})
    unchanged = pc.sum(both).as_py() or 0
    return ManifestDiff(added, removed, changed, unchanged - changed.num_rows)


def _sum(table: Any, column: str) -> int:
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    return int(pc.sum(table.column(column)).as_py() or 0) if table.num_rows else 0


def _rows(entry: Mapping[str, Any]) -> int | None:
    tables = entry.get("tables")
    return tables.get("rows") if isinstance(tables, Mapping) else None


def _side(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: entry.get(k) for k in ("uri", "mode", "file_count", "total_bytes", "root_digest")}
    if _rows(entry) is not None:
        out["rows"] = _rows(entry)
    return out


def _dataset(old: VerifiedPack, new: VerifiedPack, ea: Mapping[str, Any], eb: Mapping[str, Any],
             opts: DiffOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"name": ea["name"], "old": _side(ea), "new": _side(eb)}
    changes = field_changes(ea, eb, skip=("name", "manifest", "path", "tables", "file_count",
                                          "total_bytes", "root_digest"))
    if changes:
        out["fields"] = [c.to_dict() for c in changes]
    if ea.get("root_digest") == eb.get("root_digest") and ea.get("algorithm") == eb.get("algorithm"):
        out["change"] = "changed" if changes else "equal"
        out["counts"] = {"added": 0, "removed": 0, "changed": 0, "unchanged": ea.get("file_count")}
        return out
    out["change"] = "changed"
    if ea.get("algorithm") != eb.get("algorithm"):
        out["note"] = (f"the manifests hash with {ea.get('algorithm')} and {eb.get('algorithm')}: "
                       "their files cannot be compared by content")
        return out
    d = diff_manifest_tables(manifest_table(old.read(ea["manifest"])), manifest_table(new.read(eb["manifest"])))
    limit = opts.limit
    out["counts"] = d.counts
    out["bytes"] = {"added": _sum(d.added, "size"), "removed": _sum(d.removed, "size"),
                    "changed_old": _sum(d.changed, "old_size"), "changed_new": _sum(d.changed, "new_size")}
    out["added"] = d.added.slice(0, limit).to_pylist()
    out["removed"] = d.removed.slice(0, limit).to_pylist()
    out["changed"] = d.changed.slice(0, limit).to_pylist()
    if max(d.added.num_rows, d.removed.num_rows, d.changed.num_rows) > limit:
        out["truncated"] = True
    return out


def _dataset_note(d: Mapping[str, Any]) -> str:
    if d["change"] == "added":
        return f"{d['name']} added ({d['new']['file_count']} files)"
    if d["change"] == "removed":
        return f"{d['name']} removed"
    c = d.get("counts") or {}
    parts = []
    for k in ("changed", "added", "removed"):
        if c.get(k):
            names = [x["path"] for x in d.get(k, [])][:2]
            more = " …" if c[k] > len(names) else ""
            parts.append(f"{c[k]} file(s) {k} ({', '.join(names)}{more})")
    for f in d.get("fields", []):
        parts.append(f"{f['path']} {f.get('old')} → {f.get('new')}")
    if d.get("note"):
        parts.append("root digest differs")
    return f"{d['name']}: " + ", ".join(parts)


def datasets(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    a, b = present(old, "datasets"), present(new, "datasets")
    if a is None or b is None:
        return SectionDiff(name="datasets", status=section_status(a is not None, b is not None, ()),
                           summary=_presence_summary("datasets", a is not None, b is not None))
    ea = {e["name"]: e for e in a.get("entries", [])}
    eb = {e["name"]: e for e in b.get("entries", [])}
    entries = []
    for name in [*ea, *(n for n in eb if n not in ea)]:
        if name not in eb:
            entries.append({"name": name, "change": "removed", "old": _side(ea[name])})
        elif name not in ea:
            entries.append({"name": name, "change": "added", "new": _side(eb[name])})
        else:
            entries.append(_dataset(old, new, ea[name], eb[name], opts))
    changed = [d for d in entries if d["change"] != "equal"]
    summary = "; ".join(_dataset_note(d) for d in changed) if changed else \
        f"{len(entries)} dataset(s), same files"
    return SectionDiff(name="datasets", status="changed" if changed else "equal", summary=summary,
                       detail={"datasets": entries})


# ----------------------------------------------------------------------------- weights


def _numpy_view(raw: bytes, dtype: str) -> Any:
    import numpy as np

    if dtype in BFLOAT16:
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, NUMPY_DTYPES[dtype])


def _ranges(p: VerifiedPack, path: str, tensor: Mapping[str, Any]) -> tuple[str, int, int] | None:
    span = tensor.get("file_offsets")
    if not isinstance(span, list) or len(span) != 2:
        return None
    member = tensor.get("location") or path
    if not p.has(member):
        return None
    return member, span[0], span[1]


def _stream(p: VerifiedPack, member: str, begin: int, end: int, item: int) -> Iterator[bytes]:
    step = max(item, STREAM - STREAM % item)
    yield from p.iter_range(member, begin, end, step)


def tensor_stats(old: VerifiedPack, new: VerifiedPack, path_old: str, path_new: str,
                 ta: Mapping[str, Any], tb: Mapping[str, Any]) -> dict[str, Any]:
    """Largest |new - old| and |new - old| / |old| over the elements of one tensor, streamed.

    Both byte ranges are hashed while they are read and must equal the index's sha256
    (``E_IO`` otherwise: the pack changed after it was verified).
    """
    import numpy as np

    dtype = ta["dtype"]
    if dtype not in NUMPY_DTYPES and dtype not in BFLOAT16:
        return {"note": f"dtype {dtype}: no numeric comparison"}
    ra, rb = _ranges(old, path_old, ta), _ranges(new, path_new, tb)
    if ra is None or rb is None:
        return {"note": "the tensor's bytes are inside the ONNX protobuf: no numeric comparison"}
    item = 2 if dtype in BFLOAT16 else np.dtype(NUMPY_DTYPES[dtype]).itemsize
    if (ra[2] - ra[1]) != (rb[2] - rb[1]) or (ra[2] - ra[1]) % item:
        return {"note": "byte lengths differ: no numeric comparison"}
    ha, hb = hashlib.sha256(), hashlib.sha256()
    max_abs = 0.0
    max_rel: float | None = None
    nonfinite = 0
    differing = 0
    for chunk_a, chunk_b in zip(_stream(old, *ra, item), _stream(new, *rb, item), strict=True):
        ha.update(chunk_a)
        hb.update(chunk_b)
        x = _numpy_view(chunk_a, dtype).astype(np.float64)
        y = _numpy_view(chunk_b, dtype).astype(np.float64)
        finite = np.isfinite(x) & np.isfinite(y)
        nan_same = np.isnan(x) & np.isnan(y)
        nonfinite += int(np.count_nonzero(~finite & ~nan_same & (x != y)))
        d = np.abs(y[finite] - x[finite])
        if d.size:
            differing += int(np.count_nonzero(d))
            max_abs = max(max_abs, float(d.max()))
            base = np.abs(x[finite])
            nz = base != 0
            if nz.any():
                r = float((d[nz] / base[nz]).max())
                max_rel = r if max_rel is None else max(max_rel, r)
    if ha.hexdigest() != ta["sha256"]:
        raise old.changed(ra[0])
    if hb.hexdigest() != tb["sha256"]:
        raise new.changed(rb[0])
    out: dict[str, Any] = {"max_abs_diff": max_abs, "max_rel_diff": max_rel, "elements_differing": differing}
    if nonfinite:
        out["nonfinite_differing"] = nonfinite
    if max_rel is not None and not math.isfinite(max_rel):
        out["max_rel_diff"] = None
    return out


def _index_changes(ia: Mapping[str, Any], ib: Mapping[str, Any]) -> list[Change]:
    return field_changes(ia, ib, skip=("tensors", "tensor_root", "size", "header_size"))


def _weights_file(old: VerifiedPack, new: VerifiedPack, wa: Any, wb: Any, opts: DiffOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"path": wb.path, "format": wb.format}
    if wa.path != wb.path:
        out["old_path"] = wa.path
    ia, ib = wa.index or {}, wb.index or {}
    if ia.get("tensor_root") or ib.get("tensor_root"):
        out["old_tensor_root"], out["new_tensor_root"] = ia.get("tensor_root"), ib.get("tensor_root")
    external = [(x, y) for x, y in zip(ia.get("external_data", []), ib.get("external_data", []))]
    if (same_member(old, new, wa.path, wb.path) and ia == ib
            and all(old.has(x) and new.has(y) and same_member(old, new, x, y) for x, y in external)):
        out["change"] = "equal"
        out["counts"] = {"added": 0, "removed": 0, "reshaped": 0, "changed": 0,
                         "unchanged": len(ib.get("tensors", []))}
        return out
    if not ia or not ib or not old.manifest.at_least(1) or not new.manifest.at_least(1):
        out["change"] = "changed"
        out["note"] = "no weights index on both sides: the file differs"
        return out
    ta = {t["name"]: t for t in ia.get("tensors", [])}
    tb = {t["name"]: t for t in ib.get("tensors", [])}
    added = sorted(tb.keys() - ta.keys())
    removed = sorted(ta.keys() - tb.keys())
    reshaped, changed, unchanged = [], [], 0
    for name in sorted(ta.keys() & tb.keys()):
        x, y = ta[name], tb[name]
        if (x["dtype"], x["shape"]) != (y["dtype"], y["shape"]):
            reshaped.append({"name": name, "old_dtype": x["dtype"], "old_shape": x["shape"],
                             "new_dtype": y["dtype"], "new_shape": y["shape"],
                             "old_sha256": x["sha256"], "new_sha256": y["sha256"]})
        elif x["sha256"] != y["sha256"]:
            entry = {"name": name, "dtype": x["dtype"], "shape": x["shape"], "old_sha256": x["sha256"],
                     "new_sha256": y["sha256"]}
            if opts.tensor_stats:
                entry.update(tensor_stats(old, new, wa.path, wb.path, x, y))
            changed.append(entry)
        else:
            unchanged += 1
    limit = opts.limit
    out["counts"] = {"added": len(added), "removed": len(removed), "reshaped": len(reshaped),
                     "changed": len(changed), "unchanged": unchanged}
    out["added"] = [{"name": n, "dtype": tb[n]["dtype"], "shape": tb[n]["shape"], "sha256": tb[n]["sha256"]}
                    for n in added[:limit]]
    out["removed"] = [{"name": n, "dtype": ta[n]["dtype"], "shape": ta[n]["shape"], "sha256": ta[n]["sha256"]}
                      for n in removed[:limit]]
    out["reshaped"] = reshaped[:limit]
    out["changed"] = changed[:limit]
    if max(len(added), len(removed), len(reshaped), len(changed)) > limit:
        out["truncated"] = True
    fields = _index_changes(ia, ib)
    if fields:
        out["fields"] = [c.to_dict() for c in fields]
    tensors_differ = bool(added or removed or reshaped or changed)
    out["change"] = "changed" if tensors_differ or fields else "layout"
    if not tensors_differ and not fields:
        out["note"] = "same tensors and metadata; the file's byte layout differs"
    return out


def _weights_note(w: Mapping[str, Any]) -> str:
    if w["change"] in ("added", "removed"):
        return f"{w['path']} {w['change']}"
    c = w.get("counts") or {}
    parts = [f"{c[k]} tensor(s) {k}" for k in ("changed", "reshaped", "added", "removed") if c.get(k)]
    stats = [t for t in w.get("changed", []) if t.get("max_abs_diff") is not None]
    if stats:
        worst = max(stats, key=lambda t: t["max_abs_diff"])
        parts.append(f"largest |Δ| {worst['max_abs_diff']:.3g} in {worst['name']}")
    if w.get("fields"):
        parts.append("metadata changed")
    if w.get("note") and not parts:
        parts.append(w["note"])
    return f"{w['path']}: " + ", ".join(parts)


def weights(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions) -> SectionDiff:
    wa = {w.path: w for w in old.manifest.weights}
    wb = {w.path: w for w in new.manifest.weights}
    if not wa and not wb:
        return SectionDiff(name="weights", status="absent", summary="no weights")
    if len(wa) == 1 and len(wb) == 1 and set(wa) != set(wb):  # one file, renamed: compare it
        pairs = [(next(iter(wa.values())), next(iter(wb.values())))]
        only_old: list[str] = []
        only_new: list[str] = []
    else:
        pairs = [(wa[p], wb[p]) for p in wa if p in wb]
        only_old = [p for p in wa if p not in wb]
        only_new = [p for p in wb if p not in wa]
    files = [_weights_file(old, new, x, y, opts) for x, y in pairs]
    files += [{"path": p, "format": wa[p].format, "change": "removed"} for p in only_old]
    files += [{"path": p, "format": wb[p].format, "change": "added"} for p in only_new]
    differ = [f for f in files if f["change"] != "equal"]
    material = [f for f in differ if f["change"] != "layout"]
    status: Status = "changed" if material else ("incidental" if differ else "equal")
    if differ:
        summary = "; ".join(_weights_note(f) for f in differ)
    else:
        summary = f"{len(files)} file(s), same tensors"
    return SectionDiff(name="weights", status=status, summary=summary, detail={"weights": files})
