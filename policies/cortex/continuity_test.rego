# Signer continuity: a changed signer or a dropped signature warns at publish and install, and a
# changed signer is Verified only with a core-team approval of this digest.
package cortex.continuity_test

import data.cortex.fixtures_test as fx
import rego.v1

old_signer := {"identity": "https://github.com/cortex-platform/weather/.github/workflows/release.yml@refs/tags/v1.1.0", "issuer": fx.github_issuer, "trusted_root": "sigstore-production"}

changed := fx.with_evidence(fx.verified, "signer_continuity", {
	"present": true, "first_seen_signer": true, "signer_changed": true, "signature_dropped": false,
	"previous_version": "1.1.0", "previous_signer": old_signer, "source": "registry",
})

unreviewed := fx.without(changed, "review")

dropped := fx.with_evidence(fx.community, "signer_continuity", {
	"present": true, "first_seen_signer": false, "signer_changed": false, "signature_dropped": true,
	"previous_version": "1.1.0", "previous_signer": old_signer, "source": "installer",
})

same := fx.with_evidence(fx.verified, "signer_continuity", {
	"present": true, "first_seen_signer": false, "signer_changed": false, "signature_dropped": false,
	"previous_version": "1.1.0", "previous_signer": object.union(old_signer, {"identity": fx.trusted_identity}),
	"source": "registry",
})

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

at(inp, op) := json.patch(inp, [{"op": "replace", "path": "/context/operation", "value": op}])

test_the_same_signer_changes_nothing if {
	d := fx.decide(same)
	d.action == "allow"
	fx.code_list(d) == ["TIER_VERIFIED"]
}

test_a_changed_signer_without_review_is_not_verified_and_warns if {
	d := fx.decide(unreviewed)
	d.tier == "community"
	d.action == "warn"
	{m.code | some m in d.next_tier.missing} == {"SIGNER_CHANGE_UNREVIEWED", "REVIEW_MISSING"}
	reason(d, "SIGNER_CHANGE_UNREVIEWED").message == reason(d, "SIGNER_CHANGED").message
	reason(d, "SIGNER_CHANGED").message == sprintf("cortex/weather is signed by %s (%s); the previous version 1.1.0 was signed by %s (%s)", [fx.trusted_identity, fx.github_issuer, old_signer.identity, fx.github_issuer])
	some m in d.next_tier.missing
	m.code == "SIGNER_CHANGE_UNREVIEWED"
	contains(m.message, "get a core-team review approving")
}

test_a_reviewed_signer_change_is_verified_and_still_warns_at_install if {
	d := fx.decide(changed)
	d.tier == "verified"
	d.action == "warn"
	"SIGNER_CHANGED" in fx.codes(d)
	not "SIGNER_CHANGE_UNREVIEWED" in fx.codes(d)
}

test_a_non_core_review_does_not_confirm_the_change if {
	inp := fx.with_evidence(changed, "review", {"reviews": [fx.review_record("someone/else", "approved")]})
	d := fx.decide(inp)
	d.tier == "community"
}

test_the_caution_is_for_publish_and_install_only if {
	fx.decide(at(changed, "publish")).action == "warn"
	fx.decide(at(changed, "verify")).action == "allow"
	fx.decide(at(changed, "run")).action == "allow"
	fx.decide(at(unreviewed, "run")).tier == "community"
}

test_a_dropped_signature_warns if {
	d := fx.decide(dropped)
	d.tier == "community"
	d.action == "warn"
	reason(d, "SIGNATURE_DROPPED").message == sprintf("cortex/weather has no verified signature; the previous version 1.1.0 was signed by %s (%s)", [old_signer.identity, fx.github_issuer])
}

test_without_a_previous_signer_the_message_says_so if {
	inp := json.patch(dropped, [
		{"op": "remove", "path": "/evidence/signer_continuity/previous_signer"},
		{"op": "remove", "path": "/evidence/signer_continuity/previous_version"},
		{"op": "remove", "path": "/plugin"},
	])
	reason(fx.decide(inp), "SIGNATURE_DROPPED").message == sprintf("%s has no verified signature; the previous version was signed by another signer", [fx.digest])
}

test_no_continuity_evidence_changes_nothing if {
	fx.decide(fx.verified).action == "allow"
	fx.decide(fx.with_evidence(fx.verified, "signer_continuity", {"present": false})).action == "allow"
}
