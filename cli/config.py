"""``cortex config``: the default registry, scoped private registries, the GitHub API URL, the
CORTEX platform's version, usage reporting (the installation token's variable), the database of
a registry you operate, the organization's policy (``policy-dir``, ``policy-data``).

Settings are the fields of :class:`cortex_trust.install.CortexConfig` (``platform_version`` is
the setting ``platform-version``); ``set``, ``add``, ``unset``, ``get`` and ``list`` work like
``git config``: a mistyped setting gets "did you mean", a refused value what is wrong and the
fix, and nothing is written unless the whole configuration is valid. A list setting holds
several values (``set`` replaces them all, ``add`` appends). Policy paths are stored absolute
and checked by loading the policy before they are saved.

Written to the user's config file with owner-only permissions; tokens are referenced by
environment variable (``--token-env``) and always redacted from output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ._errors import fail
from ._options import FormatOpt, RegistryTokenEnvOpt

if TYPE_CHECKING:
    from pydantic import ValidationError

    from cortex_trust.install import CortexConfig

app = typer.Typer(help="Read and change the configuration (registries, GitHub, the CORTEX platform version, "
                       "the organization's policy).", no_args_is_help=True)
registries_app = typer.Typer(help="Scoped registries (federation and private registries).", no_args_is_help=True)
app.add_typer(registries_app, name="registries")

_SETTING_HELP = ("registry | github-api | registry-log-key | platform-version | usage-token-env | "
                 "registry-db | policy-dir | policy-data | policy-engine | opa-url")
#: Settings that hold paths of the organization's policy (made absolute, loaded before saving).
_POLICY_PATHS = ("policy_dir", "policy_data")
#: How ``list`` shows a setting that is not set (settings not named here are not shown then).
_NOT_SET = {"platform_version": "(not set: unknown)",
            "policy_dir": "(not set: the shipped policies only)",
            "policy_data": "(not set: the shipped policy data only)"}
#: ``registries add``: the argument or option each field of an entry comes from.
_ENTRY_ARGS = {"name": "NAME", "url": "URL", "scopes": "--scope", "mirrors": "--mirror",
               "token_env": "--token-env", "log_key": "--log-key",
               "usage_token_env": "--usage-token-env"}

SettingArg = Annotated[str, typer.Argument(metavar="SETTING", help=_SETTING_HELP, show_default=False)]


def _settings() -> dict[str, str]:
    """Setting name -> field of the configuration, in the configuration's order."""
    from cortex_trust.install import CortexConfig

    return {f.replace("_", "-"): f for f in CortexConfig.model_fields if f != "registries"}


def _is_list(field: str) -> bool:
    from cortex_trust.install import CortexConfig

    return isinstance(CortexConfig.model_fields[field].default, tuple)


def _field(key: str) -> str:
    """The configuration field of setting ``key`` (``platform-version`` or ``platform_version``);
    exit 2 with "did you mean" for an unknown one."""
    from cortex_trust._suggest import closest

    settings = _settings()
    name = key.replace("_", "-")
    if name in settings:
        return settings[name]
    if name == "registries":
        fail("scoped registries are not a single setting",
             advice="use `cortex config registries add NAME URL --scope 'NAMESPACE/*'` (or remove)")
    guess = closest(name, settings)
    fail(f"unknown setting {key!r}" + (f"; did you mean {guess!r}?" if guess else ""),
         advice=f"settings are: {', '.join(settings)}; scoped registries use "
                "`cortex config registries add`")


def _refused(e: ValidationError, *, command: str) -> NoReturn:
    """Exit 2 saying, in plain words, which value was refused, why, and what to write."""
    from cortex_trust.install import invalid_setting

    loc, problem, cause = invalid_setting(e)
    field = str(loc[0]) if loc else ""
    if field == "registries" and len(loc) >= 3:
        shown = _ENTRY_ARGS.get(str(loc[2]), str(loc[2]))
    else:
        shown = field.replace("_", "-") or "the configuration"
    advice = f"see `cortex config {command} --help`"
    if cause is not None:
        advice = cause.fix + (f", e.g. {cause.example}" if cause.example else "")
    fail(f"{shown} not changed: {problem}", advice=advice)


def _save(changes: dict[str, object], *, command: str) -> CortexConfig:
    """Apply ``changes`` to the stored configuration and save it; nothing is written when the
    result is invalid (exit 2, in plain words) or its policy does not load."""
    from pydantic import ValidationError

    from cortex_trust.install import CortexConfig, load_config, save_config

    from ._paths import config_path

    path = config_path()
    doc = load_config(path).model_dump()
    doc.update(changes)
    try:
        new = CortexConfig.model_validate(doc)
    except ValidationError as e:
        _refused(e, command=command)
    if any(f in changes for f in _POLICY_PATHS):
        _check_policy(new, changed=[f for f in _POLICY_PATHS if f in changes])
    save_config(path, new)
    return new


def _check_policy(config: CortexConfig, *, changed: list[str]) -> None:
    """Load the configured policy: a missing directory, a mistyped data key or a broken data
    file is refused now, not at the next install."""

    from cortex_trust.errors import PolicyError
    from cortex_trust.policy import load_policy_set

    names = " and ".join(f.replace("_", "-") for f in changed)
    for d in config.policy_dir:
        if not Path(d).is_dir():
            fail(f"{names} not changed: {d} is not a directory",
                 advice="give the directory that holds the organization's .rego modules (and its data.yaml)")
    for f in config.policy_data:
        if not Path(f).is_file():
            fail(f"{names} not changed: {f} is not a file", advice="give a YAML or JSON policy data file")
    try:
        load_policy_set(config.policy_dir, config.policy_data)
    except PolicyError as e:
        fail(f"{names} not changed: {e.message}", advice=e.advice)


def _absolute(values: list[str]) -> tuple[str, ...]:
    # Stored absolute: a relative path would name another file in every directory.
    return tuple(os.path.abspath(os.path.expanduser(v)) if v else v for v in values)


def _echo_setting(name: str, value: object) -> None:
    for v in value if isinstance(value, (list, tuple)) else (value,):
        typer.echo(f"{name} = {v}")


@app.command("set")
def set_(setting: SettingArg,
         value: Annotated[list[str], typer.Argument(
             metavar="VALUE", help="an http(s) URL for registry and github-api, a verifier key for "
                                   "registry-log-key, the CORTEX platform's X.Y.Z for platform-version, "
                                   "an environment variable's name for usage-token-env, a database URL "
                                   "for registry-db, DIR... for policy-dir, FILE... for policy-data")]) -> None:
    """Set a setting (a list setting: all its values).

    E.g. `cortex config set registry https://registry.internal.acme.com`,
    `cortex config set platform-version 8.1.0` (the CORTEX platform version manifests'
    min_cortex_version is compared with; CORTEX_PLATFORM_VERSION overrides it), `cortex config
    set usage-token-env CORTEX_USAGE_TOKEN` (report production use of plugins from the default
    registry with the installation token in that variable), `cortex config set registry-db
    postgresql://cortex@db.internal:5432/registry` (the database of `cortex registry` commands
    without --db; CORTEX_REGISTRY_DB overrides it) or `cortex config set policy-dir
    /etc/cortex/acme` and `cortex config set policy-data acme.yaml org.yaml` (the organization's
    policy every command decides with; --policy-dir and --data override them).
    A list setting takes several values and replaces the ones it had (`add` appends)."""
    field = _field(setting)
    name = field.replace("_", "-")
    new: object
    if _is_list(field):
        new = _absolute(value) if field in _POLICY_PATHS else tuple(value)
    elif len(value) != 1:
        fail(f"{name} holds one value, not {len(value)}", advice=f"`cortex config set {name} VALUE`")
    else:
        new = value[0]
    _save({field: new}, command="set")
    _echo_setting(name, new)


@app.command("add")
def add(setting: SettingArg,
        value: Annotated[list[str], typer.Argument(
            metavar="VALUE", help="DIR... for policy-dir, FILE... for policy-data")]) -> None:
    """Append values to a list setting (policy-dir, policy-data).

    E.g. `cortex config add policy-data org-overrides.yaml` (merged after the data files
    already configured)."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    field = _field(setting)
    name = field.replace("_", "-")
    if not _is_list(field):
        fail(f"{name} holds one value; only policy-dir and policy-data hold several",
             advice=f"`cortex config set {name} VALUE`")
    current: tuple[str, ...] = getattr(load_config(config_path()), field)
    added = _absolute(value) if field in _POLICY_PATHS else tuple(value)
    for v in added:
        if v in current:
            fail(f"{v} is already in {name}", advice=f"`cortex config get {name}` lists them")
    _save({field: (*current, *added)}, command="set")
    _echo_setting(name, added)


@app.command("get")
def get(setting: SettingArg) -> None:
    """Print one setting (a list setting one value a line; nothing when not set)."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    value = getattr(load_config(config_path()), _field(setting))
    for v in value if isinstance(value, tuple) else (() if value is None else (value,)):
        typer.echo(v)


@app.command("unset")
def unset(setting: SettingArg) -> None:
    """Reset a setting to its default (a list setting to empty)."""
    from cortex_trust.install import CortexConfig

    field = _field(setting)
    _save({field: CortexConfig.model_fields[field].default}, command="unset")
    typer.echo(f"{field.replace('_', '-')} reset to its default")


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
    for name, field in _settings().items():
        value = doc[field]
        if value in (None, []):
            if field in _NOT_SET:
                typer.echo(f"{name} = {_NOT_SET[field]}")
            continue
        _echo_setting(name, value)
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
    index_url: Annotated[str | None, typer.Option(
        "--index-url", metavar="URL",
        help="its signed index (https://, or file:///DIR for an air-gapped copy): install, "
             "search, sync and update then read through it, verified with TUF")] = None,
    index_mirror: Annotated[list[str] | None, typer.Option(
        "--index-mirror", metavar="URL", help="a mirror of the index, tried in order")] = None,
    index_root: Annotated[Path | None, typer.Option(
        "--index-root", metavar="FILE",
        help="the index's trusted root (its metadata/1.root.json from the operator); default: "
             "trust the first root the index serves")] = None,
) -> None:
    """Add (or replace) a registry that serves some namespaces, e.g. a private one."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    current = load_config(config_path())
    others = [r.model_dump() for r in current.registries if r.name != name]
    if index_root is not None and index_url is None:
        fail("--index-root needs --index-url", advice="name the index the root belongs to")
    root = None
    if index_root is not None:
        from cortex_trust._io import ReadRefused, read_bounded

        try:
            root = read_bounded(index_root, max_bytes=512_000).decode("utf-8")
        except (ReadRefused, UnicodeDecodeError) as e:
            fail(f"cannot read --index-root {index_root} ({type(e).__name__})",
                 advice="pass the index's root metadata file (metadata/1.root.json)")
    entry = {"name": name, "url": url, "scopes": tuple(scope), "token_env": token_env,
             "mirrors": tuple(mirror or ()), "log_key": log_key, "usage_token_env": usage_token_env,
             "index_url": index_url, "index_mirrors": tuple(index_mirror or ()), "index_root": root}
    _save({"registries": (*others, entry)}, command="registries add")
    typer.echo(f"registry {name} = {url} serves {', '.join(scope)}"
               + (f", read through its index {index_url}" if index_url else ""))


@registries_app.command("remove")
def registries_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a scoped registry."""
    from cortex_trust.install import load_config

    from ._paths import config_path

    current = load_config(config_path())
    if name not in {r.name for r in current.registries}:
        fail(f"no registry named {name!r}", advice="`cortex config list` shows the configured ones")
    _save({"registries": tuple(r.model_dump() for r in current.registries if r.name != name)},
          command="registries remove")
    typer.echo(f"registry {name} removed")


@registries_app.command("resolve")
def registries_resolve(full_name: Annotated[str, typer.Argument(help="namespace/name")]) -> None:
    """Show which registry a plugin name resolves from (exactly one)."""
    from cortex_trust.install import load_config, resolve_registry

    from ._paths import config_path

    entry = resolve_registry(load_config(config_path()), full_name)
    typer.echo(f"{full_name} -> {entry.name} ({entry.url})")
