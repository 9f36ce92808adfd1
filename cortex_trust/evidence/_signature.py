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

The signer's identity and claims are read from the certificate by
:mod:`cortex_trust.evidence._claims`; trusted roots are :mod:`cortex_trust.evidence._trust_root`.

Fields of an *unverified* bundle (``verified`` false): ``identity``, ``issuer`` and ``github``
are still reported when the certificate could be read, for diagnostics only; they are not
authenticated and the policy must only look at them when ``verified`` is true.
``subject_digest`` is then the digest the bundle *claims* to be about (possibly another image:
a mix-and-match attempt), and ``integrated_time`` is null.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cortex_trust.errors import EvidenceError, InputError
from cortex_trust.policy import SignatureEvidence, format_time

from .._text import first_line as _first_line
from ..ids import is_digest
from ._claims import _read_claims
from ._trust_root import TrustRoot, _verifier

if TYPE_CHECKING:  # sigstore is slow to import: only inside the functions that verify
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

__all__ = [
    "MAX_BUNDLE_BYTES",
    "verify_attestation",
    "verify_signature",
]

#: Bundles larger than this are refused before any parsing (real bundles are a few KB).
MAX_BUNDLE_BYTES = 2 * 1024 * 1024

_INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_INTOTO_STATEMENT_TYPES = frozenset(
    {"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"}
)

_log = logging.getLogger(__name__)


class _IdentityDecidedByPolicy:
    """A sigstore ``VerificationPolicy`` that accepts any certificate identity.

    Every other verification step still runs. The identity is not judged here because
    trusting a signer is a policy decision (Rego), made on the identity, issuer and claims this
    module extracts from the verified certificate. (``sigstore.verify.policy.UnsafeNoOp`` does
    the same but logs a warning on every call.)
    """

    def verify(self, cert: Certificate) -> None:
        return None



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
