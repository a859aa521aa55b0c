"""mlpack.formats: no pickle under any name; safetensors headers validated like the reference reader."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save

from mlpack.errors import VerificationError
from mlpack.formats import WINDOW, check_content


def run(data: bytes, name: str = "weights.bin") -> str | None:
    return check_content(name, len(data), data[:WINDOW], data[-WINDOW:], lambda o, n: data[o : o + n])


class Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


PICKLES = [pickle.dumps(obj, protocol=p) for p in range(6)
           for obj in (Exploit(), {"w": np.arange(50_000, dtype=np.float32)}, [1, 2, 3], {"a": "b"})]


@pytest.mark.parametrize("data", PICKLES, ids=lambda d: f"pickle-{d[:2]!r}-{len(d)}")
@pytest.mark.parametrize("name", ["model.safetensors", "weights.bin", "notes.txt"])
def test_pickle_refused_under_any_name(data: bytes, name: str) -> None:
    with pytest.raises(VerificationError) as info:
        run(data, name)
    assert info.value.code == "E_UNSAFE_FORMAT"


def test_torch_style_zip_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Exploit(), protocol=2))
        z.writestr("archive/data/0", b"\0" * 100)
    with pytest.raises(VerificationError):
        run(buf.getvalue(), "model.pt")


def test_plain_zip_allowed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data/a.csv", "x,y\n")
    assert run(buf.getvalue(), "data.zip") is None


def test_numpy_object_array_refused() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(VerificationError):
        run(buf.getvalue(), "arr.npy")
    buf = io.BytesIO()
    np.save(buf, np.arange(10))
    assert run(buf.getvalue(), "arr.npy") is None


def test_random_data_is_not_pickle() -> None:
    """Random bytes start with a PROTO opcode once in 16k; the sniff must not cry wolf."""
    rng = np.random.default_rng(7)
    for _ in range(20_000):
        assert run(rng.bytes(600)) is None
    for proto in (2, 3, 4, 5):
        for _ in range(500):
            assert run(bytes([0x80, proto]) + rng.bytes(600)) is None


def test_text_and_code_are_not_pickle() -> None:
    for text in [b"(see below).", b"cat\nfoo\nbar\n", b"import os\nprint(1)\n", b'{"a": 1}', b"I am text."]:
        assert run(text) is None


def _safetensors() -> bytes:
    return save({"a": np.ones((2, 3), dtype=np.float32), "b": np.zeros(4, dtype=np.int64)},
                metadata={"k": "v"})


def test_valid_safetensors_detected() -> None:
    data = _safetensors()
    assert run(data, "model.safetensors") == "safetensors"
    assert run(data, "renamed.bin") == "safetensors"  # sniffed by content


def _with_header(header: dict[str, object], buffer: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + buffer


@pytest.mark.parametrize(
    "data",
    [
        struct.pack("<Q", 100_000_001) + b"{}",  # header length over the cap
        struct.pack("<Q", 50) + b"{}",  # header longer than the file
        _with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),  # overlap
        _with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),  # out of range
        _with_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),  # hole
        _with_header({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),  # shape/size
        _with_header({"a": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),  # dtype
        _with_header({"__metadata__": {"k": 1}}, b""),  # metadata values must be strings
        _with_header({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
        b'\x0e\x00\x00\x00\x00\x00\x00\x00{"a":1,"a":2}',  # duplicate keys
    ],
)
def test_broken_safetensors_refused(data: bytes) -> None:
    with pytest.raises(VerificationError) as info:
        run(data, "model.safetensors")
    assert info.value.code == "E_UNSAFE_FORMAT"


def test_safetensors_header_larger_than_window_is_read() -> None:
    tensors = {f"t{i:05d}": np.zeros(1, dtype=np.float32) for i in range(3000)}
    data = save(tensors)
    assert struct.unpack("<Q", data[:8])[0] > WINDOW
    assert run(data, "big.safetensors") == "safetensors"
