"""Push packs to OCI registries and pull them back verified (spec/distribution.md).

A pack travels as an OCI artifact (``artifactType application/vnd.mlpack.pack.v1``): one
uncompressed layer per member, whose digest for a sha256 pack is the digest the
signature lists, ``mlpack.json`` as the config, CNCF ModelPack media types for weights,
code, datasets and docs. ``pull`` rebuilds the byte-identical pack beside its output,
runs the verifier on it with the caller's trust, and only then renames it into place.

    result = push("model.mlpack", "oci://registry.example.com/team/digits:1.2.0")
    print(result.digest)          # pull by digest: oci://registry.example.com/team/digits@sha256:...
    pull("oci://registry.example.com/team/digits@" + result.digest, "model.mlpack",
         trust=load_trust(["author.pub"], []))

Registries are spoken to over the OCI distribution API (no extra dependency):
credentials come from ``MLPACK_REGISTRY_USERNAME``/``MLPACK_REGISTRY_PASSWORD`` or the
Docker config (``auths``, ``credHelpers``, ``credsStore``); basic and bearer-token
authentication are supported; TLS follows ``--plain-http``/``--insecure``/``--ca-file``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import _http
from ._registry import Credentials, Reference, RegistryClient, find_credentials
from ._transfer import PullResult, PushResult, pull_pack, push_pack, raise_if_failed
from .keys import PublicKey
from .report import Report

__all__ = ["Credentials", "PullResult", "PushResult", "Reference", "RegistryOptions", "pull", "push",
           "verify_remote"]

Progress = Callable[[int], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class RegistryOptions:
    """Transport and credentials for one command (defaults: environment, then Docker config)."""

    plain_http: bool | None = None
    insecure: bool | None = None
    ca_file: str | None = None
    credentials: Credentials | None = None
    chunk_size: int = 64 << 20
    """PATCH size of chunked uploads; each chunk is streamed from the pack in 1 MiB reads."""
    retries: int = field(default_factory=lambda: _env_int("MLPACK_REGISTRY_RETRIES", 3))
    """Retries of a request after a dropped connection (exponential backoff from ``backoff``);
    ``MLPACK_REGISTRY_RETRIES`` sets the default."""
    backoff: float = 0.5


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        from .errors import UsageError

        raise UsageError(f"{name}={value!r} is not a non-negative integer", code="E_USAGE")
    return int(value)


class RegistryRemote:
    """:class:`mlpack._transfer.Remote` over one repository of an OCI registry."""

    def __init__(self, ref: Reference, options: RegistryOptions, *, push: bool) -> None:
        self.ref = ref
        self.options = options
        tls = _http.TlsOptions.from_env(plain_http=options.plain_http, insecure=options.insecure,
                                        ca_file=options.ca_file)
        self.http = _http.Http(tls)
        creds = options.credentials or find_credentials(ref.registry)
        self.client = RegistryClient(ref, self.http, credentials=creds, retries=options.retries,
                                     backoff=options.backoff)
        self.actions = "pull,push" if push else "pull"

    def connect(self) -> None:
        self.client.authorize(self.actions)

    @property
    def resumed(self) -> int:
        return self.client.resumed

    def describe(self) -> str:
        return str(self.ref)

    def has_blob(self, digest: str, size: int) -> bool:
        return self.client.has_blob(digest, size)

    def upload_blob(self, digest: str, size: int, read: Callable[[int, int], bytes], *,
                    progress: Progress | None, what: str) -> None:
        self.client.upload_blob(digest, size, read, chunk_size=self.options.chunk_size, progress=progress,
                                what=what)

    def put_manifest(self, data: bytes, digest: str) -> str:
        self.client.put_manifest(self.ref.tag or digest, data)
        return str(self.ref.with_digest(digest))

    def get_manifest(self) -> tuple[bytes, str]:
        return self.client.get_manifest()

    def fetch_blob(self, digest: str, size: int, write: Callable[[int, memoryview], None], *,
                   progress: Progress | None, what: str) -> None:
        self.client.fetch_blob(digest, size, write, progress=progress, what=what)

    def close(self) -> None:
        self.http.close()


def _remote(ref: str | Reference, options: RegistryOptions | None, *, push: bool) -> RegistryRemote:
    parsed = ref if isinstance(ref, Reference) else Reference.parse(ref)
    return RegistryRemote(parsed, options or RegistryOptions(), push=push)


def push(pack: str | os.PathLike[str], ref: str | Reference, *, options: RegistryOptions | None = None,
         progress: Progress | None = None) -> PushResult:
    """Upload ``pack`` to ``ref`` (``oci://HOST/REPO[:TAG]``); returns the manifest digest.

    The pack must be a well-formed canonical pack whose files match their signed
    digests (checked while they are sent); trust is not evaluated (``pull`` does that).
    Blobs the registry already has are not sent again. ``result.reference`` is the
    pull-by-digest reference.
    """
    parsed = ref if isinstance(ref, Reference) else Reference.parse(ref)
    if parsed.digest:
        from .errors import UsageError

        raise UsageError(f"push to a tag, not a digest: {parsed}", code="E_USAGE",
                         hint="the digest is computed from the pack; write oci://HOST/REPO:TAG")
    from .verify import _open

    os.close(_open(pack)[0])  # a missing pack is a usage error before any network traffic
    remote = _remote(parsed, options, push=True)
    try:
        return push_pack(pack, remote, progress=progress)
    finally:
        remote.close()


def pull(ref: str | Reference, out: str | os.PathLike[str], *, trust: Sequence[PublicKey],
         threshold: int = 1, allow_unsigned: bool = False, replace: bool = False,
         options: RegistryOptions | None = None, progress: Progress | None = None) -> PullResult:
    """Download ``ref`` into the pack file ``out``, verified with ``trust`` before it appears.

    Raises the verification error when the pack does not verify (nothing is written).
    """
    from ._transfer import check_trust_args

    check_trust_args(trust, threshold, allow_unsigned)
    remote = _remote(ref, options, push=False)
    try:
        return raise_if_failed(pull_pack(remote, out, trust=trust, threshold=threshold,
                                         allow_unsigned=allow_unsigned, replace=replace, progress=progress))
    finally:
        remote.close()


def verify_remote(ref: str | Reference, *, trust: Sequence[PublicKey], threshold: int = 1,
                  allow_unsigned: bool = False, options: RegistryOptions | None = None) -> Report:
    """``mlpack verify oci://...``: pull into a temporary file, verify, delete; the report."""
    from ._transfer import check_trust_args

    check_trust_args(trust, threshold, allow_unsigned)
    remote = _remote(ref, options, push=False)
    try:
        return pull_pack(remote, None, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned).report
    finally:
        remote.close()
