"""Trusted publishing over HTTP: the audience identity tokens must carry, and the exchange of a
verified CI identity token for a short-lived publisher credential.

``POST /api/v1/oidc/exchange`` is the one write route not authenticated by a registry token: the
CI's OIDC identity token is its bearer credential, verified by :func:`identified` (see
:mod:`registry._oidc`), and the store then issues the credential (see
:mod:`registry._store._publishers`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cortex_trust.sources import OidcAudience, OidcCredential, OidcExchangeCreate

from ._config import RegistryConfig
from ._deps import _config, _store, answers
from ._documents import dumps
from ._errors import BoundedJsonRoute, Unauthorized
from ._oidc import OidcIdentity, OidcSettings, OidcVerifier

__all__ = ["identified", "oidc_settings", "router"]

_bearer = HTTPBearer(auto_error=False, description="A CI's OIDC identity token (trusted publishing)")

router = APIRouter(prefix="/api/v1/oidc", route_class=BoundedJsonRoute)


def oidc_settings(config: RegistryConfig) -> OidcSettings:
    """The registry's OIDC settings: configured, or GitHub Actions with the registry's name as
    the audience."""
    return config.oidc if config.oidc is not None else OidcSettings(audience=config.name)


def _verifier(request: Request) -> OidcVerifier:
    return request.app.state.oidc  # type: ignore[no-any-return]


def identified(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> OidcIdentity:
    """The identity proven by ``Authorization: Bearer <OIDC identity token>``. Raises 401
    without one, or for a token that does not verify; 503 when the issuer's keys cannot be
    fetched."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("UNAUTHENTICATED", "this route needs the CI's OIDC identity token",
                           advice="send Authorization: Bearer <identity token> (cortex plugin publish --oidc)")
    return _verifier(request).verify(credentials.credentials, now=_config(request).clock())


@router.get("/audience", responses=answers(OidcAudience))
async def audience(request: Request) -> Response:
    """The ``aud`` an identity token must be issued for to be exchanged here."""
    return Response(dumps({"audience": _verifier(request).settings.audience}).encode(),
                    media_type="application/json")


@router.post("/exchange", responses=answers(OidcCredential, "a credential for the trusted publisher"))
def exchange(request: Request, identity: Annotated[OidcIdentity, Depends(identified)],
             body: OidcExchangeCreate | None = None) -> Response:
    """Exchange a verified identity token of a trusted publisher for a publisher credential of
    its namespace, valid 15 minutes and only for publishing. Each token is exchanged once
    (``OIDC_REPLAYED``); one that is no namespace's trusted publisher is a 403
    (``OIDC_NO_PUBLISHER``). The audit log records the token's claims, never the token."""
    config = _config(request)
    plaintext, row = _store(request).exchange_oidc(
        identity, namespace=body.namespace if body is not None else None, now=config.clock())
    return Response(dumps({"token": plaintext, "token_id": row.token_id, "namespace": row.namespace,
                           "publisher_id": row.publisher_id, "expires_at": row.expires_at}).encode(),
                    media_type="application/json")
