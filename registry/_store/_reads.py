"""The catalogue's read routes: pre-rendered documents looked up by key.

Read documents are JSON kept beside each row and rewritten on every change (see
:mod:`registry._documents`), so a read returns stored bytes through the fixed-SQL read path
(:mod:`registry._reads`): a unique-key lookup or a walk of one index in page order, whatever the
catalogue's size.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from cortex_trust.ids import SLUG

from .._documents import dumps
from .._errors import Invalid, NotFound
from ._tx import StoreBase, db_unavailable, not_found

__all__ = ["CatalogueReads", "encode_cursor", "like_escape", "page_document"]

_log = logging.getLogger(__name__)

#: What a cursor decodes to: a plugin key (``namespace/name``).
_CURSOR_KEY = re.compile(rf"{SLUG}/{SLUG}")


def encode_cursor(key: str) -> str:
    """The list cursor that continues after the plugin ``key`` (opaque to clients)."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                               validate=True).decode("ascii")
        if _CURSOR_KEY.fullmatch(key) is None:
            raise ValueError(key)
        return key
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("BAD_CURSOR", "the cursor is not one this registry issued",
                      advice="pass next_cursor from the previous page unchanged") from None


def page_document(summaries: Sequence[str], next_cursor: str | None) -> bytes:
    """A page of plugin summaries (stored JSON texts) as the list route serves it."""
    return (b'{"items":[' + ",".join(summaries).encode() + b'],"next_cursor":'
            + json.dumps(next_cursor).encode() + b"}")


def like_escape(q: str) -> str:
    """``q`` as a LIKE pattern's literal text (with ``ESCAPE '\\'``)."""
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CatalogueReads(StoreBase):
    """Plugins, versions, bundles and the revocation feed, as the read routes serve them."""

    def _read_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with db_unavailable():
            return self.reader.rows(sql, params)

    def list_plugins(self, *, q: str | None, tier: str | None, namespace: str | None,
                     cursor: str | None, limit: int) -> bytes:
        """One page of plugin summaries as a JSON document ``{"items": [...], "next_cursor"}``.

        Pages follow the unique ``key`` index (``key > cursor ORDER BY key LIMIT n``): the cost
        of a page does not depend on the catalogue's size or the cursor's position."""
        after = _decode_cursor(cursor) if cursor else None
        params: list[Any] = [p for p in (after, namespace, tier) if p]
        if q:
            params.append(f"%{like_escape(q.lower())}%")
        params.append(limit + 1)
        sql = self.reader.list_sql(after=bool(after), namespace=bool(namespace),
                                   tier=bool(tier), like=bool(q))
        rows = self._read_rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = encode_cursor(rows[-1][0]) if more else None
        return page_document([r[1] for r in rows], nxt)

    def plugin_document(self, namespace: str, name: str) -> bytes:
        """The pre-rendered plugin document. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_plugin, (f"{namespace}/{name}",))
        if not rows:
            raise not_found(namespace, name)
        return str(rows[0][0]).encode()

    def plugin_summary(self, namespace: str, name: str) -> str:
        """The plugin's summary as its list pages carry it. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_plugin_summary, (f"{namespace}/{name}",))
        if not rows:
            raise not_found(namespace, name)
        return str(rows[0][0])

    def versions_document(self, namespace: str, name: str) -> bytes:
        """``{"items": [version summaries, oldest first]}``. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_versions, (f"{namespace}/{name}",))
        if not rows:
            raise not_found(namespace, name)
        docs = [r[1] for r in rows if r[1] is not None]
        return b'{"items":[' + ",".join(docs).encode() + b"]}"

    def version_document(self, namespace: str, name: str, version: str) -> bytes:
        """The pre-rendered version document. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_version, (f"{namespace}/{name}", version))
        if not rows:
            raise not_found(namespace, name, version)
        return str(rows[0][0]).encode()

    def keep_page_fragments(self, *, plugin_id: int, plugin_page: str | None, version_id: int,
                            version_page: str | None) -> None:
        """Store page fragments rendered on a read for rows that have none yet (written before
        pages were stored; ``None`` leaves one as it is). Each is stored only while its column is
        still empty: every write renders its own, so a write made since the read always wins and
        a page rendered from older documents is never kept. Derived rendering, not a fact: no
        audit entry. A database that refuses the write (busy, read-only) leaves the fragment to
        the next read."""
        from sqlalchemy import update
        from sqlalchemy.exc import SQLAlchemyError

        from .._models import Plugin, PluginVersion

        try:
            with self.engine.begin() as conn:
                for table, row_id, page in ((Plugin.__table__, plugin_id, plugin_page),  # type: ignore[attr-defined]
                                            (PluginVersion.__table__, version_id, version_page)):  # type: ignore[attr-defined]
                    if page is not None:
                        conn.execute(update(table).where((table.c.id == row_id) & table.c.page_html.is_(None))
                                     .values(page_html=page))
        except SQLAlchemyError:
            _log.warning("a page rendered on read was not stored; the next read renders it again", exc_info=True)

    def clear_page_fragments(self) -> list[int]:
        """Empty every stored page fragment (plugins and versions) in one write, so that each is
        rendered again from the stored documents (a read or :func:`registry._web.fill_pages`
        stores it while still empty; a write stores its own); the ids of every version, in
        order. Derived rendering, not a fact: no audit entry."""
        from sqlalchemy import select, update

        from .._models import Plugin, PluginVersion

        plugins, versions = Plugin.__table__, PluginVersion.__table__  # type: ignore[attr-defined]
        with db_unavailable(), self.engine.begin() as conn:
            conn.execute(update(plugins).values(page_html=None))
            conn.execute(update(versions).values(page_html=None))
        with db_unavailable(), self.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(select(versions.c.id).order_by(versions.c.id))]

    def bundle(self, namespace: str, name: str, version: str) -> bytes:
        """The Sigstore bundle published with the version. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_bundle, (f"{namespace}/{name}", version))
        if not rows:
            raise not_found(namespace, name, version)
        return str(rows[0][0]).encode()

    def _receipt_envelopes(self, namespace: str, name: str, version: str, *, limit: int) -> list[str]:
        """The version's decision receipts (envelope JSON), newest first, at most ``limit``.
        Raises :class:`NotFound` for an unknown version, ``RECEIPT_NOT_FOUND`` when it has none
        (decided before receipts were kept)."""
        rows = self._read_rows(self.reader.sql_receipts, (f"{namespace}/{name}", version, limit))
        if not rows:
            raise not_found(namespace, name, version)
        envelopes = [str(r[0]) for r in rows if r[0] is not None]
        if not envelopes:
            raise NotFound("RECEIPT_NOT_FOUND", f"{namespace}/{name}@{version} has no decision receipt",
                           advice="its decision predates receipts: re-tier the registry "
                                  "(`cortex registry retier`) to issue one")
        return envelopes

    def receipt(self, namespace: str, name: str, version: str) -> bytes:
        """The newest decision receipt of the version (a DSSE envelope). Raises :class:`NotFound`."""
        return self._receipt_envelopes(namespace, name, version, limit=1)[0].encode()

    def receipt_history(self, namespace: str, name: str, version: str) -> bytes:
        """``{"items": [the version's newest 10,000 receipts, oldest first]}``. Raises
        :class:`NotFound`."""
        envelopes = self._receipt_envelopes(namespace, name, version, limit=10_000)
        return b'{"items":[' + ",".join(reversed(envelopes)).encode() + b"]}"

    def revocations(self, *, cursor: int, limit: int) -> bytes:
        """Revocations after ``cursor`` (exclusive), oldest first, and the next cursor. Each
        entry says its ``kind`` (see :data:`~registry._models.REVOCATION_KINDS`) and the
        ``log_index`` of the audit-log leaf that recorded it (its inclusion proof:
        ``GET /api/v1/log/proof/inclusion``)."""
        return self.revocation_page(cursor=cursor, limit=limit)[0]

    def revocation_page(self, *, cursor: int, limit: int) -> tuple[bytes, bool]:
        """:meth:`revocations`, and whether the page has any entry."""
        rows = self._read_rows(self.reader.sql_revocations, (cursor, limit))
        items = [{"cursor": r[0], "kind": r[9], "namespace": r[1], "name": r[2],
                  "version": r[3], "digest": r[4], "reason": r[5], "identity": r[6],
                  "issuer": r[7], "revoked_at": r[8], "log_index": r[10]} for r in rows]
        nxt = rows[-1][0] if rows else cursor
        return dumps({"items": items, "next_cursor": nxt}).encode(), bool(rows)
