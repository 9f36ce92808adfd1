"""The registry API's documents (``/api/v1``), defined once for the server and the client.

The registry service validates request bodies with the request models and documents its answers
with the response models (OpenAPI); :class:`~cortex_trust.sources.RegistryClient` parses every
answer into a response model. The client imports only this module, never the ``registry``
package.

* **Requests** forbid unknown fields, so a publisher cannot set its own tier, review or state
  (mass assignment); free text admits no NUL or control characters but tab and line breaks.
* **Responses** ignore unknown fields (a newer registry may add some) and are strict about the
  known ones: a 2xx answer is only a success once it parses. Fields a registry from before a
  feature does not send have a default (``yank``, ``kind``, ``log_index``).

Read routes serve pre-rendered documents (``registry._documents``); a test checks that every
document the server emits validates against these models and has no field they lack.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..ids import DIGEST_PATTERN, SLUG_PATTERN
from ..policy import Decision

__all__ = [
    "VERSION_PATTERN",
    "DigestRevokeCreate",
    "DisputeCreate",
    "DisputeDoc",
    "DisputeList",
    "GovernanceInfo",
    "IdentityRevokeCreate",
    "LogLeaf",
    "LogProof",
    "OidcAudience",
    "OidcCredential",
    "OidcExchangeCreate",
    "PluginDetail",
    "PluginPage",
    "PluginSummary",
    "PromotionDoc",
    "PublishCreate",
    "ReviewCreate",
    "ReviewWithdraw",
    "RevocationCreate",
    "RevocationEntry",
    "RevocationPage",
    "RevokedVersions",
    "UsageCreate",
    "VersionDetail",
    "VersionList",
    "VersionLog",
    "VersionSummary",
    "YankCreate",
]

#: A version as the registry names it in paths and bodies (SemVer and the like).
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,127}$"
#: The largest manifest, bundle or report a publish may carry.
_MAX_DOC = 512 * 1024
#: Free text without NUL or control characters (tab, CR and LF allowed).
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


# ------------------------------------------------------------------------------------ requests


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublishCreate(_Request):
    """``POST /api/v1/plugins``: only what a publisher may say. Tier, review and state are the
    registry's (unknown fields are refused)."""

    namespace: str | None = Field(default=None, pattern=SLUG_PATTERN)
    manifest: str = Field(min_length=1, max_length=_MAX_DOC)
    image: str = Field(min_length=1, max_length=512)
    bundle: str = Field(min_length=2, max_length=_MAX_DOC)
    tests_junit: str | None = Field(default=None, max_length=_MAX_DOC)
    #: The publisher's own Trivy JSON report: recorded as a ``self-reported`` scan (the registry
    #: still scans the image itself, and the default policy accepts only that scan or an
    #: attested one for Community).
    scan_report: str | None = Field(default=None, max_length=_MAX_DOC)
    #: The scanners ``scan_report`` was produced with, as the publisher ran Trivy
    #: (``--scanners vuln,secret``): a clean report cannot show them. Recorded as the
    #: publisher's declaration; the scan stays ``self-reported``.
    scan_scanners: list[Literal["vuln", "secret", "misconfig"]] | None = Field(
        default=None, max_length=3)
    #: A Sigstore bundle with a signed vulnerability-scan attestation (cosign's vuln predicate,
    #: in-toto subject = the image digest): an ``attested`` scan, signer recorded.
    scan_attestation: str | None = Field(default=None, min_length=2, max_length=_MAX_DOC)


class ReviewCreate(_Request):
    """A core-team review of one version (bound to its digest)."""

    status: Literal["approved", "rejected", "changes_requested"]
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    note: str | None = Field(default=None, max_length=2000)


class ReviewWithdraw(_Request):
    """Withdraw the caller's own review. ``reviewer``, when given, must be the caller's own
    reviewer id: nobody withdraws another reviewer's review."""

    reviewer: str | None = Field(default=None, min_length=1, max_length=160,
                                 pattern=r"^[a-z0-9/_-]+$")


class UsageCreate(_Request):
    """An installation reporting production use of a digest."""

    namespace: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(pattern=SLUG_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    digest: str = Field(pattern=DIGEST_PATTERN)


class RevocationCreate(_Request):
    """Revoke one version."""

    #: Human text: no NUL (PostgreSQL text cannot hold it) and no other control characters
    #: but tab and line breaks.
    reason: str = Field(min_length=1, max_length=2000, pattern=_TEXT)


class YankCreate(_Request):
    """Yank one version: ranges skip it, an exact pin still installs it (with a warning)."""

    #: Human text shown to installers: no NUL (PostgreSQL text cannot hold it) and no other
    #: control characters but tab and line breaks.
    reason: str = Field(min_length=1, max_length=2000, pattern=_TEXT)


class DigestRevokeCreate(_Request):
    """Revoke every version carrying ``digest``, under any name (admin)."""

    digest: str = Field(pattern=DIGEST_PATTERN)
    reason: str = Field(min_length=1, max_length=2000, pattern=_TEXT)


class IdentityRevokeCreate(_Request):
    """Revoke every version signed by ``identity`` as issued by ``issuer``."""

    identity: str = Field(min_length=1, max_length=1024, pattern=_TEXT)
    issuer: str = Field(min_length=1, max_length=1024, pattern=_TEXT)
    reason: str = Field(min_length=1, max_length=2000, pattern=_TEXT)


# ----------------------------------------------------------------------------------- responses


class _Doc(BaseModel):
    # Newer registries may add fields; unknown fields are ignored, known ones are strict.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PluginSummary(_Doc):
    """One item of ``GET /api/v1/plugins``."""

    namespace: str
    name: str
    full_name: str
    description: str
    latest_version: str | None
    tier: str | None
    action: str | None


class PluginPage(_Doc):
    """One page of the plugin list; pass ``next_cursor`` back for the next page."""

    items: tuple[PluginSummary, ...]
    next_cursor: str | None


class PluginDetail(PluginSummary):
    """``GET /api/v1/plugins/{namespace}/{name}``."""

    capabilities: tuple[str, ...]
    updated_at: str
    #: How many versions the plugin has (in every state).
    versions: int


class VersionSummary(_Doc):
    """One item of ``GET .../versions``."""

    namespace: str
    name: str
    version: str
    image: str
    digest: str
    state: Literal["active", "yanked", "revoked"]
    tier: str
    action: str
    published_at: str


class VersionList(_Doc):
    """``GET .../versions``: every version of a plugin, oldest first."""

    items: tuple[VersionSummary, ...]


class VersionDetail(VersionSummary):
    """``GET .../versions/{version}`` and the answer of every write about one version: manifest,
    evidence summary and the registry's decision."""

    policy_revision: str
    #: The role of the token that published it (``publisher`` or ``admin``).
    published_by: str
    #: ``{"identity", "issuer"}`` of a verified signature, else null.
    signer: dict[str, Any] | None
    manifest: dict[str, Any] | None
    evidence: dict[str, Any]
    decision: Decision
    #: ``{"reason", "revoked_at"}`` while the version is revoked, else null.
    revocation: dict[str, Any] | None
    #: ``{"reason", "yanked_at"}`` while the version is yanked (registries before yanking
    #: existed send no such field).
    yank: dict[str, Any] | None = None


class RevocationEntry(_Doc):
    """One entry of the revocation feed.

    ``kind`` says how far it reaches (:func:`cortex_trust.install.revocation_evidence`
    matches by it): ``version`` (this namespace, name and version), ``digest`` or ``identity``
    (the digest under any name). Registries from before kinds send none; an entry without a
    kind, or with one this client does not know, is matched by the broadest rule.
    """

    cursor: int
    kind: str | None = None
    namespace: str
    name: str
    version: str
    digest: str
    reason: str
    identity: str | None
    issuer: str | None
    revoked_at: str
    #: The audit-log leaf that recorded this revocation (its inclusion proof:
    #: ``GET /api/v1/log/proof/inclusion``); null for none recorded, absent before logs.
    log_index: int | None = None


class RevocationPage(_Doc):
    """``GET /api/v1/revocations``: revocations after a cursor; ``next_cursor`` is where to
    continue from."""

    items: tuple[RevocationEntry, ...]
    next_cursor: int


class RevokedVersions(_Doc):
    """The answer of ``POST /api/v1/revocations/digest|identity``: the versions (as
    ``ns/name@version``) this call gave a revocation entry."""

    revoked: tuple[str, ...]


class LogLeaf(_Doc):
    """One leaf of the registry's audit log: its index and the exact text whose RFC 9162 leaf
    hash is in the tree (verify the hash before reading the text)."""

    index: int = Field(ge=0, le=2**63 - 1)
    leaf: str = Field(max_length=4 * 1024 * 1024)


class VersionLog(_Doc):
    """``GET .../versions/{version}/log``: the leaves that recorded a version's publish and its
    revocations (registries before transparency logs have no such route)."""

    publish: LogLeaf | None = None
    revocations: tuple[LogLeaf, ...] = ()


class LogProof(_Doc):
    """``GET /api/v1/log/proof/inclusion`` (``index``, ``size``) or ``.../consistency``
    (``first``, ``second``): the proof's hashes, base64."""

    index: int | None = None
    size: int | None = None
    first: int | None = None
    second: int | None = None
    hashes: tuple[str, ...] = Field(max_length=130)


# ------------------------------------------------------------------------- trusted publishing


class OidcExchangeCreate(_Request):
    """``POST /api/v1/oidc/exchange`` (the identity token is the bearer credential): which
    namespace the credential is for, when the identity is a trusted publisher of several."""

    namespace: str | None = Field(default=None, pattern=SLUG_PATTERN)


class OidcAudience(_Doc):
    """``GET /api/v1/oidc/audience``: the ``aud`` an identity token must carry for this
    registry (request the CI's token with it)."""

    audience: str = Field(min_length=1, max_length=255)


class OidcCredential(_Doc):
    """A short-lived publisher credential issued for a verified identity token: its secret (a
    bearer token for this registry), public id, namespace, trusted publisher and expiry."""

    token: str = Field(min_length=1, max_length=200)
    token_id: str = Field(max_length=32)
    namespace: str = Field(max_length=64)
    publisher_id: str = Field(max_length=32)
    expires_at: str = Field(max_length=32)


# ---------------------------------------------------------------------------------- governance


class DisputeCreate(_Request):
    """``POST .../disputes``: record a dispute opened as issue ``issue`` on the registry
    repository. The registry reads the issue from GitHub itself (nothing else is taken from the
    caller) and records it only when its body carries the dispute template for this plugin."""

    issue: int = Field(ge=1, le=2**31 - 1)


class PromotionDoc(_Doc):
    """``POST``/``GET .../versions/{version}/promotion``: a version's promotion pull request and
    what GitHub last reported about it (``evidence.promotion`` of the version's decision)."""

    namespace: str
    name: str
    version: str
    digest: str
    repository: str
    number: int
    url: str
    state: Literal["open", "closed"]
    merged: bool
    head_digest: str | None
    #: Each GitHub account's current review: ``{"login", "state", "at", "commit"}``.
    reviews: tuple[dict[str, Any], ...]
    opened_at: str
    checked_at: str
    #: Whether this request opened it (``false``: it existed).
    created: bool = False


class DisputeDoc(_Doc):
    """One dispute of a plugin (a GitHub issue on the registry repository)."""

    namespace: str
    name: str
    #: The disputed version; null for the whole plugin.
    version: str | None
    url: str
    number: int
    state: Literal["open", "closed"]
    labels: tuple[str, ...]
    opened_at: str
    closed_at: str | None


class DisputeList(_Doc):
    """``GET .../disputes``: every dispute of a plugin, open and closed, oldest first."""

    items: tuple[DisputeDoc, ...]


class GovernanceInfo(_Doc):
    """``GET /api/v1/governance``: where promotions and disputes happen.

    ``repository`` is the registry repository (``OWNER/REPO``) and ``web_url`` its GitHub page;
    both are null when the registry has no GitHub side configured. ``dispute_labels`` are the
    labels a dispute carries (plus ``security_label`` when it is about security).
    """

    configured: bool
    repository: str | None
    web_url: str | None
    dispute_labels: tuple[str, ...]
    security_label: str
