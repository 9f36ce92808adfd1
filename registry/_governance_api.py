"""Routes of the registry's governance (``/api/v1``): promotions, disputes, GitHub's webhook.

Writes by people need a registry token (:func:`~registry._deps.authenticated`): a promotion
request from the namespace's publisher (or an admin), a dispute record from any token. The
webhook route is GitHub's and is authenticated by the delivery's HMAC signature instead
(:func:`signed_delivery`, see :mod:`registry._governance`). Without a configured GitHub side the
write routes answer 404 ``GITHUB_NOT_CONFIGURED``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cortex_trust.sources import (
    DISPUTE_LABEL,
    SECURITY_LABEL,
    DisputeCreate,
    DisputeList,
    GovernanceInfo,
    PromotionDoc,
)

from ._deps import Caller, Name, Namespace, Version, _owner, _store, answers
from ._documents import dumps
from ._errors import NotFound
from ._governance import Governance

__all__ = ["router", "signed_delivery"]

router = APIRouter(prefix="/api/v1")

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d} for s, d in ((401, "no or bad token or signature"), (403, "not allowed"),
                                       (404, "not found or not configured"), (409, "conflict"),
                                       (413, "body too large"), (422, "invalid request"),
                                       (503, "GitHub or the database could not answer"))}


def _json(content: bytes, status: int = 200) -> Response:
    return Response(content=content, status_code=status, media_type="application/json")


def _governance(request: Request) -> Governance:
    gov: Governance | None = getattr(request.app.state, "governance", None)
    if gov is None:
        raise NotFound("GITHUB_NOT_CONFIGURED", "this registry has no registry repository on GitHub",
                       advice="the operator sets CORTEX_REGISTRY_GITHUB_REPOSITORY (and a token and "
                              "webhook secret) for `cortex registry serve`")
    return gov


@router.get("/governance", responses=answers(GovernanceInfo))
def governance_info(request: Request) -> Response:
    """Where promotions and disputes happen: the registry repository (null when not configured)."""
    gov: Governance | None = getattr(request.app.state, "governance", None)
    return _json(dumps({"configured": gov is not None,
                        "repository": gov.config.repository if gov else None,
                        "web_url": gov.config.web_url if gov else None,
                        "dispute_labels": [DISPUTE_LABEL], "security_label": SECURITY_LABEL}).encode())


@router.post("/plugins/{namespace}/{name}/versions/{version}/promotion",
             responses={**answers(PromotionDoc), 201: {"model": PromotionDoc, "description": "opened"},
                        **_ERRORS})
def promote(request: Request, namespace: Namespace, name: Name, version: Version,
            principal: Caller) -> Response:
    """Request the version's promotion to community (publisher of the namespace, or admin): the
    registry opens a pull request adding the version's index entry on its registry repository
    (201), or returns the existing one (200)."""
    _owner(principal, namespace)
    doc = _governance(request).promote(namespace, name, version, principal=principal)
    return _json(doc, 201 if b'"created":true' in doc else 200)


@router.get("/plugins/{namespace}/{name}/versions/{version}/promotion",
            responses={**answers(PromotionDoc), **_ERRORS})
def promotion(request: Request, namespace: Namespace, name: Name, version: Version) -> Response:
    """The version's promotion pull request and what GitHub last reported about it."""
    return _json(_store(request).promotion_document(namespace, name, version))


@router.post("/plugins/{namespace}/{name}/disputes", responses={**answers(DisputeList), **_ERRORS})
def record_dispute(request: Request, namespace: Namespace, name: Name, body: DisputeCreate,
                   principal: Caller) -> Response:
    """Record a dispute opened as an issue on the registry repository (any token). The registry
    reads the issue from GitHub and records it only when it carries the dispute template for this
    plugin; recording it again changes nothing. Returns the plugin's disputes."""
    return _json(_governance(request).record_dispute(namespace, name, body.issue, actor=principal.actor))


@router.get("/plugins/{namespace}/{name}/disputes", responses={**answers(DisputeList), **_ERRORS})
def disputes(request: Request, namespace: Namespace, name: Name) -> Response:
    """Every dispute of the plugin, open and closed, oldest first."""
    return _json(_store(request).disputes_document(namespace, name))


async def signed_delivery(request: Request) -> tuple[dict[str, str], bytes]:
    """The delivery's headers and raw body, for :meth:`Governance.webhook` to authenticate
    (HMAC) before anything in it is read."""
    return {k.lower(): v for k, v in request.headers.items()}, await request.body()


@router.post("/github/webhook", include_in_schema=False)
async def github_webhook(request: Request,
                         delivery: tuple[dict[str, str], bytes] = Depends(signed_delivery)) -> Response:
    """GitHub's webhook (``pull_request``, ``pull_request_review``, ``issues``; ``ping``)."""
    gov = _governance(request)
    result = await run_in_threadpool(gov.webhook, delivery[0], delivery[1])
    return _json(dumps(result).encode())
