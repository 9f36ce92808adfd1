# Signer continuity: a plugin whose versions were signed by one signer and suddenly by another
# (or by none) is what an account or CI takeover looks like.
#
# The registry (at publish, against the plugin's earlier versions) and the installer (against the
# signer pinned at first install) establish input.evidence.signer_continuity: whether the
# previous version's signer (identity, issuer and Sigstore root) differs from this one's
# (`signer_changed`) and whether the previous version was signed and this one is not
# (`signature_dropped`). The policy decides:
#
# * a changed signer or a dropped signature raises the action to at least warn at publish and
#   install (SIGNER_CHANGED, SIGNATURE_DROPPED; `cautions`, action.rego): whoever installs is told
#   who signs now;
# * a changed signer keeps the version from Verified (SIGNER_CHANGE_UNREVIEWED) until a core-team
#   reviewer approved this digest (a review of this version, so made after the change): the trust earned by the old
#   signer does not pass to the new one unreviewed. A dropped signature already fails Verified
#   (SIGNATURE_MISSING).
package cortex

import rego.v1

# Established by the registry or the installer itself (like revocation), so not subject to
# evidence_sources.
_continuity := input.evidence.signer_continuity if is_object(input.evidence.signer_continuity) else := {}

signer_changed if _continuity.signer_changed == true

signature_dropped if _continuity.signature_dropped == true

_continuity_operations := {"publish", "install"}

_previous_signer_text := sprintf("%s (%s)", [
	short(str_field(_continuity.previous_signer, "identity")),
	short(str_field(_continuity.previous_signer, "issuer")),
]) if {
	is_object(_continuity.previous_signer)
} else := "another signer"

_previous_version_text := sprintf(" %s", [short(str_field(_continuity, "previous_version"))]) if {
	str_field(_continuity, "previous_version") != ""
} else := ""

_current_signer_text := sprintf("%s (%s)", [
	short(str_field(signature, "identity")),
	short(str_field(signature, "issuer")),
])

_signer_changed_message := sprintf(
	"%s is signed by %s; the previous version%s was signed by %s",
	[_continuity_what, _current_signer_text, _previous_version_text, _previous_signer_text],
)

_continuity_what := full_name if full_name != "" else := digest_text

cautions contains {
	"code": "SIGNER_CHANGED",
	"message": _signer_changed_message,
	"evidence": ["signer_continuity", "signature"],
} if {
	signer_changed
	operation in _continuity_operations
}

cautions contains {
	"code": "SIGNATURE_DROPPED",
	"message": sprintf(
		"%s has no verified signature; the previous version%s was signed by %s",
		[_continuity_what, _previous_version_text, _previous_signer_text],
	),
	"evidence": ["signer_continuity", "signature"],
} if {
	signature_dropped
	operation in _continuity_operations
}

verified_failures contains check(
	"SIGNER_CHANGE_UNREVIEWED",
	_signer_changed_message,
	sprintf("get a core-team review approving %s, which confirms its new signer", [digest_text]),
	["signer_continuity", "signature", "review"],
) if {
	signer_changed
	count(core_approvers) == 0
}
