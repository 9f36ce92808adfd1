"""Properties of the default policies, through the project's engine and ``decide()``.

Issue 2, "Tests and benchmark": adding a failing piece of evidence never raises the tier;
removing evidence never raises it; a revoked version always blocks (not overridable); every
schema-valid input gets a real decision (never the fail-closed block); and on install, with
nothing escalating, the action follows the spec's tier map.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from cortex_trust.engine import decide
from cortex_trust.policy import Action, Decision, PolicyInput, Tier
from tests.support.opa_oracle import project_engine
from tests.support.strategies import (
    NOW,
    RandomChooser,
    degrade,
    degraded_pairs,
    input_documents,
    policy_inputs,
    reduced_pairs,
)

PROPS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)

#: The spec's install behaviour (issue 2): verified → allow, community → notice,
#: experimental → warn, untrusted → block.
SPEC_ACTIONS = {
    Tier.VERIFIED: Action.ALLOW,
    Tier.COMMUNITY: Action.NOTICE,
    Tier.EXPERIMENTAL: Action.WARN,
    Tier.UNTRUSTED: Action.BLOCK,
}


@pytest.fixture(scope="module")
def engine() -> Any:
    return project_engine()[0]


def _decide(engine: Any, pi: PolicyInput) -> Decision:
    d = decide(engine, pi)
    assert not d.failed, f"the engine could not decide: {d.codes} {d.reasons[0].message}"
    return d


@PROPS
@given(pi=policy_inputs())
def test_every_input_gets_a_valid_decision(engine: Any, pi: PolicyInput) -> None:
    d = _decide(engine, pi)
    assert d.sandbox is not None
    assert d.reasons
    if d.action is Action.ALLOW:
        # an allow never rests on a revoked version
        assert not pi.evidence.revocation.revoked


@PROPS
@given(pair=degraded_pairs())
def test_a_failing_piece_of_evidence_never_raises_the_tier(
    engine: Any, pair: tuple[PolicyInput, PolicyInput, str]
) -> None:
    before, after, kind = pair
    b, a = _decide(engine, before), _decide(engine, after)
    assert a.tier.rank <= b.tier.rank, (
        f"making {kind} fail raised the tier {b.tier} -> {a.tier}\n"
        f"before: {before.to_json()}\nafter:  {after.to_json()}\ncodes: {b.codes} -> {a.codes}")
    assert a.action.severity >= Action.BLOCK.severity or kind != "revocation"


@PROPS
@given(pair=reduced_pairs())
def test_removing_evidence_never_raises_the_tier(
    engine: Any, pair: tuple[PolicyInput, PolicyInput, str]
) -> None:
    before, after, kind = pair
    # Removing a *revocation* that says "revoked" is not removing evidence for the plugin.
    assume(not (kind == "revocation" and before.evidence.revocation.revoked))
    b, a = _decide(engine, before), _decide(engine, after)
    assert a.tier.rank <= b.tier.rank, (
        f"removing {kind} raised the tier {b.tier} -> {a.tier}\n"
        f"before: {before.to_json()}\ncodes: {b.codes} -> {a.codes}")


@PROPS
@given(doc=input_documents())
def test_a_revoked_version_always_blocks(engine: Any, doc: dict[str, Any]) -> None:
    revoked = PolicyInput.model_validate(degrade(doc, "revocation", RandomChooser(0)))
    d = _decide(engine, revoked)
    assert d.action is Action.BLOCK, d.codes
    assert d.overridable is False, d.codes


def _no_escalation(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as an install with nothing that escalates beyond the tier map: fresh, unrevoked
    revocation data; a compatible, sandboxed manifest (if valid) asking for no network or
    filesystem (an ungranted permission blocks); nothing dropped."""
    out = copy.deepcopy(doc)
    out["context"].update(operation="install", cortex_version="0.1.0")
    out["evidence"]["revocation"] = {"checked": True, "revoked": False,
                                     "fresh_as_of": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}
    out["evidence"]["dropped"] = []
    document = out["manifest"].get("document")
    if document is not None:
        document["trust"].update(sandbox=True, min_cortex_version="0.1.0", network=False,
                                 filesystem=False)
    return out


@PROPS
@given(doc=input_documents())
def test_install_action_follows_the_tier_map(engine: Any, doc: dict[str, Any]) -> None:
    d = _decide(engine, PolicyInput.model_validate(_no_escalation(doc)))
    assert d.action is SPEC_ACTIONS[d.tier], (d.tier, d.action, d.codes)


def test_every_tier_is_reached(engine: Any) -> None:
    """The generator reaches every tier with the default policies (else the properties above
    would be vacuous for the tiers it misses)."""
    from tests.support.strategies import random_documents

    seen = {
        _decide(engine, PolicyInput.model_validate(_no_escalation(doc))).tier
        for doc in random_documents(600, seed=7)
    }
    assert seen == set(Tier)
