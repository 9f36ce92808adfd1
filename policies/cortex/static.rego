# Values that depend on the policy data alone (data.cortex_config), never on the input.
#
# The embedded engine's compiled mode evaluates `static_values` once, when it loads the shipped
# policy set, and hands the result back as data.cortex_static; each rule listed below then reads
# its value from there instead of working it out again for every decision (about a quarter of
# a decision's evaluation). Everywhere else (the interpreter, organization policies, an OPA
# server, the Rego tests) data.cortex_static is absent and every rule computes its value as
# written. `data.cortex_static` is reserved: the policy loader refuses a data file or a module
# that defines it (cortex_trust/policy/_sets.py), so it only ever holds what the engine computed
# from these very rules. docs/policy-contract.md, "Precomputed values", lists the rules.
#
# Only rules that never read `input`, directly or through another rule, may be listed here:
# tests/engine/test_compiled_mode.py checks that on the syntax tree.
package cortex

import rego.v1

_static := data.cortex_static if is_object(data.cortex_static) else := {}

# Undefined (so nothing is precomputed) when one of them is: config_ok is undefined for invalid
# data, which never runs in compiled mode anyway.
static_values := {
	"config_ok": config_ok,
	"action_rank": action_rank,
	"_severities": _severities,
	"max_severity_rank": max_severity_rank,
	"_severities_within_max": _severities_within_max,
	"_max_severity_text": _max_severity_text,
	"_sandbox_user": _sandbox_user,
	"_sandbox_memory": _sandbox_memory,
	"_sandbox_cpus": _sandbox_cpus,
	"_sandbox_pids_limit": _sandbox_pids_limit,
	"_sources": _sources,
	"_any_source": _any_source,
	"_default_signer_roots": _default_signer_roots,
	"_github_signers": _github_signers,
	"_min_days_text": _min_days_text,
}
