# Evidence sources (federation) and signer trust roots.
package cortex.sources_test

import data.cortex.fixtures_test as fx
import rego.v1

from_source(inp, kind, source) := fx.with_evidence(inp, kind, {"source": source})

# --- evidence_sources ------------------------------------------------------------------------------

# By default every source counts ("*"): the Verified fixture stays Verified whatever its sources.
test_every_source_counts_by_default if {
	d := fx.decide(from_source(fx.verified, "usage", "default"))
	d.tier == "verified"
	not "EVIDENCE_SOURCE_UNTRUSTED" in fx.codes(d)
}

# An organization says usage from the public registry does not count: Verified falls to
# Community, and the decision says which evidence from which source was not used.
test_untrusted_source_is_not_used if {
	config := fx.config_with("/evidence_sources/default", {"usage": false, "review": true})
	d := fx.decide_with(from_source(fx.verified, "usage", "default"), config)
	d.tier == "community"
	fx.codes(d) == {"TIER_COMMUNITY", "USAGE_MISSING", "EVIDENCE_SOURCE_UNTRUSTED"}
	some r in d.reasons
	r.code == "EVIDENCE_SOURCE_UNTRUSTED"
	contains(r.message, "usage evidence from default")
}

# Reviews from the same registry still count (the entry names them).
test_trusted_kind_from_the_same_source_counts if {
	config := fx.config_with("/evidence_sources/default", {"usage": false, "review": true})
	d := fx.decide_with(from_source(fx.verified, "review", "default"), config)
	d.tier == "verified"
}

# A source that is not listed falls back to "*"; without "*" nothing counts (fail closed).
test_unlisted_source_without_star_counts_nothing if {
	config := fx.config_with("/evidence_sources", {"acme": {"scan": true, "tests": true, "signature": true, "review": true, "usage": true}})
	d := fx.decide_with(fx.community, config)
	d.tier == "experimental"
	"EVIDENCE_SOURCE_UNTRUSTED" in fx.codes(d)
}

# Revocations always count, whatever the source.
test_revocation_from_an_untrusted_source_still_blocks if {
	config := fx.config_with("/evidence_sources", {})
	inp := fx.with_evidence(fx.verified, "revocation", {"checked": true, "revoked": true, "source": "mirror"})
	d := fx.decide_with(inp, config)
	d.action == "block"
	"REVOKED" in fx.codes(d)
}

# --- signer trust roots ------------------------------------------------------------------------------

# The trusted release identity from a private root (--trusted-root) is not a trusted signer.
test_release_identity_from_a_private_root_is_untrusted if {
	d := fx.decide(fx.with_evidence(fx.verified, "signature", {"trusted_root": "private-local"}))
	d.tier == "community"
	"SIGNER_UNTRUSTED" in fx.codes(d)
}

# An entry can name the roots it accepts.
test_an_entry_may_accept_a_private_root if {
	config := fx.config_with("/trusted_signers/cortex-release/trusted_roots", ["private-local"])
	d := fx.decide_with(fx.with_evidence(fx.verified, "signature", {"trusted_root": "private-local"}), config)
	d.tier == "verified"
}

# --- GitHub plugins: their own repository's release workflow ------------------------------------------

github_plugin(identity) := fx.with_(fx.with_evidence(fx.verified, "signature", {"identity": identity}), {"plugin": {"repository": "acme-org/weather", "full_name": "weather", "namespace": null}})

test_github_plugin_signed_by_its_own_release_workflow if {
	d := fx.decide(github_plugin("https://github.com/acme-org/weather/.github/workflows/release.yml@refs/tags/v1.0.0"))
	d.tier == "verified"
}

test_github_plugin_signed_by_another_repository if {
	d := fx.decide(github_plugin("https://github.com/mallory/weather/.github/workflows/release.yml@refs/tags/v1.0.0"))
	d.tier == "community"
	"SIGNER_UNTRUSTED" in fx.codes(d)
}

test_github_plugin_signed_by_a_branch_build if {
	d := fx.decide(github_plugin("https://github.com/acme-org/weather/.github/workflows/release.yml@refs/heads/main"))
	"SIGNER_UNTRUSTED" in fx.codes(d)
}

test_github_plugin_signed_from_a_private_root if {
	inp := fx.with_evidence(github_plugin("https://github.com/acme-org/weather/.github/workflows/release.yml@refs/tags/v1.0.0"), "signature", {"trusted_root": "private-local"})
	"SIGNER_UNTRUSTED" in fx.codes(fx.decide(inp))
}

test_github_signers_are_data if {
	config := fx.config_with("/github_signers/workflow", ".github/workflows/publish.yml@refs/tags/*")
	d := fx.decide_with(github_plugin("https://github.com/acme-org/weather/.github/workflows/publish.yml@refs/tags/v1"), config)
	d.tier == "verified"
}
