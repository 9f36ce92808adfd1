# Revocation: a revoked version always blocks, never overridable; install and run need current
# revocation data; verify and publish do not.
package cortex.revocation_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

revoked(inp) := fx.with_evidence(inp, "revocation", {
	"checked": true, "revoked": true, "reason": "key compromise",
	"revoked_at": "2026-11-20T00:00:00Z", "fresh_as_of": "2026-11-25T21:00:00Z",
})

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

# Revoked blocks at every tier and every operation, and is never overridable.
test_revoked_always_blocks if {
	every base in [fx.verified, fx.community, fx.experimental, fx.untrusted] {
		every op in ["verify", "publish", "install", "run"] {
			d := decide(revoked(fx.at(base, op)))
			d.action == "block"
			d.overridable == false
			"REVOKED" in fx.codes(d)
		}
	}
}

test_revoked_keeps_tier_and_says_why if {
	d := decide(revoked(fx.verified))
	d.tier == "verified"
	fx.code_list(d) == ["TIER_VERIFIED", "REVOKED"]
	reason(d, "REVOKED").message == sprintf("cortex/weather (%s) is revoked: key compromise", [fx.digest])
}

test_revoked_without_reason_or_name if {
	inp := json.patch(revoked(fx.verified), [
		{"op": "remove", "path": "/plugin"},
		{"op": "replace", "path": "/evidence/revocation/reason", "value": null},
	])
	reason(decide(inp), "REVOKED").message == sprintf("%s is revoked", [fx.digest])
}

# Revoked even when other blockers would be overridable.
test_revoked_with_overridable_blockers_is_not_overridable if {
	inp := fx.with_trust(revoked(fx.experimental), {"network": true})
	d := decide(inp)
	({"REVOKED", "NETWORK_NOT_GRANTED"} & fx.codes(d)) == {"REVOKED", "NETWORK_NOT_GRANTED"}
	d.overridable == false
}

# --- freshness -------------------------------------------------------------------------------------

test_fresh_revocation_data_allows_install if {
	decide(fx.verified).action == "allow"
}

test_unchecked_revocation_blocks_install if {
	inp := fx.with_evidence(fx.verified, "revocation", {"checked": false, "fresh_as_of": null})
	d := decide(inp)
	d.tier == "verified"
	d.action == "block"
	d.overridable == false
	fx.codes(d) == {"TIER_VERIFIED", "REVOCATION_UNKNOWN"}
}

test_missing_revocation_piece_blocks_run if {
	inp := json.patch(fx.at(fx.verified, "run"), [{"op": "remove", "path": "/evidence/revocation"}])
	d := decide(inp)
	d.action == "block"
	fx.codes(d) == {"TIER_VERIFIED", "REVOCATION_UNKNOWN"}
}

test_stale_revocation_blocks_install if {
	inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": "2026-11-24T21:59:59Z"})
	d := decide(inp)
	d.action == "block"
	d.overridable == false
	fx.codes(d) == {"TIER_VERIFIED", "REVOCATION_STALE"}
	contains(reason(d, "REVOCATION_STALE").message, "2026-11-24T21:59:59Z")
}

# Exactly max_age_hours old is still fresh.
test_revocation_exactly_max_age_is_fresh if {
	inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": "2026-11-24T22:00:00Z"})
	decide(inp).action == "allow"
}

# Data from slightly in the future (clock skew) is fresh.
test_revocation_from_the_future_is_fresh if {
	inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": "2026-11-25T22:05:00Z"})
	decide(inp).action == "allow"
}

test_revocation_without_time_is_stale if {
	inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": null})
	d := decide(inp)
	fx.codes(d) == {"TIER_VERIFIED", "REVOCATION_STALE"}
	contains(reason(d, "REVOCATION_STALE").message, "an unknown time")
}

test_revocation_with_malformed_time_is_stale if {
	every t in ["2026-02-30T00:00:00Z", "2026-11-25 21:00:00", "2026-11-25T21:00:00+01:00", "yesterday", "2026-13-01T00:00:00Z"] {
		inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": t})
		fx.codes(decide(inp)) == {"TIER_VERIFIED", "REVOCATION_STALE"}
	}
}

# Without a valid clock nothing is fresh: neither the revocation data nor the scan
# (freshness_test.rego), so the tier drops too.
test_malformed_now_makes_revocation_stale if {
	inp := fx.with_(fx.verified, {"context": {"now": "now"}})
	fx.codes(decide(inp)) == {"TIER_EXPERIMENTAL", "REVOCATION_STALE", "SCAN_STALE"}
}

test_max_age_is_data if {
	inp := fx.with_evidence(fx.verified, "revocation", {"fresh_as_of": "2026-11-25T12:00:00Z"})
	decide(inp).action == "allow"
	fx.decide_with(inp, fx.config_with("/revocation/max_age_hours", 1)).action == "block"
}

# verify (CI) and publish (registry) do not need revocation data.
test_verify_and_publish_do_not_need_revocation_data if {
	every op in ["verify", "publish"] {
		inp := fx.with_evidence(fx.at(fx.verified, op), "revocation", {"checked": false, "fresh_as_of": null})
		d := decide(inp)
		d.action == "allow"
		fx.code_list(d) == ["TIER_VERIFIED"]
	}
}

test_operations_requiring_fresh_are_data if {
	inp := fx.with_evidence(fx.at(fx.verified, "verify"), "revocation", {"checked": false})
	d := fx.decide_with(inp, fx.config_with("/revocation/operations_requiring_fresh", ["verify"]))
	fx.codes(d) == {"TIER_VERIFIED", "REVOCATION_UNKNOWN"}
}
