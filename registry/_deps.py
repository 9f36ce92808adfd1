"""What the route modules share: path parameters, the authenticated caller, role checks, the
application state (store, configuration, evaluator) and how an answer's model is documented.

Both :mod:`registry._app` and :mod:`registry._log_api` import it, so neither imports the other.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cortex_trust.sources import VERSION_PATTERN

from ._config import RegistryConfig
from ._errors import Forbidden, Unauthorized
from ._models import SLUG
from ._reevaluate import ThreadEvaluator
from ._store import Principal, Store
from ._store._publishers import refuse_issued_credential

__all__ = ["Caller", "Name", "Namespace", "Version", "answers", "authenticated"]

_bearer = HTTPBearer(auto_error=False, description="A registry token (cortex registry token create)")

Namespace = Annotated[str, Path(pattern=SLUG, max_length=64)]
Name = Annotated[str, Path(pattern=SLUG, max_length=64)]
Version = Annotated[str, Path(pattern=VERSION_PATTERN, max_length=128)]


def answers(model: type[Any], description: str = "OK") -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a route whose 200 answer is a ``model`` document."""
    return {200: {"model": model, "description": description}}


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _config(request: Request) -> RegistryConfig:
    return request.app.state.config  # type: ignore[no-any-return]


def _evaluator(request: Request) -> ThreadEvaluator:
    return request.app.state.evaluator  # type: ignore[no-any-return]


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller's principal from ``Authorization: Bearer <token>``. Raises 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("UNAUTHENTICATED", "this route needs a registry token",
                           advice="send Authorization: Bearer <token>")
    config = _config(request)
    return _store(request).authenticate(credentials.credentials, now=config.clock())


Caller = Annotated[Principal, Depends(authenticated)]


def _require(principal: Principal, *roles: str) -> None:
    if principal.role not in roles:
        raise Forbidden("ROLE_FORBIDDEN", f"a {principal.role} token cannot do this",
                        advice=f"use a token with role {' or '.join(roles)}")


def _owner(principal: Principal, namespace: str) -> None:
    """Publishers act only in their own namespace; admins anywhere; a credential issued to a
    trusted publisher only publishes."""
    _require(principal, "publisher", "admin")
    refuse_issued_credential(principal)
    if principal.role == "publisher" and principal.namespace != namespace:
        raise Forbidden("NAMESPACE_FORBIDDEN",
                        f"this token acts on {principal.namespace!r}, not {namespace!r}",
                        advice=f"use a publisher token for namespace {namespace!r} or an admin token")
