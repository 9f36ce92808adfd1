# data.cortex.decision: the one document Python asks for (docs/policy-contract.md).
#
#   {tier, action, reasons: [{code, message, evidence}] (>= 1), sandbox, next_tier, overridable,
#    allowlisted_vulnerabilities: [id] (sorted; allowlist.rego)}
#
# Defined for every input that matches cortex_trust/schemas/input.schema.json. Python parses it
# strictly (cortex_trust/policy/_decision.py); anything else fails closed. Reasons: the tier's reason
# first, then every failed check, blocker and note, sorted (code, message, evidence).
package cortex

import rego.v1

decision := {
	"tier": tier,
	"action": action,
	"reasons": array.concat([tier_reason], sorted_reasons(_other_reasons)),
	"sandbox": sandbox,
	"next_tier": next_tier,
	"overridable": overridable,
	"allowlisted_vulnerabilities": sort(allowlisted_vulnerabilities),
}

# Each failed check and blocker as a reason (as_reason written out and the sets joined first:
# one rule body instead of two, no function call per reason).
_other_reasons contains {"code": r.code, "message": r.message, "evidence": r.evidence} if {
	some r in experimental_failures | community_failures | verified_failures | blockers
}

_other_reasons contains n if some n in notes

# --- notes: reasons that explain without deciding ------------------------------------------------

# Evidence that was supplied but not used (e.g. about another digest): say so, since the fix
# is usually to supply the right piece.
notes contains {
	"code": "EVIDENCE_DROPPED",
	"message": sprintf("%s evidence was not used (%s): %s", [kind, str_field(d, "code"), short(str_field(d, "message"))]),
	"evidence": [kind],
} if {
	some d in items(input.evidence.dropped)
	kind := str_field(d, "kind")
}

notes contains {
	"code": "CVE_ALLOWLIST_EXPIRED",
	"message": sprintf("the allowlist entry for %s expired (%s)", [id, _expiry_text(id)]),
	"evidence": ["scan", "config"],
} if {
	some id in expired_allowlist_entries
}

_expiry_text(id) := cfg.scan.cve_allowlist[id].expires if {
	is_string(cfg.scan.cve_allowlist[id].expires)
} else := "no valid expiry"
