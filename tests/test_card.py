"""mlpack card: a Hugging Face model card that huggingface_hub parses, and one HTML page that
headless Chromium renders, both from real packs built from examples/digits."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mlpack._read import open_verified
from mlpack.card import Reproduced, front_matter, gather, hf_license, to_markdown, yaml_dump
from tests._digits_packs import DigitsPacks, digits_packs, sha256_file
from tests.test_diff import flip

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> DigitsPacks:
    return digits_packs(tmp_path_factory)


def claims(pack: Path, trust: tuple) -> list[dict]:  # type: ignore[type-arg]
    with open_verified(pack, trust=trust) as p:
        return list(p.manifest.sections["metrics"]["metrics"])


def test_markdown_card_parses_with_huggingface_hub(packs: DigitsPacks, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    hub = pytest.importorskip("huggingface_hub")
    out = tmp_path / "README.md"
    r = cli("card", packs.pack("base"), "-o", out, "--key", packs.public_path)
    assert r.code == 0 and r.out == "" and out.is_file()
    card = hub.ModelCard.load(out)
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["digits-train", "digits-test"] or data["datasets"] == ["digits-test", "digits-train"]
    assert "base_model" not in data  # the base pack has no parent
    assert data["mlpack"]["pack_digest"] == sha256_file(packs.pack("base"))
    assert data["mlpack"]["signers"] == [packs.public.fingerprint]
    expected = claims(packs.pack("base"), packs.trust)
    results = card.data.eval_results
    assert len(results) == len(expected) >= 1
    for claim in expected:  # every metric, read back through huggingface_hub
        (got,) = [e for e in results if (e.metric_type, e.dataset_name, e.dataset_split)
                  == (claim["name"], claim["dataset"], claim["split"])]
        assert got.metric_value == claim["value"] and got.verified is False
        assert got.dataset_revision.startswith("sha256:") and "claimed" in got.metric_name
    text = out.read_text()
    for heading in ("## Model", "## Evaluation", "## Training", "## Training data", "## Code",
                    "## Environment", "## Hardware", "## Lineage", "## Verify and rebuild"):
        assert heading in text
    assert "mlpackprobe" in text and "mlpack verify base.mlpack --key" in text
    printed = cli("card", packs.pack("base"), "--key", packs.public_path)
    assert printed.code == 0 and printed.out == text


def test_base_model_comes_from_lineage(packs: DigitsPacks, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    hub = pytest.importorskip("huggingface_hub")
    store = tmp_path / "store"
    store.mkdir()
    shutil.copyfile(packs.pack("base"), store / "base.mlpack")
    out = tmp_path / "README.md"
    assert cli("card", packs.pack("child1"), "-o", out, "--key", packs.public_path, "--store", store).code == 0
    card = hub.ModelCard.load(out)
    assert card.data.base_model == sha256_file(packs.pack("base"))
    assert "in the store" in out.read_text()  # the parent was found and verified


def test_reproduced_metrics_hook(packs: DigitsPacks) -> None:
    hub = pytest.importorskip("huggingface_hub")
    with open_verified(packs.pack("base"), trust=packs.trust) as p:
        claim = p.manifest.sections["metrics"]["metrics"][0]
        again = Reproduced(name=claim["name"], dataset=claim["dataset"], split=claim["split"],
                           value=claim["value"] - 0.001, claimed=claim["value"], passed=True, level="evaluate",
                           by="sha256:" + "ab" * 32, attestation="x.att.json")
        data = gather(p, reproduced=[again])
    results = hub.ModelCard(to_markdown(data)).data.eval_results
    kinds = sorted((e.metric_value, e.metric_name.split(" (")[1].split(",")[0]) for e in results)
    assert kinds == [(claim["value"] - 0.001, "reproduced by sha256:abababababab…"), (claim["value"], "claimed")]
    from mlpack.card import render_html as to_html

    assert to_html(data).count('class="reproduced"') == 1


def test_trusted_attestations_feed_the_card(packs: DigitsPacks, tmp_path: Path, keypair) -> None:  # type: ignore[no-untyped-def]
    """A signed attestation beside the pack (mlpack attest; its report here is written by hand)
    adds the reproduced value only when its signer is trusted."""
    attest = pytest.importorskip("mlpack.attest")
    from mlpack import keys

    pack = tmp_path / "model.mlpack"
    shutil.copyfile(packs.pack("base"), pack)
    claim = claims(pack, packs.trust)[0]
    report = {"mlpack_reproduction": "1.0", "pack": str(pack), "pack_sha256": sha256_file(pack)[7:],
              "verdict": "reproduced", "requested": ["evaluate"], "levels": [],
              "metrics": [{"level": "evaluate", "name": claim["name"], "dataset": claim["dataset"],
                           "split": claim["split"], "claimed": claim["value"], "tolerance": claim["tolerance"],
                           "observed": claim["value"], "difference": 0.0, "outcome": "within", "passed": True,
                           "status": "reproduced", "computed_by": "pack"}]}
    attest.attest(pack, report, key=keys.load_signing_key(keypair.private))
    verifier = keys.load_public_key(keypair.public)
    with open_verified(pack, trust=packs.trust) as p:
        untrusted = gather(p, trust=packs.trust)
    with open_verified(pack, trust=packs.trust) as p:
        trusted = gather(p, trust=(*packs.trust, verifier))
    assert untrusted.reproduced == ()
    (r,) = trusted.reproduced
    assert (r.name, r.value, r.by, r.passed) == (claim["name"], claim["value"], verifier.fingerprint, True)
    assert "reproduced by" in yaml_dump(front_matter(trusted))


@pytest.mark.parametrize(("spdx", "expected"), [
    ("Apache-2.0", {"license": "apache-2.0"}),
    ("MIT", {"license": "mit"}),
    ("BSD-3-Clause", {"license": "bsd-3-clause"}),
    ("CC-BY-NC-SA-4.0", {"license": "cc-by-nc-sa-4.0"}),
    ("GPL-3.0-or-later", {"license": "gpl-3.0"}),
    ("LGPL-2.1-only", {"license": "lgpl-2.1"}),
    ("AGPL-3.0-only", {"license": "agpl-3.0"}),
    ("GPL-1.0-only", {"license": "gpl"}),
    ("GFDL-1.3-or-later", {"license": "gfdl"}),
    ("ODbL-1.0", {"license": "odbl"}),
    ("EUPL-1.2", {"license": "other", "license_name": "eupl-1.2",
                  "license_link": "https://spdx.org/licenses/EUPL-1.2.html"}),
    ("MIT OR Apache-2.0", {"license": "other", "license_name": "mit-or-apache-2.0"}),
    ("LicenseRef-Acme-1", {"license": "other", "license_name": "licenseref-acme-1"}),
    (None, {"license": "unknown"}),
])
def test_license_mapping(spdx: str | None, expected: dict[str, str]) -> None:
    assert hf_license(spdx) == expected


def test_front_matter_yaml_reads_back_the_same() -> None:
    yaml = pytest.importorskip("yaml")
    doc = {"a": "plain", "quote": 'say "hi" \\ back', "lines": "one\ntwo\ttab", "uni": "café ± π 🙂",
           "ctl": "\x1b[0m", "small": 1e-05, "big": 1e20, "neg": -0.5, "int": 7, "yes": True, "none": None,
           "nested": {"list": [1, "x", {"k": 2.5}], "empty": [], "obj": {}},
           "key with space": "v", "model-index": [{"name": "m", "results": [{"task": {"type": "other"}}]}]}
    text = yaml_dump(doc)
    assert text.isascii()
    assert yaml.safe_load(text) == doc


def _self_contained(html: str) -> None:
    lowered = html.lower()
    for needle in ("src=", "href=", "@import", "<script", "<link", "<iframe", "<object"):
        assert needle not in lowered, needle
    assert lowered.replace("url(#arrow)", "").count("url(") == 0
    assert "http" not in lowered.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        "https://mlpack", "")  # nothing fetched: only the SVG namespace name


@needs_chromium
def test_html_card_renders_in_chromium(packs: DigitsPacks, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    store.mkdir()
    for name in ("base", "child1"):
        shutil.copyfile(packs.pack(name), store / f"{name}.mlpack")
    out = tmp_path / "card.html"
    r = cli("card", packs.pack("child2"), "--html", "-o", out, "--key", packs.public_path, "--store", store)
    assert r.code == 0
    html = out.read_text()
    _self_contained(html)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    claim = claims(packs.pack("child2"), packs.trust)[0]
    for needle in ("<h1>digits-logreg 1.0.0</h1>", 'id="metrics-chart"', 'class="band"', 'class="claim"',
                   f"{claim['value']:.4g} ± 0.005", 'id="lineage-graph"', "Training data", "Verify and rebuild",
                   "digits-test", "mlpackprobe", sha256_file(packs.pack("child2")),
                   sha256_file(packs.pack("base"))[:40]):
        assert needle in page, needle
    assert page.count('class="node"') == 3  # child2, child1, base: the whole chain, verified
    shot = tmp_path / "card.png"
    done = subprocess.run([*flags, "--window-size=1100,2400", f"--screenshot={shot}", out.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_html_escapes_the_pack(packs: DigitsPacks) -> None:
    from mlpack.card import render_html as to_html

    with open_verified(packs.pack("base"), trust=packs.trust) as p:
        data = gather(p)
    hostile = replace(data, description='<img src=x onerror="alert(1)"> & \x1b[31m')
    html = to_html(hostile)
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; \\x1b[31m" in html
    md = to_markdown(hostile)
    assert "<img" not in md and "&lt;img" in md and "\x1b" not in md


def test_bad_input_writes_nothing(packs: DigitsPacks, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    key = ("--key", packs.public_path)
    existing = tmp_path / "README.md"
    existing.write_text("keep\n")
    r = cli("card", packs.pack("base"), "-o", existing, *key)
    assert (r.code, r.out) == (2, "") and r.err.startswith("mlpack: error: [E_EXISTS]")
    assert existing.read_text() == "keep\n"
    assert cli("card", packs.pack("base"), "-o", existing, *key, "--force").code == 0
    assert existing.read_text().startswith("---\n")

    tampered = tmp_path / "t.mlpack"
    shutil.copyfile(packs.pack("base"), tampered)
    flip(tampered, "mlpack.json")
    for html in ([], ["--html"]):
        out = tmp_path / "out" / "card"
        out.parent.mkdir(exist_ok=True)
        r = cli("card", tampered, "-o", out, *key, *html)
        assert (r.code, r.out) == (1, "") and r.err.startswith("mlpack: error: [E_")
        assert "Traceback" not in r.err and len(r.err.strip().splitlines()) <= 2
        assert list(out.parent.iterdir()) == []  # nothing, not even a temporary file
    r = cli("card", packs.pack("base"), "-o", tmp_path / "no" / "dir" / "c.md", *key)
    assert r.code == 2 and "[E_INPUT]" in r.err
    r = cli("card", packs.pack("base"))
    assert r.code == 2 and "[E_USAGE]" in r.err
