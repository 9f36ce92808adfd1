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

reviews(inp, records) := fx.with_evidence(inp, "review", {"reviews": records})

ada_approves := fx.review_record("cortex-core/ada", "approved")

test_review_missing if community_because(fx.without(fx.verified, "review"), "REVIEW_MISSING")

# A review piece that says present but lists no review is no review.
test_review_present_without_records if {
	community_because(reviews(fx.verified, []), "REVIEW_MISSING")
}

test_review_rejected if {
	inp := reviews(fx.verified, [fx.review_record("cortex-core/ada", "rejected")])
	community_because(inp, "REVIEW_NOT_APPROVED")
	some r in decide(inp).reasons
	r.message == sprintf("core-team reviewer 'cortex-core/ada' rejected %s", [fx.digest])
}

test_review_changes_requested if {
	inp := reviews(fx.verified, [fx.review_record("cortex-core/ada", "changes_requested")])
	community_because(inp, "REVIEW_NOT_APPROVED")
	some r in decide(inp).reasons
	contains(r.message, "'cortex-core/ada' requested changes to")
}

test_review_without_verdict if {
	community_because(reviews(fx.verified, [{"reviewer": "cortex-core/ada"}]), "REVIEW_NOT_APPROVED")
	community_because(reviews(fx.verified, [{"reviewer": "cortex-core/ada", "verdict": null}]), "REVIEW_NOT_APPROVED")
}

# Only listed reviewers count: an approval by anyone else is no core-team review, and says so.
test_reviewer_not_core_team if {
	inp := reviews(fx.verified, [fx.review_record("partner/bob", "approved")])
	d := decide(inp)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_MISSING", "REVIEWER_UNTRUSTED"}
	fx.missing_codes(d) == {"REVIEW_MISSING"}
	some r in d.reasons
	r.code == "REVIEWER_UNTRUSTED"
	r.message == "the review by 'partner/bob' (approved) was not counted: not a core-team reviewer (verified.reviewers)"
}

test_reviewer_missing if {
	d := decide(reviews(fx.verified, [{"verdict": "approved"}]))
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_MISSING", "REVIEWER_UNTRUSTED"}
}

# Records that are not objects are not reviews.
test_review_records_must_be_objects if {
	community_because(reviews(fx.verified, ["cortex-core/ada", null, 1]), "REVIEW_MISSING")
	community_because(fx.with_evidence(fx.verified, "review", {"reviews": "cortex-core/ada"}), "REVIEW_MISSING")
}

# The reviewer list is data: an organization's list replaces ours.
test_reviewer_list_is_data if {
	d := fx.decide_with(fx.verified, fx.config_with("/verified/reviewers", ["acme/wile"]))
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_MISSING", "REVIEWER_UNTRUSTED"}
}

# An untrusted reviewer's review never hides a core-team approval, whatever it says and
# whenever it was written: the plugin stays Verified and the review is reported.
test_untrusted_review_never_hides_a_core_team_approval if {
	every verdict in ["approved", "rejected", "changes_requested"] {
		later := object.union(fx.review_record("partner/bob", verdict), {"at": "2026-11-25T21:00:00Z"})
		d := decide(reviews(fx.verified, [ada_approves, later]))
		d.tier == "verified"
		d.action == "allow"
		fx.codes(d) == {"TIER_VERIFIED", "REVIEWER_UNTRUSTED"}
	}
}

# Nor does it hide a core-team objection: an outsider's approval does not outvote it.
test_untrusted_approval_does_not_outvote_a_core_team_rejection if {
	inp := reviews(fx.verified, [fx.review_record("cortex-core/grace", "rejected"), fx.review_record("partner/bob", "approved")])
	d := decide(inp)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_NOT_APPROVED", "REVIEWER_UNTRUSTED"}
}

# Every core-team reviewer who reviewed must approve: one objection keeps the plugin below
# Verified, with one reason per objecting reviewer.
test_core_team_objection_beats_core_team_approval if {
	inp := reviews(fx.verified, [
		ada_approves,
		fx.review_record("cortex-core/grace", "rejected"),
		fx.review_record("cortex-core/linus", "changes_requested"),
	])
	d := decide(inp)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_NOT_APPROVED"}
	count([r | some r in d.reasons; r.code == "REVIEW_NOT_APPROVED"]) == 2
	count(d.next_tier.missing) == 2
}

test_several_core_team_approvals if {
	inp := reviews(fx.verified, [ada_approves, fx.review_record("cortex-core/grace", "approved")])
	d := decide(inp)
	d.tier == "verified"
	contains(d.reasons[0].message, "approved by core-team reviewer(s) cortex-core/ada, cortex-core/grace,")
}

test_rejected_by_untrusted_reviewer_alone if {
	d := decide(reviews(fx.verified, [fx.review_record("mallory", "rejected")]))
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "REVIEW_MISSING", "REVIEWER_UNTRUSTED"}
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

usage_with(inp, fields) := fx.with_evidence(inp, "usage", fields)

reporters(inp, list) := usage_with(inp, {"reporters": list})

test_usage_missing if community_because(fx.without(fx.verified, "usage"), "USAGE_MISSING")

# tier: Verified requires 30 days of production use: 29 is not enough, 30 is.
test_usage_29_days_insufficient if {
	inp := usage_with(fx.verified, {"days_in_production": 29})
	community_because(inp, "USAGE_INSUFFICIENT")
	some m in decide(inp).next_tier.missing
	m.message == sprintf("to reach verified: run %s in production for 1 more day(s)", [fx.digest])
}

test_usage_30_days_enough if {
	decide(usage_with(fx.verified, {"days_in_production": 30})).tier == "verified"
}

# The threshold is data.
test_usage_threshold_is_data if {
	inp := usage_with(fx.verified, {"days_in_production": 10})
	decide(inp).tier == "community"
	fx.decide_with(inp, fx.config_with("/verified/min_days_in_production", 7)).tier == "verified"
}

# Reports by the plugin's own namespace are not independent: the publisher alone, however long
# and however many installations, is too few reporters.
test_usage_by_the_publisher_alone if {
	inp := reporters(fx.verified, [fx.reporter("cortex", 5000, 55, 55, "2026-10-01T00:00:00Z")])
	community_because(inp, "USAGE_TOO_FEW_REPORTERS")
	some r in decide(inp).reasons
	r.message == sprintf("0 organization(s) other than the publisher's reported production use of %s; verified needs 2", [fx.digest])
}

# One outside organization is not enough by default (min_organizations: 2).
test_usage_by_one_organization if {
	inp := reporters(fx.verified, [fx.reporter("initech", 1, 55, 55, "2026-10-01T00:00:00Z")])
	community_because(inp, "USAGE_TOO_FEW_REPORTERS")
	fx.decide_with(inp, fx.config_with("/verified/min_organizations", 1)).tier == "verified"
}

# A usage piece without reporters (e.g. an older usage document) shows no organization at all.
test_usage_without_reporters if {
	community_because(usage_with(fx.verified, {"reporters": null}), "USAGE_TOO_FEW_REPORTERS")
	community_because(usage_with(fx.verified, {"reporters": []}), "USAGE_TOO_FEW_REPORTERS")
	community_because(reporters(fx.verified, ["initech", {"organization": 7}, {"organization": ""}]), "USAGE_TOO_FEW_REPORTERS")
}

# One report 30 days ago (one active day) is not continued use.
test_usage_single_reports_are_not_continued if {
	inp := reporters(fx.verified, [
		fx.reporter("initech", 1, 1, 55, "2026-10-01T00:00:00Z"),
		fx.reporter("globex", 1, 1, 55, "2026-10-01T00:00:00Z"),
	])
	community_because(inp, "USAGE_NOT_CONTINUED")
	some r in decide(inp).reasons
	r.message == sprintf("0 independent organization(s) reported %s on at least 20 day(s) since at least 30 day(s); verified needs 2", [fx.digest])
}

# 19 active days are not enough, 20 are; both organizations must qualify.
test_usage_active_days_threshold if {
	short := reporters(fx.verified, [
		fx.reporter("initech", 1, 20, 40, "2026-10-16T00:00:00Z"),
		fx.reporter("globex", 1, 19, 40, "2026-10-16T00:00:00Z"),
	])
	community_because(short, "USAGE_NOT_CONTINUED")
	enough := reporters(fx.verified, [
		fx.reporter("initech", 1, 20, 40, "2026-10-16T00:00:00Z"),
		fx.reporter("globex", 1, 20, 40, "2026-10-16T00:00:00Z"),
	])
	decide(enough).tier == "verified"
	fx.decide_with(short, fx.config_with("/verified/min_active_days", 19)).tier == "verified"
}

# An organization counts once its own first report is old enough: daily reports for the last
# 25 days do not show 30 days in production, even if the publisher reported earlier.
test_usage_each_organization_needs_the_days if {
	inp := reporters(fx.verified, [
		fx.reporter("cortex", 1, 55, 55, "2026-10-01T00:00:00Z"),
		fx.reporter("initech", 1, 25, 25, "2026-10-31T00:00:00Z"),
		fx.reporter("globex", 1, 40, 40, "2026-10-16T00:00:00Z"),
	])
	community_because(inp, "USAGE_NOT_CONTINUED")
}

# Reports of the same organization in several entries count as one organization.
test_usage_organizations_are_counted_once if {
	inp := reporters(fx.verified, [
		fx.reporter("initech", 1, 40, 40, "2026-10-16T00:00:00Z"),
		fx.reporter("initech", 9, 40, 40, "2026-10-16T00:00:00Z"),
	])
	community_because(inp, "USAGE_TOO_FEW_REPORTERS")
}

# A plugin without a namespace has no publisher organization to leave out.
test_usage_plugin_without_namespace if {
	inp := json.patch(fx.verified, [{"op": "replace", "path": "/plugin/namespace", "value": null}])
	"USAGE_TOO_FEW_REPORTERS" in fx.missing_codes(decide(reporters(inp, [fx.reporter("initech", 1, 40, 40, "2026-10-16T00:00:00Z")])))
	d := decide(reporters(inp, [
		fx.reporter("cortex", 1, 40, 40, "2026-10-16T00:00:00Z"),
		fx.reporter("initech", 1, 40, 40, "2026-10-16T00:00:00Z"),
	]))
	not "USAGE_TOO_FEW_REPORTERS" in fx.missing_codes(d)
	not "USAGE_NOT_CONTINUED" in fx.missing_codes(d)
}

# Too short overall: the days are the reason, not continuity as well.
test_usage_too_short_is_one_reason if {
	inp := usage_with(fx.verified, {"days_in_production": 3, "reporters": [
		fx.reporter("initech", 1, 3, 3, "2026-11-22T00:00:00Z"),
		fx.reporter("globex", 1, 3, 3, "2026-11-22T00:00:00Z"),
	]})
	community_because(inp, "USAGE_INSUFFICIENT")
}

# The Verified reason says how many independent organizations showed continued use.
test_verified_reason_names_the_organizations if {
	d := decide(fx.verified)
	d.tier == "verified"
	contains(d.reasons[0].message, "55 day(s) in production at 2 independent organization(s)")
}

# --- everything missing at once --------------------------------------------------------------------

test_all_verified_checks_fail if {
	inp := fx.with_(fx.verified, {"evidence": {
		"signature": {"present": true, "verified": false},
		"review": {"present": true, "reviews": [fx.review_record("mallory", "approved"), fx.review_record("cortex-core/ada", "rejected")]},
		"usage": {"present": true, "days_in_production": 0, "reporters": []},
	}})
	d := decide(inp)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNATURE_INVALID", "REVIEW_NOT_APPROVED", "REVIEWER_UNTRUSTED", "USAGE_INSUFFICIENT", "USAGE_TOO_FEW_REPORTERS"}
	count(d.next_tier.missing) == 4
}

# --- signers trusted on verify's command line (input.context.command_line_signers) -------------

_mallory := "https://github.com/mallory/weather/.github/workflows/release.yml@refs/tags/v1.2.0"

_signed_by_mallory_at(op, signers) := object.union(
	fx.at(fx.with_evidence(fx.verified, "signature", {"identity": _mallory}), op),
	{"context": {"command_line_signers": signers}},
)

test_command_line_signer_exact if {
	d := fx.decide(_signed_by_mallory_at("verify", [{"identity": _mallory, "issuer": fx.github_issuer}]))
	d.tier == "verified"
	"SIGNER_FROM_COMMAND_LINE" in fx.codes(d)
}

test_command_line_signer_regexp if {
	signers := [{"identity_regexp": `https://github\.com/mallory/[a-z]+/\.github/workflows/release\.yml@refs/tags/v.*`, "issuer_regexp": `https://token\.actions\.githubusercontent\.com`}]
	fx.decide(_signed_by_mallory_at("verify", signers)).tier == "verified"
}

test_command_line_signer_needs_both_identity_and_issuer if {
	signers := [{"identity": _mallory, "issuer": "https://accounts.example.com"}]
	community_because(_signed_by_mallory_at("verify", signers), "SIGNER_UNTRUSTED")
}

# Anchored: a pattern matching only a part of the identity does not trust it.
test_command_line_signer_regexp_is_anchored if {
	prefix := [{"identity_regexp": "https://github.com/mallory", "issuer": fx.github_issuer}]
	community_because(_signed_by_mallory_at("verify", prefix), "SIGNER_UNTRUSTED")
	suffix := [{"identity_regexp": "refs/tags/v1.2.0", "issuer": fx.github_issuer}]
	community_because(_signed_by_mallory_at("verify", suffix), "SIGNER_UNTRUSTED")
}

# A pattern that would close the group around it (and so escape the anchors) is not valid on its
# own, and matches nothing.
test_command_line_signer_regexp_cannot_escape_its_anchors if {
	signers := [{"identity_regexp": "x)|(.*", "issuer": fx.github_issuer}]
	community_because(_signed_by_mallory_at("verify", signers), "SIGNER_UNTRUSTED")
}

test_command_line_signer_regexp_too_long if {
	signers := [{"identity_regexp": concat("", [".*", concat("", ["a?" | some _ in numbers.range(1, 300)])]), "issuer": fx.github_issuer}]
	community_because(_signed_by_mallory_at("verify", signers), "SIGNER_UNTRUSTED")
}

# Only at verify: an install (or a registry) never takes signers from an input's command line.
test_command_line_signer_ignored_outside_verify if {
	signers := [{"identity": _mallory, "issuer": fx.github_issuer}]
	community_because(_signed_by_mallory_at("install", signers), "SIGNER_UNTRUSTED")
	community_because(_signed_by_mallory_at("publish", signers), "SIGNER_UNTRUSTED")
}

# Through the default signer roots only: a private root cannot mint a command-line signer.
test_command_line_signer_needs_a_default_root if {
	inp := object.union(_signed_by_mallory_at("verify", [{"identity": _mallory, "issuer": fx.github_issuer}]),
		{"evidence": {"signature": {"trusted_root": "private"}}})
	community_because(inp, "SIGNER_UNTRUSTED")
}
