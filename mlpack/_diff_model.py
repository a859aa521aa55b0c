"""The data model of ``mlpack diff`` (spec/diff.md): what differs, section by section.

Shared by :mod:`mlpack.diff` (which computes a :class:`PackDiff`) and the private
section and rendering modules, so that none of them imports the public module back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._read import VerifiedPack

DIFF_VERSION = "1.0"
SECTION_ORDER = ("metrics", "training", "code", "entrypoints", "environment", "datasets", "hardware",
                 "weights", "pack", "files")
Status = Literal["equal", "incidental", "changed", "added", "removed", "absent"]
ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, kw_only=True, slots=True)
class DiffOptions:
    """How much detail to compute."""

    limit: int = 1000
    """Most paths, packages or tensors listed per list (the counts are always exact)."""
    text_diff_bytes: int = 1 << 20
    """Largest code file (each side) for which a unified diff is computed."""
    context: int = 3
    """Context lines of the unified diffs."""
    tensor_stats: bool = True
    """Compute the largest absolute and relative difference of changed tensors."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One value that differs, at a dotted path inside its section."""

    path: str
    change: ChangeKind
    old: Any = None
    new: Any = None
    incidental: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "change": self.change, "incidental": self.incidental}
        if self.change != "added":
            out["old"] = self.old
        if self.change != "removed":
            out["new"] = self.new
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class SectionDiff:
    """The difference in one section of the two packs."""

    name: str
    status: Status
    summary: str
    changes: tuple[Change, ...] = ()
    detail: Mapping[str, Any] = field(default_factory=dict)
    """Section-specific lists (metrics, files, packages, datasets, tensors): spec/diff.md."""

    @property
    def material(self) -> bool:
        return self.status in ("changed", "added", "removed")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "summary": self.summary,
                               "changes": [c.to_dict() for c in self.changes]}
        out.update(self.detail)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class PackRef:
    """Which pack a side of the diff is."""

    pack: str
    name: str
    version: str | None
    root_digest: str
    verdict: str
    signers: tuple[str, ...]

    @classmethod
    def of(cls, p: VerifiedPack) -> PackRef:
        return cls(pack=p.path, name=p.manifest.name, version=p.manifest.version,
                   root_digest=p.root_digest, verdict=p.verdict, signers=p.signers)

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"pack": self.pack, "name": self.name, "version": self.version,
                "root_digest": self.root_digest, "verdict": self.verdict, "signers": list(self.signers)}


@dataclass(frozen=True, kw_only=True, slots=True)
class PackDiff:
    """The whole difference: one :class:`SectionDiff` per section, most important first."""

    old: PackRef
    new: PackRef
    sections: tuple[SectionDiff, ...]

    @property
    def identical(self) -> bool:
        """Same signed content (equal root digests): every file is byte-identical."""
        return self.old.root_digest == self.new.root_digest

    @property
    def equal(self) -> bool:
        """No material difference (incidental ones allowed)."""
        return self.identical or not any(s.material for s in self.sections)

    @property
    def strictly_equal(self) -> bool:
        """No difference at all, incidental ones included."""
        return self.identical or all(s.status in ("equal", "absent") for s in self.sections)

    def section(self, name: str) -> SectionDiff:
        return next(s for s in self.sections if s.name == name)

    @property
    def changed_sections(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections if s.material)

    @property
    def verdict(self) -> str:
        if self.identical:
            return "identical"
        if self.equal:
            return "equal" if self.strictly_equal else "equivalent"
        return "different"

    def summary(self, *, compact: bool = False) -> str:
        """One line: what differs, most important first (``compact``: the first item of each)."""
        if self.identical:
            return "identical (same signed content)"
        material = [s for s in self.sections if s.material]
        if not material:
            incidental = [s.name for s in self.sections if s.status == "incidental"]
            return "equal" + (f" (incidental differences only: {', '.join(incidental)})" if incidental else "")
        if compact:
            return "; ".join(f"{s.name}: {_clip(_first(s.summary), 80)}" for s in material)
        return "; ".join(f"{s.name}: {s.summary}" for s in material)

    def to_dict(self) -> dict[str, Any]:
        return {"mlpack_diff": DIFF_VERSION, "old": self.old.to_dict(), "new": self.new.to_dict(),
                "verdict": self.verdict, "identical": self.identical, "equal": self.equal,
                "changed": list(self.changed_sections), "summary": self.summary(),
                "sections": [s.to_dict() for s in self.sections]}


def _first(summary: str) -> str:
    """The first item of a summary: up to the first ``;`` or ``,`` outside parentheses."""
    depth = 0
    for i, ch in enumerate(summary):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and summary.startswith((", ", "; "), i):
            return summary[:i]
    return summary


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
