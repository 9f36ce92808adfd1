"""Scan evidence from Trivy: reading a JSON report (``SchemaVersion`` 2). Running Trivy is
:mod:`cortex_trust.evidence._trivy`, a signed scan attestation
:mod:`cortex_trust.evidence._scan_attestation`; both build on the reading here.

Facts only; the policy decides what is good enough. What scan evidence guarantees:

* **Binding.** A report is bound to the image only if ``Metadata.RepoDigests`` names the
  artifact digest (Trivy fills it only when it pulled an image from a registry). A report that
  names *another* digest is dropped (``DIGEST_MISMATCH``) and never used; a report that names no
  digest at all is ``present`` but ``bound: false`` (by default not enough for Community).
* **Which scanners ran.** A report cannot say. Trivy omits empty lists, so a secret-only scan
  of an image looks exactly like a clean vulnerability scan; even the ``os-pkgs``/``lang-pkgs``
  results appear without the vulnerability scanner (``--list-all-pkgs`` is on by default in
  Trivy 0.76 and lists packages for ``--scanners secret`` too). So for a *report* we record only
  what it shows positively: ``vuln`` when some result carries a ``Vulnerabilities`` list,
  ``secret`` when some result carries ``Secrets``, ``misconfig`` when some result carries
  ``Misconfigurations`` or ``MisconfSummary``. A clean report therefore proves little, on
  purpose: unscanned is never clean. :func:`run_trivy` knows what it asked for and records that.
* **Who produced it.** ``origin`` records it and the policy weighs it: a report read here is
  ``self-reported`` unless the caller knows better (``cortex plugin verify`` reads its user's
  own ``pipeline`` report); :func:`run_trivy` is ``pipeline`` or ``registry``; a scan inside a
  signed attestation (:func:`verify_scan_attestation`: cosign's vulnerability predicate in a
  Sigstore DSSE bundle about the digest) is ``attested``, with its signer recorded.
* **Fail closed.** An unreadable, oversized or malformed report is an
  :class:`~cortex_trust.errors.EvidenceError`; Trivy that cannot run is a
  :class:`~cortex_trust.errors.CollectorError` (exit 3), never an empty scan.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from .._io import display_path, read_evidence_file
from .._json import JsonLimitError, load_json
from ..errors import EvidenceError
from ..ids import DIGEST, is_digest
from ..policy import DroppedEvidence, ScanEvidence, ScanOrigin, ScanVulnerability, format_time
from ..policy._input import Severity

__all__ = [
    "MAX_REPORT_BYTES",
    "SEVERITIES",
    "ScanReport",
    "parse_scanners",
    "parse_trivy_report",
    "read_trivy_report",
]

#: Largest report we read. Reports of big images with every package listed are a few MiB.
MAX_REPORT_BYTES = 64 * 1024 * 1024

#: Trivy's severities, lowest first. Anything else in a report is an error (fail closed).
SEVERITIES: tuple[Severity, ...] = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")

_REPO_DIGEST_RE = re.compile(rf"^[^@\s]+@({DIGEST})\Z")
_Scanner = Literal["vuln", "secret", "misconfig"]
_SCANNER_NAMES: tuple[_Scanner, ...] = ("vuln", "secret", "misconfig")


@dataclass(frozen=True)
class ScanReport:
    """What :func:`read_trivy_report` found.

    ``evidence`` goes into ``input.evidence.scan``; ``dropped`` into ``input.evidence.dropped``
    (non-empty exactly when the report was about another digest; ``evidence.present`` is then
    false). The other fields are for messages and summaries, not for decisions.
    """

    evidence: ScanEvidence
    dropped: tuple[DroppedEvidence, ...] = ()
    artifact_name: str | None = None
    artifact_type: str | None = None
    repo_digests: tuple[str, ...] = ()
    image_id: str | None = None
    findings: Mapping[str, int] = field(default_factory=dict)

    def __iter__(self) -> Any:
        # Allows ``evidence, dropped = read_trivy_report(...)``.
        return iter((self.evidence, list(self.dropped)))


def _bad(source: str, problem: str) -> EvidenceError:
    return EvidenceError(
        f"Trivy report {source}: {problem}",
        advice="pass the JSON report Trivy wrote with `--format json` (SchemaVersion 2)")


def _str(value: Any, *, source: str, where: str, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _bad(source, f"{where} must be a string, got {type(value).__name__}")
    return value


def _list(value: Any, *, source: str, where: str) -> list[Any]:
    # Trivy omits empty lists; ``null`` is accepted as "none" too.
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(source, f"{where} must be a list, got {type(value).__name__}")
    return value


def _obj(value: Any, *, source: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(source, f"{where} must be an object, got {type(value).__name__}")
    return value


def _time(value: Any, *, source: str, where: str) -> str | None:
    if value is None:
        return None
    text = _str(value, source=source, where=where)
    try:
        # Trivy writes nanoseconds; Python 3.11 keeps microseconds, enough for RFC 3339 seconds.
        t = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(source, f"{where} is not an RFC 3339 time: {text[:60]!r}") from None
    if t.tzinfo is None:
        raise _bad(source, f"{where} has no time zone: {text[:60]!r}")
    try:
        return format_time(t)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00 is after year 9999 in UTC
        raise _bad(source, f"{where} is out of range: {text[:60]!r}") from None


def parse_scanners(value: str) -> tuple[str, ...]:
    """Trivy's ``--scanners`` value (comma-separated: ``vuln,secret``) as scanner names, in the
    order given, without blanks or repeats: what a pipeline declares about the report it
    produced (``--scan-scanners`` of ``cortex plugin verify`` and ``publish``).

    Raises :class:`EvidenceError` naming every name that is not one of Trivy's scanners
    (``vuln``, ``secret``, ``misconfig``).
    """
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    _check_scanner_names(names)
    return names


def _check_scanner_names(names: Sequence[str]) -> None:
    unknown = sorted(set(names) - set(_SCANNER_NAMES))
    if unknown:
        raise EvidenceError(f"unknown scanner{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                            advice=f"declare scanners from: {', '.join(_SCANNER_NAMES)} "
                                   "(as given to trivy --scanners)")


def parse_trivy_report(data: bytes | str | Mapping[str, Any], *, digest: str,
                       source: str | None = None,
                       declared_scanners: Sequence[str] = (),
                       origin: ScanOrigin = "self-reported") -> ScanReport:
    """Turn a Trivy JSON report (already read) into scan evidence about ``digest``.

    ``digest`` is the artifact's manifest digest (``sha256:<64 hex>``). See the module docstring
    for binding and scanner rules. ``declared_scanners`` are the scanners the producer of the
    report says it ran (``trivy --scanners vuln,secret`` in the pipeline): a report cannot show
    a clean scanner, so this is the only way a clean report can name one; they are recorded with
    the proven ones, and ``produced_by: report`` tells policy the scan was not run by us.
    ``origin`` is who produced the report (see :class:`ScanEvidence`); the default is the
    weakest, ``self-reported``. Raises :class:`EvidenceError` for anything that is not a
    well-formed SchemaVersion 2 report (wrong version, wrong types, unknown severities).
    """
    if not is_digest(digest):
        raise EvidenceError(f"not an image digest: {digest!r}",
                            advice="give the digest as sha256:<64 lowercase hex digits>")
    _check_scanner_names(declared_scanners)
    shown = source or "(report)"
    if isinstance(data, Mapping):
        doc: Any = dict(data)
    else:
        try:
            doc = load_json(data)
        except UnicodeDecodeError:
            raise _bad(shown, "not UTF-8 text") from None
        except JsonLimitError as e:
            raise EvidenceError(
                f"Trivy report {shown}: {e.msg} at line {e.lineno} column {e.colno}",
                advice="pass the report exactly as Trivy wrote it (`--format json`); real "
                       "reports have no such values") from None
        except json.JSONDecodeError as e:
            raise _bad(shown, f"not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        except RecursionError:
            raise _bad(shown, "JSON nested too deeply") from None
    doc = _obj(doc, source=shown, where="the report")
    version = doc.get("SchemaVersion")
    if isinstance(version, bool) or version != 2:
        raise EvidenceError(
            f"Trivy report {shown}: SchemaVersion is {version!r}; only SchemaVersion 2 is supported",
            advice="produce the report with Trivy 0.20 or later using `--format json`")

    artifact_name = _str(doc.get("ArtifactName"), source=shown, where="ArtifactName") or None
    artifact_type = _str(doc.get("ArtifactType"), source=shown, where="ArtifactType") or None
    metadata = _obj(doc.get("Metadata") or {}, source=shown, where="Metadata")
    image_id = _str(metadata.get("ImageID"), source=shown, where="Metadata.ImageID") or None
    repo_digests: list[str] = []
    for i, entry in enumerate(_list(metadata.get("RepoDigests"), source=shown,
                                    where="Metadata.RepoDigests")):
        text = _str(entry, source=shown, where=f"Metadata.RepoDigests[{i}]", required=True)
        m = _REPO_DIGEST_RE.match(text)
        if not m:
            raise _bad(shown, f"Metadata.RepoDigests[{i}] is not REPOSITORY@sha256:DIGEST: "
                              f"{text[:120]!r}")
        repo_digests.append(m.group(1))
    trivy = doc.get("Trivy")
    trivy_version = None
    if trivy is not None:
        trivy_version = _str(_obj(trivy, source=shown, where="Trivy").get("Version"),
                             source=shown, where="Trivy.Version") or None
    created_at = _time(doc.get("CreatedAt"), source=shown, where="CreatedAt")

    counts: dict[Severity, int] = dict.fromkeys(SEVERITIES, 0)
    vulns: list[ScanVulnerability] = []
    scanners: set[_Scanner] = {cast(_Scanner, d) for d in declared_scanners}
    secrets = 0
    misconfigs = 0
    for i, raw in enumerate(_list(doc.get("Results"), source=shown, where="Results")):
        result = _obj(raw, source=shown, where=f"Results[{i}]")
        if "Vulnerabilities" in result:
            # Trivy omits the key when empty, so its presence shows the vuln scanner ran.
            scanners.add("vuln")
        for j, rv in enumerate(_list(result.get("Vulnerabilities"), source=shown,
                                     where=f"Results[{i}].Vulnerabilities")):
            where = f"Results[{i}].Vulnerabilities[{j}]"
            v = _obj(rv, source=shown, where=where)
            sev = v.get("Severity")
            if sev not in SEVERITIES:
                raise _bad(shown, f"{where}.Severity is {sev!r}, not one of {', '.join(SEVERITIES)}")
            vid = _str(v.get("VulnerabilityID"), source=shown, where=f"{where}.VulnerabilityID",
                       required=True)
            if not vid:
                raise _bad(shown, f"{where}.VulnerabilityID is empty")
            severity = cast(Severity, sev)
            counts[severity] += 1
            vulns.append(ScanVulnerability(
                id=vid,
                severity=severity,
                package=_str(v.get("PkgName"), source=shown, where=f"{where}.PkgName"),
                installed_version=_str(v.get("InstalledVersion"), source=shown,
                                       where=f"{where}.InstalledVersion"),
                fixed_version=_str(v.get("FixedVersion"), source=shown,
                                   where=f"{where}.FixedVersion"),
            ))
        if "Secrets" in result:
            scanners.add("secret")
        secrets += len(_list(result.get("Secrets"), source=shown, where=f"Results[{i}].Secrets"))
        if "Misconfigurations" in result or "MisconfSummary" in result:
            scanners.add("misconfig")
        for j, rm in enumerate(_list(result.get("Misconfigurations"), source=shown,
                                     where=f"Results[{i}].Misconfigurations")):
            mc = _obj(rm, source=shown, where=f"Results[{i}].Misconfigurations[{j}]")
            # Only failures count; successes appear with --include-non-failures and
            # EXCEPTION marks a check the scanning organisation explicitly waived.
            if mc.get("Status") not in ("PASS", "EXCEPTION"):
                misconfigs += 1

    findings = {"vulnerabilities": len(vulns), "secrets": secrets, "misconfigurations": misconfigs}
    if repo_digests and digest not in repo_digests:
        # Mix-and-match defence: a report about another image is never used.
        others = ", ".join(sorted(set(repo_digests)))
        dropped = DroppedEvidence(
            kind="scan", code="DIGEST_MISMATCH",
            message=f"the scan report is about {others}, not {digest}; it was not used ({shown})")
        return ScanReport(evidence=ScanEvidence(present=False, source=source),
                          dropped=(dropped,), artifact_name=artifact_name,
                          artifact_type=artifact_type, repo_digests=tuple(repo_digests),
                          image_id=image_id, findings=findings)
    bound = digest in repo_digests
    evidence = ScanEvidence(
        present=True,
        bound=bound,
        digest=digest if bound else None,
        produced_by="report",
        origin=origin,
        scanners=[s for s in ("vuln", "secret", "misconfig") if s in scanners],
        trivy_version=trivy_version,
        db_updated_at=None,  # a report does not say which database it used
        created_at=created_at,
        counts=counts,
        vulnerabilities=vulns,
        secrets=secrets,
        misconfigurations=misconfigs,
        source=source,
    )
    return ScanReport(evidence=evidence, artifact_name=artifact_name, artifact_type=artifact_type,
                      repo_digests=tuple(repo_digests), image_id=image_id, findings=findings)


def read_trivy_report(path: str | os.PathLike[str], *, digest: str,
                      source: str | None = None, declared_scanners: Sequence[str] = (),
                      origin: ScanOrigin = "self-reported") -> ScanReport:
    """Read the Trivy JSON report at ``path`` and return scan evidence about ``digest``.

    ``source`` is recorded in the evidence (defaults to the path), and ``origin`` (default
    ``self-reported``: say ``pipeline`` for the verifying user's own report). The result unpacks as
    ``(evidence, dropped)``. Raises :class:`EvidenceError` for a missing, unreadable, empty,
    oversized (> :data:`MAX_REPORT_BYTES`) or malformed report.
    """
    shown = display_path(path)
    data = read_evidence_file(path, what="Trivy report", max_bytes=MAX_REPORT_BYTES)
    return parse_trivy_report(data, digest=digest, source=source or shown,
                              declared_scanners=declared_scanners, origin=origin)
