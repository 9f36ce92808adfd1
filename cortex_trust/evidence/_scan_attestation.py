"""Scan evidence from a signed vulnerability-scan attestation: cosign's vulnerability predicate
in a Sigstore DSSE bundle about the image digest, verified offline like a signature. The signer
is recorded, never judged: whether it is trusted to attest scans is the policy's call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import EvidenceError
from ..policy import DroppedEvidence, ScanAttester, ScanEvidence
from ._scan import _SCANNER_NAMES, ScanReport, _time, parse_trivy_report

__all__ = ["VULN_ATTESTATION_PREDICATE", "verify_scan_attestation"]

#: The in-toto predicate type of a vulnerability scan attestation (``cosign attest --type vuln``,
#: ``trivy --format cosign-vuln``): ``predicate.scanner.result`` holds the Trivy JSON report.
VULN_ATTESTATION_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"


def _attested_scanners(predicate: Mapping[str, Any]) -> list[str]:
    """The scanners the attester declares in ``invocation.parameters.scanners`` (a list or
    Trivy's comma-separated ``--scanners`` value); names other than Trivy's are ignored."""
    invocation = predicate.get("invocation")
    params = invocation.get("parameters") if isinstance(invocation, Mapping) else None
    value = params.get("scanners") if isinstance(params, Mapping) else None
    names = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [n.strip() for n in names if isinstance(n, str) and n.strip() in _SCANNER_NAMES]


def verify_scan_attestation(bundle: bytes, *, digest: str, trusted_roots: Sequence[Any],
                            source: str | None = None) -> ScanReport:
    """Scan evidence from a signed vulnerability-scan attestation about ``digest``.

    ``bundle`` is a Sigstore bundle carrying a DSSE in-toto Statement whose subject is the image
    digest and whose predicate is cosign's vulnerability predicate
    (:data:`VULN_ATTESTATION_PREDICATE`, ``predicate.scanner.result`` = the Trivy JSON report),
    as ``cosign attest --type vuln`` or ``trivy --format cosign-vuln`` produce. It is verified
    offline against ``trusted_roots`` exactly like a signature
    (:func:`~cortex_trust.evidence.verify_attestation`). The evidence is ``attested``,
    bound to the digest (the signed subject names it), and records the signer in ``attester``;
    whether that signer is trusted to attest scans is the policy's call. Scanners: those the
    report shows, plus those the attester declares in ``predicate.invocation.parameters.scanners``
    (signed, like ``--scan-scanners`` in a pipeline).

    An attestation that does not verify, is about another digest or attests something other
    than a vulnerability scan is not used: the evidence is not present and ``dropped`` says why.
    Raises :class:`EvidenceError` when ``bundle`` is not a Sigstore bundle, or when a verified
    vulnerability attestation holds no well-formed Trivy report.
    """
    from ._signature import verify_attestation

    shown = source or "(scan attestation)"
    signature, statement = verify_attestation(bundle, digest=digest, trusted_roots=trusted_roots,
                                              source=source)

    def unused(code: str, why: str) -> ScanReport:
        return ScanReport(evidence=ScanEvidence(present=False, source=source), dropped=(
            DroppedEvidence(kind="scan", code=code,
                            message=f"the scan attestation {shown} {why}; it was not used"),))

    if statement is None:
        if signature.subject_digest is not None and signature.subject_digest != digest:
            return unused("DIGEST_MISMATCH", f"is about {signature.subject_digest}, not {digest}")
        return unused("SCAN_ATTESTATION_UNVERIFIED", f"did not verify ({signature.error})")
    predicate_type = statement.get("predicateType")
    if predicate_type != VULN_ATTESTATION_PREDICATE:
        shown_type = predicate_type[:200] if isinstance(predicate_type, str) else predicate_type
        return unused("SCAN_ATTESTATION_NOT_A_SCAN",
                      f"attests {shown_type!r}, not a vulnerability scan ({VULN_ATTESTATION_PREDICATE})")
    predicate = statement.get("predicate")
    scanner = predicate.get("scanner") if isinstance(predicate, Mapping) else None
    result = scanner.get("result") if isinstance(scanner, Mapping) else None
    if not isinstance(predicate, Mapping) or not isinstance(result, Mapping):
        raise EvidenceError(
            f"scan attestation {shown}: the predicate holds no Trivy report (predicate.scanner.result)",
            advice="attest the Trivy JSON report: `cosign attest --type vuln --predicate trivy.json` "
                   "or `trivy image --format cosign-vuln`")
    report = parse_trivy_report(result, digest=digest, source=source,
                                declared_scanners=_attested_scanners(predicate), origin="attested")
    if report.dropped:
        return report
    attester = ScanAttester(identity=signature.identity, issuer=signature.issuer,
                            trusted_root=signature.trusted_root,
                            signed_at=signature.integrated_time, predicate_type=predicate_type)
    made = _made_at(report.evidence.created_at, predicate, signed_at=signature.integrated_time,
                    source=shown)
    evidence = report.evidence.model_copy(update={"bound": True, "digest": digest,
                                                  "attester": attester, "created_at": made})
    return ScanReport(evidence=evidence, artifact_name=report.artifact_name,
                      artifact_type=report.artifact_type, repo_digests=report.repo_digests,
                      image_id=report.image_id, findings=report.findings)


def _made_at(created_at: str | None, predicate: Mapping[str, Any], *, signed_at: str | None,
             source: str) -> str | None:
    """When the attested scan was made: the report's ``CreatedAt``, else the predicate's signed
    ``metadata.scanFinishedOn`` (cosign's vulnerability predicate), else the verified signing
    time. A scan is made before its attestation is signed, so a later claim (which would keep the
    scan fresh for ever) is held to the signing time."""
    made = created_at
    metadata = predicate.get("metadata")
    if made is None and isinstance(metadata, Mapping):
        try:
            made = _time(metadata.get("scanFinishedOn"), source=source, where="metadata.scanFinishedOn")
        except EvidenceError:
            made = None
    if signed_at is not None and (made is None or made > signed_at):
        return signed_at
    return made
