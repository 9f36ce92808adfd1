"""The scan queue: every publish queues a job; the scan job (:mod:`registry._scan`) claims it and
records the outcome.

A ``scan_job`` row is the durable record of a scan; whenever a row becomes ``queued`` (a publish,
a rescan, a failed attempt queued again) the same transaction hands it to the job engine: on
PostgreSQL a ``registry.scan_version`` job is inserted into procrastinate's queue in that
transaction (committed together or not at all), and after the commit :attr:`on_scan` tells this
process's in-process runner (SQLite). Claiming a row is by its id, and idempotent: a row already
``done`` or ``failed`` is left alone, and a ``running`` row whose lease has not expired is taken
only by a retry of the job that claimed it (its worker died).

A claim and an outcome are writes like any other (one transaction, one audit entry). A scan's
evidence re-evaluates the version; a failed scan is queued again until its attempts run out,
and the version then simply stays unscanned. Scans age (the policy's ``freshness``): a rescan
queues the job of every version not revoked whose newest scan is older than a cutoff again, and
its outcome re-evaluates the version like the first scan's (a CRITICAL found since lowers the tier
at once).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import col, select

from cortex_trust.errors import InputError
from cortex_trust.policy import ScanEvidence, format_time

from .._models import Evidence, Plugin, PluginVersion, ScanJob
from ._rows import Evaluator, VersionRows
from ._tx import Tx, not_found

__all__ = ["SCAN_QUEUE", "SCAN_TASK", "ScanGone", "ScanQueue", "queue_scan"]

#: The job queue and task that run scans (registered in :mod:`registry._scan`).
SCAN_QUEUE = "scan"
SCAN_TASK = "registry.scan_version"
#: procrastinate's schema on PostgreSQL (migration ``job_queue``).
_QUEUE_SCHEMA = "procrastinate"


class ScanGone(InputError):
    """A scan job names a scan that is no longer in the registry (its version was deleted)."""

    def __init__(self, scan_id: int) -> None:
        super().__init__(f"scan job {scan_id} is no longer in the registry (its version was deleted meanwhile)",
                         advice="nothing to scan; the job ends as failed")


#: The most versions one rescan call queues (the next call queues the rest).
RESCAN_BATCH = 1000


def queue_scan(tx: Tx, job: ScanJob, *, due: datetime) -> None:
    """Hand the queued row ``job`` to the job engine in ``tx``, due at ``due`` (see the module)."""
    s = tx.session
    if job.id is None:
        s.flush()
    assert job.id is not None
    if s.get_bind().dialect.name == "postgresql":
        path = s.execute(text("SELECT current_setting('search_path')")).scalar_one()
        s.execute(text("SELECT set_config('search_path', :p, true)"), {"p": f"{_QUEUE_SCHEMA}, {path}"})
        s.execute(text(
            f"SELECT {_QUEUE_SCHEMA}.procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL, "
            f"CAST(:args AS jsonb), CAST(:at AS timestamptz))::{_QUEUE_SCHEMA}.procrastinate_job_to_defer_v1])"),
            {"queue": SCAN_QUEUE, "task": SCAN_TASK, "args": json.dumps({"scan_id": job.id}),
             "at": due.isoformat()})
        s.execute(text("SELECT set_config('search_path', :p, true)"), {"p": path})
    tx.scans.append((job.id, due))


class ScanQueue(VersionRows):
    """Claiming scan jobs and recording their outcome."""

    def claim_scan(self, scan_id: int, *, now: datetime, lease: timedelta, retry: bool) -> ScanJob | None:
        """Claim scan ``scan_id`` for the caller: when it is queued, when its lease expired, or
        (``retry``: the caller is a retry of the job that claimed it) when it is running.
        ``None`` when it is not to be run (done, failed, or held by a live lease); raises
        :class:`ScanGone` when the row is gone. The claim (state, attempts, lease) is audited like every write."""
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            job = s.exec(select(ScanJob).where(col(ScanJob.id) == scan_id).with_for_update()).first()
            if job is None:
                raise ScanGone(scan_id)
            if job.state in ("done", "failed") or (
                    job.state == "running" and not retry and (job.lease_until or "") >= ts):
                tx.skip_audit()
                return None
            return self._claim(tx, job, now=now, lease=lease)

    def cancel_scan(self, scan_id: int, *, reason: str, now: datetime, actor: str = "operator") -> bool:
        """Mark scan ``scan_id`` failed with ``reason`` when it is still queued (its job was
        cancelled): the version stays unscanned, and the periodic rescan takes it up again like
        any failed scan. Whether it was queued (one audited write)."""
        with self._write() as tx:
            job = tx.session.get(ScanJob, scan_id)
            if job is None or job.state != "queued":
                tx.skip_audit()
                return False
            job.state, job.error, job.updated_at = "failed", reason[:2000], format_time(now)
            tx.session.add(job)
            tx.audit(actor=actor, action="scan.cancel", target=f"scan:{job.id}", before=None,
                     after={"digest": job.digest, "reason": job.error}, now=now)
            return True

    def scan_target(self, scan_id: int) -> tuple[str, str, str | None] | None:
        """Scan ``scan_id``'s version (``ns/name@version``), state and last error; ``None``
        when it is gone."""
        with self._read() as s:
            row = s.execute(select(Plugin.key, PluginVersion.version, ScanJob.state, ScanJob.error)
                            .join(PluginVersion, col(PluginVersion.id) == col(ScanJob.version_id))
                            .join(Plugin, col(Plugin.id) == col(PluginVersion.plugin_id))
                            .where(col(ScanJob.id) == scan_id)).first()
        return None if row is None else (f"{row[0]}@{row[1]}", row[2], row[3])

    def pending_scans(self) -> list[tuple[int, str, str | None]]:
        """The scan jobs not finished: ``(id, state, lease_until)``, oldest first."""
        with self._read() as s:
            return [(r.id, r.state, r.lease_until) for r in s.exec(  # type: ignore[misc]
                select(ScanJob).where(col(ScanJob.state).in_(("queued", "running"))).order_by(col(ScanJob.id)))]

    def _claim(self, tx: Tx, job: ScanJob, *, now: datetime, lease: timedelta) -> ScanJob:
        ts = format_time(now)
        job.state = "running"
        job.attempts += 1
        job.lease_until = format_time(now + lease)
        job.updated_at = ts
        tx.session.add(job)
        tx.audit(actor="scanner", action="scan.claim", target=f"scan:{job.id}",
                 before=None, after={"digest": job.digest, "attempt": job.attempts}, now=now)
        return job

    def queue_rescans(self, *, older_than: datetime, now: datetime, actor: str = "scanner",
                      evaluate: Evaluator | None = None, limit: int = RESCAN_BATCH) -> list[str]:
        """Queue again the scan job of every version not revoked whose newest scan was recorded
        at or before ``older_than`` (or that has none and whose job last failed by then, so a scan
        that cannot run is retried once per period), and whose job is not already queued or running;
        return the versions queued (``ns/name@version``), oldest scan first, at most ``limit``.

        With ``evaluate``, each queued version is also re-decided at ``now``, so a scan that has
        aged out of the policy's freshness limit lowers the stored tier until the rescan lands.
        One audited write; nothing is written when nothing is due.
        """
        from sqlalchemy import func
        from sqlalchemy import select as columns

        cutoff = format_time(older_than)
        with self._write() as tx:
            s = tx.session
            newest = (columns(col(Evidence.version_id), func.max(col(Evidence.created_at)).label("at"))
                      .where(col(Evidence.kind) == "scan").group_by(col(Evidence.version_id)).subquery())
            rows = s.execute(
                columns(col(ScanJob.id), col(Plugin.key), col(PluginVersion.version), newest.c.at)
                .join(PluginVersion, col(PluginVersion.id) == col(ScanJob.version_id))
                .join(Plugin, col(Plugin.id) == col(PluginVersion.plugin_id))
                .outerjoin(newest, newest.c.version_id == col(ScanJob.version_id))
                .where(col(ScanJob.state).in_(("done", "failed")),
                       col(PluginVersion.state) != "revoked",
                       (newest.c.at <= cutoff)
                       | (newest.c.at.is_(None) & (col(ScanJob.updated_at) <= cutoff)))
                .order_by(newest.c.at.is_not(None), newest.c.at, col(ScanJob.id)).limit(limit)).all()
            if not rows:
                tx.skip_audit()
                return []
            ts = format_time(now)
            versions: list[PluginVersion] = []
            for job_id, *_ in rows:
                job = s.get(ScanJob, job_id)
                assert job is not None
                job.state, job.attempts, job.error, job.lease_until, job.updated_at = "queued", 0, None, None, ts
                s.add(job)
                queue_scan(tx, job, due=now)
                version = s.get(PluginVersion, job.version_id)
                assert version is not None
                versions.append(version)
            queued = [f"{key}@{version}" for _, key, version, _ in rows]
            tiers: dict[str, str] = {}
            if evaluate is not None:
                plugins = {v.plugin_id: s.get(Plugin, v.plugin_id) for v in versions}
                self._reevaluate(s, plugins, versions, now=now, evaluate=evaluate)  # type: ignore[arg-type]
                for plugin in plugins.values():
                    assert plugin is not None
                    self._refresh_plugin(s, plugin)
                tiers = {name: v.tier for name, v in zip(queued, versions, strict=True)}
            tx.audit(actor=actor, action="scan.rescan", target="scan:*", before=None,
                     after={"older_than": cutoff, "versions": queued, "tiers": tiers}, now=now)
            return queued

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
                if job.state == "queued":
                    queue_scan(tx, job, due=now)
            job.lease_until = None
            job.updated_at = ts
            s.add(job)
            tx.audit(actor="scanner", action="version.scan", target=f"{plugin.key}@{row.version}",
                     before=before, after={"job": job.id, "state": job.state,
                                           "error": job.error, "tier": row.tier,
                                           "action": row.action}, now=now)
