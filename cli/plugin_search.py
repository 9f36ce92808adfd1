"""``cortex plugin search``: discovery on GitHub (topic ``cortex-plugin``) and in registries."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from ._options import FormatOpt

_SOURCES = ("github", "registry", "all")


def _github(query: str, limit: int) -> list[dict[str, Any]]:
    from cortex_trust.install import load_config
    from cortex_trust.sources import GitHubClient

    from ._paths import config_path

    cfg = load_config(config_path())
    out: list[dict[str, Any]] = []
    with GitHubClient(cfg.github_api, token=os.environ.get("GITHUB_TOKEN") or None) as gh:
        for repo in gh.search_plugins(query):
            out.append({"source": "github", "name": f"github:{repo.full_name}", "description": repo.description,
                        "stars": repo.stars, "archived": repo.archived})
            if len(out) >= limit:
                break
    return out


def _registry(query: str, tier: str | None, limit: int) -> list[dict[str, Any]]:
    from cortex_trust.install import load_config
    from cortex_trust.sources import RegistryClient

    from ._paths import config_path

    cfg = load_config(config_path())
    out: list[dict[str, Any]] = []
    entries = [cfg.default_entry(), *cfg.registries]
    for entry in entries:
        token = os.environ.get(entry.token_env) if entry.token_env else entry.token
        with RegistryClient(entry.url, token=token) as client:
            for item in client.search(query, tier=tier, limit=limit):
                full = f"{item['namespace']}/{item['name']}"
                # A name is only shown from the registry that its namespace resolves from.
                from cortex_trust.install import resolve_registry

                if resolve_registry(cfg, full).name != entry.name:
                    continue
                out.append({"source": f"registry:{entry.name}", "name": full,
                            "description": item.get("description", ""), "tier": item.get("tier"),
                            "version": item.get("latest_version")})
    return out[:limit]


def search(
    query: Annotated[str, typer.Argument(help="words to look for (empty: everything)")] = "",
    source: Annotated[str, typer.Option("--source", help="github | registry | all")] = "all",
    tier: Annotated[str | None, typer.Option("--tier", help="only this tier (registry results)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    fmt: FormatOpt = "text",
) -> None:
    """Find plugins: GitHub repositories tagged cortex-plugin and registry entries."""
    from ._errors import fail

    if source not in _SOURCES:
        fail(f"unknown --source {source!r}", advice="use github, registry or all")
    results: list[dict[str, Any]] = []
    if source in ("registry", "all"):
        results += _registry(query, tier, limit)
    if source in ("github", "all") and tier is None:
        results += _github(query, limit)
    if fmt == "json":
        typer.echo(json.dumps(results, indent=2))
        return
    from ._render import neutralise

    if not results:
        typer.echo("no plugins found")
    for r in results:
        # Names and descriptions are other people's text: never let them drive the terminal.
        extra = f" [{r['tier']}]" if r.get("tier") else ""
        typer.echo(neutralise(f"{r['name']}{extra}  {r.get('description') or ''}  ({r['source']})"))


def register(app: typer.Typer) -> None:
    """Add ``search`` to ``cortex plugin``."""
    app.command("search")(search)
