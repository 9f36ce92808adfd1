"""The OIDC identity-token verifier against a real local issuer over HTTP (discovery document,
JWKS, RSA and EC keys): what it accepts, every refusal by its code, its key cache and rotation,
and the publisher match. The clock is the verifier's ``now`` argument, so cache ages are
exact; tokens are minted at real time (``now`` below is real time)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from registry._errors import Unauthorized, Unavailable
from registry._oidc import OidcIdentity, OidcSettings, OidcVerifier, check_issuer_url, matches
from tests.support.oidc_issuer import LocalIssuer, hs256_with_public_key, local_issuer, unsigned

AUD = "cortex-test-registry"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as i:
        yield i


def _verifier(issuer: LocalIssuer, **kw: Any) -> OidcVerifier:
    return OidcVerifier(OidcSettings(audience=AUD, issuers=(issuer.url,), **kw))


def _now() -> datetime:
    return datetime.now(UTC)


def _code(verifier: OidcVerifier, token: str, *, now: datetime | None = None) -> str:
    with pytest.raises((Unauthorized, Unavailable)) as e:
        verifier.verify(token, now=now or _now())
    return str(e.value.code)  # type: ignore[union-attr]


def test_rs256_and_es256_tokens_verify_and_carry_the_workflow_claims(issuer: LocalIssuer) -> None:
    v = _verifier(issuer)
    for kid in ("rsa-1", "ec-1"):
        identity = v.verify(issuer.mint(audience=AUD, kid=kid), now=_now())
        assert (identity.issuer, identity.repository, identity.environment) == (issuer.url, "acme/tool", "release")
        assert identity.workflow_ref == "acme/tool/.github/workflows/release.yml@refs/tags/v1"
        assert identity.claims["repository"] == "acme/tool" and identity.claims["aud"] == AUD
        assert identity.expires_at > _now()


@pytest.mark.parametrize(("overrides", "code"), [
    ({"exp": -600, "iat": -900, "nbf": -900}, "OIDC_EXPIRED"),
    ({"nbf": 600, "iat": 0}, "OIDC_NOT_YET_VALID"),
    ({"iat": 600, "nbf": None}, "OIDC_NOT_YET_VALID"),
    ({"exp": 7300}, "OIDC_CLAIMS"),  # lives longer than an hour
    ({"jti": None}, "OIDC_CLAIMS"),
    ({"aud": "another-registry"}, "OIDC_WRONG_AUDIENCE"),
])
def test_time_audience_and_required_claims_are_checked(issuer: LocalIssuer, overrides: dict[str, Any],
                                                       code: str) -> None:
    now = int(_now().timestamp())
    claims = {k: (now + v if k in ("exp", "iat", "nbf") and v is not None else v) for k, v in overrides.items()}
    assert _code(_verifier(issuer), issuer.mint(audience=AUD, **claims)) == code


def test_a_small_clock_skew_is_tolerated(issuer: LocalIssuer) -> None:
    now = int(_now().timestamp())
    token = issuer.mint(audience=AUD, iat=now + 30, nbf=now + 30)
    assert _verifier(issuer).verify(token, now=_now()).jti
    expired_a_moment_ago = issuer.mint(audience=AUD, exp=now - 30, iat=now - 300, nbf=now - 300)
    assert _verifier(issuer).verify(expired_a_moment_ago, now=_now()).jti


def test_forged_and_foreign_tokens_are_refused(issuer: LocalIssuer) -> None:
    v = _verifier(issuer)
    claims = issuer.claims(audience=AUD)
    assert _code(v, unsigned(claims, kid="rsa-1")) == "OIDC_ALGORITHM"
    assert _code(v, hs256_with_public_key(claims, kid="rsa-1", public_pem=issuer.public_pem("rsa-1"))) \
        == "OIDC_ALGORITHM"
    issuer.add_key("rogue", publish=False)
    assert _code(v, issuer.mint(audience=AUD, kid="rogue")) == "OIDC_UNKNOWN_KEY"
    assert _code(v, issuer.mint(audience=AUD, iss="https://token.actions.githubusercontent.com")) \
        == "OIDC_ISSUER_NOT_ALLOWED"
    # A signature by another key under a published kid.
    good = issuer.mint(audience=AUD, kid="rsa-1")
    bad = issuer.mint(audience=AUD, kid="rogue").rsplit(".", 1)[1]
    assert _code(v, good.rsplit(".", 1)[0] + "." + bad) == "OIDC_BAD_SIGNATURE"
    # A payload edited after signing.
    header, _, signature = good.split(".")
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps({**claims, "repository": "acme/other"}).encode()).rstrip(b"=")
    assert _code(v, f"{header}.{forged.decode()}.{signature}") == "OIDC_BAD_SIGNATURE"
    assert _code(v, "not-a-jwt") == "OIDC_MALFORMED"
    assert _code(v, "x" * 20_000) == "OIDC_MALFORMED"


def test_a_token_whose_alg_does_not_fit_its_key_is_refused(issuer: LocalIssuer) -> None:
    """ES256 in the header, an RSA key behind the kid: refused before any signature check."""
    import jwt

    ec = issuer.keys["ec-1"].private
    token = jwt.encode(issuer.claims(audience=AUD), ec, algorithm="ES256", headers={"kid": "rsa-1"})
    assert _code(_verifier(issuer), token) == "OIDC_ALGORITHM"


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")
def test_a_short_rsa_key_is_refused(issuer: LocalIssuer) -> None:
    issuer.add_key("rsa-short", bits=1024)
    try:
        assert _code(_verifier(issuer), issuer.mint(audience=AUD, kid="rsa-short")) == "OIDC_ALGORITHM"
    finally:
        issuer.published.remove("rsa-short")


def test_keys_are_cached_and_a_rotated_key_is_fetched(issuer: LocalIssuer) -> None:
    v = _verifier(issuer, cache_ttl=timedelta(minutes=10), refetch_interval=timedelta(seconds=30))
    t0 = _now()
    v.verify(issuer.mint(audience=AUD), now=t0)
    assert v.fetches == 2  # discovery document and key set
    for i in range(5):
        v.verify(issuer.mint(audience=AUD), now=t0 + timedelta(seconds=i))
    assert v.fetches == 2  # warm cache: no request per token

    issuer.add_key("rsa-2")  # rotated in
    rotated = issuer.mint(audience=AUD, kid="rsa-2")
    # Within the refetch interval an unknown kid is refused without asking the issuer again...
    assert _code(v, rotated, now=t0 + timedelta(seconds=5)) == "OIDC_UNKNOWN_KEY"
    assert v.fetches == 2
    # ...after it, one refetch finds the new key.
    assert v.verify(rotated, now=t0 + timedelta(seconds=40)).jti
    assert v.fetches == 4

    issuer.published.remove("rsa-2")  # rotated out: stops verifying once the cache expires
    assert v.verify(issuer.mint(audience=AUD, kid="rsa-2"), now=t0 + timedelta(minutes=5)).jti
    assert _code(v, issuer.mint(audience=AUD, kid="rsa-2"), now=t0 + timedelta(minutes=11)) == "OIDC_UNKNOWN_KEY"


@pytest.mark.parametrize("mode", ["slow", "huge", "redirect"])
def test_a_misbehaving_key_endpoint_is_unavailable_not_accepted(mode: str) -> None:
    with local_issuer() as issuer:
        issuer.jwks_mode, issuer.delay_s = mode, 3.0
        v = _verifier(issuer, timeout_s=1.0)
        started = _now()
        assert _code(v, issuer.mint(audience=AUD)) == "OIDC_ISSUER_UNAVAILABLE"
        assert _now() - started < timedelta(seconds=2.5)  # bounded in time, whatever the server does
        issuer.jwks_mode = "normal"
        assert v.verify(issuer.mint(audience=AUD), now=_now()).jti  # nothing bad was cached


def test_a_discovery_document_pointing_elsewhere_is_refused(issuer: LocalIssuer) -> None:
    """The key set must be on the issuer's origin: no token can point the registry elsewhere."""
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": issuer.url, "jwks_uri": "http://169.254.169.254/keys"})

    v = OidcVerifier(OidcSettings(audience=AUD, issuers=(issuer.url,)), transport=httpx.MockTransport(handler))
    assert _code(v, issuer.mint(audience=AUD)) == "OIDC_ISSUER_UNAVAILABLE"

    def other_issuer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": "http://127.0.0.1:1", "jwks_uri": f"{issuer.url}/x"})

    v = OidcVerifier(OidcSettings(audience=AUD, issuers=(issuer.url,)), transport=httpx.MockTransport(other_issuer))
    assert _code(v, issuer.mint(audience=AUD)) == "OIDC_ISSUER_UNAVAILABLE"


def _identity(**kw: Any) -> OidcIdentity:
    base: dict[str, Any] = {"issuer": "https://i", "subject": "s", "jti": "j", "expires_at": _now(),
                            "repository": "Acme/Tool",
                            "workflow_ref": "Acme/Tool/.github/workflows/release.yml@refs/heads/main",
                            "environment": "Release"}
    return OidcIdentity(**{**base, **kw})


@pytest.mark.parametrize(("publisher", "identity", "expected"), [
    ({}, {}, True),
    ({"environment": None}, {"environment": None}, True),
    ({"environment": "release"}, {"environment": None}, False),
    ({"environment": "prod"}, {}, False),
    ({"repository": "acme/other"}, {}, False),
    ({"workflow": "deploy.yml"}, {}, False),
    ({"workflow": "Release.yml"}, {}, False),  # file names are case-sensitive
    ({}, {"workflow_ref": "acme/tool/.github/workflows/release.yml"}, False),  # no ref
    ({}, {"workflow_ref": "acme/tool/.github/workflows/release.yml.evil@refs/heads/main"}, False),
    ({}, {"workflow_ref": "evil/acme/tool/.github/workflows/release.yml@refs/heads/main"}, False),
    ({}, {"workflow_ref": "acme/other/.github/workflows/release.yml@refs/heads/main"}, False),
    ({"issuer": "https://other"}, {}, False),
])
def test_the_publisher_match(publisher: dict[str, Any], identity: dict[str, Any], expected: bool) -> None:
    configured = {"issuer": "https://i", "repository": "acme/tool", "workflow": "release.yml",
                  "environment": "release", **publisher}
    assert matches(identity=_identity(**identity), **configured) is expected


@pytest.mark.parametrize(("url", "ok"), [
    ("https://token.actions.githubusercontent.com", True),
    ("http://127.0.0.1:8080", True),
    ("http://issuer.example", False),
    ("https://issuer.example/", False),
    ("https://issuer.example?x=1", False),
    ("https://user:pw@issuer.example", False),
    ("ftp://issuer.example", False),
    ("https://issuer.example/\n", False),
])
def test_issuer_urls(url: str, ok: bool) -> None:
    assert (check_issuer_url(url) is None) is ok
