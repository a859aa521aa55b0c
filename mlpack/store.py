"""An S3 pack store: content-addressed blobs and named references (spec/distribution.md).

``s3://BUCKET/PREFIX[:TAG | @sha256:HEX]`` names a store rooted at ``BUCKET/PREFIX``::

    PREFIX/blobs/sha256/<hex>   every blob: pack members, mlpack.json, image manifests
    PREFIX/refs/<tag>           "sha256:<hex of the image manifest>\\n"

The documents are those of the OCI mapping (:mod:`mlpack.oci`): a pack pushed to a store
has the same manifest digest it has in a registry, and pulls back byte-identical,
verified before it is renamed into place. Objects go through ``pyarrow.fs.S3FileSystem``
(multipart uploads, ranged reads: bounded memory); the endpoint comes from ``endpoint=``
(``--endpoint``), ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, credentials from the
usual AWS chain.

    push("model.mlpack", "s3://models/team/digits:1.2.0")
    pull("s3://models/team/digits:1.2.0", "model.mlpack", trust=load_trust(["author.pub"], []))
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._transfer import (
    PullResult,
    PushResult,
    check_trust_args,
    pull_pack,
    push_pack,
    raise_if_failed,
)
from .errors import IOFailure, MlpackError, UsageError, VerificationError
from .keys import PublicKey
from .report import Report

__all__ = ["StoreReference", "pull", "push", "verify_remote"]

Progress = Callable[[int], None]
CHUNK = 8 << 20
MAX_MANIFEST = 32 << 20
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, kw_only=True, slots=True)
class StoreReference:
    """``s3://BUCKET/PREFIX[:TAG][@sha256:HEX]``; the tag defaults to ``latest``."""

    bucket: str
    prefix: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> StoreReference:
        if not text.startswith("s3://"):
            raise UsageError(f"{text!r} is not an s3:// reference", code="E_USAGE")
        rest, digest = text[len("s3://"):], None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise _bad(text, "the digest must be sha256: followed by 64 lowercase hex digits")
        tag = None
        head, _, last = rest.rpartition("/")
        if ":" in last:
            last, tag = last.split(":", 1)
            if not _TAG.fullmatch(tag):
                raise _bad(text, f"tag {tag!r} is not valid ([A-Za-z0-9_.-], at most 128)")
        path = f"{head}/{last}" if head else last
        bucket, _, prefix = path.strip("/").partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise _bad(text, f"bucket {bucket!r} is not a valid S3 bucket name")
        parts = prefix.strip("/").split("/") if prefix.strip("/") else []
        if any(p in ("", ".", "..") for p in parts):
            raise _bad(text, "the prefix has empty, '.' or '..' components")
        return cls(bucket=bucket, prefix="/".join(parts), tag=tag if tag or digest else "latest", digest=digest)

    @property
    def root(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def blob_key(self, digest: str) -> str:
        return f"{self.root}/blobs/sha256/{digest.split(':', 1)[1]}"

    def ref_key(self, tag: str) -> str:
        return f"{self.root}/refs/{tag}"

    def with_digest(self, digest: str) -> StoreReference:
        return StoreReference(bucket=self.bucket, prefix=self.prefix, digest=digest)

    def __str__(self) -> str:
        return f"s3://{self.root}" + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"bad reference {text!r}: {why}", code="E_USAGE",
                      hint="write s3://BUCKET/PREFIX:TAG or s3://BUCKET/PREFIX@sha256:...")


def filesystem(endpoint: str | None = None) -> Any:
    """The store's ``pyarrow.fs.S3FileSystem`` (:func:`mlpack.datasets.s3_filesystem`), with
    timeouts and retries: a pack store is written as well as read."""
    from pyarrow import fs  # type: ignore[import-untyped,unused-ignore]

    from .datasets import s3_filesystem

    return s3_filesystem(endpoint, connect_timeout=10, request_timeout=60,
                         retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=3))


def _s3_error(err: OSError, what: str) -> MlpackError:
    text = " ".join(str(err).split())
    low = text.lower()
    if any(s in low for s in ("access_denied", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch",
                              "forbidden", "http response code: 403")):
        return UsageError(f"{what}: access denied by the S3 endpoint", code="E_AUTH",
                          hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the AWS profile)")
    if any(s in low for s in ("nosuchbucket", "no_such_bucket", "bucket does not exist")):
        return UsageError(f"{what}: the bucket does not exist", code="E_NOT_FOUND", hint="check the bucket name")
    if any(s in low for s in ("network_connection", "couldn't connect", "curlcode", "connection refused",
                              "timed out", "timeout")):
        return IOFailure(f"{what}: cannot reach the S3 endpoint", code="E_NETWORK",
                         hint="check --endpoint / AWS_ENDPOINT_URL and your network, then retry")
    return IOFailure(f"{what}: {text[:200]}", code="E_REGISTRY", hint="retry later")


class S3Remote:
    """:class:`mlpack._transfer.Remote` over an S3 pack store."""

    def __init__(self, ref: StoreReference, endpoint: str | None) -> None:
        from pyarrow import fs  # type: ignore[import-untyped,unused-ignore]

        self.ref = ref
        self.fs = filesystem(endpoint)
        self._types = fs.FileType
        self.resumed = 0

    def describe(self) -> str:
        return str(self.ref)

    def _info(self, key: str) -> Any:
        try:
            return self.fs.get_file_info(key)
        except OSError as err:
            raise _s3_error(err, f"s3://{key}") from None

    def connect(self) -> None:
        self.check_bucket()

    def check_bucket(self) -> None:
        if self._info(self.ref.bucket).type != self._types.Directory:
            raise UsageError(f"bucket {self.ref.bucket} does not exist", code="E_NOT_FOUND",
                             hint="create it first, or check the endpoint")

    def has_blob(self, digest: str, size: int) -> bool:
        info = self._info(self.ref.blob_key(digest))
        return bool(info.type == self._types.File and info.size == size)

    def upload_blob(self, digest: str, size: int, read: Callable[[int, int], bytes], *,
                    progress: Progress | None, what: str) -> None:
        key = self.ref.blob_key(digest)
        hasher = hashlib.sha256()
        try:
            with self.fs.open_output_stream(key) as out:  # multipart: nothing visible until it completes
                pos = 0
                while pos < size:
                    data = read(pos, min(CHUNK, size - pos))
                    if not data:
                        raise IOFailure("the pack file ended early while uploading", code="E_IO")
                    hasher.update(data)
                    out.write(data)
                    pos += len(data)
                    if progress is not None:
                        progress(len(data))
        except OSError as err:
            raise _s3_error(err, f"uploading s3://{key}") from None
        if f"sha256:{hasher.hexdigest()}" != digest:
            try:  # the object was committed under a name it does not match: take it back
                self.fs.delete_file(key)
            except OSError:
                pass
            raise VerificationError(f"{what} changed: its sha256 is not {digest}", code="E_DIGEST", member=what,
                                    hint="the pack does not match its signed digests")

    def _put_small(self, key: str, data: bytes) -> None:
        try:
            with self.fs.open_output_stream(key) as out:
                out.write(data)
        except OSError as err:
            raise _s3_error(err, f"writing s3://{key}") from None

    def _get_small(self, key: str, limit: int, what: str) -> bytes:
        info = self._info(key)
        if info.type != self._types.File:
            raise UsageError(f"{what} not found: s3://{key}", code="E_NOT_FOUND", hint="check the prefix, tag or digest")
        if info.size > limit:
            raise IOFailure(f"s3://{key} is {info.size} bytes, over {limit}", code="E_REGISTRY")
        try:
            with self.fs.open_input_stream(key) as f:
                return bytes(f.read(limit + 1))
        except OSError as err:
            raise _s3_error(err, f"reading s3://{key}") from None

    def put_manifest(self, data: bytes, digest: str) -> str:
        key = self.ref.blob_key(digest)
        if not self.has_blob(digest, len(data)):
            self._put_small(key, data)
        self._put_small(self.ref.ref_key(self.ref.tag or "latest"), f"{digest}\n".encode())
        return str(self.ref.with_digest(digest))

    def get_manifest(self) -> tuple[bytes, str]:
        digest = self.ref.digest
        if digest is None:
            tag = self.ref.tag or "latest"
            text = self._get_small(self.ref.ref_key(tag), 1024, f"tag {tag!r}").decode("ascii", "replace").strip()
            if not _DIGEST.fullmatch(text):
                raise IOFailure(f"s3://{self.ref.ref_key(tag)} does not hold a sha256 digest", code="E_REGISTRY",
                                hint="push the pack again to rewrite the reference")
            digest = text
        data = self._get_small(self.ref.blob_key(digest), MAX_MANIFEST, f"manifest {digest[:19]}")
        if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
            raise VerificationError(f"the manifest blob {digest[:19]}... does not match its digest", code="E_DIGEST",
                                    hint="the store's copy is corrupt; push the pack again")
        return data, digest

    def fetch_blob(self, digest: str, size: int, write: Callable[[int, memoryview], None], *,
                   progress: Progress | None, what: str) -> None:
        key = self.ref.blob_key(digest)
        info = self._info(key)
        if info.type != self._types.File:
            raise UsageError(f"blob of {what} not found: s3://{key}", code="E_NOT_FOUND",
                             hint="the store is incomplete; push the pack again")
        if info.size != size:
            raise VerificationError(f"blob of {what} is {info.size} bytes, not {size}", code="E_DIGEST", member=what,
                                    hint="the store's copy is corrupt; delete it and push the pack again")
        hasher = hashlib.sha256()
        try:
            with self.fs.open_input_file(key) as f:  # ranged reads: each chunk can be retried alone
                pos = 0
                while pos < size:
                    chunk = memoryview(f.read_at(min(CHUNK, size - pos), pos))
                    if not chunk:
                        raise IOFailure(f"s3://{key} ended early", code="E_NETWORK")
                    hasher.update(chunk)
                    write(pos, chunk)
                    pos += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except OSError as err:
            raise _s3_error(err, f"reading s3://{key}") from None
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise VerificationError(f"blob of {what} in the store does not match its digest {digest[:19]}...",
                                    code="E_DIGEST", member=what,
                                    hint=f"the store's copy is corrupt; delete s3://{key} and push the pack again")


def _remote(ref: str | StoreReference, endpoint: str | None) -> S3Remote:
    parsed = ref if isinstance(ref, StoreReference) else StoreReference.parse(ref)
    return S3Remote(parsed, endpoint)


def push(pack: str | os.PathLike[str], ref: str | StoreReference, *, endpoint: str | None = None,
         progress: Progress | None = None) -> PushResult:
    """Upload ``pack`` to the store; only the blobs it lacks are sent. Returns the manifest digest."""
    parsed = ref if isinstance(ref, StoreReference) else StoreReference.parse(ref)
    if parsed.digest:
        raise UsageError(f"push to a tag, not a digest: {parsed}", code="E_USAGE",
                         hint="the digest is computed from the pack; write s3://BUCKET/PREFIX:TAG")
    from .verify import _open

    os.close(_open(pack)[0])
    return push_pack(pack, _remote(parsed, endpoint), progress=progress)


def pull(ref: str | StoreReference, out: str | os.PathLike[str], *, trust: Sequence[PublicKey],
         threshold: int = 1, allow_unsigned: bool = False, replace: bool = False, endpoint: str | None = None,
         progress: Progress | None = None) -> PullResult:
    """Rebuild the pack into ``out`` from the store, verified before it appears."""
    check_trust_args(trust, threshold, allow_unsigned)
    remote = _remote(ref, endpoint)
    return raise_if_failed(pull_pack(remote, out, trust=trust, threshold=threshold,
                                     allow_unsigned=allow_unsigned, replace=replace, progress=progress))


def verify_remote(ref: str | StoreReference, *, trust: Sequence[PublicKey], threshold: int = 1,
                  allow_unsigned: bool = False, endpoint: str | None = None) -> Report:
    """``mlpack verify s3://...``: pull into a temporary file, verify, delete; the report."""
    check_trust_args(trust, threshold, allow_unsigned)
    return pull_pack(_remote(ref, endpoint), None, trust=trust, threshold=threshold,
                     allow_unsigned=allow_unsigned).report
