"""What counts as an obvious secret in a project's files (spec/code.md, "Secrets").

By name (``.env``, private-key files, cloud credential files) and, for files up to
:data:`SCAN_LIMIT`, by the first :data:`SCAN_HEAD` bytes (PEM private-key blocks, AWS access
key ids near a secret). Cheap on purpose: it catches the common mistakes, not every secret.
"""

from __future__ import annotations

import re

from .errors import UsageError

__all__ = ["SCAN_HEAD", "SCAN_LIMIT", "key_material", "looks_secret", "secret_error"]

SCAN_LIMIT = 1 << 20  # files up to this size have their head scanned for key material
SCAN_HEAD = 64 << 10

_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_AWS_KEY_ID = re.compile(rb"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")
_AWS_SECRET = re.compile(rb"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_KEY_NAMES = re.compile(r"(?:.*\.(?:pem|key)|id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?(?:\..*)?)")
_ENV_OK = frozenset((".env.example", ".env.sample", ".env.template"))
_AWS_NEAR = 512


def looks_secret(path: str, head: bytes, size: int) -> str | None:
    """Why ``path`` looks like a secret (spec/code.md, "Secrets"), or None.

    ``head`` is the first 64 KiB of the file, ``size`` its full size.
    """
    parts = path.split("/")
    base = parts[-1]
    low = base.lower()
    parent = parts[-2].lower() if len(parts) > 1 else ""
    if low == ".env" or (low.startswith(".env.") and low not in _ENV_OK):
        return "a .env file holds environment secrets"
    if low in (".git-credentials", ".netrc", "_netrc"):
        return f"a {low} file holds passwords or tokens"
    if parent == ".aws" and low == "credentials":
        return "AWS credentials file"
    if low.endswith((".p12", ".pfx")):
        return "a PKCS#12 key store holds a private key"
    if low == ".pypirc" and re.search(rb"(?im)^[ \t]*password[ \t]*[=:]", head):
        return "a .pypirc with a password"
    if low.endswith(".json"):
        if re.search(rb'"private_key"\s*:\s*"[^"]', head):
            return "a JSON credential file with a private key (service account)"
        if (low in ("credentials.json", "token.json") or low.startswith("client_secret")) and \
                re.search(rb'"(?:client_secret|refresh_token)"\s*:\s*"[^"]', head):
            return "an OAuth credential file with a client secret or refresh token"
        if parent == ".docker" and low == "config.json" and \
                re.search(rb'"auth"\s*:\s*"[^"]', head):
            return "a Docker config with registry credentials"
    if size <= SCAN_LIMIT or _KEY_NAMES.fullmatch(low) is not None:
        return key_material(head, aws=size <= SCAN_LIMIT)
    return None


def key_material(data: bytes, *, aws: bool = True) -> str | None:
    """Rules 9 and 10: a PEM private key, or an AWS key id with its secret key nearby."""
    if b"PRIVATE KEY" in data and _PRIVATE_KEY.search(data):
        return "it contains a private key (PEM block)"
    if aws and (b"AKIA" in data or b"ASIA" in data):
        for m in _AWS_KEY_ID.finditer(data):
            if m.group().endswith(b"EXAMPLE"):
                continue
            near = data[max(0, m.start() - _AWS_NEAR):m.end() + _AWS_NEAR]
            for s in _AWS_SECRET.finditer(near):
                word = s.group()
                if re.search(rb"[A-Z]", word) and re.search(rb"[a-z]", word) \
                        and not word.endswith(b"EXAMPLEKEY"):
                    return "it contains an AWS access key id with its secret key"
    return None


def secret_error(name: str, reason: str, where: str = "", member: str | None = None
                 ) -> UsageError:
    """E_SECRET for the code file ``name`` (pack member ``code/<name>`` unless ``member``)."""
    return UsageError(f"{name} looks like a secret ({reason}){where}; refusing to pack it",
                      code="E_SECRET", member=member or "code/" + name,
                      hint="exclude it in [code] exclude of mlpack.toml, or list it in "
                           "[code] allow-secrets if it must be packed")


