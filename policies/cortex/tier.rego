# The trust tier, the reason for it, and what is missing for the next one (spec):
#   Verified     = core-team review approved + trusted Sigstore signature + 30 days in production
#                  (continued use reported by independent organizations)
#   Community    = automated scan passed + manifest valid + tests passed
#                  + (governance.rego) an approved promotion, or a core-team review for a core plugin
#   Experimental = manifest valid
#   Untrusted    = otherwise
#
# Each tier requires every tier below it (a Verified plugin is also Community-eligible), so the
# tier is monotonic in the evidence: adding a failing piece, or removing a piece, never raises it.
# Revocation does not change the tier (it describes the evidence); it blocks the action.
package cortex

import rego.v1

# Tiers, lowest first.
tiers := ["untrusted", "experimental", "community", "verified"]

tier := "verified" if {
	count(experimental_failures) == 0
	count(community_failures) == 0
	count(verified_failures) == 0
} else := "community" if {
	count(experimental_failures) == 0
	count(community_failures) == 0
} else := "experimental" if {
	count(experimental_failures) == 0
} else := "untrusted"

# --- why this tier -------------------------------------------------------------------------------

tier_reason := {
	"code": "TIER_VERIFIED",
	"message": sprintf(
		"verified: approved by core-team reviewer(s) %s, signed by trusted identity %s, %v day(s) in production at %v independent organization(s); scan and tests passed",
		[short(concat(", ", sort(core_approvers))), short(str_field(signature, "identity")), usage_days, count(usage_continued_orgs)],
	),
	"evidence": ["manifest", "review", "scan", "signature", "tests", "usage"],
} if {
	tier == "verified"
} else := {
	"code": "TIER_COMMUNITY",
	"message": sprintf(
		"community: the manifest is valid, the scan of %s passed and %v test(s) passed",
		[digest_text, tests_executed],
	),
	"evidence": ["manifest", "scan", "tests"],
} if {
	tier == "community"
} else := {
	"code": "TIER_EXPERIMENTAL",
	"message": "experimental: the manifest is valid; community also needs a passing scan, passing tests and, where policy asks for it, an approved promotion",
	"evidence": ["manifest"],
} if {
	tier == "experimental"
} else := {
	"code": "TIER_UNTRUSTED",
	"message": "untrusted: the manifest is not valid",
	"evidence": ["manifest"],
}

# --- the next tier up --------------------------------------------------------------------------

# null at the top; otherwise the next tier and, for each check it still fails, what to do.
next_tier := _next_tier("experimental", experimental_failures) if {
	tier == "untrusted"
} else := _next_tier("community", community_failures) if {
	tier == "experimental"
} else := _next_tier("verified", verified_failures) if {
	tier == "community"
} else := null

_next_tier(name, failures) := {
	"tier": name,
	"missing": sorted_reasons({{
		"code": f.code,
		"message": sprintf("to reach %s: %s", [name, f.fix]),
		"evidence": f.evidence,
	} |
		some f in failures
	}),
}

# --- deterministic order ---------------------------------------------------------------------------

# Sets have no order; reasons come out sorted by code, then message, then evidence, so equal
# inputs give byte-identical decisions in every engine. The sort keys are strings and arrays of
# strings, which OPA and regorus order the same way (bytewise, element by element); two
# reasons equal in all three are the same reason, so objects are never compared.
sorted_reasons(rs) := [row[3] | some row in sort([[r.code, r.message, r.evidence, r] | some r in rs])]

# A reason as it appears in the decision (checks also carry a `fix`, blockers `overridable`).
as_reason(c) := {"code": c.code, "message": c.message, "evidence": c.evidence}
