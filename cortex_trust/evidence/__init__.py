"""Evidence collectors: each turns raw material into one typed piece of ``input.evidence``.

One module per evidence source (Sigstore bundles, Trivy reports, JUnit results, reviews and
usage). Collectors establish facts only; they never decide. Every piece says whether it is
present and which image digest it is about, so that evidence about another artifact can be
dropped rather than used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._claims import GITHUB_ACTIONS_ISSUER
    from ._continuity import signer_continuity, signer_of
    from ._junit import MAX_JUNIT_BYTES, FailedCase, failed_cases, parse_junit, read_junit
    from ._review import (
        MAX_DOCUMENT_BYTES,
        REVIEW_SCHEMA,
        USAGE_SCHEMA,
        ReviewDocument,
        UsageDocument,
        UsageReporterDocument,
        parse_review,
        parse_usage,
        read_review,
        read_usage,
    )
    from ._scan import (
        MAX_REPORT_BYTES,
        SEVERITIES,
        ScanReport,
        parse_scanners,
        parse_trivy_report,
        read_trivy_report,
    )
    from ._scan_attestation import VULN_ATTESTATION_PREDICATE, verify_scan_attestation
    from ._signature import MAX_BUNDLE_BYTES, verify_attestation, verify_signature
    from ._trivy import find_trivy, run_trivy
    from ._trust_root import (
        MAX_TRUSTED_ROOT_BYTES,
        PRODUCTION_ROOT_NAME,
        TrustRoot,
        load_trust_root,
        production_trust_root,
    )

__all__ = [
    "GITHUB_ACTIONS_ISSUER",
    "MAX_BUNDLE_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_JUNIT_BYTES",
    "MAX_REPORT_BYTES",
    "MAX_TRUSTED_ROOT_BYTES",
    "PRODUCTION_ROOT_NAME",
    "REVIEW_SCHEMA",
    "SEVERITIES",
    "USAGE_SCHEMA",
    "VULN_ATTESTATION_PREDICATE",
    "FailedCase",
    "ReviewDocument",
    "ScanReport",
    "TrustRoot",
    "UsageDocument",
    "UsageReporterDocument",
    "failed_cases",
    "find_trivy",
    "load_trust_root",
    "parse_junit",
    "parse_review",
    "parse_scanners",
    "parse_trivy_report",
    "parse_usage",
    "production_trust_root",
    "read_junit",
    "read_review",
    "read_trivy_report",
    "read_usage",
    "run_trivy",
    "signer_continuity",
    "signer_of",
    "verify_attestation",
    "verify_scan_attestation",
    "verify_signature",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "FailedCase": "._junit",
    "GITHUB_ACTIONS_ISSUER": "._claims",
    "MAX_BUNDLE_BYTES": "._signature",
    "MAX_DOCUMENT_BYTES": "._review",
    "MAX_JUNIT_BYTES": "._junit",
    "MAX_REPORT_BYTES": "._scan",
    "MAX_TRUSTED_ROOT_BYTES": "._trust_root",
    "PRODUCTION_ROOT_NAME": "._trust_root",
    "REVIEW_SCHEMA": "._review",
    "ReviewDocument": "._review",
    "SEVERITIES": "._scan",
    "ScanReport": "._scan",
    "TrustRoot": "._trust_root",
    "USAGE_SCHEMA": "._review",
    "UsageDocument": "._review",
    "UsageReporterDocument": "._review",
    "VULN_ATTESTATION_PREDICATE": "._scan_attestation",
    "failed_cases": "._junit",
    "find_trivy": "._trivy",
    "load_trust_root": "._trust_root",
    "parse_junit": "._junit",
    "parse_review": "._review",
    "parse_scanners": "._scan",
    "parse_trivy_report": "._scan",
    "parse_usage": "._review",
    "production_trust_root": "._trust_root",
    "read_junit": "._junit",
    "read_review": "._review",
    "read_trivy_report": "._scan",
    "read_usage": "._review",
    "run_trivy": "._trivy",
    "signer_continuity": "._continuity",
    "signer_of": "._continuity",
    "verify_attestation": "._signature",
    "verify_scan_attestation": "._scan_attestation",
    "verify_signature": "._signature",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
