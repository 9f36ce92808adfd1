"""Test-result evidence from JUnit XML (pytest, go test via gotestsum/go-junit-report, jest-junit).

Totals are counted from the ``<testcase>`` elements themselves (one outcome per test case:
``<error>`` over ``<failure>`` over ``<skipped>``), then cross-checked with the ``tests``,
``failures``, ``errors`` and ``skipped`` attributes of the innermost ``<testsuite>`` elements;
where they disagree the larger number wins, so a suite that reports a failure without a test
case for it (a collection error, a crashed binary) can never read as passing.

Parsing is hardened with :mod:`defusedxml`: any DTD is refused (which stops entity expansion
bombs and external entities), and the file is capped at :data:`MAX_JUNIT_BYTES`. Everything
that is not a JUnit document is an :class:`~cortex_trust.errors.EvidenceError`.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .._io import display_path, read_evidence_file
from ..errors import EvidenceError
from ..policy import TestEvidence, format_time

__all__ = ["MAX_JUNIT_BYTES", "FailedCase", "failed_cases", "parse_junit", "read_junit"]

#: Largest JUnit file we read (50 MiB: a very large suite writes a few MiB).
MAX_JUNIT_BYTES = 50 * 1024 * 1024

_COUNT_RE = re.compile(r"[0-9]{1,16}")
_MAX_COUNT = 2**53 - 1

_ADVICE = "pass the JUnit XML your test runner wrote (pytest --junitxml, gotestsum --junitfile, jest-junit)"


def _local(tag: object) -> str:
    # Ignore XML namespaces ({uri}testcase) some writers add.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _leaf_suites(root: ET.Element) -> Iterator[ET.Element]:
    for el in root.iter():
        if _local(el.tag) == "testsuite" and not any(
                _local(c.tag) == "testsuite" for c in el):
            yield el


def _attr(el: ET.Element, name: str, *, shown: str) -> int:
    raw = el.get(name)
    if raw is None or raw.strip() == "":
        return 0
    text = raw.strip()
    if text.startswith("-") and _COUNT_RE.fullmatch(text[1:]):
        raise EvidenceError(f"JUnit XML {shown}: <{_local(el.tag)} {name}={raw[:40]!r}> is negative",
                            advice=_ADVICE)
    # ASCII digits only: int() would also take "1_000", "+3" and non-ASCII digits, which no
    # test runner writes. At most 2**53 - 1: the count must survive JSON and the policy engine.
    if not _COUNT_RE.fullmatch(text) or int(text) > _MAX_COUNT:
        raise EvidenceError(f"JUnit XML {shown}: <{_local(el.tag)} {name}={raw[:40]!r}> is not a "
                            "whole number of tests", advice=_ADVICE)
    return int(text)


def parse_root(data: bytes, *, shown: str) -> ET.Element:
    """The root element of JUnit XML ``data`` (``<testsuites>`` or ``<testsuite>``), parsed
    hardened. Raises :class:`EvidenceError` like :func:`parse_junit`."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as e:
        raise EvidenceError(
            f"JUnit XML {shown}: refused: it declares a DTD or entities ({type(e).__name__})",
            advice="test runners never write DTDs; pass the file the runner wrote") from None
    except ET.ParseError as e:
        raise EvidenceError(f"JUnit XML {shown}: not well-formed XML ({e})", advice=_ADVICE) from None
    except (ValueError, RecursionError) as e:
        raise EvidenceError(f"JUnit XML {shown}: cannot be parsed ({e})", advice=_ADVICE) from None
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise EvidenceError(f"JUnit XML {shown}: the root element is <{_local(root.tag)}>, not "
                            "<testsuites> or <testsuite>", advice=_ADVICE)
    return root


def parse_junit(data: bytes, *, digest: str | None = None, source: str | None = None) -> TestEvidence:
    """Count the tests in JUnit XML ``data``.

    ``digest`` is the artifact digest the caller states the tests were run against (JUnit
    itself names none). ``created_at`` is the earliest suite ``timestamp`` that names a time
    zone (``None`` when none does). Raises :class:`EvidenceError` for XML with a DTD or entities, malformed
    XML, or a root element other than ``<testsuites>``/``<testsuite>``.
    """
    shown = source or "(junit)"
    root = parse_root(data, shown=shown)

    total = failures = errors = skipped = 0
    for case in root.iter():
        if _local(case.tag) != "testcase":
            continue
        total += 1
        outcomes = {_local(c.tag) for c in case}
        if "error" in outcomes:
            errors += 1
        elif "failure" in outcomes:
            failures += 1
        elif "skipped" in outcomes:
            skipped += 1

    declared = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in _leaf_suites(root):
        for name in declared:
            declared[name] += _attr(suite, name, shown=shown)
    # Only listed test cases count as run: a bare `<testsuite tests="500"/>` proves nothing
    # passed. Problems count from whichever side reports more of them (a crashed binary or a
    # collection error has no test case), and a reported problem is a test that ran.
    failures = max(failures, declared["failures"])
    errors = max(errors, declared["errors"])
    skipped = max(skipped, declared["skipped"])
    started = [t for t in (_timestamp(suite.get("timestamp")) for suite in root.iter()
                           if _local(suite.tag) == "testsuite") if t is not None]
    return TestEvidence(
        present=True,
        total=max(total, failures + errors + skipped),
        failures=failures,
        errors=errors,
        skipped=skipped,
        created_at=min(started) if started else None,
        digest=digest,
        source=source,
    )


def _timestamp(raw: str | None) -> str | None:
    """A suite's ``timestamp`` in UTC (RFC 3339 seconds), or ``None`` when it is missing, not a
    time, or names no time zone (JUnit's own format is local time: an unknown instant)."""
    if raw is None or len(raw) > 64:
        return None
    try:
        t = datetime.fromisoformat(raw.strip())
        return format_time(t) if t.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def read_junit(path: str | os.PathLike[str], *, digest: str | None = None,
               source: str | None = None) -> TestEvidence:
    """Read the JUnit XML file at ``path`` and return its totals as test evidence.

    Raises :class:`EvidenceError` when the file is missing, unreadable, empty, larger than
    :data:`MAX_JUNIT_BYTES`, or not safe, well-formed JUnit XML.
    """
    shown = display_path(path)
    data = read_evidence_file(path, what="JUnit XML", max_bytes=MAX_JUNIT_BYTES)
    return parse_junit(data, digest=digest, source=source or shown)


@dataclass(frozen=True)
class FailedCase:
    """A test case that failed or errored: its name (``classname.name``), the first line of
    its message, and where the test is written when the report says so (``file``/``line``
    attributes, else the last ``path:line:`` of the failure text), else ``None``."""

    name: str
    message: str
    file: str | None
    line: int | None


# pytest's failure text ends with the failing line: "test_sample.py:7: AssertionError".
_WHERE = re.compile(r"^([\w./-]{1,500}\.[A-Za-z0-9]{1,10}):([0-9]{1,9}):", re.MULTILINE)


def failed_cases(path: str | os.PathLike[str], *, limit: int = 50) -> list[FailedCase]:
    """The first ``limit`` failed or errored test cases of the JUnit XML file at ``path``, in
    document order. Raises :class:`EvidenceError` like :func:`read_junit`."""
    shown = display_path(path)
    root = parse_root(read_evidence_file(path, what="JUnit XML", max_bytes=MAX_JUNIT_BYTES), shown=shown)
    out: list[FailedCase] = []
    for case in root.iter():
        if _local(case.tag) != "testcase":
            continue
        bad = [c for c in case if _local(c.tag) in ("error", "failure")]
        if not bad:
            continue
        text = (bad[0].text or "").strip()
        message = (bad[0].get("message") or text or _local(bad[0].tag)).strip().splitlines()[0][:300]
        file, line = case.get("file"), case.get("line")
        if not (file and line and line.isdigit()):
            where = _WHERE.findall(text)
            file, line = where[-1] if where else (None, None)
        name = ".".join(x for x in (case.get("classname"), case.get("name")) if x) or "(unnamed test)"
        out.append(FailedCase(name, message, file or None, int(line) if line else None))
        if len(out) >= limit:
            break
    return out
