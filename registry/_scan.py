"""The registry's own scans of published images, as jobs of the job engine (:mod:`registry._jobs`).

Every publish queues a :class:`~registry._models.ScanJob` row in the same transaction as the
version, whatever the publisher uploaded (spec: Trivy scans run on every version publish), and
hands it to the job engine in that transaction (:func:`registry._store._scans.queue_scan`): a
``registry.scan_version`` job run by ``cortex registry worker`` (PostgreSQL) or by the
in-process runner of ``cortex registry serve`` (:mod:`registry._background`). A process without
a scanner never takes a scan job: it waits for one that has one.

:func:`scan_version` claims its row by id (a row already scanned, or failed for good, is left
alone: running a job twice scans once), so a restart or a worker killed mid-scan loses nothing:
the job runs again and claims the row again. Before anything is fetched, the image reference is
checked against the configured OCI registries again (the allowlist may have changed since the
publish): the registry never fetches from elsewhere. A scan that could not run leaves the version
unscanned, never "clean" (the row is queued again until its attempts run out). What is recorded is
marked ``origin: registry`` here, whatever the scanner function returned: the registry ran it, and
only this job may say so; likewise its ``created_at`` is the registry's clock when the scan started
(what the policy ages the scan from). Each outcome re-evaluates the version at once.

Scans age: the periodic job :func:`rescan_due` (``registry.rescan_due``, on :data:`RESCAN_CRON`)
queues again the versions whose newest scan is older than ``rescan_after``
(:meth:`Store.queue_rescans`), and they are rescanned with the scanner's current vulnerability
data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import procrastinate

from cortex_trust.errors import CortexTrustError
from cortex_trust.policy import ScanEvidence, format_time

from ._errors import ApiError
from ._jobs import _Retry, app
from ._service import check_image_host
from ._store._scans import SCAN_QUEUE, SCAN_TASK

__all__ = ["RESCAN_CRON", "RESCAN_TASK", "Scanner", "rescan_due", "scan_version"]

#: ``scanner(image_ref, digest)`` returns scan evidence or raises a CortexTrustError.
Scanner = Callable[[str, str], ScanEvidence]
#: The periodic rescan check: hourly.
RESCAN_CRON = "0 * * * *"
RESCAN_TASK = "registry.rescan_due"

_log = logging.getLogger("registry.scan")


@app.task(name=SCAN_TASK, queue=SCAN_QUEUE, retry=_Retry(), pass_context=True)
def scan_version(context: procrastinate.JobContext | None, scan_id: int) -> str:
    """Scan the image of scan job ``scan_id`` and record the outcome (re-deciding its version).

    ``context`` is the engine's job context (``None`` in the in-process runner): a retried job
    (its worker died mid-scan) takes over its own claim. Returns ``scanned``, ``failed`` (the
    row is queued again or failed for good) or ``skipped`` (nothing to do); raises
    :class:`~registry._store.ScanGone` when the row is gone.
    """
    from ._job_context import settings

    run = settings()
    if run.scanner is None:
        from cortex_trust.errors import InputError

        raise InputError("this process has no scanner for scan jobs",
                         advice="run scan jobs on a worker with Trivy (`cortex registry worker --trivy-db DIR`)")
    store = run.store
    job = store.claim_scan(scan_id, now=run.clock(), lease=run.lease,
                           retry=context is not None and context.job.attempts > 0)
    if job is None:
        return "skipped"
    assert job.id is not None
    evidence: ScanEvidence | None = None
    error: str | None = None
    started = format_time(run.clock())
    try:
        check_image_host(job.image, allowed=run.allowed)
        evidence = run.scanner(job.image, job.digest).model_copy(
            update={"origin": "registry", "attester": None, "created_at": started})
    except ApiError as e:
        error = f"{e.code}: {e.message}"
    except CortexTrustError as e:
        error = str(e)
    store.finish_scan_job(job.id, evidence=evidence, error=error, now=run.clock(), evaluate=run.evaluate)
    return "scanned" if evidence is not None else "failed"


@app.task(name=RESCAN_TASK, queue=SCAN_QUEUE, retry=_Retry())
def rescan_due(timestamp: int | None = None) -> list[str]:
    """Queue a rescan of every version whose newest scan is older than ``rescan_after`` (none
    without it), re-deciding each at once; return what was queued. ``timestamp`` is the
    period the engine scheduled this run for."""
    from ._job_context import settings

    run = settings()
    if run.rescan_after is None or run.scanner is None:
        return []
    now = run.clock()
    queued: list[str] = run.store.queue_rescans(older_than=now - run.rescan_after, now=now, evaluate=run.evaluate)
    if queued:
        _log.info("rescan: %d version(s) queued", len(queued))
    return queued
