"""Persisted scan jobs: queued atomically with a publish, restart-safe, allowlist-checked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cortex_trust.errors import CollectorError
from cortex_trust.policy import ScanEvidence
from tests.registry.conftest import A_TXT_DIGEST, Registry


class Trivy:
    """A scanner standing in for Trivy (not installed here): records what it was asked."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, image: str, digest: str) -> ScanEvidence:
        self.calls.append((image, digest))
        if self.fail:
            raise CollectorError("trivy crashed", advice="retry")
        return ScanEvidence(present=True, bound=True, digest=digest, produced_by="trivy",
                            scanners=["vuln", "secret", "misconfig"], counts={"HIGH": 1},
                            source="trivy")


def _app(registry: Registry, scanner: Any, **config: Any) -> Any:
    from registry import create_app

    cfg = replace(registry.app.state.config, scanner=scanner, **config)
    return create_app(cfg, evaluator=registry.app.state.evaluator, db=registry.store.engine,
                      start_jobs=False)


@pytest.fixture
def scanning(registry: Registry) -> Iterator[tuple[Registry, Trivy, Any, TestClient]]:
    trivy = Trivy()
    app = _app(registry, trivy)
    with TestClient(app) as client:
        yield registry, trivy, app, client


def _jobs(registry: Registry) -> list[tuple[str, int]]:
    with registry.store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT state, attempts FROM scan_job"))]


def test_publish_queues_a_scan_and_the_worker_records_it(scanning: Any) -> None:
    registry, trivy, app, client = scanning
    r = client.post("/api/v1/plugins", json=_body(), headers=registry.auth(registry.token()))
    assert r.status_code == 201
    assert r.json()["evidence"]["scan"]["present"] is False
    assert _jobs(registry) == [("queued", 0)]

    assert app.state.jobs.run_once()
    assert app.state.jobs.run_once() is None
    assert trivy.calls == [(f"ghcr.io/acme/hello@{A_TXT_DIGEST}", A_TXT_DIGEST)]
    assert _jobs(registry) == [("done", 1)]
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["present"] is True
    assert doc["evidence"]["scan"]["counts"] == {"HIGH": 1}
    assert registry.store.audit_verify() == []


def test_a_job_survives_a_restart_and_a_crashed_worker(registry: Registry) -> None:
    first = _app(registry, Trivy())
    with TestClient(first) as client:
        r = client.post("/api/v1/plugins", json=_body(), headers=registry.auth(registry.token()))
        assert r.status_code == 201
        # The worker claims the job, then "dies" before finishing.
        [(scan_id, _, _)] = registry.store.pending_scans()
        assert registry.store.claim_scan(scan_id, now=registry.clock(), lease=timedelta(minutes=5), retry=False)
    assert _jobs(registry) == [("running", 1)]

    trivy = Trivy()
    second = _app(registry, trivy)  # a restarted server on the same database
    assert second.state.jobs.run_once() is None  # lease still held
    registry.clock.advance(minutes=6)
    assert second.state.jobs.run_once()
    assert len(trivy.calls) == 1 and _jobs(registry) == [("done", 2)]


def test_failed_scans_retry_then_stay_unscanned(registry: Registry) -> None:
    app = _app(registry, Trivy(fail=True))
    with TestClient(app) as client:
        assert client.post("/api/v1/plugins", json=_body(),
                           headers=registry.auth(registry.token())).status_code == 201
    worker = app.state.jobs
    while worker.run_once():
        pass
    assert _jobs(registry) == [("failed", 3)]
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["present"] is False  # never "clean"


def test_worker_never_fetches_from_a_registry_no_longer_allowed(registry: Registry) -> None:
    app = _app(registry, Trivy())
    with TestClient(app) as client:
        assert client.post("/api/v1/plugins", json=_body(),
                           headers=registry.auth(registry.token())).status_code == 201
    trivy = Trivy()
    locked = _app(registry, trivy, oci_registries=("registry.internal",))
    while locked.state.jobs.run_once():
        pass
    assert trivy.calls == []
    assert _jobs(registry) == [("failed", 3)]


def test_a_scan_report_at_publish_does_not_replace_the_registry_scan(scanning: Any) -> None:
    """An uploaded report (forgeable by the publisher) is kept as self-reported evidence; it
    does not skip the job, and the registry's own scan, stored after it, supersedes it."""
    registry, trivy, app, client = scanning
    body = _body()
    assert trivy.calls == []
    body["scan_report"] = _TRIVY_FIXTURE.read_text()
    r = client.post("/api/v1/plugins", json=body, headers=registry.auth(registry.token()))
    assert r.status_code == 201, r.text
    assert r.json()["evidence"]["scan"]["origin"] == "self-reported"
    assert _jobs(registry) == [("queued", 0)]
    assert app.state.jobs.run_once()
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["origin"] == "registry"
    assert doc["evidence"]["scan"]["counts"] == {"HIGH": 1}  # the registry's, not the report's


def test_a_registry_without_a_scanner_still_queues_every_publish(registry: Registry) -> None:
    """The job waits for a registry process that can scan (e.g. a replica with Trivy)."""
    assert registry.client.get("/healthz").json() == {"ok": True, "scanning": "unavailable", "github": "not-configured"}
    assert registry.publish(registry.token()).status_code == 201
    assert registry.app.state.jobs.run_once() is None  # this process cannot scan: it takes no scan job
    assert _jobs(registry) == [("queued", 0)]
    later = _app(registry, Trivy())
    assert later.state.jobs.run_once()
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["evidence"]["scan"]["origin"] == "registry"


def _body() -> dict[str, Any]:
    from tests.registry.conftest import publish_body

    return publish_body()


_TRIVY_FIXTURE = Path(__file__).parent.parent / "fixtures" / "trivy" / "alpine-39.json"
