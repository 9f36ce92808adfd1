"""Re-tier runs as batch jobs (registry._jobs): real procrastinate workers on a real PostgreSQL
(worker processes started by the test, one killed with SIGKILL mid-run), and the same batch
function in-process on SQLite.

What every run must end with: each version decided exactly once into the new policy's decision,
one ``catalogue.retier`` audit entry, the audit chain intact, no staged row left.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.registry.conftest import Registry, pg_only
from tests.registry.test_retier import _catalogue, _policy_dir

ROOT = Path(__file__).resolve().parents[2]

#: About a hundred thousand iterations per decision: a batch takes long enough to be killed in.
SLOWISH = """\
package cortex

import rego.v1

deny contains {"code": "NEVER", "message": "never"} if {
	every i in numbers.range(1, 1600) {
		every j in numbers.range(1, 250) {
			i + j > 0
		}
	}
	false
}
"""


def _cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)


def _worker(db_url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A worker process; without ``extra`` options it takes re-tier batches only (no scanner)."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", "registry", "worker", "--db", db_url,
                             "--heartbeat", "0.5", "--stalled-after", "2", *(extra or ("--no-scan",))],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _policy_args(policy: Path) -> list[str]:
    return ["--no-default-policies", "--policy-dir", str(policy), "--data", str(policy / "data.json")]


def _assert_applied_once(registry: Registry, revision: str, n: int) -> None:
    """Every version carries ``revision``'s decision (experimental -> notice), one retier entry."""
    from sqlalchemy import text

    with registry.store.engine.connect() as c:
        rows = c.execute(text("SELECT action, policy_revision FROM plugin_version")).all()
        entries = c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'catalogue.retier'")).scalar_one()
        staged = c.execute(text("SELECT count(*) FROM retier_result")).scalar_one()
        states = c.execute(text("SELECT state FROM retier_run")).scalars().all()
    assert len(rows) == n
    assert {tuple(r) for r in rows} == {("notice", revision)}
    assert entries == 1 and staged == 0 and states == ["applied"]
    assert registry.store.audit_verify() == []


def _revision(policy: Path) -> str:
    from cortex_trust.policy import load_policy_set

    return load_policy_set([policy], [policy / "data.json"], defaults=False).revision


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_queued_retier_is_decided_by_a_worker_exactly_once(registry: Registry, tmp_path: Path) -> None:
    _catalogue(registry, 7)
    policy = _policy_dir(tmp_path / "policy", experimental="notice")
    worker = _worker(registry.db_url, tmp_path / "w.log")
    try:
        r = _cli("registry", "retier", "--db", registry.db_url, "--batch", "3", "--wait", *_policy_args(policy))
    finally:
        _stop(worker)
    assert r.returncode == 0, r.stderr + (tmp_path / "w.log").read_text()
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts == {"versions": 7, "changed": 7, "failed": 0, "policy_revision": _revision(policy)}
    assert "7/7 versions" in r.stderr
    _assert_applied_once(registry, _revision(policy), 7)
    listing = _cli("registry", "jobs", "--db", registry.db_url, "--status", "succeeded", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    jobs = json.loads(listing.stdout)
    assert len(jobs) == 3 and {j["run_state"] for j in jobs} == {"applied"}


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_killed_worker_s_batch_is_retried_and_the_run_completes(registry: Registry, tmp_path: Path) -> None:
    """Two workers; worker A is killed with SIGKILL in the middle of a batch; its job goes back
    to the queue (no heartbeat), worker B decides it, and the run is applied once."""
    from sqlalchemy import text

    _catalogue(registry, 6)
    policy = _policy_dir(tmp_path / "policy", SLOWISH, experimental="notice")
    r = _cli("registry", "retier", "--db", registry.db_url, "--batch", "2", *_policy_args(policy))
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run"]
    a = _worker(registry.db_url, tmp_path / "a.log")
    b = None
    try:
        with registry.store.engine.connect() as c:  # A alone holds the first batch
            deadline = time.monotonic() + 120
            while not c.execute(text("SELECT count(*) FROM procrastinate.procrastinate_jobs "
                                     "WHERE status = 'doing'")).scalar_one():
                assert time.monotonic() < deadline, (tmp_path / "a.log").read_text()
                time.sleep(0.1)
                c.commit()
        b = _worker(registry.db_url, tmp_path / "b.log")
        time.sleep(1.0)
        assert registry.store.retier_progress(run_id)["state"] == "running"
        os.killpg(a.pid, signal.SIGKILL)
        a.wait()
        deadline = time.monotonic() + 240
        while registry.store.retier_progress(run_id)["state"] == "running":
            assert time.monotonic() < deadline, (tmp_path / "b.log").read_text()
            time.sleep(0.5)
    finally:
        _stop(a, *([b] if b else []))
    assert registry.store.retier_progress(run_id)["state"] == "applied", (tmp_path / "b.log").read_text()
    _assert_applied_once(registry, _revision(policy), 6)
    with registry.store.engine.connect() as c:
        # The killed worker's job went back to the queue and was started again.
        requeued = c.execute(text("SELECT job_id FROM procrastinate.procrastinate_events "
                                  "WHERE type = 'deferred_for_retry'")).scalars().all()
        started = c.execute(text("SELECT job_id, count(*) FROM procrastinate.procrastinate_events "
                                 "WHERE type = 'started' GROUP BY job_id")).all()
        statuses = c.execute(text("SELECT status FROM procrastinate.procrastinate_jobs "
                                  "WHERE task_name = 'registry.retier_batch'")).scalars().all()
    assert len(requeued) >= 1 and {j: n for j, n in started}[requeued[0]] >= 2
    assert statuses == ["succeeded"] * 3


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_jobs_for_an_unknown_run_or_a_deleted_version_fail_clearly(registry: Registry, tmp_path: Path) -> None:
    from sqlalchemy import text

    from registry._jobs import defer_retier, open_app

    _catalogue(registry, 2)
    policy = _policy_dir(tmp_path / "policy", experimental="notice")
    r = _cli("registry", "retier", "--db", registry.db_url, *_policy_args(policy))
    run_id = json.loads(r.stdout)["run"]
    with open_app(registry.db_url).open() as queue_app:
        [unknown] = defer_retier(queue_app, "no-such-run", [[1]])
    with registry.store.engine.begin() as c:  # a version gone behind the registry's back
        c.execute(text("DELETE FROM evidence WHERE version_id = 2"))
        c.execute(text("DELETE FROM version_bundle WHERE version_id = 2"))
        c.execute(text("DELETE FROM scan_job WHERE version_id = 2"))
        c.execute(text("DELETE FROM decision_receipt WHERE version_id = 2"))
        c.execute(text("DELETE FROM plugin_version WHERE id = 2"))
    worker = _worker(registry.db_url, tmp_path / "w.log")
    try:
        deadline = time.monotonic() + 120
        while registry.store.retier_progress(run_id)["state"] == "running":
            assert time.monotonic() < deadline, (tmp_path / "w.log").read_text()
            time.sleep(0.3)
        listing = _cli("registry", "jobs", "--db", registry.db_url, "--status", "failed", "--format", "json")
    finally:
        _stop(worker)
    progress = registry.store.retier_progress(run_id)
    assert progress["state"] == "failed" and "version id(s) [2] are no longer in the registry" in progress["error"]
    jobs = {j["id"]: j for j in json.loads(listing.stdout)}
    assert jobs[unknown]["run_state"] == "unknown" and "no re-tier run" in jobs[unknown]["error"]
    with registry.store.engine.connect() as c:  # nothing was switched, nothing left staged
        assert {r[0] for r in c.execute(text("SELECT action FROM plugin_version"))} == {"warn"}
        assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
    bad = _cli("registry", "jobs", "--db", registry.db_url, "--retry", "999999")
    assert bad.returncode == 2 and "no job 999999" in bad.stderr
    cancel = _cli("registry", "jobs", "--db", registry.db_url, "--cancel", str(unknown))
    assert cancel.returncode == 2 and "only a queued job can be cancelled" in cancel.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_same_batches_run_in_process(registry: Registry, tmp_path: Path) -> None:
    """SQLite: `retier` runs the batch jobs' function here on two threads (each with its own engine
    process), and switches once."""
    _catalogue(registry, 7)
    policy = _policy_dir(tmp_path / "policy", experimental="notice")
    r = _cli("registry", "retier", "--db", registry.db_url, "--batch", "1", "--workers", "2", *_policy_args(policy))
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert counts == {"versions": 7, "changed": 7, "failed": 0, "policy_revision": _revision(policy)}
    _assert_applied_once(registry, _revision(policy), 7)
    # The run before is no write during the next one: a second run applies too.
    again = _cli("registry", "retier", "--db", registry.db_url, "--batch", "3", "--workers", "0", *_policy_args(policy))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["changed"] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_queue_commands_need_postgresql(registry: Registry) -> None:
    for argv in (["worker"], ["jobs"]):
        r = _cli("registry", *argv, "--db", registry.db_url)
        assert r.returncode == 2 and "needs a PostgreSQL registry database" in r.stderr



@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_cancelling_a_queued_job_discards_its_run(registry: Registry, tmp_path: Path) -> None:
    from sqlalchemy import text

    _catalogue(registry, 3)
    policy = _policy_dir(tmp_path / "policy", experimental="notice")
    r = _cli("registry", "retier", "--db", registry.db_url, "--batch", "2", *_policy_args(policy))
    run_id = json.loads(r.stdout)["run"]
    listing = _cli("registry", "jobs", "--db", registry.db_url, "--format", "json")
    queued = [j for j in json.loads(listing.stdout) if j["task"] == "registry.retier_batch"]
    assert [(j["status"], j["run"], j["versions"]) for j in queued] == [("todo", run_id, 2), ("todo", run_id, 1)]
    cancel = _cli("registry", "jobs", "--db", registry.db_url, "--cancel", str(queued[0]["id"]))
    assert cancel.returncode == 0 and f"re-tier run {run_id} discarded" in cancel.stdout, cancel.stderr
    again = _cli("registry", "jobs", "--db", registry.db_url)
    assert "(cancelled, 1 versions)" in again.stdout and f"job {queued[0]['id']} was cancelled" in again.stdout
    retry = _cli("registry", "jobs", "--db", registry.db_url, "--retry", str(queued[1]["id"]))
    assert retry.returncode == 2 and "is todo, not failed" in retry.stderr
    worker = _worker(registry.db_url, tmp_path / "w.log")  # the run's last job finds it ended
    try:
        deadline = time.monotonic() + 120
        while " run " in _cli("registry", "jobs", "--db", registry.db_url, "--status", "todo").stdout:
            assert time.monotonic() < deadline, (tmp_path / "w.log").read_text()
            time.sleep(0.5)
    finally:
        _stop(worker)
    with registry.store.engine.connect() as c:
        assert {r[0] for r in c.execute(text("SELECT action FROM plugin_version"))} == {"warn"}
        assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
    assert registry.store.audit_verify() == []


def _decide_all(registry: Registry, policy_set: object) -> tuple[str, object]:
    """Start a run on ``policy_set`` and stage every batch (nothing switched yet)."""
    from registry._retier import Decider

    store = registry.store
    run_id, batches = store.retier_start(policy_set=policy_set, now=registry.clock(), batch=2)
    decider = Decider(policy_set, in_process=True)  # type: ignore[arg-type]
    for ids in batches:
        assert store.retier_decide(run_id, ids, decider=decider) == len(ids)
        assert store.retier_decide(run_id, ids, decider=decider) == 0  # a batch run again decides nothing
    return run_id, decider


def test_writes_during_a_run_are_decided_again_at_the_switch(registry: Registry, tmp_path: Path) -> None:
    """A version revoked after its batch was staged, and one published during the run, end with
    the run's policy decided on their current facts: a staged decision never overwrites newer
    facts."""
    from tests.registry.test_retier import _policy

    _catalogue(registry, 3)
    policy = _policy(tmp_path, experimental="notice")
    run_id, pool = _decide_all(registry, policy)
    acme = registry.token()
    assert registry.publish(acme, name="tool-9").status_code == 201
    r = registry.client.post("/api/v1/plugins/acme/tool-1/versions/1.0.0/revoke", json={"reason": "leaked key"},
                             headers=registry.auth(acme))
    assert r.status_code == 200, r.text
    try:
        result = registry.store.retier_apply(run_id, decider=pool, now=registry.clock())
    finally:
        pool.close()  # type: ignore[attr-defined]
    assert result == {"versions": 4, "changed": 3, "failed": 0, "policy_revision": policy.revision}
    docs = {n: registry.get(f"/api/v1/plugins/acme/{n}/versions/1.0.0")[1]
            for n in ("tool-0", "tool-1", "tool-2", "tool-9")}
    assert {n: d["policy_revision"] for n, d in docs.items()} == dict.fromkeys(docs, policy.revision)
    assert docs["tool-1"]["state"] == "revoked" and docs["tool-1"]["action"] == "block"
    assert {docs[n]["action"] for n in ("tool-0", "tool-2", "tool-9")} == {"notice"}
    assert registry.store.retier_progress(run_id)["state"] == "applied"
    assert registry.store.audit_verify() == []


def _assert_discarded_at_the_switch(registry: Registry, run_id: str, pool: object, error: str) -> None:
    """Switching run ``run_id`` (two versions) discards it with ``error``; nothing changes."""
    try:
        assert registry.store.retier_apply(run_id, decider=pool, now=registry.clock()) is None  # type: ignore[arg-type]
    finally:
        pool.close()  # type: ignore[attr-defined]
    progress = registry.store.retier_progress(run_id)
    assert progress["state"] == "failed" and error in progress["error"]
    assert {d["action"] for d in (registry.get(f"/api/v1/plugins/acme/tool-{i}/versions/1.0.0")[1]
                                  for i in range(2))} == {"warn"}
    assert registry.store.audit_verify() == []


def test_a_run_overtaken_by_another_retier_is_discarded(registry: Registry, tmp_path: Path) -> None:
    from tests.registry.test_retier import _policy, _retier

    _catalogue(registry, 2)
    run_id, pool = _decide_all(registry, _policy(tmp_path, experimental="notice"))
    _retier(registry, _policy(tmp_path / "other", experimental="warn"), workers=0)
    _assert_discarded_at_the_switch(registry, run_id, pool, "re-tiered while this run was deciding")


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_two_api_processes_and_two_workers_share_one_database(db_url: str, tmp_path: Path) -> None:
    """Publishes race through two `serve` processes (one winner for the same version, every
    other version stored once), then two workers re-tier the catalogue; the audit chain holds."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from registry import make_engine, migrate
    from registry._store import Store
    from tests.registry.conftest import FIXTURES, POLICY_DIR, publish_body
    from tests.support.served_registry import serve_registry

    engine = make_engine(db_url)
    migrate(engine)
    token = _cli("registry", "token", "create", "--namespace", "acme", "--role", "publisher", "--expires", "1d",
                 "--db", db_url).stdout.strip()
    args = ("--no-default-policies", "--policy-dir", str(POLICY_DIR), "--data", str(POLICY_DIR / "data.json"),
            "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"), "--allow-registry", "ghcr.io",
            "--no-scan")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    workers: list[subprocess.Popen[bytes]] = []
    with serve_registry(tmp_path / "a", *args, db=db_url) as a, serve_registry(tmp_path / "b", *args, db=db_url) as b:
        def publish(i: int) -> int:
            url = (a if i % 2 else b).url
            body = publish_body(name="same" if i >= 10 else f"tool-{i}")
            return httpx.post(f"{url}/api/v1/plugins", json=body, timeout=60,
                              headers={"Authorization": f"Bearer {token}"}).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(publish, range(12)))
        assert codes[:10] == [201] * 10 and sorted(codes[10:]) == [201, 409], codes
        policy = _policy_dir(tmp_path / "policy", experimental="notice")
        workers = [_worker(db_url, tmp_path / f"w{i}.log") for i in range(2)]
        try:
            r = _cli("registry", "retier", "--db", db_url, "--batch", "2", "--wait", *_policy_args(policy))
        finally:
            _stop(*workers)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["changed"] == 11
        for served in (a, b):
            listing = httpx.get(f"{served.url}/api/v1/plugins?limit=100", timeout=30).json()
            assert len(listing["items"]) == 11 and {p["action"] for p in listing["items"]} == {"notice"}
    store = Store(engine)
    try:
        assert store.audit_verify() == []
        assert store.retier_progress(json.loads(r.stderr.splitlines()[0])["run"])["state"] == "applied"
    finally:
        engine.dispose()


def test_the_retry_policy_retries_what_may_pass_and_never_a_wrong_input() -> None:
    from procrastinate.jobs import Job

    from cortex_trust.errors import EngineError, PolicyError
    from registry._errors import Unavailable
    from registry._jobs import MAX_ATTEMPTS, _Retry
    from registry._retier import RetierFailed
    from registry._store import UnknownRun, VersionsGone

    def decision(error: BaseException, attempts: int) -> object:
        job = Job(id=1, queue="retier", lock=None, queueing_lock=None, task_name="registry.retier_batch",
                  task_kwargs={}, attempts=attempts)
        return _Retry().get_retry_decision(exception=error, job=job)

    down = Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable", advice="retry later")
    assert decision(down, 0) is not None and decision(EngineError("crashed"), 1) is not None
    assert decision(down, MAX_ATTEMPTS - 1) is None  # the last run: the job ends as failed
    for wrong in (UnknownRun("x"), VersionsGone("x"), PolicyError("x"), RetierFailed("x")):
        assert decision(wrong, 0) is None


def test_a_run_whose_stored_policy_was_modified_is_refused(registry: Registry, tmp_path: Path) -> None:
    """The revision of a run's policy is recomputed from its stored modules and data: a modified
    ``policy_json`` is refused (a final error: the job discards the run), never decided under the
    run's revision. The start entry records the stored policy's sha256."""
    import hashlib

    from sqlalchemy import text

    from cortex_trust.errors import PolicyError
    from registry._jobs import _is_final
    from tests.registry.test_retier import _policy

    _catalogue(registry, 2)
    policy = _policy(tmp_path, experimental="notice")
    run_id, pool = _decide_all(registry, policy)
    pool.close()  # type: ignore[attr-defined]
    assert registry.store.retier_policy(run_id)[0].revision == policy.revision  # type: ignore[attr-defined]
    with registry.store.engine.begin() as c:
        stored = c.execute(text("SELECT policy_json FROM retier_run WHERE id = :i"), {"i": run_id}).scalar_one()
        after = c.execute(text("SELECT after_json FROM audit_log WHERE action = 'catalogue.retier.start'")).scalar_one()
        assert json.loads(after)["policy_sha256"] == hashlib.sha256(stored.encode()).hexdigest()
        spec = json.loads(stored)
        spec["modules"][0][2] += "\n# injected\n"
        c.execute(text("UPDATE retier_run SET policy_json = :p WHERE id = :i"), {"p": json.dumps(spec), "i": run_id})
    with pytest.raises(PolicyError, match="not the run's") as e:
        registry.store.retier_policy(run_id)
    assert _is_final(e.value)


def test_a_tampered_staged_receipt_signs_nothing_and_discards_the_run(registry: Registry, tmp_path: Path) -> None:
    """A staged receipt whose payload names another decision than its staged row is refused at
    the switch (its signature covers the payload the worker decided, not this one): no
    receipt, no decision changes, the run is discarded."""
    from sqlalchemy import text

    from registry._jobs import _failed
    from registry._store import TamperedRun
    from tests.registry.test_retier import _policy

    _catalogue(registry, 3)
    run_id, pool = _decide_all(registry, _policy(tmp_path, experimental="notice"))
    receipts = _stage_an_allow(registry, rewrite_row=False)
    try:
        with pytest.raises(TamperedRun) as e:
            registry.store.retier_apply(run_id, decider=pool, now=registry.clock())  # type: ignore[arg-type]
    finally:
        pool.close()  # type: ignore[attr-defined]
    _failed(registry.store, run_id, e.value, final=False)  # what the job does with the error
    with registry.store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM decision_receipt")).scalar_one() == receipts
        assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
        assert {r[0] for r in c.execute(text("SELECT action FROM plugin_version"))} == {"warn"}
    progress = registry.store.retier_progress(run_id)
    assert progress["state"] == "failed" and "staged receipt" in progress["error"]
    assert registry.store.audit_verify() == []


def test_a_run_switched_more_than_a_day_after_its_decision_is_discarded(registry: Registry, tmp_path: Path) -> None:
    from tests.registry.test_retier import _policy

    _catalogue(registry, 2)
    run_id, pool = _decide_all(registry, _policy(tmp_path, experimental="notice"))
    registry.clock.advance(days=1, seconds=1)
    _assert_discarded_at_the_switch(registry, run_id, pool, "more than 1 day")


def test_an_identity_revocation_with_a_pipe_in_its_issuer_discards_the_run(registry: Registry,
                                                                           tmp_path: Path) -> None:
    """An identity revocation target that does not split into one identity and one issuer is
    not assumed harmless: the run is discarded rather than switched over a revoked version."""
    from tests.registry.test_retier import _policy

    _catalogue(registry, 2)
    run_id, pool = _decide_all(registry, _policy(tmp_path, experimental="notice"))
    admin = registry.token(role="admin")
    r = registry.client.post("/api/v1/revocations/identity", headers=registry.auth(admin),
                             json={"identity": "https://ci.example/x", "issuer": "https://a|b", "reason": "r"})
    assert r.status_code == 200, r.text
    _assert_discarded_at_the_switch(registry, run_id, pool, "the catalogue was re-tiered while this run was deciding")


def test_an_in_process_run_on_threads_that_meets_corrupt_facts_is_discarded(registry: Registry, tmp_path: Path) -> None:
    """A batch whose stored facts no longer validate stops the run on every thread: the error
    propagates, the run is discarded, nothing is switched or left staged."""
    from sqlalchemy import text

    from registry._jobs import retier_in_process
    from registry._retier import RetierFailed
    from tests.registry.test_retier import _policy

    _catalogue(registry, 5)
    with registry.store.engine.begin() as c:  # the last version's stored input no longer validates
        c.execute(text("UPDATE plugin_version SET input_json = '{}' WHERE id = (SELECT max(id) FROM plugin_version)"))
    with pytest.raises(RetierFailed):
        retier_in_process(registry.store, _policy(tmp_path, experimental="notice"), now=registry.clock(),
                          workers=2, batch=1)
    with registry.store.engine.connect() as c:
        assert {r[0] for r in c.execute(text("SELECT action FROM plugin_version"))} == {"warn"}
        assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
        assert c.execute(text("SELECT state FROM retier_run")).scalars().all() == ["failed"]
    assert registry.store.audit_verify() == []


def test_a_staged_decision_rewritten_with_its_receipt_payload_is_refused_at_the_switch(registry: Registry,
                                                                                       tmp_path: Path) -> None:
    """A staged row and its receipt payload both rewritten to ``allow`` (the worker's signature
    kept) are refused at the switch: the staged receipt's signature must verify with the
    registry's receipt key, so no decision the deciding worker did not sign reaches a version."""
    from securesystemslib.signer import CryptoSigner
    from sqlalchemy import text

    from registry._store import TamperedRun
    from tests.registry.test_retier import _policy

    registry.store.receipt_issuer.signer = CryptoSigner.generate_ed25519()
    _catalogue(registry, 3)
    run_id, pool = _decide_all(registry, _policy(tmp_path, experimental="notice"))
    receipts = _stage_an_allow(registry, rewrite_row=True)
    try:
        with pytest.raises(TamperedRun):
            registry.store.retier_apply(run_id, decider=pool, now=registry.clock())  # type: ignore[arg-type]
    finally:
        pool.close()  # type: ignore[attr-defined]
    with registry.store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM decision_receipt")).scalar_one() == receipts
        assert "allow" not in {r[0] for r in c.execute(text("SELECT action FROM plugin_version"))}


def _stage_an_allow(registry: Registry, *, rewrite_row: bool) -> int:
    """Rewrite the first staged receipt's payload (and the staged row too when ``rewrite_row``)
    to ``allow``, keeping its signatures; returns how many receipts the registry holds."""
    from sqlalchemy import text

    with registry.store.engine.begin() as c:
        receipts = int(c.execute(text("SELECT count(*) FROM decision_receipt")).scalar_one())
        vid, staged = c.execute(text("SELECT version_id, receipt FROM retier_result ORDER BY version_id")).first()
        envelope = json.loads(staged)
        assert bool(envelope["signatures"]) == rewrite_row
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["decision"]["action"] = "allow"
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        c.execute(text("UPDATE retier_result SET receipt = :r" + (", action = 'allow'" if rewrite_row else "")
                       + " WHERE version_id = :v"), {"r": json.dumps(envelope).encode(), "v": vid})
    return receipts


def test_a_job_naming_versions_outside_its_run_stages_nothing(registry: Registry, tmp_path: Path) -> None:
    """A batch job whose version ids are not the run's (published after its start, or made
    up) is a wrong input: nothing is staged for them, so the switch never copies a decision
    that was not checked with the run."""
    from sqlalchemy import text

    from cortex_trust.errors import InputError
    from registry._retier import Decider
    from tests.registry.test_retier import _policy

    _catalogue(registry, 2)
    policy_set = _policy(tmp_path, experimental="notice")
    run_id, batches = registry.store.retier_start(policy_set=policy_set, now=registry.clock(), batch=10)
    newest = max(i for ids in batches for i in ids)
    decider = Decider(policy_set, in_process=True)
    try:
        for wrong in ([newest + 1], [0], [newest, newest + 5]):
            with pytest.raises(InputError, match="not part of the run"):
                registry.store.retier_decide(run_id, wrong, decider=decider)
    finally:
        decider.close()
    with registry.store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
