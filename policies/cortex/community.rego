# The checks of the two lower tiers (spec):
#   tier: Experimental = manifest valid.
#   tier: Community = automated scan passed + manifest valid + tests passed.
#
# Each failed check is a `check` object (code, message, fix, evidence): the reason in the
# decision, and, phrased as a fix, an entry of next_tier.missing. Unscanned is never clean: a
# missing, unbound, partial or failed scan does not pass, and neither does a scan whose producer
# the policy does not accept for the operation (spec: Trivy scans run on every version publish;
# a publisher's own report is not that scan).
package cortex

import rego.v1

# A failed check. `fix` says what would make it pass (used for next_tier).
check(code, message, fix, evidence) := {"code": code, "message": message, "fix": fix, "evidence": evidence}

# --- experimental --------------------------------------------------------------------------------

experimental_failures contains check(
	"MANIFEST_INVALID",
	_manifest_invalid_message,
	"fix the manifest (`cortex manifest lint` lists every problem)",
	["manifest"],
) if {
	not manifest_valid
}

_manifest_invalid_message := sprintf(
	"the manifest is invalid (%d problem(s)); first: %s",
	[count(manifest_problems), short(manifest_problems[0])],
) if {
	count(manifest_problems) > 0
} else := "the manifest is invalid"

# --- community: scan -------------------------------------------------------------------------------

scan_present if scan.present == true

_scan_list(key) := scan[key] if is_array(scan[key]) else := []

scan_scanners := _scan_list("scanners")

scan_vulnerabilities := [v | some v in _scan_list("vulnerabilities"); is_object(v)]

scan_counts := scan.counts if is_object(scan.counts) else := {}

community_failures contains check(
	"SCAN_MISSING",
	sprintf("no usable scan of %s%s", [digest_text, _scan_error_suffix]),
	sprintf("attach a passing scan bound to %s", [digest_text]),
	["scan"],
) if {
	not scan_present
}

_scan_error_suffix := sprintf(" (%s)", [short(scan.error)]) if {
	str_field(scan, "error") != ""
} else := ""

# A scan that reports an error is partial at best.
community_failures contains check(
	"SCAN_ERROR",
	sprintf("the scan reported an error: %s", [short(scan.error)]),
	sprintf("rerun the scan of %s to completion", [digest_text]),
	["scan"],
) if {
	scan_present
	str_field(scan, "error") != ""
}

# A report that does not name the image digest could be about any image.
community_failures contains check(
	"SCAN_UNBOUND",
	sprintf("the scan report does not name %s, so it cannot be bound to this image", [digest_text]),
	sprintf("scan the image by digest (%s) so the report names it", [digest_text]),
	["scan"],
) if {
	scan_present
	not cfg.scan.require_bound == false
	not scan.bound == true
}

missing_scanners contains name if {
	some name in items(cfg.scan.required_scanners)
	not name in scan_scanners
}

community_failures contains check(
	"SCAN_INCOMPLETE",
	sprintf("required scanners not known to have run: %s", [_missing_scanners_text]),
	sprintf("run the %s scanner(s) on %s", [_missing_scanners_text, digest_text]),
	["scan"],
) if {
	scan_present
	count(missing_scanners) > 0
}

_missing_scanners_text := concat(", ", sort([n | some n in missing_scanners; is_string(n)]))

# Severity ranks from data (lowest first). A severity missing from the list, or a maximum
# missing from it, counts as above the maximum (fail closed).
_severities := _static._severities if _static._severities else := cfg.scan.severities if is_array(cfg.scan.severities) else := []

# The rank of the maximum (its first position in the list); undefined if it is not listed.
max_severity_rank := _static.max_severity_rank if _static.max_severity_rank else := min(ranks) if {
	ranks := {i | some i, s in _severities; s == cfg.scan.max_severity}
	count(ranks) > 0
}

# sev must be defined (callers pass "" for a missing severity): see facts.rego on `not`.
above_max_severity(sev) if not sev in _severities_within_max

# The severities at or below the maximum: empty when the maximum is not listed (then every
# severity is above it). A set, computed once per decision, not once per vulnerability.
# (An array once precomputed: a set again.)
_severities_within_max := {s | some s in _static._severities_within_max} if {
	_static._severities_within_max
} else := {s | some i, s in _severities; i <= max_severity_rank}

_max_severity_text := _static._max_severity_text if _static._max_severity_text else := str_field(cfg.scan, "max_severity")

# An allowlist entry applies while context.now is before `expires` and the plugin is in its
# optional `plugins` scope. No valid clock or expiry: the entry does not apply.
allowlisted(id) if {
	entry := cfg.scan.cve_allowlist[id]
	_allowlist_in_scope(entry)
	_allowlist_live(entry)
}

_allowlist_live(entry) if time_or_date_ns(entry.expires) > now_ns

_allowlist_in_scope(entry) if {
	is_object(entry)
	not "plugins" in object.keys(entry)
}

_allowlist_in_scope(entry) if {
	is_object(entry)
	plugin_matches(entry.plugins)
}

# Listed vulnerabilities above the maximum severity that no live allowlist entry covers.
blocking_vulnerabilities contains id if {
	some v in scan_vulnerabilities
	above_max_severity(str_field(v, "severity"))
	id := str_field(v, "id")
	not allowlisted(id)
}

# Severities above the maximum whose count exceeds the vulnerabilities listed for them: the
# report holds vulnerabilities we cannot name, so no allowlist can cover them.
unlisted_severities contains sev if {
	some sev, n in scan_counts
	is_number(n)
	above_max_severity(sev)
	n > count([v | some v in scan_vulnerabilities; v.severity == sev])
}

community_failures contains check(
	"SCAN_VULNERABILITIES",
	sprintf(
		"the scan found vulnerabilities above %s that are not allowlisted (%d): %s",
		[_max_severity_text, count(blocking_vulnerabilities), _first_ids(blocking_vulnerabilities)],
	),
	sprintf("fix or allowlist the vulnerabilities above %s (%s)", [_max_severity_text, _first_ids(blocking_vulnerabilities)]),
	["scan"],
) if {
	scan_present
	count(blocking_vulnerabilities) > 0
}

community_failures contains check(
	"SCAN_VULNERABILITIES",
	sprintf("the scan counts %s vulnerabilities above %s that it does not list", [_first_ids(unlisted_severities), _max_severity_text]),
	sprintf("fix the %s vulnerabilities and rescan", [_first_ids(unlisted_severities)]),
	["scan"],
) if {
	scan_present
	count(unlisted_severities) > 0
}

# The first five ids, sorted, for messages.
_first_ids(ids) := concat(", ", array.slice(sort([id | some id in ids; is_string(id)]), 0, 5))

community_failures contains check(
	"SCAN_SECRETS",
	sprintf("the scan found %v secret(s) in the image", [_scan_secrets]),
	"remove the secrets from the image and rescan",
	["scan"],
) if {
	scan_present
	_scan_secrets > 0
	not cfg.scan.allow_secrets == true
}

# An allowlist entry that would have covered a vulnerability of this scan but has expired:
# worth saying, since the fix is usually to renew or remove it (a note, not a check).
expired_allowlist_entries contains id if {
	scan_present
	some v in scan_vulnerabilities
	id := str_field(v, "id")
	entry := cfg.scan.cve_allowlist[id] # first: with no allowlist entry nothing else is worked out
	above_max_severity(str_field(v, "severity"))
	_allowlist_in_scope(entry)
	not _allowlist_live(entry)
}

# --- community: who produced the scan ---------------------------------------------------------------
# scan.origin: `registry` (the registry ran Trivy itself), `attested` (a signed vulnerability
# attestation that verified; its signer in scan.attester), `pipeline` (the report or scan of
# whoever runs `cortex plugin verify`: that user is the one deciding), `self-reported` (a report
# the publisher uploaded: forgeable JSON). cortex_config.scan.accepted_origins lists the origins
# that count, per operation; an operation it does not list accepts none, and a scan without an
# origin is accepted nowhere. An attested scan counts only from a signer that
# cortex_config.trusted_scan_attesters trusts for the plugin.

scan_origin := str_field(scan, "origin")

_origin_text := scan_origin if scan_origin != "" else := "unknown"

_accepted_origins := cfg.scan.accepted_origins[operation] if is_array(cfg.scan.accepted_origins[operation]) else := []

_origin_listed if scan_origin in _accepted_origins

_attester := scan.attester if is_object(scan.attester) else := {}

_attester_issuer := str_field(_attester, "issuer")

_attester_identity := str_field(_attester, "identity")

# Some trusted_scan_attesters entry covers this plugin and names this issuer and identity, and
# the attestation chained to a Sigstore root that entry accepts (as for trusted_signers: its own
# trusted_roots, else signer_trusted_roots).
scan_attester_trusted if {
	_attester_issuer != ""
	_attester_identity != ""
	some entry in items(cfg.trusted_scan_attesters)
	is_object(entry)
	plugin_matches(entry.plugins)
	matches(entry.issuer, _attester_issuer)
	matches(entry.identity, _attester_identity)
	str_field(_attester, "trusted_root") in signer_roots(entry)
}

community_failures contains check(
	"SCAN_SELF_REPORTED",
	sprintf("the scan of %s was reported by its publisher; policy does not accept a self-reported scan at %s (scan.accepted_origins)", [digest_text, short(_operation_text)]),
	sprintf("let the registry scan %s itself, or attach a signed scan attestation from a trusted attester", [digest_text]),
	["scan"],
) if {
	scan_present
	scan_origin == "self-reported"
	not _origin_listed
}

community_failures contains check(
	"SCAN_ATTESTER_UNTRUSTED",
	sprintf("the scan attestation of %s was signed by '%s' (issuer '%s'), which policy does not trust to attest scans of this plugin (trusted_scan_attesters)", [digest_text, short(_attester_identity), short(_attester_issuer)]),
	sprintf("have %s scanned by the registry or attested by a trusted scan attester", [digest_text]),
	["scan"],
) if {
	scan_present
	scan_origin == "attested"
	_origin_listed
	not scan_attester_trusted
}

community_failures contains check(
	"SCAN_ORIGIN_NOT_ACCEPTED",
	sprintf("policy does not accept a scan of origin %s at %s (scan.accepted_origins)", [short(_origin_text), short(_operation_text)]),
	sprintf("scan %s where policy accepts it (scan.accepted_origins for %s)", [digest_text, short(_operation_text)]),
	["scan"],
) if {
	scan_present
	not _origin_listed
	not scan_origin == "self-reported"
}

_operation_text := operation if operation != "" else := "an unknown operation"

# --- community: tests --------------------------------------------------------------------------------

tests_present if tests.present == true

tests_executed := num_field(tests, "total") - num_field(tests, "skipped")

# Numeric facts used by a check and its message: rules, so each is worked out once.
_scan_secrets := num_field(scan, "secrets")

_tests_failures := num_field(tests, "failures")

_tests_errors := num_field(tests, "errors")

_enough_tests if tests_executed >= cfg.tests.min_executed

community_failures contains check(
	"TESTS_MISSING",
	sprintf("no test results for %s", [digest_text]),
	"attach passing test results (JUnit XML)",
	["tests"],
) if {
	not tests_present
}

community_failures contains check(
	"TESTS_EMPTY",
	sprintf("%v test(s) ran (total minus skipped); at least %s must", [tests_executed, conf_number_text(["tests", "min_executed"])]),
	sprintf("run at least %s test(s)", [conf_number_text(["tests", "min_executed"])]),
	["tests"],
) if {
	tests_present
	not _enough_tests
}

community_failures contains check(
	"TESTS_FAILED",
	sprintf("%v test failure(s) and %v error(s)", [_tests_failures, _tests_errors]),
	"make every test pass",
	["tests"],
) if {
	tests_present
	_tests_failures + _tests_errors > 0
}
