"""``cortex plugin search``: discovery on GitHub (topic ``cortex-plugin``) and in registries.

Each source (the default registry, each configured registry, GitHub) is asked on its own: the
hits of the sources that answered are shown, and each source that did not answer is named on
stderr with why. The exit code is 0 when at least one source answered (even with no hits), and
the failure's own code (3 when a source could not be reached, 2 when it refused the request)
only when none did.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._options import FormatOpt

if TYPE_CHECKING:
    from cortex_trust.errors import CortexTrustError
    from cortex_trust.install import CortexConfig, RegistryEntry

__all__ = ["register"]

_SOURCES = ("github", "registry", "all")
#: Characters of a description shown in the table (``--format json`` has all of it).
_DESCRIPTION_CHARS = 72


def _github(cfg: CortexConfig, query: str, limit: int) -> list[dict[str, Any]]:
    from cortex_trust.sources import GitHubClient

    out: list[dict[str, Any]] = []
    with GitHubClient(cfg.github_api, token=os.environ.get("GITHUB_TOKEN") or None) as gh:
        for repo in gh.search_plugins(query):
            out.append({"source": "github", "name": f"github:{repo.full_name}", "description": repo.description,
                        "stars": repo.stars, "archived": repo.archived})
            if len(out) >= limit:
                break
    return out


def _registry(cfg: CortexConfig, entry: RegistryEntry, query: str, tier: str | None,
              limit: int) -> list[dict[str, Any]]:
    from cortex_trust.install import FederatedRegistry, entry_target, resolve_registry

    from ._paths import data_dir

    out: list[dict[str, Any]] = []
    token = os.environ.get(entry.token_env) if entry.token_env else entry.token
    # Through the registry's signed index when it has one (verified), else its URL; mirrors next.
    fed = FederatedRegistry(entry_target(entry, token=token), data_dir=data_dir())
    try:
        for item in fed.call(lambda c: c.search(query, tier=tier, limit=limit)):
            full = f"{item['namespace']}/{item['name']}"
            # A name is only shown from the registry that its namespace resolves from.
            if resolve_registry(cfg, full).name != entry.name:
                continue
            out.append({"source": f"registry:{entry.name}", "name": full,
                        "description": item.get("description", ""), "tier": item.get("tier"),
                        "version": item.get("latest_version")})
    finally:
        fed.close()
    return out


def search(
    query: Annotated[str, typer.Argument(help="words to look for (empty: everything)")] = "",
    source: Annotated[str, typer.Option("--source", help="github | registry | all")] = "all",
    tier: Annotated[str | None, typer.Option("--tier", help="only this tier (registry results)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    fmt: FormatOpt = "text",
) -> None:
    """Find plugins: GitHub repositories tagged cortex-plugin and registry entries.

    Shows what the sources that answered found, and warns (on stderr) about each source that
    did not answer; exits 0 when any source answered, 3 when none could be reached.
    """
    from cortex_trust.errors import CortexTrustError, InputError
    from cortex_trust.install import load_config

    from ._errors import EXIT_INPUT, EXIT_UNAVAILABLE, fail, report_library_error
    from ._paths import config_path

    if source not in _SOURCES:
        fail(f"unknown --source {source!r}", advice="use github, registry or all")
    cfg = load_config(config_path())
    results: list[dict[str, Any]] = []
    failures: list[tuple[str, CortexTrustError]] = []
    asked = 0
    if source in ("registry", "all"):
        found: list[dict[str, Any]] = []
        for entry in [cfg.default_entry(), *cfg.registries]:
            asked += 1
            try:
                found += _registry(cfg, entry, query, tier, limit)
            except CortexTrustError as e:
                failures.append((f"registry {entry.name} ({entry.url})", e))
        results += found[:limit]
    if source in ("github", "all") and tier is None:
        asked += 1
        try:
            results += _github(cfg, query, limit)
        except CortexTrustError as e:
            failures.append((f"GitHub ({cfg.github_api})", e))
    if failures and len(failures) == asked:
        if asked == 1:
            report_library_error(failures[0][1])
        for who, err in failures:
            _warn(who, err, missing=False)
        fail("no source answered, so nothing was searched",
             advice="check the network and the configuration (cortex config list)",
             code=EXIT_INPUT if all(isinstance(err, InputError) for _, err in failures)
             else EXIT_UNAVAILABLE)
    for who, err in failures:
        _warn(who, err, missing=True)
    if fmt == "json":
        typer.echo(json.dumps(results, indent=2))
        return
    _show(results)


def _warn(who: str, e: CortexTrustError, *, missing: bool) -> None:
    from ._errors import redact_secrets
    from ._render import emphasise, neutralise, style_for

    style = style_for(sys.stderr)
    tail = "; its results are missing below" if missing else ""
    line = f"warning: {who} did not answer: {e.message}{tail}"
    print(emphasise(neutralise(redact_secrets(line)), style), file=sys.stderr)
    if e.advice:
        print(emphasise(neutralise(redact_secrets(f"  fix: {e.advice}")), style), file=sys.stderr)


def _show(results: list[dict[str, Any]]) -> None:
    from cortex_trust._text import clip

    from ._render import style_for, table

    if not results:
        typer.echo("no plugins found")
        return
    rows = []
    for r in results:
        description = r.get("description") or ""
        if r.get("archived"):
            description = f"(archived) {description}"
        # Names and descriptions are other people's text: table() shows them inert.
        rows.append([str(r["name"]), str(r.get("version") or "-"), str(r.get("tier") or "-"),
                     str(r["source"]), clip(description, _DESCRIPTION_CHARS)])
    roles = [[None, None, r.get("tier"), None, None] for r in results]
    for line in table(["NAME", "VERSION", "TIER", "SOURCE", "DESCRIPTION"], rows,
                      style=style_for(sys.stdout), roles=roles):
        print(line)  # not typer.echo: it would strip the colour FORCE_COLOR asks for


def register(app: typer.Typer) -> None:
    """Add ``search`` to ``cortex plugin``."""
    app.command("search")(search)
