# The vulnerabilities the CVE allowlist excused, named in the decision
# (`allowlisted_vulnerabilities`, docs/policy-contract.md §2), so that a reader of a stored
# decision (the registry's pages, `--format json`) sees which ones passed by an allowlist entry
# without working it out again. It decides nothing: the tier's checks are in community.rego.
package cortex

import rego.v1

# Listed vulnerabilities above the maximum severity that a live allowlist entry in scope covers
# (what `blocking_vulnerabilities` leaves out because of the allowlist). Empty without a scan.
allowlisted_vulnerabilities contains id if {
	scan_present
	some v in scan_vulnerabilities
	id := str_field(v, "id")
	allowlisted(id) # first: with no allowlist entry nothing else is worked out
	above_max_severity(str_field(v, "severity"))
}
