"""Who may revoke what, through the HTTP API: an image belongs to the namespace that published it
first; a publisher's revocation reaches its own version only; revoking an image (digest) or a
signer everywhere is an admin act; image references follow the manifest's grammar.

The end-to-end attack through the CLI and a real ``cortex registry serve`` is in
tests/registry/test_revocation_ownership.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.registry.conftest import (
    A_TXT_DIGEST,
    BEACON,
    BUNDLE_WHEEL,
    GHA,
    WHEEL_DIGEST,
    Registry,
    migration_steps,
    publish_body,
)

DIGEST_ROUTE = "/api/v1/revocations/digest"


def _error(r: Any) -> dict[str, str]:
    body = json.loads(r.content)
    assert set(body) == {"error"} and {"code", "message", "fix"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def _assert_audit_intact(registry: Registry) -> None:
    report = registry.store.audit_verify()
    assert list(getattr(report, "problems", report)) == []


def _feed(registry: Registry) -> list[dict[str, Any]]:
    status, feed = registry.get("/api/v1/revocations")
    assert status == 200
    return feed["items"]  # type: ignore[no-any-return]


def _revoke(registry: Registry, token: str, ns: str, name: str, version: str) -> Any:
    return registry.client.post(f"/api/v1/plugins/{ns}/{name}/versions/{version}/revoke",
                                json={"reason": "mine to revoke"}, headers=registry.auth(token))


def test_an_image_belongs_to_the_namespace_that_published_it_first(registry: Registry) -> None:
    acme = registry.token("acme")
    evil = registry.token("evil")
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme).status_code == 201
    # evil downloads acme's bundle and publishes acme's image under its own name.
    bundle = registry.client.get("/api/v1/plugins/acme/hello/versions/1.0.0/bundle").text
    r = registry.publish(evil, name="clone", bundle=bundle)
    assert r.status_code == 409, r.text
    err = _error(r)
    assert err["code"] == "DIGEST_OWNED" and "'acme'" in err["message"] and err["fix"]
    assert registry.get("/api/v1/plugins/evil/clone")[0] == 404
    # The owner publishes its image again under another name or version.
    assert registry.publish(acme, name="hello-two").status_code == 201
    assert registry.publish(acme, version="1.0.1").status_code == 201
    # An admin may place it anywhere; a namespace holding it may then publish it again.
    assert registry.publish(admin, name="clone", namespace="evil").status_code == 201
    assert registry.publish(evil, name="clone", version="1.0.1").status_code == 201
    _assert_audit_intact(registry)


def test_a_publishers_revocation_reaches_its_own_version_only(registry: Registry) -> None:
    """The attack's end state: the feed holds evil's revocation of evil/clone@1.0.0 carrying
    acme's digest (an admin placed the image there, the only way left to get it there)."""
    acme = registry.token("acme")
    evil = registry.token("evil")
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme).status_code == 201
    assert registry.publish(admin, name="clone", namespace="evil").status_code == 201
    r = _revoke(registry, evil, "evil", "clone", "1.0.0")
    assert r.status_code == 200 and r.json()["state"] == "revoked"

    [entry] = _feed(registry)
    assert (entry["kind"], entry["namespace"], entry["name"], entry["version"],
            entry["digest"]) == ("version", "evil", "clone", "1.0.0", A_TXT_DIGEST)
    _, hello = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert hello["state"] == "active" and hello["action"] != "block"
    # acme is not locked out of its own image...
    r = registry.publish(acme, version="1.0.1")
    assert r.status_code == 201, r.text
    # ...while the namespace that revoked it cannot bring it back under another version.
    r = registry.publish(evil, name="clone", version="1.0.2")
    assert r.status_code == 409 and _error(r)["code"] == "DIGEST_REVOKED"
    # A publisher of another namespace cannot revoke acme's version directly either.
    r = _revoke(registry, evil, "acme", "hello", "1.0.0")
    assert r.status_code == 403 and _error(r)["code"] == "NAMESPACE_FORBIDDEN"


@pytest.mark.parametrize("role", ["publisher", "reviewer", "installation"])
def test_only_an_admin_revokes_a_digest_everywhere(registry: Registry, role: str) -> None:
    acme = registry.token("acme")
    assert registry.publish(acme).status_code == 201
    for ns in ("evil", "acme"):  # not even the image's owner: a publisher revokes versions
        r = registry.client.post(DIGEST_ROUTE, json={"digest": A_TXT_DIGEST, "reason": "x"},
                                 headers=registry.auth(registry.token(ns, role)))
        assert r.status_code == 403 and _error(r)["code"] == "ROLE_FORBIDDEN"
    r = registry.client.post(DIGEST_ROUTE, json={"digest": A_TXT_DIGEST, "reason": "x"})
    assert r.status_code == 401
    assert _feed(registry) == []
    _, hello = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert hello["state"] == "active"


def test_an_admin_digest_revocation_reaches_every_name_and_stays(registry: Registry) -> None:
    acme = registry.token("acme")
    evil = registry.token("evil")
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme).status_code == 201
    assert registry.publish(admin, name="clone", namespace="evil").status_code == 201
    assert _revoke(registry, evil, "evil", "clone", "1.0.0").status_code == 200
    assert registry.publish(acme, name="wheel", digest=WHEEL_DIGEST,
                            bundle=BUNDLE_WHEEL).status_code == 201
    registry.clock.advance(minutes=1)

    r = registry.client.post(DIGEST_ROUTE, json={"digest": A_TXT_DIGEST, "reason": "malware"},
                             headers=registry.auth(admin))
    assert r.status_code == 200, r.text
    # Every version carrying it, also the one its publisher had revoked already.
    assert r.json() == {"revoked": ["acme/hello@1.0.0", "evil/clone@1.0.0"]}
    feed = _feed(registry)
    assert [(e["kind"], e["namespace"], e["name"]) for e in feed] == [
        ("version", "evil", "clone"), ("digest", "acme", "hello"), ("digest", "evil", "clone")]
    assert feed[0]["cursor"] < feed[1]["cursor"] < feed[2]["cursor"]
    _, hello = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert hello["state"] == "revoked" and hello["action"] == "block"
    assert hello["revocation"]["reason"] == "malware"
    _, clone = registry.get("/api/v1/plugins/evil/clone/versions/1.0.0")
    assert clone["revocation"]["reason"] == "mine to revoke"  # the first revocation stays
    _, wheel = registry.get("/api/v1/plugins/acme/wheel/versions/1.0.0")
    assert wheel["state"] == "active"
    # Never published again, by anyone, under any name.
    for token, kw in ((acme, {"version": "2.0.0"}), (admin, {"name": "fresh"})):
        r = registry.publish(token, **kw)
        assert r.status_code == 409 and _error(r)["code"] == "DIGEST_REVOKED"
    # Idempotent; an unknown digest is a 404.
    r = registry.client.post(DIGEST_ROUTE, json={"digest": A_TXT_DIGEST, "reason": "again"},
                             headers=registry.auth(admin))
    assert r.status_code == 200 and r.json() == {"revoked": []}
    assert len(_feed(registry)) == 3
    r = registry.client.post(DIGEST_ROUTE, json={"digest": "sha256:" + "0" * 64, "reason": "x"},
                             headers=registry.auth(admin))
    assert r.status_code == 404 and _error(r)["code"] == "NO_SUCH_DIGEST"
    for body in ({"digest": "sha256:ABC", "reason": "x"}, {"digest": A_TXT_DIGEST, "reason": ""},
                 {"digest": A_TXT_DIGEST, "reason": "x", "kind": "version"}):
        r = registry.client.post(DIGEST_ROUTE, json=body, headers=registry.auth(admin))
        assert r.status_code == 422, body
    _assert_audit_intact(registry)


@pytest.mark.security_review
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


@pytest.mark.security_review
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


def test_identity_revocation_entries_say_identity(registry: Registry) -> None:
    acme = registry.token("acme")
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme).status_code == 201
    assert _revoke(registry, acme, "acme", "hello", "1.0.0").status_code == 200
    registry.clock.advance(minutes=1)
    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "leaked"},
                             headers=registry.auth(admin))
    assert r.status_code == 200 and r.json() == {"revoked": ["acme/hello@1.0.0"]}
    assert [(e["kind"], e["identity"]) for e in _feed(registry)] == [("version", BEACON),
                                                                     ("identity", BEACON)]


def test_existing_revocations_are_scoped_on_upgrade(registry: Registry) -> None:
    """Migration 0009 on rows written before kinds: a publisher's row becomes ``version`` (so a
    revocation by a namespace that did not own the image stops blocking its owner), rows of an
    identity revocation become ``identity``, other admin rows keep their reach (``digest``)."""
    from sqlalchemy import text

    acme = registry.token("acme")
    evil = registry.token("evil")
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme).status_code == 201
    assert registry.publish(admin, name="clone", namespace="evil").status_code == 201
    assert registry.publish(acme, name="wheel", digest=WHEEL_DIGEST,
                            bundle=BUNDLE_WHEEL).status_code == 201
    assert registry.publish(acme, name="wheel", version="1.1.0", digest=WHEEL_DIGEST,
                            bundle=BUNDLE_WHEEL).status_code == 201
    assert _revoke(registry, evil, "evil", "clone", "1.0.0").status_code == 200
    registry.clock.advance(minutes=1)
    assert _revoke(registry, admin, "acme", "wheel", "1.1.0").status_code == 200
    registry.clock.advance(minutes=1)
    _, wheel = registry.get("/api/v1/plugins/acme/wheel/versions/1.0.0")
    signer = wheel["signer"]
    r = registry.client.post("/api/v1/revocations/identity",
                             json={**signer, "reason": "leaked"}, headers=registry.auth(admin))
    assert r.status_code == 200 and r.json() == {"revoked": ["acme/wheel@1.0.0",
                                                             "acme/wheel@1.1.0"]}

    engine, to = migration_steps(registry.db_url)

    try:
        to("0008", "downgrade")  # one row per version, no kinds: what older registries hold
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT namespace, name, version FROM revocation "
                                     "ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("evil", "clone", "1.0.0"), ("acme", "wheel", "1.1.0"),
                                            ("acme", "wheel", "1.0.0")]
        to("head", "upgrade")
        with engine.connect() as conn:
            kinds = conn.execute(text("SELECT namespace, name, version, kind FROM revocation "
                                      "ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in kinds] == [("evil", "clone", "1.0.0", "version"),
                                         ("acme", "wheel", "1.1.0", "digest"),
                                         ("acme", "wheel", "1.0.0", "identity")]
    # evil's old revocation of acme's image no longer keeps acme from publishing it.
    r = registry.publish(acme, version="2.0.0")
    assert r.status_code == 201, r.text
    assert [e["kind"] for e in _feed(registry)] == ["version", "digest", "identity"]


# ------------------------------------------------------------------------- image references


@pytest.mark.parametrize(("image", "why"), [
    (f"ghcr.io/acme/x\x1b[31mRED@{A_TXT_DIGEST}", "repository component"),
    (f"ghcr.io/acme/hello\n@{A_TXT_DIGEST}", "whitespace"),
    (f"ghcr.io/acme/hello\r@{A_TXT_DIGEST}", "whitespace"),
    (f"ghcr.io/acme/hello@sha256:{'0' * 64}@{A_TXT_DIGEST}", "more than one '@'"),
    (f"ghcr.io/acme/hel\u202elo@{A_TXT_DIGEST}", "repository component"),
    (f"https://ghcr.io/acme/hello@{A_TXT_DIGEST}", "URL scheme"),
    (f"ghcr.io/acme/hello:bad\x07tag@{A_TXT_DIGEST}", "tag"),
])
def test_image_references_follow_the_manifest_grammar(registry: Registry, image: str,
                                                      why: str) -> None:
    body = publish_body()
    body["image"] = image
    r = registry.client.post("/api/v1/plugins", json=body,
                             headers=registry.auth(registry.token()))
    assert r.status_code == 422, r.text
    err = _error(r)
    assert err["code"] == "IMAGE_INVALID" and why in err["message"] and err["fix"]
    assert "\x1b" not in r.text  # JSON escapes it; the reference is quoted with repr()
    assert registry.get("/api/v1/plugins/acme/hello")[0] == 404
