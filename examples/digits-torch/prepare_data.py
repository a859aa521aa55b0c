"""Write scikit-learn's digits data set (shipped with scikit-learn, no download) as Parquet.

A stratified 75/25 split with a fixed seed: data/train/digits.parquet and
data/test/digits.parquet, 64 pixel columns (int8) and the label. Running it twice writes
byte-identical files, so the dataset manifests in the pack do not change between runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def write(path: Path, x, y) -> None:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {f"p{i}": pa.array(x[:, i].astype("int8")) for i in range(x.shape[1])}
    columns["label"] = pa.array(y.astype("int8"))
    pq.write_table(pa.table(columns), path, compression="zstd", write_statistics=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data", help="directory for train/ and test/")
    args = parser.parse_args()
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=0)
    write(Path(args.out) / "train" / "digits.parquet", x_train, y_train)
    write(Path(args.out) / "test" / "digits.parquet", x_test, y_test)
    print(f"wrote {len(y_train)} training and {len(y_test)} test rows under {args.out}/")


if __name__ == "__main__":
    main()
