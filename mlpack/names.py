"""Portable file names (spec/archive.md, "Names").

The same rules apply to names found on disk when packing and to names read from
*signed* content when verifying: signed is not the same as safe.

    >>> check_name("weights/model.safetensors")
    >>> check_names(["a", "A"])
    Traceback (most recent call last):
    ...
    mlpack.errors.VerificationError: [E_NAME_COLLISION] 'A' collides with 'a' (case or Unicode form)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from .errors import VerificationError

__all__ = ["MAX_COMPONENT", "MAX_DEPTH", "MAX_NAME", "RESERVED_PREFIX", "check_name", "check_names"]

MAX_NAME = 1024
MAX_COMPONENT = 255
MAX_DEPTH = 32
RESERVED_PREFIX = ".mlpack/"

_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f*?"<>|]')
_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)


def _fail(code: str, name: str, why: str) -> VerificationError:
    return VerificationError(f"{name!r}: {why}", code=code, member=name)


def check_name(name: str) -> None:
    """Raise :class:`VerificationError` unless ``name`` is a portable relative path.

    ``E_PATH`` marks names that would escape a directory (absolute, ``..``, backslash,
    drive letters); ``E_NAME`` every other rule; ``E_LIMIT`` the length limits.
    """
    if not name:
        raise _fail("E_PATH", name, "empty name")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("E_NAME", name, "not valid UTF-8") from None
    if name.startswith("/"):
        raise _fail("E_PATH", name, "absolute path")
    if "\\" in name or ":" in name:
        raise _fail("E_PATH", name, "backslash or colon (drive letter, NTFS stream)")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise _fail("E_PATH", name, "empty, '.' or '..' path component")
    if len(encoded) > MAX_NAME:
        raise _fail("E_LIMIT", name, f"longer than {MAX_NAME} bytes")
    if len(parts) > MAX_DEPTH:
        raise _fail("E_LIMIT", name, f"deeper than {MAX_DEPTH} components")
    bad = _FORBIDDEN.search(name)
    if bad:
        ch = bad.group()
        why = "control character in name" if ch < " " or ch == "\x7f" else f"character {ch!r} is not portable"
        raise _fail("E_NAME", name, why)
    for part in parts:
        if len(part) > MAX_COMPONENT // 4 and len(part.encode("utf-8")) > MAX_COMPONENT:
            raise _fail("E_LIMIT", name, f"a component is longer than {MAX_COMPONENT} bytes")
        if part[-1] in ". ":
            raise _fail("E_NAME", name, "component ends with '.' or space")
        stem = part.split(".", 1)[0]
        if 3 <= len(stem) <= 4 and stem.upper() in _DEVICE_NAMES:
            raise _fail("E_NAME", name, "Windows device name")
    key = _fold(name)
    if key == RESERVED_PREFIX[:-1] or key.startswith(RESERVED_PREFIX):
        raise _fail("E_PATH", name, f"{RESERVED_PREFIX} is reserved for the signature")


def _fold(name: str) -> str:
    if name.isascii():  # NFC is the identity on ASCII
        return name.lower()
    return unicodedata.normalize("NFC", name).casefold()


def check_names(names: Iterable[str]) -> None:
    """Check every name, then that no two collide on a case-insensitive or NFC file system.

    A file name that is also the directory of another file (``a`` and ``a/b``) is a
    collision too: no file system can hold both.
    """
    seen: dict[str, str] = {}
    for name in names:
        check_name(name)
        folded = _fold(name)
        if folded in seen:
            other = seen[folded]
            code = "E_DUPLICATE" if other == name else "E_NAME_COLLISION"
            why = "listed twice" if other == name else f"collides with {other!r} (case or Unicode form)"
            raise VerificationError(f"{name!r} {why}", code=code, member=name)
        seen[folded] = name
    dirs: dict[str, str] = {}
    for folded, name in seen.items():
        parts = folded.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), name)
    for folded, name in seen.items():
        if folded in dirs:
            raise VerificationError(
                f"{name!r} is a file and also the directory of {dirs[folded]!r}",
                code="E_NAME_COLLISION",
                member=name,
            )
