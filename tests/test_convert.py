"""mlpack.convert: PyTorch checkpoints to safetensors, loaded only with weights_only=True."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open
from safetensors.torch import load_file

from mlpack.convert import convert_torch
from mlpack.errors import MlpackError, UsageError, VerificationError


def one_line(err: MlpackError) -> str:
    assert "\n" not in str(err) and err.hint
    return err.message


def model_state() -> dict[str, Any]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                              torch.nn.Linear(16, 3))
    net(torch.randn(4, 8))  # updates the batch-norm running stats
    return dict(net.state_dict())


def metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def assert_equal_state(path: Path, state: dict[str, Any]) -> None:
    back = load_file(str(path))
    assert set(back) == set(state)
    for name, tensor in state.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name], tensor), name


def test_a_state_dict_round_trips(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    state = model_state()
    torch.save(state, tmp_path / "ck.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # convert is silent: no warnings either
        result = convert_torch(tmp_path / "ck.pt", tmp_path / "model.safetensors")
    assert capfd.readouterr() == ("", "")
    out = tmp_path / "model.safetensors"
    assert_equal_state(out, state)
    assert result.tensors == len(state) == 9 and result.key is None and result.skipped == ()
    assert result.size == out.stat().st_size
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert metadata(out) == {"mlpack.converted_from": "torch"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "model.safetensors"]


def test_a_training_checkpoint(tmp_path: Path) -> None:
    state = model_state()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "model_state_dict": state, "optimizer": opt.state_dict()},
               tmp_path / "ck.pt")
    result = convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert result.key == "model_state_dict" and result.skipped == ("epoch", "optimizer")
    assert_equal_state(tmp_path / "m.safetensors", state)
    result = convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors", key="model_state_dict",
                           overwrite=True)
    assert result.key == "model_state_dict"


@pytest.mark.parametrize(("key", "text"), [
    ("nope", "no key 'nope' in the checkpoint (keys: epoch, model_state_dict)"),
    ("epoch", "'epoch' holds a int, not a state dict"),
])
def test_a_bad_key(tmp_path: Path, key: str, text: str) -> None:
    torch.save({"epoch": 3, "model_state_dict": model_state()}, tmp_path / "ck.pt")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors", key=key)
    assert info.value.code == "E_USAGE" and text in one_line(info.value)


def test_no_state_dict_found(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "notes": "x"}, tmp_path / "ck.pt")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert info.value.code == "E_USAGE" and "keys: epoch, notes" in one_line(info.value)
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "t.pt", tmp_path / "m.safetensors")
    assert "is a tensor, not a dict of tensors" in one_line(info.value)


def test_aliased_and_non_contiguous_tensors(tmp_path: Path) -> None:
    emb = torch.nn.Embedding(10, 4)
    base = torch.arange(24.0).reshape(4, 6)
    state = {"emb.weight": emb.weight.data, "head.weight": emb.weight.data,  # tied
             "t": base.t(),                                                # non-contiguous
             "t_tail": base[2:],                                           # a view of t's storage
             "lone": torch.ones(2, dtype=torch.bfloat16)}
    torch.save(state, tmp_path / "ck.pt")
    result = convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert_equal_state(tmp_path / "m.safetensors", state)
    assert result.shared == ("head.weight", "t_tail")
    assert json.loads(metadata(tmp_path / "m.safetensors")["mlpack.shared"]) == {
        "head.weight": "emb.weight", "t_tail": "t"}


def test_scalars_go_to_metadata_other_values_are_refused(tmp_path: Path) -> None:
    state = {"w": torch.ones(2), "epoch": 7, "lr": float("nan"), "tag": "best", "ema": None}
    torch.save(state, tmp_path / "ck.pt")
    result = convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert result.scalars == ("ema", "epoch", "lr", "tag") and result.tensors == 1
    assert json.loads(metadata(tmp_path / "m.safetensors")["mlpack.scalars"]) == {
        "ema": None, "epoch": 7, "lr": "nan", "tag": "best"}
    torch.save({"w": torch.ones(2), "sub": {"x": torch.ones(1)}}, tmp_path / "nested.pt")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "nested.pt", tmp_path / "n.safetensors")
    assert info.value.code == "E_USAGE" and "entry 'sub'" in one_line(info.value)
    assert not (tmp_path / "n.safetensors").exists()


def test_output_is_byte_reproducible(tmp_path: Path) -> None:
    emb = torch.nn.Embedding(4, 2)
    torch.save({"a": emb.weight.data, "b": emb.weight.data, "epoch": 1, "step": 2},
               tmp_path / "ck.pt")
    digests = {convert_torch(tmp_path / "ck.pt", tmp_path / f"m{i}.safetensors").sha256
               for i in range(5)}
    assert len(digests) == 1


class Payload:
    """Unpickling it would create a marker file: proof that no code runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


class Config:
    def __init__(self) -> None:
        self.hidden = 16


def test_a_checkpoint_with_custom_objects_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    torch.save({"w": torch.ones(2), "p": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(VerificationError) as info:
        convert_torch(tmp_path / "evil.pt", tmp_path / "m.safetensors")
    assert info.value.code == "E_UNSAFE_FORMAT" and "needs io.open" in one_line(info.value)
    assert not marker.exists() and not (tmp_path / "m.safetensors").exists()
    torch.save({"model": {"w": torch.ones(2)}, "config": Config()}, tmp_path / "cfg.pt")
    with pytest.raises(VerificationError) as info:
        convert_torch(tmp_path / "cfg.pt", tmp_path / "m.safetensors")
    assert f"needs {__name__}.Config," in one_line(info.value)
    assert "trusted code" in (info.value.hint or "")


def test_a_plain_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump({"w": [1.0, 2.0], "p": Payload(marker)}, f, protocol=2)
    with pytest.raises(VerificationError) as info:
        convert_torch(tmp_path / "plain.pkl", tmp_path / "m.safetensors")
    assert info.value.code == "E_UNSAFE_FORMAT" and not marker.exists()
    one_line(info.value)


def test_a_legacy_checkpoint_converts(tmp_path: Path) -> None:
    state = model_state()
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert not (tmp_path / "legacy.pt").read_bytes().startswith(b"PK")
    convert_torch(tmp_path / "legacy.pt", tmp_path / "m.safetensors")
    assert_equal_state(tmp_path / "m.safetensors", state)
    marker = tmp_path / "code-ran"
    torch.save({"w": torch.ones(1), "p": Payload(marker)}, tmp_path / "legacy-evil.pt",
               _use_new_zipfile_serialization=False)
    with pytest.raises(VerificationError) as info:
        convert_torch(tmp_path / "legacy-evil.pt", tmp_path / "e.safetensors")
    assert info.value.code == "E_UNSAFE_FORMAT" and not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit itself is deprecated
def test_a_torchscript_archive_is_refused(tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "ts.pt"))
    with pytest.raises(VerificationError) as info:
        convert_torch(tmp_path / "ts.pt", tmp_path / "m.safetensors")
    assert info.value.code == "E_UNSAFE_FORMAT" and "TorchScript" in one_line(info.value)


def test_inputs_and_outputs(tmp_path: Path) -> None:
    torch.save(model_state(), tmp_path / "ck.pt")
    (tmp_path / "garbage.pt").write_bytes(b"this is not a checkpoint\n" * 4)
    cases = [
        (tmp_path / "missing.pt", tmp_path / "m.safetensors", "E_INPUT", "no such file"),
        (tmp_path / "garbage.pt", tmp_path / "m.safetensors", "E_INPUT",
         "not a readable PyTorch checkpoint"),
        (tmp_path / "ck.pt", tmp_path / "m.pt", "E_USAGE", "must be a .safetensors file"),
        (tmp_path / "ck.pt", tmp_path / "no" / "m.safetensors", "E_INPUT", "is not a directory"),
    ]
    for src, dst, code, text in cases:
        with pytest.raises(UsageError) as info:
            convert_torch(src, dst)
        assert info.value.code == code and text in one_line(info.value), (src, dst)
    (tmp_path / "m.safetensors").write_text("keep me")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert info.value.code == "E_EXISTS" and (tmp_path / "m.safetensors").read_text() == "keep me"
    convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors", overwrite=True)
    assert_equal_state(tmp_path / "m.safetensors", model_state())


def test_a_refused_tensor_leaves_no_file(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2), "s": torch.eye(3).to_sparse()}, tmp_path / "ck.pt")
    with pytest.raises(UsageError) as info:
        convert_torch(tmp_path / "ck.pt", tmp_path / "m.safetensors")
    assert info.value.code == "E_USAGE" and "tensor 's' is torch.sparse_coo" in one_line(
        info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]
