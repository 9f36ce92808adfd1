"""The test-only private Sigstore (tests/support/sigstore_mint.py) mints bundles that the real
verification path accepts with its root, and only with its root."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex_trust.evidence import TrustRoot, load_trust_root, production_trust_root, verify_signature
from cortex_trust.policy import GitHubClaims
from tests.support.sigstore_mint import GITHUB_ACTIONS_ISSUER, PrivateSigstore, der_utf8

DIGEST_A = "sha256:" + hashlib.sha256(b"image manifest A").hexdigest()
DIGEST_B = "sha256:" + hashlib.sha256(b"image manifest B").hexdigest()
IDENTITY = "https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v1.2.0"
GITHUB = {"repository": "acme/weather", "workflow_ref": "refs/tags/v1.2.0",
          "sha": "0123456789abcdef0123456789abcdef01234567", "trigger": "release"}


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> PrivateSigstore:
    return PrivateSigstore(tmp_path_factory.mktemp("private-sigstore"))


@pytest.fixture(scope="module")
def private_root(private: PrivateSigstore) -> TrustRoot:
    return load_trust_root(private.trusted_root_path, name="private-test")


def test_minted_bundle_verifies_with_the_private_root(private: PrivateSigstore,
                                                      private_root: TrustRoot) -> None:
    bundle = private.sign_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 github=GITHUB)
    ev = verify_signature(bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert ev.verified, ev.error
    assert ev.kind == "message_signature"
    assert ev.identity == IDENTITY
    assert ev.issuer == GITHUB_ACTIONS_ISSUER
    assert ev.github == GitHubClaims(**GITHUB)
    assert ev.subject_digest == DIGEST_A
    assert ev.trusted_root == "private-test"
    assert ev.integrated_time == private.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_minted_bundle_fails_against_the_production_root(private: PrivateSigstore) -> None:
    bundle = private.sign_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER)
    ev = verify_signature(bundle, digest=DIGEST_A, trusted_roots=[production_trust_root()])
    assert not ev.verified
    assert ev.error is not None and "certificate chain" in ev.error
    assert ev.trusted_root is None


def test_bundle_for_digest_a_does_not_verify_for_digest_b(private: PrivateSigstore,
                                                          private_root: TrustRoot) -> None:
    bundle = private.sign_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER)
    ev = verify_signature(bundle, digest=DIGEST_B, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.subject_digest == DIGEST_A  # what it is really about: droppable as a mismatch
    assert ev.error is not None and "digest mismatch" in ev.error


def test_another_private_instance_is_not_trusted(private: PrivateSigstore,
                                                 tmp_path: Path) -> None:
    other = PrivateSigstore(tmp_path / "other")
    bundle = other.sign_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER)
    root = load_trust_root(private.trusted_root_path, name="private-test")
    ev = verify_signature(bundle, digest=DIGEST_A, trusted_roots=[root])
    assert not ev.verified
    # ... but it does verify against its own root: same identity, different instance
    ev = verify_signature(bundle, digest=DIGEST_A,
                          trusted_roots=[production_trust_root(),
                                         load_trust_root(other.trusted_root_path)])
    assert ev.verified and ev.trusted_root == "trusted_root"


def test_private_root_after_production_is_named_when_it_verifies(
        private: PrivateSigstore, private_root: TrustRoot) -> None:
    bundle = private.sign_digest(DIGEST_A, identity="dev@acme.example",
                                 issuer="https://accounts.google.com")
    ev = verify_signature(bundle, digest=DIGEST_A,
                          trusted_roots=[production_trust_root(), private_root])
    assert ev.verified and ev.trusted_root == "private-test"
    assert ev.identity == "dev@acme.example" and ev.github is None


def test_minted_dsse_statement_verifies_only_for_its_subject(private: PrivateSigstore,
                                                             private_root: TrustRoot) -> None:
    bundle = private.sign_dsse_statement(DIGEST_A, identity=IDENTITY,
                                         issuer=GITHUB_ACTIONS_ISSUER, github=GITHUB)
    ev = verify_signature(bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert ev.verified, ev.error
    assert ev.kind == "dsse" and ev.github == GitHubClaims(**GITHUB)
    ev = verify_signature(bundle, digest=DIGEST_B, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.error == f"DSSE statement is not about {DIGEST_B}"
    assert ev.subject_digest == DIGEST_A


def test_certificate_not_valid_at_signing_time_is_not_verified(
        private: PrivateSigstore, private_root: TrustRoot) -> None:
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 cert_not_before=private.now - timedelta(hours=1))
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.error is not None and "not valid at validation time" in ev.error


def test_certificate_without_sct_is_not_verified(private: PrivateSigstore,
                                                 private_root: TrustRoot) -> None:
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 with_sct=False)
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.error is not None and "SCT" in ev.error


def test_tampered_minted_bundle_is_not_verified(private: PrivateSigstore,
                                                private_root: TrustRoot) -> None:
    doc = json.loads(private.sign_digest(DIGEST_A, identity=IDENTITY,
                                         issuer=GITHUB_ACTIONS_ISSUER))
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    ev = verify_signature(json.dumps(doc).encode(), digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.error is not None and "SET" in ev.error


# --- claims that cannot be established: crypto is valid, evidence still not verified -------

@pytest.mark.parametrize("raw,problem", [
    ({"1.3.6.1.4.1.57264.1.1": b"https://accounts.google.com"}, "OIDC issuer extensions disagree"),
    ({"1.3.6.1.4.1.57264.1.12": der_utf8("https://gitlab.com/acme/weather")}, "not on github.com"),
    ({"1.3.6.1.4.1.57264.1.5": b"evil/weather"}, "repository extensions disagree"),
    ({"1.3.6.1.4.1.57264.1.20": b"not a DER string"}, "not a UTF8String"),
    ({"1.3.6.1.4.1.57264.1.2": b"\xff\xfe"}, "not UTF-8"),
], ids=["issuer-conflict", "repo-not-github", "repo-conflict", "v2-not-der", "legacy-not-utf8"])
def test_inconsistent_certificate_claims_are_not_verified(
        private: PrivateSigstore, private_root: TrustRoot, raw: dict[str, bytes],
        problem: str) -> None:
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 github=GITHUB, raw_extensions=raw)
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.trusted_root is None and ev.integrated_time is None
    assert ev.error is not None and problem in ev.error, ev.error


def test_certificate_without_issuer_is_not_verified(private: PrivateSigstore,
                                                    private_root: TrustRoot) -> None:
    # Overwrite both issuer extensions with empty/invalid content: no issuer can be read.
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 raw_extensions={"1.3.6.1.4.1.57264.1.8": b"\x04\x00"})
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified and ev.issuer is None


def test_only_v2_github_extensions_are_enough(private: PrivateSigstore,
                                              private_root: TrustRoot, tmp_path: Path) -> None:
    raw = {
        "1.3.6.1.4.1.57264.1.12": der_utf8("https://github.com/acme/weather"),
        "1.3.6.1.4.1.57264.1.14": der_utf8("refs/heads/main"),
        "1.3.6.1.4.1.57264.1.13": der_utf8("f" * 40),
        "1.3.6.1.4.1.57264.1.20": der_utf8("push"),
    }
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 raw_extensions=raw)
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert ev.verified, ev.error
    assert ev.github == GitHubClaims(repository="acme/weather", workflow_ref="refs/heads/main",
                                     sha="f" * 40, trigger="push")


def test_othername_identity_is_decoded(private: PrivateSigstore,
                                       private_root: TrustRoot) -> None:
    name = x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7"), der_utf8("ci-bot"))
    minted = private.mint_digest(DIGEST_A, identity="unused", issuer="https://ci.example",
                                 sans=[name])
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert ev.verified, ev.error
    assert ev.identity == "ci-bot"


def test_certificate_with_two_identities_is_not_verified(private: PrivateSigstore,
                                                         private_root: TrustRoot) -> None:
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(IDENTITY),
                                    x509.RFC822Name("someone@else.example")]
    minted = private.mint_digest(DIGEST_A, identity=IDENTITY, issuer=GITHUB_ACTIONS_ISSUER,
                                 sans=sans)
    ev = verify_signature(minted.bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert not ev.verified
    assert ev.error == "certificate has 2 identities, expected one"


def test_github_claims_are_ignored_for_other_issuers(private: PrivateSigstore,
                                                     private_root: TrustRoot) -> None:
    bundle = private.sign_digest(DIGEST_A, identity=IDENTITY, issuer="https://gitlab.com",
                                 github=GITHUB)
    ev = verify_signature(bundle, digest=DIGEST_A, trusted_roots=[private_root])
    assert ev.verified and ev.issuer == "https://gitlab.com" and ev.github is None


# --- properties -------------------------------------------------------------------------------

_slug = st.from_regex(r"[a-z0-9][a-z0-9-]{0,15}", fullmatch=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(owner=_slug, repo=_slug, ref=_slug, sha=st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
       trigger=st.sampled_from(["push", "release", "workflow_dispatch", "pull_request_target"]),
       digest=st.binary(min_size=32, max_size=32), other=st.binary(min_size=32, max_size=32))
def test_minted_claims_round_trip_and_bind_to_their_digest(
        private: PrivateSigstore, private_root: TrustRoot, owner: str, repo: str, ref: str,
        sha: str, trigger: str, digest: bytes, other: bytes) -> None:
    identity = f"https://github.com/{owner}/{repo}/.github/workflows/ci.yml@refs/heads/{ref}"
    github = {"repository": f"{owner}/{repo}", "workflow_ref": f"refs/heads/{ref}", "sha": sha,
              "trigger": trigger}
    signed = "sha256:" + digest.hex()
    bundle = private.sign_digest(signed, identity=identity, issuer=GITHUB_ACTIONS_ISSUER,
                                 github=github)
    ev = verify_signature(bundle, digest=signed, trusted_roots=[private_root])
    assert ev.verified, ev.error
    assert ev.identity == identity and ev.github == GitHubClaims(**github)
    if other != digest:
        assert not verify_signature(bundle, digest="sha256:" + other.hex(),
                                    trusted_roots=[private_root]).verified
    assert not verify_signature(bundle, digest=signed,
                                trusted_roots=[production_trust_root()]).verified


def test_instance_clock_can_be_fixed(tmp_path: Path) -> None:
    # Signing time = the instance clock (the root's keys become valid a day before it).
    past = PrivateSigstore(tmp_path, now=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
    ev = verify_signature(past.sign_digest(DIGEST_A, identity=IDENTITY,
                                           issuer=GITHUB_ACTIONS_ISSUER),
                          digest=DIGEST_A, trusted_roots=[load_trust_root(past.trusted_root_path)])
    assert ev.verified and ev.integrated_time == "2025-01-02T03:04:05Z"
