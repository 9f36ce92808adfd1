# Verified checks: review, trusted signer, production use. Each row starts from the Verified
# fixture, breaks one fact, and asserts tier, action and the exact reason codes.
package cortex.verified_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

# One failed Verified check: the plugin is Community (install -> notice) with that reason.
community_because(inp, code) if {
	d := decide(inp)
	d.tier == "community"
	d.action == "notice"
	fx.codes(d) == {"TIER_COMMUNITY", code}
	d.next_tier.tier == "verified"
	fx.missing_codes(d) == {code}
}

# --- review --------------------------------------------------------------------------------------

test_review_missing if community_because(fx.without(fx.verified, "review"), "REVIEW_MISSING")

test_review_rejected if {
	community_because(fx.with_evidence(fx.verified, "review", {"status": "rejected"}), "REVIEW_NOT_APPROVED")
}

test_review_changes_requested if {
	community_because(fx.with_evidence(fx.verified, "review", {"status": "changes_requested"}), "REVIEW_NOT_APPROVED")
}

test_review_without_status if {
	community_because(fx.with_evidence(fx.verified, "review", {"status": null}), "REVIEW_NOT_APPROVED")
}

test_reviewer_not_core_team if {
	community_because(fx.with_evidence(fx.verified, "review", {"reviewer": "mallory"}), "REVIEWER_UNTRUSTED")
}

test_reviewer_missing if {
	community_because(fx.with_evidence(fx.verified, "review", {"reviewer": null}), "REVIEWER_UNTRUSTED")
}

# The reviewer list is data: an organization's list replaces ours.
test_reviewer_list_is_data if {
	d := fx.decide_with(fx.verified, fx.config_with("/verified/reviewers", ["acme/wile"]))
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEWER_UNTRUSTED"}
}

test_rejected_by_untrusted_reviewer_gives_both_reasons if {
	d := decide(fx.with_evidence(fx.verified, "review", {"status": "rejected", "reviewer": "mallory"}))
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_NOT_APPROVED", "REVIEWER_UNTRUSTED"}
}

# --- signature -----------------------------------------------------------------------------------

test_signature_missing if community_because(fx.without(fx.verified, "signature"), "SIGNATURE_MISSING")

test_signature_invalid if {
	inp := fx.with_evidence(fx.verified, "signature", {"verified": false, "error": "certificate chain does not lead to a trusted root"})
	community_because(inp, "SIGNATURE_INVALID")
	some r in decide(inp).reasons
	r.code == "SIGNATURE_INVALID"
	contains(r.message, "trusted root")
}

test_signature_invalid_without_error_text if {
	community_because(fx.with_evidence(fx.verified, "signature", {"verified": false, "error": null}), "SIGNATURE_INVALID")
}

test_signer_identity_untrusted if {
	inp := fx.with_evidence(fx.verified, "signature", {"identity": "https://github.com/mallory/weather/.github/workflows/release.yml@refs/tags/v1.2.0"})
	community_because(inp, "SIGNER_UNTRUSTED")
}

# Issuer and identity always together: the right identity from another issuer is not trusted.
test_signer_issuer_untrusted if {
	inp := fx.with_evidence(fx.verified, "signature", {"issuer": "https://accounts.example.com"})
	community_because(inp, "SIGNER_UNTRUSTED")
}

# The release workflow from a branch, not a tag, does not match the pattern.
test_signer_from_branch_untrusted if {
	inp := fx.with_evidence(fx.verified, "signature", {"identity": "https://github.com/cortex-platform/weather/.github/workflows/release.yml@refs/heads/main"})
	community_because(inp, "SIGNER_UNTRUSTED")
}

# `*` stays within one path segment: no nested repositories.
test_signer_glob_does_not_cross_slash if {
	inp := fx.with_evidence(fx.verified, "signature", {"identity": "https://github.com/cortex-platform/a/b/.github/workflows/release.yml@refs/tags/v1"})
	community_because(inp, "SIGNER_UNTRUSTED")
}

# The cortex-platform identity is trusted for cortex/* plugins only.
test_signer_trusted_only_for_its_plugins if {
	inp := fx.with_(fx.verified, {"plugin": {"namespace": "other", "full_name": "other/weather"}})
	community_because(inp, "SIGNER_UNTRUSTED")
}

test_signer_for_unnamed_plugin_untrusted if {
	inp := json.patch(fx.verified, [{"op": "remove", "path": "/plugin"}])
	d := decide(inp)
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED"}
	some r in d.reasons
	r.code == "SIGNER_UNTRUSTED"
	contains(r.message, "this plugin (no name)")
}

test_signer_with_empty_identity_untrusted if {
	signers := {"any": {"plugins": ["*/*"], "issuer": "*", "identity": "*"}}
	inp := fx.with_evidence(fx.verified, "signature", {"identity": null, "issuer": null})
	d := fx.decide_with(inp, fx.config_with("/trusted_signers", signers))
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED"}
}

# trusted_signers may also be written as a list (the shape some organizations prefer).
test_trusted_signers_as_list if {
	signers := [{"plugins": ["cortex/*"], "issuer": fx.github_issuer, "identity": fx.trusted_identity}]
	d := fx.decide_with(fx.verified, fx.config_with("/trusted_signers", signers))
	d.tier == "verified"
}

# A data file removes a default entry by setting it to null.
test_trusted_signer_removed_by_null if {
	d := fx.decide_with(fx.verified, fx.config_with("/trusted_signers", {"cortex-release": null}))
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED"}
}

# Exact values (no glob characters) match exactly.
test_trusted_signer_exact_identity if {
	signers := {"exact": {"plugins": ["cortex/weather"], "issuer": fx.github_issuer, "identity": fx.trusted_identity}}
	fx.decide_with(fx.verified, fx.config_with("/trusted_signers", signers)).tier == "verified"
	inp := fx.with_evidence(fx.verified, "signature", {"identity": concat("", [fx.trusted_identity, "x"])})
	fx.decide_with(inp, fx.config_with("/trusted_signers", signers)).tier == "community"
}

# An entry with a malformed plugins list matches nothing.
test_trusted_signer_without_plugin_list_matches_nothing if {
	signers := {"bad": {"plugins": "cortex/*", "issuer": fx.github_issuer, "identity": fx.trusted_identity}}
	d := fx.decide_with(fx.verified, fx.config_with("/trusted_signers", signers))
	"SIGNER_UNTRUSTED" in fx.codes(d)
}

# --- usage ---------------------------------------------------------------------------------------

test_usage_missing if community_because(fx.without(fx.verified, "usage"), "USAGE_MISSING")

# tier: Verified requires 30 days of production use: 29 is not enough, 30 is.
test_usage_29_days_insufficient if {
	inp := fx.with_evidence(fx.verified, "usage", {"days_in_production": 29})
	community_because(inp, "USAGE_INSUFFICIENT")
	some m in decide(inp).next_tier.missing
	m.message == sprintf("to reach verified: run %s in production for 1 more day(s)", [fx.digest])
}

test_usage_30_days_enough if {
	decide(fx.with_evidence(fx.verified, "usage", {"days_in_production": 30})).tier == "verified"
}

# The threshold is data.
test_usage_threshold_is_data if {
	inp := fx.with_evidence(fx.verified, "usage", {"days_in_production": 10})
	decide(inp).tier == "community"
	fx.decide_with(inp, fx.config_with("/verified/min_days_in_production", 7)).tier == "verified"
}

# --- everything missing at once --------------------------------------------------------------------

test_all_verified_checks_fail if {
	inp := fx.with_(fx.verified, {"evidence": {
		"signature": {"present": true, "verified": false},
		"review": {"present": true, "status": "rejected", "reviewer": "mallory"},
		"usage": {"present": true, "days_in_production": 0},
	}})
	d := decide(inp)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNATURE_INVALID", "REVIEW_NOT_APPROVED", "REVIEWER_UNTRUSTED", "USAGE_INSUFFICIENT"}
	count(d.next_tier.missing) == 4
}
