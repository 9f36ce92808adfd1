# Governance (spec): who, beyond the automated checks, lets a plugin into Community.
#
#   Core plugins (namespaces in governance.core_namespaces, default `cortex`): the core team's
#   standard review. Community also needs an approving review by a core-team reviewer
#   (verified.reviewers), recorded in the registry; no pull request. Only the namespace itself
#   publishes there (CORE_NAMESPACE_RESERVED).
#   Community plugins: PR-based review. Community also needs an approved promotion pull request
#   on the registry repository (input.evidence.promotion): an approving review by a GitHub login
#   listed in governance.community_reviewers or governance.core_reviewers, on a pull request
#   that was not closed unmerged and whose head still names this digest.
#   Disputes: GitHub issues on the registry repository (input.evidence.disputes). An open dispute
#   carrying one of governance.disputes.warn_labels (default `security`) raises the action to at
#   least warn (DISPUTE_OPEN); a closed one is history and decides nothing.
#
# governance.promotion.operations lists the operations at which Community needs the promotion
# (or, for a core plugin, the core review); governance.promotion.exempt_plugins (globs on
# full_name) exempts plugins, e.g. a private registry's own namespaces. `verify` is not listed by
# default: a pipeline checks the automated evidence, the registry the review.
package cortex

import rego.v1

_gov := cfg.governance if is_object(cfg.governance) else := {}

_gov_list(obj, key) := [x | some x in obj[key]; is_string(x)] if is_array(obj[key]) else := []

_promotion_cfg := _gov.promotion if is_object(_gov.promotion) else := {}

_disputes_cfg := _gov.disputes if is_object(_gov.disputes) else := {}

plugin_namespace := input.plugin.namespace if is_string(input.plugin.namespace) else := ""

core_plugin if {
	plugin_namespace != ""
	plugin_namespace in _gov_list(_gov, "core_namespaces")
}

_review_exempt if plugin_matches(_gov_list(_promotion_cfg, "exempt_plugins"))

# Whether this operation needs the promotion (or the core review) for Community.
governance_review_required if {
	operation in _gov_list(_promotion_cfg, "operations")
	not _review_exempt
}

# --- core plugins ----------------------------------------------------------------------------------

community_failures contains check(
	"CORE_REVIEW_MISSING",
	sprintf("%s is a core plugin (namespace %s): community needs a core-team review approving %s", [_plugin_text, plugin_namespace, digest_text]),
	sprintf("get a core-team review approving %s (core plugins need no promotion pull request)", [digest_text]),
	["review"],
) if {
	core_plugin
	governance_review_required
	count(core_approvers) == 0
}

# A core namespace is published to by its own publishers only: not by an admin or a token of
# another namespace (plugin.publisher: the namespace of the publishing token).
blockers contains blocker(
	"CORE_NAMESPACE_RESERVED",
	sprintf("namespace %s is reserved for core plugins and can only be published to by its own publishers (this publish: %s)", [plugin_namespace, _publisher_text]),
	["plugin"],
	false,
) if {
	core_plugin
	operation == "publish"
	not _published_by_namespace
}

_published_by_namespace if input.plugin.publisher == plugin_namespace

_publisher_text := short(input.plugin.publisher) if is_string(input.plugin.publisher) else := "unknown"

# --- promotion of community plugins ----------------------------------------------------------------

promotion := input.evidence.promotion if "promotion" in counted_kinds else := {}

promotion_present if promotion.present == true

_promotion_required if {
	not core_plugin
	governance_review_required
}

_promotion_url := short(promotion.url) if is_string(promotion.url) else := "the promotion pull request"

# GitHub logins are case-insensitive.
_promotion_reviewers := {lower(x) | some x in _gov_list(_gov, "community_reviewers")} | {lower(x) | some x in _gov_list(_gov, "core_reviewers")}

# Each reviewer's current review of the pull request (Python keeps the latest per login).
_promotion_reviews contains r if {
	promotion_present
	some r in items(promotion.reviews)
	is_object(r)
	is_string(r.login)
}

_listed_promotion_reviewer(r) if lower(r.login) in _promotion_reviewers

promotion_approvers contains r.login if {
	some r in _promotion_reviews
	_listed_promotion_reviewer(r)
	r.state == "approved"
}

_promotion_objectors contains r.login if {
	some r in _promotion_reviews
	_listed_promotion_reviewer(r)
	r.state == "changes_requested"
}

_promotion_closed_unmerged if {
	promotion_present
	promotion.state == "closed"
	not promotion.merged == true
}

_promotion_rejected if _promotion_closed_unmerged

_promotion_rejected if count(_promotion_objectors) > 0

# The index entry at the pull request's head names this very digest.
_promotion_head_bound if {
	digest != ""
	promotion.head_digest == digest
}

community_failures contains check(
	"PROMOTION_MISSING",
	sprintf("%s has no promotion to community: no promotion pull request for %s", [_plugin_text, digest_text]),
	sprintf("request a promotion (`cortex plugin promote %s@%s`) and get it approved by a community reviewer", [_plugin_text, _version_text_or_unknown]),
	["promotion"],
) if {
	_promotion_required
	not promotion_present
}

community_failures contains check(
	"PROMOTION_REJECTED",
	sprintf("the promotion pull request %s was closed without being merged", [_promotion_url]),
	sprintf("address the review of %s and request the promotion of a new version", [_promotion_url]),
	["promotion"],
) if {
	_promotion_required
	_promotion_closed_unmerged
}

community_failures contains check(
	"PROMOTION_REJECTED",
	sprintf("reviewer(s) %s requested changes on the promotion pull request %s", [short(concat(", ", sort(_promotion_objectors))), _promotion_url]),
	sprintf("address the requested changes on %s and get an approval", [_promotion_url]),
	["promotion"],
) if {
	_promotion_required
	not _promotion_closed_unmerged
	count(_promotion_objectors) > 0
}

community_failures contains check(
	"PROMOTION_DIGEST_CHANGED",
	sprintf("the head of the promotion pull request %s does not name %s", [_promotion_url, digest_text]),
	sprintf("restore the index entry of %s in %s, or request a new promotion", [digest_text, _promotion_url]),
	["promotion"],
) if {
	_promotion_required
	promotion_present
	not _promotion_rejected
	not _promotion_head_bound
}

community_failures contains check(
	"PROMOTION_PENDING",
	sprintf("the promotion pull request %s has no approving review by a community or core reviewer yet", [_promotion_url]),
	sprintf("get %s approved by a community reviewer (governance.community_reviewers)", [_promotion_url]),
	["promotion"],
) if {
	_promotion_required
	promotion_present
	not _promotion_rejected
	_promotion_head_bound
	count(promotion_approvers) == 0
}

notes contains {
	"code": "PROMOTION_REVIEWER_UNTRUSTED",
	"message": sprintf("the review by '%s' (%s) of %s was not counted: not a community or core reviewer (governance)", [short(r.login), short(str_field(r, "state")), _promotion_url]),
	"evidence": ["promotion"],
} if {
	_promotion_required
	some r in _promotion_reviews
	not _listed_promotion_reviewer(r)
}

_version_text_or_unknown := input.plugin.version if is_string(input.plugin.version) else := "VERSION"

# --- disputes ----------------------------------------------------------------------------------------

_warn_labels := {lower(x) | some x in _gov_list(_disputes_cfg, "warn_labels")}

open_disputes contains d if {
	some d in items(input.evidence.disputes.disputes)
	is_object(d)
	d.state == "open"
}

_dispute_warns(d) if {
	some label in items(d.labels)
	is_string(label)
	lower(label) in _warn_labels
}

cautions contains {
	"code": "DISPUTE_OPEN",
	"message": sprintf("%s has an open dispute (%s): %s", [_plugin_text, _dispute_labels_text(d), _dispute_url(d)]),
	"evidence": ["disputes"],
} if {
	some d in open_disputes
	_dispute_warns(d)
}

_dispute_url(d) := short(d.url) if is_string(d.url) else := "no link"

_dispute_labels_text(d) := short(concat(", ", sort([l | some l in items(d.labels); is_string(l)])))
