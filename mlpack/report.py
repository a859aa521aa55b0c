"""Verification reports (spec/verification.md, "Report").

``verify`` never stops at a bare exception: every check of the algorithm gets a
:class:`Check` with a status, and the :class:`Report` says which failed and why. It
renders as text for people and as JSON (spec/schema/report.schema.json) for tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import VerificationError

__all__ = ["CHECK_IDS", "Check", "Report"]

REPORT_VERSION = "1.0"
CHECK_IDS = (
    "file", "signature-member", "envelope", "signature", "payload",
    "members", "digests", "manifest", "formats",
)  # fmt: skip
CHECK_TITLES = {
    "file": "pack file",
    "signature-member": "signature member",
    "envelope": "signature bundle",
    "signature": "signature",
    "payload": "signed file list",
    "members": "archive members",
    "digests": "file digests",
    "manifest": "mlpack.json",
    "formats": "weights formats",
}


@dataclass(slots=True)
class Check:
    id: str
    status: str = "skip"  # pass | fail | skip
    detail: str = ""
    code: str | None = None
    member: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "code": self.code, "detail": self.detail,
                "member": self.member}


@dataclass(slots=True)
class Report:
    """The outcome of one verification, check by check."""

    pack: str
    checks: list[Check] = field(default_factory=lambda: [Check(i) for i in CHECK_IDS])
    error: VerificationError | None = None
    unsigned: bool = False
    signers: list[str] = field(default_factory=list)
    claimed_signer: str | None = None  # an untrusted key's unverified hint (E_UNTRUSTED_KEY)
    archive: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    attestations: list[dict[str, Any]] = field(default_factory=list)
    """Reproduction attestations found beside the pack (filled by the CLI; spec/reproduction.md)."""

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)

    def passed(self, check_id: str, detail: str) -> None:
        c = self.check(check_id)
        c.status, c.detail = "pass", detail

    def failed(self, check_id: str, err: VerificationError) -> None:
        c = self.check(check_id)
        c.status, c.detail, c.code, c.member = "fail", err.message, err.code, err.member
        if self.error is None:
            self.error = err
        for later in self.checks:
            if later.status == "skip" and not later.detail:
                later.detail = f"not run: {CHECK_TITLES[check_id]} failed"

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.status != "fail" for c in self.checks)

    @property
    def verdict(self) -> str:
        if not self.ok:
            return "failed"
        return "unsigned" if self.unsigned else "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlpack_report": REPORT_VERSION,
            "pack": self.pack,
            "verdict": self.verdict,
            "ok": self.ok,
            "error": self.error.to_dict() if self.error else None,
            "signers": [{"fingerprint": f, "trusted": True} for f in sorted(self.signers)]
            + ([{"fingerprint": self.claimed_signer, "trusted": False}] if self.claimed_signer else []),
            "archive": self.archive,
            "manifest": self.manifest,
            "checks": [c.to_dict() for c in self.checks],
            **({"attestations": [{k: v for k, v in a.items() if k != "line"} for a in self.attestations]}
               if self.attestations else {}),
        }

    def render(self) -> str:
        marks = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}
        lines = [f"{self.pack}: {self.verdict.upper()}"]
        for c in self.checks:
            lines.append(f"  [{marks[c.status]}] {CHECK_TITLES[c.id]:<18} {c.detail}")
        if self.signers:
            label = "signed by" if self.ok else "valid signature by (but the pack FAILED)"
            lines.append(f"  {label}: {', '.join(self.signers)}")
        elif self.unsigned:
            lines.append("  NOT SIGNED: nothing vouches for who made this pack")
        return "\n".join(lines)
