# The action map (spec: verified -> allow, community -> notice, experimental -> warn,
# untrusted -> block), its overrides, escalations, the deny/warn extension points and
# overridable.
package cortex.action_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

# --- the map -------------------------------------------------------------------------------------

test_action_map if {
	decide(fx.verified).action == "allow"
	decide(fx.community).action == "notice"
	decide(fx.experimental).action == "warn"
	decide(fx.untrusted).action == "block"
}

test_only_block_is_overridable if {
	decide(fx.verified).overridable == false
	decide(fx.community).overridable == false
	decide(fx.experimental).overridable == false
	decide(fx.untrusted).overridable == true
}

# An organization maps experimental to block: blocked, but the user may override.
test_action_map_override if {
	d := fx.decide_with(fx.experimental, fx.config_with("/actions/experimental", "block"))
	d.action == "block"
	d.overridable == true
	fx.codes(d) == {"TIER_EXPERIMENTAL", "SCAN_MISSING", "TESTS_MISSING", "REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
}

test_action_map_can_relax_community if {
	fx.decide_with(fx.community, fx.config_with("/actions/community", "allow")).action == "allow"
}

# An invalid manifest blocks even if the map says otherwise.
test_invalid_manifest_blocks_whatever_the_map_says if {
	d := fx.decide_with(fx.untrusted, fx.config_with("/actions/untrusted", "warn"))
	d.action == "block"
	d.overridable == true
	count([r | some r in d.reasons; r.code == "MANIFEST_INVALID"]) == 1
}

# A value that is not an action blocks, not overridable (CONFIG_INVALID).
test_unknown_action_value_blocks if {
	d := fx.decide_with(fx.verified, fx.config_with("/actions/verified", "permit"))
	d.action == "block"
	d.overridable == false
	fx.codes(d) == {"TIER_VERIFIED", "CONFIG_INVALID"}
	contains(reason(d, "CONFIG_INVALID").message, "actions.verified")
}

# --- deny ------------------------------------------------------------------------------------------

test_deny_entry_blocks_not_overridable if {
	entry := {"code": "ORG_NO_FRIDAYS", "message": "no installs on Fridays", "evidence": ["context.now"]}
	d := fx.decide_ext(fx.verified, fx.default_config, {entry}, set())
	d.tier == "verified"
	d.action == "block"
	d.overridable == false
	fx.code_list(d) == ["TIER_VERIFIED", "ORG_NO_FRIDAYS"]
	d.reasons[1] == entry
}

test_deny_entries_come_out_sorted if {
	entries := {
		{"code": "ORG_B", "message": "b", "evidence": []},
		{"code": "ORG_A", "message": "a2", "evidence": []},
		{"code": "ORG_A", "message": "a1", "evidence": []},
	}
	d := fx.decide_ext(fx.verified, fx.default_config, entries, set())
	[r.message | some r in d.reasons] == [d.reasons[0].message, "a1", "a2", "b"]
}

# Deny entries of any shape become well-formed reasons.
test_deny_string_entry if {
	d := fx.decide_ext(fx.verified, fx.default_config, {"not today"}, set())
	reason(d, "POLICY_DENY") == {"code": "POLICY_DENY", "message": "not today", "evidence": ["policy"]}
	d.overridable == false
}

test_deny_entry_with_bad_code_or_evidence if {
	entries := {
		{"code": "lower case", "message": "m1", "evidence": ["a", 1]},
		{"code": "ENGINE_ERROR", "message": "m2", "evidence": "scan"},
		{"message": ""},
	}
	d := fx.decide_ext(fx.verified, fx.default_config, entries, set())
	d.action == "block"
	{r | some r in d.reasons; r.code == "POLICY_DENY"} == {
		{"code": "POLICY_DENY", "message": "m1", "evidence": ["a"]},
		{"code": "POLICY_DENY", "message": "m2", "evidence": ["policy"]},
		{"code": "POLICY_DENY", "message": "organization policy (no message given)", "evidence": ["policy"]},
	}
}

# denied_plugins in data feeds deny (organization entries, if any, are left aside).
test_denied_plugins_data if {
	cfg := fx.config_with("/denied_plugins", {"cortex/weath*": "leaks API keys"})
	entries := data.cortex.deny with input as fx.verified with data.cortex_config as cfg
	entry := {"code": "PLUGIN_DENIED", "message": "cortex/weather is denied: leaks API keys", "evidence": ["plugin"]}
	entry in entries
	d := fx.decide_ext(fx.verified, cfg, {entry}, set())
	d.action == "block"
	d.overridable == false
	other := data.cortex.deny with input as fx.verified with data.cortex_config as fx.config_with("/denied_plugins", {"acme/*": "no"})
	not "PLUGIN_DENIED" in {e.code | some e in other}
}

test_denied_plugins_without_reason if {
	cfg := fx.config_with("/denied_plugins", {"cortex/*": 7})
	entries := data.cortex.deny with input as fx.verified with data.cortex_config as cfg
	{"code": "PLUGIN_DENIED", "message": "cortex/weather is denied: no reason given", "evidence": ["plugin"]} in entries
}

# --- warn ------------------------------------------------------------------------------------------

test_warn_entry_raises_allow_to_warn if {
	d := fx.decide_ext(fx.verified, fx.default_config, set(), {{"code": "ORG_HEADS_UP", "message": "new owner", "evidence": ["plugin"]}})
	d.action == "warn"
	d.overridable == false
	"ORG_HEADS_UP" in fx.codes(d)
}

test_warn_entry_never_lowers_block if {
	d := fx.decide_ext(fx.untrusted, fx.default_config, set(), {"heads up"})
	d.action == "block"
	reason(d, "POLICY_WARN").message == "heads up"
}

test_deprecated_plugins_data if {
	cfg := fx.config_with("/deprecated_plugins", {"cortex/weather": "use cortex/forecast"})
	entries := data.cortex.warn with input as fx.verified with data.cortex_config as cfg
	entry := {"code": "PLUGIN_DEPRECATED", "message": "cortex/weather is deprecated: use cortex/forecast", "evidence": ["plugin"]}
	entry in entries
	fx.decide_ext(fx.verified, cfg, set(), {entry}).action == "warn"
}

# --- overridable mixes -------------------------------------------------------------------------------

test_overridable_blockers_stay_overridable if {
	inp := fx.with_trust(fx.experimental, {"network": true, "filesystem": true, "sandbox": false})
	d := decide(inp)
	d.action == "block"
	d.overridable == true
	({"NETWORK_NOT_GRANTED", "FILESYSTEM_NOT_GRANTED", "SANDBOX_REQUIRED"} & fx.codes(d)) == {"NETWORK_NOT_GRANTED", "FILESYSTEM_NOT_GRANTED", "SANDBOX_REQUIRED"}
}

test_one_hard_blocker_makes_block_final if {
	inp := fx.with_trust(fx.experimental, {"network": true})
	d := fx.decide_ext(inp, fx.default_config, {"no"}, set())
	d.action == "block"
	d.overridable == false
}

# --- min_cortex_version ------------------------------------------------------------------------------
# Compared with the CORTEX platform's version (context.cortex_version), never cortex-trust's own.

test_cortex_too_old_blocks_install if {
	d := decide(fx.with_trust(fx.verified, {"min_cortex_version": "0.2.0"}))
	d.action == "block"
	d.overridable == true
	fx.codes(d) == {"TIER_VERIFIED", "CORTEX_VERSION_UNSUPPORTED"}
	reason(d, "CORTEX_VERSION_UNSUPPORTED").message == "the plugin needs CORTEX 0.2.0 or later; this platform is CORTEX 0.1.0"
	reason(d, "CORTEX_VERSION_UNSUPPORTED").evidence == ["manifest.trust.min_cortex_version", "context.cortex_version"]
}

test_cortex_too_old_says_where_the_platform_version_came_from if {
	inp := fx.with_trust(fx.verified, {"min_cortex_version": "8.0.0"})
	messages := {source: reason(decide(fx.with_(inp, {"context": {"cortex_version": "7.2.0", "cortex_version_source": source}})), "CORTEX_VERSION_UNSUPPORTED").message |
		some source in ["config", "env", "registry", "elsewhere"]
	}
	messages == {
		"config": "the plugin needs CORTEX 8.0.0 or later; this platform is CORTEX 7.2.0 (set in the configuration)",
		"env": "the plugin needs CORTEX 8.0.0 or later; this platform is CORTEX 7.2.0 (set in the environment)",
		"registry": "the plugin needs CORTEX 8.0.0 or later; this platform is CORTEX 7.2.0 (the registry's setting)",
		"elsewhere": "the plugin needs CORTEX 8.0.0 or later; this platform is CORTEX 7.2.0",
	}
}

test_cortex_version_compared_on_core if {
	decide(fx.with_trust(fx.verified, {"min_cortex_version": "0.1"})).action == "allow"
	decide(fx.with_trust(fx.verified, {"min_cortex_version": "0.1.0-rc.1"})).action == "allow"
	decide(fx.with_trust(fx.verified, {"min_cortex_version": "0.10"})).action == "block"
	newer := fx.with_(fx.with_trust(fx.verified, {"min_cortex_version": "1.2.3"}), {"context": {"cortex_version": "1.10.0+build.7"}})
	decide(newer).action == "allow"
}

# The specification's short forms: "8.0" and "8" are 8.0.0.
_on(platform, needed) := decide(fx.with_(fx.with_trust(fx.verified, {"min_cortex_version": needed}), {"context": {"cortex_version": platform}})).action

test_short_minimums_read_as_the_first_release if {
	_on("8.0.0", "8.0") == "allow"
	_on("8.0.0", "8") == "allow"
	_on("7.9.9", "8") == "block"
	_on("8.1.0", "8.2") == "block"
	_on("8", "8.0.0") == "allow"
}

test_an_unparsable_minimum_is_not_compared if {
	decide(fx.with_trust(fx.verified, {"min_cortex_version": "latest"})).action == "allow"
}

# Unknown platform version: missing, null or not a version. The policy says so and the action is
# at least warn (the installer asks); never a silent allow, never a silent block.
test_an_unknown_platform_version_warns_and_says_so if {
	inp := fx.with_trust(fx.verified, {"min_cortex_version": "8.0.0"})
	unknown := [
		json.remove(inp, ["context/cortex_version"]),
		fx.with_(inp, {"context": {"cortex_version": null}}),
		fx.with_(inp, {"context": {"cortex_version": null, "cortex_version_source": "config"}}),
	]
	every u in unknown {
		d := decide(u)
		d.action == "warn"
		d.overridable == false
		fx.codes(d) == {"TIER_VERIFIED", "CORTEX_VERSION_UNKNOWN"}
		reason(d, "CORTEX_VERSION_UNKNOWN").message == "the CORTEX platform version is unknown, so the plugin's min_cortex_version 8.0.0 cannot be checked; set it with `cortex config set platform-version X.Y.Z` (or CORTEX_PLATFORM_VERSION)"
		reason(d, "CORTEX_VERSION_UNKNOWN").evidence == ["manifest.trust.min_cortex_version", "context.cortex_version"]
	}
}

test_an_unparsable_platform_version_is_unknown if {
	d := decide(fx.with_(fx.with_trust(fx.verified, {"min_cortex_version": "9.0.0"}), {"context": {"cortex_version": "dev"}}))
	d.action == "warn"
	reason(d, "CORTEX_VERSION_UNKNOWN").message == "the CORTEX platform version is 'dev', which is not a version, so the plugin's min_cortex_version 9.0.0 cannot be checked; set it with `cortex config set platform-version X.Y.Z` (or CORTEX_PLATFORM_VERSION)"
}

test_an_unknown_platform_version_never_lowers_the_action if {
	inp := fx.with_(fx.with_trust(fx.experimental, {"sandbox": false}), {"context": {"cortex_version": null}})
	d := decide(inp)
	d.action == "block"
	d.overridable == true
	{"SANDBOX_REQUIRED", "CORTEX_VERSION_UNKNOWN"} & fx.codes(d) == {"SANDBOX_REQUIRED", "CORTEX_VERSION_UNKNOWN"}
}

test_an_unknown_platform_version_is_only_reported_where_enforced if {
	inp := fx.with_(fx.verified, {"context": {"cortex_version": null}})
	decide(fx.at(inp, "verify")).action == "allow"
	decide(fx.at(inp, "publish")).action == "allow"
	decide(fx.at(inp, "run")).action == "warn"
	not "CORTEX_VERSION_UNKNOWN" in fx.codes(decide(fx.at(inp, "verify")))
	not "CORTEX_VERSION_UNKNOWN" in fx.codes(decide(fx.with_trust(inp, {"min_cortex_version": "latest"})))
}

test_cortex_version_not_enforced_at_verify if {
	decide(fx.at(fx.with_trust(fx.verified, {"min_cortex_version": "9.0.0"}), "verify")).action == "allow"
}
