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

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ._errors import EXIT_INPUT, EXIT_UNAVAILABLE, fail
from ._options import (
    BundleOpt,
    DataOpt,
    ImageOpt,
    NoDefaultsOpt,
    OpaUrlOpt,
    PolicyDirOpt,
    PolicyEngineOpt,
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
    policy_engine: PolicyEngineOpt = None,
    opa_url: OpaUrlOpt = None,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", metavar="notice|warn|block", help="Exit 1 when the action is at least this: notice, warn or "
                          "block.")] = "block",
    output_format: ReportFormatOpt = "text",
    now: Annotated[str | None, typer.Option(
        "--now", metavar="RFC3339", help="Reference time, RFC 3339 (for reproducible runs); default: the "
                      "clock.")] = None,
    certificate_identity: Annotated[str | None, typer.Option(
        "--certificate-identity", metavar="ID", show_default=False,
        help="Trust this signer identity (the certificate's SAN) for this verification, as cosign does; "
             "with --certificate-oidc-issuer[-regexp]. Recorded in the input; the policy decides.")] = None,
    certificate_identity_regexp: Annotated[str | None, typer.Option(
        "--certificate-identity-regexp", metavar="REGEX", show_default=False,
        help="As --certificate-identity, a regular expression (RE2 syntax) matching the whole identity.")] = None,
    certificate_oidc_issuer: Annotated[str | None, typer.Option(
        "--certificate-oidc-issuer", metavar="URL", show_default=False,
        help="The OIDC issuer of the --certificate-identity signer.")] = None,
    certificate_oidc_issuer_regexp: Annotated[str | None, typer.Option(
        "--certificate-oidc-issuer-regexp", metavar="REGEX", show_default=False,
        help="As --certificate-oidc-issuer, a regular expression matching the whole issuer.")] = None,
    reports: Annotated[list[str] | None, typer.Option(
        "--report", metavar="FORMAT=FILE", show_default=False,
        help="Also write the result in FORMAT to FILE (repeatable), e.g. --report sarif=cortex.sarif "
             "--report junit=cortex-junit.xml.")] = None,
    print_input: Annotated[bool, typer.Option(
        "--print-input", help="Print the input document the policy sees (cortex.input/v1 JSON) instead of "
                              "the result, and exit 0 (no decision is made).")] = False,
    save_input: Annotated[Path | None, typer.Option(
        "--save-input", metavar="FILE", show_default=False,
        help="Also write the input document the policy sees to FILE (for `cortex policy eval --input`).")] = None,
    index: Annotated[str | None, typer.Option(
        "--index", metavar="URL|DIR", show_default=False,
        help="A registry's signed index (http(s)://, file:// or a directory): the version under review must be "
             "the one it lists (same digest; else exit 2), and its revocation data goes to the policy (a revoked "
             "version is blocked). Needs --namespace.")] = None,
    index_root: Annotated[Path | None, typer.Option(
        "--index-root", metavar="FILE", show_default=False,
        help="The index's trusted root (its metadata/1.root.json, from its operator); default: trust the first "
             "root the index serves and keep it for the next runs.")] = None,
    receipt: Annotated[Path | None, typer.Option(
        "--receipt", metavar="FILE", show_default=False,
        help="Also write the decision's receipt to FILE: the decision, the exact input, the digests of the "
             "evidence files, the policy revision, the engine and the time (unsigned; `cortex receipt replay "
             "FILE` decides it again).")] = None,
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
    signers = _command_line_signers(certificate_identity, certificate_identity_regexp,
                                    certificate_oidc_issuer, certificate_oidc_issuer_regexp)
    extra = _report_targets(reports or [])
    index_url, index_trust = _index(index, index_root, namespace)

    from cortex_trust.evidence import parse_scanners

    code, text = _run(
        manifest=manifest, image=image, namespace=namespace, bundle=bundle,
        trusted_roots=tuple(trusted_root or ()), scan=scan,
        scan_scanners=parse_scanners(scan_scanners or ""), run_scan=run_scan,
        trivy_db=trivy_db, tests=tests, review=review, usage=usage,
        policy_dirs=list(policy_dir or ()), data_files=list(data or ()),
        defaults=not no_default_policies, fail_on=fail_on, output_format=output_format,
        now=reference_time, signers=signers, reports=extra, print_input=print_input,
        save_input=save_input, engine_choice=(policy_engine, opa_url), index=index_url,
        index_root=index_trust, receipt=receipt)
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
         output_format: str, now: datetime, signers: tuple[Any, ...], reports: list[tuple[str, Path]],
         print_input: bool, save_input: Path | None,
         engine_choice: tuple[str | None, str | None] = (None, None), index: str | None = None,
         index_root: bytes | None = None, receipt: Path | None = None) -> tuple[int, str]:
    from cortex_trust import __version__
    from cortex_trust.install import load_config
    from cortex_trust.verify import VerifyRequest, gather_input, judge

    from ._options import load_org_policy, policy_engine_factory
    from ._paths import config_path, data_dir
    from ._platform import platform_version
    from ._render import exit_code_for, render, style_for

    config = load_config(config_path())
    platform = platform_version(config)
    index_cache = None
    if index is not None:
        from cortex_trust.sources import index_cache_dir

        index_cache = index_cache_dir(data_dir(), registry="verify", index_url=index, trusted_root=index_root)

    request = VerifyRequest(
        manifest=manifest, image=image, namespace=namespace, bundle=bundle,
        trusted_roots=trusted_roots, scan_report=scan, scan_scanners=scan_scanners,
        run_scan=run_scan, trivy_db=trivy_db,
        junit=tests, review=review, usage=usage, cortex_version=platform.version,
        cortex_version_source=platform.source, command_line_signers=signers,
        index=index, index_root=index_root, index_cache=index_cache)
    # Read the policies first (a broken policy is an input error that should not wait for a
    # scan), then collect the evidence (bad input fails before an engine starts), then decide.
    factory, _ = policy_engine_factory(
        *engine_choice, lambda: load_org_policy(policy_dirs, data_files, config=config, defaults=defaults),
        config=config, explicit_policy=bool(policy_dirs or data_files or not defaults))
    policy_input = gather_input(request, now=now)
    input_text = json.dumps(policy_input.to_dict(), indent=2) + "\n"
    if save_input is not None:
        _write(save_input, input_text, what="--save-input")
    if print_input:
        return 0, input_text
    with factory() as engine:
        result = judge(policy_input, engine=engine, manifest_path=str(manifest))
    if receipt is not None:
        _write(receipt, _receipt_text(result, now=now, files={
            "bundle": bundle, "scan_report": scan, "tests": tests, "review": review, "usage": usage}),
            what="--receipt")
    text = render(result, output_format, location=str(manifest), version=__version__,
                  style=style_for(sys.stdout), fail_on=fail_on)
    for fmt, path in reports:
        _write(path, render(result, fmt, location=str(manifest), version=__version__, fail_on=fail_on),
               what=f"--report {fmt}")
    if output_format == "github":
        _github_files(result, fail_on=fail_on)
    return exit_code_for(result.decision, fail_on), text


def _receipt_text(result: Any, *, now: datetime, files: dict[str, Path | None]) -> str:
    """The unsigned receipt of ``result`` (decided at ``now``), with the digests of the evidence
    ``files`` that were given."""
    from cortex_trust._io import ReadRefused, read_bounded
    from cortex_trust.policy import build_receipt, engine_version, seal_receipt, sha256_digest

    documents = {}
    for name, path in files.items():
        if path is not None:
            try:
                documents[name] = sha256_digest(read_bounded(path, max_bytes=256 * 1024 * 1024))
            except ReadRefused as e:
                fail(f"--receipt: cannot read {path} again to record its digest ({e})",
                     advice="keep the evidence files in place while verifying")
    statement = build_receipt(decision=result.decision, policy_input=result.input, engine=result.engine,
                              engine_version=engine_version(result.engine), decided_at=now,
                              issuer="cortex plugin verify", documents=documents)
    return seal_receipt(statement, signer=None).to_json()


def _index(index: str | None, root: Path | None, namespace: str | None) -> tuple[str | None, bytes | None]:
    """The index URL (a directory becomes a ``file://`` URL) and the bytes of its root."""
    if index is None:
        if root is not None:
            fail("--index-root needs --index", advice="name the index the root belongs to")
        return None, None
    if namespace is None:
        fail("--index needs --namespace", advice="add --namespace NS: the index lists plugins as NS/NAME")
    if "://" not in index:
        directory = Path(index)
        if not directory.is_dir():
            fail(f"--index {index!r} is neither a URL nor a directory",
                 advice="give the index's https:// URL or the directory of a copy (cortex registry index mirror)")
        index = directory.resolve().as_uri()
    trusted = None
    if root is not None:
        from cortex_trust._io import ReadRefused, read_bounded

        try:
            trusted = read_bounded(root, max_bytes=512_000)
        except ReadRefused as e:
            fail(f"cannot read --index-root {root} ({e})", advice="pass the index's metadata/1.root.json")
    return index, trusted


def _command_line_signers(identity: str | None, identity_regexp: str | None, issuer: str | None,
                          issuer_regexp: str | None) -> tuple[Any, ...]:
    """The signer trusted on the command line (cosign's flags), checked: one identity and one
    issuer, each exact or a bounded regular expression in the syntax every engine shares."""
    given = [identity, identity_regexp, issuer, issuer_regexp]
    if not any(x is not None for x in given):
        return ()
    if (identity is None) == (identity_regexp is None):
        fail("give exactly one of --certificate-identity and --certificate-identity-regexp",
             advice="e.g. --certificate-identity https://github.com/OWNER/REPO/.github/workflows/"
                    "release.yml@refs/tags/v1.0.0 --certificate-oidc-issuer "
                    "https://token.actions.githubusercontent.com")
    if (issuer is None) == (issuer_regexp is None):
        fail("give exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp",
             advice="GitHub Actions: --certificate-oidc-issuer https://token.actions.githubusercontent.com")
    for flag, pattern in (("--certificate-identity-regexp", identity_regexp),
                          ("--certificate-oidc-issuer-regexp", issuer_regexp)):
        if pattern is not None:
            _check_regexp(flag, pattern)
    from pydantic import ValidationError

    from cortex_trust.policy import CommandLineSigner

    try:
        return (CommandLineSigner(identity=identity, identity_regexp=identity_regexp, issuer=issuer,
                                  issuer_regexp=issuer_regexp),)
    except ValidationError as e:
        fail(f"the command-line signer is refused: {e.errors()[0]['msg']}",
             advice="give a non-empty identity and issuer (at most 2048 characters, a regexp at most 512)")


# What RE2 (OPA) and Rust's regex (regorus) both refuse or read differently: look-around,
# back-references, possessive and atomic groups, \Q...\E. Refused here with a fix rather than
# failing closed in the engine.
_NOT_RE2 = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "\\Q", "*+", "++", "?+")
_BACKREF = r"\\[1-9]"


def _check_regexp(flag: str, pattern: str) -> None:
    import re

    from cortex_trust.policy import MAX_SIGNER_REGEXP

    advice = ("write an RE2 regular expression (no look-around, no back-references), e.g. "
              "'https://github\\.com/acme/.*/\\.github/workflows/release\\.yml@refs/tags/v.*'; it must "
              "match the whole value")
    if not pattern or len(pattern) > MAX_SIGNER_REGEXP:
        fail(f"{flag} must be 1 to {MAX_SIGNER_REGEXP} characters long", advice=advice)
    if any(c in pattern for c in _NOT_RE2) or re.search(_BACKREF, pattern) or not pattern.isprintable():
        fail(f"{flag} {pattern!r} uses a construct the policy engines do not support", advice=advice)
    try:
        re.compile(pattern)
    except re.error as e:
        fail(f"{flag} {pattern!r} is not a valid regular expression: {e}", advice=advice)


def _report_targets(values: list[str]) -> list[tuple[str, Path]]:
    from ._render import FORMATS

    out = []
    for v in values:
        fmt, sep, file = v.partition("=")
        if not sep or not file or fmt not in FORMATS:
            fail(f"--report {v!r} is not FORMAT=FILE with FORMAT one of {', '.join(FORMATS)}",
                 advice="e.g. --report sarif=cortex.sarif")
        out.append((fmt, Path(file)))
    return out


def _write(path: Path, text: str, *, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        fail(f"{what}: cannot write {path}: {e.strerror or e}", advice="check the path and its directory",
             code=EXIT_UNAVAILABLE)


def _github_files(result: Any, *, fail_on: str) -> None:
    """GitHub Actions' files, when the runner set them: the Markdown job summary appended to
    ``$GITHUB_STEP_SUMMARY``, the ``tier`` and ``action`` step outputs to ``$GITHUB_OUTPUT``."""
    import os

    from ._render_ci import summary_markdown

    summary, outputs = os.environ.get("GITHUB_STEP_SUMMARY"), os.environ.get("GITHUB_OUTPUT")
    try:
        if summary:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(summary_markdown(result, fail_on=fail_on))
        if outputs:
            # Enum values: one safe line each (no delimiter syntax needed).
            with open(outputs, "a", encoding="utf-8") as f:
                f.write(f"tier={result.decision.tier.value}\naction={result.decision.action.value}\n"
                        f"policy-revision={result.policy_revision}\n")
    except OSError as e:
        fail(f"cannot write the GitHub Actions files: {e}", advice="check $GITHUB_STEP_SUMMARY and $GITHUB_OUTPUT",
             code=EXIT_UNAVAILABLE)


def register(app: typer.Typer) -> None:
    """Add ``verify`` to ``cortex plugin``."""
    app.command("verify")(verify)
