"""Trusted publishers in the store, on SQLite and PostgreSQL: the exchange issues one credential
per identity token (replay refused, expired jtis forgotten), the namespace mode binds publishes,
and every change is in the audit log, which still verifies against the tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from registry._errors import Conflict, Forbidden, Unauthorized
from registry._oidc import OidcIdentity
from tests.registry.conftest import Registry

ISS = "https://token.actions.githubusercontent.com"


def _identity(registry: Registry, jti: str, **kw: str) -> OidcIdentity:
    claims = {"repository": "acme/tool", "workflow_ref": "acme/tool/.github/workflows/release.yml@refs/tags/v1",
              "environment": "release", **kw}
    return OidcIdentity(issuer=ISS, subject="repo:acme/tool", jti=jti,
                        expires_at=registry.clock() + timedelta(minutes=6), claims={"jti": jti, **claims},
                        repository=claims["repository"], workflow_ref=claims["workflow_ref"],
                        environment=claims["environment"])


def test_exchange_replay_mode_and_audit(registry: Registry) -> None:
    store, now = registry.store, registry.clock
    pub = store.add_publisher(namespace="acme", issuer=ISS, repository="acme/tool", workflow="release.yml",
                              environment="release", now=now())
    plaintext, row = store.exchange_oidc(_identity(registry, "j1"), namespace=None, now=now())
    assert (row.namespace, row.role, row.publisher_id) == ("acme", "publisher", pub.publisher_id)
    from cortex_trust.policy import format_time

    assert row.expires_at == format_time(now() + timedelta(minutes=15))
    principal = store.authenticate(plaintext, now=now())
    assert principal.publisher_id == pub.publisher_id
    with pytest.raises(Unauthorized) as e:
        store.exchange_oidc(_identity(registry, "j1"), namespace=None, now=now())
    assert e.value.code == "OIDC_REPLAYED"
    with pytest.raises(Forbidden) as f:
        store.exchange_oidc(_identity(registry, "j2", environment="staging"), namespace=None, now=now())
    assert f.value.code == "OIDC_NO_PUBLISHER"

    # A second namespace trusting the same workflow: the caller must choose.
    store.add_publisher(namespace="acme-labs", issuer=ISS, repository="acme/tool", workflow="release.yml",
                        environment=None, now=now())
    with pytest.raises(Conflict) as c:
        store.exchange_oidc(_identity(registry, "j3"), namespace=None, now=now())
    assert c.value.code == "OIDC_AMBIGUOUS"
    _, labs = store.exchange_oidc(_identity(registry, "j3"), namespace="acme-labs", now=now())
    assert labs.namespace == "acme-labs"

    # Once expired, a jti is forgotten (and the token it belonged to no longer verifies anyway).
    registry.clock.advance(minutes=10)
    store.exchange_oidc(_identity(registry, "j4"), namespace="acme", now=now())
    from sqlmodel import Session, select

    from registry._models import OidcJti

    with Session(store.engine) as s:
        assert sorted(r.jti for r in s.exec(select(OidcJti)).all()) == ["j4"]

    # Trusted-publishing-only: a registry token is refused, the issued credential publishes.
    token = registry.token()
    assert store.set_trusted_only("acme", enabled=True, now=now()) is True
    assert store.set_trusted_only("acme", enabled=True, now=now()) is False
    r = registry.publish(token)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "TRUSTED_PUBLISHING_REQUIRED")
    credential, _ = store.exchange_oidc(_identity(registry, "j5"), namespace="acme", now=now())
    assert registry.publish(credential).status_code == 201
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/yank", json={"reason": "x"},
                             headers=registry.auth(credential))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "PUBLISH_ONLY_CREDENTIAL")

    store.remove_publisher(pub.publisher_id, now=now())
    r = registry.publish(credential, version="1.0.1")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "TOKEN_REVOKED")
    assert store.audit_verify() == []
