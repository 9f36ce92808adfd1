"""Version and plugin rows inside a write: their stored facts, their re-evaluation, their
plugin's documents.

Every write that changes what the policy sees (a publish, a review, usage, a revocation, a scan)
re-evaluates the version here, with the inputs, the evaluation and the rendering of
:mod:`registry._reevaluate` that re-tiering uses too: rebuilt from stored facts, no parsing of
uploads and no cryptography.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import func
from sqlmodel import Session, col, select

from cortex_trust.policy import Decision, PolicyInput, format_time, sha256_digest

from .._documents import plugin_documents
from .._models import DecisionReceipt, Evidence, Plugin, PluginVersion, ReviewRow, UsageDay, VersionBundle
from .._reevaluate import (
    ITEM_COLUMNS,
    Item,
    ReporterFacts,
    UsageFacts,
    build_inputs,
    item_from_row,
    receipt_payload_of,
    render_outcome,
)
from .._web._fragments import VersionRow, plugin_fragment, stored
from ._governance_facts import governance_facts
from ._tx import StoreBase, not_found

__all__ = ["PAGE_COLUMNS", "Evaluator", "VersionRows"]

_item_values = attrgetter(*ITEM_COLUMNS)
#: The version columns a plugin's page fragment shows (:data:`registry._web._fragments.VersionRow`).
PAGE_COLUMNS = ("version", "state", "tier", "published_at", "yanked_reason", "yanked_at", "revoked_reason",
                "revoked_at")

#: Given the inputs, return one decision each (in order). Never raises for engine problems.
Evaluator = Callable[[Sequence[PolicyInput]], list[Decision]]


class VersionRows(StoreBase):
    """What the writes that touch versions share."""

    def _get_version(self, s: Session, namespace: str, name: str,
                     version: str) -> tuple[Plugin, PluginVersion]:
        plugin = s.exec(select(Plugin).where(Plugin.key == f"{namespace}/{name}")).first()
        if plugin is None:
            raise not_found(namespace, name)
        row = s.exec(select(PluginVersion).where(PluginVersion.plugin_id == plugin.id,
                                                 PluginVersion.version == version)).first()
        if row is None:
            raise not_found(namespace, name, version)
        return plugin, row

    def _facts(self, s: Any, where: Callable[[Any], Any],
               digests: dict[int, str]) -> tuple[dict[int, dict[str, str]], dict[int, UsageFacts]]:
        """The stored facts of a batch of versions, each bound to the version's digest, in six
        queries: the newest evidence row of each kind; the promotion and the open disputes
        (:func:`governance_facts`); every reviewer's review, as the facts JSON of one review
        piece; usage per version and per organization. ``where(column)`` selects
        the batch by a table's version-id column."""
        from sqlalchemy import select as columns  # any number of columns (sqlmodel's: <= 4)

        latest: dict[int, dict[str, str]] = {}
        for vid, kind, digest, facts in s.execute(
                columns(col(Evidence.version_id), col(Evidence.kind), col(Evidence.digest),
                        col(Evidence.facts_json))
                .where(where(col(Evidence.version_id))).order_by(col(Evidence.id))).all():
            # Reviews are per reviewer (ReviewRow); an evidence row never stands for them.
            if digests.get(vid) == digest and kind != "review":
                latest.setdefault(vid, {})[kind] = facts  # the newest of each kind wins
        for vid, pieces in governance_facts(s, where, digests, source=self.registry_name).items():
            latest.setdefault(vid, {}).update(pieces)
        reviews: dict[int, list[dict[str, Any]]] = {}
        for vid, reviewer, verdict, digest, at in s.execute(
                columns(col(ReviewRow.version_id), col(ReviewRow.reviewer), col(ReviewRow.verdict),
                        col(ReviewRow.digest), col(ReviewRow.reviewed_at))
                .where(where(col(ReviewRow.version_id)))
                .order_by(col(ReviewRow.version_id), col(ReviewRow.reviewer))).all():
            if digests.get(vid) == digest:
                reviews.setdefault(vid, []).append(
                    {"reviewer": reviewer, "verdict": verdict, "at": at,
                     "source": self.registry_name})
        for vid, records in reviews.items():
            # Validated with the rest of the input (registry._reevaluate.stored_input).
            latest.setdefault(vid, {})["review"] = json.dumps(
                {"present": True, "reviews": records, "digest": digests[vid],
                 "source": self.registry_name}, separators=(",", ":"))
        day, inst = col(UsageDay.day), col(UsageDay.installation_id)
        first, last = func.min(col(UsageDay.reported_at)), func.max(col(UsageDay.reported_at))
        by_org: dict[int, list[ReporterFacts]] = {}
        for vid, digest, org, installations, days, org_first, org_last in s.execute(
                columns(col(UsageDay.version_id), col(UsageDay.digest), col(UsageDay.organization),
                        func.count(inst.distinct()), func.count(day.distinct()), first, last)
                .where(where(col(UsageDay.version_id)))
                .group_by(col(UsageDay.version_id), col(UsageDay.digest),
                          col(UsageDay.organization))
                .order_by(col(UsageDay.version_id), col(UsageDay.organization))).all():
            if digests.get(vid) == digest:
                by_org.setdefault(vid, []).append(
                    ReporterFacts(org, int(installations), int(days), org_first, org_last))
        usage: dict[int, UsageFacts] = {}
        for vid, digest, installations, days, all_first, all_last in s.execute(
                columns(col(UsageDay.version_id), col(UsageDay.digest), func.count(inst.distinct()),
                        func.count(day.distinct()), first, last)
                .where(where(col(UsageDay.version_id)))
                .group_by(col(UsageDay.version_id), col(UsageDay.digest))).all():
            if digests.get(vid) == digest:
                usage[vid] = UsageFacts(all_first, all_last, int(days), int(installations),
                                        tuple(by_org.get(vid, ())))
        return latest, usage

    def _bundle_digests(self, s: Any, ids: Sequence[int | None]) -> dict[int, str]:
        """The digest of the bundle published with each version of ``ids`` (for receipts)."""
        from sqlalchemy import select as columns

        return {vid: sha256_digest(bundle) for vid, bundle in s.execute(
            columns(col(VersionBundle.version_id), col(VersionBundle.bundle_json))
            .where(col(VersionBundle.version_id).in_(ids))).all()}

    def version_input(self, namespace: str, name: str, version: str, *, now: datetime) -> bytes:
        """The input document the policy sees for one stored version at ``now`` (JSON), built
        from stored facts exactly as every re-evaluation builds it. Raises :class:`NotFound`."""
        from ._tx import db_unavailable

        with db_unavailable(), self._read() as s:
            plugin, row = self._get_version(s, namespace, name, version)
            _, inputs = self._inputs(s, {row.plugin_id: plugin}, [row], now=now)
        return inputs[0].to_json().encode()

    def _inputs(self, s: Session, plugins: dict[int, Plugin], rows: list[PluginVersion], *,
                now: datetime) -> tuple[list[Item], list[PolicyInput]]:
        """The items of ``rows`` with their stored facts, and their inputs at ``now``."""
        ids = [r.id for r in rows]
        latest, usage = self._facts(s, lambda c: c.in_(ids),
                                    {r.id: r.digest for r in rows if r.id is not None})
        bundles = self._bundle_digests(s, ids)
        items = []
        for r in rows:
            assert r.id is not None
            plugin = plugins[r.plugin_id]
            items.append(item_from_row(_item_values(r), namespace=plugin.namespace,
                                       name=plugin.name, evidence=latest.get(r.id),
                                       usage=usage.get(r.id), bundle_sha256=bundles.get(r.id)))
        return items, build_inputs(items, now=now, registry_name=self.registry_name)

    def _reevaluate(self, s: Session, plugins: dict[int, Plugin], rows: list[PluginVersion],
                    *, now: datetime, evaluate: Evaluator) -> list[Decision]:
        """Evaluate ``rows`` in one batch and store each decision, its documents and its receipt."""
        items, inputs = self._inputs(s, plugins, rows, now=now)
        decisions = evaluate(inputs)
        if len(decisions) != len(rows):
            raise RuntimeError("the evaluator returned a wrong number of decisions")
        engine = str(getattr(evaluate, "engine_name", "unknown"))
        decided_at = format_time(now)
        for row, item, inp, decision in zip(rows, items, inputs, decisions, strict=True):
            out = render_outcome(item, inp, decision, receipt=receipt_payload_of(
                item, inp, decision, engine=engine, decided_at=now, registry_name=self.registry_name))
            row.tier, row.action, row.policy_revision = out.tier, out.action, out.policy_revision
            row.decision_json = out.decision_json
            row.summary_json, row.document_json = out.summary_json, out.document_json
            row.page_html = out.page_html
            s.add(row)
            assert row.id is not None
            s.add(DecisionReceipt(version_id=row.id, decided_at=decided_at,
                                  envelope_json=self.receipt_issuer.seal(out.receipt)))
        return decisions

    def _reevaluate_version(self, s: Session, plugin: Plugin, row: PluginVersion, *,
                            now: datetime, evaluate: Evaluator) -> None:
        """After a change to ``row``'s facts: store them, re-evaluate the version, refresh its
        plugin's latest version, tier and documents."""
        s.flush()
        self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
        self._refresh_plugin(s, plugin)

    def _refresh_plugin(self, s: Session, plugin: Plugin) -> None:
        """Recompute the plugin's latest version, tier, documents and page fragment from its
        versions, and what the catalogue sorts and filters on: the latest version's state and
        what its manifest asks for (network, host files)."""
        from sqlalchemy import select as columns  # any number of columns (sqlmodel's: <= 4)

        rows = s.execute(columns(*(col(getattr(PluginVersion, c)) for c in PAGE_COLUMNS), col(PluginVersion.action))
                         .where(col(PluginVersion.plugin_id) == plugin.id)).all()
        plugin.page_html = stored(lambda: plugin_fragment(
            namespace=plugin.namespace, name=plugin.name, description=plugin.description,
            versions=[cast(VersionRow, tuple(r[:-1])) for r in rows]))
        (plugin.latest_version, plugin.tier, plugin.action, plugin.summary_json,
         plugin.document_json) = plugin_documents(
            namespace=plugin.namespace, name=plugin.name, key=plugin.key,
            description=plugin.description, capabilities_json=plugin.capabilities_json,
            updated_at=plugin.updated_at, versions=[(r[0], r[1], r[2], r[-1]) for r in rows])
        plugin.latest_state = next((r[1] for r in rows if r[0] == plugin.latest_version), None)
        document = s.exec(select(PluginVersion.document_json).where(
            PluginVersion.plugin_id == plugin.id, PluginVersion.version == plugin.latest_version)).first()
        trust = (json.loads(document or "{}").get("manifest") or {}).get("trust") or {}
        plugin.asks_network, plugin.asks_filesystem = bool(trust.get("network")), bool(trust.get("filesystem"))
        s.add(plugin)
