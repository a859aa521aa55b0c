"""Show what a pack claims to hold, reading under 1 MiB (spec/verification.md, "Inspect").

``inspect`` reads the first header, a few KiB at each end of the signature member
(for the signer hint and the signature count), then seeks to member 1, which is
always ``mlpack.json``. It verifies nothing and says so; ``verify`` is the check.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from . import archive
from .archive import BLOCK, MANIFEST_NAME, SIGNATURE_NAME
from .errors import UsageError, VerificationError
from .manifest import Manifest
from .verify import _open

__all__ = ["Inspection", "inspect_pack"]

INSPECT_VERSION = "1.0"
SMALL_BUNDLE = 256 << 10
EDGE = 4096
MAX_INSPECT_MANIFEST = 16 << 20


@dataclass(frozen=True, slots=True)
class Inspection:
    pack: str
    size: int
    signatures: int | None
    hint: str | None
    manifest: Manifest

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlpack_inspect": INSPECT_VERSION,
            "pack": self.pack,
            "size": self.size,
            "verified": False,
            "signature": {"signatures": self.signatures, "hint": self.hint},
            "manifest": self.manifest.to_dict(),
        }

    def render(self) -> str:
        m = self.manifest
        signed = ("unsigned" if self.signatures == 0
                  else f"{self.signatures if self.signatures is not None else '?'} signature(s), "
                       f"signer hint {self.hint or 'none'} (not verified)")
        lines = [
            f"{self.pack}  ({self.size} bytes, NOT verified: run mlpack verify)",
            f"  name         {m.name} {m.version or ''}".rstrip(),
            f"  format       mlpack {m.mlpack}",
            f"  signature    {signed}",
            f"  files        {m.files.count} files, {m.files.size} bytes (plus {MANIFEST_NAME})",
        ]
        for key in ("description", "license"):
            if getattr(m, key):
                lines.append(f"  {key:<12} {getattr(m, key)}")
        if m.authors:
            lines.append(f"  authors      {', '.join(m.authors)}")
        for w in m.weights:
            tensors = f", {len(w.index.get('tensors', []))} tensors, root {_short(w.index.get('tensor_root'))}" \
                if m.at_least(1) and w.index else ""
            lines.append(f"  weights      {w.path} ({w.format}, {w.size} bytes{tensors})")
        if not m.at_least(1):
            for section in sorted(m.sections):
                lines.append(f"  {section:<12} {len(m.sections[section])} field(s) (reserved in 1.0: no meaning)")
            return "\n".join(lines)
        for section in SECTION_ORDER:
            if section in m.sections:
                lines.append(f"  {section}")
                lines.extend(f"    {line}" for line in _render_section(section, m.sections[section]))
        return "\n".join(lines)


SECTION_ORDER = ("metrics", "training", "code", "datasets", "environment", "hardware", "entrypoints")


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(digest: object) -> str:
    text = str(digest or "?")
    return text[:19] + "…" if len(text) > 20 else text


def _kv(d: dict[str, Any], keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k} {d[k]}" for k in keys if d.get(k) not in (None, "", [], {}))


def _render_section(name: str, s: dict[str, Any]) -> list[str]:
    """A few readable lines per section; unknown shapes fall back to their keys."""
    out: list[str] = []
    if name == "metrics":
        for x in s.get("metrics", []):
            tol = x.get("tolerance") or {}
            band = " ".join(f"±{tol[k]}{'' if k == 'absolute' else ' rel'}" for k in ("absolute", "relative")
                            if k in tol)
            where = "/".join(str(x[k]) for k in ("dataset", "split") if x.get(k))
            out.append(f"{x.get('name')} = {x.get('value')} {band} on {where or '?'} "
                       f"({x.get('direction', '?')} is better; {x.get('status', 'claimed')})")
    elif name == "training":
        cmd = s.get("command")
        if isinstance(cmd, dict):
            cmd = cmd.get("argv", cmd)
        if isinstance(cmd, list):
            cmd = " ".join(str(c) for c in cmd)
        out.append(f"command   {cmd}")
        for key in ("params", "seeds", "determinism"):
            if s.get(key):
                out.append(f"{key:<9} {_clip(json.dumps(s[key], sort_keys=True))}")
        threads = s.get("threads") or {}
        if threads:
            pools = ", ".join(f"{p.get('internal_api') or p.get('user_api')} {p.get('num_threads')}"
                              for p in threads.get("pools") or [] if isinstance(p, dict))
            parts = [f"requested {threads['requested']}" if threads.get("requested") is not None else "",
                     f"torch {threads['torch']}" if threads.get("torch") is not None else "",
                     f"pools: {pools}" if pools else ""]
            out.append("threads   " + "; ".join(p for p in parts if p))
        out.append(_kv(s, ("status", "started", "duration_s", "parent")))
    elif name == "code":
        git = s.get("git") or {}
        out.append(f"{s.get('files')} files, {s.get('size')} bytes, digest {_short(s.get('digest'))}")
        if git:
            state = "DIRTY (diff in " + str(git.get("diff")) + ")" if git.get("dirty") else "clean"
            out.append(f"git {str(git.get('commit') or 'no commit')[:12]} on {git.get('branch') or 'detached'}"
                       f", {state}, remote {git.get('remote') or 'none'}")
        else:
            out.append("no git repository")
    elif name == "datasets":
        for e in s.get("entries", []):
            rows = f", {e['tables']['rows']} rows" if e.get("tables") else ""
            out.append(f"{e.get('name')}: {e.get('mode')} {e.get('uri')}: {e.get('file_count')} files, "
                       f"{e.get('total_bytes')} bytes{rows}, root {_short(e.get('root_digest'))}")
    elif name == "environment":
        py = s.get("python") or {}
        pyv = py.get("version") if isinstance(py, dict) else py
        out.append(_kv({**s, "python": pyv}, ("mode", "python", "packages", "lock")))
        for x in s.get("local", []) or []:
            out.append(f"local install: {x.get('name')} {x.get('version')} ({x.get('kind')})")
        if s.get("variables"):
            out.append("variables " + ", ".join(f"{k}={v}" for k, v in sorted(s["variables"].items())))
    elif name == "hardware":
        isa = s.get("host_processor_isa_flags") or []
        flags = _clip(",".join(isa), 100) if isa else None
        out.append(_kv({**s, "isa": flags}, ("host_processor_model_name", "host_processor_vcpu_count",
                                             "host_memory_capacity_bytes", "operating_system", "isa")))
        for a in s.get("accelerators", []) or []:
            out.append(f"accelerator {a.get('model_name', a)}")
    elif name == "entrypoints":
        for key in ("train", "evaluate"):
            if isinstance(s.get(key), dict):
                out.append(f"{key:<9} {s[key].get('command')}")
    return [line for line in out if line] or [", ".join(sorted(s))]


def _top_level(prefix: str) -> dict[str, Any]:
    """Decode the complete top-level members at the start of a (truncated) JSON object."""
    decoder = json.JSONDecoder()
    out: dict[str, Any] = {}
    pos = prefix.find("{") + 1
    while True:
        while pos < len(prefix) and prefix[pos] in " \t\r\n,":
            pos += 1
        try:
            key, pos = decoder.raw_decode(prefix, pos)
            while prefix[pos] in " \t\r\n:":
                pos += 1
            value, pos = decoder.raw_decode(prefix, pos)
        except (ValueError, IndexError):
            return out
        out[key] = value


def _signature_summary(fd: int, size: int) -> tuple[int | None, str | None]:
    if size <= SMALL_BUNDLE:
        try:
            doc = json.loads(os.pread(fd, size, BLOCK))
            env = doc.get("dsseEnvelope", {})
            hint = doc.get("verificationMaterial", {}).get("publicKey", {}).get("hint")
            return len(env.get("signatures", [])), f"sha256:{hint}" if hint else None
        except (ValueError, AttributeError):
            return None, None
    head = os.pread(fd, EDGE, BLOCK).decode("utf-8", "replace")
    hint = (_top_level(head).get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
    tail = os.pread(fd, EDGE, BLOCK + size - EDGE).decode("utf-8", "replace")
    count = None
    at = tail.rfind('"signatures":')
    if at >= 0:
        try:
            sigs, _ = json.JSONDecoder().raw_decode(tail, at + len('"signatures":'))
            count = len(sigs) if isinstance(sigs, list) else None
        except ValueError:
            pass
    return count, f"sha256:{hint}" if isinstance(hint, str) and hint else None


def inspect_pack(path: str | os.PathLike[str]) -> Inspection:
    fd, file_size = _open(path)
    try:
        if file_size < 3 * BLOCK:
            raise VerificationError(f"file is {file_size} bytes: too short to be a pack", code="E_HEADER")
        if file_size % BLOCK:
            raise VerificationError(f"file size {file_size} is not a multiple of {BLOCK}: truncated",
                                    code="E_TRUNCATED")
        read_at = lambda offset, n: os.pread(fd, n, offset)
        first = archive.parse_header(read_at, 0, file_size)
        if first is None or first.name != SIGNATURE_NAME:
            raise VerificationError("not an mlpack pack: the first member is not the signature",
                                    code="E_UNSIGNED" if first else "E_HEADER")
        count, hint = _signature_summary(fd, first.size)
        offset = BLOCK + first.size + archive.padding(first.size)
        second = archive.parse_header(read_at, offset, file_size)
        if second is None or second.name != MANIFEST_NAME:
            raise VerificationError(f"member 1 is not {MANIFEST_NAME}", code="E_MANIFEST")
        if second.size > MAX_INSPECT_MANIFEST:
            raise VerificationError(f"{MANIFEST_NAME} is {second.size} bytes, over the limit of "
                                    f"{MAX_INSPECT_MANIFEST}", code="E_LIMIT")
        data = os.pread(fd, second.size, offset + second.length)
        if len(data) != second.size:
            raise VerificationError(f"archive ends inside {MANIFEST_NAME}", code="E_TRUNCATED")
        return Inspection(str(path), file_size, count, hint, Manifest.from_bytes(data))
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}", code="E_INPUT") from None
    finally:
        os.close(fd)
