"""The input builder: plugin identity, pinning, and the mix-and-match defence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import InputError, ManifestError
from cortex_trust.manifest import Manifest, load_manifest
from cortex_trust.policy import (
    PolicyInput,
    ReviewEvidence,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    UsageEvidence,
    build_input,
    image_digest,
    plugin_full_name,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "verify"
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
OTHER = "sha256:" + "b" * 64
IMAGE = f"127.0.0.1:5000/acme/hello@{DIGEST}"
NL_DIGEST = DIGEST + "\n"
MANIFEST = FIXTURES / "manifest.yaml"
NOW = datetime(2026, 10, 31, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest(FIXTURES / "manifest.yaml")


def _build(manifest: Manifest | ManifestError, **kw: Any) -> PolicyInput:
    args = dict(manifest=manifest, image=IMAGE, digest=DIGEST, operation="verify", now=NOW,
                cortex_version="0.1.0", namespace="acme")
    args.update(kw)
    return build_input(**args)


def test_identity_pinning_and_context(manifest: Manifest) -> None:
    pi = _build(manifest)
    assert isinstance(pi, PolicyInput)
    assert (pi.plugin.namespace, pi.plugin.name, pi.plugin.version, pi.plugin.full_name) == (
        "acme", "hello", "0.1.0", "acme/hello")
    assert (pi.artifact.image, pi.artifact.digest, pi.artifact.pinned) == (IMAGE, DIGEST, True)
    assert pi.context.now == "2026-10-31T12:00:00Z" and pi.context.operation == "verify"
    assert pi.manifest.valid and pi.manifest.document is not None
    # Nothing given: every piece is "not present", never "clean".
    ev = pi.evidence
    assert not (ev.signature.present or ev.scan.present or ev.tests.present
                or ev.review.present or ev.usage.present or ev.revocation.checked)


def test_without_namespace_full_name_is_the_name(manifest: Manifest) -> None:
    assert _build(manifest, namespace=None).plugin.full_name == "hello"


def test_digest_from_reference_alone(manifest: Manifest) -> None:
    pi = _build(manifest, digest=None)
    assert pi.artifact.digest == DIGEST and pi.artifact.pinned


def test_unpinned_reference_takes_the_digest_but_is_not_pinned(manifest: Manifest) -> None:
    pi = _build(manifest, image="127.0.0.1:5000/acme/hello:0.1.0")
    assert pi.artifact.digest == DIGEST and not pi.artifact.pinned


def test_image_and_digest_disagree(manifest: Manifest) -> None:
    with pytest.raises(InputError) as info:
        _build(manifest, digest=OTHER)
    assert DIGEST in info.value.message and OTHER in info.value.message


def test_manifest_pinned_to_another_digest(manifest: Manifest) -> None:
    with pytest.raises(InputError, match=r"runtime\.image") as info:
        _build(manifest, image=f"127.0.0.1:5000/acme/hello@{OTHER}", digest=None)
    assert DIGEST in info.value.message and OTHER in info.value.message


def test_invalid_manifest_is_a_fact(tmp_path: Path) -> None:
    try:
        load_manifest(FIXTURES / "manifest-bad.yaml")
    except ManifestError as e:
        error = e
    pi = build_input(manifest=error, image=IMAGE, digest=None, operation="install", now=NOW,
                     cortex_version="0.1.0")
    assert not pi.manifest.valid and pi.manifest.problems
    assert pi.plugin.name is None and pi.plugin.full_name is None
    assert pi.artifact.digest == DIGEST


def test_evidence_about_another_digest_is_dropped(manifest: Manifest) -> None:
    pi = _build(
        manifest,
        signature=SignatureEvidence(present=True, verified=False, subject_digest=OTHER,
                                    source="sig.json"),
        scan=ScanEvidence(present=True, bound=True, digest=OTHER, scanners=["vuln"]),
        tests=TestEvidence(present=True, total=3, digest=OTHER),
        review=ReviewEvidence(present=True, status="approved", digest=OTHER),
        usage=UsageEvidence(present=True, days_in_production=90, digest=OTHER),
    )
    ev = pi.evidence
    assert not (ev.signature.present or ev.scan.present or ev.tests.present
                or ev.review.present or ev.usage.present)
    assert sorted(d.kind for d in ev.dropped) == ["review", "scan", "signature", "tests", "usage"]
    assert {d.code for d in ev.dropped} == {"DIGEST_MISMATCH"}


def test_matching_evidence_is_kept(manifest: Manifest) -> None:
    scan = ScanEvidence(present=True, bound=True, digest=DIGEST, scanners=["vuln"])
    tests = TestEvidence(present=True, total=3)  # JUnit names no digest: kept
    pi = _build(manifest, scan=scan, tests=tests)
    assert pi.evidence.scan == scan and pi.evidence.tests == tests and pi.evidence.dropped == []


@pytest.mark.parametrize("bad", ["acme/x@sha256:abc", "acme/x@sha256:" + "A" * 64,
                                 "acme/x@md5:" + "a" * 32])
def test_malformed_pins_are_errors(bad: str) -> None:
    with pytest.raises(InputError):
        image_digest(bad)


@pytest.mark.parametrize("bad", [
    "ghcr.io/a/b@x@sha256:" + "a" * 64,          # a second '@': the last one used to count
    "ghcr.io/A/b@sha256:" + "a" * 64,            # upper-case repository: engines refuse it
    "ghcr.io/a/b\x1b[31m@sha256:" + "a" * 64,    # control characters
    "https://ghcr.io/a/b@sha256:" + "a" * 64,    # a URL scheme
    "ghcr.io/a/b @sha256:" + "a" * 64,           # whitespace
])
def test_image_digest_follows_the_manifest_grammar(bad: str) -> None:
    # What counts as pinned is what an engine would pull: the manifest's grammar, one parser.
    with pytest.raises(InputError) as e:
        image_digest(bad)
    assert e.value.advice
    assert image_digest("ghcr.io/a/b:1.0@sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert image_digest("ghcr.io/a/b:1.0") is None


@pytest.mark.security_review
def test_image_reference_with_a_trailing_newline_is_not_a_pin() -> None:
    from cortex_trust.policy import image_digest, resolve_digest

    with pytest.raises(InputError):
        image_digest("127.0.0.1:5000/acme/hello@" + NL_DIGEST)
    from cortex_trust.manifest import load_manifest

    with pytest.raises(InputError):
        resolve_digest(manifest=load_manifest(MANIFEST), image=None, digest=NL_DIGEST)


@pytest.mark.security_review
@pytest.mark.parametrize("image", [
    "127.0.0.1:5000/acme/hello@" + DIGEST.upper(),
    "127.0.0.1:5000/acme/hello@SHA256:" + DIGEST[7:],
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:].upper(),
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:] + " ",
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:-1] + "\uff46",  # fullwidth f
    "127.0.0.1:5000/acme/hello@sha512:" + "a" * 128,
])
def test_digest_look_alikes_are_never_a_pin(image: str) -> None:
    from cortex_trust.policy import image_digest

    with pytest.raises(InputError):
        image_digest(image)


@pytest.mark.security_review
def test_namespace_with_a_trailing_newline_is_refused() -> None:
    from datetime import UTC, datetime

    from cortex_trust.manifest import load_manifest
    from cortex_trust.policy import build_input

    with pytest.raises(InputError):
        build_input(manifest=load_manifest(MANIFEST), image=IMAGE, digest=None,
                    operation="verify", now=datetime(2026, 10, 31, tzinfo=UTC),
                    cortex_version="0", namespace="acme\n")


def test_bad_namespace_and_naive_time(manifest: Manifest) -> None:
    with pytest.raises(InputError, match="namespace"):
        _build(manifest, namespace="Acme Corp")
    with pytest.raises(ValueError):
        _build(manifest, now=datetime(2026, 1, 1))


def test_input_matches_the_schema_round_trip(manifest: Manifest) -> None:
    pi = _build(manifest)
    assert PolicyInput.model_validate_json(pi.to_json()) == pi


@given(st.sampled_from([None, "acme", "a-b"]), st.sampled_from([None, "hello", "x"]))
def test_full_name(namespace: str | None, name: str | None) -> None:
    full = plugin_full_name(namespace, name)
    if name is None:
        assert full is None
    else:
        assert full == (f"{namespace}/{name}" if namespace else name)


def test_public_surface() -> None:
    import cortex_trust.policy._build as inputs
    import cortex_trust.verify as verify

    assert sorted(inputs.__all__) == ["build_input", "image_digest", "manifest_facts", "plugin_full_name",
                                      "refresh_input", "resolve_digest"]
    assert sorted(verify.__all__) == ["VerifyRequest", "VerifyResult", "evidence_summary",
                                      "gather_input", "judge", "verify_plugin"]


# ------------------------------------------------------------------------- refreshing an input


def test_refresh_replaces_only_the_pieces_given_and_the_clock(manifest: Manifest) -> None:
    from cortex_trust.policy import Context, RevocationEvidence, refresh_input

    base = _build(manifest, registry="acme", operation="publish",
                  scan=ScanEvidence(present=True, bound=True, digest=DIGEST, scanners=["vuln"]))
    later = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
    revocation = RevocationEvidence(checked=True, revoked=True, reason="leak",
                                    fresh_as_of="2026-11-02T08:00:00Z", source="acme")
    usage = UsageEvidence(present=True, days_in_production=3, digest=DIGEST, source="acme")
    out = refresh_input(base, now=later, operation="run", revocation=revocation, usage=usage,
                        scan=None)
    assert (out.evidence.revocation, out.evidence.usage) == (revocation, usage)
    assert out.evidence.scan == base.evidence.scan  # None keeps the base's piece
    assert out.evidence.signature == base.evidence.signature
    assert out.context == Context(now="2026-11-02T08:00:00Z", cortex_version="0.1.0",
                                  operation="run", registry="acme")
    assert (out.manifest, out.plugin, out.artifact) == (base.manifest, base.plugin, base.artifact)
    assert out.evidence.dropped == base.evidence.dropped
    newer = refresh_input(base, now=later, operation="run", cortex_version="0.2.0",
                          now_text="2026-11-02T08:00:01Z")
    assert (newer.context.cortex_version, newer.context.now) == ("0.2.0", "2026-11-02T08:00:01Z")
    assert base.context.operation == "publish"  # the base is never changed


def test_refresh_with_revalidation_gives_the_same_document(manifest: Manifest) -> None:
    """Both ways of refreshing (the registry's copy, the run check's re-validated one) hand the
    engine the same bytes, and the run check's bytes are those of the input it built before
    (a new context with the current version, the stored registry)."""
    from cortex_trust.policy import Context, RevocationEvidence, refresh_input

    stored = _build(manifest, registry="acme", operation="install")
    later = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
    revocation = RevocationEvidence(checked=True, revoked=False, fresh_as_of="2026-11-02T08:00:00Z",
                                    source="acme")
    copied = refresh_input(stored, now=later, operation="run", revocation=revocation,
                           cortex_version="0.2.0")
    checked = refresh_input(stored, now=later, operation="run", revocation=revocation,
                            cortex_version="0.2.0", revalidate=True)
    before = stored.model_copy(update={
        "evidence": stored.evidence.model_copy(update={"revocation": revocation}),
        "context": Context(now="2026-11-02T08:00:00Z", cortex_version="0.2.0", operation="run",
                           registry=stored.context.registry)})
    assert copied.to_json() == checked.to_json() == before.to_json()
    assert PolicyInput.model_validate_json(checked.to_json()) == checked


def test_refresh_revalidation_refuses_what_is_outside_the_contract(manifest: Manifest) -> None:
    from pydantic import ValidationError

    from cortex_trust.policy import refresh_input

    later = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
    unknown: Any = "deploy"  # not an operation of the contract
    assert refresh_input(_build(manifest), now=later, operation=unknown).context.operation == "deploy"
    with pytest.raises(ValidationError):
        refresh_input(_build(manifest), now=later, operation=unknown, revalidate=True)
