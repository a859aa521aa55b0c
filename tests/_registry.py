"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution 2.8) on loopback.

:class:`Registry` writes its own config (the packaged default binds ``:5000`` with
htpasswd auth), serves from a temporary storage directory on a free 127.0.0.1 port, and
can be stopped and restarted on the same port and storage (upload sessions survive a
restart because the config fixes ``http.secret``). Optional: htpasswd (basic) auth,
bearer-token auth against :class:`TokenServer`, TLS with a self-signed certificate.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

EXE = shutil.which("docker-registry")
SKIP_REASON = ("docker-registry is not installed (apt-get install docker-registry apache2-utils: "
               "the CNCF distribution registry the OCI tests run against)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd(path: Path, user: str, password: str) -> Path:
    """A bcrypt htpasswd file (the only hash distribution accepts), via apache2-utils."""
    tool = shutil.which("htpasswd")
    if tool is None:
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
    subprocess.run([tool, "-Bbc", str(path), user, password], check=True, capture_output=True)
    return path


def self_signed(directory: Path, name: str = "registry") -> tuple[Path, Path]:
    """A P-256 certificate for 127.0.0.1 / localhost and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Registry:
    """One ``docker-registry serve`` process; ``host`` is ``127.0.0.1:PORT``."""

    root: Path
    htpasswd_file: Path | None = None
    token: TokenServer | None = None
    tls: tuple[Path, Path] | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def blobs(self) -> set[str]:
        base = self.storage / "docker/registry/v2/blobs/sha256"
        return {f"sha256:{p.parent.name}" for p in base.glob("*/*/data")} if base.exists() else set()

    def config(self) -> Path:
        lines = ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true",
                 "storage:", "  filesystem:", f"    rootdirectory: {self.storage}",
                 "  delete:", "    enabled: true", "http:", f"  addr: {self.host}",
                 "  secret: mlpack-test-secret"]
        if self.tls:
            lines += ["  tls:", f"    certificate: {self.tls[0]}", f"    key: {self.tls[1]}"]
        if self.htpasswd_file:
            lines += ["auth:", "  htpasswd:", "    realm: mlpack-test", f"    path: {self.htpasswd_file}"]
        if self.token:
            lines += ["auth:", "  token:", f"    realm: {self.token.url}/token", "    service: mlpack-test",
                      "    issuer: mlpack-test-issuer", f"    rootcertbundle: {self.token.cert}"]
        path = self.root / "config.yml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> Registry:
        assert EXE is not None
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "registry.log", "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen([EXE, "serve", str(self.config())], stdout=log, stderr=log)
        log.close()
        scheme = "https" if self.tls else "http"
        import ssl

        ctx = ssl._create_unverified_context()
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{scheme}://{self.host}/v2/", timeout=1, context=ctx)
                break
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start: {(self.root / 'registry.log').read_text()}")
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # as abrupt as a crash: connections drop mid-transfer
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_registry(root: Path, **kwargs: object) -> Registry:
    if EXE is None:
        pytest.skip(SKIP_REASON)
    return Registry(root, **kwargs).start()  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bearer tokens


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A Docker token service (the bearer flow): GET /token with basic credentials -> a JWT.

    Tokens are ES256 JWTs whose ``x5c`` header carries the signing certificate, which the
    registry checks against ``rootcertbundle``; ``access`` grants what the scope asks for.
    """

    def __init__(self, directory: Path, users: dict[str, str]) -> None:
        from cryptography.hazmat.primitives import serialization

        self.cert, key_path = self_signed(directory, "token")
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        from cryptography import x509

        self.der = x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(serialization.Encoding.DER)
        self.users = users
        self.requests: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(name) == password:
                        user = name
                if user is None:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": server.issue(user, query)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def issue(self, user: str, query: dict[str, list[str]]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.der).decode()]}
        claims = {"iss": "mlpack-test-issuer", "sub": user, "aud": query.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr,call-arg]
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
