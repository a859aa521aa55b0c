"""Benchmark the dataset part of `mlpack diff`: two 1,000,000-row Parquet manifests.

Target (issue 5): a 1,000,000-file manifest diffs in seconds, computed by joining the two
Parquet manifests with pyarrow, against the obvious alternative of loading both into Python
sets/dicts and comparing.

Both manifests are real `mlpack.datasets.DatasetManifest` Parquet files (the bytes a pack
holds), generated from synthetic columns with a fixed seed: 1,000,000 paths in 1,000
directories, sizes, and random 32-byte sha256 digests. Two cases:

- **edit**: the same paths; 10 files have another digest (and 3 of them another size).
  mlpack compares the two digest columns directly (the paths are equal).
- **churn**: 10 files changed, 5 removed, 5 added: mlpack joins on `path` (hash join).

Each side starts from the Parquet bytes (reading them is part of the work) and ends with the
sorted lists of added, removed and changed paths; the two answers are checked equal. Timings are
in-process wall clock, the median of --runs runs after one warm-up, alternating the two methods;
the ratio is per pair (mlpack / Python). Peak memory is the process's ru_maxrss growth during a
method's first run (the methods run in separate forked children so the peaks do not mix).

    python benchmarks/bench_diff.py            # 1,000,000 rows, 5 runs (about 1-2 minutes)
    python benchmarks/bench_diff.py --rows 100000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlpack._diff_data import diff_manifest_tables, manifest_table
from mlpack.datasets import DIGEST_SIZE, DatasetManifest

Answer = tuple[list[str], list[str], list[str]]


def manifests(rows: int, churn: bool, seed: int = 0) -> tuple[bytes, bytes, Answer]:
    rng = random.Random(seed)
    paths = [f"d{i // 1000:04d}/f{i:07d}.bin" for i in range(rows)]
    sizes = [rng.randrange(1, 1 << 20) for _ in range(rows)]
    digests = bytearray(rng.randbytes(DIGEST_SIZE * rows))
    old = DatasetManifest(uri="s3://bench/data", algorithm="sha256", paths=tuple(paths), sizes=tuple(sizes),
                          digests=bytes(digests))
    changed = sorted(rng.sample(range(rows), 10))
    new_sizes = list(sizes)
    for k, i in enumerate(changed):
        digests[i * DIGEST_SIZE] ^= 0xFF
        if k < 3:
            new_sizes[i] += 1
    new_paths, new_digests = list(paths), bytes(digests)
    removed: list[str] = []
    added: list[str] = []
    if churn:
        gone = sorted(rng.sample([i for i in range(rows) if i not in changed], 5))
        removed = [paths[i] for i in gone]
        added = [f"d{rng.randrange(rows // 1000):04d}/new{j}.bin" for j in range(5)]
        keep = [i for i in range(rows) if i not in set(gone)]
        rows_new = sorted([(paths[i], new_sizes[i], new_digests[i * 32:(i + 1) * 32]) for i in keep]
                          + [(p, 7, rng.randbytes(32)) for p in added], key=lambda r: r[0].encode())
        new_paths = [r[0] for r in rows_new]
        new_sizes = [r[1] for r in rows_new]
        new_digests = b"".join(r[2] for r in rows_new)
    new = DatasetManifest(uri="s3://bench/data", algorithm="sha256", paths=tuple(new_paths),
                          sizes=tuple(new_sizes), digests=new_digests)
    expect = (sorted(added), sorted(removed), sorted(paths[i] for i in changed))
    return old.to_parquet_bytes(), new.to_parquet_bytes(), expect


def with_mlpack(a: bytes, b: bytes) -> Answer:
    d = diff_manifest_tables(manifest_table(a), manifest_table(b))
    return (d.added.column("path").to_pylist(), d.removed.column("path").to_pylist(),
            d.changed.column("path").to_pylist())


def with_python_sets(a: bytes, b: bytes) -> Answer:
    """Read both manifests, load them into Python dicts and sets, compare."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def load(data: bytes) -> dict[str, tuple[int, bytes]]:
        t = pq.read_table(pa.BufferReader(data), columns=["path", "size", "sha256"])
        return dict(zip(t.column("path").to_pylist(),
                        zip(t.column("size").to_pylist(), t.column("sha256").to_pylist())))

    old, new = load(a), load(b)
    old_keys, new_keys = set(old), set(new)
    added = sorted(new_keys - old_keys)
    removed = sorted(old_keys - new_keys)
    changed = sorted(p for p in old_keys & new_keys if old[p] != new[p])
    return added, removed, changed


def peak_growth(fn: Callable[[bytes, bytes], Answer], a: bytes, b: bytes) -> int:
    """ru_maxrss growth (bytes) of one run, in a forked child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn(a, b)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(w, str((after - before) * 1024).encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    return int(data or b"0")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"dataset manifest diff, {args.rows:,} rows per manifest, median of {args.runs} runs "
          f"(in-process wall clock; {os.cpu_count()} CPUs; Python {sys.version.split()[0]})")
    print(f"{'case':<7} {'mlpack (Arrow join)':>20} {'Python sets':>13} {'ratio':>14} "
          f"{'peak RSS growth':>24}")
    for case in ("edit", "churn"):
        t0 = time.perf_counter()
        a, b, expect = manifests(args.rows, churn=case == "churn")
        gen = time.perf_counter() - t0
        assert with_mlpack(a, b) == expect, "mlpack's answer is wrong"
        assert with_python_sets(a, b) == expect, "the baseline's answer is wrong"
        mine, theirs, ratios = [], [], []
        for i in range(args.runs):
            order = (with_mlpack, with_python_sets) if i % 2 == 0 else (with_python_sets, with_mlpack)
            got = {}
            for fn in order:
                t = time.perf_counter()
                fn(a, b)
                got[fn] = time.perf_counter() - t
            mine.append(got[with_mlpack])
            theirs.append(got[with_python_sets])
            ratios.append(got[with_mlpack] / got[with_python_sets])
        mem_a, mem_b = peak_growth(with_mlpack, a, b), peak_growth(with_python_sets, a, b)
        print(f"{case:<7} {statistics.median(mine):>18.3f} s {statistics.median(theirs):>11.3f} s "
              f"{statistics.median(ratios):>6.3f} ({min(ratios):.2f}..{max(ratios):.2f}) "
              f"{mem_a / 2**20:>9.0f} MiB vs {mem_b / 2**20:>5.0f} MiB"
              f"   (manifests {len(a) / 2**20:.1f} + {len(b) / 2**20:.1f} MiB, generated in {gen:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
