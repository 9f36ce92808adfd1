# The data the policies run on (data.cortex_config: policies/data.yaml plus an organization's
# --data files) is checked on every decision: a key that is missing or of the wrong type blocks
# every plugin with CONFIG_INVALID, not overridable. A typo in a data file must never turn a
# check off silently (an undefined threshold would otherwise make its check pass).
#
# Values are read with conf(path), which is null when missing, so every check here is defined
# (see the portability rule in facts.rego).
package cortex

import rego.v1

_tier_names := ["verified", "community", "experimental", "untrusted"]

_config_present if is_object(data.cortex_config)

# The common case in one rule body (cheap); the detailed problems below are only worked out
# when it fails. config_problems is what counts: config_ok only short-cuts it.
config_ok := true if {
	_static.config_ok == true # precomputed (static.rego)
} else := true if {
	is_object(data.cortex_config)
	is_array(cfg.signer_trusted_roots)
	is_object(cfg.evidence_sources)
	is_object(cfg.github_signers)
	is_number(cfg.verified.min_days_in_production)
	is_number(cfg.verified.min_active_days)
	is_number(cfg.verified.min_organizations)
	is_array(cfg.verified.reviewers)
	is_array(cfg.scan.severities)
	is_array(cfg.scan.required_scanners)
	is_boolean(cfg.scan.require_bound)
	is_boolean(cfg.scan.allow_secrets)
	is_object(cfg.scan.cve_allowlist)
	every origins in items(cfg.scan.accepted_origins) {
		is_array(origins)
	}
	is_object(cfg.scan.accepted_origins)
	is_number(cfg.tests.min_executed)
	is_number(cfg.revocation.max_age_hours)
	is_array(cfg.revocation.operations_requiring_fresh)
	is_array(cfg.compatibility.enforce_min_cortex_version)
	is_boolean(cfg.sandbox.allow_unsandboxed)
	is_array(cfg.sandbox.network_tiers)
	is_array(cfg.sandbox.filesystem_tiers)
	is_object(object.get(cfg, "denied_plugins", {}))
	is_object(object.get(cfg, "deprecated_plugins", {}))
	every t in _tier_names {
		cfg.actions[t] in actions
	}
	every entry in items(cfg.trusted_signers) {
		_signer_entry_ok_or_null(entry)
	}
	type_name(cfg.trusted_signers) in {"object", "array"}
	every entry in items(object.get(cfg, "trusted_scan_attesters", {})) {
		_signer_entry_ok_or_null(entry)
	}
	is_object(object.get(cfg, "trusted_scan_attesters", {}))
	_max_severity_ranked
	_sandbox_user_ok
	_sandbox_memory_ok
	_positive(cfg.sandbox.cpus)
	_positive_whole(cfg.sandbox.pids_limit)
	_transparency_config_ok # transparency.rego
	_governance_config_ok
	_freshness_config_ok
}

# freshness.rego's keys, all optional: limits are numbers of days (>= 0) or null (no limit).
_freshness_config_ok if {
	is_object(object.get(cfg, "freshness", {}))
	is_object(object.get(cfg, ["freshness", "scan"], {}))
	is_object(object.get(cfg, ["freshness", "scan", "max_age_days"], {}))
	every n in items(object.get(cfg, ["freshness", "scan", "max_age_days"], {})) {
		_days_or_null(n)
	}
	_days_or_null(object.get(cfg, ["freshness", "scan", "max_db_age_days"], null))
}

_days_or_null(null) := true

_days_or_null(n) if {
	is_number(n)
	n >= 0
}

config_problems contains "freshness, freshness.scan and freshness.scan.max_age_days must be objects" if {
	some k in [["freshness"], ["freshness", "scan"], ["freshness", "scan", "max_age_days"]]
	not is_object(object.get(cfg, k, {}))
}

config_problems contains sprintf("freshness.scan.max_age_days.%v must be a number of days (>= 0) or null", [t]) if {
	some t, n in items(object.get(cfg, ["freshness", "scan", "max_age_days"], {}))
	not _days_or_null(n)
}

config_problems contains "freshness.scan.max_db_age_days must be a number of days (>= 0) or null" if {
	not _days_or_null(object.get(cfg, ["freshness", "scan", "max_db_age_days"], null))
}

# governance.rego's keys: every list a list (of strings where it names something).
_governance_config_ok if {
	is_array(cfg.governance.core_namespaces)
	is_array(cfg.governance.community_reviewers)
	is_array(cfg.governance.core_reviewers)
	is_array(cfg.governance.promotion.operations)
	is_array(cfg.governance.promotion.exempt_plugins)
	is_array(cfg.governance.disputes.warn_labels)
}

_signer_entry_ok_or_null(null) := true

_signer_entry_ok_or_null(entry) if _signer_entry_ok(entry)

config_problems contains "data.cortex_config is missing or not an object" if not _config_present

config_problems contains sprintf("actions.%s must be one of allow, notice, warn, block", [t]) if {
	some t in _tier_names
	not conf(["actions", t]) in actions
}

# Keys that must hold a value of one type: [path, type, what to write].
_typed_keys := [
	[["signer_trusted_roots"], "array", "a list of Sigstore trust root names"],
	[["evidence_sources"], "object", "an object {SOURCE: {KIND: true|false}}"],
	[["github_signers"], "object", "an object {issuer, workflow}"],
	[["verified", "min_days_in_production"], "number", "a number of days"],
	[["verified", "min_active_days"], "number", "a number of days"],
	[["verified", "min_organizations"], "number", "a number of organizations"],
	[["verified", "reviewers"], "array", "a list of reviewer ids"],
	[["scan", "severities"], "array", "a list of severities, lowest first"],
	[["scan", "required_scanners"], "array", "a list of scanner names"],
	[["scan", "require_bound"], "boolean", "true or false"],
	[["scan", "allow_secrets"], "boolean", "true or false"],
	[["scan", "cve_allowlist"], "object", "an object {CVE-ID: {expires, reason}}"],
	[["scan", "accepted_origins"], "object", "an object {OPERATION: [origins]}"],
	[["tests", "min_executed"], "number", "a number of tests"],
	[["revocation", "max_age_hours"], "number", "a number of hours"],
	[["revocation", "operations_requiring_fresh"], "array", "a list of operations"],
	[["compatibility", "enforce_min_cortex_version"], "array", "a list of operations"],
	[["sandbox", "allow_unsandboxed"], "boolean", "true or false"],
	[["sandbox", "network_tiers"], "array", "a list of tiers"],
	[["sandbox", "filesystem_tiers"], "array", "a list of tiers"],
	[["governance", "core_namespaces"], "array", "a list of namespaces"],
	[["governance", "community_reviewers"], "array", "a list of GitHub logins"],
	[["governance", "core_reviewers"], "array", "a list of GitHub logins"],
	[["governance", "promotion", "operations"], "array", "a list of operations"],
	[["governance", "promotion", "exempt_plugins"], "array", "a list of globs on full_name"],
	[["governance", "disputes", "warn_labels"], "array", "a list of issue labels"],
]

config_problems contains sprintf("%s must be %s", [concat(".", key[0]), key[2]]) if {
	some key in _typed_keys
	not type_name(conf(key[0])) == key[1]
}

config_problems contains sprintf("scan.accepted_origins.%s must be a list of origins", [op]) if {
	some op, origins in items(conf(["scan", "accepted_origins"]))
	not is_array(origins)
}

config_problems contains sprintf("trusted_scan_attesters entry %v needs plugins (a list), issuer and identity (strings)", [name]) if {
	some name, entry in items(object.get(cfg, "trusted_scan_attesters", {}))
	entry != null
	not _signer_entry_ok(entry)
}

# Optional maps: absent is fine, anything but an object is not.
config_problems contains sprintf("%s must be an object", [k]) if {
	some k in ["denied_plugins", "deprecated_plugins", "trusted_scan_attesters"]
	not type_name(object.get(cfg, k, {})) == "object"
}

config_problems contains "trusted_signers must be an object (or a list)" if {
	not type_name(conf(["trusted_signers"])) in {"object", "array"}
}

config_problems contains sprintf("trusted_signers entry %v needs plugins (a list), issuer and identity (strings)", [name]) if {
	some name, entry in items(conf(["trusted_signers"]))
	entry != null
	not _signer_entry_ok(entry)
}

_signer_entry_ok(entry) if {
	is_array(entry.plugins)
	is_string(entry.issuer)
	is_string(entry.identity)
}

config_problems contains "scan.max_severity must be one of scan.severities" if {
	not _max_severity_ranked
}

_max_severity_ranked if is_number(max_severity_rank)

config_problems contains "sandbox.user must be a non-root uid:gid such as 65534:65534" if {
	not _sandbox_user_ok
}

_sandbox_user_ok if {
	is_string(cfg.sandbox.user)
	regex.match(`^[0-9]{1,10}:[0-9]{1,10}$`, cfg.sandbox.user)
	not regex.match(`^0+:`, cfg.sandbox.user)
}

config_problems contains "sandbox.memory must look like 256m, 512k or 1g" if {
	not _sandbox_memory_ok
}

_sandbox_memory_ok if {
	is_string(cfg.sandbox.memory)
	regex.match(`^[1-9][0-9]{0,9}[kmg]$`, cfg.sandbox.memory)
}

config_problems contains "sandbox.cpus must be a positive number" if not _positive(conf(["sandbox", "cpus"]))

config_problems contains "sandbox.pids_limit must be a positive whole number" if {
	not _positive_whole(conf(["sandbox", "pids_limit"]))
}

_positive(x) if {
	is_number(x)
	x > 0
}

_positive_whole(x) if {
	_positive(x)
	round(x) == x
}

# Blocks whenever the quick check fails, even if no detailed problem could be named.
blockers contains blocker("CONFIG_INVALID", _config_invalid_message, ["config"], false) if not config_ok

_config_invalid_message := sprintf("the policy data is invalid: %s", [concat("; ", sort(config_problems))]) if {
	count(config_problems) > 0
} else := "the policy data is invalid"
