"""A pack as an OCI artifact, and the push/pull algorithms (spec/distribution.md).

The mapping is a pure function of the pack: one uncompressed layer per member (the
signature member first, then ``mlpack.json``, then the other files in archive order),
``mlpack.json`` also as the config, and a manifest serialised canonically, so pushing
the same pack twice gives the same manifest digest. Pulling reverses it: the signature
layer's statement gives every member's name, size and mode and the archive mtime, so the
canonical archive (spec/archive.md) is rebuilt byte for byte, then verified.

Push and pull are written against a :class:`Remote` (an OCI registry in
:mod:`mlpack.oci`, an S3 pack store in :mod:`mlpack.store`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from . import jsonstrict
from ._atomic import allocate, install
from .archive import MANIFEST_NAME, SIGNATURE_NAME, Layout, Member
from .digest import new_hasher
from .errors import IOFailure, UsageError, VerificationError
from .keys import PublicKey
from .pack import _start_writeback
from .report import Report
from .signing import BUNDLE_MEDIA_TYPE, MAX_BUNDLE, Statement, parse_statement

__all__ = [
    "ARTIFACT_TYPE", "CONFIG_TYPE", "Layer", "PackImage", "PullResult", "PushResult", "Remote",
    "image_of_manifest", "pull_pack", "push_pack", "read_pack",
]  # fmt: skip

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.mlpack.pack.v1"
CONFIG_TYPE = "application/vnd.mlpack.config.v1+json"
SIGNATURE_TYPE = BUNDLE_MEDIA_TYPE
FILE_TYPE = "application/vnd.mlpack.file.v1.raw"
WEIGHT_TYPE = "application/vnd.cncf.model.weight.v1.raw"
CODE_TYPE = "application/vnd.cncf.model.code.v1.raw"
DATASET_TYPE = "application/vnd.cncf.model.dataset.v1.raw"
DOC_TYPE = "application/vnd.cncf.model.doc.v1.raw"
TITLE = "org.opencontainers.image.title"
FILEPATH = "org.cncf.model.filepath"
FILE_METADATA = "org.cncf.model.file.metadata+json"
LAYER_TYPES = (SIGNATURE_TYPE, CONFIG_TYPE, WEIGHT_TYPE, CODE_TYPE, DATASET_TYPE, DOC_TYPE, FILE_TYPE)
MAX_IMAGE_MANIFEST = 32 << 20
CHUNK = 64 << 20
Progress = Callable[[int], None]


class Remote(Protocol):
    """Where packs go: content-addressed blobs plus a manifest under a name."""

    def describe(self) -> str: ...
    def connect(self) -> None: ...
    def has_blob(self, digest: str, size: int) -> bool: ...
    def upload_blob(self, digest: str, size: int, read: Callable[[int, int], bytes], *,
                    progress: Progress | None, what: str) -> None: ...
    def put_manifest(self, data: bytes, digest: str) -> str: ...
    def get_manifest(self) -> tuple[bytes, str]: ...
    def fetch_blob(self, digest: str, size: int, write: Callable[[int, memoryview], None], *,
                   progress: Progress | None, what: str) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Layer:
    """One member of the pack as an OCI layer descriptor."""

    name: str
    digest: str
    size: int
    media_type: str
    mode: int = 0o644
    offset: int = 0
    """Where the member's data starts in the pack file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PackImage:
    """A pack seen as an OCI artifact: its layers (archive order) and its manifest bytes."""

    statement: Statement
    layers: tuple[Layer, ...]
    manifest: bytes
    digest: str
    archive_size: int

    @property
    def config(self) -> Layer:
        return next(layer for layer in self.layers if layer.name == MANIFEST_NAME)


@dataclass(frozen=True, kw_only=True, slots=True)
class PushResult:
    reference: str
    digest: str
    uploaded: tuple[str, ...]
    """Members whose blob was sent (the others were already there), plus ``manifest``."""
    skipped: int
    bytes_sent: int
    resumed: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class PullResult:
    path: Path | None
    digest: str
    report: Report
    bytes_received: int
    resumed: int = 0


# ----------------------------------------------------------------------------- mapping (pure)


def media_type(name: str, manifest: dict[str, Any]) -> str:
    """The layer media type of member ``name`` given the pack's ``mlpack.json`` (a dict)."""
    if name == SIGNATURE_NAME:
        return SIGNATURE_TYPE
    if name == MANIFEST_NAME:
        return CONFIG_TYPE
    weights = manifest.get("weights")
    if isinstance(weights, list) and any(isinstance(w, dict) and w.get("path") == name for w in weights):
        return WEIGHT_TYPE
    if isinstance(manifest.get("code"), dict) and (name.startswith("code/") or name == "code-uncommitted.diff"):
        return CODE_TYPE
    datasets = manifest.get("datasets")
    for entry in datasets if isinstance(datasets, list) else ():
        if not isinstance(entry, dict):
            continue
        if entry.get("manifest") == name:
            return DATASET_TYPE
        path = entry.get("path")
        if entry.get("mode") == "included" and isinstance(path, str) and name.startswith(path.rstrip("/") + "/"):
            return DATASET_TYPE
    base = name.rsplit("/", 1)[-1].upper()
    if "/" not in name and base.split(".")[0] in ("README", "LICENSE", "LICENCE", "NOTICE", "MODEL_CARD"):
        return DOC_TYPE
    return FILE_TYPE


def _rfc3339(mtime: int) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_manifest(statement: Statement, layers: Sequence[Layer], archive_size: int) -> bytes:
    """The OCI image manifest of a pack: canonical JSON (sorted keys, no whitespace)."""
    def descriptor(layer: Layer) -> dict[str, Any]:
        meta = {"name": layer.name.rsplit("/", 1)[-1], "mode": layer.mode, "uid": 0, "gid": 0,
                "size": layer.size, "mtime": _rfc3339(statement.mtime), "typeflag": 48}
        return {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size,
                "annotations": {TITLE: layer.name, FILEPATH: layer.name,
                                FILE_METADATA: jsonstrict.dumps(meta).decode()}}

    config = next(layer for layer in layers if layer.name == MANIFEST_NAME)
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size},
        "layers": [descriptor(layer) for layer in layers],
        "annotations": {
            TITLE: statement.name,
            "dev.mlpack.archive": "mlpack-tar-v1",
            "dev.mlpack.archive.size": str(archive_size),
            "dev.mlpack.hash": statement.algorithm,
            "dev.mlpack.root": f"sha256:{statement.root_digest}",
        },
    }
    return jsonstrict.dumps(doc)


def statement_of_bundle(bundle: bytes) -> Statement:
    """The statement inside a signature member, parsed strictly but NOT authenticated.

    Used only to plan transfers; the pack is verified (signature first) before use.
    """
    doc = jsonstrict.loads(bundle, what="signature bundle", max_size=MAX_BUNDLE, member=SIGNATURE_NAME)
    envelope = doc.get("dsseEnvelope") if isinstance(doc, dict) else None
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(payload, str):
        raise VerificationError("the signature member has no DSSE payload", code="E_MANIFEST",
                                member=SIGNATURE_NAME)
    try:
        raw = base64.b64decode(payload, validate=True)
    except ValueError:
        raise VerificationError("the DSSE payload is not base64", code="E_MANIFEST", member=SIGNATURE_NAME) from None
    return parse_statement(raw)


def _archive_members(statement: Statement, bundle_size: int) -> list[Member]:
    by_name = {r.name: r.member for r in statement.resources}
    rest = sorted((n for n in by_name if n != MANIFEST_NAME), key=lambda n: n.encode())
    return [Member(SIGNATURE_NAME, bundle_size, 0o644), by_name[MANIFEST_NAME]] + [by_name[n] for n in rest]


# ------------------------------------------------------------------------------------- push


def read_pack(fd: int, file_size: int, path: str) -> PackImage:
    """Map a local pack to its OCI image; refuse one that is not a well-formed canonical pack.

    Every header is compared with its canonical encoding, and the file size with the
    layout's. Digests: for a sha256 pack the signed digests ARE the layer digests (each
    is checked while the blob is sent); for blake2b/blake3 packs every file is read
    once here, computing its sha256 and checking its signed digest.
    """
    from .verify import _read_signature_member

    bundle, mtime = _read_signature_member(fd, file_size)
    statement = statement_of_bundle(bundle)
    if statement.mtime != mtime:
        raise VerificationError("header mtime differs from the signed mtime", code="E_NONCANONICAL",
                                member=SIGNATURE_NAME)
    layout = Layout.plan(_archive_members(statement, len(bundle)), mtime=mtime)
    if file_size != layout.total:
        raise VerificationError(f"{path} is {file_size} bytes; its signed layout is {layout.total}",
                                code="E_TRUNCATED" if file_size < layout.total else "E_NONCANONICAL",
                                hint="run mlpack verify on it")
    for slot in layout.slots:
        if os.pread(fd, slot.header_size, slot.offset) != slot.header:
            raise VerificationError(f"header of {slot.member.name!r} is not canonical", code="E_NONCANONICAL",
                                    member=slot.member.name, hint="run mlpack verify on it")
    signed = {r.name: r.digest for r in statement.resources}
    manifest_slot = layout.slots[1]
    try:
        config = jsonstrict.loads(os.pread(fd, manifest_slot.member.size, manifest_slot.data_offset),
                                  what=MANIFEST_NAME, max_size=16 << 20, max_depth=64, member=MANIFEST_NAME)
    except VerificationError:
        config = {}
    layers = []
    for slot in layout.slots:
        name, size = slot.member.name, slot.member.size
        if name == SIGNATURE_NAME:
            digest = hashlib.sha256(bundle).hexdigest()
        elif statement.algorithm == "sha256":
            digest = signed[name]
        else:
            digest = _hash_member(fd, slot.data_offset, size, statement.algorithm, signed[name], name)
        layers.append(Layer(name=name, digest=f"sha256:{digest}", size=size, mode=slot.member.mode,
                            media_type=media_type(name, config if isinstance(config, dict) else {}),
                            offset=slot.data_offset))
    manifest = image_manifest(statement, layers, layout.total)
    return PackImage(statement=statement, layers=tuple(layers), manifest=manifest,
                     digest=f"sha256:{hashlib.sha256(manifest).hexdigest()}", archive_size=layout.total)


def _hash_member(fd: int, offset: int, size: int, algorithm: str, expected: str, name: str) -> str:
    sha, signed = hashlib.sha256(), new_hasher(algorithm, size)
    pos = 0
    while pos < size:
        data = os.pread(fd, min(CHUNK, size - pos), offset + pos)
        if not data:
            raise IOFailure(f"the pack ended inside {name}", code="E_IO")
        sha.update(data)
        signed.update(data)
        pos += len(data)
    if signed.hexdigest() != expected:
        raise VerificationError(f"{name} does not match its signed {algorithm} digest", code="E_DIGEST",
                                member=name, hint="the pack was modified after signing")
    return sha.hexdigest()


def push_pack(path: str | os.PathLike[str], remote: Remote, *, progress: Progress | None = None) -> PushResult:
    """Send the blobs ``remote`` lacks (HEAD first), then the manifest under its name."""
    from .verify import _open

    fd, file_size = _open(path)
    try:
        image = read_pack(fd, file_size, str(path))  # a bad pack is refused before any traffic
        remote.connect()
        uploaded: list[str] = []
        sent = skipped = 0
        seen: set[str] = set()
        for layer in image.layers:
            if layer.digest in seen:
                skipped += 1
                continue
            seen.add(layer.digest)
            if remote.has_blob(layer.digest, layer.size):
                skipped += 1
                continue
            base = layer.offset

            def read(offset: int, n: int, base: int = base) -> bytes:
                return os.pread(fd, n, base + offset)

            remote.upload_blob(layer.digest, layer.size, read, progress=progress, what=layer.name)
            uploaded.append(layer.name)
            sent += layer.size
    except OSError as err:
        raise IOFailure.from_os_error(err, f"reading {path}") from None
    finally:
        os.close(fd)
    reference = remote.put_manifest(image.manifest, image.digest)
    return PushResult(reference=reference, digest=image.digest, uploaded=(*uploaded, "manifest"),
                      skipped=skipped, bytes_sent=sent + len(image.manifest),
                      resumed=int(getattr(remote, "resumed", 0)))


# ------------------------------------------------------------------------------------- pull


def _fail(why: str) -> VerificationError:
    return VerificationError(f"not an mlpack pack artifact: {why}", code="E_ARTIFACT",
                             hint="this reference holds something else than a pack pushed by mlpack")


def image_of_manifest(data: bytes) -> tuple[Layer, list[Layer], dict[str, Any]]:
    """Parse and check an image manifest: (signature layer, every layer, the document)."""
    try:
        doc = jsonstrict.loads(data, what="image manifest", max_size=MAX_IMAGE_MANIFEST)
    except VerificationError as err:
        raise _fail(err.message) from None
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise _fail("schemaVersion is not 2")
    if doc.get("mediaType", MANIFEST_MEDIA_TYPE) != MANIFEST_MEDIA_TYPE:
        raise _fail(f"media type {doc.get('mediaType')!r}")
    if doc.get("artifactType") != ARTIFACT_TYPE:
        raise _fail(f"artifactType is {doc.get('artifactType')!r}, not {ARTIFACT_TYPE}")
    config, raw_layers = doc.get("config"), doc.get("layers")
    if not isinstance(config, dict) or config.get("mediaType") != CONFIG_TYPE or not isinstance(raw_layers, list):
        raise _fail("config or layers missing")
    layers = []
    for i, entry in enumerate(raw_layers):
        annotations = entry.get("annotations") if isinstance(entry, dict) else None
        title = annotations.get(TITLE) if isinstance(annotations, dict) else None
        digest, size = entry.get("digest") if isinstance(entry, dict) else None, \
            entry.get("size") if isinstance(entry, dict) else None
        if not isinstance(title, str) or not isinstance(digest, str) or type(size) is not int or size < 0 \
                or not digest.startswith("sha256:") or len(digest) != 71 or digest[7:].strip("0123456789abcdef"):
            raise _fail(f"layers[{i}] lacks a title, a sha256 digest or a size")
        layers.append(Layer(name=title, digest=digest, size=size, media_type=str(entry.get("mediaType"))))
    signatures = [layer for layer in layers if layer.name == SIGNATURE_NAME]
    if len(signatures) != 1:
        raise _fail(f"{len(signatures)} layers titled {SIGNATURE_NAME}")
    if signatures[0].size > MAX_BUNDLE:
        raise VerificationError(f"signature layer of {signatures[0].size} bytes exceeds {MAX_BUNDLE}",
                                code="E_LIMIT", member=SIGNATURE_NAME)
    return signatures[0], layers, doc


def _match(statement: Statement, layers: list[Layer], doc: dict[str, Any]) -> dict[str, Layer]:
    """Every signed file has exactly one layer of its size (and, for sha256, its digest)."""
    by_name: dict[str, Layer] = {}
    for layer in layers:
        if layer.name in by_name:
            raise _fail(f"two layers titled {layer.name!r}")
        by_name[layer.name] = layer
    names = {r.name for r in statement.resources} | {SIGNATURE_NAME}
    if set(by_name) != names:
        extra, missing = sorted(set(by_name) - names), sorted(names - set(by_name))
        raise _fail(f"layers {extra[:3]} are not signed files" if extra else f"no layer for {missing[:3]}")
    for r in statement.resources:
        layer = by_name[r.name]
        if layer.size != r.size:
            raise VerificationError(f"layer {r.name!r} is {layer.size} bytes; the signed size is {r.size}",
                                    code="E_SIZE", member=r.name)
        if statement.algorithm == "sha256" and layer.digest != f"sha256:{r.digest}":
            raise VerificationError(f"layer {r.name!r} has digest {layer.digest[:19]}..., not the signed one",
                                    code="E_DIGEST", member=r.name)
    if doc["config"].get("digest") != by_name[MANIFEST_NAME].digest:
        raise _fail(f"the config is not the {MANIFEST_NAME} layer")
    return by_name


def check_trust_args(trust: Sequence[PublicKey], threshold: int, allow_unsigned: bool) -> None:
    """The argument checks of verify, done before any byte is downloaded."""
    if threshold < 1 or (trust and threshold > len(trust)):
        raise UsageError(f"--threshold must be between 1 and the number of trusted keys ({len(trust)})")
    if not trust and not allow_unsigned:
        raise UsageError("no trusted key given", hint="pass --key AUTHOR.pub (or --trust-dir DIR), "
                         "or --allow-unsigned to accept an unsigned pack")


def pull_pack(remote: Remote, out: str | os.PathLike[str] | None, *, trust: Sequence[PublicKey],
              threshold: int = 1, allow_unsigned: bool = False, replace: bool = False,
              progress: Progress | None = None) -> PullResult:
    """Rebuild the pack from ``remote`` in a temp file beside ``out``, verify it, then rename it.

    With ``out=None`` the pack is verified in a temporary directory and deleted (``mlpack
    verify oci://...``). Returns the verification report; ``path`` is ``None`` unless
    the pack verified and was written. Nothing is left behind on any failure.
    """
    check_trust_args(trust, threshold, allow_unsigned)
    target = Path(out) if out is not None else None
    if target is not None:
        if not replace and (target.exists() or target.is_symlink()):
            raise UsageError(f"{target} already exists", code="E_EXISTS", hint="pass --force to replace it")
        if not (target.parent if str(target.parent) else Path(".")).is_dir():
            raise UsageError(f"directory {target.parent} does not exist", code="E_INPUT")
    remote.connect()
    data, digest = remote.get_manifest()
    sig_layer, layers, doc = image_of_manifest(data)
    bundle = bytearray(sig_layer.size)

    def into_bundle(offset: int, chunk: memoryview) -> None:
        bundle[offset : offset + len(chunk)] = chunk

    remote.fetch_blob(sig_layer.digest, sig_layer.size, into_bundle, progress=progress, what=SIGNATURE_NAME)
    statement = statement_of_bundle(bytes(bundle))
    by_name = _match(statement, layers, doc)
    layout = Layout.plan(_archive_members(statement, len(bundle)), mtime=statement.mtime)
    directory = target.parent if target is not None and str(target.parent) else Path(".")
    scratch = None
    if target is None:
        scratch = Path(tempfile.mkdtemp(prefix="mlpack-verify-"))
        directory = scratch
    name = target.name if target is not None else "remote.mlpack"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    done = False
    received = len(bundle)
    try:
        try:
            os.fchmod(fd, 0o644)
            allocate(fd, layout.total)  # zero-filled: the end-of-archive blocks are already there
            for slot in layout.slots:
                os.pwrite(fd, slot.header, slot.offset)
            os.pwrite(fd, bytes(bundle), layout.slots[0].data_offset)
            for slot in layout.slots[1:]:
                layer = by_name[slot.member.name]

                def write(offset: int, chunk: memoryview, base: int = slot.data_offset) -> None:
                    view = chunk
                    while view:
                        view = view[os.pwrite(fd, view, base + offset + len(chunk) - len(view)):]
                    _start_writeback(fd, base + offset, len(chunk))  # the final fsync finds little left

                remote.fetch_blob(layer.digest, layer.size, write, progress=progress, what=slot.member.name)
                received += layer.size
            os.fsync(fd)
        except OSError as err:
            raise IOFailure.from_os_error(err, f"writing {tmp}") from None
        finally:
            os.close(fd)
        from .verify import verify_pack

        report = verify_pack(tmp, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
        report.pack = remote.describe()
        result_path = None
        if report.ok and target is not None:
            try:
                install(tmp, target, replace=replace)
            except OSError as err:
                raise IOFailure.from_os_error(err, f"cannot write {target}") from None
            result_path = target
            done = True
        return PullResult(path=result_path, digest=digest, report=report, bytes_received=received,
                          resumed=int(getattr(remote, "resumed", 0)))
    finally:
        if not done:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)


def raise_if_failed(result: PullResult) -> PullResult:
    """Pull's library contract: a pack that does not verify raises its report's error."""
    if not result.report.ok:
        err = result.report.error
        assert err is not None
        raise err
    return result

