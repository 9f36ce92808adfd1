"""Scans and periodic jobs on the job engine: real ``cortex registry worker`` processes on a real
PostgreSQL (one killed with SIGKILL mid-scan; two sharing the periodic rescan), and the same task
functions run by the in-process runner on SQLite.

A publish defers its scan job in its own transaction; a worker with a scanner (here a stub
``trivy`` binary) runs it, records the registry's scan and re-decides the version.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.registry.conftest import POLICY_DIR, Registry, pg_only
from tests.registry.test_jobs import _cli, _stop, _worker
from tests.registry.test_publish_cli import STUB_TRIVY, STUB_TRIVY_ARGS
from tests.registry.test_scan_jobs import Trivy

#: The first call hangs (the worker is killed meanwhile); later calls write a clean report.
HANGING_TRIVY = STUB_TRIVY_ARGS + """if [ ! -e "$0.hung" ]; then touch "$0.hung"; sleep 120; fi
""" + STUB_TRIVY.removeprefix(STUB_TRIVY_ARGS)


def _scan_args(tmp_path: Path, script: str = STUB_TRIVY) -> list[str]:
    """Worker options: the registry fixture's policy and OCI registry, and a stub trivy."""
    trivy = tmp_path / "trivy"
    trivy.write_text(script)
    trivy.chmod(0o755)
    db = tmp_path / "trivy-cache"
    (db / "db").mkdir(parents=True, exist_ok=True)
    (db / "db" / "trivy.db").write_bytes(b"")
    return ["--no-default-policies", "--policy-dir", str(POLICY_DIR), "--data", str(POLICY_DIR / "data.json"),
            "--allow-registry", "ghcr.io", "--trivy", str(trivy), "--trivy-db", str(db)]


def _until(check: Callable[[], Any], log: Path, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.3)
    return found


def _scan(registry: Registry) -> tuple[str, int] | None:
    with registry.store.engine.connect() as c:
        row = c.execute(text("SELECT state, attempts FROM scan_job")).first()
    return None if row is None or row[0] not in ("done", "failed") else (row[0], row[1])


def _queue(registry: Registry, task: str) -> list[tuple[str, int, Any]]:
    with registry.store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text(  # type: ignore[misc]
            "SELECT status, attempts, args FROM procrastinate.procrastinate_jobs WHERE task_name = :t ORDER BY id"),
            {"t": task})]


def _scanned_by_the_registry(registry: Registry) -> None:
    """The version carries the registry's scan, decided again once (one ``version.scan``)."""
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["present"] is True and doc["evidence"]["scan"]["origin"] == "registry"
    with registry.store.engine.connect() as c:
        scans = c.execute(text("SELECT after_json FROM audit_log WHERE action = 'version.scan'")).scalars().all()
        evidence = c.execute(text("SELECT count(*) FROM evidence WHERE kind = 'scan'")).scalar_one()
    assert len(scans) == 1 and json.loads(scans[0])["state"] == "done" and evidence == 1
    assert json.loads(scans[0])["tier"] == doc["tier"]
    assert registry.store.audit_verify() == []


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_publish_defers_its_scan_and_a_worker_runs_it(registry: Registry, tmp_path: Path) -> None:
    assert registry.publish(registry.token()).status_code == 201
    # The job was committed with the publish: queued before any worker exists.
    [(status, _, args)] = _queue(registry, "registry.scan_version")
    assert status == "todo" and set(args) == {"scan_id"}
    _, before = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert before["evidence"]["scan"]["present"] is False
    worker = _worker(registry.db_url, tmp_path / "w.log", *_scan_args(tmp_path))
    try:
        assert _until(lambda: _scan(registry), tmp_path / "w.log") == ("done", 1)
        _until(lambda: _queue(registry, "registry.scan_version")[0][0] == "succeeded", tmp_path / "w.log")
    finally:
        _stop(worker)
    _scanned_by_the_registry(registry)
    listing = _cli("registry", "jobs", "--db", registry.db_url, "--status", "succeeded", "--format", "json")
    [job] = [j for j in json.loads(listing.stdout) if j["task"] == "registry.scan_version"]
    assert job["version"] == "acme/hello@1.0.0" and job["scan_state"] == "done"


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_worker_killed_mid_scan_leaves_the_job_to_another(registry: Registry, tmp_path: Path) -> None:
    assert registry.publish(registry.token()).status_code == 201
    args = _scan_args(tmp_path, HANGING_TRIVY)
    a = _worker(registry.db_url, tmp_path / "a.log", *args)
    b = None
    try:
        _until(lambda: (tmp_path / "trivy.hung").exists(), tmp_path / "a.log")  # A is scanning
        with registry.store.engine.connect() as c:
            assert c.execute(text("SELECT state FROM scan_job")).scalar_one() == "running"
        b = _worker(registry.db_url, tmp_path / "b.log", *args)
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
        assert _until(lambda: _scan(registry), tmp_path / "b.log") == ("done", 2)  # claimed again by B
        _until(lambda: _queue(registry, "registry.scan_version")[0][0] == "succeeded", tmp_path / "b.log")
    finally:
        _stop(a, *([b] if b else []))
    _scanned_by_the_registry(registry)
    with registry.store.engine.connect() as c:
        retried = c.execute(text("SELECT count(*) FROM procrastinate.procrastinate_events "
                                 "WHERE type = 'deferred_for_retry'")).scalar_one()
    assert retried >= 1


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_two_workers_run_the_periodic_rescan_once_per_period(registry: Registry, tmp_path: Path) -> None:
    args = [*_scan_args(tmp_path), "--rescan-cron", "* * * * * */2"]
    workers = [_worker(registry.db_url, tmp_path / f"w{i}.log", *args) for i in range(2)]
    try:
        _until(lambda: len([r for r in _queue(registry, "registry.rescan_due") if r[0] == "succeeded"]) >= 4,
               tmp_path / "w0.log")
    finally:
        _stop(*workers)
    runs = _queue(registry, "registry.rescan_due")
    periods = [args["timestamp"] for _, _, args in runs]
    assert len(periods) == len(set(periods)) >= 4  # one job per period, whichever worker deferred it
    assert all(b - a >= 2 and b % 2 == 0 for a, b in itertools.pairwise(periods))
    assert {status for status, _, _ in runs} <= {"succeeded", "todo", "doing"}
    assert all(attempts == 1 for status, attempts, _ in runs if status == "succeeded")  # each ran once
    for i in range(2):
        assert "scans on" in (tmp_path / f"w{i}.log").read_text()


def _delete_version(registry: Registry) -> None:
    """The version (id 1) removed behind the registry's back, its scan job row with it."""
    with registry.store.engine.begin() as c:
        for table in ("evidence", "version_bundle", "scan_job", "decision_receipt"):
            c.execute(text(f"DELETE FROM {table} WHERE version_id = 1"))
        c.execute(text("DELETE FROM plugin_version WHERE id = 1"))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_scan_job_for_a_version_deleted_meanwhile_fails_clearly(registry: Registry, tmp_path: Path) -> None:
    assert registry.publish(registry.token()).status_code == 201
    _delete_version(registry)
    worker = _worker(registry.db_url, tmp_path / "w.log", *_scan_args(tmp_path))
    try:
        _until(lambda: _queue(registry, "registry.scan_version")[0][0] == "failed", tmp_path / "w.log")
    finally:
        _stop(worker)
    [(_, attempts, _)] = _queue(registry, "registry.scan_version")
    assert attempts == 1  # ran once: a wrong input is not retried
    listing = _cli("registry", "jobs", "--db", registry.db_url)
    assert "failed" in listing.stdout and "scan job 1 is no longer in the registry" in listing.stdout, listing.stdout
    with registry.store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action LIKE 'scan.%' "
                              "OR action = 'version.scan'")).scalar_one() == 0  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_cancelling_a_queued_scan_job_leaves_the_version_unscanned(registry: Registry) -> None:
    assert registry.publish(registry.token()).status_code == 201
    listing = _cli("registry", "jobs", "--db", registry.db_url, "--format", "json")
    [job] = [j for j in json.loads(listing.stdout) if j["task"] == "registry.scan_version"]
    assert (job["status"], job["version"], job["scan_state"]) == ("todo", "acme/hello@1.0.0", "queued")
    r = _cli("registry", "jobs", "--db", registry.db_url, "--cancel", str(job["id"]))
    assert r.returncode == 0 and "its scan is marked failed" in r.stdout, r.stderr
    with registry.store.engine.connect() as c:
        assert tuple(c.execute(text("SELECT state, error FROM scan_job")).one()) == (
            "failed", f"job {job['id']} was cancelled")
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["present"] is False  # never "clean"
    assert registry.store.audit_verify() == []


# --- SQLite: the same task functions, in process -------------------------------------------------


def _runner_app(registry: Registry, scanner: Any, **config: Any) -> Any:
    from registry import create_app

    cfg = replace(registry.app.state.config, scanner=scanner, **config)
    return create_app(cfg, evaluator=registry.app.state.evaluator, db=registry.store.engine, start_jobs=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_in_process_a_scan_runs_after_its_publish_commits_and_is_found_again_after_a_restart(
        registry: Registry) -> None:
    app = _runner_app(registry, Trivy())
    with TestClient(app) as client:
        assert client.post("/api/v1/plugins", json=_body(), headers=registry.auth(registry.token())).status_code == 201
    trivy = Trivy()
    restarted = _runner_app(registry, trivy)  # the first process stopped before scanning
    assert restarted.state.jobs.run_once() == ("registry.scan_version", "scanned")
    assert restarted.state.jobs.run_once() is None
    assert len(trivy.calls) == 1
    _scanned_by_the_registry(registry)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_in_process_a_scan_for_a_version_deleted_meanwhile_is_dropped(registry: Registry) -> None:
    trivy = Trivy()
    app = _runner_app(registry, trivy)
    with TestClient(app) as client:
        assert client.post("/api/v1/plugins", json=_body(), headers=registry.auth(registry.token())).status_code == 201
    _delete_version(registry)
    assert app.state.jobs.run_once() == ("registry.scan_version", "gone")
    assert app.state.jobs.run_once() is None and trivy.calls == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_in_process_the_periodic_rescan_runs_once_per_period(registry: Registry) -> None:
    from datetime import timedelta

    app = _runner_app(registry, Trivy(), rescan_after=timedelta(days=6))
    runner = app.state.jobs
    assert runner.run_once() == ("registry.rescan_due", [])  # checked at start
    assert runner.run_once() is None
    registry.clock.advance(minutes=59)
    assert runner.run_once() is None  # hourly
    registry.clock.advance(minutes=2)
    assert runner.run_once() == ("registry.rescan_due", [])
    assert runner.run_once() is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_runs_jobs_itself_on_sqlite_and_says_who_scans(registry: Registry) -> None:
    queue = _runner_app(registry, None, jobs="queue")  # what `serve --jobs queue` builds
    with TestClient(queue) as client:
        assert client.get("/healthz").json()["scanning"] == "queue"
    assert queue.state.jobs is None
    r = _cli("registry", "serve", "--db", registry.db_url, "--jobs", "queue", "--no-scan")
    assert r.returncode == 2 and "--jobs queue needs a PostgreSQL registry database" in r.stderr, r.stderr
    r = _cli("registry", "serve", "--db", registry.db_url, "--jobs", "sometimes", "--no-scan")
    assert r.returncode == 2 and "expected local or queue" in r.stderr, r.stderr


def test_the_worker_refuses_a_bad_rescan_schedule() -> None:
    r = _cli("registry", "worker", "--db", "sqlite:///unused.db", "--rescan-cron", "every hour")
    assert r.returncode == 2 and "not a cron schedule" in r.stderr


def _body() -> dict[str, Any]:
    from tests.registry.conftest import publish_body

    return publish_body()
