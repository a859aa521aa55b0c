"""Train the MLP on the digits training split inside mlpack.run(), export it to ONNX.

    python train.py [--data data/train] [--test data/test] [--out .] [--epochs 30]

Writes model.safetensors (the state dict) and model.onnx (checked against PyTorch with
onnxruntime: the largest difference of the logits on the test split is logged as the
informational metric onnx_max_abs_diff, and training fails if it exceeds 1e-4). One
thread, seed 0 and deterministic algorithms: a rerun gives bit-identical weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import mlpack
from model import accuracy, load_split, mlp


def main() -> None:
    parser = argparse.ArgumentParser(description="train the digits MLP")
    parser.add_argument("--data", default="data/train")
    parser.add_argument("--test", default="data/test")
    parser.add_argument("--out", default=".")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    params = {"epochs": args.epochs, "lr": args.lr, "batch": args.batch, "optimizer": "Adam"}
    with mlpack.run(params=params, seed=0, threads=1, deterministic=True, frameworks=("torch",)) as run:
        x, y = load_split(args.data)
        model = mlp()
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        order = torch.Generator().manual_seed(0)
        for _ in range(args.epochs):
            for batch in torch.randperm(len(x), generator=order).split(args.batch):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                opt.step()
        x_test, y_test = load_split(args.test)
        acc = accuracy(model, x_test, y_test)
        run.log_metric("accuracy", acc, dataset="digits-test", split="test")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        run.save_weights(model, out / "model.safetensors", metadata={"model": "mlp-64-128-10"})
        diff = export_onnx(model, x_test, out / "model.onnx")
        run.log_metric("onnx_max_abs_diff", diff, dataset="digits-test", split="test")
        run.record_weights(out / "model.onnx")
    print(f"accuracy {acc:.4f}; ONNX agrees within {diff:.2e}; wrote {out}/model.safetensors, model.onnx")


def export_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> float:
    """Export with the TorchScript exporter (one file, no onnxscript) and compare with onnxruntime."""
    import warnings

    import numpy as np
    import onnxruntime

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(path), input_names=["pixels"], output_names=["logits"],
                          dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"pixels": x.numpy()})
    with torch.no_grad():
        diff = float(np.max(np.abs(onnx_logits - model(x).numpy())))
    if diff > 1e-4:
        raise SystemExit(f"ONNX export disagrees with PyTorch by {diff}")
    return diff


if __name__ == "__main__":
    main()
