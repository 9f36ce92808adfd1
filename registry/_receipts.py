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

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from cortex_trust._json import canonical_json
from cortex_trust.policy import build_receipt, engine_version, seal_receipt

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

    from cortex_trust.policy import Decision, PolicyInput

__all__ = ["ReceiptIssuer"]


class ReceiptIssuer:
    """Seals the receipts of one registry (``name``) with ``signer`` (``None``: unsigned)."""

    def __init__(self, *, name: str, signer: Signer | None) -> None:
        self.name = name
        self.signer = signer
        self._versions: dict[str, str | None] = {}

    def issue(self, *, decision: Decision, policy_input: PolicyInput, engine: str,
              decided_at: datetime, documents: Mapping[str, str] | None = None) -> str:
        """The receipt envelope (compact canonical JSON) of ``decision`` on ``policy_input``."""
        if engine not in self._versions:
            self._versions[engine] = engine_version(engine)
        statement = build_receipt(decision=decision, policy_input=policy_input, engine=engine,
                                  engine_version=self._versions[engine], decided_at=decided_at,
                                  issuer=f"registry {self.name}", documents=documents)
        return canonical_json(seal_receipt(statement, signer=self.signer).envelope)
