"""The registry's read path: fixed SQL over plain DB-API connections.

Read routes only look rows up by unique keys (or walk one index for a page) and return the
pre-rendered JSON stored beside each row. Going through the ORM or SQLAlchemy Core per request
costs many times the lookup itself (statement construction, cache keys, pool checkout, BEGIN and
ROLLBACK; bench/README.md), so :class:`Reader` keeps a few dedicated driver connections and runs fixed SQL
strings, which the drivers prepare once (sqlite3's statement cache, psycopg's prepared
statements after a few executions).

Guarantees:

* Every statement runs in autocommit mode and is one statement: it sees one consistent snapshot
  and never holds a transaction open between requests (no WAL growth on SQLite, no
  ``idle in transaction`` on PostgreSQL).
* The SQLite connections are ``query_only``: the read path cannot write.
* The SQL is the same on SQLite and PostgreSQL except for the placeholder style.
* A connection that failed is closed, never reused. A lost connection or an unavailable
  database is retried once on a fresh connection (after a database restart every idle one is
  stale), then raised as :class:`ReadUnavailable` (the store answers 503).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = ["ReadUnavailable", "Reader"]

#: Idle connections kept per reader. Reads on SQLite run on the event loop (one at a time);
#: on PostgreSQL they run in worker threads, so a few may be in use at once.
_MAX_IDLE = 8


class ReadUnavailable(Exception):
    """The database could not answer a read (translated to a 503 by the store)."""


class Reader:
    """Point lookups and index walks over dedicated autocommit connections of ``engine``.

    Thread-safe: each call takes an idle connection (or opens one) and gives it back after.
    Closed with the engine (``engine.dispose()``) or with :meth:`close`.
    """

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {self.dialect!r}")
        self._engine = engine
        db = engine.url.database
        # An in-memory SQLite database exists once per connection: share the engine's pool.
        self._pooled = self.dialect == "sqlite" and (not db or db == ":memory:"
                                                     or "mode=memory" in str(engine.url))
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        dbapi = engine.dialect.loaded_dbapi
        # Lost connections, restarts, timeouts, locks: retried once, then "unavailable".
        # Anything else (a programming error) propagates and is logged as a bug.
        self._unavailable: tuple[type[BaseException], ...] = (dbapi.OperationalError,
                                                               dbapi.InterfaceError)
        self._errors: tuple[type[BaseException], ...] = (dbapi.Error,)
        # The SQL below is written with qmark placeholders; psycopg takes %s.
        self.placeholder = "?" if self.dialect == "sqlite" else "%s"
        self.sql_plugin = self._sql('SELECT document_json FROM plugin WHERE "key" = ?')
        self.sql_plugin_summary = self._sql('SELECT summary_json FROM plugin WHERE "key" = ?')
        # One statement (one snapshot): the plugin's id tells "no such plugin" from "no rows".
        self.sql_versions = self._sql(
            "SELECT p.id, v.summary_json FROM plugin p "
            'LEFT JOIN plugin_version v ON v.plugin_id = p.id WHERE p."key" = ? ORDER BY v.id')
        self.sql_version = self._sql(
            "SELECT v.document_json FROM plugin p JOIN plugin_version v ON v.plugin_id = p.id "
            'WHERE p."key" = ? AND v.version = ?')
        self.sql_bundle = self._sql(
            "SELECT b.bundle_json FROM plugin p JOIN plugin_version v ON v.plugin_id = p.id "
            "JOIN version_bundle b ON b.version_id = v.id "
            'WHERE p."key" = ? AND v.version = ?')
        # Every receipt of a version, newest first (a version without any: one row of NULL).
        self.sql_receipts = self._sql(
            "SELECT r.envelope_json FROM plugin p JOIN plugin_version v ON v.plugin_id = p.id "
            "LEFT JOIN decision_receipt r ON r.version_id = v.id "
            'WHERE p."key" = ? AND v.version = ? ORDER BY r.id DESC LIMIT ?')
        self.sql_revocations = self._sql(
            "SELECT id, namespace, name, version, digest, reason, identity, issuer, created_at, "
            "kind, log_index FROM revocation WHERE id > ? ORDER BY id LIMIT ?")
        self._list_sql: dict[tuple[bool, bool, bool, bool], str] = {}
        event.listen(engine, "engine_disposed", self._on_dispose)

    def list_sql(self, *, after: bool, namespace: bool, tier: bool, like: bool) -> str:
        """The page query for this combination of filters (parameters in this order: cursor
        key, namespace, tier, LIKE pattern, limit). Walks the ``key`` index in order, so a
        page costs the same at any catalogue size and any cursor position."""
        flags = (after, namespace, tier, like)
        sql = self._list_sql.get(flags)
        if sql is None:
            where = [c for c, on in (('"key" > ?', after), ("namespace = ?", namespace),
                                     ("tier = ?", tier),
                                     ("search_text LIKE ? ESCAPE '\\'", like)) if on]
            # Only the constant fragments above are joined: no value ever enters the SQL text.
            sql = self._sql('SELECT "key", summary_json FROM plugin'  # noqa: S608
                            + (" WHERE " + " AND ".join(where) if where else "")
                            + ' ORDER BY "key" LIMIT ?')
            self._list_sql[flags] = sql
        return sql

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", "%s")

    # ------------------------------------------------------------------------- connections

    def _connect(self) -> Any:
        if self._pooled:
            return self._engine.raw_connection()
        cargs, cparams = self._engine.dialect.create_connect_args(self._engine.url)
        if self.dialect == "sqlite":
            import sqlite3

            # WAL readers do not wait for writers; they can only meet a lock while the WAL is
            # recovered. A short wait then: these reads may run on the event loop.
            conn = sqlite3.connect(cargs[0], uri=bool(cparams.get("uri", False)),
                                   check_same_thread=False, timeout=5, isolation_level=None)
            conn.execute("PRAGMA query_only=ON")
            return conn
        import psycopg

        pg = psycopg.connect(*cargs, **{"connect_timeout": 10, **cparams}, autocommit=True)
        # A read that takes this long is a bug or an overloaded server: fail, do not pile up.
        pg.execute("SET statement_timeout = '30s'")
        return pg

    def _checkout(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _checkin(self, conn: Any) -> None:
        if self._pooled:
            conn.close()  # back to the engine's pool
            return
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def _discard(self, conn: Any) -> None:
        try:
            conn.close()
        except self._errors:
            pass  # it is being thrown away because it failed; closing it may fail too

    def close(self) -> None:
        """Close the idle connections (in-flight ones are closed when given back later)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)

    def _on_dispose(self, _engine: Engine) -> None:
        self.close()

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """All rows of one statement. Raises :class:`ReadUnavailable` if the database fails twice."""
        for attempt in (1, 2):
            conn = None
            try:
                conn = self._checkout()  # may connect: a refused connection is "unavailable"
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    rows = cur.fetchall()
                finally:
                    cur.close()
            except self._unavailable as e:
                if conn is not None:
                    self._discard(conn)
                if attempt == 2:
                    raise ReadUnavailable(type(e).__name__) from None
                self.close()  # after a database restart every idle connection is stale
                continue
            except BaseException:
                if conn is not None:
                    self._discard(conn)  # never reuse a connection in an unknown state
                raise
            self._checkin(conn)
            return list(rows)
        raise AssertionError("unreachable")
