"""Benchmark `mlpack build` of a tiny project against hashing its files (issue 3, item 8).

Target: `mlpack build` of a tiny project takes under 2 s beyond its hashing.

The project is a copy of examples/digits (under git, data prepared, trained once with
mlpack.run()). mlpack runs as `mlpack build -C DIR -o OUT --unsigned --force` and signed
with `--key`; the reference is `sha256sum` over every file the pack holds from the project
(code, weights, data files: what a build must at least read and hash). Both are
whole-process wall-clock medians over --runs runs after one warm-up, alternating (see
_harness.py). "beyond hashing" = build minus the reference, against the 2 s limit.

The first build of a project asks pip which exact wheel each installed distribution comes
from (the PEP 751 lock needs their sha256); that result is cached
($MLPACK_CACHE_DIR/wheel-hashes.json), so it is timed once, cold, and reported apart: it
depends on the package index and on how many distributions the environment has.

    python benchmarks/bench_build.py [--runs 5] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
from _harness import Cmd, Row, render_markdown, render_text

REPO = Path(__file__).resolve().parents[1]
LIMIT_S = 2.0


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def make_project(work: Path) -> Path:
    root = work / "digits"
    shutil.copytree(REPO / "examples" / "digits", root,
                    ignore=shutil.ignore_patterns("data", ".mlpack", "*.safetensors", "__pycache__"))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "bench")
    for script in ("prepare_data.py", "train.py"):
        subprocess.run([sys.executable, script], cwd=root, check=True, capture_output=True)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    mlpack = str(Path(sys.executable).with_name("mlpack"))
    with tempfile.TemporaryDirectory(prefix="mlpack-bench-build-") as tmp:
        work = Path(tmp)
        env = {**_harness.child_env(str(work / "pycache")), "MLPACK_CACHE_DIR": str(work / "cache")}
        _harness.BASE_ENV = env
        project = make_project(work)
        subprocess.run([mlpack, "keygen", "-o", str(work / "k")], check=True, capture_output=True)
        out = work / "out.mlpack"
        build = [mlpack, "build", "-C", str(project), "-o", str(out), "--force"]
        start = time.perf_counter()
        subprocess.run([*build, "--unsigned"], check=True, capture_output=True, env=env)
        cold = time.perf_counter() - start
        members = subprocess.run(["tar", "-tf", str(out)], check=True, capture_output=True,
                                 text=True).stdout.split()
        files = [str(project / m.removeprefix("code/").removeprefix("weights/"))
                 for m in members if m.startswith(("code/", "weights/"))]
        files += [str(p) for p in (project / "data").rglob("*") if p.is_file()]
        size = sum(os.path.getsize(f) for f in files)
        print(f"project: {len(files)} files, {size} bytes; cold first build (pip asked) {cold:.2f} s",
              flush=True)
        reference = Cmd("sha256sum of the project's files", ["sha256sum", *files])
        rows = []
        for label, extra in (("unsigned", ["--unsigned"]), ("signed", ["--key", str(work / "k.pem")])):
            c = _harness.compare(Cmd(f"mlpack build ({label})", [*build, *extra]), reference, runs=args.runs)
            beyond = c.a.median - c.b.median
            rows.append(Row(f"build a tiny project, {label}", c.a.fmt(), c.b.fmt(),
                            f"{beyond / LIMIT_S:.2f} of limit", f"build - hashing < {LIMIT_S:.0f} s",
                            _harness.verdict(beyond < LIMIT_S),
                            f"beyond hashing {beyond:.3f} s; per-pair ratio {c.fmt_ratio()}"))
        rows.append(Row("first build (pip finds the exact wheels)", f"{cold:.2f} s", "-", "-", "info",
                        "INFO", "once per environment; cached by interpreter tag, name, version, build"))
    print(render_text(rows))
    if args.markdown:
        args.markdown.write_text(render_markdown(rows) + "\n")
    return 0 if all(r.result in ("PASS", "INFO") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
