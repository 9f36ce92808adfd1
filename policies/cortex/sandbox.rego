# The sandbox a plugin runs in (spec: derived from the manifest's `trust` section and the tier).
#
# - No network unless the manifest declares it AND the tier is granted it; the same for the host
#   filesystem (data.cortex_config.sandbox.network_tiers / filesystem_tiers).
# - Always a read-only root filesystem, all capabilities dropped, no new privileges, a non-root
#   user and memory, CPU and process limits from data. These hardening settings are not data:
#   changing them means overriding this module.
# - `trust.sandbox: false` turns the sandbox off only if data allows it (allow_unsandboxed);
#   otherwise the plugin is blocked (SANDBOX_REQUIRED) and the sandbox stays on.
# - A declared permission the tier does not grant blocks (overridable): an override installs the
#   plugin WITHOUT that permission. Overriding a block never loosens the sandbox. At publish it
#   is a note instead: every publish queues the registry's own scan, so a version's tier (and the
#   permissions it grants) is only known after the publish; install and run enforce it.
#
# The sandbox is part of every decision, blocks included.
package cortex

import rego.v1

network_granted if tier in cfg.sandbox.network_tiers

filesystem_granted if tier in cfg.sandbox.filesystem_tiers

unsandboxed_allowed if cfg.sandbox.allow_unsandboxed == true

default sandbox_enabled := true

sandbox_enabled := false if {
	declares_no_sandbox
	unsandboxed_allowed
}

default sandbox_network := false

sandbox_network if {
	declares_network
	network_granted
}

default sandbox_filesystem := false

sandbox_filesystem if {
	declares_filesystem
	filesystem_granted
}

sandbox := {
	"enabled": sandbox_enabled,
	"network": sandbox_network,
	"filesystem": sandbox_filesystem,
	"read_only_root": true,
	"cap_drop": ["ALL"],
	"no_new_privileges": true,
	"user": _sandbox_user,
	"memory": _sandbox_memory,
	"cpus": _sandbox_cpus,
	"pids_limit": _sandbox_pids_limit,
}

# Limits come from data. When a value there is invalid the decision blocks (CONFIG_INVALID, not
# overridable) and nothing runs; the fallbacks below only keep the document well-formed (and
# never root) so that the operator sees CONFIG_INVALID rather than an engine failure.
_sandbox_user := _static._sandbox_user if _static._sandbox_user else := cfg.sandbox.user if _sandbox_user_ok else := "65534:65534"

_sandbox_memory := _static._sandbox_memory if _static._sandbox_memory else := cfg.sandbox.memory if _sandbox_memory_ok else := "64m"

_sandbox_cpus := _static._sandbox_cpus if _static._sandbox_cpus else := cfg.sandbox.cpus if _positive(cfg.sandbox.cpus) else := 0.1

_sandbox_pids_limit := _static._sandbox_pids_limit if _static._sandbox_pids_limit else := cfg.sandbox.pids_limit if _positive_whole(cfg.sandbox.pids_limit) else := 16

blockers contains blocker(
	"SANDBOX_REQUIRED",
	"the manifest sets trust.sandbox: false, and running outside the sandbox is not allowed",
	["manifest.trust.sandbox"],
	true,
) if {
	declares_no_sandbox
	not unsandboxed_allowed
}

# Ungranted declared permissions: blockers, except at publish (notes; see the top of this file).
_ungranted contains blocker(
	"NETWORK_NOT_GRANTED",
	sprintf("the manifest declares network access, which is not granted at tier %s", [tier]),
	["manifest.trust.network", "tier"],
	true,
) if {
	declares_network
	not network_granted
}

_ungranted contains blocker(
	"FILESYSTEM_NOT_GRANTED",
	sprintf("the manifest declares host filesystem access, which is not granted at tier %s", [tier]),
	["manifest.trust.filesystem", "tier"],
	true,
) if {
	declares_filesystem
	not filesystem_granted
}

blockers contains b if {
	operation != "publish"
	some b in _ungranted
}

notes contains {"code": b.code, "message": b.message, "evidence": b.evidence} if {
	operation == "publish"
	some b in _ungranted
}
