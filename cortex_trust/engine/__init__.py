"""Policy engines: the one place decisions come from.

:func:`decide` is what every flow calls; it never raises for an engine problem (an error, a
timeout, an undefined or invalid result all become the fail-closed block). Engines implement
:class:`PolicyEngine`: :class:`EmbeddedEngine` (regorus, the default) and
:class:`OpaServerEngine` (OPA's REST Data API). The Rego test runner and the declarative
test cases live here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._cases import PolicyCase, find_case_files, load_cases, run_cases
    from ._check import PolicyProblem, check_policy_paths
    from ._decide import DECISION_PATH, DecisionText, PolicyEngine, decide
    from ._embedded import EmbeddedEngine, RuleValue
    from ._fmt import FormatResult, format_policy_paths, format_rego
    from ._opa import OpaServerEngine
    from ._supervisor import WorkerChannel, WorkerProcess
    from ._testing import FileCoverage, TestReport, TestResult, run_policy_tests

__all__ = [
    "DECISION_PATH",
    "DecisionText",
    "EmbeddedEngine",
    "FileCoverage",
    "FormatResult",
    "OpaServerEngine",
    "PolicyCase",
    "PolicyEngine",
    "PolicyProblem",
    "RuleValue",
    "TestReport",
    "TestResult",
    "WorkerChannel",
    "WorkerProcess",
    "check_policy_paths",
    "decide",
    "find_case_files",
    "format_policy_paths",
    "format_rego",
    "load_cases",
    "run_cases",
    "run_policy_tests",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "DECISION_PATH": "._decide",
    "DecisionText": "._decide",
    "EmbeddedEngine": "._embedded",
    "FileCoverage": "._testing",
    "FormatResult": "._fmt",
    "OpaServerEngine": "._opa",
    "PolicyCase": "._cases",
    "PolicyEngine": "._decide",
    "PolicyProblem": "._check",
    "RuleValue": "._embedded",
    "TestReport": "._testing",
    "TestResult": "._testing",
    "WorkerChannel": "._supervisor",
    "WorkerProcess": "._supervisor",
    "check_policy_paths": "._check",
    "decide": "._decide",
    "find_case_files": "._cases",
    "format_policy_paths": "._fmt",
    "format_rego": "._fmt",
    "load_cases": "._cases",
    "run_cases": "._cases",
    "run_policy_tests": "._testing",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
