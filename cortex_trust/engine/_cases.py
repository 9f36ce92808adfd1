"""Declarative policy test cases: YAML files of inputs and the decision each must get.

``cortex policy test DIR`` runs every ``*_test.yaml`` (or ``*_test.yml``) file below ``DIR``
beside the Rego tests, so an organization can pin "this plugin must stay blocked" without
writing Rego::

    cases:
      - name: an unscanned plugin stays experimental
        input: ../examples/inputs/experimental.json   # relative to this file; or an inline mapping
        patch: {evidence: {revocation: {revoked: true}}}   # optional, deep-merged over the input
        expect:
          tier: experimental            # each key optional; at least one
          action: block
          reasons: [REVOKED]            # codes that must all be among the decision's reasons
          absent: [TIER_VERIFIED]       # codes that must not be
          next_tier: community          # or null at the top
          overridable: false

A case passes when the decision (the same :func:`~cortex_trust.engine.decide` every command
uses, fail-closed included) meets every expectation; it fails with each mismatch named, and
errors when its input cannot be read or is not a valid input document. A file that is not such
a document (an unknown key, a wrong type, YAML the hardened loader refuses) is a
:class:`~cortex_trust.errors.PolicyError` with ``file:line:col``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CortexTrustError, ManifestError, PolicyError

__all__ = ["PolicyCase", "find_case_files", "load_cases", "run_cases"]

_CASE_KEYS = frozenset({"name", "input", "patch", "expect"})
_EXPECT_KEYS = frozenset({"tier", "action", "reasons", "absent", "next_tier", "overridable"})


@dataclass(frozen=True)
class PolicyCase:
    """One case: ``input`` is the document (already read and patched) or the
    :class:`CortexTrustError` that reading it raised; ``line`` is where the case starts and
    ``expect_lines`` where each expectation is written."""

    file: Path
    name: str
    line: int
    input: Mapping[str, Any] | CortexTrustError
    expect: Mapping[str, Any]
    expect_lines: Mapping[str, int]


def find_case_files(dirs: Sequence[Path]) -> list[Path]:
    """Every ``*_test.yaml``/``*_test.yml`` below ``dirs`` (hidden directories skipped), sorted."""
    out: list[Path] = []
    for d in dirs:
        for path in sorted(Path(d).rglob("*_test.y*ml")):
            rel = path.relative_to(d)
            if path.suffix in (".yaml", ".yml") and path.is_file() \
                    and not any(p.startswith(".") for p in rel.parts):
                out.append(path)
    return out


def load_cases(path: Path) -> list[PolicyCase]:
    """The cases of one file. Raises :class:`PolicyError` (``file:line:col``) when it is not a
    case document."""
    from .._io import read_evidence_file
    from ..manifest._yaml import load_document

    try:
        doc = load_document(read_evidence_file(path, what="test cases"), source=str(path),
                            what="test cases")
    except ManifestError as e:
        raise PolicyError(e.message, advice=e.advice) from None
    except CortexTrustError as e:
        raise PolicyError(f"cannot read the test cases {path}: {e.message}", advice=e.advice) from None

    def bad(where: tuple[str | int, ...], problem: str, fix: str, *, key: bool = False) -> PolicyError:
        m = doc.mark(where, key=key)
        return PolicyError(f"{path}:{m.line}:{m.column}: {problem}", advice=fix)

    unknown = set(doc.value) - {"cases"}
    if unknown:
        k = sorted(unknown)[0]
        raise bad((k,), f"unknown key {k!r}", "a test case file has one key, cases", key=True)
    cases = doc.value.get("cases")
    if not isinstance(cases, list) or not cases:
        raise bad(("cases",), "cases must be a non-empty list", "list the cases under cases:")
    out: list[PolicyCase] = []
    names: set[str] = set()
    for i, case in enumerate(cases):
        at: tuple[str | int, ...] = ("cases", i)
        if not isinstance(case, dict):
            raise bad(at, "a case must be a mapping", "write name:, input: and expect:")
        for k in sorted(set(case) - _CASE_KEYS):
            raise bad((*at, k), f"unknown key {k!r} in a case", f"use {', '.join(sorted(_CASE_KEYS))}", key=True)
        name = case.get("name")
        if not isinstance(name, str) or not name.strip():
            raise bad((*at, "name"), "each case needs a name", "add name: what the case pins")
        if name in names:
            raise bad((*at, "name"), f"the case name {name!r} is used twice", "give each case its own name")
        names.add(name)
        expect = case.get("expect")
        if not isinstance(expect, dict) or not expect:
            raise bad((*at, "expect"), "each case needs a non-empty expect mapping",
                      "expect at least one of tier, action, reasons, absent, next_tier, overridable")
        for k in sorted(set(expect) - _EXPECT_KEYS):
            raise bad((*at, "expect", k), f"unknown expectation {k!r}",
                      f"use {', '.join(sorted(_EXPECT_KEYS))}", key=True)
        for k in ("tier", "action"):
            if k in expect and not isinstance(expect[k], str):
                raise bad((*at, "expect", k), f"expect.{k} must be a string", f"write e.g. {k}: block")
        if "next_tier" in expect and expect["next_tier"] is not None and not isinstance(expect["next_tier"], str):
            raise bad((*at, "expect", "next_tier"), "expect.next_tier must be a tier or null",
                      "write e.g. next_tier: community")
        if "overridable" in expect and not isinstance(expect["overridable"], bool):
            raise bad((*at, "expect", "overridable"), "expect.overridable must be true or false",
                      "write overridable: false")
        for k in ("reasons", "absent"):
            v = expect.get(k, [])
            if not isinstance(v, list) or not all(isinstance(c, str) for c in v):
                raise bad((*at, "expect", k), f"expect.{k} must be a list of reason codes",
                          f"write {k}: [REVOKED]")
        patch = case.get("patch", {})
        if not isinstance(patch, dict):
            raise bad((*at, "patch"), "patch must be a mapping", "write the fields to change as a mapping")
        raw = case.get("input")
        if isinstance(raw, str):
            document: Mapping[str, Any] | CortexTrustError = _read_input(path.parent / raw)
        elif isinstance(raw, dict):
            document = copy.deepcopy(raw)
        else:
            raise bad((*at, "input"), "input must be a file name or an inline input document",
                      "write input: inputs/x.json (relative to this file)")
        if isinstance(document, dict):
            document = _merged(document, patch)
        lines = {k: doc.mark((*at, "expect", k), key=True).line for k in expect}
        out.append(PolicyCase(path, name, doc.mark(at).line, document, expect, lines))
    return out


def _read_input(path: Path) -> Mapping[str, Any] | CortexTrustError:
    from .._io import read_evidence_file
    from .._json import JsonLimitError, load_json
    from ..errors import EvidenceError

    try:
        value = load_json(read_evidence_file(path, what="input"))
    except CortexTrustError as e:
        return e
    except (JsonLimitError, ValueError) as e:
        return EvidenceError(f"{path}: the input is not valid JSON: {e}")
    if not isinstance(value, dict):
        return EvidenceError(f"{path}: the input is not a JSON object")
    return value


def _merged(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merged(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def run_cases(engine: Any, cases: Sequence[PolicyCase], *, shown: Any = str) -> Iterator[Any]:
    """Decide each case with ``engine`` and yield a :class:`~cortex_trust.engine.TestResult`
    per case (``package`` is the file as ``shown`` prints it, ``failure`` the first mismatch)."""
    from pydantic import ValidationError

    from ..policy import PolicyInput
    from ._decide import decide
    from ._testing import TestResult

    for case in cases:
        start = time.perf_counter()
        where = shown(str(case.file))
        failure = None
        if isinstance(case.input, CortexTrustError):
            status, message = "error", case.input.message
        else:
            try:
                policy_input = PolicyInput.model_validate(case.input)
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(p) for p in first["loc"]) or "(root)"
                status, message = "error", f"the input is not a valid input document: input.{loc}: {first['msg']}"
            else:
                decision = decide(engine, policy_input)
                mismatches = list(_mismatches(case.expect, decision))
                if mismatches:
                    status = "fail"
                    message = "; ".join(m[0] for m in mismatches)
                    key, expression, term, value = mismatches[0][1:]
                    failure = {"line": case.expect_lines.get(key, case.line), "expression": expression,
                               "values": [{"term": term, "value": value}]}
                else:
                    status, message = "pass", ""
        yield TestResult(where, case.name, status, message, time.perf_counter() - start,
                         where, case.line, failure, case_file=True)


def _mismatches(expect: Mapping[str, Any], decision: Any) -> Iterator[tuple[str, str, str, str, Any]]:
    """``(message, key, expectation, term, actual value)`` for each expectation ``decision``
    misses."""
    codes = [r.code for r in decision.reasons]
    actual: dict[str, Any] = {
        "tier": str(decision.tier), "action": str(decision.action), "overridable": decision.overridable,
        "next_tier": str(decision.next_tier.tier) if decision.next_tier is not None else None,
    }
    for key in ("tier", "action", "next_tier", "overridable"):
        if key in expect and expect[key] != actual[key]:
            yield (f"expected {key} {json.dumps(expect[key])}, got {json.dumps(actual[key])}", key,
                   f"{key}: {json.dumps(expect[key])}", key, actual[key])
    missing = [c for c in expect.get("reasons", []) if c not in codes]
    if missing:
        yield (f"expected reason(s) {', '.join(missing)} among {', '.join(codes)}", "reasons",
               f"reasons: {json.dumps(expect['reasons'])}", "reasons", codes)
    present = [c for c in expect.get("absent", []) if c in codes]
    if present:
        yield (f"reason(s) {', '.join(present)} must be absent", "absent",
               f"absent: {json.dumps(expect['absent'])}", "reasons", codes)
