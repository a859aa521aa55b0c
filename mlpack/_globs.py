"""The glob patterns of ``[code] include``/``exclude`` (spec/code.md, "Patterns").

``**`` matches any number of directories, ``*`` and ``?`` never cross ``/``, ``[...]`` is a
character class; a pattern is translated to one anchored regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import UsageError

__all__ = ["GlobSet", "translate_glob"]

def _bad_glob(pattern: str, key: str, why: str) -> UsageError:
    return UsageError(f"mlpack.toml: [code] {key} pattern {pattern!r} {why}", code="E_RECIPE",
                      hint="see spec/code.md, 'Patterns', for the glob syntax")


def translate_glob(pattern: str, key: str = "include") -> tuple[str, bool]:
    """A recipe glob as ``(regex, directory_only)``; the regex matches a whole relative path.

    ``**`` spans any number of directories, ``*`` and ``?`` stay within one, ``[...]`` is a
    class, ``\\`` quotes the next character. A pattern without a ``/`` (other than a trailing
    one) matches at any depth; a trailing ``/`` or ``/**`` makes it match directories only
    (and so every file below them). Raises ``E_RECIPE`` for a pattern that cannot mean a path.
    """
    if not pattern.strip():
        raise _bad_glob(pattern, key, "is empty")
    if pattern.startswith("!"):
        raise _bad_glob(pattern, key, "starts with '!': negation is not supported (use exclude)")
    body, dir_only = pattern, False
    anchored = "/" in body.rstrip("/")
    if body.endswith(("/**", "/")):
        body, dir_only = body.removesuffix("/**").rstrip("/"), True
    body = body.lstrip("/")
    if body == "":
        return ".*", False  # "/", "/**": everything
    if body == "**":
        return ".*", dir_only  # "**" every file, "**/" every file in a directory
    segments = body.split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise _bad_glob(pattern, key, "has an empty, '.' or '..' component")
    out = [] if anchored else ["(?:.*/)?"]
    for i, seg in enumerate(segments):
        if seg == "**":
            out.append("(?:.*/)?" if i < len(segments) - 1 else ".*")
            continue
        out.append(_segment(seg, pattern, key))
        if i < len(segments) - 1:
            out.append("/")
    return "".join(out), dir_only


def _segment(seg: str, pattern: str, key: str) -> str:
    out, i = [], 0
    while i < len(seg):
        c = seg[i]
        if c == "\\":
            if i + 1 == len(seg):
                raise _bad_glob(pattern, key, "ends with a lone backslash")
            out.append(re.escape(seg[i + 1]))
            i += 2
            continue
        if c == "*":
            while i + 1 < len(seg) and seg[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            negate = seg[i + 1:i + 2] in ("!", "^")
            first = i + 2 if negate else i + 1
            end = seg.find("]", first + 1)  # a "]" right after "[" or "[!" is a member
            if end < 0:
                raise _bad_glob(pattern, key, "has an unclosed '['")
            inner = seg[first:end]
            body = "".join("-" if ch == "-" else re.escape(ch) for ch in inner)
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class GlobSet:
    """Patterns of one recipe list; :meth:`matches` is True when any pattern matches a path."""

    __slots__ = ("_dir_re", "_dirs", "_file_re", "patterns")

    def __init__(self, patterns: Sequence[str], key: str = "include") -> None:
        self.patterns = tuple(patterns)
        compiled = [translate_glob(p, key) for p in self.patterns]
        files = [rx for rx, dir_only in compiled if not dir_only]
        self._file_re = re.compile("|".join(files), re.DOTALL) if files else None
        alt = "|".join(rx for rx, _ in compiled)
        self._dir_re = re.compile(alt, re.DOTALL) if compiled else None
        self._dirs: dict[str, bool] = {"": False}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches_dir(self, directory: str) -> bool:
        """True when a pattern matches ``directory`` or one of its parents (all files below)."""
        hit = self._dirs.get(directory)
        if hit is None:
            head, _, _ = directory.rpartition("/")
            hit = self.matches_dir(head) or bool(self._dir_re and self._dir_re.fullmatch(directory))
            self._dirs[directory] = hit
        return hit

    def matches(self, path: str) -> bool:
        """True when a pattern matches the file ``path`` (relative, ``/``-separated)."""
        if self._file_re is not None and self._file_re.fullmatch(path):
            return True
        return self.matches_dir(path.rpartition("/")[0])


