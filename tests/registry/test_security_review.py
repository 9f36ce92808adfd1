"""Regressions from the adversarial review of the registry service and its client (task R1)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cortex_trust.errors import RegistryUnavailable
from cortex_trust.sources import RegistryClient
from tests.registry.conftest import A_TXT_DIGEST, BEACON, BUNDLE_WHEEL, GHA, WHEEL_DIGEST, Registry

# ----------------------------------------------------------------------------------- server


def test_a_revoked_digest_cannot_come_back_under_a_new_version(registry: Registry) -> None:
    """Revoking 1.0.0 revokes its image: re-publishing that digest as 1.0.1 (or in another
    plugin) must not give the compromised image an active version again."""
    token = registry.token()
    assert registry.publish(token).status_code == 201
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                             json={"reason": "compromised"}, headers=registry.auth(token))
    assert r.status_code == 200
    for kw in ({"version": "1.0.1"}, {"name": "other", "version": "1.0.0"}):
        r = registry.publish(token, **kw)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "DIGEST_REVOKED"
    status, doc = registry.get("/api/v1/plugins/acme/hello")
    assert status == 200 and doc["action"] == "block"
    assert registry.store.audit_verify() == []


def test_a_revoked_identity_cannot_publish_new_versions(registry: Registry) -> None:
    """Revoking an identity (a leaked CI identity) must also stop what it signs next: a version
    published after the revocation must not become active."""
    admin = registry.token("cortex", "admin")
    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "leaked"},
                             headers=registry.auth(admin))
    assert r.status_code == 200 and r.json()["revoked"] == []
    acme = registry.token()
    r = registry.publish(acme, version="2.0.0")  # signed by BEACON
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "IDENTITY_REVOKED"
    status, _ = registry.get("/api/v1/plugins/acme/hello")
    assert status == 404
    # Another signer is unaffected, and revoking twice is harmless.
    r = registry.publish(acme, name="wheel", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    assert r.status_code == 201, r.text
    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "again"},
                             headers=registry.auth(admin))
    assert r.status_code == 200
    assert registry.store.audit_verify() == []


def test_a_long_namespace_can_publish_review_report_and_revoke(registry: Registry) -> None:
    """Actors are ``role:namespace:token_id``: with a 64-character namespace that is longer
    than 64 characters, which PostgreSQL refused (a 500 on every write of such a namespace)."""
    ns = "n" * 64
    token = registry.token(namespace=ns)
    r = registry.publish(token, namespace=ns)
    assert r.status_code == 201, r.text
    base = f"/api/v1/plugins/{ns}/hello/versions/1.0.0"
    r = registry.client.post(f"{base}/reviews", json={"status": "approved"},
                             headers=registry.auth(registry.token(namespace=ns, role="reviewer")))
    assert r.status_code == 200, r.text
    r = registry.client.post("/api/v1/usage", json={"namespace": ns, "name": "hello",
                                                    "version": "1.0.0", "digest": A_TXT_DIGEST},
                             headers=registry.auth(registry.token(namespace=ns,
                                                                  role="installation")))
    assert r.status_code == 200, r.text
    r = registry.client.post(f"{base}/revoke", json={"reason": "r"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    assert registry.store.audit_verify() == []


@pytest.mark.parametrize("cursor", [2**31 - 1, 2**31, 2**62])
def test_revocation_cursor_beyond_the_id_range_is_no_500(registry: Registry,
                                                          cursor: int) -> None:
    """Revocation ids are 32-bit integers on PostgreSQL: a larger cursor made it fail (500)."""
    r = registry.client.get(f"/api/v1/revocations?cursor={cursor}")
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json() == {"items": [], "next_cursor": cursor}


@pytest.mark.parametrize("namespace", ["acme\n", "Acme", "acm\u0435", "", "a" * 65])
def test_tokens_are_only_minted_for_exact_slug_namespaces(registry: Registry,
                                                          namespace: str) -> None:
    """A token's namespace becomes the publish namespace when the body names none, so a
    look-alike or trailing-newline namespace must never be created."""
    from registry._errors import Invalid

    with pytest.raises(Invalid) as exc:
        registry.store.create_token(namespace=namespace, role="publisher",
                                    expires_in=timedelta(days=1), now=registry.clock())
    assert exc.value.code == "BAD_NAMESPACE"


# ----------------------------------------------------------------------------------- client


def _client(handler: object) -> RegistryClient:
    return RegistryClient("http://registry.test", token="ctr_secret",
                          transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def _summary(name: str) -> dict[str, object]:
    return {"namespace": "acme", "name": name, "full_name": f"acme/{name}", "description": "",
            "latest_version": "1.0.0", "tier": "experimental", "action": "warn"}


def test_client_caps_response_bodies() -> None:
    """A hostile or broken registry cannot make the client buffer an unbounded body."""
    sent: list[int] = []

    def endless() -> Any:
        chunk = b" " * 65536
        for _ in range(10_000):  # 640 MiB if read to the end
            sent.append(len(chunk))
            yield chunk

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    with _client(handler) as c, pytest.raises(RegistryUnavailable) as exc:
        c.list_plugins()
    assert "larger than" in exc.value.message
    assert sum(sent) < 64 * 1024 * 1024


def test_client_never_treats_a_redirect_as_a_success() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://evil.test/b"},
                              content=b'{"not": "a bundle"}')

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.get_bundle("acme", "hello", "1.0.0")


def test_client_stops_on_a_cursor_that_does_not_advance() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor"))
        if len(calls) > 50:
            raise AssertionError("the client loops on a repeating cursor")
        return httpx.Response(200, json={"items": [_summary("a")], "next_cursor": "c1"})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        list(c.iter_plugins())
    assert len(calls) == 2


def test_client_stops_on_empty_pages_that_ask_for_more() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor"))
        if len(calls) > 50:
            raise AssertionError("the client loops on empty pages")
        return httpx.Response(200, json={"items": [], "next_cursor": f"c{len(calls)}"})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.search("x", limit=5)
    assert len(calls) == 1


def test_client_refuses_a_revocation_cursor_going_backwards() -> None:
    """A feed whose cursor does not move forward would make followers re-read forever (or
    skip entries): it is not the documented feed."""
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": 3})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.revocations(cursor=10)


def test_client_refuses_a_document_about_another_version() -> None:
    """A 200 with the right shape but about another plugin or version (say a verified one)
    must not be taken as the answer for the one asked about."""
    doc = {"namespace": "acme", "name": "trusted", "version": "9.9.9", "image": "ghcr.io/a/b",
           "digest": A_TXT_DIGEST, "state": "active", "tier": "verified", "action": "allow",
           "published_at": "2026-01-01T00:00:00Z", "policy_revision": "", "published_by": "p",
           "signer": None, "manifest": None, "evidence": {}, "revocation": None,
           "decision": {"tier": "verified", "action": "allow", "reasons": [],
                        "sandbox": None, "next_tier": None, "overridable": True}}
    plugin = {**_summary("trusted"), "capabilities": [], "updated_at": "t", "versions": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        if "/versions/" in request.url.path:
            return httpx.Response(200, content=json.dumps(doc))
        if request.url.path.endswith("/versions"):
            return httpx.Response(200, content=json.dumps({"items": [doc]}))
        return httpx.Response(200, content=json.dumps(plugin))

    with _client(handler) as c:
        assert c.get_version("acme", "trusted", "9.9.9").tier == "verified"
        assert c.get_plugin("acme", "trusted").name == "trusted"
        assert len(c.list_versions("acme", "trusted")) == 1
        for call in (lambda: c.get_version("acme", "hello", "9.9.9"),
                     lambda: c.get_version("acme", "trusted", "1.0.0"),
                     lambda: c.get_version("other", "trusted", "9.9.9"),
                     lambda: c.get_plugin("acme", "hello"),
                     lambda: c.list_versions("acme", "hello")):
            with pytest.raises(RegistryUnavailable):
                call()


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


@pytest.mark.parametrize("holder", ["Ada", "ada\n", "a/b", "", "а"])  # the last is Cyrillic
def test_token_holders_are_exact_slugs(registry: Registry, holder: str) -> None:
    from registry._errors import Invalid

    with pytest.raises(Invalid):
        registry.store.create_token(namespace="cortex-core", role="reviewer", holder=holder,
                                    expires_in=timedelta(days=1), now=registry.clock())
