"""``cortex plugin publish | review approve/reject/withdraw | revoke | yank | unyank``: talk to a registry.

The registry is the one the plugin's name resolves from in the configuration (as ``install``
resolves it: a scoped registry for its namespaces, otherwise ``cortex config set registry``);
``--registry URL`` names another. Writes go to the registry's own URL, never to a mirror. The
token is read from the environment variable named by ``--token-env`` (default
``CORTEX_REGISTRY_TOKEN``) here in the CLI, passed to the client, and never printed. Text output
is one line saying what was done (plugin@version, short digest, tier and action); ``--format
json`` prints the registry's whole document instead. Errors go through :mod:`cli._errors`
(exit 2 refused, 3 unreachable).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_INPUT, fail
from ._options import (
    BundleOpt,
    FormatOpt,
    ImageOpt,
    RegistryUrlOpt,
    ScanScannersOpt,
    TestsOpt,
    TokenEnvOpt,
)
from ._render import for_reading, plural

if TYPE_CHECKING:
    from collections.abc import Callable

    from cortex_trust.install import CortexConfig
    from cortex_trust.sources import RegistryClient, VersionDetail

__all__ = ["register"]

_DEFAULT_TOKEN_ENV = "CORTEX_REGISTRY_TOKEN"  # noqa: S105 - a variable name, not a secret
_OIDC_TOKEN_FILE_ENV = "CORTEX_OIDC_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
#: What GitHub Actions sets in a job with `permissions: id-token: write`.
_ACTIONS_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
_ACTIONS_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name
_MAX_FILE = 1024 * 1024

RefArg = Annotated[str, typer.Argument(metavar="NAMESPACE/NAME@VERSION", show_default=False,
                                        help="The version, e.g. acme/my-plugin@1.2.0.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (shown to installers).")]

review_app = typer.Typer(no_args_is_help=True, help="Record a core-team review of a version.")


def _token(env: str) -> str:
    value = os.environ.get(env, "")
    if not value:
        fail(f"no registry token: ${env} is empty or unset",
             advice=f"export {env}=<token from `cortex registry token create`> or pass "
                    "--token-env NAME", code=EXIT_INPUT)
    return value


def _trusted_publishing_credential(url: str, *, namespace: str | None, token_file: Path | None) -> str:
    """A short-lived publisher credential from the registry at ``url`` for this CI job's OIDC
    identity token (from ``token_file``, else GitHub Actions' token service for the registry's
    audience). Neither token is printed; the credential's id, namespace and expiry go to
    stderr."""
    import sys

    from cortex_trust.sources import RegistryClient, request_actions_id_token

    with RegistryClient(url) as client:
        if token_file is not None:
            identity = (_read(token_file, "identity token file") or "").strip()
        elif os.environ.get(_ACTIONS_REQUEST_URL) and os.environ.get(_ACTIONS_REQUEST_TOKEN):
            identity = request_actions_id_token(request_url=os.environ[_ACTIONS_REQUEST_URL],
                                                request_token=os.environ[_ACTIONS_REQUEST_TOKEN],
                                                audience=client.oidc_audience())
        else:
            fail(f"--oidc needs the CI's identity token: ${_ACTIONS_REQUEST_URL} and "
                 f"${_ACTIONS_REQUEST_TOKEN} are not set and no --oidc-token-file was given",
                 advice="in GitHub Actions give the job `permissions: id-token: write`; elsewhere "
                        f"write the CI's OIDC token to a file and pass --oidc-token-file FILE "
                        f"(or ${_OIDC_TOKEN_FILE_ENV})", code=EXIT_INPUT)
        credential = client.exchange_oidc(identity, namespace=namespace)
    print(for_reading(f"trusted publisher {credential.publisher_id}: credential {credential.token_id} "
                      f"for namespace {credential.namespace}, expires {credential.expires_at}"),
          file=sys.stderr)
    return credential.token


def _read(path: Path | None, what: str) -> str | None:
    if path is None:
        return None
    from cortex_trust._io import ReadRefused, read_bounded

    try:
        data = read_bounded(path, max_bytes=_MAX_FILE)
    except ReadRefused as e:
        if e.kind == "too_large":
            fail(f"{what} {path} is larger than {_MAX_FILE} bytes", advice="pass the real file")
        detail = "not a regular file" if e.kind in ("directory", "not_regular") else e.detail
        fail(f"cannot read {what} {path}: {detail}", advice="check the path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{what} {path} is not UTF-8 text", advice="pass the file as written by its tool")


@functools.cache
def _ref_re() -> re.Pattern[str]:
    """``NAMESPACE/NAME@VERSION`` with the slug syntax of :mod:`cortex_trust.ids` (the one
    definition); imported on first use so that help screens stay light."""
    from cortex_trust.ids import SLUG

    return re.compile(rf"(?P<ns>{SLUG})/(?P<name>{SLUG})@(?P<version>[0-9A-Za-z.+-]{{1,128}})")


def _ref(ref: str) -> tuple[str, str, str]:
    """The namespace, name and version ``ref`` names; anything else (a trailing newline
    included) is refused with exit 2."""
    m = _ref_re().fullmatch(ref)
    if m is None:
        fail(f"{ref!r} is not NAMESPACE/NAME@VERSION", advice="e.g. acme/my-plugin@1.2.0")
    return m["ns"], m["name"], m["version"]


# -------------------------------------------------------------------------- which registry


def _config() -> CortexConfig:
    from cortex_trust.install import load_config

    from ._paths import config_path

    return load_config(config_path())


def _registry_for(registry: str | None, full_name: str | None) -> str:
    """The URL a write about ``full_name`` goes to: ``--registry`` when given, else the
    registry the name resolves from (:func:`cortex_trust.install.registry_target`, as install
    resolves it; its primary URL: mirrors serve reads), else (no name: an image or a signer
    revoked everywhere) the default registry."""
    if registry is not None:
        return registry
    from cortex_trust.install import registry_target

    config = _config()
    if full_name is None:
        return config.registry
    return registry_target(config, full_name).urls[0]


def _publish_registry(registry: str | None, *, manifest: Path, text: str,
                      namespace: str | None) -> str:
    """:func:`_registry_for` the plugin a manifest describes. Without ``--namespace`` the full
    name is known only to the registry (the token's namespace): with scoped registries
    configured that could send a private plugin to the wrong registry, so it is refused."""
    if registry is not None:
        return registry
    config = _config()
    scoped = [(r.name, s) for r in config.registries for s in r.scopes]
    if namespace is None:
        if scoped:
            shown = ", ".join(f"{s} -> {name}" for name, s in scoped[:3])
            fail("the configuration sends some namespaces to other registries "
                 f"({shown}), and without --namespace the plugin's namespace is unknown",
                 advice="pass --namespace NS (your publisher token's namespace), or "
                        "--registry URL")
        return config.registry
    from cortex_trust.manifest import parse_manifest

    name = parse_manifest(text.encode("utf-8"), source=str(manifest)).name
    return _registry_for(None, f"{namespace}/{name}")


# ---------------------------------------------------------------------------------- output


def _done(what: str, doc: VersionDetail, fmt: str, *, next_tier: bool = False,
          note: str = "") -> None:
    """Print the outcome of a write about one version: one line (what was done, which version,
    its short digest, tier and action, and with ``next_tier`` what the next tier misses), or
    the whole document for ``--format json``. Everything shown came from the registry: control
    characters are escaped, never obeyed."""
    if fmt == "json":
        _print_json(doc.model_dump(mode="json"))
        return
    line = (f"{what} {doc.namespace}/{doc.name}@{doc.version} ({doc.digest}): "
            f"{note + '; ' if note else ''}tier {doc.tier}, action {doc.action}")
    upgrade = doc.decision.next_tier
    if next_tier and upgrade is not None and upgrade.missing:
        tier = getattr(upgrade.tier, "value", upgrade.tier)
        line += f"; to reach {tier}: " + ", ".join(m.code for m in upgrade.missing)
    print(for_reading(line))


def _done_many(what: str, revoked: tuple[str, ...], fmt: str) -> None:
    """Print the outcome of a revocation reaching several versions (their names), or
    ``{"revoked": [...]}`` for ``--format json``."""
    if fmt == "json":
        _print_json({"revoked": list(revoked)})
        return
    shown = ", ".join(revoked[:5]) + (f" and {len(revoked) - 5} more" if len(revoked) > 5 else "")
    print(for_reading(f"revoked {what}: {plural(len(revoked), 'version')}"
                      + (f": {shown}" if shown else "")))


def _print_json(doc: Any) -> None:
    import json

    print(json.dumps(doc, indent=2, sort_keys=True))


# -------------------------------------------------------------------------------- commands


def publish(
    manifest: Annotated[Path, typer.Argument(metavar="MANIFEST", help="The plugin's manifest.yaml.")],
    image: ImageOpt,
    bundle: BundleOpt,
    registry: RegistryUrlOpt = None,
    tests: TestsOpt = None,
    scan: Annotated[Path | None, typer.Option(
        "--scan", metavar="FILE", help="Your own Trivy JSON report: recorded as self-reported (the "
                                       "registry scans the image itself).")] = None,
    scan_scanners: ScanScannersOpt = None,
    scan_attestation: Annotated[Path | None, typer.Option(
        "--scan-attestation", metavar="FILE",
        help="Sigstore bundle of a signed vulnerability-scan attestation (cosign's vuln "
             "predicate) about the image digest.")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", metavar="NS", help="Namespace (default: the token's).")] = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    oidc: Annotated[bool, typer.Option(
        "--oidc", help="Trusted publishing: no stored token; exchange the CI's OIDC identity token "
                       "(GitHub Actions with `permissions: id-token: write`, or --oidc-token-file) "
                       "for a short-lived credential.")] = False,
    oidc_token_file: Annotated[Path | None, typer.Option(
        "--oidc-token-file", metavar="FILE", envvar=_OIDC_TOKEN_FILE_ENV,
        help="File holding the CI's OIDC identity token (implies --oidc).")] = None,
    output_format: FormatOpt = "text",
) -> None:
    """Publish a plugin version to a registry (publisher token, or --oidc from a trusted CI
    workflow)."""
    from cortex_trust.evidence import parse_scanners
    from cortex_trust.sources import RegistryClient

    if scan_scanners is not None and scan is None:
        fail("--scan-scanners describes a --scan report", advice="add --scan REPORT or drop --scan-scanners")
    scanners = parse_scanners(scan_scanners) if scan_scanners is not None else None
    oidc = oidc or oidc_token_file is not None
    token = None if oidc else _token(token_env)
    text = _read(manifest, "manifest") or ""
    body = {"bundle": _read(bundle, "bundle"), "tests_junit": _read(tests, "JUnit XML"),
            "scan_report": _read(scan, "scan report"),
            "scan_attestation": _read(scan_attestation, "scan attestation")}
    url = _publish_registry(registry, manifest=manifest, text=text, namespace=namespace)
    if token is None:
        token = _trusted_publishing_credential(url, namespace=namespace, token_file=oidc_token_file)
    with RegistryClient(url, token=token) as client:
        result = client.publish(manifest=text, image=image,
                                bundle=body["bundle"] or "", tests_junit=body["tests_junit"],
                                scan_report=body["scan_report"], namespace=namespace,
                                scan_attestation=body["scan_attestation"],
                                scan_scanners=scanners)
    _done("published", result, output_format, next_tier=True)


def _on_version(ref: str, registry: str | None, token_env: str,
                act: Callable[[RegistryClient, str, str, str], Any]) -> Any:
    """``act(client, namespace, name, version)`` for the version ``ref`` names, on the registry
    its name resolves from (or ``registry``), with the token read from ``$token_env``; its
    answer."""
    from cortex_trust.sources import RegistryClient

    ns, name, version = _ref(ref)
    token = _token(token_env)
    with RegistryClient(_registry_for(registry, f"{ns}/{name}"), token=token) as client:
        return act(client, ns, name, version)


def _review_command(status: str, doc: str) -> Callable[..., None]:
    """``review approve`` and ``review reject``: the same command recording another status."""

    def command(
        ref: RefArg,
        registry: RegistryUrlOpt = None,
        note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
        token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
        output_format: FormatOpt = "text",
    ) -> None:
        result = _on_version(ref, registry, token_env, lambda client, *version: client.review(
            *version, status=status, note=note))
        _done(status, result, output_format, next_tier=True)

    command.__doc__ = doc
    return command


review_app.command("approve")(_review_command("approved", "Approve a version (reviewer token)."))
review_app.command("reject")(_review_command("rejected", "Reject a version (reviewer token)."))


@review_app.command("withdraw")
def review_withdraw(
    ref: RefArg,
    registry: RegistryUrlOpt = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Withdraw your own review of a version (reviewer token; no one else's can be)."""
    result = _on_version(ref, registry, token_env,
                         lambda client, *version: client.withdraw_review(*version))
    _done("withdrew your review of", result, output_format, next_tier=True)


def revoke(
    reason: ReasonOpt,
    ref: Annotated[str | None, typer.Argument(
        metavar="NAMESPACE/NAME@VERSION", show_default=False,
        help="The version, e.g. acme/my-plugin@1.2.0 (or --digest, or --identity).")] = None,
    registry: RegistryUrlOpt = None,
    digest: Annotated[str | None, typer.Option(
        "--digest", metavar="sha256:DIGEST",
        help="Revoke every version carrying this image digest, under any name (admin).")] = None,
    identity: Annotated[str | None, typer.Option(
        "--identity", help="Revoke every version signed by this identity (admin; needs "
                           "--issuer).")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", metavar="URL", help="The identity's issuer.")]
    = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Revoke a version (publisher of its namespace: that version only), or, as an admin, an
    image digest under every name or every version signed by an identity."""
    from cortex_trust.ids import is_digest
    from cortex_trust.sources import RegistryClient

    if sum(x is not None for x in (ref, digest, identity)) != 1:
        fail("give exactly one of NAMESPACE/NAME@VERSION, --digest sha256:... or --identity "
             "with --issuer", advice="e.g. cortex plugin revoke acme/tool@1.2.0 --reason '...'")
    if identity is not None and not issuer:
        fail("--identity needs --issuer", advice="e.g. --issuer https://token.actions."
                                                 "githubusercontent.com")
    if digest is not None and not is_digest(digest):
        fail(f"--digest {digest!r} is not an image digest",
             advice="write sha256:<64 lowercase hex digits>")
    if ref is not None:
        result = _on_version(ref, registry, token_env, lambda client, *version: client.revoke(
            *version, reason=reason))
        _done("revoked", result, output_format)
        return
    token = _token(token_env)
    with RegistryClient(_registry_for(registry, None), token=token) as client:
        if digest is not None:
            _done_many(f"{digest} everywhere", client.revoke_digest(digest, reason=reason),
                       output_format)
        else:
            _done_many(f"what {identity} ({issuer}) signed", client.revoke_identity(
                identity=identity or "", issuer=issuer or "", reason=reason), output_format)


def yank(
    ref: RefArg,
    reason: ReasonOpt,
    registry: RegistryUrlOpt = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Yank a version (publisher of the namespace, or admin): ranges and `latest` skip it, an
    exact pin still installs it with a warning. Its tier is unchanged; a revoked version
    cannot be yanked."""
    _ref(ref)
    if not reason.strip():
        fail("--reason is empty", advice="say why, e.g. --reason 'breaks config loading'")
    result = _on_version(ref, registry, token_env, lambda client, *version: client.yank(
        *version, reason=reason))
    _done("yanked", result, output_format, note="installers skip it unless pinned exactly")


def unyank(
    ref: RefArg,
    registry: RegistryUrlOpt = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Make a yanked version active again (publisher of the namespace, or admin)."""
    result = _on_version(ref, registry, token_env, lambda client, *version: client.unyank(*version))
    _done("unyanked", result, output_format, note="active again")


def register(app: typer.Typer) -> None:
    """Add ``publish``, ``review``, ``revoke``, ``yank`` and ``unyank`` to ``cortex plugin``."""
    app.command("publish")(publish)
    app.command("revoke")(revoke)
    app.command("yank")(yank)
    app.command("unyank")(unyank)
    app.add_typer(review_app, name="review")
