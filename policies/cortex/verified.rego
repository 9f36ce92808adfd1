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
# Reviews are evidence per reviewer: evidence.review.reviews lists every reviewer's current review
# of the digest (who, verdict, when), and the policy weighs each by who wrote it. Only reviews by
# the reviewers listed in data (verified.reviewers, exact match) count: Verified needs at least
# one approval by such a core-team reviewer and no other verdict from any of them. A review by
# anyone else is reported (REVIEWER_UNTRUSTED, a note) and changes nothing: it can neither add an
# approval nor hide or outvote a core-team review.

review_present if review.present == true

# Every review record (an object) of a review piece that counts.
_reviews contains r if {
	review_present
	some r in items(review.reviews)
	is_object(r)
}

_core_reviewer(r) if str_field(r, "reviewer") in cfg.verified.reviewers

# Core-team reviewers who approved.
core_approvers contains str_field(r, "reviewer") if {
	some r in _reviews
	_core_reviewer(r)
	r.verdict == "approved"
}

# Core-team reviews that are anything but an approval (rejected, changes requested, no verdict).
_core_objections contains r if {
	some r in _reviews
	_core_reviewer(r)
	not r.verdict == "approved"
}

verified_failures contains check(
	"REVIEW_MISSING",
	sprintf("no core-team review of %s", [digest_text]),
	sprintf("get a core-team review approving %s", [digest_text]),
	["review"],
) if {
	count(core_approvers) == 0
	count(_core_objections) == 0
}

# One reason per core-team review that is not an approval.
verified_failures contains check(
	"REVIEW_NOT_APPROVED",
	sprintf("core-team reviewer '%s' %s %s", [short(str_field(r, "reviewer")), _verdict_text(r), digest_text]),
	sprintf("address the review of core-team reviewer '%s' and get their approval of %s", [short(str_field(r, "reviewer")), digest_text]),
	["review"],
) if {
	some r in _core_objections
}

_verdict_text(r) := "rejected" if {
	r.verdict == "rejected"
} else := "requested changes to" if {
	r.verdict == "changes_requested"
} else := "gave no approval of"

# Reviews that were not counted, and why (a note: they decide nothing).
notes contains {
	"code": "REVIEWER_UNTRUSTED",
	"message": sprintf(
		"the review by '%s' (%s) was not counted: not a core-team reviewer (verified.reviewers)",
		[short(str_field(r, "reviewer")), short(str_field(r, "verdict"))],
	),
	"evidence": ["review"],
} if {
	some r in _reviews
	not _core_reviewer(r)
}

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

# A signer the person running `cortex plugin verify` trusts for this verification, given on its
# command line as cosign users do (input.context.command_line_signers: --certificate-identity or
# -regexp, --certificate-oidc-issuer or -regexp). Only at verify, where whoever runs the gate
# decides for their own pipeline; only through the default signer roots (a private root cannot
# mint it either). A regular expression must be valid on its own (so that nothing in it can
# close the group around it) and match the whole value.
signer_trusted if command_line_signer_trusted

command_line_signer_trusted if {
	input.context.operation == "verify"
	signature_verified
	_signer_issuer != ""
	_signer_identity != ""
	some entry in items(input.context.command_line_signers)
	is_object(entry)
	_command_line_match(entry, "issuer", _signer_issuer)
	_command_line_match(entry, "identity", _signer_identity)
	signer_root_accepted({})
}

_command_line_match(entry, name, value) if {
	is_string(entry[name])
	entry[name] == value
}

_command_line_match(entry, name, value) if {
	pattern := entry[sprintf("%s_regexp", [name])]
	is_string(pattern)
	count(pattern) <= 512
	regex.is_valid(pattern)
	regex.match(sprintf("^(?:%s)$", [pattern]), value)
}

notes contains {
	"code": "SIGNER_FROM_COMMAND_LINE",
	"message": sprintf(
		"signer '%s' (issuer '%s') is trusted by the command line of this verification (--certificate-identity)",
		[short(_signer_identity), short(_signer_issuer)],
	),
	"evidence": ["signature", "context.command_line_signers"],
} if {
	command_line_signer_trusted
}

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
# tier: Verified requires 30 days of production use (the numbers are data). Production use is
# what organizations other than the plugin's own namespace report, over time: Verified needs
# production use since at least verified.min_days_in_production days, and at least
# verified.min_organizations such organizations that each reported this digest on at least
# verified.min_active_days distinct days, the first of them at least
# verified.min_days_in_production days ago. One installation, one day or one organization
# cannot make "30 days in production"; a fact that was not supplied reads as 0, never "enough".

usage_present if usage.present == true

verified_failures contains check(
	"USAGE_MISSING",
	sprintf("no production usage data for %s", [digest_text]),
	sprintf("run %s in production for %s days", [digest_text, _min_days_text]),
	["usage"],
) if {
	not usage_present
}

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

# The publisher's organization: its reports are not independent evidence of use.
_publisher_org := input.plugin.namespace if is_string(input.plugin.namespace) else := ""

# The organizations other than the publisher's that reported use of this digest.
usage_independent_orgs contains org if {
	usage_present
	some r in items(usage.reporters)
	is_object(r)
	org := str_field(r, "organization")
	org != ""
	org != _publisher_org
}

# Those whose use is continued: reports on enough distinct days, the first long enough ago.
usage_continued_orgs contains org if {
	usage_present
	some r in items(usage.reporters)
	is_object(r)
	org := str_field(r, "organization")
	org != ""
	org != _publisher_org
	num_field(r, "active_days") >= cfg.verified.min_active_days
	num_field(r, "days_in_production") >= cfg.verified.min_days_in_production
}

_enough_reporters if count(usage_independent_orgs) >= cfg.verified.min_organizations

_enough_continued if count(usage_continued_orgs) >= cfg.verified.min_organizations

_min_orgs_text := conf_number_text(["verified", "min_organizations"])

_min_active_text := conf_number_text(["verified", "min_active_days"])

verified_failures contains check(
	"USAGE_TOO_FEW_REPORTERS",
	sprintf(
		"%v organization(s) other than the publisher's reported production use of %s; verified needs %s",
		[count(usage_independent_orgs), digest_text, _min_orgs_text],
	),
	sprintf("have %s independent organizations run %s in production and report it", [_min_orgs_text, digest_text]),
	["usage"],
) if {
	usage_present
	not _enough_reporters
}

verified_failures contains check(
	"USAGE_NOT_CONTINUED",
	sprintf(
		"%v independent organization(s) reported %s on at least %s day(s) since at least %s day(s); verified needs %s",
		[count(usage_continued_orgs), digest_text, _min_active_text, _min_days_text, _min_orgs_text],
	),
	sprintf(
		"keep %s in production at %s independent organizations, each reporting on at least %s day(s) over %s day(s)",
		[digest_text, _min_orgs_text, _min_active_text, _min_days_text],
	),
	["usage"],
) if {
	usage_present
	_enough_usage
	_enough_reporters
	not _enough_continued
}
