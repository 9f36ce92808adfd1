"""Governance through the real interface: the registry app, the real GitHub REST client talking
HTTP to the local GitHub wire server, signed webhook deliveries, polling, the shipped policies.

Each bad input of the governance workflow (forged or missing signatures, a delivery for another
repository, a review by an unlisted account, an approval on a head that changed the digest, a
pull request closed unmerged, duplicate or reordered deliveries, oversized payloads, GitHub
answering 5xx or rate limiting) ends in a refusal or a retry later, never in promotion evidence
that should not exist, and never with the registry half-written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.registry._helpers import shipped_policy_evaluator
from tests.registry.conftest import Clock, Registry
from tests.registry.test_scan_origin import GHA, JUNIT, OCI_HOST, SIGNER, FakeTrivy
from tests.support.federation import fake_digest, manifest_text
from tests.support.github_wire_server import (
    FakeGitHub,
    Repo,
    delivery,
    issue_event,
    pull_request_event,
    review_event,
    serve,
)
from tests.support.sigstore_mint import PrivateSigstore

REPOSITORY = "cortex/registry-index"
SECRET = "webhook-secret-for-tests"
BOT_TOKEN = "registry-bot-token"
REVIEWER = "octo-reviewer"


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> PrivateSigstore:
    return PrivateSigstore(tmp_path_factory.mktemp("governance-sigstore"))


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shipped policies, with one community reviewer listed (the default lists none)."""
    data = tmp_path_factory.mktemp("governance-data") / "reviewers.json"
    data.write_text(json.dumps({"cortex_config": {"governance": {"community_reviewers": [REVIEWER]}}}))
    with shipped_policy_evaluator([data]) as ev:
        yield ev


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(push_tokens={BOT_TOKEN})
    fake.repo(REPOSITORY)
    server, url = serve(fake)
    yield fake, url
    server.shutdown()


@dataclass
class Gov:
    """The registry app, the wire server and its registry repository, its in-process job runner."""

    registry: Registry
    fake: FakeGitHub
    worker: Any
    sigstore: PrivateSigstore
    repo: Repo

    @property
    def gov(self) -> Any:
        return self.registry.app.state.governance

    def publish(self, version: str = "1.0.0", *, namespace: str = "acme", name: str = "tool") -> dict[str, Any]:
        digest = fake_digest(namespace, name, version)
        body = {"manifest": manifest_text(name, version), "image": f"{OCI_HOST}/{namespace}/{name}@{digest}",
                "bundle": self.sigstore.sign_digest(digest, identity=SIGNER, issuer=GHA).decode(),
                "tests_junit": JUNIT.read_text(), "namespace": namespace}
        r = self.registry.client.post("/api/v1/plugins", json=body,
                                      headers=self.registry.auth(self.registry.token(namespace)))
        assert r.status_code == 201, r.text
        while self.worker.run_once():  # the registry's own scan
            pass
        return self.version(version, namespace=namespace, name=name)

    def version(self, version: str = "1.0.0", *, namespace: str = "acme", name: str = "tool") -> dict[str, Any]:
        status, doc = self.registry.get(f"/api/v1/plugins/{namespace}/{name}/versions/{version}")
        assert status == 200
        return doc  # type: ignore[no-any-return]

    def promote(self, version: str = "1.0.0", *, token: str | None = None) -> Any:
        return self.registry.client.post(f"/api/v1/plugins/acme/tool/versions/{version}/promotion",
                                         headers=self.registry.auth(token or self.registry.token("acme")))

    def deliver(self, event: str, payload: dict[str, Any], *, secret: str = SECRET,
                delivery_id: str | None = None, headers: dict[str, str] | None = None) -> Any:
        h, body = delivery(event, payload, secret=secret, delivery_id=delivery_id)
        return self.registry.client.post("/api/v1/github/webhook", content=body, headers={**h, **(headers or {})})

    def audit_actions(self) -> list[str]:
        """The audit log's actions, in order (token creation left out)."""
        from registry._models import AuditEntry

        with Session(self.registry.store.engine) as s:
            return [e.action for e in s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
                    if not e.action.startswith("token.")]


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def _missing(doc: dict[str, Any]) -> set[str]:
    upgrade = doc["decision"]["next_tier"] or {"missing": []}
    return {m["code"] for m in upgrade["missing"]}


def _app(db_url: str, evaluator: Any, sigstore: PrivateSigstore, github_url: str | None,
         **governance: Any) -> Iterator[tuple[Registry, Any]]:
    from cortex_trust.evidence import load_trust_root
    from registry import RegistryConfig, create_app, make_engine, migrate
    from registry._governance import GovernanceConfig

    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    gov = None if github_url is None else GovernanceConfig(
        repository=REPOSITORY, api_url=github_url, token=BOT_TOKEN, webhook_secret=SECRET,
        public_url="https://registry.example", **{"poll_seconds": 0, **governance})
    config = RegistryConfig(db_url=db_url, clock=clock, oci_registries=(OCI_HOST,),
                            trusted_roots=(load_trust_root(sigstore.trusted_root_path, name="private"),),
                            scanner=FakeTrivy(), governance=gov)
    app = create_app(config, evaluator=evaluator, db=engine, start_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Registry(client=client, app=app, clock=clock, db_url=db_url), app.state.jobs
    engine.dispose()


@pytest.fixture
def g(db_url: str, evaluator: Any, sigstore: PrivateSigstore,
      github: tuple[FakeGitHub, str]) -> Iterator[Gov]:
    for registry, worker in _app(db_url, evaluator, sigstore, github[1], poll_batch=1):
        yield Gov(registry, github[0], worker, sigstore, github[0].repo(REPOSITORY))


def _promoted(g: Gov) -> int:
    """Publish acme/tool@1.0.0 and request its promotion; the pull request's number."""
    g.publish()
    r = g.promote()
    assert r.status_code == 201, r.text
    return int(r.json()["number"])


# --------------------------------------------------------------------------------- promotion


def test_publish_then_promote_then_approval_reaches_community(g: Gov) -> None:
    doc = g.publish()
    assert doc["tier"] == "experimental" and _missing(doc) == {"PROMOTION_MISSING"}
    r = g.promote()
    assert r.status_code == 201, r.text
    promo = r.json()
    number = promo["number"]
    pr = g.repo.pulls[number]
    # A real pull request on the registry repository: the version's index entry, bound to the digest.
    assert pr["state"] == "open" and pr["base"]["ref"] == "main"
    entry = json.loads(g.repo.files_at(pr["head"]["sha"])["plugins/acme/tool/1.0.0.json"])  # type: ignore[index]
    assert (entry["digest"], entry["version"], entry["tier"]) == (doc["digest"], "1.0.0", "experimental")
    assert entry["registry_page"] == "https://registry.example/api/v1/plugins/acme/tool/versions/1.0.0"
    pending = g.version()
    assert _missing(pending) == {"PROMOTION_PENDING"}
    assert promo["url"] in json.dumps(pending["decision"]["next_tier"])
    # A second request returns the same pull request and opens nothing.
    again = g.promote()
    assert again.status_code == 200 and again.json()["number"] == number and again.json()["created"] is False
    assert len(g.repo.pulls) == 1
    # The reviewer approves on GitHub; GitHub delivers the signed event.
    g.repo.review(number, REVIEWER, "APPROVED")
    r = g.deliver("pull_request_review", review_event(g.repo, number))
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    community = g.version()
    assert community["tier"] == "community" and community["action"] == "notice"
    assert community["evidence"]["promotion"]["reviews"][0]["login"] == REVIEWER
    assert g.audit_actions()[-2:] == ["version.promote", "version.promotion"]


def test_review_by_an_unlisted_account_stays_pending(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, "mallory", "APPROVED")
    assert g.deliver("pull_request_review", review_event(g.repo, number)).json()["status"] == "applied"
    doc = g.version()
    assert doc["tier"] == "experimental" and _missing(doc) == {"PROMOTION_PENDING"}
    assert "PROMOTION_REVIEWER_UNTRUSTED" in _codes(doc)


def test_rejecting_review_and_closed_unmerged_pull_request_stay_experimental_with_the_link(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "CHANGES_REQUESTED")
    g.deliver("pull_request_review", review_event(g.repo, number))
    doc = g.version()
    assert doc["tier"] == "experimental" and _missing(doc) == {"PROMOTION_REJECTED"}
    g.repo.review(number, REVIEWER, "APPROVED")  # changed their mind, but the PR gets closed
    g.repo.close_pull(number)
    g.deliver("pull_request", pull_request_event(g.repo, number, "closed"))
    doc = g.version()
    assert doc["tier"] == "experimental" and _missing(doc) == {"PROMOTION_REJECTED"}
    assert g.repo.pulls[number]["html_url"] in json.dumps(doc["decision"])


def test_an_approval_on_a_head_that_changed_the_digest_is_not_promotion(g: Gov) -> None:
    number = _promoted(g)
    entry = g.repo.files_at(g.repo.pulls[number]["head"]["sha"])["plugins/acme/tool/1.0.0.json"]  # type: ignore[index]
    forged = json.loads(entry)
    forged["digest"] = fake_digest("someone", "else")
    g.repo.push(number, "plugins/acme/tool/1.0.0.json", json.dumps(forged).encode())
    g.repo.review(number, REVIEWER, "APPROVED")
    g.deliver("pull_request_review", review_event(g.repo, number))
    doc = g.version()
    assert doc["tier"] == "experimental" and _missing(doc) == {"PROMOTION_DIGEST_CHANGED"}
    g.repo.push(number, "plugins/acme/tool/1.0.0.json", entry)  # restored: the approval counts
    g.deliver("pull_request", pull_request_event(g.repo, number))
    assert g.version()["tier"] == "community"


def test_merged_promotion_records_the_merge(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "APPROVED")
    g.repo.close_pull(number, merged=True)
    g.deliver("pull_request", pull_request_event(g.repo, number, "closed"))
    doc = g.version()
    assert doc["tier"] == "community"
    assert doc["evidence"]["promotion"]["merged"] is True
    assert doc["evidence"]["promotion"]["merge_commit"] == g.repo.pulls[number]["merge_commit_sha"]


def test_only_the_publisher_of_the_namespace_requests_a_promotion(g: Gov) -> None:
    g.publish()
    assert g.promote(token=g.registry.token("globex")).status_code == 403
    assert g.promote(token=g.registry.token("acme", role="installation")).status_code == 403
    assert g.registry.client.post("/api/v1/plugins/acme/tool/versions/1.0.0/promotion").status_code == 401
    assert g.repo.pulls == {}


def test_github_failing_leaves_nothing_half_written(g: Gov) -> None:
    g.publish()
    before = g.audit_actions()
    g.fake.fail_next = [502]
    r = g.promote()
    assert r.status_code == 503 and r.json()["error"]["code"] == "GITHUB_UNAVAILABLE"
    g.fake.rate_limited = "secondary"
    r = g.promote()
    assert r.status_code == 503 and r.json()["error"]["code"] == "GITHUB_RATE_LIMITED"
    assert g.audit_actions() == before
    assert g.registry.client.get("/api/v1/plugins/acme/tool/versions/1.0.0/promotion").status_code == 404
    g.fake.rate_limited = None
    assert g.promote().status_code == 201  # retried later: one pull request, recorded once
    assert len(g.repo.pulls) == 1 and g.audit_actions() == [*before, "version.promote"]


# ---------------------------------------------------------------------------------- webhooks


def test_forged_missing_or_foreign_deliveries_are_refused(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "APPROVED")
    payload = review_event(g.repo, number)
    assert g.deliver("pull_request_review", payload, secret="wrong").status_code == 401
    assert g.deliver("pull_request_review", payload, headers={"X-Hub-Signature-256": ""}).status_code == 401
    h, body = delivery("pull_request_review", payload, secret=SECRET)
    tampered = body.replace(b'"submitted"', b'"dismissed"')
    r = g.registry.client.post("/api/v1/github/webhook", content=tampered, headers=h)
    assert r.status_code == 401 and r.json()["error"]["code"] == "WEBHOOK_SIGNATURE_INVALID"
    foreign = {**payload, "repository": {"full_name": "evil/registry-index"}}
    r = g.deliver("pull_request_review", foreign)
    assert r.status_code == 403 and r.json()["error"]["code"] == "WEBHOOK_REPOSITORY_MISMATCH"
    r = g.deliver("pull_request_review", payload, headers={"X-GitHub-Delivery": "../../x"})
    assert r.status_code == 422
    h, _ = delivery("pull_request_review", payload, secret=SECRET)
    big = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
    h["X-Hub-Signature-256"] = delivery("x", {}, secret=SECRET)[0]["X-Hub-Signature-256"]
    r = g.registry.client.post("/api/v1/github/webhook", content=big, headers=h)
    assert r.status_code == 413
    # None of them changed anything: still pending.
    assert _missing(g.version()) == {"PROMOTION_PENDING"}


def test_duplicate_and_reordered_deliveries(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "APPROVED")
    approved = review_event(g.repo, number)
    old = pull_request_event(g.repo, number, "opened")  # an older event, delivered late
    assert g.deliver("pull_request_review", approved, delivery_id="d-1").json()["status"] == "applied"
    assert g.deliver("pull_request_review", approved, delivery_id="d-1").json()["status"] == "duplicate"
    # The late "opened" event cannot take the approval back: GitHub is re-read, not the payload.
    assert g.deliver("pull_request", old, delivery_id="d-0").json()["status"] == "unchanged"
    assert g.version()["tier"] == "community"
    assert g.audit_actions().count("version.promotion") == 1


def test_github_5xx_during_a_delivery_is_retried_later(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "APPROVED")
    g.fake.fail_next = [500]
    r = g.deliver("pull_request_review", review_event(g.repo, number), delivery_id="d-5")
    assert r.status_code == 503
    assert g.version()["tier"] == "experimental"
    # GitHub redelivers the same delivery: it was not marked processed, so it applies now.
    r = g.deliver("pull_request_review", review_event(g.repo, number), delivery_id="d-5")
    assert r.json()["status"] == "applied" and g.version()["tier"] == "community"


def test_events_about_nothing_tracked_are_ignored(g: Gov) -> None:
    _promoted(g)
    assert g.deliver("ping", {"zen": "hi", "repository": {"full_name": REPOSITORY}}).json()["status"] == "pong"
    assert g.deliver("star", {"action": "created", "repository": {"full_name": REPOSITORY}}).json()["status"] \
        == "ignored"
    other = {"action": "opened", "pull_request": {"number": 999}, "repository": {"full_name": REPOSITORY}}
    assert g.deliver("pull_request", other).json()["status"] == "ignored"


def test_polling_picks_up_a_review_without_webhooks_at_a_bounded_rate(g: Gov) -> None:
    number = _promoted(g)
    g.publish("1.1.0")
    second = g.promote("1.1.0").json()["number"]
    for n in (number, second):
        g.repo.review(n, REVIEWER, "APPROVED")
    g.registry.clock.advance(seconds=1)
    # poll_batch is 1: one promotion per round, the least recently checked first.
    assert g.gov.poll_once() == {"checked": 1, "changed": 1}
    assert [g.version(v)["tier"] for v in ("1.0.0", "1.1.0")] == ["community", "experimental"]
    g.registry.clock.advance(seconds=1)
    assert g.gov.poll_once() == {"checked": 1, "changed": 1}
    assert g.version("1.1.0")["tier"] == "community"
    g.fake.rate_limited = "secondary"  # Retry-After: 60
    g.registry.clock.advance(seconds=1)
    assert g.gov.poll_once() == {"checked": 0, "changed": 0}
    calls = len(g.fake.requests)
    g.fake.rate_limited = None
    g.registry.clock.advance(seconds=30)
    assert g.gov.poll_once() == {"checked": 0, "changed": 0}  # still paused: GitHub is not asked
    assert len(g.fake.requests) == calls


def test_the_job_runner_polls_github_on_its_schedule(db_url: str, evaluator: Any, sigstore: PrivateSigstore,
                                                     github: tuple[FakeGitHub, str]) -> None:
    """The periodic job ``registry.governance_poll`` (every ``poll_seconds``), run by the
    in-process runner: a review seen without any webhook."""
    for registry, runner in _app(db_url, evaluator, sigstore, github[1], poll_seconds=60):
        g = Gov(registry, github[0], runner, sigstore, github[0].repo(REPOSITORY))
        number = _promoted(g)  # its runs include the poll at start (nothing watched then)
        g.repo.review(number, REVIEWER, "APPROVED")
        assert runner.run_once() is None  # the next poll is a minute after the first
        assert g.version()["tier"] == "experimental"
        g.registry.clock.advance(seconds=61)
        assert runner.run_once() == ("registry.governance_poll", {"checked": 1, "changed": 1})
        assert g.version()["tier"] == "community"
        assert runner.run_once() is None


# ---------------------------------------------------------------------------------- disputes


def _dispute_issue(g: Gov, *, security: bool, version: str | None = "1.0.0") -> int:
    """Open a dispute issue as a user without push access would (labels dropped by GitHub)."""
    from cortex_trust.sources import GitHubClient, RegistryRepository, dispute_issue

    title, body, labels = dispute_issue(plugin="acme/tool", version=version, digest=None, page=None,
                                        reason="it phones home", security=security)
    with GitHubClient(g.gov.config.api_url, token="a-user-token") as client:
        issue = RegistryRepository(client, REPOSITORY).create_issue(title=title, body=body, labels=labels)
    assert issue.labels == ()
    return issue.number


def test_security_dispute_warns_and_closing_it_restores_the_action(g: Gov) -> None:
    number = _promoted(g)
    g.repo.review(number, REVIEWER, "APPROVED")
    g.deliver("pull_request_review", review_event(g.repo, number))
    assert g.version()["action"] == "notice"
    issue = _dispute_issue(g, security=True)
    r = g.registry.client.post("/api/v1/plugins/acme/tool/disputes", json={"issue": issue},
                               headers=g.registry.auth(g.registry.token("globex", role="installation")))
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["labels"] == ["dispute", "security"]  # labelled by the registry
    assert [lb["name"] for lb in g.repo.issues[issue]["labels"]] == ["dispute", "security"]
    doc = g.version()
    assert doc["tier"] == "community" and doc["action"] == "warn" and "DISPUTE_OPEN" in _codes(doc)
    g.repo.set_issue(issue, state="closed")
    assert g.deliver("issues", issue_event(g.repo, issue, "closed")).json()["status"] == "applied"
    doc = g.version()
    assert doc["action"] == "notice" and "DISPUTE_OPEN" not in _codes(doc)
    status, listed = g.registry.get("/api/v1/plugins/acme/tool/disputes")
    assert status == 200 and listed["items"][0]["state"] == "closed"
    assert listed["items"][0]["closed_at"] is not None
    assert g.audit_actions()[-2:] == ["plugin.dispute", "plugin.dispute.update"]


def test_a_non_security_dispute_is_listed_but_does_not_warn(g: Gov) -> None:
    g.publish()
    issue = _dispute_issue(g, security=False, version=None)
    h = g.registry.auth(g.registry.token("acme"))
    assert g.registry.client.post("/api/v1/plugins/acme/tool/disputes", json={"issue": issue}, headers=h).status_code \
        == 200
    doc = g.version()
    assert "DISPUTE_OPEN" not in _codes(doc) and doc["evidence"]["disputes"]["disputes"][0]["version"] is None
    # Recording it again changes nothing.
    before = g.audit_actions()
    g.registry.client.post("/api/v1/plugins/acme/tool/disputes", json={"issue": issue}, headers=h)
    assert g.audit_actions() == before


def test_an_issue_that_is_not_a_dispute_of_the_plugin_is_refused(g: Gov) -> None:
    g.publish()
    g.repo.issues[50] = {"number": 50, "html_url": "https://github.example/x/issues/50", "state": "open",
                         "title": "hi", "body": "no template", "labels": [], "created_at": "2026-11-20T10:00:00Z",
                         "closed_at": None}
    h = g.registry.auth(g.registry.token("acme"))
    r = g.registry.client.post("/api/v1/plugins/acme/tool/disputes", json={"issue": 50}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "DISPUTE_NOT_RECOGNISED"
    assert g.registry.get("/api/v1/plugins/acme/tool/disputes")[1] == {"items": []}


def test_a_dispute_opened_on_github_is_recorded_from_the_webhook(g: Gov) -> None:
    g.publish()
    issue = _dispute_issue(g, security=True)
    assert g.deliver("issues", issue_event(g.repo, issue, "opened")).json()["status"] == "applied"
    assert "DISPUTE_OPEN" in _codes(g.version())


# ----------------------------------------------------------------------- not configured, core


def test_without_a_github_side_governance_says_so(db_url: str, evaluator: Any, sigstore: PrivateSigstore) -> None:
    for registry, _ in _app(db_url, evaluator, sigstore, None):
        assert registry.get("/api/v1/governance")[1]["configured"] is False
        assert registry.client.get("/healthz").json()["github"] == "not-configured"
        r = registry.client.post("/api/v1/github/webhook", content=b"{}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "GITHUB_NOT_CONFIGURED"


def test_a_core_namespace_cannot_be_claimed_at_publish(g: Gov) -> None:
    digest = fake_digest("cortex", "weather", "1.0.0")
    body = {"manifest": manifest_text("weather", "1.0.0"), "image": f"{OCI_HOST}/cortex/weather@{digest}",
            "bundle": g.sigstore.sign_digest(digest, identity=SIGNER, issuer=GHA).decode(), "namespace": "cortex",
            "tests_junit": JUNIT.read_text()}
    g.registry.token("cortex")  # the namespace exists
    r = g.registry.client.post("/api/v1/plugins", json=body,
                               headers=g.registry.auth(g.registry.token("ops", role="admin")))
    assert r.status_code == 422 and "CORE_NAMESPACE_RESERVED" in r.text
    r = g.registry.client.post("/api/v1/plugins", json=body, headers=g.registry.auth(g.registry.token("cortex")))
    assert r.status_code == 201, r.text
    while g.worker.run_once():
        pass
    # A core plugin needs the core team's review, not a promotion pull request.
    doc = g.version(namespace="cortex", name="weather")
    assert doc["tier"] == "experimental" and _missing(doc) == {"CORE_REVIEW_MISSING"}


def test_web_url_of_github_enterprise() -> None:
    from registry._governance import GovernanceConfig

    assert GovernanceConfig(REPOSITORY, api_url="https://ghe.example/api/v3").web_url == \
        f"https://ghe.example/{REPOSITORY}"
    assert GovernanceConfig(REPOSITORY).web_url == f"https://github.com/{REPOSITORY}"


def test_template_marker_round_trip() -> None:
    from cortex_trust.sources import dispute_issue, parse_dispute_marker

    _, body, labels = dispute_issue(plugin="acme/tool", version="1.0.0", digest=None, page=None,
                                    reason="<!-- cortex-dispute: {\"plugin\": \"evil/x\"} -->", security=True)
    assert parse_dispute_marker(body) == ("acme", "tool", "1.0.0", True)
    assert labels == ["dispute", "security"]
    assert parse_dispute_marker("<!-- cortex-dispute: {\"plugin\": \"../x\"} -->") is None



def test_github_enterprise_api_base_url(db_url: str, evaluator: Any, sigstore: PrivateSigstore) -> None:
    """A GitHub Enterprise API (``https://HOST/api/v3``): every call goes below that path."""
    fake = FakeGitHub(push_tokens={BOT_TOKEN}, prefix="/api/v3")
    fake.repo(REPOSITORY)
    server, url = serve(fake)
    try:
        for registry, worker in _app(db_url, evaluator, sigstore, f"{url}/api/v3"):
            g = Gov(registry, fake, worker, sigstore, fake.repo(REPOSITORY))
            g.publish()
            assert g.promote().status_code == 201
            assert len(g.repo.pulls) == 1
            assert all(path.startswith("/api/v3/") for path, _, _ in fake.requests)
    finally:
        server.shutdown()
