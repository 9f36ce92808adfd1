"""Governance end to end: the real CLI, a real `cortex registry serve` process configured from the
environment, the GitHub wire server as the registry repository, signed webhook deliveries over
HTTP, and the installer's decision before and after.

publish -> experimental -> `cortex plugin promote` (a pull request opened on the wire server) ->
approving review, webhook -> community, and `cortex plugin install` goes from warn to notice; a
rejecting review keeps a version experimental with the pull request's link; a security dispute
(`cortex plugin dispute --security`) makes the install warn, and closing it brings back notice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from tests.registry.test_scan_origin import ATTESTER, GHA, JUNIT, OCI_HOST, SIGNER, _attestation
from tests.support.federation import fake_digest, manifest_text
from tests.support.github_wire_server import (
    FakeGitHub,
    Repo,
    delivery,
    issue_event,
    review_event,
    serve,
)
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

REPOSITORY = "cortex/registry-index"
SECRET = "e2e-webhook-secret"
BOT_TOKEN = "e2e-registry-bot"
USER_GITHUB_TOKEN = "e2e-user-token"
REVIEWER = "octo-reviewer"


@dataclass
class World:
    """The served registry, the wire server's registry repository, the CLI's home."""

    server: ServedRegistry
    repo: Repo
    github_url: str
    sigstore: PrivateSigstore
    home: Path
    data: Path

    def cortex(self, *args: str, **env: str) -> Result:
        base = {"CORTEX_CONFIG": str(self.home / "config.json"), "CORTEX_DATA_DIR": str(self.home / "data"),
                "DOCKER_HOST": "", "GITHUB_TOKEN": "", "CORTEX_REGISTRY_TOKEN": "", "CORTEX_PLATFORM_VERSION": "1.0.0"}
        return CliRunner().invoke(app, list(args), env={**base, **env})

    def token(self, namespace: str = "acme", role: str = "publisher") -> str:
        r = self.cortex("registry", "token", "create", "--namespace", namespace, "--role", role,
                        "--expires", "1d", "--db", self.server.db)
        assert r.exit_code == 0, r.output
        return r.stdout.strip()

    def publish(self, version: str) -> dict[str, Any]:
        digest = fake_digest("governance-e2e", version)
        image = f"{OCI_HOST}/acme/tool@{digest}"
        files = {"manifest.yaml": manifest_text("tool", version),
                 "bundle.json": self.sigstore.sign_digest(digest, identity=SIGNER, issuer=GHA).decode(),
                 "attestation.json": _attestation(self.sigstore)(image, digest)}
        for name, content in files.items():
            (self.home / name).write_text(content)
        r = self.cortex("plugin", "publish", str(self.home / "manifest.yaml"), "--image", image,
                        "--bundle", str(self.home / "bundle.json"), "--tests", str(JUNIT),
                        "--scan-attestation", str(self.home / "attestation.json"),
                        "--registry", self.server.url, "--format", "json", CORTEX_REGISTRY_TOKEN=self.token())
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    def version(self, version: str) -> dict[str, Any]:
        r = httpx.get(f"{self.server.url}/api/v1/plugins/acme/tool/versions/{version}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def install_action(self, version: str) -> tuple[int, str, set[str]]:
        """`cortex plugin install` without a terminal: its exit code, the decision's action and
        codes (a warn asks, so it exits 1 with nothing installed; a notice installs)."""
        r = self.cortex("plugin", "install", f"acme/tool@{version}", "--format", "json",
                        "--data", str(self.data), "--trusted-root", str(self.sigstore.trusted_root_path))
        doc = json.loads(r.stdout)
        decision = doc["decision"]
        return r.exit_code, decision["action"], {x["code"] for x in decision["reasons"]}

    def deliver(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        headers, body = delivery(event, payload, secret=SECRET)
        r = httpx.post(f"{self.server.url}/api/v1/github/webhook", content=body, headers=headers, timeout=20)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from cortex_trust.install import CortexConfig, save_config

    home = tmp_path_factory.mktemp("governance-e2e")
    sigstore = PrivateSigstore(home / "sigstore")
    fake = FakeGitHub(push_tokens={BOT_TOKEN})
    fake.repo(REPOSITORY)
    github, github_url = serve(fake)
    data = home / "governance.json"
    data.write_text(json.dumps({"cortex_config": {
        "governance": {"community_reviewers": [REVIEWER]},
        "trusted_scan_attesters": {"acme-scanner": {"plugins": ["acme/*"], "issuer": GHA, "identity": ATTESTER,
                                                    "trusted_roots": ["trusted_root"]}}}}))
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "CONTAINER_HOST")}
    env.update({"CORTEX_REGISTRY_GITHUB_REPOSITORY": REPOSITORY, "CORTEX_REGISTRY_GITHUB_API": github_url,
                "CORTEX_REGISTRY_GITHUB_TOKEN": BOT_TOKEN, "CORTEX_REGISTRY_WEBHOOK_SECRET": SECRET})
    with serve_registry(home, "--no-scan", "--trusted-root", str(sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--data", str(data), env=env) as server:
        save_config(home / "config.json", CortexConfig(registry=server.url, github_api=github_url))
        yield World(server, fake.repo(REPOSITORY), github_url, sigstore, home, data)
    github.shutdown()


def test_promotion_review_and_dispute_end_to_end(world: World) -> None:
    assert httpx.get(f"{world.server.url}/healthz", timeout=5).json()["github"] == "configured"
    published = world.publish("1.0.0")
    assert published["tier"] == "experimental"
    assert {m["code"] for m in published["decision"]["next_tier"]["missing"]} == {"PROMOTION_MISSING"}
    code, action, _ = world.install_action("1.0.0")
    assert (code, action) == (1, "warn")

    r = world.cortex("plugin", "promote", "acme/tool@1.0.0", "--registry", world.server.url,
                     CORTEX_REGISTRY_TOKEN=world.token())
    assert r.exit_code == 0, r.output
    [number] = list(world.repo.pulls)
    assert world.repo.pulls[number]["html_url"] in r.stdout and "opened" in r.stdout
    again = world.cortex("plugin", "promote", "acme/tool@1.0.0", "--registry", world.server.url,
                         CORTEX_REGISTRY_TOKEN=world.token())
    assert again.exit_code == 0 and "already requested" in again.stdout and len(world.repo.pulls) == 1

    world.repo.review(number, REVIEWER, "APPROVED")
    assert world.deliver("pull_request_review", review_event(world.repo, number))["status"] == "applied"
    assert world.version("1.0.0")["tier"] == "community"
    code, action, codes = world.install_action("1.0.0")
    assert (code, action) == (0, "notice"), codes

    # A security dispute: the issue is opened on GitHub with the user's token, recorded by the registry.
    r = world.cortex("plugin", "dispute", "acme/tool@1.0.0", "--reason", "phones home", "--security",
                     GITHUB_TOKEN=USER_GITHUB_TOKEN, CORTEX_REGISTRY_TOKEN=world.token("globex", "installation"))
    assert r.exit_code == 0, r.output
    [issue] = list(world.repo.issues)
    assert "recorded by the registry" in r.stdout
    assert {lb["name"] for lb in world.repo.issues[issue]["labels"]} == {"dispute", "security"}
    code, action, codes = world.install_action("1.0.0")
    assert (code, action) == (1, "warn") and "DISPUTE_OPEN" in codes
    world.repo.set_issue(issue, state="closed")
    assert world.deliver("issues", issue_event(world.repo, issue, "closed"))["status"] == "applied"
    code, action, codes = world.install_action("1.0.0")
    assert (code, action) == (0, "notice") and "DISPUTE_OPEN" not in codes
    listed = httpx.get(f"{world.server.url}/api/v1/plugins/acme/tool/disputes", timeout=10).json()
    assert [(d["number"], d["state"]) for d in listed["items"]] == [(issue, "closed")]


def test_a_rejected_promotion_stays_experimental_with_the_link(world: World) -> None:
    world.publish("2.0.0")
    r = world.cortex("plugin", "promote", "acme/tool@2.0.0", "--registry", world.server.url, "--format", "json",
                     CORTEX_REGISTRY_TOKEN=world.token())
    assert r.exit_code == 0, r.output
    promo = json.loads(r.stdout)
    world.repo.review(promo["number"], REVIEWER, "CHANGES_REQUESTED")
    world.deliver("pull_request_review", review_event(world.repo, promo["number"]))
    doc = world.version("2.0.0")
    assert doc["tier"] == "experimental"
    [missing] = doc["decision"]["next_tier"]["missing"]
    assert missing["code"] == "PROMOTION_REJECTED" and promo["url"] in missing["message"]


def test_dispute_without_a_github_token_prints_a_prefilled_url_and_records_nothing(world: World) -> None:
    world.publish("0.9.0")  # the plugin exists whichever tests ran before this one
    before = len(world.repo.issues)
    r = world.cortex("plugin", "dispute", "acme/tool", "--reason", "wrong license")
    assert r.exit_code == 0, r.output
    url = r.stdout.strip().splitlines()[-1]
    assert url.startswith(f"https://github.com/{REPOSITORY}/issues/new?") or url.startswith(
        f"{world.github_url}/{REPOSITORY}/issues/new?")
    assert "labels=dispute" in url and "cortex-dispute" in httpx.URL(url).params["body"]
    assert "token" not in url.lower()
    assert len(world.repo.issues) == before


def test_promote_refusals_exit_with_input_codes(world: World) -> None:
    r = world.cortex("plugin", "promote", "acme/tool@9.9.9", "--registry", world.server.url,
                     CORTEX_REGISTRY_TOKEN=world.token())
    assert r.exit_code == 2, r.output
    r = world.cortex("plugin", "promote", "acme/tool@1.0.0", "--registry", world.server.url)
    assert r.exit_code == 2 and "CORTEX_REGISTRY_TOKEN" in r.output
    r = world.cortex("plugin", "promote", "not a ref", "--registry", world.server.url,
                     CORTEX_REGISTRY_TOKEN=world.token())
    assert r.exit_code == 2


def test_doctor_says_whether_github_is_configured_and_reachable(world: World, tmp_path: Path) -> None:
    env = {"CORTEX_REGISTRY_GITHUB_REPOSITORY": REPOSITORY, "CORTEX_REGISTRY_GITHUB_API": world.github_url,
           "CORTEX_REGISTRY_GITHUB_TOKEN": BOT_TOKEN, "CORTEX_REGISTRY_WEBHOOK_SECRET": SECRET}
    r = world.cortex("registry", "doctor", **env)
    assert r.exit_code == 0, r.output
    assert "reachable" in r.stdout and "push access yes" in r.stdout
    assert BOT_TOKEN not in r.stdout and SECRET not in r.stdout
    r = world.cortex("registry", "doctor", **{**env, "CORTEX_REGISTRY_GITHUB_API": "http://127.0.0.1:9"})
    assert r.exit_code == 3 and "NOT reachable" in r.stdout
    r = world.cortex("registry", "doctor", **{**env, "CORTEX_REGISTRY_GITHUB_REPOSITORY": ""})
    assert r.exit_code == 0 and "not configured" in r.stdout
    # From a file: the secrets come from files it names, never from the command line.
    (tmp_path / "token").write_text(BOT_TOKEN + "\n")
    (tmp_path / "github.yaml").write_text(json.dumps({
        "repository": REPOSITORY, "api_url": world.github_url, "token_file": str(tmp_path / "token")}))
    r = world.cortex("registry", "doctor", "--github-config", str(tmp_path / "github.yaml"))
    assert r.exit_code == 0 and "webhook secret NOT set" in r.stdout
    (tmp_path / "bad.yaml").write_text(json.dumps({"repository": REPOSITORY, "token": BOT_TOKEN}))
    r = world.cortex("registry", "doctor", "--github-config", str(tmp_path / "bad.yaml"))
    assert r.exit_code == 2 and "unknown keys" in r.output
