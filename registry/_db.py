"""Database engines and schema migrations (Alembic, from the first table on).

SQLite (the default, zero set-up) and PostgreSQL are supported. On SQLite every write
transaction (marked with the ``cortex_write`` execution option) starts with ``BEGIN IMMEDIATE``
so writers queue on the database lock instead of failing on a lock upgrade; reads use WAL
snapshots and never wait. On both, every write also locks the ``audit_head`` row (see :mod:`registry._store`).

The database holds token hashes, token holders and the audit log: an SQLite database file is
created owner-only (0600) before SQLite first opens it, in a directory created 0700 when it does
not exist yet; SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the database file's
mode. An existing database file (or sibling) that others can read or write, and that this user
owns, is tightened to 0600 with a warning (refusing would break every upgrade from a version
that created it 0644); one owned by another user, and a database directory others can write,
are warned about. PostgreSQL keeps its files in its own data directory (0700, by ``initdb``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cortex_trust.errors import InputError, UnavailableError

__all__ = ["MIGRATIONS_DIR", "make_engine", "migrate", "normalise_url", "secure_sqlite_file"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")
_log = logging.getLogger("registry")


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


def _sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; ``None`` for an in-memory or ``file:`` URI database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def secure_sqlite_file(path: Path, *, warn: Callable[[str], None] | None = None) -> None:
    """Make sure the SQLite database at ``path`` and its siblings are owner-only.

    Creates the directory (0700) and an empty database file (0600) when they do not exist;
    tightens an existing file of this user that others can read or write to 0600 and says so
    through ``warn`` (default: the ``registry`` logger). Raises :class:`InputError` when the
    directory or the file cannot be created.
    """
    say = warn or _log.warning
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.stat(directory)
    except OSError as e:
        raise InputError(f"cannot create the database directory {directory}: {e.strerror or e}",
                         advice="check the --db path and its permissions") from None
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        say(f"the database directory {directory} is writable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): they can replace the database; "
            f"fix: chmod 700 {directory}")
    try:
        # Created here, owner-only, so SQLite never creates it with the umask's mode; the
        # journal files SQLite creates later take this file's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
    except OSError as e:
        raise InputError(f"cannot create the database {path}: {e.strerror or e}",
                         advice="check the --db path and its permissions") from None
    euid = os.geteuid() if hasattr(os, "geteuid") else None
    for file in (path, *(path.with_name(path.name + s) for s in _SQLITE_SIBLINGS)):
        try:
            fst = os.stat(file)
        except FileNotFoundError:
            continue
        except OSError:
            continue
        mode = stat.S_IMODE(fst.st_mode)
        if not mode & 0o077:
            continue
        if euid is not None and fst.st_uid != euid:
            say(f"the database file {file} (mode {mode:04o}) belongs to uid {fst.st_uid} and can "
                f"be read by others (token hashes, the audit log); fix: chmod 600 {file}")
            continue
        try:
            os.chmod(file, 0o600)
        except OSError as e:
            say(f"the database file {file} can be read by others (mode {mode:04o}) and could "
                f"not be tightened: {e.strerror or e}; fix: chmod 600 {file}")
            continue
        say(f"the database file {file} could be read by other users (mode {mode:04o}); "
            "it holds token hashes and the audit log: tightened to 0600")


def make_engine(url: str, *, warn: Callable[[str], None] | None = None) -> Engine:
    """Create an SQLAlchemy engine for ``url`` (see :func:`normalise_url`).

    For an SQLite file the database is secured first (:func:`secure_sqlite_file`; ``warn``
    receives what was tightened). Raises :class:`InputError` for a bad URL, or a database file
    or directory that cannot be created.
    """
    from sqlalchemy import create_engine

    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            secure_sqlite_file(path, warn=warn)
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
