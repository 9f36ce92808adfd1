"""``cortex manifest``: lint plugin manifests and print the manifest JSON Schema.

``lint`` exit codes: 0 every manifest is valid, 2 at least one is not (an input error). In text
format, ``ok:`` lines go to stdout and problems (``PATH:LINE:COL: field: problem (fix: ...)``)
and warnings to stderr; in JSON format one document goes to stdout. A valid manifest whose
``trust.min_cortex_version`` is above the configured CORTEX platform version gets a warning (it
would be blocked at install here), not an error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import manifest_init as _manifest_init
from ._options import FormatOpt, OutputFormat

if TYPE_CHECKING:
    from cortex_trust.install import PlatformVersion

app = typer.Typer(
    help="Check plugin manifests (manifest.yaml) and print their JSON Schema.",
    no_args_is_help=True,
)

@app.command("lint")
def lint(
    paths: Annotated[list[Path], typer.Argument(
        help="Manifest files to check (manifest.yaml).", show_default=False,
        metavar="PATH")],
    output_format: FormatOpt = OutputFormat.text,
) -> None:
    """Check manifests against manifest v1; print every problem with file:line:col and a fix."""
    from cortex_trust.errors import ManifestError
    from cortex_trust.manifest import load_manifest

    from ._render import emphasise, neutralise, style_for

    platform = _platform()
    results: list[dict[str, Any]] = []
    all_valid = True
    for path in paths:
        shown = str(path)
        try:
            m = load_manifest(path)
        except ManifestError as e:
            all_valid = False
            results.append({
                "path": shown, "valid": False, "name": None, "version": None,
                "problems": [
                    {"path": p.path, "line": p.line, "column": p.column, "field": p.field,
                     "problem": p.problem, "fix": p.fix} for p in e.problems],
                "warnings": [],
            })
            if output_format == OutputFormat.text:
                for p in e.problems:
                    # File names and values come from the repository being linted.
                    print(neutralise(str(p)), file=sys.stderr)
            continue
        warnings = _platform_warnings(m.trust.min_cortex_version, platform)
        results.append({"path": shown, "valid": True, "name": m.name, "version": m.version,
                        "problems": [], "warnings": warnings})
        if output_format == OutputFormat.text:
            print(emphasise(neutralise(f"ok: {shown} ({m.name}@{m.version})"), style_for(sys.stdout)))
            for w in warnings:
                print(emphasise(neutralise(f"warning: {shown}: {w}"), style_for(sys.stderr)), file=sys.stderr)
    if output_format == OutputFormat.json:
        print(json.dumps({"valid": all_valid, "results": results}, indent=2))
    if not all_valid:
        raise typer.Exit(2)


def _platform() -> PlatformVersion | None:
    """The configured CORTEX platform version, or None (with a warning) when it cannot be read:
    linting never fails because of the configuration."""
    from cortex_trust.errors import CortexTrustError

    from ._platform import platform_version

    try:
        return platform_version()
    except CortexTrustError as e:
        print(f"warning: the CORTEX platform version could not be read, so min_cortex_version is "
              f"not compared with it: {e.message}", file=sys.stderr)
        return None


def _platform_warnings(needed: str, platform: PlatformVersion | None) -> list[str]:
    """A warning when the manifest's minimum is above the platform version (compared on
    MAJOR.MINOR.PATCH, as the default policy compares them)."""
    from cortex_trust.manifest import parse_semver, semver_key

    if platform is None or platform.version is None:
        return []
    if semver_key(parse_semver(needed)._replace(prerelease=(), build=())) <= semver_key(
            parse_semver(platform.version)._replace(prerelease=(), build=())):
        return []
    return [f"trust.min_cortex_version {needed} is above the CORTEX platform version "
            f"{platform.describe()}: installing it on this platform is blocked "
            "(CORTEX_VERSION_UNSUPPORTED)"]


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of manifest v1, for editors and other tools."""
    from cortex_trust.manifest import manifest_json_schema

    print(json.dumps(manifest_json_schema(), indent=2))


# `cortex manifest init` lives in its own module (scaffolding is not linting).
app.command("init")(_manifest_init.init)
