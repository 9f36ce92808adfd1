"""Re-tiering the whole catalogue in one transaction: bulk SQL around :class:`LocalDeciders`.

This process reads batches of versions with their stored facts and stores each finished batch
with one ``executemany`` while the deciders' threads evaluate the next ones
(:mod:`registry._retier`); every input, decision and document is the one a single write makes
(:mod:`registry._reevaluate`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select

from cortex_trust.policy import format_time

from .._documents import plugin_documents
from .._models import Plugin, PluginVersion
from .._reevaluate import ITEM_COLUMNS, Item, Outcome, item_from_row
from .._tlog import rendered_hash
from .._web._fragments import VersionRow, plugin_fragment, stored, version_fragment
from ._rows import PAGE_COLUMNS, VersionRows
from ._tx import db_unavailable

if TYPE_CHECKING:
    from .._retier import Job, LocalDeciders

__all__ = ["Retiering", "version_page_of"]


#: One version's re-tiering result (``Store.retier_all``), in the qmark style (``%s`` on
#: PostgreSQL). Only constants: every value is a bound parameter.
_RETIER_UPDATE = ("UPDATE plugin_version SET tier = ?, action = ?, policy_revision = ?, "
                  "decision_json = ?, summary_json = ?, document_json = ?, page_html = ? WHERE id = ?")
#: One version's receipt of its re-tiering decision.
_RECEIPT_INSERT = "INSERT INTO decision_receipt (version_id, decided_at, envelope_json) VALUES (?, ?, ?)"


#: Where a version's digest is in the rows ``retier_all`` selects (id, plugin, tier, action, then
#: the item columns).
_DIGEST = 4 + ITEM_COLUMNS.index("digest")
_ITEMS = len(ITEM_COLUMNS)


class Retiering(VersionRows):
    """Re-evaluating every version after a policy change."""

    def retier_all(self, *, now: datetime, deciders: LocalDeciders, batch: int = 500,
                   actor: str = "cli") -> dict[str, Any]:
        """Re-evaluate every version with the policy of ``deciders``, reusing stored evidence.

        No cryptography is redone: signature facts are read from the evidence rows, and every
        decision comes from :func:`cortex_trust.engine.decide` in the engine processes of ``deciders``. This
        process reads batches of ``batch`` versions (seven queries per batch: versions, their
        evidence, promotions and disputes, their reviews, their usage in two) and stores each finished batch with one
        executemany UPDATE while the deciders evaluate the next ones; the plugin documents are
        recomputed from the new tiers at the end (one more executemany). Every new decision gets
        its receipt (:mod:`registry._receipts`), inserted with the batch.

        One transaction, holding the write lock for the whole run (other writes wait): a crash
        or an error midway rolls everything back, so a half-done run is never visible and never
        audited. Returns counts: ``versions``, ``changed`` (tier or action differs),
        ``failed`` (versions the engine could not decide: blocked fail-closed),
        ``policy_revision``. Raises :class:`~registry._retier.RetierFailed` (nothing stored)
        when stored facts do not validate, :class:`Unavailable` when the database fails.
        """
        stats = deciders.stats
        deciders.start()  # the engines load the policies before the write lock is taken
        with self._write() as tx:
            conn = tx.session.connection()
            cpu = time.process_time()
            rewrite = _Rewrite(conn, _plugins(conn), seal=self.receipt_issuer.seal, now=now)
            stats.main_read_cpu += time.process_time() - cpu
            for job, outcomes in deciders.run(self._jobs(conn, rewrite.plugins, batch, stats), now=now):
                cpu = time.process_time()
                rewrite.add(job.keys, outcomes)
                stats.main_write_cpu += time.process_time() - cpu
            cpu = time.process_time()
            result = rewrite.finish(tx, actor=actor, now=now, revision=deciders.revision)
            stats.main_write_cpu += time.process_time() - cpu
        return result

    def retier_preview(self, *, now: datetime, deciders: LocalDeciders,
                       batch: int = 500) -> Iterator[tuple[str, str, str, str, Outcome]]:
        """What :meth:`retier_all` with ``deciders`` would decide at ``now``, writing nothing.

        Yields ``(plugin key, version, state, stored decision JSON, new outcome)`` for every
        version, batch by batch, from one read transaction that stays open until the iterator is
        exhausted or closed. Inputs, decisions and fail-closed blocks are exactly those of
        :meth:`retier_all` (the same batches on the same deciders); no write lock is taken and no
        audit entry is made. Raises :class:`~registry._retier.RetierFailed` when stored facts do
        not validate, :class:`Unavailable` when the database fails.
        """
        deciders.start()
        with db_unavailable(), self.engine.connect() as conn, conn.begin():
            plugins = _plugins(conn)
            for job, outcomes in deciders.run(self._jobs(conn, plugins, batch, deciders.stats,
                                                     decisions=True), now=now):
                for (_, pid, version, state, _, _, stored), out in zip(job.keys, outcomes,
                                                                       strict=True):
                    yield plugins[pid][3], version, state, stored, out

    def _jobs(self, conn: Any, plugins: dict[int, Any], batch: int, stats: Any, *,
              decisions: bool = False) -> Iterator[Job]:
        """The versions in id order, ``batch`` at a time, with their stored facts: one
        :class:`~registry._retier.Job` each, keyed ``(id, plugin id, version, state, tier,
        action, stored decision JSON or None)`` (the decision is read when ``decisions``)."""
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        stored = (pv.c.decision_json,) if decisions else ()
        last = 0
        while True:
            cpu = time.process_time()
            rows = conn.execute(
                core_select(pv.c.id, pv.c.plugin_id, pv.c.tier, pv.c.action,
                            *(pv.c[name] for name in ITEM_COLUMNS), *stored)
                .where(pv.c.id > last).order_by(pv.c.id).limit(batch)).all()
            if not rows:
                return
            first, last = last, rows[-1][0]

            # Ids are a contiguous key range: the facts of the batch are a range scan.
            def in_batch(c: Any, lo: int = first, hi: int = last) -> Any:
                return (c > lo) & (c <= hi)

            job = self._job(conn, plugins, rows, in_batch, decisions=decisions)
            stats.main_read_cpu += time.process_time() - cpu
            yield job

    def _jobs_for_ids(self, conn: Any, plugins: dict[int, Any], ids: list[int]) -> Job:
        """The versions ``ids`` (those that exist, in id order) with their stored facts, as one
        :class:`~registry._retier.Job` keyed like :meth:`_jobs`' batches."""
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        rows = conn.execute(
            core_select(pv.c.id, pv.c.plugin_id, pv.c.tier, pv.c.action,
                        *(pv.c[name] for name in ITEM_COLUMNS))
            .where(pv.c.id.in_(ids)).order_by(pv.c.id)).all() if ids else []
        return self._job(conn, plugins, rows, lambda c: c.in_(ids), decisions=False)

    def _job(self, conn: Any, plugins: dict[int, Any], rows: Sequence[Any], where: Callable[[Any], Any], *,
             decisions: bool) -> Job:
        """``rows`` (id, plugin, tier, action, the item columns[, decision]) with the facts
        ``where`` selects, as one :class:`~registry._retier.Job`."""
        from .._retier import Job

        latest, usage = self._facts(conn, where, {r[0]: r[_DIGEST] for r in rows})
        bundles = self._bundle_digests(conn, [r[0] for r in rows])
        keys: list[tuple[int, int, str, str, str, str, str | None]] = []
        items: list[Item] = []
        # Unpacked by position: a SQL row's attributes by name cost microseconds.
        for vid, pid, tier, action, *columns in rows:
            plugin = plugins[pid]
            item = item_from_row(columns[:_ITEMS], namespace=plugin[1], name=plugin[2],
                                 evidence=latest.get(vid), usage=usage.get(vid),
                                 bundle_sha256=bundles.get(vid))
            keys.append((vid, pid, item.version, item.state, tier, action,
                         columns[_ITEMS] if decisions else None))
            items.append(item)
        return Job(keys, items)


class _Rewrite:
    """The write side of a re-tier, inside one write transaction: every version's new decision,
    documents, page fragment and sealed receipt batch by batch (one executemany each), then the
    plugin documents and page fragments and the one ``catalogue.retier`` audit entry."""

    def __init__(self, conn: Any, plugins: dict[int, Any], *, seal: Callable[[bytes], str],
                 now: datetime) -> None:
        self.conn = conn
        self.plugins = plugins
        self.seal = seal
        self.decided_at = format_time(now)
        self.versions_of: dict[int, list[tuple[str, str, str, str]]] = {pid: [] for pid in plugins}
        # The hot write goes to the driver's executemany with positional tuples: a parameter
        # dict per row, processed by SQLAlchemy, would cost more than the UPDATE itself.
        qmark = conn.dialect.paramstyle == "qmark"
        self.store = _RETIER_UPDATE if qmark else _RETIER_UPDATE.replace("?", "%s")
        self.insert_receipts = _RECEIPT_INSERT if qmark else _RECEIPT_INSERT.replace("?", "%s")
        # Written without the ORM: the log's effects are recorded here (every version's
        # decision and documents are rewritten).
        self.rewritten: dict[str, Any] = {}
        self.changed = self.total = self.failed = 0
        self.revision = ""

    def add(self, keys: Sequence[Sequence[Any]], outcomes: Sequence[Outcome]) -> None:
        """Store ``outcomes``, one per key ``(id, plugin id, version, state, tier, action, ...)``."""
        params = [(out.tier, out.action, out.policy_revision, out.decision_json, out.summary_json,
                   out.document_json, version_page_of(out), key[0]) for key, out in zip(keys, outcomes, strict=True)]
        receipts = [(key[0], self.decided_at, self.seal(out.receipt)) for key, out in zip(keys, outcomes, strict=True)]
        self.note(keys, outcomes)
        if params:
            self.conn.exec_driver_sql(self.store, params)
            self.conn.exec_driver_sql(self.insert_receipts, receipts)

    def note(self, keys: Sequence[Sequence[Any]], outcomes: Sequence[Outcome]) -> None:
        """Count ``outcomes`` (one per key, as :meth:`add` takes them) into the run's result, its
        audit effects and the plugin documents, for versions whose rows and receipts the caller
        writes itself."""
        for (_, pid, version, state, tier, action, *_), out in zip(keys, outcomes, strict=True):
            # Only what re-tiering changes (the log merges it over the row's fields).
            self.rewritten[f"{self.plugins[pid][3]}@{version}"] = {
                "tier": out.tier, "action": out.action, "rendered": rendered_hash(
                    decision_json=out.decision_json, summary_json=out.summary_json,
                    document_json=out.document_json)}
            self.changed += (out.tier, out.action) != (tier, action)
            self.failed += out.failed
            self.versions_of[pid].append((version, state, out.tier, out.action))
            self.revision = out.policy_revision
        self.total += len(outcomes)

    def finish(self, tx: Any, *, actor: str, now: datetime, revision: str) -> dict[str, Any]:
        """Rewrite every plugin's documents and page fragment from the versions added (every
        version of the catalogue) and audit the run; returns its counts."""
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        listed: dict[int, list[VersionRow]] = {pid: [] for pid in self.plugins}
        for pid, *row in self.conn.execute(core_select(pv.c.plugin_id, *(pv.c[c] for c in PAGE_COLUMNS))):
            listed[pid].append(tuple(row))
        plugin_params = []
        for pid, p in self.plugins.items():
            latest_version, tier, action, summary, document = plugin_documents(
                namespace=p[1], name=p[2], key=p[3], description=p[4],
                capabilities_json=p[5], updated_at=p[6], versions=self.versions_of[pid])
            page = stored(lambda p=p, pid=pid: plugin_fragment(  # type: ignore[misc]
                namespace=p[1], name=p[2], description=p[4], versions=listed[pid]))
            plugin_params.append({"b_id": pid, "latest_version": latest_version,
                                  "tier": tier, "action": action, "summary_json": summary,
                                  "document_json": document, "page_html": page})
        if plugin_params:
            pt = Plugin.__table__  # type: ignore[attr-defined]
            self.conn.execute(update(pt).where(pt.c.id == bindparam("b_id")), plugin_params)
        result = {"versions": self.total, "changed": self.changed, "failed": self.failed,
                  "policy_revision": self.revision or revision}
        tx.audit(actor=actor, action="catalogue.retier", target="*", before=None,
                 after=result, now=now, effects={"plugin_version": self.rewritten})
        return result


def version_page_of(out: Outcome) -> str:
    """The version page fragment of ``out``: as decided, or rendered now for a decision staged
    before pages were stored."""
    return out.page_html if out.page_html is not None else stored(lambda: version_fragment(out.document_json))


def _plugins(conn: Any) -> dict[int, Any]:
    """Every plugin row by id: ``(id, namespace, name, key, description, capabilities_json,
    updated_at)``."""
    pt = Plugin.__table__  # type: ignore[attr-defined]
    return {r[0]: r for r in conn.execute(
        core_select(pt.c.id, pt.c.namespace, pt.c.name, pt.c.key, pt.c.description,
                    pt.c.capabilities_json, pt.c.updated_at)).all()}
