# Sandbox derivation: permissions = declared AND granted for the tier; hardening always on;
# trust.sandbox: false blocked unless data allows it; the sandbox is present on every decision.
package cortex.sandbox_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

hardened(s) if {
	s.read_only_root == true
	s.cap_drop == ["ALL"]
	s.no_new_privileges == true
	s.user == "65534:65534"
	s.memory == "256m"
	s.cpus == 0.5
	s.pids_limit == 64
}

test_default_sandbox if {
	s := decide(fx.verified).sandbox
	s.enabled == true
	s.network == false
	s.filesystem == false
	hardened(s)
}

# The sandbox is part of every decision, blocks and minimal inputs included.
test_sandbox_always_present if {
	every inp in [fx.verified, fx.community, fx.experimental, fx.untrusted, fx.minimal_invalid, fx.minimal_valid] {
		s := decide(inp).sandbox
		s.enabled == true
		hardened(s)
	}
}

# The table: declared x tier -> granted, and the action.
test_network_granted_at_verified_and_community if {
	every base in [fx.verified, fx.community] {
		d := decide(fx.with_trust(base, {"network": true}))
		d.sandbox.network == true
		not "NETWORK_NOT_GRANTED" in fx.codes(d)
		d.action != "block"
	}
}

test_network_not_granted_at_experimental if {
	d := decide(fx.with_trust(fx.experimental, {"network": true}))
	d.tier == "experimental"
	d.sandbox.network == false
	d.action == "block"
	d.overridable == true
	"NETWORK_NOT_GRANTED" in fx.codes(d)
}

# A version is published before the registry scans it: at publish an ungranted permission is a
# note (the version can be stored and scanned), never a grant.
test_ungranted_permissions_do_not_block_a_publish if {
	inp := fx.at(fx.with_trust(fx.experimental, {"network": true, "filesystem": true}), "publish")
	d := decide(inp)
	d.tier == "experimental"
	d.action == "warn"
	d.sandbox.network == false
	d.sandbox.filesystem == false
	{"NETWORK_NOT_GRANTED", "FILESYSTEM_NOT_GRANTED"} & fx.codes(d) == {"NETWORK_NOT_GRANTED", "FILESYSTEM_NOT_GRANTED"}
	every op in ["verify", "install", "run"] {
		decide(fx.at(inp, op)).action == "block"
	}
}

test_filesystem_granted_at_community if {
	d := decide(fx.with_trust(fx.community, {"filesystem": true}))
	d.sandbox.filesystem == true
	d.action == "notice"
}

test_filesystem_not_granted_at_experimental if {
	d := decide(fx.with_trust(fx.experimental, {"filesystem": true}))
	d.sandbox.filesystem == false
	d.action == "block"
	d.overridable == true
	fx.codes(d) == {
		"TIER_EXPERIMENTAL", "FILESYSTEM_NOT_GRANTED", "SCAN_MISSING", "TESTS_MISSING",
		"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING",
	}
}

test_undeclared_permissions_never_granted if {
	every base in [fx.verified, fx.community, fx.experimental] {
		s := decide(fx.with_trust(base, {"network": false, "filesystem": false})).sandbox
		s.network == false
		s.filesystem == false
	}
}

# An invalid manifest declares nothing, whatever its (absent) document says.
test_invalid_manifest_declares_nothing if {
	inp := json.patch(fx.with_trust(fx.verified, {"network": true, "filesystem": true}), [{"op": "replace", "path": "/manifest/valid", "value": false}])
	d := decide(inp)
	d.sandbox.network == false
	d.sandbox.filesystem == false
	not "NETWORK_NOT_GRANTED" in fx.codes(d)
}

# Only an explicit true declares; "yes" or 1 does not.
test_only_true_declares if {
	s := decide(fx.with_trust(fx.verified, {"network": "yes", "filesystem": 1})).sandbox
	s.network == false
	s.filesystem == false
}

test_granted_tiers_are_data if {
	inp := fx.with_trust(fx.community, {"network": true})
	d := fx.decide_with(inp, fx.config_with("/sandbox/network_tiers", ["verified"]))
	d.sandbox.network == false
	d.action == "block"
	"NETWORK_NOT_GRANTED" in fx.codes(d)
}

# --- trust.sandbox: false ----------------------------------------------------------------------

test_unsandboxed_blocked_by_default if {
	d := decide(fx.with_trust(fx.verified, {"sandbox": false}))
	d.tier == "verified"
	d.action == "block"
	d.overridable == true
	d.sandbox.enabled == true
	fx.codes(d) == {"TIER_VERIFIED", "SANDBOX_REQUIRED"}
}

test_unsandboxed_allowed_by_data if {
	d := fx.decide_with(fx.with_trust(fx.verified, {"sandbox": false}), fx.config_with("/sandbox/allow_unsandboxed", true))
	d.action == "allow"
	d.sandbox.enabled == false
	fx.code_list(d) == ["TIER_VERIFIED"]
}

# A missing trust.sandbox means the default: sandboxed.
test_missing_sandbox_setting_means_sandboxed if {
	inp := json.patch(fx.verified, [{"op": "remove", "path": "/manifest/document/trust"}])
	d := fx.decide_with(inp, fx.config_with("/sandbox/allow_unsandboxed", true))
	d.sandbox.enabled == true
	d.action == "allow"
}

test_limits_are_data if {
	s := fx.decide_with(fx.verified, fx.config_with("/sandbox", {
		"user": "1000:1000", "memory": "1g", "cpus": 2, "pids_limit": 256,
		"allow_unsandboxed": false, "network_tiers": [], "filesystem_tiers": [],
	})).sandbox
	s.user == "1000:1000"
	s.memory == "1g"
	s.cpus == 2
	s.pids_limit == 256
	s.read_only_root == true
}
