"""Every write route is authenticated; the public surface is pinned."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from tests.registry.conftest import Registry

_READ = {"GET", "HEAD", "OPTIONS"}


def _dependency_calls(dependant: object) -> set[object]:
    calls = set()
    stack = [dependant]
    while stack:
        d = stack.pop()
        calls.add(getattr(d, "call", None))
        stack.extend(getattr(d, "dependencies", []))
    return calls


def _all_routes(routes: list[object]) -> list[APIRoute]:
    """Every APIRoute, including those of included routers (FastAPI nests them)."""
    found: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            found.append(r)
        elif hasattr(r, "original_router"):
            found += _all_routes(r.original_router.routes)
        elif hasattr(r, "routes"):  # mounts and older FastAPI versions
            found += _all_routes(r.routes)
    return found


def _write_routes(app: object) -> list[APIRoute]:
    routes = _all_routes(app.routes)  # type: ignore[attr-defined]
    writes = [r for r in routes if set(r.methods) - _READ]
    assert writes, "no write routes found: the enumeration is broken"
    return writes


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


#: Write routes authenticated by something else than a registry token: GitHub's webhook, by the
#: delivery's HMAC signature (tests/registry/test_governance.py sends unsigned and forged ones);
#: the identity-token exchange, by the CI's OIDC token (test_trusted_publishing).
_SIGNED = {"/api/v1/github/webhook"}


def _token_routes(app: object) -> list[APIRoute]:
    return [r for r in _write_routes(app) if r.path not in _SIGNED]


def test_every_write_route_depends_on_authentication(registry: Registry) -> None:
    """A registry token authenticates every write but the identity-token exchange, whose bearer
    is the CI's OIDC token (``identified``), and GitHub's webhook, signed by GitHub
    (``signed_delivery``)."""
    from registry._app import authenticated
    from registry._governance_api import signed_delivery
    from registry._oidc_api import identified

    other = {"/api/v1/github/webhook": signed_delivery, "/api/v1/oidc/exchange": identified}
    for route in _write_routes(registry.app):
        needed = other.get(route.path, authenticated)
        assert needed in _dependency_calls(route.dependant), (
            f"{sorted(route.methods)} {route.path} does not depend on {needed.__name__}()")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer ctr_not-a-real-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
])
def test_every_write_route_rejects_missing_or_bad_tokens(registry: Registry,
                                                         headers: dict[str, str]) -> None:
    targets = {(m, r.path) for r in _token_routes(registry.app) for m in set(r.methods) - _READ}
    # A second, independent enumeration: every non-GET operation in the OpenAPI document.
    schema = registry.client.get("/openapi.json").json()
    targets |= {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops
                if m.upper() not in _READ}
    assert len(targets) >= 5
    for method, path in sorted(targets):
        r = registry.client.request(method, _concrete(path), json={}, headers=headers)
        assert r.status_code == 401, f"{method} {path} answered {r.status_code}"
        assert r.json()["error"]["code"] in {"UNAUTHENTICATED", "BAD_TOKEN", "OIDC_MALFORMED"}


def test_tokens_are_stored_only_as_hashes(registry: Registry) -> None:
    from sqlmodel import Session, select

    from registry._models import ApiToken, AuditEntry

    token = registry.token()
    with Session(registry.store.engine) as s:
        rows = s.exec(select(ApiToken)).all()
        audit = s.exec(select(AuditEntry)).all()
    assert len(rows) == 1
    import hashlib

    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    dumped = repr([r.model_dump() for r in rows]) + repr([a.model_dump() for a in audit])
    assert token not in dumped


def test_openapi_documents_models_without_secrets(registry: Registry) -> None:
    doc = registry.client.get("/openapi.json").json()
    text = str(doc)
    assert "token_hash" not in text
    publish = doc["components"]["schemas"]["PublishCreate"]
    assert publish.get("additionalProperties") is False
    assert set(publish["properties"]) == {"namespace", "manifest", "image", "bundle",
                                          "tests_junit", "scan_report", "scan_scanners",
                                          "scan_attestation"}


def test_public_surface_is_pinned() -> None:
    import cortex_trust.sources._registry as client
    import cortex_trust.sources._wire as wire
    import registry

    assert registry.__all__ == ["RegistryConfig", "create_app", "make_engine", "migrate"]
    assert client.__all__ == ["RegistryClient", "RegistryRequestError"]
    assert wire.__all__ == ["VERSION_PATTERN", "DigestRevokeCreate", "DisputeCreate", "DisputeDoc",
                            "DisputeList", "GovernanceInfo", "IdentityRevokeCreate",
                            "LogLeaf", "LogProof", "OidcAudience", "OidcCredential", "OidcExchangeCreate",
                            "PluginDetail", "PluginPage", "PluginSummary",
                            "PromotionDoc", "PublishCreate", "ReviewCreate", "ReviewWithdraw", "RevocationCreate",
                            "RevocationEntry", "RevocationPage", "RevokedVersions", "UsageCreate",
                            "VersionDetail", "VersionList", "VersionLog", "VersionSummary",
                            "YankCreate"]
