"""The server and the client speak one set of wire models (cortex_trust.sources._wire).

Every document the registry emits parses into the model the client reads it with and carries no
field the model lacks (a drifted model fails here, not in an installer), the OpenAPI document
describes each answer with that same model, and every body the client sends is accepted by the
request model the route validates with.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import cortex_trust.sources as wire
from cortex_trust.sources import RegistryClient, RegistryRequestError
from tests.registry.conftest import A_TXT_DIGEST, BUNDLE_WHEEL, WHEEL_DIGEST, Registry

BASE = "/api/v1/plugins/acme/hello/versions"


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The wire model a field holds (itself, in a tuple, or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation if annotation.__module__ == wire.PluginDetail.__module__ else None
    if typing.get_origin(annotation) in (tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _nested(arg)
            if found is not None:
                return found
    return None


def _unknown_fields(model: type[BaseModel], value: Any, where: str = "") -> list[str]:
    """Every key of ``value`` (and of its nested wire documents) that ``model`` does not name."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _unknown_fields(model, item, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return []
    fields = model.model_fields
    unknown = [f"{where}.{k}" for k in value if k not in fields]
    for key, field in fields.items():
        inner = _nested(field.annotation)
        if inner is not None and value.get(key) is not None:
            unknown += _unknown_fields(inner, value[key], f"{where}.{key}")
    return unknown


def _wire(model: type[BaseModel], response: httpx.Response) -> Any:
    """``response``'s body parsed as ``model``, asserting it has no field the model lacks."""
    assert response.status_code in (200, 201), response.text
    doc = model.model_validate_json(response.content)
    assert _unknown_fields(model, response.json()) == [], model.__name__
    return doc


def test_every_document_the_registry_emits_is_a_wire_document(registry: Registry) -> None:
    acme = registry.token()
    admin = registry.token("cortex", "admin")
    reviewer = registry.token("cortex-core", "reviewer", holder="ada")
    installation = registry.token("initech", "installation")
    c, auth = registry.client, registry.auth

    published = _wire(wire.VersionDetail, registry.publish(acme))
    assert published.decision.tier.value == published.tier
    _wire(wire.VersionDetail, registry.publish(acme, version="1.1.0"))
    assert registry.publish(acme, name="wheel", digest=WHEEL_DIGEST,
                            bundle=BUNDLE_WHEEL).status_code == 201
    _wire(wire.VersionDetail, c.post(f"{BASE}/1.0.0/reviews", json={"status": "approved"},
                                headers=auth(reviewer)))
    _wire(wire.VersionDetail, c.post("/api/v1/usage", json={
        "namespace": "acme", "name": "hello", "version": "1.0.0", "digest": A_TXT_DIGEST},
        headers=auth(installation)))
    yanked = _wire(wire.VersionDetail, c.post(f"{BASE}/1.1.0/yank", json={"reason": "broken"},
                                         headers=auth(acme)))
    assert yanked.yank is not None and yanked.state == "yanked"
    revoked = _wire(wire.VersionDetail, c.post(f"{BASE}/1.0.0/revoke", json={"reason": "leaked"},
                                          headers=auth(acme)))
    assert revoked.revocation is not None
    wide = _wire(wire.RevokedVersions, c.post("/api/v1/revocations/digest",
                                         json={"digest": WHEEL_DIGEST, "reason": "bad"},
                                         headers=auth(admin)))
    assert wide.revoked == ("acme/wheel@1.0.0",)

    detail = _wire(wire.PluginDetail, c.get("/api/v1/plugins/acme/hello"))
    assert detail.versions == 2 and detail.latest_version == "1.1.0"
    page = _wire(wire.PluginPage, c.get("/api/v1/plugins", params={"limit": 1}))
    assert len(page.items) == 1 and page.next_cursor is not None
    versions = _wire(wire.VersionList, c.get(BASE))
    assert [v.state for v in versions.items] == ["revoked", "yanked"]
    _wire(wire.VersionDetail, c.get(f"{BASE}/1.1.0"))
    feed = _wire(wire.RevocationPage, c.get("/api/v1/revocations"))
    assert [e.kind for e in feed.items] == ["version", "digest"]
    assert all(e.log_index is not None for e in feed.items)
    log = _wire(wire.VersionLog, c.get(f"{BASE}/1.0.0/log"))
    assert log.publish is not None and len(log.revocations) == 1
    proof = _wire(wire.LogProof, c.get("/api/v1/log/proof/inclusion",
                                  params={"index": log.publish.index, "size": feed.items[-1].log_index + 1}))
    assert proof.index == log.publish.index
    _wire(wire.LogProof, c.get("/api/v1/log/proof/consistency", params={"first": 1, "second": 2}))


@pytest.mark.parametrize(("method", "path", "model"), [
    ("get", "/api/v1/plugins", wire.PluginPage),
    ("get", "/api/v1/plugins/{namespace}/{name}", wire.PluginDetail),
    ("get", "/api/v1/plugins/{namespace}/{name}/versions", wire.VersionList),
    ("get", "/api/v1/plugins/{namespace}/{name}/versions/{version}", wire.VersionDetail),
    ("post", "/api/v1/plugins", wire.VersionDetail),
    ("post", "/api/v1/plugins/{namespace}/{name}/versions/{version}/yank", wire.VersionDetail),
    ("post", "/api/v1/usage", wire.VersionDetail),
    ("post", "/api/v1/revocations/digest", wire.RevokedVersions),
    ("get", "/api/v1/revocations", wire.RevocationPage),
    ("get", "/api/v1/log/proof/inclusion", wire.LogProof),
    ("get", "/api/v1/plugins/{namespace}/{name}/versions/{version}/log", wire.VersionLog),
])
def test_the_openapi_document_describes_answers_with_the_wire_models(
        registry: Registry, method: str, path: str, model: type[BaseModel]) -> None:
    doc = registry.client.get("/openapi.json").json()
    answers = doc["paths"][path][method]["responses"]
    ok = answers.get("200") or answers["201"]
    ref = ok["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{model.__name__}"
    schema = doc["components"]["schemas"][model.__name__]
    assert set(schema["properties"]) == set(model.model_fields)
    required = {k for k, f in model.model_fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required
    if model is wire.PluginDetail:
        assert "versions" in required  # the server emits it and the client requires it


def test_every_body_the_client_sends_is_accepted_by_the_routes_model() -> None:
    sent: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content) if request.content else None))
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no"}})

    calls: list[Callable[[RegistryClient], object]] = [
        lambda c: c.publish(manifest="name: x", image=f"ghcr.io/acme/x@{A_TXT_DIGEST}", bundle="{}",
                            tests_junit="<testsuite/>", scan_report="{}", namespace="acme",
                            scan_attestation="{}"),
        lambda c: c.publish(manifest="name: x", image=f"ghcr.io/acme/x@{A_TXT_DIGEST}", bundle="{}"),
        lambda c: c.review("acme", "x", "1.0.0", status="approved", note="ok", digest=A_TXT_DIGEST),
        lambda c: c.withdraw_review("acme", "x", "1.0.0"),
        lambda c: c.report_usage("acme", "x", "1.0.0", digest=A_TXT_DIGEST),
        lambda c: c.revoke("acme", "x", "1.0.0", reason="leaked"),
        lambda c: c.yank("acme", "x", "1.0.0", reason="broken"),
        lambda c: c.unyank("acme", "x", "1.0.0"),
        lambda c: c.revoke_digest(A_TXT_DIGEST, reason="bad"),
        lambda c: c.revoke_identity(identity="https://ci.example/x", issuer="https://issuer", reason="r"),
    ]
    with RegistryClient("http://registry.test",
                        transport=httpx.MockTransport(handler)) as client:
        for call in calls:
            with pytest.raises(RegistryRequestError):
                call(client)
    models: dict[str, type[BaseModel] | None] = {
        "/api/v1/plugins": wire.PublishCreate, "/reviews": wire.ReviewCreate, "/reviews/withdraw": None,
        "/api/v1/usage": wire.UsageCreate, "/revoke": wire.RevocationCreate, "/yank": wire.YankCreate,
        "/unyank": None, "/revocations/digest": wire.DigestRevokeCreate,
        "/revocations/identity": wire.IdentityRevokeCreate}
    assert len(sent) == len(calls)
    for path, body in sent:
        model = next(m for suffix, m in models.items() if path.endswith(suffix))
        if model is None:
            assert body is None, path  # the route takes no body (or an empty one)
        else:
            model.model_validate(body)  # raises for a field the route does not know
