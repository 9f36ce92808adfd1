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
from typing import Annotated

import typer

from ._errors import fail
from ._paths import registry_db
from ._render import FORMATS

__all__ = [
    "AllowBlockedOpt",
    "BundleOpt",
    "CallPolicyDataOpt",
    "DataOpt",
    "DbOpt",
    "EngineOpt",
    "FormatOpt",
    "ImageOpt",
    "NoDefaultsOpt",
    "OutputFormat",
    "PolicyDirOpt",
    "RegistryOpt",
    "RegistryTokenEnvOpt",
    "RegistryUrlOpt",
    "ReportFormatOpt",
    "TestsOpt",
    "TokenEnvOpt",
    "TrustedRootOpt",
    "YesOpt",
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

# ------------------------------------------------------------------------------- evidence

ImageOpt = Annotated[str, typer.Option(
    "--image", metavar="REF@sha256:DIGEST",
    help="The image, pinned by digest: REGISTRY/REPO@sha256:DIGEST.")]
BundleOpt = Annotated[Path | None, typer.Option(
    "--bundle", metavar="FILE", show_default=False,
    help="Sigstore bundle signing the image digest (.sigstore.json).")]
TestsOpt = Annotated[Path | None, typer.Option(
    "--tests", metavar="FILE", show_default=False, help="JUnit XML test results.")]
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
#: Publishing, reviewing, revoking: the registry the command talks to.
RegistryUrlOpt = Annotated[str, typer.Option(
    "--registry", metavar="URL", help="The registry, e.g. https://registry.cortexpersist.com.")]
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

# ------------------------------------------------------------------------------- installing

EngineOpt = Annotated[str | None, typer.Option(
    "--engine", metavar="URL", show_default=False,
    help="Docker API of the container engine (default: $DOCKER_HOST).")]
YesOpt = Annotated[bool, typer.Option(
    "--yes", "-y", help="Accept a warn decision (or widened permissions) without asking.")]
AllowBlockedOpt = Annotated[bool, typer.Option(
    "--allow-blocked", help="UNSAFE: install an overridable block anyway (recorded).")]
