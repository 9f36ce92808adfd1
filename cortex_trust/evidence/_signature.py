"""Sigstore signature evidence: is this bundle a valid signature over the image digest, and by whom?

What is signed is the image's **manifest digest** (``sha256:<64 hex>``). Two bundle shapes are
accepted:

* a *message signature* bundle (``hashedrekord``) whose signed artifact digest is the image
  digest. It is verified against the digest itself (``sigstore.hashes.Hashed``), so the
  manifest bytes are never needed;
* a *DSSE* bundle carrying an in-toto Statement (``cosign attest``, GitHub build-provenance
  attestations) with a subject whose ``sha256`` is the image digest. ``verify_dsse`` does not
  look at any artifact, so the subject match is done here, after the envelope verified.

Cryptographic validity is established here: the certificate chains to a pinned trusted root
and was valid at the (log or timestamp-authority) signing time, the SCT, the transparency-log
inclusion proof, checkpoint and inclusion promise, and the signature over the digest. Whether
the signer is *trusted* is not: the identity check is deliberately deferred to Rego, which sees
the certificate's identity, issuer and GitHub claims in :class:`SignatureEvidence`.

Verification is offline and never consults the sigstore-python TUF cache in the home
directory: trusted roots are files (the production root ships inside this package).

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

Fields of an *unverified* bundle (``verified`` false): ``identity``, ``issuer`` and ``github``
are still reported when the certificate could be read, for diagnostics only; they are not
authenticated and the policy must only look at them when ``verified`` is true.
``subject_digest`` is then the digest the bundle *claims* to be about (possibly another image:
a mix-and-match attempt), and ``integrated_time`` is null.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cortex_trust.errors import EvidenceError, InputError
from cortex_trust.policy import GitHubClaims, SignatureEvidence, format_time

from .._io import ReadRefused, read_bounded
from .._text import clip
from ..ids import is_digest

if TYPE_CHECKING:  # sigstore is slow to import: only inside the functions that verify
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier

__all__ = [
    "GITHUB_ACTIONS_ISSUER",
    "MAX_BUNDLE_BYTES",
    "MAX_TRUSTED_ROOT_BYTES",
    "PRODUCTION_ROOT_NAME",
    "TrustRoot",
    "load_trust_root",
    "production_trust_root",
    "verify_attestation",
    "verify_signature",
]

#: Bundles larger than this are refused before any parsing (real bundles are a few KB).
MAX_BUNDLE_BYTES = 2 * 1024 * 1024
#: Trusted-root documents larger than this are refused (the production root is ~7 KB).
MAX_TRUSTED_ROOT_BYTES = 1024 * 1024
#: Name of the Sigstore public-good production root shipped with the package.
PRODUCTION_ROOT_NAME = "sigstore-production"
#: The OIDC issuer of GitHub Actions (github.com); only its certificates carry GitHub claims.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"

_INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_INTOTO_STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
)
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

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrustRoot:
    """A Sigstore trusted root (Fulcio CAs, transparency logs, CT logs, timestamp authorities).

    ``document`` is the exact JSON content that was loaded and validated, so the root cannot
    change between loading and verifying. Build one with :func:`load_trust_root` or
    :func:`production_trust_root`; ``name`` is what ``SignatureEvidence.trusted_root`` reports.
    """

    name: str
    source: str
    document: bytes = field(repr=False)


_MAX_ERROR_CHARS = 300


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, bounded (some embed whole proofs)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return clip(line, _MAX_ERROR_CHARS)


def _parse_trust_root(document: bytes, *, source: str) -> None:
    """Validate a trusted-root document with sigstore's own parser (raises InputError)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    try:
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(document))
        # Each of these raises when the root lacks what verification needs.
        root.get_fulcio_certs()
        if not root._inner.tlogs:
            raise SigstoreError("it lists no transparency log")
    except (SigstoreError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"{source} is not a usable Sigstore trusted root: {_first_line(exc)}",
            advice="pass a trusted_root.json of the Sigstore instance that signed the bundle "
            "(media type application/vnd.dev.sigstore.trustedroot+json;version=0.1)",
        ) from exc


def load_trust_root(path: Path | str, *, name: str | None = None) -> TrustRoot:
    """Load and validate a Sigstore ``trusted_root.json`` file (a custom or private instance).

    ``name`` defaults to the file's stem. Raises :class:`InputError` when the file cannot be
    read (or is not a regular file), is larger than :data:`MAX_TRUSTED_ROOT_BYTES`, is not a
    usable trusted root, or would be named :data:`PRODUCTION_ROOT_NAME` without being the
    pinned production root.
    """
    p = Path(path)
    try:
        # The one bounded reader: a FIFO (or /dev/stdin) never blocks, anything but a regular
        # file is refused before a byte is read, at most the bound + 1 byte is read.
        document = read_bounded(p, max_bytes=MAX_TRUSTED_ROOT_BYTES)
    except ReadRefused as e:
        if e.kind in ("directory", "not_regular"):
            raise InputError(f"cannot read trusted root {p}: not a regular file",
                             advice="pass the path of a trusted_root.json file") from None
        if e.kind == "invalid":  # a NUL character in the path
            raise InputError(f"cannot read trusted root {str(p)!r}: not a valid path",
                             advice="check the --trusted-root path") from None
        if e.kind == "too_large":
            raise InputError(f"trusted root {p} is larger than {MAX_TRUSTED_ROOT_BYTES} bytes",
                             advice="pass a Sigstore trusted_root.json (a few kilobytes)") from None
        raise InputError(f"cannot read trusted root {p}: {e.detail}",
                         advice="check the --trusted-root path") from None
    _parse_trust_root(document, source=str(p))
    chosen = name or p.stem
    if chosen == PRODUCTION_ROOT_NAME and document != production_trust_root().document:
        # ``trusted_root`` in the evidence is how output and policy tell the public-good
        # instance from any other: a file called sigstore-production.json must not pose as it.
        raise InputError(
            f"trusted root {p} is not the pinned Sigstore production root, so it cannot be "
            f"named {PRODUCTION_ROOT_NAME!r}",
            advice="rename the file (its name is what the evidence reports), or drop it: the "
            "production root is always tried first",
        )
    return TrustRoot(name=chosen, source=str(p), document=document)


@functools.cache
def production_trust_root() -> TrustRoot:
    """The Sigstore public-good production root, pinned as a file shipped in this package.

    Never the sigstore-python TUF cache in the home directory (``Verifier.production()``):
    that cache is trusted without verification when offline. Updating the pinned root is a
    release of cortex-trust.
    """
    ref = resources.files("cortex_trust").joinpath("_roots/production.json")
    document = ref.read_bytes()
    _parse_trust_root(document, source="cortex_trust/_roots/production.json")
    return TrustRoot(
        name=PRODUCTION_ROOT_NAME, source="cortex_trust/_roots/production.json", document=document
    )


@functools.lru_cache(maxsize=32)
def _sigstore_root(document: bytes) -> TrustedRoot:
    # Keyed by the document bytes, so equal roots share one parse and a changed root never
    # reuses a stale one.
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    return TrustedRoot(trustroot_v1.TrustedRoot.from_json(document))


@functools.cache
def _recording_verifier_type() -> type[Verifier]:
    from sigstore.verify import Verifier

    class _RecordingVerifier(Verifier):
        """A ``Verifier`` that keeps the verified signing times it established.

        sigstore-python (pinned 4.5.1) establishes them inside verification (SET-backed log
        time, RFC 3161 timestamps that chain to the root's TSAs) but does not return them;
        recomputing would verify every TSA token twice. One instance per verification call
        (construction is cheap), so nothing is shared between threads.
        """

        established: list[Any]

        def _establish_time(self, bundle: Bundle) -> list[Any]:
            times = super()._establish_time(bundle)
            self.established = list(times)
            return times

    return _RecordingVerifier


def _verifier(document: bytes) -> Verifier:
    return _recording_verifier_type()(trusted_root=_sigstore_root(document))


class _IdentityDecidedByPolicy:
    """A sigstore ``VerificationPolicy`` that accepts any certificate identity.

    Every other verification step still runs. The identity is not judged here because
    trusting a signer is a policy decision (Rego), made on the identity, issuer and claims this
    module extracts from the verified certificate. (``sigstore.verify.policy.UnsafeNoOp`` does
    the same but logs a warning on every call.)
    """

    def verify(self, cert: Certificate) -> None:
        return None


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


def _statement_subjects(payload: bytes) -> list[str] | str:
    """The ``sha256:`` subject digests of an in-toto Statement, or a reason it is not one."""
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        return f"DSSE payload is not JSON: {_first_line(exc)}"
    if not isinstance(statement, dict) or statement.get("_type") not in _INTOTO_STATEMENT_TYPES:
        return "DSSE payload is not an in-toto Statement"
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "in-toto Statement has no subject"
    digests: list[str] = []
    for subject in subjects:
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
            return "in-toto Statement has a malformed subject"
        value = subject["digest"].get("sha256")
        if isinstance(value, str):
            digests.append(f"sha256:{value}")
    return digests


def _signing_time(verifier: Verifier) -> str | None:
    """The verified signing time: the log's integrated time (SET), else the earliest TSA time."""
    from sigstore._internal.timestamp import TimestampSource

    times = getattr(verifier, "established", None)
    if not times:
        return None
    from_log = [t.time for t in times if t.source is TimestampSource.TRANSPARENCY_SERVICE]
    chosen = from_log or sorted(t.time for t in times)
    return format_time(chosen[0])


def _parse_bundle(data: bytes, *, source: str | None) -> Bundle:
    where = source or "the signature bundle"
    advice = ("pass the Sigstore bundle (.sigstore.json) produced when the image digest was "
              "signed, e.g. `cosign sign --new-bundle-format` or `sigstore sign --bundle`")
    if len(data) > MAX_BUNDLE_BYTES:
        raise EvidenceError(
            f"{where} is not a Sigstore bundle: larger than {MAX_BUNDLE_BYTES} bytes",
            advice=advice,
        )
    from sigstore.models import Bundle

    try:
        return Bundle.from_json(data)
    except Exception as exc:
        # Hostile bytes go into a third-party parser stack (pydantic, cryptography, base64):
        # whatever it raises, the conclusion is the same, and it is an error, not a "pass".
        raise EvidenceError(
            f"{where} is not a Sigstore bundle: {_first_line(exc)}", advice=advice
        ) from exc


def verify_signature(
    bundle: bytes,
    *,
    digest: str,
    trusted_roots: Sequence[TrustRoot],
    source: str | None = None,
) -> SignatureEvidence:
    """Verify a Sigstore bundle as a signature over the image manifest ``digest``, offline.

    ``trusted_roots`` are tried in order; the first one that verifies is reported as
    ``trusted_root``. Returns evidence with ``present`` true; ``verified`` is true only when
    every cryptographic check passed *and* the bundle is about ``digest`` (message signature
    over it, or an in-toto subject with that sha256). Otherwise ``verified`` is false and
    ``error`` says why. The signer identity is reported, never judged (see the module doc).

    Raises :class:`EvidenceError` when ``bundle`` is not a Sigstore bundle at all (garbage,
    truncated, too large, unsupported shape), and :class:`InputError` when ``digest`` is not a
    ``sha256:`` digest or no trusted root is given. Never raises sigstore's own exceptions and
    never uses the network.
    """
    return _verify(bundle, digest=digest, trusted_roots=trusted_roots, source=source)[0]


def verify_attestation(
    bundle: bytes,
    *,
    digest: str,
    trusted_roots: Sequence[TrustRoot],
    source: str | None = None,
) -> tuple[SignatureEvidence, dict[str, Any] | None]:
    """Verify a Sigstore bundle carrying a DSSE in-toto attestation about ``digest``, offline.

    Exactly the checks of :func:`verify_signature` for a DSSE bundle (the in-toto subject must
    be ``digest``). Returns the signer's evidence and, only when it verified, the in-toto
    Statement as a JSON object (``predicateType``, ``predicate``); ``None`` otherwise. A
    message-signature bundle signs no statement, so it is reported as not verified. What the
    statement's predicate means is the caller's to read; who signed it is the policy's to judge.

    Raises like :func:`verify_signature`.
    """
    evidence, payload = _verify(bundle, digest=digest, trusted_roots=trusted_roots, source=source)
    if evidence.kind != "dsse":
        return evidence.model_copy(update={
            "verified": False, "subject_digest": None, "integrated_time": None,
            "trusted_root": None,
            "error": "the bundle is a message signature, not a DSSE in-toto attestation"}), None
    if not evidence.verified or payload is None:
        return evidence, None
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):  # _verify parsed it already: cannot happen
        statement = None
    if not isinstance(statement, dict):
        return evidence.model_copy(update={"verified": False, "trusted_root": None,
                                           "error": "DSSE payload is not a JSON object"}), None
    return evidence, statement


def _verify(
    bundle: bytes,
    *,
    digest: str,
    trusted_roots: Sequence[TrustRoot],
    source: str | None,
) -> tuple[SignatureEvidence, bytes | None]:
    """:func:`verify_signature`, also returning the verified DSSE payload (None otherwise)."""
    if not is_digest(digest):
        raise InputError(
            f"{digest!r} is not an image manifest digest",
            advice="pin the image by digest: REGISTRY/REPO@sha256:<64 lowercase hex digits>",
        )
    if not trusted_roots:
        raise InputError(
            "no Sigstore trusted root to verify the signature against",
            advice="use the production root (production_trust_root()) or pass --trusted-root",
        )
    parsed = _parse_bundle(bundle, source=source)

    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(digest[7:]))
    is_dsse = parsed._inner.dsse_envelope is not None
    claims = _read_claims(parsed.signing_certificate)
    claimed_subject = _claimed_subject(parsed, is_dsse=is_dsse)
    policy = _IdentityDecidedByPolicy()

    failures: list[tuple[str, str]] = []
    verified_payload: bytes | None = None
    verified_by: TrustRoot | None = None
    error: str | None = None
    signing_time: str | None = None
    for root in trusted_roots:
        try:
            verifier = _verifier(root.document)
            if is_dsse:
                payload_type, payload = verifier.verify_dsse(parsed, policy)
            else:
                verifier.verify_artifact(hashed, parsed, policy)
        except Exception as exc:  # noqa: BLE001 - hostile input, see below
            # Any failure inside sigstore (VerificationError, CertValidationError, and
            # whatever a malformed-but-parsable bundle provokes) means "not verified by this
            # root"; it is reported, never swallowed into a pass.
            failures.append((root.name, _first_line(exc)))
            continue
        if is_dsse:
            # verify_dsse authenticated the envelope but never looked at the artifact.
            if payload_type != _INTOTO_PAYLOAD_TYPE:
                error = f"DSSE payload type is {payload_type!r}, not {_INTOTO_PAYLOAD_TYPE}"
                break
            subjects = _statement_subjects(payload)
            if isinstance(subjects, str):
                error = subjects
                break
            if digest not in subjects:
                claimed_subject = subjects[0] if subjects else None
                error = f"DSSE statement is not about {digest}"
                break
            verified_payload = payload
        signing_time = _signing_time(verifier)
        if signing_time is None:  # sigstore requires one verified time; never trust less
            error = "verification established no signing time"
            break
        verified_by = root
        break

    if verified_by is not None and claims.problems:
        error = "; ".join(claims.problems)
        verified_by = None
    if verified_by is None and error is None:
        if len(failures) == 1:
            name, reason = failures[0]
            error = f"not verified against trusted root {name!r}: {reason}"
        else:
            details = "; ".join(f"{name}: {reason}" for name, reason in failures)
            error = f"not verified against any trusted root ({details})"

    verified = verified_by is not None
    return SignatureEvidence(
        present=True,
        verified=verified,
        kind="dsse" if is_dsse else "message_signature",
        identity=claims.identity,
        issuer=claims.issuer,
        github=claims.github,
        subject_digest=digest if verified else claimed_subject,
        integrated_time=signing_time if verified else None,
        trusted_root=verified_by.name if verified_by is not None else None,
        error=None if verified else error,
        source=source,
    ), (verified_payload if verified else None)


def _claimed_subject(parsed: Bundle, *, is_dsse: bool) -> str | None:
    """What the (not yet verified) bundle says it is about, for diagnostics and dropping."""
    try:
        if is_dsse:
            envelope = parsed._dsse_envelope
            if envelope is None:
                return None
            subjects = _statement_subjects(envelope._inner.payload)
            return subjects[0] if isinstance(subjects, list) and subjects else None
        signature: Any = parsed._inner.message_signature
        md = signature.message_digest if signature is not None else None
        if md is None or md.algorithm.name != "SHA2_256" or len(md.digest) != 32:
            return None
        return f"sha256:{md.digest.hex()}"
    except Exception:  # noqa: BLE001 - diagnostics only: an unreadable claim is not reported
        _log.debug("could not read the subject a bundle claims", exc_info=True)
        return None
