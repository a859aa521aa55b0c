"""The weights index (spec/weights.md): what is inside each weights file, tensor by tensor.

For safetensors: the header (validated by :func:`mlpack.formats.check_safetensors`), its
``__metadata__``, and per tensor the name, dtype, shape, byte range and sha256 of its bytes.
For ONNX: IR and opset versions, producer, graph inputs and outputs, and per initializer
the same tensor record, whether its bytes are inline or in an external-data file. Every
external-data ``location`` must name a file of the pack (CVE-2022-25882, CVE-2024-27318).

Tensor bytes are streamed with ``os.preadv`` in :data:`CHUNK` pieces into one reused buffer
per thread, one tensor per thread on every core (hashlib releases the GIL); no file or
tensor is ever loaded whole. :func:`tensor_root` digests the sorted (name, dtype, shape, sha256)
entries, so re-ordering, re-sharding or new metadata leave it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
import threading
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any

from . import jsonstrict
from ._parallel import map_ranges
from .errors import IOFailure, UsageError, VerificationError
from .formats import SAFETENSORS_MAX_HEADER, WINDOW, check_safetensors
from .names import check_name

__all__ = ["CHUNK", "OpsetImport", "TensorRecord", "ValueInfo", "WeightsIndex",
           "index_onnx", "index_safetensors", "tensor_root"]

CHUNK = 4 << 20  # bytes per read: big enough for few syscalls, small enough to stay cached
FORMATS = ("safetensors", "onnx")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_EXTERNAL_KEYS = frozenset(["location", "offset", "length", "checksum", "basepath"])
_ONNX_BITS = {"FLOAT": 32, "UINT8": 8, "INT8": 8, "UINT16": 16, "INT16": 16, "INT32": 32,
              "INT64": 64, "BOOL": 8, "FLOAT16": 16, "DOUBLE": 64, "UINT32": 32, "UINT64": 64,
              "COMPLEX64": 64, "COMPLEX128": 128, "BFLOAT16": 16, "FLOAT8E4M3FN": 8,
              "FLOAT8E4M3FNUZ": 8, "FLOAT8E5M2": 8, "FLOAT8E5M2FNUZ": 8, "FLOAT8E8M0": 8,
              "UINT4": 4, "INT4": 4, "FLOAT4E2M1": 4, "UINT2": 2, "INT2": 2}  # fmt: skip
_local = threading.local()


def _unsafe(name: str, why: str) -> VerificationError:
    return VerificationError(f"{name}: {why}", code="E_UNSAFE_FORMAT", member=name,
                             hint="re-export the model so that its weights are self-consistent")


def _bad(path: str, why: str) -> VerificationError:
    return VerificationError(f"weights index: {path} {why}", code="E_MANIFEST")


def _get(d: Mapping[str, Any], key: str, kind: type, path: str, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise _bad(path + key, "is required")
        return None
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad(path + key, f"must be of type {kind.__name__}")
    return value


def _each(d: Mapping[str, Any], key: str, kind: type, required: bool = False) -> list[tuple[Any, str]]:
    """The items of list ``d[key]``, each of type ``kind``, with their paths."""
    items = _get(d, key, list, "", required) or []
    for i, x in enumerate(items):
        if not isinstance(x, kind) or isinstance(x, bool):
            raise _bad(f"{key}[{i}]", f"must be of type {kind.__name__}")
    return [(x, f"{key}[{i}].") for i, x in enumerate(items)]


def _ints(value: Any, path: str, n: int | None = None) -> tuple[int, ...]:
    if not all(type(v) is int and v >= 0 for v in value) or (
            n is not None and (len(value) != n or value[0] > value[1])):
        raise _bad(path, "must be non-negative integers (a [begin, end] pair for offsets)")
    return tuple(value)


class _Record:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    """JSON form of a record: fields in order, None fields left out, tuples as lists."""
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(v) for f in fields(value) if (v := getattr(value, f.name)) is not None}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return dict(value) if isinstance(value, Mapping) else value


@dataclass(frozen=True, kw_only=True, slots=True)
class TensorRecord(_Record):
    """One tensor: its identity (name, dtype, shape, sha256) and where its bytes lie."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    sha256: str
    data_offsets: tuple[int, int] | None = None  # safetensors: [begin, end) in the data area
    file_offsets: tuple[int, int] | None = None  # [begin, end) in the file holding the bytes
    location: str | None = None  # ONNX external data: the pack name of that file

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> TensorRecord:
        digest = _get(d, "sha256", str, path)
        if not _HEX.match(digest):
            raise _bad(path + "sha256", "must be 64 lowercase hex digits")
        spans = {k: None if (v := _get(d, k, list, path, False)) is None else _ints(v, path + k, 2)
                 for k in ("data_offsets", "file_offsets")}
        return cls(name=_get(d, "name", str, path), dtype=_get(d, "dtype", str, path),
                   shape=_ints(_get(d, "shape", list, path), path + "shape"), sha256=digest,
                   location=_get(d, "location", str, path, False), **spans)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True, slots=True)
class ValueInfo(_Record):
    """An ONNX graph input or output; dims are ints, symbolic names, or None (unknown)."""

    name: str
    type: str  # "tensor", "sparse_tensor", "sequence", "map", "optional", "opaque", "unknown"
    elem_type: str | None = None
    shape: tuple[int | str | None, ...] | None = None  # None: rank unknown

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> ValueInfo:
        shape = _get(d, "shape", list, path, False)
        if shape is not None and not all(v is None or type(v) in (int, str) for v in shape):
            raise _bad(path + "shape", "dims must be integers, strings or null")
        return cls(name=_get(d, "name", str, path), type=_get(d, "type", str, path),
                   elem_type=_get(d, "elem_type", str, path, False),
                   shape=None if shape is None else tuple(shape))


@dataclass(frozen=True, kw_only=True, slots=True)
class OpsetImport(_Record):
    """An ONNX opset import; the domain "" is the default domain, ai.onnx."""

    domain: str
    version: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> OpsetImport:
        return cls(domain=_get(d, "domain", str, path), version=_get(d, "version", int, path))


_ONLY = {"safetensors": ("header_size", "metadata"),
         "onnx": ("ir_version", "producer_name", "producer_version", "opset_imports", "inputs",
                  "outputs", "external_data")}


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightsIndex:
    """The index of one weights file. Fields of the other format are left at their defaults."""

    format: str
    size: int
    tensor_root: str
    header_size: int | None = None  # safetensors: length of the JSON header
    metadata: Mapping[str, str] = field(default_factory=dict)  # safetensors: __metadata__
    ir_version: int | None = None
    producer_name: str | None = None
    producer_version: str | None = None
    opset_imports: tuple[OpsetImport, ...] = ()
    inputs: tuple[ValueInfo, ...] = ()
    outputs: tuple[ValueInfo, ...] = ()
    external_data: tuple[str, ...] = ()  # ONNX: pack names of the external-data files
    tensors: tuple[TensorRecord, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WeightsIndex:
        """Parse and check an index (``E_MANIFEST``), including that ``tensor_root`` matches."""
        fmt = _get(d, "format", str, "")
        if fmt not in FORMATS:
            raise _bad("format", f"must be one of {', '.join(FORMATS)}")
        meta = _get(d, "metadata", dict, "", False) or {}
        if not all(isinstance(v, str) for v in meta.values()):
            raise _bad("metadata", "must map strings to strings")
        opt = partial(_get, d, path="", required=False)
        out = cls(format=fmt, size=_get(d, "size", int, ""), tensor_root=_get(d, "tensor_root", str, ""),
                  header_size=opt("header_size", int), metadata=dict(meta), ir_version=opt("ir_version", int),
                  producer_name=opt("producer_name", str), producer_version=opt("producer_version", str),
                  opset_imports=tuple(OpsetImport.from_dict(*x) for x in _each(d, "opset_imports", dict)),
                  inputs=tuple(ValueInfo.from_dict(*x) for x in _each(d, "inputs", dict)),
                  outputs=tuple(ValueInfo.from_dict(*x) for x in _each(d, "outputs", dict)),
                  external_data=tuple(x for x, _ in _each(d, "external_data", str)),
                  tensors=tuple(TensorRecord.from_dict(*x) for x in _each(d, "tensors", dict, True)))
        try:
            if out.tensor_root == tensor_root(out):
                return out
        except VerificationError as err:
            raise _bad("tensors", err.message) from None
        raise _bad("tensor_root", "does not match the tensors")

    def to_dict(self) -> dict[str, Any]:
        other = _ONLY["onnx" if self.format == "safetensors" else "safetensors"]
        return {k: v for k, v in _plain(self).items() if k not in other}


def tensor_root(*indexes: WeightsIndex) -> str:
    """``sha256:`` over the name-sorted JCS lines ``[name,dtype,shape,sha256]\\n`` of all tensors.

    Several indexes (the shards of one model, same format) give one root for the model.
    """
    if len({i.format for i in indexes}) > 1:
        raise ValueError("a tensor root combines indexes of one format only")
    entries = sorted((t.name, t.dtype, list(t.shape), t.sha256) for i in indexes for t in i.tensors)
    h = hashlib.sha256()
    for k, entry in enumerate(entries):
        if k and entries[k - 1][0] == entry[0]:
            raise VerificationError(f"tensor {entry[0]!r} occurs twice", code="E_UNSAFE_FORMAT")
        h.update(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    return "sha256:" + h.hexdigest()


def _sha256_range(fd: int, begin: int, end: int, name: str) -> str:
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) != CHUNK:
        buf = _local.buf = bytearray(CHUNK)  # reused: no page faults per chunk
    view, h, pos = memoryview(buf), hashlib.sha256(), begin
    while pos < end:
        chunk = view[: min(CHUNK, end - pos)]
        n = os.preadv(fd, [chunk], pos)
        if n <= 0:
            raise _unsafe(name, f"file ends at byte {pos}, before the tensor data it declares")
        h.update(chunk[:n])
        pos += n
    return h.hexdigest()


def _hash_task(jobs: list[tuple[int, int, int, str]], indices: range) -> list[tuple[str]]:
    return [(_sha256_range(*jobs[k]),) for k in indices]


def _hash_all(jobs: list[tuple[int, int, int, str]]) -> list[str]:
    """sha256 of each (fd, begin, end, name) byte range, on every core (mlpack._parallel)."""
    if len(jobs) <= 1:
        return [d for (d,) in _hash_task(jobs, range(len(jobs)))]
    ranges = [range(k, k + 1) for k in range(len(jobs))]
    return [d for (d,) in map_ranges(_hash_task, jobs, ranges, processes=False)]


def _open(path: str | os.PathLike[str], name: str, what: str = "", *, follow: bool = True) -> int:
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if not follow and os.path.islink(path):
            raise _unsafe(name, f"{what}is a symbolic link") from None
        raise IOFailure.from_os_error(err, name) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _unsafe(name, f"{what}is not a regular file")
    return fd


def index_safetensors(path: str | os.PathLike[str], *, name: str | None = None) -> WeightsIndex:
    """Index a safetensors file after validating its header; ``name`` is used in errors."""
    name = name or os.path.basename(path)
    fd = _open(path, name)
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, min(size, WINDOW), 0)
        check_safetensors(name, size, head, lambda pos, n: os.pread(fd, n, pos))
        (n,) = struct.unpack_from("<Q", head)
        raw = head[8 : 8 + n] if 8 + n <= len(head) else os.pread(fd, n, 8)
        header = jsonstrict.loads(raw.rstrip(b" "), what="safetensors header",
                                  max_size=SAFETENSORS_MAX_HEADER, max_depth=4, member=name)
        metadata = header.pop("__metadata__", {})
        items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])  # file order
        spans = [(8 + n + i["data_offsets"][0], 8 + n + i["data_offsets"][1]) for _, i in items]
        digests = _hash_all([(fd, b, e, name) for b, e in spans])
    except OSError as err:
        raise IOFailure.from_os_error(err, name) from None
    finally:
        os.close(fd)
    tensors = tuple(TensorRecord(name=key, dtype=i["dtype"], shape=tuple(i["shape"]), sha256=d,
                                 data_offsets=tuple(i["data_offsets"]), file_offsets=span)
                    for (key, i), span, d in zip(items, spans, digests, strict=True))
    index = WeightsIndex(format="safetensors", size=size, tensor_root="", tensors=tensors,
                         header_size=n, metadata=metadata)
    return replace(index, tensor_root=tensor_root(index))


def _onnx_tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto of the model: initializers and attributes, in subgraphs and functions."""
    graphs, nodes = [model.graph] + [t.algorithm for t in model.training_info] + [
        t.initialization for t in model.training_info], [n for f in model.functions for n in f.node]
    while graphs or nodes:
        if graphs:
            g = graphs.pop()
            yield from g.initializer
            for s in g.sparse_initializer:
                yield from (s.values, s.indices)
            nodes.extend(g.node)
            continue
        for a in nodes.pop().attribute:
            yield from [a.t] if a.HasField("t") else []
            yield from a.tensors
            for s in [a.sparse_tensor] * a.HasField("sparse_tensor") + list(a.sparse_tensors):
                yield from (s.values, s.indices)
            graphs.extend([a.g] * a.HasField("g") + list(a.graphs))


def _dtype(onnx: Any, code: int, where: str, model: str) -> str:
    try:
        return str(onnx.TensorProto.DataType.Name(code))
    except ValueError:
        raise _unsafe(model, f"{where}: unknown data type {code}") from None


def _value_info(onnx: Any, v: Any, model: str) -> ValueInfo:
    kind = v.type.WhichOneof("value")
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return ValueInfo(name=v.name, type=kind.removesuffix("_type") if kind else "unknown")
    t = getattr(v.type, kind)
    dims: tuple[int | str | None, ...] | None = None
    if t.HasField("shape"):
        dims = tuple(getattr(d, d.WhichOneof("value")) if d.WhichOneof("value") else None
                     for d in t.shape.dim)
        if any(type(d) is int and d < 0 for d in dims):
            raise _unsafe(model, f"{v.name!r}: negative dimension")
    return ValueInfo(name=v.name, type=kind.removesuffix("_type"),
                     elem_type=_dtype(onnx, t.elem_type, v.name, model), shape=dims)


def _uses_external(t: Any) -> bool:
    """As readers differ, any external_data entry counts, not only data_location EXTERNAL (1)."""
    return bool(t.data_location == 1 or len(t.external_data))


def _external(t: Any, model: str, base: str, files: AbstractSet[str]) -> tuple[str, str, int, int | None]:
    """(pack name, location, offset, length) of a tensor's external data, or why it is unsafe."""
    entries = [(e.key, e.value) for e in t.external_data]
    info = dict(entries)
    where = f"tensor {t.name!r} external data"
    if len(info) != len(entries) or not info.keys() <= _EXTERNAL_KEYS or info.get("basepath"):
        raise _unsafe(model, f"{where}: unknown or repeated keys, or a basepath {sorted(info)}")
    location = info.get("location", "")
    try:
        check_name(location)
    except VerificationError as err:
        why = err.message.split(": ", 1)[-1]
        raise _unsafe(model, f"{where}: location {location!r} is not a plain relative name ({why})") from None
    joined = f"{base}/{location}" if base else location
    if joined not in files:
        raise _unsafe(model, f"{where}: location {location!r} is not a file of the pack")
    if t.HasField("raw_data") or not all(_DIGITS.match(info.get(k, "0")) for k in ("offset", "length")):
        raise _unsafe(model, f"{where}: offset and length must be decimal integers, without raw_data")
    length = info.get("length")
    return joined, location, int(info.get("offset", "0")), None if length is None else int(length)


def _initializer_digest(onnx: Any, t: Any, dtype: str, nbytes: int | None, model: str) -> str:
    """sha256 of an inline initializer's little-endian bytes (typed fields are converted)."""
    if t.HasField("raw_data"):
        if nbytes is not None and len(t.raw_data) != nbytes:
            raise _unsafe(model, f"initializer {t.name!r}: {len(t.raw_data)} bytes, not {nbytes}")
        return hashlib.sha256(t.raw_data).hexdigest()
    if dtype == "STRING":  # no fixed width: each element as 8-byte little-endian length + bytes
        return hashlib.sha256(b"".join(len(s).to_bytes(8, "little") + s for s in t.string_data)).hexdigest()
    try:
        array = onnx.numpy_helper.to_array(t)
    except Exception as err:  # noqa: BLE001 - counts that do not match dims, unknown types
        raise _unsafe(model, f"initializer {t.name!r}: {err}") from None
    return hashlib.sha256(array.astype(array.dtype.newbyteorder("<")).tobytes()).hexdigest()


def index_onnx(path: str | os.PathLike[str], files: AbstractSet[str], base: str = "") -> WeightsIndex:
    """Index an ONNX model; ``files``: the other pack names, ``base``: its directory in the pack."""
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError:
        raise UsageError("indexing ONNX weights needs the onnx package",
                         hint="pip install 'mlpack[onnx]'") from None
    name = f"{base}/{os.path.basename(path)}" if base else os.path.basename(path)
    try:
        size = os.stat(path).st_size
        model = onnx.load(os.fspath(path), load_external_data=False)
    except OSError as err:
        raise IOFailure.from_os_error(err, name) from None
    except Exception as err:  # noqa: BLE001 - any parse failure is a malformed model
        raise _unsafe(name, f"not a valid ONNX model ({type(err).__name__}: {err})") from None
    external = {_external(t, name, base, files)[0] for t in _onnx_tensors(model) if _uses_external(t)}
    fds: dict[str, int] = {}
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    jobs: list[tuple[int, tuple[int, int, int, str]]] = []
    try:
        for t in model.graph.initializer:
            dtype = _dtype(onnx, t.data_type, f"initializer {t.name!r}", name)
            if t.name in seen or any(d < 0 for d in t.dims):
                raise _unsafe(name, f"initializer {t.name!r} is repeated or has a negative dim")
            seen.add(t.name)
            count = 1
            for d in t.dims:
                count *= d
            nbytes = -(-count * _ONNX_BITS[dtype] // 8) if dtype in _ONNX_BITS else None
            record: dict[str, Any] = {"name": t.name, "dtype": dtype, "shape": tuple(t.dims)}
            if not _uses_external(t):
                records.append({**record, "sha256": _initializer_digest(onnx, t, dtype, nbytes, name)})
                continue
            joined, location, offset, length = _external(t, name, base, files)
            if joined not in fds:
                disk = os.path.join(os.path.dirname(path), *location.split("/"))
                fds[joined] = _open(disk, name, f"external data file {joined!r} ", follow=False)
            have = os.fstat(fds[joined]).st_size
            end = have if length is None else offset + length
            if end > have or offset > end or (nbytes is not None and end - offset != nbytes):
                raise _unsafe(name, f"initializer {t.name!r}: bytes {offset}..{end} of {joined} "
                                    f"({have} bytes) do not hold its {nbytes} bytes")
            jobs.append((len(records), (fds[joined], offset, end, joined)))
            records.append({**record, "sha256": "", "location": joined, "file_offsets": (offset, end)})
        for (k, _), digest in zip(jobs, _hash_all([job for _, job in jobs]), strict=True):
            records[k]["sha256"] = digest
    except OSError as err:
        raise IOFailure.from_os_error(err, name) from None
    finally:
        for fd in fds.values():
            os.close(fd)
    index = WeightsIndex(
        format="onnx", size=size, tensor_root="", tensors=tuple(TensorRecord(**r) for r in records),
        ir_version=model.ir_version, producer_name=model.producer_name or None,
        producer_version=model.producer_version or None,
        opset_imports=tuple(OpsetImport(domain=o.domain, version=o.version) for o in model.opset_import),
        inputs=tuple(_value_info(onnx, v, name) for v in model.graph.input),
        outputs=tuple(_value_info(onnx, v, name) for v in model.graph.output),
        external_data=tuple(sorted(external)))
    return replace(index, tensor_root=tensor_root(index))
