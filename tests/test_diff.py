"""mlpack diff on real packs built from examples/digits, varied one axis at a time.

Each pair differs in exactly one thing (a data file, a package version, a hyperparameter, a
retraining, a code file); each diff must report that change and call every other section equal.
The packs are built once per session (tests/_digits_packs.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mlpack import schema
from mlpack._read import open_verified
from mlpack.diff import DiffOptions, PackDiff, diff_files, diff_packs, render_markdown, render_text
from mlpack.errors import MlpackError
from tests._digits_packs import DigitsPacks, digits_packs, sha256_file

SECTIONS = ("metrics", "training", "code", "entrypoints", "environment", "datasets", "hardware",
            "weights", "pack", "files")


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> DigitsPacks:
    return digits_packs(tmp_path_factory)


def diff(packs: DigitsPacks, new: str, old: str = "base", **options: object) -> PackDiff:
    d = diff_files(packs.pack(old), packs.pack(new), trust=packs.trust, options=DiffOptions(**options))  # type: ignore[arg-type]
    problems = schema.validate(d.to_dict(), "diff")
    assert not problems, problems[:3]
    return d


def assert_only(d: PackDiff, *changed: str) -> None:
    """Exactly these sections differ materially; every other one present is reported equal."""
    assert d.changed_sections == changed, d.summary()
    for s in d.sections:
        if s.name not in changed:
            assert s.status in ("equal", "incidental", "absent"), (s.name, s.status, s.summary)
            if s.name != "training":
                assert s.status in ("equal", "absent"), (s.name, s.status, s.summary)


def test_identical_packs_say_so(packs: DigitsPacks, cli) -> None:  # type: ignore[no-untyped-def]
    d = diff(packs, "base-again")  # built again from the same tree: signed again, same content
    assert d.identical and d.equal and d.verdict == "identical"
    assert packs.pack("base").read_bytes() != packs.pack("base-again").read_bytes()  # new signature
    assert all(s.status in ("equal", "absent") for s in d.sections)
    r = cli("diff", packs.pack("base"), packs.pack("base-again"), "--key", packs.public_path)
    assert r.code == 0 and "IDENTICAL" in r.out and r.err == ""


def test_one_data_file_changed(packs: DigitsPacks, cli) -> None:  # type: ignore[no-untyped-def]
    d = diff(packs, "data")
    assert_only(d, "datasets")
    entries = {e["name"]: e for e in d.section("datasets").detail["datasets"]}
    assert entries["digits-train"]["change"] == "equal"
    test = entries["digits-test"]
    assert test["change"] == "changed"
    assert test["counts"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 0}
    assert [c["path"] for c in test["changed"]] == ["digits.parquet"]
    assert test["old"]["root_digest"] != test["new"]["root_digest"]
    assert test["old"]["rows"] == test["new"]["rows"] == 450
    assert test["bytes"]["changed_old"] == test["old"]["total_bytes"]
    r = cli("diff", packs.pack("base"), packs.pack("data"), "--key", packs.public_path)
    assert r.code == 1 and "DIFFERENT: datasets" in r.out and "digits.parquet" in r.out


def test_one_package_version_changed(packs: DigitsPacks) -> None:
    d = diff(packs, "env")
    assert_only(d, "environment")
    env = d.section("environment")
    assert env.detail["packages"] == [{"name": "mlpackprobe", "kind": "python", "change": "changed",
                                       "old_version": "1.0.0", "new_version": "1.1.0",
                                       "old_build": "py3-none-any", "new_build": "py3-none-any"}]
    assert env.detail["counts"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 0}
    assert env.changes == ()  # same interpreter, platform and mode
    assert "mlpackprobe 1.0.0 → 1.1.0" in render_text(d)


def test_one_hyperparameter_changed(packs: DigitsPacks) -> None:
    d = diff(packs, "hyper")
    # the parameter, and what it caused: new weights and a new accuracy
    assert_only(d, "metrics", "training", "weights")
    material = [c for c in d.section("training").changes if not c.incidental]
    assert {c.path for c in material} == {"params.C", "command"}
    c = next(c for c in material if c.path == "params.C")
    assert (c.old, c.new) == (1.0, 0.5)
    assert {c.path for c in d.section("training").changes if c.incidental} <= {"started", "ended", "duration_s"}
    (m,) = d.section("metrics").detail["metrics"]
    assert m["change"] == "changed" and m["old"] != m["new"]
    assert m["difference"] == pytest.approx(m["new"] - m["old"])
    assert m["allowed"] == 0.005 and m["within_tolerance"] == (abs(m["difference"]) <= 0.005)
    (w,) = d.section("weights").detail["weights"]
    assert w["counts"]["changed"] == 2 and w["counts"]["unchanged"] == 1  # classes unchanged
    assert {t["name"] for t in w["changed"]} == {"coef", "intercept"}


def test_tensor_statistics_match_numpy(packs: DigitsPacks, tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import load_file

    from mlpack.verify import unpack_pack

    d = diff(packs, "hyper")
    (w,) = d.section("weights").detail["weights"]
    arrays = []
    for name in ("base", "hyper"):
        out = tmp_path / name
        assert unpack_pack(packs.pack(name), out, trust=packs.trust).ok
        arrays.append(load_file(str(out / "weights" / "model.safetensors")))
    for t in w["changed"]:
        a, b = arrays[0][t["name"]], arrays[1][t["name"]]
        assert t["max_abs_diff"] == pytest.approx(float(np.max(np.abs(b - a))), rel=1e-12)
        nz = a != 0
        assert t["max_rel_diff"] == pytest.approx(float(np.max(np.abs(b - a)[nz] / np.abs(a[nz]))), rel=1e-12)
        assert t["elements_differing"] == int(np.count_nonzero(a != b))
    none = diff(packs, "hyper", tensor_stats=False)
    assert all("max_abs_diff" not in t for t in none.section("weights").detail["weights"][0]["changed"])


def test_retrained_weights_are_bit_identical(packs: DigitsPacks, cli) -> None:  # type: ignore[no-untyped-def]
    d = diff(packs, "retrained")
    # same code, data, environment, parameters and seed: the same tensors; only the run times differ
    assert_only(d)
    assert d.verdict == "equivalent" and not d.identical
    assert d.section("training").status == "incidental"
    assert d.section("weights").status == "equal"
    assert d.section("metrics").detail["metrics"][0]["change"] == "equal"
    args = ("diff", packs.pack("base"), packs.pack("retrained"), "--key", packs.public_path)
    assert cli(*args).code == 0
    assert cli(*args, "--strict").code == 1  # incidental differences count with --strict


def test_code_change_shows_a_unified_diff(packs: DigitsPacks, cli) -> None:  # type: ignore[no-untyped-def]
    d = diff(packs, "code")
    assert_only(d, "code")
    files = d.section("code").detail["files"]
    assert files["counts"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 5}
    (readme,) = files["changed"]
    assert readme["path"] == "README.md"
    assert "+Tuned on a Tuesday.\n" in readme["diff"] and readme["diff"].startswith("--- a/README.md\n+++ b/README.md\n")
    paths = {c.path: c for c in d.section("code").changes}
    assert (paths["git.dirty"].old, paths["git.dirty"].new) == (False, True)
    r = cli("diff", packs.pack("base"), packs.pack("code"), "--key", packs.public_path, "--markdown")
    assert r.code == 1 and "```diff" in r.out and "| code | changed |" in r.out


def test_dataset_files_added_and_removed(packs: DigitsPacks) -> None:
    d = diff(packs, "multi", limit=2)
    assert_only(d, "datasets")
    test = next(e for e in d.section("datasets").detail["datasets"] if e["name"] == "digits-test")
    assert test["counts"] == {"added": 3, "removed": 1, "changed": 0, "unchanged": 0}
    assert [x["path"] for x in test["added"]] == ["NOTES.txt", "part/a.parquet"]  # cut at --limit 2
    assert test["truncated"] is True
    assert test["removed"] == [{"path": "digits.parquet", "size": test["old"]["total_bytes"]}]
    assert test["bytes"]["added"] == test["new"]["total_bytes"]


def test_json_output_is_the_report(packs: DigitsPacks, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("diff", packs.pack("base"), packs.pack("env"), "--key", packs.public_path, "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and schema.validate(doc, "diff") == []
    assert doc["verdict"] == "different" and doc["changed"] == ["environment"]
    assert [s["name"] for s in doc["sections"]] == list(SECTIONS)


def test_manifest_join(tmp_path: Path) -> None:
    from mlpack._diff_data import diff_manifest_tables, manifest_table
    from mlpack.datasets import DatasetManifest

    def manifest(rows: dict[str, tuple[int, int]]) -> bytes:
        paths = sorted(rows, key=str.encode)
        return DatasetManifest(uri="s3://b/p", algorithm="sha256", paths=tuple(paths),
                               sizes=tuple(rows[p][0] for p in paths),
                               digests=b"".join(bytes([rows[p][1]]) * 32 for p in paths)).to_parquet_bytes()

    old = {"a": (1, 1), "b/c": (2, 2), "b/d": (3, 3), "z": (4, 4)}
    same_paths = {**old, "b/c": (2, 9), "z": (5, 4)}  # content change; size change
    d = diff_manifest_tables(manifest_table(manifest(old)), manifest_table(manifest(same_paths)))
    assert d.changed.to_pylist() == [{"path": "b/c", "old_size": 2, "new_size": 2},
                                     {"path": "z", "old_size": 4, "new_size": 5}]
    assert d.counts == {"added": 0, "removed": 0, "changed": 2, "unchanged": 2}
    churn = {"a": (1, 1), "b/c": (2, 7), "b/e": (6, 6), "y": (7, 7)}
    d = diff_manifest_tables(manifest_table(manifest(old)), manifest_table(manifest(churn)))
    assert d.added.to_pylist() == [{"path": "b/e", "size": 6}, {"path": "y", "size": 7}]
    assert d.removed.to_pylist() == [{"path": "b/d", "size": 3}, {"path": "z", "size": 4}]
    assert d.changed.column("path").to_pylist() == ["b/c"]
    assert d.counts["unchanged"] == 1


def test_pack_fields_and_other_files(model_dir: Path, tmp_path: Path) -> None:
    """Packs made with mlpack pack: no sections; control characters from the pack are escaped."""
    from mlpack.pack import pack_directory

    (model_dir / "mlpack.json").write_text(json.dumps(
        {"mlpack": "1.1", "name": "m", "files": {"count": 0, "size": 0}, "description": "plain"}))
    pack_directory(model_dir, tmp_path / "a.mlpack", key=None)
    (model_dir / "mlpack.json").write_text(json.dumps(
        {"mlpack": "1.1", "name": "m", "files": {"count": 0, "size": 0},
         "description": "evil \x1b[31mred\x1b[0m\nforged line"}))
    (model_dir / "data" / "labels.csv").write_text("id,label\n1,dog\n")
    (model_dir / "notes.txt").write_text("new\n")
    pack_directory(model_dir, tmp_path / "b.mlpack", key=None)
    d = diff_files(tmp_path / "a.mlpack", tmp_path / "b.mlpack", trust=(), allow_unsigned=True)
    assert schema.validate(d.to_dict(), "diff") == []
    assert d.changed_sections == ("pack", "files")
    files = d.section("files").detail["files"]
    assert [f["path"] for f in files["changed"]] == ["data/labels.csv"]
    assert [f["path"] for f in files["added"]] == ["notes.txt"]
    assert d.section("weights").status == "equal"
    text = render_text(d) + render_markdown(d)
    assert "\x1b" not in text and "\\x1b[31m" in text and "\nforged line" not in text


def flip(pack: Path, member: str) -> None:
    """Flip one byte in the middle of a member's data (located with tarfile, read-only)."""
    import tarfile

    with tarfile.open(pack) as tar:
        info = tar.getmember(member)
    with open(pack, "r+b") as f:
        f.seek(info.offset_data + info.size // 2)
        byte = f.read(1)
        f.seek(info.offset_data + info.size // 2)
        f.write(bytes([byte[0] ^ 1]))


def _one_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert lines and lines[0].startswith("mlpack: error: [") and len(lines) <= 2, err
    assert "Traceback" not in err


def test_bad_input(packs: DigitsPacks, cli, tmp_path: Path, other_keypair) -> None:  # type: ignore[no-untyped-def]
    base = packs.pack("base")
    tampered = tmp_path / "tampered.mlpack"
    shutil.copyfile(packs.pack("hyper"), tampered)
    flip(tampered, "weights/model.safetensors")
    not_pack = tmp_path / "notes.txt"
    not_pack.write_text("hello, this is not a pack\n" * 512)  # 13,312 bytes: 26 blocks
    key = ("--key", packs.public_path)
    cases = [
        (("diff", base, tampered, *key), 1, "E_DIGEST"),
        (("diff", base, packs.pack("env"), "--key", other_keypair.public), 1, "E_UNTRUSTED_KEY"),
        (("diff", not_pack, base, *key), 1, "E_HEADER"),
        (("diff", base, tmp_path / "missing.mlpack", *key), 2, "E_INPUT"),
        (("diff", base, packs.pack("env")), 2, "E_USAGE"),
        (("diff", base, packs.pack("env"), *key, "--json", "--markdown"), 2, "E_USAGE"),
    ]
    for args, code, error in cases:
        r = cli(*args)
        assert (r.code, r.out) == (code, ""), (args, r.code, r.out[:200])
        assert f"[{error}]" in r.err, r.err
        _one_line(r.err)
    r = cli("diff", base, tampered, *key)
    assert "tampered.mlpack" in r.err  # the line names the pack that failed


def test_a_pack_changed_after_verification_is_refused(packs: DigitsPacks, tmp_path: Path) -> None:
    copy = tmp_path / "hyper.mlpack"
    shutil.copyfile(packs.pack("hyper"), copy)
    with open_verified(packs.pack("base"), trust=packs.trust) as old, open_verified(copy, trust=packs.trust) as new:
        w = new.manifest.weights[0]
        t = next(t for t in w.index["tensors"] if t["name"] == "coef")  # type: ignore[index]
        with open(copy, "r+b") as f:  # rewrite a byte of a tensor in place, after verification
            offset = os.path.getsize(copy)
            data = f.read()
            at = data.index(new.read_range(w.path, t["file_offsets"][0], t["file_offsets"][0] + 16))
            f.seek(at)
            f.write(bytes([data[at] ^ 1]))
        assert offset == os.path.getsize(copy)
        with pytest.raises(MlpackError) as err:
            diff_packs(old, new)
        assert err.value.code == "E_IO" and "changed after it was verified" in err.value.message


def test_no_difference_goes_unreported(packs: DigitsPacks) -> None:
    """If no section saw a difference between packs of different content, every file is compared."""
    from mlpack.diff import SECTION_ORDER, SectionDiff, _unexplained

    blind = [SectionDiff(name=n, status="equal", summary="") for n in SECTION_ORDER]
    with open_verified(packs.pack("base"), trust=packs.trust) as old, \
            open_verified(packs.pack("env"), trust=packs.trust) as new:
        found = _unexplained(old, new, DiffOptions(), blind)
    files = next(s for s in found if s.name == "files")
    assert files.status == "changed"
    assert [f["path"] for f in files.detail["files"]["changed"]] == ["environment/pylock.toml"]


def test_onnx_external_data(tmp_path: Path) -> None:
    """An ONNX model whose weights live in external data: the .onnx file is unchanged, the tensors are."""
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from mlpack.build import build_project
    from tests.test_weights import mlp

    def project(name: str, scale: float) -> Path:
        model, _ = mlp()
        for init in model.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype.kind == "f":
                init.CopyFrom(numpy_helper.from_array((arr * scale).astype(arr.dtype), init.name))
        root = tmp_path / name
        (root / "onnx").mkdir(parents=True)
        onnx.save_model(model, str(root / "onnx" / "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
        (root / "mlpack.toml").write_text('[model]\nname = "mlp"\nweights = ["onnx/model.onnx", '
                                          '"onnx/model.onnx.data"]\n[environment]\nmode = "none"\n')
        build_project(root, tmp_path / f"{name}.mlpack", key=None)
        return tmp_path / f"{name}.mlpack"

    d = diff_files(project("a", 1.0), project("b", 1.5), trust=(), allow_unsigned=True)
    assert schema.validate(d.to_dict(), "diff") == []
    assert d.changed_sections == ("weights",)
    (w,) = d.section("weights").detail["weights"]
    assert w["format"] == "onnx" and w["counts"]["changed"] == 3 and w["counts"]["unchanged"] == 2  # b1 is 0
    for t in w["changed"]:  # every element scaled by 1.5: relative difference 0.5 exactly
        assert t["dtype"] == "FLOAT" and t["max_rel_diff"] == pytest.approx(0.5)


def test_members_read_from_the_verified_pack(packs: DigitsPacks) -> None:
    with open_verified(packs.pack("base"), trust=packs.trust) as p:
        lock = p.read("environment/pylock.toml")
        with p.open_member("environment/pylock.toml") as stream:
            assert stream.read() == lock
            stream.seek(5)
            assert stream.read(10) == lock[5:15]
        assert b"".join(p.iter_range("environment/pylock.toml", 0, len(lock), 7)) == lock
        assert p.file_sha256() == sha256_file(packs.pack("base"))
        with pytest.raises(MlpackError) as err:
            p.read("no/such/member")
        assert err.value.code == "E_MANIFEST"
