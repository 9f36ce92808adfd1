"""Review and usage evidence from documented JSON files (``cortex.review/v1``, ``cortex.usage/v1``).

The same documents will be served by the registry. Each names the plugin, the version and the
image digest it is about; a document about another digest, plugin or version is **dropped**
(``DIGEST_MISMATCH``, ``PLUGIN_MISMATCH``, ``VERSION_MISMATCH``) and never used: a review of
1.2.0 must not vouch for 1.2.1, nor a review of one image for another built from the same tag.

Formats (docs/verify.md)::

    {"schema": "cortex.review/v1", "plugin": "ns/name", "version": "1.2.0",
     "digest": "sha256:…", "status": "approved|rejected|changes_requested",
     "reviewer": "id", "reviewed_at": "2026-01-31T12:00:00Z", "note": "..."}

    {"schema": "cortex.usage/v1", "plugin": "ns/name", "version": "1.2.0",
     "digest": "sha256:…", "first_production_use": "2026-01-01T00:00:00Z",
     "installations": 42,
     # optional: continued use and who reported it
     "last_production_use": "2026-01-31T00:00:00Z", "active_days": 30,
     "reporters": [{"organization": "initech", "installations": 40, "active_days": 30,
                    "first": "2026-01-01T00:00:00Z", "last": "2026-01-31T00:00:00Z"}]}

A review document is one review: it becomes a review piece listing that one review. Unknown
fields are errors (a typo must not pass). ``days_in_production`` (overall and per reporter) is
computed from the first report and the reference time ``now`` the caller read once; the clock
is never read here. A usage document without reporters is valid and shows no reporting
organization: the policy reads a missing fact as 0, never as enough.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .._io import display_path, read_evidence_file
from .._json import JsonLimitError, load_json
from ..errors import EvidenceError
from ..ids import DIGEST_PATTERN, SLUG, SLUG_PATTERN
from ..policy import DroppedEvidence, ReviewEvidence, ReviewRecord, UsageEvidence, UsageReporter, format_time

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "REVIEW_SCHEMA",
    "USAGE_SCHEMA",
    "ReviewDocument",
    "UsageDocument",
    "UsageReporterDocument",
    "parse_review",
    "parse_usage",
    "read_review",
    "read_usage",
]

REVIEW_SCHEMA = "cortex.review/v1"
USAGE_SCHEMA = "cortex.usage/v1"
#: Review and usage documents are a few hundred bytes.
MAX_DOCUMENT_BYTES = 1024 * 1024

_PLUGIN = rf"^(?:{SLUG}/)?{SLUG}$"
_UNSAFE_ID_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e"
                              "\u2066-\u2069]")


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    plugin: StrictStr = Field(pattern=_PLUGIN)
    version: StrictStr = Field(min_length=1, max_length=128)
    digest: StrictStr = Field(pattern=DIGEST_PATTERN)


class ReviewDocument(_Document):
    """A ``cortex.review/v1`` document: one core-team review of one digest."""

    schema_: Literal["cortex.review/v1"] = Field(alias="schema")
    status: Literal["approved", "rejected", "changes_requested"]
    reviewer: StrictStr = Field(min_length=1, max_length=200)
    reviewed_at: AwareDatetime
    note: StrictStr = Field(default="", max_length=10_000)

    @field_validator("reviewer")
    @classmethod
    def _printable_reviewer(cls, v: str) -> str:
        # The reviewer id is matched against the policy's list and shown in reasons: a control
        # character, separator or bidirectional override there is never a real id, only a way to
        # forge output lines or make one id look like another.
        m = _UNSAFE_ID_CHARS.search(v)
        if m is not None:
            raise ValueError(f"contains the control character U+{ord(m.group()):04X}")
        return v


#: Counts must survive JSON and the policy engine unchanged.
_MAX_COUNT = 2**53 - 1


class UsageReporterDocument(BaseModel):
    """One organization's reports in a ``cortex.usage/v1`` document (``reporters[]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    organization: StrictStr = Field(pattern=SLUG_PATTERN)
    installations: StrictInt = Field(ge=1, le=_MAX_COUNT)
    active_days: StrictInt = Field(ge=1, le=_MAX_COUNT)
    first: AwareDatetime
    last: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> UsageReporterDocument:
        # Facts that cannot all be true are a broken document, not evidence to weigh.
        if self.last < self.first:
            raise ValueError("last is before first")
        span = (self.last.astimezone(UTC).date() - self.first.astimezone(UTC).date()).days + 1
        if self.active_days > span:
            raise ValueError(f"active_days ({self.active_days}) exceeds the {span} "
                             f"day{'s' if span > 1 else ''} from first to last")
        return self


class UsageDocument(_Document):
    """A ``cortex.usage/v1`` document: production use of one digest.

    ``last_production_use``, ``active_days`` and ``reporters`` are optional; a document without
    them shows no continued use and no reporting organization (the policy reads what is
    missing as 0, never as enough).
    """

    schema_: Literal["cortex.usage/v1"] = Field(alias="schema")
    first_production_use: AwareDatetime
    last_production_use: AwareDatetime | None = None
    installations: StrictInt = Field(ge=0, le=_MAX_COUNT)
    active_days: StrictInt = Field(default=0, ge=0, le=_MAX_COUNT)
    reporters: list[UsageReporterDocument] = Field(default_factory=list, max_length=10_000)


_FIXES = {
    "schema": 'set "schema" to "{schema}"',
    "plugin": 'use "namespace/name" (lowercase letters, digits, inner hyphens)',
    "version": "give the plugin version as a string",
    "digest": "give the image digest as sha256:<64 lowercase hex digits>",
    "status": 'use one of "approved", "rejected", "changes_requested"',
    "reviewer": "give the reviewer's id as a non-empty string",
    "reviewed_at": 'give an RFC 3339 time with a zone, e.g. "2026-01-31T12:00:00Z"',
    "first_production_use": 'give an RFC 3339 time with a zone, e.g. "2026-01-01T00:00:00Z"',
    "installations": "give a whole number >= 0",
    "last_production_use": 'give an RFC 3339 time with a zone, e.g. "2026-01-31T00:00:00Z"',
    "active_days": "give a whole number >= 0",
    "reporters": ('give reporters as a list of {{"organization": "a-namespace", "installations": '
                  'N >= 1, "active_days": N >= 1, "first": TIME, "last": TIME}}, with first <= '
                  'last and active_days at most the days from first to last'),
    "note": "give the note as a string",
}


def _load(data: bytes, model: type[_Document], *, what: str, schema: str,
          shown: str) -> Any:
    try:
        raw = load_json(data)
    except UnicodeDecodeError:
        raise EvidenceError(f"{what} {shown}: not UTF-8 text",
                            advice=f"write the document as UTF-8 JSON ({schema})") from None
    except JsonLimitError as e:
        raise EvidenceError(f"{what} {shown}: {e.msg} at line {e.lineno} column {e.colno}",
                            advice=f"write a plain JSON object in the {schema} format "
                                   "(docs/verify.md)") from None
    except json.JSONDecodeError as e:
        raise EvidenceError(f"{what} {shown}: not JSON ({e.msg} at line {e.lineno} column {e.colno})",
                            advice=f"write a JSON object in the {schema} format (docs/verify.md)"
                            ) from None
    except RecursionError:
        raise EvidenceError(f"{what} {shown}: JSON nested too deeply",
                            advice=f"write a flat JSON object ({schema})") from None
    if not isinstance(raw, dict):
        raise EvidenceError(f"{what} {shown}: must be a JSON object, got {type(raw).__name__}",
                            advice=f"write a JSON object in the {schema} format (docs/verify.md)")
    try:
        # JSON mode: times arrive as strings and are parsed strictly as RFC 3339.
        return model.model_validate_json(json.dumps(raw))
    except ValidationError as e:
        problems = []
        first_fix = None
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(document)"
            name = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "extra_forbidden":
                problems.append(f"{loc}: unknown field")
                fix = f"remove {loc!r} (allowed: {', '.join(_allowed(model))})"
            elif err["type"] == "missing":
                problems.append(f"{loc}: missing")
                fix = f"add {loc!r}"
            else:
                problems.append(f"{loc}: {err['msg']}")
                fix = _FIXES.get(name, f"see the {schema} format in docs/verify.md")
            first_fix = first_fix or fix.format(schema=schema)
        raise EvidenceError(f"{what} {shown}: invalid ({'; '.join(problems)})",
                            advice=first_fix) from None


def _utc(t: datetime, name: str, *, what: str, shown: str) -> str:
    try:
        return format_time(t)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is after year 9999 in UTC
        raise EvidenceError(f"{what} {shown}: invalid ({name}: out of range)",
                            advice=_FIXES[name]) from None


def _allowed(model: type[_Document]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _mismatch(kind: Literal["review", "usage"], doc: _Document, *, shown: str, digest: str | None,
              plugin: str | None, version: str | None) -> DroppedEvidence | None:
    # Digest first: it is the identity of the artifact; name and version are labels on it.
    if digest is None or doc.digest != digest:
        return DroppedEvidence(kind=kind, code="DIGEST_MISMATCH",
                               message=f"the {kind} is about {doc.digest}, not "
                                       f"{digest or 'an unknown digest'}; it was not used ({shown})")
    if plugin is None or doc.plugin != plugin:
        return DroppedEvidence(kind=kind, code="PLUGIN_MISMATCH",
                               message=f"the {kind} {shown} is about plugin {doc.plugin!r}, not "
                                       f"{plugin or 'an unidentified plugin'!r}; it was not used")
    if version is None or doc.version != version:
        return DroppedEvidence(kind=kind, code="VERSION_MISMATCH",
                               message=f"the {kind} {shown} is about version {doc.version!r}, not "
                                       f"{version or 'an unknown version'!r}; it was not used")
    return None


def parse_review(data: bytes, *, digest: str | None, plugin: str | None, version: str | None,
                 source: str | None = None) -> tuple[ReviewEvidence, list[DroppedEvidence]]:
    """Validate a review document and bind it to ``digest``, ``plugin`` (``ns/name``) and
    ``version``. Returns ``(evidence, dropped)``: on any mismatch the evidence is not present
    and ``dropped`` says why. Raises :class:`EvidenceError` for an invalid document.
    """
    shown = source or "(review)"
    doc: ReviewDocument = _load(data, ReviewDocument, what="review", schema=REVIEW_SCHEMA,
                                shown=shown)
    dropped = _mismatch("review", doc, shown=shown, digest=digest, plugin=plugin, version=version)
    if dropped is not None:
        return ReviewEvidence(), [dropped]
    record = ReviewRecord(reviewer=doc.reviewer, verdict=doc.status,
                          at=_utc(doc.reviewed_at, "reviewed_at", what="review", shown=shown),
                          source=source)
    return ReviewEvidence(present=True, reviews=[record], digest=doc.digest, source=source), []


def parse_usage(data: bytes, *, digest: str | None, plugin: str | None, version: str | None,
                now: datetime, source: str | None = None
                ) -> tuple[UsageEvidence, list[DroppedEvidence]]:
    """Validate a usage document, bind it like :func:`parse_review`, and compute
    ``days_in_production`` as whole days from ``first_production_use`` to ``now`` (0 when the
    first use lies after ``now``: a clock skew never adds days). Raises :class:`EvidenceError`
    for an invalid document and :class:`ValueError` for a naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    shown = source or "(usage)"
    doc: UsageDocument = _load(data, UsageDocument, what="usage", schema=USAGE_SCHEMA, shown=shown)
    dropped = _mismatch("usage", doc, shown=shown, digest=digest, plugin=plugin, version=version)
    if dropped is not None:
        return UsageEvidence(), [dropped]
    first_use = _utc(doc.first_production_use, "first_production_use", what="usage", shown=shown)
    last_use = (None if doc.last_production_use is None else
                _utc(doc.last_production_use, "last_production_use", what="usage", shown=shown))
    reporters = [UsageReporter(organization=r.organization, installations=r.installations,
                               active_days=r.active_days, days_in_production=_days(r.first, now),
                               first=_utc(r.first, "reporters", what="usage", shown=shown),
                               last=_utc(r.last, "reporters", what="usage", shown=shown))
                 for r in doc.reporters]
    return UsageEvidence(present=True, first_production_use=first_use,
                         last_production_use=last_use,
                         days_in_production=_days(doc.first_production_use, now),
                         active_days=doc.active_days, installations=doc.installations,
                         organizations=len({r.organization for r in reporters}),
                         reporters=reporters, digest=doc.digest, source=source), []


def _days(first: datetime, now: datetime) -> int:
    """Whole days from ``first`` to ``now``; 0 when ``first`` lies after ``now`` (a clock skew
    never adds days)."""
    return max(0, (now - first).days)


def read_review(path: str | os.PathLike[str], *, digest: str | None, plugin: str | None,
                version: str | None, source: str | None = None
                ) -> tuple[ReviewEvidence, list[DroppedEvidence]]:
    """Read and bind the review document at ``path`` (see :func:`parse_review`).

    Raises :class:`EvidenceError` for a missing, unreadable, oversized or invalid file.
    """
    shown = display_path(path)
    data = read_evidence_file(path, what="review", max_bytes=MAX_DOCUMENT_BYTES)
    return parse_review(data, digest=digest, plugin=plugin, version=version, source=source or shown)


def read_usage(path: str | os.PathLike[str], *, digest: str | None, plugin: str | None,
               version: str | None, now: datetime, source: str | None = None
               ) -> tuple[UsageEvidence, list[DroppedEvidence]]:
    """Read and bind the usage document at ``path`` (see :func:`parse_usage`).

    Raises :class:`EvidenceError` for a missing, unreadable, oversized or invalid file.
    """
    shown = display_path(path)
    data = read_evidence_file(path, what="usage", max_bytes=MAX_DOCUMENT_BYTES)
    return parse_usage(data, digest=digest, plugin=plugin, version=version, now=now,
                       source=source or shown)
