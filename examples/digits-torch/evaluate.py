"""Evaluate model.safetensors on a split; writes {"accuracy": ...} to OUT/metrics.json.

    python evaluate.py --weights model.safetensors --data data/test --out OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from model import accuracy, load_split, mlp


def main() -> None:
    parser = argparse.ArgumentParser(description="evaluate the digits MLP")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = mlp()
    model.load_state_dict(load_file(args.weights))
    x, y = load_split(args.data)
    acc = accuracy(model, x, y)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"accuracy": acc}) + "\n")
    print(f"accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
