"""The catalogue's routes: ``/``, ``/plugins/NS/NAME[/VERSION]``, ``/revocations``, ``/audit``
and the two static files.

Every answer, pages and errors alike, carries :data:`SECURITY_HEADERS`: a Content-Security-Policy
that admits scripts and styles from this origin only (no inline script, no ``unsafe-inline``),
no framing, no referrer, no MIME sniffing. Query and path values are checked here and a bad one
is an HTML error page, never a JSON one: a person reads these.
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
from .._store._reads import encode_cursor
from . import _queries as queries
from . import _views as views
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
_TIERS = ("verified", "community", "experimental", "untrusted")
_NEEDS = ("network", "filesystem", "neither")
_STATES = ("active", "yanked", "revoked")
#: Plugins per page of the search.
PAGE_SIZE = 20
#: The most plugins one search request looks at when it filters on what the latest version
#: asks for or its state (facts of the version documents, not of the plugin index): a page may
#: then hold fewer matches, with a link to look further.
_SCAN_LIMIT = 1000
#: How long a chain check of the whole audit log is reused while the log's head is unchanged.
_AUDIT_CHECK_TTL = 60.0


def _page(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _param(request: Request, name: str, allowed: tuple[str, ...] | re.Pattern[str] | None = None,
           *, max_length: int = 100) -> str | None:
    value = request.query_params.get(name) or None
    if value is None:
        return None
    if len(value) > max_length or (isinstance(allowed, tuple) and value not in allowed) or (
            isinstance(allowed, re.Pattern) and allowed.match(value) is None):
        raise _BadRequest(f"the {name} filter is not one this catalogue knows")
    return value


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
        except _BadRequest as e:
            return error(request, 400, e.message, "use the search form's choices")
        except ApiError as e:
            return error(request, e.status, str(e.message), e.advice or "")

    @router.get("/")
    async def home(request: Request) -> Response:
        def make() -> bytes:
            q = _param(request, "q")
            tier = _param(request, "tier", _TIERS)
            namespace = _param(request, "namespace", _SLUG, max_length=64)
            needs = _param(request, "needs", _NEEDS)
            state = _param(request, "state", _STATES)
            cursor = _param(request, "cursor", re.compile(r"^[A-Za-z0-9_-]{1,300}\Z"), max_length=300)
            rows, nxt, scanned = _search(_store(request), q=q, tier=tier, namespace=namespace,
                                         needs=needs, state=state, cursor=cursor)
            filters = {"q": q, "tier": tier, "namespace": namespace, "needs": needs, "state": state}
            return catalogue.render("home.html", root=root_of(request), rows=rows, next_cursor=nxt,
                                    cursor=cursor, filters=filters, tiers=_TIERS,
                                    query={k: v for k, v in filters.items() if v}, scanned=scanned,
                                    api=f"{root_of(request)}/api/v1/plugins", title="Plugins")
        return await guarded(request, make)

    def version_page(request: Request, namespace: str, name: str, version: str | None) -> bytes:
        if not _SLUG.match(namespace) or not _SLUG.match(name) or (
                version is not None and not _VERSION.match(version)):
            raise _BadRequest("that is not a plugin name this registry could hold")
        store = _store(request)
        plugin_doc = store.plugin_document(namespace, name)
        versions_doc = store.versions_document(namespace, name)
        if version is None:
            version = json.loads(plugin_doc)["latest_version"]
            if version is None:
                raise _BadRequest("this plugin has no versions")
        return catalogue.version_page(root=root_of(request), plugin_doc=plugin_doc, versions_doc=versions_doc,
                                      version_doc=store.version_document(namespace, name, version),
                                      inactive=queries.inactive_versions(store, f"{namespace}/{name}"),
                                      pinned=request.path_params.get("version") is not None)

    @router.get("/plugins/{namespace}/{name}")
    async def plugin(request: Request, namespace: str, name: str) -> Response:
        return await guarded(request, lambda: version_page(request, namespace, name, None))

    @router.get("/plugins/{namespace}/{name}/{version}")
    async def version(request: Request, namespace: str, name: str, version: str) -> Response:
        return await guarded(request, lambda: version_page(request, namespace, name, version))

    @router.get("/revocations")
    async def revocations(request: Request) -> Response:
        def make() -> bytes:
            before = _param(request, "before", re.compile(r"^[1-9][0-9]{0,9}\Z"))
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
            plugin = _param(request, "plugin", _PLUGIN_KEY, max_length=129)
            before = _param(request, "before", re.compile(r"^[1-9][0-9]{0,17}\Z"))
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


def _search(store: Store, *, q: str | None, tier: str | None, namespace: str | None, needs: str | None,
            state: str | None, cursor: str | None) -> tuple[list[dict[str, Any]], str | None, int]:
    """One page of search rows: ``(rows, next cursor, plugins looked at)``.

    Name, text, tier and namespace filters walk the plugin index (the API's own search). The
    ``needs`` and ``state`` filters are facts of each plugin's latest version document: they
    are applied to the walked rows, looking at no more than :data:`_SCAN_LIMIT` plugins per page.
    """
    filtered = needs is not None or state is not None
    rows: list[dict[str, Any]] = []
    scanned = 0
    while True:
        batch = PAGE_SIZE if not filtered else 100
        page = json.loads(store.list_plugins(q=q, tier=tier, namespace=namespace, cursor=cursor, limit=batch))
        items = page["items"]
        docs = queries.latest_documents(store, [i["full_name"] for i in items])
        for n, item in enumerate(items, 1):
            scanned += 1
            doc = json.loads(docs[item["full_name"]]) if item["full_name"] in docs else {}
            row = _row(item, doc)
            if _matches(row, needs=needs, state=state):
                rows.append(row)
            if len(rows) == PAGE_SIZE:
                more = n < len(items) or page["next_cursor"] is not None
                return rows, encode_cursor(item["full_name"]) if more else None, scanned
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, None, scanned
        if not filtered or scanned >= _SCAN_LIMIT:
            return rows, cursor, scanned


def _row(item: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    decision = doc.get("decision") or {}
    trust = (doc.get("manifest") or {}).get("trust") or {}
    return {**item, "state": doc.get("state"), "sandbox": views.sandbox_in_words(decision.get("sandbox")),
            "network": bool(trust.get("network")), "filesystem": bool(trust.get("filesystem"))}


def _matches(row: dict[str, Any], *, needs: str | None, state: str | None) -> bool:
    if state is not None and row["state"] != state:
        return False
    if needs == "network":
        return bool(row["network"])
    if needs == "filesystem":
        return bool(row["filesystem"])
    if needs == "neither":
        return not row["network"] and not row["filesystem"]
    return True
