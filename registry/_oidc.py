"""Checking a CI job's OIDC identity token: who is publishing, established without a stored secret.

This is the registry's access control for trusted publishing, beside token authentication
(:mod:`registry._store._tokens`); it decides nothing about plugins. :class:`OidcVerifier`
verifies a token offline against its issuer's published keys and returns the identity it
proves; :func:`matches` says whether that identity is a configured trusted publisher.

Guarantees of :meth:`OidcVerifier.verify`:

* Only issuers in the configured allowlist are contacted, at
  ``{issuer}/.well-known/openid-configuration``; the discovery document must name that exact
  issuer and a ``jwks_uri`` on the issuer's own origin (scheme, host and port), so no token can
  make the registry fetch anything else. ``http`` is accepted only for a loopback issuer.
* Every fetch is a GET that follows no redirect (a 3xx is refused), is bounded in time as a whole
  (:attr:`OidcSettings.timeout_s`, however slowly the body drips) and in size
  (:attr:`OidcSettings.max_bytes`, read no further), and must be a JSON object.
* The key set is cached per issuer for :attr:`OidcSettings.cache_ttl`. A token naming a key id
  the cache lacks makes one refetch (at most one per :attr:`OidcSettings.refetch_interval`):
  a rotated-in key is found, and a key dropped from the set stops verifying at the next fetch.
* Only RS256 (RSA of at least 2048 bits) and ES256 (P-256) signatures verify, with a key of that
  type from the issuer's set chosen by the token's ``kid``: ``alg: none``, HMAC (the public key
  used as a shared secret) and a key of another type are refused before any signature check.
* ``iss`` is the allowed issuer, ``aud`` contains the registry's audience, ``exp``/``nbf``/
  ``iat`` hold at ``now`` within :attr:`OidcSettings.leeway`, the token lives at most
  :attr:`OidcSettings.max_lifetime`, and ``jti`` is present. Replay (a ``jti`` already
  exchanged) is the store's check, in the same transaction that issues the credential.

Every refusal is an :class:`~registry._errors.Unauthorized` with its own code; an issuer that
cannot be reached or misbehaves is :class:`~registry._errors.Unavailable`
(``OIDC_ISSUER_UNAVAILABLE``): nothing is recorded in either case. The token itself is never
stored or logged; :attr:`OidcIdentity.claims` is the subset of claims the audit log records.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from ._errors import Unauthorized, Unavailable

__all__ = [
    "AUDITED_CLAIMS",
    "GITHUB_ACTIONS_ISSUER",
    "OidcIdentity",
    "OidcSettings",
    "OidcVerifier",
    "check_issuer_url",
    "check_repository",
    "check_workflow",
    "matches",
]

#: GitHub Actions' issuer: the default allowlist.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
#: The claims recorded in the audit log for an exchange (strings and integers, clipped): enough to
#: say which run of which workflow published; never the token or its signature.
AUDITED_CLAIMS = ("iss", "sub", "aud", "jti", "iat", "exp", "repository", "repository_id",
                  "repository_owner", "repository_owner_id", "workflow_ref", "job_workflow_ref",
                  "ref", "sha", "environment", "event_name", "run_id", "run_attempt", "actor")
#: Algorithms and the key type each must come with (RFC 7518 §3.1).
_ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}
_MAX_TOKEN = 16 * 1024
_MAX_KEYS = 100
_MIN_RSA_BITS = 2048
# GitHub's repository grammar: owner (letters, digits, hyphens) / name (also . and _).
_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_WORKFLOW = re.compile(r"[A-Za-z0-9._-]{1,200}\.ya?ml")


@dataclass(frozen=True)
class OidcSettings:
    """Where tokens may come from and how their keys are fetched.

    ``issuers`` is the allowlist (exact issuer URLs); ``audience`` the ``aud`` value tokens
    must carry for this registry (unique per registry, so that a token minted for another one
    is useless here).
    """

    audience: str
    issuers: tuple[str, ...] = (GITHUB_ACTIONS_ISSUER,)
    timeout_s: float = 5.0
    max_bytes: int = 64 * 1024
    cache_ttl: timedelta = timedelta(minutes=10)
    refetch_interval: timedelta = timedelta(seconds=30)
    leeway: timedelta = timedelta(seconds=60)
    max_lifetime: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified token proves: its issuer, subject, ``jti`` and expiry, the repository,
    workflow ref and environment claims (GitHub Actions' names), and the audited subset of its
    claims."""

    issuer: str
    subject: str
    jti: str
    expires_at: datetime
    repository: str | None
    workflow_ref: str | None
    environment: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)


def check_issuer_url(url: str) -> str | None:
    """Why ``url`` cannot be an issuer (``None``: it can): an ``https`` URL (``http`` only on a
    loopback host) without query, fragment, credentials or trailing slash, at most 255
    characters."""
    if len(url) > 255 or any(c.isspace() or ord(c) < 32 for c in url):
        return "it is longer than 255 characters or holds whitespace"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a malformed port raises here
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "it is not an https URL"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "http is accepted only for a loopback issuer"
    if parts.query or parts.fragment or parts.username or parts.password or url.endswith("/"):
        return "it has a query, a fragment, credentials or a trailing slash"
    return None


def check_repository(repository: str) -> bool:
    """Whether ``repository`` is ``owner/name`` in GitHub's grammar."""
    return _REPOSITORY.fullmatch(repository) is not None


def check_workflow(workflow: str) -> bool:
    """Whether ``workflow`` is a workflow file name (``release.yml``), without a directory."""
    return _WORKFLOW.fullmatch(workflow) is not None


def matches(*, issuer: str, repository: str, workflow: str, environment: str | None,
            identity: OidcIdentity) -> bool:
    """Whether ``identity`` is the trusted publisher ``issuer``/``repository``/``workflow``
    (/``environment``).

    The ``repository`` claim must name the repository (GitHub compares names case-insensitively),
    the ``workflow_ref`` claim must be ``{repository}/.github/workflows/{workflow}@{ref}`` (the
    workflow that started the run, any ref), and when ``environment`` is set the
    ``environment`` claim must name it (case-insensitively, as GitHub does).
    """
    if identity.issuer != issuer or identity.repository is None or identity.workflow_ref is None:
        return False
    if identity.repository.lower() != repository.lower():
        return False
    path, at, ref = identity.workflow_ref.partition("@")
    claimed_repository, sep, claimed_workflow = path.partition("/.github/workflows/")
    if not (at and ref and sep) or claimed_repository.lower() != repository.lower() \
            or claimed_workflow != workflow:
        return False
    if environment is not None:
        return identity.environment is not None and identity.environment.lower() == environment.lower()
    return True


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(code: str, message: str, advice: str) -> Unauthorized:
    return Unauthorized(code, message, advice=advice)


@dataclass
class _KeySet:
    keys: dict[str, dict[str, Any]]
    fetched_at: datetime


class OidcVerifier:
    """Verifies OIDC identity tokens for one registry; thread-safe; caches each issuer's keys.

    ``transport`` replaces the network in tests of this class alone (an ``httpx`` transport).
    """

    def __init__(self, settings: OidcSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self._lock = threading.Lock()
        self._cache: dict[str, _KeySet] = {}
        #: Fetches made (discovery and key set each count one): for tests and benchmarks.
        self.fetches = 0

    # ------------------------------------------------------------------------------ verify

    def verify(self, token: str, *, now: datetime) -> OidcIdentity:
        """The identity ``token`` proves at ``now``; see the module's guarantees.

        Raises :class:`Unauthorized` (``OIDC_MALFORMED``, ``OIDC_ALGORITHM``,
        ``OIDC_ISSUER_NOT_ALLOWED``, ``OIDC_UNKNOWN_KEY``, ``OIDC_BAD_SIGNATURE``,
        ``OIDC_WRONG_AUDIENCE``, ``OIDC_CLAIMS``, ``OIDC_EXPIRED``, ``OIDC_NOT_YET_VALID``) and
        :class:`Unavailable` (``OIDC_ISSUER_UNAVAILABLE``).
        """
        import jwt

        if len(token) > _MAX_TOKEN:
            raise _refused("OIDC_MALFORMED", "the identity token is too large",
                           "send the CI's OIDC identity token as issued")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _refused("OIDC_MALFORMED", "the identity token is not a JWT",
                           "send the CI's OIDC identity token as issued (header.payload.signature)") from None
        alg = header.get("alg")
        if alg not in _ALGORITHMS:
            raise _refused("OIDC_ALGORITHM", f"identity tokens signed with {str(alg)[:20]!r} are not accepted",
                           f"the issuer must sign with {' or '.join(_ALGORITHMS)}")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.settings.issuers:
            raise _refused("OIDC_ISSUER_NOT_ALLOWED",
                           f"this registry does not accept identity tokens from {str(issuer)[:100]!r}",
                           f"accepted issuers: {', '.join(self.settings.issuers)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refused("OIDC_UNKNOWN_KEY", "the identity token names no signing key (kid)",
                           "send the CI's OIDC identity token as issued")
        jwk = self._key(issuer, kid, now=now)
        key = self._public_key(jwk, alg=str(alg))
        try:
            claims = jwt.decode(
                token, key=key, algorithms=[str(alg)], audience=self.settings.audience,
                issuer=issuer,
                # Times are checked below against the registry's clock (read once per request).
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["iss", "aud", "exp", "iat", "jti", "sub"]})
        except jwt.InvalidAudienceError:
            raise _refused("OIDC_WRONG_AUDIENCE",
                           "the identity token was issued for another audience",
                           f"request the token with audience {self.settings.audience!r} "
                           "(GET /api/v1/oidc/audience)") from None
        except jwt.InvalidSignatureError:
            raise _refused("OIDC_BAD_SIGNATURE", "the identity token's signature does not verify",
                           "send the token exactly as the CI issued it") from None
        except jwt.MissingRequiredClaimError as e:
            raise _refused("OIDC_CLAIMS", f"the identity token has no {e.claim!r} claim",
                           "use a CI whose identity tokens carry iss, aud, sub, exp, iat and jti") from None
        except jwt.PyJWTError as e:
            raise _refused("OIDC_CLAIMS", f"the identity token is not acceptable: {str(e)[:200]}",
                           "send the CI's OIDC identity token as issued") from None
        return self._identity(claims, issuer=issuer, now=now)

    def _identity(self, claims: dict[str, Any], *, issuer: str, now: datetime) -> OidcIdentity:
        leeway = self.settings.leeway.total_seconds()
        stamp = now.timestamp()
        times: dict[str, int] = {}
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if value is None and name == "nbf":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise _refused("OIDC_CLAIMS", f"the identity token's {name!r} is not a number of seconds",
                               "send the CI's OIDC identity token as issued")
            times[name] = value
        if times["exp"] <= stamp - leeway:
            raise _refused("OIDC_EXPIRED", "the identity token has expired",
                           "request a fresh token right before publishing (they live minutes)")
        if times["iat"] > stamp + leeway or times.get("nbf", 0) > stamp + leeway:
            raise _refused("OIDC_NOT_YET_VALID", "the identity token is not valid yet",
                           "check the clocks of the CI runner and the registry")
        if times["exp"] - times["iat"] > self.settings.max_lifetime.total_seconds():
            raise _refused("OIDC_CLAIMS", "the identity token lives longer than this registry accepts",
                           f"use tokens valid for at most {self.settings.max_lifetime}")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 255:
            raise _refused("OIDC_CLAIMS", "the identity token's 'jti' is not a string of 1 to 255 characters",
                           "send the CI's OIDC identity token as issued")

        def text(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and 0 < len(value) <= 512 else None

        audited: dict[str, Any] = {k: (v[:256] if isinstance(v, str) else v) for k in AUDITED_CLAIMS
                   if isinstance(v := claims.get(k), (str, int)) and not isinstance(v, bool)}
        if isinstance(aud := claims.get("aud"), list):
            audited["aud"] = [a[:256] for a in aud[:5] if isinstance(a, str)]
        return OidcIdentity(issuer=issuer, subject=str(claims["sub"])[:512], jti=jti,
                            expires_at=datetime.fromtimestamp(times["exp"], UTC) + self.settings.leeway,
                            repository=text("repository"), workflow_ref=text("workflow_ref"),
                            environment=text("environment"), claims=audited)

    @staticmethod
    def _public_key(jwk: dict[str, Any], *, alg: str) -> Any:
        import jwt

        if jwk.get("kty") != _ALGORITHMS[alg] or jwk.get("alg", alg) != alg or \
                (alg == "ES256" and jwk.get("crv") != "P-256"):
            raise _refused("OIDC_ALGORITHM", f"the token's key is not a {alg} key",
                           "the token's alg must match the issuer's key")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError:
            raise _refused("OIDC_UNKNOWN_KEY", "the issuer's key for this token cannot be used",
                           "ask the issuer's operator to check its key set") from None
        if alg == "RS256" and key.key_size < _MIN_RSA_BITS:
            raise _refused("OIDC_ALGORITHM", "the issuer's RSA key is shorter than 2048 bits",
                           "the issuer must use a stronger key")
        return key

    # -------------------------------------------------------------------------------- keys

    def _key(self, issuer: str, kid: str, *, now: datetime) -> dict[str, Any]:
        with self._lock:
            cached = self._cache.get(issuer)
            if cached is None or now - cached.fetched_at >= self.settings.cache_ttl or (
                    kid not in cached.keys and now - cached.fetched_at >= self.settings.refetch_interval):
                cached = _KeySet(self._fetch_keys(issuer), now)
                self._cache[issuer] = cached
            jwk = cached.keys.get(kid)
        if jwk is None:
            raise _refused("OIDC_UNKNOWN_KEY", f"the issuer publishes no key {kid[:80]!r}",
                           "send a token the issuer signed with one of its published keys")
        return jwk

    def _fetch_keys(self, issuer: str) -> dict[str, dict[str, Any]]:
        discovery = self._fetch_json(f"{issuer}/.well-known/openid-configuration", issuer=issuer)
        if discovery.get("issuer") != issuer:
            raise self._unavailable(issuer, "its discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not _same_origin(jwks_uri, issuer):
            raise self._unavailable(issuer, "its discovery document's jwks_uri is not on the issuer's origin")
        document = self._fetch_json(jwks_uri, issuer=issuer)
        keys = document.get("keys")
        if not isinstance(keys, list) or len(keys) > _MAX_KEYS:
            raise self._unavailable(issuer, "its key set is not a list of at most 100 keys")
        out: dict[str, dict[str, Any]] = {}
        for k in keys:
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("use", "sig") == "sig":
                out[k["kid"]] = k
        return out

    def _fetch_json(self, url: str, *, issuer: str) -> dict[str, Any]:
        self.fetches += 1
        limit = self.settings.max_bytes
        deadline = time.monotonic() + self.settings.timeout_s
        try:
            with httpx.Client(follow_redirects=False, timeout=self.settings.timeout_s, trust_env=False,
                              transport=self._transport) as client, \
                    client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                if response.is_redirect:
                    raise self._unavailable(issuer, f"{url} answered a redirect (not followed)")
                if response.status_code != 200:
                    raise self._unavailable(issuer, f"{url} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise self._unavailable(issuer, f"{url} is larger than {limit} bytes")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise self._unavailable(issuer, f"{url} is larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the whole answer took too long")
        except httpx.HTTPError as e:
            raise self._unavailable(issuer, f"{url} could not be fetched ({type(e).__name__})") from None
        if time.monotonic() > deadline:
            raise self._unavailable(issuer, f"{url} took longer than {self.settings.timeout_s} s")
        try:
            document = json.loads(bytes(body))
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise self._unavailable(issuer, f"{url} is not a JSON object")
        return document

    @staticmethod
    def _unavailable(issuer: str, why: str) -> Unavailable:
        return Unavailable("OIDC_ISSUER_UNAVAILABLE", f"cannot get the signing keys of {issuer}: {why}",
                           advice="retry later; if it persists the registry operator must check the "
                                  "issuer allowlist and the issuer")


def _same_origin(url: str, issuer: str) -> bool:
    try:
        a, b = urlsplit(url), urlsplit(issuer)
        return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port) and not a.username
    except ValueError:
        return False
