"""What changed between two packs, section by section (spec/diff.md).

Both packs are verified first, with the same trust options as ``mlpack verify``; the
difference is then computed from what they sign, most important first: the metrics they
claim (and whether the difference is inside the tolerance), the training run's parameters
and seeds, the code, the entry points, the environment's packages, the datasets' files
(two Parquet manifests joined in Arrow), the hardware, the weights tensor by tensor (with
the largest absolute and relative difference, streamed from both packs), the pack's own
metadata, and any other file.

    old, new = open_pair("a.mlpack", "b.mlpack", trust=load_trust(["author.pub"], []))
    d = diff_packs(old, new)
    print(d.render_text()); exit_code = 0 if d.equal else 1

Differences that only say *when* a run happened (start and end times, duration, probe
notes, the processor's momentary clock) are *incidental*: they are reported, but the packs
still count as equal (spec/diff.md, "Equality").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._read import VerifiedPack, open_pair
from .keys import PublicKey

__all__ = ["Change", "DiffOptions", "PackDiff", "PackRef", "SectionDiff", "diff_files", "diff_packs"]

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

    def render_text(self, *, color: bool = False) -> str:
        from ._diff_render import render_text

        return render_text(self, color=color)

    def render_markdown(self) -> str:
        from ._diff_render import render_markdown

        return render_markdown(self)


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


def diff_packs(old: VerifiedPack, new: VerifiedPack, options: DiffOptions | None = None) -> PackDiff:
    """The difference between two verified packs (see :func:`mlpack._read.open_verified`)."""
    from . import _diff_code, _diff_data, _diff_sections

    opts = options or DiffOptions()
    builders = {
        "metrics": _diff_sections.metrics, "training": _diff_sections.training,
        "code": _diff_code.code, "entrypoints": _diff_sections.entrypoints,
        "environment": _diff_sections.environment, "datasets": _diff_data.datasets,
        "hardware": _diff_sections.hardware, "weights": _diff_data.weights,
        "pack": _diff_sections.pack, "files": _diff_code.files,
    }
    ref_old, ref_new = PackRef.of(old), PackRef.of(new)
    if ref_old.root_digest == ref_new.root_digest:  # same bytes: nothing to compute
        same = tuple(_diff_sections.same(name, old, new) for name in SECTION_ORDER)
        return PackDiff(old=ref_old, new=ref_new, sections=same)
    sections = [builders[name](old, new, opts) for name in SECTION_ORDER]
    if all(s.status in ("equal", "absent") for s in sections):
        sections = _unexplained(old, new, opts, sections)
    return PackDiff(old=ref_old, new=ref_new, sections=tuple(sections))


def _unexplained(old: VerifiedPack, new: VerifiedPack, opts: DiffOptions,
                 sections: list[SectionDiff]) -> list[SectionDiff]:
    """Different content, yet no section saw a difference: compare every file, so that nothing
    that differs is reported equal (a file no section knows, a field of mlpack.json none reads)."""
    from . import _diff_code
    from ._diff_sections import same_member
    from .archive import MANIFEST_NAME

    out = list(sections)
    every = _diff_code.files(old, new, opts, everything=True)
    if every.status != "equal":
        out[SECTION_ORDER.index("files")] = every
    elif not same_member(old, new, MANIFEST_NAME):
        i = SECTION_ORDER.index("pack")
        change = Change(path="mlpack.json", change="changed", old=f"{old.algorithm}:{old.digest(MANIFEST_NAME)}",
                        new=f"{new.algorithm}:{new.digest(MANIFEST_NAME)}",
                        note="fields that no section compares differ")
        out[i] = SectionDiff(name="pack", status="changed", summary="mlpack.json differs in fields no section "
                             "compares", changes=(*out[i].changes, change))
    return out


def diff_files(old: str | os.PathLike[str], new: str | os.PathLike[str], *, trust: Sequence[PublicKey],
               threshold: int = 1, allow_unsigned: bool = False,
               options: DiffOptions | None = None) -> PackDiff:
    """Verify both packs with the same trust options, then :func:`diff_packs` them."""
    a, b = open_pair(old, new, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    with a, b:
        return diff_packs(a, b, options)
