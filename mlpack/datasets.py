"""Dataset manifests (spec/datasets.md): what exactly a model was trained on.

A *dataset manifest* lists every regular file of a data set (a local directory, a single
file, or an ``s3://bucket/prefix``) with its size and digest, in UTF-8 order of the
POSIX path relative to the root, plus a *root digest* over the sorted (path, digest)
list. It is stored as a Parquet file (``to_parquet``); the pack's ``mlpack.json`` names
it in its ``datasets`` section (:class:`DatasetEntry`). ``compare`` tells what changed
since: added, removed and changed files, stat-only (paths and sizes) or by content.

    m = build("data/digits")                    # or "s3://bucket/digits", or one file
    m.to_parquet("digits.parquet")
    diff = compare(DatasetManifest.from_parquet("digits.parquet"), "data/digits")
    assert diff.ok, diff.removed

Speed, for millions of small files: the walk slices path prefixes (no ``relpath`` or
pathlib per file, no ``stat`` unless sizes are wanted); the hashing runs on every core
(forked processes plus the caller, :func:`mlpack._parallel.map_ranges`) over contiguous
batches of files, each read with ``readv`` into one reused buffer; names are checked by
a few regular expressions over the whole list, not one call per name. ``pyarrow`` is
imported only inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from typing import Any

from ._parallel import WORKERS, map_ranges
from .errors import IOFailure, MlpackError, UsageError, VerificationError
from .names import check_name

__all__ = [
    "ALGORITHMS",
    "MODES",
    "DatasetDiff",
    "DatasetEntry",
    "DatasetFile",
    "DatasetManifest",
    "TableInfo",
    "TablesSummary",
    "build",
    "compare",
    "root_digest",
]

FORMAT_VERSION = "1.0"  # of the Parquet manifest (key mlpack.dataset.version)
ALGORITHMS = ("sha256", "blake3")  # per-file digests; both are 32 bytes
MODES = ("referenced", "included")
DIGEST_SIZE = 32
CHUNK = 1 << 20  # read size: 1 MiB
FORK_MIN_FILES = 512  # fewer files are hashed on threads (no fork)
MAX_BATCH = 1024  # files per worker task
RANGES_PER_CPU = 32  # at least this many tasks per process (the caller works too): balance
S3_THREADS = 8
TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
                  ".ipc": "arrow", ".csv": "csv"}
_TABLE_ENDS = tuple(TABLE_SUFFIXES)
META = "mlpack.dataset."  # prefix of the Parquet key-value metadata
# no links followed; a FIFO swapped in after the walk cannot block the open
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_NONBLOCK", 0))

# A name that matches _PLAIN, and neither _DEVICE nor _RESERVED, passes check_name (a
# conservative subset, checked by the tests); every other name goes through check_name.
_COMPONENT = r"(?:\.[A-Za-z0-9_-]|[A-Za-z0-9_-])(?:[A-Za-z0-9._-]{0,252}[A-Za-z0-9_-])?"
_PLAIN = rf"^(?:{_COMPONENT}/)*{_COMPONENT}$"  # with at most 31 "/" and 1024 bytes
_DEVICE = r"(?i)(?:^|/)(?:con|prn|aux|nul|com[1-9]|lpt[1-9])(?:\.|/|$)"
_RESERVED = r"(?i)^\.mlpack(?:/|$)"
# the same over names joined by newlines (Python's re; depth bounded in the pattern)
_PLAIN_LINES = re.compile(rf"(?:(?:{_COMPONENT}/){{0,31}}{_COMPONENT}\n)*", re.ASCII)
_DEVICE_LINES = re.compile(r"(?im)(?:^|/)(?:con|prn|aux|nul|com[1-9]|lpt[1-9])(?:\.|/|$)|^\.mlpack(?:/|$)")
ARROW_NAMES = 50_000  # from this many names, the Arrow kernels are faster than re


# ----------------------------------------------------------------------------- records


def _err(where: str, why: str) -> VerificationError:
    return VerificationError(f"dataset {where} {why}", code="E_MANIFEST")


def _get(d: Mapping[str, Any], key: str, kind: type, where: str, *, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise _err(f"{where}{key}", "is required")
        return None
    value = d[key]
    # bool is an int subclass, but JSON distinguishes the two.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _err(f"{where}{key}", f"must be of type {kind.__name__}")
    return value


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise VerificationError(f"hash algorithm {algorithm!r} is not allowed for datasets "
                                f"(allowed: {', '.join(ALGORITHMS)})", code="E_ALGORITHM")
    return algorithm


@dataclass(frozen=True, kw_only=True, slots=True)
class TableInfo:
    """Schema and row count of a Parquet, Arrow IPC or CSV data file, from its metadata."""

    format: str
    """``parquet``, ``arrow`` (IPC file or stream) or ``csv``."""
    rows: int
    schema: str
    """The Arrow schema as text, without metadata (informational)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> TableInfo:
        fmt = _get(d, "format", str, where)
        if fmt not in set(TABLE_SUFFIXES.values()):
            raise _err(f"{where}format", "must be parquet, arrow or csv")
        rows = _get(d, "rows", int, where)
        if rows < 0:
            raise _err(f"{where}rows", "must be non-negative")
        return cls(format=fmt, rows=rows, schema=_get(d, "schema", str, where))

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "rows": self.rows, "schema": self.schema}


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetFile:
    """One file of a dataset: its path relative to the root, size and raw digest."""

    path: str
    size: int
    digest: bytes
    table: TableInfo | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> DatasetFile:
        digest = _get(d, "digest", str, where)
        if len(digest) != 2 * DIGEST_SIZE or digest != digest.lower():
            raise _err(f"{where}digest", "must be 64 lowercase hex digits")
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raise _err(f"{where}digest", "must be 64 lowercase hex digits") from None
        table = _get(d, "table", dict, where, required=False)
        return cls(path=_get(d, "path", str, where), size=_get(d, "size", int, where), digest=raw,
                   table=TableInfo.from_dict(table, f"{where}table.") if table is not None else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "digest": self.digest.hex()}
        if self.table is not None:
            out["table"] = self.table.to_dict()
        return out


def root_digest(paths: Sequence[str], digests: bytes) -> str:
    """``sha256:<hex>`` over, per file in order: UTF-8 path, a NUL byte, the raw digest."""
    h = hashlib.sha256()
    update = h.update
    for i, path in enumerate(paths):
        update(path.encode("utf-8"))
        update(b"\0")
        update(digests[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE])
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class TablesSummary:
    """What the table files of a dataset hold, in total (for ``mlpack inspect``)."""

    files: int
    rows: int
    schemas: tuple[str, ...]
    """The distinct schemas, sorted."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "tables.") -> TablesSummary:
        files, rows = _get(d, "files", int, where), _get(d, "rows", int, where)
        schemas = _get(d, "schemas", list, where)
        if files < 1 or rows < 0 or not all(isinstance(s, str) for s in schemas):
            raise _err(where.rstrip("."), "has a bad count or schema list")
        return cls(files=files, rows=rows, schemas=tuple(schemas))

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "rows": self.rows, "schemas": list(self.schemas)}


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetManifest:
    """Every file of a dataset, sorted by the UTF-8 bytes of its path.

    Columnar: ``paths[i]``, ``sizes[i]`` and ``digests[32*i : 32*i+32]`` describe file
    ``i``; ``tables`` maps a path to its :class:`TableInfo`. ``file_count``,
    ``total_bytes`` and ``root_digest`` are computed from them.
    """

    uri: str
    algorithm: str
    paths: tuple[str, ...]
    sizes: tuple[int, ...]
    digests: bytes
    tables: Mapping[str, TableInfo] = field(default_factory=dict)
    file_count: int = field(init=False)
    total_bytes: int = field(init=False)
    root_digest: str = field(init=False)

    def __post_init__(self) -> None:
        _check_algorithm(self.algorithm)
        n = len(self.paths)
        if len(self.sizes) != n or len(self.digests) != DIGEST_SIZE * n:
            raise _err("manifest", "has columns of different lengths")
        object.__setattr__(self, "file_count", n)
        object.__setattr__(self, "total_bytes", sum(self.sizes))
        object.__setattr__(self, "root_digest", root_digest(self.paths, self.digests))

    def __len__(self) -> int:
        return self.file_count

    def digest(self, index: int) -> bytes:
        return self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    @property
    def files(self) -> Iterator[DatasetFile]:
        for i, path in enumerate(self.paths):
            yield DatasetFile(path=path, size=self.sizes[i], digest=self.digest(i),
                              table=self.tables.get(path))

    def tables_summary(self) -> TablesSummary | None:
        if not self.tables:
            return None
        return TablesSummary(files=len(self.tables), rows=sum(t.rows for t in self.tables.values()),
                             schemas=tuple(sorted({t.schema for t in self.tables.values()})))

    def summary(self) -> dict[str, Any]:
        """The summary fields (also the Parquet key-value metadata)."""
        return {"uri": self.uri, "algorithm": self.algorithm, "file_count": self.file_count,
                "total_bytes": self.total_bytes, "root_digest": self.root_digest}

    def entry(self, name: str, *, mode: str = "referenced", manifest: str | None = None,
              path: str | None = None) -> DatasetEntry:
        """The ``datasets`` entry of ``mlpack.json`` for this manifest."""
        return DatasetEntry(
            name=name, uri=self.uri, mode=mode,
            manifest=manifest if manifest is not None else f"datasets/{name}.parquet",
            path=path if path is not None or mode != "included" else f"datasets/{name}",
            file_count=self.file_count, total_bytes=self.total_bytes, algorithm=self.algorithm,
            root_digest=self.root_digest, tables=self.tables_summary())

    # -- JSON (small datasets, tests) ------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatasetManifest:
        files = [DatasetFile.from_dict(f, f"files[{i}].") if isinstance(f, dict) else _bad_file(i)
                 for i, f in enumerate(_get(d, "files", list, ""))]
        manifest = cls(uri=_get(d, "uri", str, ""), algorithm=_get(d, "algorithm", str, ""),
                       paths=tuple(f.path for f in files), sizes=tuple(f.size for f in files),
                       digests=b"".join(f.digest for f in files),
                       tables={f.path: f.table for f in files if f.table is not None})
        _check_table(manifest.paths, manifest.sizes)
        _check_summary(manifest, d)
        return manifest

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "files": [f.to_dict() for f in self.files]}

    # -- Parquet ------------------------------------------------------------------------

    def to_parquet_bytes(self) -> bytes:
        """The Parquet manifest (spec/datasets.md): the same manifest gives the same bytes."""
        pa, pq = _pyarrow()
        n = self.file_count
        columns = {
            "path": pa.array(self.paths, pa.string()),
            "size": pa.array(self.sizes, pa.uint64()),
            self.algorithm: pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(DIGEST_SIZE), n, [None, pa.py_buffer(self.digests)]),
        }
        if self.tables:
            infos = [self.tables.get(p) for p in self.paths]
            columns["format"] = pa.array([t.format if t else None for t in infos], pa.string())
            columns["rows"] = pa.array([t.rows if t else None for t in infos], pa.int64())
            columns["schema"] = pa.array([t.schema if t else None for t in infos], pa.string())
        fields = [pa.field(k, v.type, nullable=k in ("format", "rows", "schema"))
                  for k, v in columns.items()]
        meta = {META + "version": FORMAT_VERSION,
                **{META + k: str(v) for k, v in self.summary().items()}}
        table = pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields, metadata=meta))
        sink = pa.BufferOutputStream()
        pq.write_table(
            table, sink, row_group_size=1 << 20, write_statistics=False,
            use_dictionary=["format", "schema"],
            compression={"path": "zstd", "size": "zstd", self.algorithm: "none", "format": "zstd",
                         "rows": "zstd", "schema": "zstd"},
        )
        return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write the Parquet manifest atomically (temp file, fsync, rename)."""
        from pathlib import Path

        from ._atomic import atomic_write_bytes

        data = self.to_parquet_bytes()
        try:
            atomic_write_bytes(Path(path), data)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot write {os.fspath(path)}") from None

    @classmethod
    def from_parquet(cls, source: str | os.PathLike[str] | bytes) -> DatasetManifest:
        """Read and check a Parquet manifest (a path, or its bytes).

        The names, their order, the column types and the summary in the key-value
        metadata are all checked; the root digest is recomputed (``E_MANIFEST``).
        """
        pa, pq = _pyarrow()
        what = "dataset manifest" if isinstance(source, bytes) else os.fspath(source)
        try:
            src = pa.BufferReader(source) if isinstance(source, bytes) else os.fspath(source)
            table = pq.read_table(src)
        except FileNotFoundError:
            raise UsageError(f"{what} does not exist", code="E_INPUT") from None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            raise _err(what, f"is not a readable Parquet manifest: {err}") from None
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot read {what}") from None
        meta = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                for k, v in (table.schema.metadata or {}).items()}
        version = meta.get(META + "version", "")
        if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
            raise _err(what, f"has format version {version!r} (this reader knows 1.x)")
        algorithm = _check_algorithm(meta.get(META + "algorithm", ""))
        expected = {"path": pa.string(), "size": pa.uint64(), algorithm: pa.binary(DIGEST_SIZE)}
        optional = {"format": pa.string(), "rows": pa.int64(), "schema": pa.string()}
        for name, kind in expected.items():
            if name not in table.column_names or table.schema.field(name).type != kind:
                raise _err(what, f"needs a column {name!r} of type {kind}")
            if table.column(name).null_count:
                raise _err(what, f"column {name!r} has nulls")
        present = [k for k in optional if k in table.column_names]
        if present and (len(present) != len(optional)
                        or any(table.schema.field(k).type != optional[k] for k in present)):
            raise _err(what, "needs all of format (string), rows (int64), schema (string), or none")
        if table.num_rows == 0:
            raise _err(what, "lists no file (a dataset has at least one)")
        import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

        if pc.max(table.column("size")).as_py() >= 1 << 63:
            raise _err(what, "has a size of 2^63 bytes or more")
        if META + "uri" not in meta:
            raise _err(what, f"has no {META}uri")
        paths = table.column("path").to_pylist()
        _check_names(paths)
        digests = table.column(algorithm).combine_chunks()
        start = digests.offset * DIGEST_SIZE
        raw = digests.buffers()[1].to_pybytes()[start : start + len(digests) * DIGEST_SIZE]
        tables: dict[str, TableInfo] = {}
        if present:
            fmts, rows, schemas = (table.column(k).to_pylist() for k in ("format", "rows", "schema"))
            for i, fmt in enumerate(fmts):
                if fmt is not None or rows[i] is not None or schemas[i] is not None:
                    tables[paths[i]] = TableInfo.from_dict(
                        {"format": fmt, "rows": rows[i], "schema": schemas[i]}, f"row {i}: ")
        manifest = cls(uri=meta.get(META + "uri", ""), algorithm=algorithm, paths=tuple(paths),
                       sizes=tuple(table.column("size").to_pylist()), digests=raw, tables=tables)
        _check_summary(manifest, meta, prefix=META, where=what)
        return manifest


def _bad_file(i: int) -> DatasetFile:
    raise _err(f"files[{i}]", "must be an object")


def _check_table(paths: Sequence[str], sizes: Sequence[int]) -> None:
    _check_names(paths)
    if any(s < 0 or s >= 1 << 63 for s in sizes):
        raise _err("manifest", "has a size out of range")


def _check_summary(m: DatasetManifest, d: Mapping[str, Any], *, prefix: str = "",
                   where: str = "manifest") -> None:
    """The stored summary (JSON fields or Parquet metadata) must match the files."""
    for key, value in m.summary().items():
        if key == "uri":
            continue
        stored = d.get(prefix + key)
        if prefix:  # Parquet key-value metadata holds text
            value = str(value)
        if stored != value:
            raise VerificationError(f"{where}: {key} is {stored!r}, but the files give {value!r}",
                                    code="E_MANIFEST", hint="the manifest was modified or is corrupt")


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetEntry:
    """One entry of the ``datasets`` section of ``mlpack.json`` (spec/datasets.md)."""

    name: str
    uri: str
    mode: str
    manifest: str
    """The pack member holding the Parquet manifest."""
    file_count: int
    total_bytes: int
    algorithm: str
    root_digest: str
    path: str | None = None
    """For ``included``: the pack directory that holds the files."""
    tables: TablesSummary | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "") -> DatasetEntry:
        name = _get(d, "name", str, where)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
            raise _err(f"{where}name", "must be 1-128 of A-Z a-z 0-9 . _ - (not starting with . _ -)")
        mode = _get(d, "mode", str, where)
        if mode not in MODES:
            raise _err(f"{where}mode", f"must be one of {', '.join(MODES)}")
        manifest = _get(d, "manifest", str, where)
        _check_member(manifest, f"{where}manifest")
        if not manifest.endswith(".parquet"):
            raise _err(f"{where}manifest", "must end with .parquet")
        path = _get(d, "path", str, where, required=mode == "included")
        if path is not None:
            _check_member(path, f"{where}path")
        count, total = _get(d, "file_count", int, where), _get(d, "total_bytes", int, where)
        if count < 1 or not 0 <= total < 1 << 63:
            raise _err(f"{where}file_count", "must be at least 1 (and total_bytes in 0..2^63-1)")
        algorithm = _get(d, "algorithm", str, where)
        if algorithm not in ALGORITHMS:
            raise _err(f"{where}algorithm", f"must be one of {', '.join(ALGORITHMS)}")
        root = _get(d, "root_digest", str, where)
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", root):
            raise _err(f"{where}root_digest", "must be sha256:<64 lowercase hex digits>")
        tables = _get(d, "tables", dict, where, required=False)
        return cls(name=name, uri=_get(d, "uri", str, where), mode=mode, manifest=manifest, path=path,
                   file_count=count, total_bytes=total, algorithm=algorithm, root_digest=root,
                   tables=TablesSummary.from_dict(tables, f"{where}tables.") if tables is not None else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "uri": self.uri, "mode": self.mode, "manifest": self.manifest,
            "file_count": self.file_count, "total_bytes": self.total_bytes,
            "algorithm": self.algorithm, "root_digest": self.root_digest,
        }
        if self.path is not None:
            out["path"] = self.path
        if self.tables is not None:
            out["tables"] = self.tables.to_dict()
        return out

    def check(self, manifest: DatasetManifest) -> None:
        """The Parquet manifest must be the one this entry describes (``E_MANIFEST``)."""
        for key in ("algorithm", "file_count", "total_bytes", "root_digest"):
            if getattr(self, key) != getattr(manifest, key):
                raise VerificationError(
                    f"dataset {self.name!r}: {key} of {self.manifest} is {getattr(manifest, key)!r}, "
                    f"the entry says {getattr(self, key)!r}", code="E_MANIFEST", member=self.manifest)

    def check_included(self, manifest: DatasetManifest, signed: Mapping[str, tuple[int, str]],
                       algorithm: str) -> None:
        """For ``included``: the signed files under ``path/`` are exactly the manifest's, with
        its sizes (and digests, when the pack hashes with the same ``algorithm``).

        ``signed`` maps each signed file name to (size, hex digest)."""
        self.check(manifest)
        if self.mode != "included" or self.path is None:
            return
        same = algorithm == self.algorithm
        prefix = self.path + "/"
        listed = set(manifest.paths)  # an included dataset has at most 99,999 files
        for member in signed:
            if member.startswith(prefix) and member[len(prefix):] not in listed:
                raise VerificationError(f"dataset {self.name!r}: {member} is not in its manifest",
                                        code="E_UNLISTED", member=member)
        for i, name in enumerate(manifest.paths):
            member = f"{self.path}/{name}"
            if member not in signed:
                raise VerificationError(f"dataset {self.name!r}: {member} is not in the pack",
                                        code="E_MISSING", member=member)
            size, digest_hex = signed[member]
            if size != manifest.sizes[i]:
                raise VerificationError(f"dataset {self.name!r}: {member} has size {size}, the "
                                        f"manifest says {manifest.sizes[i]}", code="E_SIZE",
                                        member=member)
            if same and digest_hex != manifest.digest(i).hex():
                raise VerificationError(f"dataset {self.name!r}: {member} differs from its manifest",
                                        code="E_DIGEST", member=member)


def _check_member(name: str, where: str) -> None:
    try:
        check_name(name)
    except VerificationError as err:
        raise _err(where, f"is not a valid pack name: {err.message}") from None


# ----------------------------------------------------------------------------- names


def _check_names(paths: Sequence[str], *, arrow: bool | None = None) -> None:
    """Every path is a portable name (spec/archive.md), and the list is strictly sorted.

    Vectorised: regular expressions accept the plain names all at once (over the Arrow
    column for large lists, else over the names joined by newlines); only if that fails
    does each name go through :func:`mlpack.names.check_name`, which names the problem.
    """
    if not paths:
        return
    n = len(paths)
    if arrow is None:
        arrow = n >= ARROW_NAMES
    if not arrow:
        if not all(map(str.__lt__, paths[:-1], paths[1:])):
            _unsorted(paths)
        joined = "\n".join(paths) + "\n"
        if (_PLAIN_LINES.fullmatch(joined) is None or _DEVICE_LINES.search(joined) is not None
                or max(map(len, paths)) > 1024):  # _PLAIN is ASCII-only: characters are bytes
            for name in paths:
                check_name(name)
        return
    pa, _ = _pyarrow()
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    try:
        column = pa.array(paths, pa.string())
    except (UnicodeError, pa.ArrowException):  # lone surrogates: not UTF-8
        column = None
    if column is None or not pc.all(pc.less(column.slice(0, n - 1), column.slice(1))).as_py():
        _unsorted(paths)
    if column is None:
        suspects: Sequence[int] = range(n)
    else:
        ok = pc.and_(pc.match_substring_regex(column, _PLAIN),
                     pc.invert(pc.or_(pc.match_substring_regex(column, _DEVICE),
                                      pc.match_substring_regex(column, _RESERVED))))
        ok = pc.and_(ok, pc.and_(pc.less_equal(pc.binary_length(column), 1024),
                                 pc.less_equal(pc.count_substring(column, "/"), 31)))
        if pc.all(ok).as_py():
            return
        suspects = pc.indices_nonzero(pc.invert(ok)).to_pylist()
    for i in suspects:
        check_name(paths[i])


def _unsorted(paths: Sequence[str]) -> None:
    for a, b in pairwise(paths):
        if not a < b:
            raise _err("manifest", f"is not sorted, or lists a path twice: {a!r} then {b!r}")


def _fast_accepts(name: str) -> bool:
    """The regex fast path for one name (for the tests: it must imply check_name passes)."""
    return (_PLAIN_LINES.fullmatch(name + "\n") is not None and _DEVICE_LINES.search(name) is None
            and len(name.encode("utf-8")) <= 1024)


# ----------------------------------------------------------------------------- sources


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise UsageError("dataset manifests need pyarrow", code="E_USAGE",
                         hint="pip install 'mlpack[datasets]'") from None
    return pa, pq


@dataclass(frozen=True, slots=True)
class _Listing:
    """A source, walked: sorted names, their sizes (when listed) and how to open them."""

    uri: str
    names: list[str]
    sizes: list[int] | None
    local_prefix: str | None  # root directory + "/" (local); None for S3
    s3: Any = None  # pyarrow.fs.S3FileSystem
    s3_base: str = ""  # "bucket/prefix/" in the S3 file system's terms


def _is_s3(source: object) -> bool:
    return isinstance(source, str) and source.startswith("s3://")


def _list(source: str | os.PathLike[str], *, endpoint: str | None, sizes: bool) -> _Listing:
    if _is_s3(source):
        return _list_s3(str(source), endpoint)
    if endpoint is not None:
        raise UsageError("endpoint= applies to s3:// sources only", code="E_USAGE")
    return _list_local(os.fspath(source), sizes)


def _list_local(source: str, want_sizes: bool) -> _Listing:
    try:
        st = os.stat(source)  # the root itself may be a link the user named
    except FileNotFoundError:
        raise UsageError(f"{source} does not exist", code="E_INPUT", hint="check the dataset path") from None
    except OSError as err:
        raise UsageError(f"cannot read {source}: {err.strerror}", code="E_INPUT") from None
    uri = _file_uri(source)
    if stat.S_ISREG(st.st_mode):
        directory, name = os.path.split(os.path.abspath(source))
        check_name(name)
        return _Listing(uri, [name], [st.st_size] if want_sizes else None, directory.rstrip("/") + "/")
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{source} is neither a regular file nor a directory", code="E_INPUT")
    root = source.rstrip("/") or "/"
    prefix = root.rstrip("/") + "/"
    names = _walk(root)
    if not names:
        raise UsageError(f"{source} holds no files", code="E_INPUT",
                         hint="a dataset needs at least one regular file")
    names.sort()
    sizes = None
    if want_sizes:
        rows = map_ranges(_stat_local, (prefix, names), _ranges(len(names), (WORKERS + 1) * 8, 1 << 15),
                          processes=len(names) >= FORK_MIN_FILES)
        packed = array("Q")
        for row in rows:
            packed.frombytes(row[0])
        sizes = packed.tolist()
    return _Listing(uri, names, sizes, prefix)


def _stat_local(context: tuple[str, Sequence[str]], indices: range) -> list[tuple[Any, ...]]:
    """Sizes of files ``indices`` (one ``lstat`` each), as packed uint64."""
    prefix, names = context
    sizes = array("Q")
    lstat, isreg = os.lstat, stat.S_ISREG
    for i in indices:
        try:
            st = lstat(prefix + names[i])
        except OSError as err:
            raise _read_error(err, names[i], prefix + names[i]) from None
        if not isreg(st.st_mode):
            raise VerificationError(f"{names[i]!r} is not a regular file", code="E_MEMBER_TYPE",
                                    member=names[i])
        sizes.append(st.st_size)
    return [(sizes.tobytes(),)]


def _walk(root: str) -> list[str]:
    """Every regular file under ``root`` as a relative POSIX name; links are refused.

    One ``scandir`` per directory; the entry type comes from ``d_type`` (no ``stat``
    per file); names are built by prefix concatenation, not ``relpath`` or pathlib.
    """
    names: list[str] = []
    append = names.append
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(root + "/" + rel if rel else root)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"cannot list {root}/{rel}") from None
        with it:
            try:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        append(rel + entry.name)
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(rel + entry.name + "/")
                    elif entry.is_symlink():
                        raise VerificationError(
                            f"{rel + entry.name!r} is a symbolic link; datasets hold regular files only",
                            code="E_MEMBER_TYPE", member=rel + entry.name,
                            hint="replace the link by a copy, or build the manifest of its target")
                    else:
                        raise VerificationError(
                            f"{rel + entry.name!r} is not a regular file (FIFO, socket or device)",
                            code="E_MEMBER_TYPE", member=rel + entry.name)
            except OSError as err:
                raise IOFailure.from_os_error(err, f"cannot list {root}/{rel}") from None
    return names


def _file_uri(source: str) -> str:
    from pathlib import Path

    return Path(os.path.abspath(source)).as_uri()


def s3_filesystem(endpoint: str | None, **options: Any) -> Any:
    """A ``pyarrow.fs.S3FileSystem``: the endpoint from ``endpoint``, else ``AWS_ENDPOINT_URL_S3``,
    else ``AWS_ENDPOINT_URL`` (an ``http://`` endpoint speaks http); the region from
    ``AWS_REGION``/``AWS_DEFAULT_REGION``; credentials from the AWS chain. ``options`` go to
    the constructor (timeouts, retry strategy)."""
    from urllib.parse import urlsplit

    from pyarrow import fs  # type: ignore[import-untyped,unused-ignore]

    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, Any] = dict(options)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        kwargs["endpoint_override"] = parts.netloc
        kwargs["scheme"] = parts.scheme
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return fs.S3FileSystem(**kwargs)


def _list_s3(uri: str, endpoint: str | None) -> _Listing:
    _pyarrow()
    from pyarrow import fs  # type: ignore[import-untyped,unused-ignore]

    base = uri[len("s3://"):].split("?", 1)[0].strip("/")
    if not base:
        raise UsageError(f"{uri} names no bucket", code="E_INPUT", hint="use s3://bucket/prefix")
    uri = "s3://" + base
    s3 = s3_filesystem(endpoint)
    try:
        info = s3.get_file_info(base)
        if info.type == fs.FileType.File:
            bucket_dir, name = base.rsplit("/", 1) if "/" in base else ("", base)
            check_name(name)
            return _Listing(uri, [name], [info.size], None, s3, bucket_dir + "/")
        infos = s3.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as err:
        raise IOFailure(f"cannot list {uri}: {err}",
                        hint="check the endpoint, bucket and credentials") from None
    prefix = base + "/"
    files = sorted((i.path[len(prefix):], i.size) for i in infos
                   if i.type == fs.FileType.File and i.path.startswith(prefix))
    if not files:
        what = "does not exist" if info.type == fs.FileType.NotFound else "holds no files"
        raise UsageError(f"{uri} {what}", code="E_INPUT", hint="check the bucket and prefix")
    return _Listing(uri, [f[0] for f in files], [f[1] for f in files], None, s3, prefix)


# ----------------------------------------------------------------------------- hashing


def _new_hasher(algorithm: str, size: int) -> Any:
    if algorithm == "sha256":
        return hashlib.sha256()
    from .digest import new_hasher

    return new_hasher(algorithm, size)


def _read_error(err: OSError, name: str, path: str) -> MlpackError:
    import errno

    if err.errno == errno.ELOOP:
        return VerificationError(f"{name!r} is a symbolic link; datasets hold regular files only",
                                 code="E_MEMBER_TYPE", member=name)
    if err.errno == errno.ENOENT:
        return IOFailure(f"cannot read {path}: it disappeared while the dataset was read",
                         hint="build the manifest of a dataset nothing is writing to")
    return IOFailure.from_os_error(err, f"cannot read {path}")


def _hash_local(context: tuple[str, Sequence[str], str, bool], indices: range) -> list[tuple[Any, ...]]:
    """Hash files ``indices`` (contiguous): one tuple (digests, sizes, table infos).

    Each file is opened once (no links followed), checked to be a regular file (fstat),
    and read up to that size into one reused 1 MiB buffer; reading another number of
    bytes means the file changed while it was read (``E_IO``).
    """
    prefix, names, algorithm, want_tables = context
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    bufs = [buf]
    digests = bytearray()
    sizes = array("Q")
    tables: list[tuple[int, TableInfo]] = []
    sha256 = hashlib.sha256 if algorithm == "sha256" else None
    readv, fstat, close = os.readv, os.fstat, os.close
    for i in indices:
        name = names[i]
        path = prefix + name
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as err:
            raise _read_error(err, name, path) from None
        try:
            st = fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise VerificationError(f"{name!r} is not a regular file", code="E_MEMBER_TYPE", member=name)
            size = st.st_size
            h = sha256() if sha256 is not None else _new_hasher(algorithm, size)
            total = 0
            while total < size:  # stop at the size fstat gave (no extra read for EOF)
                k = readv(fd, bufs)
                if not k:
                    break
                h.update(view[:k])
                total += k
        except OSError as err:
            raise _read_error(err, name, path) from None
        finally:
            close(fd)
        if total != size:  # shrank, or grew past size within the last read
            raise IOFailure(f"{path} changed while it was hashed", hint="build the manifest of a "
                            "dataset nothing is writing to")
        digests += h.digest()
        sizes.append(total)
        if want_tables and name.lower().endswith(_TABLE_ENDS):
            info = _table_info(name, partial(_open_local, path))
            if info is not None:
                tables.append((i, info))
    return [(bytes(digests), sizes.tobytes(), tables)]


def _open_local(path: str) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    return pa.memory_map(path, "r")


def _hash_s3(context: tuple[_Listing, Sequence[int], str, bool], part: range) -> list[tuple[Any, ...]]:
    listing, which, algorithm, want_tables = context
    s3 = listing.s3
    digests = bytearray()
    sizes = array("Q")
    tables: list[tuple[int, TableInfo]] = []
    for k in part:
        i = which[k]
        name = listing.names[i]
        path = listing.s3_base + name
        h = _new_hasher(algorithm, listing.sizes[i] if listing.sizes else 0)
        total = 0
        try:
            with s3.open_input_stream(path) as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    total += len(chunk)
        except OSError as err:
            raise IOFailure(f"cannot read s3://{path}: {err}") from None
        if listing.sizes is not None and total != listing.sizes[i]:
            raise IOFailure(f"s3://{path} changed while it was hashed")
        digests += h.digest()
        sizes.append(total)
        if want_tables and name.lower().endswith(_TABLE_ENDS):
            info = _table_info(name, partial(s3.open_input_file, path))
            if info is not None:
                tables.append((i, info))
    return [(bytes(digests), sizes.tobytes(), tables)]


def _ranges(n: int, parts: int, cap: int) -> list[range]:
    step = max(1, min(cap, -(-n // parts)))
    return [range(i, min(n, i + step)) for i in range(0, n, step)]


def _hash(listing: _Listing, which: Sequence[int] | None, algorithm: str, tables: bool,
          meanwhile: Callable[[], None] = lambda: None) -> tuple[bytes, list[int], dict[int, TableInfo]]:
    """Digests and sizes of files ``which`` (indices into the listing; None: all), in order."""
    n = len(listing.names) if which is None else len(which)
    if listing.s3 is not None:
        from concurrent.futures import ThreadPoolExecutor

        idx = range(len(listing.names)) if which is None else which
        context = (listing, idx, algorithm, tables)
        with ThreadPoolExecutor(max_workers=S3_THREADS) as pool:
            futures = [pool.submit(_hash_s3, context, r) for r in _ranges(n, S3_THREADS * 4, 64)]
            meanwhile()
            rows = [row for f in futures for row in f.result()]
    else:
        assert listing.local_prefix is not None
        names: Sequence[str] = listing.names if which is None else [listing.names[i] for i in which]
        ranges = _ranges(n, (WORKERS + 1) * RANGES_PER_CPU, MAX_BATCH)
        rows = map_ranges(_hash_local, (listing.local_prefix, names, algorithm, tables), ranges,
                          processes=n >= FORK_MIN_FILES, meanwhile=meanwhile)
        if which is not None:  # table infos carry indices into `names`; map them back
            rows = [(d, s, [(which[i], t) for i, t in tb]) for d, s, tb in rows]
    sizes = array("Q")
    infos: dict[int, TableInfo] = {}
    for _, raw, tb in rows:
        sizes.frombytes(raw)
        infos.update(tb)
    return b"".join(row[0] for row in rows), sizes.tolist(), infos


def _table_info(name: str, opener: Callable[[], Any]) -> TableInfo | None:
    """Schema and row count from the metadata (Parquet footer, Arrow IPC batch headers);
    CSV has none, so a CSV file is parsed. ``None`` when the file does not parse."""
    fmt = TABLE_SUFFIXES.get(os.path.splitext(name)[1].lower())
    if fmt is None:
        return None
    try:
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

        with opener() as f:
            if fmt == "parquet":
                import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

                meta = pq.ParquetFile(f).metadata
                return TableInfo(format=fmt, rows=meta.num_rows,
                                 schema=_schema_text(meta.schema.to_arrow_schema()))
            if fmt == "arrow":
                try:
                    reader = pa.ipc.open_file(f)
                    rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
                    return TableInfo(format=fmt, rows=rows, schema=_schema_text(reader.schema))
                except pa.ArrowInvalid:
                    f.seek(0)
                    stream = pa.ipc.open_stream(f)
                    return TableInfo(format=fmt, rows=sum(b.num_rows for b in stream),
                                     schema=_schema_text(stream.schema))
            from pyarrow import csv  # type: ignore[import-untyped,unused-ignore]

            reader = csv.open_csv(f)
            rows = sum(b.num_rows for b in reader)
            return TableInfo(format=fmt, rows=rows, schema=_schema_text(reader.schema))
    except (pa.ArrowException, OSError, ValueError):
        return None


def _schema_text(schema: Any) -> str:
    return str(schema.to_string(show_field_metadata=False, show_schema_metadata=False))


# ----------------------------------------------------------------------------- build, compare


def build(source: str | os.PathLike[str], *, algorithm: str = "sha256", endpoint: str | None = None,
          tables: bool = True) -> DatasetManifest:
    """The manifest of every regular file under ``source``.

    ``source`` is a directory (walked recursively; symbolic links, FIFOs and devices
    are refused), a single file, or ``s3://bucket/prefix`` (through ``pyarrow.fs``; the
    endpoint comes from ``endpoint=`` or ``AWS_ENDPOINT_URL``; each object is streamed
    and hashed, since S3 ETags are not content hashes). With ``tables``, Parquet, Arrow
    IPC and CSV files also get their schema and row count.

    Raises :class:`UsageError` (``E_INPUT``) for a missing or empty source,
    :class:`VerificationError` for a link or a name that is not portable, and
    :class:`IOFailure` when a file cannot be read.
    """
    _check_algorithm(algorithm)
    listing = _list(source, endpoint=endpoint, sizes=False)
    names = listing.names

    def meanwhile() -> None:  # on the main thread, while the workers hash
        if listing.s3 is None:
            _check_names(names)
        try:  # to_parquet usually comes next: import pyarrow now, while the workers hash
            import pyarrow.parquet  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
        except ImportError:
            pass

    if listing.s3 is not None:  # S3 reads are slow: refuse a bad name before any
        _check_names(names)
    digests, sizes, infos = _hash(listing, None, algorithm, tables, meanwhile)
    return DatasetManifest(uri=listing.uri, algorithm=algorithm, paths=tuple(names), sizes=tuple(sizes),
                           digests=digests, tables={names[i]: t for i, t in sorted(infos.items())})


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetDiff:
    """What differs between a manifest and a source: paths in UTF-8 order."""

    added: tuple[str, ...]
    """In the source, not in the manifest."""
    removed: tuple[str, ...]
    """In the manifest, not in the source."""
    changed: tuple[str, ...]
    """In both, with another size (or, with ``contents``, another digest)."""
    contents: bool
    """Whether the files were re-hashed (else paths and sizes only were compared)."""

    @property
    def ok(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "contents": self.contents, "added": list(self.added),
                "removed": list(self.removed), "changed": list(self.changed)}


def compare(manifest: DatasetManifest, source: str | os.PathLike[str], *, contents: bool = True,
            endpoint: str | None = None) -> DatasetDiff:
    """Compare ``source`` now with ``manifest``.

    ``contents=False`` is the fast check: paths and sizes from a walk and one ``stat``
    per file, no file read. ``contents=True`` re-hashes every file present in both (its
    size comes from that read). The two sorted path columns are joined in Arrow (a hash
    join); when the path lists are equal, which is the usual case, no join is needed.
    """
    listing = _list(source, endpoint=endpoint, sizes=not contents)
    cur_paths = listing.names
    man_paths, man_sizes = manifest.paths, manifest.sizes
    added: list[str] = []
    removed: list[str] = []
    same = len(cur_paths) == len(man_paths) and all(map(str.__eq__, cur_paths, man_paths))
    if same:
        pairs_cur: Sequence[int] = range(len(cur_paths))
        pairs_man: Sequence[int] = pairs_cur
    else:
        pairs_cur, pairs_man, added, removed = _join(cur_paths, man_paths)
    changed: list[int] = []  # indices into the manifest
    if not contents:
        cur_sizes = listing.sizes
        assert cur_sizes is not None
        changed = [m for c, m in zip(pairs_cur, pairs_man) if cur_sizes[c] != man_sizes[m]]
    elif pairs_cur:
        digests, sizes, _ = _hash(listing, None if same else pairs_cur, manifest.algorithm, False)
        expected = manifest.digests if same else b"".join(manifest.digest(m) for m in pairs_man)
        if digests != expected or sizes != [man_sizes[m] for m in pairs_man]:
            for k, m in enumerate(pairs_man):
                if sizes[k] != man_sizes[m] or \
                        digests[k * DIGEST_SIZE : (k + 1) * DIGEST_SIZE] != manifest.digest(m):
                    changed.append(m)
    return DatasetDiff(added=tuple(added), removed=tuple(removed),
                       changed=tuple(man_paths[m] for m in changed), contents=contents)


def _join(cur: Sequence[str], man: Sequence[str]) -> tuple[list[int], list[int], list[str], list[str]]:
    """Join two path columns: matched index pairs, then paths only in ``cur`` / only in ``man``."""
    pa, _ = _pyarrow()
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    cur_col, man_col = pa.array(cur, pa.string()), pa.array(man, pa.string())
    where = pc.index_in(cur_col, value_set=man_col)  # hash join: cur row -> man row, or null
    matched = pc.is_valid(where)
    pairs_cur = pc.indices_nonzero(matched).to_pylist()
    pairs_man = pc.drop_null(where).to_pylist()
    added = pc.filter(cur_col, pc.invert(matched)).to_pylist()
    removed = pc.filter(man_col, pc.invert(pc.is_in(man_col, value_set=cur_col))).to_pylist()
    return pairs_cur, pairs_man, added, removed


# ----------------------------------------------------------------------------- benchmark entry


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlpack.datasets build SRC -o OUT.parquet`` | ``check SRC MANIFEST [--contents]``.

    A thin entry point for the benchmarks until the ``mlpack`` CLI has dataset commands.
    """
    import argparse
    import json

    # pyarrow imports numpy when it is installed, and numpy's OpenBLAS then starts a thread
    # per core that spins: 0.1 CPU s taken from the hashing on 2 cores. No BLAS runs here.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(prog="python -m mlpack.datasets")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("source")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--algorithm", default="sha256", choices=ALGORITHMS)
    c = sub.add_parser("check")
    c.add_argument("source")
    c.add_argument("manifest")
    c.add_argument("--contents", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            m = build(args.source, algorithm=args.algorithm)
            m.to_parquet(args.output)
            print(json.dumps(m.summary()))
            return 0
        diff = compare(DatasetManifest.from_parquet(args.manifest), args.source, contents=args.contents)
        print(json.dumps({k: v if not isinstance(v, list) else len(v) for k, v in diff.to_dict().items()}))
        return 0 if diff.ok else 1
    except MlpackError as err:
        print(f"mlpack: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    from mlpack.datasets import main as _main  # the real module, not __main__ (worker pickling)

    raise SystemExit(_main())
