"""Scans on every publish, and who produced a scan (the registry's default policies decide).

A publisher's own Trivy report is forgeable JSON: it is recorded as ``self-reported`` and the
default policy does not accept it for Community on a registry (``SCAN_SELF_REPORTED``), so a
declared network is not granted. The registry's own scan (here a scanner function injected into
the real scan job, :func:`~registry._scan.scan_version` run by the in-process runner; Trivy
needs a vulnerability database these machines do not have) or a signed scan attestation from a
trusted attester is what reaches Community.
The real-process tests run ``cortex registry serve`` and ``cortex plugin publish``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cortex_trust.errors import CollectorError
from cortex_trust.evidence import VULN_ATTESTATION_PREDICATE
from cortex_trust.policy import ScanEvidence
from tests.registry._helpers import NO_PROMOTION, shipped_policy_evaluator
from tests.registry.conftest import Clock, Registry, migration_steps
from tests.support.federation import fake_digest, manifest_text
from tests.support.served_registry import serve_registry
from tests.support.sigstore_mint import PrivateSigstore

JUNIT = Path(__file__).parent.parent / "fixtures" / "junit" / "pytest-pass.xml"
SIGNER = "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1"
ATTESTER = "https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main"
GHA = "https://token.actions.githubusercontent.com"
#: Nothing listens on port 9 (discard) on loopback: the image is never fetched.
OCI_HOST = "127.0.0.1:9"


def forged_report(image: str) -> str:
    """What the attacker uploaded: a 'clean' report naming the digest, with empty
    Vulnerabilities and Secrets lists, i.e. both scanners seemingly run and finding nothing."""
    return json.dumps({
        "SchemaVersion": 2, "ArtifactName": image, "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [image]},
        "Results": [{"Target": image, "Class": "os-pkgs", "Type": "alpine",
                     "Vulnerabilities": [], "Secrets": []}],
    })


class FakeTrivy:
    """The registry's scanner (a function injected into the real scan job): a clean scan by
    default, or a failure. It claims origin ``pipeline``: the job must record ``registry``."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def __call__(self, image: str, digest: str) -> ScanEvidence:
        self.calls.append(image)
        if self.fail:
            raise CollectorError("trivy could not pull the image", advice="retry")
        return ScanEvidence(present=True, bound=True, digest=digest, produced_by="trivy",
                            origin="pipeline", scanners=["vuln", "secret", "misconfig"],
                            trivy_version="0.76.0", source=f"trivy image {image}")


@pytest.fixture(scope="module")
def registry_evaluator() -> Iterator[Any]:
    """The shipped policies with the promotion requirement off: these tests are about who
    produced the scan (governance: test_governance.py)."""
    with shipped_policy_evaluator([NO_PROMOTION]) as evaluator:
        yield evaluator


@pytest.fixture(scope="module")
def sigstore(private_sigstore: PrivateSigstore) -> PrivateSigstore:
    """The session's private Sigstore (tests/support/federation.py)."""
    return private_sigstore


@dataclass
class Scanning:
    registry: Registry
    worker: Any
    trivy: FakeTrivy
    sigstore: PrivateSigstore

    def publish(self, version: str = "1.0.0", *, status: int = 201, **extra: Any) -> Any:
        digest = fake_digest("acme", "tool", version)
        image = f"{OCI_HOST}/acme/tool@{digest}"
        body = {"manifest": manifest_text("tool", version, network=True), "image": image,
                "bundle": self.sigstore.sign_digest(digest, identity=SIGNER, issuer=GHA).decode(),
                "tests_junit": JUNIT.read_text(), **extra}
        for key, value in list(body.items()):
            if callable(value):
                body[key] = value(image, digest)
        r = self.registry.client.post("/api/v1/plugins", json=body,
                                      headers=self.registry.auth(self.registry.token()))
        assert r.status_code == status, r.text
        return r.json()

    def version(self, version: str = "1.0.0") -> dict[str, Any]:
        status, doc = self.registry.get(f"/api/v1/plugins/acme/tool/versions/{version}")
        assert status == 200
        return doc  # type: ignore[no-any-return]


def _scanning(db_url: str, evaluator: Any, sigstore: PrivateSigstore, trivy: FakeTrivy,
              ) -> Iterator[Scanning]:
    from cortex_trust.evidence import load_trust_root
    from registry import RegistryConfig, create_app, make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    config = RegistryConfig(db_url=db_url, clock=clock, oci_registries=(OCI_HOST,),
                            trusted_roots=(load_trust_root(sigstore.trusted_root_path,
                                                           name="private"),),
                            scanner=trivy)
    app = create_app(config, evaluator=evaluator, db=engine, start_jobs=False)
    with TestClient(app) as client:
        yield Scanning(Registry(client=client, app=app, clock=clock, db_url=db_url),
                       app.state.jobs, trivy, sigstore)
    engine.dispose()


@pytest.fixture
def scanning(db_url: str, registry_evaluator: Any, sigstore: PrivateSigstore) -> Iterator[Scanning]:
    yield from _scanning(db_url, registry_evaluator, sigstore, FakeTrivy())


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def _jobs(registry: Registry) -> list[tuple[str, int]]:
    with registry.store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text("SELECT state, attempts FROM scan_job ORDER BY id"))]


# --- the finding, in process ------------------------------------------------------------------------


def test_a_forged_clean_report_reaches_neither_community_nor_the_network(scanning: Scanning) -> None:
    doc = scanning.publish(scan_report=lambda image, _: forged_report(image))
    scan = doc["evidence"]["scan"]
    # Recorded as what it is: the publisher's report, read as both scanners having run.
    assert (scan["origin"], scan["produced_by"], scan["scanners"]) == (
        "self-reported", "report", ["vuln", "secret"])
    assert scan["source"].startswith("publisher tok_")
    assert doc["tier"] == "experimental" and doc["action"] == "warn"
    assert "SCAN_SELF_REPORTED" in _codes(doc)
    assert {"SCAN_MISSING", "SCAN_INCOMPLETE", "SCAN_UNBOUND"}.isdisjoint(_codes(doc))
    assert doc["decision"]["sandbox"]["network"] is False
    assert doc["decision"]["next_tier"]["tier"] == "community"
    # The upload did not replace the registry's own scan: it is queued all the same.
    assert _jobs(scanning.registry) == [("queued", 0)]


def test_the_registry_scan_reaches_community_and_supersedes_the_upload(scanning: Scanning) -> None:
    scanning.publish(scan_report=lambda image, _: forged_report(image))
    assert scanning.worker.run_once()
    doc = scanning.version()
    scan = doc["evidence"]["scan"]
    assert (scan["origin"], scan["produced_by"]) == ("registry", "trivy")  # never "pipeline"
    assert doc["tier"] == "community" and "SCAN_SELF_REPORTED" not in _codes(doc)
    assert doc["decision"]["sandbox"]["network"] is True
    assert _jobs(scanning.registry) == [("done", 1)]


def test_every_publish_is_scanned_with_or_without_a_report(scanning: Scanning) -> None:
    without = scanning.publish("1.0.0")
    assert without["evidence"]["scan"]["present"] is False and without["tier"] == "experimental"
    scanning.publish("1.1.0", scan_report=lambda image, _: forged_report(image))
    while scanning.worker.run_once():
        pass
    assert len(scanning.trivy.calls) == 2
    assert [scanning.version(v)["tier"] for v in ("1.0.0", "1.1.0")] == ["community", "community"]


def test_a_failed_registry_scan_leaves_the_upload_below_community(
        db_url: str, registry_evaluator: Any, sigstore: PrivateSigstore) -> None:
    for s in _scanning(db_url, registry_evaluator, sigstore, FakeTrivy(fail=True)):
        s.publish(scan_report=lambda image, _: forged_report(image))
        while s.worker.run_once():
            pass
        assert _jobs(s.registry) == [("failed", 3)]
        doc = s.version()
        assert doc["evidence"]["scan"]["origin"] == "self-reported"
        assert doc["tier"] == "experimental" and "SCAN_SELF_REPORTED" in _codes(doc)
        assert doc["decision"]["sandbox"]["network"] is False


# --- signed scan attestations ---------------------------------------------------------------------


def _attestation(sigstore: PrivateSigstore, identity: str = ATTESTER) -> Any:
    def make(image: str, digest: str) -> str:
        predicate = {"invocation": {"parameters": {"scanners": "vuln,secret"}},
                     "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.76.0",
                                 "result": json.loads(forged_report(image))}}
        return sigstore.sign_dsse_statement(digest, identity=identity, issuer=GHA,
                                            predicate_type=VULN_ATTESTATION_PREDICATE,
                                            predicate=predicate).decode()
    return make


def test_a_signed_attestation_needs_a_trusted_attester(scanning: Scanning) -> None:
    doc = scanning.publish(scan_attestation=_attestation(scanning.sigstore),
                           scan_report=lambda image, _: forged_report(image))
    scan = doc["evidence"]["scan"]
    # Preferred over the uploaded report, signer recorded; the default data trusts no attester.
    assert scan["origin"] == "attested" and scan["attester"]["identity"] == ATTESTER
    assert scan["attester"]["trusted_root"] == "private"
    assert doc["tier"] == "experimental" and "SCAN_ATTESTER_UNTRUSTED" in _codes(doc)
    assert _jobs(scanning.registry) == [("queued", 0)]  # and the registry still scans it


def test_an_attestation_from_a_trusted_attester_reaches_community(
        db_url: str, sigstore: PrivateSigstore, tmp_path: Path) -> None:
    data = tmp_path / "scanners.yaml"
    data.write_text(json.dumps({"cortex_config": {"trusted_scan_attesters": {"acme-scanner": {
        "plugins": ["acme/*"], "issuer": GHA, "identity": ATTESTER, "trusted_roots": ["private"]}}}}))
    with shipped_policy_evaluator([NO_PROMOTION, data]) as evaluator:
        for s in _scanning(db_url, evaluator, sigstore, FakeTrivy()):
            doc = s.publish(scan_attestation=_attestation(sigstore))
            assert doc["tier"] == "community", _codes(doc)
            assert doc["decision"]["sandbox"]["network"] is True
            # Another signer, even on the same private root, is not that attester.
            other = s.publish("1.1.0", scan_attestation=_attestation(
                sigstore, "https://github.com/evil/scanner/.github/workflows/scan.yml@refs/heads/main"))
            assert other["tier"] == "experimental" and "SCAN_ATTESTER_UNTRUSTED" in _codes(other)


def test_an_attestation_that_does_not_verify_is_dropped(scanning: Scanning, tmp_path: Path) -> None:
    stranger = PrivateSigstore(tmp_path / "stranger")
    doc = scanning.publish(scan_attestation=_attestation(stranger))
    assert doc["evidence"]["scan"]["present"] is False
    assert [(d["kind"], d["code"]) for d in doc["evidence"]["dropped"]] == [
        ("scan", "SCAN_ATTESTATION_UNVERIFIED")]
    # Not a Sigstore bundle at all: bad input, nothing published.
    error = scanning.publish("2.0.0", status=422, scan_attestation="[1]")["error"]
    assert error["code"] == "EVIDENCE_INVALID" and "not a Sigstore bundle" in error["message"]


# --- the data migration ----------------------------------------------------------------------------


def test_the_migration_names_existing_origins_and_queues_missing_scans(scanning: Scanning) -> None:
    """0010: scan rows the worker wrote become ``registry``, uploaded ones ``self-reported``;
    versions published while the registry did not scan get a job (revoked ones do not)."""
    for v in ("1.0.0", "1.1.0", "1.2.0"):
        scanning.publish(v, scan_report=lambda image, _: forged_report(image))
    assert scanning.worker.run_once()  # 1.0.0 scanned by the registry
    engine, to = migration_steps(scanning.registry.db_url)

    def origins() -> list[tuple[str, str | None]]:
        with engine.connect() as conn:
            return [(actor, json.loads(facts).get("origin")) for actor, facts in conn.execute(text(
                "SELECT actor, facts_json FROM evidence WHERE kind = 'scan' ORDER BY id"))]

    try:
        to("0009", "downgrade")
        assert [o for _, o in origins()] == [None, None, None, None]
        with engine.begin() as conn:  # as before: no job without a scanner; 1.2.0 revoked
            conn.execute(text("DELETE FROM scan_job WHERE state = 'queued'"))
            conn.execute(text("UPDATE plugin_version SET state = 'revoked' WHERE version = '1.2.0'"))
        to("head", "upgrade")
        assert [o for _, o in origins()] == ["self-reported", "self-reported", "self-reported",
                                             "registry"]
        with engine.connect() as conn:
            jobs = dict(conn.execute(text(
                "SELECT v.version, j.state FROM scan_job j JOIN plugin_version v "
                "ON v.id = j.version_id")).all())
        assert jobs == {"1.0.0": "done", "1.1.0": "queued"}
    finally:
        engine.dispose()


# --- `cortex registry serve` as a real process ------------------------------------------------------


@dataclass
class Served:
    url: str
    db: str
    log: Path
    proc: subprocess.Popen[bytes]

    def health(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"{self.url}/healthz", timeout=5).json()  # type: ignore[no-any-return]


def _serve(tmp_path: Path, sigstore: PrivateSigstore, *extra: str) -> Iterator[Served]:
    """`cortex registry serve` with the default policies and default settings (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "CONTAINER_HOST")}
    with serve_registry(tmp_path, "--trusted-root", str(sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, *extra, env=env) as server:
        yield Served(server.url, server.db, server.log, server.proc)


def _cortex(*args: str, env: dict[str, str] | None = None) -> Any:
    """A CLI command, run in this process (the server is the real separate process)."""
    from typer.testing import CliRunner

    from cli.main import app

    return CliRunner().invoke(app, list(args), env=env)


def _cli_publish(served: Served, sigstore: PrivateSigstore, tmp_path: Path, version: str,
                 *, attest: bool = False) -> dict[str, Any]:
    """`cortex plugin publish` with the forged report, as the attacker ran it (and, with
    ``attest``, a signed scan attestation of it)."""
    r = _cortex("registry", "token", "create", "--namespace", "acme", "--role", "publisher",
                "--expires", "1d", "--db", served.db)
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    digest = fake_digest("served", version)
    image = f"{OCI_HOST}/acme/tool@{digest}"
    files = {"manifest.yaml": manifest_text("tool", version, network=True),
             "bundle.json": sigstore.sign_digest(digest, identity=SIGNER, issuer=GHA).decode(),
             "trivy.json": forged_report(image),
             "attestation.json": _attestation(sigstore)(image, digest)}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    extra = ["--scan-attestation", str(tmp_path / "attestation.json")] if attest else []
    r = _cortex("plugin", "publish", str(tmp_path / "manifest.yaml"), "--image", image,
                "--bundle", str(tmp_path / "bundle.json"), "--scan", str(tmp_path / "trivy.json"),
                "--tests", str(JUNIT), "--registry", served.url, "--format", "json", *extra,
                env={"CORTEX_REGISTRY_TOKEN": token})
    assert r.exit_code == 0, (r.output, r.exception)
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def _attempts(db: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT max(attempts) FROM scan_job").fetchone()
    return int(row[0] or 0)


def test_serve_scans_by_default_and_a_forged_report_stays_experimental(
        tmp_path: Path, sigstore: PrivateSigstore) -> None:
    for served in _serve(tmp_path, sigstore):
        assert served.health() == {"ok": True, "scanning": "enabled", "github": "not-configured"}
        doc = _cli_publish(served, sigstore, tmp_path, "1.0.0")
        assert doc["evidence"]["scan"]["origin"] == "self-reported"
        assert doc["tier"] == "experimental" and "SCAN_SELF_REPORTED" in _codes(doc)
        assert doc["decision"]["sandbox"]["network"] is False
        # The server's own worker runs real Trivy on the publish (the image cannot be pulled
        # from here, so that scan fails and the version stays unscanned by the registry).
        db = served.db.removeprefix("sqlite:///")
        deadline = time.monotonic() + 60
        while _attempts(db) < 1:
            assert time.monotonic() < deadline, served.log.read_text()
            time.sleep(0.2)
        import httpx

        again = httpx.get(f"{served.url}/api/v1/plugins/acme/tool/versions/1.0.0", timeout=5).json()
        assert again["tier"] == "experimental" and again["decision"]["sandbox"]["network"] is False
        # A signed attestation is recorded with its signer, and the default data trusts none.
        attested = _cli_publish(served, sigstore, tmp_path, "1.1.0", attest=True)
        assert attested["evidence"]["scan"]["origin"] == "attested"
        assert attested["evidence"]["scan"]["attester"]["identity"] == ATTESTER
        assert "SCAN_ATTESTER_UNTRUSTED" in _codes(attested)
    # Without a vulnerability database the registry says its scans cannot pass.
    assert "no --trivy-db" in served.log.read_text()


def test_serve_without_trivy_warns_and_keeps_serving(tmp_path: Path,
                                                     sigstore: PrivateSigstore) -> None:
    for served in _serve(tmp_path, sigstore, "--trivy", str(tmp_path / "no-trivy")):
        assert served.health() == {"ok": True, "scanning": "unavailable", "github": "not-configured"}
        doc = _cli_publish(served, sigstore, tmp_path, "1.0.0")
        assert doc["tier"] == "experimental" and "SCAN_SELF_REPORTED" in _codes(doc)
        assert doc["decision"]["sandbox"]["network"] is False
    log = served.log.read_text()
    assert "warning: cannot scan published images" in log and "below Community" in log


def test_serve_no_scan_is_a_named_choice_that_warns(tmp_path: Path,
                                                    sigstore: PrivateSigstore) -> None:
    for served in _serve(tmp_path, sigstore, "--no-scan"):
        assert served.health() == {"ok": True, "scanning": "disabled", "github": "not-configured"}
        doc = _cli_publish(served, sigstore, tmp_path, "1.0.0")
        assert doc["tier"] == "experimental" and "SCAN_SELF_REPORTED" in _codes(doc)
    log = served.log.read_text()
    assert "warning: scanning is off (--no-scan)" in log and "below Community" in log


def test_an_unsigned_publish_of_another_namespaces_image_claims_nothing(scanning: Scanning,
                                                                        tmp_path: Path) -> None:
    """Digest squatting: anyone can copy a digest from a public OCI registry and publish it
    under their own name without a valid signature (on the shipped policies that is a 201 at
    Experimental). That must not make the image theirs and lock its real publisher out."""
    reg, sig = scanning.registry, scanning.sigstore
    evil = reg.token("evil")
    digest = fake_digest("acme", "tool", "1.0.0")
    image = f"{OCI_HOST}/acme/tool@{digest}"
    other = fake_digest("evil", "other", "1.0.0")

    def publish(token: str, name: str, version: str, bundle: bytes) -> Any:
        return reg.client.post("/api/v1/plugins", headers=reg.auth(token), json={
            "manifest": manifest_text(name, version), "image": image, "bundle": bundle.decode()})

    # A bundle that does not verify (a root the registry does not trust) over the digest: the
    # signature is not verified, the publish still lands.
    stranger = PrivateSigstore(tmp_path / "stranger")
    squat = publish(evil, "clone", "1.0.0", stranger.sign_digest(digest, identity=SIGNER,
                                                                 issuer=GHA))
    assert squat.status_code == 201, squat.text
    assert squat.json()["evidence"]["signature"]["verified"] is False
    # (A bundle over another digest is refused outright, and claims nothing either.)
    mismatch = publish(evil, "clone", "1.0.1", sig.sign_digest(other, identity=SIGNER, issuer=GHA))
    assert mismatch.status_code == 422 and mismatch.json()["error"]["code"] == "BUNDLE_DIGEST_MISMATCH"
    # The real publisher, signing its image, is not refused...
    assert scanning.publish("1.0.0")["evidence"]["signature"]["verified"] is True
    # ...and from then on the image is acme's: evil, even signing it itself, is refused.
    r = publish(evil, "clone", "1.0.1",
                sig.sign_digest(digest, identity="https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main",
                                issuer=GHA))
    assert r.status_code == 409 and r.json()["error"]["code"] == "DIGEST_OWNED", r.text
    assert "'acme'" in r.json()["error"]["message"]
