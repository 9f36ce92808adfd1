"""The scan queue: every publish queues a job; scan workers claim jobs with a lease and record
the outcome (see :mod:`registry._scan`).

A claim and an outcome are writes like any other (one transaction, one audit entry). A scan's
evidence re-evaluates the version; a failed scan is queued again until its attempts run out,
and the version then simply stays unscanned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from cortex_trust.policy import ScanEvidence, format_time

from .._models import Evidence, Plugin, PluginVersion, ScanJob
from ._rows import Evaluator, VersionRows
from ._tx import not_found

__all__ = ["ScanQueue"]


class ScanQueue(VersionRows):
    """Claiming scan jobs and recording their outcome."""

    def claim_scan_job(self, *, now: datetime, lease: timedelta) -> ScanJob | None:
        """Take the oldest queued job, or a running one whose lease expired (its worker died).

        The claim is recorded (state, attempts, lease) and audited like every write.
        """
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            job = s.exec(select(ScanJob).where(
                (col(ScanJob.state) == "queued")
                | ((col(ScanJob.state) == "running") & (col(ScanJob.lease_until) < ts)))
                .order_by(col(ScanJob.id)).limit(1)).first()
            if job is None:
                tx.skip_audit()
                return None
            job.state = "running"
            job.attempts += 1
            job.lease_until = format_time(now + lease)
            job.updated_at = ts
            s.add(job)
            tx.audit(actor="scanner", action="scan.claim", target=f"scan:{job.id}",
                     before=None, after={"digest": job.digest, "attempt": job.attempts},
                     now=now)
            return job

    def finish_scan_job(self, job_id: int, *, evidence: ScanEvidence | None, error: str | None,
                        now: datetime, evaluate: Evaluator, max_attempts: int = 3) -> None:
        """Record a scan's outcome: evidence (re-evaluating the tier) or an error (queued again
        until ``max_attempts``, then failed; the version simply stays unscanned)."""
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            job = s.get(ScanJob, job_id)
            if job is None:
                raise not_found("scan", str(job_id))
            row = s.get(PluginVersion, job.version_id)
            assert row is not None and row.id is not None
            plugin = s.get(Plugin, row.plugin_id)
            assert plugin is not None
            before = {"tier": row.tier, "action": row.action}
            if evidence is not None:
                s.add(Evidence(version_id=row.id, kind="scan", digest=row.digest,
                               facts_json=evidence.model_dump_json(), actor="scanner",
                               created_at=ts))
                self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
                job.state, job.error = "done", None
            else:
                job.state = "failed" if job.attempts >= max_attempts else "queued"
                job.error = (error or "scan failed")[:2000]
            job.lease_until = None
            job.updated_at = ts
            s.add(job)
            tx.audit(actor="scanner", action="version.scan", target=f"{plugin.key}@{row.version}",
                     before=before, after={"job": job.id, "state": job.state,
                                           "error": job.error, "tier": row.tier,
                                           "action": row.action}, now=now)
