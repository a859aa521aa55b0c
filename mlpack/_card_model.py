"""The content model of a model card (spec/card.md): the facts a card shows, and its sections
as blocks (paragraphs, fact lists, tables, code) that the Markdown and HTML renderers share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .metrics import ExpectedMetric

CARD_TASK = "other"

# ----------------------------------------------------------------------------- content model


@dataclass(frozen=True, slots=True)
class Mono:
    """Text shown in a monospace font (digests, commands, paths)."""

    text: str


Cell = str | Mono


@dataclass(frozen=True, slots=True)
class Para:
    text: str


@dataclass(frozen=True, slots=True)
class Facts:
    items: tuple[tuple[str, Cell], ...]


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True, slots=True)
class Code:
    text: str
    lang: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    blocks: tuple[Para | Facts | Table | Code, ...]
    anchor: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Reproduced:
    """A metric a verifier recomputed and signed (an attestation beside the pack)."""

    name: str
    dataset: str | None
    split: str | None
    value: float
    claimed: float | None
    passed: bool
    level: str
    by: str
    """The verifier key's fingerprint."""
    attestation: str
    """The attestation file's name."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LineageNode:
    label: str
    digest: str
    changes: str | None = None
    found: bool = True
    status: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CardData:
    """Everything a card shows, read from one verified pack."""

    pack: str
    file_digest: str
    root_digest: str
    verdict: str
    signers: tuple[str, ...]
    manifest_dict: Mapping[str, Any]
    name: str
    version: str | None
    description: str | None
    license: str | None
    authors: tuple[str, ...]
    metrics: tuple[ExpectedMetric, ...] = ()
    reproduced: tuple[Reproduced, ...] = ()
    packages: tuple[tuple[str, str], ...] = ()
    lineage: tuple[LineageNode, ...] = ()
    task: str = CARD_TASK
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def parent(self) -> str | None:
        p = (self.sections.get("training") or {}).get("parent")
        return p if isinstance(p, str) else None

    @property
    def title(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name
