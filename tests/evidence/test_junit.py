"""JUnit XML test evidence: pytest, gotestsum, jest-junit, and hostile XML."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_trust.errors import EvidenceError
from cortex_trust.evidence import MAX_JUNIT_BYTES, parse_junit, read_junit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "junit"
DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize("name, totals", [
    ("pytest-mixed.xml", (7, 1, 1, 1)),
    ("pytest-pass.xml", (2, 0, 0, 0)),
    ("gotestsum-fail.xml", (4, 1, 0, 1)),
    ("jest-junit-pass.xml", (4, 0, 0, 1)),
])
def test_real_formats(name: str, totals: tuple[int, int, int, int]) -> None:
    ev = read_junit(FIXTURES / name, digest=DIGEST)
    assert ev.present
    assert (ev.total, ev.failures, ev.errors, ev.skipped) == totals
    assert ev.digest == DIGEST and ev.source == str(FIXTURES / name)


def test_bare_testsuite_root_and_namespaces() -> None:
    ev = parse_junit(b'<testsuite xmlns="urn:x" tests="2"><testcase name="a"/>'
                     b'<testcase name="b"><failure/></testcase></testsuite>')
    assert (ev.total, ev.failures) == (2, 1)


def test_error_counts_once_even_with_a_failure() -> None:
    ev = parse_junit(b"<testsuites><testsuite><testcase><failure/><error/></testcase>"
                     b"</testsuite></testsuites>")
    assert (ev.total, ev.failures, ev.errors) == (1, 0, 1)


def test_suite_attributes_win_when_they_report_more() -> None:
    # A suite that says a test failed but has no test case for it (a crashed binary, a
    # collection error) must not read as passing.
    ev = parse_junit(b'<testsuites><testsuite tests="3" failures="1" errors="1">'
                     b'<testcase name="a"/></testsuite></testsuites>')
    assert (ev.total, ev.failures, ev.errors) == (2, 1, 1)  # the declared tests="3" alone proves nothing


def test_nested_suites_are_not_double_counted() -> None:
    ev = parse_junit(b'<testsuites tests="2" failures="1"><testsuite tests="2" failures="1">'
                     b'<testsuite tests="2" failures="1"><testcase/><testcase><failure/></testcase>'
                     b'</testsuite></testsuite></testsuites>')
    assert (ev.total, ev.failures) == (2, 1)


def test_empty_suite_is_present_with_zero_tests() -> None:
    ev = parse_junit(b"<testsuites/>")
    assert ev.present and ev.total == 0  # the policy requires total > 0


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuites><testsuite name="&lol9;"><testcase/></testsuite></testsuites>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<testsuites><testsuite name="&xxe;"><testcase/></testsuite></testsuites>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<testsuites/>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY,
                                  b'<!DOCTYPE testsuites SYSTEM "junit.dtd"><testsuites/>'])
def test_dtds_and_entities_refused(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(EvidenceError, match="DTD or entities"):
        parse_junit(data)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize("data, match", [
    (b"not xml", "not well-formed"),
    (b"<testsuites><testsuite>", "not well-formed"),
    (b'{"tests": 3}', "not well-formed"),
    (b"<html><body/></html>", "root element is <html>"),
    (b'<testsuite tests="many"><testcase/></testsuite>', "whole number"),
    (b'<testsuite tests="-1"/>', "negative"),
])
def test_not_junit(data: bytes, match: str) -> None:
    with pytest.raises(EvidenceError, match=match):
        parse_junit(data)


def test_files(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such file"):
        read_junit(tmp_path / "missing.xml")
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(EvidenceError, match="empty"):
        read_junit(empty)
    huge = tmp_path / "huge.xml"
    with huge.open("wb") as f:
        f.truncate(MAX_JUNIT_BYTES + 1)
    with pytest.raises(EvidenceError, match="too large"):
        read_junit(huge)


@pytest.mark.security_review
@pytest.mark.parametrize("value", ["1_000", "+3", "\uff11\uff12", "99999999999999999999999",
                                   str(2**53), "1e3", "0x10"])
def test_junit_counts_are_plain_bounded_numbers(value: str) -> None:
    with pytest.raises(EvidenceError, match="whole number"):
        parse_junit(f'<testsuite tests="{value}"><testcase/></testsuite>'.encode())


@pytest.mark.security_review
def test_junit_plain_counts_still_read() -> None:
    ev = parse_junit(b'<testsuite tests=" 3 " failures=" 2 "><testcase/></testsuite>')
    assert (ev.total, ev.failures) == (2, 2)


@pytest.mark.security_review
def test_junit_declared_totals_without_test_cases_prove_nothing() -> None:
    ev = parse_junit(b'<testsuite name="s" tests="500" failures="0" errors="0"/>')
    assert (ev.present, ev.total) == (True, 0)
    worse = parse_junit(b'<testsuite tests="1" failures="3"><testcase name="a"/></testsuite>')
    assert (worse.total, worse.failures) == (3, 3)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet="<>/=\"' &;!testcasuifrokpd", max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    try:
        ev = parse_junit(raw)
    except EvidenceError:
        return
    assert min(ev.total, ev.failures, ev.errors, ev.skipped) >= 0 and ev.present


def test_public_surface() -> None:
    import cortex_trust.evidence._junit as mod

    assert sorted(mod.__all__) == ["FailedCase", "MAX_JUNIT_BYTES", "failed_cases", "parse_junit", "read_junit"]


def test_failed_cases_say_where_the_test_is(tmp_path: Path) -> None:
    from cortex_trust.evidence import FailedCase, failed_cases

    # pytest xunit2 has no file/line attributes: the failure text's last "path:line:" says it.
    assert failed_cases(FIXTURES / "pytest-mixed.xml") == [
        FailedCase("test_sample.test_fail", "assert (1 + 1) == 3", "test_sample.py", 7),
        FailedCase("test_sample.test_error", 'failed on setup with "RuntimeError: fixture broke"',
                   "test_sample.py", 15)]
    # Attributes win; a case without either has no place; passing and skipped cases are not listed.
    report = tmp_path / "j.xml"
    report.write_text('<testsuite><testcase classname="c" name="a" file="src/t.py" line="3">'
                      '<failure message="boom">x.py:9: E</failure></testcase>'
                      '<testcase name="b"><error/></testcase><testcase name="ok"/>'
                      '<testcase name="s"><skipped/></testcase></testsuite>')
    assert failed_cases(report) == [FailedCase("c.a", "boom", "src/t.py", 3), FailedCase("b", "error", None, None)]
    assert failed_cases(report, limit=1) == [FailedCase("c.a", "boom", "src/t.py", 3)]


def test_when_the_tests_ran() -> None:
    """The earliest suite timestamp that names a time zone, in UTC; JUnit's own local-time
    format (no zone) is an unknown instant, never guessed."""
    assert read_junit(FIXTURES / "pytest-pass.xml").created_at == "2026-11-25T22:05:44Z"
    assert read_junit(FIXTURES / "gotestsum-fail.xml").created_at == "2026-11-25T22:00:00Z"
    assert read_junit(FIXTURES / "jest-junit-pass.xml").created_at is None
    two = (b'<testsuites><testsuite name="a" timestamp="2026-11-25T23:00:00+01:00"><testcase name="x"/>'
           b'</testsuite><testsuite name="b" timestamp="2026-11-25T21:30:00Z"><testcase name="y"/>'
           b'</testsuite><testsuite name="c" timestamp="not a time"/></testsuites>')
    assert parse_junit(two).created_at == "2026-11-25T21:30:00Z"
    assert parse_junit(b'<testsuite name="a"><testcase name="x"/></testsuite>').created_at is None
