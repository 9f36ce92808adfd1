"""The pre-rendered read documents of versions and plugins, as pure functions of stored facts.

Read routes return these bytes unchanged (see :mod:`registry._store`), so every writer must
render them the same way: the store for single-version changes (publish, review, usage,
revocation, scan) and the re-tiering workers (:mod:`registry._retier`) for the whole catalogue.
Only the standard library and :mod:`cortex_trust.manifest` are imported here: re-tiering workers
import this module in every process they start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cortex_trust.manifest import SemVerError, semver_key

__all__ = ["dumps", "plugin_documents", "version_documents", "version_key"]


#: One encoder for every document: ``json.dumps`` with options builds a new one per call,
#: which cost more than encoding a version summary.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dumps(value: Any) -> str:
    """Canonical compact JSON (sorted keys, UTF-8 kept): the form of every stored document."""
    return _ENCODER.encode(value)


def version_key(v: str) -> tuple[object, ...]:
    """Order versions: SemVer versions by precedence, above anything that is not SemVer."""
    try:
        return (1, semver_key(v))
    except (SemVerError, ValueError):
        return (0, v)


def version_documents(*, namespace: str, name: str, version: str, image: str, digest: str,
                      state: str, tier: str, action: str, published_at: str,
                      policy_revision: str, published_by: str, signer_identity: str | None,
                      signer_issuer: str | None, revoked_reason: str | None,
                      revoked_at: str | None, manifest_json: str, evidence_json: str,
                      decision_json: str, yanked_reason: str | None = None,
                      yanked_at: str | None = None) -> tuple[str, str]:
    """``(summary_json, document_json)`` of one version.

    ``manifest_json``, ``evidence_json`` and ``decision_json`` are JSON texts (the manifest
    document, the evidence the decision was made on, the decision) spliced in as they are:
    pydantic's Rust core serialises them, which keeps re-tiering cheap. ``published_by`` is the
    publishing token's actor (``role:namespace:token``); only its role is shown. A yanked
    version carries ``yank`` (``reason``, ``yanked_at``), a revoked one ``revocation``.
    """
    summary = {"namespace": namespace, "name": name, "version": version, "image": image,
               "digest": digest, "state": state, "tier": tier, "action": action,
               "published_at": published_at}
    revocation = ({"reason": revoked_reason, "revoked_at": revoked_at}
                  if state == "revoked" else None)
    yank = {"reason": yanked_reason, "yanked_at": yanked_at} if state == "yanked" else None
    small = {**summary, "policy_revision": policy_revision,
             "published_by": published_by.split(":", 1)[0],
             "signer": {"identity": signer_identity, "issuer": signer_issuer}
             if signer_identity else None, "revocation": revocation, "yank": yank}
    document = (dumps(small)[:-1] + ',"manifest":' + manifest_json + ',"evidence":'
                + evidence_json + ',"decision":' + decision_json + "}")
    return dumps(summary), document


def plugin_documents(*, namespace: str, name: str, key: str, description: str,
                     capabilities_json: str | None, updated_at: str,
                     versions: Sequence[tuple[str, str, str, str]]
                     ) -> tuple[str | None, str | None, str | None, str, str]:
    """``(latest_version, tier, action, summary_json, document_json)`` of one plugin.

    ``versions`` are ``(version, state, tier, action)`` of every version of the plugin. The
    latest version is the highest active one; when none is active, the highest yanked one (like
    PyPI, a yanked release is still the project's newest when nothing else is left); when none
    is yanked either, the highest of all. The plugin's tier and action are that version's.
    """
    active = ([v for v in versions if v[1] == "active"]
              or [v for v in versions if v[1] == "yanked"] or list(versions))
    latest = max(active, key=lambda v: version_key(v[0])) if active else None
    latest_version = latest[0] if latest else None
    tier = latest[2] if latest else None
    action = latest[3] if latest else None
    caps = json.loads(capabilities_json or "[]")
    summary = {"namespace": namespace, "name": name, "full_name": key,
               "description": description, "latest_version": latest_version, "tier": tier,
               "action": action}
    document = {**summary, "capabilities": caps, "updated_at": updated_at,
                "versions": len(versions)}
    return latest_version, tier, action, dumps(summary), dumps(document)
