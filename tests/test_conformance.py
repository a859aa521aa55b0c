"""The conformance corpus (spec/conformance/) against mlpack's verifier and unpacker.

For every case of ``spec/conformance/cases.json``:

* ``verify_pack`` with the listed trust set and options gives the expected verdict and
  error code (and member, where the case names one) in under 2 s;
* ``unpack_pack`` into a fresh directory next to a canary file either fails leaving no
  trace (no destination, no staging directory, canary unchanged, nothing else created),
  or produces exactly the signed files, with their modes, plus ``.mlpack/model.sig``.

Also: regenerating the corpus gives the same cases and the same verdicts (only the
ECDSA signature bytes differ), the builder's unsigned packs are byte-identical to what
``mlpack pack`` writes, and no pack code runs (security.md (a) 38).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlpack.errors import MlpackError
from mlpack.keys import load_trust
from mlpack.verify import unpack_pack, verify_pack

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO / "spec" / "conformance"
sys.path.insert(0, str(CONFORMANCE))

import cases as corpus
import generate

DOC: dict[str, Any] = json.loads((CONFORMANCE / "cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOC["cases"]
CANARY_BYTES = b"canary: must stay unchanged\n"
TIME_LIMIT = 2.0


def _trust(case: dict[str, Any], root: Path = CONFORMANCE) -> Any:
    return load_trust([str(root / t) for t in case["trust"]], []) if case["trust"] else ()


def _options(case: dict[str, Any], root: Path = CONFORMANCE) -> dict[str, Any]:
    return {
        "trust": _trust(case, root),
        "threshold": case["threshold"],
        "allow_unsigned": case["allow_unsigned"],
    }


def _outcome(report: Any) -> tuple[str, str | None]:
    return report.verdict, (report.error.code if report.error else None)


def _assert_expected(case: dict[str, Any], report: Any) -> None:
    exp = case["expected"]
    verdict, code = _outcome(report)
    accepted = {exp["code"], *exp.get("also", [])}
    detail = f"{case['name']}: {case['description']}\n got {verdict}/{code}: " + (
        report.error.message if report.error else ""
    )
    assert verdict == exp["verdict"], detail
    assert code in accepted, detail
    assert report.ok == (exp["verdict"] != "failed")
    if exp.get("member") and code == exp["code"]:
        assert report.error.member == exp["member"], detail


@pytest.fixture(autouse=True)
def _code_canary(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Pack code in the corpus writes this file if anything ever executes it."""
    path = tmp_path_factory.mktemp("canary") / "pack-code-ran"
    monkeypatch.setenv(corpus.CODE_CANARY_ENV, str(path))
    yield path
    assert not path.exists(), f"pack content was executed: {path.read_text()}"


def test_corpus_is_complete_and_small() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    assert {f"{n}.mlpack" for n in names} == {
        p.name for p in (CONFORMANCE / "packs").glob("*.mlpack")
    }
    for c in CASES:
        assert c["expected"]["verdict"] in ("verified", "unsigned", "failed")
        assert (c["expected"]["code"] is None) == (c["expected"]["verdict"] != "failed")
        assert (CONFORMANCE / c["file"]).stat().st_size < generate.MAX_PACK
    refs = {c["ref"] for c in CASES if c["ref"]}
    # every item of security.md (a) that applies to a plain verify has a corpus case (25 and 26 are
    # too big for a small file: tests/test_hostile.py covers 25; 26 is the size-2-pow-63 case)
    missing = {f"a{i}" for i in range(1, 39)} - refs - {"a25", "a26", "a39", "a40"}
    assert not missing, missing


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_verify(case: dict[str, Any]) -> None:
    start = time.perf_counter()
    report = verify_pack(CONFORMANCE / case["file"], **_options(case))
    elapsed = time.perf_counter() - start
    _assert_expected(case, report)
    assert elapsed < TIME_LIMIT, f"{case['name']} took {elapsed:.2f}s"


def _tree(root: Path) -> dict[str, tuple[str, int, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        assert not path.is_symlink(), path
        if path.is_file():
            data = path.read_bytes()
            out[path.relative_to(root).as_posix()] = (
                hashlib.sha256(data).hexdigest(),
                len(data),
                path.stat().st_mode & 0o7777,
            )
        else:
            assert path.is_dir(), path
    return out


def _signature_member(pack: Path) -> bytes:
    data = pack.read_bytes()
    return data[512 : 512 + int(data[124:135], 8)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_unpack(case: dict[str, Any], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    canary = work / "canary.txt"
    canary.write_bytes(CANARY_BYTES)
    canary_stat = canary.stat()
    dest = work / "out"
    pack = CONFORMANCE / case["file"]
    raised: MlpackError | None = None
    report = None
    start = time.perf_counter()
    try:
        report = unpack_pack(pack, dest, **_options(case))
    except MlpackError as err:  # checked below, after the file-system invariants
        raised = err
    elapsed = time.perf_counter() - start

    # nothing outside the destination, whatever happened
    assert sorted(os.listdir(tmp_path)) == ["work"]
    assert canary.read_bytes() == CANARY_BYTES
    assert canary.stat().st_mtime_ns == canary_stat.st_mtime_ns
    assert elapsed < TIME_LIMIT, f"{case['name']} took {elapsed:.2f}s"

    if case["expected"]["verdict"] == "failed":
        assert not dest.exists() and not dest.is_symlink()
        assert sorted(os.listdir(work)) == ["canary.txt"], (
            "staging directory or stray file left behind"
        )
        assert raised is None, f"unpack raised {raised!r} instead of reporting the failure"
        assert report is not None
        _assert_expected(case, report)
        return

    assert raised is None, f"unpack raised {raised!r}"
    assert report is not None
    _assert_expected(case, report)
    assert sorted(os.listdir(work)) == ["canary.txt", "out"]
    assert dest.is_dir() and not dest.is_symlink()
    umask = os.umask(0)
    os.umask(umask)
    expected = {
        name: (f["sha256"], f["size"], (0o755 if f["executable"] else 0o644) & ~umask)
        for name, f in case["files"].items()
    }
    signature = _signature_member(pack)
    expected[".mlpack/model.sig"] = (
        hashlib.sha256(signature).hexdigest(),
        len(signature),
        0o644 & ~umask,
    )
    assert _tree(dest) == expected


def test_regenerate_gives_same_cases_and_verdicts(tmp_path: Path) -> None:
    """A fresh corpus (fresh keys, fresh signatures) has the same table and the same outcomes."""
    out = tmp_path / "regen"
    doc = generate.generate(out)
    assert doc == DOC  # names, descriptions, options, expectations, signed file trees
    for case in doc["cases"]:
        fresh = _outcome_of(out / case["file"], case, out)
        committed = _outcome_of(CONFORMANCE / case["file"], case, CONFORMANCE)
        assert fresh == committed, case["name"]
    # only signature bytes differ: every signed pack's member 0 changed, nothing after it did
    for case in doc["cases"]:
        a, b = (CONFORMANCE / case["file"]).read_bytes(), (out / case["file"]).read_bytes()
        if a != b and case["expected"]["verdict"] == "verified":
            sa, sb = (
                _signature_member(CONFORMANCE / case["file"]),
                _signature_member(out / case["file"]),
            )
            ja, jb = json.loads(sa), json.loads(sb)
            assert ja["dsseEnvelope"]["payload"] == jb["dsseEnvelope"]["payload"]


def _outcome_of(pack: Path, case: dict[str, Any], root: Path) -> tuple[str, str | None]:
    try:
        return _outcome(verify_pack(pack, **_options(case, root)))
    except Exception as err:  # noqa: BLE001 - an escaping exception is an outcome to compare too
        return "raised", type(err).__name__


def _write_tree(root: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    for name, (data, executable) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if executable else 0o644)


@pytest.mark.parametrize("mtime", [None, 1_700_000_000])
def test_builder_matches_mlpack_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mtime: int | None
) -> None:
    """The corpus encoder (independent of mlpack) and `mlpack pack --unsigned` agree byte for byte."""
    from mlpack.pack import pack_directory

    if mtime is None:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(mtime))
    keys = corpus.Keys.from_pems(generate.ensure_keys(CONFORMANCE / "keys"))
    arc = corpus.HostileArchive(keys, signers=(), mtime=mtime or 0, pack_name="builder-check")
    arc.add("README.md", corpus.README)
    arc.add("config.json", corpus.CONFIG)
    arc.add("weights.safetensors", corpus.SAFETENSORS_OK, weights=True)
    arc.add("bin/run.sh", b"#!/bin/sh\necho run\n", executable=True)
    arc.add("data/" + "long-name-" * 12 + ".txt", b"a long name\n")
    arc.add("caf\u00e9/\u6a21\u578b.txt", b"unicode\n")
    arc.add("data-card.md", b"# card\n")
    arc.add("empty", b"")
    src = tmp_path / "src"
    _write_tree(src, {n: v for n, v in arc.files.items()})
    out = tmp_path / "out.mlpack"
    pack_directory(src, out, key=None, name="builder-check")
    assert out.read_bytes() == arc.build()


def test_builder_accepts_an_mlpack_statement(tmp_path: Path) -> None:
    """HostileArchive takes mlpack.signing.Statement objects as payloads too."""
    from mlpack.signing import Resource, Statement

    keys = corpus.Keys.from_pems(generate.ensure_keys(CONFORMANCE / "keys"))
    arc = corpus.named(keys, "hello.txt")
    files = arc.signed_files()
    statement = Statement.build(
        "conformance-model",
        "sha256",
        [Resource(n, hashlib.sha256(d).hexdigest(), len(d)) for n, (d, _x) in files.items()],
        0,
    )
    arc.payload = statement
    pack = tmp_path / "p.mlpack"
    pack.write_bytes(arc.build())
    report = verify_pack(
        pack, trust=load_trust([str(CONFORMANCE / "keys/conformance-TEST-ONLY.pub")], [])
    )
    assert report.verdict == "verified", report.render()


def test_pack_code_never_runs(tmp_path: Path, _code_canary: Path) -> None:
    """security.md (a) 38: verify and unpack through the CLI (a fresh interpreter) run no pack code."""
    case = next(c for c in CASES if c["name"] == "valid-code-files-not-run")
    pack = CONFORMANCE / case["file"]
    key = CONFORMANCE / case["trust"][0]
    env = dict(os.environ, **{corpus.CODE_CANARY_ENV: str(_code_canary)})
    for args in (
        ["verify", str(pack), "--key", str(key)],
        ["unpack", str(pack), "-d", str(tmp_path / "out"), "--key", str(key)],
        ["inspect", str(pack)],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "mlpack", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "sitecustomize.py").is_file()
    assert not _code_canary.exists()
    assert not any(
        "pack code ran" in p.read_text(errors="replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pth")
    )
