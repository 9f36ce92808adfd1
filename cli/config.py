"""``cortex config``: the default registry, scoped private registries, the GitHub API URL, the
CORTEX platform's version, usage reporting (the installation token's variable), the database of
a registry you operate.

Written to the user's config file with owner-only permissions; tokens are referenced by
environment variable (``--token-env``) and always redacted from output.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ._options import FormatOpt, RegistryTokenEnvOpt

app = typer.Typer(help="Read and change the configuration (registries, GitHub).", no_args_is_help=True)
registries_app = typer.Typer(help="Scoped registries (federation and private registries).", no_args_is_help=True)
app.add_typer(registries_app, name="registries")

_KEYS = {"registry": "registry", "github-api": "github_api", "github_api": "github_api",
         "registry-log-key": "registry_log_key", "registry_log_key": "registry_log_key",
         "platform-version": "platform_version", "platform_version": "platform_version",
         "usage-token-env": "usage_token_env", "usage_token_env": "usage_token_env",
         "registry-db": "registry_db", "registry_db": "registry_db"}


def _key(key: str) -> str:
    from ._errors import fail

    if key not in _KEYS:
        fail(f"unknown setting {key!r}", advice="settings are: registry, github-api, "
             "registry-log-key, platform-version, usage-token-env, registry-db; "
             "scoped registries use `cortex config registries add`")
    return _KEYS[key]


def _update(**changes: object) -> None:
    from cortex_trust.install import CortexConfig, load_config, save_config

    from ._paths import config_path

    path = config_path()
    current = load_config(path)
    doc = current.model_dump()
    doc.update(changes)
    try:
        new = CortexConfig.model_validate(doc)
    except ValueError as e:
        from ._errors import fail

        msg = e.errors()[0]["msg"] if hasattr(e, "errors") else str(e)
        fail(f"invalid setting: {msg}", advice="see `cortex config --help`")
    save_config(path, new)


@app.command("set")
def set_(key: Annotated[str, typer.Argument(help="registry | github-api | registry-log-key | "
                                                 "platform-version | usage-token-env | registry-db")],
         value: Annotated[str, typer.Argument(help="an http(s) URL (a verifier key for "
                                                   "registry-log-key, the CORTEX platform's "
                                                   "X.Y.Z for platform-version, an environment "
                                                   "variable's name for usage-token-env, a "
                                                   "database URL for registry-db)")]) -> None:
    """Set a setting, e.g. `cortex config set registry https://registry.internal.acme.com`,
    `cortex config set platform-version 8.1.0` (the CORTEX platform version manifests'
    min_cortex_version is compared with; CORTEX_PLATFORM_VERSION overrides it), `cortex config
    set usage-token-env CORTEX_USAGE_TOKEN` (report production use of plugins from the default
    registry with the installation token in that variable) or `cortex config set registry-db
    postgresql://cortex@db.internal:5432/registry` (the database of `cortex registry` commands
    without --db; CORTEX_REGISTRY_DB overrides it)."""
    _update(**{_key(key): value})
    typer.echo(f"{key} = {value}")


@app.command("get")
def get(key: Annotated[str, typer.Argument(help="registry | github-api | registry-log-key | "
                                               "platform-version | usage-token-env | registry-db")]) -> None:
    """Print one setting."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    typer.echo(getattr(load_config(config_path()), _key(key)))


@app.command("unset")
def unset(key: Annotated[str, typer.Argument(help="registry | github-api | registry-log-key | "
                                                 "platform-version | usage-token-env | registry-db")]) -> None:
    """Reset a setting to its default."""
    from cortex_trust.install import CortexConfig

    field = _key(key)
    _update(**{field: CortexConfig.model_fields[field].default})
    typer.echo(f"{key} reset to its default")


@app.command("list")
def list_(fmt: FormatOpt = "text") -> None:
    """Print the whole configuration (tokens redacted)."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    path = config_path()
    doc = load_config(path).redacted()
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    typer.echo(f"# {path}")
    typer.echo(f"registry = {doc['registry']}")
    typer.echo(f"github-api = {doc['github_api']}")
    if doc.get("registry_log_key"):
        typer.echo(f"registry-log-key = {doc['registry_log_key']}")
    typer.echo(f"platform-version = {doc['platform_version'] or '(not set: unknown)'}")
    if doc.get("usage_token_env"):
        typer.echo(f"usage-token-env = {doc['usage_token_env']}")
    if doc.get("registry_db"):
        typer.echo(f"registry-db = {doc['registry_db']}")
    for r in doc["registries"]:
        token = f" token-env={r['token_env']}" if r["token_env"] else (" token=***" if r["token"] else "")
        mirrors = f" mirrors={','.join(r['mirrors'])}" if r["mirrors"] else ""
        log_key = f" log-key={r['log_key']}" if r.get("log_key") else ""
        usage = f" usage-token-env={r['usage_token_env']}" if r.get("usage_token_env") else ""
        typer.echo(f"registries.{r['name']} = {r['url']} scopes={','.join(r['scopes'])}{token}{mirrors}"
                   f"{log_key}{usage}")


@app.command("path")
def path() -> None:
    """Print where the configuration file is."""
    from ._paths import config_path

    typer.echo(str(config_path()))


@registries_app.command("add")
def registries_add(
    name: Annotated[str, typer.Argument(help="a short name, e.g. acme")],
    url: Annotated[str, typer.Argument(help="the registry's base URL")],
    scope: Annotated[list[str], typer.Option("--scope", help="`ns/*` or `ns/name` it serves (repeatable)")],
    token_env: RegistryTokenEnvOpt = None,
    mirror: Annotated[list[str] | None, typer.Option(
        "--mirror", metavar="URL", help="a mirror URL, tried in order")] = None,
    log_key: Annotated[str | None, typer.Option(
        "--log-key", metavar="KEY", help="its transparency-log verifier key (NAME+KEYID+KEY, from its operator): "
                          "installs check the version is in its log")] = None,
    usage_token_env: Annotated[str | None, typer.Option(
        "--usage-token-env", metavar="NAME",
        help="env var holding an installation token of this registry: `cortex plugin run` then "
             "reports production use of its plugins to it (opt-in)")] = None,
) -> None:
    """Add (or replace) a registry that serves some namespaces, e.g. a private one."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    current = load_config(config_path())
    others = [r.model_dump() for r in current.registries if r.name != name]
    entry = {"name": name, "url": url, "scopes": tuple(scope), "token_env": token_env,
             "mirrors": tuple(mirror or ()), "log_key": log_key, "usage_token_env": usage_token_env}
    _update(registries=(*others, entry))
    typer.echo(f"registry {name} = {url} serves {', '.join(scope)}")


@registries_app.command("remove")
def registries_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a scoped registry."""
    from cortex_trust.install import load_config

    from ._errors import fail
    from ._paths import config_path

    current = load_config(config_path())
    if name not in {r.name for r in current.registries}:
        fail(f"no registry named {name!r}", advice="`cortex config list` shows the configured ones")
    _update(registries=tuple(r.model_dump() for r in current.registries if r.name != name))
    typer.echo(f"registry {name} removed")


@registries_app.command("resolve")
def registries_resolve(full_name: Annotated[str, typer.Argument(help="namespace/name")]) -> None:
    """Show which registry a plugin name resolves from (exactly one)."""
    from cortex_trust.install import load_config, resolve_registry

    from ._paths import config_path

    entry = resolve_registry(load_config(config_path()), full_name)
    typer.echo(f"{full_name} -> {entry.name} ({entry.url})")
