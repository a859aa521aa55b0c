"""Evaluate model.safetensors on a split; writes {"accuracy": ...} to OUT/metrics.json.

    python evaluate.py --weights model.safetensors --data data/test --out OUT

It imports neither mlpack nor scikit-learn: numpy, pyarrow and safetensors are enough,
so a verifier's environment needs only what the lock lists.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from common import load_split, predict


def main() -> None:
    parser = argparse.ArgumentParser(description="evaluate the digits model")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    x, y = load_split(args.data)
    accuracy = float(np.mean(predict(load_file(args.weights), x) == y))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"accuracy": accuracy}) + "\n")
    print(f"accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
