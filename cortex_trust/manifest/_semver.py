"""Semantic Versioning 2.0.0: parsing, precedence and version requirements.

Used by the manifest (``version``, ``trust.min_cortex_version``) and by everything that orders or
resolves plugin versions. The rules are the ones of https://semver.org/spec/v2.0.0.html:

* a version is ``MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` with no leading zeros in numbers
  (spec items 2, 9, 10); no ``v`` prefix, no missing parts;
* precedence compares major, minor, patch numerically; a pre-release has lower precedence than
  the release; pre-release identifiers compare numerically when both are numeric, in ASCII
  order otherwise, numeric before alphanumeric, and a shorter list first when all shared ones are
  equal; build metadata is ignored (spec item 11).

A *minimum* (:func:`parse_minimum`, the manifest's ``trust.min_cortex_version``) may leave out
trailing parts, which are then 0: ``"8"`` and ``"8.0"`` both mean 8.0.0.

Requirements (:func:`satisfies`) follow the usual package-manager forms: exact ``1.2.3``,
partial ``1.2`` (any ``1.2.x``), caret ``^1.2``, tilde ``~1.2.3``, comparison sets such as
``>=1.0,<2`` (comma or space separated, all must hold), ``*``, and alternatives joined with
``||``. A pre-release version only satisfies a requirement that names a pre-release of the same
``MAJOR.MINOR.PATCH`` (npm's rule): ``^1.0`` never selects ``2.0.0-rc.1`` or ``1.5.0-beta``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import SemVerError

__all__ = [
    "SemVer",
    "SemVerError",
    "parse_minimum",
    "parse_semver",
    "satisfies",
    "semver_key",
]

# The regular expression suggested by semver.org (item "Is there a suggested regular
# expression"), anchored; numbers without leading zeros.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$",
    re.ASCII,
)
# A partial version inside a requirement: ``1``, ``1.2``, ``1.2.3-rc.1``; ``x``/``*`` wildcards.
_PARTIAL = re.compile(
    r"^(0|[1-9]\d*|[xX*])(?:\.(0|[1-9]\d*|[xX*]))?(?:\.(0|[1-9]\d*|[xX*]))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$",
    re.ASCII,
)
# A minimum written with fewer parts: ``8`` or ``8.0`` (no pre-release, no build).
_SHORT = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$", re.ASCII)
_COMPARATOR = re.compile(r"^(>=|<=|>|<|==|=|!=|\^|~)?\s*(.+)$")
# Versions longer than this are refused before any regular expression runs on them.
_MAX_LEN = 256


class SemVer(NamedTuple):
    """A parsed version. Tuple order is *not* precedence: use :func:`semver_key` to sort."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            s += "+" + ".".join(self.build)
        return s


def parse_semver(s: str) -> SemVer:
    """Parse a full SemVer 2.0.0 version string.

    Numeric pre-release identifiers become ``int``, others stay ``str``.
    Raises :class:`SemVerError` (a ``ValueError``) with a message saying what is wrong.
    """
    if not isinstance(s, str):
        raise SemVerError(f"a version must be a string, not {type(s).__name__}")
    if len(s) > _MAX_LEN:
        raise SemVerError(f"version is longer than {_MAX_LEN} characters")
    m = _SEMVER.fullmatch(s)
    if m is None:
        raise SemVerError(_explain(s))
    major, minor, patch, pre, build = m.groups()
    prerelease: tuple[int | str, ...] = ()
    if pre is not None:
        prerelease = tuple(int(p) if p.isdigit() else p for p in pre.split("."))
    return SemVer(int(major), int(minor), int(patch), prerelease,
                  tuple(build.split(".")) if build is not None else ())


def parse_minimum(s: str) -> SemVer:
    """Parse a minimum version: ``MAJOR``, ``MAJOR.MINOR`` or a full SemVer 2.0.0 version.

    Missing parts are 0 (``"8.0"`` is 8.0.0, the lowest version of 8.0). Raises
    :class:`SemVerError` saying what is wrong; never guesses (``"v8"``, ``">=8"``, ``"8.x"`` and
    leading zeros are refused).
    """
    if isinstance(s, str) and len(s) <= _MAX_LEN:
        m = _SHORT.fullmatch(s)
        if m is not None:
            return SemVer(int(m.group(1)), int(m.group(2) or 0), 0)
    try:
        return parse_semver(s)
    except SemVerError:
        if not isinstance(s, str) or len(s) > _MAX_LEN:
            raise
        raise SemVerError(_explain_minimum(s)) from None


def _explain_minimum(s: str) -> str:
    if s.startswith(("v", "V")) and (_SHORT.fullmatch(s[1:]) or _SEMVER.fullmatch(s[1:])):
        return f"{s!r} has a 'v' prefix; write the version without it ({s[1:]})"
    m = _COMPARATOR.fullmatch(s.strip())
    if m is not None and m.group(1):
        return f"{s!r} is a requirement; this field is already a minimum, so write only the version"
    core = re.split(r"[-+]", s, maxsplit=1)[0]
    if any(len(p) > 1 and p.startswith("0") and p.isdigit() for p in core.split(".")):
        return f"{s!r} has a number with a leading zero, which SemVer forbids"
    return f"{s!r} is not a version (MAJOR.MINOR.PATCH, MAJOR.MINOR or MAJOR, e.g. 8.0)"


def _explain(s: str) -> str:
    """A precise reason why ``s`` is not SemVer (for error messages)."""
    if s.startswith(("v", "V")) and _SEMVER.fullmatch(s[1:]):
        return f"{s!r} has a 'v' prefix; SemVer is written without it ({s[1:]})"
    core = re.split(r"[-+]", s, maxsplit=1)[0]
    parts = core.split(".")
    if len(parts) < 3 and all(p.isdigit() for p in parts if p):
        return f"{s!r} is not MAJOR.MINOR.PATCH (all three numbers are required)"
    if any(len(p) > 1 and p.startswith("0") and p.isdigit() for p in parts):
        return f"{s!r} has a number with a leading zero, which SemVer forbids"
    return f"{s!r} is not a SemVer 2.0.0 version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])"


def semver_key(v: str | SemVer) -> tuple[object, ...]:
    """A sort key implementing SemVer 2.0.0 precedence (build metadata ignored).

    ``sorted(versions, key=semver_key)`` orders from lowest to highest precedence; two versions
    that differ only in build metadata get equal keys. Raises :class:`SemVerError` for strings
    that are not versions.
    """
    sv = parse_semver(v) if isinstance(v, str) else v
    if not sv.prerelease:
        # A release ranks above every pre-release of the same MAJOR.MINOR.PATCH (item 11.3).
        return (sv.major, sv.minor, sv.patch, 1, ())
    ids = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in sv.prerelease)
    return (sv.major, sv.minor, sv.patch, 0, ids)


def _cmp(a: SemVer, b: SemVer) -> int:
    ka, kb = semver_key(a), semver_key(b)
    return (ka > kb) - (ka < kb)


class _Bound(NamedTuple):
    op: str  # one of >=, >, <, <=, ==, !=
    version: SemVer
    written: bool = True  # False for bounds we derived (the "-0" upper end of ^1.2)


def _partial(text: str) -> tuple[list[int | None], tuple[int | str, ...]]:
    m = _PARTIAL.fullmatch(text)
    if m is None:
        raise SemVerError(f"{text!r} is not a version in a requirement")
    nums: list[int | None] = []
    for g in m.groups()[:3]:
        nums.append(None if g is None or g in "xX*" else int(g))
    # A wildcard ends the precision: ``1.x.3`` means ``1.x``.
    if None in nums:
        first = nums.index(None)
        nums = nums[:first] + [None] * (3 - first)
    pre = m.group(4)
    prerelease = tuple(int(p) if p.isdigit() else p for p in pre.split(".")) if pre else ()
    if prerelease and None in nums:
        raise SemVerError(f"{text!r}: a pre-release needs a full MAJOR.MINOR.PATCH")
    return nums, prerelease


def _expand(op: str, text: str) -> list[_Bound]:
    """One comparator of a requirement as a list of bounds (all must hold)."""
    nums, pre = _partial(text)
    major, minor, patch = nums
    full = SemVer(major or 0, minor or 0, patch or 0, pre)

    def upper(level: int) -> SemVer:
        # The first version above the range, as a "-0" pre-release so that pre-releases of the
        # next version (2.0.0-rc.1 for ^1) are excluded too.
        if level == 0:
            return SemVer((major or 0) + 1, 0, 0, (0,))
        if level == 1:
            return SemVer(major or 0, (minor or 0) + 1, 0, (0,))
        return SemVer(major or 0, minor or 0, (patch or 0) + 1, (0,))

    def derived(op: str, v: SemVer) -> _Bound:
        return _Bound(op, v, written=False)

    if major is None:  # ``*``: any version
        return [] if op in ("", "=", "==", ">=", "^", "~", "<=") else [
            derived("<", SemVer(0, 0, 0, (0,)))]
    precision = 3 if patch is not None else 2 if minor is not None else 1
    if op in ("", "=", "=="):
        if precision == 3:
            return [_Bound("==", full)]
        return [_Bound(">=", full), derived("<", upper(precision - 1))]
    if op == "!=":
        if precision != 3:
            raise SemVerError(f"'!={text}' needs a full version")
        return [_Bound("!=", full)]
    if op == "^":
        # The leftmost non-zero part may not change (^0.2.3 := >=0.2.3 <0.3.0).
        if major != 0 or precision == 1:
            level = 0
        elif minor != 0 or precision == 2:
            level = 1
        else:
            level = 2
        return [_Bound(">=", full), derived("<", upper(level))]
    if op == "~":
        level = 0 if precision == 1 else 1
        return [_Bound(">=", full), derived("<", upper(level))]
    if op == ">=":
        return [_Bound(">=", full)]
    if op == ">":
        return [_Bound(">", full)] if precision == 3 else [derived(">=", upper(precision - 1))]
    if op == "<":
        if precision == 3:
            return [_Bound("<", full)]
        return [derived("<", SemVer(*full[:3], (0,)))]
    if op == "<=":
        return [_Bound("<=", full)] if precision == 3 else [derived("<", upper(precision - 1))]
    raise SemVerError(f"unknown operator {op!r}")  # pragma: no cover - regex limits operators


def _parse_set(text: str) -> tuple[list[_Bound], list[SemVer]]:
    """A comparator set (``>=1.0,<2``): its bounds and the pre-releases it names."""
    items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    # Allow ">= 1.0" (operator and version separated by a space).
    merged: list[str] = []
    for item in items:
        if merged and merged[-1] in (">=", "<=", ">", "<", "=", "==", "!=", "^", "~"):
            merged[-1] += item
        else:
            merged.append(item)
    if not merged:
        raise SemVerError("empty version requirement")
    bounds: list[_Bound] = []
    named: list[SemVer] = []
    for item in merged:
        m = _COMPARATOR.fullmatch(item)
        if m is None:  # pragma: no cover - the pattern matches any non-empty string
            raise SemVerError(f"{item!r} is not a comparator")
        op, ver = m.group(1) or "", m.group(2)
        new = _expand(op, ver)
        bounds.extend(new)
        named.extend(b.version for b in new if b.written and b.version.prerelease)
    return bounds, named


def _holds(v: SemVer, b: _Bound) -> bool:
    c = _cmp(v, b.version)
    return {
        "==": c == 0, "!=": c != 0, ">=": c >= 0, ">": c > 0, "<": c < 0, "<=": c <= 0,
    }[b.op]


def satisfies(version: str | SemVer, spec: str) -> bool:
    """Whether ``version`` meets the requirement ``spec``.

    Supports ``1.2.3``, ``1.2`` / ``1.x``, ``^1.2``, ``~1.2.3``, ``>=1.0,<2`` (all must hold),
    ``*`` and ``A || B``. Pre-releases are only matched by a requirement naming a pre-release of
    the same ``MAJOR.MINOR.PATCH``. Raises :class:`SemVerError` when ``version`` is not SemVer
    or ``spec`` cannot be parsed; never guesses.
    """
    v = parse_semver(version) if isinstance(version, str) else version
    if not isinstance(spec, str) or len(spec) > _MAX_LEN * 4:
        raise SemVerError("a version requirement must be a string of reasonable length")
    alternatives = spec.split("||")
    parsed = [_parse_set(alt) for alt in alternatives]  # parse all: a bad spec is always an error
    for bounds, named in parsed:
        if not all(_holds(v, b) for b in bounds):
            continue
        if v.prerelease and not any(n[:3] == v[:3] for n in named):
            continue
        return True
    return False
