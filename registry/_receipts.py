"""The registry's decision receipts: one for every decision it makes, signed with its index key.

A receipt (:mod:`cortex_trust.policy._receipt`) records the decision, the exact input, the
digests of the evidence pieces and of the published Sigstore bundle, the policy revision, the
engine and the time. :class:`ReceiptIssuer` builds and seals them inside the write that stores
the decision (publish and every re-evaluation, and re-tiering), so a decision and its receipt
are committed together or not at all. The signer is the online key of the registry's signed
index's ``timestamp`` role (:data:`~cortex_trust.policy.RECEIPT_ROLE`): clients check receipts
against the key the index's trusted root names for it. A registry without an index has no key
and issues unsigned receipts, which ``cortex receipt verify`` never accepts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cortex_trust._json import canonical_json
from cortex_trust.policy import seal_payload

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

__all__ = ["ReceiptIssuer"]


class ReceiptIssuer:
    """Seals the receipts of one registry (``name``) with ``signer`` (``None``: unsigned)."""

    def __init__(self, *, name: str, signer: Signer | None) -> None:
        self.name = name
        self.signer = signer

    def seal(self, payload: bytes) -> str:
        """The receipt envelope (compact canonical JSON) of a receipt ``payload``
        (:func:`registry._reevaluate.receipt_payload_of`)."""
        return canonical_json(seal_payload(payload, signer=self.signer))
