"""The policy input document (``input`` in Rego), version 1.

Python establishes facts; Rego decides. Everything a policy may look at is described here, and
``cortex_trust/schemas/input.schema.json`` is generated from these models (a test pins it).
Every evidence piece says whether it is ``present`` and which image digest it is about; pieces
about another digest, plugin or version are not used but listed in ``evidence.dropped``.

The clock is ``context.now`` (RFC 3339, UTC), read once per operation by the caller; policies
never call ``time.now_ns()``, so decisions and policy tests are deterministic. Every evidence
piece says when it was produced, where that is known: a scan's ``created_at``, a signature's
``integrated_time``, the tests' ``created_at``, each review's ``at``, usage's first and last
report, revocation data's ``fresh_as_of``; the policy weighs their age against ``context.now``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

from .._text import clip
from ..ids import DIGEST_PATTERN

__all__ = [
    "MAX_SIGNER_REGEXP",
    "SCHEMA_VERSION",
    "Artifact",
    "CommandLineSigner",
    "Context",
    "DisputeEvidence",
    "DisputeRecord",
    "DroppedEvidence",
    "Evidence",
    "GitHubClaims",
    "ManifestFacts",
    "PlatformVersionSource",
    "PluginRef",
    "PolicyInput",
    "PromotionEvidence",
    "PromotionReview",
    "ReviewEvidence",
    "ReviewRecord",
    "ReviewVerdict",
    "RevocationEvidence",
    "ScanAttester",
    "ScanEvidence",
    "ScanOrigin",
    "ScanVulnerability",
    "SignatureEvidence",
    "SignerContinuityEvidence",
    "SignerRef",
    "TestEvidence",
    "TransparencyEvidence",
    "UsageEvidence",
    "UsageReporter",
    "format_time",
    "input_json_schema",
]

SCHEMA_VERSION: Literal["cortex.input/v1"] = "cortex.input/v1"

Operation = Literal["verify", "publish", "install", "run"]
#: Where the CORTEX platform version in ``context.cortex_version`` came from.
PlatformVersionSource = Literal["config", "env", "registry"]
Severity = Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
#: What a reviewer said (``ReviewRecord.verdict``).
ReviewVerdict = Literal["approved", "rejected", "changes_requested"]
#: Who produced a scan (``ScanEvidence.origin``).
ScanOrigin = Literal["registry", "attested", "pipeline", "self-reported"]


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: How much of a text from the input a policy quotes in a reason (``short()`` in
#: policies/cortex/facts.rego keeps this many characters).
QUOTED_CHARS = 200


def _quoted(text: str) -> str:
    return clip(text, QUOTED_CHARS)


#: A text the policies quote in reasons (errors, problems, why evidence was dropped): at most
#: :data:`QUOTED_CHARS` characters, cut before a digest rather than through it, so the policy's
#: own cut never falls inside one.
QuotedText = Annotated[str, AfterValidator(_quoted)]


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and second precision: the only time format in input."""
    if t.tzinfo is None:
        raise ValueError("times in the policy input must be timezone-aware")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ManifestFacts(_Facts):
    """``input.manifest``: whether the manifest is valid, and its normalised content.

    When ``valid`` is false, ``document`` is null and ``problems`` lists why; policies must treat
    every manifest-derived permission (network, filesystem) as not declared.
    """

    valid: bool
    problems: list[QuotedText] = Field(default_factory=list)
    #: The manifest after validation, defaults applied (``trust.sandbox`` true, ``network`` and
    #: ``filesystem`` false), exactly as ``Manifest.to_document()`` produces it.
    document: dict[str, Any] | None = None


class PluginRef(_Facts):
    """``input.plugin``: who the plugin is. ``full_name`` is ``namespace/name`` or just ``name``."""

    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    full_name: str | None = None
    #: The source repository (``owner/repo``) of a plugin installed from GitHub; policies trust
    #: that repository's own release workflow as its signer by default.
    repository: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9_.-]{1,100}$")
    #: The namespace of the registry token that published the version (set by a registry at
    #: publish and kept in its stored input); the policy reserves core namespaces with it.
    publisher: str | None = None


class Artifact(_Facts):
    """``input.artifact``: the image. ``digest`` is the manifest digest every evidence piece must
    be about; ``pinned`` is true when the reference itself carries that digest."""

    image: str | None = None
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    pinned: bool = False


class GitHubClaims(_Facts):
    """GitHub Actions claims from the Fulcio certificate extensions, when present."""

    repository: str | None = None
    workflow_ref: str | None = None
    sha: str | None = None
    trigger: str | None = None


class SignatureEvidence(_Facts):
    """``input.evidence.signature``.

    ``verified`` means cryptographically valid (chain to a trusted root, transparency-log
    inclusion, signature over this artifact digest). Whether ``identity``/``issuer`` are trusted
    for this plugin is the policy's call. ``error`` is set when a bundle was given but did not
    verify (``present`` true, ``verified`` false).
    """

    present: bool = False
    verified: bool = False
    kind: Literal["message_signature", "dsse"] | None = None
    identity: str | None = None
    issuer: str | None = None
    github: GitHubClaims | None = None
    subject_digest: str | None = None
    integrated_time: str | None = None
    trusted_root: str | None = None
    error: QuotedText | None = None
    source: str | None = None


class ScanVulnerability(_Facts):
    id: str
    severity: Severity
    package: str = ""
    installed_version: str = ""
    fixed_version: str = ""


class ScanAttester(_Facts):
    """``input.evidence.scan.attester``: who signed the scan attestation of an ``attested`` scan.

    Present only on a scan whose attestation verified cryptographically (chain to a trusted root,
    transparency-log inclusion, an in-toto statement about the artifact digest): an attestation
    that does not verify is never scan evidence. Whether this signer is trusted to attest scans
    of the plugin is the policy's call (``trusted_scan_attesters``).
    """

    identity: str | None = None
    issuer: str | None = None
    #: The name of the Sigstore trust root the attestation chained to.
    trusted_root: str | None = None
    #: The verified signing time.
    signed_at: str | None = None
    #: The in-toto predicate type (cosign's vulnerability predicate).
    predicate_type: str | None = None


class ScanEvidence(_Facts):
    """``input.evidence.scan``: a Trivy scan and how it was produced.

    ``bound`` is true only when the report names the artifact digest. ``scanners`` lists the
    scanners known to have run (``vuln``, ``secret``, ``misconfig``); a report file alone cannot
    prove which ran, so the collector records what it can show. Unscanned is never clean.

    ``origin`` says who produced the scan, which the policy weighs (``scan.accepted_origins``):
    ``registry`` (the registry ran Trivy itself), ``attested`` (a signed scan attestation that
    verified; its signer in ``attester``), ``pipeline`` (the report or scan of whoever runs
    ``cortex plugin verify``) or ``self-reported`` (a report the publisher uploaded). Null
    means unknown, which no default policy accepts.
    """

    present: bool = False
    bound: bool = False
    digest: str | None = None
    produced_by: Literal["report", "trivy"] | None = None
    origin: ScanOrigin | None = None
    attester: ScanAttester | None = None
    scanners: list[Literal["vuln", "secret", "misconfig"]] = Field(default_factory=list)
    trivy_version: str | None = None
    db_updated_at: str | None = None
    created_at: str | None = None
    counts: dict[Severity, NonNegativeInt] = Field(default_factory=dict)
    vulnerabilities: list[ScanVulnerability] = Field(default_factory=list)
    secrets: NonNegativeInt = 0
    misconfigurations: NonNegativeInt = 0
    error: QuotedText | None = None
    source: str | None = None


class TestEvidence(_Facts):
    """``input.evidence.tests``: totals from JUnit XML, and when the run started
    (``created_at``: the earliest suite timestamp that names a time zone; null when unknown)."""

    __test__ = False  # not a pytest class

    present: bool = False
    total: NonNegativeInt = 0
    failures: NonNegativeInt = 0
    errors: NonNegativeInt = 0
    skipped: NonNegativeInt = 0
    created_at: str | None = None
    digest: str | None = None
    source: str | None = None


#: The fields of the single-review shape earlier inputs used (``ReviewEvidence``).
_LEGACY_REVIEW_KEYS = frozenset({"status", "reviewer", "reviewed_at"})


class ReviewRecord(_Facts):
    """``input.evidence.review.reviews[]``: one reviewer's current review of this digest.

    ``reviewer`` is who reviewed (the registry records ``NAMESPACE/HOLDER`` of the reviewer
    token, the ids ``verified.reviewers`` names; a review document names it itself), ``verdict``
    what they said and ``at`` when (RFC 3339 UTC). Whether the reviewer counts is the policy's
    call: a record is a fact about who said what, never a verdict.
    """

    reviewer: str
    verdict: ReviewVerdict
    at: str | None = None
    #: Where this review was read from: a registry's name, or the file ``verify`` read.
    source: str | None = None


class ReviewEvidence(_Facts):
    """``input.evidence.review``: every review of this digest, one per reviewer.

    ``present`` is true when at least one review was supplied. No review hides another: the
    registry keeps one review per reviewer (a reviewer's newer review replaces only their own),
    and the policy sees all of them.

    The single-review shape of earlier inputs (``status``, ``reviewer``, ``reviewed_at``) is
    read as a list of that one review, so stored inputs stay readable; it is never written.
    """

    present: bool = False
    reviews: list[ReviewRecord] = Field(default_factory=list)
    digest: str | None = None
    source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_review(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not _LEGACY_REVIEW_KEYS & data.keys():
            return data
        data = dict(data)
        status = data.pop("status", None)
        reviewer = data.pop("reviewer", None)
        at = data.pop("reviewed_at", None)
        if status is None or data.get("present") is not True:
            return data
        if data.get("reviews"):
            raise ValueError("give either reviews or the single-review fields, not both")
        data["reviews"] = [{"reviewer": reviewer if isinstance(reviewer, str) else "",
                            "verdict": status, "at": at, "source": data.get("source")}]
        return data


class UsageReporter(_Facts):
    """``input.evidence.usage.reporters[]``: the production use one organization reported.

    ``organization`` is the namespace of the reporting installation tokens (on a registry) or
    the name a usage document gives; ``installations`` how many distinct installations of it
    reported; ``active_days`` on how many distinct UTC days at least one of them reported;
    ``first`` and ``last`` its first and last report; ``days_in_production`` whole days from
    ``first`` to ``context.now``. Which organizations count as independent is the policy's
    call (the default policy does not count the plugin's own namespace).
    """

    organization: str
    installations: NonNegativeInt = 0
    active_days: NonNegativeInt = 0
    days_in_production: NonNegativeInt = 0
    first: str | None = None
    last: str | None = None


class UsageEvidence(_Facts):
    """``input.evidence.usage``: production use of this digest, measured at ``context.now``.

    Totals over every report: the first and last report, whole days from the first report to
    ``context.now`` (``days_in_production``), distinct UTC days with a report
    (``active_days``), distinct installations and organizations, and per organization who
    reported (``reporters``). A fact that was not supplied is 0 or empty, never "enough".
    """

    present: bool = False
    first_production_use: str | None = None
    last_production_use: str | None = None
    days_in_production: NonNegativeInt = 0
    active_days: NonNegativeInt = 0
    installations: NonNegativeInt = 0
    organizations: NonNegativeInt = 0
    reporters: list[UsageReporter] = Field(default_factory=list)
    digest: str | None = None
    source: str | None = None


class RevocationEvidence(_Facts):
    """``input.evidence.revocation``. ``checked`` is false when no revocation data was consulted;
    ``fresh_as_of`` is when that data was last known current."""

    checked: bool = False
    revoked: bool = False
    reason: QuotedText | None = None
    revoked_at: str | None = None
    fresh_as_of: str | None = None
    source: str | None = None


class TransparencyEvidence(_Facts):
    """``input.evidence.transparency``: whether the version is proven to be in its registry's
    transparency log (the audit log), as the installer checked it.

    ``present``: a checkpoint signed by the registry's configured log key was verified.
    ``included``: the leaf that recorded this version's publish (naming this digest) is included
    in the tree of that checkpoint (an RFC 9162 inclusion proof verified). ``consistent_with_seen``:
    ``true`` when the checkpoint provably extends the one this machine saw before from that
    registry, ``false`` when it does not (a forked, truncated or rewritten history, or no checkpoint
    that verifies served although this machine holds one from that registry: no proof of
    extension), ``null`` when there was none to compare with. ``error`` says why something could not be
    established (no log key configured, no signed checkpoint served, a bad proof...).
    """

    present: bool = False
    included: bool = False
    checkpoint_size: NonNegativeInt | None = None
    log_index: NonNegativeInt | None = None
    consistent_with_seen: bool | None = None
    seen_size: NonNegativeInt | None = None
    error: QuotedText | None = None
    source: str | None = None


#: A promotion reviewer's current state (``PromotionReview.state``), as GitHub names it in lower case.
PromotionReviewState = Literal["approved", "changes_requested", "dismissed"]


class PromotionReview(_Facts):
    """``input.evidence.promotion.reviews[]``: one GitHub account's current review of the
    promotion pull request (its latest review that is not a plain comment, as GitHub counts them).

    ``login`` is the GitHub login, ``at`` when the review was submitted, ``commit`` the commit it
    was made on. Whether the login counts is the policy's call (``governance`` reviewers).
    """

    login: str = Field(max_length=39)
    state: PromotionReviewState
    at: str | None = None
    commit: str | None = Field(default=None, max_length=40)


class PromotionEvidence(_Facts):
    """``input.evidence.promotion``: the promotion pull request of this digest on the registry
    repository, as GitHub reports it.

    ``head_digest`` is the digest the version's index entry names at the pull request's head
    (``None`` when the head has no readable entry): a promotion whose head no longer names
    ``digest`` proves nothing about it. ``state`` is the pull request's (``open``, ``closed``);
    ``merged``, ``merge_commit`` and ``merged_at`` say whether and how it was merged. ``reviews``
    holds each account's current review, listed or not: the policy weighs them.
    """

    present: bool = False
    url: str | None = Field(default=None, max_length=300)
    number: NonNegativeInt | None = None
    repository: str | None = Field(default=None, max_length=140)
    state: Literal["open", "closed"] | None = None
    merged: bool = False
    merge_commit: str | None = Field(default=None, max_length=40)
    merged_at: str | None = None
    head_sha: str | None = Field(default=None, max_length=40)
    head_digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    reviews: list[PromotionReview] = Field(default_factory=list, max_length=100)
    opened_at: str | None = None
    digest: str | None = None
    source: str | None = None


class DisputeRecord(_Facts):
    """``input.evidence.disputes.disputes[]``: one dispute, a GitHub issue on the registry
    repository, as GitHub last reported it (``state``, ``labels``). ``version`` is the disputed
    version, ``None`` for the whole plugin."""

    url: str = Field(max_length=300)
    number: NonNegativeInt
    state: Literal["open", "closed"]
    labels: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=30)
    opened_at: str | None = None
    closed_at: str | None = None
    version: str | None = None


class DisputeEvidence(_Facts):
    """``input.evidence.disputes``: the open disputes of this plugin (of this version, or of the
    whole plugin). A closed dispute is history (listed by the registry, not evidence). Like a
    revocation, a dispute only ever restricts: it counts from any source."""

    present: bool = False
    disputes: list[DisputeRecord] = Field(default_factory=list, max_length=100)
    source: str | None = None


class SignerRef(_Facts):
    """A signer as continuity compares them: identity, issuer and the Sigstore root its bundle
    chained to."""

    identity: str | None = None
    issuer: str | None = None
    trusted_root: str | None = None


class SignerContinuityEvidence(_Facts):
    """``input.evidence.signer_continuity``: this version's signer compared with the plugin's
    earlier versions (the registry, at publish) or with the signer pinned at first install (the
    installer).

    ``present``: a comparison was made. ``first_seen_signer``: no earlier version (or pin) was
    signed by this signer (identity, issuer and root); true for a plugin's first signed version.
    ``signer_changed``: the previous version (or the pin) was signed by another signer.
    ``signature_dropped``: the previous version (or the pin) was signed and this version has no
    verified signature. ``previous_version`` and ``previous_signer`` name what it was compared
    with.
    """

    present: bool = False
    first_seen_signer: bool = False
    signer_changed: bool = False
    signature_dropped: bool = False
    previous_version: str | None = None
    previous_signer: SignerRef | None = None
    source: str | None = None


class DroppedEvidence(_Facts):
    """Evidence that was supplied but not used, and why (e.g. ``DIGEST_MISMATCH``)."""

    kind: Literal["signature", "scan", "tests", "review", "usage", "revocation", "promotion", "disputes"]
    code: str
    message: QuotedText


class Evidence(_Facts):
    """``input.evidence``: facts only, one piece per source."""

    signature: SignatureEvidence = SignatureEvidence()
    scan: ScanEvidence = ScanEvidence()
    tests: TestEvidence = TestEvidence()
    review: ReviewEvidence = ReviewEvidence()
    usage: UsageEvidence = UsageEvidence()
    revocation: RevocationEvidence = RevocationEvidence()
    transparency: TransparencyEvidence = TransparencyEvidence()
    promotion: PromotionEvidence = PromotionEvidence()
    disputes: DisputeEvidence = DisputeEvidence()
    signer_continuity: SignerContinuityEvidence = SignerContinuityEvidence()
    dropped: list[DroppedEvidence] = Field(default_factory=list)


#: Longest regular expression a command-line signer may give (``*_regexp``).
MAX_SIGNER_REGEXP = 512
#: Longest exact identity or issuer a command-line signer may give.
MAX_SIGNER_TEXT = 2048


class CommandLineSigner(_Facts):
    """``input.context.command_line_signers[]``: a signer the person running ``verify`` trusts
    for this one verification, given on its command line as cosign users do
    (``--certificate-identity`` or ``--certificate-identity-regexp``, and
    ``--certificate-oidc-issuer`` or ``--certificate-oidc-issuer-regexp``).

    Exactly one of ``identity`` and ``identity_regexp``, and exactly one of ``issuer`` and
    ``issuer_regexp``. A regular expression must match the whole value (the policy anchors it)
    and is at most :data:`MAX_SIGNER_REGEXP` characters. A fact about what was asked, never a
    verdict: whether and where such a signer counts is the policy's call.
    """

    identity: str | None = Field(default=None, min_length=1, max_length=MAX_SIGNER_TEXT)
    identity_regexp: str | None = Field(default=None, min_length=1, max_length=MAX_SIGNER_REGEXP)
    issuer: str | None = Field(default=None, min_length=1, max_length=MAX_SIGNER_TEXT)
    issuer_regexp: str | None = Field(default=None, min_length=1, max_length=MAX_SIGNER_REGEXP)
    source: Literal["command-line"] = "command-line"

    @model_validator(mode="after")
    def _one_of_each(self) -> CommandLineSigner:
        if (self.identity is None) == (self.identity_regexp is None):
            raise ValueError("give exactly one of identity and identity_regexp")
        if (self.issuer is None) == (self.issuer_regexp is None):
            raise ValueError("give exactly one of issuer and issuer_regexp")
        return self


class Context(_Facts):
    """``input.context``: the reference time, the CORTEX platform's version (not cortex-trust's)
    and its source, the operation, the registry, and the signers trusted on the command line."""

    now: str
    cortex_version: str | None = Field(
        default=None, description="The CORTEX platform's version (compared with "
                                  "trust.min_cortex_version); null when unknown.")
    operation: Operation
    registry: str | None = None
    cortex_version_source: PlatformVersionSource | None = Field(
        default=None, description="Where cortex_version came from: `config` (the installer's "
                                  "configuration), `env` (CORTEX_PLATFORM_VERSION), `registry` "
                                  "(the registry's setting); null when unknown or not said.")
    command_line_signers: list[CommandLineSigner] = Field(
        default_factory=list, max_length=16,
        description="Signers trusted on the command line of `cortex plugin verify` "
                    "(--certificate-identity / --certificate-oidc-issuer and their -regexp forms); "
                    "empty everywhere else.")


class PolicyInput(_Facts):
    """The whole input document handed to ``data.cortex.decision``."""

    schema_version: Literal["cortex.input/v1"] = SCHEMA_VERSION
    manifest: ManifestFacts
    plugin: PluginRef = PluginRef()
    artifact: Artifact = Artifact()
    evidence: Evidence = Evidence()
    context: Context

    def to_json(self) -> str:
        """The document as compact JSON text (what the engines are given)."""
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())  # type: ignore[no-any-return]


def input_json_schema() -> dict[str, Any]:
    """The JSON Schema of the input document (written to ``schemas/input.schema.json``)."""
    schema = PolicyInput.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cortex.dev/schemas/cortex.input/v1.json"
    return schema
