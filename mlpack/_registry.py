"""The OCI distribution API client behind :mod:`mlpack.oci` (spec/distribution.md).

References, the basic and bearer-token challenge flow (credentials come from
:mod:`mlpack._credentials`), and the blob and manifest endpoints: HEAD before
upload, chunked uploads that resume from the upload session's ``Range``, downloads that
resume with a ``Range`` request. Every blob is checked against its sha256 while it is
sent or received.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from . import _http
from ._credentials import DOCKER_HUB, Credentials, find_credentials
from .errors import IOFailure, MlpackError, UsageError, VerificationError

__all__ = ["Credentials", "Reference", "RegistryClient", "find_credentials"]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
MAX_MANIFEST = 32 << 20
MAX_SMALL = 1 << 20  # error bodies, token responses, helper output
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")


@dataclass(frozen=True, kw_only=True, slots=True)
class Reference:
    """``oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]``; the tag defaults to ``latest``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not text.startswith("oci://"):
            raise UsageError(f"{text!r} is not an oci:// reference", code="E_USAGE",
                             hint="write oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:...")
        rest = text[len("oci://"):]
        digest = None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise _bad_ref(text, "the digest must be sha256: followed by 64 lowercase hex digits")
        host, sep, path = rest.partition("/")
        if not sep or not _HOST.fullmatch(host):
            raise _bad_ref(text, "it names no registry host")
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise _bad_ref(text, f"tag {tag!r} is not valid ([A-Za-z0-9_.-], at most 128)")
        if not _REPOSITORY.fullmatch(path) or len(path) > 255:
            raise _bad_ref(text, f"repository {path!r} is not valid (lowercase a-z 0-9 . _ - and /)")
        if host in DOCKER_HUB and "/" not in path:
            path = "library/" + path
        return cls(registry=host, repository=path, tag=tag if tag or digest else "latest", digest=digest)

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.registry in DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What the manifest endpoint takes: the digest if given, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return Reference(registry=self.registry, repository=self.repository, tag=None, digest=digest)

    def __str__(self) -> str:
        return (f"oci://{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))


def _bad_ref(text: str, why: str) -> UsageError:
    return UsageError(f"bad reference {text!r}: {why}", code="E_USAGE",
                      hint="write oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:...")


# ------------------------------------------------------------------------------------ challenges


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in re.finditer(r'([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', rest)}
    return scheme.lower(), params


# ----------------------------------------------------------------------------------------- client

Progress = Callable[[int], None]


class RegistryClient:
    """One repository of one registry, with the credentials and retries of one command."""

    def __init__(self, ref: Reference, http: _http.Http, *, credentials: Credentials | None = None,
                 retries: int = 3, backoff: float = 0.5) -> None:
        self.ref = ref
        self.http = http
        self.credentials = credentials
        self.retries = retries
        self.backoff = backoff
        self._auth: str | None = None  # the Authorization header value in use
        self._scheme: str | None = None
        self._challenge: dict[str, str] = {}
        self.resumed = 0  # uploads and downloads resumed after a dropped connection

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return self.http.base(self.ref.api_host)

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.ref.repository}/{path}"

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "mlpack"}
        if self._auth:
            headers["Authorization"] = self._auth
        headers.update(extra or {})
        return headers

    def _retrying(self, what: Callable[[], _http.Response]) -> _http.Response:
        """Run an idempotent request, retrying transport failures, 429 and 5xx with backoff."""
        for attempt in range(self.retries + 1):
            try:
                response = what()
            except IOFailure as err:
                if err.code != "E_NETWORK" or attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
                continue
            if (response.status == 429 or response.status >= 500) and attempt < self.retries:
                self.http.discard(response)
                time.sleep(self.backoff * 2**attempt)
                continue
            return response
        raise AssertionError("unreachable")

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             body: bytes | None = None, ok: tuple[int, ...] = (200,), what: str = "") -> _http.Response:
        """An idempotent request with authentication and retries; raises on a status not in ``ok``."""
        for attempt in range(2):
            response = self._retrying(lambda: self.http.request(method, url, headers=self._headers(headers),
                                                                body=body))
            if response.status == 401 and attempt == 0 and self._answer(response):
                continue
            if response.status not in ok:
                raise self.error(response, what or f"{method} {url}")
            return response
        raise AssertionError("unreachable")

    def _answer(self, response: _http.Response) -> bool:
        """Act on a 401 challenge; True when a retry with new credentials makes sense."""
        header = response.header("WWW-Authenticate") or ""
        self.http.discard(response)
        scheme, params = parse_challenge(header)
        if self._auth is not None and scheme == "basic":
            return False  # those credentials were refused
        creds = self.credentials
        if scheme == "basic":
            if creds is None:
                return False
            token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            self._auth = f"Basic {token}"
            return True
        if scheme == "bearer" and "realm" in params:
            scope = params.get("scope") or f"repository:{self.ref.repository}:pull"
            if self._challenge.get("scope") == scope and self._auth is not None:
                return False  # a fresh token for this scope was refused
            self._challenge = dict(params, scope=scope)
            self._auth = f"Bearer {self._token(params['realm'], params.get('service'), scope)}"
            return True
        return False

    def authorize(self, actions: str) -> None:
        """Learn the auth scheme from ``GET /v2/`` and get a token for ``actions`` up front.

        Pushing streams large bodies: a 401 after a gigabyte would waste it, so the token
        (with the push scope) is obtained before any upload.
        """
        response = self._retrying(lambda: self.http.request("GET", f"{self.base}/v2/", headers=self._headers()))
        if response.status == 200:
            self.http.discard(response)
            return
        if response.status != 401:
            raise self.error(response, "GET /v2/")
        header = response.header("WWW-Authenticate") or ""
        self.http.discard(response)
        scheme, params = parse_challenge(header)
        if scheme == "bearer" and "realm" in params:
            scope = f"repository:{self.ref.repository}:{actions}"
            self._challenge = dict(params, scope=scope)
            self._auth = f"Bearer {self._token(params['realm'], params.get('service'), scope)}"
        elif scheme == "basic":
            if self.credentials is None:
                raise self._no_credentials()
            token = base64.b64encode(f"{self.credentials.username}:{self.credentials.password}".encode())
            self._auth = f"Basic {token.decode()}"
        else:
            raise IOFailure(f"{self.ref.registry} asks for unsupported authentication {header[:60]!r}",
                            code="E_REGISTRY")
        check = self._retrying(lambda: self.http.request("GET", f"{self.base}/v2/", headers=self._headers()))
        self.http.discard(check)
        if check.status in (401, 403) and scheme == "basic":
            raise self._refused()

    def _token(self, realm: str, service: str | None, scope: str) -> str:
        query = {"scope": scope, **({"service": service} if service else {})}
        creds = self.credentials
        headers = {"User-Agent": "mlpack"}
        if creds is not None and creds.identity_token:
            form = urlencode({"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                              "client_id": "mlpack", **query}).encode()
            response = self._retrying(lambda: self.http.request(
                "POST", realm, body=form, headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}))
        else:
            if creds is not None:
                basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
                headers["Authorization"] = f"Basic {basic}"
            sep = "&" if urlsplit(realm).query else "?"
            response = self._retrying(lambda: self.http.request("GET", realm + sep + urlencode(query),
                                                                headers=headers))
        if response.status in (401, 403):
            self.http.discard(response)
            raise self._refused() if creds is not None else self._no_credentials()
        if response.status != 200:
            raise self.error(response, "token request")
        try:
            doc = json.loads(response.read(MAX_SMALL))
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise IOFailure(f"the token service {realm} returned no token", code="E_REGISTRY")
        return token

    def _no_credentials(self) -> UsageError:
        return UsageError(f"{self.ref.registry} requires authentication", code="E_AUTH",
                          hint="log in with `docker login`, or set MLPACK_REGISTRY_USERNAME and "
                               "MLPACK_REGISTRY_PASSWORD")

    def _refused(self) -> UsageError:
        source = f" (from {self.credentials.source})" if self.credentials else ""
        return UsageError(f"{self.ref.registry} refused the credentials{source}", code="E_AUTH",
                          hint="check the user name and password, then retry")

    def error(self, response: _http.Response, what: str) -> MlpackError:
        """The error for an unexpected status, with the registry's own error code when it sent one."""
        try:
            doc = json.loads(response.read(MAX_SMALL) or b"{}")
            first = doc.get("errors", [{}])[0]
            code, message = str(first.get("code", "")), str(first.get("message", ""))
        except (ValueError, AttributeError, IndexError, TypeError, MlpackError):
            code, message = "", ""
        detail = f"{code}: {message}" if code else f"HTTP {response.status}"
        detail = " ".join(detail.split())[:200]
        ref = self.ref
        if response.status == 401:
            if self.credentials is None:
                return self._no_credentials()
            return self._refused()
        if response.status == 403:
            return UsageError(f"{ref.registry} denied {what} on {ref.repository} ({detail})", code="E_AUTH",
                              hint="these credentials lack permission for this repository")
        if response.status == 404:
            return UsageError(f"{what}: not found in {ref.registry}/{ref.repository} ({detail})",
                              code="E_NOT_FOUND", hint="check the repository, tag or digest")
        if code == "DIGEST_INVALID":
            return VerificationError(f"{what}: the registry computed another digest ({detail})",
                                     code="E_DIGEST", hint="the file changed while it was sent; retry")
        return IOFailure(f"{what}: {ref.registry} answered {detail}", code="E_REGISTRY",
                         hint="retry later; if it persists, check the registry's logs")

    # -- blobs -------------------------------------------------------------------------------------

    def has_blob(self, digest: str, size: int) -> bool:
        response = self.send("HEAD", self.url(f"blobs/{digest}"), ok=(200, 404), what=f"HEAD blob {digest[:19]}")
        self.http.discard(response)
        length = response.header("Content-Length")
        return response.status == 200 and (length is None or length == str(size))

    def upload_blob(self, digest: str, size: int, read: Callable[[int, int], bytes], *,
                    chunk_size: int, progress: Progress | None = None, what: str = "") -> None:
        """Upload ``size`` bytes read by ``read(offset, n)`` as blob ``digest``.

        POST opens a session; PATCH sends ``chunk_size`` bytes at a time (streamed in
        1 MiB pieces); after a dropped connection, GET on the session gives the bytes it
        holds (``Range``) and the upload goes on from there, or starts over when the
        registry no longer knows the session (distribution drops a session whose last
        PATCH was cut short). ``progress`` gets the size of each acknowledged chunk. The
        sha256 of the bytes sent is compared with ``digest`` before the final PUT commits.
        """
        location = self._start_upload()
        confirmed, hasher = 0, hashlib.sha256()
        failures = 0
        while confirmed < size or size == 0:
            end = min(size, confirmed + chunk_size)
            sent = hasher.copy()
            try:
                location = self._patch(location, confirmed, end, read, sent, progress)
            except IOFailure as err:
                if err.code != "E_NETWORK" or failures >= self.retries:
                    raise
                failures += 1
                time.sleep(self.backoff * 2 ** (failures - 1))
                location, held = self._upload_status(location)
                if held is None or held > end or held < confirmed:
                    # the session is gone or inconsistent: start over
                    location, held, hasher = self._start_upload(), 0, hashlib.sha256()
                    confirmed = 0
                self.resumed += 1
                _catch_up(hasher, read, confirmed, held)
                confirmed = held
                continue
            hasher, confirmed = sent, end
            if size == 0:
                break
        if f"sha256:{hasher.hexdigest()}" != digest:
            self._cancel(location)
            raise VerificationError(f"{what or digest} changed: its sha256 is not {digest}", code="E_DIGEST",
                                    member=what or None, hint="the pack does not match its signed digests")
        sep = "&" if urlsplit(location).query else "?"
        self.send("PUT", location + sep + urlencode({"digest": digest}), body=b"", ok=(201,),
                  what=f"commit blob {what or digest}")

    def _start_upload(self) -> str:
        response = self.send("POST", self.url("blobs/uploads/"), body=b"", ok=(202,), what="start upload")
        self.http.discard(response)
        return self._absolute(response.header("Location"))

    def _absolute(self, location: str | None) -> str:
        if not location:
            raise IOFailure(f"{self.ref.registry} sent no upload location", code="E_REGISTRY")
        return location if "://" in location else self.base + location

    def _patch(self, location: str, start: int, end: int, read: Callable[[int, int], bytes],
               hasher: object, progress: Progress | None) -> str:
        def pieces() -> Iterator[bytes]:
            pos = start
            while pos < end:
                data = read(pos, min(1 << 20, end - pos))
                if not data:
                    raise IOFailure("the pack file ended early while uploading", code="E_IO")
                hasher.update(data)  # type: ignore[attr-defined]
                yield data
                pos += len(data)

        headers = {"Content-Type": "application/octet-stream"}
        if end > start:
            headers["Content-Range"] = f"{start}-{end - 1}"
        response = self.http.request("PATCH", location, headers=self._headers(headers), body=pieces(),
                                     length=end - start)
        if response.status == 401 and self._answer(response):
            raise IOFailure("re-authenticated during upload", code="E_NETWORK")  # resume from the session
        if response.status != 202:
            raise self.error(response, "upload chunk")
        self.http.discard(response)
        if progress is not None:
            progress(end - start)  # bytes the registry acknowledged
        return self._absolute(response.header("Location"))

    def _upload_status(self, location: str) -> tuple[str, int | None]:
        """GET on the session: its new location and the number of bytes it holds (None: gone)."""
        response = self.send("GET", location, ok=(204, 404), what="upload status")
        self.http.discard(response)
        if response.status == 404:
            return location, None
        held = response.header("Range") or "0-0"
        match = re.fullmatch(r"(?:bytes=)?0-(\d+)", held)
        count = int(match.group(1)) + 1 if match else None
        if count == 1:
            count = 0  # "0-0" also means empty (distribution); re-sending one byte is harmless
        return self._absolute(response.header("Location") or location), count

    def _cancel(self, location: str) -> None:
        try:
            response = self.http.request("DELETE", location, headers=self._headers())
            self.http.discard(response)
        except MlpackError:
            pass

    def fetch_blob(self, digest: str, size: int, write: Callable[[int, memoryview], None], *,
                   progress: Progress | None = None, what: str = "") -> None:
        """Stream blob ``digest`` into ``write(offset, data)``, checking size and sha256.

        A dropped connection is retried with ``Range: bytes=N-`` from the last byte
        written; the hash covers every byte once, in order.
        """
        hasher = hashlib.sha256()
        pos = failures = 0
        buffer = memoryview(bytearray(4 << 20))
        while True:
            headers = {"Range": f"bytes={pos}-"} if pos else None
            response = self.send("GET", self.url(f"blobs/{digest}"), headers=headers, ok=(200, 206),
                                 what=f"blob {what or digest}")
            if pos and response.status != 206:
                self.http.discard(response)  # no range support: start over
                pos, hasher = 0, hashlib.sha256()
                continue
            try:
                while pos < size:
                    n = response.raw.readinto(buffer[: min(len(buffer), size - pos)])
                    if not n:
                        raise ConnectionResetError("body ended early")
                    chunk = buffer[:n]
                    hasher.update(chunk)
                    write(pos, chunk)
                    pos += n
                    if progress is not None:
                        progress(n)
                extra = response.raw.read(1)
            except (OSError, http.client.HTTPException) as err:
                self.http.drop(*urlsplit(response.url)[:2])
                failures += 1
                if failures > self.retries:
                    raise _http.network_error(err, self.base) from None
                self.resumed += 1
                time.sleep(self.backoff * 2 ** (failures - 1))
                continue
            if extra:
                self.http.drop(*urlsplit(response.url)[:2])
                raise VerificationError(f"blob {what or digest} is longer than its {size} bytes", code="E_DIGEST",
                                        member=what or None)
            break
        if f"sha256:{hasher.hexdigest()}" != digest:
            raise VerificationError(
                f"blob {what or digest} from the registry does not match its digest {digest[:19]}...",
                code="E_DIGEST", member=what or None,
                hint="the registry's copy is corrupt; push the pack again")

    # -- manifests -----------------------------------------------------------------------------

    def put_manifest(self, reference: str, data: bytes) -> str:
        response = self.send("PUT", self.url(f"manifests/{reference}"), body=data,
                             headers={"Content-Type": MANIFEST_TYPE}, ok=(201,), what="PUT manifest")
        self.http.discard(response)
        return response.header("Docker-Content-Digest") or f"sha256:{hashlib.sha256(data).hexdigest()}"

    def get_manifest(self) -> tuple[bytes, str]:
        """The manifest bytes and their digest; checked against the reference's digest if it has one."""
        ref = self.ref
        response = self.send("GET", self.url(f"manifests/{ref.reference}"), headers={"Accept": MANIFEST_TYPE},
                             ok=(200,), what=f"manifest {ref.reference}")
        data = response.read(MAX_MANIFEST)
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if ref.digest and digest != ref.digest:
            raise VerificationError(f"the manifest served for {ref.digest} has digest {digest}", code="E_DIGEST",
                                    hint="the registry returned other content than asked for")
        return data, digest


def _catch_up(hasher: object, read: Callable[[int, int], bytes], start: int, end: int) -> None:
    pos = start
    while pos < end:
        data = read(pos, min(1 << 20, end - pos))
        if not data:
            raise IOFailure("the pack file ended early while uploading", code="E_IO")
        hasher.update(data)  # type: ignore[attr-defined]
        pos += len(data)
