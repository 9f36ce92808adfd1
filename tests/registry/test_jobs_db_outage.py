"""A job worker whose database goes away in the middle of a batch (PostgreSQL).

The worker reaches PostgreSQL through a TCP proxy written here; the test cuts every connection
through it while the worker decides a batch (the shared PostgreSQL server keeps running), then
lets connections through again. What must hold: the error is reported clearly, the batch's job is
run again once the database is back, nothing of the cut batch is staged, the run is switched
exactly once and the audit chain verifies.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.registry.conftest import Registry, pg_only
from tests.registry.test_jobs import ROOT, SLOWISH, _assert_applied_once, _cli, _policy_args, _revision, _stop
from tests.registry.test_retier import _catalogue, _policy_dir


class _Proxy:
    """Forward TCP connections from a loopback port to ``upstream``; :meth:`cut` closes every
    connection and refuses new ones until :meth:`restore`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.down:
                    client.close()
                    continue
                self.accepted += 1
                upstream = socket.create_connection(self.upstream)
                self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            self.down = True
            for s in self.open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.open = []

    def restore(self) -> None:
        with self.lock:
            self.down = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _through(proxy: _Proxy, db_url: str) -> str:
    return make_url(db_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _worker(db_url: str, log: Path) -> subprocess.Popen[bytes]:
    """A worker that never counts itself stalled during the test: what it ran during the outage
    must come back by its own means. It takes re-tier batches only (no scanner)."""
    return subprocess.Popen([sys.executable, "-m", "cli.main", "registry", "worker", "--db", db_url,
                             "--heartbeat", "0.5", "--stalled-after", "3600", "--no-scan"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
@pytest.mark.parametrize("outage", [0.0, 45.0], ids=["short", "longer-than-the-pool-timeout"])
def test_a_database_that_goes_away_mid_batch(registry: Registry, tmp_path: Path, outage: float) -> None:
    from sqlalchemy import text

    _catalogue(registry, 4)
    policy = _policy_dir(tmp_path / "policy", SLOWISH, experimental="notice")
    r = _cli("registry", "retier", "--db", registry.db_url, "--batch", "2", *_policy_args(policy))
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout)["run"]
    url = make_url(registry.db_url)
    proxy = _Proxy((url.host or "127.0.0.1", url.port or 5432))
    log = tmp_path / "w.log"
    worker = _worker(_through(proxy, registry.db_url), log)
    engine = registry.store.engine
    try:
        deadline = time.monotonic() + 120
        while True:  # the worker is deciding its first batch
            with engine.connect() as c:
                doing = c.execute(text("SELECT count(*) FROM procrastinate.procrastinate_jobs "
                                       "WHERE status = 'doing'")).scalar_one()
            if doing:
                break
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
            time.sleep(0.1)
        proxy.cut()
        # The database is unreachable for the worker for a while: nothing of the batch is
        # staged, nothing is switched, and the worker says why.
        deadline = time.monotonic() + 180
        while "failed, will be retried: Unavailable: the registry database is unavailable" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        with engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM retier_result")).scalar_one() == 0
            assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'catalogue.retier'")).scalar_one() == 0
        assert registry.store.retier_progress(run_id)["state"] == "running"
        time.sleep(outage)
        proxy.restore()
        deadline = time.monotonic() + 240
        while registry.store.retier_progress(run_id)["state"] == "running":
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        _stop(worker)
        proxy.close()
    _assert_applied_once(registry, _revision(policy), 4)
    with engine.connect() as c:
        statuses = c.execute(text("SELECT status FROM procrastinate.procrastinate_jobs "
                                  "WHERE task_name = 'registry.retier_batch'")).scalars().all()
        started = c.execute(text("SELECT count(*) FROM procrastinate.procrastinate_events "
                                 "WHERE type = 'started'")).scalar_one()
    assert statuses == ["succeeded"] * 2
    assert started >= 3, "the cut batch was not run again"
    if outage:  # its end could not be stored: the worker found it still marked running
        assert "ended while the database was away: queued again" in log.read_text()
