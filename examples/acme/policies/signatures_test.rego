# acme rule 2 (acme plugins signed by acme's release workflows), with the defaults and
# examples/acme/data.yaml loaded.
package cortex.acme_signatures_test

import data.cortex.acme_fixtures_test as acme
import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := d if {
	d := data.cortex.decision with input as inp
}

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

test_acme_release_signature_verifies if {
	d := decide(acme.verified)
	d.tier == "verified"
	d.action == "allow"
	fx.code_list(d) == ["TIER_VERIFIED"]
}

# The default signer still works for cortex/* plugins (acme's data adds, it does not replace).
test_cortex_plugins_still_verified if {
	d := decide(fx.verified)
	d.tier == "verified"
	d.action == "allow"
}

test_acme_plugin_signed_by_another_repository_is_denied if {
	inp := acme.signed_by(acme.verified, "https://github.com/mallory/net-tool/.github/workflows/release.yml@refs/tags/v2.0.1", fx.github_issuer)
	d := decide(inp)
	d.tier == "community"
	d.action == "block"
	d.overridable == false
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED", "ACME_SIGNER_NOT_ACME"}
	contains(reason(d, "ACME_SIGNER_NOT_ACME").message, "mallory")
}

# Even an identity trusted for cortex/* does not count for an acme plugin.
test_acme_plugin_signed_by_cortex_release_is_denied if {
	d := decide(acme.signed_by(acme.verified, fx.trusted_identity, fx.github_issuer))
	d.action == "block"
	"ACME_SIGNER_NOT_ACME" in fx.codes(d)
}

test_acme_branch_build_is_denied if {
	inp := acme.signed_by(acme.verified, "https://github.com/acme/net-tool/.github/workflows/release.yml@refs/heads/main", fx.github_issuer)
	d := decide(inp)
	d.action == "block"
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED", "ACME_SIGNER_NOT_ACME"}
}

test_acme_identity_from_another_issuer_is_denied if {
	d := decide(acme.signed_by(acme.verified, acme.acme_identity, "https://accounts.example.com"))
	d.action == "block"
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNER_UNTRUSTED", "ACME_SIGNER_NOT_ACME"}
}

test_unsigned_acme_plugin_cannot_be_installed if {
	d := decide(fx.without(acme.verified, "signature"))
	d.tier == "community"
	d.action == "block"
	d.overridable == false
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNATURE_MISSING", "ACME_SIGNATURE_REQUIRED"}
	reason(d, "ACME_SIGNATURE_REQUIRED").message == "acme/net-tool is an acme plugin and carries no valid signature; install needs one"
}

test_invalid_signature_on_acme_plugin_blocks_run if {
	inp := fx.at(fx.with_evidence(acme.verified, "signature", {"verified": false}), "run")
	d := decide(inp)
	d.action == "block"
	fx.codes(d) == {"TIER_COMMUNITY", "SIGNATURE_INVALID", "ACME_SIGNATURE_REQUIRED"}
}

# In CI (verify) an unsigned acme plugin is reported, not denied: it may not be signed yet.
test_unsigned_acme_plugin_at_verify_is_not_denied if {
	d := decide(fx.at(fx.without(acme.verified, "signature"), "verify"))
	d.action == "notice"
	not "ACME_SIGNATURE_REQUIRED" in fx.codes(d)
}

# Without the acme-release entry, no signature counts as acme's (fail closed).
test_without_acme_signer_entry_every_signature_is_denied if {
	cfg := fx.config_with("/trusted_signers/acme-release", null)
	d := decide(acme.verified) with data.cortex_config as cfg
	d.action == "block"
	"ACME_SIGNER_NOT_ACME" in fx.codes(d)
}

# Other namespaces are not acme's business here.
test_other_plugins_not_affected if {
	inp := fx.without(fx.with_(fx.community, {"plugin": {"namespace": "other", "full_name": "other/x"}}), "signature")
	d := decide(inp) with data.cortex_config as acme.ungoverned_config
	d.action == "notice"
	not "ACME_SIGNATURE_REQUIRED" in fx.codes(d)
}

# Without acme's data every plugin is blocked rather than acme's rules silently skipped.
test_missing_acme_data_blocks if {
	d := data.cortex.decision with input as fx.verified with data.acme as {}
	d.action == "block"
	d.overridable == false
	"ACME_CONFIG_INVALID" in fx.codes(d)
}
