"""The store's base: the one write transaction and the one database-error mapping.

* :meth:`StoreBase._write` is the only way a store method writes (except a token's last-use
  time, :mod:`registry._store._tokens`): one transaction that first locks the ``audit_head``
  row (and on SQLite starts with ``BEGIN IMMEDIATE``), so writers are serialised, each write
  appends exactly one hash-chained audit entry (:class:`Tx`), and a failure anywhere rolls
  everything back.
* :func:`db_unavailable` is the only place a database failure becomes the API's
  ``DATABASE_UNAVAILABLE`` (503): a write, a read on the ORM or on the fixed-SQL read path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from cortex_trust.policy import format_time

from .._audit import canonical
from .._errors import NotFound, Unavailable
from .._models import AuditHead, PluginVersion, RevocationRow
from .._reads import Reader, ReadUnavailable
from .._receipts import ReceiptIssuer
from .._tlog import EffectsRecorder, append_entry

__all__ = ["StoreBase", "Tx", "db_unavailable", "not_found"]


@contextmanager
def db_unavailable() -> Iterator[None]:
    """Translate a database that cannot answer (SQLAlchemy's ``OperationalError``, the read
    path's :class:`~registry._reads.ReadUnavailable`) into :class:`Unavailable`
    (``DATABASE_UNAVAILABLE``); the cause is not shown to the client."""
    try:
        yield
    except (OperationalError, ReadUnavailable):
        raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                          advice="retry later") from None


def not_found(namespace: str, name: str, version: str | None = None) -> NotFound:
    """``NOT_FOUND`` for a plugin (or one of its versions) this registry does not hold."""
    what = f"{namespace}/{name}" + (f"@{version}" if version else "")
    return NotFound("NOT_FOUND", f"{what} is not in this registry",
                    advice="check the name with GET /api/v1/plugins?q=...")


class StoreBase:
    """What every part of the store shares: the engine, the write transaction, the reader.

    Build it (as :class:`registry._store.Store`) on an engine whose schema is migrated.
    """

    def __init__(self, engine: Engine, *, registry_name: str = "cortex-registry") -> None:
        self.engine = engine
        # Write transactions are marked so that SQLite starts them with BEGIN IMMEDIATE (see
        # registry._db); reads stay deferred and never wait for the write lock.
        self._write_engine = engine.execution_options(cortex_write=True)
        self.registry_name = registry_name
        # Read routes use fixed SQL on dedicated autocommit connections (see registry._reads).
        self.reader = Reader(engine)
        #: Called with the audit entry's target (``ns/name@version``, ``digest:...``, ``*``...)
        #: after each committed write; it must not raise (the write is already done).
        self.on_write: Callable[[str], None] | None = None
        #: Called after each committed write that added revocation feed entries (wakes the
        #: feed's long-polls, see :mod:`registry._feed`); it must not raise.
        self.on_feed: Callable[[], None] | None = None
        #: Called with each scan job's id and due time after the write that queued it committed
        #: (the in-process job runner, see :mod:`registry._local_jobs`); it must not raise.
        self.on_scan: Callable[[int, datetime], None] | None = None
        #: Seals a receipt for every decision stored (unsigned until the app gives it a key).
        self.receipt_issuer = ReceiptIssuer(name=registry_name, signer=None)

    @contextmanager
    def _write(self) -> Iterator[Tx]:
        """One write transaction holding the audit lock; commits with exactly one audit entry
        (or none, after :meth:`Tx.skip_audit`, when nothing changed)."""
        with db_unavailable(), Session(self._write_engine, expire_on_commit=False) as session:
            head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
            tx = Tx(session, head)
            try:
                yield tx
                if tx.entries == 0 and not tx.read_only:
                    raise RuntimeError("every registry write must append an audit entry")
                tx.finish()
            finally:
                tx.recorder.close()
            session.commit()
        if self.on_write is not None and tx.target is not None:
            self.on_write(tx.target)
        if self.on_feed is not None and tx.feed_grew:
            self.on_feed()
        if self.on_scan is not None:
            for scan_id, due in tx.scans:
                self.on_scan(scan_id, due)

    def _read(self) -> Session:
        return Session(self.engine)


class Tx:
    """One write transaction: its session and its audit entry (exactly one, appended by
    :meth:`finish` just before the commit, with the effects the transaction left in the tracked
    tables; see :mod:`registry._tlog`)."""

    def __init__(self, session: Session, head: AuditHead) -> None:
        self.session = session
        self.head = head
        self.entries = 0
        self.read_only = False
        self.recorder = EffectsRecorder(session)
        self._pending: dict[str, Any] | None = None
        #: What the audit entry is about (see :attr:`StoreBase.on_write`).
        self.target: str | None = None
        #: Whether this transaction added revocation feed entries (see :attr:`StoreBase.on_feed`).
        self.feed_grew = False
        #: The scan jobs this transaction queued, with when they are due (see :attr:`StoreBase.on_scan`).
        self.scans: list[tuple[int, datetime]] = []

    def skip_audit(self) -> None:
        """This transaction turned out to change nothing: commit without an entry."""
        self.read_only = True

    def audit(self, *, actor: str, action: str, target: str, before: Any, after: Any,
              now: datetime, effects: dict[str, dict[str, Any]] | None = None) -> None:
        """Record this transaction's entry (appended at commit). ``effects`` adds tracked rows
        written without the ORM (projections keyed like :func:`registry._tlog.projection`)."""
        if self._pending is not None:
            raise RuntimeError("a registry write appends exactly one audit entry")
        self._pending = {"actor": actor, "action": action, "target": target[:512],
                         "before_json": canonical(before) if before is not None else None,
                         "after_json": canonical(after) if after is not None else None,
                         "at": format_time(now), "extra": effects or {}}
        self.entries += 1
        self.target = target

    def finish(self) -> None:
        """Append the entry with the transaction's effects; new versions and revocations learn
        their leaf index. A transaction that skipped its entry must have changed no tracked
        row."""
        effects = self.recorder.effects()
        if self._pending is None:
            if any(effects.values()):
                raise RuntimeError("a write changed tracked rows without an audit entry")
            return
        pending = self._pending
        for table, rows in pending.pop("extra").items():
            effects.setdefault(table, {}).update(rows)
        index = self.head.seq  # the leaf index of the entry about to be appended
        for obj in self.recorder.new:
            if isinstance(obj, (PluginVersion, RevocationRow)):
                obj.log_index = index
                self.session.add(obj)
                self.feed_grew = self.feed_grew or isinstance(obj, RevocationRow)
        self.recorder.close()
        append_entry(self.session, self.head, effects=effects, **pending)
