"""The model and data shared by train.py and evaluate.py: a 64-128-10 MLP on 8x8 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def load_split(directory: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels scaled to [0, 1] (float32) and labels, from every Parquet file under it."""
    files = sorted(Path(directory).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {directory}: run prepare_data.py first")
    tables = [pq.read_table(f) for f in files]
    x = np.concatenate([np.stack([t[f"p{i}"].to_numpy() for i in range(64)], axis=1) for t in tables])
    y = np.concatenate([t["label"].to_numpy() for t in tables])
    return torch.from_numpy(x.astype(np.float32) / 16.0), torch.from_numpy(y.astype(np.int64))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())
