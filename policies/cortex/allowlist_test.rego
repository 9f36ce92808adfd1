# allowlisted_vulnerabilities: the ids the allowlist excused, and only those; the rest of the
# decision is the one without the field.
package cortex.allowlist_test

import data.cortex.community_test as ct
import data.cortex.fixtures_test as fx
import rego.v1

allow_high := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z", "reason": "not reachable"}}

# A HIGH vulnerability excused by a live entry is named; the scan's LOW and MEDIUM ones, within
# the maximum, are not (nothing excused them).
test_names_the_excused_vulnerability if {
	d := fx.decide_with(ct.with_high_vulnerability, fx.config_with("/scan/cve_allowlist", allow_high))
	d.tier == "community"
	d.allowlisted_vulnerabilities == ["CVE-2026-2001"]
}

test_empty_without_allowlist_entries if {
	fx.decide(fx.community).allowlisted_vulnerabilities == []
	d := fx.decide(ct.with_high_vulnerability)
	d.tier == "experimental"
	d.allowlisted_vulnerabilities == []
}

# An entry for a vulnerability within the maximum excuses nothing.
test_entry_within_the_maximum_is_not_named if {
	allow := {"CVE-2026-1002": {"expires": "2027-01-31T00:00:00Z"}}
	fx.decide_with(fx.community, fx.config_with("/scan/cve_allowlist", allow)).allowlisted_vulnerabilities == []
}

test_expired_or_out_of_scope_entries_are_not_named if {
	expired := {"CVE-2026-2001": {"expires": "2026-11-25T21:59:59Z"}}
	d := fx.decide_with(ct.with_high_vulnerability, fx.config_with("/scan/cve_allowlist", expired))
	d.allowlisted_vulnerabilities == []
	"CVE_ALLOWLIST_EXPIRED" in fx.codes(d)
	theirs := {"CVE-2026-2001": {"expires": "2027-01-31T00:00:00Z", "plugins": ["acme/*"]}}
	fx.decide_with(ct.with_high_vulnerability, fx.config_with("/scan/cve_allowlist", theirs)).allowlisted_vulnerabilities == []
}

# Two excused, one not: the two are named (sorted), the third still blocks Community.
test_only_the_excused_of_several if {
	more := fx.with_evidence(ct.with_high_vulnerability, "scan", {
		"counts": {"LOW": 1, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 1},
		"vulnerabilities": array.concat(ct.with_high_vulnerability.evidence.scan.vulnerabilities, [
			{"id": "CVE-2026-1000", "severity": "CRITICAL", "package": "zlib"},
			{"id": "GHSA-2qrg-x229-3v8q", "severity": "HIGH", "package": "log"},
		]),
	})
	allow := object.union(allow_high, {"CVE-2026-1000": {"expires": "2027-01-31T00:00:00Z"}})
	d := fx.decide_with(more, fx.config_with("/scan/cve_allowlist", allow))
	d.allowlisted_vulnerabilities == ["CVE-2026-1000", "CVE-2026-2001"]
	d.tier == "experimental"
	contains(ct.reason(d, "SCAN_VULNERABILITIES").message, "GHSA-2qrg-x229-3v8q")
}

# A scan that is not there excuses nothing, whatever the allowlist says.
test_empty_without_a_scan if {
	d := fx.decide_with(fx.without(fx.community, "scan"), fx.config_with("/scan/cve_allowlist", allow_high))
	d.allowlisted_vulnerabilities == []
}
