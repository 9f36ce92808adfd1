# Where evidence comes from, and how far each source is trusted (issue 6, federation).
#
# Every evidence piece names its `source`: the registry it came from (`default`, `acme`... as the
# installer records it), or the file `cortex plugin verify` read. cortex_config.evidence_sources
# says which kinds of positive evidence count from each source ("*" covers every other source):
# for example, reviews from the public registry count, its usage reports do not. A piece that does
# not count reads as absent, and the decision says so (EVIDENCE_SOURCE_UNTRUSTED). Revocations
# always count: they only ever restrict.
#
# Signers are also bound to their Sigstore trust root: an identity is trusted only when the
# bundle chained to a root the policy names (default: the public-good production root), so a
# private Fulcio passed with --trusted-root cannot mint a trusted release identity.
package cortex

import rego.v1

_evidence_kinds := ["signature", "scan", "tests", "review", "usage", "promotion"]

_sources := _static._sources if _static._sources else := cfg.evidence_sources if is_object(cfg.evidence_sources) else := {}

_any_source := _static._any_source if _static._any_source else := _sources["*"] if is_object(_sources["*"]) else := {}

_source_entry(piece) := _sources[piece.source] if {
	is_string(piece.source)
	is_object(_sources[piece.source])
} else := _any_source

# The evidence kinds whose piece in the input is an object that counts, given its source:
# worked out once per decision (facts.rego reads each piece through it, the
# EVIDENCE_SOURCE_UNTRUSTED note below too). Revocations are not listed: they always count.
counted_kinds contains kind if {
	some kind in _evidence_kinds
	piece := input.evidence[kind]
	is_object(piece)
	_source_entry(piece)[kind] == true
}

_source_text(piece) := piece.source if is_string(piece.source) else := "an unnamed source"

notes contains {
	"code": "EVIDENCE_SOURCE_UNTRUSTED",
	"message": sprintf("%s evidence from %s was not used: policy does not trust that source for it (evidence_sources)", [kind, short(_source_text(piece))]),
	"evidence": [kind],
} if {
	some kind in _evidence_kinds
	piece := input.evidence[kind]
	is_object(piece)
	piece.present == true
	not kind in counted_kinds
}

# --- signers and their trust roots -----------------------------------------------------------

_signer_root := str_field(signature, "trusted_root")

_default_signer_roots := _static._default_signer_roots if _static._default_signer_roots else := cfg.signer_trusted_roots if is_array(cfg.signer_trusted_roots) else := []

# The roots a trusted_signers (or github_signers) entry accepts: its own `trusted_roots`, else
# cortex_config.signer_trusted_roots.
signer_roots(entry) := entry.trusted_roots if is_array(entry.trusted_roots) else := _default_signer_roots

signer_root_accepted(entry) if _signer_root in signer_roots(entry)

# A plugin installed from GitHub trusts its own repository's release workflow by default
# (issue 6; cortex_config.github_signers: issuer, workflow (a glob after the repository URL)).
plugin_repository := input.plugin.repository if is_string(input.plugin.repository) else := ""

_github_signers := _static._github_signers if _static._github_signers else := cfg.github_signers if is_object(cfg.github_signers) else := {}

github_signer_trusted if {
	signature_verified
	plugin_repository != ""
	is_string(_github_signers.issuer)
	is_string(_github_signers.workflow)
	matches(_github_signers.issuer, _signer_issuer)
	matches(sprintf("https://github.com/%s/%s", [plugin_repository, _github_signers.workflow]), _signer_identity)
	signer_root_accepted(_github_signers)
}
