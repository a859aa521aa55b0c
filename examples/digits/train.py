"""Train a logistic regression on the digits training split, recorded by mlpack.run().

    python train.py [--data data/train] [--test data/test] [--out .] [--C 1.0]

Writes model.safetensors (the fitted arrays, no pickle) and .mlpack/run.json (command,
parameters, seed, thread counts, hardware, code fingerprint, metrics, weights digest).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import mlpack
from common import load_split, predict


def main() -> None:
    parser = argparse.ArgumentParser(description="train the digits model")
    parser.add_argument("--data", default="data/train")
    parser.add_argument("--test", default="data/test")
    parser.add_argument("--out", default=".", help="directory for model.safetensors")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularization strength")
    parser.add_argument("--max-iter", type=int, default=2000)
    args = parser.parse_args()
    params = {"C": args.C, "max_iter": args.max_iter, "solver": "lbfgs"}
    with mlpack.run(params=params, seed=0, threads=1) as run:
        x, y = load_split(args.data)
        model = LogisticRegression(C=args.C, max_iter=args.max_iter, solver="lbfgs").fit(x, y)
        weights = {"coef": model.coef_, "intercept": model.intercept_,
                   "classes": model.classes_.astype(np.int64)}
        x_test, y_test = load_split(args.test)
        accuracy = float(np.mean(predict(weights, x_test) == y_test))
        run.log_metric("accuracy", accuracy, dataset="digits-test", split="test")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        run.save_weights(weights, out / "model.safetensors", metadata={"model": "LogisticRegression"})
    print(f"accuracy {accuracy:.4f}; wrote {out / 'model.safetensors'}")


if __name__ == "__main__":
    main()
