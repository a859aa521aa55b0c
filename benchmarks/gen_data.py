"""Generate the benchmark data sets, the signing key pair and the model_signing signatures.

Data sets (see /work/shared/design/performance.md, "Data sets"):

- ``W``: one safetensors file of ``tensors`` float32 tensors of 1024x2048 (8 MiB each), random
  normal, written with ``safetensors.numpy.save_file`` (full: 256 tensors = 2 GiB).
- ``D``: ``files`` files of random bytes, size uniform in [4 KiB, 64 KiB], in ``subdirs``
  subdirectories (full: 20,000 files in 100 subdirs, about 692 MB).
- ``D2`` (only with ``--d2``): 200,000 files of 1 KiB in 200 subdirectories. Note that mlpack
  refuses more than 100,000 resources per pack (E_LIMIT), so D2 is a peer-only data set.

Layout under the data directory (default ``$MLPACK_BENCH_DIR`` or ``/tmp/mlpack-bench``)::

    keys/ec.pem  keys/ec.pub          EC P-256 key pair: PKCS#8 PEM (0600) + SPKI PEM
    <scale>/W/W.safetensors           the directory packed as "W"   (scale: full | quick)
    <scale>/WD/W.safetensors          a copy of W (not a hard link) ...
    <scale>/WD/D/d000/f000000.bin     ... and D: the "W+D" directory; D alone is <scale>/WD/D
    <scale>/sigs/W.sig  D.sig         model_signing signatures of <scale>/W and <scale>/WD/D
    <scale>/markers/*.json            "done" markers (kept outside the data directories)
    d2/D2/...  d2/sigs/D2.sig         only with --d2

Generation is idempotent: a data set whose marker matches its parameters is skipped. Content
is deterministic (numpy generator with a fixed seed), so regenerated data is byte-identical.

Usage::

    python benchmarks/gen_data.py            # full scale (W 2 GiB, D 20,000 files)
    python benchmarks/gen_data.py --quick    # W 256 MiB, D 2,000 files
    python benchmarks/gen_data.py --d2       # also D2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB

FORMAT_VERSION = 1  # bump to force regeneration when the generator changes
D_VERSION = 3  # 3: plain random bytes again (version 2 replaced first bytes a sniffer feared)


@dataclass(frozen=True)
class Scale:
    """Sizes of one benchmark scale."""

    name: str
    w_tensors: int  # float32 tensors of 1024x2048 (8 MiB each)
    d_files: int
    d_subdirs: int
    seed: int = 20261126


SCALES = {
    "full": Scale("full", w_tensors=256, d_files=20_000, d_subdirs=100),
    "quick": Scale("quick", w_tensors=32, d_files=2_000, d_subdirs=20),
}
D2_FILES, D2_SUBDIRS, D2_SIZE = 200_000, 200, 1 * KiB


def default_root() -> Path:
    """Data directory: $MLPACK_BENCH_DIR, else /tmp/mlpack-bench."""
    return Path(os.environ.get("MLPACK_BENCH_DIR") or "/tmp/mlpack-bench")


def bin_tool(name: str) -> str | None:
    """Find a console script next to the running interpreter, else on PATH."""
    cand = Path(sys.executable).parent / name  # do not resolve: the venv's bin dir
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return shutil.which(name)


@dataclass(frozen=True)
class Paths:
    """Where each artefact of a scale lives."""

    root: Path
    scale: str

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def priv(self) -> Path:
        return self.keys / "ec.pem"

    @property
    def pub(self) -> Path:
        return self.keys / "ec.pub"

    @property
    def base(self) -> Path:
        return self.root / self.scale

    @property
    def w_dir(self) -> Path:
        return self.base / "W"

    @property
    def w_file(self) -> Path:
        return self.w_dir / "W.safetensors"

    @property
    def wd_dir(self) -> Path:
        return self.base / "WD"

    @property
    def d_dir(self) -> Path:
        return self.wd_dir / "D"

    @property
    def sigs(self) -> Path:
        return self.base / "sigs"

    @property
    def markers(self) -> Path:
        return self.base / "markers"

    @property
    def out(self) -> Path:
        """Scratch directory for the packs and tar files the benchmark writes."""
        return self.base / "out"


def _log(msg: str) -> None:
    print(f"[gen_data] {msg}", file=sys.stderr, flush=True)


def _marker_ok(marker: Path, params: Mapping[str, object]) -> bool:
    try:
        return bool(json.loads(marker.read_text()) == params)
    except (OSError, ValueError):
        return False


def _write_marker(marker: Path, params: Mapping[str, object]) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps(params, sort_keys=True))
    os.replace(tmp, marker)


def _fresh_dir(d: Path) -> None:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)


# --------------------------------------------------------------------------- keys


def ensure_keys(p: Paths) -> None:
    """Create the EC P-256 key pair (PKCS#8 private PEM, mode 0600, SPKI public PEM)."""
    if p.priv.is_file() and p.pub.is_file():
        return
    p.keys.mkdir(parents=True, exist_ok=True)
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        _log("cryptography not importable; using the openssl CLI")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", str(p.priv)], check=True)
        os.chmod(p.priv, 0o600)
        subprocess.run(["openssl", "pkey", "-in", str(p.priv), "-pubout", "-out", str(p.pub)],
                       check=True)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(p.priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        p.pub.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    # Any signature made with an older key is now stale.
    for marker in p.root.glob("*/markers/sig-*.json"):
        marker.unlink()
    _log(f"key pair written: {p.priv}, {p.pub}")


def key_id(p: Paths) -> str:
    import hashlib
    return hashlib.sha256(p.pub.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- data


def write_w(path: Path, tensors: int, seed: int) -> None:
    """W: `tensors` float32 tensors of 1024x2048, random normal, via safetensors.numpy."""
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    data = {f"layer.{i:03d}.weight": rng.standard_normal((1024, 2048), dtype=np.float32)
            for i in range(tensors)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(data, str(tmp))
    os.replace(tmp, path)


def write_files(root: Path, n_files: int, n_subdirs: int, sizes: list[int], seed: int) -> int:
    """Write n_files of random bytes with the given sizes, contiguous blocks per subdirectory."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per_dir = -(-n_files // n_subdirs)
    total = 0
    for d in range(n_subdirs):
        lo, hi = d * per_dir, min(n_files, (d + 1) * per_dir)
        if lo >= hi:
            break
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        blob = rng.bytes(sum(sizes[lo:hi]))
        off = 0
        for i in range(lo, hi):
            n = sizes[i]
            chunk = blob[off:off + n]
            with open(sub / f"f{i:06d}.bin", "wb") as f:
                f.write(chunk)
            off += n
        total += off
    return total


def ensure_w(p: Paths, s: Scale, force: bool) -> None:
    params = {"v": FORMAT_VERSION, "tensors": s.w_tensors, "seed": s.seed}
    marker = p.markers / "W.json"
    if not force and _marker_ok(marker, params) and p.w_file.is_file():
        _log(f"W ({s.name}) present, skipped")
        return
    marker.unlink(missing_ok=True)
    (p.markers / "WD-W.json").unlink(missing_ok=True)
    (p.markers / "sig-W.json").unlink(missing_ok=True)
    _fresh_dir(p.w_dir)
    t = time.perf_counter()
    write_w(p.w_file, s.w_tensors, s.seed)
    _log(f"W ({s.name}): {p.w_file.stat().st_size:,} B in {time.perf_counter() - t:.1f} s")
    _write_marker(marker, params)


def ensure_wd(p: Paths, s: Scale, force: bool) -> None:
    """WD/W.safetensors (a copy of W) and WD/D."""
    import numpy as np

    params = {"v": D_VERSION, "files": s.d_files, "subdirs": s.d_subdirs, "seed": s.seed}
    marker = p.markers / "D.json"
    if force or not _marker_ok(marker, params) or not p.d_dir.is_dir():
        marker.unlink(missing_ok=True)
        (p.markers / "sig-D.json").unlink(missing_ok=True)
        p.wd_dir.mkdir(parents=True, exist_ok=True)
        _fresh_dir(p.d_dir)
        t = time.perf_counter()
        rng = np.random.default_rng(s.seed + 1)
        sizes = rng.integers(4 * KiB, 64 * KiB, size=s.d_files, endpoint=True).tolist()
        total = write_files(p.d_dir, s.d_files, s.d_subdirs, sizes, s.seed + 2)
        _log(f"D ({s.name}): {s.d_files:,} files, {total:,} B in {time.perf_counter() - t:.1f} s")
        _write_marker(marker, params)
    else:
        _log(f"D ({s.name}) present, skipped")

    w_params = {"v": FORMAT_VERSION, "size": p.w_file.stat().st_size,
                "mtime_ns": p.w_file.stat().st_mtime_ns}
    w_marker = p.markers / "WD-W.json"
    wd_w = p.wd_dir / "W.safetensors"
    if force or not _marker_ok(w_marker, w_params) or not wd_w.is_file():
        t = time.perf_counter()
        tmp = wd_w.with_name(wd_w.name + ".tmp")
        shutil.copyfile(p.w_file, tmp)
        os.replace(tmp, wd_w)
        _log(f"WD/W.safetensors copied in {time.perf_counter() - t:.1f} s")
        _write_marker(w_marker, w_params)
    # Nothing but W.safetensors and D may sit in WD (it is packed whole).
    extra = sorted(x.name for x in p.wd_dir.iterdir() if x.name not in ("W.safetensors", "D"))
    if extra:
        raise SystemExit(f"unexpected entries in {p.wd_dir}: {extra}")


def ensure_d2(root: Path, force: bool) -> Path:
    d2 = root / "d2" / "D2"
    params = {"v": D_VERSION, "files": D2_FILES, "subdirs": D2_SUBDIRS, "size": D2_SIZE}
    marker = root / "d2" / "markers" / "D2.json"
    if not force and _marker_ok(marker, params) and d2.is_dir():
        _log("D2 present, skipped")
        return d2
    marker.unlink(missing_ok=True)
    (marker.parent / "sig-D2.json").unlink(missing_ok=True)
    _fresh_dir(d2)
    t = time.perf_counter()
    write_files(d2, D2_FILES, D2_SUBDIRS, [D2_SIZE] * D2_FILES, 7)
    _log(f"D2: {D2_FILES:,} files in {time.perf_counter() - t:.1f} s")
    _write_marker(marker, params)
    return d2


# --------------------------------------------------------------------------- signatures


def ensure_sig(p: Paths, model_dir: Path, sig: Path, marker: Path, data_marker: Path) -> None:
    """model_signing signature of model_dir, made with keys/ec.pem, stored outside model_dir."""
    params = {"v": FORMAT_VERSION, "key": key_id(p), "dir": str(model_dir),
              "data": json.loads(data_marker.read_text())}
    if _marker_ok(marker, params) and sig.is_file():
        _log(f"{sig.name} present, skipped")
        return
    ms = bin_tool("model_signing")
    if ms is None:
        raise SystemExit("model_signing not found next to the interpreter nor on PATH: "
                         "pip install 'model-signing==1.1.1' pyopenssl")
    sig.parent.mkdir(parents=True, exist_ok=True)
    sig.unlink(missing_ok=True)
    t = time.perf_counter()
    subprocess.run([ms, "--log-level", "WARNING", "sign", "key", "--private_key", str(p.priv),
                    "--signature", str(sig), str(model_dir)], check=True, stdout=sys.stderr)
    _log(f"{sig} signed in {time.perf_counter() - t:.1f} s ({sig.stat().st_size:,} B)")
    _write_marker(marker, params)


def ensure_scale(root: Path, scale: str, force: bool = False) -> Paths:
    """Make sure keys, W, WD (W copy + D) and the W/D signatures of `scale` exist."""
    s = SCALES[scale]
    p = Paths(root, scale)
    ensure_keys(p)
    ensure_w(p, s, force)
    ensure_wd(p, s, force)
    ensure_sig(p, p.w_dir, p.sigs / "W.sig", p.markers / "sig-W.json", p.markers / "W.json")
    ensure_sig(p, p.d_dir, p.sigs / "D.sig", p.markers / "sig-D.json", p.markers / "D.json")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=None,
                    help="data directory (default $MLPACK_BENCH_DIR or /tmp/mlpack-bench)")
    ap.add_argument("--quick", action="store_true", help="the quick scale (W 256 MiB, D 2,000)")
    ap.add_argument("--d2", action="store_true", help="also D2 (200,000 files of 1 KiB)")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args(argv)
    root = (args.dir or default_root()).absolute()
    p = ensure_scale(root, "quick" if args.quick else "full", args.force)
    if args.d2:
        d2 = ensure_d2(root, args.force)
        ensure_sig(p, d2, root / "d2" / "sigs" / "D2.sig", root / "d2" / "markers" / "sig-D2.json",
                   root / "d2" / "markers" / "D2.json")
    print(json.dumps({"root": str(root), "scale": asdict(SCALES[p.scale])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
