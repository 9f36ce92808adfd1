"""The signer of a Sigstore certificate: its identity, OIDC issuer and GitHub claims.

Read, never judged: whether the signer is trusted is the policy's decision. Anything that makes
"who signed" ambiguous or unreadable (several identities, extensions that disagree, a hostile
extension list) is recorded in :attr:`_Claims.problems`, which makes the evidence unverified.

Certificate claims mapping (Fulcio OIDs, https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
The V2 extension (DER ``UTF8String``) is preferred; the legacy one (raw bytes) is the fallback;
when both are present they must agree, otherwise the claim cannot be established and the
evidence is not verified:

============================  ==========================================  ===================
evidence field                V2 OID (preferred)                          legacy OID
============================  ==========================================  ===================
``issuer``                    ``1.3.6.1.4.1.57264.1.8`` (Issuer V2)       ``…1.1``
``github.repository``         ``…1.12`` Source Repository URI, minus      ``…1.5``
                              the ``https://github.com/`` prefix
``github.workflow_ref``       ``…1.14`` Source Repository Ref             ``…1.6``
``github.sha``                ``…1.13`` Source Repository Digest          ``…1.3``
``github.trigger``            ``…1.20`` Build Trigger                     ``…1.2``
============================  ==========================================  ===================

``github.workflow_ref`` is the git ref the workflow ran on (GitHub's ``ref`` claim, e.g.
``refs/tags/v1.0.0``), which is what Fulcio's legacy "GitHub Workflow Ref" extension holds.
The workflow *file* and its ref are the certificate identity (SAN URI,
``https://github.com/OWNER/REPO/.github/workflows/FILE.yml@REF``). GitHub claims are only
reported for certificates issued to ``https://token.actions.githubusercontent.com``.

"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cortex_trust.policy import GitHubClaims

from .._text import first_line as _first_line

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

__all__ = ["GITHUB_ACTIONS_ISSUER"]

#: The OIDC issuer of GitHub Actions (github.com); only its certificates carry GitHub claims.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"

_GITHUB_URL_PREFIX = "https://github.com/"

# Fulcio certificate extension OIDs (dotted strings; compared against cert extensions).
_OID_ISSUER_LEGACY = "1.3.6.1.4.1.57264.1.1"
_OID_GH_TRIGGER_LEGACY = "1.3.6.1.4.1.57264.1.2"
_OID_GH_SHA_LEGACY = "1.3.6.1.4.1.57264.1.3"
_OID_GH_REPOSITORY_LEGACY = "1.3.6.1.4.1.57264.1.5"
_OID_GH_REF_LEGACY = "1.3.6.1.4.1.57264.1.6"
_OID_OTHERNAME_IDENTITY = "1.3.6.1.4.1.57264.1.7"
_OID_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"
_OID_SOURCE_REPOSITORY_URI = "1.3.6.1.4.1.57264.1.12"
_OID_SOURCE_REPOSITORY_DIGEST = "1.3.6.1.4.1.57264.1.13"
_OID_SOURCE_REPOSITORY_REF = "1.3.6.1.4.1.57264.1.14"
_OID_BUILD_TRIGGER = "1.3.6.1.4.1.57264.1.20"


class _Claims:
    """Identity and claims read from the leaf certificate; ``problems`` makes it unusable."""

    def __init__(self) -> None:
        self.identity: str | None = None
        self.issuer: str | None = None
        self.github: GitHubClaims | None = None
        self.problems: list[str] = []


def _ext_raw(cert: Certificate, oid: str) -> bytes | None:
    from cryptography.x509 import ExtensionNotFound, ObjectIdentifier, UnrecognizedExtension

    try:
        ext = cert.extensions.get_extension_for_oid(ObjectIdentifier(oid))
    except ExtensionNotFound:  # a malformed extension list is handled by _read_claims
        return None
    if not isinstance(ext.value, UnrecognizedExtension):
        return None
    return ext.value.value


def _ext_claim(cert: Certificate, *, v2: str | None, legacy: str | None, claims: _Claims,
               label: str) -> str | None:
    """The value of a Fulcio claim: V2 (DER UTF8String) preferred, legacy (raw) as fallback."""
    from cryptography.hazmat import asn1

    v2_value: str | None = None
    legacy_value: str | None = None
    if v2 is not None and (raw := _ext_raw(cert, v2)) is not None:
        try:
            v2_value = asn1.decode_der(str, raw)
        except ValueError:
            claims.problems.append(f"certificate {label} extension ({v2}) is not a UTF8String")
            return None
    if legacy is not None and (raw := _ext_raw(cert, legacy)) is not None:
        try:
            legacy_value = raw.decode("utf-8")
        except UnicodeDecodeError:
            claims.problems.append(f"certificate {label} extension ({legacy}) is not UTF-8")
            return None
    if v2_value is not None and legacy_value is not None and v2_value != legacy_value:
        claims.problems.append(
            f"certificate {label} extensions disagree ({v2_value!r} vs {legacy_value!r})"
        )
        return None
    return v2_value if v2_value is not None else legacy_value


def _read_claims(cert: Certificate) -> _Claims:
    claims = _Claims()
    try:
        _read_claims_into(cert, claims)
    except Exception as exc:  # noqa: BLE001 - hostile certificate, see below
        # cryptography parses extensions lazily and raises several unrelated types on
        # malformed ones (ValueError, DuplicateExtension, UnsupportedGeneralNameType): any of
        # them means the claims cannot be established, which makes the evidence unverified.
        claims.problems.append(f"certificate claims unreadable: {_first_line(exc)}")
    return claims


def _read_claims_into(cert: Certificate, claims: _Claims) -> None:
    from cryptography.hazmat import asn1
    from cryptography.x509 import (
        ExtensionNotFound,
        OtherName,
        RFC822Name,
        SubjectAlternativeName,
        UniformResourceIdentifier,
    )

    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        claims.problems.append("certificate has no signer identity (SAN)")
    else:
        identities: list[str] = [
            *san.get_values_for_type(UniformResourceIdentifier),
            *san.get_values_for_type(RFC822Name),
            # Fulcio's "other name" identity (e.g. a username): a DER UTF8String.
            *(
                asn1.decode_der(str, on.value)
                for on in san.get_values_for_type(OtherName)
                if on.type_id.dotted_string == _OID_OTHERNAME_IDENTITY
            ),
        ]
        if len(identities) == 1:
            claims.identity = identities[0]
        elif identities:
            # Fulcio issues exactly one identity; several make "who signed" ambiguous.
            claims.problems.append(f"certificate has {len(identities)} identities, expected one")
        else:
            claims.problems.append("certificate has no signer identity (SAN)")

    claims.issuer = _ext_claim(cert, v2=_OID_ISSUER_V2, legacy=_OID_ISSUER_LEGACY,
                               claims=claims, label="OIDC issuer")
    if claims.issuer is None:
        claims.problems.append("certificate has no readable OIDC issuer")
    elif claims.issuer == GITHUB_ACTIONS_ISSUER:
        claims.github = _github_claims(cert, claims)


def _github_claims(cert: Certificate, claims: _Claims) -> GitHubClaims | None:
    repository: str | None = None
    repo_uri = _ext_claim(cert, v2=_OID_SOURCE_REPOSITORY_URI, legacy=None, claims=claims,
                          label="source repository URI")
    repo_legacy = _ext_claim(cert, v2=None, legacy=_OID_GH_REPOSITORY_LEGACY, claims=claims,
                             label="GitHub repository")
    if repo_uri is not None:
        if not repo_uri.startswith(_GITHUB_URL_PREFIX):
            claims.problems.append(f"source repository {repo_uri!r} is not on github.com")
        else:
            repository = repo_uri[len(_GITHUB_URL_PREFIX):]
    if repo_legacy is not None:
        if repository is not None and repository != repo_legacy:
            claims.problems.append(
                f"certificate repository extensions disagree ({repository!r} vs {repo_legacy!r})"
            )
            repository = None
        elif repository is None and repo_uri is None:
            repository = repo_legacy
    gh = GitHubClaims(
        repository=repository,
        workflow_ref=_ext_claim(cert, v2=_OID_SOURCE_REPOSITORY_REF, legacy=_OID_GH_REF_LEGACY,
                                claims=claims, label="source repository ref"),
        sha=_ext_claim(cert, v2=_OID_SOURCE_REPOSITORY_DIGEST, legacy=_OID_GH_SHA_LEGACY,
                       claims=claims, label="source repository digest"),
        trigger=_ext_claim(cert, v2=_OID_BUILD_TRIGGER, legacy=_OID_GH_TRIGGER_LEGACY,
                           claims=claims, label="build trigger"),
    )
    if gh == GitHubClaims():
        return None
    return gh
