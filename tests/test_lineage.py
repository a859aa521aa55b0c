"""Lineage: parent links recorded by real builds, and mlpack log through a directory of packs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlpack import schema
from mlpack._read import open_verified
from mlpack.errors import MlpackError
from mlpack.lineage import DirectoryStore, parent_of, walk
from tests._digits_packs import DigitsPacks, digits_packs, sha256_file
from tests.test_diff import flip


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> DigitsPacks:
    return digits_packs(tmp_path_factory)


@pytest.fixture
def store(packs: DigitsPacks, tmp_path: Path) -> Path:
    d = tmp_path / "store"
    (d / "older").mkdir(parents=True)
    shutil.copyfile(packs.pack("base"), d / "older" / "base.mlpack")
    shutil.copyfile(packs.pack("child1"), d / "child1.mlpack")
    (d / "README.txt").write_text("not a pack\n")
    return d


def test_packs_record_the_parent_file_digest(packs: DigitsPacks) -> None:
    with open_verified(packs.pack("child1"), trust=packs.trust) as child:
        assert parent_of(child) == sha256_file(packs.pack("base"))
    with open_verified(packs.pack("base"), trust=packs.trust) as base:
        assert parent_of(base) is None


def test_log_walks_the_chain(packs: DigitsPacks, store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    chain = walk(packs.pack("child2"), DirectoryStore(store), trust=packs.trust)
    assert chain.complete and chain.stop is None
    assert [s.digest for s in chain.steps] == [sha256_file(packs.pack(n)) for n in ("child2", "child1", "base")]
    assert [s.parent for s in chain.steps] == [chain.steps[1].digest, chain.steps[2].digest, None]
    assert all(s.verdict == "verified" and s.signers == (packs.public.fingerprint,) for s in chain.steps)
    # each edge: the parameter changed (C 0.5 -> 0.25, then 1.0 -> 0.5) and its consequences
    first, second, last = (s.changes for s in chain.steps)
    assert last is None
    assert "training" in first["changed"] and "params.C 0.5 → 0.25" in first["summary"]
    assert "training" in second["changed"] and "params.C 1.0 → 0.5" in second["summary"]
    assert "weights" in first["changed"] and "environment" not in first["changed"]
    assert schema.validate(chain.to_dict(), "log") == []

    r = cli("log", packs.pack("child2"), "--store", store, "--key", packs.public_path)
    assert r.code == 0 and r.err == ""
    assert r.out.count("\npack sha256:") == 2 and "no parent: the start of the lineage" in r.out
    r = cli("log", packs.pack("child2"), "--store", store, "--key", packs.public_path, "--json")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["complete"] and len(doc["steps"]) == 3 and schema.validate(doc, "log") == []


def test_missing_parent_shows_the_chain_so_far(packs: DigitsPacks, store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    (store / "child1.mlpack").unlink()
    r = cli("log", packs.pack("child2"), "--store", store, "--key", packs.public_path, "--json")
    doc = json.loads(r.out)
    assert r.code == 1 and schema.validate(doc, "log") == []
    assert not doc["complete"] and len(doc["steps"]) == 1 and doc["stop"]["code"] == "E_PARENT"
    assert r.err.startswith("mlpack: error: [E_PARENT] parent sha256:") and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 2  # the line and its hint
    text = cli("log", packs.pack("child2"), "--store", store, "--key", packs.public_path)
    assert text.code == 1 and "lineage incomplete" in text.out and sha256_file(packs.pack("child2")) in text.out


def test_parent_failing_verification_stops_the_walk(packs: DigitsPacks, store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # A store indexed before its copy of the parent was damaged: the file is found, then refused.
    stale = DirectoryStore(store)
    stale.index()
    flip(store / "child1.mlpack", "weights/model.safetensors")
    chain = walk(packs.pack("child2"), stale, trust=packs.trust)
    assert not chain.complete and chain.stop is not None and chain.stop.code == "E_DIGEST"
    assert "child1.mlpack" in chain.stop.message and len(chain.steps) == 1
    # Indexed afresh, the damaged copy no longer has the recorded digest: the parent is missing.
    r = cli("log", packs.pack("child2"), "--store", store, "--key", packs.public_path)
    assert r.code == 1 and "[E_PARENT]" in r.err


def test_a_root_pack_is_a_complete_chain(packs: DigitsPacks, store: Path, cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("log", packs.pack("base"), "--store", store, "--key", packs.public_path)
    assert r.code == 0 and r.out.count("pack sha256:") == 1


def test_bad_input(packs: DigitsPacks, store: Path, cli, tmp_path: Path, other_keypair) -> None:  # type: ignore[no-untyped-def]
    key = ("--key", packs.public_path)
    cases = [
        (("log", packs.pack("child2"), "--store", tmp_path / "nowhere", *key), 2, "E_INPUT"),
        (("log", packs.pack("child2"), "--store", store, "--key", other_keypair.public), 1, "E_UNTRUSTED_KEY"),
        (("log", tmp_path / "missing.mlpack", "--store", store, *key), 2, "E_INPUT"),
    ]
    for args, code, error in cases:
        r = cli(*args)
        assert (r.code, r.out) == (code, ""), (args, r.code, r.out)
        assert r.err.startswith(f"mlpack: error: [{error}]"), r.err
    with pytest.raises(MlpackError) as err:
        walk(packs.pack("child2"), DirectoryStore(store), trust=())
    assert err.value.code == "E_USAGE"


def test_card_draws_the_lineage(packs: DigitsPacks, store: Path) -> None:
    from mlpack.card import gather

    chain = walk(packs.pack("child2"), DirectoryStore(store), trust=packs.trust)
    with open_verified(packs.pack("child2"), trust=packs.trust) as p:
        data = gather(p, trust=packs.trust, lineage=chain)
    assert [n.digest for n in data.lineage] == [s.digest for s in chain.steps]
    assert data.parent == chain.steps[1].digest
