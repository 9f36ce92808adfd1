"""Reviews per reviewer and usage that one actor cannot forge, through the HTTP API.

The registry here runs the shipped default policies (plus data trusting the fixture bundle's
signer for ``acme/*`` and exempting ``acme/*`` from promotion) and scans every publish itself,
so a version reaches Community from its own evidence and the only question left is what reviews
and usage reports make it Verified.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cortex_trust.policy import ScanEvidence
from tests.registry._helpers import run_cli, shipped_policy_evaluator
from tests.registry.conftest import A_TXT_DIGEST, BEACON, GHA, Registry, publish_body
from tests.support.served_registry import serve_app

BASE = "/api/v1/plugins/acme/hello/versions/1.0.0"
USAGE = {"namespace": "acme", "name": "hello", "version": "1.0.0", "digest": A_TXT_DIGEST}
JUNIT = ('<testsuite name="hello" tests="2" failures="0" errors="0" skipped="0">'
         '<testcase classname="hello" name="greets"/><testcase classname="hello" name="echo"/>'
         '</testsuite>')


def _clean_scan(image: str, digest: str) -> ScanEvidence:
    """The registry's own scan of the image (standing in for Trivy): clean."""
    return ScanEvidence(present=True, bound=True, digest=digest, produced_by="trivy",
                        origin="registry", scanners=["vuln", "secret", "misconfig"],
                        trivy_version="0.76.0", source="trivy")


@pytest.fixture(scope="module")
def shipped_evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shipped policies, with data that trusts the fixture bundle's signer for acme/*."""
    data = tmp_path_factory.mktemp("policy") / "acme.yaml"
    # acme is this registry's own namespace: no promotion pull request (governance is tested in
    # test_governance.py), so reviews and usage alone decide Verified here.
    data.write_text(json.dumps({"cortex_config": {"trusted_signers": {"acme-release": {
        "plugins": ["acme/*"], "issuer": GHA, "identity": BEACON,
        "trusted_roots": ["production"]}}, "governance": {"promotion": {"exempt_plugins": ["acme/*"]}}}}))
    with shipped_policy_evaluator([data]) as evaluator:
        yield evaluator


@dataclass
class Shipped:
    """The fixture's registry database and clock, served by an app on the shipped policies."""

    registry: Registry
    client: TestClient
    app: Any

    def post(self, path: str, token: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=Registry.auth(token))

    def report(self, token: str) -> Any:
        r = self.post("/api/v1/usage", token, USAGE)
        assert r.status_code == 200, r.text
        return r

    def version(self) -> dict[str, Any]:
        r = self.client.get(BASE)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def audit(self, action: str) -> list[dict[str, Any]]:
        with self.registry.store.engine.connect() as c:
            rows = c.execute(text("SELECT before_json, after_json FROM audit_log "
                                  "WHERE action = :a ORDER BY id"), {"a": action}).all()
        return [{"before": json.loads(b) if b else None, "after": json.loads(a)}
                for b, a in rows]


@pytest.fixture
def shipped(registry: Registry, shipped_evaluator: Any) -> Iterator[Shipped]:
    from registry import create_app

    config = replace(registry.app.state.config, scanner=_clean_scan)
    app = create_app(config, evaluator=shipped_evaluator, db=registry.store.engine,
                     start_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        reg = Shipped(registry, client, app)
        r = reg.post("/api/v1/plugins", registry.token(),
                     publish_body(tests_junit=JUNIT))
        assert r.status_code == 201, r.text
        assert app.state.jobs.run_once()
        version = reg.version()
        # Precondition: scanned, tested, signed by a trusted identity; only Verified is left.
        assert version["tier"] == "community", version["decision"]
        assert _missing(version) == {"REVIEW_MISSING", "USAGE_MISSING"}
        yield reg


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def _missing(doc: dict[str, Any]) -> set[str]:
    nxt = doc["decision"]["next_tier"]
    return set() if nxt is None else {m["code"] for m in nxt["missing"]}


def _installations(reg: Shipped) -> list[str]:
    """Installation tokens of two organizations other than acme (two of initech, one of
    globex)."""
    return [reg.registry.token("initech", "installation"),
            reg.registry.token("initech", "installation"),
            reg.registry.token("globex", "installation")]


def _continued_use(reg: Shipped, tokens: list[str] | None = None, days: int = 31) -> None:
    """Each installation reports every day for ``days`` days, then the first once more; the
    registry rescans as `cortex registry serve` does by default (scans older than 6 days), so
    the scan stays within the policy's freshness limit."""
    tokens = tokens or _installations(reg)
    for _ in range(days):
        for token in tokens:
            reg.report(token)
        _days_pass(reg, 1)
    reg.report(tokens[0])


def _days_pass(reg: Shipped, days: int) -> None:
    """The clock advances ``days`` days, and the registry rescans what its scheduled rescans
    (`cortex registry serve`'s default: scans older than 6 days) would have."""
    worker = reg.app.state.jobs
    worker.settings.rescan_after = timedelta(days=6)
    reg.registry.clock.advance(days=days)
    while worker.run_once():
        pass


def _verified(reg: Shipped) -> str:
    """ada (a core-team reviewer) approves and two organizations use it: Verified."""
    ada = reg.registry.token("cortex-core", "reviewer", holder="ada")
    r = reg.post(f"{BASE}/reviews", ada, {"status": "approved", "digest": A_TXT_DIGEST})
    assert r.status_code == 200, r.text
    _continued_use(reg)
    version = reg.version()
    assert version["tier"] == "verified" and version["action"] == "allow", version["decision"]
    return ada


# ------------------------------------------------------------------------------------ reviews


@pytest.mark.parametrize("status", ["approved", "rejected", "changes_requested"])
def test_an_untrusted_reviewer_cannot_wipe_out_a_core_team_approval(shipped: Shipped,
                                                                    status: str) -> None:
    """partner/bob's later review, whatever it says, neither replaces ada's approval nor
    lowers the tier: the policy sees both reviews and counts only ada's."""
    _verified(shipped)
    bob = shipped.registry.token("partner", "reviewer", holder="bob")
    shipped.registry.clock.advance(hours=1)
    r = shipped.post(f"{BASE}/reviews", bob, {"status": status})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["tier"], doc["action"]) == ("verified", "allow")
    assert _codes(doc) == {"TIER_VERIFIED", "REVIEWER_UNTRUSTED"}
    [note] = [x for x in doc["decision"]["reasons"] if x["code"] == "REVIEWER_UNTRUSTED"]
    assert "'partner/bob'" in note["message"] and status in note["message"]
    assert "cortex-core/ada" in doc["decision"]["reasons"][0]["message"]
    reviews = {x["reviewer"]: x for x in doc["evidence"]["review"]["reviews"]}
    assert set(reviews) == {"cortex-core/ada", "partner/bob"}
    assert reviews["cortex-core/ada"]["verdict"] == "approved"
    assert reviews["partner/bob"]["verdict"] == status
    assert reviews["partner/bob"]["at"] > reviews["cortex-core/ada"]["at"]
    assert {x["source"] for x in reviews.values()} == {"cortex-registry"}
    _, plugin = shipped.registry.get("/api/v1/plugins/acme/hello")
    assert plugin["tier"] == "verified"


@pytest.mark.security_review
def test_reviews_are_recorded_under_the_holders_reviewer_id(registry: Registry) -> None:
    """The default policy names core-team reviewers as `cortex-core/ada`: a reviewer token for
    holder `ada` in namespace `cortex-core` records exactly that id; a token without a holder
    records its token id (which no reviewer list names)."""
    assert registry.publish(registry.token()).status_code == 201
    base = "/api/v1/plugins/acme/hello/versions/1.0.0"
    ada = registry.token("cortex-core", "reviewer", holder="ada")
    r = registry.client.post(f"{base}/reviews", json={"status": "approved", "digest": A_TXT_DIGEST},
                             headers=registry.auth(ada))
    assert r.status_code == 200, r.text
    assert [x["reviewer"] for x in r.json()["evidence"]["review"]["reviews"]] == ["cortex-core/ada"]


def test_a_reviewer_replaces_only_their_own_review(shipped: Shipped) -> None:
    """A core-team reviewer who changes their mind replaces their own review (one record
    each); another core-team reviewer's rejection keeps the version below Verified."""
    ada = _verified(shipped)
    grace = shipped.registry.token("cortex-core", "reviewer", holder="grace")
    doc = shipped.post(f"{BASE}/reviews", grace, {"status": "rejected", "note": "leaks"}).json()
    assert doc["tier"] == "community"
    assert _missing(doc) == {"REVIEW_NOT_APPROVED"}
    doc = shipped.post(f"{BASE}/reviews", grace, {"status": "approved"}).json()
    assert doc["tier"] == "verified"
    assert sorted((x["reviewer"], x["verdict"]) for x in doc["evidence"]["review"]["reviews"]) == [
        ("cortex-core/ada", "approved"), ("cortex-core/grace", "approved")]
    doc = shipped.post(f"{BASE}/reviews", ada, {"status": "changes_requested"}).json()
    assert doc["tier"] == "community" and _missing(doc) == {"REVIEW_NOT_APPROVED"}
    [entry] = [e for e in shipped.audit("version.review") if e["after"]["status"] ==
               "changes_requested"]
    assert entry["before"]["review"]["status"] == "approved"
    assert entry["after"]["reviewer"] == "cortex-core/ada"


def test_a_reviewer_can_withdraw_only_their_own_review(shipped: Shipped) -> None:
    ada = _verified(shipped)
    bob = shipped.registry.token("partner", "reviewer", holder="bob")
    publisher = shipped.registry.token()

    r = shipped.post(f"{BASE}/reviews/withdraw", bob, {"reviewer": "cortex-core/ada"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "REVIEW_NOT_YOURS"
    r = shipped.post(f"{BASE}/reviews/withdraw", bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "REVIEW_NOT_FOUND"
    r = shipped.post(f"{BASE}/reviews/withdraw", publisher)
    assert r.status_code == 403 and r.json()["error"]["code"] == "ROLE_FORBIDDEN"
    r = shipped.post("/api/v1/plugins/acme/nope/versions/1.0.0/reviews/withdraw", ada)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert shipped.version()["tier"] == "verified"  # nothing changed

    r = shipped.post(f"{BASE}/reviews/withdraw", ada, {"reviewer": "cortex-core/ada"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["tier"] == "community" and doc["action"] == "notice"
    assert _missing(doc) == {"REVIEW_MISSING"}
    assert doc["evidence"]["review"]["present"] is False
    r = shipped.post(f"{BASE}/reviews/withdraw", ada)
    assert r.status_code == 404 and r.json()["error"]["code"] == "REVIEW_NOT_FOUND"
    [entry] = shipped.audit("version.review.withdraw")
    assert entry["before"]["status"] == "approved" and entry["before"]["tier"] == "verified"
    assert entry["after"] == {"reviewer": "cortex-core/ada", "tier": "community",
                              "action": "notice"}
    assert shipped.registry.store.audit_verify() == []


# -------------------------------------------------------------------------------------- usage


def test_one_installation_reporting_thirty_times_is_one_active_day(shipped: Shipped) -> None:
    """30 reports from one installation token on one day count once (the others are accepted
    and say so), and one organization is not production use."""
    _verified_review(shipped)
    token = shipped.registry.token("initech", "installation")
    counted = [shipped.report(token).headers["Cortex-Usage-Counted"] for _ in range(30)]
    assert counted == ["true"] + ["false"] * 29
    assert len(shipped.audit("version.usage")) == 1
    _days_pass(shipped, 31)
    doc = shipped.report(token).json()
    usage = doc["evidence"]["usage"]
    assert (usage["days_in_production"], usage["active_days"], usage["installations"],
            usage["organizations"]) == (31, 2, 1, 1)
    assert usage["reporters"] == [{
        "organization": "initech", "installations": 1, "active_days": 2,
        "days_in_production": 31, "first": "2026-01-01T12:00:00Z",
        "last": "2026-02-01T12:00:00Z"}]
    assert "tok_" not in json.dumps(usage)  # organizations are shown, token ids are not
    assert doc["tier"] == "community"
    assert _missing(doc) == {"USAGE_TOO_FEW_REPORTERS"}


def test_one_report_thirty_days_ago_is_not_continued_use(shipped: Shipped) -> None:
    """Two organizations each reported once, 31 days ago; the publisher's own installation
    reports today. The clock has run for 31 days, but nothing shows continued use."""
    _verified_review(shipped)
    shipped.report(shipped.registry.token("initech", "installation"))
    shipped.report(shipped.registry.token("globex", "installation"))
    _days_pass(shipped, 31)
    doc = shipped.report(shipped.registry.token("acme", "installation")).json()
    usage = doc["evidence"]["usage"]
    assert usage["days_in_production"] == 31 and usage["organizations"] == 3
    assert doc["tier"] == "community"
    assert _missing(doc) == {"USAGE_NOT_CONTINUED"}
    [reason] = [r for r in doc["decision"]["reasons"] if r["code"] == "USAGE_NOT_CONTINUED"]
    assert reason["message"].startswith("0 independent organization(s)")


def test_the_publishers_own_installations_are_not_independent(shipped: Shipped) -> None:
    _verified_review(shipped)
    tokens = [shipped.registry.token("acme", "installation") for _ in range(3)]
    for _ in range(31):
        for token in tokens:
            shipped.report(token)
        _days_pass(shipped, 1)
    doc = shipped.report(tokens[0]).json()
    assert doc["evidence"]["usage"]["active_days"] == 32
    assert doc["tier"] == "community"
    assert _missing(doc) == {"USAGE_TOO_FEW_REPORTERS"}


def test_continued_use_by_several_organizations_reaches_verified(shipped: Shipped) -> None:
    _verified_review(shipped)
    tokens = _installations(shipped)
    _continued_use(shipped, tokens, days=19)
    doc = shipped.version()
    assert doc["tier"] == "community" and _missing(doc) == {"USAGE_INSUFFICIENT"}
    _continued_use(shipped, tokens, days=12)
    doc = shipped.version()
    assert (doc["tier"], doc["action"]) == ("verified", "allow"), doc["decision"]
    assert "at 2 independent organization(s)" in doc["decision"]["reasons"][0]["message"]
    usage = doc["evidence"]["usage"]
    assert usage["installations"] == 3 and usage["organizations"] == 2
    assert {(r["organization"], r["installations"]) for r in usage["reporters"]} == {
        ("initech", 2), ("globex", 1)}


def test_usage_of_unknown_or_revoked_versions_is_refused(shipped: Shipped) -> None:
    token = shipped.registry.token("initech", "installation")
    r = shipped.post("/api/v1/usage", token, {**USAGE, "name": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = shipped.post(f"{BASE}/revoke", shipped.registry.token(), {"reason": "compromised"})
    assert r.status_code == 200, r.text
    r = shipped.post("/api/v1/usage", token, USAGE)
    assert r.status_code == 409 and r.json()["error"]["code"] == "VERSION_REVOKED"
    assert shipped.audit("version.usage") == []


def _verified_review(reg: Shipped) -> None:
    ada = reg.registry.token("cortex-core", "reviewer", holder="ada")
    r = reg.post(f"{BASE}/reviews", ada, {"status": "approved"})
    assert r.status_code == 200, r.text
    assert _missing(r.json()) == {"USAGE_MISSING"}



# ---------------------------------------------------------------------------------------- CLI


@pytest.fixture
def served(shipped: Shipped) -> Iterator[str]:
    """The shipped-policy app served by uvicorn on loopback, for the CLI."""
    with serve_app(shipped.app) as url:
        yield url


def test_cli_review_withdraw_removes_only_the_callers_review(
        shipped: Shipped, served: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`cortex plugin review withdraw` through the console script's entry point: bob's
    withdraw finds no review of his (exit 2, ada's stays); ada's removes hers."""
    def cortex(command: str, *args: str, token: str) -> tuple[int, str, str]:
        return run_cli(monkeypatch, capsys, ["plugin", "review", command, "acme/hello@1.0.0",
                                             "--registry", served, *args], token=token)

    ada = shipped.registry.token("cortex-core", "reviewer", holder="ada")
    bob = shipped.registry.token("partner", "reviewer", holder="bob")
    assert cortex("approve", token=ada)[0] == 0
    code, _, err = cortex("withdraw", token=bob)
    assert code == 2 and "'partner/bob' has no review" in err and bob not in err
    assert [r["reviewer"] for r in shipped.version()["evidence"]["review"]["reviews"]] == [
        "cortex-core/ada"]
    code, out, err = cortex("withdraw", "--format", "json", token=ada)
    assert code == 0, err
    assert json.loads(out)["evidence"]["review"]["present"] is False
    assert shipped.version()["evidence"]["review"]["present"] is False
