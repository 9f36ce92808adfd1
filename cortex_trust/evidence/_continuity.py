"""Signer continuity: this version's signer compared with the plugin's earlier signers.

Facts only (``input.evidence.signer_continuity``); whether a change matters is the policy's call
(``SIGNER_CHANGED``, ``SIGNATURE_DROPPED``). A signer is its identity, issuer and the Sigstore
root its bundle chained to, compared exactly; only a cryptographically verified signature is a
signer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..policy import SignatureEvidence, SignerContinuityEvidence, SignerRef

__all__ = ["signer_continuity", "signer_of"]


def signer_of(signature: SignatureEvidence) -> SignerRef | None:
    """The signer of ``signature``, or ``None`` when it did not verify (no signer)."""
    if not (signature.present and signature.verified and signature.identity and signature.issuer):
        return None
    return SignerRef(identity=signature.identity, issuer=signature.issuer,
                     trusted_root=signature.trusted_root)


def signer_continuity(signature: SignatureEvidence, *, earlier: Sequence[tuple[str, SignerRef | None]],
                      source: str) -> SignerContinuityEvidence:
    """The continuity facts of ``signature`` after the ``earlier`` versions (``(version,
    signer)`` oldest first, the last one being the previous version; ``None``: unsigned).

    With no earlier version there is nothing to compare with: ``first_seen_signer`` says whether
    this version is signed at all, and nothing changed.
    """
    current = signer_of(signature)
    if not earlier:
        return SignerContinuityEvidence(present=True, first_seen_signer=current is not None, source=source)
    previous_version, previous = earlier[-1]
    return SignerContinuityEvidence(
        present=True,
        first_seen_signer=current is not None and all(s != current for _, s in earlier),
        signer_changed=previous is not None and current is not None and previous != current,
        signature_dropped=previous is not None and current is None,
        previous_version=previous_version, previous_signer=previous, source=source)
