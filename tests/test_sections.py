"""verify's checks of the 1.1 sections against the signed files (mlpack.sections, spec/manifest.md).

Each pack here is validly signed and every digest matches: only what a section claims about
the pack's own files is wrong, and verify must still refuse it with E_MANIFEST (or the code
of the file concerned). The same claims in a 1.0 document have no meaning and are ignored.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from mlpack import datasets
from mlpack.manifest import FilesSummary, Manifest, WeightsFile
from mlpack.pack import Source, write_pack
from mlpack.verify import verify_pack
from mlpack.weights import index_safetensors

DIGEST = "sha256:" + "ab" * 32


def _code_section(files: int, size: int) -> dict[str, Any]:
    return {"files": files, "size": size, "root": "", "digest": DIGEST}


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Any]:
    """The files of a small 1.1 pack and the sections that describe them correctly."""
    weights = tmp_path / "model.safetensors"
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(weights))
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n2\n")
    manifest = datasets.build(data)
    entry = manifest.entry("train", mode="included").to_dict()
    code = b"print('train')\n"
    sources = [Source("weights/model.safetensors", path=str(weights)), Source("code/train.py", data=code),
               Source("environment/pylock.toml", data=b'lock-version = "1.0"\ncreated-by = "t"\n'),
               Source(entry["manifest"], data=manifest.to_parquet_bytes()),
               Source("datasets/train/a.csv", path=str(data / "a.csv"))]
    index = index_safetensors(weights, name="weights/model.safetensors").to_dict()
    sections = {"code": _code_section(1, len(code)),
                "environment": {"mode": "lock", "lock": "environment/pylock.toml",
                                "python": {"version": "3.11.7", "implementation": "CPython",
                                           "tag": "cp311-cp311-manylinux_2_36_x86_64"},
                                "platform": {"sys_platform": "linux", "machine": "x86_64"}, "packages": 0},
                "datasets": {"entries": [entry]}}
    return {"sources": sources, "index": index, "sections": sections, "size": weights.stat().st_size}


def _pack(tmp_path: Path, parts: dict[str, Any], *, version: str = "1.1", index: Any = None,
          sections: dict[str, Any] | None = None, sources: list[Source] | None = None) -> Path:
    out = tmp_path / f"p{len(list(tmp_path.glob('p*.mlpack')))}.mlpack"
    m = Manifest(mlpack=version, name="s", files=FilesSummary(count=0, size=0),
                 sections=parts["sections"] if sections is None else sections)
    w = WeightsFile(path="weights/model.safetensors", format="safetensors", size=parts["size"],
                    index=parts["index"] if index is None else index)
    write_pack(parts["sources"] if sources is None else sources, m, out, key=None, weights=[w])
    return out


def _code(path: Path) -> str | None:
    report = verify_pack(path, trust=[], allow_unsigned=True)
    return None if report.ok else report.error.code  # type: ignore[union-attr]


def test_a_consistent_pack_verifies(tmp_path: Path, parts: dict[str, Any]) -> None:
    report = verify_pack(_pack(tmp_path, parts), trust=[], allow_unsigned=True)
    assert report.ok, report.render()
    assert "1 weights index(es); 1 dataset manifest(s); 1 code file(s)" in report.check("manifest").detail


def test_weights_index_must_match_its_tensors_and_size(tmp_path: Path, parts: dict[str, Any]) -> None:
    forged = copy.deepcopy(parts["index"])
    forged["tensors"][0]["sha256"] = "00" * 32  # the root no longer matches the tensors
    assert _code(_pack(tmp_path, parts, index=forged)) == "E_MANIFEST"
    resized = copy.deepcopy(parts["index"])
    resized["size"] += 1
    assert _code(_pack(tmp_path, parts, index=resized)) == "E_MANIFEST"


def test_members_a_section_names_must_be_signed_files(tmp_path: Path, parts: dict[str, Any]) -> None:
    s = copy.deepcopy(parts["sections"])
    s["environment"]["lock"] = "environment/requirements.txt"  # a valid name, but not in this pack
    assert _code(_pack(tmp_path, parts, sections=s)) == "E_MANIFEST"
    s = copy.deepcopy(parts["sections"])
    s["datasets"]["entries"][0]["manifest"] = "datasets/other.parquet"
    assert _code(_pack(tmp_path, parts, sections=s)) == "E_MANIFEST"


def test_code_counts_must_match_the_code_files(tmp_path: Path, parts: dict[str, Any]) -> None:
    s = copy.deepcopy(parts["sections"])
    s["code"] = _code_section(2, s["code"]["size"])
    assert _code(_pack(tmp_path, parts, sections=s)) == "E_MANIFEST"


def test_dataset_manifest_must_parse_and_match_its_entry(tmp_path: Path, parts: dict[str, Any]) -> None:
    s = copy.deepcopy(parts["sections"])
    s["datasets"]["entries"][0]["file_count"] = 2
    assert _code(_pack(tmp_path, parts, sections=s)) == "E_MANIFEST"
    garbage = [x if x.name != "datasets/train.parquet" else Source(x.name, data=b"not parquet")
               for x in parts["sources"]]
    assert _code(_pack(tmp_path, parts, sources=garbage)) == "E_MANIFEST"


def test_included_dataset_files_are_exactly_the_manifests(tmp_path: Path, parts: dict[str, Any]) -> None:
    missing = [x for x in parts["sources"] if x.name != "datasets/train/a.csv"]
    assert _code(_pack(tmp_path, parts, sources=missing)) == "E_MISSING"
    extra = [*parts["sources"], Source("datasets/train/b.csv", data=b"x\n")]
    assert _code(_pack(tmp_path, parts, sources=extra)) == "E_UNLISTED"
    changed = [x if x.name != "datasets/train/a.csv" else Source(x.name, data=b"x\n9\n9\n")
               for x in parts["sources"]]  # same size, other bytes
    assert _code(_pack(tmp_path, parts, sources=changed)) == "E_DIGEST"


def test_the_same_claims_in_a_1_0_document_are_ignored(tmp_path: Path, parts: dict[str, Any]) -> None:
    s = copy.deepcopy(parts["sections"])
    s["code"] = _code_section(7, 1)
    s["environment"]["lock"] = "environment/missing.toml"
    assert _code(_pack(tmp_path, parts, version="1.0", sections=s)) is None
