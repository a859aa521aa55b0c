"""Weights without pickles: checkpoints and live models to safetensors (spec/training.md).

A ``.pt``/``.pth``/``.bin`` checkpoint is a pickle: loading it the ordinary way runs
whatever the file says. :func:`convert_torch` (``mlpack convert``) loads it only with
``torch.load(..., weights_only=True)`` (PyTorch's restricted unpickler, which rebuilds
tensors, containers and numbers and nothing else) and writes the state dict as
safetensors; a checkpoint that needs a full unpickle is refused with ``E_UNSAFE_FORMAT``.
:func:`save_safetensors` writes a live torch module, a dict of tensors or arrays, or a
fitted scikit-learn linear model or MLP; :func:`load_sklearn` rebuilds the estimator.

    result = convert_torch("checkpoint.pt", "model.safetensors")
    result.tensors, result.sha256

safetensors refuses tensors that share memory (tied weights); they are cloned and the
sharing is recorded in the metadata (``mlpack.shared``). Scalars stored beside the tensors
(``epoch``, ``lr``) go to the metadata too (``mlpack.scalars``). Metadata keys are sorted
(:func:`sort_metadata`), so equal inputs give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .digest import sha256_file
from .errors import IOFailure, UsageError, VerificationError

__all__ = [
    "PICKLE_SUFFIXES",
    "SKLEARN_MODULES",
    "STATE_DICT_KEYS",
    "Converted",
    "convert_torch",
    "load_sklearn",
    "prepare_torch_tensors",
    "save_safetensors",
    "sort_metadata",
    "write_atomically",
]

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights",
                   "params", "ema")
"""Keys under which training loops commonly store the state dict, tried in this order."""

_SCALARS = (bool, int, float, str)


@dataclass(frozen=True, kw_only=True, slots=True)
class Converted:
    """What :func:`convert_torch` wrote."""

    path: str
    """The safetensors file written."""
    tensors: int
    """The number of tensors in it."""
    size: int
    """The file's size in bytes."""
    sha256: str
    """The file's sha256, 64 lowercase hex digits."""
    key: str | None
    """The checkpoint key the state dict was found under (None: the top level)."""
    shared: tuple[str, ...] = ()
    """Tensors that shared memory with another one and were cloned."""
    scalars: tuple[str, ...] = ()
    """Non-tensor entries of the state dict kept in the metadata."""
    skipped: tuple[str, ...] = ()
    """Top-level checkpoint entries that were not converted (optimizer state, ...)."""


def _io(err: OSError, what: str, hint: str = "check the path and its permissions") -> IOFailure:
    failure = IOFailure.from_os_error(err, what)
    failure.hint = failure.hint or hint
    return failure


def _unsafe(src: str, why: str) -> VerificationError:
    return VerificationError(
        f"{src}: {why}", code="E_UNSAFE_FORMAT",
        hint="load it in the trusted code that wrote it and save model.state_dict() with "
             "safetensors (or torch.save a plain state dict and convert that)")


def _is_tensor(torch: Any, value: object) -> bool:
    return isinstance(value, torch.Tensor)


def prepare_torch_tensors(state: Mapping[str, Any], *, what: str = "state dict"
                          ) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors safetensors will accept: detached, on the CPU, contiguous, no shared memory.

    Returns the tensors and ``{name: first name it shared memory with}`` for every tensor
    that had to be cloned. Names are visited in sorted order, so the result is the same
    whatever the dict's order.

    Raises:
        UsageError: ``E_USAGE`` for a sparse, quantized or meta tensor, or a non-str key.
    """
    import torch

    out: dict[str, Any] = {}
    shared: dict[str, str] = {}
    owner: dict[tuple[str, int], str] = {}
    for name in sorted(state, key=lambda k: (not isinstance(k, str), str(k))):
        t = state[name]
        if not isinstance(name, str):
            raise UsageError(f"{what}: key {name!r} is not a string", code="E_USAGE",
                             hint="safetensors names tensors by strings")
        if t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
            kind = "meta" if t.device.type == "meta" else "quantized" if t.is_quantized else str(t.layout)
            raise UsageError(f"{what}: tensor {name!r} is {kind}, which safetensors cannot store",
                             code="E_USAGE", hint="convert it to a dense tensor first")
        t = t.detach()
        if t.device.type != "cpu":
            t = t.to("cpu")
        storage = (t.device.type, t.untyped_storage().data_ptr())
        if t.numel() and storage in owner:
            shared[name] = owner[storage]
            t = t.clone(memory_format=torch.contiguous_format)
        else:
            if t.numel():
                owner[storage] = name
            t = t.contiguous()
        out[name] = t
    return out, shared


def write_atomically(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` for a temp file beside ``target``, fsync it, rename it over.

    ``target`` is either absent or complete afterwards, never half-written.
    """
    directory = target.parent
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        if target.suffix == ".safetensors":
            sort_metadata(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sort_metadata(path: str | os.PathLike[str]) -> None:
    """Rewrite a safetensors header with its ``__metadata__`` keys sorted.

    safetensors writes metadata in hash-map order, which changes from process to process;
    sorted, the same tensors and metadata always give the same bytes. The header is
    rewritten in place (same length); should its length differ, the file is rewritten.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        header = json.loads(raw)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or list(meta) == sorted(meta):
            return
        header["__metadata__"] = dict(sorted(meta.items()))
        new = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(new) <= n:
            f.seek(8)
            f.write(new + b" " * (n - len(new)))
            return
        padded = new + b" " * (-len(new) % 8)
        other = f"{os.fspath(path)}.sorted"
        try:
            with open(other, "wb") as out:
                out.write(struct.pack("<Q", len(padded)) + padded)
                shutil.copyfileobj(f, out, 1 << 20)
        except BaseException:
            os.unlink(other)
            raise
    os.replace(other, path)


def _load(torch: Any, src: str) -> Any:
    import pickle

    with warnings.catch_warnings():  # torch warns about protocols and TorchScript; we say nothing
        warnings.simplefilter("ignore")
        try:
            return torch.load(src, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            text = str(err)
            m = re.search(r"Unsupported global: GLOBAL (\S+)", text)
            if m:
                raise _unsafe(src, f"the checkpoint needs {m.group(1)}, which only a full unpickle "
                                   "(running code from the file) would import") from None
            m = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", text, re.DOTALL)
            detail = " ".join(m.group(1).split()) if m else "not a plain tensor checkpoint"
            raise _unsafe(src, f"PyTorch's weights-only loader refused it ({detail})") from None
        except RuntimeError as err:
            if "TorchScript" in str(err):
                raise _unsafe(src, "it is a TorchScript archive (code, not a state dict)") from None
            raise UsageError(f"{src}: not a readable PyTorch checkpoint ({_first_line(err)})",
                             code="E_INPUT", hint="check that the file is a torch.save checkpoint"
                             ) from None
        except OSError as err:
            raise _io(err, f"cannot read {src}") from None
        except Exception as err:  # noqa: BLE001 -- torch raises KeyError, EOFError... on garbage
            raise UsageError(f"{src}: not a readable PyTorch checkpoint ({_first_line(err)})",
                             code="E_INPUT", hint="check that the file is a torch.save checkpoint"
                             ) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def _find_state(torch: Any, obj: Any, key: str | None, src: str
                ) -> tuple[Mapping[str, Any], str | None, tuple[str, ...]]:
    """The state dict inside a checkpoint, the key it was under and the keys left out."""
    if not isinstance(obj, Mapping):
        kind = "a tensor" if _is_tensor(torch, obj) else f"a {type(obj).__name__}"
        raise UsageError(f"{src}: the checkpoint is {kind}, not a dict of tensors",
                         code="E_USAGE", hint="save model.state_dict(), not the model")
    if key is not None:
        if key not in obj:
            raise UsageError(f"{src}: no key {key!r} in the checkpoint (keys: "
                             f"{_keys(obj)})", code="E_USAGE", hint="pass one of the keys shown")
        inner = obj[key]
        if not isinstance(inner, Mapping):
            raise UsageError(f"{src}: {key!r} holds a {type(inner).__name__}, not a state dict",
                             code="E_USAGE", hint="pass the key of the state dict")
        return inner, key, tuple(sorted(str(k) for k in obj if k != key))
    if any(_is_tensor(torch, v) for v in obj.values()):
        return obj, None, ()
    candidates = [k for k in STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)
                  and any(_is_tensor(torch, v) for v in obj[k].values())]
    if not candidates:
        raise UsageError(f"{src}: no state dict found in the checkpoint (keys: {_keys(obj)})",
                         code="E_USAGE", hint="pass --key with the key that holds the state dict")
    k = candidates[0]
    return obj[k], k, tuple(sorted(str(x) for x in obj if x != k))


def _keys(obj: Mapping[Any, Any]) -> str:
    names = sorted(str(k) for k in obj)
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"


def convert_torch(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                  key: str | None = None, overwrite: bool = False,
                  metadata: Mapping[str, str] | None = None) -> Converted:
    """Convert a PyTorch checkpoint to a safetensors file; prints nothing.

    The checkpoint may be a state dict, or a dict that holds one under ``key`` (default:
    the first of :data:`STATE_DICT_KEYS` that holds tensors). Other top-level entries
    (optimizer state, epoch) are left out and listed in ``skipped``. Inside the state
    dict, tensors are written; ``bool``/``int``/``float``/``str``/None values go to the
    metadata key ``mlpack.scalars`` (JSON); anything else is refused.

    Args:
        src: The checkpoint (zip or legacy format).
        dst: The ``.safetensors`` file to write (atomically).
        key: The checkpoint key holding the state dict.
        overwrite: Replace ``dst`` if it exists.
        metadata: Extra string metadata for the safetensors header.

    Raises:
        UsageError: ``E_INPUT`` (missing or unreadable source), ``E_EXISTS`` (``dst``
            exists), ``E_USAGE`` (no state dict, bad entries, bad ``dst`` name).
        VerificationError: ``E_UNSAFE_FORMAT`` when only a full unpickle could load it.
        IOFailure: writing failed.
    """
    source, target = Path(src), Path(dst)
    if not source.is_file():
        raise UsageError(f"{source}: no such file", code="E_INPUT", hint="check the path")
    if target.suffix != ".safetensors":
        raise UsageError(f"{target}: the output must be a .safetensors file", code="E_USAGE",
                         hint="name the output model.safetensors")
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists", code="E_EXISTS",
                         hint="choose another name or pass --force")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent} is not a directory", code="E_INPUT",
                         hint="create the output directory first")
    import torch
    from safetensors.torch import save_file

    obj = _load(torch, str(source))
    state, used_key, skipped = _find_state(torch, obj, key, str(source))
    tensors_in: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for name, value in state.items():
        if _is_tensor(torch, value):
            tensors_in[name] = value
        elif value is None or isinstance(value, _SCALARS):
            if isinstance(value, float) and not math.isfinite(value):
                value = repr(value)  # "nan", "inf": the metadata stays strict JSON
            scalars[str(name)] = value
        else:
            raise UsageError(f"{source}: entry {name!r} of the state dict is a "
                             f"{type(value).__name__}, neither a tensor nor a number",
                             code="E_USAGE", hint="pass --key to pick the dict that holds "
                                                  "only tensors")
    if not tensors_in:
        raise UsageError(f"{source}: the state dict holds no tensors", code="E_USAGE",
                         hint="pass --key with the key that holds the state dict")
    tensors, shared = prepare_torch_tensors(tensors_in, what=str(source))
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta["mlpack.converted_from"] = "torch"
    if shared:
        meta["mlpack.shared"] = json.dumps(shared, sort_keys=True)
    if scalars:
        meta["mlpack.scalars"] = json.dumps(scalars, sort_keys=True)
    try:
        write_atomically(target, lambda tmp: save_file(tensors, tmp, metadata=meta))
    except OSError as err:
        raise _io(err, f"cannot write {target}") from None
    return Converted(path=str(target), tensors=len(tensors), size=target.stat().st_size,
                     sha256=sha256_file(target), key=used_key, shared=tuple(sorted(shared)),
                     scalars=tuple(sorted(scalars)), skipped=skipped)


# -- live objects ---------------------------------------------------------------------------

PICKLE_SUFFIXES = frozenset((".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib", ".sav"))
SKLEARN_MODULES = ("sklearn.linear_model", "sklearn.neural_network")
"""scikit-learn modules whose estimators :func:`save_safetensors` stores and
:func:`load_sklearn` rebuilds (prediction needs only numeric arrays and plain parameters)."""


def _usage(message: str, hint: str, code: str = "E_USAGE") -> UsageError:
    return UsageError(message, code=code, hint=hint)


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _usage(f"metadata {k!r}: keys and values must be strings",
                         "safetensors metadata maps strings to strings; json.dumps other values")
        if k.startswith("mlpack."):
            raise _usage(f"metadata {k!r}: keys starting with 'mlpack.' are reserved",
                         "choose another key")
        out[k] = v
    return out


def save_safetensors(obj: object, path: str | os.PathLike[str], *,
                     metadata: Mapping[str, str] | None = None) -> None:
    """Write a live model to ``path`` as safetensors, atomically; nothing is pickled.

    ``obj`` is a ``torch.nn.Module`` (its state dict), a dict of torch tensors, a dict of
    numpy arrays, or a fitted scikit-learn estimator of :data:`SKLEARN_MODULES`: its fitted
    numeric arrays become tensors (``coef``, ``intercept``, ``classes``, ``coefs.0``...),
    its class, parameters and other fitted values go to the metadata, and
    :func:`load_sklearn` rebuilds it. Parent directories are created.

    Raises:
        UsageError: ``E_USAGE`` for a path that is not ``*.safetensors`` (pickle suffixes
            are named as such), an object of another kind, an unfitted or unsupported
            estimator, or bad metadata.
        IOFailure: writing failed.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise _usage(f"{target}: {suffix} files are pickles, which run code when loaded",
                     "save as .safetensors (mlpack convert turns existing checkpoints into it)")
    if suffix != ".safetensors":
        raise _usage(f"{target}: weights are saved as safetensors; name the file *.safetensors",
                     "name it model.safetensors; record files other code writes (ONNX) with "
                     "record_weights()")
    meta = _user_metadata(metadata)
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    writer: Callable[[str], None]
    values = list(obj.values()) if isinstance(obj, Mapping) else []
    if type(obj).__module__.startswith("sklearn.") and hasattr(obj, "get_params"):
        from safetensors.numpy import save_file as save_np

        arrays, sk_meta = _sklearn_arrays(obj)
        meta.update(sk_meta)
        writer = lambda tmp: save_np(arrays, tmp, metadata=meta)
    elif values and torch is not None and all(isinstance(v, torch.Tensor) for v in values):
        from safetensors.torch import save_file as save_pt

        tensors, shared = prepare_torch_tensors(cast(Mapping[str, Any], obj), what=str(target))
        if shared:
            meta["mlpack.shared"] = json.dumps(shared, sort_keys=True)
        writer = lambda tmp: save_pt(tensors, tmp, metadata=meta)
    elif values and np is not None and all(isinstance(v, np.ndarray) for v in values):
        from safetensors.numpy import save_file as save_np

        items = cast(Mapping[Any, Any], obj).items()
        bad = next((k for k, v in items if v.dtype.kind not in "biuf" or not isinstance(k, str)),
                   None)
        if bad is not None:
            raise _usage(f"{target}: array {bad!r} is not numeric or its key is not a string",
                         "safetensors stores numeric arrays under string names")
        arrays = {k: np.ascontiguousarray(v) for k, v in items}
        writer = lambda tmp: save_np(arrays, tmp, metadata=meta)
    else:
        what = "a dict mixing kinds of values" if values else f"a {type(obj).__name__}"
        raise _usage(f"{target}: cannot save {what} as weights",
                     "pass a torch.nn.Module, a dict of only torch tensors or only numpy arrays, "
                     "or a fitted scikit-learn linear model or MLP")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, writer)
    except OSError as err:
        raise _io(err, f"cannot write {target}") from None


def _public_module(cls: type) -> str | None:
    for module in SKLEARN_MODULES:
        mod = sys.modules.get(module)
        if mod is not None and getattr(mod, cls.__name__, None) is cls:
            return module
    return None


def _json_value(v: object) -> tuple[bool, Any]:
    """(ok, value) for a JSON scalar, a list of them, or a tuple (tagged to survive JSON)."""
    if v is None or isinstance(v, (bool, str)):
        return True, v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.isfinite(v), v
    if type(v).__module__ == "numpy" and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return _json_value(v.item())
    if isinstance(v, (list, tuple)):
        items = [_json_value(x) for x in v]
        if not all(ok for ok, _ in items):
            return False, None
        vals = [x for _, x in items]
        return True, {"__tuple__": vals} if isinstance(v, tuple) else vals
    if isinstance(v, dict) and all(isinstance(k, str) for k in v) and "__tuple__" not in v:
        pairs = {k: _json_value(x) for k, x in v.items()}
        if not all(ok for ok, _ in pairs.values()):
            return False, None
        return True, {k: x for k, (_, x) in pairs.items()}
    return False, None


def _from_json(v: Any) -> Any:
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(_from_json(x) for x in v["__tuple__"])
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def _sklearn_arrays(est: Any) -> tuple[dict[str, Any], dict[str, str]]:
    import json

    import numpy as np
    import sklearn

    cls = type(est)
    module = _public_module(cls)
    if module is None:
        raise _usage(f"scikit-learn {cls.__name__} cannot be saved as safetensors",
                     "supported: sklearn.linear_model and sklearn.neural_network estimators; "
                     "export others to ONNX (skl2onnx) and use record_weights()")
    fitted = {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}
    if not fitted:
        raise _usage(f"{cls.__name__} is not fitted", "call fit() before saving it")
    binarizer = getattr(est, "_label_binarizer", None)
    if binarizer is not None and getattr(binarizer, "y_type_", "multiclass") not in (
            "binary", "multiclass"):
        raise _usage(f"{cls.__name__} was fitted on {binarizer.y_type_} targets",
                     "only binary and multiclass classifiers can be rebuilt")
    arrays: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    skipped = []
    for key, value in sorted(fitted.items()):
        name = key[:-1]
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            arrays[name] = np.ascontiguousarray(value)
            attrs[key] = {"kind": "array"}
        elif isinstance(value, np.ndarray) and value.dtype.kind in "UO" and _json_value(
                value.tolist())[0]:
            attrs[key] = {"kind": "array", "dtype": "str" if value.dtype.kind == "U" else
                          "object", "value": value.tolist()}
        elif (isinstance(value, list) and value and all(
                isinstance(a, np.ndarray) and a.dtype.kind in "biuf" for a in value)):
            for i, a in enumerate(value):
                arrays[f"{name}.{i}"] = np.ascontiguousarray(a)
            attrs[key] = {"kind": "arrays", "count": len(value)}
        elif _json_value(value)[0]:
            attrs[key] = {"kind": "json", "value": _json_value(value)[1]}
        else:
            skipped.append(key)
    params, dropped = {}, []
    for key, value in est.get_params(deep=False).items():
        ok, encoded = _json_value(value)
        if ok:
            params[key] = encoded
        else:
            dropped.append(key)
    meta = {"mlpack.sklearn.class": f"{module}.{cls.__name__}",
            "mlpack.sklearn.version": sklearn.__version__,
            "mlpack.sklearn.params": json.dumps(params, sort_keys=True),
            "mlpack.sklearn.attributes": json.dumps(attrs, sort_keys=True)}
    if skipped:
        meta["mlpack.sklearn.skipped"] = json.dumps(skipped)
    if dropped:
        meta["mlpack.sklearn.params_dropped"] = json.dumps(sorted(dropped))
    return arrays, meta


def load_sklearn(path: str | os.PathLike[str]) -> Any:
    """Rebuild a scikit-learn estimator that :func:`save_weights` stored, ready to predict.

    Only classes of :data:`SKLEARN_MODULES` are imported (the class name in the file is
    data, never a free import path); nothing is unpickled.

    Raises:
        UsageError: ``E_INPUT`` when the file was not written from an estimator by
            :func:`save_weights` or names a class outside those modules.
    """
    import importlib
    import json

    from safetensors import safe_open

    where = str(path)

    def bad(why: str) -> UsageError:
        return _usage(f"{where}: {why}", "load it with safetensors; load_sklearn reads files "
                      "save_weights wrote from a scikit-learn estimator", "E_INPUT")

    try:
        with safe_open(where, framework="np") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- not a dict
    except FileNotFoundError:
        raise bad("no such file") from None
    except Exception as err:  # noqa: BLE001 -- safetensors raises its own error types
        raise bad(f"not a readable safetensors file ({type(err).__name__})") from None
    qualified = meta.get("mlpack.sklearn.class", "")
    module, _, name = qualified.rpartition(".")
    if not qualified:
        raise bad("no mlpack.sklearn.class in its metadata")
    if module not in SKLEARN_MODULES or not name.isidentifier():
        raise bad(f"refusing to rebuild {qualified!r}: only {', '.join(SKLEARN_MODULES)} "
                  "estimators are supported")
    from sklearn.base import BaseEstimator

    cls = getattr(importlib.import_module(module), name, None)
    if not isinstance(cls, type) or not issubclass(cls, BaseEstimator):
        raise bad(f"{qualified!r} is not a scikit-learn estimator")
    try:
        params = _from_json(json.loads(meta.get("mlpack.sklearn.params", "{}")))
        attrs = json.loads(meta["mlpack.sklearn.attributes"])
        est = cls()
        known = est.get_params(deep=False)
        est.set_params(**{k: v for k, v in params.items() if k in known})
        import numpy as np

        for key, spec in attrs.items():
            name = key[:-1]
            if spec["kind"] == "array" and "value" in spec:
                value: Any = np.array(spec["value"], dtype=object if spec["dtype"] == "object"
                                      else None)
            elif spec["kind"] == "array":
                value = arrays[name]
            elif spec["kind"] == "arrays":
                value = [arrays[f"{name}.{i}"] for i in range(spec["count"])]
            else:
                value = _from_json(spec["value"])
            setattr(est, key, value)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise bad(f"its mlpack.sklearn metadata is inconsistent ({type(err).__name__}: {err})"
                  ) from None
    if hasattr(cls, "_label_binarizer") or module == "sklearn.neural_network" and hasattr(
            est, "classes_"):
        from sklearn.preprocessing import LabelBinarizer

        est._label_binarizer = LabelBinarizer().fit(est.classes_)
    return est


