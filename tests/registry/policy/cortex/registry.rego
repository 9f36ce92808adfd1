# A small registry policy for the registry tests (not the shipped defaults): tiers from the
# signature, reviews, production use and revocation, so tests can watch a tier move.
package cortex

import rego.v1

signed if {
	input.evidence.signature.present
	input.evidence.signature.verified
}

deny contains {"code": "MANIFEST_INVALID", "message": "the manifest is invalid"} if {
	not input.manifest.valid
}

deny contains {"code": "SIGNATURE_INVALID", "message": "the signature did not verify"} if {
	not signed
}

deny contains {"code": "REVOKED", "message": "this version was revoked"} if {
	input.evidence.revocation.revoked
}

deny contains {"code": "REVIEW_REJECTED", "message": "a reviewer rejected this version"} if {
	some r in input.evidence.review.reviews
	r.verdict == "rejected"
}

reviewed if {
	some r in input.evidence.review.reviews
	r.verdict == "approved"
}

in_production if {
	input.evidence.usage.days_in_production >= data.cortex.thresholds.verified_days
	input.evidence.usage.installations >= 1
}

default tier := "untrusted"

tier := "verified" if {
	count(deny) == 0
	reviewed
	in_production
}

tier := "community" if {
	count(deny) == 0
	reviewed
	not in_production
}

tier := "experimental" if {
	count(deny) == 0
	not reviewed
}

action := "block" if count(deny) > 0

action := data.cortex.actions[tier] if count(deny) == 0

tier_reason := {"code": sprintf("TIER_%s", [upper(tier)]), "message": sprintf("tier %s", [tier])}

decision := {
	"tier": tier,
	"action": action,
	"reasons": array.concat([e | some e in deny], [tier_reason]),
	"sandbox": data.cortex.sandbox,
	"next_tier": null,
	"overridable": count(deny) == 0,
}
