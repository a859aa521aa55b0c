"""Lineage: the chain of packs a model was trained from (spec/lineage.md).

A pack records the pack whose weights its training started from as ``training.parent``
(spec/training.md): the digest of the parent pack *file*, ``sha256:<hex>`` as ``sha256sum``
prints it. :func:`walk` follows these links through a :class:`DirectoryStore` (a directory
of ``*.mlpack`` files, indexed by the sha256 of each file, and by each pack's root digest
so that a re-signed parent is still found), verifies every pack it steps on with the
caller's trust options, and summarizes what changed along each edge with
:func:`mlpack.diff.diff_packs`.

    chain = walk("model.mlpack", DirectoryStore("packs/"), trust=load_trust(["me.pub"], []))
    print(chain.render_text())
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ._read import VerifiedPack, open_verified
from .digest import sha256_file
from .errors import MlpackError, UsageError, VerificationError
from .keys import PublicKey

__all__ = ["DirectoryStore", "Lineage", "Step", "Store", "parent_of", "walk"]

LOG_VERSION = "1.0"
MAX_DEPTH = 10_000
CHUNK = 4 << 20
SUFFIX = ".mlpack"


def parent_of(p: VerifiedPack) -> str | None:
    """The parent digest a verified pack records (``training.parent``), or None."""
    if not p.manifest.at_least(1):
        return None
    parent = (p.manifest.sections.get("training") or {}).get("parent")
    return parent if isinstance(parent, str) else None


class Store(Protocol):
    """Where parents are looked up: a digest to candidate pack files."""

    def locate(self, digest: str) -> list[Path]: ...

    def describe(self) -> str: ...


def _root_digest(path: Path) -> str | None:
    """The root digest a pack file's statement claims, read without verification (an index hint)."""
    import base64
    import json

    from .signing import Statement, parse_statement
    from .verify import _open, _read_signature_member

    try:
        fd, size = _open(path)
    except MlpackError:
        return None
    try:
        bundle, _ = _read_signature_member(fd, size)
        payload = base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"])
        statement: Statement = parse_statement(payload, check_names_now=False)
        return f"sha256:{statement.root_digest}"
    except (MlpackError, ValueError, KeyError, TypeError, OSError):
        return None
    finally:
        os.close(fd)


class DirectoryStore:
    """Every ``*.mlpack`` regular file under a directory (recursively), indexed on first use."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise UsageError(f"store {self.directory} is not a directory", code="E_INPUT",
                             hint="pass --store DIR, a directory of .mlpack files")
        self._index: dict[str, list[Path]] | None = None

    def describe(self) -> str:
        return str(self.directory)

    def _files(self) -> Iterator[Path]:
        for root, dirs, names in os.walk(self.directory):
            dirs.sort()
            for name in sorted(names):
                p = Path(root) / name
                if name.endswith(SUFFIX) and not p.is_symlink() and p.is_file():
                    yield p

    def index(self) -> dict[str, list[Path]]:
        """digest (file sha256 and root digest) -> pack files, built once (files hashed in parallel)."""
        if self._index is None:
            files = list(self._files())
            with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
                digests = list(pool.map(lambda p: ("sha256:" + sha256_file(p), _root_digest(p)), files))
            index: dict[str, list[Path]] = {}
            for path, (file_digest, root) in zip(files, digests):
                index.setdefault(file_digest, []).append(path)
                if root is not None:
                    index.setdefault(root, []).append(path)
            self._index = index
        return self._index

    def locate(self, digest: str) -> list[Path]:
        return list(self.index().get(digest, []))


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """One pack of the chain, and what changed from its parent to it."""

    pack: str
    digest: str
    """``sha256:`` of the pack file."""
    root_digest: str
    name: str
    version: str | None
    verdict: str
    signers: tuple[str, ...]
    parent: str | None
    """The parent digest this pack records."""
    changes: dict[str, Any] | None = None
    """From the parent to this pack: ``verdict``, ``changed`` sections, ``summary``; None for
    the last step found."""

    def to_dict(self) -> dict[str, Any]:
        return {"pack": self.pack, "digest": self.digest, "root_digest": self.root_digest,
                "name": self.name, "version": self.version, "verdict": self.verdict,
                "signers": list(self.signers), "parent": self.parent, "changes": self.changes}


@dataclass(frozen=True, kw_only=True, slots=True)
class Lineage:
    """The chain from a pack back to its oldest ancestor found."""

    store: str
    steps: tuple[Step, ...]
    stop: MlpackError | None = None
    """Why the walk ended early (``E_PARENT`` missing parent, a parent that failed
    verification, a cycle); None when it reached a pack without parent."""
    edges: tuple[Any, ...] = field(default=(), repr=False)
    """The :class:`~mlpack.diff.PackDiff` of each edge (parent -> child), newest first."""

    @property
    def complete(self) -> bool:
        return self.stop is None

    def to_dict(self) -> dict[str, Any]:
        stop = None
        if self.stop is not None:
            stop = {"code": self.stop.code, "message": self.stop.message}
        return {"mlpack_log": LOG_VERSION, "store": self.store, "complete": self.complete,
                "steps": [s.to_dict() for s in self.steps], "stop": stop}

    def render_text(self) -> str:
        from ._diff_render import safe

        lines: list[str] = []
        for i, s in enumerate(self.steps):
            signed = f"signed by {', '.join(x[:19] + '…' for x in s.signers)}" if s.signers else s.verdict
            label = f"{s.name} {s.version}" if s.version else s.name
            lines.append(f"pack {s.digest}")
            lines.append(f"    {safe(label)}  ({signed})  {safe(s.pack)}")
            if s.parent is None:
                lines.append("    no parent: the start of the lineage")
            else:
                lines.append(f"    parent {s.parent}")
            if s.changes is not None:
                changed = ", ".join(s.changes["changed"]) or "nothing material"
                lines.append(f"    changed from its parent: {changed}")
                if s.changes["changed"]:
                    lines.append(f"    {safe(s.changes['summary'])}")
            if i < len(self.steps) - 1:
                lines.append("")
        if self.stop is not None:
            lines += ["", f"(lineage incomplete: {safe(self.stop.message)})"]
        return "\n".join(lines)


def _step(p: VerifiedPack, changes: dict[str, Any] | None) -> Step:
    return Step(pack=p.path, digest=p.file_sha256(), root_digest=p.root_digest, name=p.manifest.name,
                version=p.manifest.version, verdict=p.verdict, signers=p.signers, parent=parent_of(p),
                changes=changes)


def walk(pack: str | os.PathLike[str], store: Store, *, trust: Sequence[PublicKey], threshold: int = 1,
         allow_unsigned: bool = False, max_depth: int = MAX_DEPTH) -> Lineage:
    """Follow ``training.parent`` from ``pack`` through ``store``, verifying every pack.

    The starting pack must verify (else its error is raised). A parent that is not in the
    store, that fails verification, or a cycle ends the walk: the chain found so far is
    returned with ``stop`` set. Each edge's changes come from :func:`mlpack.diff.diff_packs`
    (without tensor statistics, for speed).
    """
    from .diff import DiffOptions, diff_packs

    opts = DiffOptions(limit=20, tensor_stats=False)
    current = open_verified(pack, trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
    steps: list[Step] = []
    edges: list[Any] = []
    seen = {current.file_sha256(), current.root_digest}
    stop: MlpackError | None = None
    try:
        while True:
            parent = parent_of(current)
            if parent is None:
                steps.append(_step(current, None))
                break
            if len(steps) >= max_depth:
                steps.append(_step(current, None))
                stop = VerificationError(f"the lineage is longer than {max_depth} packs", code="E_LIMIT")
                break
            if parent in seen:
                steps.append(_step(current, None))
                stop = VerificationError(f"{current.path} names {parent} as parent, which is already in "
                                         "the chain (a cycle)", code="E_PARENT")
                break
            found = [p for p in store.locate(parent)]
            if not found:
                steps.append(_step(current, None))
                stop = VerificationError(f"parent {parent} of {current.path} is not in {store.describe()}",
                                         code="E_PARENT",
                                         hint="put the parent pack in the store directory (its file's "
                                         "sha256 must be the recorded digest)")
                break
            try:
                older = open_verified(found[0], trust=trust, threshold=threshold, allow_unsigned=allow_unsigned)
            except VerificationError as err:
                steps.append(_step(current, None))
                stop = err
                break
            if parent not in (older.file_sha256(), older.root_digest):  # changed since it was indexed
                older.close()
                steps.append(_step(current, None))
                stop = VerificationError(f"{found[0]} no longer has digest {parent}", code="E_PARENT")
                break
            d = diff_packs(older, current, opts)
            edges.append(d)
            steps.append(_step(current, {"verdict": d.verdict, "changed": list(d.changed_sections),
                                         "summary": d.summary(compact=True)}))
            seen.update((older.file_sha256(), older.root_digest))
            current.close()
            current = older
    finally:
        current.close()
    return Lineage(store=store.describe(), steps=tuple(steps), stop=stop, edges=tuple(edges))
