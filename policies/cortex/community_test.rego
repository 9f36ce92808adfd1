# Community checks: the scan (present, bound, complete, no vulnerability above the maximum
# unless allowlisted and not expired, no secrets) and the tests. Each row starts from the
# Community fixture, breaks one fact, and asserts tier, action and the exact reason codes.
package cortex.community_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

verified_missing := {"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}

# One failed Community check: the plugin is Experimental (install -> warn) with that reason.
experimental_because(inp, code) if {
	d := decide(inp)
	d.tier == "experimental"
	d.action == "warn"
	fx.codes(d) == ({"TIER_EXPERIMENTAL", code} | verified_missing)
	d.next_tier.tier == "community"
	fx.missing_codes(d) == {code}
}

high_vulnerability := {"id": "CVE-2026-2001", "severity": "HIGH", "package": "curl", "installed_version": "8.0", "fixed_version": "8.1"}

with_high_vulnerability := fx.with_evidence(fx.community, "scan", {
	"counts": {"LOW": 1, "MEDIUM": 1, "HIGH": 1},
	"vulnerabilities": array.concat(fx.community.evidence.scan.vulnerabilities, [high_vulnerability]),
})

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

# --- scan ----------------------------------------------------------------------------------------

test_scan_missing if experimental_because(fx.without(fx.community, "scan"), "SCAN_MISSING")

test_scan_missing_says_why if {
	inp := fx.with_evidence(fx.community, "scan", {"present": false, "error": "no vulnerability database"})
	experimental_because(inp, "SCAN_MISSING")
	contains(reason(decide(inp), "SCAN_MISSING").message, "no vulnerability database")
}

test_scan_with_error if {
	experimental_because(fx.with_evidence(fx.community, "scan", {"error": "timeout scanning layer 3"}), "SCAN_ERROR")
}

test_scan_unbound if experimental_because(fx.with_evidence(fx.community, "scan", {"bound": false}), "SCAN_UNBOUND")

test_scan_unbound_accepted_when_data_allows if {
	inp := fx.with_evidence(fx.community, "scan", {"bound": false})
	fx.decide_with(inp, fx.config_with("/scan/require_bound", false)).tier == "community"
}

test_scan_incomplete if {
	inp := fx.with_evidence(fx.community, "scan", {"scanners": ["secret"]})
	experimental_because(inp, "SCAN_INCOMPLETE")
	contains(reason(decide(inp), "SCAN_INCOMPLETE").message, "vuln")
}

test_scan_without_scanner_list_incomplete if {
	inp := json.patch(fx.community, [{"op": "remove", "path": "/evidence/scan/scanners"}])
	experimental_because(inp, "SCAN_INCOMPLETE")
}

test_required_scanners_are_data if {
	inp := fx.with_evidence(fx.community, "scan", {"scanners": ["secret"]})
	fx.decide_with(inp, fx.config_with("/scan/required_scanners", ["secret"])).tier == "community"
}

test_vulnerability_above_max if {
	experimental_because(with_high_vulnerability, "SCAN_VULNERABILITIES")
	contains(reason(decide(with_high_vulnerability), "SCAN_VULNERABILITIES").message, "CVE-2026-2001")
}

test_critical_vulnerability if {
	inp := fx.with_evidence(fx.community, "scan", {
		"counts": {"CRITICAL": 1},
		"vulnerabilities": [{"id": "CVE-2026-3001", "severity": "CRITICAL"}],
	})
	experimental_because(inp, "SCAN_VULNERABILITIES")
}

test_max_severity_is_data if {
	fx.decide_with(with_high_vulnerability, fx.config_with("/scan/max_severity", "HIGH")).tier == "community"
	d := fx.decide_with(fx.community, fx.config_with("/scan/max_severity", "LOW"))
	"SCAN_VULNERABILITIES" in fx.codes(d)
}

# A severity the data does not rank counts as above the maximum.
test_unranked_severity_fails_closed if {
	inp := fx.with_evidence(fx.community, "scan", {"vulnerabilities": [{"id": "CVE-2026-4001", "severity": "WHATEVER"}]})
	experimental_because(inp, "SCAN_VULNERABILITIES")
}

test_vulnerability_without_severity_fails_closed if {
	inp := fx.with_evidence(fx.community, "scan", {"vulnerabilities": [{"id": "CVE-2026-4002"}]})
	experimental_because(inp, "SCAN_VULNERABILITIES")
}

# Counts above the maximum that the report does not list cannot be allowlisted.
test_unlisted_counts_fail if {
	inp := fx.with_evidence(fx.community, "scan", {"counts": {"LOW": 1, "MEDIUM": 1, "HIGH": 2}})
	experimental_because(inp, "SCAN_VULNERABILITIES")
	contains(reason(decide(inp), "SCAN_VULNERABILITIES").message, "HIGH")
}

test_counts_within_max_pass if {
	inp := fx.with_evidence(fx.community, "scan", {"counts": {"LOW": 40, "MEDIUM": 3, "UNKNOWN": 2}})
	decide(inp).tier == "community"
}

# --- who produced the scan (scan.origin, scan.accepted_origins) ----------------------------------------

# The fixture's scan was run by the registry: Community at every operation.
test_registry_scan_accepted_everywhere if {
	every op in ["verify", "publish", "install", "run"] {
		decide(fx.at(fx.community, op)).tier == "community"
	}
}

# The finding this guards: a publisher's own clean report on a registry (publish, install, run).
test_self_reported_scan_not_accepted_on_a_registry if {
	every op in ["publish", "install", "run"] {
		inp := fx.at(fx.with_evidence(fx.community, "scan", {"origin": "self-reported", "produced_by": "report"}), op)
		experimental_because(inp, "SCAN_SELF_REPORTED")
		contains(reason(decide(inp), "SCAN_SELF_REPORTED").message, op)
	}
}

# Not accepted for Community means no network either (network_tiers: verified, community).
test_self_reported_scan_grants_no_network if {
	inp := fx.with_trust(fx.with_evidence(fx.community, "scan", {"origin": "self-reported"}), {"network": true})
	d := decide(inp)
	d.tier == "experimental"
	d.sandbox.network == false
	decide(fx.with_trust(fx.community, {"network": true})).sandbox.network == true
}

# `cortex plugin verify --scan`: the verifying user's own report counts where they decide.
test_pipeline_scan_accepted_at_verify_only if {
	inp := fx.with_evidence(fx.community, "scan", {"origin": "pipeline", "produced_by": "report"})
	decide(fx.at(inp, "verify")).tier == "community"
	experimental_because(fx.at(inp, "install"), "SCAN_ORIGIN_NOT_ACCEPTED")
	experimental_because(fx.at(inp, "publish"), "SCAN_ORIGIN_NOT_ACCEPTED")
}

# A scan that does not say who produced it is accepted nowhere.
test_scan_without_origin_not_accepted if {
	inp := json.patch(fx.community, [{"op": "remove", "path": "/evidence/scan/origin"}])
	experimental_because(inp, "SCAN_ORIGIN_NOT_ACCEPTED")
	experimental_because(fx.at(inp, "verify"), "SCAN_ORIGIN_NOT_ACCEPTED")
	contains(reason(decide(inp), "SCAN_ORIGIN_NOT_ACCEPTED").message, "origin unknown at install")
	experimental_because(fx.with_evidence(fx.community, "scan", {"origin": 7}), "SCAN_ORIGIN_NOT_ACCEPTED")
}

# An operation the data does not list accepts no scan (fail closed).
test_unlisted_operation_accepts_nothing if {
	inp := fx.at(fx.community, "mirror")
	"SCAN_ORIGIN_NOT_ACCEPTED" in fx.codes(decide(inp))
	cfg := json.patch(fx.default_config, [{"op": "remove", "path": "/scan/accepted_origins/install"}])
	"SCAN_ORIGIN_NOT_ACCEPTED" in fx.codes(fx.decide_with(fx.community, cfg))
	no_op := json.patch(fx.community, [{"op": "remove", "path": "/context/operation"}])
	contains(reason(decide(no_op), "SCAN_ORIGIN_NOT_ACCEPTED").message, "an unknown operation")
}

# An organization may accept self-reported scans on its own registry (data, not code).
test_accepted_origins_are_data if {
	inp := fx.with_evidence(fx.community, "scan", {"origin": "self-reported"})
	cfg := fx.config_with("/scan/accepted_origins/install", ["registry", "self-reported"])
	fx.decide_with(inp, cfg).tier == "community"
	only_attested := fx.config_with("/scan/accepted_origins/install", ["attested"])
	"SCAN_ORIGIN_NOT_ACCEPTED" in fx.codes(fx.decide_with(fx.community, only_attested))
}

scan_attester := "https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main"

attested_scan := fx.with_evidence(fx.community, "scan", {"origin": "attested", "produced_by": "report", "attester": {
	"identity": scan_attester, "issuer": fx.github_issuer, "trusted_root": "sigstore-production",
	"signed_at": "2026-11-25T21:00:00Z", "predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1",
}})

trusting_attester(entry) := fx.config_with("/trusted_scan_attesters", {"acme-scanner": entry})

acme_scanner := {"plugins": ["cortex/*"], "issuer": fx.github_issuer, "identity": "https://github.com/acme/scanner/.github/workflows/*@refs/heads/main"}

# trusted_scan_attesters is empty by default: a signed attestation alone is not enough.
test_attested_scan_needs_a_trusted_attester if {
	experimental_because(attested_scan, "SCAN_ATTESTER_UNTRUSTED")
	contains(reason(decide(attested_scan), "SCAN_ATTESTER_UNTRUSTED").message, scan_attester)
}

test_attested_scan_from_a_trusted_attester if {
	d := fx.decide_with(attested_scan, trusting_attester(acme_scanner))
	d.tier == "community"
	fx.decide_with(fx.at(attested_scan, "publish"), trusting_attester(acme_scanner)).tier == "community"
}

# Issuer, identity, plugin scope and trust root must all match (as for trusted_signers).
test_attester_must_match_entirely if {
	every entry in [
		object.union(acme_scanner, {"issuer": "https://accounts.google.com"}),
		object.union(acme_scanner, {"identity": "https://github.com/evil/*"}),
		object.union(acme_scanner, {"plugins": ["acme/*"]}),
		object.union(acme_scanner, {"trusted_roots": ["private"]}),
	] {
		"SCAN_ATTESTER_UNTRUSTED" in fx.codes(fx.decide_with(attested_scan, trusting_attester(entry)))
	}
	private := fx.with_evidence(attested_scan, "scan", {"attester": {"trusted_root": "private"}})
	"SCAN_ATTESTER_UNTRUSTED" in fx.codes(fx.decide_with(private, trusting_attester(acme_scanner)))
	own_root := trusting_attester(object.union(acme_scanner, {"trusted_roots": ["private"]}))
	fx.decide_with(private, own_root).tier == "community"
}

# An attestation without a signer (no attester facts) or with an empty identity matches no glob.
test_attester_without_identity_untrusted if {
	no_attester := json.patch(attested_scan, [{"op": "remove", "path": "/evidence/scan/attester"}])
	everyone := trusting_attester({"plugins": ["*/*"], "issuer": "*", "identity": "*"})
	"SCAN_ATTESTER_UNTRUSTED" in fx.codes(fx.decide_with(no_attester, everyone))
	empty := fx.with_evidence(attested_scan, "scan", {"attester": {"identity": ""}})
	"SCAN_ATTESTER_UNTRUSTED" in fx.codes(fx.decide_with(empty, everyone))
	null_entry := fx.config_with("/trusted_scan_attesters", {"gone": null})
	"SCAN_ATTESTER_UNTRUSTED" in fx.codes(fx.decide_with(attested_scan, null_entry))
}

# Where attestations are not accepted at all, the origin is what is reported.
test_attested_scan_where_not_accepted if {
	cfg := fx.config_with("/scan/accepted_origins/install", ["registry"])
	d := fx.decide_with(attested_scan, object.union(cfg, {"trusted_scan_attesters": {"a": acme_scanner}}))
	"SCAN_ORIGIN_NOT_ACCEPTED" in fx.codes(d)
	not "SCAN_ATTESTER_UNTRUSTED" in fx.codes(d)
}

# --- allowlist -------------------------------------------------------------------------------------

test_allowlisted_vulnerability_passes if {
	allow := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z", "reason": "not reachable"}}
	d := fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow))
	d.tier == "community"
	fx.codes(d) == ({"TIER_COMMUNITY"} | verified_missing)
}

test_allowlist_date_form if {
	allow := {"CVE-2026-2001": {"expires": "2026-11-26", "reason": "fix due"}}
	fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow)).tier == "community"
}

# Expiry is compared with context.now, never the wall clock.
test_allowlist_expired if {
	allow := {"CVE-2026-2001": {"expires": "2026-11-25T21:59:59Z", "reason": "was not reachable"}}
	d := fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow))
	d.tier == "experimental"
	fx.codes(d) == ({"TIER_EXPERIMENTAL", "SCAN_VULNERABILITIES", "CVE_ALLOWLIST_EXPIRED"} | verified_missing)
	contains(reason(d, "CVE_ALLOWLIST_EXPIRED").message, "2026-11-25T21:59:59Z")
}

test_allowlist_expires_exactly_now if {
	allow := {"CVE-2026-2001": {"expires": fx.now}}
	fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow)).tier == "experimental"
}

test_allowlist_same_entry_valid_before_expiry if {
	allow := {"CVE-2026-2001": {"expires": "2026-12-01T00:00:00Z"}}
	inp := fx.with_(with_high_vulnerability, {"context": {"now": "2026-11-30T23:59:59Z"}})
	fx.decide_with(inp, fx.config_with("/scan/cve_allowlist", allow)).tier == "community"
	later := fx.with_(with_high_vulnerability, {"context": {"now": "2026-12-01T00:00:01Z"}})
	fx.decide_with(later, fx.config_with("/scan/cve_allowlist", allow)).tier == "experimental"
}

test_allowlist_malformed_expiry_does_not_apply if {
	allow := {"CVE-2026-2001": {"expires": "next year"}}
	d := fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow))
	d.tier == "experimental"
	contains(reason(d, "CVE_ALLOWLIST_EXPIRED").message, "next year")
}

test_allowlist_without_expiry_does_not_apply if {
	allow := {"CVE-2026-2001": {"reason": "forever"}}
	d := fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow))
	d.tier == "experimental"
	contains(reason(d, "CVE_ALLOWLIST_EXPIRED").message, "no valid expiry")
}

test_allowlist_scoped_to_plugins if {
	mine := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z", "plugins": ["cortex/*"]}}
	fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", mine)).tier == "community"
	theirs := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z", "plugins": ["acme/*"]}}
	fx.decide_with(with_high_vulnerability, fx.config_with("/scan/cve_allowlist", theirs)).tier == "experimental"
}

# Without a valid clock no allowlist entry applies.
test_allowlist_needs_a_clock if {
	allow := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z"}}
	inp := fx.with_(with_high_vulnerability, {"context": {"now": "yesterday"}})
	fx.decide_with(inp, fx.config_with("/scan/cve_allowlist", allow)).tier == "experimental"
}

# --- secrets -------------------------------------------------------------------------------------

test_secrets_found if {
	inp := fx.with_evidence(fx.community, "scan", {"secrets": 2})
	experimental_because(inp, "SCAN_SECRETS")
	reason(decide(inp), "SCAN_SECRETS").message == "the scan found 2 secret(s) in the image"
}

test_secrets_allowed_by_data if {
	inp := fx.with_evidence(fx.community, "scan", {"secrets": 2})
	fx.decide_with(inp, fx.config_with("/scan/allow_secrets", true)).tier == "community"
}

# --- tests ---------------------------------------------------------------------------------------

test_tests_missing if experimental_because(fx.without(fx.community, "tests"), "TESTS_MISSING")

test_tests_failed if experimental_because(fx.with_evidence(fx.community, "tests", {"failures": 1}), "TESTS_FAILED")

test_tests_errored if experimental_because(fx.with_evidence(fx.community, "tests", {"errors": 3}), "TESTS_FAILED")

test_tests_none if experimental_because(fx.with_evidence(fx.community, "tests", {"total": 0, "skipped": 0}), "TESTS_EMPTY")

# Skipped tests did not run: all skipped is no evidence at all.
test_tests_all_skipped if {
	experimental_because(fx.with_evidence(fx.community, "tests", {"total": 5, "skipped": 5}), "TESTS_EMPTY")
}

test_min_executed_is_data if {
	inp := fx.with_evidence(fx.community, "tests", {"total": 3, "skipped": 0})
	decide(inp).tier == "community"
	fx.decide_with(inp, fx.config_with("/tests/min_executed", 10)).tier == "experimental"
}

# --- several at once -------------------------------------------------------------------------------

test_every_scan_and_test_check_fails if {
	inp := fx.with_(with_high_vulnerability, {"evidence": {
		"scan": {"bound": false, "scanners": [], "secrets": 1, "error": "partial"},
		"tests": {"failures": 2, "total": 2, "skipped": 0},
	}})
	d := decide(inp)
	d.tier == "experimental"
	fx.codes(d) == {
		"TIER_EXPERIMENTAL", "SCAN_ERROR", "SCAN_UNBOUND", "SCAN_INCOMPLETE", "SCAN_VULNERABILITIES",
		"SCAN_SECRETS", "TESTS_FAILED",
		"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING",
	}
	fx.missing_codes(d) == {"SCAN_ERROR", "SCAN_UNBOUND", "SCAN_INCOMPLETE", "SCAN_VULNERABILITIES", "SCAN_SECRETS", "TESTS_FAILED"}
}
