"""``cortex plugin verify``: the CI gate.

Gathers the evidence given on the command line, asks the policy engine, prints the decision
in the chosen format and exits:

  0  the decision passes (its action is below ``--fail-on``)
  1  the decision's action reaches ``--fail-on`` (default: block; allow < notice < warn < block)
  2  usage or input error (bad manifest, garbage bundle, malformed report, unpinned image...)
  3  the policy engine or a collector could not run (the decision failed closed), or cortex
     itself failed (an internal error: never 0 or 1; see :func:`cli.main.main`)

Only typer and the standard library are imported at module level; the library is imported
inside the command so that ``cortex --help`` stays fast.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from ._errors import EXIT_INPUT, fail
from ._options import (
    BundleOpt,
    DataOpt,
    ImageOpt,
    NoDefaultsOpt,
    PolicyDirOpt,
    ReportFormatOpt,
    ScanScannersOpt,
    TestsOpt,
    TrustedRootOpt,
)
from ._render import FAIL_ON_CHOICES

__all__ = ["register"]

_IMAGE_ADVICE = ("pin the image by digest: --image REGISTRY/REPO@sha256:DIGEST (the digest your "
                 "build pushed, e.g. `docker buildx build --metadata-file meta.json` or "
                 "`crane digest REF`)")


def verify(
    manifest: Annotated[Path, typer.Argument(metavar="MANIFEST", help="The plugin's manifest.yaml.")],
    image: ImageOpt,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", metavar="NS", help="The plugin's namespace (full name NAMESPACE/NAME).")] = None,
    bundle: BundleOpt = None,
    trusted_root: TrustedRootOpt = None,
    scan: Annotated[Path | None, typer.Option(
        "--scan", metavar="FILE", help="Trivy JSON report (trivy image --format json).")] = None,
    scan_scanners: ScanScannersOpt = None,
    run_scan: Annotated[bool, typer.Option(
        "--run-scan", help="Run Trivy on the image now (needs the `scan` extra or trivy on "
                           "PATH).")] = False,
    trivy_db: Annotated[Path | None, typer.Option(
        "--trivy-db", metavar="DIR", help="Trivy cache directory with a vulnerability database (db/trivy.db); "
                           "without it --run-scan runs only the secret and misconfig "
                           "scanners.")] = None,
    tests: TestsOpt = None,
    review: Annotated[Path | None, typer.Option(
        "--review", metavar="FILE", help="Review document (cortex.review/v1 JSON).")] = None,
    usage: Annotated[Path | None, typer.Option(
        "--usage", metavar="FILE", help="Usage document (cortex.usage/v1 JSON).")] = None,
    policy_dir: PolicyDirOpt = None,
    data: DataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", metavar="notice|warn|block", help="Exit 1 when the action is at least this: notice, warn or "
                          "block.")] = "block",
    output_format: ReportFormatOpt = "text",
    now: Annotated[str | None, typer.Option(
        "--now", metavar="RFC3339", help="Reference time, RFC 3339 (for reproducible runs); default: the "
                      "clock.")] = None,
) -> None:
    """Verify a plugin image against policy (the CI gate). Exit 0 pass, 1 fail-on reached,
    2 input error, 3 could not run."""
    if fail_on not in FAIL_ON_CHOICES:
        fail(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON_CHOICES)}",
             advice="use --fail-on block (the default), warn or notice", code=EXIT_INPUT)
    if scan is not None and run_scan:
        fail("--scan and --run-scan exclude each other",
             advice="drop --scan to scan now, or drop --run-scan to use the report")
    if scan_scanners is not None and scan is None:
        fail("--scan-scanners describes a --scan report", advice="add --scan REPORT or drop --scan-scanners")
    if trivy_db is not None and not run_scan:
        fail("--trivy-db only applies to --run-scan", advice="add --run-scan or drop --trivy-db")
    if "@sha256:" not in image:
        fail(f"--image {image!r} is not pinned by digest", advice=_IMAGE_ADVICE)
    reference_time = _reference_time(now)

    from cortex_trust.evidence import parse_scanners

    code, text = _run(
        manifest=manifest, image=image, namespace=namespace, bundle=bundle,
        trusted_roots=tuple(trusted_root or ()), scan=scan,
        scan_scanners=parse_scanners(scan_scanners or ""), run_scan=run_scan,
        trivy_db=trivy_db, tests=tests, review=review, usage=usage,
        policy_dirs=list(policy_dir or ()), data_files=list(data or ()),
        defaults=not no_default_policies, fail_on=fail_on, output_format=output_format,
        now=reference_time)
    sys.stdout.write(text)
    sys.stdout.flush()
    raise typer.Exit(code)


def _reference_time(now: str | None) -> datetime:
    if now is None:
        # The clock is read once per verification, here, and passed down.
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(now)
    except ValueError:
        fail(f"--now {now!r} is not an RFC 3339 time", advice='use e.g. --now 2026-01-31T12:00:00Z')
    if t.tzinfo is None:
        fail(f"--now {now!r} has no time zone", advice='add "Z" or an offset, e.g. 2026-01-31T12:00:00Z')
    try:
        return t.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-05:00 is after year 9999 in UTC
        fail(f"--now {now!r} is out of range", advice="use a time between years 1 and 9999 (UTC)")


def _run(*, manifest: Path, image: str, namespace: str | None, bundle: Path | None,
         trusted_roots: tuple[Path, ...], scan: Path | None, scan_scanners: tuple[str, ...], run_scan: bool,
         trivy_db: Path | None, tests: Path | None, review: Path | None, usage: Path | None,
         policy_dirs: list[Path], data_files: list[Path], defaults: bool, fail_on: str,
         output_format: str, now: datetime) -> tuple[int, str]:
    from cortex_trust import __version__
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.install import load_config
    from cortex_trust.verify import VerifyRequest, gather_input, judge

    from ._options import load_org_policy
    from ._paths import config_path
    from ._platform import platform_version
    from ._render import exit_code_for, render, style_for

    config = load_config(config_path())
    platform = platform_version(config)

    request = VerifyRequest(
        manifest=manifest, image=image, namespace=namespace, bundle=bundle,
        trusted_roots=trusted_roots, scan_report=scan, scan_scanners=scan_scanners,
        run_scan=run_scan, trivy_db=trivy_db,
        junit=tests, review=review, usage=usage, cortex_version=platform.version,
        cortex_version_source=platform.source)
    # Read the policies first (a broken policy is an input error that should not wait for a
    # scan), then collect the evidence (bad input fails before an engine starts), then decide.
    policy_set = load_org_policy(policy_dirs, data_files, config=config, defaults=defaults)
    policy_input = gather_input(request, now=now)
    with EmbeddedEngine(policy_set) as engine:
        result = judge(policy_input, engine=engine, manifest_path=str(manifest))
    text = render(result, output_format, location=str(manifest), version=__version__,
                  style=style_for(sys.stdout))
    return exit_code_for(result.decision, fail_on), text


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``cortex plugin``."""
    app.command("verify")(verify)
