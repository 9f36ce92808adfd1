"""``cortex plugin promote | dispute``: governance on the registry's GitHub repository.

``promote NS/NAME@VERSION`` asks the registry (publisher token) to open the version's promotion
pull request on its registry repository and prints the pull request's URL; asking again prints
the same one. ``dispute NS/NAME[@VERSION] --reason TEXT [--security]`` opens a GitHub issue with
the dispute template and labels on the registry repository, with the GitHub token of the
environment (``GITHUB_TOKEN``), and asks the registry to record it (with a registry token when one
is set; otherwise the registry learns of it from GitHub's webhook and its polling). Without a
GitHub token it prints a prefilled new-issue URL instead and records nothing. The GitHub token
is sent only to the GitHub API of the configuration (``github-api``), and only when the
registry's repository is on that GitHub.
"""

from __future__ import annotations

import os
import re
from typing import Annotated

import typer

from ._errors import EXIT_INPUT, fail
from ._options import FormatOpt, RegistryUrlOpt, TokenEnvOpt
from ._render import for_reading
from .plugin_registry import _DEFAULT_TOKEN_ENV, _config, _on_version, _print_json, _registry_for

__all__ = ["register"]

_GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 - a variable name, not a secret


def _plugin_ref() -> re.Pattern[str]:
    """``NS/NAME[@VERSION]`` with the slug syntax of :mod:`cortex_trust.ids`, imported here so
    that ``cortex --help`` loads no library module."""
    from cortex_trust.ids import SLUG

    return re.compile(rf"(?P<ns>{SLUG})/(?P<name>{SLUG})(?:@(?P<version>[0-9A-Za-z.+-]{{1,128}}))?")


def promote(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME@VERSION", show_default=False,
                                       help="The version to promote, e.g. acme/my-plugin@1.2.0.")],
    registry: RegistryUrlOpt = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Request a version's promotion to community: the registry opens a pull request on its
    registry repository for reviewers to approve (publisher token). Prints its URL."""
    doc = _on_version(ref, registry, token_env, lambda client, *version: client.promote(*version))
    if output_format == "json":
        _print_json(doc.model_dump(mode="json"))
        return
    what = "opened" if doc.created else "already requested"
    print(for_reading(f"promotion of {doc.namespace}/{doc.name}@{doc.version} {what}: {doc.url} "
                      f"({doc.state}{', merged' if doc.merged else ''})"))


def dispute(
    ref: Annotated[str, typer.Argument(metavar="NAMESPACE/NAME[@VERSION]", show_default=False,
                                       help="The plugin (or one version), e.g. acme/my-plugin@1.2.0.")],
    reason: Annotated[str, typer.Option("--reason", help="What is wrong (the issue's text).")],
    security: Annotated[bool, typer.Option(
        "--security", help="A security problem: labelled `security`; installs warn while it is open.")] = False,
    registry: RegistryUrlOpt = None,
    token_env: TokenEnvOpt = _DEFAULT_TOKEN_ENV,
    output_format: FormatOpt = "text",
) -> None:
    """Dispute a plugin: open an issue on the registry's repository (with $GITHUB_TOKEN), or
    print a prefilled new-issue URL without one."""
    from urllib.parse import urlencode

    from cortex_trust.sources import RegistryClient, RegistryRepository, dispute_issue, web_url

    m = _plugin_ref().fullmatch(ref)
    if m is None:
        fail(f"{ref!r} is not NAMESPACE/NAME or NAMESPACE/NAME@VERSION", advice="e.g. acme/my-plugin@1.2.0")
    if not reason.strip():
        fail("--reason is empty", advice="say what is wrong, e.g. --reason 'sends data to a third party'")
    ns, name, version = m["ns"], m["name"], m["version"]
    url = _registry_for(registry, f"{ns}/{name}")
    with RegistryClient(url) as client:
        info = client.governance()
        digest = None
        if version:
            digest = client.get_version(ns, name, version).digest
        else:
            client.get_plugin(ns, name)  # the plugin must exist
    if not info.configured or info.repository is None or info.web_url is None:
        fail(f"the registry {url} has no registry repository for disputes",
             advice="ask the registry's operator where to report the problem")
    page = f"{url.rstrip('/')}/api/v1/plugins/{ns}/{name}" + (f"/versions/{version}" if version else "")
    title, body, labels = dispute_issue(plugin=f"{ns}/{name}", version=version, digest=digest,
                                        page=page, reason=reason, security=security)
    github_token = os.environ.get(_GITHUB_TOKEN_ENV) or None
    if github_token is None:
        query = urlencode({"title": title, "body": body, "labels": ",".join(labels)})
        new_issue = f"{info.web_url}/issues/new?{query}"
        if output_format == "json":
            _print_json({"recorded": False, "new_issue_url": new_issue})
        else:
            print(for_reading(f"no ${_GITHUB_TOKEN_ENV}: open the dispute in a browser (nothing was recorded):"))
            print(new_issue)
        return
    api = _config().github_api
    if not info.web_url.startswith(web_url(api) + "/"):
        fail(f"the registry's repository {info.web_url} is not on the configured GitHub ({api}); "
             "the GitHub token is not sent there", code=EXIT_INPUT,
             advice="set `cortex config set github-api https://HOST/api/v3` for that GitHub Enterprise")
    from cortex_trust.sources import GitHubClient

    with GitHubClient(api, token=github_token) as gh:
        issue = RegistryRepository(gh, info.repository).create_issue(title=title, body=body, labels=labels)
    registry_token = os.environ.get(token_env) or None
    recorded = False
    if registry_token is not None:
        with RegistryClient(url, token=registry_token) as client:
            client.record_dispute(ns, name, issue.number)
        recorded = True
    if output_format == "json":
        _print_json({"recorded": recorded, "issue": issue.url, "number": issue.number})
        return
    print(for_reading(f"dispute opened: {issue.url}"))
    print(for_reading("recorded by the registry" if recorded else
                      f"the registry records it from GitHub (no ${token_env} to record it now)"))


def register(app: typer.Typer) -> None:
    """Add ``promote`` and ``dispute`` to ``cortex plugin``."""
    app.command("promote")(promote)
    app.command("dispute")(dispute)
