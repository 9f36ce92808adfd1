# The precomputed values (static.rego): reading them back gives the same decisions as working
# them out, and they are data-only.
package cortex.static_test

import data.cortex.fixtures_test as fx
import rego.v1

static := s if {
	s := data.cortex.static_values with data.cortex_config as fx.default_config
}

test_static_values_cover_the_listed_rules if {
	static.config_ok == true
	static.action_rank == {"allow": 0, "notice": 1, "warn": 2, "block": 3}
	static.max_severity_rank == 2
	static._sandbox_user == "65534:65534"
	count(static) == 15
}

# Undefined (nothing precomputed) when the data is invalid.
test_no_static_values_for_invalid_data if {
	not data.cortex.static_values with data.cortex_config as object.remove(fx.default_config, ["sandbox"])
}

# Handed back as data (sets become arrays on the way, as through JSON), every fixture decides
# exactly as without them.
test_precomputed_values_decide_the_same if {
	back := json.unmarshal(json.marshal(static))
	every inp in [fx.verified, fx.community, fx.experimental, fx.untrusted, fx.minimal_valid, fx.minimal_invalid] {
		expected := fx.decide_shipped(inp)
		got := data.cortex.decision with input as inp
			with data.cortex_config as fx.default_config
			with data.cortex.deny as set()
			with data.cortex.warn as set()
			with data.cortex_static as back
		got == expected
	}
}

# A precomputed value is read, not worked out again: a different one shows in the decision.
test_precomputed_values_are_read if {
	back := object.union(json.unmarshal(json.marshal(static)), {"_sandbox_memory": "1g"})
	d := data.cortex.decision with input as fx.verified
		with data.cortex_config as fx.default_config
		with data.cortex_static as back
	d.sandbox.memory == "1g"
}
