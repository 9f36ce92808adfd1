"""The embedded regorus engine: decisions, fail-closed paths, and containment of hostile policies.

Every failure mode is asserted on the reason code ``decide()`` returns; the crash and timeout
tests prove that an organization's policy cannot take the calling process down.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from cortex_trust.engine import EmbeddedEngine, PolicyEngine, decide
from cortex_trust.errors import EngineError, PolicyError
from cortex_trust.policy import Action, PolicyInput, Tier, load_policy_set
from tests.support.strategies import policy_inputs

FIX = Path(__file__).parent.parent / "fixtures"
SMALL = FIX / "policies_small"
ORG = FIX / "policies_org"
BAD = FIX / "policies_bad"
ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "policies"


def make_input(*, operation: str = "verify", valid: bool = True, network: bool = False,
               revoked: bool = False) -> PolicyInput:
    document = {"trust": {"network": network}} if valid else None
    return PolicyInput.model_validate({
        "manifest": {"valid": valid, "document": document},
        "evidence": {"revocation": {"checked": True, "revoked": revoked}},
        "context": {"now": "2026-01-01T00:00:00Z", "cortex_version": "0.1.0",
                    "operation": operation},
    })


def small(*extra: Path) -> Any:
    return load_policy_set([SMALL, *extra], defaults=False)


def with_module(tmp_path: Path, name: str, text: str) -> Any:
    """The small policy set plus one organization module ``cortex/<name>`` holding ``text``."""
    (tmp_path / "cortex").mkdir()
    (tmp_path / "cortex" / name).write_text(text)
    return small(tmp_path)


def test_all_is_pinned() -> None:
    import cortex_trust.engine._embedded as m

    assert sorted(m.__all__) == ["EmbeddedEngine", "RuleValue"]


@pytest.mark.parametrize("isolate", [False, True])
def test_decides_and_implements_the_protocol(isolate: bool) -> None:
    ps = small()
    with EmbeddedEngine(ps, isolate=isolate) as engine:
        assert isinstance(engine, PolicyEngine)
        assert engine.name == "regorus" and engine.revision == ps.revision
        d = decide(engine, make_input())
        assert (d.tier, d.action, d.codes, d.failed) == (Tier.EXPERIMENTAL, Action.WARN,
                                                         ("TIER_EXPERIMENTAL",), False)
        assert d.policy_revision == ps.revision
        blocked = decide(engine, make_input(revoked=True))
        assert blocked.action is Action.BLOCK and blocked.codes[0] == "REVOKED"
        assert not blocked.overridable and not blocked.failed


def test_isolation_follows_custom_code() -> None:
    defaults = load_policy_set()
    with EmbeddedEngine(defaults) as e:
        assert not e.isolated
    with EmbeddedEngine(small()) as e:
        assert e.isolated


def test_org_policy_dir_adds_a_deny_and_overrides_data() -> None:
    with EmbeddedEngine(small(ORG)) as engine:
        d = decide(engine, make_input(network=True))
        assert d.action is Action.BLOCK and d.codes[0] == "ORG_NETWORK_NEEDS_VERIFIED"
        # data.yaml of the org dir maps experimental to block
        assert decide(engine, make_input()).action is Action.BLOCK


def test_recursive_org_policy_crashes_only_the_worker_and_blocks() -> None:
    ps = small(BAD / "recursive")
    with EmbeddedEngine(ps, timeout=20) as engine:
        assert engine.isolated
        d = decide(engine, make_input(operation="run"))
        assert d.failed and d.action is Action.BLOCK and d.codes == ("ENGINE_ERROR",)
        assert "crashed" in d.reasons[0].message and "recurse" in d.reasons[0].message
        assert not d.overridable and d.sandbox is None
        # This process survived; the next call starts a fresh worker and decides normally.
        ok = decide(engine, make_input(operation="verify"))
        assert not ok.failed and ok.tier is Tier.EXPERIMENTAL


def test_timeout_kills_the_worker_and_blocks() -> None:
    with EmbeddedEngine(small(BAD / "slow"), timeout=0.3) as engine:
        start = time.monotonic()
        d = decide(engine, make_input())
        assert time.monotonic() - start < 5
        assert d.failed and d.codes == ("ENGINE_TIMEOUT",) and d.action is Action.BLOCK


@pytest.mark.parametrize("isolate", [False, True])
@pytest.mark.parametrize(("bad", "code"), [
    ("builtin_error", "ENGINE_ERROR"),
    ("undefined", "ENGINE_UNDEFINED"),
    ("invalid_action", "DECISION_INVALID"),
])
def test_failures_block(isolate: bool, bad: str, code: str) -> None:
    with EmbeddedEngine(small(BAD / bad), isolate=isolate) as engine:
        d = decide(engine, make_input())
    assert d.failed and d.codes == (code,) and d.action is Action.BLOCK and d.tier is Tier.UNTRUSTED


def test_builtin_error_message_is_located_without_backtrace() -> None:
    with EmbeddedEngine(small(BAD / "builtin_error"), isolate=False) as engine:
        with pytest.raises(EngineError) as e:
            engine.evaluate(make_input().to_json())
    assert "decision.rego:6:" in e.value.message and "could not parse" in e.value.message
    assert "backtrace" not in e.value.message.lower() and "\n" not in e.value.message


@pytest.mark.parametrize("isolate", [False, True])
def test_syntax_error_is_a_policy_error_with_location(isolate: bool) -> None:
    with pytest.raises(PolicyError) as e:
        EmbeddedEngine(small(BAD / "syntax"), isolate=isolate)
    where = str(BAD / "syntax" / "cortex" / "broken.rego")
    assert e.value.message.startswith(f"{where}:7:1:")
    assert e.value.advice


@pytest.mark.parametrize("isolate", [False, True])
def test_invalid_input_text_is_an_engine_error(isolate: bool) -> None:
    with EmbeddedEngine(small(), isolate=isolate) as engine:
        with pytest.raises(EngineError, match="not valid JSON"):
            engine.evaluate("{not json")
        # the engine is still usable
        assert engine.evaluate(make_input().to_json())["tier"] == "experimental"


def test_multiline_input_text_is_framed_for_the_worker() -> None:
    pretty = json.dumps(make_input().to_dict(), indent=2)
    with EmbeddedEngine(small(), isolate=True) as engine:
        assert engine.evaluate(pretty)["tier"] == "experimental"


@pytest.mark.parametrize("isolate", [False, True])
def test_evaluate_many_attributes_failures_to_inputs(isolate: bool) -> None:
    inputs = [make_input().to_json(), "{bad", make_input(revoked=True).to_json()] * 3
    with EmbeddedEngine(small(), isolate=isolate) as engine:
        out = engine.evaluate_many(inputs)
    assert len(out) == 9
    shape = [o["action"] if isinstance(o, dict) else type(o).__name__ for o in out]
    assert shape == ["warn", "EngineError", "block"] * 3
    assert "not valid JSON" in out[1].message


def test_evaluate_many_survives_a_crashing_input() -> None:
    inputs = [make_input().to_json(), make_input(operation="run").to_json(), make_input().to_json()]
    with EmbeddedEngine(small(BAD / "recursive"), timeout=20) as engine:
        out = engine.evaluate_many(inputs)
    assert out[0]["tier"] == "experimental" and out[2]["tier"] == "experimental"
    assert isinstance(out[1], EngineError) and "crashed" in out[1].message


@pytest.mark.parametrize("mode", ["compiled", "interpreter", "isolated"])
def test_batches_decide_exactly_like_one_input_at_a_time(mode: str) -> None:
    """decide_batch (the registry's path: evaluate_inputs, one tight loop in compiled mode)
    gives the decisions decide() gives input by input, in order."""
    from registry._reevaluate import decide_batch
    from tests.support.strategies import random_documents

    inputs = [PolicyInput.model_validate(d) for d in random_documents(60, seed=31)]
    shipped = load_policy_set([], [], defaults=True)
    with EmbeddedEngine(shipped, compiled=mode == "compiled", isolate=mode == "isolated") as engine:
        assert engine.mode == mode
        one_by_one = [decide(engine, i) for i in inputs]
        batched = decide_batch(engine, inputs)
    assert not any(d.failed for d in batched)
    assert batched == one_by_one


def test_a_failing_input_in_a_compiled_batch_blocks_only_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cortex_trust.engine import _regorus
    from registry._reevaluate import decide_batch

    inputs = [make_input(), make_input(operation="run"), make_input(revoked=True)]
    engine = EmbeddedEngine(load_policy_set([], [], defaults=True))
    assert engine.mode == "compiled"
    real = _regorus.Compiled.evaluate

    def flaky(self: Any, input_json: str) -> Any:
        if '"operation":"run"' in input_json:
            raise EngineError("evaluating data.cortex.decision failed: boom")
        return real(self, input_json)

    monkeypatch.setattr(_regorus.Compiled, "evaluate", flaky)
    out = decide_batch(engine, inputs)
    assert [d.failed for d in out] == [False, True, False]
    assert out[1].codes == ("ENGINE_ERROR",) and out[1].action is Action.BLOCK
    assert out[0].tier is Tier.EXPERIMENTAL and out[2].action is Action.BLOCK
    assert "REVOKED" in out[2].codes


@pytest.mark.parametrize("isolate", [False, True])
def test_explain_lists_the_rules(isolate: bool) -> None:
    with EmbeddedEngine(small(), isolate=isolate) as engine:
        rows = {r.path: r for r in engine.explain(make_input(revoked=True).to_json())}
    assert rows["data.cortex.tier"].value == "experimental"
    assert rows["data.cortex.blocked"].value is True
    assert rows["data.cortex.deny"].value == [{"code": "REVOKED", "message": "this version was revoked"}]
    assert rows["data.cortex.community"].value is None and rows["data.cortex.community"].error is None


def test_explain_reports_a_failing_rule() -> None:
    with EmbeddedEngine(small(BAD / "builtin_error"), isolate=False) as engine:
        rows = {r.path: r for r in engine.explain(make_input().to_json())}
    assert rows["data.cortex.decision"].error and "could not parse" in rows["data.cortex.decision"].error


def test_close_stops_the_worker() -> None:
    engine = EmbeddedEngine(small(), isolate=True)
    worker = engine._worker
    assert worker is not None and worker.alive
    proc = worker.process.proc
    engine.close()
    assert proc is not None and proc.poll() is not None
    assert not worker.alive


def test_print_in_a_policy_does_not_corrupt_the_protocol(tmp_path: Path) -> None:
    org = with_module(tmp_path, "noisy.rego",
                      'package cortex\nimport rego.v1\nnoise if { print("hello\\n{}") }\n'
                      'deny contains {"code": "NOISE", "message": "x"} if { noise; false }\n')
    with EmbeddedEngine(org, isolate=True) as engine:
        assert engine.evaluate(make_input().to_json())["tier"] == "experimental"


def test_the_worker_runs_this_cortex_trust() -> None:
    # The worker must import the same library as the parent, wherever the parent runs from.
    with EmbeddedEngine(small(), isolate=True) as engine:
        assert engine._worker is not None and engine._worker.process.proc is not None
        assert engine._worker.process.proc.args[1:] == ["-m", "cortex_trust.engine._worker"]
    assert os.getpid() > 0


@pytest.mark.security_review
def test_worker_does_not_import_modules_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m`` puts the working directory first on ``sys.path``: a plugin checkout with a
    ``regorus.py`` (or ``json.py``) would run inside the worker that decides on that plugin."""
    marker = tmp_path / "PWNED"
    for module in ("regorus", "json", "pydantic"):
        (tmp_path / f"{module}.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).write_text({module!r})\n"
            "raise ImportError('shadowed')\n")
    monkeypatch.chdir(tmp_path)
    ps = load_policy_set([ACME])
    assert ps.has_custom
    with EmbeddedEngine(ps) as engine:
        assert engine.isolated
    assert not marker.exists()


def test_default_policies_decide_a_minimal_input() -> None:
    # Integration with the shipped defaults (written by another helper): any decision is fine,
    # as long as it is a real one, not a fail-closed block.
    with EmbeddedEngine(load_policy_set()) as engine:
        d = decide(engine, make_input())
    assert not d.failed, d.reasons


def test_in_process_engine_is_usable_from_other_threads() -> None:
    # regorus engines are bound to their thread; the engine keeps one per thread.
    import threading

    engine = EmbeddedEngine(small(), isolate=False)
    results: list[Any] = []

    def work() -> None:
        results.append(decide(engine, make_input()).tier)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [Tier.EXPERIMENTAL] * 3
    assert decide(engine, make_input()).tier is Tier.EXPERIMENTAL


@pytest.mark.parametrize("isolate", [False, True])
def test_builtin_error_inside_a_deny_rule_blocks(isolate: bool, tmp_path: Path) -> None:
    # regorus' compiled mode (Rvm) would drop this deny entry silently (an allow); the engine
    # must raise instead, so the decision fails closed.
    org = with_module(tmp_path, "deny_error.rego",
                      'package cortex\nimport rego.v1\n'
                      'deny contains {"code": "ORG", "message": "m"} if '
                      'to_number(input.context.cortex_version) > 0\n')
    with EmbeddedEngine(org, isolate=isolate) as engine:
        pi = make_input()
        dec = decide(engine, pi.model_copy(update={"context": pi.context.model_copy(
            update={"cortex_version": "not-a-number"})}))
    assert dec.failed and dec.codes == ("ENGINE_ERROR",)


def test_a_regorus_panic_becomes_an_engine_error() -> None:
    # Using a regorus engine from another thread panics in Rust (pyo3 raises PanicException,
    # a BaseException); the wrapper must turn that into an EngineError so decide() blocks.
    import threading

    from cortex_trust.engine._regorus import Prepared

    ps = small()
    prepared = Prepared([(m.name, m.text) for m in ps.modules], ps.data_json())
    caught: list[BaseException] = []

    def work() -> None:
        try:
            prepared.eval_rule("data.cortex.decision")
        except BaseException as e:
            caught.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], EngineError)
    assert "panicked" in caught[0].message


@pytest.fixture(scope="module")
def both_modes() -> Any:
    ps = small(ORG)
    with EmbeddedEngine(ps, isolate=False) as local, EmbeddedEngine(ps, isolate=True) as iso:
        yield local, iso


def test_worker_round_trip_keeps_odd_text(both_modes: Any) -> None:
    local, iso = both_modes
    pi = make_input(network=True)
    doc = pi.to_dict()
    doc["manifest"]["document"]["description"] = "line\u2028sep \u00e9\U0001f600 \"q\" \\ \n"
    doc["manifest"]["document"]["n"] = 1.5e300
    text = json.dumps(doc, ensure_ascii=False)
    assert iso.evaluate(text) == local.evaluate(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pi=policy_inputs())
def test_isolated_and_in_process_agree(both_modes: Any, pi: PolicyInput) -> None:
    local, iso = both_modes
    assert decide(iso, pi) == decide(local, pi)


def test_large_policy_set_loads_in_the_worker(tmp_path: Path) -> None:
    # Larger than a pipe buffer: the load request is written in pieces.
    rules = "".join(f'r{i} := "{"x" * 40}"\n' for i in range(4000))
    (tmp_path / "big.rego").write_text("package big\nimport rego.v1\n" + rules)
    (tmp_path / "data.json").write_text(json.dumps({"big": {"list": ["y" * 50] * 5000}}))
    with EmbeddedEngine(small(tmp_path), isolate=True) as engine:
        assert engine.evaluate(make_input().to_json())["tier"] == "experimental"


@pytest.mark.parametrize("data", ["cortex:\n  scan: {present: true}\n", "cortex:\n  decision: {action: allow}\n",
                                  "cortex: 3\n"])
def test_data_that_shadows_a_rule_is_refused(tmp_path: Path, data: str) -> None:
    # regorus would let data silently shadow a rule (OPA refuses the conflict): an org data file
    # must never be able to replace the decision or erase evidence.
    from cortex_trust.errors import PolicyError
    from cortex_trust.policy import load_policy_set

    f = tmp_path / "org.yaml"
    f.write_text(data)
    policy_set = load_policy_set(data_files=[f])
    with pytest.raises(PolicyError, match=r"where the rule data\.cortex"):
        EmbeddedEngine(policy_set, isolate=False).evaluate("{}")
