"""The read path (registry._reads): index use, filters with cursors, connections, failures."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.registry.conftest import BUNDLE_WHEEL, WHEEL_DIGEST, Registry, pg_only


def _walk(registry: Registry, query: str) -> list[str]:
    """Every plugin a filtered listing returns, one page of one item at a time."""
    names: list[str] = []
    _, page = registry.get(f"/api/v1/plugins?limit=1{query}")
    names += [p["full_name"] for p in page["items"]]
    while page["next_cursor"]:
        _, page = registry.get(f"/api/v1/plugins?limit=1{query}&cursor={page['next_cursor']}")
        names += [p["full_name"] for p in page["items"]]
    return names


def test_every_filter_combination_pages_like_the_full_listing(registry: Registry) -> None:
    acme, other = registry.token(), registry.token("other")
    for token, name, description in ((acme, "alpha", "Reads maps."), (acme, "beta", "Draws maps."),
                                     (acme, "gamma", "Sings."), (other, "delta", "Maps rivers."),
                                     (other, "epsilon", "Counts.")):
        # Each namespace publishes its own image (an image belongs to its first publisher).
        image = {} if token == acme else {"digest": WHEEL_DIGEST, "bundle": BUNDLE_WHEEL}
        assert registry.publish(token, name=name, description=description,
                                **image).status_code == 201
    _, page = registry.get("/api/v1/plugins?limit=100")
    everything = page["items"]
    assert [p["full_name"] for p in everything] == sorted(p["full_name"] for p in everything)

    for namespace, tier, q in itertools.product((None, "acme", "other"),
                                                (None, "experimental", "verified"),
                                                (None, "maps")):
        query = "".join(f"&{k}={v}" for k, v in (("namespace", namespace), ("tier", tier),
                                                  ("q", q)) if v)
        expected = [p["full_name"] for p in everything
                    if (namespace is None or p["namespace"] == namespace)
                    and (tier is None or p["tier"] == tier)
                    and (q is None or q in p["description"].lower())]
        assert _walk(registry, query) == expected, query


def test_list_and_lookups_use_indexes_in_page_order(tmp_path: Path) -> None:
    """No read may sort or scan the catalogue for a page (SQLite's plan; PostgreSQL has the
    same indexes, and its planner picks them once the tables hold data)."""
    from registry import make_engine, migrate
    from registry._reads import Reader

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    reader = Reader(engine)
    conn = sqlite3.connect(tmp_path / "r.db")

    def plan(sql: str) -> str:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?")).fetchall()
        return " | ".join(r[3] for r in rows)

    for after, namespace, tier, like in itertools.product((False, True), repeat=4):
        p = plan(reader.list_sql(after=after, namespace=namespace, tier=tier, like=like))
        assert "TEMP B-TREE" not in p and "USING INDEX" in p, p
        if after or namespace or tier:
            assert p.startswith("SEARCH"), p  # a range of an index, not a walk from the start
        if namespace and tier:
            assert "ix_plugin_namespace_tier_key" in p, p
    for sql in (reader.sql_plugin, reader.sql_versions, reader.sql_version, reader.sql_bundle,
                reader.sql_revocations):
        p = plan(sql)
        assert "SCAN" not in p and "TEMP B-TREE" not in p, p
    conn.close()
    engine.dispose()


def test_read_connections_hold_no_transaction_and_cannot_write(registry: Registry) -> None:
    registry.publish(registry.token())
    reader = registry.store.reader
    for path in ("/api/v1/plugins", "/api/v1/plugins/acme/hello",
                 "/api/v1/plugins/acme/hello/versions", "/api/v1/revocations",
                 "/api/v1/plugins/acme/hello/versions/1.0.0"):
        assert registry.client.get(path).status_code == 200
    assert reader._idle, "the connection goes back to the idle list"
    for conn in reader._idle:
        if reader.dialect == "sqlite":
            assert not conn.in_transaction
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                conn.execute("DELETE FROM plugin")
        else:
            import psycopg

            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # A write is visible to the next read at once (no snapshot kept between requests).
    registry.publish(registry.token(), name="later")
    assert registry.get("/api/v1/plugins/acme/later")[0] == 200


@pytest.mark.parametrize("db_url", pg_only(), indirect=True)  # SQLite has no server to drop them
def test_reads_survive_the_database_dropping_their_connections(registry: Registry) -> None:
    assert registry.store.reader.dialect == "postgresql"
    import psycopg

    registry.publish(registry.token())
    assert registry.get("/api/v1/plugins/acme/hello")[0] == 200
    with psycopg.connect(registry.db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    status, doc = registry.get("/api/v1/plugins/acme/hello")
    assert status == 200 and doc["name"] == "hello"


def test_an_unreachable_database_is_a_503_with_advice(evaluator: Any,
                                                      trust_roots: tuple[Any, ...]) -> None:
    from registry import RegistryConfig, create_app, make_engine

    url = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    app = create_app(RegistryConfig(db_url=url, trusted_roots=trust_roots), evaluator=evaluator,
                     db=make_engine(url))
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/v1/plugins", "/api/v1/plugins/acme/hello",
                     "/api/v1/plugins/acme/hello/versions/1.0.0", "/api/v1/revocations"):
            r = client.get(path)
            assert r.status_code == 503, (path, r.text)
            assert json.loads(r.content)["error"]["code"] == "DATABASE_UNAVAILABLE"


def test_disposing_the_engine_closes_the_read_connections(tmp_path: Path) -> None:
    from registry import make_engine, migrate
    from registry._store import Store

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    store = Store(engine)
    assert store.list_plugins(q=None, tier=None, namespace=None, cursor=None, limit=5) == \
        b'{"items":[],"next_cursor":null}'
    (conn,) = store.reader._idle
    engine.dispose()
    assert store.reader._idle == []
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
