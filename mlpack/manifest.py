"""The mlpack manifest, ``mlpack.json`` (spec/manifest.md).

Frozen records with ``from_dict``/``to_dict``; parsing goes through typed getters that
name the offending key. Unknown top-level fields are ignored (forward compatibility
within a major version); an unknown major version is refused.

    >>> m = Manifest(name="demo", files=FilesSummary(count=1, size=10))
    >>> Manifest.from_dict(m.to_dict()) == m
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import jsonstrict
from .archive import MANIFEST_NAME
from .errors import VerificationError

__all__ = ["RESERVED_SECTIONS", "SECTIONS", "FilesSummary", "Manifest", "WeightsFile"]

SPEC_VERSION = "1.1"
MAX_MANIFEST = 16 << 20
RESERVED_SECTIONS = ("code", "environment", "datasets", "hardware", "training", "metrics")
SECTIONS = RESERVED_SECTIONS + ("entrypoints",)
"""The sections version 1.1 defines: the six reserved in 1.0, plus ``entrypoints``."""
WEIGHT_FORMATS = ("safetensors", "onnx")
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def _err(path: str, why: str) -> VerificationError:
    return VerificationError(f"{MANIFEST_NAME}: {path} {why}", code="E_MANIFEST", member=MANIFEST_NAME)


def _get(d: Mapping[str, Any], key: str, kind: type, path: str, *, required: bool = True) -> Any:
    if key not in d:
        if required:
            raise _err(f"{path}{key}", "is required")
        return None
    value = d[key]
    # bool is an int subclass, but JSON distinguishes the two.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _err(f"{path}{key}", f"must be of type {kind.__name__}")
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class FilesSummary:
    """Number and total size of the pack's files other than mlpack.json and the signature."""

    count: int
    size: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FilesSummary:
        count, size = _get(d, "count", int, "files."), _get(d, "size", int, "files.")
        if count < 0 or size < 0:
            raise _err("files", "counts must be non-negative")
        return cls(count=count, size=size)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "size": self.size}


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightsFile:
    """A weights file of the pack and its format."""

    path: str
    format: str
    size: int
    index: Mapping[str, Any] | None = None
    """Version 1.1: the weights index (spec/weights.md), kept verbatim; checked by verify."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> WeightsFile:
        fmt = _get(d, "format", str, where)
        if fmt not in WEIGHT_FORMATS:
            raise _err(f"{where}format", f"must be one of {', '.join(WEIGHT_FORMATS)}")
        return cls(path=_get(d, "path", str, where), format=fmt, size=_get(d, "size", int, where),
                   index=_get(d, "index", dict, where, required=False))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "format": self.format, "size": self.size}
        if self.index is not None:
            out["index"] = dict(self.index)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    """The ``mlpack.json`` document of spec version 1.x."""

    name: str
    files: FilesSummary
    mlpack: str = SPEC_VERSION
    version: str | None = None
    description: str | None = None
    license: str | None = None
    authors: tuple[str, ...] = ()
    weights: tuple[WeightsFile, ...] = ()
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Reserved sections (code, environment, ...), kept verbatim."""

    @classmethod
    def from_dict(cls, d: object) -> Manifest:
        if not isinstance(d, dict):
            raise _err("document", "must be a JSON object")
        version = _get(d, "mlpack", str, "")
        match = _VERSION_RE.match(version)
        if not match:
            raise _err("mlpack", "must be a version MAJOR.MINOR")
        if match.group(1) != SPEC_VERSION.split(".")[0]:
            raise VerificationError(f"{MANIFEST_NAME} version {version} is not supported (this is 1.x)",
                                    code="E_MANIFEST", member=MANIFEST_NAME, hint="upgrade mlpack")
        name = _get(d, "name", str, "")
        if not 1 <= len(name) <= 200:
            raise _err("name", "must be 1 to 200 characters")
        authors = _get(d, "authors", list, "", required=False) or []
        if not all(isinstance(a, str) for a in authors):
            raise _err("authors", "must be a list of strings")
        weights = _get(d, "weights", list, "", required=False) or []
        parsed_weights = []
        for i, w in enumerate(weights):
            if not isinstance(w, dict):
                raise _err(f"weights[{i}]", "must be an object")
            parsed_weights.append(WeightsFile.from_dict(w, f"weights[{i}]."))
        sections = {}
        for key in SECTIONS:
            value = _get(d, key, dict, "", required=False)
            if value is not None:
                sections[key] = value
        return cls(
            mlpack=version,
            name=name,
            version=_get(d, "version", str, "", required=False),
            description=_get(d, "description", str, "", required=False),
            license=_get(d, "license", str, "", required=False),
            authors=tuple(authors),
            files=FilesSummary.from_dict(_get(d, "files", dict, "")),
            weights=tuple(parsed_weights),
            sections=sections,
        )

    def at_least(self, minor: int) -> bool:
        """Whether this 1.x document is of version 1.``minor`` or later (sections gate on it)."""
        return int(self.mlpack.split(".")[1]) >= minor

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mlpack": self.mlpack, "name": self.name, "files": self.files.to_dict()}
        for key in ("version", "description", "license"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.authors:
            out["authors"] = list(self.authors)
        if self.weights:
            out["weights"] = [w.to_dict() for w in self.weights]
        out.update({k: dict(v) for k, v in self.sections.items()})
        return out

    def to_bytes(self) -> bytes:
        return jsonstrict.dumps(self.to_dict()) + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        return cls.from_dict(jsonstrict.loads(data, what=MANIFEST_NAME, max_size=MAX_MANIFEST,
                                              max_depth=32, member=MANIFEST_NAME))
