"""Routes of the audit log's transparency log (``/api/v1/log/...``) and of a version's leaves.

Public reads (anyone can check what the registry committed to): the log's size (a long-poll
followers use to learn that something changed), the signed checkpoint,
inclusion and consistency proofs (hashes only) and the leaves that recorded a version's publish
and revocations. The full entries can hold operator data (token holders, revocation reasons for
tokens), so listing them needs an admin token. Every answer is computed from stored subtree
hashes with O(log n) look-ups; none of them touches the pre-rendered read path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cortex_trust.sources import LogProof, VersionLog

from ._deps import Caller, Name, Namespace, Version, _config, _require, _store, answers
from ._errors import Invalid, NotFound
from ._feed import MAX_WAIT, long_poll
from ._store._tx import not_found

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

_INDEX = Annotated[int, Query(ge=0, le=2**31 - 1)]
_SIZE = Annotated[int, Query(ge=1, le=2**31 - 1)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d} for s, d in ((401, "no or bad token"), (403, "not allowed"),
                                       (404, "not found"), (422, "invalid request"))}


def _json(value: Any) -> Response:
    return Response(content=json.dumps(value, separators=(",", ":")),
                    media_type="application/json")


async def _log_read(read: Callable[..., dict[str, Any]], *args: int) -> Response:
    """Run a read of the log in the thread pool and answer its JSON; a size or leaf the log
    does not have (``read`` raises ValueError) is a 422 ``BAD_LOG_RANGE``."""
    try:
        value = await run_in_threadpool(read, *args)
    except ValueError as e:
        raise Invalid("BAD_LOG_RANGE", str(e),
                      advice="ask about sizes and leaves the log has: see GET /api/v1/log/checkpoint") from None
    return _json(value)


@router.get("/log/checkpoint", responses={200: {"content": {"text/plain": {}},
                                                "description": "a signed checkpoint note"},
                                          **_ERRORS})
async def checkpoint(request: Request) -> Response:
    """The audit log's current size and root hash as a C2SP signed checkpoint (text/plain).

    Verify it with the registry's log verifier key, keep it, and check later ones against it
    with a consistency proof: a log that was truncated, rebuilt or forked cannot prove it."""
    signer = _config(request).log_signer
    if signer is None:
        raise NotFound("LOG_NOT_SIGNED", "this registry signs no checkpoints of its audit log",
                       advice="the operator starts it with --log-key FILE "
                              "(cortex registry log-key create)")
    text = await run_in_threadpool(_store(request).log.checkpoint, signer)
    return Response(content=text, media_type="text/plain; charset=utf-8")


@router.get("/log/size", responses=_ERRORS)
async def size(request: Request, after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
               wait: Annotated[int, Query(ge=0, le=MAX_WAIT)] = 0) -> Response:
    """``{"size": int}``: how many entries the audit log holds (every committed write appends
    one). With ``wait`` (seconds, at most 30) this is a long-poll: the answer comes as soon as
    the size is above ``after``, or with the unchanged size once ``wait`` seconds passed."""
    log, config = _store(request).log, _config(request)

    async def read() -> tuple[bytes, bool]:
        n = await run_in_threadpool(log.size)
        return json.dumps({"size": n}).encode(), n > after

    document = await long_poll(request, read, waiters=request.app.state.log_waiters,
                               wait=min(wait, config.feed_max_wait_seconds),
                               poll=config.feed_poll_seconds, limit=config.feed_max_waiters)
    return Response(content=document, media_type="application/json")


@router.get("/log/proof/inclusion", responses={**answers(LogProof), **_ERRORS})
async def inclusion(request: Request, index: _INDEX, size: _SIZE) -> Response:
    """``{"index", "size", "hashes": [base64]}``: proof that leaf ``index`` is in the tree of
    ``size`` leaves (RFC 9162 §2.1.3)."""
    return await _log_read(_store(request).log.inclusion, index, size)


@router.get("/log/proof/consistency", responses={**answers(LogProof), **_ERRORS})
async def consistency(request: Request, first: _INDEX, second: _INDEX) -> Response:
    """``{"first", "second", "hashes": [base64]}``: proof that the tree of ``second`` leaves
    extends the tree of ``first`` leaves (RFC 9162 §2.1.4)."""
    return await _log_read(_store(request).log.consistency, first, second)


@router.get("/log/entries", responses=_ERRORS)
async def entries(request: Request, principal: Caller, start: _INDEX,
                  end: Annotated[int, Query(ge=1, le=2**31 - 1)]) -> Response:
    """``{"entries": [{"index", "leaf"}]}``: the leaves ``[start, end)`` (at most 100), each the
    exact text whose RFC 9162 leaf hash is in the tree (admin: entries hold operator data)."""
    _require(principal, "admin")
    return await _log_read(_store(request).log.leaves, start, end)


@router.get("/plugins/{namespace}/{name}/versions/{version}/log",
            responses={**answers(VersionLog), **_ERRORS})
async def version_log(request: Request, namespace: Namespace, name: Name,
                      version: Version) -> Response:
    """The leaves that recorded this version: ``{"publish": {"index", "leaf"} | null,
    "revocations": [...]}``. A leaf's ``effects`` name the version and its digest; ask
    ``/log/proof/inclusion`` for its proof at the size of a checkpoint you verified."""
    leaves = await run_in_threadpool(_store(request).log.version_leaves, namespace, name, version)
    if leaves is None:
        raise not_found(namespace, name, version)
    return _json(leaves)
