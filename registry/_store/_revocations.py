"""Revocations: one version (its publisher's act), every version of a digest or of a signer
identity (admin acts).

Each revoked version gets one feed entry (:class:`~registry._models.RevocationRow`) whose
``kind`` says how far it reaches; a revoked version is re-evaluated in the same transaction and
stays revoked (revocation is final). A digest revoked everywhere, or by the namespace that
published it, is never published again (:meth:`registry._store._versions.VersionWrites.publish`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from cortex_trust.policy import format_time

from .._documents import dumps
from .._errors import NotFound
from .._models import REVOCATION_KINDS, Plugin, PluginVersion, RevocationRow, RevokedIdentity
from ._rows import Evaluator, VersionRows
from ._tokens import Principal

__all__ = ["WIDE_KINDS", "RevocationWrites"]

#: Revocation kinds that reach an image under every name (admin acts): the digest is never
#: published again. A ``version`` revocation reaches its own version (and keeps the digest out
#: of its own namespace).
WIDE_KINDS = ("digest", "identity")


class RevocationWrites(VersionRows):
    """Revoking versions, digests and signer identities."""

    def revoke(self, namespace: str, name: str, version: str, *, reason: str,
               principal: Principal, now: datetime, evaluate: Evaluator) -> bytes:
        """Revoke one version (idempotent: revoking a revoked version changes nothing).

        The feed entry is of kind ``version``: it reaches this namespace, name and version only,
        never other versions or names carrying the same image (revoking those is
        :meth:`revoke_digest`, an admin act)."""
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            before = {"state": row.state, "tier": row.tier}
            if row.state != "revoked":
                self._revoke_row(s, plugin, row, kind="version", reason=reason,
                                 principal=principal, now=now)
                self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="version.revoke",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state, "tier": row.tier, "reason": reason,
                            "kind": "version"}, now=now)
            return row.document_json.encode()

    def revoke_digest(self, digest: str, *, reason: str, principal: Principal, now: datetime,
                      evaluate: Evaluator) -> bytes:
        """Revoke every version carrying ``digest``, under any namespace and name (an admin
        act), and keep the digest from being published again.

        Each version gets one feed entry of kind ``digest`` (clients match it by digest alone),
        also a version its publisher had already revoked; a version already revoked everywhere
        gets none (idempotent). A version's state, reason and time are those of its first
        revocation. Returns ``{"revoked": ["ns/name@version", ...]}`` (the versions this call
        added an entry for). Raises :class:`NotFound` (``NO_SUCH_DIGEST``) when no version
        carries ``digest``.
        """
        with self._write() as tx:
            s = tx.session
            rows = s.exec(select(PluginVersion).where(PluginVersion.digest == digest)
                          .order_by(col(PluginVersion.id))).all()
            if not rows:
                raise NotFound("NO_SUCH_DIGEST", f"no version in this registry carries {digest}",
                               advice="check the digest: GET /api/v1/plugins/NS/NAME/versions "
                                      "lists each version's")
            revoked = self._revoke_wide(s, rows, kind="digest", reason=reason,
                                        principal=principal, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="digest.revoke", target=f"digest:{digest}",
                     before=None, after={"reason": reason, "revoked": revoked}, now=now)
        return dumps({"revoked": revoked}).encode()

    def revoke_identity(self, *, identity: str, issuer: str, reason: str, principal: Principal,
                        now: datetime, evaluate: Evaluator) -> bytes:
        """Revoke every version whose verified signature came from ``identity`` + ``issuer``,
        and remember the identity so that :meth:`publish` refuses what it signs later.

        Feed entries are of kind ``identity`` (matched by digest, like :meth:`revoke_digest`),
        one per version not already revoked everywhere."""
        with self._write() as tx:
            s = tx.session
            if s.exec(select(RevokedIdentity.id).where(
                    RevokedIdentity.identity == identity,
                    RevokedIdentity.issuer == issuer)).first() is None:
                s.add(RevokedIdentity(identity=identity, issuer=issuer, reason=reason,
                                      actor=principal.actor, created_at=format_time(now)))
            rows = s.exec(select(PluginVersion).where(
                PluginVersion.signer_identity == identity,
                PluginVersion.signer_issuer == issuer).order_by(col(PluginVersion.id))).all()
            revoked = self._revoke_wide(s, rows, kind="identity", reason=reason,
                                        principal=principal, now=now, evaluate=evaluate,
                                        identity=identity, issuer=issuer)
            tx.audit(actor=principal.actor, action="identity.revoke",
                     target=f"identity:{identity}|{issuer}", before=None,
                     after={"reason": reason, "revoked": revoked}, now=now)
        return dumps({"revoked": revoked}).encode()

    def _revoke_row(self, s: Session, plugin: Plugin, row: PluginVersion, *, kind: str,
                    reason: str, principal: Principal, now: datetime,
                    identity: str | None = None, issuer: str | None = None) -> None:
        """Append one feed entry of ``kind`` for ``row``; a version not yet revoked becomes
        revoked with this reason and time (a revoked one keeps its first revocation's)."""
        assert row.id is not None and kind in REVOCATION_KINDS
        ts = format_time(now)
        if row.state != "revoked":
            row.state = "revoked"
            row.revoked_reason = reason
            row.revoked_at = ts
            s.add(row)
        s.add(RevocationRow(version_id=row.id, kind=kind, namespace=plugin.namespace,
                            name=plugin.name, version=row.version, digest=row.digest,
                            reason=reason, identity=identity or row.signer_identity,
                            issuer=issuer or row.signer_issuer,
                            actor=principal.actor, created_at=ts))

    def _revoke_wide(self, s: Session, rows: Sequence[PluginVersion], *, kind: str, reason: str,
                     principal: Principal, now: datetime, evaluate: Evaluator,
                     identity: str | None = None, issuer: str | None = None) -> list[str]:
        """Give each of ``rows`` not yet revoked everywhere a ``kind`` (digest-wide) feed entry;
        re-evaluate the versions whose state changed and refresh their plugins. Returns the
        versions given an entry, as ``ns/name@version``."""
        ids = [r.id for r in rows]
        wide = set(s.exec(select(RevocationRow.version_id).where(
            col(RevocationRow.version_id).in_(ids),
            col(RevocationRow.kind).in_(WIDE_KINDS))).all()) if ids else set()
        revoked: list[str] = []
        changed: dict[int, tuple[Plugin, list[PluginVersion]]] = {}
        for row in rows:
            if row.id in wide:
                continue
            plugin = s.get(Plugin, row.plugin_id)
            assert plugin is not None and plugin.id is not None
            was_active = row.state != "revoked"
            self._revoke_row(s, plugin, row, kind=kind, reason=reason, principal=principal,
                             now=now, identity=identity, issuer=issuer)
            if was_active:
                changed.setdefault(plugin.id, (plugin, []))[1].append(row)
            revoked.append(f"{plugin.key}@{row.version}")
        touched = [r for _, versions in changed.values() for r in versions]
        if touched:
            self._reevaluate(s, {pid: p for pid, (p, _) in changed.items()}, touched,
                             now=now, evaluate=evaluate)
        for plugin, _versions in changed.values():
            self._refresh_plugin(s, plugin)
        return revoked
