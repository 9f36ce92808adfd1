"""SPDX license expressions: a bundled list of common identifiers and a strict parser.

Grammar (SPDX specification 2.3, annex D, simplified to what manifests need)::

    expression := term { ("AND" | "OR") term }      (AND binds tighter than OR)
    term       := "(" expression ")" | license [ "WITH" exception ]
    license    := known-id [ "+" ] | "LicenseRef-" idstring | "DocumentRef-" idstring ":LicenseRef-" idstring

Operators are upper case. Only identifiers in the bundled list are accepted (plus
``LicenseRef-``), so that a typo such as ``Apache2`` is caught and the closest known identifier
suggested; deprecated identifiers (``GPL-3.0``) are refused with their replacements.
"""

from __future__ import annotations

import difflib
import re

__all__ = ["LICENSE_IDS", "check_license_expression"]

#: Common SPDX license identifiers (SPDX License List 3.x). Case-sensitive as published.
LICENSE_IDS: frozenset[str] = frozenset("""
0BSD AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0 APSL-2.0 Artistic-1.0
Artistic-2.0 BlueOak-1.0.0 BSD-1-Clause BSD-2-Clause BSD-2-Clause-Patent BSD-3-Clause
BSD-3-Clause-Clear BSD-4-Clause BSL-1.0 BUSL-1.1 CAL-1.0 CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0
CC-BY-SA-4.0 CC-BY-NC-4.0 CC-BY-ND-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CECILL-2.1 CPAL-1.0 CPL-1.0
ECL-2.0 EFL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only
GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ICU
IPL-1.0 ISC LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only
LGPL-3.0-or-later LPL-1.02 LPPL-1.3c MIT MIT-0 MIT-CMU MPL-1.1 MPL-2.0
MPL-2.0-no-copyleft-exception MS-PL MS-RL MulanPSL-2.0 NCSA ODbL-1.0 OFL-1.1 OpenSSL OSL-3.0
PHP-3.01 PostgreSQL PSF-2.0 Python-2.0 Ruby SSPL-1.0 Unicode-3.0 Unicode-DFS-2016 Unlicense
UPL-1.0 Vim W3C WTFPL X11 Zlib ZPL-2.1
""".split())

#: Common SPDX license exceptions (for ``WITH``).
EXCEPTION_IDS: frozenset[str] = frozenset("""
Autoconf-exception-3.0 Bison-exception-2.2 Classpath-exception-2.0 GCC-exception-3.1
Font-exception-2.0 LLVM-exception OpenJDK-assembly-exception-1.0 Qt-GPL-exception-1.0
Qt-LGPL-exception-1.1 Swift-exception GPL-3.0-linking-exception u-boot-exception-2.0
""".split())

_DEPRECATED = {
    "GPL-1.0": "GPL-1.0-only or GPL-1.0-or-later",
    "GPL-2.0": "GPL-2.0-only or GPL-2.0-or-later",
    "GPL-3.0": "GPL-3.0-only or GPL-3.0-or-later",
    "LGPL-2.0": "LGPL-2.0-only or LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only or LGPL-2.1-or-later",
    "LGPL-3.0": "LGPL-3.0-only or LGPL-3.0-or-later",
    "AGPL-3.0": "AGPL-3.0-only or AGPL-3.0-or-later",
    "GFDL-1.3": "GFDL-1.3-only or GFDL-1.3-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "GPL-3.0+": "GPL-3.0-or-later",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3.0+": "LGPL-3.0-or-later",
}
_TOKEN = re.compile(r"\s*(\(|\)|[A-Za-z0-9.+:-]+|\S)")
_IDSTRING = r"[A-Za-z0-9.-]+"
_LICENSE_REF = re.compile(rf"^(?:DocumentRef-{_IDSTRING}:)?LicenseRef-{_IDSTRING}$")
_BY_LOWER = {i.lower(): i for i in LICENSE_IDS | EXCEPTION_IDS}
MAX_LEN = 256


class LicenseProblem(ValueError):
    """The expression is invalid; ``fix`` says how to correct it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def closest(word: str, pool: frozenset[str] = LICENSE_IDS) -> str | None:
    """The known identifier closest to ``word`` (case-insensitive first), or None."""
    exact = _BY_LOWER.get(word.lower())
    if exact is not None and exact in pool:
        return exact
    lowered = {p.lower(): p for p in pool}
    normalised = re.sub(r"[\s_]+", "-", word.strip()).lower()
    if normalised in lowered:
        return lowered[normalised]
    match = difflib.get_close_matches(normalised, list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def _check_id(tok: str, *, exception: bool) -> None:
    pool = EXCEPTION_IDS if exception else LICENSE_IDS
    what = "license exception" if exception else "license identifier"
    if not exception and _LICENSE_REF.fullmatch(tok):
        return
    base = tok[:-1] if (not exception and tok.endswith("+") and tok[:-1] in LICENSE_IDS) else tok
    if base in pool:
        return
    if tok in _DEPRECATED:
        raise LicenseProblem(f"SPDX identifier {tok!r} is deprecated",
                             f"use {_DEPRECATED[tok]}")
    guess = closest(tok, pool)
    if guess is not None:
        raise LicenseProblem(f"unknown SPDX {what} {tok!r}", f"did you mean {guess!r}?")
    raise LicenseProblem(
        f"unknown SPDX {what} {tok!r}",
        "use an SPDX identifier from https://spdx.org/licenses/ (e.g. MIT, Apache-2.0), "
        "or LicenseRef-<name> for a custom license")


def check_license_expression(expr: str) -> None:
    """Raise :class:`LicenseProblem` unless ``expr`` is a valid SPDX license expression."""
    if not expr.strip():
        raise LicenseProblem("license is empty", "write an SPDX identifier, e.g. MIT")
    if len(expr) > MAX_LEN:
        raise LicenseProblem(f"license expression is longer than {MAX_LEN} characters",
                             "shorten it, or use LicenseRef-<name>")
    if expr != expr.strip():
        raise LicenseProblem("license has leading or trailing spaces", "remove them")
    tokens: list[str] = _TOKEN.findall(expr)
    whole = closest(expr)
    # A lone unknown word made of several tokens ("Apache 2.0") reads better as one guess.
    operators = ("AND", "OR", "WITH", "(", ")")
    if len(tokens) > 1 and whole is not None and not any(t.upper() in operators for t in tokens):
        raise LicenseProblem(f"{expr!r} is not an SPDX license expression",
                             f"did you mean {whole!r}?")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        return tok

    def expression(depth: int) -> None:
        if depth > 16:
            raise LicenseProblem("license expression nests too deeply", "simplify it")
        term(depth)
        while peek() in ("AND", "OR"):
            take()
            term(depth)

    def term(depth: int) -> None:
        tok = peek()
        if tok is None:
            raise LicenseProblem("license expression ends too early",
                                 "complete the expression after AND/OR/WITH")
        if tok == "(":
            take()
            expression(depth + 1)
            if peek() != ")":
                raise LicenseProblem("unbalanced parentheses in license expression",
                                     "close every '(' with ')'")
            take()
            return
        if tok in ("AND", "OR", "WITH", ")"):
            raise LicenseProblem(f"unexpected {tok!r} in license expression",
                                 "put a license identifier here")
        if tok.lower() in ("and", "or", "with"):
            raise LicenseProblem(f"SPDX operators are upper case, not {tok!r}",
                                 f"write {tok.upper()}")
        _check_id(take(), exception=False)
        if peek() == "WITH":
            take()
            exc = peek()
            if exc is None:
                raise LicenseProblem("WITH needs a license exception",
                                     "e.g. Apache-2.0 WITH LLVM-exception")
            _check_id(take(), exception=True)

    expression(0)
    if pos != len(tokens):
        tok = tokens[pos]
        if tok.lower() in ("and", "or", "with"):
            raise LicenseProblem(f"SPDX operators are upper case, not {tok!r}",
                                 f"write {tok.upper()}")
        raise LicenseProblem(f"unexpected {tok!r} in license expression",
                             "join licenses with AND, OR or WITH")
