"""A small HTTP/1.1 client for registries: kept-alive connections, streamed bodies, TLS options.

Only what the OCI distribution API needs, on the standard library: ``http.client`` with
one connection per origin (reused while responses are read to the end), request bodies
streamed from an iterable of buffers (bounded memory), responses read into a caller's
buffer, redirects followed by hand (the ``Authorization`` header is dropped when the
origin changes, as registries redirect blob downloads to object stores).

Transport failures become :class:`mlpack.errors.IOFailure` with code ``E_NETWORK`` (or
``E_TLS`` for a certificate problem); HTTP statuses are the caller's business.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import IOFailure

__all__ = ["Http", "Response", "TlsOptions", "is_loopback"]

TIMEOUT = 60.0
MAX_REDIRECTS = 5
LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1`` (with or without a port)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    return name in LOOPBACK or name.startswith("127.")


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsOptions:
    """How to reach a registry, after the Docker/ORAS conventions.

    ``plain_http``: speak http, never https. ``insecure``: https without verifying the
    certificate. ``ca_file``: extra trusted CA certificates (PEM). Without
    ``plain_http``, a loopback host is tried with https and falls back to http when it
    does not speak TLS (Docker does the same for ``localhost``).
    """

    plain_http: bool = False
    insecure: bool = False
    ca_file: str | None = None

    @classmethod
    def from_env(cls, *, plain_http: bool | None = None, insecure: bool | None = None,
                 ca_file: str | None = None) -> TlsOptions:
        """Options given, else ``MLPACK_REGISTRY_PLAIN_HTTP`` / ``_INSECURE`` / ``_CA_FILE``."""
        def flag(name: str) -> bool:
            return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")

        return cls(plain_http=flag("MLPACK_REGISTRY_PLAIN_HTTP") if plain_http is None else plain_http,
                   insecure=flag("MLPACK_REGISTRY_INSECURE") if insecure is None else insecure,
                   ca_file=ca_file or os.environ.get("MLPACK_REGISTRY_CA_FILE") or None)


@dataclass(slots=True)
class Response:
    """A response whose body is still on the wire (read it, or :meth:`Http.discard` it)."""

    status: int
    headers: Mapping[str, str]
    url: str
    raw: http.client.HTTPResponse = field(repr=False)

    def header(self, name: str) -> str | None:
        return self.raw.getheader(name)

    def read(self, limit: int) -> bytes:
        """The whole body, refusing one over ``limit`` bytes (a hostile server)."""
        length = self.raw.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise IOFailure(f"{self.url}: response of {length} bytes exceeds {limit}", code="E_REGISTRY")
        try:
            data = self.raw.read(limit + 1)
        except (OSError, http.client.HTTPException) as err:
            raise network_error(err, self.url) from None
        if len(data) > limit:
            raise IOFailure(f"{self.url}: response exceeds {limit} bytes", code="E_REGISTRY")
        return data


class Http:
    """Connections to the origins one command talks to; not thread-safe."""

    def __init__(self, tls: TlsOptions, *, timeout: float = TIMEOUT) -> None:
        self.tls = tls
        self.timeout = timeout
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self._schemes: dict[str, str] = {}  # host -> the scheme that worked
        self._pending: dict[tuple[str, str], http.client.HTTPResponse] = {}  # unread bodies
        self._context: ssl.SSLContext | None = None

    # -- scheme and TLS ---------------------------------------------------------------------

    def base(self, host: str) -> str:
        """``https://host`` or ``http://host`` for a registry host, probing loopback once."""
        if self.tls.plain_http:
            return f"http://{host}"
        scheme = self._schemes.get(host)
        if scheme is None:
            scheme = self._probe(host) if is_loopback(host) else "https"
            self._schemes[host] = scheme
        return f"{scheme}://{host}"

    def _probe(self, host: str) -> str:
        """https if the loopback server completes a TLS handshake, http if it speaks plain text."""
        conn = self._connection("https", host)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError:
            return "https"  # it speaks TLS: the request will report the certificate problem
        except ssl.SSLError:
            self.drop("https", host)
            return "http"
        except OSError:
            self.drop("https", host)
            return "http"  # unreachable: the request reports it, for the loopback default
        return "https"

    def context(self, host: str) -> ssl.SSLContext:
        if self._context is None:
            ctx = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
            if self.tls.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.tls.ca_file:
                try:
                    ctx.load_verify_locations(self.tls.ca_file)
                except (OSError, ssl.SSLError) as err:
                    from .errors import UsageError

                    raise UsageError(f"cannot load CA file {self.tls.ca_file}: {err}", code="E_INPUT") from None
            self._context = ctx
        for base in (Path.home() / ".docker" / "certs.d", Path("/etc/docker/certs.d")):
            ca = base / host / "ca.crt"  # Docker's per-registry CA convention
            if ca.is_file():
                self._context.load_verify_locations(str(ca))
        return self._context

    # -- connections --------------------------------------------------------------------------

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn = self._connections.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self.context(netloc),
                                                   blocksize=1 << 20)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=1 << 20)
            self._connections[(scheme, netloc)] = conn
        return conn

    def _settle(self, scheme: str, netloc: str) -> None:
        """Finish the previous response on this connection: read a small rest, else reconnect."""
        raw = self._pending.pop((scheme, netloc), None)
        if raw is None or raw.isclosed():
            return
        try:
            rest = raw.read(1 << 20)
            if not raw.isclosed() and rest:
                raw.close()
                self.drop(scheme, netloc)
        except (OSError, http.client.HTTPException):
            self.drop(scheme, netloc)

    def drop(self, scheme: str, netloc: str) -> None:
        self._pending.pop((scheme, netloc), None)
        conn = self._connections.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def discard(self, response: Response) -> None:
        """Read and drop what is left of a body (small) so the connection can be reused."""
        try:
            while response.raw.read(1 << 16):
                pass
        except (OSError, http.client.HTTPException):
            parts = urlsplit(response.url)
            self.drop(parts.scheme, parts.netloc)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes | memoryview] | None = None,
        length: int | None = None,
        follow: bool = True,
    ) -> Response:
        """Send one request and return the response with its body unread.

        ``body`` may be bytes or an iterable of buffers (streamed; pass ``length``).
        Redirects (301, 302, 303, 307, 308) are followed for GET and HEAD when ``follow``.
        """
        sent_headers = dict(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            self._settle(parts.scheme, parts.netloc)
            conn = self._connection(parts.scheme, parts.netloc)
            if body is not None:
                size = len(body) if isinstance(body, bytes) else length
                assert size is not None, "a streamed body needs its length"
                sent_headers["Content-Length"] = str(size)
            try:
                conn.request(method, target or "/", body=body, headers=sent_headers)
                raw = conn.getresponse()
            except ssl.SSLCertVerificationError as err:
                self.drop(parts.scheme, parts.netloc)
                raise IOFailure(
                    f"TLS certificate of {parts.netloc} is not trusted: {err.verify_message}",
                    code="E_TLS",
                    hint="pass --ca-file CA.pem (or set SSL_CERT_FILE); --insecure skips the check") from None
            except (OSError, http.client.HTTPException) as err:
                self.drop(parts.scheme, parts.netloc)
                raise network_error(err, f"{parts.scheme}://{parts.netloc}") from None
            response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, url, raw)
            self._pending[(parts.scheme, parts.netloc)] = raw
            if raw.will_close:
                self._connections.pop((parts.scheme, parts.netloc), None)
            if follow and raw.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                location = raw.getheader("Location")
                self.discard(response)
                if not location:
                    return response
                new = urlsplit(location if "://" in location else f"{parts.scheme}://{parts.netloc}{location}")
                if (new.scheme, new.netloc) != (parts.scheme, parts.netloc):
                    sent_headers.pop("Authorization", None)  # never leak credentials to another origin
                url = new.geturl()
                continue
            return response
        raise IOFailure(f"{url}: more than {MAX_REDIRECTS} redirects", code="E_REGISTRY")


def network_error(err: BaseException, origin: str) -> IOFailure:
    if isinstance(err, ssl.SSLError):
        return IOFailure(f"TLS failure talking to {origin}: {err.reason or err}", code="E_TLS",
                         hint="use --plain-http for a registry that speaks http")
    if isinstance(err, socket.gaierror):
        reason = "unknown host"
    elif isinstance(err, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(err, (TimeoutError, socket.timeout)):
        reason = "timed out"
    elif isinstance(err, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected,
                          http.client.IncompleteRead)):
        reason = "connection dropped"
    else:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return IOFailure(f"cannot reach {origin}: {reason}", code="E_NETWORK",
                     hint="check the address and your network, then retry")
