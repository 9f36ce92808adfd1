"""Writes to versions: publish, reviews, production use, yank and unyank.

Every write is one transaction of :meth:`~registry._store._tx.StoreBase._write` and appends one
audit entry. Versions are immutable: ``(plugin, version)`` is unique in the schema and checked
under the write lock, so two concurrent publishes end with one winner and one :class:`Conflict`.
A write that changes what the policy sees re-evaluates the version in the same transaction
(:class:`~registry._store._rows.VersionRows`); a yank or unyank changes the state alone and
never the decision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cortex_trust.policy import (
    Decision,
    PolicyInput,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    format_time,
    refresh_input,
)

from .._documents import dumps, version_documents
from .._errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from .._models import (
    Evidence,
    Namespace,
    Plugin,
    PluginVersion,
    ReviewRow,
    RevocationRow,
    RevokedIdentity,
    ScanJob,
    UsageDay,
    VersionBundle,
)
from .._web._fragments import stored as stored_fragment
from .._web._fragments import version_fragment
from ._continuity import publish_continuity
from ._publishers import check_publish_credential
from ._revocations import WIDE_KINDS
from ._rows import Evaluator, VersionRows
from ._scans import queue_scan
from ._tokens import Principal

__all__ = ["PublishRecord", "VersionWrites"]


@dataclass(frozen=True)
class PublishRecord:
    """Everything a publish stores, established before the transaction (crypto done)."""

    namespace: str
    name: str
    version: str
    image: str
    digest: str
    description: str
    capabilities: tuple[str, ...]
    #: The publish-time input from :func:`cortex_trust.policy.build_input`; later
    #: re-evaluations start from it and replace the evidence that changed.
    policy_input: PolicyInput
    #: The bundle text exactly as published (installers re-verify it themselves).
    bundle: str
    signature: SignatureEvidence
    tests: TestEvidence | None
    scan: ScanEvidence | None


class VersionWrites(VersionRows):
    """Publish, reviews, usage, yank and unyank."""

    def publish(self, rec: PublishRecord, *, principal: Principal, now: datetime,
                evaluate: Evaluator) -> tuple[bytes, Decision]:
        """Store a new version with its evidence and the policy's decision, atomically.

        Every publish queues a :class:`ScanJob` in the same transaction, whatever scan evidence
        ``rec`` carries (spec: Trivy scans run on every version publish; a version never exists
        without its pending scan). The registry's scan is stored after the publish, so it is the
        newest scan evidence and supersedes an uploaded (self-reported) one.

        An image belongs to the namespace that first published it: another namespace's
        publisher gets ``DIGEST_OWNED`` (an admin may publish it anywhere, and a namespace
        holding it may publish it again).

        Raises :class:`Conflict` when the version exists (``VERSION_EXISTS`` with the same
        digest, ``VERSION_CONFLICT`` with another one), its digest was revoked everywhere or by
        this namespace (``DIGEST_REVOKED``), belongs to another namespace (``DIGEST_OWNED``) or
        its signer was revoked (``IDENTITY_REVOKED``), :class:`Forbidden`
        (``TRUSTED_PUBLISHING_REQUIRED``) for a registry token in a trusted-publishing-only
        namespace, and :class:`Invalid` (``PUBLISH_BLOCKED``, nothing stored) when the policy
        blocks the publish.
        """
        ts = format_time(now)
        key = f"{rec.namespace}/{rec.name}"
        try:
            with self._write() as tx:
                s = tx.session
                if s.exec(select(Namespace.id).where(Namespace.name == rec.namespace)).first() is None:
                    raise NotFound("NO_SUCH_NAMESPACE", f"namespace {rec.namespace!r} does not exist",
                                   advice="an admin creates it with `cortex registry token create`")
                check_publish_credential(s, rec.namespace, principal)
                plugin = s.exec(select(Plugin).where(Plugin.key == key)).first()
                policy_input = refresh_input(rec.policy_input, now=now, operation="publish", signer_continuity=(
                    publish_continuity(s, plugin.id if plugin is not None else None, rec.signature)))
                if plugin is not None:
                    existing = s.exec(select(PluginVersion).where(
                        PluginVersion.plugin_id == plugin.id,
                        PluginVersion.version == rec.version)).first()
                    if existing is not None:
                        raise _version_conflict(key, rec.version, existing.digest, rec.digest)
                else:
                    plugin = Plugin(namespace=rec.namespace, name=rec.name, key=key,
                                    created_at=ts, updated_at=ts, summary_json="{}",
                                    document_json="{}")
                # A revoked image must not come back as an active version under another
                # version string or plugin name: anywhere once an admin revoked it everywhere
                # (digest, identity), and in the namespace that revoked one of its versions.
                # Another namespace's revocation never stops the owner.
                if s.exec(select(RevocationRow.id).where(
                        RevocationRow.digest == rec.digest,
                        or_(col(RevocationRow.kind).in_(WIDE_KINDS),
                            col(RevocationRow.namespace) == rec.namespace))).first() is not None:
                    raise Conflict("DIGEST_REVOKED",
                                   f"{rec.digest} was revoked in this registry",
                                   advice="build, sign and publish a new image")
                _check_digest_owner(s, rec, principal)
                # Revoking an identity covers what it signs later, too (a leaked CI identity).
                if rec.signature.verified and s.exec(select(RevokedIdentity.id).where(
                        RevokedIdentity.identity == rec.signature.identity,
                        RevokedIdentity.issuer == rec.signature.issuer)).first() is not None:
                    raise Conflict("IDENTITY_REVOKED",
                                   f"the signer {rec.signature.identity!r} was revoked in this "
                                   "registry", advice="sign with an identity that is not revoked")
                plugin.description = rec.description
                plugin.capabilities_json = dumps(sorted(set(rec.capabilities)))
                plugin.search_text = " ".join([key, rec.description.lower(),
                                               *(c.lower() for c in rec.capabilities)])
                plugin.updated_at = plugin.latest_published_at = ts
                s.add(plugin)
                s.flush()
                assert plugin.id is not None
                version = PluginVersion(
                    plugin_id=plugin.id, version=rec.version, digest=rec.digest, image=rec.image,
                    state="active", input_json=policy_input.model_dump_json(),
                    decision_json="{}", tier="untrusted", action="block",
                    signer_identity=rec.signature.identity if rec.signature.verified else None,
                    signer_issuer=rec.signature.issuer if rec.signature.verified else None,
                    published_at=ts, published_by=principal.actor,
                    summary_json="{}", document_json="{}")
                s.add(version)
                s.flush()
                assert version.id is not None
                s.add(VersionBundle(version_id=version.id, bundle_json=rec.bundle))
                for kind, facts in (("signature", rec.signature), ("tests", rec.tests),
                                    ("scan", rec.scan)):
                    if facts is not None:
                        s.add(Evidence(version_id=version.id, kind=kind, digest=rec.digest,
                                       facts_json=facts.model_dump_json(),
                                       actor=principal.actor, created_at=ts))
                s.flush()
                decision = self._reevaluate(s, {plugin.id: plugin}, [version], now=now,
                                            evaluate=evaluate)[0]
                if decision.failed:
                    raise Unavailable("ENGINE_UNAVAILABLE",
                                      "the registry policy could not be evaluated; nothing was "
                                      f"published ({', '.join(decision.codes)})",
                                      advice="retry later; the operator should check the policy")
                if decision.action == "block":
                    raise Invalid("PUBLISH_BLOCKED",
                                  f"the registry policy blocks publishing {key}@{rec.version}",
                                  advice="; ".join(r.message for r in decision.reasons)[:2000],
                                  details={"decision": decision.to_json_dict()})
                scan = ScanJob(version_id=version.id, image=rec.image, digest=rec.digest,
                               state="queued", created_at=ts, updated_at=ts)
                s.add(scan)
                queue_scan(tx, scan, due=now)
                self._refresh_plugin(s, plugin)
                tx.audit(actor=principal.actor, action="version.publish",
                         target=f"{key}@{rec.version}", before=None,
                         after={"digest": rec.digest, "image": rec.image,
                                "tier": version.tier, "action": version.action,
                                "signer": [version.signer_identity, version.signer_issuer]},
                         now=now)
                doc = version.document_json
        except IntegrityError:
            # Only reachable if the lock was bypassed; the unique constraint still holds.
            raise Conflict("VERSION_CONFLICT", f"{key}@{rec.version} was published concurrently",
                           advice="versions are immutable: publish a new version") from None
        return doc.encode(), decision

    def add_review(self, namespace: str, name: str, version: str, *, status: str,
                   digest: str | None, note: str | None, principal: Principal, now: datetime,
                   evaluate: Evaluator) -> bytes:
        """Record the calling reviewer's review of the version's digest and re-evaluate its tier.

        Reviews are kept per reviewer (``principal.reviewer_id``): a reviewer's new review
        replaces their own earlier one and nobody else's, so every reviewer's current review
        reaches the policy. Raises :class:`NotFound`, or :class:`Conflict`
        (``DIGEST_MISMATCH``) when ``digest`` is given and is not the version's (the reviewer
        looked at another image).
        """
        ts = format_time(now)
        reviewer = principal.reviewer_id
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            if digest is not None and digest != row.digest:
                raise Conflict("DIGEST_MISMATCH",
                               f"the review is for {digest}, the version is {row.digest}",
                               advice="review the image that was published under this version")
            assert row.id is not None
            own = s.exec(select(ReviewRow).where(ReviewRow.version_id == row.id,
                                                 ReviewRow.reviewer == reviewer)).first()
            before = {"tier": row.tier, "action": row.action,
                      "review": None if own is None else {"status": own.verdict,
                                                          "reviewed_at": own.reviewed_at}}
            if own is None:
                own = ReviewRow(version_id=row.id, reviewer=reviewer, verdict=status,
                                digest=row.digest, actor=principal.actor, reviewed_at=ts)
            own.verdict, own.note, own.actor, own.reviewed_at = status, note, principal.actor, ts
            s.add(own)
            self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="version.review",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"reviewer": reviewer, "status": status, "note": note,
                            "digest": row.digest, "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode()

    def withdraw_review(self, namespace: str, name: str, version: str, *,
                        reviewer: str | None, principal: Principal, now: datetime,
                        evaluate: Evaluator) -> bytes:
        """Withdraw the calling reviewer's own review of a version and re-evaluate its tier.

        Only a reviewer's own review can be withdrawn: ``reviewer``, when given, must be the
        caller's reviewer id, else :class:`Forbidden` (``REVIEW_NOT_YOURS``). Raises
        :class:`NotFound` for an unknown version or when the caller has no review of it
        (``REVIEW_NOT_FOUND``). The withdrawn review stays in the audit log.
        """
        own_id = principal.reviewer_id
        if reviewer is not None and reviewer != own_id:
            raise Forbidden("REVIEW_NOT_YOURS",
                            f"this token reviews as {own_id!r}; it cannot withdraw the review "
                            f"of {reviewer!r}",
                            advice="a review can only be withdrawn by the reviewer who wrote it")
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            own = s.exec(select(ReviewRow).where(ReviewRow.version_id == row.id,
                                                 ReviewRow.reviewer == own_id)).first()
            if own is None:
                raise NotFound("REVIEW_NOT_FOUND",
                               f"{own_id!r} has no review of {plugin.key}@{version} to withdraw",
                               advice="check the version, and that this is the token you "
                                      "reviewed with")
            before = {"reviewer": own_id, "status": own.verdict, "note": own.note,
                      "reviewed_at": own.reviewed_at, "tier": row.tier, "action": row.action}
            s.delete(own)
            self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="version.review.withdraw",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"reviewer": own_id, "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode()

    def report_usage(self, namespace: str, name: str, version: str, *, digest: str,
                     principal: Principal, now: datetime,
                     evaluate: Evaluator) -> tuple[bytes, bool]:
        """Record that the calling installation runs ``digest`` today; re-evaluate the tier.

        The installation is the token (its id), its organization the token's namespace. At most
        one report per installation and UTC day is counted: a further report the same day is
        accepted and changes nothing (no write, no audit entry). Returns the version document
        and whether the report was counted. Raises :class:`NotFound`, or :class:`Conflict`:
        ``DIGEST_MISMATCH``, or ``VERSION_REVOKED`` (use of a revoked version is not evidence).
        """
        ts = format_time(now)
        day = ts[:10]
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            if digest != row.digest:
                raise Conflict("DIGEST_MISMATCH",
                               f"usage is for {digest}, the version is {row.digest}",
                               advice="report the digest of the image actually installed")
            if row.state == "revoked":
                raise Conflict("VERSION_REVOKED",
                               f"{plugin.key}@{version} is revoked; its use is not recorded",
                               advice="stop running it and install another version")
            assert row.id is not None
            if s.exec(select(UsageDay.id).where(
                    UsageDay.version_id == row.id,
                    UsageDay.installation_id == principal.token_id,
                    UsageDay.day == day)).first() is not None:
                tx.skip_audit()
                return row.document_json.encode(), False
            before = {"tier": row.tier, "action": row.action}
            if s.exec(select(UsageDay.id).join(PluginVersion, col(PluginVersion.id) == col(UsageDay.version_id))
                      .where(PluginVersion.plugin_id == plugin.id,
                             UsageDay.installation_id == principal.token_id)).first() is None:
                plugin.usage_count += 1  # an installation new to the plugin (the catalogue's "most used")
            s.add(UsageDay(version_id=row.id, installation_id=principal.token_id,
                           organization=principal.namespace, day=day, digest=row.digest,
                           reported_at=ts))
            self._reevaluate_version(s, plugin, row, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="version.usage",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"digest": row.digest, "day": day, "organization": principal.namespace,
                            "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode(), True

    def yank(self, namespace: str, name: str, version: str, *, reason: str,
             principal: Principal, now: datetime) -> bytes:
        """Yank one version, as PyPI and npm do: installers skip it for ranges and ``latest``
        and take it only when pinned exactly, with a warning
        (:func:`cortex_trust.install.select_version`).

        Only the state changes: the evidence and the decision stay exactly as they are (nothing
        is re-evaluated), while the version's documents and the plugin's latest version, tier
        and documents are re-rendered. The reason, time and actor are recorded. Idempotent:
        yanking a yanked version keeps the first yank and changes nothing. Returns the version
        document. Raises :class:`NotFound`, or :class:`Conflict` (``VERSION_REVOKED``) for a
        revoked version: revocation is final and is never softened into a yank.
        """
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            _refuse_state_change(plugin, row, "yank")
            before = {"state": row.state, "reason": row.yanked_reason}
            if row.state != "yanked":
                row.state = "yanked"
                row.yanked_reason = reason
                row.yanked_at = format_time(now)
                row.yanked_by = principal.actor
                self._restate(s, plugin, row)
            tx.audit(actor=principal.actor, action="version.yank",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state, "reason": row.yanked_reason,
                            "yanked_at": row.yanked_at, "requested_reason": reason}, now=now)
            return row.document_json.encode()

    def unyank(self, namespace: str, name: str, version: str, *, principal: Principal,
               now: datetime) -> bytes:
        """Make a yanked version active again; its decision is unchanged (see :meth:`yank`).

        Idempotent: unyanking an active version changes nothing. Returns the version document.
        Raises :class:`NotFound`, or :class:`Conflict` (``VERSION_REVOKED``) for a revoked
        version.
        """
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            _refuse_state_change(plugin, row, "unyank")
            before = {"state": row.state, "reason": row.yanked_reason,
                      "yanked_at": row.yanked_at, "yanked_by": row.yanked_by}
            if row.state == "yanked":
                # The yank's details leave the row with the yank; the audit log keeps them.
                row.state = "active"
                row.yanked_reason = row.yanked_at = row.yanked_by = None
                self._restate(s, plugin, row)
            tx.audit(actor=principal.actor, action="version.unyank",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state}, now=now)
            return row.document_json.encode()

    def _restate(self, s: Session, plugin: Plugin, row: PluginVersion) -> None:
        """Re-render and store ``row``'s documents and page fragment after a change of its state alone (a yank or
        unyank), then the plugin's.

        The stored decision and the evidence and manifest it was made on are spliced back as
        they are: a state change must not re-evaluate (a yank never changes a tier)."""

        stored = json.loads(row.document_json)

        def compact(value: Any) -> str:
            # Key order kept as stored (pydantic's field order), not sorted.
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

        row.summary_json, row.document_json = version_documents(
            namespace=plugin.namespace, name=plugin.name, version=row.version, image=row.image,
            digest=row.digest, state=row.state, tier=row.tier, action=row.action,
            published_at=row.published_at, policy_revision=row.policy_revision,
            published_by=row.published_by, signer_identity=row.signer_identity,
            signer_issuer=row.signer_issuer, revoked_reason=row.revoked_reason,
            revoked_at=row.revoked_at, manifest_json=compact(stored["manifest"]),
            evidence_json=compact(stored["evidence"]), decision_json=row.decision_json,
            yanked_reason=row.yanked_reason, yanked_at=row.yanked_at)
        row.page_html = stored_fragment(lambda: version_fragment(row.document_json))
        s.add(row)
        s.flush()
        self._refresh_plugin(s, plugin)


def _refuse_state_change(plugin: Plugin, row: PluginVersion, what: str) -> None:
    """Only active and yanked versions can be yanked or unyanked: a revoked version stays
    revoked (a yank must never look like a way out of a revocation), and a state this code
    does not know is refused rather than overwritten."""
    if row.state == "revoked":
        raise Conflict("VERSION_REVOKED",
                       f"{plugin.key}@{row.version} is revoked and cannot be {what}ed",
                       advice="revocation is final: publish a new version instead")
    if row.state not in ("active", "yanked"):
        raise Conflict("VERSION_STATE",
                       f"{plugin.key}@{row.version} is in state {row.state!r} and cannot be "
                       f"{what}ed", advice="ask the registry's operator")


def _check_digest_owner(s: Session, rec: PublishRecord, principal: Principal) -> None:
    """An image belongs to the namespace that first published it in this registry with a
    verified signature.

    A publish without a verified signature claims nothing (anyone can copy a digest from a
    public OCI registry and publish it unsigned), so it never locks the image's real publisher
    out. Raises :class:`Conflict` (``DIGEST_OWNED``) when another namespace holds ``rec.digest``
    with a verified signature and ``rec.namespace`` holds no signed version of it, unless
    ``principal`` is an admin.
    Otherwise any namespace could carry another's image under its own name and act on it. The
    message names the first owner, nothing more.

    The owner's signer does not open the image to other namespaces: its bundle is public
    (``GET .../bundle``), so a replay of it proves nothing about who publishes.
    """
    if principal.role == "admin":
        return
    # Two bounded lookups (the first owner, a signed version in this namespace), not every
    # version of the digest.
    owners = (select(Plugin.namespace).join(PluginVersion, col(PluginVersion.plugin_id) == col(Plugin.id))
              .where(PluginVersion.digest == rec.digest, col(PluginVersion.signer_identity).is_not(None)))
    first = s.exec(owners.order_by(col(PluginVersion.id)).limit(1)).first()
    if first is None or s.exec(owners.where(Plugin.namespace == rec.namespace).limit(1)).first() is not None:
        return
    raise Conflict("DIGEST_OWNED",
                   f"the image {rec.digest} belongs to namespace {first!r}, which published "
                   "it first in this registry with a verified signature",
                   advice="publish an image you built and signed yourself (a new digest); if this "
                          "image is yours, ask the registry operator (an admin)")


def _version_conflict(key: str, version: str, existing: str, new: str) -> Conflict:
    if existing == new:
        return Conflict("VERSION_EXISTS", f"{key}@{version} is already published with {existing}",
                        advice="nothing to do: this exact image is already published")
    return Conflict("VERSION_CONFLICT",
                    f"{key}@{version} is already published with {existing}, not {new}",
                    advice="versions are immutable: bump the version and publish again")
