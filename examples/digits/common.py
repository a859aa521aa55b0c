"""Shared by train.py and evaluate.py: read a Parquet split into numpy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def load_split(directory: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels scaled to [0, 1] (float64) and integer labels, from every Parquet file under it."""
    files = sorted(Path(directory).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {directory}: run prepare_data.py first")
    tables = [pq.read_table(f) for f in files]
    x = np.concatenate([np.stack([t[f"p{i}"].to_numpy() for i in range(64)], axis=1) for t in tables])
    y = np.concatenate([t["label"].to_numpy() for t in tables])
    return x.astype(np.float64) / 16.0, y.astype(np.int64)


def predict(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """A multinomial logistic regression from its arrays: argmax of x @ coef.T + intercept."""
    scores = x @ weights["coef"].T + weights["intercept"]
    return weights["classes"][np.argmax(scores, axis=1)]
