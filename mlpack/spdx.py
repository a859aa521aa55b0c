"""SPDX license expressions, as the recipe's ``license`` must be (spec/recipe.md).

``license_problem`` parses an expression (ids, ``AND``/``OR``/``WITH``, parentheses,
``LicenseRef-``) and checks each id against the SPDX list built in here, refusing
deprecated ids with the ``-only``/``-or-later`` forms as the hint.

    >>> license_problem("Apache-2.0 OR MIT") is None
    True
"""

from __future__ import annotations

import difflib
import re

__all__ = ["LICENSE_IDS", "license_problem"]

_SPDX_IDS = """0BSD AAL AFL-1.1 AFL-1.2 AFL-2.0 AFL-2.1 AFL-3.0 AGPL-1.0-only AGPL-1.0-or-later
AGPL-3.0-only AGPL-3.0-or-later Apache-1.0 Apache-1.1 Apache-2.0 APSL-2.0 Artistic-1.0
Artistic-2.0 Beerware BlueOak-1.0.0 BSD-1-Clause BSD-2-Clause BSD-2-Clause-Patent BSD-3-Clause
BSD-3-Clause-Clear BSD-3-Clause-LBNL BSD-4-Clause BSL-1.0 bzip2-1.0.6 CAL-1.0 CC-BY-1.0
CC-BY-2.0 CC-BY-2.5 CC-BY-3.0 CC-BY-4.0 CC-BY-NC-2.0 CC-BY-NC-3.0 CC-BY-NC-4.0 CC-BY-NC-ND-3.0
CC-BY-NC-ND-4.0 CC-BY-NC-SA-2.0 CC-BY-NC-SA-3.0 CC-BY-NC-SA-4.0 CC-BY-ND-3.0 CC-BY-ND-4.0
CC-BY-SA-2.0 CC-BY-SA-2.5 CC-BY-SA-3.0 CC-BY-SA-4.0 CC-PDDC CC0-1.0 CDDL-1.0 CDDL-1.1
CDLA-Permissive-1.0 CDLA-Permissive-2.0 CDLA-Sharing-1.0 CECILL-2.1 CECILL-B CECILL-C CPL-1.0
curl ECL-2.0 EFL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 FSFAP FTL GFDL-1.2-only
GFDL-1.2-or-later GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later GPL-2.0-only
GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ICU IJG Intel IPA ISC JSON LGPL-2.0-only
LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only LGPL-3.0-or-later libpng-2.0
Libpng LPPL-1.3c MIT MIT-0 MIT-CMU MPL-1.0 MPL-1.1 MPL-2.0 MPL-2.0-no-copyleft-exception MS-PL
MS-RL MulanPSL-2.0 NCSA NLOD-2.0 NTP O-UDA-1.0 ODbL-1.0 ODC-By-1.0 OFL-1.0 OFL-1.1 OGL-UK-3.0
OpenSSL OPUBL-1.0 OSL-3.0 PDDL-1.0 PHP-3.01 PostgreSQL PSF-2.0 Python-2.0 Ruby SGI-B-2.0
Sleepycat SSPL-1.0 TCL UCL-1.0 Unicode-3.0 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL
X11 XFree86-1.1 Zlib zlib-acknowledgement ZPL-2.0 ZPL-2.1"""
_SPDX_EXCEPTIONS = """Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2
Bootloader-exception Classpath-exception-2.0 Font-exception-2.0 GCC-exception-2.0
GCC-exception-3.1 GPL-3.0-linking-exception GPL-3.0-linking-source-exception GPL-CC-1.0
LGPL-3.0-linking-exception Linux-syscall-note LLVM-exception OCaml-LGPL-linking-exception
OpenJDK-assembly-exception-1.0 Qt-GPL-exception-1.0 Qt-LGPL-exception-1.1 u-boot-exception-2.0
Universal-FOSS-exception-1.0 WxWindows-exception-3.1"""
LICENSE_IDS = {i.lower(): i for i in _SPDX_IDS.split()}
"""The SPDX license ids mlpack knows (matched case-insensitively, as SPDX says)."""
_EXCEPTION_IDS = {i.lower(): i for i in _SPDX_EXCEPTIONS.split()}
_DEPRECATED = {"gpl-1.0", "gpl-1.0+", "gpl-2.0", "gpl-2.0+", "gpl-3.0", "gpl-3.0+", "lgpl-2.0",
               "lgpl-2.0+", "lgpl-2.1", "lgpl-2.1+", "lgpl-3.0", "lgpl-3.0+", "agpl-1.0",
               "agpl-3.0", "gfdl-1.2", "gfdl-1.3"}
# Hugging Face model-card license ids that have no SPDX id: they must be written LicenseRef-<id>.
_MODEL_LICENSES = {"openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m",
                   "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "llama2", "llama3",
                   "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma", "deepfloyd-if-license",
                   "apple-ascl", "intel-research", "lgpl-lr", "c-uda", "other"}
_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")
_ADDITION_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?AdditionRef-[A-Za-z0-9.-]+")
_REF_HINT = "use an SPDX id (https://spdx.org/licenses/) or LicenseRef-NAME"


class _LicenseError(Exception):
    def __init__(self, why: str, hint: str) -> None:
        super().__init__(why)
        self.why, self.hint = why, hint


def _license_id(token: str) -> None:
    if _REF.fullmatch(token):
        return
    low = token.lower()
    if low in _DEPRECATED:
        base = low.rstrip("+")
        canon = LICENSE_IDS[f"{base}-only"]
        raise _LicenseError(f"uses the deprecated SPDX id {token!r}",
                            f"write {canon} or {canon.replace('-only', '-or-later')}")
    if low.removesuffix("+") in LICENSE_IDS:
        return
    if low.removeprefix("licenseref-") in _MODEL_LICENSES:
        name = re.sub(r"[^A-Za-z0-9.-]", "-", low.removeprefix("licenseref-"))
        raise _LicenseError(f"names {token!r}, which has no SPDX id",
                            f"write LicenseRef-{name} (a license without an SPDX id)")
    close = difflib.get_close_matches(low, list(LICENSE_IDS), n=1, cutoff=0.7)
    did = f"did you mean {LICENSE_IDS[close[0]]}? " if close else ""
    raise _LicenseError(f"has an unknown license id {token!r}", f"{did}{_REF_HINT}")


def license_problem(expression: str) -> tuple[str, str] | None:
    """Why ``expression`` is not an SPDX license expression mlpack accepts, and the fix.

    Grammar: ``id [+]``, ``LicenseRef-x``, ``(...)``, ``A WITH exception``, ``A AND B``,
    ``A OR B`` (AND binds tighter than OR; operators upper case). Ids are checked against a
    built-in list of common SPDX ids. Returns None when the expression is accepted.

        >>> license_problem("Apache-2.0 OR MIT") is None
        True
    """
    tokens = re.findall(r"[()]|[^\s()]+", expression)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise _LicenseError("ends where a license id is expected", _REF_HINT)
        pos += 1
        return tok

    def atom() -> None:
        tok = take()
        if tok == "(":
            disjunction()
            if peek() != ")":
                raise _LicenseError("has an unclosed '('", "close every parenthesis")
            take()
        elif tok in ("AND", "OR", "WITH", ")"):
            raise _LicenseError(f"has {tok!r} where a license id is expected", _REF_HINT)
        else:
            _license_id(tok)
            if peek() == "WITH":
                take()
                exc = take()
                if exc.lower() not in _EXCEPTION_IDS and not _ADDITION_REF.fullmatch(exc):
                    raise _LicenseError(f"has an unknown license exception {exc!r}",
                                        "use an SPDX exception id, e.g. Classpath-exception-2.0")

    def conjunction() -> None:
        atom()
        while peek() == "AND":
            take()
            atom()

    def disjunction() -> None:
        conjunction()
        while peek() == "OR":
            take()
            conjunction()

    try:
        if not tokens:
            raise _LicenseError("is empty", _REF_HINT)
        disjunction()
        if pos < len(tokens):
            tok = tokens[pos]
            hint = ("operators are upper case: AND, OR, WITH" if tok.upper() in ("AND", "OR", "WITH")
                    else "join licenses with AND or OR")
            raise _LicenseError(f"has an unexpected {tok!r}", hint)
    except _LicenseError as err:
        return err.why, err.hint
    return None


