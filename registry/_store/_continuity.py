"""Signer continuity at publish: a new version's signer compared with the plugin's earlier ones.

Read inside the publish transaction (under the write lock), so concurrent publishes of one
plugin each compare with everything published before them. The previous version is the latest
one not revoked (a version revoked for a compromise must not make its successor look like a
change), or the latest one when all are revoked. Signers come from each version's stored
signature facts: nothing is verified again.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from cortex_trust.evidence import signer_continuity, signer_of
from cortex_trust.policy import SignatureEvidence, SignerContinuityEvidence, SignerRef

from .._models import Evidence, PluginVersion

__all__ = ["publish_continuity"]


def publish_continuity(session: Session, plugin_id: int | None,
                       signature: SignatureEvidence) -> SignerContinuityEvidence:
    """The continuity facts of a version of plugin ``plugin_id`` (``None``: a new plugin) signed
    as ``signature``, against the versions already stored."""
    if plugin_id is None:
        return signer_continuity(signature, earlier=(), source="registry")
    versions = session.exec(select(PluginVersion.id, PluginVersion.version, PluginVersion.state)
                            .where(PluginVersion.plugin_id == plugin_id).order_by(col(PluginVersion.id))).all()
    ids = [v[0] for v in versions]
    facts: dict[int, str] = {}
    for version_id, facts_json in session.exec(
            select(Evidence.version_id, Evidence.facts_json)
            .where(col(Evidence.version_id).in_(ids), Evidence.kind == "signature")
            .order_by(col(Evidence.id))).all():
        facts[version_id] = facts_json  # the newest signature piece of a version wins

    def signer(version_id: int | None) -> SignerRef | None:
        stored = facts.get(version_id) if version_id is not None else None
        return signer_of(SignatureEvidence.model_validate_json(stored)) if stored else None

    earlier = [(version, signer(vid), state) for vid, version, state in versions]
    live = [e for e in earlier if e[2] != "revoked"]
    if live:  # the previous version goes last
        earlier.remove(live[-1])
        earlier.append(live[-1])
    return signer_continuity(signature, earlier=[(v, s) for v, s, _ in earlier], source="registry")
