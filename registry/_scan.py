"""Persisted scan jobs: the registry scans published images in the background.

Every publish queues a :class:`~registry._models.ScanJob` in the same transaction as the
version, whatever the publisher uploaded (spec: Trivy scans run on every version publish); a
process started without a scanner leaves the jobs for one that has one. :class:`ScanWorker`
claims jobs with a lease, so a restart (or a crashed worker) never loses one: the lease
expires and the job is taken again. Before anything is fetched, the image reference is checked
against the configured OCI registries again (the allowlist may have changed since the publish):
the server never fetches from elsewhere. Scans age: with ``rescan_after`` the worker also queues
again, once per ``rescan_check``, the versions whose newest scan is older than that
(:meth:`Store.queue_rescans`), and rescans them with the scanner's current vulnerability data; a
rescan's outcome re-evaluates the version at once. A scan that could not run leaves the version
unscanned, never "clean". What the worker records is marked ``origin: registry`` here, whatever
the scanner function returned: the registry ran it, and only this worker may say so; likewise its
``created_at`` is the registry's clock when the scan started (what the policy ages the scan from).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from cortex_trust.errors import CortexTrustError
from cortex_trust.policy import ScanEvidence, format_time

from ._errors import ApiError
from ._service import check_image_host
from ._store import Evaluator, Store

__all__ = ["ScanWorker", "Scanner"]

#: ``scanner(image_ref, digest)`` returns scan evidence or raises a CortexTrustError.
Scanner = Callable[[str, str], ScanEvidence]

_log = logging.getLogger("registry.scan")


class ScanWorker:
    """Claims queued scan jobs and runs ``scanner`` on them, one at a time."""

    def __init__(self, store: Store, evaluate: Evaluator, scanner: Scanner, *,
                 allowed: tuple[str, ...], clock: Callable[[], datetime],
                 lease: timedelta = timedelta(minutes=15), poll_seconds: float = 2.0,
                 rescan_after: timedelta | None = None,
                 rescan_check: timedelta = timedelta(hours=1)) -> None:
        self.store = store
        self.evaluate = evaluate
        self.scanner = scanner
        self.allowed = allowed
        self.clock = clock
        self.lease = lease
        self.poll_seconds = poll_seconds
        #: Scans older than this are queued again (checked every ``rescan_check``); ``None``: never.
        self.rescan_after = rescan_after
        self.rescan_check = rescan_check
        self._next_rescan_check: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def queue_due_rescans(self) -> list[str]:
        """Queue the versions whose scan is older than ``rescan_after`` (none without it), at
        most once per ``rescan_check``; return what was queued."""
        if self.rescan_after is None:
            return []
        now = self.clock()
        if self._next_rescan_check is not None and now < self._next_rescan_check:
            return []
        self._next_rescan_check = now + self.rescan_check
        queued = self.store.queue_rescans(older_than=now - self.rescan_after, now=now,
                                          evaluate=self.evaluate)
        if queued:
            _log.info("scan worker: %d version(s) queued for a rescan", len(queued))
        return queued

    def run_once(self) -> bool:
        """Process one job if there is one; return whether a job was processed."""
        job = self.store.claim_scan_job(now=self.clock(), lease=self.lease)
        if job is None:
            return False
        assert job.id is not None
        evidence: ScanEvidence | None = None
        error: str | None = None
        started = format_time(self.clock())
        try:
            check_image_host(job.image, allowed=self.allowed)
            evidence = self.scanner(job.image, job.digest).model_copy(
                update={"origin": "registry", "attester": None, "created_at": started})
        except ApiError as e:
            error = f"{e.code}: {e.message}"
        except CortexTrustError as e:
            error = str(e)
        self.store.finish_scan_job(job.id, evidence=evidence, error=error, now=self.clock(),
                                   evaluate=self.evaluate)
        return True

    def start(self) -> None:
        """Run jobs on a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="scan-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current job (its lease makes it safe to stop mid-scan too)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.queue_due_rescans()
                busy = self.run_once()
            except ApiError as e:  # the database is down: try again later
                _log.warning("scan worker: %s", e.message)
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)
