"""``cortex plugin publish | review approve/reject/withdraw | revoke | yank | unyank``: talk to a registry.

The token is read from the environment variable named by ``--token-env`` (default
``CORTEX_REGISTRY_TOKEN``) here in the CLI, passed to the client, and never printed. Results go
to stdout as JSON; errors through :mod:`cli._errors` (exit 2 refused, 3 unreachable).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_INPUT, fail
from ._options import BundleOpt, ImageOpt, RegistryUrlOpt, TestsOpt, TokenEnvOpt
from ._render import neutralise

if TYPE_CHECKING:
    from collections.abc import Callable

    from cortex_trust.sources import RegistryClient

__all__ = ["register"]

_DEFAULT_TOKEN_ENV = "CORTEX_REGISTRY_TOKEN"  # noqa: S105 - a variable name, not a secret
_REF = re.compile(r"^(?P<ns>[a-z0-9-]{1,64})/(?P<name>[a-z0-9-]{1,64})"
                  r"@(?P<version>[0-9A-Za-z.+-]{1,128})$")
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


def _ref(ref: str) -> tuple[str, str, str]:
    m = _REF.match(ref)
    if m is None:
        fail(f"{ref!r} is not NAMESPACE/NAME@VERSION", advice="e.g. acme/my-plugin@1.2.0")
    return m["ns"], m["name"], m["version"]


def _note(text: str) -> None:
    """One line to stderr; what the registry answered is shown, never obeyed (escapes)."""
    print(neutralise(text), file=sys.stderr)


def _print(doc: Any) -> None:
    import json

    print(json.dumps(doc.model_dump(mode="json") if hasattr(doc, "model_dump") else doc,
                     indent=2, sort_keys=True))


def publish(
    manifest: Annotated[Path, typer.Argument(help="The plugin's manifest.yaml.")],
    image: ImageOpt,
    bundle: BundleOpt,
    registry: RegistryUrlOpt,
    tests: TestsOpt = None,
    scan: Annotated[Path | None, typer.Option(
        "--scan", metavar="FILE", help="Your own Trivy JSON report: recorded as self-reported (the "
                                       "registry scans the image itself).")] = None,
    scan_attestation: Annotated[Path | None, typer.Option(
        "--scan-attestation", metavar="FILE", help="Sigstore bundle of a signed vulnerability-scan "
                                                   "attestation (cosign's vuln predicate) about the "
                                                   "image digest.")] = None,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Namespace (default: the token's).")] = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
) -> None:
    """Publish a plugin version to a registry (publisher token)."""
    from cortex_trust.sources import RegistryClient

    token = _token(token_env)
    body = {"manifest": _read(manifest, "manifest"), "bundle": _read(bundle, "bundle"),
            "tests_junit": _read(tests, "JUnit XML"), "scan_report": _read(scan, "scan report"),
            "scan_attestation": _read(scan_attestation, "scan attestation")}
    with RegistryClient(registry, token=token) as client:
        result = client.publish(manifest=body["manifest"] or "", image=image,
                                bundle=body["bundle"] or "", tests_junit=body["tests_junit"],
                                scan_report=body["scan_report"], namespace=namespace,
                                scan_attestation=body["scan_attestation"])
    _note(f"published {result.namespace}/{result.name}@{result.version}: tier {result.tier}, "
          f"action {result.action}")
    _print(result)


def _on_version(ref: str, registry: str, token_env: str,
                act: Callable[[RegistryClient, str, str, str], Any]) -> Any:
    """``act(client, namespace, name, version)`` for the version ``ref`` names, with the token
    read from ``$token_env``; its answer."""
    from cortex_trust.sources import RegistryClient

    ns, name, version = _ref(ref)
    token = _token(token_env)
    with RegistryClient(registry, token=token) as client:
        return act(client, ns, name, version)


def _review(ref: str, status: str, note: str | None, registry: str, token_env: str) -> None:
    result = _on_version(ref, registry, token_env, lambda client, *version: client.review(
        *version, status=status, note=note))
    _note(f"{status} {ref}: tier {result.tier}, action {result.action}")
    _print(result)


def _review_command(status: str, doc: str) -> Callable[..., None]:
    """``review approve`` and ``review reject``: the same command recording another status."""

    def command(
        ref: RefArg,
        registry: RegistryUrlOpt,
        note: Annotated[str | None, typer.Option("--note", help="Why.")] = None,
        token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    ) -> None:
        _review(ref, status, note, registry, token_env)

    command.__doc__ = doc
    return command


review_app.command("approve")(_review_command("approved", "Approve a version (reviewer token)."))
review_app.command("reject")(_review_command("rejected", "Reject a version (reviewer token)."))


@review_app.command("withdraw")
def review_withdraw(
    ref: RefArg,
    registry: RegistryUrlOpt,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
) -> None:
    """Withdraw your own review of a version (reviewer token; no one else's can be)."""
    result = _on_version(ref, registry, token_env,
                         lambda client, *version: client.withdraw_review(*version))
    _note(f"withdrew your review of {ref}: tier {result.tier}, action {result.action}")
    _print(result)


def revoke(
    registry: RegistryUrlOpt,
    reason: ReasonOpt,
    ref: Annotated[str | None, typer.Argument(
        metavar="NAMESPACE/NAME@VERSION", show_default=False,
        help="The version, e.g. acme/my-plugin@1.2.0 (or --digest, or --identity).")] = None,
    digest: Annotated[str | None, typer.Option(
        "--digest", help="Revoke every version carrying this image digest, under any name "
                         "(admin).")] = None,
    identity: Annotated[str | None, typer.Option(
        "--identity", help="Revoke every version signed by this identity (admin; needs "
                           "--issuer).")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="The identity's issuer.")]
    = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
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
    token = _token(token_env)
    with RegistryClient(registry, token=token) as client:
        if ref is not None:
            ns, name, version = _ref(ref)
            result: Any = client.revoke(ns, name, version, reason=reason)
            print(f"revoked {ref}", file=sys.stderr)
        elif digest is not None:
            result = {"revoked": list(client.revoke_digest(digest, reason=reason))}
            print(f"revoked {digest} everywhere: {len(result['revoked'])} version(s)",
                  file=sys.stderr)
        else:
            result = {"revoked": list(client.revoke_identity(identity=identity or "",
                                                             issuer=issuer or "",
                                                             reason=reason))}
            print(f"revoked {len(result['revoked'])} version(s)", file=sys.stderr)
    _print(result)


def yank(
    ref: RefArg,
    registry: RegistryUrlOpt,
    reason: ReasonOpt,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
) -> None:
    """Yank a version (publisher of the namespace, or admin): ranges and `latest` skip it, an
    exact pin still installs it with a warning. Its tier is unchanged; a revoked version
    cannot be yanked."""
    from cortex_trust.sources import RegistryClient

    ns, name, version = _ref(ref)
    if not reason.strip():
        fail("--reason is empty", advice="say why, e.g. --reason 'breaks config loading'")
    token = _token(token_env)
    with RegistryClient(registry, token=token) as client:
        result = client.yank(ns, name, version, reason=reason)
    print(f"yanked {ref}: installers skip it unless pinned exactly", file=sys.stderr)
    _print(result)


def unyank(
    ref: RefArg,
    registry: RegistryUrlOpt,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
) -> None:
    """Make a yanked version active again (publisher of the namespace, or admin)."""
    result = _on_version(ref, registry, token_env, lambda client, *version: client.unyank(*version))
    print(f"unyanked {ref}: active again", file=sys.stderr)
    _print(result)


def register(app: typer.Typer) -> None:
    """Add ``publish``, ``review``, ``revoke``, ``yank`` and ``unyank`` to ``cortex plugin``."""
    app.command("publish")(publish)
    app.command("revoke")(revoke)
    app.command("yank")(yank)
    app.command("unyank")(unyank)
    app.add_typer(review_app, name="review")
