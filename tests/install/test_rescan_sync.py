"""Installed plugins and their registry's rescans: ``run`` and ``sync`` decide with the
registry's current scan of the installed digest, so a rescan that finds a CRITICAL moves an
installed Community plugin that asks for the network to block (``sync`` reports it to be
stopped), and a kept scan that ages out is ``SCAN_STALE``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cortex_trust.install import judge_install
from cortex_trust.policy import ScanEvidence, ScanVulnerability, format_time
from tests.install.conftest import cortex, installer
from tests.support.federation import Federation, manifest_text

NO_PROMOTION = Path(__file__).parent.parent / "fixtures" / "policy_data" / "no_promotion.yaml"
JUNIT = Path(__file__).parent.parent / "fixtures" / "junit" / "pytest-pass.xml"


def scan(fed: Federation, digest: str, *, now: datetime, critical: bool) -> None:
    """The registry's scan job records a scan of ``digest`` (standing in for Trivy)."""
    store = fed.private.store
    queued = [i for i, state, _ in store.pending_scans() if state == "queued"]
    job = store.claim_scan(queued[0], now=now, lease=timedelta(minutes=5), retry=False)
    assert job is not None and job.digest == digest
    vulns = [ScanVulnerability(id="CVE-2026-0001", severity="CRITICAL", package="openssl")] if critical else []
    evidence = ScanEvidence(present=True, bound=True, digest=digest, produced_by="trivy", origin="registry",
                            scanners=["vuln", "secret", "misconfig"], created_at=format_time(now),
                            counts={"CRITICAL": 1} if critical else {}, vulnerabilities=vulns)
    store.finish_scan_job(job.id, evidence=evidence, error=None, now=now, evaluate=fed.private.evaluator)


def publish_networked(fed: Federation, digest: str) -> None:
    """``acme/tool`` 1.0.0 (asks for the network, tests passing) published with image ``digest``
    on the private registry; its scan job is queued, not run."""
    with fed.private.client(fed.private.token("acme")) as c:
        c.publish(manifest=manifest_text("tool", "1.0.0", network=True),
                  image=f"{fed.private.oci_host}/acme/tool@{digest}", namespace="acme",
                  bundle=fed.sigstore.sign_digest(digest, identity="https://github.com/acme/tool/.github/"
                                                  "workflows/release.yml@refs/tags/v1",
                                                  issuer="https://token.actions.githubusercontent.com").decode(),
                  tests_junit=JUNIT.read_text())


def test_a_rescan_finding_a_critical_blocks_the_installed_plugin_at_sync(federation: Federation) -> None:
    fed = federation
    now = datetime.now(UTC)
    digest = "sha256:" + "5" * 64
    publish_networked(fed, digest)
    scan(fed, digest, now=now, critical=False)
    with installer(fed, data=[NO_PROMOTION]) as inst:
        plan = inst.plan("acme/tool", now=now)
        assert plan.decision.tier == "community" and plan.decision.sandbox.network, plan.decision.codes
        inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))
        assert inst.check_run("acme/tool", now=now).allowed
        assert inst.sync(now=now).blocked == ()
        # Kept locally, the install's scan ages out: SCAN_STALE, so the network is no longer granted.
        later = inst.check_run("acme/tool", now=now + timedelta(days=8), refresh=False)
        assert not later.allowed and {"SCAN_STALE", "NETWORK_NOT_GRANTED"} <= set(later.decision.codes)

    store = fed.private.store
    assert store.queue_rescans(older_than=now + timedelta(seconds=1), now=now, evaluate=fed.private.evaluator) \
        == ["acme/tool@1.0.0"]
    scan(fed, digest, now=now + timedelta(minutes=1), critical=True)
    with installer(fed, data=[NO_PROMOTION]) as inst:
        report = inst.sync(now=now + timedelta(minutes=2))
        [(record, decision)] = report.blocked
        assert record.name == "acme/tool" and decision.action.value == "block"
        assert {"SCAN_VULNERABILITIES", "NETWORK_NOT_GRANTED"} <= set(decision.codes)
        # The registry's new scan is kept: run decides with it even offline.
        offline = inst.check_run("acme/tool", now=now + timedelta(minutes=3), refresh=False)
        assert not offline.allowed and "SCAN_VULNERABILITIES" in offline.decision.codes
    r = cortex(fed, "plugin", "sync")
    assert r.exit_code == 0, r.output
    assert "BLOCKED: acme/tool@1.0.0 (sha256:555555555555…): " in r.output
    assert "SCAN_VULNERABILITIES" in r.output
