# acme rule 2: acme's plugins are signed by acme's own release workflows
# (https://github.com/acme/<repo>/.github/workflows/<workflow>@refs/tags/<tag>).
#
# data.yaml trusts that signer for acme/* plugins (trusted_signers.acme-release), which is what
# Verified needs. These deny entries make it a hard rule for acme's plugins:
# - ACME_SIGNER_NOT_ACME: a valid signature by anyone else (another repository, a branch build,
#   another issuer) blocks, not overridable, at every operation;
# - ACME_SIGNATURE_REQUIRED: installing or running an acme plugin without a valid signature
#   blocks (data.acme.signature_required_at).
# The signer is read from trusted_signers.acme-release, so the identity lives in one place;
# without that entry no signature counts as acme's (fail closed).
package cortex

import rego.v1

acme_plugin if plugin_matches(data.acme.plugins)

acme_signed if {
	signature_verified
	entry := cfg.trusted_signers["acme-release"]
	is_object(entry)
	matches(entry.issuer, str_field(signature, "issuer"))
	matches(entry.identity, str_field(signature, "identity"))
}

deny contains {
	"code": "ACME_SIGNER_NOT_ACME",
	"message": sprintf(
		"%s is an acme plugin but was signed by '%s' (issuer '%s'), not by an acme release workflow",
		[full_name, short(str_field(signature, "identity")), short(str_field(signature, "issuer"))],
	),
	"evidence": ["signature"],
} if {
	acme_plugin
	signature_verified
	not acme_signed
}

deny contains {
	"code": "ACME_SIGNATURE_REQUIRED",
	"message": sprintf("%s is an acme plugin and carries no valid signature; %s needs one", [full_name, operation]),
	"evidence": ["signature", "context.operation"],
} if {
	acme_plugin
	operation in data.acme.signature_required_at
	not signature_verified
}

# acme's own data must be there: without it the rules above could not tell acme's plugins apart.
_acme_config_ok if {
	is_array(data.acme.plugins)
	is_array(data.acme.signature_required_at)
}

deny contains {
	"code": "ACME_CONFIG_INVALID",
	"message": "acme's policy data is missing: acme.plugins and acme.signature_required_at must be lists (examples/acme/data.yaml)",
	"evidence": ["config"],
} if {
	not _acme_config_ok
}
