"""``cortex registry worker``, ``cortex registry jobs`` and ``cortex registry rerender``: the
registry's job queue on PostgreSQL (:mod:`registry._jobs`), and the queued side of ``cortex
registry retier``.

Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_INPUT, EXIT_UNAVAILABLE, fail
from ._options import (
    DbOpt,
    InProcessOpt,
    NoDefaultsOpt,
    OpaUrlOpt,
    PolicyEngineOpt,
    RegistryDataOpt,
    RegistryPolicyDirOpt,
)
from ._registry_db import IndexKeysOpt, NameOpt, migrated_engine, sign_receipts
from ._registry_scan import AllowRegistryOpt, RescanAfterOpt, ScanOpt, TrivyDbOpt, TrivyOpt
from .registry_governance import GitHubConfigOpt

if TYPE_CHECKING:
    from cortex_trust.policy import PolicySet
    from registry._store import Store

__all__ = ["enqueue_retier", "register"]


def register(parent: typer.Typer) -> None:
    """Add ``worker``, ``jobs`` and ``rerender`` to ``cortex registry``."""
    parent.command("worker")(worker_cmd)
    parent.command("jobs")(jobs_cmd)
    parent.command("rerender")(rerender_cmd)


def _postgres(engine: Any) -> None:
    if engine.dialect.name != "postgresql":
        engine.dispose()
        fail("the job queue needs a PostgreSQL registry database", code=EXIT_INPUT,
             advice="on SQLite, background work runs inside `cortex registry serve` and "
                    "`cortex registry retier` decides in its own process")


def worker_cmd(
    db: DbOpt,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs run at once.")] = 1,
    queues: Annotated[list[str] | None, typer.Option(
        "--queues", help="Only these queues (repeatable; default: every queue).")] = None,
    heartbeat: Annotated[float, typer.Option(
        "--heartbeat", min=0.1, help="Seconds between this worker's heartbeats.")] = 10.0,
    stalled_after: Annotated[float, typer.Option(
        "--stalled-after", min=0.5, help="Seconds without a heartbeat after which a worker's "
                                         "running jobs are queued again.")] = 30.0,
    name: NameOpt = "cortex-registry",
    index_keys: IndexKeysOpt = None,
    policy_dir: RegistryPolicyDirOpt = None,
    data: RegistryDataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    policy_engine: PolicyEngineOpt = None,
    opa_url: OpaUrlOpt = None,
    scan: ScanOpt = True,
    trivy: TrivyOpt = None,
    trivy_db: TrivyDbOpt = None,
    rescan_after: RescanAfterOpt = "6d",
    rescan_cron: Annotated[str | None, typer.Option(
        "--rescan-cron", metavar="CRON",
        help="When the periodic rescan check runs (cron, a sixth field for seconds); default "
             "hourly.")] = None,
    allow_registry: AllowRegistryOpt = None,
    github_config: GitHubConfigOpt = None,
) -> None:
    """Run the registry's background jobs from the PostgreSQL queue until interrupted: re-tier
    batches, page-rendering batches, scans of published images (with Trivy; without it this worker takes no scan job),
    and the periodic rescan check and GitHub poll, which the workers schedule together once per
    period. Run any number of workers, on any machine that reaches the database; give them the
    policy options of `cortex registry serve` (a scan re-decides its version)."""
    from datetime import UTC, datetime

    from registry._background import JobSettings, run_queue_worker
    from registry._config import DEFAULT_OCI_REGISTRIES
    from registry._reevaluate import ThreadEvaluator
    from registry._store import Store

    from ._registry_scan import engine_factory, scanner
    from ._registry_scan import rescan_after as parse_rescan_after
    from .registry_governance import governance_config

    if rescan_cron is not None:
        _check_cron(rescan_cron)
    engine = migrated_engine(db)
    _postgres(engine)
    evaluator = ThreadEvaluator(engine_factory(policy_dir, data, no_default_policies, policy_engine, opa_url))
    try:
        every = parse_rescan_after(rescan_after)
        scan_image, _ = scanner(scan, trivy=trivy, trivy_db=trivy_db)
        store = Store(engine, registry_name=name)
        sign_receipts(store, index_keys)
        governance = None
        if (gov_config := governance_config(github_config)) is not None:
            from registry._governance import Governance

            governance = Governance(gov_config, store=store, evaluate=evaluator, clock=lambda: datetime.now(UTC))
        settings = JobSettings(store=store, evaluate=evaluator, clock=lambda: datetime.now(UTC), scanner=scan_image,
                               allowed=tuple(allow_registry or DEFAULT_OCI_REGISTRIES), rescan_after=every,
                               governance=governance, rescan_cron=rescan_cron)
        print(f"worker: concurrency {concurrency}, queues {', '.join(queues) if queues else 'all'}, "
              f"scans {'on' if scan_image is not None else 'off'}", file=sys.stderr, flush=True)
        run_queue_worker(settings, db, concurrency=concurrency, queues=queues or None,
                         heartbeat=heartbeat, stalled_after=stalled_after)
    finally:
        evaluator.close()
        engine.dispose()


def _check_cron(cron: str) -> None:
    import croniter

    if not croniter.croniter.is_valid(cron):
        fail(f"--rescan-cron {cron!r} is not a cron schedule", code=EXIT_INPUT,
             advice="e.g. '0 * * * *' (hourly) or '* * * * * */30' (every 30 seconds)")


def jobs_cmd(
    db: DbOpt,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only jobs in this state: todo, doing, succeeded, failed, cancelled, aborted.")] = None,
    retry: Annotated[int | None, typer.Option("--retry", metavar="ID", help="Queue failed job ID again.")] = None,
    cancel: Annotated[int | None, typer.Option(
        "--cancel", metavar="ID", help="Cancel queued job ID (its re-tier run is discarded; its scan is "
                                       "marked failed).")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """List the queued, running and failed jobs (re-tier batches with their run's state and last
    error, scans with their version and scan state, periodic rescans and GitHub polls), or retry /
    cancel one. Exit 2 for an unknown job or one in the wrong state."""
    from datetime import UTC, datetime

    from registry._jobs import open_app
    from registry._store import Store, UnknownRun

    engine = migrated_engine(db)
    _postgres(engine)
    store = Store(engine)
    try:
        with open_app(db).open() as queue_app:
            manager = queue_app.job_manager
            if retry is not None or cancel is not None:
                job_id = retry if retry is not None else cancel
                assert job_id is not None
                found = manager.list_jobs(id=job_id)
                if not found:
                    fail(f"no job {job_id} in the queue", code=EXIT_INPUT,
                         advice="list the jobs with `cortex registry jobs`")
                job = found[0]
                if retry is not None:
                    if job.status != "failed":
                        fail(f"job {job_id} is {job.status}, not failed", code=EXIT_INPUT,
                             advice="only a failed job can be retried")
                    manager.retry_job_by_id(job_id, retry_at=datetime.now(UTC))
                    print(f"job {job_id} queued again")
                    return
                if not manager.cancel_job_by_id(job_id):
                    fail(f"job {job_id} is {job.status}: only a queued job can be cancelled", code=EXIT_INPUT,
                         advice="a running job ends by itself; a failed one can be retried")
                run_id = job.task_kwargs.get("run_id")
                if isinstance(run_id, str):
                    try:
                        store.retier_discard(run_id, state="cancelled", reason=f"job {job_id} was cancelled",
                                             now=datetime.now(UTC))
                    except UnknownRun:
                        pass
                scan_id = job.task_kwargs.get("scan_id")
                if isinstance(scan_id, int) and store.cancel_scan(scan_id, reason=f"job {job_id} was cancelled",
                                                                  now=datetime.now(UTC)):
                    print(f"job {job_id} cancelled; its scan is marked failed (the version stays unscanned "
                          "until the periodic rescan)")
                    return
                print(f"job {job_id} cancelled" + (f"; re-tier run {run_id} discarded" if run_id else ""))
                return
            rows = []
            for job in manager.list_jobs(status=status):
                if status is None and job.status in ("succeeded", "cancelled", "aborted"):
                    continue
                rows.append(_row(store, job))
    finally:
        engine.dispose()
    if output_format == "json":
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no queued, running or failed jobs")
        return
    for r in rows:
        line = f"{r['id']:>8}  {r['status']:<9} {r['task']:<24} attempts {r['attempts']}"
        if r.get("run"):
            line += f"  run {r['run']} ({r['run_state']}, {r['versions']} versions)"
        if r.get("scan_state"):
            line += f"  scan of {r.get('version', '?')} ({r['scan_state']})"
        print(line)
        if r.get("error"):
            print(f"          error: {r['error']}")


def _row(store: Store, job: Any) -> dict[str, Any]:
    from registry._store import UnknownRun

    row: dict[str, Any] = {"id": job.id, "status": job.status, "task": job.task_name, "queue": job.queue,
                           "attempts": job.attempts}
    scan_id = job.task_kwargs.get("scan_id")
    if isinstance(scan_id, int):
        found = store.scan_target(scan_id)
        if found is None:
            row["scan_state"], row["error"] = "gone", f"scan job {scan_id} is no longer in the registry"
        else:
            row["version"], row["scan_state"], row["error"] = found
    run_id = job.task_kwargs.get("run_id")
    if isinstance(run_id, str):
        row["run"] = run_id
        row["versions"] = len(job.task_kwargs.get("version_ids") or [])
        try:
            run = store.retier_get(run_id)
            row["run_state"], row["error"] = run.state, run.error
        except UnknownRun:
            row["run_state"], row["error"] = "unknown", f"no re-tier run {run_id} in this registry"
    return row


def enqueue_retier(store: Store, db: str, policy_set: PolicySet, *, batch: int, wait: bool) -> dict[str, Any] | None:
    """Start a re-tier run and queue its batches; with ``wait``, follow it and return its counts
    (exit 3 when it failed), else print the run and return None."""
    from datetime import UTC, datetime

    from registry._jobs import defer_retier, open_app
    from registry._retier import Decider

    run_id, batches = store.retier_start(policy_set=policy_set, now=datetime.now(UTC), batch=batch)
    if not batches:  # nothing to decide: switch the (empty) run here
        with Decider(policy_set, registry_name=store.registry_name, in_process=True) as decider:
            return store.retier_apply(run_id, decider=decider)
    with open_app(db).open() as queue_app:
        job_ids = defer_retier(queue_app, run_id, batches)
        print(json.dumps({"run": run_id, "jobs": len(job_ids), "versions": sum(map(len, batches))}),
              file=sys.stderr if wait else sys.stdout, flush=True)
        if not wait:
            return None
        return _follow(store, queue_app, run_id, set(job_ids))


def _follow(store: Store, queue_app: Any, run_id: str, job_ids: set[int]) -> dict[str, Any]:
    """Follow run ``run_id`` to its end with a progress line on stderr; its counts."""
    started = time.monotonic()
    while True:
        progress = store.retier_progress(run_id)
        done, total = progress["decided"], progress["total"]
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f"{(total - done) / rate:.0f}s left" if rate > 0 else "starting"
        print(f"\rre-tier {run_id[:8]}: {done}/{total} versions, {rate:.0f}/s, {left}   ",
              end="", file=sys.stderr, flush=True)
        if progress["state"] == "applied":
            print(file=sys.stderr)
            return dict(progress["result"])
        if progress["state"] != "running":
            print(file=sys.stderr)
            fail(f"re-tier run {run_id} was {progress['state']}: {progress['error']}", code=EXIT_UNAVAILABLE,
                 advice="nothing was switched; fix the cause and run the re-tier again")
        failed = _failed_jobs(queue_app, job_ids)
        if failed:
            print(file=sys.stderr)
            fail(f"re-tier run {run_id}: job(s) {failed} failed: {progress['error']}", code=EXIT_UNAVAILABLE,
                 advice="nothing was switched; `cortex registry jobs --retry ID` queues a job again, "
                        "`--cancel` discards the run")
        time.sleep(0.5)


def _failed_jobs(queue_app: Any, job_ids: set[int]) -> list[int]:
    """Which of the jobs ``job_ids`` failed."""
    return [j.id for j in queue_app.job_manager.list_jobs(status="failed") if j.id in job_ids]


def rerender_cmd(
    db: DbOpt,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Versions per render job.")] = 1000,
    wait: Annotated[bool, typer.Option(
        "--wait", help="PostgreSQL: follow the render jobs until every one has run (progress on "
                       "stderr).")] = False,
    in_process: InProcessOpt = False,
) -> None:
    """Render the catalogue's stored pages again (after an upgrade of the page templates).

    One write empties every stored page fragment: from then on any read renders its page from
    the stored documents and keeps it, and any write stores its own. Then the fragments are
    rendered ahead of reads: on SQLite (or with --in-process) here, on PostgreSQL by one
    `registry.render_pages` job per batch of versions for `cortex registry worker` processes.
    A render stores a fragment only while it is still empty, so a write made meanwhile always
    wins. Prints the counts (or the queued jobs) as JSON; exit 3 when a render job failed.
    """
    from registry._store import Store

    engine = migrated_engine(db)
    try:
        store = Store(engine)
        if engine.dialect.name != "postgresql" or in_process:
            from registry._jobs import rerender_in_process

            print(json.dumps(rerender_in_process(store, batch=batch)))
            return
        from registry._jobs import defer_render, open_app

        ids = store.clear_page_fragments()
        batches = [ids[i:i + batch] for i in range(0, len(ids), batch)]
        with open_app(db).open() as queue_app:
            job_ids = defer_render(queue_app, batches)
            print(json.dumps({"versions": len(ids), "jobs": len(job_ids)}), flush=True)
            if wait:
                _follow_jobs(queue_app, set(job_ids))
    finally:
        engine.dispose()


def _follow_jobs(queue_app: Any, job_ids: set[int]) -> None:
    """Wait until every job of ``job_ids`` succeeded, with a progress line on stderr; exit 3
    when one failed."""
    while True:
        done = sum(1 for j in queue_app.job_manager.list_jobs(queue="render", status="succeeded") if j.id in job_ids)
        print(f"\rrender: {done}/{len(job_ids)} jobs   ", end="", file=sys.stderr, flush=True)
        if done == len(job_ids):
            print(file=sys.stderr)
            return
        failed = _failed_jobs(queue_app, job_ids)
        if failed:
            print(file=sys.stderr)
            fail(f"render job(s) {failed} failed", code=EXIT_UNAVAILABLE,
                 advice="reads still render those pages; `cortex registry jobs --retry ID` queues a job again")
        time.sleep(0.5)
