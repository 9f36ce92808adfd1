"""Scans age and the registry rescans them: a scan older than the policy's freshness limit
(``freshness.scan.max_age_days``, 7 days by default) no longer counts (``SCAN_STALE``, next_tier
says to rescan); the periodic rescan job and ``cortex registry rescan`` queue the
version again, and a rescan that finds a CRITICAL lowers the tier at once.

The scanner in process stands in for Trivy with real Trivy reports (tests/fixtures/trivy) bound
to the image digest; the real-process test runs ``cortex registry serve`` with a stub ``trivy``
binary that writes such a report, and ``cortex registry rescan`` against its database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cortex_trust.errors import CollectorError
from cortex_trust.evidence import parse_trivy_report
from cortex_trust.policy import ScanEvidence, format_time
from tests.registry._helpers import NO_PROMOTION
from tests.registry.test_publish_cli import OCI_HOST, STUB_TRIVY_ARGS, Cli, _publish, cli  # noqa: F401 (fixture)
from tests.registry.test_scan_origin import Scanning, _scanning, registry_evaluator, sigstore  # noqa: F401
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

TRIVY = Path(__file__).parent.parent / "fixtures" / "trivy"
CLEAN = "alpine-distroless.json"  # MEDIUM 1: within the default maximum
CRITICAL = "alpine-39.json"  # CRITICAL 2, MEDIUM 4


def bound(report: str, image: str) -> dict[str, Any]:
    """A real Trivy report as Trivy writes it for ``image`` pulled by digest."""
    doc: dict[str, Any] = json.loads((TRIVY / report).read_text())
    doc["ArtifactName"] = image
    doc["Metadata"]["RepoDigests"] = [image]
    return doc


class ReportScanner:
    """The registry's scanner: the fixture report named by ``report`` (switchable between
    scans, as new vulnerability data would change Trivy's answer), vuln and secret scanners run."""

    def __init__(self) -> None:
        self.report = CLEAN
        self.calls = 0
        self.fail = False

    def __call__(self, image: str, digest: str) -> ScanEvidence:
        self.calls += 1
        if self.fail:
            raise CollectorError("trivy could not pull the image", advice="retry")
        return parse_trivy_report(bound(self.report, image), digest=digest, source=f"trivy image {image}",
                                  declared_scanners=("vuln", "secret"), origin="pipeline").evidence


@pytest.fixture
def scanning(db_url: str, registry_evaluator: Any,  # noqa: F811
             sigstore: PrivateSigstore) -> Iterator[Scanning]:  # noqa: F811
    yield from _scanning(db_url, registry_evaluator, sigstore, ReportScanner())  # type: ignore[arg-type]


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def _missing(doc: dict[str, Any]) -> dict[str, str]:
    return {m["code"]: m["message"] for m in (doc["decision"]["next_tier"] or {}).get("missing", [])}


def test_a_scan_that_ages_out_drops_the_tier_until_the_scheduled_rescan(scanning: Scanning) -> None:
    clock = scanning.registry.clock
    scanning.publish()
    assert scanning.worker.run_once()
    scanned_at = format_time(clock())
    doc = scanning.version()
    assert doc["tier"] == "community", _codes(doc)
    assert doc["evidence"]["scan"]["created_at"] == scanned_at  # the registry's clock, not the report's

    worker = scanning.worker
    worker.settings.rescan_after = timedelta(days=6)
    clock.advance(days=5)
    assert worker.run_once() == ("registry.rescan_due", [])  # younger than rescan_after: nothing due
    clock.advance(days=2, hours=1)  # 7 days and an hour: past the policy's 7 days
    assert worker.run_once() == ("registry.rescan_due", ["acme/tool@1.0.0"])
    doc = scanning.version()
    assert doc["tier"] == "experimental" and "SCAN_STALE" in _codes(doc)
    assert doc["decision"]["next_tier"]["tier"] == "community"
    assert _missing(doc)["SCAN_STALE"].startswith(f"to reach community: rescan {doc['digest']}")
    assert doc["decision"]["sandbox"]["network"] is False  # granted at Community only
    # The check ran once this period (hourly): the next job is the rescan itself.
    assert worker.run_once() == ("registry.scan_version", "scanned")
    doc = scanning.version()
    assert doc["tier"] == "community", _codes(doc)
    assert doc["evidence"]["scan"]["created_at"] == format_time(clock())
    assert scanning.trivy.calls == 2
    assert scanning.registry.store.audit_verify() == []


def test_a_rescan_that_finds_a_critical_lowers_the_tier_at_once(scanning: Scanning) -> None:
    store, clock = scanning.registry.store, scanning.registry.clock
    scanning.publish()
    assert scanning.worker.run_once()
    assert scanning.version()["tier"] == "community"

    scanning.trivy.report = CRITICAL  # the vulnerability database learnt of two CRITICALs
    clock.advance(hours=1)
    assert store.queue_rescans(older_than=clock(), now=clock(), actor="operator") == ["acme/tool@1.0.0"]
    assert store.queue_rescans(older_than=clock(), now=clock()) == []  # already queued
    assert scanning.worker.run_once()
    doc = scanning.version()
    assert doc["tier"] == "experimental" and "SCAN_VULNERABILITIES" in _codes(doc)
    assert doc["evidence"]["scan"]["counts"]["CRITICAL"] == 2
    # Recorded in the audit log (the registry's transparency log): the tier before and after.
    with store.engine.connect() as c:
        rows = c.execute(text("SELECT action, before_json, after_json FROM audit_log "
                              "WHERE action IN ('scan.rescan', 'version.scan') ORDER BY id")).all()
    assert [r[0] for r in rows] == ["version.scan", "scan.rescan", "version.scan"]
    assert json.loads(rows[1][2])["versions"] == ["acme/tool@1.0.0"]
    assert json.loads(rows[2][1])["tier"] == "community"
    assert json.loads(rows[2][2])["tier"] == "experimental"


def test_revoked_versions_and_fresh_scans_are_not_rescanned(scanning: Scanning) -> None:
    store, clock = scanning.registry.store, scanning.registry.clock
    scanning.publish("1.0.0")
    scanning.publish("2.0.0")
    while scanning.worker.run_once():
        pass
    r = scanning.registry.client.post(
        "/api/v1/plugins/acme/tool/versions/1.0.0/revoke", json={"reason": "key leaked"},
        headers=scanning.registry.auth(scanning.registry.token()))
    assert r.status_code == 200, r.text
    assert store.queue_rescans(older_than=clock() - timedelta(days=1), now=clock()) == []
    clock.advance(days=8)
    assert store.queue_rescans(older_than=clock() - timedelta(days=6), now=clock()) == ["acme/tool@2.0.0"]


# --- the real processes ------------------------------------------------------------------------------

#: A trivy that writes the report in $0.report (its image placeholder replaced), as Trivy would
#: for the image it was given; rewriting that file changes what the next scan finds.
STUB_TRIVY = STUB_TRIVY_ARGS + """sed "s|@IMAGE@|$image|g" "$0.report" > "$out"
"""


@pytest.fixture
def served(tmp_path: Path, private_sigstore: PrivateSigstore) -> Iterator[tuple[ServedRegistry, Path]]:
    trivy = tmp_path / "trivy"
    trivy.write_text(STUB_TRIVY)
    trivy.chmod(0o755)
    report = tmp_path / "trivy.report"
    report.write_text(json.dumps(bound(CLEAN, "@IMAGE@")))
    db = tmp_path / "trivy-cache"
    (db / "db").mkdir(parents=True)
    (db / "db" / "trivy.db").write_bytes(b"")
    with serve_registry(tmp_path, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--trivy", str(trivy), "--trivy-db", str(db),
                        "--data", str(NO_PROMOTION)) as s:
        yield s, report


def _wait(served: ServedRegistry, version: str, tier: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = httpx.get(f"{served.url}/api/v1/plugins/acme/tool/versions/{version}", timeout=5)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        if doc["tier"] == tier:
            return doc
        assert time.monotonic() < deadline, (doc["decision"]["reasons"], served.log.read_text())
        time.sleep(0.3)


def test_cortex_registry_rescan_finds_a_new_critical(served: tuple[ServedRegistry, Path], cli: Cli) -> None:  # noqa: F811
    registry, report = served
    token = cli.token(registry, "acme", "publisher")
    f = cli.files("1.0.0")
    assert _publish(cli, f, "--tests", f["tests"], "--registry", registry.url, token=token).code == 0
    first = _wait(registry, "1.0.0", "community")["evidence"]["scan"]["created_at"]

    assert cli("registry", "rescan", "--db", registry.db, "--older-than", "1d").out.strip() == '{"queued": []}'
    report.write_text(json.dumps(bound(CRITICAL, "@IMAGE@")))  # new vulnerability data
    r = cli("registry", "rescan", "--db", registry.db, "--older-than", "0")
    assert r.code == 0, r.err
    assert json.loads(r.out) == {"queued": ["acme/tool@1.0.0"]}
    doc = _wait(registry, "1.0.0", "experimental")
    assert "SCAN_VULNERABILITIES" in _codes(doc)
    assert doc["evidence"]["scan"]["counts"]["CRITICAL"] == 2
    assert doc["evidence"]["scan"]["created_at"] >= first

    bad = cli("registry", "rescan", "--db", registry.db, "--older-than", "soon")
    assert bad.code == 2 and "6d" in bad.err


def test_a_scan_that_cannot_run_is_retried_once_per_period(scanning: Scanning) -> None:
    store, clock = scanning.registry.store, scanning.registry.clock
    scanning.trivy.fail = True
    scanning.publish()
    while scanning.worker.run_once():
        pass
    assert scanning.version()["evidence"]["scan"]["present"] is False  # failed: never "clean"
    assert store.queue_rescans(older_than=clock() - timedelta(hours=6), now=clock()) == []
    clock.advance(days=1)
    scanning.trivy.fail = False
    assert store.queue_rescans(older_than=clock() - timedelta(hours=6), now=clock()) == ["acme/tool@1.0.0"]
    assert scanning.worker.run_once()
    assert scanning.version()["tier"] == "community"
