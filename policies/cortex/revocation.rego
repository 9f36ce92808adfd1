# Revocation (spec: "A revoked version is blocked and not overridable").
#
# A revoked version blocks at every operation. Installing or running (the operations listed in
# data.cortex_config.revocation.operations_requiring_fresh) also needs revocation data that was
# consulted and is recent: not knowing whether a version is revoked is not the same as knowing
# it is not. verify and publish (CI, the registry) do not need it by default.
#
# Contributes to `blockers` (action.rego): objects {code, message, evidence, overridable}.
package cortex

import rego.v1

revoked if revocation.revoked == true

blockers contains blocker(
	"REVOKED",
	sprintf("%s is revoked%s", [_revoked_what, _revocation_reason_suffix]),
	["revocation"],
	false,
) if {
	revoked
}

_revoked_what := sprintf("%s (%s)", [full_name, digest_text]) if full_name != "" else := digest_text

_revocation_reason_suffix := sprintf(": %s", [short(revocation.reason)]) if {
	str_field(revocation, "reason") != ""
} else := ""

fresh_revocation_required if operation in cfg.revocation.operations_requiring_fresh

revocation_checked if revocation.checked == true

# Fresh: fresh_as_of is a valid time no more than max_age_hours before context.now. A missing or
# malformed time on either side is not fresh.
revocation_fresh if {
	age_ns := now_ns - time_ns(revocation.fresh_as_of)
	age_ns <= cfg.revocation.max_age_hours * 3600000000000
}

blockers contains blocker(
	"REVOCATION_UNKNOWN",
	sprintf("no revocation data was consulted; %s needs it", [operation]),
	["revocation", "context.operation"],
	false,
) if {
	fresh_revocation_required
	not revocation_checked
}

blockers contains blocker(
	"REVOCATION_STALE",
	sprintf(
		"revocation data is as of %s, more than %s hour(s) before %s; %s needs current data",
		[_fresh_as_of_text, conf_number_text(["revocation", "max_age_hours"]), now_text, operation],
	),
	["revocation", "context.now"],
	false,
) if {
	fresh_revocation_required
	revocation_checked
	not revocation_fresh
}

_fresh_as_of_text := short(revocation.fresh_as_of) if {
	str_field(revocation, "fresh_as_of") != ""
} else := "an unknown time"
