"""Signing keys and trust sets (spec/signing.md, "Keys").

Keys are ECDSA P-256 (the OpenSSF Model Signing key mode also accepts P-384/P-521
public keys). A key is identified by its fingerprint, ``sha256:`` + the hex SHA-256
of its SubjectPublicKeyInfo PEM, which is also the OMS bundle's public-key "hint".
The user names the keys they trust; nothing in a pack can add to that set.

    >>> private_path, public_path = generate("/tmp/demo-key")   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import IOFailure, UsageError

__all__ = ["PublicKey", "SigningKey", "fingerprint_of", "generate", "load_signing_key", "load_trust"]

_CURVES = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}


def _pem(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint_of(public_key: Any) -> str:
    return "sha256:" + hashlib.sha256(_pem(public_key)).hexdigest()


def _hash_for(public_key: Any) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in _CURVES:
        return None
    return {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[
        _CURVES[public_key.curve.name]
    ]()


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A trusted verification key."""

    key: Any
    fingerprint: str
    source: str

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            self.key.verify(signature, message, ec.ECDSA(_hash_for(self.key)))
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key loaded for signing."""

    key: Any
    fingerprint: str

    @property
    def hint(self) -> str:
        return self.fingerprint.removeprefix("sha256:")

    @property
    def signature_size(self) -> int:
        """The DER length of every signature :meth:`sign` returns (the longest possible)."""
        size = self.key.curve.key_size
        integer = (size + 7) // 8 + (1 if size % 8 == 0 else 0)  # a sign byte when the top bit can be set
        body = 2 * (2 + integer)
        return body + (2 if body < 128 else 3)

    def sign(self, message: bytes) -> bytes:
        """An ECDSA signature of fixed length :attr:`signature_size`.

        ECDSA signatures are random and their DER form is 0-2 bytes shorter when r or s
        has a leading zero; drawing again until it has the full length makes the
        signature member's size known before any file is hashed, so ``pack`` can write
        every file once, at its final offset.
        """
        from cryptography.hazmat.primitives.asymmetric import ec

        algorithm = ec.ECDSA(_hash_for(self.key.public_key()))
        while True:
            signature: bytes = self.key.sign(message, algorithm)
            if len(signature) == self.signature_size:
                return signature


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist", code="E_INPUT") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory", code="E_INPUT") from None
    except OSError as err:
        raise UsageError(f"cannot read {what} {path}: {err.strerror}", code="E_INPUT") from None
    if len(data) > 1 << 20:
        raise UsageError(f"{what} {path} is too large to be a PEM key", code="E_KEY")
    return data


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    """Load a PEM private key (password from ``MLPACK_KEY_PASSWORD`` if encrypted)."""
    from cryptography.hazmat.primitives import serialization

    p = Path(path)
    data = _read(p, "private key")
    password = os.environ.get("MLPACK_KEY_PASSWORD")
    try:
        key = serialization.load_pem_private_key(data, password.encode() if password else None)
    except TypeError:
        raise UsageError(
            f"private key {p} is encrypted", code="E_KEY", hint="set MLPACK_KEY_PASSWORD"
        ) from None
    except ValueError:
        raise UsageError(
            f"{p} is not a PEM private key (or the password is wrong)",
            code="E_KEY",
            hint="create one with: mlpack keygen -o NAME",
        ) from None
    if _hash_for(key.public_key()) is None:
        raise UsageError(
            f"{p}: only ECDSA P-256/P-384/P-521 keys can sign packs", code="E_KEY",
            hint="create one with: mlpack keygen -o NAME",
        )
    return SigningKey(key, fingerprint_of(key.public_key()))


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Load a PEM public key; a private key file is accepted too (its public half is used)."""
    from cryptography.hazmat.primitives import serialization

    p = Path(path)
    data = _read(p, "public key")
    key: Any
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = load_signing_key(p).key.public_key()
        except UsageError:
            raise UsageError(f"{p} is not a PEM public key", code="E_KEY",
                             hint="pass the .pub file written by mlpack keygen") from None
    if _hash_for(key) is None:
        raise UsageError(f"{p}: not an ECDSA P-256/P-384/P-521 key", code="E_KEY")
    return PublicKey(key, fingerprint_of(key), str(p))


def load_trust(keys: list[str], trust_dirs: list[str]) -> tuple[PublicKey, ...]:
    """The trust set: every ``--key`` file and every ``*.pub`` in each trust directory."""
    paths = [Path(k) for k in keys]
    for d in trust_dirs:
        directory = Path(d)
        if not directory.is_dir():
            raise UsageError(f"trust directory {directory} does not exist", code="E_INPUT")
        paths.extend(sorted(directory.glob("*.pub")))
    unique: dict[str, PublicKey] = {}
    for p in paths:
        pk = load_public_key(p)
        unique.setdefault(pk.fingerprint, pk)
    return tuple(unique.values())


def generate(prefix: str | os.PathLike[str], *, force: bool = False) -> tuple[Path, Path, str]:
    """Write ``PREFIX.pem`` (PKCS#8, mode 0600) and ``PREFIX.pub``; return paths and fingerprint."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    priv_path, pub_path = Path(f"{prefix}.pem"), Path(f"{prefix}.pub")
    if not force:
        for p in (priv_path, pub_path):
            if p.exists():
                raise UsageError(f"{p} already exists", code="E_EXISTS", hint="pass --force to replace it")
    from ._atomic import atomic_write_bytes

    try:
        atomic_write_bytes(priv_path, private, mode=0o600)
        atomic_write_bytes(pub_path, _pem(key.public_key()), mode=0o644)
    except FileNotFoundError:
        raise UsageError(f"directory of {priv_path} does not exist", code="E_INPUT") from None
    except OSError as err:
        raise IOFailure.from_os_error(err, f"cannot write {priv_path}") from None
    return priv_path, pub_path, fingerprint_of(key.public_key())
