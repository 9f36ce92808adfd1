"""Database tables (SQLModel).

Table models (``table=True``) are only used by :mod:`registry._store`; no API model inherits
from one, and public models never carry secrets (token hashes stay in ``ApiToken``). The
request and response documents of the API are not here: they are defined once, in
:mod:`cortex_trust.sources`, for the routes and the client alike.

Times are stored as RFC 3339 UTC strings (``2026-01-02T03:04:05Z``): identical on SQLite and
PostgreSQL, and exactly what the policy input uses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from cortex_trust.ids import SLUG_PATTERN

__all__ = [
    "REVOCATION_KINDS",
    "SLUG",
    "ApiToken",
    "AuditEntry",
    "AuditHead",
    "DecisionReceipt",
    "Dispute",
    "Evidence",
    "LogNode",
    "Namespace",
    "NamespaceSetting",
    "OidcJti",
    "Plugin",
    "PluginVersion",
    "Promotion",
    "RetierResult",
    "RetierRun",
    "ReviewRow",
    "RevocationRow",
    "RevokedIdentity",
    "ScanJob",
    "TokenPublic",
    "TrustedPublisher",
    "TrustedPublisherPublic",
    "UsageDay",
    "VersionBundle",
    "WebhookDelivery",
]

#: Namespaces and plugin names: lowercase ASCII slugs (no case or Unicode look-alikes).
SLUG = SLUG_PATTERN


# ---------------------------------------------------------------------------------------- tables


class Namespace(SQLModel, table=True):
    """A namespace, owned by the publishers holding tokens for it."""

    __tablename__ = "namespace"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    created_at: str = Field(max_length=32)


class Plugin(SQLModel, table=True):
    """A plugin (``namespace/name``) and its pre-rendered read documents."""

    __tablename__ = "plugin"
    #: List filters and sorts walk these in page order (migrations 0005 and
    #: ``web_catalogue_sorts``): a page never sorts the catalogue. Each filter of the catalogue
    #: has an index in each order (``(filter, key)``, ``(filter, sort column, key)``).
    __table_args__ = (Index("ix_plugin_namespace_key", "namespace", "key"),
                      Index("ix_plugin_tier_key", "tier", "key"),
                      Index("ix_plugin_namespace_tier_key", "namespace", "tier", "key"),
                      Index("ix_plugin_published_key", "latest_published_at", "key"),
                      Index("ix_plugin_usage_key", "usage_count", "key"),
                      Index("ix_plugin_state_key", "latest_state", "key"),
                      Index("ix_plugin_network_key", "asks_network", "key"),
                      Index("ix_plugin_filesystem_key", "asks_filesystem", "key"),
                      *(Index(f"ix_plugin_{f}_{s}", column, order, "key")
                        for f, column in (("tier", "tier"), ("namespace", "namespace"), ("state", "latest_state"),
                                          ("network", "asks_network"), ("filesystem", "asks_filesystem"))
                        for s, order in (("published", "latest_published_at"), ("usage", "usage_count"))))
    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=64)
    name: str = Field(max_length=64)
    #: ``namespace/name`` case-folded: unique, and the order of list pagination.
    key: str = Field(max_length=129, unique=True, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    capabilities_json: str = Field(default="[]",
                                   sa_column=Column(Text, nullable=False, default="[]"))
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    tier: str | None = Field(default=None, max_length=16)
    action: str | None = Field(default=None, max_length=16)
    latest_version: str | None = Field(default=None, max_length=128)
    created_at: str = Field(max_length=32)
    updated_at: str = Field(max_length=32)
    summary_json: str = Field(sa_column=Column(Text, nullable=False))
    document_json: str = Field(sa_column=Column(Text, nullable=False))
    #: Kept by every write that changes the plugin's versions (the store's ``_refresh_plugin``)
    #: for the catalogue's sorts and filters, each walked in page order through its index:
    #: when a version of the plugin was last published (versions are never deleted, so it
    #: only grows),
    latest_published_at: str = Field(default="", max_length=32)
    #: how many installations (tokens) reported production use of any of its versions,
    usage_count: int = 0
    #: and what its latest version (``latest_version``) is and asks for (its manifest's
    #: ``trust.network`` and ``trust.filesystem``); ``None`` without versions.
    latest_state: str | None = Field(default=None, max_length=16)
    asks_network: bool = False
    asks_filesystem: bool = False
    #: What every catalogue page of the plugin shows of it (its description, its versions with
    #: their states), rendered with its documents (:mod:`registry._web._fragments`; migration
    #: 0018). ``None`` only for rows written before that revision: rendered on first read.
    page_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class PluginVersion(SQLModel, table=True):
    """One immutable version: manifest facts, image digest, decision, state."""

    __tablename__ = "plugin_version"
    __table_args__ = (UniqueConstraint("plugin_id", "version", name="uq_plugin_version"),)
    id: int | None = Field(default=None, primary_key=True)
    plugin_id: int = Field(foreign_key="plugin.id", index=True)
    version: str = Field(max_length=128)
    digest: str = Field(max_length=71, index=True)
    image: str = Field(max_length=512)
    state: str = Field(max_length=16)  # active | yanked | revoked
    #: The policy input built at publish time (manifest facts, artifact, first evidence).
    input_json: str = Field(sa_column=Column(Text, nullable=False))
    decision_json: str = Field(sa_column=Column(Text, nullable=False))
    tier: str = Field(max_length=16)
    action: str = Field(max_length=16)
    policy_revision: str = Field(default="", max_length=128)
    signer_identity: str | None = Field(default=None, max_length=1024, index=True)
    signer_issuer: str | None = Field(default=None, max_length=1024)
    published_at: str = Field(max_length=32)
    #: ``role:namespace:token_id`` (up to 94 characters; migration 0002).
    published_by: str = Field(max_length=128)
    revoked_reason: str | None = Field(default=None, max_length=2000)
    revoked_at: str | None = Field(default=None, max_length=32)
    #: Why, when and by whom (``role:namespace:token_id``) the version was yanked (migration
    #: 0006). Set while ``state`` is ``yanked``; cleared by an unyank (the audit log keeps them).
    yanked_reason: str | None = Field(default=None, max_length=2000)
    yanked_at: str | None = Field(default=None, max_length=32)
    yanked_by: str | None = Field(default=None, max_length=128)
    summary_json: str = Field(sa_column=Column(Text, nullable=False))
    document_json: str = Field(sa_column=Column(Text, nullable=False))
    #: The transparency-log leaf that recorded this version's publish (migration 0010; the
    #: audit entry id minus one), set by the store with the entry.
    log_index: int | None = None
    #: The version's own part of its catalogue pages, rendered with its documents
    #: (:mod:`registry._web._fragments`; migration 0018). ``None`` only for rows written before
    #: that revision: rendered on first read.
    page_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class VersionBundle(SQLModel, table=True):
    """The Sigstore bundle of a version as published, served to installers that verify it
    themselves. Its own table (migration 0008): written once, and kept out of the version row,
    which re-tiering rewrites."""

    __tablename__ = "version_bundle"
    version_id: int = Field(foreign_key="plugin_version.id", primary_key=True)
    bundle_json: str = Field(sa_column=Column(Text, nullable=False))


class DecisionReceipt(SQLModel, table=True):
    """One decision the registry made about a version, as the receipt it signed then (a DSSE
    envelope, :mod:`cortex_trust.policy._receipt`). Append-only: every decision adds a row, the
    newest is the version's current decision."""

    __tablename__ = "decision_receipt"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", index=True)
    decided_at: str = Field(max_length=32)
    envelope_json: str = Field(sa_column=Column(Text, nullable=False))


class Evidence(SQLModel, table=True):
    """One piece of evidence about a version's digest, as the policy-input fact document.

    ``facts_json`` is the serialised :mod:`cortex_trust.policy` model (signature facts
    include identity and issuer), so re-tiering never redoes cryptography.
    """

    __tablename__ = "evidence"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", index=True)
    kind: str = Field(max_length=16)  # signature | scan | tests (reviews: ReviewRow)
    digest: str = Field(max_length=71)
    facts_json: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(max_length=128)
    created_at: str = Field(max_length=32)


class ReviewRow(SQLModel, table=True):
    """One reviewer's current review of a version's digest (migration 0011).

    One row per ``(version, reviewer)``: a reviewer's newer review replaces only their own, and
    only they can withdraw it. ``reviewer`` is the reviewer token's ``namespace/holder`` (the
    ids the policy's ``verified.reviewers`` names), or its token id when it names no holder.
    """

    __tablename__ = "review"
    __table_args__ = (UniqueConstraint("version_id", "reviewer", name="uq_review_reviewer"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", index=True)
    reviewer: str = Field(max_length=160)
    verdict: str = Field(max_length=32)  # approved | rejected | changes_requested
    note: str | None = Field(default=None, max_length=2000)
    digest: str = Field(max_length=71)
    #: ``role:namespace:token_id`` of the token that wrote the current review.
    actor: str = Field(max_length=128)
    #: When the current review was written.
    reviewed_at: str = Field(max_length=32)


class UsageDay(SQLModel, table=True):
    """Production use of a digest reported by one installation on one UTC day (migration 0011).

    One row per ``(version, installation, day)``: an installation's further reports the same day
    are accepted but not recorded, so one token adds at most one active day per day.
    ``installation_id`` is the installation token's id and ``organization`` its namespace.
    """

    __tablename__ = "usage_day"
    __table_args__ = (UniqueConstraint("version_id", "installation_id", "day",
                                       name="uq_usage_day"),)
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", index=True)
    installation_id: str = Field(max_length=64)
    organization: str = Field(max_length=64)
    #: ``YYYY-MM-DD`` (UTC).
    day: str = Field(max_length=10)
    digest: str = Field(max_length=71)
    #: The first report of that day.
    reported_at: str = Field(max_length=32)


class ScanJob(SQLModel, table=True):
    """A persisted scan of a version's image: survives restarts (a crashed worker's lease
    expires and another worker takes the job)."""

    __tablename__ = "scan_job"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", unique=True)
    image: str = Field(max_length=512)
    digest: str = Field(max_length=71)
    state: str = Field(max_length=16, index=True)  # queued | running | done | failed
    attempts: int = 0
    lease_until: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=2000)
    created_at: str = Field(max_length=32)
    updated_at: str = Field(max_length=32)


class ApiToken(SQLModel, table=True):
    """An API token: only its SHA-256 hash is stored, scoped to a namespace and a role."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    token_id: str = Field(max_length=32, unique=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    namespace: str = Field(max_length=64)
    role: str = Field(max_length=16)
    #: Who holds the token within its namespace (e.g. `ada`): a reviewer's reviews are recorded
    #: as `namespace/holder` (`cortex-core/ada`), the id the policy's reviewer list names.
    holder: str | None = Field(default=None, max_length=64)
    created_at: str = Field(max_length=32)
    expires_at: str = Field(max_length=32)
    revoked: bool = False
    #: When, why and by whom the token was revoked (migration 0007); the reason is for the
    #: operator (``token list``) and is never sent to whoever presents the token.
    revoked_at: str | None = Field(default=None, max_length=32)
    revoked_reason: str | None = Field(default=None, max_length=500)
    revoked_by: str | None = Field(default=None, max_length=128)
    #: The last successful authentication, recorded at most every ``LAST_USED_GRANULARITY``
    #: (registry._store): one small UPDATE per token and period, not one per request.
    last_used_at: str | None = Field(default=None, max_length=32)
    #: The trusted publisher whose OIDC identity this short-lived credential was issued to
    #: (migration 0013); ``None`` for a token an operator created.
    publisher_id: str | None = Field(default=None, max_length=32, index=True)


class TrustedPublisher(SQLModel, table=True):
    """A CI workflow allowed to publish to a namespace with its OIDC identity token, without a
    stored secret (migration 0013): the token's issuer, repository, workflow file and (when
    set) environment must all match."""

    __tablename__ = "trusted_publisher"
    __table_args__ = (UniqueConstraint("namespace", "issuer", "repository", "workflow", "environment",
                                       name="uq_trusted_publisher"),)
    id: int | None = Field(default=None, primary_key=True)
    publisher_id: str = Field(max_length=32, unique=True)
    namespace: str = Field(max_length=64, index=True)
    issuer: str = Field(max_length=255)
    #: ``owner/repo`` as the ``repository`` claim names it (compared case-insensitively).
    repository: str = Field(max_length=255)
    #: The workflow file name (``release.yml``) in ``.github/workflows/`` of ``repository``.
    workflow: str = Field(max_length=255)
    #: The deployment environment the job must run in; ``None``: any.
    environment: str | None = Field(default=None, max_length=255)
    created_at: str = Field(max_length=32)
    created_by: str = Field(max_length=128)


class NamespaceSetting(SQLModel, table=True):
    """How a namespace may be published to (migration 0013). No row: the defaults (registry
    tokens and trusted publishers alike)."""

    __tablename__ = "namespace_setting"
    namespace: str = Field(max_length=64, primary_key=True)
    #: Publishes need a credential issued to a trusted publisher; registry tokens are refused.
    trusted_publishing_only: bool = False
    updated_at: str = Field(max_length=32)


class OidcJti(SQLModel, table=True):
    """An OIDC token already exchanged (migration 0013): its ``jti`` is refused until the token
    has expired (then the row may go)."""

    __tablename__ = "oidc_jti"
    __table_args__ = (UniqueConstraint("issuer", "jti", name="uq_oidc_jti"),)
    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(max_length=255)
    jti: str = Field(max_length=255)
    expires_at: str = Field(max_length=32, index=True)


class TokenPublic(BaseModel):
    """What an operator sees of a token (``cortex registry token list``): never the secret,
    never its hash. ``state`` is ``revoked`` (wins), ``expired`` or ``active`` at listing time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    token_id: str
    namespace: str
    role: str
    holder: str | None
    created_at: str
    expires_at: str
    last_used_at: str | None
    revoked_at: str | None
    revoked_reason: str | None
    state: Literal["active", "expired", "revoked"]
    #: The trusted publisher a short-lived credential was issued to; ``None`` for operator tokens.
    publisher_id: str | None = None


class TrustedPublisherPublic(BaseModel):
    """What an operator sees of a trusted publisher (``cortex registry publisher list``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    publisher_id: str
    namespace: str
    issuer: str
    repository: str
    workflow: str
    environment: str | None
    created_at: str


#: How far a revocation reaches (:class:`RevocationRow` ``kind``): ``version`` is one version
#: of one namespace (its publisher's act); ``digest`` is every version carrying the image and
#: ``identity`` every version a signer signed (admin acts; both keep the digest from being
#: published again).
REVOCATION_KINDS = ("version", "digest", "identity")


class RevocationRow(SQLModel, table=True):
    """One revocation of one version; ``id`` is the feed cursor (monotonically increasing).

    A version may carry several rows: its publisher's ``version`` revocation, then an admin's
    ``digest`` or ``identity`` one (migration 0009)."""

    __tablename__ = "revocation"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", index=True)
    #: One of :data:`REVOCATION_KINDS`.
    kind: str = Field(default="version", max_length=16)
    namespace: str = Field(max_length=64)
    name: str = Field(max_length=64)
    version: str = Field(max_length=128)
    #: Indexed: every publish checks that its digest was never revoked (migration 0003).
    digest: str = Field(max_length=71, index=True)
    reason: str = Field(max_length=2000)
    identity: str | None = Field(default=None, max_length=1024)
    issuer: str | None = Field(default=None, max_length=1024)
    actor: str = Field(max_length=128)
    created_at: str = Field(max_length=32)
    #: The transparency-log leaf that recorded this revocation (migration 0010).
    log_index: int | None = None


class RevokedIdentity(SQLModel, table=True):
    """A signer identity (with its issuer) an admin revoked: the versions it signed were revoked
    then, and whatever it signs later is refused at publish (migration 0003)."""

    __tablename__ = "revoked_identity"
    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=1024, index=True)
    issuer: str = Field(max_length=1024)
    reason: str = Field(max_length=2000)
    actor: str = Field(max_length=128)
    created_at: str = Field(max_length=32)


class AuditEntry(SQLModel, table=True):
    """Append-only, hash-chained audit log entry (see :mod:`registry._audit`)."""

    __tablename__ = "audit_log"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64)
    target: str = Field(max_length=512)
    before_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    after_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: str = Field(max_length=32)
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)
    #: What the write left in the tracked state tables (migration 0010; see registry._audit).
    effects_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AuditHead(SQLModel, table=True):
    """The single row every write locks first: it serialises writers and pins the chain's end."""

    __tablename__ = "audit_head"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int = 0
    hash: str = Field(max_length=64)


class LogNode(SQLModel, table=True):
    """One perfect subtree of the audit log's Merkle tree (migration 0010): ``level`` 0 holds
    the leaf hashes (``idx`` = entry id - 1); level ``l`` node ``i`` covers leaves
    ``[i * 2**l, (i + 1) * 2**l)``. Written with each entry, never changed: any proof is a few
    look-ups (registry._tlog)."""

    __tablename__ = "log_node"
    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: str = Field(max_length=64)


class Promotion(SQLModel, table=True):
    """The promotion pull request of one version on the registry repository (migration 0015, `governance`).

    One row per version: a second request for the same version returns this one. The GitHub
    facts (``state``, ``merged``, ``head_digest``, ``reviews_json``) are what GitHub reported
    last (a webhook delivery or a poll, always re-read from GitHub's API); the policy input's
    ``evidence.promotion`` is built from them, bound to ``digest``.
    """

    __tablename__ = "promotion"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="plugin_version.id", unique=True)
    digest: str = Field(max_length=71)
    repository: str = Field(max_length=140)
    number: int = Field(index=True)
    url: str = Field(max_length=300)
    branch: str = Field(max_length=255)
    state: str = Field(max_length=16)  # open | closed
    merged: bool = False
    merge_commit: str | None = Field(default=None, max_length=40)
    merged_at: str | None = Field(default=None, max_length=32)
    head_sha: str | None = Field(default=None, max_length=40)
    head_digest: str | None = Field(default=None, max_length=71)
    #: Each GitHub account's current review (``cortex_trust.policy.PromotionReview`` list).
    reviews_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    requested_by: str = Field(max_length=128)
    opened_at: str = Field(max_length=32)
    #: When GitHub was last read for this pull request (polling is bounded by it).
    checked_at: str = Field(max_length=32)


class Dispute(SQLModel, table=True):
    """One dispute: a GitHub issue on the registry repository about a plugin (``version_id``
    set) or one of its versions (migration 0015, `governance`). ``state`` and ``labels_json`` are what GitHub
    reported last; open disputes reach the policy input (``evidence.disputes``)."""

    __tablename__ = "dispute"
    __table_args__ = (UniqueConstraint("repository", "number", name="uq_dispute_issue"),)
    id: int | None = Field(default=None, primary_key=True)
    plugin_id: int = Field(foreign_key="plugin.id", index=True)
    version_id: int | None = Field(default=None, foreign_key="plugin_version.id")
    repository: str = Field(max_length=140)
    number: int
    url: str = Field(max_length=300)
    state: str = Field(max_length=16)  # open | closed
    labels_json: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    opened_at: str = Field(max_length=32)
    closed_at: str | None = Field(default=None, max_length=32)
    recorded_by: str = Field(max_length=128)
    checked_at: str = Field(max_length=32)


class WebhookDelivery(SQLModel, table=True):
    """A GitHub webhook delivery that was processed (migration 0015, `governance`): a replay of its
    ``X-GitHub-Delivery`` id is ignored."""

    __tablename__ = "webhook_delivery"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    event: str = Field(max_length=64)
    received_at: str = Field(max_length=32)


class RetierRun(SQLModel, table=True):
    """A re-tier run whose versions are decided by batch jobs (migration ``job_queue``).

    ``state`` is ``running`` until the run is applied in one write (``applied``) or discarded
    (``failed``, ``cancelled``); ``policy_json`` is the policy set every batch decides with
    (whatever machine runs it), ``start_seq`` the audit head when the run started: writes audited
    after it are decided again at the switch."""

    __tablename__ = "retier_run"
    id: str = Field(primary_key=True, max_length=36)
    state: str = Field(max_length=16)
    policy_json: str = Field(sa_column=Column(Text, nullable=False))
    policy_revision: str = Field(max_length=128)
    registry_name: str = Field(max_length=128)
    decided_at: str = Field(max_length=32)
    start_seq: int
    max_version_id: int
    total: int
    batches: int
    actor: str = Field(max_length=128)
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, max_length=2000)
    created_at: str = Field(max_length=32)
    updated_at: str = Field(max_length=32)


class RetierResult(SQLModel, table=True):
    """One version's decision staged by a re-tier run: invisible to readers until the run is
    applied; one row per (run, version), so a retried batch never decides a version twice."""

    __tablename__ = "retier_result"
    run_id: str = Field(primary_key=True, max_length=36, foreign_key="retier_run.id")
    version_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    tier: str = Field(max_length=16)
    action: str = Field(max_length=16)
    policy_revision: str = Field(max_length=128)
    failed: bool
    decision_json: str = Field(sa_column=Column(Text, nullable=False))
    summary_json: str = Field(sa_column=Column(Text, nullable=False))
    document_json: str = Field(sa_column=Column(Text, nullable=False))
    #: The decision's receipt envelope (canonical JSON), sealed when the batch is decided.
    receipt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: The version's page fragment rendered with the staged documents (``None`` when staged
    #: before migration 0018: rendered at the switch).
    page_html: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
