"""The FastAPI application: thin routes over :class:`~registry._store.Store`.

Read routes return the pre-rendered JSON documents as bytes (no per-request serialisation);
their shapes are documented in OpenAPI through the wire models of :mod:`cortex_trust.sources`,
which the client parses them with. They are ``async`` and
read through :mod:`registry._reads` (see :func:`_read` for where each read runs). Every write route
depends on :func:`authenticated` (a test enumerates the routes to keep it that way) and the
whole app sits behind a body-size cap. The API documentation pages (``/docs``: Swagger UI,
``/redoc``: ReDoc) load their scripts, styles and icon from this server (:func:`_add_docs`),
never from a CDN, so they work offline and tell no third party who reads them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cortex_trust.engine import PolicyEngine
from cortex_trust.policy import PolicyInput
from cortex_trust.sources import (
    DigestRevokeCreate,
    IdentityRevokeCreate,
    PluginDetail,
    PluginPage,
    PublishCreate,
    ReviewCreate,
    ReviewWithdraw,
    RevocationCreate,
    RevocationPage,
    RevokedVersions,
    UsageCreate,
    VersionDetail,
    VersionList,
    YankCreate,
)

from ._config import RegistryConfig
from ._deps import (
    Caller,
    Name,
    Namespace,
    Version,
    _config,
    _evaluator,
    _owner,
    _require,
    _store,
    answers,
    authenticated,
)
from ._documents import dumps
from ._errors import (
    BoundedJsonRoute,
    error_response,
    install_error_handlers,
)
from ._feed import MAX_WAIT, FeedWaiters, long_poll
from ._governance_api import router as governance_router
from ._log_api import router as log_router
from ._models import SLUG
from ._oidc_api import router as oidc_router
from ._reevaluate import ThreadEvaluator
from ._service import prepare_publish
from ._store import Store
from ._web import _queries as search

__all__ = ["DOCS_ASSETS", "USAGE_COUNTED_HEADER", "authenticated", "create_app"]

#: Whether a usage report was counted (``true``) or was a further report of the same
#: installation on the same UTC day (``false``).
USAGE_COUNTED_HEADER = "Cortex-Usage-Counted"

_JSON = "application/json"
_T = TypeVar("_T")

#: Where the documentation pages' assets are served (same origin as the pages).
DOCS_ASSETS = "/docs/assets"
#: The assets, from the ``fastapi-offline`` package (Swagger UI 5, ReDoc 2), and their types.
_DOCS_FILES = {"swagger-ui-bundle.js": "text/javascript",
               "swagger-ui.css": "text/css",
               "redoc.standalone.js": "text/javascript",
               "favicon.png": "image/png"}
# The pages' own inline script starts the UI; everything else must come from this origin (a
# browser enforces it). ReDoc runs its search in a worker made from a blob.
_DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
             "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' "
             "blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
             "form-action 'none'")


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            # Reads carry no body worth reading (the routes never look at one).
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self._too_large(scope, receive, send)
                    return
        # Buffer the body (bounded) so a chunked upload cannot exceed the cap either.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "BODY_TOO_LARGE",
                                  f"the request body is larger than {self.limit} bytes",
                                  "send smaller documents (manifests, bundles and reports are "
                                  "small; attach only what the publish needs)")
        await response(scope, receive, send)


def _bytes(content: bytes, status: int = 200) -> Response:
    return Response(content=content, status_code=status, media_type=_JSON)


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"description": d} for s, d in ((401, "no or bad token"), (403, "not allowed"),
                                       (404, "not found"), (409, "conflict"),
                                       (413, "body too large"), (422, "invalid request"))
}

# Bodies are parsed within bounds (nesting, number size): an over-limit body is a 422.
router = APIRouter(prefix="/api/v1", route_class=BoundedJsonRoute)


async def _read(request: Request, read: Callable[..., bytes], *args: Any,
                bounded: bool = True, **kwargs: Any) -> Response:
    """Run a read of the store and return its bytes.

    On SQLite a ``bounded`` read (a unique-key lookup or a page of an index: microseconds, see
    registry._reads) runs right here on the event loop: a worker-thread hop would cost more than
    the read. Searches, which may scan, and every PostgreSQL read (a network round trip that must
    not stall the loop) run in the thread pool.
    """
    return _bytes(await _run_read(request, read, *args, bounded=bounded, **kwargs))


async def _run_read(request: Request, read: Callable[..., _T], *args: Any, bounded: bool = True,
                    **kwargs: Any) -> _T:
    """``read(*args, **kwargs)`` where :func:`_read` says it runs."""
    if bounded and _store(request).reader.dialect == "sqlite":
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)


def _documented(description: str, **schema: Any) -> Any:
    """A query parameter as OpenAPI shows it; its value is checked by
    :func:`~registry._web._queries.parse_search`, which the home page uses too."""
    return Query(description=description, json_schema_extra=schema)


@router.get("/plugins", responses={**answers(PluginPage), **_ERRORS})
async def list_plugins(
    request: Request,
    q: Annotated[str | None, _documented("words in the name, description or capability names", maxLength=100)] = None,
    tier: Annotated[str | None, _documented("only plugins of this tier", enum=list(search.TIERS))] = None,
    namespace: Annotated[str | None, _documented("only this namespace", pattern=SLUG, maxLength=64)] = None,
    needs: Annotated[str | None, _documented("what the latest version asks for", enum=list(search.NEEDS))] = None,
    state: Annotated[str | None, _documented("the latest version's state", enum=list(search.STATES))] = None,
    sort: Annotated[str | None, _documented("the order (default name; recent: last published first; "
                                            "used: most installations first)", enum=list(search.SORTS))] = None,
    cursor: Annotated[str | None, _documented("next_cursor of the previous page, same order",
                                              pattern=r"^[A-Za-z0-9_-]+$", maxLength=300)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Search plugins by name, description and capabilities; filter by tier, namespace, what
    the latest version asks for (``needs``) and its state; sort by name, latest publish or use.
    The parameters mean and refuse what the catalogue's home page does (422 for a value outside
    them).

    Returns ``{"items": [...], "next_cursor": str | null}``; pass ``next_cursor`` back as
    ``cursor`` (with the same ``sort``) for the next page.
    """
    found = search.parse_search(request.query_params)
    store = _store(request)
    if found.indexed_by_key:
        return await _read(request, store.list_plugins, bounded=not found.q, q=found.q, tier=found.tier,
                           namespace=found.namespace, cursor=found.cursor, limit=limit)
    return await _read(request, search.search_json, store, found, bounded=False, limit=limit)


@router.get("/plugins/{namespace}/{name}", responses={**answers(PluginDetail), **_ERRORS})
async def get_plugin(request: Request, namespace: Namespace, name: Name) -> Response:
    """A plugin: latest version, current tier and action."""
    return await _read(request, _store(request).plugin_document, namespace, name)


@router.get("/plugins/{namespace}/{name}/versions", responses={**answers(VersionList), **_ERRORS})
async def list_versions(request: Request, namespace: Namespace, name: Name) -> Response:
    """Every version of a plugin (oldest first): digest, state, tier, action."""
    return await _read(request, _store(request).versions_document, namespace, name)


@router.get("/plugins/{namespace}/{name}/versions/{version}",
            responses={**answers(VersionDetail), **_ERRORS})
async def get_version(request: Request, namespace: Namespace, name: Name,
                      version: Version) -> Response:
    """One version: manifest, image digest, evidence summary, decision, state."""
    return await _read(request, _store(request).version_document, namespace, name, version)


@router.get("/plugins/{namespace}/{name}/versions/{version}/input",
            responses={**answers(PolicyInput), **_ERRORS})
async def get_input(request: Request, namespace: Namespace, name: Name,
                    version: Version) -> Response:
    """The input document (``cortex.input/v1``) the policy sees for this version now, built from
    the stored facts: what ``cortex policy what-if`` decides with a new policy set."""
    return await _read(request, _store(request).version_input, namespace, name, version,
                       bounded=False, now=_config(request).clock())


@router.get("/plugins/{namespace}/{name}/versions/{version}/bundle", responses=_ERRORS)
async def get_bundle(request: Request, namespace: Namespace, name: Name,
                     version: Version) -> Response:
    """The Sigstore bundle published with the version (installers verify it themselves)."""
    return await _read(request, _store(request).bundle, namespace, name, version)


@router.get("/plugins/{namespace}/{name}/versions/{version}/receipt", responses=_ERRORS)
async def get_receipt(request: Request, namespace: Namespace, name: Name,
                      version: Version) -> Response:
    """The receipt of the version's current decision: a DSSE envelope whose payload is a
    ``cortex.receipt/v1`` statement (decision, exact input, evidence digests, policy revision,
    engine, time), signed with the key of the signed index's ``timestamp`` role (unsigned when
    the registry keeps no index). Check it with ``cortex receipt verify``. 404
    ``RECEIPT_NOT_FOUND`` for a version decided before receipts were kept."""
    return await _read(request, _store(request).receipt, namespace, name, version)


@router.get("/plugins/{namespace}/{name}/versions/{version}/receipts", responses=_ERRORS)
async def list_receipts(request: Request, namespace: Namespace, name: Name,
                        version: Version) -> Response:
    """The version's receipts, oldest first: ``{"items": [envelopes]}`` (one per decision:
    publish, each re-evaluation, each re-tiering; the newest 10,000)."""
    return await _read(request, _store(request).receipt_history, namespace, name, version,
                       bounded=False)


@router.post("/plugins", status_code=201,
             responses={201: {"model": VersionDetail, "description": "published"}, **_ERRORS})
def publish(request: Request, body: PublishCreate, principal: Caller) -> Response:
    """Publish a version (publisher of the namespace, or admin).

    The manifest is validated, the image must be pinned by digest and hosted on an allowed OCI
    registry, the Sigstore bundle is verified against the registry's trusted roots (a bundle
    that signs another digest is a 422 ``BUNDLE_DIGEST_MISMATCH``) and the registry policy
    decides (operation ``publish``). ``scan_scanners`` declares the scanners of the uploaded
    ``scan_report`` (which stays ``self-reported``). An existing version is a 409
    (``VERSION_EXISTS`` for the same digest, ``VERSION_CONFLICT`` for another): versions are
    immutable and publishing is not idempotent.
    """
    config = _config(request)
    now = config.clock()
    record = prepare_publish(body, principal=principal, config=config, now=now)
    doc, _ = _store(request).publish(record, principal=principal, now=now,
                                     evaluate=_evaluator(request))
    return _bytes(doc, 201)


@router.post("/plugins/{namespace}/{name}/versions/{version}/reviews",
             responses={**answers(VersionDetail), **_ERRORS})
def review(request: Request, namespace: Namespace, name: Name, version: Version,
           body: ReviewCreate, principal: Caller) -> Response:
    """Record the caller's review (role reviewer) of the version's digest.

    Reviews are kept per reviewer (the token's ``namespace/holder``): posting again replaces
    the caller's own review and no one else's. Whether a reviewer counts is the policy's call.
    """
    _require(principal, "reviewer")
    config = _config(request)
    return _bytes(_store(request).add_review(
        namespace, name, version, status=body.status, digest=body.digest, note=body.note,
        principal=principal, now=config.clock(), evaluate=_evaluator(request)))


@router.post("/plugins/{namespace}/{name}/versions/{version}/reviews/withdraw",
             responses={**answers(VersionDetail), **_ERRORS})
def withdraw_review(request: Request, namespace: Namespace, name: Name, version: Version,
                    principal: Caller, body: ReviewWithdraw | None = None) -> Response:
    """Withdraw the caller's own review (role reviewer) and re-evaluate the version.

    Only the reviewer who wrote a review can withdraw it: naming another reviewer is a 403
    (``REVIEW_NOT_YOURS``); having no review of the version is a 404 (``REVIEW_NOT_FOUND``).
    """
    _require(principal, "reviewer")
    config = _config(request)
    return _bytes(_store(request).withdraw_review(
        namespace, name, version, reviewer=body.reviewer if body is not None else None,
        principal=principal, now=config.clock(), evaluate=_evaluator(request)))


@router.post("/plugins/{namespace}/{name}/versions/{version}/revoke",
             responses={**answers(VersionDetail), **_ERRORS})
def revoke(request: Request, namespace: Namespace, name: Name, version: Version,
           body: RevocationCreate, principal: Caller) -> Response:
    """Revoke a version (publisher of the namespace, or admin). The feed entry (kind
    ``version``) reaches this version only, not other names carrying the same image."""
    _owner(principal, namespace)
    config = _config(request)
    return _bytes(_store(request).revoke(namespace, name, version, reason=body.reason,
                                         principal=principal, now=config.clock(),
                                         evaluate=_evaluator(request)))


@router.post("/plugins/{namespace}/{name}/versions/{version}/yank",
             responses={**answers(VersionDetail), **_ERRORS})
def yank(request: Request, namespace: Namespace, name: Name, version: Version,
         body: YankCreate, principal: Caller) -> Response:
    """Yank a version (publisher of the namespace, or admin): installers skip it for ranges and
    take it only when pinned exactly. The decision is unchanged. Yanking a yanked version
    changes nothing (200); a revoked version is a 409 (``VERSION_REVOKED``)."""
    _owner(principal, namespace)
    config = _config(request)
    return _bytes(_store(request).yank(namespace, name, version, reason=body.reason,
                                       principal=principal, now=config.clock()))


@router.post("/plugins/{namespace}/{name}/versions/{version}/unyank",
             responses={**answers(VersionDetail), **_ERRORS})
def unyank(request: Request, namespace: Namespace, name: Name, version: Version,
           principal: Caller) -> Response:
    """Make a yanked version active again (publisher of the namespace, or admin). Unyanking an
    active version changes nothing (200); a revoked version is a 409 (``VERSION_REVOKED``)."""
    _owner(principal, namespace)
    config = _config(request)
    return _bytes(_store(request).unyank(namespace, name, version, principal=principal,
                                         now=config.clock()))


@router.post("/usage", responses={**answers(VersionDetail), **_ERRORS})
def usage(request: Request, body: UsageCreate, principal: Caller) -> Response:
    """An installation reports production use of a digest today (role installation).

    The installation is the token, its organization the token's namespace. One report per
    installation and UTC day counts; a further report the same day is accepted (200) but not
    counted, and the ``Cortex-Usage-Counted`` header says which (``true``/``false``). Use of
    a revoked version is a 409 (``VERSION_REVOKED``).
    """
    _require(principal, "installation")
    config = _config(request)
    doc, counted = _store(request).report_usage(
        body.namespace, body.name, body.version, digest=body.digest, principal=principal,
        now=config.clock(), evaluate=_evaluator(request))
    response = _bytes(doc)
    response.headers[USAGE_COUNTED_HEADER] = "true" if counted else "false"
    return response


@router.post("/revocations/digest", responses={**answers(RevokedVersions), **_ERRORS})
def revoke_digest(request: Request, body: DigestRevokeCreate, principal: Caller) -> Response:
    """Revoke every version carrying an image digest, under any name (admin). Clients match
    these entries by digest alone, and the digest is never published again. A publisher
    revokes its own versions with ``.../versions/{version}/revoke``."""
    _require(principal, "admin")
    config = _config(request)
    return _bytes(_store(request).revoke_digest(
        body.digest, reason=body.reason, principal=principal, now=config.clock(),
        evaluate=_evaluator(request)))


@router.post("/revocations/identity", responses={**answers(RevokedVersions), **_ERRORS})
def revoke_identity(request: Request, body: IdentityRevokeCreate, principal: Caller) -> Response:
    """Revoke every version signed by an identity and issuer (admin)."""
    _require(principal, "admin")
    config = _config(request)
    return _bytes(_store(request).revoke_identity(
        identity=body.identity, issuer=body.issuer, reason=body.reason, principal=principal,
        now=config.clock(), evaluate=_evaluator(request)))


@router.get("/revocations", responses={**answers(RevocationPage), **_ERRORS})
async def revocations(
    request: Request,
    # Revocation ids are 32-bit INTEGERs: a larger cursor made PostgreSQL fail (a 500).
    cursor: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    wait: Annotated[int, Query(ge=0, le=MAX_WAIT)] = 0,
) -> Response:
    """The revocation feed after ``cursor``: ``{"items": [...], "next_cursor": int}``.

    With ``wait`` (seconds, at most 30) this is a long-poll: the answer comes as soon as an
    entry after ``cursor`` exists, or as an empty page (``next_cursor`` = ``cursor``) once
    ``wait`` seconds passed. Ask again from ``next_cursor``."""
    store = _store(request)
    if wait == 0:
        return await _read(request, store.revocations, cursor=cursor, limit=limit)

    async def read() -> tuple[bytes, bool]:
        return await _run_read(request, store.revocation_page, cursor=cursor, limit=limit)

    config = _config(request)
    return _bytes(await long_poll(request, read, waiters=request.app.state.feed_waiters,
                                  wait=min(wait, config.feed_max_wait_seconds),
                                  poll=config.feed_poll_seconds, limit=config.feed_max_waiters))


def _also(notify: Callable[[], None], then: Callable[[str], None] | None) -> Callable[[str], None]:
    """An ``on_write`` hook that calls ``notify()`` and then ``then(target)`` (if any)."""
    def on_write(target: str) -> None:
        notify()
        if then is not None:
            then(target)
    return on_write


def create_app(config: RegistryConfig, *,
               engine_factory: Callable[[], PolicyEngine] | None = None,
               evaluator: ThreadEvaluator | None = None, db: Engine | None = None,
               start_jobs: bool = True) -> FastAPI:
    """Build the registry app on a migrated database.

    ``engine_factory`` builds the registry's policy engine; it is called once, on the thread
    that will run every evaluation (see :class:`ThreadEvaluator`). ``db``
    defaults to an engine made from ``config.db_url``; the schema must already be migrated
    (:func:`registry.migrate`). An existing ``evaluator`` may be shared instead of a factory
    (several apps on one engine, e.g. in tests); exactly one of the two must be given.
    With ``config.jobs == "local"`` the background jobs (scans, periodic rescans, the governance
    poll) run in this process: a :class:`~registry._background.LocalRunner`, available as
    ``app.state.jobs``, runs them during the app's lifespan if ``start_jobs``; with ``"queue"``
    ``cortex registry worker`` processes run them (``app.state.jobs`` is ``None``).
    """
    if (engine_factory is None) == (evaluator is None):
        raise ValueError("create_app needs exactly one of engine_factory and evaluator")
    from ._db import make_engine

    store = Store(db if db is not None else make_engine(config.db_url), registry_name=config.name)
    ev = evaluator or ThreadEvaluator(engine_factory)  # type: ignore[arg-type]
    governance = None
    if config.governance is not None:
        from ._governance import Governance

        governance = Governance(config.governance, store=store, evaluate=ev, clock=config.clock)
    runner = None
    if config.jobs == "local":
        from ._background import JobSettings, LocalRunner

        runner = LocalRunner(JobSettings(store=store, evaluate=ev, clock=config.clock, scanner=config.scanner,
                                         allowed=config.oci_registries, rescan_after=config.rescan_after,
                                         governance=governance))
        store.on_scan = runner.defer_scan
    keeper = None
    if config.index_dir is not None:
        from ._index import IndexKeeper, IndexRepository, KeyRing

        keyring = KeyRing(config.index_keys or config.index_dir)
        keeper = IndexKeeper(store, IndexRepository(config.index_dir, keyring), clock=config.clock)
        store.on_write = keeper.changed
        from cortex_trust.policy import RECEIPT_ROLE

        if keyring.has(RECEIPT_ROLE):
            store.receipt_issuer.signer = keyring.signer(RECEIPT_ROLE)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if runner is not None and start_jobs:
            runner.start()
        if keeper is not None:
            keeper.start()
        try:
            yield
        finally:
            if runner is not None and start_jobs:
                runner.stop()
            if keeper is not None:
                keeper.stop()

    app = FastAPI(title="cortex-trust registry", version="1", lifespan=lifespan,
                  description="Publish, evidence, tiers and revocation for CORTEX plugins.",
                  docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)
    app.state.config = config
    app.state.store = store
    app.state.feed_waiters = FeedWaiters()
    store.on_feed = app.state.feed_waiters.notify
    app.state.log_waiters = FeedWaiters()
    store.on_write = _also(app.state.log_waiters.notify, store.on_write)
    app.state.evaluator = ev
    app.state.jobs = runner
    app.state.governance = governance
    app.state.index_keeper = keeper
    from ._oidc import OidcVerifier
    from ._oidc_api import oidc_settings

    app.state.oidc = OidcVerifier(oidc_settings(config))
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(log_router)
    app.include_router(governance_router)
    app.include_router(oidc_router)

    # Whether this process runs the registry's own scans: "enabled", or why not ("disabled" by
    # the operator, "unavailable": no Trivy). Without scans, versions stay below Community.
    # Whether the GitHub side (promotions, disputes) is configured; `cortex registry doctor` also
    # checks that it is reachable.
    scanning = "queue" if runner is None else "enabled" if config.scanner is not None else config.scan_unavailable
    health = dumps({"ok": True, "scanning": scanning,
                    "github": "configured" if governance is not None else "not-configured"}).encode()

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        return _bytes(health)

    _add_docs(app)
    from ._web import install_catalogue

    install_catalogue(app)

    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    return app


def _add_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with every asset from this server.

    The assets are read from the installed ``fastapi-offline`` package once, when first asked
    for. Swagger UI's online validator is off: it would send the OpenAPI document's address to
    a third party and load its badge from there.
    """
    from functools import cache
    from importlib.resources import files

    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    openapi = app.openapi_url or "/openapi.json"

    @cache
    def asset(name: str) -> bytes:
        return files("fastapi_offline").joinpath("static", name).read_bytes()

    def page(request: Request, render: Callable[[str, str], Response]) -> Response:
        # Behind a proxy that mounts the registry under a prefix (ASGI root_path), every URL
        # the page names carries the prefix: render(openapi URL, assets URL).
        root = request.scope.get("root_path", "")
        html = render(root + openapi, root + DOCS_ASSETS)
        html.headers["Content-Security-Policy"] = _DOCS_CSP
        html.headers["X-Content-Type-Options"] = "nosniff"
        return html

    title = f"{app.title} - API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        return page(request, lambda spec, assets: get_swagger_ui_html(
            openapi_url=spec, title=title, swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css", swagger_favicon_url=f"{assets}/favicon.png",
            oauth2_redirect_url=None, swagger_ui_parameters={"validatorUrl": None}))

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> Response:
        return page(request, lambda spec, assets: get_redoc_html(
            openapi_url=spec, title=title, redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png", with_google_fonts=False))

    def serve(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
        async def send() -> Response:
            return Response(asset(name), media_type=media_type,
                            headers={"Cache-Control": "public, max-age=86400",
                                     "X-Content-Type-Options": "nosniff"})
        return send

    for name, media_type in _DOCS_FILES.items():
        app.add_api_route(f"{DOCS_ASSETS}/{name}", serve(name, media_type), methods=["GET"],
                          include_in_schema=False)
