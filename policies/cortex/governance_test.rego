# Governance (governance.rego) on the shipped data: core plugins need a core-team review, community
# plugins an approved promotion pull request bound to the digest; open security disputes warn.
package cortex.governance_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide_with(inp, config)

# The shipped data with one community reviewer and one core reviewer listed.
config := fx.config_patched_shipped([
	{"op": "replace", "path": "/governance/community_reviewers", "value": ["octo-reviewer"]},
	{"op": "replace", "path": "/governance/core_reviewers", "value": ["core-lead"]},
])

pr_url := "https://github.com/cortex/registry-index/pull/7"

approval(login) := {"login": login, "state": "approved", "at": "2026-11-20T10:00:00Z"}

# An open promotion pull request of the fixture's digest, with `reviews`.
promotion(reviews) := {
	"present": true, "url": pr_url, "number": 7, "repository": "cortex/registry-index",
	"state": "open", "merged": false, "head_sha": "0123456789abcdef0123456789abcdef01234567",
	"head_digest": fx.digest, "reviews": reviews, "digest": fx.digest, "source": "registry",
}

# A community plugin (namespace acme, not core) that meets every automated Community check.
acme := json.patch(fx.community, [
	{"op": "replace", "path": "/plugin", "value": {"namespace": "acme", "name": "weather", "version": "1.2.0", "full_name": "acme/weather", "publisher": "acme"}},
	{"op": "replace", "path": "/evidence/review", "value": {"present": false}},
])

promoted := fx.with_evidence(acme, "promotion", promotion([approval("octo-reviewer")]))

with_promotion(fields) := fx.with_evidence(promoted, "promotion", fields)

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

experimental_because(inp, code) if {
	d := decide(inp)
	d.tier == "experimental"
	d.action == "warn"
	d.next_tier.tier == "community"
	fx.missing_codes(d) == {code}
}

# --- community plugins: promotion ------------------------------------------------------------------

test_approved_promotion_reaches_community if {
	d := decide(promoted)
	d.tier == "community"
	d.action == "notice"
	not "PROMOTION_MISSING" in fx.codes(d)
}

test_no_promotion_is_missing if {
	experimental_because(acme, "PROMOTION_MISSING")
	contains(reason(decide(acme), "PROMOTION_MISSING").evidence[0], "promotion")
	some m in decide(acme).next_tier.missing
	contains(m.message, "cortex plugin promote acme/weather@1.2.0")
}

test_open_promotion_without_approval_is_pending_with_the_link if {
	inp := with_promotion({"reviews": []})
	experimental_because(inp, "PROMOTION_PENDING")
	contains(reason(decide(inp), "PROMOTION_PENDING").message, pr_url)
}

test_approval_by_an_unlisted_account_does_not_count if {
	inp := with_promotion({"reviews": [approval("mallory")]})
	experimental_because(inp, "PROMOTION_PENDING")
	"PROMOTION_REVIEWER_UNTRUSTED" in fx.codes(decide(inp))
}

test_logins_are_case_insensitive if {
	decide(with_promotion({"reviews": [approval("Octo-Reviewer")]})).tier == "community"
}

test_core_reviewer_approval_counts if {
	decide(with_promotion({"reviews": [approval("core-lead")]})).tier == "community"
}

test_closed_unmerged_is_rejected if {
	inp := with_promotion({"state": "closed", "merged": false})
	experimental_because(inp, "PROMOTION_REJECTED")
	contains(reason(decide(inp), "PROMOTION_REJECTED").message, pr_url)
}

test_merged_and_approved_is_community if {
	decide(with_promotion({"state": "closed", "merged": true, "merge_commit": "abc"})).tier == "community"
}

test_merged_without_a_listed_approval_is_pending if {
	experimental_because(with_promotion({"state": "closed", "merged": true, "reviews": []}), "PROMOTION_PENDING")
}

test_changes_requested_by_a_listed_reviewer_rejects if {
	inp := with_promotion({"reviews": [approval("core-lead"), {"login": "octo-reviewer", "state": "changes_requested", "at": "2026-11-21T10:00:00Z"}]})
	experimental_because(inp, "PROMOTION_REJECTED")
	contains(reason(decide(inp), "PROMOTION_REJECTED").message, "octo-reviewer")
}

test_changes_requested_by_an_unlisted_account_changes_nothing if {
	inp := with_promotion({"reviews": [approval("octo-reviewer"), {"login": "mallory", "state": "changes_requested"}]})
	decide(inp).tier == "community"
}

test_head_that_no_longer_names_the_digest_is_not_an_approval if {
	experimental_because(with_promotion({"head_digest": fx.other_digest}), "PROMOTION_DIGEST_CHANGED")
	experimental_because(with_promotion({"head_digest": null}), "PROMOTION_DIGEST_CHANGED")
}

test_malformed_reviews_count_for_nothing if {
	experimental_because(with_promotion({"reviews": ["octo-reviewer", {"state": "approved"}, {"login": 7, "state": "approved"}]}), "PROMOTION_PENDING")
	experimental_because(with_promotion({"reviews": "octo-reviewer"}), "PROMOTION_PENDING")
}

test_promotion_from_an_untrusted_source_is_not_used if {
	cfg := json.patch(config, [{"op": "add", "path": "/evidence_sources/mirror", "value": {"signature": true, "scan": true, "tests": true, "review": true, "usage": true, "promotion": false}}])
	inp := with_promotion({"source": "mirror"})
	d := fx.decide_with(inp, cfg)
	d.tier == "experimental"
	fx.missing_codes(d) == {"PROMOTION_MISSING"}
	"EVIDENCE_SOURCE_UNTRUSTED" in fx.codes(d)
}

test_required_only_where_data_says if {
	decide(fx.at(acme, "verify")).tier == "community"
	experimental_because(fx.at(acme, "publish"), "PROMOTION_MISSING")
	experimental_because(fx.at(acme, "run"), "PROMOTION_MISSING")
	off := json.patch(config, [{"op": "replace", "path": "/governance/promotion/operations", "value": []}])
	fx.decide_with(acme, off).tier == "community"
}

test_a_private_registry_exempts_its_own_namespaces if {
	cfg := json.patch(config, [{"op": "replace", "path": "/governance/promotion/exempt_plugins", "value": ["acme/*"]}])
	fx.decide_with(acme, cfg).tier == "community"
	other := json.patch(acme, [{"op": "replace", "path": "/plugin/full_name", "value": "globex/weather"}])
	fx.decide_with(other, cfg).tier == "experimental"
}

# Verified also needs the promotion (it needs everything Community needs).
test_verified_needs_the_promotion_too if {
	verified_acme := json.patch(fx.verified, [{"op": "replace", "path": "/plugin", "value": {"namespace": "acme", "name": "weather", "full_name": "acme/weather", "version": "1.2.0"}}])
	cfg := json.patch(config, [{"op": "replace", "path": "/trusted_signers/cortex-release/plugins", "value": ["acme/*"]}])
	fx.decide_with(verified_acme, cfg).tier == "experimental"
	fx.decide_with(fx.with_evidence(verified_acme, "promotion", promotion([approval("octo-reviewer")])), cfg).tier == "verified"
}

# --- core plugins ----------------------------------------------------------------------------------

test_core_plugin_needs_a_core_team_review if {
	experimental_because(fx.community, "CORE_REVIEW_MISSING")
	contains(reason(decide(fx.community), "CORE_REVIEW_MISSING").message, "cortex/weather")
}

test_core_plugin_needs_no_promotion if {
	reviewed := fx.with_evidence(fx.community, "review", {"present": true, "reviews": [fx.review_record("cortex-core/ada", "approved")], "digest": fx.digest, "source": "registry"})
	d := decide(reviewed)
	d.tier == "community"
	not "PROMOTION_MISSING" in fx.codes(d)
	decide(fx.verified).tier == "verified"
}

test_core_review_by_someone_else_does_not_count if {
	other := fx.with_evidence(fx.community, "review", {"present": true, "reviews": [fx.review_record("acme/bob", "approved")], "digest": fx.digest, "source": "registry"})
	experimental_because(other, "CORE_REVIEW_MISSING")
}

test_core_namespace_is_reserved_at_publish if {
	claimed := json.patch(fx.at(fx.verified, "publish"), [{"op": "replace", "path": "/plugin/publisher", "value": "acme"}])
	d := decide(claimed)
	d.action == "block"
	d.overridable == false
	contains(reason(d, "CORE_NAMESPACE_RESERVED").message, "acme")
	unnamed := json.patch(fx.at(fx.verified, "publish"), [{"op": "remove", "path": "/plugin/publisher"}])
	decide(unnamed).action == "block"
	decide(fx.at(fx.verified, "publish")).action == "allow"
	# After publish, who published is history: installing is not blocked by it.
	decide(json.patch(fx.verified, [{"op": "replace", "path": "/plugin/publisher", "value": "acme"}])).action == "allow"
}

test_non_core_namespace_is_not_reserved if {
	inp := json.patch(fx.at(promoted, "publish"), [{"op": "replace", "path": "/plugin/publisher", "value": "ops"}])
	not "CORE_NAMESPACE_RESERVED" in fx.codes(decide(inp))
}

# --- disputes ---------------------------------------------------------------------------------------

dispute(state, labels) := {
	"url": "https://github.com/cortex/registry-index/issues/9", "number": 9, "state": state,
	"labels": labels, "opened_at": "2026-11-24T10:00:00Z", "closed_at": null, "version": "1.2.0",
}

with_disputes(inp, ds) := object.union(inp, {"evidence": {"disputes": {"present": true, "disputes": ds, "source": "registry"}}})

test_open_security_dispute_warns if {
	d := decide(with_disputes(promoted, [dispute("open", ["dispute", "security"])]))
	d.tier == "community"
	d.action == "warn"
	contains(reason(d, "DISPUTE_OPEN").message, "issues/9")
	decide(with_disputes(fx.verified, [dispute("open", ["dispute", "Security"])])).action == "warn"
}

test_closed_dispute_is_history_only if {
	d := decide(with_disputes(promoted, [dispute("closed", ["dispute", "security"])]))
	d.action == "notice"
	not "DISPUTE_OPEN" in fx.codes(d)
}

test_open_dispute_without_a_warn_label_changes_nothing if {
	decide(with_disputes(promoted, [dispute("open", ["dispute"])])).action == "notice"
	decide(with_disputes(promoted, ["open", {"state": "open", "labels": "security"}])).action == "notice"
}

test_only_data_turns_the_dispute_warning_off if {
	cfg := json.patch(config, [{"op": "replace", "path": "/governance/disputes/warn_labels", "value": []}])
	fx.decide_with(with_disputes(promoted, [dispute("open", ["security"])]), cfg).action == "notice"
}

test_a_dispute_never_lowers_a_block if {
	d := decide(with_disputes(fx.untrusted, [dispute("open", ["security"])]))
	d.action == "block"
}

# --- configuration ------------------------------------------------------------------------------------

test_governance_keys_are_checked if {
	every path in ["/governance/core_namespaces", "/governance/community_reviewers", "/governance/core_reviewers", "/governance/promotion/operations", "/governance/promotion/exempt_plugins", "/governance/disputes/warn_labels"] {
		cfg := json.patch(config, [{"op": "replace", "path": path, "value": "cortex"}])
		d := fx.decide_with(fx.verified, cfg)
		d.action == "block"
		some p in data.cortex.config_problems with data.cortex_config as cfg
		contains(p, "must be a list")
	}
}
