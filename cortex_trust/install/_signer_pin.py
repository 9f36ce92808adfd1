"""Trust on first use of a plugin's signer: the facts an install or update gives the policy, and
where the pin goes once the person accepted the plan.

The first install of a plugin pins the signer it saw (identity, issuer and Sigstore root, or
"unsigned") in the install record. Every later install or update of that plugin compares the new
version's signer with the pin: the comparison is :func:`~cortex_trust.evidence.signer_continuity`
(the registry's own definition of a signer change), fed to the policy as
``input.evidence.signer_continuity`` with source ``installer``. Whether a change matters is the
policy's call; accepting it is the person's (a prompt, or ``--allow-signer-change``), and an
accepted change moves the pin and is recorded. Nothing here reads a file or the clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..evidence import signer_continuity, signer_of
from ._state import SignerChange, SignerPin

if TYPE_CHECKING:
    from ..policy import PolicyInput, SignatureEvidence, SignerContinuityEvidence
    from ._plan import InstallPlan
    from ._state import InstallRecord

__all__ = ["next_pin", "pinned_continuity", "seed_pin"]

#: The ``source`` of the continuity facts the installer establishes.
_SOURCE = "installer"


def seed_pin(record: InstallRecord, stored: PolicyInput | None) -> InstallRecord:
    """``record`` pinned to the signer its install was decided with, when it was written before
    signers were pinned: the signature facts of its recorded input ``stored`` (only an input
    about the record's own digest). A record already pinned, or with no such input, is returned
    as it is (not pinned: its next install pins whatever signs it)."""
    if record.signer is not None or stored is None or stored.artifact.digest != record.digest:
        return record
    signer = signer_of(stored.evidence.signature)
    pin = SignerPin(identity=signer.identity if signer else None, issuer=signer.issuer if signer else None,
                    trusted_root=signer.trusted_root if signer else None, version=record.version,
                    pinned_at=record.installed_at)
    return record.model_copy(update={"signer": pin})


def pinned_continuity(signature: SignatureEvidence, previous: InstallRecord | None) -> SignerContinuityEvidence:
    """The continuity facts of a version signed as ``signature`` against the signer pinned in
    ``previous`` (the installed record of the same plugin, if any). With no record, or a record
    not pinned yet, there is nothing to compare with: this version's signer is first seen.

    A signed version after an unsigned pin is compared with the last signer the record was
    pinned to (its recorded changes): an accepted unsigned version never clears the way for
    another signer without consent."""
    pin = previous.signer if previous is not None else None
    if previous is not None and pin is not None and pin.ref is None and signer_of(signature) is not None:
        pin = _last_signed(previous) or pin
    earlier = [] if pin is None else [(pin.version, pin.ref)]
    return signer_continuity(signature, earlier=earlier, source=_SOURCE)


def _last_signed(record: InstallRecord) -> SignerPin | None:
    """The newest signed pin among ``record``'s accepted signer changes (``None``: never signed)."""
    for change in reversed(record.signer_changes):
        for pin in (change.current, change.previous):
            if pin.ref is not None:
                return pin
    return None


def next_pin(plan: InstallPlan, *, now: str,
             consent: Literal["--allow-signer-change", "prompt"] | None) -> tuple[SignerPin, SignerChange | None]:
    """The pin to record for accepted ``plan`` (at ``now``) and the change to record with it.

    A plan whose facts say the signer changed or the signature was dropped moves the pin to this
    version's signer (or "unsigned") and returns the change, accepted by ``consent`` (``None`` is
    refused with :class:`ValueError`: a change is only ever recorded as accepted). A first
    install, a record not pinned yet, or an unsigned pin followed by a version signed by the last
    signer the record was pinned to (by any signer if it never had one) pins this version's
    signer; otherwise the pin stays as it was.
    """
    facts = plan.policy_input.evidence.signer_continuity
    signer = signer_of(plan.policy_input.evidence.signature)
    current = SignerPin(identity=signer.identity if signer else None, issuer=signer.issuer if signer else None,
                        trusted_root=signer.trusted_root if signer else None, version=plan.version, pinned_at=now)
    previous = plan.previous.signer if plan.previous is not None else None
    if previous is not None and (facts.signer_changed or facts.signature_dropped):
        if consent is None:
            raise ValueError("a signer change is recorded only once accepted")
        return current, SignerChange(previous=previous, current=current, changed_at=now, consent=consent)
    if previous is None or (previous.identity is None and signer is not None):
        return current, None
    return previous, None
