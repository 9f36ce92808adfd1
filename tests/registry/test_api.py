"""The registry API end to end: publish, read, search, reviews, usage, revocation, tiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.registry.conftest import (
    A_TXT_DIGEST,
    BEACON,
    BUNDLE_A,
    BUNDLE_BAD,
    BUNDLE_WHEEL,
    GHA,
    WHEEL_DIGEST,
    Registry,
    publish_body,
)
from tests.support.sigstore_mint import PrivateSigstore


def _error(r: object) -> dict[str, str]:
    body = json.loads(r.content)  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert {"code", "message", "fix"} <= set(body["error"])
    return body["error"]  # type: ignore[no-any-return]


def test_publish_records_signer_decision_and_documents(registry: Registry) -> None:
    token = registry.token()
    r = registry.publish(token)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["namespace"] == "acme" and doc["name"] == "hello" and doc["version"] == "1.0.0"
    assert doc["digest"] == A_TXT_DIGEST
    assert doc["state"] == "active"
    assert doc["signer"] == {"identity": BEACON, "issuer": GHA}
    assert doc["evidence"]["signature"]["verified"] is True
    assert doc["decision"]["tier"] == "experimental"
    assert doc["tier"] == "experimental" and doc["action"] == "warn"
    assert doc["policy_revision"].startswith("sha256:")
    assert doc["manifest"]["name"] == "hello"

    status, version = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert status == 200 and version == doc
    status, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert status == 200
    assert plugin["latest_version"] == "1.0.0" and plugin["tier"] == "experimental"
    assert plugin["capabilities"] == ["echo", "greet"]
    status, versions = registry.get("/api/v1/plugins/acme/hello/versions")
    assert [v["version"] for v in versions["items"]] == ["1.0.0"]
    bundle = registry.client.get("/api/v1/plugins/acme/hello/versions/1.0.0/bundle")
    assert bundle.status_code == 200 and bundle.text == BUNDLE_A


def test_read_routes_serve_json_bytes_and_404(registry: Registry) -> None:
    registry.publish(registry.token())
    r = registry.client.get("/api/v1/plugins/acme/hello")
    assert r.headers["content-type"] == "application/json"
    for path in ("/api/v1/plugins/acme/nope", "/api/v1/plugins/acme/hello/versions/9.9.9",
                 "/api/v1/plugins/other/hello/versions"):
        r = registry.client.get(path)
        assert r.status_code == 404
        assert _error(r)["code"] == "NOT_FOUND"


def test_same_version_is_immutable(registry: Registry) -> None:
    token = registry.token()
    assert registry.publish(token).status_code == 201
    again = registry.publish(token)
    assert again.status_code == 409 and _error(again)["code"] == "VERSION_EXISTS"
    other = registry.publish(token, digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    assert other.status_code == 409 and _error(other)["code"] == "VERSION_CONFLICT"
    _, version = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert version["digest"] == A_TXT_DIGEST  # never overwritten


def test_invalid_signature_is_blocked_and_nothing_stored(registry: Registry) -> None:
    r = registry.publish(registry.token(), bundle=BUNDLE_BAD)
    assert r.status_code == 422
    err = _error(r)
    assert err["code"] == "PUBLISH_BLOCKED"
    codes = [x["code"] for x in json.loads(r.content)["error"]["details"]["decision"]["reasons"]]
    assert "SIGNATURE_INVALID" in codes
    assert registry.client.get("/api/v1/plugins/acme/hello").status_code == 404


def test_a_bundle_signing_another_digest_is_refused(registry: Registry, tmp_path: Path) -> None:
    """A bundle about another image is refused at once (422 ``BUNDLE_DIGEST_MISMATCH``, both
    digests and the fix), never kept and silently dropped as evidence: nothing is stored."""
    token = registry.token()
    # The wheel's bundle with a.txt's digest: a real signature, about another artifact.
    r = registry.publish(token, bundle=BUNDLE_WHEEL)
    assert r.status_code == 422
    err = _error(r)
    assert err["code"] == "BUNDLE_DIGEST_MISMATCH"
    assert f"signs {WHEEL_DIGEST}" in err["message"] and A_TXT_DIGEST in err["message"]
    assert f"@{A_TXT_DIGEST}" in err["fix"] and f"@{WHEEL_DIGEST}" in err["fix"]
    # A DSSE statement about another digest, signed on a root this registry does not trust:
    # what it claims to be about is enough to refuse it.
    dsse = PrivateSigstore(tmp_path).sign_dsse_statement(
        WHEEL_DIGEST, identity=BEACON, issuer=GHA, predicate_type="https://slsa.dev/provenance/v1",
        predicate={"buildDefinition": {}})
    r = registry.publish(token, bundle=dsse.decode())
    assert r.status_code == 422 and _error(r)["code"] == "BUNDLE_DIGEST_MISMATCH", r.text
    assert registry.client.get("/api/v1/plugins/acme/hello").status_code == 404
    # The same request with the bundle over the published digest lands.
    assert registry.publish(token).status_code == 201


def test_garbage_bundle_and_manifest_are_input_errors(registry: Registry) -> None:
    token = registry.token()
    r = registry.publish(token, bundle='{"not": "a bundle"}')
    assert r.status_code == 422 and _error(r)["code"] == "BUNDLE_INVALID"
    body = publish_body()
    body["manifest"] = "name: Hello\nversion: 1.10\n"
    r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
    assert r.status_code == 422
    err = _error(r)
    assert err["code"] == "MANIFEST_INVALID" and err["fix"]


def test_image_must_be_pinned_and_from_an_allowed_registry(registry: Registry) -> None:
    token = registry.token()
    body = publish_body()
    body["image"] = "ghcr.io/acme/hello:1.0.0"
    r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
    assert r.status_code == 422 and _error(r)["code"] == "IMAGE_NOT_PINNED"
    for host in ("169.254.169.254", "localhost:5000", "evil.example.com", "127.0.0.1:6000"):
        body["image"] = f"{host}/acme/hello@{A_TXT_DIGEST}"
        r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
        assert r.status_code == 422, host
        assert _error(r)["code"] == "IMAGE_REGISTRY_NOT_ALLOWED"
    body["image"] = f"127.0.0.1:5000/acme/hello@{A_TXT_DIGEST}"  # configured: accepted
    r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
    assert r.status_code == 201, r.text


def test_the_allowlist_judges_the_host_an_engine_would_pull_from() -> None:
    # An upper-case first component is a host to Docker, Podman and the manifest grammar: the
    # allowlist must not read `REG/x` as Docker Hub (a single-label, possibly internal host).
    from registry._errors import ApiError
    from registry._service import check_image_host, image_host

    digest = A_TXT_DIGEST
    assert image_host(f"REG/x@{digest}") == "reg"
    assert image_host(f"acme/hello@{digest}") == "docker.io"
    assert image_host(f"Registry.Example.org/acme/x@{digest}") == "registry.example.org"
    with pytest.raises(ApiError) as e:
        check_image_host(f"REG/x@{digest}", allowed=("docker.io",))
    assert e.value.code == "IMAGE_REGISTRY_NOT_ALLOWED"
    check_image_host(f"acme/hello@{digest}", allowed=("docker.io",))
    with pytest.raises(ApiError) as e:
        check_image_host(f"docker.io/acme/x@{digest}@{digest}", allowed=("docker.io",))
    assert e.value.code == "IMAGE_INVALID"


def test_manifest_pinned_to_another_digest_is_refused(registry: Registry) -> None:
    body = publish_body()
    body["manifest"] = body["manifest"].replace(
        "image: ghcr.io/acme/hello:1.0.0", f"image: ghcr.io/acme/hello@{WHEEL_DIGEST}")
    r = registry.client.post("/api/v1/plugins", json=body,
                             headers=registry.auth(registry.token()))
    assert r.status_code == 422 and _error(r)["code"] == "INPUT_INVALID"


def test_mass_assignment_of_trust_fields_is_refused(registry: Registry) -> None:
    token = registry.token()
    for field, value in (("tier", "verified"), ("state", "active"), ("review", "approved"),
                         ("decision", {"tier": "verified"}), ("action", "allow")):
        body = {**publish_body(), field: value}
        r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
        assert r.status_code == 422, field
        assert _error(r)["code"] == "INVALID_REQUEST"
    assert registry.client.get("/api/v1/plugins/acme/hello").status_code == 404


def test_cross_namespace_publish_and_revoke_are_forbidden(registry: Registry) -> None:
    acme = registry.token("acme")
    other = registry.token("other")
    r = registry.publish(other, namespace="acme")
    assert r.status_code == 403 and _error(r)["code"] == "NAMESPACE_FORBIDDEN"
    assert registry.publish(acme).status_code == 201
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                             json={"reason": "mine now"}, headers=registry.auth(other))
    assert r.status_code == 403 and _error(r)["code"] == "NAMESPACE_FORBIDDEN"
    _, version = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert version["state"] == "active"


def test_roles_are_enforced(registry: Registry) -> None:
    publisher = registry.token()
    reviewer = registry.token("cortex", "reviewer")
    installation = registry.token("acme", "installation")
    assert registry.publish(reviewer).status_code == 403
    assert registry.publish(installation).status_code == 403
    assert registry.publish(publisher).status_code == 201
    review = "/api/v1/plugins/acme/hello/versions/1.0.0/reviews"
    r = registry.client.post(review, json={"status": "approved"}, headers=registry.auth(publisher))
    assert r.status_code == 403 and _error(r)["code"] == "ROLE_FORBIDDEN"
    usage = {"namespace": "acme", "name": "hello", "version": "1.0.0", "digest": A_TXT_DIGEST}
    r = registry.client.post("/api/v1/usage", json=usage, headers=registry.auth(reviewer))
    assert r.status_code == 403
    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "x"},
                             headers=registry.auth(publisher))
    assert r.status_code == 403


def test_expired_and_unknown_tokens_are_401(registry: Registry) -> None:
    from datetime import timedelta

    token = registry.token(expires=timedelta(hours=1))
    registry.clock.advance(hours=2)
    r = registry.publish(token)
    assert r.status_code == 401 and _error(r)["code"] == "TOKEN_EXPIRED"
    assert r.headers["www-authenticate"] == "Bearer"
    assert registry.publish("ctr_" + "x" * 43).status_code == 401


def test_names_are_lowercase_ascii_slugs(registry: Registry) -> None:
    token = registry.token()
    for bad in ("Hello", "hеllo", "hello_world", "-hello"):  # the second has a Cyrillic е
        # A valid image, so that the refusal is about the name.
        r = registry.publish(token, name=bad, image=f"ghcr.io/acme/hello@{A_TXT_DIGEST}")
        assert r.status_code == 422, bad
        assert _error(r)["code"] in {"MANIFEST_INVALID", "NAME_NOT_SLUG"}
    r = registry.publish(token, namespace="Acme")
    assert r.status_code == 422
    assert registry.client.get("/api/v1/plugins/Acme/hello").status_code == 422


def test_tier_moves_with_review_usage_and_revocation(registry: Registry) -> None:
    publisher = registry.token()
    reviewer = registry.token("cortex", "reviewer")
    installs = [registry.token("acme", "installation") for _ in range(2)]
    assert registry.publish(publisher).status_code == 201

    base = "/api/v1/plugins/acme/hello/versions/1.0.0"
    r = registry.client.post(f"{base}/reviews", json={"status": "approved", "note": "looks fine",
                                                      "digest": A_TXT_DIGEST},
                             headers=registry.auth(reviewer))
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "community"
    assert [x["verdict"] for x in r.json()["evidence"]["review"]["reviews"]] == ["approved"]

    usage = {"namespace": "acme", "name": "hello", "version": "1.0.0", "digest": A_TXT_DIGEST}
    for tok in installs:
        r = registry.client.post("/api/v1/usage", json=usage, headers=registry.auth(tok))
        assert r.status_code == 200, r.text
    assert r.json()["evidence"]["usage"]["installations"] == 2
    assert r.json()["tier"] == "community"  # 0 days in production

    registry.clock.advance(days=31)
    r = registry.client.post("/api/v1/usage", json=usage, headers=registry.auth(installs[0]))
    assert r.json()["evidence"]["usage"]["days_in_production"] == 31
    assert r.json()["evidence"]["usage"]["installations"] == 2  # same installation again
    assert r.json()["evidence"]["usage"]["active_days"] == 2
    assert r.json()["tier"] == "verified" and r.json()["action"] == "allow"
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["tier"] == "verified"

    r = registry.client.post(f"{base}/revoke", json={"reason": "key compromised"},
                             headers=registry.auth(publisher))
    assert r.status_code == 200
    doc = r.json()
    assert doc["state"] == "revoked" and doc["action"] == "block"
    assert "REVOKED" in [x["code"] for x in doc["decision"]["reasons"]]
    assert doc["revocation"]["reason"] == "key compromised"


def test_usage_and_review_are_bound_to_the_digest(registry: Registry) -> None:
    registry.publish(registry.token())
    usage = {"namespace": "acme", "name": "hello", "version": "1.0.0", "digest": WHEEL_DIGEST}
    r = registry.client.post("/api/v1/usage", json=usage,
                             headers=registry.auth(registry.token("acme", "installation")))
    assert r.status_code == 409 and _error(r)["code"] == "DIGEST_MISMATCH"
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/reviews",
                             json={"status": "approved", "digest": WHEEL_DIGEST},
                             headers=registry.auth(registry.token("cortex", "reviewer")))
    assert r.status_code == 409 and _error(r)["code"] == "DIGEST_MISMATCH"
    _, version = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert version["tier"] == "experimental"
    assert version["evidence"]["usage"]["present"] is False


def test_revocation_feed_and_identity_revocation(registry: Registry) -> None:
    acme = registry.token()
    admin = registry.token("cortex", "admin")
    assert registry.publish(acme, version="1.0.0").status_code == 201
    assert registry.publish(acme, version="1.1.0").status_code == 201
    assert registry.publish(acme, name="wheel", digest=WHEEL_DIGEST,
                            bundle=BUNDLE_WHEEL).status_code == 201
    _, feed = registry.get("/api/v1/revocations")
    assert feed == {"items": [], "next_cursor": 0}

    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "beacon leaked"},
                             headers=registry.auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] == ["acme/hello@1.0.0", "acme/hello@1.1.0"]
    _, feed = registry.get("/api/v1/revocations")
    assert [(i["version"], i["identity"]) for i in feed["items"]] == [("1.0.0", BEACON),
                                                                      ("1.1.0", BEACON)]
    cursor = feed["next_cursor"]
    assert feed["items"][0]["cursor"] < feed["items"][1]["cursor"] == cursor
    _, wheel = registry.get("/api/v1/plugins/acme/wheel/versions/1.0.0")
    assert wheel["state"] == "active"  # another signer: untouched

    r = registry.client.post("/api/v1/plugins/acme/wheel/versions/1.0.0/revoke",
                             json={"reason": "bad build"}, headers=registry.auth(admin))
    assert r.status_code == 200
    _, feed = registry.get(f"/api/v1/revocations?cursor={cursor}")
    assert [i["name"] for i in feed["items"]] == ["wheel"]
    assert feed["next_cursor"] > cursor
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["tier"] == "untrusted" and plugin["action"] == "block"


def test_list_search_filter_and_paginate(registry: Registry) -> None:
    acme = registry.token()
    other = registry.token("other")
    for i in range(5):
        assert registry.publish(acme, name=f"tool-{i}", description=f"Tool number {i}.",
                                capability="translate" if i == 3 else "echo").status_code == 201
    # Another namespace's own image (an image belongs to the namespace that published it first).
    assert registry.publish(other, name="weather", description="Forecasts rain.",
                            digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL).status_code == 201

    _, page = registry.get("/api/v1/plugins?limit=2")
    seen = [p["full_name"] for p in page["items"]]
    while page["next_cursor"]:
        _, page = registry.get(f"/api/v1/plugins?limit=2&cursor={page['next_cursor']}")
        seen += [p["full_name"] for p in page["items"]]
    assert seen == [f"acme/tool-{i}" for i in range(5)] + ["other/weather"]

    _, page = registry.get("/api/v1/plugins?q=RAIN")
    assert [p["name"] for p in page["items"]] == ["weather"]
    _, page = registry.get("/api/v1/plugins?q=translate")
    assert [p["name"] for p in page["items"]] == ["tool-3"]
    _, page = registry.get("/api/v1/plugins?q=tool-")
    assert len(page["items"]) == 5
    _, page = registry.get("/api/v1/plugins?q=%25")  # LIKE wildcards are literal
    assert page["items"] == []
    _, page = registry.get("/api/v1/plugins?namespace=other")
    assert [p["name"] for p in page["items"]] == ["weather"]
    _, page = registry.get("/api/v1/plugins?tier=experimental&namespace=acme")
    assert len(page["items"]) == 5
    _, page = registry.get("/api/v1/plugins?tier=verified")
    assert page["items"] == []
    assert registry.client.get("/api/v1/plugins?limit=1000").status_code == 422
    assert registry.client.get("/api/v1/plugins?cursor=!!!").status_code == 422


def test_latest_version_follows_semver_not_publish_order(registry: Registry) -> None:
    acme = registry.token()
    for v in ("1.10.0", "1.9.0", "2.0.0-rc.1"):
        assert registry.publish(acme, version=v).status_code == 201
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["latest_version"] == "2.0.0-rc.1"
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/2.0.0-rc.1/revoke",
                             json={"reason": "broken"}, headers=registry.auth(acme))
    assert r.status_code == 200
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    assert plugin["latest_version"] == "1.10.0" and plugin["tier"] == "experimental"


def test_body_size_is_capped(registry: Registry) -> None:
    token = registry.token()
    body = publish_body()
    body["tests_junit"] = "x" * (1024 * 1024 + 10)
    r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(token))
    assert r.status_code == 413 and _error(r)["code"] == "BODY_TOO_LARGE"

    def chunks():  # no Content-Length: streamed, still capped
        for _ in range(20):
            yield b"x" * 65536

    r = registry.client.post("/api/v1/plugins", content=chunks(),
                             headers={**registry.auth(token), "Content-Type": "application/json"})
    assert r.status_code == 413


def test_errors_never_leak_traces(registry: Registry) -> None:
    r = registry.client.post("/api/v1/plugins", content=b"{not json",
                             headers={**registry.auth(registry.token()),
                                      "Content-Type": "application/json"})
    assert r.status_code == 422
    err = _error(r)
    assert "Traceback" not in r.text and err["code"] == "INVALID_REQUEST"
