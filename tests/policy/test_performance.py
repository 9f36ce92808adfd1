"""The configuration check (config.rego) agrees with its detailed problems for changed data
(config_ok short-cuts config_problems on the common path), and why compiled mode is restricted.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cortex_trust.engine._regorus import Prepared
from cortex_trust.errors import EngineError
from cortex_trust.policy import load_policy_set

ROOT = Path(__file__).resolve().parents[2]
SHIPPED: dict[str, Any] = yaml.safe_load((ROOT / "policies" / "data.yaml").read_text())["cortex_config"]


def _engine(config: Any) -> Prepared:
    ps = load_policy_set()
    return Prepared([(m.name, m.text) for m in ps.modules], json.dumps({"cortex_config": config}))


def test_shipped_data_passes_the_full_checks() -> None:
    engine = _engine(SHIPPED)
    assert engine.query("{}", "data.cortex.config_ok") is True
    assert engine.query("{}", "data.cortex.config_problems") == []


_DELETE = object()


def _variants() -> list[tuple[str, Any]]:
    """The shipped data with one value changed: valid and invalid changes, every section."""
    out: list[tuple[str, Any]] = []

    def changed(path: str, value: Any) -> None:
        cfg = copy.deepcopy(SHIPPED)
        node = cfg
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
        out.append((f"{path}=<deleted>" if value is _DELETE else f"{path}={value!r}", cfg))

    changed("sandbox.user", "0:0")
    changed("sandbox.user", "00:1")
    changed("sandbox.user", "1000:1000")
    changed("sandbox.user", "65534:65534\n")
    changed("sandbox.user", 65534)
    changed("sandbox.memory", "1g")
    changed("sandbox.memory", "256M")
    changed("sandbox.memory", "0m")
    changed("sandbox.memory", None)
    changed("sandbox.cpus", 0)
    changed("sandbox.pids_limit", 1.5)
    changed("scan.max_severity", "SEVERE")
    changed("scan.max_severity", "HIGH")
    changed("scan.severities", "HIGH")
    changed("actions.verified", "yes")
    changed("actions.verified", "warn")
    changed("trusted_signers", [])
    changed("trusted_signers", "x")
    changed("verified.min_days_in_production", "30")
    changed("tests.min_executed", _DELETE)
    changed("denied_plugins", [])
    return out


@pytest.mark.parametrize(("name", "config"), _variants(), ids=[n for n, _ in _variants()])
def test_changed_data_is_checked_in_full(name: str, config: Any) -> None:
    engine = _engine(config)
    ok = engine.query("{}", "data.cortex.config_ok") is True
    problems = engine.query("{}", "data.cortex.config_problems")
    # config_ok (which decides CONFIG_INVALID) holds exactly when no problem is named.
    assert ok == (problems == []), (name, problems)


def test_the_variants_cover_both_outcomes() -> None:
    outcomes = {_engine(c).query("{}", "data.cortex.config_ok") is True for _, c in _variants()}
    assert outcomes == {True, False}


def test_compiled_mode_still_drops_builtin_errors() -> None:
    """Why regorus' compiled mode (Program + Rvm, ~4x faster) runs only the audited shipped
    policy set on validated input: a builtin error inside a deny rule silently drops the entry
    there (an allow), where the interpreter raises and decide() blocks. Organization code
    therefore always runs on the interpreter (docs/policy-contract.md section 9). If this starts
    failing, regorus changed: re-examine that restriction."""
    import regorus

    module = ('package cortex\nimport rego.v1\n'
              'deny contains "ORG" if to_number(input.v) > 0\n'
              'decision := {"deny": deny}\n')
    program = regorus.Program.compile_from_modules("{}", [("d.rego", module)], ["data.cortex.decision"])
    vm = regorus.Rvm()
    vm.load_program(program)
    vm.set_data_json("{}")
    vm.set_input_json('{"v": "not-a-number"}')
    assert json.loads(vm.execute_entry_point("data.cortex.decision")) == {"deny": []}
    assert vm.get_execution_state() == "Ready"  # no error state to detect it by either

    interpreted = Prepared([("d.rego", module)])
    with pytest.raises(EngineError):
        interpreted.evaluate('{"v": "not-a-number"}')
