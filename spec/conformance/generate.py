"""Write the mlpack conformance corpus: packs/<case>.mlpack, cases.json and the test keys.

    python spec/conformance/generate.py            # into spec/conformance/
    python spec/conformance/generate.py OUT_DIR    # somewhere else (fresh keys there if absent)

The TEST-ONLY key pairs in keys/ are generated once and reused when present, so
regenerating changes only the signature bytes (ECDSA signatures are randomized) and
not the trust set. The case table lives in cases.py; nothing here decides a verdict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import cases as _cases

__all__ = ["FORMAT", "KEY_FILES", "MAX_PACK", "ensure_keys", "generate"]

FORMAT = "mlpack-conformance/1"
MAX_PACK = 64 * 1024
KEY_FILES = {"main": "conformance-TEST-ONLY", "other": "other-TEST-ONLY"}


def ensure_keys(keys_dir: Path) -> dict[str, bytes]:
    """Load (or create once) the TEST-ONLY P-256 key pairs; returns role -> private PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys_dir.mkdir(parents=True, exist_ok=True)
    pems = {}
    for role, stem in KEY_FILES.items():
        private_path, public_path = keys_dir / f"{stem}.pem", keys_dir / f"{stem}.pub"
        if private_path.exists():
            pem = private_path.read_bytes()
            key = serialization.load_pem_private_key(pem, None)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            private_path.write_bytes(pem)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if not public_path.exists() or public_path.read_bytes() != public:
            public_path.write_bytes(public)
        pems[role] = pem
    return pems


def generate(
    out_dir: str | os.PathLike[str] = HERE, keys_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Build every case into ``out_dir``; returns the cases.json document."""
    out = Path(out_dir)
    keys_path = Path(keys_dir) if keys_dir is not None else out / "keys"
    pems = ensure_keys(keys_path)
    public_files = {
        role: os.path.relpath(keys_path / f"{stem}.pub", out).replace(os.sep, "/")
        for role, stem in KEY_FILES.items()
    }
    keys = _cases.Keys.from_pems(pems, public_files)
    packs = out / "packs"
    packs.mkdir(parents=True, exist_ok=True)
    entries = []
    written = set()
    for case in _cases.CASES:
        data, tree = _cases.materialize(case.build(keys))
        if len(data) >= MAX_PACK:
            raise AssertionError(
                f"{case.name}: {len(data)} bytes; corpus packs must stay under {MAX_PACK}"
            )
        file = f"packs/{case.name}.mlpack"
        (out / file).write_bytes(data)
        written.add(f"{case.name}.mlpack")
        entry: dict[str, Any] = {
            "name": case.name,
            "file": file,
            "description": case.description,
            "ref": case.ref,
            "trust": [public_files[r] for r in case.trust],
            "allow_unsigned": case.allow_unsigned,
            "threshold": case.threshold,
            "expected": {
                "verdict": case.verdict,
                "code": case.code,
                "member": case.member,
                **({"also": list(case.also)} if case.also else {}),
            },
        }
        if case.note:
            entry["note"] = case.note
        if tree is not None and case.verdict != "failed":
            entry["files"] = tree
        entries.append(entry)
    for stale in packs.glob("*.mlpack"):
        if stale.name not in written:
            stale.unlink()
    doc = {
        "format": FORMAT,
        "spec": "mlpack pack format v1.0",
        "generator": "spec/conformance/generate.py",
        "keys": {role: public_files[role] for role in KEY_FILES},
        "cases": entries,
    }
    (out / "cases.json").write_text(
        json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return doc


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    doc = generate(out)
    counts: dict[str, int] = {}
    for c in doc["cases"]:
        counts[c["expected"]["verdict"]] = counts.get(c["expected"]["verdict"], 0) + 1
    print(
        f"wrote {len(doc['cases'])} cases to {out}: "
        + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
