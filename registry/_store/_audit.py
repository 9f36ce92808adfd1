"""The audit log's read side: verification of the whole log and the transparency-log reads."""

from __future__ import annotations

from cortex_trust.sources import Checkpoint

from .._audit import AuditProblem
from .._tlog import AuditReport, TransparencyLog, verify_log
from ._tx import StoreBase, db_unavailable

__all__ = ["AuditReads"]


class AuditReads(StoreBase):
    """Checking the audit log, and its tree head, checkpoints, proofs and leaves."""

    def audit_verify(self, *, checkpoint: Checkpoint | None = None) -> list[AuditProblem]:
        """Every problem :meth:`audit_report` finds; an empty list means intact."""
        return self.audit_report(checkpoint=checkpoint).problems

    def audit_report(self, *, checkpoint: Checkpoint | None = None) -> AuditReport:
        """Check the audit log from its entries alone: the chain, the Merkle tree, consistency
        with ``checkpoint`` (a checkpoint seen earlier, signature already verified) and the
        tracked state tables against a replay of the log. ``problems`` empty: intact."""
        with db_unavailable():
            return verify_log(self.engine, checkpoint=checkpoint)

    @property
    def log(self) -> TransparencyLog:
        """The audit log's read side: tree head, checkpoints, proofs, leaves."""
        return TransparencyLog(self.engine)
