"""Review and usage documents (cortex.review/v1, cortex.usage/v1): validation and binding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import EvidenceError
from cortex_trust.evidence import parse_review, parse_usage, read_review, read_usage
from tests.support.hostile import EDGE_TIMES

FIXTURES = Path(__file__).parent.parent / "fixtures" / "review"
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
OTHER = "sha256:" + "b" * 64
NOW = datetime(2026, 10, 31, tzinfo=UTC)
BIND = {"digest": DIGEST, "plugin": "acme/hello", "version": "0.1.0"}


def _review(**changes: Any) -> bytes:
    doc = json.loads((FIXTURES / "review-approved.json").read_text())
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def _usage(**changes: Any) -> bytes:
    doc = json.loads((FIXTURES / "usage-60days.json").read_text())
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_review_fixture() -> None:
    ev, dropped = read_review(FIXTURES / "review-approved.json", **BIND)
    assert dropped == []
    [record] = ev.reviews  # a review document is one review
    assert (ev.present, record.verdict, record.reviewer, record.at, ev.digest) == (
        True, "approved", "core/alice", "2026-10-01T09:30:00Z", DIGEST)
    assert ev.source == record.source == str(FIXTURES / "review-approved.json")


def test_usage_fixture_days_from_reference_time() -> None:
    ev, dropped = read_usage(FIXTURES / "usage-60days.json", now=NOW, **BIND)
    assert dropped == []
    assert (ev.present, ev.days_in_production, ev.installations) == (True, 60, 1200)
    assert ev.first_production_use == "2026-09-01T00:00:00Z"
    assert (ev.last_production_use, ev.active_days, ev.organizations) == (
        "2026-10-30T18:00:00Z", 60, 2)
    assert [(r.organization, r.days_in_production) for r in ev.reporters] == [
        ("initech", 60), ("globex", 48)]
    # A document without the continued-use facts is valid and shows none (never "enough").
    bare, _ = parse_usage(_usage(last_production_use=..., active_days=..., reporters=...),
                          now=NOW, **BIND)
    assert (bare.present, bare.last_production_use, bare.active_days, bare.organizations,
            bare.reporters) == (True, None, 0, 0, [])
    # The clock is the caller's: a day earlier, one day fewer.
    ev2, _ = read_usage(FIXTURES / "usage-60days.json", now=NOW - timedelta(days=1), **BIND)
    assert ev2.days_in_production == 59


def test_offsets_are_normalised_to_utc() -> None:
    ev, _ = parse_review(_review(reviewed_at="2026-10-01T11:30:00+02:00"), **BIND)
    assert ev.reviews[0].at == "2026-10-01T09:30:00Z"


_REPORTERS = [
    {"organization": "initech", "installations": 40, "active_days": 25,
     "first": "2026-09-15T08:00:00+02:00", "last": "2026-10-30T10:00:00Z"},
    {"organization": "globex", "installations": 2, "active_days": 1,
     "first": "2026-10-20T00:00:00Z", "last": "2026-10-20T23:00:00Z"},
    {"organization": "initech", "installations": 1, "active_days": 1,
     "first": "2026-10-29T00:00:00Z", "last": "2026-10-29T00:00:00Z"},
]


def test_usage_reporters_are_facts_with_their_own_days() -> None:
    ev, dropped = parse_usage(_usage(last_production_use="2026-10-30T10:00:00Z", active_days=40,
                                     reporters=_REPORTERS), now=NOW, **BIND)
    assert dropped == []
    assert (ev.last_production_use, ev.active_days) == ("2026-10-30T10:00:00Z", 40)
    assert ev.organizations == 2  # distinct organizations
    first, second, _ = ev.reporters
    assert (first.organization, first.installations, first.active_days, first.first,
            first.last, first.days_in_production) == (
        "initech", 40, 25, "2026-09-15T06:00:00Z", "2026-10-30T10:00:00Z", 45)
    assert (second.organization, second.days_in_production) == ("globex", 11)


@pytest.mark.parametrize("reporter, match", [
    ({"organization": "Initech"}, "reporters.0.organization"),
    ({"organization": "ini/tech"}, "reporters.0.organization"),
    ({"installations": 0}, "reporters.0.installations"),
    ({"active_days": 0}, "reporters.0.active_days"),
    ({"active_days": "25"}, "reporters.0.active_days"),
    ({"first": "2026-09-15T08:00:00"}, "reporters.0.first"),
    ({"last": "2026-09-01T00:00:00Z"}, "last is before first"),
    # 25 active days between Oct 1 and Oct 10 cannot all be true
    ({"first": "2026-10-01T00:00:00Z", "last": "2026-10-10T23:59:59Z"}, "exceeds the 10 day"),
    ({"region": "eu"}, "unknown field"),
])
def test_inconsistent_or_invalid_reporters_are_refused(reporter: dict[str, Any],
                                                       match: str) -> None:
    bad = [{**_REPORTERS[0], **reporter}]
    with pytest.raises(EvidenceError, match=match) as info:
        parse_usage(_usage(reporters=bad), now=NOW, **BIND)
    assert info.value.advice


def test_first_use_in_the_future_counts_zero_days() -> None:
    ev, _ = parse_usage(_usage(first_production_use="2027-01-01T00:00:00Z"), now=NOW, **BIND)
    assert ev.present and ev.days_in_production == 0


@pytest.mark.security_review
@pytest.mark.parametrize("reviewer", ["core/alice\n::error::x", "core/\x1b[31malice", "a\u2028b",
                                      "core/alice\u202e"])
def test_reviewer_ids_with_control_characters_are_refused(reviewer: str) -> None:
    doc = json.loads((FIXTURES / "review-approved.json").read_text())
    doc["reviewer"] = reviewer
    with pytest.raises(EvidenceError):
        parse_review(json.dumps(doc).encode(), digest=DIGEST, plugin="acme/hello",
                     version="0.1.0")


@pytest.mark.security_review
@pytest.mark.parametrize("installations", [2**53, 10**30, True, -1, 1.5])
def test_usage_installations_must_be_a_plausible_count(installations: Any) -> None:
    doc = json.loads((FIXTURES / "usage-60days.json").read_text())
    doc["installations"] = installations
    with pytest.raises(EvidenceError):
        parse_usage(json.dumps(doc).encode(), digest=DIGEST, plugin="acme/hello",
                    version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))


@pytest.mark.security_review
@pytest.mark.parametrize("when", EDGE_TIMES)
def test_times_outside_the_utc_range_are_evidence_errors(when: str) -> None:
    from cortex_trust.evidence import parse_trivy_report

    usage = json.loads((FIXTURES / "usage-60days.json").read_text())
    usage["first_production_use"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                    version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    review = json.loads((FIXTURES / "review-approved.json").read_text())
    review["reviewed_at"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_review(json.dumps(review).encode(), digest=DIGEST, plugin="acme/hello",
                     version="0.1.0")
    report = json.loads((FIXTURES.parent / "trivy" / "alpine-39.json").read_text())
    report["CreatedAt"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_trivy_report(json.dumps(report).encode(), digest=DIGEST)


@pytest.mark.security_review
def test_first_use_in_the_future_never_adds_days() -> None:
    usage = json.loads((FIXTURES / "usage-60days.json").read_text())
    usage["first_production_use"] = "2027-01-01T00:00:00Z"
    ev, _ = parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                        version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    assert ev.days_in_production == 0
    # 59 days, 23 hours and 59.5 seconds is 59 whole days, never rounded up to 60.
    usage["first_production_use"] = "2026-09-01T00:00:00.5Z"
    ev, _ = parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                        version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    assert ev.days_in_production == 59


@pytest.mark.parametrize("parse", ["review", "usage"])
@pytest.mark.parametrize("bind, code", [
    ({"digest": OTHER}, "DIGEST_MISMATCH"),
    ({"digest": None}, "DIGEST_MISMATCH"),
    ({"plugin": "evil/hello"}, "PLUGIN_MISMATCH"),
    ({"plugin": "hello"}, "PLUGIN_MISMATCH"),   # no namespace given: the names differ
    ({"plugin": None}, "PLUGIN_MISMATCH"),
    ({"version": "0.1.1"}, "VERSION_MISMATCH"),
])
def test_documents_about_something_else_are_dropped(parse: str, bind: dict[str, Any],
                                                    code: str) -> None:
    args = dict(BIND, **bind)
    if parse == "review":
        ev, dropped = parse_review(_review(), **args)
    else:
        ev, dropped = parse_usage(_usage(), now=NOW, **args)
    assert not ev.present
    [d] = dropped
    assert (d.kind, d.code) == (parse, code)
    assert "not used" in d.message


@pytest.mark.parametrize("changes, match", [
    ({"schema": "cortex.review/v2"}, "schema"),
    ({"status": "looks-fine"}, "status"),
    ({"statsu": "approved"}, "unknown field"),
    ({"reviewer": ...}, "reviewer: missing"),
    ({"reviewed_at": "2026-10-01T09:30:00"}, "timezone"),
    ({"reviewed_at": "last tuesday"}, "reviewed_at"),
    ({"digest": "sha256:ABC"}, "digest"),
    ({"plugin": "Acme/Hello"}, "plugin"),
    ({"version": 1.2}, "version"),
])
def test_invalid_reviews(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(EvidenceError, match=match) as info:
        parse_review(_review(**changes), **BIND)
    assert info.value.advice  # every error says how to fix it


@pytest.mark.parametrize("changes, match", [
    ({"installations": -1}, "installations"),
    ({"installations": "12"}, "installations"),
    ({"installations": True}, "installations"),
    ({"first_production_use": 1700000000}, "first_production_use"),
    ({"schema": "cortex.review/v1"}, "schema"),
    ({"extra": 1}, "unknown field"),
    ({"active_days": -1}, "active_days"),
    ({"last_production_use": "soon"}, "last_production_use"),
    ({"reporters": {"initech": 1}}, "reporters"),
])
def test_invalid_usage(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(EvidenceError, match=match):
        parse_usage(_usage(**changes), now=NOW, **BIND)


@pytest.mark.parametrize("data", [b"", b"nope", b"[]", b'"x"', b"\xff\xfe", b"[" * 50_000])
def test_garbage(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "r.json"
    p.write_bytes(data)
    with pytest.raises(EvidenceError):
        read_review(p, **BIND)


def test_naive_now_refused() -> None:
    with pytest.raises(ValueError):
        parse_usage(_usage(), now=datetime(2026, 1, 1), **BIND)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)),
       st.integers(min_value=0, max_value=10_000))
def test_days_in_production_is_monotonic(first: datetime, later: int) -> None:
    doc = _usage(first_production_use=first.isoformat())
    a, _ = parse_usage(doc, now=NOW, **BIND)
    b, _ = parse_usage(doc, now=NOW + timedelta(days=later), **BIND)
    assert 0 <= a.days_in_production <= b.days_in_production


def test_public_surface() -> None:
    import cortex_trust.evidence._review as mod

    assert sorted(mod.__all__) == [
        "MAX_DOCUMENT_BYTES", "REVIEW_SCHEMA", "ReviewDocument", "USAGE_SCHEMA", "UsageDocument",
        "UsageReporterDocument", "parse_review", "parse_usage", "read_review", "read_usage"]


def test_review_pieces_from_a_registry_carry_its_name_and_read_the_old_shape() -> None:
    """An installer marks a registry's review piece, and every review in it, with the name it
    knows the registry by; an older registry's single-review piece reads as that one review."""
    from cortex_trust.install._evidence import registry_piece
    from cortex_trust.policy import ReviewEvidence

    served = {"present": True, "digest": DIGEST, "source": "cortex-core-official",
              "reviews": [{"reviewer": "cortex-core/ada", "verdict": "approved",
                           "at": "2026-10-01T09:30:00Z", "source": "cortex-core-official"}]}
    piece = registry_piece(ReviewEvidence, served, kind="review", registry="public", dropped=[])
    assert piece.source == "public"
    assert [(r.reviewer, r.source) for r in piece.reviews] == [("cortex-core/ada", "public")]
    old = {"present": True, "status": "rejected", "reviewer": "cortex-core/ada",
           "reviewed_at": "2026-10-01T09:30:00Z", "digest": DIGEST, "source": "x"}
    piece = registry_piece(ReviewEvidence, old, kind="review", registry="public", dropped=[])
    assert [(r.reviewer, r.verdict, r.at, r.source) for r in piece.reviews] == [
        ("cortex-core/ada", "rejected", "2026-10-01T09:30:00Z", "public")]
    dropped: list[Any] = []
    both = {**served, "status": "approved"}
    assert registry_piece(ReviewEvidence, both, kind="review", registry="public",
                           dropped=dropped) is None
    assert [d.code for d in dropped] == ["REGISTRY_EVIDENCE_INVALID"]
