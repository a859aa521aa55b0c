"""Compare the tensors of two safetensors files, one tensor at a time, without loading models.

Both files are indexed first (``mlpack.weights.index_safetensors``: header validated, each
tensor's bytes hashed). Tensors with the same name, dtype, shape and sha256 are
bit-identical; for the others the byte ranges are read in bounded chunks and compared as
numbers: maximum absolute difference, and maximum relative difference
``|a - b| / max(|a|, |b|)`` (0 where both are 0). Used by ``verify --rebuild`` (rebuilt
weights against the shipped ones) and ``mlpack diff``.

    deltas = compare_safetensors("shipped.safetensors", "rebuilt.safetensors")
    [d for d in deltas if not d.identical]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import IOFailure
from .weights import TensorRecord, WeightsIndex, index_safetensors

__all__ = ["TensorDelta", "compare_indexes", "compare_safetensors", "summary"]

CHUNK_ELEMENTS = 1 << 20
Status = Literal["identical", "changed", "reshaped", "added", "removed"]
_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
          "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "u1"}
_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
         "U16": 2, "U32": 4, "U64": 8, "BOOL": 1}


@dataclass(frozen=True, kw_only=True, slots=True)
class TensorDelta:
    """How one tensor differs between file A and file B."""

    name: str
    status: Status
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    other_shape: tuple[int, ...] | None = None
    max_abs: float | None = None
    """Largest |a - b| over the elements (changed tensors of a numeric dtype)."""
    max_rel: float | None = None
    """Largest |a - b| / max(|a|, |b|)."""
    differing: int | None = None
    """How many elements differ."""

    @property
    def identical(self) -> bool:
        return self.status == "identical"

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "status": self.status, "dtype": self.dtype,
               "shape": list(self.shape) if self.shape is not None else None,
               "other_shape": list(self.other_shape) if self.other_shape is not None else None,
               "max_abs": self.max_abs, "max_rel": self.max_rel, "differing": self.differing}
        return {k: v for k, v in out.items() if v is not None}


def _as_float(raw: bytes, dtype: str) -> Any:
    import numpy as np

    values = np.frombuffer(raw, dtype=_NUMPY[dtype])
    if dtype == "BF16":  # bfloat16: the high half of a float32
        return (values.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return values.astype(np.float64)


def _numeric_delta(fd_a: int, fd_b: int, a: TensorRecord, b: TensorRecord) -> tuple[float, float, int]:
    """Max absolute and relative difference and the count of differing elements, by chunks."""
    import numpy as np

    width = _SIZE[a.dtype]
    (start_a, end_a), (start_b, _) = a.file_offsets or (0, 0), b.file_offsets or (0, 0)
    step = CHUNK_ELEMENTS * width
    max_abs = max_rel = 0.0
    differing = 0
    pos = 0
    total = end_a - start_a
    with np.errstate(invalid="ignore", divide="ignore"):
        while pos < total:
            n = min(step, total - pos)
            x = _as_float(os.pread(fd_a, n, start_a + pos), a.dtype)
            y = _as_float(os.pread(fd_b, n, start_b + pos), a.dtype)
            if len(x) != len(y):
                raise IOFailure("a weights file changed while it was compared", code="E_IO")
            diff = np.abs(x - y)
            unequal = ~((x == y) | (np.isnan(x) & np.isnan(y)))
            differing += int(np.count_nonzero(unequal))
            if unequal.any():
                d = diff[unequal]
                scale = np.maximum(np.abs(x[unequal]), np.abs(y[unequal]))
                rel = np.where(scale > 0, d / scale, 0.0)
                max_abs = max(max_abs, float(np.nanmax(d)) if not np.isnan(d).all() else float("nan"))
                max_rel = max(max_rel, float(np.nanmax(rel)) if not np.isnan(rel).all() else float("nan"))
            pos += n
    return max_abs, max_rel, differing


def compare_indexes(a: WeightsIndex, b: WeightsIndex) -> list[TensorDelta]:
    """Tensor by tensor, by digest only (no file access): names sorted."""
    ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
    out = []
    for name in sorted(ta.keys() | tb.keys()):
        x, y = ta.get(name), tb.get(name)
        if x is None or y is None:
            t = x or y
            assert t is not None
            out.append(TensorDelta(name=name, status="removed" if y is None else "added", dtype=t.dtype,
                                   shape=tuple(t.shape)))
        elif (x.dtype, tuple(x.shape)) != (y.dtype, tuple(y.shape)):
            out.append(TensorDelta(name=name, status="reshaped", dtype=x.dtype, shape=tuple(x.shape),
                                   other_shape=tuple(y.shape)))
        else:
            out.append(TensorDelta(name=name, status="identical" if x.sha256 == y.sha256 else "changed",
                                   dtype=x.dtype, shape=tuple(x.shape)))
    return out


def compare_safetensors(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> list[TensorDelta]:
    """Every tensor of A and B: identical, changed (with its numeric differences), reshaped,
    added (only in B) or removed (only in A)."""
    ia, ib = index_safetensors(a), index_safetensors(b)
    deltas = compare_indexes(ia, ib)
    changed = [d for d in deltas if d.status == "changed" and d.dtype in _NUMPY]
    if not changed:
        return deltas
    ta, tb = {t.name: t for t in ia.tensors}, {t.name: t for t in ib.tensors}
    fd_a, fd_b = os.open(a, os.O_RDONLY | os.O_CLOEXEC), os.open(b, os.O_RDONLY | os.O_CLOEXEC)
    try:
        numbers = {d.name: _numeric_delta(fd_a, fd_b, ta[d.name], tb[d.name]) for d in changed}
    finally:
        os.close(fd_a)
        os.close(fd_b)
    out = []
    for d in deltas:
        if d.name in numbers:
            max_abs, max_rel, n = numbers[d.name]
            d = TensorDelta(name=d.name, status=d.status, dtype=d.dtype, shape=d.shape, max_abs=max_abs,
                            max_rel=max_rel, differing=n)
        out.append(d)
    return out


def summary(deltas: Sequence[TensorDelta], worst: int = 5) -> dict[str, Any]:
    """Counts per status and the tensors that differ most (by max_rel, then max_abs)."""
    counts: dict[str, int] = {}
    for d in deltas:
        counts[d.status] = counts.get(d.status, 0) + 1
    differing = sorted((d for d in deltas if not d.identical),
                       key=lambda d: (-(d.max_rel or 0.0), -(d.max_abs or 0.0), d.name))
    return {"tensors": len(deltas), "identical": counts.get("identical", 0), "counts": counts,
            "worst": [d.to_dict() for d in differing[:worst]]}
