"""Entry point of the ``cortex`` console script.

Command groups live one per module (``manifest``, ``policy``, ``plugin``...). Every library
error raised by a command reaches :func:`main`, which renders it through :mod:`cli._errors`.
"""

from __future__ import annotations

import typer

from . import config, manifest, plugin, policy, registry

app = typer.Typer(
    name="cortex",
    help="cortex-trust: decide whether a CORTEX plugin may be installed, and how it is sandboxed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(manifest.app, name="manifest")
app.add_typer(policy.app, name="policy")
app.add_typer(plugin.app, name="plugin")
app.add_typer(registry.app, name="registry")
app.add_typer(config.app, name="config")


def main() -> None:
    """Run the CLI; library errors become a clear message and a non-zero exit code."""
    from cortex_trust.errors import CortexTrustError

    try:
        app()
    except CortexTrustError as e:
        from ._errors import report_library_error

        report_library_error(e)


if __name__ == "__main__":
    main()
