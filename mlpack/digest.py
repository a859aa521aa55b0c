"""Hash algorithms and digests (spec/signing.md, "Hash algorithms").

The allowlist is the OpenSSF Model Signing registry: ``sha256`` (default, OpenSSL
with SHA-NI), ``blake2b`` and ``blake3`` (multi-threaded, for very large weights).
The signed payload names the algorithm; anything else is ``E_ALGORITHM``.

    >>> h = new_hasher("sha256"); h.update(b"abc"); h.hexdigest()[:8]
    'ba7816bf'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Protocol

from .errors import VerificationError

__all__ = ["ALGORITHMS", "HASH_TYPES", "Hasher", "check_algorithm", "new_hasher", "root_digest", "sha256_file"]

# OMS `serialization.hash_type` -> resource `algorithm`
HASH_TYPES = {"sha256": "sha256", "blake2b": "blake2b", "blake3": "blake3"}  # as the reference signer writes
ALGORITHMS = {v: k for k, v in HASH_TYPES.items()}  # algorithm -> hash_type
DIGEST_HEX = {"sha256": 64, "blake2b": 128, "blake3": 64}
BIG = 8 << 20  # from this size blake3 hashes with all cores


class Hasher(Protocol):
    def update(self, data: bytes | memoryview | bytearray, /) -> object: ...
    def hexdigest(self) -> str: ...
    def digest(self) -> bytes: ...


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise VerificationError(
            f"hash algorithm {algorithm!r} is not allowed (allowed: {', '.join(ALGORITHMS)})",
            code="E_ALGORITHM",
        )
    return algorithm


def new_hasher(algorithm: str, size_hint: int = 0) -> Hasher:
    """A fresh streaming hasher; ``size_hint`` lets blake3 use every core for big inputs."""
    if algorithm == "sha256":  # the hot path: one call per member
        return hashlib.sha256()
    if algorithm == "blake2b":
        return hashlib.blake2b()
    if algorithm == "blake3":
        import blake3

        threads = blake3.blake3.AUTO if size_hint >= BIG else 1
        return blake3.blake3(max_threads=threads)  # type: ignore[no-any-return]
    check_algorithm(algorithm)
    raise AssertionError(algorithm)


def root_digest(digests_hex: Iterable[str]) -> str:
    """OMS root digest: sha256 over the raw bytes of every digest, in resource order."""
    h = hashlib.sha256()
    for d in digests_hex:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a whole file, hex, read in 1 MiB chunks (never the whole file at once)."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
