"""Benchmark a second `verify --rebuild` of the scikit-learn pack against running its scripts.

Target (issue 4): with the environment cached, `mlpack verify PACK --rebuild` takes under
3 s more than running the example's train and evaluate scripts directly.

Setup (untimed): the digits example in a uv virtual environment of its own (mlpack +
scikit-learn), its data prepared, trained, built into a signed pack; one `verify --rebuild`
fills the environment cache. Then, alternating (see _harness.py), whole-process:

- mlpack: `mlpack verify PACK --key K --rebuild --data ...` (verify and unpack the pack,
  check the cached environment, re-hash the data against the signed manifests, run train
  then evaluate in the sandbox, compare the weights tensor by tensor, check the metric);
- reference: `sh -c "python train.py ... && python evaluate.py ..."` with the same
  environment's interpreter, in the project directory.

    python benchmarks/bench_reproduce.py [--runs 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
from _harness import Cmd, Row, render_markdown, render_text

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    uv = str(Path(sys.executable).with_name("uv"))
    with tempfile.TemporaryDirectory(prefix="mlpack-bench-repro-") as tmp:
        work = Path(tmp)
        venv = work / "venv"
        subprocess.run([uv, "venv", "-q", str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-e", str(REPO),
                        "scikit-learn"], check=True)
        python, mlpack = str(venv / "bin" / "python"), str(venv / "bin" / "mlpack")
        root = work / "digits"
        shutil.copytree(REPO / "examples" / "digits", root,
                        ignore=shutil.ignore_patterns("data", ".mlpack", "*.safetensors", "__pycache__"))
        env = {**_harness.child_env(str(work / "pycache")), "MLPACK_CACHE_DIR": str(work / "cache")}
        env.pop("VIRTUAL_ENV", None)
        _harness.BASE_ENV = env
        for argv in ([python, "prepare_data.py"], [python, "train.py"], [mlpack, "keygen", "-o", str(work / "k")],
                     [mlpack, "build", "-o", str(work / "digits.mlpack"), "--key", str(work / "k.pem")]):
            subprocess.run(argv, cwd=root, check=True, capture_output=True, env=env)
        data = ["--data", f"digits-train={root / 'data/train'}", "--data", f"digits-test={root / 'data/test'}"]
        verify = [mlpack, "verify", str(work / "digits.mlpack"), "--key", str(work / "k.pub"), "--rebuild", *data]
        subprocess.run(verify, check=True, capture_output=True, env=env)  # fills the environment cache
        out = work / "direct-out"
        direct = (f"{python} train.py --data data/train --test data/test --out {out} && "
                  f"{python} evaluate.py --weights {out}/model.safetensors --data data/test --out {out}")
        c = _harness.compare(Cmd("mlpack verify --rebuild (cached env)", verify),
                             Cmd("train.py + evaluate.py directly", ["sh", "-c", direct], cwd=str(root)),
                             runs=args.runs)
        overhead = c.a.median - c.b.median
        rows = [Row("second verify --rebuild vs the scripts", c.a.fmt(), c.b.fmt(),
                    f"{overhead / LIMIT_S:.2f} of limit", f"overhead < {LIMIT_S:.0f} s",
                    _harness.verdict(overhead < LIMIT_S),
                    f"overhead {overhead:.3f} s; per-pair ratio {c.fmt_ratio()}")]
    print(render_text(rows))
    if args.markdown:
        args.markdown.write_text(render_markdown(rows) + "\n")
    return 0 if all(r.result == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
