"""What a capture step hands to ``mlpack build`` (spec/manifest.md, version 1.1).

Each capture module (``code``, ``environment``, ``datasets``, ``hardware``, ``weights``,
``training``, ``metrics``) is pure over its inputs except for reading the project, and
returns a :class:`Captured`: the JSON value of its ``mlpack.json`` section, the files it
adds to the pack (as :class:`mlpack.pack.Source`, each named by its pack member path under
the section's own prefix: ``code/``, ``environment/``, ``datasets/``, ``weights/``), and
notes for the person running the build (warnings that do not stop it).

    captured = Captured(section={"files": 3}, files=(Source("code/train.py", path="train.py"),))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .pack import Source

__all__ = ["MEMBER_PREFIXES", "Captured"]

MEMBER_PREFIXES = {
    "code": "code/",
    "environment": "environment/",
    "datasets": "datasets/",
    "weights": "weights/",
}
"""The pack directory each section's files live in; no two sections share one."""


@dataclass(frozen=True, slots=True)
class Captured:
    """One section of ``mlpack.json`` and the pack files that go with it."""

    section: dict[str, Any]
    files: tuple[Source, ...] = ()
    notes: tuple[str, ...] = ()
