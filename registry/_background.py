"""What the registry's background jobs run against, and the in-process runner that runs them on
one machine.

The jobs are tasks of :data:`registry._jobs.app`, each defined once next to what it does
(:func:`registry._scan.scan_version`, the periodic :func:`registry._scan.rescan_due` and
:func:`registry._governance.governance_poll`). A task reads what it runs against from
:func:`registry._job_context.settings`: the :class:`JobSettings` of the :class:`LocalRunner`
calling it, or those this worker process was started with (:func:`run_queue_worker`).

Two ways to run them (``cortex registry serve --jobs``):

* ``queue`` (the default on PostgreSQL): ``cortex registry worker`` processes, on any machine,
  run them from procrastinate's queue; the periodic ones are deferred by the workers' periodic
  deferrer, which the database keeps to one job per period however many workers run.
* ``local`` (the default on SQLite): :class:`LocalRunner`, one thread of ``serve``, calls the
  same task functions: a scan when the write that queued it has committed
  (:attr:`Store.on_scan <registry._store._tx.StoreBase.on_scan>`), the periodic jobs on their
  schedule. Nothing is lost on restart: the scans not finished are read back from the
  ``scan_job`` table when it starts (a scan claimed by a process that died is taken again once
  its lease expires), and every few seconds for scans queued by another process (``cortex
  registry rescan``), since SQLite tells no other process of a commit.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from cortex_trust.errors import CortexTrustError, InputError

from ._job_context import JobSettings, running, set_process_settings

__all__ = ["JobSettings", "LocalRunner", "Ran", "cron_every", "periodic_jobs", "run_queue_worker"]

_log = logging.getLogger("registry.jobs")
#: Seconds before a job that failed on an unavailable database is tried again here.
_RETRY_SECONDS = 5.0


def cron_every(seconds: float) -> str:
    """A cron schedule firing about every ``seconds`` (seconds, minutes or hours granularity)."""
    s = max(1, int(seconds))
    if s < 60:
        return f"* * * * * */{s}"
    if s < 3600:
        return f"*/{s // 60} * * * *"
    return f"0 */{min(s // 3600, 24)} * * *"


def periodic_jobs(job_settings: JobSettings) -> dict[str, str]:
    """The periodic jobs these settings call for: task name -> cron schedule."""
    from ._scan import RESCAN_CRON, RESCAN_TASK

    jobs: dict[str, str] = {}
    if job_settings.scanner is not None and job_settings.rescan_after is not None:
        jobs[RESCAN_TASK] = job_settings.rescan_cron or RESCAN_CRON
    governance = job_settings.governance
    if governance is not None and governance.config.poll_seconds > 0:
        from ._governance import GOVERNANCE_TASK

        jobs[GOVERNANCE_TASK] = cron_every(governance.config.poll_seconds)
    return jobs


def _tasks() -> dict[str, Callable[..., Any]]:
    """The task functions by name (importing their modules registers them on the app)."""
    from . import _governance, _scan

    return {t.name: t.func for t in (_scan.scan_version, _scan.rescan_due, _governance.governance_poll)}


class Ran(NamedTuple):
    """One job the runner ran: its task and what it returned."""

    task: str
    result: Any


class LocalRunner:
    """Runs the registry's jobs in this process: scans as they are queued, periodic jobs on
    their schedule (see the module). :meth:`run_once` runs one due job on the caller's thread;
    :meth:`start` runs them on a daemon thread until :meth:`stop`."""

    def __init__(self, job_settings: JobSettings, *, sweep_seconds: float = 2.0) -> None:
        self.settings = job_settings
        #: How often the ``scan_job`` table is read for scans queued by another process (a
        #: ``cortex registry rescan``): SQLite tells no other process of a commit.
        self.sweep_seconds = sweep_seconds
        self._swept: float | None = None
        self.tasks = _tasks()
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._due: list[tuple[datetime, int, int]] = []  # (due, order, scan id)
        self._queued: set[int] = set()
        self._next: dict[str, datetime] = {}
        self._crons: dict[str, str] = {}
        self._stop = False
        self._thread: threading.Thread | None = None

    def defer_scan(self, scan_id: int, due: datetime) -> None:
        """Run scan ``scan_id`` at ``due`` (the store's ``on_scan`` hook; never raises)."""
        if self.settings.scanner is None:
            return  # a process that can scan takes it
        with self._cond:
            if scan_id not in self._queued:
                self._queued.add(scan_id)
                heapq.heappush(self._due, (due, next(self._order), scan_id))
            self._cond.notify_all()

    def _sweep(self) -> None:
        """Read back the scans not finished: at the first job, then every ``sweep_seconds``."""
        if self.settings.scanner is None or (
                self._swept is not None and time.monotonic() - self._swept < self.sweep_seconds):
            return
        now = self.settings.clock()
        for scan_id, state, lease_until in self.settings.store.pending_scans():
            due = now
            if state == "running" and lease_until:
                due = max(now, datetime.fromisoformat(lease_until.replace("Z", "+00:00")))
            self.defer_scan(scan_id, due)
        self._swept = time.monotonic()

    def _schedule(self, now: datetime) -> None:
        """Follow the settings' periodic jobs: one newly called for runs at once (a check at
        start), then on its schedule."""
        crons = periodic_jobs(self.settings)
        with self._cond:
            for name in set(self._next) - set(crons):
                del self._next[name]
            for name in set(crons) - set(self._next):
                self._next[name] = now
            self._crons = crons

    def _take(self, now: datetime) -> tuple[str, int | None] | None:
        """The next due job: a periodic one first, then the oldest due scan."""
        self._schedule(now)
        with self._cond:
            for name, at in self._next.items():
                if at <= now:
                    self._next[name] = _next_fire(self._crons[name], now)
                    return name, None
            if self._due and self._due[0][0] <= now:
                _, _, scan_id = heapq.heappop(self._due)
                self._queued.discard(scan_id)
                return "scan", scan_id
        return None

    def run_once(self) -> Ran | None:
        """Run one due job if there is one; what it ran (``None``: nothing was due)."""
        self._sweep()
        now = self.settings.clock()
        job = self._take(now)
        if job is None:
            return None
        name, scan_id = job
        with running(self.settings):
            if scan_id is None:
                return Ran(name, self.tasks[name](timestamp=int(now.timestamp())))
            from ._scan import scan_version

            try:
                return Ran(scan_version.name, self.tasks[scan_version.name](None, scan_id=scan_id))
            except InputError as e:  # the scan is gone: nothing to retry
                _log.warning("scan job %s: %s", scan_id, e.message)
                return Ran(scan_version.name, "gone")
            except CortexTrustError:  # the database is down: the row is still queued
                self.defer_scan(scan_id, now + timedelta(seconds=_RETRY_SECONDS))
                raise

    def start(self) -> None:
        """Run jobs on a daemon thread until :meth:`stop`."""
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="registry-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current job (a scan claimed then is taken again at the next start,
        once its lease expires)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _wait_seconds(self) -> float:
        now = self.settings.clock()
        with self._cond:
            times = [*self._next.values(), *([self._due[0][0]] if self._due else [])]
        cap = self.sweep_seconds if self.settings.scanner is not None else 60.0
        if not times:
            return cap
        return min(cap, max(0.0, (min(times) - now).total_seconds()))

    def _loop(self) -> None:
        while not self._stop:
            try:
                ran = self.run_once()
            except CortexTrustError as e:  # the database or GitHub failed: try again later
                _log.warning("registry job: %s", e)
                ran = None
            except Exception:  # noqa: BLE001 - a bug in one job must not end the others
                _log.exception("registry job failed")
                ran = None
            if ran is None:
                wait = self._wait_seconds()
                with self._cond:
                    if not self._stop:
                        self._cond.wait(timeout=max(wait, 0.05))


def _next_fire(cron: str, after: datetime) -> datetime:
    import croniter

    fire: datetime = croniter.croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return fire


def run_queue_worker(job_settings: JobSettings, db_url: str, *, concurrency: int = 1,
                     queues: list[str] | None = None, heartbeat: float = 10.0, stalled_after: float = 30.0) -> None:
    """Run this process as a queue worker (:func:`registry._jobs.run_worker`) with
    ``job_settings`` for its scan and governance jobs; its periodic deferrer schedules the
    periodic jobs they call for. Without a scanner it takes no job of the scan queue."""
    from ._governance import GOVERNANCE_QUEUE
    from ._jobs import RENDER_QUEUE, RETIER_QUEUE, app, run_worker
    from ._store._scans import SCAN_QUEUE

    _tasks()
    set_process_settings(job_settings)
    for name, cron in periodic_jobs(job_settings).items():
        app.periodic_registry.register_task(task=app.tasks[name], cron=cron, periodic_id="", configure_kwargs={})
    if queues is None:
        queues = [RETIER_QUEUE, RENDER_QUEUE, GOVERNANCE_QUEUE,
                  *([SCAN_QUEUE] if job_settings.scanner is not None else [])]
    run_worker(job_settings.store, db_url, concurrency=concurrency, queues=queues, heartbeat=heartbeat,
               stalled_after=stalled_after)
