"""mlpack.datasets: manifests of local and S3 data sets, Parquet storage, compare, the entry."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from mlpack import datasets as ds
from mlpack.datasets import DatasetEntry, DatasetManifest, build, compare
from mlpack.errors import IOFailure, UsageError, VerificationError
from mlpack.names import check_name

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "spec"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def expected_root(files: dict[str, bytes]) -> str:
    """The root digest as spec/datasets.md defines it, computed independently."""
    h = hashlib.sha256()
    for name in sorted(files, key=lambda n: n.encode("utf-8")):
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(files[name]).digest())
    return "sha256:" + h.hexdigest()


PETS = {"labels.csv": b"id,label\n1,cat\n2,dog\n", "images/0001.jpg": b"not really a jpeg\n"}


@pytest.fixture
def photos(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    files = {
        f"{kind}/{i:03d}.{ext}": f"{kind}-{i}-{ext}".encode() * (i + 1)
        for kind in ("cats", "dogs") for i in range(6) for ext in ("jpg", "txt")
    }
    files["README.md"] = b"# photos\n"
    files["cats/sub/deep/x.jpg"] = b"\xff\xd8\xff" + bytes(range(256))
    return write_tree(tmp_path / "photos", files), files


# --------------------------------------------------------------------------- build


def test_spec_test_vector(tmp_path: Path) -> None:
    m = build(write_tree(tmp_path / "train", PETS))
    assert m.paths == ("images/0001.jpg", "labels.csv")
    assert [f.digest.hex()[:8] for f in m.files] == ["3aeb7a90", "9a03b975"]
    assert m.root_digest == "sha256:84737a4f769da830f7b5e0b66c20414ba92ed55919202a1c1a53dfe771cf6dfb"
    assert m.root_digest == expected_root(PETS)
    assert (m.file_count, m.total_bytes, m.algorithm) == (2, 39, "sha256")
    assert m.uri == (tmp_path / "train").as_uri()
    text = (SPEC / "datasets.md").read_text()
    assert m.root_digest in text and all(f.digest.hex() in text for f in m.files)


def test_directory_nested_every_file_sorted_by_utf8(photos: tuple[Path, dict[str, bytes]]) -> None:
    root, files = photos
    (root / "empty-dir" / "nested").mkdir(parents=True)  # directories are not recorded
    extra = {"a-b/z.txt": b"1", "a/b.txt": b"2", "Z.txt": b"3", "é/ü.txt": b"4", "a.txt": b""}
    write_tree(root, extra)
    files = {**files, **extra}
    m = build(root)
    assert list(m.paths) == sorted(files, key=lambda n: n.encode("utf-8"))
    assert m.paths.index("a-b/z.txt") < m.paths.index("a.txt") < m.paths.index("a/b.txt")
    for f in m.files:
        assert f.size == len(files[f.path]) and f.digest == hashlib.sha256(files[f.path]).digest()
    assert m.root_digest == expected_root(files)
    assert m.total_bytes == sum(map(len, files.values()))
    assert DatasetManifest.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "train.bin"
    write_tree(tmp_path / "dir", {"train.bin": b"x" * 3000})
    m = build(path)
    assert m.paths == ("train.bin",) and m.sizes == (3000,)
    assert m.root_digest == expected_root({"train.bin": b"x" * 3000})
    assert m.uri == path.as_uri()


def test_many_files_in_worker_processes_match_a_serial_hash(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i:04d}.bin": os.urandom(i % 300) for i in range(ds.FORK_MIN_FILES + 300)}
    files["big.bin"] = os.urandom(3 * ds.CHUNK + 17)  # read in several chunks
    m = build(write_tree(tmp_path / "many", files))
    assert m.file_count == len(files) and m.root_digest == expected_root(files)


def test_blake3_column_and_digests(tmp_path: Path) -> None:
    import blake3

    m = build(write_tree(tmp_path / "t", PETS), algorithm="blake3")
    assert m.digest(1) == blake3.blake3(PETS["labels.csv"]).digest()
    table = pq.read_table(pa.BufferReader(m.to_parquet_bytes()))
    assert table.column_names[:3] == ["path", "size", "blake3"]
    assert DatasetManifest.from_parquet(m.to_parquet_bytes()) == m
    with pytest.raises(VerificationError) as info:
        build(tmp_path / "t", algorithm="md5")
    assert info.value.code == "E_ALGORITHM"


def test_missing_and_empty_sources_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        build(tmp_path / "nope")
    assert info.value.code == "E_INPUT" and "does not exist" in info.value.message
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(UsageError) as info:
        build(tmp_path / "empty")
    assert info.value.code == "E_INPUT" and "holds no files" in info.value.message
    assert info.value.hint


def test_symbolic_links_are_refused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", PETS)
    (root / "link.csv").symlink_to(root / "labels.csv")
    with pytest.raises(VerificationError) as info:
        build(root)
    assert info.value.code == "E_MEMBER_TYPE" and "symbolic link" in info.value.message
    assert info.value.member == "link.csv"
    (root / "link.csv").unlink()
    (root / "dirlink").symlink_to(root / "images", target_is_directory=True)
    with pytest.raises(VerificationError, match="symbolic link"):
        build(root)
    (root / "dirlink").unlink()
    assert build(root).file_count == 2
    (tmp_path / "rootlink").symlink_to(root)  # the root the user names may be a link
    assert build(tmp_path / "rootlink").root_digest == build(root).root_digest


def test_fifo_is_refused_not_read(tmp_path: Path) -> None:
    """A FIFO would block a reader forever; it is refused from the walk, never opened."""
    root = write_tree(tmp_path / "d", PETS)
    os.mkfifo(root / "pipe")
    with pytest.raises(VerificationError) as info:
        build(root)
    assert info.value.code == "E_MEMBER_TYPE" and "not a regular file" in info.value.message


@pytest.mark.parametrize("count", [3, ds.FORK_MIN_FILES + 10], ids=["threads", "processes"])
def test_file_that_disappears_while_reading_is_an_io_error(tmp_path: Path, count: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreadable file: root reads any mode, so the file vanishes between walk and read."""
    root = write_tree(tmp_path / "d", {f"f{i:04d}": b"data" for i in range(count)})
    real_walk = ds._walk

    def walk_then_delete(path: str) -> list[str]:
        names = real_walk(path)
        (root / "f0002").unlink()
        return names

    monkeypatch.setattr(ds, "_walk", walk_then_delete)
    with pytest.raises(IOFailure) as info:
        build(root)
    assert info.value.code == "E_IO" and "f0002" in info.value.message
    assert "disappeared" in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files of any mode; covered by the vanishing-file test")
def test_unreadable_file_is_an_io_error(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", PETS)
    (root / "labels.csv").chmod(0)
    try:
        with pytest.raises(IOFailure) as info:
            build(root)
        assert info.value.code == "E_IO" and "labels.csv" in info.value.message
    finally:
        (root / "labels.csv").chmod(0o644)


def test_names_that_are_not_portable_are_refused(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", {"ok.txt": b"1", "bad:name.txt": b"2"})
    with pytest.raises(VerificationError) as info:
        build(root)
    assert info.value.code == "E_PATH" and info.value.member == "bad:name.txt"
    root2 = write_tree(tmp_path / "e", {"ok.txt": b"1", "sub/CON.txt": b"2"})
    with pytest.raises(VerificationError) as info:
        build(root2)
    assert info.value.code == "E_NAME"


NAMES = ["a", "a.b", ".hidden", "..x", "a..b", "x.", "x ", "con", "CON.txt", "com1/a", "com10",
         "nul.tar.gz", "lpt9", "auxx", ".mlpack", ".MLPACK/x", ".mlpackx", "a/.mlpack", "-a", "_",
         "a" * 255, "a" * 256, "/".join(["d"] * 32), "/".join(["d"] * 33), "x" * 1024, "x" * 1025,
         "a/./b", "a//b", "é", "a b", "a\\b", "a:b", "tab\tx", "x" * 200 + "/" + "y" * 200]


@pytest.mark.parametrize("name", NAMES)
def test_fast_name_path_implies_check_name(name: str) -> None:
    """The vectorised fast path accepts only names that check_name accepts."""
    try:
        check_name(name)
        valid = True
    except VerificationError:
        valid = False
    if ds._fast_accepts(name):
        assert valid, name
    for arrow in (False, True):  # both vectorised paths, then check_name on failure
        column_ok = True
        try:
            ds._check_names(["0first", name] if "0first" < name else [name], arrow=arrow)
        except VerificationError:
            column_ok = False
        assert column_ok == valid, (name, arrow)


def test_name_list_must_be_strictly_sorted() -> None:
    for arrow in (False, True):
        ds._check_names(["a", "a-b", "a/b", "b"], arrow=arrow)
        for bad in (["b", "a"], ["a", "a"]):
            with pytest.raises(VerificationError, match="sorted"):
                ds._check_names(bad, arrow=arrow)


def test_fast_name_path_property() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    alphabet = st.sampled_from(list("aAzZ09._- /:\\é\x00\tCONUXLPTM") + ["mlpack", "com1", ".."])

    @hypothesis.settings(max_examples=300, deadline=None)
    @hypothesis.given(st.lists(alphabet, min_size=1, max_size=12).map("".join))
    def check(name: str) -> None:
        if ds._fast_accepts(name):
            check_name(name)

    check()


# --------------------------------------------------------------------------- Parquet


def test_parquet_round_trip_layout_and_determinism(photos: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    root, _ = photos
    m = build(root)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    m.to_parquet(a)
    build(root).to_parquet(b)  # a second build, a second write
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    back = DatasetManifest.from_parquet(a)
    assert back == m
    table = pq.read_table(a)
    assert table.schema.field("path").type == pa.string()
    assert table.schema.field("size").type == pa.uint64()
    assert table.schema.field("sha256").type == pa.binary(32)
    assert table.column_names == ["path", "size", "sha256"]  # no table files here
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items() if k.startswith(b"mlpack.")}
    assert meta == {"mlpack.dataset.version": "1.0", "mlpack.dataset.uri": m.uri,
                    "mlpack.dataset.algorithm": "sha256", "mlpack.dataset.file_count": str(m.file_count),
                    "mlpack.dataset.total_bytes": str(m.total_bytes),
                    "mlpack.dataset.root_digest": m.root_digest}
    assert table.column("sha256").to_pylist()[0] == m.digest(0)


def _rewrite(data: bytes, change: object) -> bytes:
    table = pq.read_table(pa.BufferReader(data))
    table = change(table)  # type: ignore[operator]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def test_from_parquet_refuses_tampered_manifests(tmp_path: Path) -> None:
    m = build(write_tree(tmp_path / "d", {**PETS, "z.txt": b"zz"}))
    good = m.to_parquet_bytes()

    def flip_digest(t):  # type: ignore[no-untyped-def]
        col = t.column("sha256").to_pylist()
        col[0] = bytes(32)
        return t.set_column(2, t.schema.field(2), pa.array(col, pa.binary(32)))

    def reorder(t):  # type: ignore[no-untyped-def]
        return t.take([1, 0, 2]).replace_schema_metadata(t.schema.metadata)

    def rename(t):  # type: ignore[no-untyped-def]
        return t.set_column(0, t.schema.field(0), pa.array(["../etc/passwd", "b", "c"], pa.string()))

    def future(t):  # type: ignore[no-untyped-def]
        return t.replace_schema_metadata({**t.schema.metadata, b"mlpack.dataset.version": b"2.0"})

    def drop_size(t):  # type: ignore[no-untyped-def]
        return t.drop_columns(["size"])

    for change, code, text in [(flip_digest, "E_MANIFEST", "root_digest"), (reorder, "E_MANIFEST", "sorted"),
                               (rename, "E_PATH", ".."), (future, "E_MANIFEST", "version"),
                               (drop_size, "E_MANIFEST", "size")]:
        with pytest.raises(VerificationError) as info:
            DatasetManifest.from_parquet(_rewrite(good, change))
        assert info.value.code == code and text in str(info.value), change.__name__
    with pytest.raises(VerificationError) as info:
        DatasetManifest.from_parquet(b"PAR1 this is not parquet")
    assert info.value.code == "E_MANIFEST"
    with pytest.raises(UsageError) as info2:
        DatasetManifest.from_parquet(tmp_path / "missing.parquet")
    assert info2.value.code == "E_INPUT"


def test_table_schema_and_row_count(tmp_path: Path) -> None:
    import pyarrow.csv
    import pyarrow.feather

    root = tmp_path / "tables"
    root.mkdir()
    t = pa.table({"x": pa.array(range(1000), pa.int64()), "y": pa.array([0.5] * 1000)})
    pq.write_table(t, root / "part-0.parquet", row_group_size=300)
    pq.write_table(t.slice(0, 10), root / "part-1.parquet")
    pyarrow.csv.write_csv(pa.table({"id": [1, 2, 3], "label": ["a", "b", "c"]}), root / "labels.csv")
    pyarrow.feather.write_feather(t.slice(0, 7), root / "f.arrow")
    (root / "broken.parquet").write_bytes(b"not parquet at all")
    (root / "notes.txt").write_text("hello\n")
    m = build(root)
    tables = m.tables
    assert set(tables) == {"part-0.parquet", "part-1.parquet", "labels.csv", "f.arrow"}
    assert tables["part-0.parquet"].rows == 1000 and tables["part-1.parquet"].rows == 10
    assert tables["part-0.parquet"].schema == "x: int64\ny: double"
    assert (tables["labels.csv"].format, tables["labels.csv"].rows) == ("csv", 3)
    assert tables["labels.csv"].schema == "id: int64\nlabel: string"
    assert (tables["f.arrow"].format, tables["f.arrow"].rows) == ("arrow", 7)
    summary = m.tables_summary()
    assert summary is not None and (summary.files, summary.rows) == (4, 1020)
    assert summary.schemas == ("id: int64\nlabel: string", "x: int64\ny: double")
    back = DatasetManifest.from_parquet(m.to_parquet_bytes())
    assert back == m and back.tables == m.tables
    assert pq.read_table(pa.BufferReader(m.to_parquet_bytes())).column("rows").to_pylist().count(None) == 2
    assert build(root, tables=False).tables == {}


def test_parquet_rows_come_from_the_footer_not_the_data(tmp_path: Path) -> None:
    """Corrupt a data page: the digest changes, the footer's row count is still read."""
    root = tmp_path / "t"
    root.mkdir()
    path = root / "big.parquet"
    pq.write_table(pa.table({"v": pa.array(range(50_000), pa.int64())}), path, compression="none")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the data pages, far from the footer
    path.write_bytes(bytes(data))
    assert build(root).tables["big.parquet"].rows == 50_000


# --------------------------------------------------------------------------- compare


def test_compare_someone_deleted_the_non_jpegs(photos: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    root, files = photos
    path = tmp_path / "photos.parquet"
    build(root).to_parquet(path)
    m = DatasetManifest.from_parquet(path)
    assert compare(m, root).ok and compare(m, root, contents=False).ok
    gone = sorted(n for n in files if not n.endswith(".jpg"))
    for name in gone:
        (root / name).unlink()
    diff = compare(m, root)
    assert not diff.ok and list(diff.removed) == gone and diff.added == () and diff.changed == ()
    assert compare(m, root, contents=False).removed == tuple(gone)
    assert diff.to_dict()["removed"] == gone and diff.to_dict()["ok"] is False


def test_compare_added_changed_and_stat_only_blind_spot(photos: tuple[Path, dict[str, bytes]]) -> None:
    root, files = photos
    m = build(root)
    (root / "cats" / "new.jpg").write_bytes(b"new")
    (root / "dogs" / "000.jpg").write_bytes(b"a different size")
    same_size = root / "cats" / "001.txt"
    same_size.write_bytes(bytes(len(files["cats/001.txt"])))  # same size, other bytes
    (root / "README.md").unlink()
    full = compare(m, root, contents=True)
    assert full.added == ("cats/new.jpg",)
    assert full.removed == ("README.md",)
    assert full.changed == ("cats/001.txt", "dogs/000.jpg")
    quick = compare(m, root, contents=False)
    assert quick.added == full.added and quick.removed == full.removed
    assert quick.changed == ("dogs/000.jpg",)  # stat-only cannot see a same-size change
    assert not quick.contents and full.contents


def test_compare_content_change_only_same_paths(tmp_path: Path) -> None:
    files = {f"f{i:04d}": os.urandom(64) for i in range(ds.FORK_MIN_FILES + 5)}
    root = write_tree(tmp_path / "d", files)
    m = build(root)
    (root / "f0300").write_bytes(os.urandom(64))
    assert compare(m, root).changed == ("f0300",)
    assert compare(m, root, contents=False).ok


def test_compare_matches_rename(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", PETS)
    m = build(root)
    (root / "images" / "0001.jpg").rename(root / "images" / "0002.jpg")
    diff = compare(m, root)
    assert diff.added == ("images/0002.jpg",) and diff.removed == ("images/0001.jpg",)
    assert build(root).root_digest != m.root_digest  # a rename changes the root digest


# --------------------------------------------------------------------------- entry, schema


def entry_validator():  # type: ignore[no-untyped-def]
    import jsonschema

    schema = json.loads((SPEC / "schema" / "dataset-entry.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


FENCE = re.compile(r"^```json schema=dataset-entry\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_spec_examples_validate_and_parse() -> None:
    blocks = FENCE.findall((SPEC / "datasets.md").read_text())
    assert len(blocks) >= 2
    validator = entry_validator()
    for text in blocks:
        doc = json.loads(text)
        assert not list(validator.iter_errors(doc)), text
        assert DatasetEntry.from_dict(doc).to_dict() == doc


def test_entry_round_trip_schema_and_checks(tmp_path: Path) -> None:
    m = build(write_tree(tmp_path / "train", PETS))
    validator = entry_validator()
    for mode in ("referenced", "included"):
        entry = m.entry("pets-train", mode=mode)
        doc = entry.to_dict()
        assert not list(validator.iter_errors(doc))
        assert DatasetEntry.from_dict(json.loads(json.dumps(doc))) == entry
        entry.check(m)
    assert m.entry("pets-train", mode="included").path == "datasets/pets-train"
    bad = {**m.entry("x").to_dict(), "mode": "included"}
    assert list(validator.iter_errors(bad))  # included needs a path
    with pytest.raises(VerificationError, match="path"):
        DatasetEntry.from_dict(bad)
    for key, value in [("root_digest", m.root_digest.upper()), ("algorithm", "md5"), ("file_count", 0),
                       ("name", "-x"), ("manifest", "x.json"), ("file_count", True)]:
        doc = {**m.entry("x").to_dict(), key: value}
        assert list(validator.iter_errors(doc)) or key == "file_count", key
        with pytest.raises(VerificationError) as info:
            DatasetEntry.from_dict(doc)
        assert info.value.code == "E_MANIFEST" and key in info.value.message
    other = build(write_tree(tmp_path / "other", {"labels.csv": PETS["labels.csv"],  # renamed image
                                                  "images/0002.jpg": PETS["images/0001.jpg"]}))
    with pytest.raises(VerificationError) as info:
        m.entry("pets").check(other)
    assert info.value.code == "E_MANIFEST" and "root_digest" in info.value.message


def test_check_included_against_signed_files(tmp_path: Path) -> None:
    m = build(write_tree(tmp_path / "train", PETS))
    entry = m.entry("pets", mode="included")
    signed = {f"datasets/pets/{f.path}": (f.size, f.digest.hex()) for f in m.files}
    signed["model.safetensors"] = (10, "00" * 32)
    entry.check_included(m, signed, "sha256")
    entry.check_included(m, {**signed, "datasets/pets/labels.csv": (21, "11" * 32)}, "blake3")
    for change, code in [({"datasets/pets/labels.csv": (21, "11" * 32)}, "E_DIGEST"),
                         ({"datasets/pets/labels.csv": (20, signed["datasets/pets/labels.csv"][1])}, "E_SIZE"),
                         ({"datasets/pets/extra.bin": (1, "22" * 32)}, "E_UNLISTED")]:
        with pytest.raises(VerificationError) as info:
            entry.check_included(m, {**signed, **change}, "sha256")
        assert info.value.code == code
    del signed["datasets/pets/labels.csv"]
    with pytest.raises(VerificationError) as info:
        entry.check_included(m, signed, "sha256")
    assert info.value.code == "E_MISSING"


def test_import_is_cheap() -> None:
    code = "import sys, mlpack.datasets; print('pyarrow' in sys.modules, 'multiprocessing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_module_entry_point(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "d", PETS)
    out = tmp_path / "m.parquet"
    run = [sys.executable, "-m", "mlpack.datasets"]
    built = subprocess.run([*run, "build", str(root), "-o", str(out)], capture_output=True, text=True, check=False)
    assert built.returncode == 0 and json.loads(built.stdout)["file_count"] == 2
    (root / "labels.csv").write_bytes(b"changed!")
    checked = subprocess.run([*run, "check", str(root), str(out), "--contents"], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 1 and json.loads(checked.stdout)["changed"] == 1
    missing = subprocess.run([*run, "build", str(tmp_path / "nope"), "-o", str(out)], capture_output=True, text=True,
                             check=False)
    assert missing.returncode == 2 and "[E_INPUT]" in missing.stderr


# --------------------------------------------------------------------------- S3 (moto_server)


# moto_endpoint and s3 fixtures: tests/conftest.py


def test_s3_prefix_equals_the_same_files_built_locally(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, bucket = s3
    files = {**PETS, "more/x.bin": os.urandom(3 * ds.CHUNK + 5), "a-b.txt": b"dash"}
    table = pa.table({"x": pa.array(range(123), pa.int64())})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    files["part-0.parquet"] = sink.getvalue().to_pybytes()
    for name, data in files.items():
        client.put_object(Bucket=bucket, Key=f"pets/train/{name}", Body=data)
    client.put_object(Bucket=bucket, Key="pets/train/emptydir/", Body=b"")  # a directory marker
    client.put_object(Bucket=bucket, Key="pets/train-other/z.txt", Body=b"not under the prefix")
    local = build(write_tree(tmp_path / "train", files))
    remote = build(f"s3://{bucket}/pets/train")
    assert remote.uri == f"s3://{bucket}/pets/train"
    assert remote.paths == local.paths and remote.digests == local.digests
    assert remote.root_digest == local.root_digest == expected_root(files)
    assert remote.tables["part-0.parquet"].rows == 123 and remote.tables["labels.csv"].rows == 2
    assert DatasetManifest.from_parquet(remote.to_parquet_bytes()) == remote

    client.delete_object(Bucket=bucket, Key="pets/train/labels.csv")
    client.put_object(Bucket=bucket, Key="pets/train/a-b.txt", Body=b"DASH")  # same size
    full = compare(remote, f"s3://{bucket}/pets/train/")
    assert full.removed == ("labels.csv",) and full.changed == ("a-b.txt",) and full.added == ()
    quick = compare(remote, f"s3://{bucket}/pets/train", contents=False)
    assert quick.removed == ("labels.csv",) and quick.changed == ()


def test_s3_single_object_endpoint_argument_and_errors(s3, moto_endpoint: str,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="one/file.csv", Body=PETS["labels.csv"])
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    m = build(f"s3://{bucket}/one/file.csv", endpoint=moto_endpoint)
    assert m.paths == ("file.csv",) and m.digest(0) == hashlib.sha256(PETS["labels.csv"]).digest()
    with pytest.raises(UsageError) as info:
        build(f"s3://{bucket}/nothing-here", endpoint=moto_endpoint)
    assert info.value.code == "E_INPUT"
    with pytest.raises(UsageError):
        build("s3://", endpoint=moto_endpoint)
