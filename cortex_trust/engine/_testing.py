"""The Rego test runner behind ``cortex policy test``.

Discovers every rule named ``test_*`` in every package of a policy set (load it with
``include_tests=True``), evaluates each one (``with input as`` / ``with data.x as`` work as in
OPA) and reports:

* ``pass`` when the rule is defined and ``true``; ``fail`` when it is undefined, ``false`` or any
  other value, with the first unsatisfied expression and the values of its terms (as ``opa
  test --var-values``); ``error`` when evaluation raised (a builtin error, a crash, a timeout);
* line coverage of the non-test modules, from regorus' coverage report. A module no test reached
  counts with all its statement lines uncovered.

Organization tests run in the isolated worker (a crashing test is an ``error``, the run goes on
with a fresh worker); the defaults run in-process.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineError, PolicyError
from ..policy import PolicySet

__all__ = ["FileCoverage", "TestReport", "TestResult", "run_policy_tests"]


@dataclass(frozen=True)
class TestResult:
    """One test: ``status`` is ``pass``, ``fail`` or ``error``; ``duration`` in seconds."""

    __test__ = False  # not a pytest class

    package: str
    name: str
    status: str
    message: str
    duration: float
    module: str = ""
    line: int = 0
    #: For a failure: ``{"line", "expression", "values": [{"term", "value"}]}``, the first
    #: unsatisfied expression of the test and the values of its terms (when it could be found).
    failure: Mapping[str, Any] | None = None
    #: A declarative case (:mod:`cortex_trust.engine._cases`): ``package`` is its file.
    case_file: bool = False

    @property
    def full_name(self) -> str:
        """``package.test_name`` without the ``data.`` prefix (as printed); ``file::case`` for
        a declarative case."""
        if self.case_file:
            return f"{self.package}::{self.name}"
        return f"{self.package.removeprefix('data.')}.{self.name}"


@dataclass(frozen=True)
class FileCoverage:
    """Line coverage of one non-test module."""

    name: str
    path: str
    covered: frozenset[int]
    not_covered: frozenset[int]

    @property
    def total(self) -> int:
        return len(self.covered) + len(self.not_covered)

    @property
    def percent(self) -> float:
        return 100.0 * len(self.covered) / self.total if self.total else 100.0


@dataclass(frozen=True)
class TestReport:
    """All results and the coverage. ``passed`` is true only when at least one test ran and
    none failed or errored."""

    __test__ = False

    results: tuple[TestResult, ...]
    coverage: tuple[FileCoverage, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.status == "pass" for r in self.results)

    @property
    def counts(self) -> Mapping[str, int]:
        out = {"pass": 0, "fail": 0, "error": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    @property
    def coverage_percent(self) -> float:
        """Covered lines over all statement lines of the non-test modules (100 if none)."""
        total = sum(f.total for f in self.coverage)
        return 100.0 * sum(len(f.covered) for f in self.coverage) / total if total else 100.0


def run_policy_tests(policy_set: PolicySet, *, run: str | None = None, isolate: bool | None = None,
                     timeout: float = 10.0) -> TestReport:
    """Run the ``test_*`` rules of ``policy_set`` whose ``package.name`` matches ``run`` (a
    regular expression, searched); with ``run``, coverage counts only the non-test modules the
    selected tests reached. ``isolate=None`` isolates when the set has custom code;
    ``timeout`` bounds each test in isolated mode.

    Raises :class:`PolicyError` when a module does not parse or ``run`` is not a valid regular
    expression; :class:`EngineError` when the worker cannot load the policies.
    """
    try:
        pattern = re.compile(run) if run else None
    except re.error as e:
        raise PolicyError(f"--run {run!r} is not a valid regular expression: {e}",
                          advice="pass a Python regular expression, e.g. --run 'tier'") from None
    from ._embedded import open_session

    iso = policy_set.has_custom if isolate is None else isolate
    session = open_session(policy_set, isolate=iso, coverage=True)
    results: list[TestResult] = []
    covered: dict[str, set[int]] = {}
    seen_lines: dict[str, set[int]] = {}
    try:
        statement_lines = session.call({"op": "statement_lines"})["lines"]
        tests = session.call({"op": "tests"})["tests"]
        for package, name, module, line in tests:
            full = f"{package.removeprefix('data.')}.{name}"
            if pattern is not None and not pattern.search(full):
                continue
            start = time.perf_counter()
            try:
                answer = session.call({"op": "run_test", "path": f"{package}.{name}"},
                                      timeout=timeout)
                status, message, failure = answer["status"], answer["message"], answer.get("failure")
                for fname, (cov, uncov) in answer["coverage"].items():
                    covered.setdefault(fname, set()).update(cov)
                    seen_lines.setdefault(fname, set()).update(cov, uncov)
            except EngineError as e:
                # A crash or timeout: the test errors, the session restarts on the next call.
                status, message, failure = "error", e.message, None
            results.append(TestResult(package, name, status, message,
                                      time.perf_counter() - start, module, int(line), failure))
    finally:
        session.close()

    coverage = []
    for m in policy_set.modules:
        if m.is_test:
            continue
        lines = seen_lines.get(m.name)
        if lines is None:  # no test reached the module: all its statements count as uncovered
            lines = set(statement_lines.get(m.name, []))
        cov = covered.get(m.name, set()) & lines
        if pattern is not None and not cov:
            # With ``run``, coverage is that of the modules the selected tests reached (as
            # `opa test --run`): the rest is another test's business.
            continue
        coverage.append(FileCoverage(m.name, str(m.path), frozenset(cov), frozenset(lines - cov)))
    return TestReport(tuple(results), tuple(coverage))
