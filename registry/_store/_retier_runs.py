"""Re-tier runs decided by batch jobs on any number of machines (see :mod:`registry._jobs`).

A run is all or nothing, as :meth:`~registry._store._retier.Retiering.retier_all` is, without
holding the write lock while its versions are decided:

* :meth:`RetierRuns.retier_start` records the run (its policy set, decision time and the audit
  head) in one audited write and returns its versions in batches of ids;
* :meth:`RetierRuns.retier_decide` decides one batch with the run's policy and stages the
  outcomes in ``retier_result`` with their sealed receipts (one row per run and version: a
  batch that is run again skips what is already staged, so no version is decided twice).
  Staging is not visible to any reader and changes no tracked table: it is written outside the
  audit lock;
* :meth:`RetierRuns.retier_apply`, once every version is staged, switches the whole run in one
  write: every version decided meanwhile by a write audited after the run started (a publish,
  a review, a revocation...) is decided again with the run's policy from its current facts
  before the switch, so a staged decision never overwrites newer facts; a write that could touch
  versions it does not name (another re-tier) discards the run instead. Every staged receipt is
  checked against its row, then the staged rows are copied in two statements (versions and
  receipts), inside the database;
* :meth:`RetierRuns.retier_discard` ends a run that failed or was cancelled: its staged rows are
  deleted and nothing else changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from sqlalchemy import Text, cast, delete, insert, literal, select, update
from sqlalchemy import func as sql_func

from cortex_trust.errors import InputError
from cortex_trust.policy import RECEIPT_PAYLOAD_TYPE, RECEIPT_TYPE, PolicySet, format_time

from .._models import AuditEntry, DecisionReceipt, PluginVersion, RetierResult, RetierRun
from ._retier import Retiering, _plugins, _Rewrite, version_page_of
from ._tx import db_unavailable

if TYPE_CHECKING:
    from securesystemslib.signer import Key

    from .._retier import Decider

__all__ = ["RetierRuns", "TamperedRun", "UnknownRun", "VersionsGone"]

#: Audit targets of writes that change no version's facts.
_NO_VERSION_FACTS = ("token:", "publisher:", "namespace:", "scan:", "retier:")


class UnknownRun(InputError):
    """A job names a re-tier run this registry does not hold."""


class VersionsGone(InputError):
    """A batch names versions that are no longer in the registry."""


class TamperedRun(InputError):
    """A run's staged decisions do not match their versions or the run's policy."""


#: How long after its decision time a run may still be switched; an older run is discarded.
MAX_RUN_AGE = timedelta(days=1)


class RetierRuns(Retiering):
    """Re-tier runs: start, decide batches, apply in one switch, discard."""

    def retier_start(self, *, policy_set: PolicySet, now: datetime, actor: str = "cli",
                     batch: int = 1000) -> tuple[str, list[list[int]]]:
        """Record a run deciding every version at ``now`` with ``policy_set``; returns its id and
        its version ids in batches of ``batch``."""
        from .._retier import policy_to_json

        run_id = str(uuid.uuid4())
        ts = format_time(now)
        policy_json = policy_to_json(policy_set)
        with self._write() as tx:
            s = tx.session
            pv = PluginVersion.__table__  # type: ignore[attr-defined]
            ids = list(s.connection().execute(select(pv.c.id).order_by(pv.c.id)).scalars())
            batches = [ids[i:i + batch] for i in range(0, len(ids), max(1, batch))]
            s.add(RetierRun(id=run_id, state="running", policy_json=policy_json,
                            policy_revision=policy_set.revision[:128], registry_name=self.registry_name,
                            decided_at=ts, start_seq=tx.head.seq, max_version_id=ids[-1] if ids else 0,
                            total=len(ids), batches=len(batches), actor=actor[:128],
                            created_at=ts, updated_at=ts))
            tx.audit(actor=actor, action="catalogue.retier.start", target=f"retier:{run_id}",
                     before=None, after={"versions": len(ids), "batches": len(batches),
                                         "policy_revision": policy_set.revision,
                                         "policy_sha256": hashlib.sha256(policy_json.encode()).hexdigest()},
                     now=now)
        return run_id, batches

    def retier_get(self, run_id: str) -> RetierRun:
        """The run ``run_id``; raises :class:`UnknownRun`."""
        with db_unavailable(), self._read() as s:
            run = s.get(RetierRun, run_id)
        if run is None:
            raise UnknownRun(f"no re-tier run {run_id!r} in this registry",
                             advice="list the runs' jobs with `cortex registry jobs`")
        return run

    def retier_policy(self, run_id: str) -> tuple[PolicySet, datetime]:
        """The policy set and decision time of run ``run_id``; raises
        :class:`~cortex_trust.errors.PolicyError` (a final failure: the run is discarded) when the
        stored policy's modules and data do not have the run's revision."""
        from .._retier import policy_from_json

        run = self.retier_get(run_id)
        return policy_from_json(run.policy_json, revision=run.policy_revision), _parse_time(run.decided_at)

    def retier_progress(self, run_id: str) -> dict[str, Any]:
        """``state``, ``total``, ``decided`` (staged so far), ``error`` and, once applied, the
        run's counts as ``result``."""
        run = self.retier_get(run_id)
        rr = RetierResult.__table__  # type: ignore[attr-defined]
        with db_unavailable(), self.engine.connect() as conn:
            decided = conn.execute(select(sql_func.count()).select_from(rr)
                                   .where(rr.c.run_id == run_id)).scalar_one()
        return {"run": run_id, "state": run.state, "total": run.total,
                "decided": run.total if run.state == "applied" else decided,
                "error": run.error, "result": json.loads(run.result_json) if run.result_json else None}

    def retier_decide(self, run_id: str, version_ids: list[int], *, decider: Decider) -> int:
        """Decide and stage the versions ``version_ids`` of run ``run_id`` with ``decider`` (built on
        the run's policy); returns how many were decided now (0 when the run has ended or they
        are all staged already). Raises :class:`UnknownRun`, :class:`VersionsGone` (a version
        is no longer in the registry), :class:`~registry._retier.RetierFailed` (stored facts
        that do not validate)."""
        run = self.retier_get(run_id)
        if run.state != "running":
            return 0
        if decider.revision != run.policy_revision:
            raise InputError("the policy engine was not built on this run's policy",
                             advice="report this as a cortex-trust bug")
        outside = sorted(i for i in version_ids if not 0 < i <= run.max_version_id)
        if outside:
            raise InputError(f"re-tier run {run_id}: version id(s) {outside[:10]} are not part of the run",
                             advice="cancel this job (`cortex registry jobs --cancel ID`); the run's own "
                                    "batches cover every version it decides")
        rr = RetierResult.__table__  # type: ignore[attr-defined]
        with db_unavailable(), self.engine.connect() as conn, conn.begin():
            staged = set(conn.execute(select(rr.c.version_id).where(
                (rr.c.run_id == run_id) & rr.c.version_id.in_(version_ids))).scalars())
            todo = sorted(set(version_ids) - staged)
            if not todo:
                return 0
            plugins = _plugins(conn)
            job = self._jobs_for_ids(conn, plugins, todo)
        gone = sorted(set(todo) - {k[0] for k in job.keys})
        if gone:
            raise VersionsGone(f"re-tier run {run_id}: version id(s) {gone[:10]} are no longer in the registry",
                               advice="cancel the run (`cortex registry jobs --cancel ID`) and start "
                                      "another re-tier")
        outcomes = decider.decide(job, now=_parse_time(run.decided_at))
        seal = self.receipt_issuer.seal
        # Staged with its receipt sealed here, in the deciding process: the switch copies it.
        rows = [{"run_id": run_id, "version_id": key[0], **out._replace(receipt=seal(out.receipt).encode())._asdict()}
                for key, out in zip(job.keys, outcomes, strict=True)]
        # Batches of one run are staged side by side: on SQLite this transaction takes the write
        # lock first (BEGIN IMMEDIATE), so its read and its insert see one state.
        with db_unavailable(), self._write_engine.connect() as conn, conn.begin():
            # A batch that ran twice at once (a stalled worker that came back) stages each
            # version once: the second writer's rows for staged versions are dropped here.
            again = set(conn.execute(select(rr.c.version_id).where(
                (rr.c.run_id == run_id) & rr.c.version_id.in_(todo))).scalars())
            rows = [r for r in rows if r["version_id"] not in again]
            if rows:
                conn.execute(insert(rr), rows)
        return len(rows)

    def retier_apply(self, run_id: str, *, decider: Decider, actor: str | None = None,
                     now: datetime | None = None) -> dict[str, Any] | None:
        """Switch run ``run_id`` in one write once every version is staged; returns the run's
        counts (``versions``, ``changed``, ``failed``, ``policy_revision``), or None when versions
        are still to be decided or the run has ended (applied by another job, or discarded).

        A run decided more than :data:`MAX_RUN_AGE` before ``now`` (default: the current time)
        is discarded instead: its decisions, and those of versions decided again at the switch,
        would be made at a time long past. Every staged receipt must be a receipt envelope whose
        payload names its version (plugin, version, digest), the staged tier and action and the
        run's policy revision, else :class:`TamperedRun` is raised before the staged rows are
        copied, and nothing of the switch's transaction is kept (the caller discards the run: it
        is a final failure)."""
        progress = self.retier_progress(run_id)
        if progress["state"] != "running" or progress["decided"] < progress["total"]:
            return None
        current = datetime.now(UTC) if now is None else now
        now = _parse_time(self.retier_get(run_id).decided_at)
        if current - now > MAX_RUN_AGE:
            self.retier_discard(run_id, state="failed", now=current, actor=actor or "worker",
                                reason=f"the run was decided at {format_time(now)}, more than {MAX_RUN_AGE} ago: "
                                       "start another re-tier")
            return None
        rr = RetierResult.__table__  # type: ignore[attr-defined]
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        with self._write() as tx:
            s = tx.session
            run = s.get(RetierRun, run_id, with_for_update=True)
            if run is None or run.state != "running":
                tx.skip_audit()
                return None
            conn = s.connection()
            stale = self._changed_since(conn, run)
            if stale is None:
                run.state, run.error = "failed", "the catalogue was re-tiered while this run was deciding"
                run.updated_at = format_time(now)
                s.add(run)
                conn.execute(delete(rr).where(rr.c.run_id == run_id))
                tx.audit(actor=actor or run.actor, action="catalogue.retier.discard", target=f"retier:{run_id}",
                         before=None, after={"state": run.state, "error": run.error}, now=now)
                return None
            rewrite = _Rewrite(conn, _plugins(conn), seal=self.receipt_issuer.seal, now=now)
            # Versions written since the run started (or published after it): decided again now,
            # their staged decisions dropped.
            stale |= set(conn.execute(select(pv.c.id).where(pv.c.id > run.max_version_id)).scalars())
            ordered = sorted(stale)
            for i in range(0, len(ordered), 1000):
                conn.execute(delete(rr).where((rr.c.run_id == run_id) & rr.c.version_id.in_(ordered[i:i + 1000])))
            if stale:
                job = self._jobs_for_ids(conn, rewrite.plugins, ordered)
                rewrite.add(job.keys, decider.decide(job, now=now))
            for keys, outcomes in self._staged(conn, run_id, skip=stale, revision=run.policy_revision):
                rewrite.note(keys, outcomes)
                # Staged before pages were stored: rendered now, copied with the rest.
                for key, out in zip(keys, outcomes, strict=True):
                    if out.page_html is None:
                        conn.execute(update(rr).where((rr.c.run_id == run_id) & (rr.c.version_id == key[0]))
                                     .values(page_html=version_page_of(out)))
            self._copy_staged(conn, run_id, decided_at=rewrite.decided_at)
            result = rewrite.finish(tx, actor=actor or run.actor, now=now, revision=run.policy_revision)
            conn.execute(delete(rr).where(rr.c.run_id == run_id))
            run.state, run.result_json = "applied", json.dumps(result)
            run.updated_at = format_time(now)
            s.add(run)
        return result

    def retier_discard(self, run_id: str, *, state: str, reason: str, now: datetime, actor: str = "cli") -> bool:
        """End run ``run_id`` as ``state`` (``failed`` or ``cancelled``) with ``reason``; its staged
        decisions are deleted. Returns False when the run had already ended."""
        rr = RetierResult.__table__  # type: ignore[attr-defined]
        with self._write() as tx:
            s = tx.session
            run = s.get(RetierRun, run_id, with_for_update=True)
            if run is None:
                raise UnknownRun(f"no re-tier run {run_id!r} in this registry",
                                 advice="list the runs' jobs with `cortex registry jobs`")
            if run.state != "running":
                tx.skip_audit()
                return False
            run.state, run.error, run.updated_at = state, reason[:2000], format_time(now)
            s.add(run)
            s.connection().execute(delete(rr).where(rr.c.run_id == run_id))
            tx.audit(actor=actor, action="catalogue.retier.discard", target=f"retier:{run_id}",
                     before=None, after={"state": state, "error": run.error}, now=now)
        return True

    def retier_note_error(self, run_id: str, error: str) -> None:
        """Record the last error a batch of run ``run_id`` raised (shown by ``cortex registry
        jobs``); bookkeeping of a running run, outside the audit lock like its staged rows."""
        rt = RetierRun.__table__  # type: ignore[attr-defined]
        with db_unavailable(), self.engine.begin() as conn:
            conn.execute(rt.update().where((rt.c.id == run_id) & (rt.c.state == "running"))
                         .values(error=error[:2000]))

    @staticmethod
    def _copy_staged(conn: Any, run_id: str, *, decided_at: str) -> None:
        """Write every staged decision of run ``run_id`` into its version and add its sealed
        receipt (decided at ``decided_at``), in id order: two statements run by the database."""
        rr = RetierResult.__table__  # type: ignore[attr-defined]
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        dr = DecisionReceipt.__table__  # type: ignore[attr-defined]
        staged = (rr.c.run_id == run_id) & (rr.c.version_id == pv.c.id)
        conn.execute(update(pv).where(staged).values(
            {pv.c[name]: rr.c[name] for name in ("tier", "action", "policy_revision", "decision_json",
                                                 "summary_json", "document_json", "page_html")}))
        envelope = (sql_func.convert_from(rr.c.receipt, "UTF8") if conn.dialect.name == "postgresql"
                    else cast(rr.c.receipt, Text))
        conn.execute(insert(dr).from_select(
            ["version_id", "decided_at", "envelope_json"],
            select(rr.c.version_id, literal(decided_at, Text), envelope).join(pv, staged)
            .order_by(rr.c.version_id)))

    def _changed_since(self, conn: Any, run: RetierRun) -> set[int] | None:
        """Ids of the versions whose facts writes audited after the run started may have
        changed; None when such a write may have changed versions it does not name (another
        re-tier, or a target this registry does not know: never assumed harmless)."""
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        ae = AuditEntry.__table__  # type: ignore[attr-defined]
        # Entry ids start at 1: the run's own start entry is start_seq + 1.
        targets = set(conn.execute(select(ae.c.target).where(ae.c.id > run.start_seq)).scalars())
        ids: set[int] = set()
        keys = {pid: p[3] for pid, p in _plugins(conn).items()}
        by_key = {key: pid for pid, key in keys.items()}
        for target in targets:
            if target.startswith(_NO_VERSION_FACTS):
                continue
            if target.startswith("digest:"):
                where = pv.c.digest == target[len("digest:"):]
            elif target.startswith("identity:"):
                identity, sep, issuer = target[len("identity:"):].rpartition("|")
                if not sep or "|" in identity or "|" in issuer:  # not one identity|issuer pair
                    return None
                where = pv.c.signer_identity == identity
            elif target.partition("@")[0] in by_key:  # a plugin, or one of its versions
                key, _, version = target.partition("@")
                where = pv.c.plugin_id == by_key[key]
                if version:
                    where = where & (pv.c.version == version)
            else:
                return None
            ids |= set(conn.execute(select(pv.c.id).where(where)).scalars())
        return ids

    def _staged(self, conn: Any, run_id: str, *, skip: set[int], revision: str,
                batch: int = 1000) -> Iterator[tuple[list[tuple[Any, ...]], list[Any]]]:
        """The run's staged outcomes with their versions' keys, ``batch`` at a time, in id
        order, without the versions in ``skip``. Raises :class:`TamperedRun` for a batch with a
        receipt that is not signed by the registry's receipt key or does not match its version,
        its staged decision or ``revision`` (before the batch is yielded)."""
        from .._reevaluate import Outcome

        rr = RetierResult.__table__  # type: ignore[attr-defined]
        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        plugins = _plugins(conn)
        signer = self.receipt_issuer.signer
        key = None if signer is None else signer.public_key
        last = 0
        while True:
            rows = conn.execute(
                select(pv.c.id, pv.c.plugin_id, pv.c.version, pv.c.state, pv.c.tier, pv.c.action,
                       rr.c.tier, rr.c.action, rr.c.policy_revision, rr.c.decision_json,
                       rr.c.summary_json, rr.c.document_json, rr.c.failed, rr.c.receipt, pv.c.digest,
                       rr.c.page_html)
                .join(rr, (rr.c.version_id == pv.c.id) & (rr.c.run_id == run_id))
                .where(pv.c.id > last).order_by(pv.c.id).limit(batch)
                # Locked until the switch commits: the copy writes the staged rows checked here.
                .with_for_update(of=rr)).all()
            if not rows:
                return
            last = rows[-1][0]
            kept = [r for r in rows if r[0] not in skip]
            for r in kept:
                _check_receipt(r[13], key=key, run_id=run_id, plugin=plugins[r[1]][3], version=r[2], digest=r[14],
                               tier=r[6], action=r[7], revision=revision, staged_revision=r[8])
            yield [tuple(r[:6]) for r in kept], [Outcome._make((*r[6:12], bool(r[12]), r[13], r[15])) for r in kept]


def _check_receipt(envelope: bytes, *, key: Key | None, run_id: str, plugin: str, version: str, digest: str,
                   tier: str, action: str, revision: str, staged_revision: str) -> None:
    """Raise :class:`TamperedRun` unless the staged receipt ``envelope`` is a receipt envelope
    signed by ``key`` (``None``: unsigned, the registry has no receipt key) whose payload is a
    receipt statement of ``plugin`` ``version`` ``digest`` deciding ``tier`` / ``action`` under
    ``revision`` (the staged row's revision too)."""
    try:
        sealed = json.loads(envelope)
        if sealed["payloadType"] != RECEIPT_PAYLOAD_TYPE or not isinstance(sealed["signatures"], list):
            raise ValueError("not a receipt envelope")
        if key is None:
            if sealed["signatures"]:
                raise ValueError("a signed receipt on a registry that signs none")
        else:
            Envelope.from_dict(sealed).verify([key], 1)
        statement = json.loads(base64.b64decode(sealed["payload"], validate=True))
        subject, decision = statement["subject"], statement["decision"]
        ok = (isinstance(statement, dict) and statement.get("_type") == RECEIPT_TYPE
              and subject == {"plugin": plugin, "version": version, "digest": digest}
              and (decision["tier"], decision["action"]) == (tier, action)
              and statement["policy_revision"] == revision == staged_revision
              and decision.get("policy_revision") == revision)
    except (ValueError, TypeError, KeyError, AttributeError, VerificationError):
        ok = False
    if not ok:
        raise TamperedRun(f"re-tier run {run_id}: the staged receipt of {plugin}@{version} does not match its "
                          "version, its decision or the run's policy revision",
                          advice="the staged decisions were modified: the run is discarded, start another re-tier")


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

