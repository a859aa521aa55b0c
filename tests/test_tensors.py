"""Tensor-by-tensor comparison of safetensors files (mlpack.tensors)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from mlpack import tensors
from mlpack.tensors import compare_safetensors, summary


def test_identical_changed_reshaped_added_removed(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 33)).astype(np.float32)
    common = {"w": w, "ints": np.arange(10, dtype=np.int64), "same": np.ones(5, np.float64)}
    a = {**common, "gone": np.zeros(3, np.float32), "shape": np.zeros((2, 3), np.float32)}
    w2 = w.copy()
    w2[3, 7] += 0.5  # one element: abs diff 0.5
    w2[10, 1] = -w2[10, 1]  # sign flip: relative difference 2
    ints2 = common["ints"].copy()
    ints2[9] = 19
    b = {"w": w2, "ints": ints2, "same": common["same"], "new": np.ones(1, np.float32),
         "shape": np.zeros((3, 2), np.float32)}
    save_file(a, str(tmp_path / "a.safetensors"))
    save_file(b, str(tmp_path / "b.safetensors"))
    by = {d.name: d for d in compare_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")}
    assert {n: d.status for n, d in by.items()} == {"w": "changed", "ints": "changed", "same": "identical",
                                                    "gone": "removed", "new": "added", "shape": "reshaped"}
    flipped = abs(w[10, 1])
    assert by["w"].differing == 2
    assert by["w"].max_abs == pytest.approx(max(0.5, 2 * flipped), rel=1e-6)
    assert by["w"].max_rel == pytest.approx(2.0 if w[10, 1] != 0 else 0.0)
    assert (by["ints"].max_abs, by["ints"].differing) == (10.0, 1)
    assert by["shape"].other_shape == (3, 2)
    s = summary(list(by.values()))
    assert (s["tensors"], s["identical"]) == (6, 1) and s["worst"][0]["name"] == "w"


def test_bf16_and_chunked_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensors, "CHUNK_ELEMENTS", 7)  # many chunks, one partial
    x = np.arange(100, dtype=np.float32)
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)  # exact bfloat16 of small integers
    y = bf.copy()
    y[50] = (np.array([60.0], np.float32).view(np.uint32) >> 16).astype(np.uint16)[0]
    for name, arr in (("a", bf), ("b", y)):  # written by hand: numpy has no bfloat16
        header = json.dumps({"t": {"dtype": "BF16", "shape": [100], "data_offsets": [0, 200]}}).encode()
        header += b" " * (-len(header) % 8)
        (tmp_path / f"{name}.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + arr.tobytes())
    (d,) = compare_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert (d.dtype, d.status, d.differing) == ("BF16", "changed", 1)
    assert d.max_abs == 10.0 and d.max_rel == pytest.approx(10 / 60)


def test_identical_files_read_no_tensor_twice(tmp_path: Path) -> None:
    save_file({"x": np.ones(4, np.float32)}, str(tmp_path / "a.safetensors"))
    save_file({"x": np.ones(4, np.float32)}, str(tmp_path / "b.safetensors"))
    (d,) = compare_safetensors(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert d.identical and d.max_abs is None
