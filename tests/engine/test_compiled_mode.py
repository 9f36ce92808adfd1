"""Compiled mode (regorus Program + Rvm) for the shipped policies: the audit, checked.

The compiled program turns a failing builtin into "undefined" where the interpreter raises
(tests/policy/test_performance.py pins that). docs/policy-contract.md section 9 argues, call site
by call site, that no builtin in the shipped modules can fail on schema-valid input; these tests
keep that table honest (it must match the modules' syntax tree) and check the claim on generated
and adversarial inputs: the interpreter never raises, and both modes give identical decisions.
"""

from __future__ import annotations

import collections
import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from cortex_trust.engine import DecisionText, EmbeddedEngine, PolicyEngine, decide
from cortex_trust.engine._embedded import AUDITED_REVISIONS
from cortex_trust.engine._regorus import Compiled, Prepared, with_static_values
from cortex_trust.errors import EngineError, PolicyError
from cortex_trust.policy import PolicyInput, PolicySet, load_policy_set
from tests.support.strategies import input_documents, random_documents

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "policy-contract.md"


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return load_policy_set([], [], defaults=True)


@pytest.fixture(scope="module")
def both(shipped: PolicySet) -> tuple[Prepared, Compiled]:
    modules = [(m.name, m.text) for m in shipped.modules]
    compiled = Compiled(modules, shipped.data_json(), precompute=True)  # as EmbeddedEngine builds it
    assert compiled.precomputed
    return Prepared(modules, shipped.data_json()), compiled


def _agree(both: tuple[Prepared, Compiled], doc: dict[str, Any]) -> None:
    interpreter, compiled = both
    text = PolicyInput.model_validate(doc).to_json()
    try:
        expected = interpreter.evaluate(text)
    except EngineError as e:  # the audit is wrong: this call site can fail on valid input
        pytest.fail(f"a builtin failed on a schema-valid input ({e.message}); compiled mode would "
                    f"have decided anyway. Input: {text[:2000]}")
    assert expected is not None
    answer = compiled.evaluate(text)
    assert isinstance(answer, DecisionText)  # the JSON text, parsed strictly by Decision
    assert json.loads(answer) == expected, text[:2000]


# --- the audit table matches the modules ------------------------------------------------------------

_KINDS = {"ArithExpr": "arithmetic (`+ - *`)", "BinExpr": "set union (`\\|`)",
          "SomeIn": "iteration (`some ... in`)", "Every": "`every`"}


def _call_name(fcn: dict[str, Any]) -> str:
    if "Var" in fcn:
        return str(fcn["Var"]["value"])
    if "RefDot" in fcn:
        return f"{_call_name(fcn['RefDot']['refr'])}.{fcn['RefDot']['field'][1]}"
    return "?"


def _sites(policy_set: PolicySet) -> collections.Counter[str]:
    """Builtin call sites by name, and the other fallible operations by kind (syntax tree)."""
    import regorus

    engine = regorus.Engine()
    for m in policy_set.modules:
        engine.add_policy(m.name, m.text)
    ast = json.loads(engine.get_ast_as_json())
    functions = {spec["head"]["Func"]["refr"]["Var"]["value"]
                 for module in ast for rule in module["ast"]["rules"]
                 if (spec := rule.get("Spec")) and "Func" in spec["head"]}
    found: collections.Counter[str] = collections.Counter()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _KINDS:
                    found[_KINDS[key]] += 1
                if key == "Call" and isinstance(value, dict) and "fcn" in value:
                    name = _call_name(value["fcn"])
                    if name not in functions:
                        found[f"`{name}`"] += 1
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(ast)
    return found


def _audit_table() -> dict[str, int]:
    section = CONTRACT.read_text(encoding="utf-8").split("## 9. Compiled mode", 1)[1]
    return {m["op"]: int(m["n"]) for m in re.finditer(
        r"^\| (?P<op>[^|]+?(?:\\\|[^|]*?)?) \| (?P<n>\d+) \|", section, re.MULTILINE)}


def test_every_fallible_call_site_is_in_the_audit_table(shipped: PolicySet) -> None:
    sites = dict(_sites(shipped))
    table = _audit_table()
    assert sites == table, (
        "the shipped modules' call sites differ from docs/policy-contract.md section 9: audit "
        "the new or removed sites (why can each not fail on schema-valid input?), update the "
        "table, then add the new revision to AUDITED_REVISIONS")


def test_the_shipped_policy_set_is_the_audited_one(shipped: PolicySet) -> None:
    assert not shipped.has_custom
    assert shipped.revision in AUDITED_REVISIONS, (
        f"the shipped policies changed (revision {shipped.revision}): redo the audit "
        "(docs/policy-contract.md section 9, this file), then add the revision to "
        "cortex_trust/engine/_embedded.py AUDITED_REVISIONS")


# --- which evaluator runs ---------------------------------------------------------------------------

def test_compiled_mode_only_for_the_audited_shipped_set(shipped: PolicySet, tmp_path: Path) -> None:
    assert EmbeddedEngine(shipped).mode == "compiled"
    assert EmbeddedEngine(shipped, compiled=False).mode == "interpreter"
    data = tmp_path / "org.yaml"
    data.write_text("cortex_config:\n  tests:\n    min_executed: 2\n", encoding="utf-8")
    with EmbeddedEngine(load_policy_set([], [data], defaults=True)) as custom:
        assert custom.mode == "isolated" and not custom.compiled
    # Forced in-process, organization data still never compiles.
    assert EmbeddedEngine(load_policy_set([], [data], defaults=True), isolate=False).mode == "interpreter"
    # The shipped modules with one byte changed: not the audited revision.
    edited = PolicySet(modules=shipped.modules, data={**shipped.data, "x": 1},
                       revision="sha256:" + "0" * 64, has_custom=False)
    assert EmbeddedEngine(edited).mode == "interpreter"


def test_raw_text_always_goes_to_the_interpreter(shipped: PolicySet) -> None:
    """evaluate(text) cannot assume schema validity; a text that makes a builtin fail raises there.

    The repository below is not schema-valid (PolicyInput refuses it), so it can only arrive as
    raw text; it turns the GitHub signer pattern into an invalid glob."""
    doc = next(d for d in random_documents(200, seed=7)
               if (d["evidence"]["signature"] or {}).get("verified") is True)
    doc["plugin"]["repository"] = "acme/x[1"
    doc["evidence"]["signature"]["issuer"] = "https://token.actions.githubusercontent.com"
    with pytest.raises(ValidationError):
        PolicyInput.model_validate(doc)
    engine = EmbeddedEngine(shipped)
    assert engine.mode == "compiled"
    with pytest.raises(EngineError, match="glob"):
        engine.evaluate(json.dumps(doc))
    modules = [(m.name, m.text) for m in shipped.modules]
    # What compiled mode would have done with it: no error, a decision (why it needs valid input).
    assert Compiled(modules, shipped.data_json()).evaluate(json.dumps(doc)) is not None


def test_decide_is_the_same_in_both_modes(shipped: PolicySet) -> None:
    compiled, interpreted = EmbeddedEngine(shipped), EmbeddedEngine(shipped, compiled=False)
    for doc in random_documents(150, seed=11):
        pi = PolicyInput.model_validate(doc)
        a, b = decide(compiled, pi), decide(interpreted, pi)
        assert not a.failed and a == b


# --- the claim, checked on inputs ---------------------------------------------------------------------

def test_generated_inputs(both: tuple[Prepared, Compiled]) -> None:
    for doc in random_documents(2500, seed=2026):
        _agree(both, doc)


def test_generated_inputs_without_precomputed_values(both: tuple[Prepared, Compiled],
                                                     shipped: PolicySet) -> None:
    """The fallback (each static rule worked out per decision) also decides identically in
    compiled mode: what runs if the precomputation is ever skipped."""
    plain = Compiled([(m.name, m.text) for m in shipped.modules], shipped.data_json())
    assert not plain.precomputed
    for doc in random_documents(500, seed=2027):
        _agree((both[0], plain), doc)


# --- precomputed values (policies/cortex/static.rego) ---------------------------------------------

def _rule_refs(policy_set: PolicySet) -> dict[str, set[str]]:
    """Every name each rule or function of package cortex refers to (all definitions merged)."""
    import regorus

    engine = regorus.Engine()
    for m in policy_set.modules:
        engine.add_policy(m.name, m.text)
    refs: dict[str, set[str]] = collections.defaultdict(set)

    def names(node: Any, out: set[str]) -> None:
        if isinstance(node, dict):
            var = node.get("Var")
            if isinstance(var, dict) and isinstance(var.get("value"), str):
                out.add(var["value"])
            for value in node.values():
                names(value, out)
        elif isinstance(node, list):
            for value in node:
                names(value, out)

    for module in json.loads(engine.get_ast_as_json()):
        for rule in module["ast"]["rules"]:
            spec = rule.get("Spec") or rule.get("Default")
            head = spec.get("head", {}) if "Spec" in rule else spec
            kind = next(iter(head)) if "Spec" in rule else None
            refr = head[kind]["refr"] if kind else spec["refr"]
            while "Var" not in refr:  # a.b.c := ... : the rule is named by its first part
                refr = (refr.get("RefDot") or refr.get("RefBrack"))["refr"]
            names(rule, refs[refr["Var"]["value"]])
    return refs


def test_precomputed_rules_never_read_input(shipped: PolicySet) -> None:
    """A rule whose value is computed once, with no input, must not depend on the input: walk
    the syntax tree from every rule static_values lists, through every rule and function it
    names, and find no `input`."""
    refs = _rule_refs(shipped)
    listed = refs["static_values"] - {"static_values", "rego", "v1"}
    static_text = next(m.text for m in shipped.modules if m.name == "cortex/static.rego")
    keys = set(re.findall(r'^\t"(\w+)": (\w+),$', static_text, re.M))
    assert keys and all(k == v for k, v in keys) and {k for k, _ in keys} <= listed
    for rule in sorted(k for k, _ in keys):
        seen, todo = set(), [rule]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            assert name != "input", f"{rule} depends on the input (through {sorted(seen)})"
            todo.extend(n for n in refs.get(name, ()) if n not in seen)
        assert "input" not in seen


def test_the_engine_precomputes_for_the_shipped_set_when_asked(shipped: PolicySet) -> None:
    engine = EmbeddedEngine(shipped, precompute=True)
    assert engine.mode == "compiled" and engine._compiled().precomputed
    # One-shot commands do not pay for it at start-up.
    assert not EmbeddedEngine(shipped)._compiled().precomputed
    data = json.loads(with_static_values([(m.name, m.text) for m in shipped.modules],
                                         shipped.data_json()))
    assert data["cortex_static"]["config_ok"] is True
    assert data["cortex_static"]["_sandbox_user"] == "65534:65534"


def test_nothing_is_precomputed_without_the_rule_or_for_invalid_data(shipped: PolicySet) -> None:
    assert with_static_values([("d.rego", "package cortex\ndecision := 1\n")], "{}") == "{}"
    modules = [(m.name, m.text) for m in shipped.modules]
    broken = json.dumps({"cortex_config": {**shipped.data["cortex_config"], "sandbox": None}})
    assert with_static_values(modules, broken) == broken  # static_values undefined: config invalid


@pytest.mark.parametrize("where", ["data", "module"])
def test_the_precomputed_key_is_reserved(tmp_path: Path, where: str) -> None:
    if where == "data":
        (tmp_path / "data.yaml").write_text("cortex_static:\n  config_ok: true\n", encoding="utf-8")
    else:
        (tmp_path / "x.rego").write_text("package cortex_static\n\nconfig_ok := true\n",
                                         encoding="utf-8")
    with pytest.raises(PolicyError, match=r"cortex_static`? is reserved"):
        load_policy_set([tmp_path], [], defaults=True)


def test_rvm_else_after_an_undefined_assignment_is_pinned() -> None:
    """regorus 0.13's Rvm does not take `else` when a body assigns an undefined reference (the
    interpreter and OPA do); a bare reference as the body takes it in both. static.rego's rules
    use the second form. When this test fails, regorus changed: re-check docs/policy-contract.md."""
    import regorus

    def both_ways(src: str) -> tuple[str, str]:
        program = regorus.Program.compile_from_modules("{}", [("a.rego", src)], ["data.cortex.x"])
        vm = regorus.Rvm()
        vm.load_program(program)
        vm.set_data_json("{}")
        vm.set_input_json("{}")
        engine = regorus.Engine()
        engine.add_policy("a.rego", src)
        return vm.execute_entry_point("data.cortex.x"), engine.eval_rule_as_json("data.cortex.x")

    head = "package cortex\nimport rego.v1\n_s := {}\n"
    assert both_ways(head + "x := v if { v := _s.a } else := 6\n") == ('"<undefined>"', "6")
    assert both_ways(head + "x := _s.a if _s.a else := 6\n") == ("6", "6")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=input_documents())
def test_hypothesis_inputs(both: tuple[Prepared, Compiled], doc: dict[str, Any]) -> None:
    _agree(both, doc)


_ODD_STRINGS = [
    "", "*", "**", "?", "[", "]", "[a-", "{a,b}", "\\", "\\*", "a/b/../c", "%s", "%d%v%!", "%",
    "\u0000", "a\u0000b", "\u202e", "é", "🚀", "ﬁ", "\n", "x" * 5000, "--", "-1", "1e309",
    "0001-01-01T00:00:00Z", "1677-09-21T00:12:43Z", "1678-01-01T00:00:00Z", "2261-12-31T23:59:59Z",
    "2262-04-11T23:47:17Z", "9999-12-31T23:59:59Z", "2024-02-29T00:00:00Z", "2026-02-29T00:00:00Z",
    "1.2.3", "01.2.3", "999999999.0.0", "9999999999.0.0", "1.2", "1.2.3-rc.1+b", "v1.2.3",
    "CVE-2024-0001", "CRITICAL", "approved", "cortex-core/ada", "https://github.com/cortex-platform/*",
]
_ODD_NUMBERS = [0, -1, 1, 2**53, 2**53 + 1, 2**63, 2**64 + 1, -(2**63), 1e308, -1e308, 0.5, -0.0, 10**30]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [(path, node)]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


def _adversarial(n: int, seed: int) -> list[dict[str, Any]]:
    """Schema-valid documents with odd strings and numbers in the fields the schema leaves free."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for base in random_documents(n, seed=seed):
        doc = copy.deepcopy(base)
        leaves = [(p, v) for p, v in _leaves(doc) if isinstance(v, str | int | float)
                  and not isinstance(v, bool) and p[0] != "schema_version"]
        for path, value in rng.sample(leaves, min(len(leaves), 12)):
            odd = rng.choice(_ODD_STRINGS if isinstance(value, str) else _ODD_NUMBERS)
            trial = copy.deepcopy(doc)
            _set(trial, path, odd)
            try:
                PolicyInput.model_validate(trial)
            except ValidationError:
                continue  # the schema refuses it there: it can never reach the engine
            doc = trial
        out.append(doc)
    return out


def test_adversarial_inputs(both: tuple[Prepared, Compiled]) -> None:
    docs = _adversarial(1500, seed=99)
    changed = sum(1 for d, b in zip(docs, random_documents(1500, seed=99), strict=True) if d != b)
    assert changed > 1000  # the mutation really reaches the documents
    for doc in docs:
        _agree(both, doc)


def test_times_at_the_edges_of_the_nanosecond_range(both: tuple[Prepared, Compiled]) -> None:
    """Found by the audit: these made time.parse_rfc3339_ns fail (interpreter: ENGINE_ERROR)."""
    base = next(iter(random_documents(1, seed=3)))
    for now in ("0001-01-01T00:00:00Z", "2261-12-31T23:59:59Z", "2262-01-01T00:00:00Z", "2026-11-25T00:00:00Z"):
        for fresh in ("0000-01-01T00:00:00Z", "1678-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
            doc = copy.deepcopy(base)
            doc["context"].update(now=now, operation="install")
            doc["evidence"]["revocation"] = {"checked": True, "revoked": False, "fresh_as_of": fresh,
                                             "source": "test"}
            _agree(both, doc)
            codes = {r["code"] for r in both[0].evaluate(PolicyInput.model_validate(doc).to_json())["reasons"]}
            assert "REVOCATION_STALE" in codes  # an unusable time is never fresh



@pytest.mark.parametrize(("extra", "code"), [({}, "ENGINE_UNDEFINED"),
                                            ({"a": True, "b": True}, "ENGINE_UNDEFINED"),
                                            ({"a": True}, "DECISION_INVALID")])
def test_compiled_mode_fails_closed(extra: dict[str, Any], code: str) -> None:
    """Undefined, a conflict (which the Rvm reports as undefined, where the interpreter raises)
    or an invalid document: decide() blocks."""
    compiled = Compiled([("d.rego", "package cortex\nimport rego.v1\n"
                                    'decision := {"tier": "verified"} if input.a\n'
                                    'decision := {"tier": "community"} if input.b\n')])

    class _Engine(PolicyEngine):
        name, revision = "compiled", "test"

        def evaluate(self, input_json: str) -> Any:
            return compiled.evaluate(json.dumps({**json.loads(input_json), **extra}))

    d = decide(_Engine(), PolicyInput.model_validate(next(iter(random_documents(1, seed=5)))))
    assert (d.action.value, d.failed, d.overridable, d.codes) == ("block", True, False, (code,))


def test_compiled_mode_refuses_text_that_is_not_json() -> None:
    compiled = Compiled([("d.rego", "package cortex\ndecision := 1\n")])
    with pytest.raises(EngineError, match="failed"):
        compiled.evaluate("not json")
