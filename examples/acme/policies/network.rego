# acme rule 1: no network access for a plugin unless it is Verified.
#
# Loaded on top of the default policies (same package, `cortex`), it adds an entry to the
# `deny` extension point: the decision blocks, not overridable, with acme's own reason code.
# data.yaml also narrows sandbox.network_tiers to [verified], so the sandbox never grants
# network below Verified either.
package cortex

import rego.v1

deny contains {
	"code": "ACME_NETWORK_REQUIRES_VERIFIED",
	"message": sprintf("acme allows network access only for verified plugins; %s is %s", [_acme_plugin_text, tier]),
	"evidence": ["manifest.trust.network", "tier"],
} if {
	declares_network
	tier != "verified"
}

_acme_plugin_text := full_name if full_name != "" else := "this plugin"
