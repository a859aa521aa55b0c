"""Hypothesis properties of the format (security.md §4, spec/README.md guarantees 1, 4, 14).

(a) Any single-byte change or truncation of a valid pack makes verify fail. The only bytes a
    change may leave verifying are those the spec says are not used: inside the signature
    member's content, when the bundle still parses, with the same mediaType, payloadType,
    decoded payload and decoded signatures (spec/README.md guarantee 4: "Inside the
    signature member only the payload and the signatures are used").
(b) pack -> verify -> unpack round-trips arbitrary safe trees.
(c) `pack --unsigned` is byte-identical whatever the creation order, mtimes and umask.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpack.keys import load_signing_key, load_trust
from mlpack.pack import pack_directory
from mlpack.verify import unpack_pack, verify_pack

REPO = Path(__file__).resolve().parents[1]
KEYS = REPO / "spec" / "conformance" / "keys"
PRIVATE = KEYS / "conformance-TEST-ONLY.pem"
PUBLIC = KEYS / "conformance-TEST-ONLY.pub"
BLOCK = 512

COMMON = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@functools.cache
def _trust() -> Any:
    return load_trust([str(PUBLIC)], [])


@functools.cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="mlpack-props-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def _small_pack() -> bytes:
    """A small valid signed pack: text, a safetensors file, an executable and a long (PAX) name."""
    import struct

    src = _workdir() / "small-src"
    src.mkdir()
    (src / "hello.txt").write_bytes(b"data:hello\n")
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-len(header) % 8)
    (src / "model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + b"\0\0\x80?\0\0\0@"
    )
    run = src / "bin" / "run.sh"
    run.parent.mkdir()
    run.write_bytes(b"#!/bin/sh\necho run\n")
    run.chmod(0o755)
    (src / ("d/" + "n" * 110 + ".txt")).parent.mkdir()
    (src / ("d/" + "n" * 110 + ".txt")).write_bytes(b"long name\n")
    out = _workdir() / "small.mlpack"
    pack_directory(src, out, key=load_signing_key(PRIVATE))
    data = out.read_bytes()
    assert verify_pack(out, trust=_trust()).verdict == "verified"
    return data


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the pack by role: each header, data, padding, PAX records, end blocks."""
    regions = []
    pos = 0
    while pos + BLOCK <= len(data) and any(data[pos : pos + BLOCK]):
        size = int(data[pos + 124 : pos + 135], 8)
        regions.append((pos, pos + BLOCK))
        data_end = pos + BLOCK + size
        pad_end = data_end + (-size % BLOCK)
        if size:
            regions.append((pos + BLOCK, data_end))
        if pad_end > data_end:
            regions.append((data_end, pad_end))
        pos = pad_end
    regions.append((pos, pos + 2 * BLOCK))
    if pos + 2 * BLOCK < len(data):
        regions.append((pos + 2 * BLOCK, len(data)))
    return regions


def _bundle_view(pack: bytes) -> tuple[int, int]:
    return BLOCK, BLOCK + int(pack[124:135], 8)


def _used_parts(bundle: bytes) -> tuple[Any, ...] | None:
    """What verification may depend on in a bundle, or None if it does not even parse."""
    try:
        doc = json.loads(bundle)
        env = doc["dsseEnvelope"]
        hint = doc["verificationMaterial"]["publicKey"].get("hint")
        if hint is not None and not re.fullmatch(r"[0-9a-f]{64}", hint):
            return None
        return (
            doc["mediaType"],
            env["payloadType"],
            base64.b64decode(env["payload"], validate=True),
            tuple(base64.b64decode(s["sig"], validate=True) for s in env["signatures"]),
        )
    except Exception:  # noqa: BLE001 - anything unparsable must fail verification
        return None


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[int, int]:
    pack = _small_pack()
    start, end = draw(st.sampled_from(_regions(pack)))  # every role of byte gets its share
    offset = draw(st.integers(start, end - 1))
    value = draw(st.integers(0, 255).filter(lambda v: v != pack[offset]))
    return offset, value


def _verify_bytes(data: bytes, name: str) -> Any:
    path = _workdir() / name
    path.write_bytes(data)
    return verify_pack(path, trust=_trust())


@settings(max_examples=300, **COMMON)
@given(_mutations())
def test_single_byte_change_fails(mutation: tuple[int, int]) -> None:
    offset, value = mutation
    pack = _small_pack()
    mutated = bytearray(pack)
    mutated[offset] = value
    report = _verify_bytes(bytes(mutated), "mutated.mlpack")
    if report.ok:
        start, end = _bundle_view(pack)
        assert start <= offset < end, (
            f"byte {offset} changed 0x{pack[offset]:02x}->0x{value:02x}: still verifies"
        )
        assert _used_parts(bytes(mutated[start:end])) == _used_parts(pack[start:end]), (
            f"byte {offset} of the signature member changed what is used, yet the pack verifies"
        )


@settings(max_examples=300, **COMMON)
@given(st.data())
def test_truncation_fails(data: st.DataObject) -> None:
    pack = _small_pack()
    length = data.draw(
        st.one_of(
            st.integers(0, len(pack) - 1),
            st.sampled_from([s for s, _e in _regions(pack)] + [len(pack) - 1]),
        )
    )
    report = _verify_bytes(pack[:length], "truncated.mlpack")
    assert not report.ok, f"pack cut to {length} of {len(pack)} bytes still verifies"


# -- safe trees ------------------------------------------------------------------------------

_DEVICES = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
_component = st.from_regex(r"[a-z0-9_-]{1,8}(\.[a-z0-9]{1,4})?", fullmatch=True).filter(
    lambda c: c.split(".", 1)[0].upper() not in _DEVICES
)


@st.composite
def safe_trees(draw: st.DrawFn) -> dict[str, tuple[bytes, bool]]:
    """name -> (content, executable); nested up to depth 3; lower-case names so no case collisions."""
    entries: dict[tuple[str, ...], tuple[bytes, bool]] = {}
    for _ in range(draw(st.integers(1, 8))):
        parts = tuple(draw(_component) for _ in range(draw(st.integers(1, 3))))
        # b"data:" first: never a pickle opcode stream, a zip, an .npy or a safetensors length
        content = b"data:" + draw(st.binary(max_size=5000))
        entries[parts] = (content, draw(st.booleans()))
    tree = {
        "/".join(p): v
        for p, v in entries.items()
        if not any(
            len(q) > len(p) and q[: len(p)] == p for q in entries
        )  # a file is not also a dir
        and p != ("mlpack.json",)
    }
    if not tree:
        tree = {"only.txt": (b"data:", False)}
    return tree


def _materialize(
    root: Path,
    tree: dict[str, tuple[bytes, bool]],
    order: list[str] | None = None,
    umask: int = 0o022,
    mtimes: list[int] | None = None,
) -> None:
    root.mkdir(parents=True)
    old = os.umask(umask)
    try:
        for i, name in enumerate(order or sorted(tree)):
            content, executable = tree[name]
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
            try:
                os.write(fd, content)
            finally:
                os.close(fd)
            if mtimes:
                os.utime(path, ns=(mtimes[i % len(mtimes)], mtimes[i % len(mtimes)]))
    finally:
        os.umask(old)


@functools.cache
def _signing_key() -> Any:
    return load_signing_key(PRIVATE)


_counter = iter(range(10**9))


@settings(max_examples=40, **COMMON)
@given(safe_trees())
def test_pack_verify_unpack_round_trip(tree: dict[str, tuple[bytes, bool]]) -> None:
    work = _workdir() / f"rt-{next(_counter)}"
    src = work / "src"
    _materialize(src, tree)
    pack = work / "p.mlpack"
    pack_directory(src, pack, key=_signing_key(), name="roundtrip")
    report = verify_pack(pack, trust=_trust())
    assert report.verdict == "verified", report.render()
    dest = work / "out"
    report = unpack_pack(pack, dest, trust=_trust())
    assert report.ok, report.render()
    got = {}
    for path in dest.rglob("*"):
        if path.is_file():
            got[path.relative_to(dest).as_posix()] = (
                path.read_bytes(),
                bool(path.stat().st_mode & 0o100),
            )
    sig = got.pop(".mlpack/model.sig")
    manifest = got.pop("mlpack.json")
    assert got == tree
    assert json.loads(manifest[0])["files"] == {
        "count": len(tree),
        "size": sum(len(c) for c, _x in tree.values()),
    }
    assert json.loads(sig[0])["dsseEnvelope"]["signatures"]


@settings(max_examples=30, **COMMON)
@given(tree=safe_trees(), data=st.data())
def test_unsigned_pack_is_reproducible(
    tree: dict[str, tuple[bytes, bool]], data: st.DataObject
) -> None:
    work = _workdir() / f"repro-{next(_counter)}"
    epoch = data.draw(st.sampled_from([None, "1700000000"]), label="SOURCE_DATE_EPOCH")
    outputs = []
    for side in ("a", "b"):
        order = data.draw(st.permutations(sorted(tree)), label=f"creation order {side}")
        umask = data.draw(
            st.sampled_from([0o022, 0o077, 0o002, 0o027, 0o000]), label=f"umask {side}"
        )
        mtimes = data.draw(
            st.lists(st.integers(0, 2**40).map(lambda s: s * 1000), min_size=1, max_size=4),
            label=f"mtimes {side}",
        )
        src = work / side / "model"
        _materialize(src, tree, order, umask, mtimes)
        out = work / f"{side}.mlpack"
        saved = os.environ.pop("SOURCE_DATE_EPOCH", None)
        try:
            if epoch is not None:
                os.environ["SOURCE_DATE_EPOCH"] = epoch
            pack_directory(src, out, key=None, name="repro")
        finally:
            os.environ.pop("SOURCE_DATE_EPOCH", None)
            if saved is not None:
                os.environ["SOURCE_DATE_EPOCH"] = saved
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert hashlib.sha256(outputs[0]).digest()  # non-empty, comparable
