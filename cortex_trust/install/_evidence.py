"""The verify step of an install: evidence about one version, gathered here, never a verdict.

* :func:`registry_signature`: the Sigstore bundle the registry stored, re-verified here against
  our own trusted roots; a bundle the registry cannot serve is *not present* (listed in
  ``evidence.dropped``), never taken on the registry's word.
* :func:`registry_piece`: scan, tests, review and usage as the registry's record carries them,
  strictly parsed and marked with the registry's name (policy data decides how far each
  registry is trusted); a malformed piece is dropped.
* :func:`github_signature`: GitHub's artifact attestations for a GitHub plugin's image digest.
* :func:`transparency_facts`: what the registry's transparency log proves about the version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from ..errors import EvidenceError, InputError
from ..policy import DroppedEvidence, ReviewEvidence, SignatureEvidence, TransparencyEvidence

if TYPE_CHECKING:
    from ..evidence import TrustRoot
    from ..sources import Checkpoint
    from ._federation import FederatedRegistry
    from ._state import CheckpointStore

__all__ = ["github_signature", "registry_piece", "registry_signature", "transparency_facts"]

_MAX_EVIDENCE_DOC = 256 * 1024


def registry_piece(model: type[BaseModel], raw: Any, *, kind: str, registry: str,
                   dropped: list[DroppedEvidence]) -> Any:
    """A registry record's evidence piece, strictly parsed and marked with its source."""
    if raw is None:
        return None
    try:
        if not isinstance(raw, dict) or len(json.dumps(raw)) > _MAX_EVIDENCE_DOC:
            raise ValueError("not an object of bounded size")
        piece = model.model_validate(raw)
    except (ValidationError, ValueError):
        dropped.append(DroppedEvidence(
            kind=kind, code="REGISTRY_EVIDENCE_INVALID",  # type: ignore[arg-type]
            message=f"the {kind} evidence served by registry {registry!r} is malformed; "
                    "it was not used"))
        return None
    if not getattr(piece, "present", False):
        return None
    update: dict[str, Any] = {"source": registry}
    if isinstance(piece, ReviewEvidence):
        # Each review came from this registry too, whatever name the registry gives itself.
        update["reviews"] = [r.model_copy(update={"source": registry}) for r in piece.reviews]
    return piece.model_copy(update=update)


def registry_signature(fed: FederatedRegistry, ns: str, name: str, version: str, *, digest: str,
                       trusted_roots: Sequence[TrustRoot],
                       dropped: list[DroppedEvidence]) -> SignatureEvidence:
    """Fetch the stored Sigstore bundle and verify it here; absent when we cannot."""
    from ..evidence import verify_signature
    from ..sources import RegistryRequestError

    registry = fed.target.name
    bundle: bytes | None
    try:
        bundle = fed.call(lambda c: c.get_bundle(ns, name, version))
    except RegistryRequestError as e:
        if e.status != 404:
            raise
        bundle = None  # an older registry without the route: no signature, never trusted
    if bundle is None:
        dropped.append(DroppedEvidence(
            kind="signature", code="BUNDLE_UNAVAILABLE",
            message=f"registry {registry!r} did not serve the Sigstore bundle of "
                    f"{ns}/{name}@{version}, so the signature could not be verified here"))
        return SignatureEvidence()
    try:
        return verify_signature(bundle, digest=digest, trusted_roots=trusted_roots,
                                source=registry)
    except EvidenceError as e:
        dropped.append(DroppedEvidence(
            kind="signature", code="BUNDLE_INVALID",
            message=f"registry {registry!r} served a bundle that is not a Sigstore bundle: "
                    f"{e.message}"[:2000]))
        return SignatureEvidence()


def github_signature(bundles: Sequence[bytes], *, digest: str, trusted_roots: Sequence[TrustRoot],
                     source: str) -> SignatureEvidence | None:
    """The first of ``bundles`` that verifies for ``digest`` against ``trusted_roots`` (its
    signer is for the policy to judge), else the first one's failure, else ``None``."""
    from ..evidence import verify_signature

    first: SignatureEvidence | None = None
    for bundle in bundles:
        try:
            ev = verify_signature(bundle, digest=digest, trusted_roots=trusted_roots, source=source)
        except InputError:
            continue  # not a bundle at all: nothing to report as a signature
        if ev.verified:
            return ev
        first = first or ev
    return first


def _code(code: str) -> str:
    """A registry's error code as facts may quote it (it is the registry's text)."""
    return re.sub(r"[^A-Z0-9_]", "?", code[:64])


def _leaf_records(data: bytes, *, index: int, key: str, digest: str) -> bool:
    """Whether a verified log leaf (an audit entry's canonical body) is entry ``index + 1`` and
    records version ``key`` (``ns/name@version``) with ``digest`` in its effects."""
    from .._json import load_json

    try:
        entry = load_json(data)
        effects = load_json(entry["effects"])
        row = effects["plugin_version"][key]
        return bool(entry["id"] == index + 1 and row["digest"] == digest)
    except (ValueError, KeyError, TypeError):
        return False


def transparency_facts(fed: FederatedRegistry, checkpoints: CheckpointStore, ns: str, name: str,
                       version: str, *, digest: str) -> TransparencyEvidence:
    """Facts about the version and the registry's transparency log (never a verdict).

    With the registry's log key configured: the current checkpoint is verified with it
    (signature first), checked for consistency with the last one this machine saw from that
    registry (a proof that it extends it; the checkpoint is then remembered in
    ``checkpoints``), and the leaf that recorded the version's publish is checked to be
    included in it and to name this version and digest. What could not be established is said
    in ``error``. Raises only :class:`RegistryUnavailable` (the registry could not be reached
    at all).
    """
    from ..sources import (
        NoteVerifier,
        RegistryRequestError,
        TransparencyError,
        leaf_hash,
        open_checkpoint,
        verify_inclusion,
    )

    target = fed.target
    facts: dict[str, Any] = {"source": target.name}
    if target.log_key is None:
        return TransparencyEvidence(error=f"no transparency-log key is configured for "
                                          f"registry {target.name!r}", **facts)
    verifier = NoteVerifier.from_text(target.log_key)
    seen = checkpoints.get(target, verifier)
    if seen is not None:
        # Once this machine holds a checkpoint, a registry that stops serving one that
        # verifies cannot show that its history extends it: that is no proof of extension,
        # so it counts as inconsistent (fail closed), never as "nothing to compare with".
        facts.update(seen_size=seen.size, consistent_with_seen=False)
    try:
        note = fed.call(lambda c: c.log_checkpoint())
    except RegistryRequestError as e:
        return TransparencyEvidence(error=f"the registry serves no signed checkpoint "
                                          f"({_code(e.code)})", **facts)
    try:
        checkpoint = open_checkpoint(note, verifier)
    except TransparencyError as e:
        return TransparencyEvidence(error="the registry's checkpoint does not verify with "
                                          f"the configured log key: {e.message}"[:500], **facts)
    facts.update(present=True, checkpoint_size=checkpoint.size)
    problems: list[str] = []
    if seen is not None:
        facts["seen_size"] = seen.size
        why = _inconsistency(fed, seen, checkpoint)
        facts["consistent_with_seen"] = why is None
        if why is not None:
            problems.append(why)
    if facts.get("consistent_with_seen") is not False and (seen is None
                                                            or checkpoint.size > seen.size):
        checkpoints.put(target, verifier, note)
    try:
        log = fed.call(lambda c: c.version_log(ns, name, version))
        leaf = log.publish
        if leaf is None:
            raise TransparencyError("the registry names no leaf that recorded this version")
        facts["log_index"] = leaf.index
        if leaf.index >= checkpoint.size:
            raise TransparencyError(f"leaf {leaf.index} is not in the checkpoint of "
                                    f"{checkpoint.size} entries")
        data = leaf.leaf.encode("utf-8")
        proof = fed.call(lambda c: c.log_inclusion(leaf.index, checkpoint.size))
        verify_inclusion(index=leaf.index, size=checkpoint.size, leaf=leaf_hash(data),
                         proof=proof, root=checkpoint.root)
        # Verified bytes: now read what they say.
        if not _leaf_records(data, index=leaf.index, key=f"{ns}/{name}@{version}",
                             digest=digest):
            raise TransparencyError(f"leaf {leaf.index} does not record {ns}/{name}@"
                                    f"{version} with {digest}")
        facts["included"] = True
    except RegistryRequestError as e:
        problems.append(f"the registry refused a log request ({_code(e.code)})")
    except TransparencyError as e:
        problems.append(e.message)
    if problems:
        facts["error"] = "; ".join(problems)[:500]
    return TransparencyEvidence(**facts)


def _inconsistency(fed: FederatedRegistry, seen: Checkpoint, current: Checkpoint) -> str | None:
    """Why ``current`` does not provably extend ``seen`` (two verified checkpoints of one
    log), or ``None`` when it does."""
    from ..sources import ProofError, RegistryRequestError, verify_consistency

    if current.size < seen.size:
        return (f"the registry's log has {current.size} entries, fewer than the "
                f"{seen.size} this machine saw before")
    if current.size == seen.size:
        return None if current.root == seen.root else (
            f"the registry's log of {current.size} entries differs from the one this "
            "machine saw before")
    try:
        proof = fed.call(lambda c: c.log_consistency(seen.size, current.size))
        verify_consistency(first=seen.size, second=current.size, first_root=seen.root,
                           second_root=current.root, proof=proof)
    except (RegistryRequestError, ProofError):
        return (f"the registry could not prove that its log of {current.size} entries "
                f"extends the {seen.size} entries this machine saw before")
    return None
