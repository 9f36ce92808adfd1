# What happens on install: allow, notice, warn or block, and whether a block is overridable.
#
# 1. The tier->action map in data (spec: verified -> allow, community -> notice,
#    experimental -> warn, untrusted -> block). A missing or unknown value blocks.
# 2. Escalations: any entry of `blockers` makes the action block. Blockers come from
#    revocation.rego (REVOKED, REVOCATION_*), sandbox.rego (SANDBOX_REQUIRED, *_NOT_GRANTED),
#    config.rego (CONFIG_INVALID), the `deny` extension point and this file.
#    Any entry of the `warn` extension point, or of `cautions` (this file:
#    CORTEX_VERSION_UNKNOWN), raises the action to at least warn.
# 3. overridable: true only for a block whose every cause is overridable (the tier's own block,
#    an invalid manifest, an ungranted permission, an unsupported CORTEX version). Revocation,
#    deny entries and invalid configuration are never overridable. Non-block actions are not
#    "overridable" (there is nothing to override).
package cortex

import rego.v1

# A reason that forces block, and whether an explicit user override may proceed past it.
blocker(code, message, evidence, overridable) := {
	"code": code,
	"message": message,
	"evidence": evidence,
	"overridable": overridable,
}

# Actions, least severe first.
actions := ["allow", "notice", "warn", "block"]

action_rank := _static.action_rank if _static.action_rank else := {a: i | some i, a in actions}

base_action := cfg.actions[tier] if cfg.actions[tier] in actions else := "block"

action := "block" if {
	count(blockers) > 0
} else := _at_least(base_action, "warn") if {
	_raised_to_warn
} else := base_action

_raised_to_warn if count(warn) > 0

_raised_to_warn if count(cautions) > 0

# The default policy's own reasons that raise the action to at least warn, listed as notes.
notes contains c if some c in cautions

_at_least(a, floor) := a if action_rank[a] >= action_rank[floor] else := floor

default overridable := false

overridable if {
	action == "block"
	not _hard_block
}

_hard_block if {
	some b in blockers
	not b.overridable == true
}

# --- extension points: deny and warn ---------------------------------------------------------------
#
# Organizations add entries from their own modules in package cortex:
#
#     deny contains {"code": "ACME_SOMETHING", "message": "why", "evidence": ["manifest"]} if { ... }
#     warn contains {"code": "ACME_HEADS_UP", "message": "why", "evidence": []} if { ... }
#
# Every deny entry blocks, not overridable, with its own reason; every warn entry raises the
# action to at least warn and is listed as a reason. A plain string entry is accepted too (code
# POLICY_DENY / POLICY_WARN). Rules feeding deny and warn may use tier, the checks and facts, but
# not action, overridable, reasons or decision (that would be a cycle).

# The default policy's own deny entries: plugins listed in data (denied_plugins: {glob: why}).
deny contains {
	"code": "PLUGIN_DENIED",
	"message": sprintf("%s is denied: %s", [_plugin_text, _listed_text(why)]),
	"evidence": ["plugin"],
} if {
	some pattern, why in items(cfg.denied_plugins)
	matches(pattern, full_name)
}

# And its own warn entries: plugins listed as deprecated (deprecated_plugins: {glob: why}).
warn contains {
	"code": "PLUGIN_DEPRECATED",
	"message": sprintf("%s is deprecated: %s", [_plugin_text, _listed_text(why)]),
	"evidence": ["plugin"],
} if {
	some pattern, why in items(cfg.deprecated_plugins)
	matches(pattern, full_name)
}

_listed_text(why) := short(why) if {
	is_string(why)
	why != ""
} else := "no reason given"

blockers contains object.union(extension_reason(entry, "POLICY_DENY"), {"overridable": false}) if {
	some entry in deny
}

notes contains extension_reason(entry, "POLICY_WARN") if {
	some entry in warn
}

# Codes Python reserves for its own fail-closed block (cortex_trust.decision.FAILURE_CODES).
reserved_codes := {"ENGINE_ERROR", "ENGINE_TIMEOUT", "ENGINE_UNDEFINED", "DECISION_INVALID"}

# An extension entry as a well-formed reason, whatever shape the organization gave it.
extension_reason(entry, default_code) := {
	"code": _extension_code(entry, default_code),
	"message": _extension_message(entry),
	"evidence": _extension_evidence(entry),
}

_extension_code(entry, default_code) := entry.code if {
	is_string(entry.code)
	regex.match(`^[A-Z][A-Z0-9_]{1,63}$`, entry.code)
	not entry.code in reserved_codes
} else := default_code

_extension_message(entry) := substring(entry, 0, 1000) if {
	is_string(entry)
	entry != ""
} else := substring(entry.message, 0, 1000) if {
	is_string(entry.message)
	entry.message != ""
} else := "organization policy (no message given)"

_extension_evidence(entry) := [e | some e in entry.evidence; is_string(e)] if {
	is_array(entry.evidence)
} else := ["policy"]

# --- blockers of this module -------------------------------------------------------------------------

# An invalid manifest blocks whatever the action map says (the same reason as the check).
blockers contains object.union(as_reason(f), {"overridable": true}) if {
	some f in experimental_failures
	f.code == "MANIFEST_INVALID"
}

# trust.min_cortex_version, enforced where the plugin will actually run, against the CORTEX
# platform's version (context.cortex_version: the installer's configuration, not cortex-trust's
# own version). Versions are compared on their MAJOR.MINOR.PATCH core ("8.0" and "8" read as
# 8.0.0). A minimum that does not parse is not compared (the manifest loader refuses it). A
# platform version that is missing, null or not a version is unknown: the check cannot be made,
# and the action is at least warn (CORTEX_VERSION_UNKNOWN), never a silent allow or block.
blockers contains blocker(
	"CORTEX_VERSION_UNSUPPORTED",
	sprintf(
		"the plugin needs CORTEX %s or later; this platform is CORTEX %s%s",
		[short(manifest_trust.min_cortex_version), short(input.context.cortex_version), _platform_source_text],
	),
	["manifest.trust.min_cortex_version", "context.cortex_version"],
	true,
) if {
	_min_cortex_version_enforced
	semver.compare(_platform_core, _needed_core) < 0
}

cautions contains {
	"code": "CORTEX_VERSION_UNKNOWN",
	"message": sprintf(
		"the CORTEX platform version is %s, so the plugin's min_cortex_version %s cannot be checked; set it with `cortex config set platform-version X.Y.Z` (or CORTEX_PLATFORM_VERSION)",
		[_platform_unknown_text, short(manifest_trust.min_cortex_version)],
	),
	"evidence": ["manifest.trust.min_cortex_version", "context.cortex_version"],
} if {
	_min_cortex_version_enforced
	not _platform_core
}

# The plugin's minimum first: when it does not parse, nothing else is looked at.
_min_cortex_version_enforced if {
	_needed_core
	operation in cfg.compatibility.enforce_min_cortex_version
}

_needed_core := version_core(manifest_trust.min_cortex_version)

_platform_core := version_core(input.context.cortex_version)

_platform_unknown_text := sprintf("'%s', which is not a version", [short(input.context.cortex_version)]) if {
	is_string(input.context.cortex_version)
} else := "unknown"

# Where the compared platform version came from (context.cortex_version_source), for the message.
_platform_sources := {
	"config": " (set in the configuration)",
	"env": " (set in the environment)",
	"registry": " (the registry's setting)",
}

_platform_source_text := _platform_sources[input.context.cortex_version_source] if {
	_platform_sources[input.context.cortex_version_source]
} else := ""

_version_text(v) := split(split(v, "+")[0], "-")[0] if is_string(v)

version_core(v) := c if {
	c := _version_text(v)
	regex.match(`^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$`, c)
} else := concat("", [c, ".0"]) if {
	c := _version_text(v)
	regex.match(`^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$`, c)
} else := concat("", [c, ".0.0"]) if {
	c := _version_text(v)
	regex.match(`^(0|[1-9][0-9]{0,8})$`, c)
}
