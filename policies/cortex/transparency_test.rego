# Transparency: a proven fork of the registry's log always blocks; with require_inclusion an
# install needs the version proven included in the log.
package cortex.transparency_test

import data.cortex.fixtures_test as fx
import rego.v1

required := fx.config_with("/transparency", {"require_inclusion": true})

included := fx.with_evidence(fx.verified, "transparency", {
	"present": true, "included": true, "checkpoint_size": 42, "log_index": 7,
	"consistent_with_seen": true, "seen_size": 40, "error": null, "source": "default",
})

forked := fx.with_evidence(included, "transparency", {
	"consistent_with_seen": false, "error": "the checkpoint of 42 entries does not extend the one of 40 seen before",
})

missing := fx.with_evidence(fx.verified, "transparency", {
	"present": true, "included": false, "checkpoint_size": 42, "error": "the registry served no leaf for this version",
})

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

# Not required by default: no evidence, or evidence that proves nothing, changes nothing.
test_not_required_by_default if {
	fx.decide(fx.verified).action == "allow"
	fx.decide(missing).action == "allow"
	not "LOG_INCLUSION_MISSING" in fx.codes(fx.decide(missing))
}

test_required_and_included_allows if {
	d := fx.decide_with(included, required)
	d.action == "allow"
	fx.code_list(d) == ["TIER_VERIFIED"]
}

test_required_and_missing_blocks_install_not_overridable if {
	d := fx.decide_with(missing, required)
	d.action == "block"
	d.overridable == false
	d.tier == "verified"
	reason(d, "LOG_INCLUSION_MISSING").message == "cortex/weather is not proven to be in its registry's transparency log, which the policy requires (the registry served no leaf for this version)"
}

test_required_and_no_evidence_blocks if {
	d := fx.decide_with(fx.verified, required)
	"LOG_INCLUSION_MISSING" in fx.codes(d)
	reason(d, "LOG_INCLUSION_MISSING").message == "cortex/weather is not proven to be in its registry's transparency log, which the policy requires"
	inp := json.patch(fx.verified, [{"op": "remove", "path": "/plugin"}])
	startswith(reason(fx.decide_with(inp, required), "LOG_INCLUSION_MISSING").message, fx.digest)
}

# Only install is held to it: verify and publish have no registry log to prove, and run replays
# the install-time facts.
test_required_only_at_install if {
	every op in ["verify", "publish", "run"] {
		not "LOG_INCLUSION_MISSING" in fx.codes(fx.decide_with(fx.at(missing, op), required))
	}
}

test_a_forked_history_always_blocks if {
	every config in [fx.default_config, required] {
		d := fx.decide_with(forked, config)
		d.action == "block"
		d.overridable == false
		reason(d, "LOG_INCONSISTENT").message == "the registry's transparency log does not extend the checkpoint this machine saw before: a forked, truncated or rewritten history (the checkpoint of 42 entries does not extend the one of 40 seen before)"
	}
}

test_unknown_consistency_is_not_a_fork if {
	inp := fx.with_evidence(included, "transparency", {"consistent_with_seen": null})
	fx.decide_with(inp, required).action == "allow"
}

test_a_non_boolean_requirement_is_invalid_config if {
	d := fx.decide_with(fx.verified, fx.config_with("/transparency", {"require_inclusion": "yes"}))
	d.action == "block"
	"CONFIG_INVALID" in fx.codes(d)
	contains(reason(d, "CONFIG_INVALID").message, "transparency.require_inclusion must be true or false")
}
