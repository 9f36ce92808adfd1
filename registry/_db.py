"""Database engines and schema migrations (Alembic, from the first table on).

SQLite (the default, zero set-up) and PostgreSQL are supported. On SQLite every write
transaction (marked with the ``cortex_write`` execution option) starts with ``BEGIN IMMEDIATE``
so writers queue on the database lock instead of failing on a lock upgrade; reads use WAL
snapshots and never wait. On both, every write also locks the ``audit_head`` row (see :mod:`registry._store`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cortex_trust.errors import InputError, UnavailableError

__all__ = ["MIGRATIONS_DIR", "make_engine", "migrate", "normalise_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` (psycopg 3 driver) and ``sqlite:///PATH``; refuse anything else.

    Raises :class:`InputError` for an unsupported or malformed URL.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"{url!r} is not a database URL",
                         advice="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InputError(f"unsupported database {parsed.get_backend_name()!r}",
                         advice="use sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    return url


def make_engine(url: str) -> Engine:
    """Create an SQLAlchemy engine for ``url`` (see :func:`normalise_url`).

    Raises :class:`InputError` for a bad URL.
    """
    from sqlalchemy import create_engine

    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions (so BEGIN IMMEDIATE sticks).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the write lock up front (no failed lock upgrades); readers do not.
            write = conn.get_execution_options().get("cortex_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision (idempotent).

    Raises :class:`UnavailableError` when the database cannot be reached or migrated.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except SQLAlchemyError as e:
        raise UnavailableError(f"could not migrate the registry database: {type(e).__name__}",
                               advice="check the --db URL and that the server is running") from None
