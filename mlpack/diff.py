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
    print(render_text(d)); exit_code = 0 if d.equal else 1

Differences that only say *when* a run happened (start and end times, duration, probe
notes, the processor's momentary clock) are *incidental*: they are reported, but the packs
still count as equal (spec/diff.md, "Equality").
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ._diff_model import (  # noqa: F401 - re-exported: the public names of this module
    DIFF_VERSION,
    SECTION_ORDER,
    Change,
    ChangeKind,
    DiffOptions,
    PackDiff,
    PackRef,
    SectionDiff,
    Status,
)
from ._diff_render import render_markdown, render_text
from ._read import VerifiedPack, open_pair
from .keys import PublicKey

__all__ = ["Change", "DiffOptions", "PackDiff", "PackRef", "SectionDiff", "diff_files", "diff_packs",
           "render_markdown", "render_text"]



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
