"""The decision contract (cortex_trust/policy/_decision.py, engine.decide): strict parsing, fail closed.

No policies here: these pin what Python accepts from an engine and what it does when an engine
misbehaves. Every malformed output must raise EngineError from ``Decision.from_policy_output``
and come out of ``decide()`` as a non-overridable block with ``failed`` set; never an allow.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_trust.engine import DecisionText, PolicyEngine, decide
from cortex_trust.errors import EngineError, EngineTimeout
from cortex_trust.policy import FAILURE_CODES, Action, Context, Decision, ManifestFacts, PolicyInput, Tier

VALID: dict[str, Any] = {
    "tier": "community",
    "action": "notice",
    "reasons": [
        {"code": "TIER_COMMUNITY", "message": "scan, manifest and tests passed",
         "evidence": ["scan", "tests", "manifest"]},
    ],
    "sandbox": {
        "enabled": True, "network": False, "filesystem": False, "read_only_root": True,
        "cap_drop": ["ALL"], "no_new_privileges": True, "user": "65534:65534",
        "memory": "256m", "cpus": 1, "pids_limit": 64,
    },
    "next_tier": {"tier": "verified", "missing": [
        {"code": "REVIEW_MISSING", "message": "a core-team review is needed", "evidence": ["review"]},
    ]},
    "overridable": True,
}

INPUT = PolicyInput(
    manifest=ManifestFacts(valid=False, problems=["x"]),
    context=Context(now="2026-06-01T12:00:00Z", cortex_version="0.1.0", operation="install"),
)


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with the value at dotted ``path`` replaced (``...=DELETE`` removes the key)."""
    doc = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


_DELETE = object()

MALFORMED: dict[str, Any] = {
    # shape
    "list": [VALID],
    "string": "allow",
    "number": 1,
    "true": True,
    "regorus undefined sentinel": "<undefined>",
    "empty object": {},
    "unknown top-level key": {**VALID, "allow": True},
    **{f"missing {k}": _with(k, _DELETE) for k in VALID},
    # tier and action
    "unknown tier": _with("tier", "trusted"),
    "tier in capitals": _with("tier", "Verified"),
    "tier as rank": _with("tier", 3),
    "unknown action": _with("action", "deny"),
    "action in capitals": _with("action", "ALLOW"),
    "action null": _with("action", None),
    # booleans are booleans
    "overridable as string": _with("overridable", "true"),
    "overridable as 1": _with("overridable", 1),
    "network as 1": _with("sandbox.network", 1),
    "network as string": _with("sandbox.network", "false"),
    "enabled as 0": _with("sandbox.enabled", 0),
    "no_new_privileges null": _with("sandbox.no_new_privileges", None),
    # reasons
    "empty reasons": _with("reasons", []),
    "reasons as object": _with("reasons", {"code": "X"}),
    "lower-case code": _with("reasons.0.code", "tier_community"),
    "empty message": _with("reasons.0.message", ""),
    "reason extra key": _with("reasons.0.severity", "high"),
    "reason without message": _with("reasons.0.message", _DELETE),
    "evidence as string": _with("reasons.0.evidence", "scan"),
    # sandbox
    "sandbox null": _with("sandbox", None),
    "sandbox extra key": _with("sandbox.privileged", True),
    "sandbox missing user": _with("sandbox.user", _DELETE),
    "uid 0": _with("sandbox.user", "0:1000"),
    "root by name": _with("sandbox.user", "root"),
    "uid 00": _with("sandbox.user", "00:0"),
    "memory without unit": _with("sandbox.memory", "256"),
    "memory zero": _with("sandbox.memory", "0m"),
    "cpus bool": _with("sandbox.cpus", True),
    "cpus string": _with("sandbox.cpus", "1"),
    "cpus zero": _with("sandbox.cpus", 0),
    "pids_limit zero": _with("sandbox.pids_limit", 0),
    "pids_limit float": _with("sandbox.pids_limit", 1.5),
    "pids_limit bool": _with("sandbox.pids_limit", True),
    "cap_drop string": _with("sandbox.cap_drop", "ALL"),
    # next tier
    "next_tier unknown tier": _with("next_tier.tier", "gold"),
    "next_tier extra key": _with("next_tier.why", "x"),
    # the allowlisted vulnerabilities are ids
    "allowlisted_vulnerabilities as string": _with("allowlisted_vulnerabilities", "CVE-2026-0001"),
    "allowlisted_vulnerabilities of numbers": _with("allowlisted_vulnerabilities", [2026]),
    "allowlisted_vulnerabilities null": _with("allowlisted_vulnerabilities", None),
    # reserved codes belong to Python's fail-closed block only
    **{f"reserved code {c}": _with("reasons.0.code", c) for c in sorted(FAILURE_CODES)},
}


class FakeEngine(PolicyEngine):
    """A real implementation of the PolicyEngine protocol whose answer the test chooses."""

    name = "fake"

    def __init__(self, answer: Callable[[str], Any], revision: str = "sha256:fake") -> None:
        self._answer = answer
        self.revision = revision
        self.seen: list[str] = []

    def evaluate(self, input_json: str) -> Any:
        self.seen.append(input_json)
        return self._answer(input_json)


def _raise(exc: BaseException) -> Callable[[str], Any]:
    def answer(_: str) -> Any:
        raise exc

    return answer


def _assert_fail_closed(d: Decision, code: str) -> None:
    assert d.failed
    assert d.action is Action.BLOCK
    assert d.tier is Tier.UNTRUSTED
    assert d.codes == (code,)
    assert d.overridable is False
    assert d.sandbox is None
    assert d.next_tier is None


# ---------------------------------------------------------------- strict parsing


def test_valid_output_parses() -> None:
    d = Decision.from_policy_output(VALID, policy_revision="sha256:r")
    assert (d.tier, d.action, d.codes) == (Tier.COMMUNITY, Action.NOTICE, ("TIER_COMMUNITY",))
    assert d.sandbox is not None and d.sandbox.cpus == 1.0 and d.sandbox.network is False
    assert d.next_tier is not None and d.next_tier.tier is Tier.VERIFIED
    assert d.failed is False and d.policy_revision == "sha256:r"
    assert d.to_json_dict()["action"] == "notice"


def test_next_tier_may_be_null() -> None:
    assert Decision.from_policy_output(_with("next_tier", None)).next_tier is None


def test_decision_is_frozen() -> None:
    d = Decision.from_policy_output(VALID)
    with pytest.raises(ValueError):
        d.action = Action.ALLOW


def test_tier_rank_and_action_severity_order() -> None:
    assert [t.rank for t in (Tier.UNTRUSTED, Tier.EXPERIMENTAL, Tier.COMMUNITY, Tier.VERIFIED)] \
        == [0, 1, 2, 3]
    assert [a.severity for a in (Action.ALLOW, Action.NOTICE, Action.WARN, Action.BLOCK)] \
        == [0, 1, 2, 3]


@pytest.mark.parametrize("value", [None])
def test_undefined_is_engine_error(value: Any) -> None:
    with pytest.raises(EngineError, match="undefined"):
        Decision.from_policy_output(value)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_output_is_rejected(case: str) -> None:
    with pytest.raises(EngineError):
        Decision.from_policy_output(MALFORMED[case])


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_output_blocks_through_decide(case: str) -> None:
    d = decide(FakeEngine(lambda _: MALFORMED[case]), INPUT)
    _assert_fail_closed(d, "DECISION_INVALID")
    assert d.policy_revision == "sha256:fake"


def test_fail_closed_only_takes_failure_codes() -> None:
    with pytest.raises(ValueError):
        Decision.fail_closed("TIER_VERIFIED", "no")
    for code in FAILURE_CODES:
        _assert_fail_closed(Decision.fail_closed(code, ""), code)


# ---------------------------------------------------------------- decide() with a misbehaving engine


def test_fake_engine_implements_the_protocol() -> None:
    assert isinstance(FakeEngine(lambda _: VALID), PolicyEngine)


def test_decide_passes_the_input_as_json_and_returns_the_decision() -> None:
    engine = FakeEngine(lambda _: VALID)
    d = decide(engine, INPUT)
    assert not d.failed and d.action is Action.NOTICE and d.policy_revision == "sha256:fake"
    assert engine.seen == [INPUT.to_json()]


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (EngineError("regorus failed: builtin error"), "ENGINE_ERROR"),
        (EngineTimeout("evaluation timed out after 2 s"), "ENGINE_TIMEOUT"),
        # The code follows the type, never the text: a crash whose message mentions a timeout
        # (a child's last stderr line) is an engine error.
        (EngineError("the policy engine crashed (... timed out)"), "ENGINE_ERROR"),
        (TimeoutError("deadline"), "ENGINE_TIMEOUT"),
        (RuntimeError("rust panic"), "ENGINE_ERROR"),
        (KeyError("result"), "ENGINE_ERROR"),
        (ValueError("bad json"), "ENGINE_ERROR"),
        (RecursionError("deep"), "ENGINE_ERROR"),
        (MemoryError(), "ENGINE_ERROR"),
        (OSError("broken pipe"), "ENGINE_ERROR"),
    ],
)
def test_engine_exceptions_block(exc: BaseException, code: str) -> None:
    _assert_fail_closed(decide(FakeEngine(_raise(exc)), INPUT), code)


def test_undefined_blocks() -> None:
    _assert_fail_closed(decide(FakeEngine(lambda _: None), INPUT), "ENGINE_UNDEFINED")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(garbage=_json)
def test_garbage_never_allows(garbage: Any) -> None:
    """Arbitrary JSON from an engine is a failed block (undefined for null), never an allow."""
    d = decide(FakeEngine(lambda _: garbage), INPUT)
    _assert_fail_closed(d, "ENGINE_UNDEFINED" if garbage is None else "DECISION_INVALID")


@settings(max_examples=300)
@given(path=st.sampled_from(["tier", "action", "overridable", "reasons", "sandbox",
                             "sandbox.network", "sandbox.filesystem", "sandbox.enabled",
                             "sandbox.user", "sandbox.cpus", "sandbox.pids_limit",
                             "sandbox.memory", "sandbox.cap_drop", "reasons.0.code",
                             "reasons.0.message", "next_tier", "next_tier.tier"]),
       value=_json)
def test_corrupting_one_field_never_yields_a_different_valid_allow(path: str, value: Any) -> None:
    """Replace one field of a valid decision with arbitrary JSON: either it is rejected
    (failed block) or it is still a well-typed value of that field; it never turns into
    an allow (VALID is a notice, and only ``action`` can make it an allow)."""
    d = decide(FakeEngine(lambda _: _with(path, value)), INPUT)
    if d.failed:
        _assert_fail_closed(d, "DECISION_INVALID")
    elif path != "action":
        assert d.action is Action.NOTICE
    else:
        assert value in {"allow", "notice", "warn", "block"}


def test_a_native_panic_blocks() -> None:
    # regorus raises pyo3's PanicException (a BaseException, not an Exception) on a Rust panic.
    from cortex_trust.engine import decide
    from tests.support.strategies import random_documents

    class Panic(BaseException):
        pass

    class PanickingEngine(PolicyEngine):
        name = "panicking"
        revision = "sha256:x"

        def evaluate(self, input_json: str) -> Any:
            raise Panic("thread panicked")

    from cortex_trust.policy import PolicyInput

    doc = PolicyInput.model_validate(next(iter(random_documents(1, seed=1))))
    d = decide(PanickingEngine(), doc)
    assert (d.action, d.failed, d.codes) == ("block", True, ("ENGINE_ERROR",))


@pytest.mark.parametrize("user", ["0:0", "0:65534", "65534:0", "00:1", "1:000"])
def test_the_sandbox_never_runs_as_root_user_or_group(user: str) -> None:
    from cortex_trust.policy import Sandbox

    with pytest.raises(ValueError):
        Sandbox(enabled=True, network=False, filesystem=False, read_only_root=True, cap_drop=("ALL",),
                no_new_privileges=True, user=user, memory="64m", cpus=0.5, pids_limit=64)


# ------------------------------------------- the engine's JSON text (compiled mode's answer)

def _text(value: Any) -> DecisionText:
    return DecisionText(json.dumps(value))


def test_decision_text_parses_like_the_decoded_value() -> None:
    assert Decision.from_policy_output(_text(VALID), policy_revision="r") == \
        Decision.from_policy_output(VALID, policy_revision="r")


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_decision_text_is_rejected(case: str) -> None:
    with pytest.raises(EngineError):
        Decision.from_policy_output(_text(MALFORMED[case]))
    _assert_fail_closed(decide(FakeEngine(lambda _: _text(MALFORMED[case])), INPUT),
                        "DECISION_INVALID")


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '"a string"', "1", "null",
                                  '{"tier": "verified"', '{"tier": NaN}'])
def test_decision_text_that_is_no_decision_blocks(text: str) -> None:
    _assert_fail_closed(decide(FakeEngine(lambda _: DecisionText(text)), INPUT),
                        "DECISION_INVALID")


def test_a_plain_string_is_not_taken_for_decision_text() -> None:
    """Only the engine's DecisionText is parsed as JSON; any other string is not a decision."""
    _assert_fail_closed(decide(FakeEngine(lambda _: json.dumps(VALID)), INPUT), "DECISION_INVALID")


@settings(max_examples=300)
@given(path=st.sampled_from(["tier", "action", "overridable", "reasons", "sandbox",
                             "sandbox.network", "sandbox.user", "sandbox.cpus",
                             "sandbox.pids_limit", "sandbox.memory", "sandbox.cap_drop",
                             "reasons.0.code", "reasons.0.evidence", "next_tier",
                             "next_tier.tier", "next_tier.missing"]),
       value=_json)
def test_text_and_value_are_parsed_alike(path: str, value: Any) -> None:
    """Strict parsing of the JSON text accepts and rejects exactly what strict parsing of the
    decoded value does, and yields the same decision."""
    doc = _with(path, value)
    outcomes = []
    for answer in (doc, _text(doc)):
        try:
            outcomes.append(Decision.from_policy_output(answer))
        except EngineError:
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]


def test_allowlisted_vulnerabilities_are_optional_and_kept_as_named() -> None:
    """A policy may name the vulnerabilities its allowlist excused; one that does not names none."""
    named = {**VALID, "allowlisted_vulnerabilities": ["CVE-2026-0001", "GHSA-2qrg-x229-3v8q"]}
    for value in (named, _text(named)):
        d = Decision.from_policy_output(value)
        assert d.allowlisted_vulnerabilities == ("CVE-2026-0001", "GHSA-2qrg-x229-3v8q")
        assert d.to_json_dict()["allowlisted_vulnerabilities"] == ["CVE-2026-0001", "GHSA-2qrg-x229-3v8q"]
    for value in (VALID, _text(VALID)):
        assert Decision.from_policy_output(value).allowlisted_vulnerabilities == ()
