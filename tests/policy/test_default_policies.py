"""The shipped Rego policies (policies/) and the example organization (examples/acme/).

The Rego suites themselves (``*_test.rego``) carry the tier table, the action map, sandbox
derivation, revocation and the extension points; here we run them through the project's own
runner and check what Rego cannot check about itself: that the copy of the shipped data pinned
in the default tests is the shipped data, and that the documented reason codes are the ones the
policies emit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from cortex_trust.engine import run_policy_tests
from cortex_trust.engine._regorus import Prepared
from cortex_trust.policy import load_policy_set

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "examples" / "acme"


def test_default_policy_tests_pass_with_full_coverage() -> None:
    report = run_policy_tests(load_policy_set(include_tests=True), isolate=False)
    failed = [r.full_name for r in report.results if r.status != "pass"]
    assert report.passed, failed
    assert len(report.results) >= 140
    for f in report.coverage:
        assert f.percent >= 95.0, (f.name, sorted(f.not_covered))


def test_default_and_acme_tests_pass_together() -> None:
    report = run_policy_tests(load_policy_set([ACME], include_tests=True), isolate=False)
    failed = [r.full_name for r in report.results if r.status != "pass"]
    assert report.passed, failed
    assert any(r.package.endswith("acme_network_test") for r in report.results)
    assert any(r.package.endswith("acme_signatures_test") for r in report.results)


def test_pinned_default_config_is_the_shipped_data() -> None:
    ps = load_policy_set(include_tests=True)
    engine = Prepared([(m.name, m.text) for m in ps.modules], ps.data_json())
    pinned = engine.query("{}", "data.cortex.fixtures_test.default_config")
    shipped = yaml.safe_load((ROOT / "policies" / "data.yaml").read_text())["cortex_config"]
    assert pinned == json.loads(json.dumps(shipped))


def test_every_emitted_reason_code_is_documented() -> None:
    doc = (ROOT / "docs" / "policy-contract.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", doc, re.M))
    emitted: set[str] = set()
    for path in [*(ROOT / "policies").rglob("*.rego"), *ACME.rglob("*.rego")]:
        if path.name.endswith("_test.rego"):
            continue
        code = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
        emitted.update(re.findall(r'"((?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+)"', code))
    # Constants that are not reason codes.
    emitted -= {"ENGINE_ERROR", "ENGINE_TIMEOUT", "ENGINE_UNDEFINED", "DECISION_INVALID"}
    assert emitted, "no reason codes found in the policies"
    assert emitted <= documented, sorted(emitted - documented)
