# Transparency: is the version proven to be in its registry's transparency log?
#
# A registry's audit log is a Merkle-tree transparency log whose signed checkpoints clients keep
# (docs/policy-contract.md). The installer establishes the facts in input.evidence.transparency:
# a checkpoint verified with the registry's configured log key (`present`), the version's publish
# leaf proven included in it (`included`), and whether that checkpoint provably extends the one
# this machine saw before (`consistent_with_seen`: false for a forked, truncated or rewritten
# history, null when there was nothing to compare with). The policy decides:
#
# * a proven inconsistency blocks, whatever the data says (LOG_INCONSISTENT): the registry showed
#   this machine a history that does not extend what it showed before, so it may be showing
#   different histories to different users;
# * with data.cortex_config.transparency.require_inclusion (default false), installing a version
#   not proven included blocks (LOG_INCLUSION_MISSING).
#
# Neither is overridable. Contributes to `blockers` (action.rego).
package cortex

import rego.v1

# Required only by an explicit true; an absent key is false, anything else is CONFIG_INVALID.
transparency_required if conf(["transparency", "require_inclusion"]) == true

_transparency_config_ok if conf(["transparency", "require_inclusion"]) in {null, true, false}

config_problems contains "transparency.require_inclusion must be true or false" if {
	not _transparency_config_ok
}

_log_included if input.evidence.transparency.included == true

_log_forked if input.evidence.transparency.consistent_with_seen == false

_log_why := sprintf(" (%s)", [short(str_field(input.evidence.transparency, "error"))]) if {
	str_field(input.evidence.transparency, "error") != ""
} else := ""

blockers contains blocker(
	"LOG_INCONSISTENT",
	sprintf(
		"the registry's transparency log does not extend the checkpoint this machine saw before: a forked, truncated or rewritten history%s",
		[_log_why],
	),
	["transparency"],
	false,
) if {
	_log_forked
}

blockers contains blocker(
	"LOG_INCLUSION_MISSING",
	sprintf(
		"%s is not proven to be in its registry's transparency log, which the policy requires%s",
		[_log_what, _log_why],
	),
	["transparency", "config"],
	false,
) if {
	transparency_required
	operation == "install"
	not _log_included
}

_log_what := full_name if full_name != "" else := digest_text
