"""The Rego test runner: discovery, pass/fail/error, filtering, coverage, crash containment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex_trust.engine import run_policy_tests
from cortex_trust.errors import PolicyError
from cortex_trust.policy import load_policy_set

FIX = Path(__file__).parent.parent / "fixtures"
SMALL = FIX / "policies_small"
ORG = FIX / "policies_org"
BAD = FIX / "policies_bad"


def test_all_is_pinned() -> None:
    import cortex_trust.engine._testing as m

    assert sorted(m.__all__) == ["FileCoverage", "TestReport", "TestResult", "run_policy_tests"]


@pytest.mark.parametrize("isolate", [False, True])
def test_small_set_passes_with_coverage(isolate: bool) -> None:
    ps = load_policy_set([SMALL], defaults=False, include_tests=True)
    report = run_policy_tests(ps, isolate=isolate)
    assert report.passed
    assert [r.full_name for r in report.results] == [
        "cortex_test.test_experimental", "cortex_test.test_untrusted_blocks",
        "cortex_test.test_revoked_blocks", "cortex_test.test_action_map_is_data"]
    assert all(r.status == "pass" and r.module == "cortex/decision_test.rego" for r in report.results)
    assert [f.name for f in report.coverage] == ["cortex/decision.rego"]  # tests excluded
    cov = report.coverage[0]
    assert 0 < cov.percent < 100 and cov.total == len(cov.covered) + len(cov.not_covered)
    # the verified tier is never reached by these tests: its lines are not covered
    assert 10 in cov.not_covered and 30 in cov.covered
    assert report.coverage_percent == pytest.approx(cov.percent)


def test_fail_and_error_statuses() -> None:
    ps = load_policy_set([SMALL, BAD / "failing_tests"], defaults=False, include_tests=True)
    report = run_policy_tests(ps, run=r"^cortex_extra_test\.")
    got = {r.name: (r.status, r.message) for r in report.results}
    assert got["test_fails"] == ("fail", "the test rule is undefined (a condition was false)")
    assert got["test_is_false"][0] == "fail" and "false" in got["test_is_false"][1]
    assert got["test_errors"][0] == "error" and "could not parse" in got["test_errors"][1]
    assert got["test_passes"] == ("pass", "")
    assert not report.passed
    assert report.counts == {"pass": 1, "fail": 2, "error": 1}


def test_run_filter_and_no_tests() -> None:
    ps = load_policy_set([SMALL], defaults=False, include_tests=True)
    report = run_policy_tests(ps, run="revoked")
    assert [r.name for r in report.results] == ["test_revoked_blocks"]
    none = run_policy_tests(ps, run="nothing-matches")
    assert none.results == () and not none.passed


def test_bad_run_regex() -> None:
    ps = load_policy_set([SMALL], defaults=False, include_tests=True)
    with pytest.raises(PolicyError, match="regular expression"):
        run_policy_tests(ps, run="(")


def test_module_without_tests_counts_as_uncovered(tmp_path: Path) -> None:
    (tmp_path / "extra.rego").write_text(
        "package extra\nimport rego.v1\n\nx if {\n\tinput.a == 1\n\tinput.b == 2\n}\n")
    ps = load_policy_set([SMALL, tmp_path], defaults=False, include_tests=True)
    report = run_policy_tests(ps, isolate=False)
    extra = next(f for f in report.coverage if f.name == "extra.rego")
    assert extra.covered == frozenset() and extra.not_covered == {5, 6}
    assert report.coverage_percent < report.coverage[0].percent


def test_a_crashing_test_errors_and_the_run_goes_on() -> None:
    ps = load_policy_set([SMALL, BAD / "recursive"], defaults=False, include_tests=True)
    report = run_policy_tests(ps, timeout=20)
    got = {r.name: r for r in report.results}
    assert got["test_crashes"].status == "error" and "crashed" in got["test_crashes"].message
    assert got["test_after_crash"].status == "pass"
    assert got["test_experimental"].status == "pass"
    assert not report.passed


def test_syntax_error_is_a_policy_error() -> None:
    ps = load_policy_set([SMALL, BAD / "syntax"], defaults=False, include_tests=True)
    with pytest.raises(PolicyError, match=r"broken\.rego:7:1"):
        run_policy_tests(ps)


def test_org_tests_run_with_the_org_dir() -> None:
    ps = load_policy_set([SMALL, ORG], defaults=False, include_tests=True)
    report = run_policy_tests(ps)
    names = [r.full_name for r in report.results]
    assert "cortex_org_test.test_network_blocked_below_verified" in names
    assert report.passed
