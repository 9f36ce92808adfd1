"""The catalogue's routes: ``/``, ``/plugins/NS/NAME[/VERSION]``, ``/revocations``, ``/audit``
and the two static files.

Every answer, pages and errors alike, carries :data:`SECURITY_HEADERS`: a Content-Security-Policy
that admits scripts and styles from this origin only (no inline script, no ``unsafe-inline``),
no framing, no referrer, no MIME sniffing. Query and path values are checked with the parser the
JSON API shares (:func:`~registry._web._queries.parse_search`, :func:`~registry._web._queries.query_param`),
and a bad one is an HTML error page (400), never a JSON one: a person reads these.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from cortex_trust.ids import SLUG as SLUG_TEXT
from cortex_trust.sources import VERSION_PATTERN

from .._errors import ApiError
from .._models import SLUG
from .._store import Store
from . import _queries as queries
from . import _views as views
from ._fill import render_missing
from ._pages import STATIC_DIR, Catalogue

__all__ = ["SECURITY_HEADERS", "install_catalogue"]

#: Sent with every page and static file of the catalogue.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

_SLUG = re.compile(SLUG)
#: ``namespace/name``, both slugs (the ids grammar).
_PLUGIN_KEY = re.compile(rf"^{SLUG_TEXT}/{SLUG_TEXT}\Z")
_VERSION = re.compile(VERSION_PATTERN)
#: Plugins per page of the search.
PAGE_SIZE = 20
#: How long a chain check of the whole audit log is reused while the log's head is unchanged.
_AUDIT_CHECK_TTL = 60.0


def _page(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def install_catalogue(app: FastAPI) -> None:
    """Add the catalogue's pages to ``app`` (whose ``state.store`` is the registry's store)."""
    catalogue = Catalogue(registry_name=app.state.config.name)
    router = APIRouter(include_in_schema=False)
    audit_checks: dict[tuple[int, str], tuple[float, Any]] = {}

    def root_of(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    def error(request: Request, status: int, message: str, advice: str = "") -> Response:
        return _page(catalogue.render("error.html", root=root_of(request), status=status,
                                      message=message, advice=advice, title=f"Error {status}"), status)

    async def guarded(request: Request, make: Any) -> Response:
        try:
            return _page(await run_in_threadpool(make))
        except queries.BadQuery as e:
            return error(request, 400, e.message, e.advice or "")
        except ApiError as e:
            return error(request, e.status, str(e.message), e.advice or "")

    @router.get("/")
    async def home(request: Request) -> Response:
        def make() -> bytes:
            search = queries.parse_search(request.query_params)
            rows, nxt = _search(_store(request), search)
            filters = {"q": search.q, "tier": search.tier, "namespace": search.namespace, "needs": search.needs,
                       "state": search.state, "sort": None if search.sort == "name" else search.sort}
            return catalogue.render("home.html", root=root_of(request), rows=rows, next_cursor=nxt,
                                    cursor=search.cursor, filters=filters, tiers=queries.TIERS,
                                    query={k: v for k, v in filters.items() if v},
                                    api=f"{root_of(request)}/api/v1/plugins", title="Plugins")
        return await guarded(request, make)

    def version_page(request: Request, namespace: str, name: str, version: str | None) -> bytes:
        if not _SLUG.match(namespace) or not _SLUG.match(name) or (
                version is not None and not _VERSION.match(version)):
            raise queries.BadQuery("that is not a plugin name this registry could hold",
                                   advice="follow the links of the search page")
        store = _store(request)
        key = f"{namespace}/{name}"
        found = queries.page_fragments(store, key, version)
        if found is None:
            store.plugin_document(namespace, name)  # NotFound for an unknown plugin
            if version is not None:
                store.version_document(namespace, name, version)  # NotFound for an unknown version
            raise queries.BadQuery("this plugin has no versions", advice="open another plugin from the search page")
        _, plugin_page, _, version_page, current = found
        if not plugin_page or not version_page:
            plugin_page, version_page = render_missing(store, key, namespace, name, current, found)
        return catalogue.version_page(root=root_of(request), namespace=namespace, name=name, version=current,
                                      pinned=version is not None, plugin_page=plugin_page,
                                      version_page=version_page)

    @router.get("/plugins/{namespace}/{name}")
    async def plugin(request: Request, namespace: str, name: str) -> Response:
        return await guarded(request, lambda: version_page(request, namespace, name, None))

    @router.get("/plugins/{namespace}/{name}/{version}")
    async def version(request: Request, namespace: str, name: str, version: str) -> Response:
        return await guarded(request, lambda: version_page(request, namespace, name, version))

    @router.get("/revocations")
    async def revocations(request: Request) -> Response:
        def make() -> bytes:
            before = queries.query_param(request.query_params, "before",
                                         re.compile(r"^[1-9][0-9]{0,9}\Z"))
            items = queries.revocations_newest_first(_store(request), before=int(before) if before else None,
                                                     limit=PAGE_SIZE + 1)
            nxt = items[PAGE_SIZE - 1]["cursor"] if len(items) > PAGE_SIZE else None
            return catalogue.render("revocations.html", root=root_of(request), items=items[:PAGE_SIZE],
                                    next_before=nxt, first=before is None, title="Revocations",
                                    api=f"{root_of(request)}/api/v1/revocations")
        return await guarded(request, make)

    @router.get("/audit")
    async def audit(request: Request) -> Response:
        def make() -> bytes:
            plugin = queries.query_param(request.query_params, "plugin", _PLUGIN_KEY, max_length=129)
            before = queries.query_param(request.query_params, "before",
                                         re.compile(r"^[1-9][0-9]{0,17}\Z"))
            store = _store(request)
            head = queries.audit_head(store)
            seen = audit_checks.get(head)
            if seen is None or time.monotonic() - seen[0] > _AUDIT_CHECK_TTL:
                audit_checks.clear()
                seen = audit_checks[head] = (time.monotonic(), store.audit_report())
            report = seen[1]
            entries = queries.audit_entries(store, plugin=plugin, before=int(before) if before else None,
                                            limit=queries.AUDIT_PAGE + 1)
            more = len(entries) > queries.AUDIT_PAGE
            entries = entries[:queries.AUDIT_PAGE]
            return catalogue.render("audit.html", root=root_of(request), plugin=plugin, report=report,
                                    head=head, entries=entries,
                                    next_before=entries[-1]["id"] if more else None,
                                    title="Audit log" + (f" of {plugin}" if plugin else ""))
        return await guarded(request, make)

    types = {"catalogue.css": "text/css; charset=utf-8", "catalogue.js": "text/javascript; charset=utf-8",
             "favicon.svg": "image/svg+xml"}
    statics = {name: (STATIC_DIR / name).read_bytes() for name in types}

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        body = statics.get(name)
        if body is None:
            return Response(b"not found", status_code=404, media_type="text/plain", headers=SECURITY_HEADERS)
        return Response(body, media_type=types[name],
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"})

    app.include_router(router)


def _search(store: Store, search: queries.Search) -> tuple[list[dict[str, Any]], str | None]:
    """One page of search rows and the next page's cursor (see :func:`queries.search_page`)."""
    rows, nxt = queries.search_page(store, limit=PAGE_SIZE, q=search.q, tier=search.tier, namespace=search.namespace,
                                    needs=search.needs, state=search.state, sort=search.sort, cursor=search.cursor)
    return [_row(json.loads(summary), json.loads(doc or "{}"), published, used)
            for _key, summary, doc, published, used in rows], nxt


def _row(item: dict[str, Any], doc: dict[str, Any], published: str, used: int) -> dict[str, Any]:
    decision = doc.get("decision") or {}
    return {**item, "state": doc.get("state"), "sandbox": views.sandbox_in_words(decision.get("sandbox")),
            "published": published, "used": used}
