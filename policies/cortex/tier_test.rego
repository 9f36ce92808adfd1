# The tier table (spec: Verified / Community / Experimental / Untrusted), asserted on tier,
# action and reason codes; next_tier; monotonicity. Rows removing one piece of evidence at a
# time are in verified_test.rego and community_test.rego.
package cortex.tier_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

test_verified_row if {
	d := decide(fx.verified)
	d.tier == "verified"
	d.action == "allow"
	fx.code_list(d) == ["TIER_VERIFIED"]
	d.next_tier == null
	d.overridable == false
}

test_community_row if {
	d := decide(fx.community)
	d.tier == "community"
	d.action == "notice"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
	d.next_tier.tier == "verified"
	fx.missing_codes(d) == {"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
	d.overridable == false
}

test_experimental_row if {
	d := decide(fx.experimental)
	d.tier == "experimental"
	d.action == "warn"
	fx.codes(d) == {
		"TIER_EXPERIMENTAL", "SCAN_MISSING", "TESTS_MISSING",
		"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING",
	}
	d.next_tier.tier == "community"
	fx.missing_codes(d) == {"SCAN_MISSING", "TESTS_MISSING"}
}

test_untrusted_row if {
	d := decide(fx.untrusted)
	d.tier == "untrusted"
	d.action == "block"
	d.overridable == true
	fx.codes(d) == {
		"TIER_UNTRUSTED", "MANIFEST_INVALID", "SCAN_MISSING", "TESTS_MISSING",
		"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING",
	}
	d.next_tier.tier == "experimental"
	fx.missing_codes(d) == {"MANIFEST_INVALID"}
}

# The tier reason always comes first and names the tier.
test_tier_reason_first if {
	every inp in [fx.verified, fx.community, fx.experimental, fx.untrusted] {
		d := decide(inp)
		d.reasons[0].code == sprintf("TIER_%s", [upper(d.tier)])
	}
}

test_manifest_invalid_message_names_first_problem if {
	d := decide(fx.untrusted)
	some r in d.reasons
	r.code == "MANIFEST_INVALID"
	contains(r.message, "1 problem(s)")
	contains(r.message, "quote it")
}

# Verified also needs everything Community needs: all Verified evidence but no scan.
test_verified_requires_community if {
	d := decide(fx.without(fx.verified, "scan"))
	d.tier == "experimental"
	d.action == "warn"
	fx.codes(d) == {"TIER_EXPERIMENTAL", "SCAN_MISSING"}
	d.next_tier.tier == "community"
	fx.missing_codes(d) == {"SCAN_MISSING"}
}

# An invalid manifest is untrusted whatever else is there.
test_invalid_manifest_with_full_evidence_is_untrusted if {
	inp := json.patch(fx.verified, [{"op": "replace", "path": "/manifest", "value": {"valid": false, "problems": [], "document": null}}])
	d := decide(inp)
	d.tier == "untrusted"
	d.action == "block"
	fx.codes(d) == {"TIER_UNTRUSTED", "MANIFEST_INVALID"}
}

# next_tier messages say what to do, naming the tier and the digest.
test_next_tier_messages_say_what_to_do if {
	d := decide(fx.experimental)
	some m in d.next_tier.missing
	m.code == "SCAN_MISSING"
	m.message == sprintf("to reach community: attach a passing scan bound to %s", [fx.digest])
}

# Monotonic: removing any single piece of evidence never raises the tier.
test_removing_evidence_never_raises_tier if {
	rank := {t: i | some i, t in data.cortex.tiers}
	every base in [fx.verified, fx.community, fx.experimental] {
		every kind in ["signature", "scan", "tests", "review", "usage"] {
			rank[decide(fx.without(base, kind)).tier] <= rank[decide(base).tier]
		}
	}
}

# Monotonic: adding a failing piece of evidence never raises the tier.
test_adding_failing_evidence_never_raises_tier if {
	rank := {t: i | some i, t in data.cortex.tiers}
	failing := [
		{"signature": {"present": true, "verified": false, "error": "bad signature"}},
		{"scan": {"present": true, "bound": false}},
		{"tests": {"present": true, "total": 3, "failures": 1}},
		{"review": {"present": true, "reviews": [fx.review_record("cortex-core/ada", "rejected")]}},
		{"usage": {"present": true, "days_in_production": 1}},
		{"usage": {"present": true, "reporters": [fx.reporter("initech", 1, 1, 55, "2026-10-01T00:00:00Z")]}},
	]
	every base in [fx.verified, fx.community, fx.experimental, fx.untrusted] {
		every piece in failing {
			inp := object.union(base, {"evidence": piece})
			rank[decide(inp).tier] <= rank[decide(base).tier]
		}
	}
}
