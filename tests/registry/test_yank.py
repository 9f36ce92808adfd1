"""Yanking and unyanking versions (like PyPI and npm), end to end.

``POST .../versions/{version}/yank`` and ``.../unyank``: only the namespace's publishers and
admins; a revoked version is refused (409); both are idempotent. A yank changes the state and
every stored document (version, versions list, plugin, plugin list), never the evidence or the
decision, and lands in the audit log. Installers skip a yanked version for ranges and take it
when pinned exactly (through the real registry client and installer). The CLI commands talk to
a real server on loopback.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.registry._helpers import run_cli
from tests.registry.conftest import Registry
from tests.support.federation import Federation, installer
from tests.support.served_registry import serve_app

BASE = "/api/v1/plugins/acme/hello/versions"


def _two_versions(registry: Registry) -> str:
    """acme/hello 1.0.0 (reviewed: community) and 1.1.0 (experimental); the publisher token."""
    acme = registry.token()
    reviewer = registry.token("cortex", "reviewer")
    for v in ("1.0.0", "1.1.0"):
        r = registry.publish(acme, version=v)
        assert r.status_code == 201, r.text
    r = registry.client.post(f"{BASE}/1.0.0/reviews", json={"status": "approved"},
                             headers=registry.auth(reviewer))
    assert r.status_code == 200 and r.json()["tier"] == "community", r.text
    return acme


def _yank(registry: Registry, token: str | None, version: str = "1.1.0",
          reason: str = "breaks config loading") -> Any:
    headers = registry.auth(token) if token else {}
    return registry.client.post(f"{BASE}/{version}/yank", json={"reason": reason},
                                headers=headers)


def _unyank(registry: Registry, token: str | None, version: str = "1.1.0") -> Any:
    headers = registry.auth(token) if token else {}
    return registry.client.post(f"{BASE}/{version}/unyank", headers=headers)


def _audit(registry: Registry) -> list[tuple[str, str, str, Any, Any]]:
    with registry.store.engine.connect() as c:
        return [(r[0], r[1], r[2], json.loads(r[3]) if r[3] else None, json.loads(r[4]))
                for r in c.execute(text("SELECT actor, action, target, before_json, after_json "
                                        "FROM audit_log ORDER BY id"))]


# ------------------------------------------------------------------------------ who may yank


def test_only_the_namespace_publisher_or_an_admin_may_yank_or_unyank(registry: Registry) -> None:
    acme = _two_versions(registry)
    refused = {
        registry.token("other"): (403, "NAMESPACE_FORBIDDEN"),
        registry.token("acme", "reviewer"): (403, "ROLE_FORBIDDEN"),
        registry.token("acme", "installation"): (403, "ROLE_FORBIDDEN"),
        "ctr_not-a-token": (401, "BAD_TOKEN"),
        None: (401, "UNAUTHENTICATED"),
    }
    for token, (status, code) in refused.items():
        for r in (_yank(registry, token), _unyank(registry, token)):
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    _, doc = registry.get(f"{BASE}/1.1.0")
    assert doc["state"] == "active"

    assert _yank(registry, acme).json()["state"] == "yanked"
    admin = registry.token("ops", "admin")
    assert _unyank(registry, admin).json()["state"] == "active"
    assert _yank(registry, admin, reason="admin says so").json()["state"] == "yanked"
    assert _unyank(registry, acme).json()["state"] == "active"
    # Refused requests wrote nothing: only the four changes are audited.
    assert [a[1] for a in _audit(registry) if a[1].startswith("version.") and "yank" in a[1]] \
        == ["version.yank", "version.unyank", "version.yank", "version.unyank"]


def test_unknown_versions_and_bad_bodies_are_refused(registry: Registry) -> None:
    acme = _two_versions(registry)
    assert _yank(registry, acme, version="9.9.9").status_code == 404
    assert _unyank(registry, acme, version="9.9.9").status_code == 404
    r = registry.client.post("/api/v1/plugins/acme/nope/versions/1.0.0/yank",
                             json={"reason": "x"}, headers=registry.auth(acme))
    assert r.status_code == 404
    for body in ({}, {"reason": ""}, {"reason": "x" * 2001},
                 {"reason": "x", "state": "active"}, {"reason": "x", "tier": "verified"}):
        r = registry.client.post(f"{BASE}/1.1.0/yank", json=body, headers=registry.auth(acme))
        assert r.status_code == 422, (body, r.text)
    _, doc = registry.get(f"{BASE}/1.1.0")
    assert doc["state"] == "active" and doc["yank"] is None


# ----------------------------------------------------------------------- state and documents


def test_yank_changes_state_and_documents_but_never_the_decision(registry: Registry) -> None:
    acme = _two_versions(registry)
    _, before = registry.get(f"{BASE}/1.1.0")
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert (plugin["latest_version"], plugin["tier"]) == ("1.1.0", "experimental")

    registry.clock.advance(hours=1)
    r = _yank(registry, acme)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["state"] == "yanked"
    assert doc["yank"] == {"reason": "breaks config loading", "yanked_at": "2026-01-01T13:00:00Z"}
    # The evidence and the decision are exactly as before: a yank is not evidence.
    for key in ("tier", "action", "decision", "evidence", "manifest", "policy_revision",
                "digest", "signer", "published_at", "revocation"):
        assert doc[key] == before[key], key
    # Every stored document says so.
    assert registry.get(f"{BASE}/1.1.0") == (200, doc)
    _, versions = registry.get(BASE)
    assert [(v["version"], v["state"]) for v in versions["items"]] == [
        ("1.0.0", "active"), ("1.1.0", "yanked")]
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert (plugin["latest_version"], plugin["tier"], plugin["action"]) == (
        "1.0.0", "community", "notice")
    assert plugin["versions"] == 2
    for query in ("", "?q=hello", "?namespace=acme", "?tier=community"):
        _, page = registry.get(f"/api/v1/plugins{query}")
        assert [(p["full_name"], p["latest_version"]) for p in page["items"]] == [
            ("acme/hello", "1.0.0")], query
    _, page = registry.get("/api/v1/plugins?tier=experimental")
    assert page["items"] == []
    with registry.store.engine.connect() as c:
        row = c.execute(text("SELECT yanked_reason, yanked_at, yanked_by FROM plugin_version "
                             "WHERE version = '1.1.0'")).one()
    assert row[0] == "breaks config loading" and row[1] == "2026-01-01T13:00:00Z"
    assert row[2].startswith("publisher:acme:tok_")

    r = _unyank(registry, acme)
    assert r.status_code == 200, r.text
    assert r.json() == {**before, "yank": None}
    assert registry.get(f"{BASE}/1.1.0") == (200, r.json())
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert (plugin["latest_version"], plugin["tier"]) == ("1.1.0", "experimental")
    with registry.store.engine.connect() as c:
        row = c.execute(text("SELECT state, yanked_reason, yanked_at, yanked_by FROM "
                             "plugin_version WHERE version = '1.1.0'")).one()
    assert tuple(row) == ("active", None, None, None)


def test_yank_and_unyank_are_idempotent(registry: Registry) -> None:
    acme = _two_versions(registry)
    first = _yank(registry, acme)
    assert first.status_code == 200
    registry.clock.advance(hours=2)
    again = _yank(registry, acme, reason="another reason")
    assert again.status_code == 200
    # The first yank stands: same reason, same time, same bytes.
    assert again.content == first.content
    assert again.json()["yank"]["reason"] == "breaks config loading"
    assert _unyank(registry, acme).json()["state"] == "active"
    active = _unyank(registry, acme)
    assert active.status_code == 200 and active.json()["state"] == "active"
    assert _unyank(registry, acme, version="1.0.0").json()["state"] == "active"
    assert registry.store.audit_verify() == []


def test_when_every_version_is_yanked_the_highest_yanked_is_latest(registry: Registry) -> None:
    acme = _two_versions(registry)
    assert _yank(registry, acme, version="1.0.0").status_code == 200
    assert _yank(registry, acme, version="1.1.0").status_code == 200
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert (plugin["latest_version"], plugin["tier"]) == ("1.1.0", "experimental")
    # A revoked version is never preferred over a yanked one.
    r = registry.client.post(f"{BASE}/1.1.0/revoke", json={"reason": "key leaked"},
                             headers=registry.auth(acme))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert (plugin["latest_version"], plugin["tier"]) == ("1.0.0", "community")


def test_plugin_documents_prefer_active_then_yanked_then_any() -> None:
    from registry._documents import plugin_documents

    def latest(*versions: tuple[str, str]) -> str | None:
        return plugin_documents(namespace="a", name="b", key="a/b", description="",
                                capabilities_json="[]", updated_at="t",
                                versions=[(v, s, "community", "allow") for v, s in versions])[0]

    assert latest(("1.0.0", "active"), ("2.0.0", "yanked"), ("3.0.0", "revoked")) == "1.0.0"
    assert latest(("1.0.0", "revoked"), ("2.0.0", "yanked"), ("3.0.0", "revoked")) == "2.0.0"
    assert latest(("1.0.0", "revoked"), ("3.0.0", "revoked")) == "3.0.0"
    assert latest() is None


def test_any_reason_is_stored_as_given_or_refused_never_a_server_error(
        registry: Registry) -> None:
    """Hostile reasons: NUL and control characters (which PostgreSQL or a terminal would
    choke on) are a 422; anything else (astral planes, 2000 characters) is stored and served
    back exactly, on SQLite and PostgreSQL. Never a server error."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    acme = _two_versions(registry)

    @given(reason=st.text(min_size=1, max_size=2000))
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(reason: str) -> None:
        r = _yank(registry, acme, reason=reason)
        if any((ord(c) < 32 and c not in "\t\n\r") or c == "\x7f" for c in reason):
            assert r.status_code == 422, r.text
            return
        assert r.status_code == 200, r.text
        assert r.json()["yank"]["reason"] == reason
        assert registry.get(f"{BASE}/1.1.0")[1]["yank"]["reason"] == reason
        assert _unyank(registry, acme).status_code == 200

    check()
    assert registry.store.audit_verify() == []


# ------------------------------------------------------------------------------- revocation


def test_revoked_versions_cannot_be_yanked_or_unyanked(registry: Registry) -> None:
    acme = _two_versions(registry)
    admin = registry.token("ops", "admin")
    assert _yank(registry, acme).status_code == 200
    # A yanked version can still be revoked; revocation wins and is final.
    r = registry.client.post(f"{BASE}/1.1.0/revoke", json={"reason": "key leaked"},
                             headers=registry.auth(acme))
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert r.json()["yank"] is None and r.json()["action"] == "block"
    revoked = registry.client.get(f"{BASE}/1.1.0").content
    for token in (acme, admin):
        for r in (_yank(registry, token), _unyank(registry, token)):
            assert r.status_code == 409, r.text
            err = r.json()["error"]
            assert err["code"] == "VERSION_REVOKED"
            assert "revoked" in err["message"] and "acme/hello@1.1.0" in err["message"]
            assert err["fix"]
    assert registry.client.get(f"{BASE}/1.1.0").content == revoked
    # Refusals are not writes: the last audited change is the revocation.
    assert _audit(registry)[-1][1] == "version.revoke"


def test_nul_in_a_revocation_is_a_422_not_a_server_error(registry: Registry) -> None:
    """Found while fuzzing the yank reason: PostgreSQL text cannot hold NUL, and a revocation
    reason (or identity) with one failed with a 500. It is refused like any bad field now."""
    acme = _two_versions(registry)
    admin = registry.token("ops", "admin")
    r = registry.client.post(f"{BASE}/1.1.0/revoke", json={"reason": "a\x00b"},
                             headers=registry.auth(acme))
    assert r.status_code == 422, r.text
    for field in ("identity", "issuer", "reason"):
        body = {"identity": "ci@acme.dev", "issuer": "https://issuer.test", "reason": "leak",
                field: "a\x00b"}
        r = registry.client.post("/api/v1/revocations/identity", json=body,
                                 headers=registry.auth(admin))
        assert r.status_code == 422, (field, r.text)
    assert registry.get(f"{BASE}/1.1.0")[1]["state"] == "active"


# ------------------------------------------------------------------------------------ audit


def test_yank_and_unyank_are_audited_and_the_chain_stays_intact(registry: Registry) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    acme = _two_versions(registry)
    assert _yank(registry, acme).status_code == 200
    assert _unyank(registry, acme).status_code == 200
    entries = _audit(registry)
    yank, unyank = entries[-2], entries[-1]
    assert yank[0].startswith("publisher:acme:tok_") and yank[1:3] == (
        "version.yank", "acme/hello@1.1.0")
    assert yank[3] == {"state": "active", "reason": None}
    assert yank[4]["state"] == "yanked" and yank[4]["reason"] == "breaks config loading"
    assert yank[4]["yanked_at"] == "2026-01-01T12:00:00Z"
    assert unyank[1:3] == ("version.unyank", "acme/hello@1.1.0")
    assert unyank[3]["state"] == "yanked" and unyank[3]["reason"] == "breaks config loading"
    assert unyank[3]["yanked_by"] == yank[0] and unyank[4] == {"state": "active"}
    assert registry.store.audit_verify() == []
    r = CliRunner().invoke(app, ["registry", "audit", "verify", "--db", registry.db_url])
    assert r.exit_code == 0, r.output
    # Editing the yank's entry is detected.
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET after_json = '{\"state\":\"active\"}' "
                       "WHERE action = 'version.yank'"))
    assert registry.store.audit_verify()


# ------------------------------------------------------------------- re-evaluation keeps it


def test_reevaluation_and_retier_keep_the_yank(registry: Registry, tmp_path: Path) -> None:
    """A later re-evaluation (a review) and a catalogue re-tiering render the yank exactly as
    the yank itself did: the same bytes, at the same time."""
    from tests.registry.test_retier import _policy, _retier

    acme = _two_versions(registry)
    yanked = _yank(registry, acme).content
    result, _ = _retier(registry, _policy(tmp_path), workers=1,
                        registry_name="cortex-registry")
    assert result["changed"] == 0 and result["failed"] == 0
    assert registry.client.get(f"{BASE}/1.1.0").content == yanked
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["latest_version"] == "1.0.0"

    reviewer = registry.token("cortex", "reviewer")
    r = registry.client.post(f"{BASE}/1.1.0/reviews", json={"status": "approved"},
                             headers=registry.auth(reviewer))
    assert r.status_code == 200
    doc = r.json()
    assert doc["state"] == "yanked" and doc["tier"] == "community"
    assert doc["yank"] == {"reason": "breaks config loading", "yanked_at": "2026-01-01T12:00:00Z"}
    assert registry.store.audit_verify() == []


# ----------------------------------------------------------------------------------- client


def test_client_yank_unyank_and_refusals(served: tuple[Registry, str]) -> None:
    from cortex_trust.sources import RegistryClient, RegistryRequestError

    registry, url = served
    acme = _two_versions(registry)
    with RegistryClient(url, token=acme) as client:
        detail = client.yank("acme", "hello", "1.1.0", reason="bad build")
        assert detail.state == "yanked" and detail.yank is not None
        assert detail.yank["reason"] == "bad build"
        assert [v.state for v in client.list_versions("acme", "hello")] == ["active", "yanked"]
        assert client.get_plugin("acme", "hello").latest_version == "1.0.0"
        assert client.unyank("acme", "hello", "1.1.0").state == "active"
        client.revoke("acme", "hello", "1.1.0", reason="key leaked")
        with pytest.raises(RegistryRequestError) as exc:
            client.yank("acme", "hello", "1.1.0", reason="x")
        assert (exc.value.status, exc.value.code) == (409, "VERSION_REVOKED")
        assert exc.value.exit_code == 2
    with RegistryClient(url, token=registry.token("other")) as client:
        with pytest.raises(RegistryRequestError) as exc:
            client.unyank("acme", "hello", "1.0.0")
        assert (exc.value.status, exc.value.code) == (403, "NAMESPACE_FORBIDDEN")


def test_client_refuses_an_answer_in_the_wrong_state(registry: Registry) -> None:
    """A 200 is a success only when the version is now in the state asked for: a registry
    answering a yank with the real document of a version still active is not trusted."""
    from cortex_trust.errors import RegistryUnavailable
    from cortex_trust.sources import RegistryClient

    _two_versions(registry)
    active = registry.client.get(f"{BASE}/1.1.0").content

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=active, headers={"content-type": "application/json"})

    with RegistryClient("http://registry.test", token="t",
                        transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(RegistryUnavailable, match="state 'active', not 'yanked'"):
            client.yank("acme", "hello", "1.1.0", reason="x")
        assert client.unyank("acme", "hello", "1.1.0").state == "active"
        with pytest.raises(RegistryUnavailable, match="another version"):
            client.unyank("acme", "hello", "1.0.0")


# ------------------------------------------------------------------------------ installation


def test_install_skips_a_yanked_version_unless_pinned_exactly(federation: Federation) -> None:
    """Through the real registry client and installer: ranges and latest skip the yanked
    version, an exact pin takes it (and says it is yanked), unyank brings it back."""
    from cortex_trust.errors import InputError

    fed = federation
    for v in ("1.0.0", "1.1.0"):
        fed.public.publish(fed.sigstore, "beta", "tool", v)
    publisher = fed.public.token("beta")
    with fed.public.client(publisher) as c:
        c.yank("beta", "tool", "1.1.0", reason="crashes on start")
    now = datetime.now(UTC)
    with installer(fed) as inst:
        for request in ("beta/tool", "beta/tool@latest", "beta/tool@^1.0", "beta/tool@>=1.0.0"):
            plan = inst.plan(request, now=now)
            assert (plan.version, plan.state) == ("1.0.0", "active"), request
        pinned = inst.plan("beta/tool@1.1.0", now=now)
        assert (pinned.version, pinned.state) == ("1.1.0", "yanked")
        assert pinned.yank_reason == "crashes on start"  # the CLI warns with it
        assert pinned.to_json_dict()["yank_reason"] == "crashes on start"
        assert pinned.digest == fed.public.published["beta/tool@1.1.0"]
        with pytest.raises(InputError, match="yanked"):
            inst.plan("beta/tool@^1.1", now=now)
    with fed.public.client(publisher) as c:
        c.unyank("beta", "tool", "1.1.0")
    with installer(fed) as inst:
        plan = inst.plan("beta/tool", now=now)
        assert (plan.version, plan.state, plan.yank_reason) == ("1.1.0", "active", None)


# ------------------------------------------------------------------------------------- CLI


@pytest.fixture
def served(registry: Registry) -> Iterator[tuple[Registry, str]]:
    """The fixture's app served by uvicorn on loopback, for the CLI in a separate process."""
    with serve_app(registry.app) as url:
        yield registry, url


@dataclass
class _Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``cortex plugin ...`` in this process through :func:`cli.main.main`, the console
    script's entry point (its error rendering and exit codes included)."""
    def run(*args: str, token: str | None) -> _Run:
        return _Run(*run_cli(monkeypatch, capsys, ["plugin", *args], token=token))

    return run


def test_cli_yank_and_unyank(served: tuple[Registry, str], cli: Any) -> None:
    registry, url = served
    acme = _two_versions(registry)

    r = cli("yank", "acme/hello@1.1.0", "--reason", "breaks config loading",
             "--registry", url, token=acme)
    assert r.returncode == 0, r.stderr
    # One line: what was done, to which version (short digest), its tier and action.
    digest = registry.get(f"{BASE}/1.1.0")[1]["digest"]
    assert r.stdout.startswith(f"yanked acme/hello@1.1.0 ({digest[:19]}…): installers skip it")
    assert r.stdout.count("\n") == 1 and "tier " in r.stdout and digest not in r.stdout
    assert r.stderr == "" and acme not in r.stdout + r.stderr
    assert registry.get(f"{BASE}/1.1.0")[1]["state"] == "yanked"
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["latest_version"] == "1.0.0"

    r = cli("unyank", "acme/hello@1.1.0", "--registry", url, "--format", "json", token=acme)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "active"

    # Refused by the registry: exit 2 with its message and fix.
    r = cli("yank", "acme/hello@1.1.0", "--reason", "x", "--registry", url,
             token=registry.token("other"))
    assert r.returncode == 2 and "error:" in r.stderr and "fix:" in r.stderr
    assert "'other'" in r.stderr
    registry.client.post(f"{BASE}/1.1.0/revoke", json={"reason": "key leaked"},
                         headers=registry.auth(acme))
    r = cli("unyank", "acme/hello@1.1.0", "--registry", url, token=acme)
    assert r.returncode == 2 and "revoked" in r.stderr and "Traceback" not in r.stderr
    # Bad input, no token: exit 2 before anything is sent.
    r = cli("yank", "acme/hello", "--reason", "x", "--registry", url, token=acme)
    assert r.returncode == 2 and "NAMESPACE/NAME@VERSION" in r.stderr
    r = cli("yank", "acme/hello@1.0.0", "--reason", " ", "--registry", url, token=acme)
    assert r.returncode == 2 and "--reason" in r.stderr
    r = cli("unyank", "acme/hello@1.0.0", "--registry", url, token=None)
    assert r.returncode == 2 and "CORTEX_REGISTRY_TOKEN" in r.stderr
    # Unreachable registry: exit 3.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = cli("yank", "acme/hello@1.0.0", "--reason", "x", "--registry", dead, token=acme)
    assert r.returncode == 3 and "cannot reach the registry" in r.stderr
    _, doc = registry.get(f"{BASE}/1.0.0")
    assert doc["state"] == "active"
    assert registry.store.audit_verify() == []
