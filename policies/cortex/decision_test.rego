# The decision document: defined for every input that matches the schema (minimal ones too),
# exactly the keys Python accepts, reasons sorted and well-formed, notes for dropped evidence.
package cortex.decision_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

keys := {"tier", "action", "reasons", "sandbox", "next_tier", "overridable", "allowlisted_vulnerabilities"}

sandbox_keys := {
	"enabled", "network", "filesystem", "read_only_root", "cap_drop", "no_new_privileges",
	"user", "memory", "cpus", "pids_limit",
}

well_formed(d) if {
	object.keys(d) == keys
	d.tier in data.cortex.tiers
	d.action in data.cortex.actions
	is_boolean(d.overridable)
	count(d.reasons) >= 1
	every r in d.reasons {
		object.keys(r) == {"code", "message", "evidence"}
		regex.match(`^[A-Z][A-Z0-9_]{1,63}$`, r.code)
		not r.code in data.cortex.reserved_codes
		count(r.message) >= 1
		count(r.message) <= 2000
		every e in r.evidence {
			is_string(e)
		}
	}
	object.keys(d.sandbox) == sandbox_keys
	is_array(d.allowlisted_vulnerabilities)
	every id in d.allowlisted_vulnerabilities {
		is_string(id)
	}
}

minimal_inputs := [
	fx.minimal_invalid,
	fx.minimal_valid,
	{"manifest": {"valid": true}, "context": {"now": fx.now, "cortex_version": "0.1.0", "operation": "install"}},
	{"manifest": {"valid": false, "problems": [], "document": null}, "plugin": {}, "artifact": {}, "evidence": {}, "context": {"now": fx.now, "cortex_version": "0.1.0", "operation": "run"}},
	{"manifest": {"valid": true, "document": {"trust": null}}, "evidence": {"scan": {}, "tests": {}, "dropped": []}, "context": {"now": fx.now, "cortex_version": "0.1.0", "operation": "publish"}},
]

# Defined and well-formed for the smallest inputs, at every operation.
test_minimal_inputs_defined if {
	every inp in minimal_inputs {
		well_formed(decide(inp))
	}
}

test_minimal_invalid_decision if {
	d := decide(fx.minimal_invalid)
	d.tier == "untrusted"
	d.action == "block"
	d.overridable == true
	fx.codes(d) == {"TIER_UNTRUSTED", "MANIFEST_INVALID", "SCAN_MISSING", "TESTS_MISSING", "REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
	reason(d, "MANIFEST_INVALID").message == "the manifest is invalid"
}

test_minimal_valid_decision if {
	d := decide(fx.minimal_valid)
	d.tier == "experimental"
	d.action == "warn"
	reason(d, "SCAN_MISSING").message == "no usable scan of the image"
}

# Install with no revocation piece at all: still defined, and blocked.
test_minimal_install_blocks_on_revocation if {
	d := decide(minimal_inputs[2])
	well_formed(d)
	d.action == "block"
	"REVOCATION_UNKNOWN" in fx.codes(d)
}

test_fixtures_well_formed if {
	every inp in [fx.verified, fx.community, fx.experimental, fx.untrusted] {
		well_formed(decide(inp))
	}
}

# Hostile but schema-shaped values never make the decision undefined.
test_odd_values_still_decide if {
	every inp in [
		fx.with_(fx.verified, {"plugin": {"full_name": null}, "artifact": {"digest": null}}),
		fx.with_evidence(fx.verified, "scan", {"counts": {"HIGH": "many"}, "vulnerabilities": ["CVE-1"], "scanners": "vuln"}),
		fx.with_evidence(fx.verified, "tests", {"total": "12"}),
		fx.with_(fx.verified, {"manifest": {"problems": "not a list"}}),
		fx.with_(fx.verified, {"evidence": {"dropped": [{"kind": "scan"}, "junk"]}}),
		fx.with_(fx.verified, {"context": {"operation": null, "now": null}}),
	] {
		well_formed(decide(inp))
	}
}

# Reasons: the tier reason first, then sorted by code and message.
test_reasons_sorted if {
	d := decide(fx.untrusted)
	rest := array.slice(d.reasons, 1, count(d.reasons))
	keys_in_order := [concat("\n", [r.code, r.message]) | some r in rest]
	keys_in_order == sort(keys_in_order)
}

# The same input gives the same document.
test_deterministic if {
	decide(fx.experimental) == decide(json.unmarshal(json.marshal(fx.experimental)))
}

# --- notes -------------------------------------------------------------------------------------------

test_dropped_evidence_is_explained if {
	dropped := [{"kind": "scan", "code": "DIGEST_MISMATCH", "message": sprintf("the report is about %s", [fx.other_digest])}]
	d := decide(fx.with_(fx.without(fx.community, "scan"), {"evidence": {"dropped": dropped}}))
	d.tier == "experimental"
	fx.codes(d) == {"TIER_EXPERIMENTAL", "SCAN_MISSING", "EVIDENCE_DROPPED", "REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
	reason(d, "EVIDENCE_DROPPED") == {
		"code": "EVIDENCE_DROPPED",
		"message": sprintf("scan evidence was not used (DIGEST_MISMATCH): the report is about %s", [fx.other_digest]),
		"evidence": ["scan"],
	}
}

# Notes explain but do not decide.
test_notes_do_not_change_the_action if {
	dropped := [{"kind": "review", "code": "PLUGIN_MISMATCH", "message": "about another plugin"}]
	d := decide(fx.with_(fx.verified, {"evidence": {"dropped": dropped}}))
	d.action == "allow"
	d.tier == "verified"
}

# Long evidence strings are cut so messages stay within bounds.
test_long_strings_are_cut if {
	long := concat("", [x | some _ in numbers.range(1, 3000); x := "a"])
	d := decide(fx.with_evidence(fx.verified, "signature", {"verified": false, "error": long}))
	well_formed(d)
	count(reason(d, "SIGNATURE_INVALID").message) < 300
}

# Values regorus and OPA would treat differently are normalised first (see facts.rego).
test_negative_and_huge_numbers if {
	neg := fx.decide(fx.with_evidence(fx.verified, "usage", {"days_in_production": -1}))
	reason(neg, "USAGE_INSUFFICIENT").message == "-1 day(s) in production; verified needs 30"
	huge := fx.decide(fx.with_evidence(fx.community, "tests", {"total": 18446744073709551617, "skipped": 0}))
	huge.tier == "community"
	contains(huge.reasons[0].message, "9007199254740992 test(s) passed")
	secrets := fx.decide(fx.with_evidence(fx.community, "scan", {"secrets": 18446744073709551617}))
	reason(secrets, "SCAN_SECRETS").message == "the scan found 9007199254740992 secret(s) in the image"
	low := fx.decide(fx.with_evidence(fx.verified, "usage", {"days_in_production": -18446744073709551617}))
	reason(low, "USAGE_INSUFFICIENT").message == "-9007199254740992 day(s) in production; verified needs 30"
}

test_nul_in_names_is_an_ordinary_character if {
	d := fx.decide(fx.with_(fx.verified, {"plugin": {"full_name": "cortex\u0000/x"}}))
	well_formed(d)
	"SIGNER_UNTRUSTED" in fx.codes(d)
	data.cortex.matches("*/x", "cortex\u0000/x")
}
