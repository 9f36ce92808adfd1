"""The options several commands share: one declaration, one help text and one metavar each.

Commands use them as ``Annotated`` types (``policy_dir: PolicyDirOpt = None``); a flag whose
meaning differs between commands has one alias per meaning, side by side here. Metavars name
what is expected: ``FILE``, ``DIR``, ``URL``, ``NAME``. Only typer and the standard library are
imported (``cortex --help`` must stay fast).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import fail
from ._paths import registry_db
from ._render import FORMATS

if TYPE_CHECKING:
    from cortex_trust.install import CortexConfig
    from cortex_trust.policy import PolicySet

__all__ = [
    "OPA_URL_ENV",
    "POLICY_ENGINE_ENV",
    "REGISTRY_POLICY_DATA_ENV",
    "REGISTRY_POLICY_DIR_ENV",
    "WHATIF_FORMATS",
    "AllowBlockedOpt",
    "AllowSignerChangeOpt",
    "BundleOpt",
    "CallPolicyDataOpt",
    "DataOpt",
    "DbOpt",
    "EngineOpt",
    "FormatOpt",
    "ImageOpt",
    "InProcessOpt",
    "NoDefaultsOpt",
    "OpaUrlOpt",
    "OutputFormat",
    "PolicyDirOpt",
    "PolicyEngineOpt",
    "RegistryDataOpt",
    "RegistryOpt",
    "RegistryPolicyDirOpt",
    "RegistryTokenEnvOpt",
    "RegistryUrlOpt",
    "ReportFormatOpt",
    "ScanScannersOpt",
    "TestsOpt",
    "TokenEnvOpt",
    "TrustedRootOpt",
    "WhatIfFormatOpt",
    "YesOpt",
    "configured_policy",
    "engine_setting",
    "load_org_policy",
    "policy_engine_factory",
]


class OutputFormat(StrEnum):
    """``--format`` of every command but ``plugin verify``."""

    text = "text"
    json = "json"


def _format_check(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A ``--format`` callback: the value when it is one of ``choices``, else exit 2."""
    if len(choices) == 2:
        shown, advice = " or ".join(choices), " or ".join(f"--format {c}" for c in choices)
    else:
        shown = "one of " + ", ".join(choices)
        advice = "--format " + ", ".join(choices[:-1]) + " or " + choices[-1]

    def check(value: str) -> str:
        if value not in choices:
            fail(f"--format {value!r} is not {shown}", advice=f"use {advice}")
        return value

    return check


# ----------------------------------------------------------------------------------- output

FormatOpt = Annotated[str, typer.Option(
    "--format", metavar="text|json", callback=_format_check(tuple(OutputFormat)),
    help="text: for people; json: one document on stdout.")]
ReportFormatOpt = Annotated[str, typer.Option(
    "--format", metavar="|".join(FORMATS), callback=_format_check(FORMATS),
    help="text: for people; json: the cortex.verify/v1 document; sarif: SARIF 2.1.0; github: "
         "workflow commands (annotations).")]
#: The formats of a what-if report (``registry retier --dry-run``, ``policy what-if``).
WHATIF_FORMATS = ("text", "json", "markdown")
WhatIfFormatOpt = Annotated[str, typer.Option(
    "--format", metavar="|".join(WHATIF_FORMATS), callback=_format_check(WHATIF_FORMATS),
    help="text: tables for people; json: one document on stdout; markdown: a job summary.")]

# ---------------------------------------------------------------------------------- policies

_POLICY_DATA_HELP = "A YAML or JSON data file merged over the policy data (repeatable)."

PolicyDirOpt = Annotated[list[Path] | None, typer.Option(
    "--policy-dir", metavar="DIR", show_default=False,
    help="A directory of Rego modules adding to or replacing the default policies (repeatable).")]
DataOpt = Annotated[list[Path] | None, typer.Option(
    "--data", metavar="FILE", show_default=False, help=_POLICY_DATA_HELP)]
#: ``plugin call`` takes the request body as ``--data``; its policy data is ``--policy-data``.
CallPolicyDataOpt = Annotated[list[Path] | None, typer.Option(
    "--policy-data", metavar="FILE", show_default=False, help=_POLICY_DATA_HELP)]
NoDefaultsOpt = Annotated[bool, typer.Option(
    "--no-default-policies", "--no-defaults",
    help="Do not load the built-in default policies (nor their tests): only the given policy "
         "directories and data.")]

#: The environment variables ``registry serve`` and ``registry retier`` take the registry's
#: policy from when no ``--policy-dir`` / ``--data`` is given (paths separated by ``:``), so
#: that both decide under the same policy. The registry never reads a user's configured policy.
REGISTRY_POLICY_DIR_ENV = "CORTEX_REGISTRY_POLICY_DIR"
REGISTRY_POLICY_DATA_ENV = "CORTEX_REGISTRY_POLICY_DATA"
RegistryPolicyDirOpt = Annotated[list[Path] | None, typer.Option(
    "--policy-dir", metavar="DIR", show_default=False, envvar=REGISTRY_POLICY_DIR_ENV,
    help="A directory of Rego modules adding to or replacing the default policies (repeatable).")]
RegistryDataOpt = Annotated[list[Path] | None, typer.Option(
    "--data", metavar="FILE", show_default=False, envvar=REGISTRY_POLICY_DATA_ENV,
    help=_POLICY_DATA_HELP)]


def configured_policy(policy_dirs: list[Path] | None, data_files: list[Path] | None,
                      config: CortexConfig) -> tuple[list[Path], list[Path], list[str]]:
    """The organization's policy a command decides with: ``(directories, data files, settings
    used)``. Each flag (``--policy-dir``, ``--data``) when given, else its setting
    (``policy-dir``, ``policy-data``): a flag replaces its own setting only. The settings used
    are named for messages."""
    used: list[str] = []
    dirs = list(policy_dirs or ())
    if not dirs and config.policy_dir:
        dirs, used = [Path(p) for p in config.policy_dir], [*used, "policy-dir"]
    data = list(data_files or ())
    if not data and config.policy_data:
        data, used = [Path(p) for p in config.policy_data], [*used, "policy-data"]
    return dirs, data, used


def load_org_policy(policy_dirs: list[Path] | None, data_files: list[Path] | None, *,
                    config: CortexConfig | None = None, defaults: bool = True) -> PolicySet:
    """Load the policy set every command that decides (verify, install, update, run, call,
    policy eval) uses: the defaults (unless ``defaults`` is false), then the flags' or the
    configuration's directories and data files (:func:`configured_policy`), so that they all
    decide under the same policy without the flags being repeated. ``config`` is read from the
    configuration file when not given. Raises :class:`~cortex_trust.errors.PolicyError` (a
    configured path that fails says so, with the setting to change) or
    :class:`~cortex_trust.errors.InputError` for an unreadable configuration."""
    from cortex_trust.errors import PolicyError
    from cortex_trust.install import load_config
    from cortex_trust.policy import load_policy_set

    from ._paths import config_path

    if config is None:
        config = load_config(config_path())
    dirs, data, used = configured_policy(policy_dirs, data_files, config)
    try:
        return load_policy_set(dirs, data, defaults=defaults)
    except PolicyError as e:
        if not used:
            raise
        raise PolicyError(f"{e.message} (the configured {' and '.join(used)})",
                          advice=f"{e.advice + '; or ' if e.advice else ''}change the configuration: "
                                 f"`cortex config set {used[0]} ...` or `cortex config unset "
                                 f"{used[0]}`") from None

#: The policy engine of every command that decides, when neither flag nor configuration says.
POLICY_ENGINE_ENV = "CORTEX_POLICY_ENGINE"
OPA_URL_ENV = "CORTEX_OPA_URL"

PolicyEngineOpt = Annotated[str | None, typer.Option(
    "--policy-engine", metavar="embedded|opa", show_default=False,
    help=f"Who decides: embedded (regorus in this process, the default) or opa (the OPA server at "
         f"--opa-url). Default: ${POLICY_ENGINE_ENV}, else the configuration's policy-engine.")]
OpaUrlOpt = Annotated[str | None, typer.Option(
    "--opa-url", metavar="URL", show_default=False,
    help=f"The OPA server of --policy-engine opa, e.g. http://127.0.0.1:8181 (default: ${OPA_URL_ENV}, "
         f"else the configuration's opa-url).")]


def engine_setting(kind: str | None, opa_url: str | None,
                   config: CortexConfig | None) -> tuple[str, str | None]:
    """``(engine, OPA URL)``: each from its flag, else ``$CORTEX_POLICY_ENGINE`` /
    ``$CORTEX_OPA_URL``, else the configuration; the engine defaults to ``embedded``. An unknown
    engine exits 2."""
    import os

    chosen = kind or os.environ.get(POLICY_ENGINE_ENV) or (config.policy_engine if config else None) \
        or "embedded"
    if chosen not in ("embedded", "opa"):
        fail(f"the policy engine {chosen!r} is not embedded or opa",
             advice=f"pass embedded or opa (or fix ${POLICY_ENGINE_ENV} or the configuration's "
                    "policy-engine)")
    return chosen, opa_url or os.environ.get(OPA_URL_ENV) or (config.opa_url if config else None)


def policy_engine_factory(kind: str | None, opa_url: str | None, policy_set: Callable[[], PolicySet], *,
                          config: CortexConfig | None, explicit_policy: bool = False,
                          precompute: bool = False) -> tuple[Callable[[], Any], str]:
    """The engine factory of a command that decides, and the engine's name.

    The engine is the flag's, else ``$CORTEX_POLICY_ENGINE``, else the configuration's
    ``policy-engine``, else ``embedded`` (the same order for the OPA URL). The embedded engine is
    loaded with ``policy_set()``; an OPA server decides with the policies it was loaded with, so
    ``explicit_policy`` (policy flags given) with ``opa`` is refused (exit 2), as are an unknown
    engine and ``opa`` without a URL. Decisions of an OPA server record its bundle's revision.
    """
    chosen, url = engine_setting(kind, opa_url, config)
    if chosen == "embedded":
        loaded = policy_set()
        from cortex_trust.engine import EmbeddedEngine

        return (lambda: EmbeddedEngine(loaded, precompute=precompute)), "embedded"
    if not url:
        fail("the OPA policy engine needs its URL",
             advice=f"pass --opa-url http://127.0.0.1:8181 (or set ${OPA_URL_ENV}, or `cortex config set "
                    "opa-url URL`)")
    if explicit_policy:
        fail("--policy-dir, --data and --no-defaults apply to the embedded engine only",
             advice="an OPA server decides with the policies it was loaded with (`cortex policy bundle "
                    "build` writes them as a bundle); drop those flags or use --policy-engine embedded")
    from cortex_trust.engine import OpaServerEngine

    OpaServerEngine(url).close()  # a malformed URL is an input error now, not a block later
    return (lambda: OpaServerEngine(url)), "opa"


# ------------------------------------------------------------------------------- evidence

ImageOpt = Annotated[str, typer.Option(
    "--image", metavar="REF@sha256:DIGEST",
    help="The image, pinned by digest: REGISTRY/REPO@sha256:DIGEST.")]
BundleOpt = Annotated[Path | None, typer.Option(
    "--bundle", metavar="FILE", show_default=False,
    help="Sigstore bundle signing the image digest (.sigstore.json).")]
TestsOpt = Annotated[Path | None, typer.Option(
    "--tests", metavar="FILE", show_default=False, help="JUnit XML test results.")]
#: ``verify`` and ``publish``: what made the ``--scan`` report (cortex_trust.evidence.parse_scanners).
ScanScannersOpt = Annotated[str | None, typer.Option(
    "--scan-scanners", metavar="LIST", show_default=False,
    help="The scanners the --scan report was produced with, as Trivy was run (e.g. vuln,secret: "
         "its --scanners value). A clean report cannot show them; they are recorded as declared "
         "by you.")]
TrustedRootOpt = Annotated[list[Path] | None, typer.Option(
    "--trusted-root", metavar="FILE", show_default=False,
    help="An extra Sigstore trusted_root.json, tried after the pinned production root "
         "(repeatable).")]

# ------------------------------------------------------------------------------- registries

#: Installing and running: the registry of names no scoped registry serves.
RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", metavar="URL", show_default=False,
    help="Use this registry as the default one (scoped registries from the configuration still "
         "win for their namespaces).")]
#: Publishing, reviewing, revoking, yanking: the registry the command talks to.
RegistryUrlOpt = Annotated[str | None, typer.Option(
    "--registry", metavar="URL", show_default=False,
    help="The registry to talk to (default: the one the plugin's name resolves from in the "
         "configuration, as for install: a scoped registry, else `cortex config set registry "
         "URL`).")]
_TOKEN_ENV_HELP = "The environment variable holding the registry's token."  # noqa: S105 - a help text

TokenEnvOpt = Annotated[str, typer.Option("--token-env", metavar="NAME", help=_TOKEN_ENV_HELP)]
#: ``config registries add``: the variable installs read for that registry (none by default).
RegistryTokenEnvOpt = Annotated[str | None, typer.Option(
    "--token-env", metavar="NAME", show_default=False, help=_TOKEN_ENV_HELP)]
# The flag wins; without it, $CORTEX_REGISTRY_DB, then `cortex config set registry-db`, then
# ./cortex-registry.db (cli._paths.registry_db, called only when --db is not given).
DbOpt = Annotated[str, typer.Option(
    "--db", metavar="URL", default_factory=registry_db, show_default=False,
    help="Database URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB. Default: "
         "$CORTEX_REGISTRY_DB, else the configuration's registry-db (`cortex config set "
         "registry-db URL`), else sqlite:///cortex-registry.db.")]

#: A queued registry command's batches run in the calling process (always so on SQLite).
InProcessOpt = Annotated[bool, typer.Option(
    "--in-process", help="On PostgreSQL too, run every batch in this process instead of queueing "
                         "batch jobs for `cortex registry worker`.")]

# ------------------------------------------------------------------------------- installing

EngineOpt = Annotated[str | None, typer.Option(
    "--engine", metavar="URL", show_default=False,
    help="Docker API of the container engine (default: $DOCKER_HOST).")]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Accept a warn decision (or widened permissions) without asking.")]
AllowBlockedOpt = Annotated[bool, typer.Option(
    "--allow-blocked", help="UNSAFE: install an overridable block anyway (recorded).")]
AllowSignerChangeOpt = Annotated[bool, typer.Option(
    "--allow-signer-change", help="Accept a version not signed by the signer pinned at first install "
                                  "(another identity, issuer or root, or no signature); the pin moves to "
                                  "the new signer and the change is recorded. --yes never accepts it.")]
