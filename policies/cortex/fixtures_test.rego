# Inputs shared by the policy tests (no tests here). Each is a complete input document as
# cortex_trust.policy_input.PolicyInput.to_json() writes it, one tier per fixture, so a test
# changes exactly one fact and asserts on tier, action and reason codes.
package cortex.fixtures_test

import rego.v1

now := "2026-11-25T22:00:00Z"

digest := "sha256:5e2bf57d3f40c4b6df69daf1936cb766f832374b4fc0259a7cbff06e2f70f269"

other_digest := "sha256:0000000000000000000000000000000000000000000000000000000000000000"

trusted_identity := "https://github.com/cortex-platform/weather/.github/workflows/release.yml@refs/tags/v1.2.0"

github_issuer := "https://token.actions.githubusercontent.com"

manifest_document := {
	"name": "weather",
	"version": "1.2.0",
	"description": "Weather forecasts for CORTEX",
	"author": "Cortex Platform <platform@cortex.dev>",
	"license": "Apache-2.0",
	"runtime": {"type": "docker", "image": "registry.cortexpersist.com/cortex/weather:1.2.0"},
	"capabilities": [{"name": "forecast", "endpoint": "/forecast", "method": "GET"}],
	"trust": {"min_cortex_version": "0.1.0", "sandbox": true, "network": false, "filesystem": false},
}

# Every requirement of every tier met: Verified, at install time, revocation data fresh.
verified := {
	"schema_version": "cortex.input/v1",
	"manifest": {"valid": true, "problems": [], "document": manifest_document},
	"plugin": {"namespace": "cortex", "name": "weather", "version": "1.2.0", "full_name": "cortex/weather", "publisher": "cortex"},
	"artifact": {"image": sprintf("registry.cortexpersist.com/cortex/weather@%s", [digest]), "digest": digest, "pinned": true},
	"evidence": {
		"signature": {
			"present": true, "verified": true, "kind": "message_signature",
			"identity": trusted_identity, "issuer": github_issuer,
			"github": {"repository": "cortex-platform/weather", "workflow_ref": "cortex-platform/weather/.github/workflows/release.yml@refs/tags/v1.2.0", "sha": "d8b4a6445f38c48b9137a8099706d9b8073146e4", "trigger": "push"},
			"subject_digest": digest, "integrated_time": "2026-09-01T10:00:00Z",
			"trusted_root": "sigstore-production", "error": null, "source": "weather.sigstore.json",
		},
		"scan": {
			"present": true, "bound": true, "digest": digest, "produced_by": "trivy", "origin": "registry",
			"scanners": ["vuln", "secret"], "trivy_version": "0.76.0",
			"db_updated_at": "2026-11-25T06:00:00Z", "created_at": "2026-11-25T21:30:00Z",
			"counts": {"LOW": 1, "MEDIUM": 1},
			"vulnerabilities": [
				{"id": "CVE-2026-1001", "severity": "LOW", "package": "zlib", "installed_version": "1.3", "fixed_version": ""},
				{"id": "CVE-2026-1002", "severity": "MEDIUM", "package": "openssl", "installed_version": "3.0.1", "fixed_version": "3.0.2"},
			],
			"secrets": 0, "misconfigurations": 0, "error": null, "source": "trivy.json",
		},
		"tests": {"present": true, "total": 12, "failures": 0, "errors": 0, "skipped": 2, "digest": digest, "source": "junit.xml"},
		"review": {"present": true, "reviews": [review_record("cortex-core/ada", "approved")], "digest": digest, "source": "review.json"},
		"usage": {
			"present": true, "first_production_use": "2026-10-01T00:00:00Z", "last_production_use": "2026-11-25T06:00:00Z",
			"days_in_production": 55, "active_days": 55, "installations": 1200, "organizations": 3,
			"reporters": [
				reporter("cortex", 200, 55, 55, "2026-10-01T00:00:00Z"),
				reporter("initech", 600, 50, 52, "2026-10-04T09:00:00Z"),
				reporter("globex", 400, 31, 40, "2026-10-16T15:00:00Z"),
			],
			"digest": digest, "source": "usage.json",
		},
		"revocation": {"checked": true, "revoked": false, "reason": null, "revoked_at": null, "fresh_as_of": "2026-11-25T21:00:00Z", "source": "registry"},
		"dropped": [],
	},
	"context": {"now": now, "cortex_version": "0.1.0", "operation": "install", "registry": "https://registry.cortexpersist.com"},
}

# One reviewer's review record (evidence.review.reviews[]).
review_record(reviewer, verdict) := {"reviewer": reviewer, "verdict": verdict, "at": "2026-10-01T12:00:00Z", "source": "review.json"}

# One organization's usage report summary (evidence.usage.reporters[]), reporting until today.
reporter(org, installations, active_days, days, first) := {
	"organization": org, "installations": installations, "active_days": active_days,
	"days_in_production": days, "first": first, "last": "2026-11-25T06:00:00Z",
}

# Verified minus the Verified-only evidence.
community := without(without(without(verified, "review"), "signature"), "usage")

# Community minus the Community-only evidence.
experimental := without(without(community, "scan"), "tests")

# An invalid manifest: Python sends document null and the problems.
untrusted := json.patch(experimental, [{"op": "replace", "path": "/manifest", "value": {
	"valid": false,
	"problems": ["manifest.yaml:3:10: version: '1.10' was read as the number 1.1; quote it"],
	"document": null,
}}])

# The smallest documents the schema allows (every optional field left out).
minimal_invalid := {
	"manifest": {"valid": false},
	"context": {"now": now, "cortex_version": "0.1.0", "operation": "verify"},
}

minimal_valid := {
	"manifest": {"valid": true, "problems": [], "document": manifest_document},
	"context": {"now": now, "cortex_version": "0.1.0", "operation": "verify"},
}

# --- helpers -------------------------------------------------------------------------------------

# inp with evidence piece `kind` absent (as the collectors write "nothing supplied").
without(inp, kind) := json.patch(inp, [{"op": "replace", "path": concat("/", ["", "evidence", kind]), "value": {"present": false}}])

# inp with the fields of `patch` (a nested object) merged over it.
with_(inp, patch) := object.union(inp, patch)

# inp with evidence piece `kind` merged with `fields`.
with_evidence(inp, kind, fields) := object.union(inp, {"evidence": {kind: fields}})

# inp with manifest trust settings merged with `fields`.
with_trust(inp, fields) := object.union(inp, {"manifest": {"document": {"trust": fields}}})

# inp at another operation.
at(inp, op) := object.union(inp, {"context": {"operation": op}})

# The decision's reason codes (a set) and in order (an array).
codes(d) := {r.code | some r in d.reasons}

code_list(d) := [r.code | some r in d.reasons]

# The reason codes missing for the next tier.
missing_codes(d) := {r.code | some r in d.next_tier.missing}

# The shipped data (policies/data.yaml, cortex_config), pinned: the default tests check the
# default policy even when `cortex policy test ORG_DIR` loads an organization's data and modules
# on top. tests/policy/test_default_policies.py checks that this copy equals policies/data.yaml.
default_config := {
		"signer_trusted_roots": ["sigstore-production"],
		"github_signers": {
			"issuer": "https://token.actions.githubusercontent.com",
			"workflow": ".github/workflows/release.yml@refs/tags/*"
		},
		"trusted_scan_attesters": {},
		"evidence_sources": {"*": {"signature": true, "scan": true, "tests": true, "review": true, "usage": true, "promotion": true}},
		"governance": {
			"core_namespaces": ["cortex"],
			"community_reviewers": [],
			"core_reviewers": [],
			"promotion": {"operations": ["publish", "install", "run"], "exempt_plugins": []},
			"disputes": {"warn_labels": ["security"]},
		},
		"actions": {
			"verified": "allow",
			"community": "notice",
			"experimental": "warn",
			"untrusted": "block"
		},
		"verified": {
			"min_days_in_production": 30,
			"min_active_days": 20,
			"min_organizations": 2,
			"reviewers": [
				"cortex-core/ada",
				"cortex-core/grace",
				"cortex-core/linus"
			]
		},
		"trusted_signers": {
			"cortex-release": {
				"plugins": [
					"cortex/*"
				],
				"issuer": "https://token.actions.githubusercontent.com",
				"identity": "https://github.com/cortex-platform/*/.github/workflows/release.yml@refs/tags/*"
			}
		},
		"scan": {
			"max_severity": "MEDIUM",
			"severities": [
				"UNKNOWN",
				"LOW",
				"MEDIUM",
				"HIGH",
				"CRITICAL"
			],
			"required_scanners": [
				"vuln",
				"secret"
			],
			"require_bound": true,
			"accepted_origins": {
				"verify": ["pipeline", "registry", "attested"],
				"publish": ["registry", "attested"],
				"install": ["registry", "attested"],
				"run": ["registry", "attested"]
			},
			"allow_secrets": false,
			"cve_allowlist": {}
		},
		"freshness": {"scan": {"max_age_days": {"community": 7, "verified": 7}, "max_db_age_days": null}},
		"tests": {
			"min_executed": 1
		},
		"denied_plugins": {},
		"deprecated_plugins": {},
		"revocation": {
			"max_age_hours": 24,
			"operations_requiring_fresh": [
				"install",
				"run"
			]
		},
		"transparency": {"require_inclusion": false},
		"compatibility": {
			"enforce_min_cortex_version": [
				"install",
				"run"
			]
		},
		"sandbox": {
			"user": "65534:65534",
			"memory": "256m",
			"cpus": 0.5,
			"pids_limit": 64,
			"allow_unsandboxed": false,
			"network_tiers": [
				"verified",
				"community"
			],
			"filesystem_tiers": [
				"verified",
				"community"
			]
		}
	}

# The decision for inp under the shipped data with the governance review switched off
# (governance.promotion.operations: []), without organization deny/warn entries: the tests of the
# evidence checks use it. governance_test.rego checks governance on the shipped data as it is
# (decide_shipped).
decide(inp) := decide_with(inp, ungoverned_config)

# The decision for inp under the shipped data exactly.
decide_shipped(inp) := decide_with(inp, default_config)

# The shipped data with the promotion / core-review requirement off.
ungoverned_config := json.patch(default_config, [{"op": "replace", "path": "/governance/promotion/operations", "value": []}])

# The decision for inp under `config` (e.g. config_with(...)).
decide_with(inp, config) := decide_ext(inp, config, set(), set())

# The decision with the deny and warn extension points replaced by the given sets.
decide_ext(inp, config, deny, warn) := d if {
	d := data.cortex.decision with input as inp with data.cortex_config as config with data.cortex.deny as deny with data.cortex.warn as warn
}

# The shipped data (governance review off, as for decide) with the value at `path` (a JSON pointer
# such as "/scan/cve_allowlist") set.
# Tests replace the whole data.cortex_config: OPA merges `with data.cortex_config.some.object as
# {...}` into the existing object for rules that read it indirectly where regorus replaces it;
# replacing the whole document behaves the same in both engines.
config_with(path, value) := json.patch(ungoverned_config, [{"op": "add", "path": path, "value": value}])

# The shipped data with several JSON-patch operations applied.
config_patched(ops) := json.patch(ungoverned_config, ops)

# The shipped data exactly, with JSON-patch operations applied (governance on).
config_patched_shipped(ops) := json.patch(default_config, ops)
