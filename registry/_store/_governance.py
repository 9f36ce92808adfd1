"""Governance writes: promotion pull requests, disputes, processed webhook deliveries.

What GitHub reported is established before the transaction (:mod:`registry._governance` reads
it); here it is stored, the affected versions are re-evaluated in the same transaction, and the
change is one audit entry (``version.promote``, ``version.promotion``, ``plugin.dispute``,
``plugin.dispute.update``). A report that changes nothing writes no entry (the time of the check
is bookkeeping). A webhook delivery id is claimed in the transaction that applies it, so a
replayed delivery is never applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cortex_trust.policy import format_time
from cortex_trust.sources import GitHubIssue, GitHubPull

from .._documents import dumps
from .._errors import Conflict, NotFound
from .._models import Dispute, Plugin, PluginVersion, Promotion, WebhookDelivery
from ._governance_facts import dispute_record
from ._rows import Evaluator, VersionRows
from ._tokens import Principal
from ._tx import Tx, not_found

__all__ = ["GovernanceWrites", "PromotionFacts", "Watched"]


@dataclass(frozen=True)
class PromotionFacts:
    """A promotion pull request as GitHub last reported it: the pull request, the digest its
    head's index entry names, and each account's current review
    (``cortex_trust.policy.PromotionReview`` dicts)."""

    pull: GitHubPull
    head_digest: str | None
    reviews: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Watched:
    """An open promotion or dispute to refresh from GitHub: its row id and issue number, and
    for a promotion the version's digest and index entry path at the pull request's head."""

    id: int
    number: int
    key: str
    digest: str | None = None


class GovernanceWrites(VersionRows):
    """Promotions, disputes and webhook deliveries."""

    # ------------------------------------------------------------------ promotions

    def promotion_document(self, namespace: str, name: str, version: str) -> bytes:
        """The version's promotion (:class:`~cortex_trust.sources.PromotionDoc`). Raises
        :class:`NotFound` (``NO_PROMOTION`` when none was requested)."""
        with self._read() as s:
            plugin, row = self._get_version(s, namespace, name, version)
            promo = s.exec(select(Promotion).where(Promotion.version_id == row.id)).first()
            if promo is None:
                raise NotFound("NO_PROMOTION", f"no promotion was requested for {plugin.key}@{version}",
                               advice=f"request one with `cortex plugin promote {plugin.key}@{version}`")
            return _promotion_doc(plugin, row, promo, created=False).encode()

    def existing_promotion(self, namespace: str, name: str, version: str) -> tuple[str, bytes | None]:
        """The version's digest, and its promotion document when one exists. Raises
        :class:`NotFound`, or :class:`Conflict` (``VERSION_REVOKED``) for a revoked version."""
        with self._read() as s:
            plugin, row = self._get_version(s, namespace, name, version)
            if row.state == "revoked":
                raise Conflict("VERSION_REVOKED", f"{plugin.key}@{version} is revoked and cannot be promoted",
                               advice="publish a new version")
            promo = s.exec(select(Promotion).where(Promotion.version_id == row.id)).first()
            return row.digest, None if promo is None else _promotion_doc(plugin, row, promo, created=False).encode()

    def record_promotion(self, namespace: str, name: str, version: str, *, digest: str,
                         repository: str, branch: str, facts: PromotionFacts,
                         principal: Principal, now: datetime, evaluate: Evaluator) -> bytes:
        """Store the promotion pull request of a version and re-evaluate it. A version has one
        promotion: when one was stored meanwhile, that one is returned and nothing changes.
        Raises :class:`Conflict` (``DIGEST_MISMATCH``) if the version's digest is not ``digest``."""
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            if row.digest != digest:
                raise Conflict("DIGEST_MISMATCH", f"the promotion is for {digest}, the version is {row.digest}",
                               advice="retry the promotion")
            promo = s.exec(select(Promotion).where(Promotion.version_id == row.id)).first()
            if promo is not None:
                tx.skip_audit()
                return _promotion_doc(plugin, row, promo, created=False).encode()
            assert row.id is not None
            before = {"tier": row.tier, "action": row.action}
            promo = Promotion(version_id=row.id, digest=digest, repository=repository, branch=branch,
                              requested_by=principal.actor, checked_at=ts, number=facts.pull.number,
                              url=facts.pull.url, state="open", opened_at=facts.pull.created_at)
            _apply_promotion(promo, facts)
            s.add(promo)
            self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="version.promote", target=f"{plugin.key}@{version}",
                     before=before, after={**_promotion_audit(promo), "tier": row.tier, "action": row.action},
                     now=now)
            return _promotion_doc(plugin, row, promo, created=True).encode()

    def watched_promotions(self, *, limit: int, checked_before: str | None = None,
                           number: int | None = None) -> list[Watched]:
        """Promotions to refresh: pull request ``number``'s, or the open ones (and merged ones
        whose reviews may still change nothing) least recently checked, at most ``limit``."""
        with self._read() as s:
            q = (select(Promotion, Plugin.key, PluginVersion.version)
                 .join(PluginVersion, col(PluginVersion.id) == col(Promotion.version_id))
                 .join(Plugin, col(Plugin.id) == col(PluginVersion.plugin_id)))
            rows = s.exec(_watching(q, Promotion, number=number, checked_before=checked_before,
                                    limit=limit)).all()
            return [Watched(p.id, p.number, f"{key}@{version}", p.digest) for p, key, version in rows
                    if p.id is not None]

    def update_promotion(self, promotion_id: int, *, facts: PromotionFacts, now: datetime,
                         evaluate: Evaluator, delivery: tuple[str, str] | None = None) -> bool:
        """Store what GitHub reports now about a promotion; when it changed, re-evaluate the
        version and audit the change. ``delivery`` (id, event) is claimed in the same
        transaction; an already processed one changes nothing. Returns whether anything changed."""

        def changed(tx: Tx, promo: Promotion, before: dict[str, Any], after: dict[str, Any]) -> None:
            s = tx.session
            row = s.get(PluginVersion, promo.version_id)
            assert row is not None
            plugin = s.get(Plugin, row.plugin_id)
            assert plugin is not None
            tier = {"tier": row.tier, "action": row.action}
            self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor="github", action="version.promotion", target=f"{plugin.key}@{row.version}",
                     before={**before, **tier}, after={**after, "tier": row.tier, "action": row.action},
                     now=now)

        return self._refresh(Promotion, promotion_id, lambda p: _apply_promotion(p, facts), _promotion_audit,
                             changed, now=now, delivery=delivery)

    def _refresh(self, model: Any, row_id: int, apply: Callable[[Any], None],
                 audited: Callable[[Any], dict[str, Any]],
                 changed: Callable[[Tx, Any, dict[str, Any], dict[str, Any]], None], *,
                 now: datetime, delivery: tuple[str, str] | None) -> bool:
        """The one refresh of a tracked promotion or dispute: claim ``delivery``, ``apply`` what
        GitHub reports to the row, record the check's time, and when the ``audited`` view
        changed call ``changed`` (re-evaluate, audit). Returns whether anything changed."""
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            if delivery is not None and not _claim(s, delivery, ts):
                tx.skip_audit()
                return False
            row = s.get(model, row_id)
            if row is None:
                raise NotFound("GOVERNANCE_ROW_GONE", f"the {model.__tablename__} no longer exists", advice="retry")
            before = audited(row)
            apply(row)
            row.checked_at = ts
            s.add(row)
            after = audited(row)
            if after == before:
                tx.skip_audit()
                return False
            changed(tx, row, before, after)
            return True

    # -------------------------------------------------------------------- disputes

    def disputes_document(self, namespace: str, name: str) -> bytes:
        """Every dispute of a plugin, oldest first (:class:`~cortex_trust.sources.DisputeList`)."""
        with self._read() as s:
            plugin = s.exec(select(Plugin).where(Plugin.key == f"{namespace}/{name}")).first()
            if plugin is None:
                raise not_found(namespace, name)
            return dumps({"items": _dispute_docs(s, plugin)}).encode()

    def record_dispute(self, namespace: str, name: str, version: str | None, *, repository: str,
                       facts: GitHubIssue, actor: str, now: datetime, evaluate: Evaluator,
                       delivery: tuple[str, str] | None = None) -> bytes:
        """Record issue ``facts.number`` of ``repository`` as a dispute of the plugin (or of one
        version) and re-evaluate what it covers. Recording an issue again returns the plugin's
        disputes and changes nothing. Returns the plugin's disputes document."""
        ts = format_time(now)
        try:
            with self._write() as tx:
                s = tx.session
                if delivery is not None and not _claim(s, delivery, ts):
                    tx.skip_audit()
                    plugin = s.exec(select(Plugin).where(Plugin.key == f"{namespace}/{name}")).first()
                    return dumps({"items": _dispute_docs(s, plugin) if plugin else []}).encode()
                plugin = s.exec(select(Plugin).where(Plugin.key == f"{namespace}/{name}")).first()
                if plugin is None:
                    raise not_found(namespace, name)
                row = None
                if version is not None:
                    plugin, row = self._get_version(s, namespace, name, version)
                existing = s.exec(select(Dispute).where(Dispute.repository == repository,
                                                        Dispute.number == facts.number)).first()
                if existing is not None:
                    tx.skip_audit()
                    return dumps({"items": _dispute_docs(s, plugin)}).encode()
                assert plugin.id is not None
                dispute = Dispute(plugin_id=plugin.id, version_id=row.id if row else None,
                                  repository=repository, number=facts.number, url=facts.url,
                                  state="open", opened_at=facts.created_at, recorded_by=actor,
                                  checked_at=ts)
                _apply_dispute(dispute, facts)
                s.add(dispute)
                self._reevaluate_covered(s, plugin, dispute, now=now, evaluate=evaluate)
                tx.audit(actor=actor, action="plugin.dispute",
                         target=plugin.key + (f"@{version}" if version else ""), before=None,
                         after=_dispute_audit(dispute), now=now)
                return dumps({"items": _dispute_docs(s, plugin)}).encode()
        except IntegrityError:
            raise Conflict("DISPUTE_CONFLICT", f"issue {facts.number} was recorded concurrently",
                           advice="retry") from None

    def watched_disputes(self, *, limit: int, checked_before: str | None = None,
                         number: int | None = None) -> list[Watched]:
        """Disputes to refresh: issue ``number``'s, or the open ones least recently checked."""
        with self._read() as s:
            q = select(Dispute, Plugin.key).join(Plugin, col(Plugin.id) == col(Dispute.plugin_id))
            rows = s.exec(_watching(q, Dispute, number=number, checked_before=checked_before,
                                    limit=limit)).all()
            return [Watched(d.id, d.number, key) for d, key in rows if d.id is not None]

    def update_dispute(self, dispute_id: int, *, facts: GitHubIssue, now: datetime,
                       evaluate: Evaluator, delivery: tuple[str, str] | None = None) -> bool:
        """Store what GitHub reports now about a dispute; when its state or labels changed,
        re-evaluate what it covers and audit the change. Returns whether anything changed."""

        def changed(tx: Tx, dispute: Dispute, before: dict[str, Any], after: dict[str, Any]) -> None:
            plugin = tx.session.get(Plugin, dispute.plugin_id)
            assert plugin is not None
            self._reevaluate_covered(tx.session, plugin, dispute, now=now, evaluate=evaluate)
            tx.audit(actor="github", action="plugin.dispute.update", target=plugin.key,
                     before=before, after=after, now=now)

        return self._refresh(Dispute, dispute_id, lambda d: _apply_dispute(d, facts), _dispute_audit,
                             changed, now=now, delivery=delivery)

    def _reevaluate_covered(self, s: Session, plugin: Plugin, dispute: Dispute, *, now: datetime,
                            evaluate: Evaluator) -> None:
        """Re-evaluate the versions a dispute covers (one, or every version of the plugin)."""
        s.flush()
        q = select(PluginVersion).where(PluginVersion.plugin_id == plugin.id)
        if dispute.version_id is not None:
            q = q.where(PluginVersion.id == dispute.version_id)
        rows = list(s.exec(q.order_by(col(PluginVersion.id))).all())
        if rows:
            assert plugin.id is not None
            self._reevaluate(s, {plugin.id: plugin}, rows, now=now, evaluate=evaluate)
        self._refresh_plugin(s, plugin)

    # ---------------------------------------------------------------- deliveries

    def delivery_seen(self, delivery_id: str) -> bool:
        """Whether a webhook delivery with this id was processed already."""
        with self._read() as s:
            return s.exec(select(WebhookDelivery.id).where(
                WebhookDelivery.delivery_id == delivery_id)).first() is not None

    def record_delivery(self, delivery: tuple[str, str], *, now: datetime) -> bool:
        """Claim a delivery that changes nothing (an event about nothing the registry tracks).
        Returns False when it was claimed before."""
        with self._write() as tx:
            tx.skip_audit()
            return _claim(tx.session, delivery, format_time(now))


def _watching(q: Any, model: Any, *, number: int | None, checked_before: str | None, limit: int) -> Any:
    """``q`` narrowed to the row of issue ``number``, or to the open rows not checked since
    ``checked_before``, least recently checked first, at most ``limit``."""
    if number is not None:
        q = q.where(model.number == number)
    else:
        q = q.where(model.state == "open")
        if checked_before is not None:
            q = q.where(col(model.checked_at) < checked_before)
    return q.order_by(col(model.checked_at), col(model.id)).limit(limit)


def _claim(s: Session, delivery: tuple[str, str], ts: str) -> bool:
    """Record ``(delivery id, event)`` as processed; False when it was already."""
    if s.exec(select(WebhookDelivery.id).where(WebhookDelivery.delivery_id == delivery[0])).first():
        return False
    s.add(WebhookDelivery(delivery_id=delivery[0], event=delivery[1][:64], received_at=ts))
    s.flush()
    return True


def _apply_promotion(promo: Promotion, facts: PromotionFacts) -> None:
    pull = facts.pull
    promo.number, promo.url, promo.merged = pull.number, pull.url, pull.merged
    promo.state = "open" if pull.state == "open" else "closed"
    promo.merge_commit, promo.merged_at = pull.merge_commit, pull.merged_at
    promo.head_sha, promo.head_digest = pull.head_sha, facts.head_digest
    promo.reviews_json = json.dumps(list(facts.reviews), separators=(",", ":"), sort_keys=True)


def _promotion_audit(promo: Promotion) -> dict[str, Any]:
    return {"pull_request": promo.url, "state": promo.state, "merged": promo.merged,
            "merge_commit": promo.merge_commit, "head_sha": promo.head_sha,
            "head_digest": promo.head_digest, "digest": promo.digest,
            "reviews": json.loads(promo.reviews_json)}


def _promotion_doc(plugin: Plugin, row: PluginVersion, promo: Promotion, *, created: bool) -> str:
    return dumps({"namespace": plugin.namespace, "name": plugin.name, "version": row.version,
                  "digest": promo.digest, "repository": promo.repository, "number": promo.number,
                  "url": promo.url, "state": promo.state, "merged": promo.merged,
                  "head_digest": promo.head_digest, "reviews": json.loads(promo.reviews_json),
                  "opened_at": promo.opened_at, "checked_at": promo.checked_at, "created": created})


def _apply_dispute(dispute: Dispute, issue: GitHubIssue) -> None:
    dispute.url, dispute.state = issue.url, "open" if issue.state == "open" else "closed"
    dispute.labels_json = json.dumps(sorted({lb[:50] for lb in issue.labels}), separators=(",", ":"))
    dispute.closed_at = issue.closed_at


def _dispute_audit(dispute: Dispute) -> dict[str, Any]:
    return {"issue": dispute.url, "state": dispute.state, "labels": json.loads(dispute.labels_json),
            "closed_at": dispute.closed_at}


def _dispute_docs(s: Session, plugin: Plugin) -> list[dict[str, Any]]:
    rows = s.exec(select(Dispute, PluginVersion.version)
                  .join(PluginVersion, col(PluginVersion.id) == col(Dispute.version_id), isouter=True)
                  .where(Dispute.plugin_id == plugin.id).order_by(col(Dispute.id))).all()
    return [{"namespace": plugin.namespace, "name": plugin.name,
             **dispute_record(d, version if d.version_id is not None else None)} for d, version in rows]

