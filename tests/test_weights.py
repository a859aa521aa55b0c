"""mlpack.weights: the weights index of real safetensors and ONNX files (spec/weights.md)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from safetensors.numpy import save_file

from mlpack import weights
from mlpack.errors import VerificationError
from mlpack.weights import WeightsIndex, index_onnx, index_safetensors, tensor_root

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "spec" / "schema" / "weights-index.schema.json").read_text())
FENCE = re.compile(r"^```json schema=weights-index\n(.*?)^```", re.MULTILINE | re.DOTALL)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def valid(index: WeightsIndex) -> dict[str, Any]:
    doc = index.to_dict()
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert WeightsIndex.from_dict(json.loads(json.dumps(doc))) == index
    return doc


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "layer1.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "layer1.bias": np.zeros(16, dtype=np.float16),
        "steps": np.array([3, 1, 2], dtype=np.int64),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 4), dtype=np.uint8),
        "scalar": np.array(2.5, dtype=np.float64),
    }


# --- safetensors ------------------------------------------------------------------------------

def test_safetensors_index_matches_numpy_bytes(tmp_path: Path) -> None:
    tensors = arrays()
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "np", "arch": "mlp"})
    index = index_safetensors(path)
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8 : 8 + n])
    assert (index.format, index.size, index.header_size) == ("safetensors", len(raw), n)
    assert index.metadata == {"format": "np", "arch": "mlp"}
    dtypes = {"layer1.weight": "F32", "layer1.bias": "F16", "steps": "I64", "mask": "BOOL",
              "empty": "U8", "scalar": "F64"}
    assert {t.name for t in index.tensors} == set(tensors)
    for t in index.tensors:
        assert t.sha256 == sha(tensors[t.name].tobytes())
        assert (t.dtype, t.shape) == (dtypes[t.name], tensors[t.name].shape)
        assert list(t.data_offsets or ()) == header[t.name]["data_offsets"]
        begin, end = t.file_offsets or (0, 0)
        assert (begin, end) == (8 + n + header[t.name]["data_offsets"][0], 8 + n + header[t.name]["data_offsets"][1])
        assert raw[begin:end] == tensors[t.name].tobytes()
    assert [t.file_offsets for t in index.tensors] == sorted(t.file_offsets for t in index.tensors)  # type: ignore[type-var]
    assert valid(index)["tensor_root"] == tensor_root(index)


def test_large_tensor_is_streamed_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "CHUNK", 64 * 1024)
    reads: list[int] = []
    real = os.preadv

    def preadv(fd: int, bufs: list[memoryview], pos: int) -> int:
        reads.append(len(bufs[0]))
        return real(fd, bufs, pos)

    monkeypatch.setattr(os, "preadv", preadv)
    big = np.arange(300_000, dtype=np.float32)  # 1.2 MB, 19 chunks
    path = tmp_path / "big.safetensors"
    save_file({"big": big, "small": big[:10].copy()}, str(path))
    index = index_safetensors(path)
    assert {t.name: t.sha256 for t in index.tensors} == {"big": sha(big.tobytes()), "small": sha(big[:10].tobytes())}
    assert max(reads) <= 64 * 1024 and len(reads) >= 19


def test_tensor_root_ignores_order_metadata_and_sharding(tmp_path: Path) -> None:
    tensors = arrays()
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(tensors, str(a), metadata={"run": "1"})
    save_file(dict(reversed(list(tensors.items()))), str(b), metadata={"run": "2", "extra": "x"})
    ia, ib = index_safetensors(a), index_safetensors(b)
    assert sha(a.read_bytes()) != sha(b.read_bytes())
    assert ia.tensor_root == ib.tensor_root
    names = sorted(tensors)
    s1, s2 = tmp_path / "s1.safetensors", tmp_path / "s2.safetensors"
    save_file({k: tensors[k] for k in names[:3]}, str(s1))
    save_file({k: tensors[k] for k in names[3:]}, str(s2))
    i1, i2 = index_safetensors(s1), index_safetensors(s2)
    assert tensor_root(i1, i2) == tensor_root(i2, i1) == ia.tensor_root != i1.tensor_root
    with pytest.raises(VerificationError, match="occurs twice"):
        tensor_root(ia, i1)


@pytest.mark.parametrize("change", ["value", "name", "dtype", "shape"])
def test_tensor_root_changes_with_any_tensor(tmp_path: Path, change: str) -> None:
    tensors = arrays()
    save_file(tensors, str(tmp_path / "a.safetensors"))
    w = tensors.pop("layer1.weight")
    name = "layer1.weight"
    if change == "value":
        w = w.copy()
        w[0, 0] += 1
    elif change == "name":
        name = "layer1.Weight"
    elif change == "dtype":
        w = w.view(np.int32)
    else:
        w = w.reshape(8, 16)
    save_file({**tensors, name: w}, str(tmp_path / "b.safetensors"))
    roots = {index_safetensors(tmp_path / f"{n}.safetensors").tensor_root for n in "ab"}
    assert len(roots) == 2


def test_tensor_root_is_the_documented_formula(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"b": np.ones(2, np.float32), "a": np.zeros((1, 2), np.int8), "é\n": np.ones(1, np.uint8)}, str(path))
    index = index_safetensors(path)
    lines = sorted((t.name, t.dtype, list(t.shape), t.sha256) for t in index.tensors)
    text = "".join(json.dumps(list(e), ensure_ascii=False, separators=(",", ":")) + "\n" for e in lines)
    assert '["é\\n","U8",[1],' in text
    assert index.tensor_root == "sha256:" + sha(text.encode())


def test_invalid_safetensors_is_refused_by_the_shared_check(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(VerificationError) as info:
        index_safetensors(path)
    assert info.value.code == "E_UNSAFE_FORMAT" and "bad.safetensors" in info.value.message


def test_a_file_cut_short_while_hashing_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_file(arrays(), str(tmp_path / "m.safetensors"))
    with monkeypatch.context() as patch:
        patch.setattr(os, "preadv", lambda fd, bufs, pos: 0)  # as if truncated after the header check
        assert "file ends at byte" in unsafe(index_safetensors, tmp_path / "m.safetensors")
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(100))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(VerificationError, match="file ends at byte 100"):
            weights._sha256_range(fd, 50, 150, "x.bin")
    finally:
        os.close(fd)


# --- ONNX --------------------------------------------------------------------------------------

def mlp() -> tuple[Any, dict[str, np.ndarray]]:
    """X[batch, 4] -> MatMul W1 -> Add b1 -> Relu -> MatMul W2 -> Add b2 -> Y[batch, 3]."""
    rng = np.random.default_rng(1)
    init: dict[str, np.ndarray] = {"W1": rng.standard_normal((4, 64)).astype(np.float32), "b1": np.zeros(64, np.float32),
            "W2": rng.standard_normal((64, 3)).astype(np.float32), "b2": np.arange(3, dtype=np.float32),
            "shape": np.array([-1, 3], np.int64)}
    nodes = [helper.make_node("MatMul", ["X", "W1"], ["h1"]), helper.make_node("Add", ["h1", "b1"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["h3"]), helper.make_node("MatMul", ["h3", "W2"], ["h4"]),
             helper.make_node("Add", ["h4", "b2"], ["h5"]), helper.make_node("Reshape", ["h5", "shape"], ["Y"])]
    tensors = [numpy_helper.from_array(v, k) for k, v in init.items() if k != "b2"]
    tensors.append(helper.make_tensor("b2", TensorProto.FLOAT, [3], init["b2"].tolist()))  # float_data, not raw
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])], tensors)
    model = helper.make_model(graph, producer_name="mlpack-tests", producer_version="1.2",
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    return model, init


def test_onnx_index_of_an_mlp(tmp_path: Path) -> None:
    model, init = mlp()
    onnx.checker.check_model(model)
    model.graph.output.extend([  # outputs of unknown rank, unknown dims, non-tensor type
        helper.make_tensor_value_info("Z", TensorProto.INT64, None),
        helper.make_tensor_value_info("U", TensorProto.BFLOAT16, [None, "n", 0]),
        helper.make_value_info("S", helper.make_sequence_type_proto(helper.make_tensor_type_proto(1, None)))])
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path))
    index = index_onnx(path, set())
    assert (index.format, index.size, index.ir_version) == ("onnx", path.stat().st_size, model.ir_version)
    assert [(o.domain, o.version) for o in index.opset_imports] == [("", 17), ("ai.onnx.ml", 3)]
    assert (index.producer_name, index.producer_version) == ("mlpack-tests", "1.2")
    assert [(v.name, v.type, v.elem_type, v.shape) for v in index.inputs] == [("X", "tensor", "FLOAT", ("batch", 4))]
    assert [(v.name, v.type, v.elem_type, v.shape) for v in index.outputs] == [
        ("Y", "tensor", "FLOAT", ("batch", 3)), ("Z", "tensor", "INT64", None),
        ("U", "tensor", "BFLOAT16", (None, "n", 0)), ("S", "sequence", None, None)]
    assert {t.name: (t.dtype, t.shape, t.sha256) for t in index.tensors} == {
        k: ({np.float32: "FLOAT", np.int64: "INT64"}[v.dtype.type], v.shape, sha(v.tobytes())) for k, v in init.items()}
    assert index.external_data == () and all(t.location is None for t in index.tensors)
    doc = valid(index)
    assert doc["inputs"][0]["shape"] == ["batch", 4] and "shape" not in doc["outputs"][1]
    assert doc["outputs"][2]["shape"] == [None, "n", 0] and doc["outputs"][3] == {"name": "S", "type": "sequence"}


@pytest.mark.parametrize("base", ["", "onnx/v1"])
def test_onnx_external_data(tmp_path: Path, base: str) -> None:
    model, init = mlp()
    onnx.save_model(model, str(tmp_path / "inline.onnx"))
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    data = (tmp_path / "model.onnx.data").read_bytes()
    name = f"{base}/model.onnx.data" if base else "model.onnx.data"
    index = index_onnx(path, {name, "other.txt"}, base)
    assert index.external_data == (name,)
    by_name = {t.name: t for t in index.tensors}
    assert {k: t.sha256 for k, t in by_name.items()} == {k: sha(v.tobytes()) for k, v in init.items()}
    assert by_name["b2"].location is None  # typed fields stay inline
    for key in ("W1", "b1", "W2", "shape"):
        t = by_name[key]
        begin, end = t.file_offsets or (0, 0)
        assert t.location == name and data[begin:end] == init[key].tobytes()
    assert index.tensor_root == index_onnx(tmp_path / "inline.onnx", set()).tensor_root
    valid(index)


def external_model(tmp_path: Path, location: str, **entries: str) -> Path:
    """model.onnx whose W1 names ``location`` as its external data (written by hand)."""
    model, init = mlp()
    (tmp_path / "model.onnx.data").write_bytes(init["W1"].tobytes())
    w1 = next(t for t in model.graph.initializer if t.name == "W1")
    w1.ClearField("raw_data")
    w1.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": str(init["W1"].nbytes), **entries}.items():
        entry = w1.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def unsafe(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(VerificationError) as info:
        call(*args, **kwargs)
    assert info.value.code == "E_UNSAFE_FORMAT", info.value
    return info.value.message


def test_hand_written_external_data_is_accepted(tmp_path: Path) -> None:
    path = external_model(tmp_path, "model.onnx.data")
    index = index_onnx(path, {"model.onnx.data"})
    assert next(t for t in index.tensors if t.name == "W1").sha256 == sha(mlp()[1]["W1"].tobytes())


@pytest.mark.parametrize("location", [
    "../x", "/etc/passwd", "sub/../../x", "sub/../model.onnx.data", "./model.onnx.data", "missing.bin",
    "..\\model.onnx.data", "C:model.onnx.data", "model.onnx.data/", "", "model.onnx.data\x00", "MODEL.ONNX.DATA",
])
def test_hostile_external_locations_are_refused(tmp_path: Path, location: str) -> None:
    path = external_model(tmp_path, location)
    message = unsafe(index_onnx, path, {"model.onnx.data", "x", "sub/x"})
    assert message.startswith("model.onnx: ") and repr(location) in message


def test_location_is_resolved_inside_the_models_directory(tmp_path: Path) -> None:
    path = external_model(tmp_path, "model.onnx.data")
    assert "not a file of the pack" in unsafe(index_onnx, path, {"model.onnx.data"}, "onnx")  # onnx/model.onnx.data
    message = unsafe(index_onnx, path, {"onnx/model.onnx.data"}, "models")
    assert message.startswith("models/model.onnx: ")


@pytest.mark.parametrize("entries", [
    {"offset": "+0"}, {"offset": "-1"}, {"length": " 4"}, {"length": "1_0"}, {"basepath": "/etc"},
    {"owner": "x"}, {"offset": "0x10"},
])
def test_hostile_external_entries_are_refused(tmp_path: Path, entries: dict[str, str]) -> None:
    unsafe(index_onnx, external_model(tmp_path, "model.onnx.data", **entries), {"model.onnx.data"})


def test_repeated_external_key_is_refused(tmp_path: Path) -> None:
    path = external_model(tmp_path, "model.onnx.data")
    model = onnx.load(str(path), load_external_data=False)
    entry = model.graph.initializer[0].external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"  # last one wins in some readers
    path.write_bytes(model.SerializeToString())
    assert "repeated" in unsafe(index_onnx, path, {"model.onnx.data"})


def test_external_data_in_a_constant_node_is_checked_too(tmp_path: Path) -> None:
    model, _ = mlp()
    const = numpy_helper.from_array(np.ones(4, np.float32), "c")
    const.data_location = TensorProto.EXTERNAL
    entry = const.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    model.graph.node.append(helper.make_node("Constant", [], ["c"], value=const))
    (tmp_path / "model.onnx").write_bytes(model.SerializeToString())
    assert "'../../etc/passwd'" in unsafe(index_onnx, tmp_path / "model.onnx", set())


def test_external_data_in_a_subgraph_or_function_is_checked_too(tmp_path: Path) -> None:
    def hostile(name: str) -> Any:
        t = numpy_helper.from_array(np.ones(2, np.float32), name)
        t.data_location = TensorProto.EXTERNAL
        entry = t.external_data.add()
        entry.key, entry.value = "location", "sub/../../x"
        return t

    model, _ = mlp()
    branch = helper.make_graph([helper.make_node("Identity", ["k"], ["o"])], "then", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])], [hostile("k")])
    model.graph.node.append(helper.make_node("If", ["cond"], ["o"], then_branch=branch, else_branch=branch))
    (tmp_path / "a.onnx").write_bytes(model.SerializeToString())
    assert "'sub/../../x'" in unsafe(index_onnx, tmp_path / "a.onnx", {"x"})
    model, _ = mlp()
    model.functions.append(helper.make_function("local", "f", [], ["c"], [
        helper.make_node("Constant", [], ["c"], value=hostile("c"))], [helper.make_opsetid("", 17)]))
    (tmp_path / "b.onnx").write_bytes(model.SerializeToString())
    assert "'sub/../../x'" in unsafe(index_onnx, tmp_path / "b.onnx", {"x"})


@pytest.mark.parametrize("cut", [1, 256])
def test_truncated_external_file_is_refused(tmp_path: Path, cut: int) -> None:
    model, _ = mlp()
    path = tmp_path / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx.data", size_threshold=0)
    data = tmp_path / "model.onnx.data"
    data.write_bytes(data.read_bytes()[:-cut])
    assert "model.onnx.data" in unsafe(index_onnx, path, {"model.onnx.data"})


def test_external_length_must_match_the_dims(tmp_path: Path) -> None:
    path = external_model(tmp_path, "model.onnx.data", length="16")
    assert "do not hold its 1024 bytes" in unsafe(index_onnx, path, {"model.onnx.data"})


def test_external_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    path = external_model(tmp_path, "model.onnx.data")
    (tmp_path / "real.data").write_bytes((tmp_path / "model.onnx.data").read_bytes())
    (tmp_path / "model.onnx.data").unlink()
    (tmp_path / "model.onnx.data").symlink_to(tmp_path / "real.data")
    assert "symbolic link" in unsafe(index_onnx, path, {"model.onnx.data"})


def test_not_an_onnx_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\xff" * 64)
    assert "not a valid ONNX model" in unsafe(index_onnx, path, set())


def test_inline_raw_data_must_match_the_dims(tmp_path: Path) -> None:
    model, _ = mlp()
    model.graph.initializer[0].raw_data = b"\0" * 12
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    assert "12 bytes, not 1024" in unsafe(index_onnx, tmp_path / "m.onnx", set())


def test_duplicate_initializer_names_are_refused(tmp_path: Path) -> None:
    model, _ = mlp()
    model.graph.initializer.append(model.graph.initializer[0])
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    assert "repeated" in unsafe(index_onnx, tmp_path / "m.onnx", set())


# --- the document ------------------------------------------------------------------------------

def test_from_dict_checks_types_and_the_root(tmp_path: Path) -> None:
    save_file(arrays(), str(tmp_path / "m.safetensors"))
    doc = index_safetensors(tmp_path / "m.safetensors").to_dict()
    for broken in ({**doc, "format": "pickle"}, {**doc, "size": True}, {**doc, "tensors": [1]},
                   {**doc, "tensor_root": "sha256:" + "0" * 64},
                   {**doc, "tensors": [{**doc["tensors"][0], "shape": [-1]}]},
                   {**doc, "tensors": [{**doc["tensors"][0], "sha256": "A" * 64}]}):
        with pytest.raises(VerificationError) as info:
            WeightsIndex.from_dict(broken)
        assert info.value.code == "E_MANIFEST"
    assert WeightsIndex.from_dict({**doc, "x-vendor": 1}).to_dict() == doc  # unknown members ignored


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://mlpack.dev/schema/v1/weights-index.schema.json"


def test_spec_examples_validate_and_parse() -> None:
    found = FENCE.findall((REPO / "spec" / "weights.md").read_text())
    assert len(found) >= 2
    formats = set()
    for text in found:
        doc = json.loads(text)
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
        formats.add(WeightsIndex.from_dict(doc).format)  # also checks tensor_root
    assert formats == {"safetensors", "onnx"}
