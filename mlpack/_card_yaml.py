"""The metadata half of a model card: Hub license ids and a YAML emitter (spec/card.md).

:func:`hf_license` maps an SPDX expression to the Hugging Face Hub's license fields;
:func:`yaml_dump` writes block YAML that YAML 1.1 readers (PyYAML, which huggingface_hub
uses) and YAML 1.2 readers parse to the same values, without a YAML library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["HF_LICENSES", "hf_license", "yaml_dump"]

# Hub license ids (hub-docs, repositories-licenses.md); SPDX ids whose lowercase form is one of
# these map to it directly.
HF_LICENSES = frozenset((
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
    "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
    "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
    "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
    "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0",
    "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "lppl-1.3c",
    "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa",
    "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "gemma", "unknown", "other"))
# SPDX ids (lowercase) that the Hub spells differently
SPDX_TO_HF = {"pddl-1.0": "pddl", "odbl-1.0": "odbl", "odc-by-1.0": "odc-by"}
_GNU = re.compile(r"^(a?gpl|lgpl)-(\d\.\d)(?:-only|-or-later|\+)?$")


def hf_license(spdx: str | None) -> dict[str, str]:
    """Front-matter license fields for an SPDX expression (spec/card.md, "License").

    A single SPDX id the Hub knows becomes its Hub id (``Apache-2.0`` → ``apache-2.0``,
    ``GPL-3.0-or-later`` → ``gpl-3.0``); anything else becomes ``other`` with
    ``license_name`` (and ``license_link`` for an SPDX id); no license is ``unknown``.
    """
    if not spdx:
        return {"license": "unknown"}
    low = spdx.strip().lower()
    if low in HF_LICENSES and low not in ("other", "unknown"):
        return {"license": low}
    if low in SPDX_TO_HF:
        return {"license": SPDX_TO_HF[low]}
    gnu = _GNU.match(low)
    if gnu:
        family, version = gnu.groups()
        hub = f"{family}-{version}"
        return {"license": hub if hub in HF_LICENSES else family}
    if low.startswith("gfdl-"):
        return {"license": "gfdl"}
    slug = re.sub(r"[^a-z0-9.]+", "-", low).strip("-") or "other"
    out = {"license": "other", "license_name": slug}
    if re.fullmatch(r"[A-Za-z0-9.+-]+", spdx.strip()) and not low.startswith("licenseref-"):
        out["license_link"] = f"https://spdx.org/licenses/{spdx.strip()}.html"
    return out


# ----------------------------------------------------------------------------- YAML


def _yaml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif ch in "\n\t":
            out.append("\\n" if ch == "\n" else "\\t")
        elif o > 0xFFFF:
            out.append(f"\\U{o:08x}")
        else:
            out.append(f"\\u{o:04x}")
    return "".join(out) + '"'


def _yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        text = repr(v)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # YAML 1.1 readers (PyYAML) need a "." to see a float
            text = f"{mantissa}.0e{exponent}"
        return text
    return _yaml_str(str(v))


_YAML11_WORDS = frozenset(("y", "n", "yes", "no", "on", "off", "true", "false", "null"))


def _key(k: str) -> str:
    """A mapping key, plain when no YAML reader can take it for anything but a string."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", k) and k.lower() not in _YAML11_WORDS
    return k if plain else _yaml_str(k)


def yaml_dump(value: Any, indent: int = 0) -> str:
    """Block-style YAML that both YAML 1.1 and 1.2 readers parse the same way.

    Strings are always double-quoted with ASCII escapes, floats always carry a ``.``.
    """
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, (Mapping, list)) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines.append(yaml_dump(v, indent + 2))
            else:
                lines.append(f"{pad}{_key(k)}: {_yaml_scalar(v) if not isinstance(v, (Mapping, list)) else ('{}' if isinstance(v, Mapping) else '[]')}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (Mapping, list)) and v:
                inner = yaml_dump(v, indent + 2)
                lines.append(f"{pad}- {inner.lstrip()}")
            else:
                lines.append(f"{pad}- {_yaml_scalar(v)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return "\n".join(lines)
