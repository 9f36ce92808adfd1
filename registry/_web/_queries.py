"""The few reads only the pages need, as fixed SQL over the read path (:mod:`registry._reads`).

Each statement is one autocommit statement that walks a primary key or a unique index in page
order, bounded by ``LIMIT``; no value ever enters the SQL text. Everything else the pages show
comes from the stored read documents (:mod:`registry._store._reads`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cortex_trust.ids import SLUG

from .._errors import Invalid
from .._store import Store
from .._store._reads import like_escape, page_document
from .._store._rows import PAGE_COLUMNS
from .._store._tx import db_unavailable

__all__ = ["AUDIT_PAGE", "NEEDS", "SORTS", "STATES", "TIERS", "BadQuery", "Search", "audit_entries", "audit_head",
           "page_fragments", "parse_search", "plugin_page_versions", "query_param", "revocations_newest_first",
           "search_json", "search_page"]

#: Entries per page of ``/audit``.
AUDIT_PAGE = 50


def _rows(store: Store, sql: str, params: Sequence[Any]) -> list[Any]:
    reader = store.reader
    text = sql if reader.placeholder == "?" else sql.replace("?", "%s")
    with db_unavailable():
        return reader.rows(text, params)


#: The search's orders: the plugin column each walks backwards through its ``(column, key)``
#: index (largest first; equal values by name, last first), ``None`` for the name alone.
SORTS: dict[str, str | None] = {"name": None, "recent": "latest_published_at", "used": "usage_count"}
#: What the latest version asks for, as conditions on the plugin's indexed columns.
NEEDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "network": (("asks_network", True),), "filesystem": (("asks_filesystem", True),),
    "neither": (("asks_network", False), ("asks_filesystem", False))}
STATES = ("active", "yanked", "revoked")
TIERS = ("verified", "community", "experimental", "untrusted")
#: What a cursor looks like before it is decoded (base64url, no padding).
_CURSOR_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,300}\Z")
_NAMESPACE = re.compile(rf"^{SLUG}\Z")


class BadQuery(Invalid):
    """A query parameter whose value the catalogue does not know. The JSON API answers it like
    every refused request value (422, ``INVALID_REQUEST``); the pages answer 400 with the same
    message and fix."""

    def __init__(self, message: str, *, advice: str) -> None:
        super().__init__("INVALID_REQUEST", message, advice=advice)


def query_param(params: Mapping[str, str], name: str, allowed: Sequence[str] | re.Pattern[str] | None = None,
                *, max_length: int = 100) -> str | None:
    """The value of the query parameter ``name`` (``None`` when absent or empty), or
    :class:`BadQuery` when it is longer than ``max_length``, not one of ``allowed`` (a list of
    values) or not matched by it (a pattern)."""
    value = params.get(name) or None
    if value is None:
        return None
    if len(value) > max_length or (isinstance(allowed, re.Pattern) and allowed.match(value) is None) or (
            allowed is not None and not isinstance(allowed, re.Pattern) and value not in allowed):
        raise BadQuery(f"the {name} filter is not one this catalogue knows",
                       advice=("use the search form's choices, or follow the page links" if allowed is None
                               or isinstance(allowed, re.Pattern) else f"{name} takes one of: {', '.join(allowed)}"))
    return value


@dataclass(frozen=True)
class Search:
    """A validated search: the home page and ``GET /api/v1/plugins`` read the same parameters
    through :func:`parse_search`, so both accept and refuse the same values and list the same
    plugins in the same order."""

    q: str | None
    tier: str | None
    namespace: str | None
    needs: str | None
    state: str | None
    sort: str
    cursor: str | None

    @property
    def indexed_by_key(self) -> bool:
        """Whether the plugin list's own key walk answers it (name order, no needs or state)."""
        return self.sort == "name" and self.needs is None and self.state is None


def parse_search(params: Mapping[str, str]) -> Search:
    """The search in ``params`` (``q``, ``tier``, ``namespace``, ``needs``, ``state``, ``sort``
    (default ``name``), ``cursor``). Raises :class:`BadQuery` for a value outside them; an
    empty value is an absent one."""
    return Search(q=query_param(params, "q"), tier=query_param(params, "tier", TIERS),
                  namespace=query_param(params, "namespace", _NAMESPACE, max_length=64),
                  needs=query_param(params, "needs", tuple(NEEDS)),
                  state=query_param(params, "state", STATES),
                  sort=query_param(params, "sort", tuple(SORTS)) or "name",
                  cursor=query_param(params, "cursor", _CURSOR_TEXT, max_length=300))

#: What a cursor of a sort decodes to: ``VALUE KEY`` (the last row's sort value and plugin key).
_TIME = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
_CURSOR = {"name": re.compile(rf"(){SLUG}/{SLUG}"),
           "recent": re.compile(rf"({_TIME}|) {SLUG}/{SLUG}"),
           "used": re.compile(rf"([0-9]{{1,18}}) {SLUG}/{SLUG}")}
_COLUMNS = ('p."key", p.summary_json, v.document_json, p.latest_published_at, p.usage_count '
            "FROM plugin p LEFT JOIN plugin_version v ON v.plugin_id = p.id AND v.version = p.latest_version")


def _encode(sort: str, value: object, key: str) -> str:
    text = key if sort == "name" else f"{value} {key}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(sort: str, cursor: str) -> tuple[str | int, str]:
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("ascii")
        match = _CURSOR[sort].fullmatch(text)
        if match is None:
            raise ValueError(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("BAD_CURSOR", "the cursor is not one this registry issued for this order",
                      advice="follow the page links, or start again from the first page") from None
    key = text[len(match.group(1)) + 1:] if sort != "name" else text
    return (int(match.group(1)) if sort == "used" else match.group(1)), key


def search_page(store: Store, *, sort: str, q: str | None, tier: str | None, namespace: str | None,
                needs: str | None, state: str | None, cursor: str | None,
                limit: int) -> tuple[list[tuple[str, str, str | None, str, int]], str | None]:
    """One page of the search: ``(key, plugin summary, latest version document, last publish
    time, installations)`` per plugin, and the cursor of the next page (None on the last).

    One statement. Every filter is a condition on an indexed plugin column and every order
    walks an index (``key`` for ``name``; ``(column, key)`` backwards for the others), so a
    page reads its rows in page order. After a cursor, a sort by a column is the union of the
    rest of the cursor's value and the values below it (each a range of that index)."""
    column = SORTS[sort]
    where: list[str] = []
    params: list[Any] = []
    for sql, value in (("p.tier = ?", tier), ("p.namespace = ?", namespace), ("p.latest_state = ?", state)):
        if value is not None:
            where.append(sql)
            params.append(value)
    for name, on in NEEDS.get(needs or "", ()):
        where.append(f"p.{name} = ?")
        params.append(on)
    if q:
        where.append("p.search_text LIKE ? ESCAPE '\\'")
        params.append(f"%{like_escape(q.lower())}%")
    after = _decode(sort, cursor) if cursor else None

    def select(extra: Sequence[str], order: str) -> str:
        conditions = [*extra, *where]
        # Only the constant fragments above are joined: no value ever enters the SQL text.
        return (f"SELECT {_COLUMNS}" + (" WHERE " + " AND ".join(conditions) if conditions else "")
                + f" ORDER BY {order} LIMIT ?")

    if column is None:
        sql = select(['p."key" > ?'] if after else [], 'p."key"')
        args = [*([after[1]] if after else []), *params, limit + 1]
    elif after is None:
        sql = select([], f'p.{column} DESC, p."key" DESC')
        args = [*params, limit + 1]
    else:
        ties = select([f"p.{column} = ?", 'p."key" < ?'], 'p."key" DESC')
        below = select([f"p.{column} < ?"], f'p.{column} DESC, p."key" DESC')
        sql = (f"SELECT * FROM ({ties}) a UNION ALL SELECT * FROM ({below}) b "  # noqa: S608
               f"ORDER BY {4 if column == 'latest_published_at' else 5} DESC, 1 DESC LIMIT ?")
        args = [after[0], after[1], *params, limit + 1, after[0], *params, limit + 1, limit + 1]
    rows = [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), str(r[3]), int(r[4]))
            for r in _rows(store, sql, args)]
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode(sort, last[3] if sort == "recent" else last[4], last[0])


def search_json(store: Store, search: Search, *, limit: int) -> bytes:
    """One page of ``search`` as ``GET /api/v1/plugins`` serves it: the stored plugin summaries
    and the next page's cursor (see :func:`search_page`)."""
    rows, nxt = search_page(store, q=search.q, tier=search.tier, namespace=search.namespace, needs=search.needs,
                            state=search.state, sort=search.sort, cursor=search.cursor, limit=limit)
    return page_document([row[1] for row in rows], nxt)


def page_fragments(store: Store, key: str, version: str | None) -> tuple[Any, ...] | None:
    """``(plugin id, plugin fragment, version id, version fragment, version)`` of the plugin
    ``key``'s version ``version`` (its latest version when None), or None when there is no such
    version: two unique-key lookups."""
    sql = ('SELECT p.id, p.page_html, v.id, v.page_html, v.version FROM plugin p JOIN plugin_version v '  # noqa: S608
           'ON v.plugin_id = p.id WHERE p."key" = ? AND v.version = '
           + ("?" if version is not None else "p.latest_version"))
    rows = _rows(store, sql, (key, version) if version is not None else (key,))
    return tuple(rows[0]) if rows else None


def plugin_page_versions(store: Store, key: str) -> tuple[str, list[Any]]:
    """The plugin ``key``'s description and every version as its pages list it
    (:data:`registry._web._fragments.VersionRow`)."""
    sql = ('SELECT p.description, ' + ", ".join(f"v.{c}" for c in PAGE_COLUMNS)  # noqa: S608 (constants)
           + ' FROM plugin p JOIN plugin_version v ON v.plugin_id = p.id WHERE p."key" = ?')
    rows = _rows(store, sql, (key,))
    return (str(rows[0][0]) if rows else ""), [tuple(r[1:]) for r in rows]


def revocations_newest_first(store: Store, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Revocation entries with ids below ``before`` (all when None), newest first."""
    sql = ("SELECT id, kind, namespace, name, version, digest, reason, identity, issuer, created_at "
           "FROM revocation WHERE id < ? ORDER BY id DESC LIMIT ?")
    rows = _rows(store, sql, (before if before is not None else 2**31 - 1, limit))
    return [{"cursor": r[0], "kind": r[1], "namespace": r[2], "name": r[3], "version": r[4],
             "digest": r[5], "reason": r[6], "identity": r[7], "issuer": r[8], "revoked_at": r[9]}
            for r in rows]


def audit_head(store: Store) -> tuple[int, str]:
    """The audit log's head: the last entry's id and hash (``(0, "")`` for an empty log)."""
    rows = _rows(store, "SELECT seq, hash FROM audit_head ORDER BY id LIMIT 1", ())
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")


def audit_entries(store: Store, *, plugin: str | None, before: int | None,
                  limit: int = AUDIT_PAGE) -> list[dict[str, Any]]:
    """Public audit entries below ``before``, newest first: id, time, action, target, hash and
    the role that acted. Token entries (operator data) are never listed; ``plugin``
    (``namespace/name``) keeps the entries about its versions."""
    # Patterns are parameters: a literal % would be a placeholder to psycopg.
    params: list[Any] = [before if before is not None else 2**63 - 1, "token.%"]
    where = "id < ? AND action NOT LIKE ?"
    if plugin is not None:
        # ``plugin`` is a validated ``slug/slug`` (no LIKE wildcards in it).
        where += " AND target LIKE ?"
        params.append(plugin + "@%")
    params.append(limit)
    sql = f"SELECT id, at, action, target, hash, actor FROM audit_log WHERE {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
    return [{"id": r[0], "at": r[1], "action": r[2], "target": r[3], "hash": r[4],
             "role": str(r[5]).split(":", 1)[0]} for r in _rows(store, sql, params)]
