"""The policy input document (``input`` in Rego), version 1.

Python establishes facts; Rego decides. Everything a policy may look at is described here, and
``cortex_trust/schemas/input.schema.json`` is generated from these models (a test pins it).
Every evidence piece says whether it is ``present`` and which image digest it is about; pieces
about another digest, plugin or version are not used but listed in ``evidence.dropped``.

The clock is ``context.now`` (RFC 3339, UTC), read once per operation by the caller; policies
never call ``time.now_ns()``, so decisions and policy tests are deterministic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

__all__ = [
    "SCHEMA_VERSION",
    "Artifact",
    "Context",
    "DroppedEvidence",
    "Evidence",
    "GitHubClaims",
    "ManifestFacts",
    "PluginRef",
    "PolicyInput",
    "ReviewEvidence",
    "RevocationEvidence",
    "ScanEvidence",
    "ScanVulnerability",
    "SignatureEvidence",
    "TestEvidence",
    "UsageEvidence",
    "format_time",
    "input_json_schema",
]

SCHEMA_VERSION: Literal["cortex.input/v1"] = "cortex.input/v1"

Operation = Literal["verify", "publish", "install", "run"]
Severity = Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
_DIGEST = r"^sha256:[0-9a-f]{64}$"


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    problems: list[str] = Field(default_factory=list)
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


class Artifact(_Facts):
    """``input.artifact``: the image. ``digest`` is the manifest digest every evidence piece must
    be about; ``pinned`` is true when the reference itself carries that digest."""

    image: str | None = None
    digest: str | None = Field(default=None, pattern=_DIGEST)
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
    error: str | None = None
    source: str | None = None


class ScanVulnerability(_Facts):
    id: str
    severity: Severity
    package: str = ""
    installed_version: str = ""
    fixed_version: str = ""


class ScanEvidence(_Facts):
    """``input.evidence.scan``: a Trivy scan and how it was produced.

    ``bound`` is true only when the report names the artifact digest. ``scanners`` lists the
    scanners known to have run (``vuln``, ``secret``, ``misconfig``); a report file alone cannot
    prove which ran, so the collector records what it can show. Unscanned is never clean.
    """

    present: bool = False
    bound: bool = False
    digest: str | None = None
    produced_by: Literal["report", "trivy"] | None = None
    scanners: list[Literal["vuln", "secret", "misconfig"]] = Field(default_factory=list)
    trivy_version: str | None = None
    db_updated_at: str | None = None
    created_at: str | None = None
    counts: dict[Severity, NonNegativeInt] = Field(default_factory=dict)
    vulnerabilities: list[ScanVulnerability] = Field(default_factory=list)
    secrets: NonNegativeInt = 0
    misconfigurations: NonNegativeInt = 0
    error: str | None = None
    source: str | None = None


class TestEvidence(_Facts):
    """``input.evidence.tests``: totals from JUnit XML."""

    __test__ = False  # not a pytest class

    present: bool = False
    total: NonNegativeInt = 0
    failures: NonNegativeInt = 0
    errors: NonNegativeInt = 0
    skipped: NonNegativeInt = 0
    digest: str | None = None
    source: str | None = None


class ReviewEvidence(_Facts):
    """``input.evidence.review``: the latest core-team review of this digest."""

    present: bool = False
    status: Literal["approved", "rejected", "changes_requested"] | None = None
    reviewer: str | None = None
    reviewed_at: str | None = None
    digest: str | None = None
    source: str | None = None


class UsageEvidence(_Facts):
    """``input.evidence.usage``: production use of this digest, measured at ``context.now``."""

    present: bool = False
    first_production_use: str | None = None
    days_in_production: NonNegativeInt = 0
    installations: NonNegativeInt = 0
    digest: str | None = None
    source: str | None = None


class RevocationEvidence(_Facts):
    """``input.evidence.revocation``. ``checked`` is false when no revocation data was consulted;
    ``fresh_as_of`` is when that data was last known current."""

    checked: bool = False
    revoked: bool = False
    reason: str | None = None
    revoked_at: str | None = None
    fresh_as_of: str | None = None
    source: str | None = None


class DroppedEvidence(_Facts):
    """Evidence that was supplied but not used, and why (e.g. ``DIGEST_MISMATCH``)."""

    kind: Literal["signature", "scan", "tests", "review", "usage", "revocation"]
    code: str
    message: str


class Evidence(_Facts):
    """``input.evidence``: facts only, one piece per source."""

    signature: SignatureEvidence = SignatureEvidence()
    scan: ScanEvidence = ScanEvidence()
    tests: TestEvidence = TestEvidence()
    review: ReviewEvidence = ReviewEvidence()
    usage: UsageEvidence = UsageEvidence()
    revocation: RevocationEvidence = RevocationEvidence()
    dropped: list[DroppedEvidence] = Field(default_factory=list)


class Context(_Facts):
    """``input.context``: the reference time, our version, the operation and the registry."""

    now: str
    cortex_version: str
    operation: Operation
    registry: str | None = None


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
