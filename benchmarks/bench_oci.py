"""Benchmark OCI distribution: a 2 GiB pack round trip against plain ORAS (issue 6, item 3).

Target: `mlpack push` + `mlpack pull` (which verifies the pack, signature and every digest,
before renaming it into place) of a 2 GiB pack at most 1.2x the time of ORAS pushing and
pulling the same files, printed side by side as ratios in one run.

Peer: the ORAS Go CLI is not installable here (no Debian or PyPI package ships the binary),
so the peer is oras-py (`pip install oras`, the ORAS Python SDK: `OrasClient.push` /
`.pull`, its defaults: a monolithic PUT per blob, streamed download). It pushes the pack's
member files (unpacked by `mlpack unpack`, so: the same bytes, the same blobs) and pulls them
into a directory; it checks no signature.

Both tools talk to their own Debian `docker-registry` (CNCF distribution 2.8) on loopback;
before every push run the registry is restarted on an empty storage directory (untimed), so
neither tool finds a blob already there. Every figure is whole-process wall clock (interpreter
start-up included) with A/B alternation and per-pair ratios (see _harness.py).

    python benchmarks/bench_oci.py                  # 2 GiB, 3 runs: about 3-5 minutes
    python benchmarks/bench_oci.py --quick          # 256 MiB, 2 runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _harness
from _harness import Cmd, Row, compare, render_text


def oras_push(host: str, target: str, files_dir: str) -> None:
    """Peer: oras-py push of every file under files_dir (relative names, as the ORAS docs do)."""
    import oras.client

    os.chdir(files_dir)
    files = sorted(str(p.relative_to(".")) for p in Path(".").rglob("*") if p.is_file())
    client = oras.client.OrasClient(hostname=host, insecure=True)
    response = client.push(target=target, files=files, disable_path_validation=True)
    if response.status_code not in (200, 201):
        raise SystemExit(f"oras push failed: {response.status_code}")


def oras_pull(host: str, target: str, outdir: str) -> None:
    import oras.client

    client = oras.client.OrasClient(hostname=host, insecure=True)
    client.pull(target=target, outdir=outdir)


def make_data(root: Path, size_mib: int) -> tuple[Path, Path, Path]:
    """model/ (one safetensors of size_mib, a config, code), a key pair, the pack, its files."""
    import numpy as np
    from safetensors.numpy import save_file

    from mlpack import keys
    from mlpack.pack import pack_directory

    marker = root / f"made-{size_mib}"
    pack, key, files = root / "model.mlpack", root / "author", root / "files"
    if marker.exists():
        return pack, key, files
    shutil.rmtree(root, ignore_errors=True)
    model = root / "model"
    (model / "code").mkdir(parents=True)
    rng = np.random.default_rng(0)
    parts = max(1, size_mib // 512)
    tensors = {f"layer{i}.weight": np.frombuffer(rng.bytes((size_mib << 20) // parts), dtype=np.float32)
               .reshape(-1, 1024) for i in range(parts)}
    save_file(tensors, str(model / "model.safetensors"))
    del tensors
    (model / "config.json").write_text('{"hidden": 1024}\n')
    (model / "code" / "train.py").write_text("print('train')\n")
    keys.generate(key)
    pack_directory(model, pack, key=keys.load_signing_key(key.with_suffix(".pem")))
    shutil.rmtree(model)
    subprocess.run([sys.executable, "-m", "mlpack", "unpack", str(pack), "-d", str(files), "--key",
                    str(key.with_suffix(".pub"))], check=True, capture_output=True)
    marker.touch()
    return pack, key, files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="256 MiB, 2 runs")
    parser.add_argument("--dir", default=os.environ.get("MLPACK_BENCH_DIR", "/tmp/mlpack-bench-oci"))
    parser.add_argument("--keep", action="store_true", help="keep the data and registry storage")
    parser.add_argument("--oras-push", nargs=3, metavar=("HOST", "TARGET", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--oras-pull", nargs=3, metavar=("HOST", "TARGET", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--make-data", nargs=2, metavar=("ROOT", "MIB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_data:
        make_data(Path(args.make_data[0]), int(args.make_data[1]))
        return 0
    if args.oras_push:
        oras_push(*args.oras_push)
        return 0
    if args.oras_pull:
        oras_pull(*args.oras_pull)
        return 0
    if args.quick:
        args.size_mib, args.runs = 256, 2
    if shutil.which("docker-registry") is None:
        print("docker-registry is not installed (apt-get install docker-registry)", file=sys.stderr)
        return 2
    try:
        import oras.client  # noqa: F401
    except ImportError:
        print("the peer oras-py is not installed (pip install oras)", file=sys.stderr)
        return 2
    from tests._registry import Registry

    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    print(f"data: {args.size_mib} MiB pack under {root} (made once)", file=sys.stderr)
    t0 = time.monotonic()
    # in a child process: the children's ru_maxrss would otherwise start from this process's peak
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make-data", str(root / "data"),
                    str(args.size_mib)], check=True)
    pack, key, files = make_data(root / "data", args.size_mib)
    print(f"  ready in {time.monotonic() - t0:.1f} s: {pack.stat().st_size} bytes", file=sys.stderr)
    reg_a, reg_b = Registry(root / "registry-mlpack"), Registry(root / "registry-oras")
    out_a, out_b = root / "out-mlpack", root / "out-oras"
    env = _harness.child_env(str(root / "pycache"))
    env.update({"DOCKER_CONFIG": str(root / "no-docker-config"), "MLPACK_REGISTRY_RETRIES": "0"})
    mlpack = [sys.executable, "-m", "mlpack"]
    me = [sys.executable, str(Path(__file__).resolve())]

    def fresh(reg: Registry) -> None:
        reg.stop()
        shutil.rmtree(reg.storage, ignore_errors=True)
        reg.start()
        subprocess.run(["sync"], check=False)

    def clean(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        subprocess.run(["sync"], check=False)

    try:
        reg_a.start()
        reg_b.start()
        push_a = Cmd("mlpack push", [*mlpack, "push", str(pack), f"oci://{reg_a.host}/bench/model:1"],
                     setup=lambda: fresh(reg_a), env=env)
        push_b = Cmd("oras-py push", [*me, "--oras-push", reg_b.host, f"{reg_b.host}/bench/model:1", str(files)],
                     setup=lambda: fresh(reg_b), env=env)
        pull_a = Cmd("mlpack pull (+verify)", [*mlpack, "pull", f"oci://{reg_a.host}/bench/model:1", "-o",
                                               str(out_a / "model.mlpack"), "--key", str(key.with_suffix(".pub"))],
                     setup=lambda: clean(out_a), env=env)
        pull_b = Cmd("oras-py pull", [*me, "--oras-pull", reg_b.host, f"{reg_b.host}/bench/model:1", str(out_b)],
                     setup=lambda: clean(out_b), env=env)
        push = compare(push_a, push_b, runs=args.runs)
        pull = compare(pull_a, pull_b, runs=args.runs)
        if (out_a / "model.mlpack").read_bytes() != pack.read_bytes():
            print("ERROR: the pulled pack differs from the pushed one", file=sys.stderr)
            return 1
        trips = [(pa.wall + qa.wall) / (pb.wall + qb.wall)
                 for pa, qa, pb, qb in zip(push.a.runs, pull.a.runs, push.b.runs, pull.b.runs)]
        trip_a = [pa.wall + qa.wall for pa, qa in zip(push.a.runs, pull.a.runs)]
        trip_b = [pb.wall + qb.wall for pb, qb in zip(push.b.runs, pull.b.runs)]
        import statistics

        ratio = statistics.median(trips)
        size = f"{args.size_mib} MiB"
        rows = [
            Row(f"push {size}", push.a.fmt(), push.b.fmt(), push.fmt_ratio(), "info", "INFO",
                f"peak RSS {_harness.fmt_bytes(push.a.peak_rss)} vs {_harness.fmt_bytes(push.b.peak_rss)}"),
            Row(f"pull {size}", pull.a.fmt(), pull.b.fmt(), pull.fmt_ratio(), "info", "INFO",
                f"mlpack also verifies signature and digests; peak RSS {_harness.fmt_bytes(pull.a.peak_rss)} vs "
                f"{_harness.fmt_bytes(pull.b.peak_rss)}"),
            Row(f"round trip {size}", f"{statistics.median(trip_a):.2f} s", f"{statistics.median(trip_b):.2f} s",
                f"{ratio:.3f} [{min(trips):.3f}-{max(trips):.3f}]", "<= 1.2", _harness.verdict(ratio <= 1.2)),
        ]
        print(render_text(rows))
        return 0 if ratio <= 1.2 else 1
    finally:
        reg_a.stop()
        reg_b.stop()
        if not args.keep:
            for path in (reg_a.root, reg_b.root, out_a, out_b):
                shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
