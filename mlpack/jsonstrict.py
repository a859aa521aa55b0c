"""Strict JSON for hostile input (spec/verification.md, step 3).

Python's ``json`` keeps the last of duplicate keys, accepts ``NaN`` and ``Infinity``
and overflows the stack on deep nesting. Packs are parsed with :func:`loads`, which
rejects all three and caps size and depth before parsing, and with :func:`dumps`,
the one canonical serialisation used for everything mlpack signs or hashes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import VerificationError

__all__ = ["dumps", "loads"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return out


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(obj: Any) -> bool:
    """Escaped pairs decode to one code point; a lone half stays a surrogate."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _too_deep(obj: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: no recursion)."""
    level = [obj] if type(obj) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) in (dict, list):
                    below.append(child)
        level = below
    return False


def loads(data: bytes, *, what: str, max_size: int, max_depth: int = 16, member: str | None = None) -> Any:
    """Parse ``data`` as strict UTF-8 JSON or raise ``E_MANIFEST`` / ``E_LIMIT``."""
    if len(data) > max_size:
        raise VerificationError(
            f"{what} is {len(data)} bytes, over the limit of {max_size}", code="E_LIMIT", member=member
        )
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
        )
    except RecursionError:
        value = None
        too_deep = True
    except ValueError as err:
        raise VerificationError(
            f"{what} is not valid strict JSON: {err}", code="E_MANIFEST", member=member
        ) from None
    else:
        too_deep = _too_deep(value, max_depth)
        if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
            raise VerificationError(f"{what} contains an escaped lone surrogate (not valid Unicode)",
                                    code="E_MANIFEST", member=member)
    if too_deep:
        raise VerificationError(f"{what} nests deeper than {max_depth} levels", code="E_MANIFEST", member=member)
    return value


def dumps(obj: Any) -> bytes:
    """Canonical bytes: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
