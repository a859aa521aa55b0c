"""MLCommons Croissant 1.0 JSON-LD for one dataset of a verified pack (spec/card.md, "Croissant").

Every file of the dataset's signed Parquet manifest becomes a ``cr:FileObject`` with its
``sha256`` and size; the table files (Parquet, CSV, Arrow) are grouped by schema, and each
schema becomes a ``cr:RecordSet`` whose fields read the table's columns (from one
``cr:FileObject``, or a ``cr:FileSet`` listing the files of that schema). The result is
accepted by ``mlcroissant validate`` and loads with ``mlcroissant.Dataset``.

    with open_verified("model.mlpack", trust=trust) as pack:
        doc = croissant(pack, "digits-test")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._read import VerifiedPack, open_verified
from .errors import IOFailure, UsageError
from .keys import PublicKey

__all__ = ["CONTEXT", "croissant", "export_croissant", "field_type", "parse_schema"]

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The @context of the Croissant 1.0 specification, verbatim.
CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject", "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5",
    "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "sc": "https://schema.org/", "separator": "cr:separator",
    "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
MEDIA_TYPES = {".parquet": "application/x-parquet", ".pq": "application/x-parquet", ".csv": "text/csv",
               ".arrow": "application/vnd.apache.arrow.file", ".feather": "application/vnd.apache.arrow.file",
               ".ipc": "application/vnd.apache.arrow.file", ".json": "application/json",
               ".jsonl": "application/jsonlines", ".txt": "text/plain", ".png": "image/png",
               ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".zip": "application/zip",
               ".gz": "application/gzip", ".tar": "application/x-tar"}
TABLE_MEDIA = {"parquet": "application/x-parquet", "csv": "text/csv", "arrow": "application/vnd.apache.arrow.file"}
_TYPES = [
    (re.compile(r"u?int(8|16|32|64)"), "sc:Integer"),
    (re.compile(r"(halffloat|float|double|float16|float32|float64)"), "sc:Float"),
    (re.compile(r"decimal(32|64|128|256)?\(\d+, ?-?\d+\)"), "sc:Float"),
    (re.compile(r"bool"), "sc:Boolean"),
    (re.compile(r"(string|large_string|utf8|large_utf8|string_view)"), "sc:Text"),
    (re.compile(r"date(32|64)(\[\w+\])?"), "sc:Date"),
    (re.compile(r"timestamp\[\w+(, tz=[^\]]+)?\]"), "sc:DateTime"),
]
_NESTED = ("list<", "large_list<", "fixed_size_list<", "list_view<", "struct<", "map<", "dictionary<",
           "sparse_union<", "dense_union<")


def field_type(arrow_type: str) -> str | None:
    """The Croissant ``dataType`` of an Arrow type name; None for nested and other types."""
    t = arrow_type.removesuffix(" not null").strip()
    for pattern, kind in _TYPES:
        if pattern.fullmatch(t):
            return kind
    return None


def parse_schema(text: str) -> list[tuple[str, str]]:
    """(column, Arrow type) pairs of an Arrow schema as text (``name: type`` per top-level line)."""
    out = []
    for line in text.splitlines():
        if not line or line[0].isspace() or line.startswith("--"):
            continue  # children of nested types, metadata
        at = 0
        while (at := line.find(": ", at)) >= 0:
            name, typ = line[:at], line[at + 2:]
            if field_type(typ) is not None or typ.startswith(_NESTED):
                out.append((name, typ))
                break
            at += 2
    return out


def _content_url(entry: Mapping[str, Any], path: str, base_url: str | None) -> str:
    if base_url is not None:
        return base_url.rstrip("/") + "/" + path
    if entry.get("mode") == "included" and entry.get("path"):
        return f"{entry['path']}/{path}"
    uri = str(entry.get("uri", "")).rstrip("/")
    if int(entry.get("file_count", 0)) == 1 and (uri == path or uri.endswith("/" + path)):
        return uri  # a single-file dataset: the source is the file itself
    return f"{uri}/{path}" if uri else path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "records"


def croissant(p: VerifiedPack, dataset: str, *, base_url: str | None = None) -> dict[str, Any]:
    """The Croissant document of dataset ``dataset`` of a verified pack.

    Raises:
        UsageError: ``E_USAGE`` when the pack has no such dataset, or when its manifest
            hashes with another algorithm than sha256 (Croissant names sha256 or md5).
    """
    from .datasets import DatasetManifest

    section = p.manifest.sections.get("datasets") if p.manifest.at_least(1) else None
    entries = {e["name"]: e for e in (section or {}).get("entries", [])}
    if dataset not in entries:
        names = ", ".join(sorted(entries)) or "none"
        raise UsageError(f"{p.path} has no dataset {dataset!r} (it has: {names})", code="E_USAGE",
                         hint="pass one of the dataset names mlpack inspect lists")
    entry = entries[dataset]
    if entry.get("algorithm") != "sha256":
        raise UsageError(f"dataset {dataset!r} is hashed with {entry.get('algorithm')}; Croissant records "
                         "sha256 (or md5) per file", code="E_USAGE",
                         hint="rebuild the pack with sha256 dataset manifests")
    manifest = DatasetManifest.from_parquet(p.read(entry["manifest"]))
    files: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[str]] = {}
    urls: dict[str, str] = {}
    for f in manifest.files:
        url = _content_url(entry, f.path, base_url)
        urls[f.path] = url
        suffix = os.path.splitext(f.path)[1].lower()
        media = TABLE_MEDIA[f.table.format] if f.table else MEDIA_TYPES.get(suffix, "application/octet-stream")
        files.append({"@type": "cr:FileObject", "@id": f.path, "name": f.path, "contentUrl": url,
                      "encodingFormat": media, "contentSize": f"{f.size} B", "sha256": f.digest.hex()})
        if f.table is not None:
            groups.setdefault((f.table.format, f.table.schema), []).append(f.path)
    record_sets: list[dict[str, Any]] = []
    skipped: list[str] = []
    single = len(groups) == 1
    for i, ((fmt, schema), paths) in enumerate(groups.items()):
        rs_id = _slug(dataset) if single else f"{_slug(dataset)}-{i}"
        if len(paths) == 1:
            source_ref = {"fileObject": {"@id": paths[0]}}
        else:
            set_id = f"{rs_id}-files"
            files.append({"@type": "cr:FileSet", "@id": set_id, "name": set_id,
                          "encodingFormat": TABLE_MEDIA[fmt], "includes": [urls[x] for x in paths]})
            source_ref = {"fileSet": {"@id": set_id}}
        fields = []
        for column, typ in parse_schema(schema):
            kind = field_type(typ)
            if kind is None:
                skipped.append(f"{column} ({typ})")
                continue
            fields.append({"@type": "cr:Field", "@id": f"{rs_id}/{column}", "name": column, "dataType": kind,
                           "source": {**source_ref, "extract": {"column": column}}})
        if fields:
            record_sets.append({"@type": "cr:RecordSet", "@id": rs_id, "name": rs_id,
                                "description": f"rows of the {fmt} file(s) {', '.join(paths[:3])}"
                                + (" …" if len(paths) > 3 else ""), "field": fields})
    m = p.manifest
    description = (f"Dataset {dataset!r} of the mlpack pack {m.name}{' ' + m.version if m.version else ''}: "
                   f"{manifest.file_count} file(s), {manifest.total_bytes} bytes, manifest root digest "
                   f"{manifest.root_digest} (signed in the pack; source {entry.get('uri')}).")
    if skipped:
        description += f" Columns of nested or other types not described: {', '.join(skipped[:10])}."
    doc: dict[str, Any] = {"@context": CONTEXT, "@type": "sc:Dataset", "name": dataset,
                           "description": description, "conformsTo": CONFORMS_TO,
                           "identifier": manifest.root_digest}
    uri = str(entry.get("uri", ""))
    if re.match(r"^(https?|s3|gs)://", uri):
        doc["url"] = uri
    doc["distribution"] = files
    if record_sets:
        doc["recordSet"] = record_sets
    return doc


def export_croissant(pack: str | os.PathLike[str], dataset: str, output: str | os.PathLike[str] | None, *,
                     trust: Sequence[PublicKey], threshold: int = 1, allow_unsigned: bool = False,
                     base_url: str | None = None, force: bool = False) -> str:
    """Verify ``pack``, then write the Croissant JSON-LD of ``dataset`` atomically (or return it)."""
    from ._atomic import atomic_write_bytes

    target = Path(output) if output is not None else None
    if target is not None:
        if target.exists() and not force:
            raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"directory {parent} does not exist", code="E_INPUT")
    with open_verified(pack, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned) as p:
        doc = croissant(p, dataset, base_url=base_url)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if target is not None:
        try:
            atomic_write_bytes(target, text.encode("utf-8"), replace=force)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot write {target}") from None
    return text
