"""mlpack export croissant: Croissant 1.0 JSON-LD that mlcroissant validates and loads."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlpack.croissant import field_type, parse_schema
from tests._digits_packs import DigitsPacks, digits_packs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> DigitsPacks:
    return digits_packs(tmp_path_factory)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    """The real `mlcroissant validate --jsonld FILE` command line (its console script), offline."""
    pytest.importorskip("mlcroissant")
    script = Path(sys.executable).with_name("mlcroissant")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlcroissant.scripts.cli"]
    return subprocess.run([*command, "validate", "--jsonld", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)


def records(path: Path, record_set: str) -> list[dict]:  # type: ignore[type-arg]
    import mlcroissant as mlc

    return list(mlc.Dataset(jsonld=str(path)).records(record_set=record_set))


def beside_data(packs: DigitsPacks, name: str, tmp_path: Path) -> Path:
    """A directory holding a copy of the project's data/, where the JSON-LD is written (its
    relative contentUrl then resolves); the build trees themselves stay untouched."""
    packs.pack(name)
    shutil.copytree(packs.trees[name] / "data", tmp_path / "data")
    return tmp_path


def test_single_table_dataset(packs: DigitsPacks, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    tree = beside_data(packs, "base", tmp_path)
    out = tree / "digits-test.croissant.json"
    r = cli("export", "croissant", packs.pack("base"), "digits-test", "-o", out, "--key", packs.public_path)
    assert r.code == 0 and r.out == ""
    doc = json.loads(out.read_text())
    assert doc["@type"] == "sc:Dataset" and doc["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    (f,) = doc["distribution"]
    data = (tree / "data" / "test" / "digits.parquet").read_bytes()
    assert f["@type"] == "cr:FileObject" and f["contentUrl"] == "data/test/digits.parquet"
    assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["contentSize"] == f"{len(data)} B"
    (rs,) = doc["recordSet"]
    assert [x["name"] for x in rs["field"]] == [f"p{i}" for i in range(64)] + ["label"]
    assert {x["dataType"] for x in rs["field"]} == {"sc:Integer"}
    done = validate(out)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = records(out, rs["@id"])
    labels = pq.read_table(tree / "data" / "test" / "digits.parquet").column("label").to_pylist()
    assert [row[f"{rs['@id']}/label"] for row in rows] == labels  # every record, read through Croissant


def test_files_of_one_schema_form_a_file_set(packs: DigitsPacks, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tree = beside_data(packs, "multi", tmp_path)
    out = tree / "test.json"
    assert cli("export", "croissant", packs.pack("multi"), "digits-test", "-o", out, "--key",
               packs.public_path).code == 0
    doc = json.loads(out.read_text())
    objects = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    assert [o["name"] for o in objects] == ["NOTES.txt", "part/a.parquet", "part/b.parquet"]
    assert objects[0]["encodingFormat"] == "text/plain"
    for o in objects:
        assert o["sha256"] == hashlib.sha256((tree / "data" / "test" / o["name"]).read_bytes()).hexdigest()
    (file_set,) = [d for d in doc["distribution"] if d["@type"] == "cr:FileSet"]
    assert file_set["includes"] == ["data/test/part/a.parquet", "data/test/part/b.parquet"]
    (rs,) = doc["recordSet"]
    assert rs["field"][0]["source"]["fileSet"] == {"@id": file_set["@id"]}
    done = validate(out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(records(out, rs["@id"])) == 450  # both parts


def test_validate_can_fail(tmp_path: Path) -> None:
    """The validator used above does reject a broken document."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"@context": {}, "@type": "sc:Dataset", "distribution": [{"@type": "cr:FileObject"}]}))
    assert validate(bad).returncode != 0


@pytest.mark.parametrize(("arrow", "croissant"), [
    ("int8", "sc:Integer"), ("uint64", "sc:Integer"), ("double", "sc:Float"), ("halffloat", "sc:Float"),
    ("decimal128(10, 2)", "sc:Float"), ("bool", "sc:Boolean"), ("string", "sc:Text"),
    ("large_string not null", "sc:Text"), ("date32[day]", "sc:Date"), ("timestamp[ms, tz=UTC]", "sc:DateTime"),
    ("list<item: int64>", None), ("struct<a: int64>", None), ("binary", None),
])
def test_field_types(arrow: str, croissant: str | None) -> None:
    assert field_type(arrow) == croissant


def test_schema_text() -> None:
    text = "x: int64\nlabel: string not null\nname: with colon: double\nv: list<item: int64>\n  child 0, item: int64"
    assert parse_schema(text) == [("x", "int64"), ("label", "string not null"), ("name: with colon", "double"),
                                  ("v", "list<item: int64>")]


def test_bad_input(packs: DigitsPacks, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = ("--key", packs.public_path)
    r = cli("export", "croissant", packs.pack("base"), "nope", "-o", tmp_path / "x.json", *key)
    assert r.code == 2 and r.err.startswith("mlpack: error: [E_USAGE]") and "digits-test" in r.err
    assert not (tmp_path / "x.json").exists()
    existing = tmp_path / "y.json"
    existing.write_text("{}")
    r = cli("export", "croissant", packs.pack("base"), "digits-test", "-o", existing, *key)
    assert r.code == 2 and "[E_EXISTS]" in r.err and existing.read_text() == "{}"
    not_pack = tmp_path / "z.mlpack"
    not_pack.write_bytes(b"\0" * 4096)
    r = cli("export", "croissant", not_pack, "digits-test", *key)
    assert (r.code, r.out) == (1, "") and "[E_HEADER]" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.json", "z.mlpack"]
