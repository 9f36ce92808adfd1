"""The registry's background jobs: one definition, run by procrastinate workers or in-process.

:data:`app` is a procrastinate application whose tasks are the job definitions. On PostgreSQL,
:func:`open_app` connects it to the registry's database (procrastinate's tables live in the
schema ``procrastinate``, created by the migration ``job_queue``), ``cortex registry worker``
runs :func:`run_worker` on any number of machines and ``cortex registry retier`` defers one
:func:`retier_batch` job per batch of versions. On SQLite (one machine), :func:`retier_in_process`
calls the same batch function in this process on ``--workers`` threads.

``retier_batch`` is safe to run more than once for a batch (a retry, a worker killed after its
commit): what is staged is never decided again (:mod:`registry._store._retier_runs`), and the
run is switched by whichever batch finds every version staged, exactly once. Retry policy:
failures that may pass (the database or a policy engine worker unavailable) are retried with a
growing wait, up to :data:`MAX_ATTEMPTS` runs; a job whose input is wrong (an unknown run,
versions deleted meanwhile, stored facts that no longer validate) fails at once and discards its
run. A worker killed mid-batch stops sending heartbeats: :func:`run_worker` puts the jobs of
workers silent for ``stalled_after`` seconds back in the queue.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate.testing import InMemoryConnector

from cortex_trust.errors import CortexTrustError, InputError

if TYPE_CHECKING:
    from cortex_trust.policy import PolicySet

    from ._retier import Decider
    from ._store import Store

__all__ = [
    "MAX_ATTEMPTS",
    "RENDER_QUEUE",
    "RETIER_QUEUE",
    "app",
    "configure",
    "defer_render",
    "open_app",
    "render_pages",
    "rerender_in_process",
    "retier_batch",
    "retier_in_process",
    "run_worker",
]

#: How many times a job runs at most before it ends as failed.
MAX_ATTEMPTS = 5
#: The queue of re-tier batches.
RETIER_QUEUE = "retier"
#: The queue of page-rendering batches.
RENDER_QUEUE = "render"
#: The PostgreSQL schema of procrastinate's tables (migration ``job_queue``).
SCHEMA = "procrastinate"
_log = logging.getLogger("registry.jobs")


class _Retry(procrastinate.BaseRetryStrategy):
    """Retry what may pass, never a wrong input."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> procrastinate.RetryDecision | None:
        if _is_final(exception) or job.attempts + 1 >= MAX_ATTEMPTS:
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": 2 * (job.attempts + 1)})


def _is_final(exception: BaseException) -> bool:
    from ._retier import RetierFailed

    return isinstance(exception, (InputError, RetierFailed))


#: The job definitions; its connector is replaced by :func:`open_app` (PostgreSQL).
app = procrastinate.App(connector=InMemoryConnector())


class _Context:
    """What the tasks of this process run against: the store, and the policy engine processes
    of the jobs running now (one :class:`~registry._retier.Decider` per running job, kept idle
    for the run's next batches, so never more than the worker's concurrency)."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.lock = threading.Lock()
        self.idle: dict[str, list[Decider]] = {}

    @contextmanager
    def decider(self, run_id: str) -> Iterator[Decider]:
        """A policy engine process for run ``run_id``, for this job alone."""
        from ._retier import Decider

        with self.lock:
            for other in [r for r in self.idle if r != run_id]:  # a new run: free the old engines
                for d in self.idle.pop(other):
                    d.close()
            decider = self.idle.get(run_id, []).pop() if self.idle.get(run_id) else None
        if decider is None:
            assert self.store is not None
            policy_set, _ = self.store.retier_policy(run_id)
            decider = Decider(policy_set, registry_name=self.store.registry_name)
        try:
            yield decider
        except BaseException:
            decider.close()
            raise
        with self.lock:
            self.idle.setdefault(run_id, []).append(decider)

    def close(self) -> None:
        with self.lock:
            for deciders in self.idle.values():
                for d in deciders:
                    d.close()
            self.idle.clear()


_context = _Context()
atexit.register(_context.close)


def configure(store: Store) -> None:
    """Run this process's tasks against ``store``."""
    _context.store = store


@app.task(name="registry.retier_batch", queue=RETIER_QUEUE, retry=_Retry(), pass_context=True)
def retier_batch(context: procrastinate.JobContext, run_id: str, version_ids: list[int]) -> int:
    """Decide and stage the versions ``version_ids`` of re-tier run ``run_id``; switch the run
    when it was the last batch. Returns how many versions this call decided."""
    store = _context.store
    if store is None:
        raise InputError("this process has no registry database for its jobs",
                         advice="run jobs with `cortex registry worker --db URL`")
    try:
        with _context.decider(run_id) as decider:
            return _decide(store, run_id, version_ids, decider)
    except Exception as e:
        final = _is_final(e) or context.job.attempts + 1 >= MAX_ATTEMPTS
        _log.warning("job %s (re-tier run %s, %d versions) failed%s: %s: %s", context.job.id, run_id,
                     len(version_ids), "" if final else ", will be retried", type(e).__name__, e)
        _failed(store, run_id, e, final=final)
        raise


def _decide(store: Store, run_id: str, version_ids: list[int], decider: Decider, *,
            now: datetime | None = None) -> int:
    """One batch: decide, stage, and switch the run if every version is staged (at ``now``:
    default the current time)."""
    decided = store.retier_decide(run_id, version_ids, decider=decider)
    store.retier_apply(run_id, decider=decider, now=now)
    return decided


def _failed(store: Store, run_id: str, error: BaseException, *, final: bool) -> None:
    """Record a batch's error on its run; a wrong input discards the run (it cannot finish)."""
    from ._store import UnknownRun

    text = f"{type(error).__name__}: {error}"
    try:
        if isinstance(error, UnknownRun):
            return
        if _is_final(error):
            store.retier_discard(run_id, state="failed", reason=text, now=datetime.now(UTC), actor="worker")
        else:
            store.retier_note_error(run_id, ("gave up: " if final else "will retry: ") + text)
    except CortexTrustError:  # the database is gone too: the job's own failure is what counts
        pass


def retier_in_process(store: Store, policy_set: PolicySet, *, now: datetime, workers: int | None = None,
                      batch: int = 1000, actor: str = "cli") -> dict[str, Any]:
    """A whole re-tier run in this process: the batches of :func:`retier_batch` on ``workers``
    threads (default: one per usable CPU), each with its own policy engine process (``0``: one
    engine in this thread); returns the run's counts. A batch that raises discards the run
    (nothing is switched) and the error propagates."""
    from ._retier import LocalDeciders

    run_id, batches = store.retier_start(policy_set=policy_set, now=now, actor=actor, batch=batch)
    try:
        with LocalDeciders(policy_set, registry_name=store.registry_name, workers=workers) as deciders:
            # An empty catalogue is one empty batch: it switches the run.
            for _ in deciders.map(lambda decider, ids: _decide(store, run_id, ids, decider, now=now), batches or [[]]):
                pass
    except BaseException as e:
        store.retier_discard(run_id, state="failed", reason=f"{type(e).__name__}: {e}", now=now, actor=actor)
        raise
    progress = store.retier_progress(run_id)  # switched by the batch that staged the last version
    if progress["result"] is None:
        raise InputError(f"re-tier run {run_id} ended without being applied: {progress['error']}",
                         advice="run the re-tier again")
    return dict(progress["result"])


@app.task(name="registry.render_pages", queue=RENDER_QUEUE, retry=_Retry())
def render_pages(version_ids: list[int]) -> int:
    """Render and store the empty page fragments of the versions ``version_ids`` and of their
    plugins (:func:`registry._web._fill.fill_pages`: stored only while still empty, versions
    deleted meanwhile skipped); safe to run more than once. Returns how many versions it filled."""
    from ._web._fill import fill_pages

    store = _context.store
    if store is None:
        raise InputError("this process has no registry database for its jobs",
                         advice="run jobs with `cortex registry worker --db URL`")
    return fill_pages(store, version_ids)


def rerender_in_process(store: Store, *, batch: int = 1000) -> dict[str, int]:
    """Empty every stored page fragment in one write, then render them all again in this
    process, ``batch`` versions at a time; returns the counts."""
    from ._web._fill import fill_pages

    ids = store.clear_page_fragments()
    rendered = sum(fill_pages(store, ids[i:i + batch]) for i in range(0, len(ids), batch))
    return {"versions": len(ids), "rendered": rendered}


# ------------------------------------------------------------------------------- PostgreSQL


def conninfo(db_url: str) -> str:
    """The libpq connection string of a registry database URL (PostgreSQL only)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def open_app(db_url: str) -> procrastinate.App:
    """:data:`app` on the registry's PostgreSQL database (not yet opened)."""
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(db_url), kwargs={"options": f"-c search_path={SCHEMA}"})
    return app.with_connector(connector)


def defer_retier(queue_app: procrastinate.App, run_id: str, batches: Iterable[list[int]]) -> list[int]:
    """Defer one :func:`retier_batch` job per batch; returns the job ids."""
    return _defer(queue_app, "registry.retier_batch", RETIER_QUEUE,
                  [{"run_id": run_id, "version_ids": list[Any](ids)} for ids in batches])


def defer_render(queue_app: procrastinate.App, batches: Iterable[list[int]]) -> list[int]:
    """Defer one :func:`render_pages` job per batch of version ids; returns the job ids."""
    return _defer(queue_app, "registry.render_pages", RENDER_QUEUE,
                  [{"version_ids": list[Any](ids)} for ids in batches])


def _defer(queue_app: procrastinate.App, task_name: str, queue: str, kwargs: list[dict[str, Any]]) -> list[int]:
    """Defer one job of task ``task_name`` on ``queue`` per item of ``kwargs``; the job ids."""
    from procrastinate.jobs import Job

    task = queue_app.tasks[task_name]
    jobs = [Job(id=None, queue=queue, lock=None, queueing_lock=None, task_name=task.name, task_kwargs=k)
            for k in kwargs]
    if not jobs:
        return []
    return [j.id for j in queue_app.job_manager.batch_defer_jobs(jobs) if j.id is not None]


def run_worker(store: Store, db_url: str, *, concurrency: int = 1, queues: list[str] | None = None,
               heartbeat: float = 10.0, stalled_after: float = 30.0, name: str | None = None) -> None:
    """Run jobs from the queue until interrupted, ``concurrency`` at a time; the jobs of workers
    without a heartbeat for ``stalled_after`` seconds are put back in the queue."""
    configure(store)
    # On :data:`app` itself: the periodic deferrer defers through each task's own app.
    with app.replace_connector(open_app(db_url).connector) as queue_app:
        asyncio.run(_work(queue_app, concurrency=concurrency, queues=queues, heartbeat=heartbeat,
                          stalled_after=stalled_after, name=name))


class _InFlight:
    """A worker middleware: which jobs this worker runs now (until their status is stored, or
    storing it failed) and the worker's id."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.worker_id: int | None = None

    async def __call__(self, call_next: Any, context: procrastinate.JobContext, worker: Any) -> Any:
        self.worker_id = worker.worker_id
        job_id, task = context.job.id, asyncio.current_task()
        if job_id is not None and task is not None:  # the job's task ends once its status is stored
            self.ids.add(job_id)
            task.add_done_callback(lambda _: self.ids.discard(job_id))
        return await call_next()


async def _work(queue_app: procrastinate.App, *, concurrency: int, queues: list[str] | None,
                heartbeat: float, stalled_after: float, name: str | None) -> None:
    async with queue_app.open_async():
        in_flight = _InFlight()
        requeue = asyncio.create_task(_requeue_stalled(queue_app, in_flight, heartbeat=heartbeat,
                                                       stalled_after=stalled_after))
        options: dict[str, Any] = {"queues": queues} if queues else {}
        if name:
            options["name"] = name
        try:
            await queue_app.run_worker_async(
                concurrency=concurrency, update_heartbeat_interval=heartbeat, stalled_worker_timeout=stalled_after,
                delete_jobs="never", install_signal_handlers=True, worker_middleware=[in_flight], **options)
        finally:
            requeue.cancel()
            _context.close()


async def _requeue_stalled(queue_app: procrastinate.App, in_flight: _InFlight, *, heartbeat: float,
                           stalled_after: float) -> None:
    """Every ``heartbeat`` seconds, put back in the queue the running jobs of workers silent for
    ``stalled_after`` seconds, and this worker's jobs whose end could not be stored (the
    database was away when they ended: they are still marked running here)."""
    manager = queue_app.job_manager
    suspects: set[int] = set()  # seen orphaned once: queued again when seen twice in a row
    while True:
        await asyncio.sleep(heartbeat)
        try:
            for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
                await manager.retry_job(job)
            if in_flight.worker_id is not None:
                orphans = [job for job in await manager.list_jobs_async(status="doing", worker_id=in_flight.worker_id)
                           if job.id not in in_flight.ids]
                for job in orphans:
                    if job.id in suspects:
                        _log.warning("job %s ended while the database was away: queued again", job.id)
                        await manager.retry_job(job)
                suspects = {job.id for job in orphans if job.id is not None} - suspects
        except Exception:  # noqa: BLE001,S112 - the database went away: the next round tries again
            continue
