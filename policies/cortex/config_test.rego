# Broken policy data blocks every plugin (CONFIG_INVALID, not overridable) instead of turning a
# check off.
package cortex.config_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

config_blocked(config) if {
	d := fx.decide_with(fx.verified, config)
	d.action == "block"
	d.overridable == false
	"CONFIG_INVALID" in fx.codes(d)
}

test_default_data_is_valid if {
	problems := data.cortex.config_problems with data.cortex_config as fx.default_config
	count(problems) == 0
}

# Each key removed in turn blocks.
test_every_required_key_is_checked if {
	every path in [
		"/verified/min_days_in_production", "/verified/min_active_days", "/verified/min_organizations",
		"/verified/reviewers", "/scan/severities",
		"/scan/max_severity", "/scan/required_scanners", "/scan/require_bound", "/scan/allow_secrets",
		"/scan/cve_allowlist", "/scan/accepted_origins", "/tests/min_executed", "/revocation/max_age_hours",
		"/revocation/operations_requiring_fresh", "/compatibility/enforce_min_cortex_version",
		"/sandbox/allow_unsandboxed", "/sandbox/network_tiers", "/sandbox/filesystem_tiers",
		"/sandbox/user", "/sandbox/memory", "/sandbox/cpus", "/sandbox/pids_limit",
		"/trusted_signers", "/actions/untrusted",
	] {
		config_blocked(json.patch(fx.default_config, [{"op": "remove", "path": path}]))
	}
}

test_wrong_types_block if {
	every patch in [
		{"op": "replace", "path": "/verified/min_days_in_production", "value": "30"},
		{"op": "replace", "path": "/verified/min_active_days", "value": "20"},
		{"op": "replace", "path": "/verified/min_organizations", "value": null},
		{"op": "replace", "path": "/scan/require_bound", "value": "yes"},
		{"op": "replace", "path": "/scan/max_severity", "value": "SEVERE"},
		{"op": "replace", "path": "/sandbox/user", "value": "0:0"},
		{"op": "replace", "path": "/sandbox/user", "value": "root"},
		{"op": "replace", "path": "/sandbox/memory", "value": "lots"},
		{"op": "replace", "path": "/sandbox/cpus", "value": 0},
		{"op": "replace", "path": "/sandbox/pids_limit", "value": 1.5},
		{"op": "replace", "path": "/trusted_signers", "value": "cortex"},
		{"op": "add", "path": "/trusted_signers/broken", "value": {"plugins": ["x/*"], "issuer": "i"}},
		{"op": "add", "path": "/denied_plugins", "value": ["x/*"]},
		{"op": "replace", "path": "/scan/accepted_origins", "value": ["registry"]},
		{"op": "replace", "path": "/scan/accepted_origins/install", "value": "registry"},
		{"op": "replace", "path": "/trusted_scan_attesters", "value": ["x"]},
		{"op": "add", "path": "/trusted_scan_attesters/broken", "value": {"plugins": ["x/*"], "issuer": "i"}},
	] {
		config_blocked(json.patch(fx.default_config, [patch]))
	}
}

test_missing_config_blocks if {
	config_blocked({})
	d := fx.decide_with(fx.verified, {})
	contains([r | some r in d.reasons; r.code == "CONFIG_INVALID"][0].message, "sandbox.user")
}

# A null trusted_signers entry (how a data file removes a default) is not a problem.
test_null_signer_entry_is_fine if {
	cfg := json.patch(fx.default_config, [{"op": "replace", "path": "/trusted_signers/cortex-release", "value": null}])
	problems := data.cortex.config_problems with data.cortex_config as cfg
	count(problems) == 0
}

test_list_of_signers_is_fine if {
	cfg := fx.config_with("/trusted_signers", [{"plugins": ["a/*"], "issuer": "i", "identity": "x"}])
	problems := data.cortex.config_problems with data.cortex_config as cfg
	count(problems) == 0
}

# trusted_scan_attesters is optional (absent: no attester is trusted); its entries are checked
# like trusted_signers entries, and a null entry removes one.
test_scan_attesters_optional if {
	cfg := json.patch(fx.ungoverned_config, [{"op": "remove", "path": "/trusted_scan_attesters"}])
	problems := data.cortex.config_problems with data.cortex_config as cfg
	count(problems) == 0
	fx.decide_with(fx.community, cfg).tier == "community"
	nulled := fx.config_with("/trusted_scan_attesters", {"gone": null})
	nulled_problems := data.cortex.config_problems with data.cortex_config as nulled
	count(nulled_problems) == 0
}

test_scan_config_problems_are_named if {
	bad := fx.config_patched([
		{"op": "replace", "path": "/scan/accepted_origins/install", "value": "registry"},
		{"op": "add", "path": "/trusted_scan_attesters/broken", "value": {"issuer": "i"}},
	])
	problems := data.cortex.config_problems with data.cortex_config as bad
	"scan.accepted_origins.install must be a list of origins" in problems
	"trusted_scan_attesters entry broken needs plugins (a list), issuer and identity (strings)" in problems
}
