"""Hostile inputs that are not conformance files: too big, too environment-specific, or
about `mlpack pack` rather than a pack (security.md (a) 8, 10, 25, 36, 37; §1, §3.1).

Packs are built with the corpus builder (spec/conformance/cases.py) and signed with the
TEST-ONLY keys of spec/conformance/keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from mlpack.errors import VerificationError
from mlpack.keys import load_trust
from mlpack.pack import pack_directory
from mlpack.verify import unpack_pack, verify_pack

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO / "spec" / "conformance"
sys.path.insert(0, str(CONFORMANCE))

import cases as corpus
import generate

MAIN_PUB = CONFORMANCE / "keys" / "conformance-TEST-ONLY.pub"
OTHER_PUB = CONFORMANCE / "keys" / "other-TEST-ONLY.pub"
MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture(scope="module")
def keys() -> corpus.Keys:
    return corpus.Keys.from_pems(generate.ensure_keys(CONFORMANCE / "keys"))


@pytest.fixture(scope="module")
def trust() -> Any:
    return load_trust([str(MAIN_PUB)], [])


def _write(path: Path, arc: corpus.HostileArchive | bytes) -> Path:
    path.write_bytes(arc if isinstance(arc, bytes) else arc.build())
    return path


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# -- CVE-2025-4517: CPython test_realpath_limit_attack ------------------------------------------


def _chain_component(dest: Path) -> str:
    """The component length CPython's test uses: the unexpanded path fits PATH_MAX, the expanded one not."""
    steps = 16
    max_path = os.pathconf(dest.parent, "PC_PATH_MAX")
    return "d" * ((max_path - (len(str(dest)) + 1)) // (steps + 1))


def test_cve_2025_4517_chain_fails_at_first_link_and_writes_nothing(
    keys: corpus.Keys, trust: Any, tmp_path: Path
) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    flag = outer / "flag"
    flag.write_bytes(b"original flag\n")
    dest = outer / "dest"
    component = _chain_component(dest)
    pack = _write(tmp_path / "chain.mlpack", corpus.cve_2025_4517_pack(keys, component))

    report = verify_pack(pack, trust=trust)
    assert report.verdict == "failed"
    assert report.error.code == "E_MEMBER_TYPE", report.render()
    assert (
        report.error.member == component
    )  # the first non-regular member: the first directory of the chain

    start = time.perf_counter()
    report = unpack_pack(pack, dest, trust=trust)
    assert time.perf_counter() - start < 2
    assert report.error is not None and report.error.code == "E_MEMBER_TYPE"
    assert flag.read_bytes() == b"original flag\n"
    assert _files_under(outer) == ["flag"]  # no dest, no staging dir, no escape/newfile
    assert not any(p.name == "newfile" or p.is_symlink() for p in tmp_path.rglob("*"))


def test_cve_2025_4517_chain_is_a_real_attack(keys: corpus.Keys, tmp_path: Path) -> None:
    """Control: the same members as a plain tar defeat tarfile's 'data' filter on a vulnerable Python."""
    outer = tmp_path / "outer"
    outer.mkdir()
    flag = outer / "flag"
    flag.write_bytes(b"original flag\n")
    dest = outer / "dest"
    dest.mkdir()
    members = corpus.realpath_limit_chain(_chain_component(dest))
    body = b"".join(m.encode() for m in members)
    with tarfile.open(fileobj=io.BytesIO(body + corpus.trailer(len(body)))) as tar:
        try:
            tar.extractall(dest, filter="data")
        except (tarfile.FilterError, OSError) as err:
            pytest.skip(f"this Python's tarfile refuses the chain ({type(err).__name__}): patched")
    escaped = flag.read_bytes() != b"original flag\n" or (outer / "newfile").exists()
    if not escaped:
        pytest.skip("this Python's tarfile is not vulnerable to CVE-2025-4517")
    assert escaped  # the archive the mlpack test refuses is a working exploit here


# -- bounded time and memory: sparse 10 GiB, huge declared sizes, a million members -------------

_PROBE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from mlpack.keys import load_trust
    from mlpack.verify import unpack_pack, verify_pack
    trust = load_trust([sys.argv[1]], [])
    warm, *packs = sys.argv[2:]
    verify_pack(warm, trust=trust)  # import and warm up everything first
    unpack_pack(warm, Path(warm).with_suffix(".warm"), trust=trust)
    out = {}
    for i, pack in enumerate(packs):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        report = verify_pack(pack, trust=trust)
        elapsed = time.perf_counter() - start
        dest = Path(pack).with_suffix(".out")
        unpack = unpack_pack(pack, dest, trust=trust)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        out[Path(pack).name] = {"code": report.error.code if report.error else None,
                                "unpack_code": unpack.error.code if unpack.error else None,
                                "seconds": elapsed, "rss_growth_kib": grown, "dest": dest.exists()}
    print(json.dumps(out))
""")


def _probe(tmp_path: Path, packs: list[Path], warm: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(MAIN_PUB), str(warm), *map(str, packs)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _huge_signature_member(path: Path, declared: int) -> Path:
    """A pack whose first header declares a signature member of ``declared`` bytes (sparse file)."""
    header = corpus.regular(corpus.SIG_NAME, b"", size=declared).encode()
    length = 512 + declared + (-declared % 512) + 10240
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(length)
    return path


def test_sparse_and_huge_declarations_are_cheap(keys: corpus.Keys, tmp_path: Path) -> None:
    """security.md (a) 10, 19, 25: a 10 GiB declaration is refused in < 1 s with < 64 MiB RSS growth."""
    builds = {
        "sparse-gnu-10GiB": corpus._gnu_sparse(keys),
        "sparse-pax-1.0": next(c for c in corpus.CASES if c.name == "sparse-pax-1.0-10GiB").build(
            keys
        ),
        "sparse-pax-0.1": next(c for c in corpus.CASES if c.name == "sparse-pax-0.1-10GiB").build(
            keys
        ),
        "declared-10GiB": next(
            c for c in corpus.CASES if c.name == "declared-10GiB-truncated"
        ).build(keys),
    }
    packs = [_write(tmp_path / f"{name}.mlpack", arc) for name, arc in builds.items()]
    # What a payload listing 1,000,000 zero-byte files needs: ~100 bytes of JSON per resource, in base64.
    million = _huge_signature_member(tmp_path / "million-members.mlpack", 1_000_000 * 100 * 4 // 3)
    packs.append(million)
    warm = _write(tmp_path / "warm.mlpack", corpus.base(keys))
    results = _probe(tmp_path, packs, warm)
    expected = {
        "sparse-gnu-10GiB": "E_MEMBER_TYPE",
        "sparse-pax-1.0": "E_MEMBER_TYPE",
        "sparse-pax-0.1": "E_MEMBER_TYPE",
        "declared-10GiB": "E_TRUNCATED",
        "million-members": "E_LIMIT",
    }
    for name, code in expected.items():
        r = results[f"{name}.mlpack"]
        assert r["code"] == code and r["unpack_code"] == code, (name, r)
        assert r["seconds"] < 1.0, (name, r)
        assert r["rss_growth_kib"] < 64 * 1024, (name, r)
        assert not r["dest"], name
    assert million.stat().st_blocks * 512 < 64 * 1024  # the test file itself stays sparse


def test_payload_over_resource_limit_is_refused_quickly(
    keys: corpus.Keys, trust: Any, tmp_path: Path
) -> None:
    """100,001 signed zero-byte resources in a (< 16 MiB) payload: E_LIMIT, no archive walk."""
    empty = hashlib.sha256(b"").hexdigest()
    names = [f"f{i:06d}" for i in range(100_000)] + ["mlpack.json"]
    names.sort(key=lambda n: tuple(n.split("/")))
    arc = corpus.HostileArchive(keys)
    statement = arc.statement()
    statement["predicate"]["resources"] = [
        {"name": n, "algorithm": "sha256", "digest": empty} for n in names
    ]
    statement["predicate"]["mlpack"]["sizes"] = [0] * len(names)
    corpus.fix_root(statement)
    arc.payload = statement
    pack = _write(tmp_path / "too-many.mlpack", arc)
    assert pack.stat().st_size < 16 * MiB
    start = time.perf_counter()
    report = verify_pack(pack, trust=trust)
    elapsed = time.perf_counter() - start
    assert report.error is not None and report.error.code == "E_LIMIT", report.render()
    assert elapsed < 2.0


def test_many_signatures_are_capped(keys: corpus.Keys, tmp_path: Path) -> None:
    """10,000 copies of an untrusted signature must not cost 10,000 x keys ECDSA verifications.

    spec/signing.md allows at most 64 signatures (E_LIMIT); without a cap a 16 MiB bundle holds
    ~140,000 signatures, seconds of CPU per trusted key.
    """
    arc = corpus.base(keys, signers=("other",))
    arc.signatures_hook = lambda s: s * 10_000
    pack = _write(tmp_path / "sigs.mlpack", arc)
    start = time.perf_counter()
    report = verify_pack(pack, trust=load_trust([str(MAIN_PUB)], []))
    elapsed = time.perf_counter() - start
    got = report.error.code if report.error else None
    assert got == "E_LIMIT", (
        f"got {got} after {elapsed:.2f}s of signature checks (no 64-signature cap)"
    )
    assert elapsed < 0.5


# -- unsafe formats: at verify time and at pack time -------------------------------------------


class _Reduce:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


PICKLES = {
    "reduce": lambda proto: pickle.dumps(_Reduce(), protocol=proto),
    "state-dict": lambda proto: pickle.dumps(
        {"layer.weight": [[1.0, 2.0], [3.0, 4.0]], "layer.bias": [0.5, -0.5]}, protocol=proto
    ),
}


def _refused_at_pack(
    tmp_path: Path, files: dict[str, bytes], code: str, member: str | None = None
) -> None:
    src = tmp_path / "src"
    for name, data in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(VerificationError) as info:
        pack_directory(src, out_dir / "model.mlpack", key=None)
    assert info.value.code == code, str(info.value)
    if member is not None:
        assert info.value.member == member
    assert os.listdir(out_dir) == [], "pack left its output or a temp file behind"


def _refused_at_verify(
    keys: corpus.Keys, trust: Any, tmp_path: Path, files: dict[str, bytes], code: str, member: str
) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    arc = corpus.named(keys, "README.md")
    for name, data in files.items():
        arc.add(name, data)
    report = verify_pack(_write(tmp_path / "p.mlpack", arc), trust=trust)
    assert report.error is not None, report.render()
    assert (report.error.code, report.error.member) == (code, member), report.render()


@pytest.mark.parametrize("shape", sorted(PICKLES))
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("name", ["model.safetensors", "weights.bin", "notes.txt"])
def test_pickle_refused_whatever_its_name(
    keys: corpus.Keys, trust: Any, tmp_path: Path, shape: str, protocol: int, name: str
) -> None:
    data = PICKLES[shape](protocol)
    _refused_at_verify(keys, trust, tmp_path / "v", {name: data}, "E_UNSAFE_FORMAT", name)
    _refused_at_pack(tmp_path / "p", {"README.md": b"hi\n", name: data}, "E_UNSAFE_FORMAT", name)


def _npy_object() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([1, "two", None], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _safetensors_real() -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save(
        {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, dtype=np.float16)},
        metadata={"format": "np"},
    )


_F32x2 = b"\0\0\x80?\0\0\0@"
UNSAFE = {
    "torch-zip": ("model.pt", corpus.torch_style_zip()),
    "torch-zip-as-bin": ("weights.bin", corpus.torch_style_zip()),
    "numpy-object-npy": ("embeddings.npy", _npy_object()),
    "safetensors-header-100MB": (
        "model.safetensors",
        corpus.safetensors_bytes(
            raw_header=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
            data=_F32x2,
            length=100_000_001,
        ),
    ),
    "safetensors-overlap": (
        "model.safetensors",
        corpus.safetensors_bytes(
            header={
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            data=_F32x2 + b"\0" * 4,
        ),
    ),
    "safetensors-out-of-range": (
        "model.safetensors",
        corpus.safetensors_bytes(
            header={"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data=_F32x2
        ),
    ),
    "safetensors-hole": (
        "model.safetensors",
        corpus.safetensors_bytes(
            header={
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
            },
            data=_F32x2 * 3,
        ),
    ),
    "safetensors-negative-offset": (
        "model.safetensors",
        corpus.safetensors_bytes(
            header={"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, data=_F32x2
        ),
    ),
    "safetensors-huge-shape": (
        "model.safetensors",
        corpus.safetensors_bytes(
            header={"a": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 8]}},
            data=_F32x2,
        ),
    ),
}


@pytest.mark.parametrize("kind", sorted(UNSAFE))
def test_unsafe_format_refused(keys: corpus.Keys, trust: Any, tmp_path: Path, kind: str) -> None:
    name, data = UNSAFE[kind]
    _refused_at_verify(keys, trust, tmp_path / "v", {name: data}, "E_UNSAFE_FORMAT", name)
    _refused_at_pack(tmp_path / "p", {"README.md": b"hi\n", name: data}, "E_UNSAFE_FORMAT", name)


def test_real_safetensors_is_accepted(keys: corpus.Keys, trust: Any, tmp_path: Path) -> None:
    """Control for the refusals above: a file written by the safetensors library passes."""
    data = _safetensors_real()
    arc = corpus.named(keys, "README.md").add("model.safetensors", data, weights=True)
    report = verify_pack(_write(tmp_path / "ok.mlpack", arc), trust=trust)
    assert report.verdict == "verified", report.render()
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.safetensors").write_bytes(data)
    pack_directory(src, tmp_path / "packed.mlpack", key=None)
    assert (
        verify_pack(tmp_path / "packed.mlpack", trust=(), allow_unsigned=True).verdict == "unsigned"
    )


# -- pack refuses links, FIFOs and non-portable names --------------------------------------------


@pytest.fixture
def no_hang() -> Any:
    """Fail instead of blocking forever if something opens a FIFO."""

    def alarm(_sig: int, _frame: Any) -> None:
        raise TimeoutError("blocked (opened a FIFO?)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _pack_refuses(src: Path, out_dir: Path, code: str) -> VerificationError:
    out_dir.mkdir()
    before = _files_under(src)
    with pytest.raises(VerificationError) as info:
        pack_directory(src, out_dir / "model.mlpack", key=None)
    assert info.value.code == code, str(info.value)
    assert os.listdir(out_dir) == [], "pack left its output or a temp file behind"
    assert _files_under(src) == before
    return info.value


@pytest.mark.parametrize("target", ["weights.bin", "/etc/passwd", "missing", "."])
def test_pack_refuses_symlinks(tmp_path: Path, target: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"data\n")
    (src / "sub").mkdir()
    os.symlink(target, src / "sub" / "link")
    err = _pack_refuses(src, tmp_path / "out", "E_MEMBER_TYPE")
    assert err.member == "sub/link"


def test_pack_refuses_fifo(tmp_path: Path, no_hang: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"data\n")
    os.mkfifo(src / "pipe")
    err = _pack_refuses(src, tmp_path / "out", "E_MEMBER_TYPE")
    assert err.member == "pipe"


NON_PORTABLE: list[tuple[str, list[str | bytes], str]] = [
    ("device-name", ["CON"], "E_NAME"),
    ("device-name-ext", ["aux.txt"], "E_NAME"),
    ("device-name-dir", ["lpt1/x.txt"], "E_NAME"),
    ("trailing-dot", ["name."], "E_NAME"),
    ("trailing-space", ["name "], "E_NAME"),
    ("control-char", ["bell\x07.txt"], "E_NAME"),
    ("newline", ["new\nline.txt"], "E_NAME"),
    ("star", ["what*.txt"], "E_NAME"),
    ("stream-colon", ["data.bin:stream"], "E_PATH"),
    ("invalid-utf8", [b"bad\xff.bin"], "E_NAME"),
    ("backslash", ["evil\\name.txt"], "E_PATH"),
    ("drive-letter", ["C:evil.txt"], "E_PATH"),
    ("case-collision", ["Model.bin", "model.bin"], "E_NAME_COLLISION"),
    (
        "nfc-nfd-collision",
        [
            unicodedata.normalize("NFC", "caf\u00e9.txt"),
            unicodedata.normalize("NFD", "caf\u00e9.txt"),
        ],
        "E_NAME_COLLISION",
    ),
    ("file-and-dir-case", ["A", "a/b.txt"], "E_NAME_COLLISION"),
    ("reserved-prefix", [".mlpack/extra"], "E_PATH"),
    ("reserved-prefix-case", [".MLPACK/extra"], "E_PATH"),
]


@pytest.mark.parametrize(
    "names,code", [(n, c) for _i, n, c in NON_PORTABLE], ids=[i for i, _n, _c in NON_PORTABLE]
)
def test_pack_refuses_non_portable_names(
    tmp_path: Path, names: list[str | bytes], code: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"fine\n")
    for name in names:
        path = os.path.join(
            os.fsencode(src), name if isinstance(name, bytes) else os.fsencode(name)
        )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"content\n")
    _pack_refuses(src, tmp_path / "out", code)


def test_pack_refuses_names_in_the_tree_it_was_given_only(tmp_path: Path) -> None:
    """Sanity: the same tree without the bad names packs and verifies (the refusals above are about names)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"fine\n")
    (src / "con-tent.txt").write_bytes(b"not a device name\n")
    (src / "aux1.txt").write_bytes(b"not a device name either\n")
    pack_directory(src, tmp_path / "ok.mlpack", key=None)
    assert verify_pack(tmp_path / "ok.mlpack", trust=(), allow_unsigned=True).verdict == "unsigned"


def test_signature_padding_is_checked(keys: corpus.Keys, trust: Any, tmp_path: Path) -> None:
    """Bytes hidden in the padding after the signature member (unsigned, unparsed) must fail verify.

    Brief: every byte is fixed; spec/verification.md step 2: 'the padding MUST be zero'.
    """
    arc = corpus.base(keys)
    bundle = arc.bundle_bytes()
    pad = -len(bundle) % 512
    assert pad > 16
    hidden = b"PK\x03\x04 hidden"  # e.g. the start of a polyglot
    arc.members_hook = corpus.replace(
        corpus.SIG_NAME,
        lambda m: corpus.RawMember(
            m.label, m.header, bundle, pad=hidden + b"\0" * (pad - len(hidden))
        ),
    )
    report = verify_pack(_write(tmp_path / "p.mlpack", arc), trust=trust)
    assert report.error is not None and report.error.code == "E_NONCANONICAL", report.render()


def test_lone_surrogate_name_is_reported_not_raised(
    keys: corpus.Keys, trust: Any, tmp_path: Path
) -> None:
    """A signed name '\\ud800' (JSON escape) must give a report (E_MANIFEST by spec strict JSON rule 5),
    never an uncaught UnicodeEncodeError."""
    arc = corpus.named(keys, "hello.txt", "bad\ud800.txt")
    pack = _write(tmp_path / "p.mlpack", arc)
    payload = json.loads(
        base64.b64decode(json.loads(arc.bundle_bytes())["dsseEnvelope"]["payload"])
    )
    assert any("\ud800" in r["name"] for r in payload["predicate"]["resources"])
    report = verify_pack(pack, trust=trust)
    assert report.error is not None and report.error.code in ("E_MANIFEST", "E_NAME")
    dest = tmp_path / "out"
    report = unpack_pack(pack, dest, trust=trust)
    assert report.error is not None and not dest.exists()
