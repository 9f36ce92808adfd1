# acme rule 1 (network only for Verified), with the defaults and examples/acme/data.yaml loaded.
package cortex.acme_network_test

import data.cortex.acme_fixtures_test as acme
import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := d if {
	d := data.cortex.decision with input as inp
}

test_verified_plugin_may_use_the_network if {
	d := decide(acme.with_network(acme.verified))
	d.tier == "verified"
	d.action == "allow"
	d.sandbox.network == true
	fx.code_list(d) == ["TIER_VERIFIED"]
}

test_community_plugin_with_network_is_denied if {
	d := decide(acme.with_network(acme.community))
	d.tier == "community"
	d.action == "block"
	d.overridable == false
	d.sandbox.network == false
	fx.codes(d) == {"TIER_COMMUNITY", "ACME_NETWORK_REQUIRES_VERIFIED", "NETWORK_NOT_GRANTED", "REVIEW_MISSING", "USAGE_MISSING"}
	some r in d.reasons
	r.code == "ACME_NETWORK_REQUIRES_VERIFIED"
	r.message == "acme allows network access only for verified plugins; acme/net-tool is community"
}

test_experimental_plugin_with_network_is_denied if {
	d := decide(acme.with_network(acme.experimental))
	d.action == "block"
	d.overridable == false
	"ACME_NETWORK_REQUIRES_VERIFIED" in fx.codes(d)
}

# Any plugin, not only acme's: a community cortex plugin asking for network is denied too.
test_rule_applies_to_every_namespace if {
	d := decide(acme.with_network(fx.community))
	d.action == "block"
	"ACME_NETWORK_REQUIRES_VERIFIED" in fx.codes(d)
}

test_plugins_without_network_are_not_affected if {
	d := decide(acme.community)
	d.action == "notice"
	not "ACME_NETWORK_REQUIRES_VERIFIED" in fx.codes(d)
}

# An invalid manifest declares nothing, so the rule does not fire (the manifest blocks anyway).
test_invalid_manifest_declares_no_network if {
	inp := json.patch(acme.with_network(acme.verified), [{"op": "replace", "path": "/manifest/valid", "value": false}])
	d := decide(inp)
	d.action == "block"
	not "ACME_NETWORK_REQUIRES_VERIFIED" in fx.codes(d)
}

# The action-map override in acme's data: experimental blocks (overridable).
test_experimental_blocks_at_acme if {
	d := decide(acme.experimental)
	d.tier == "experimental"
	d.action == "block"
	d.overridable == true
}

test_unnamed_plugin_message if {
	inp := json.patch(acme.with_network(fx.community), [{"op": "remove", "path": "/plugin"}])
	d := decide(inp) with data.cortex_config as acme.ungoverned_config
	some r in d.reasons
	r.code == "ACME_NETWORK_REQUIRES_VERIFIED"
	r.message == "acme allows network access only for verified plugins; this plugin is community"
}
