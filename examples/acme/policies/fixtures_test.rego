# acme test inputs (no tests here), built from the default fixtures
# (policies/cortex/fixtures_test.rego, loaded with the defaults by `cortex policy test`).
package cortex.acme_fixtures_test

import data.cortex.fixtures_test as fx
import rego.v1

acme_identity := "https://github.com/acme/net-tool/.github/workflows/release.yml@refs/tags/v2.0.1"

# acme/net-tool: Verified by acme's rules (signed by acme's release workflow), installing.
verified := fx.with_(fx.verified, {
	"plugin": {"namespace": "acme", "name": "net-tool", "version": "2.0.1", "full_name": "acme/net-tool"},
	"evidence": {"signature": {
		"identity": acme_identity,
		"github": {"repository": "acme/net-tool", "workflow_ref": "acme/net-tool/.github/workflows/release.yml@refs/tags/v2.0.1", "sha": "3f1c0d6a1b2e4f5a6b7c8d9e0f1a2b3c4d5e6f70", "trigger": "push"},
	}},
})

# The same plugin at lower tiers (signature kept).
community := fx.without(fx.without(verified, "review"), "usage")

experimental := fx.without(fx.without(community, "scan"), "tests")

with_network(inp) := fx.with_trust(inp, {"network": true})

signed_by(inp, identity, issuer) := fx.with_evidence(inp, "signature", {"identity": identity, "issuer": issuer})

# acme's data with the governance review (promotion, core review) off, for tests about other rules.
ungoverned_config := json.patch(data.cortex_config, [{"op": "replace", "path": "/governance/promotion/operations", "value": []}])
