# The checks of the top tier (spec):
#   tier: Verified = core-team review approved + Sigstore signature whose identity is trusted
#   for the plugin + at least 30 days of production use.
#
# Verified also requires everything Community needs (tier.rego): a plugin that is reviewed,
# signed and in production but unscanned or failing its tests is not Verified.
# Python establishes that a signature is cryptographically valid (`verified`); whether the
# signer (issuer and identity, always together) is trusted for this plugin is decided here,
# from data.cortex_config.trusted_signers.
package cortex

import rego.v1

# --- review --------------------------------------------------------------------------------------

review_present if review.present == true

verified_failures contains check(
	"REVIEW_MISSING",
	sprintf("no core-team review of %s", [digest_text]),
	sprintf("get a core-team review approving %s", [digest_text]),
	["review"],
) if {
	not review_present
}

verified_failures contains check(
	"REVIEW_NOT_APPROVED",
	sprintf("the latest review of %s is %s, not approved", [digest_text, _review_status_text]),
	sprintf("get a core-team review approving %s", [digest_text]),
	["review"],
) if {
	review_present
	not review.status == "approved"
}

_review_status_text := review.status if is_string(review.status) else := "without a status"

# Only approvals by the reviewers listed in data count (exact match).
verified_failures contains check(
	"REVIEWER_UNTRUSTED",
	sprintf("reviewer '%s' is not a core-team reviewer", [short(str_field(review, "reviewer"))]),
	"get the review from a core-team reviewer",
	["review"],
) if {
	review_present
	not _reviewer_trusted
}

_reviewer_trusted if str_field(review, "reviewer") in cfg.verified.reviewers

# --- signature -----------------------------------------------------------------------------------

signature_present if signature.present == true

signature_verified if {
	signature_present
	signature.verified == true
}

_signer_issuer := str_field(signature, "issuer")

_signer_identity := str_field(signature, "identity")

# Some trusted_signers entry covers this plugin and names this issuer and this identity, and the
# bundle chained to a Sigstore root that entry accepts (sources.rego).
# Entries may be an object keyed by name (the default shape, merge-friendly) or a list; a null
# entry (how a data file removes a default one) matches nothing.
signer_trusted if {
	signature_verified
	_signer_issuer != ""
	_signer_identity != ""
	some entry in items(cfg.trusted_signers)
	is_object(entry)
	plugin_matches(entry.plugins)
	matches(entry.issuer, _signer_issuer)
	matches(entry.identity, _signer_identity)
	signer_root_accepted(entry)
}

# A GitHub plugin's own release workflow (sources.rego).
signer_trusted if github_signer_trusted

verified_failures contains check(
	"SIGNATURE_MISSING",
	sprintf("no Sigstore signature of %s", [digest_text]),
	sprintf("sign %s with Sigstore from a trusted release workflow", [digest_text]),
	["signature"],
) if {
	not signature_present
}

verified_failures contains check(
	"SIGNATURE_INVALID",
	sprintf("the signature did not verify%s", [_signature_error_suffix]),
	sprintf("attach a valid Sigstore signature of %s", [digest_text]),
	["signature"],
) if {
	signature_present
	not signature.verified == true
}

_signature_error_suffix := sprintf(": %s", [short(signature.error)]) if {
	str_field(signature, "error") != ""
} else := ""

verified_failures contains check(
	"SIGNER_UNTRUSTED",
	sprintf(
		"signer '%s' (issuer '%s') is not trusted for %s",
		[short(_signer_identity), short(_signer_issuer), _plugin_text],
	),
	sprintf("sign %s from an identity trusted for %s (trusted_signers)", [digest_text, _plugin_text]),
	["signature"],
) if {
	signature_verified
	not signer_trusted
}

_plugin_text := full_name if full_name != "" else := "this plugin (no name)"

# --- usage ---------------------------------------------------------------------------------------

usage_present if usage.present == true

verified_failures contains check(
	"USAGE_MISSING",
	sprintf("no production usage data for %s", [digest_text]),
	sprintf("run %s in production for %s days", [digest_text, _min_days_text]),
	["usage"],
) if {
	not usage_present
}

# tier: Verified requires 30 days of production use (the number is data).
verified_failures contains check(
	"USAGE_INSUFFICIENT",
	sprintf("%v day(s) in production; verified needs %s", [usage_days, _min_days_text]),
	sprintf("run %s in production for %s more day(s)", [digest_text, _more_days_text]),
	["usage"],
) if {
	usage_present
	not _enough_usage
}

# Days in production, once per decision (a check, its messages and the tier reason use it).
usage_days := num_field(usage, "days_in_production")

_enough_usage if usage_days >= cfg.verified.min_days_in_production

_min_days_text := _static._min_days_text if _static._min_days_text else := conf_number_text(["verified", "min_days_in_production"])

_more_days_text := sprintf("%v", [cfg.verified.min_days_in_production - usage_days]) if {
	is_number(cfg.verified.min_days_in_production)
} else := "more"
