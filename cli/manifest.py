"""``cortex manifest``: lint plugin manifests and print the manifest JSON Schema.

``lint`` exit codes: 0 every manifest is valid, 2 at least one is not (an input error). In text
format, ``ok:`` lines go to stdout and problems (``PATH:LINE:COL: field: problem (fix: ...)``)
to stderr; in JSON format one document goes to stdout.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from . import manifest_init as _manifest_init

app = typer.Typer(
    help="Check plugin manifests (manifest.yaml) and print their JSON Schema.",
    no_args_is_help=True,
)


class _Format(StrEnum):
    text = "text"
    json = "json"


@app.command("lint")
def lint(
    paths: Annotated[list[Path], typer.Argument(
        help="Manifest files to check (manifest.yaml).", show_default=False,
        metavar="PATH")],
    output_format: Annotated[_Format, typer.Option(
        "--format", help="text: for people; json: one document on stdout.")] = _Format.text,
) -> None:
    """Check manifests against manifest v1; print every problem with file:line:col and a fix."""
    from cortex_trust.errors import ManifestError
    from cortex_trust.manifest import load_manifest

    from ._render import emphasise, neutralise, style_for

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
            })
            if output_format is _Format.text:
                for p in e.problems:
                    # File names and values come from the repository being linted.
                    print(neutralise(str(p)), file=sys.stderr)
            continue
        results.append({"path": shown, "valid": True, "name": m.name, "version": m.version,
                        "problems": []})
        if output_format is _Format.text:
            print(emphasise(neutralise(f"ok: {shown} ({m.name}@{m.version})"), style_for(sys.stdout)))
    if output_format is _Format.json:
        print(json.dumps({"valid": all_valid, "results": results}, indent=2))
    if not all_valid:
        raise typer.Exit(2)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of manifest v1, for editors and other tools."""
    from cortex_trust.manifest import manifest_json_schema

    print(json.dumps(manifest_json_schema(), indent=2))


# `cortex manifest init` lives in its own module (scaffolding is not linting).
app.command("init")(_manifest_init.init)
