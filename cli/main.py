"""Entry point of the ``cortex`` console script.

Command groups live one per module (``manifest``, ``policy``, ``plugin``...). A library error
raised by any command is rendered by the app's root group (:class:`cli._errors.RenderingGroup`).
:func:`main` runs the Typer app without Click's standalone handling, so that no exception is
turned into an exit code behind its back (Click maps an abort and a broken pipe to 1, Python
an uncaught exception to 1, and 1 means "refused by a decision"): every other way out is
decided here, and an unexpected exception exits 3 with a short message.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import config, manifest, plugin, policy, receipt, registry
from ._errors import RenderingGroup

app = typer.Typer(
    name="cortex",
    cls=RenderingGroup,
    help="cortex-trust: decide whether a CORTEX plugin may be installed, and how it is sandboxed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from ._render import version_text

        print(version_text())
        raise typer.Exit()


@app.callback()
def _cortex(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_show_version,
        help="Show cortex-trust's version and exit.")] = False) -> None:
    """cortex-trust: decide whether a CORTEX plugin may be installed, and how it is sandboxed."""


app.add_typer(manifest.app, name="manifest")
app.add_typer(policy.app, name="policy")
app.add_typer(plugin.app, name="plugin")
app.add_typer(registry.app, name="registry")
app.add_typer(config.app, name="config")
app.add_typer(receipt.app, name="receipt")


def main() -> None:
    """Run the CLI and exit: library errors become a clear message and their exit code (in the
    app itself), usage errors 2, an interrupt 130, anything unexpected 3
    (:data:`cli._errors.EXIT_INTERNAL`). Never returns."""
    import errno

    from ._errors import EXIT_INPUT, EXIT_INTERNAL, report_internal_error
    from ._lazy import lazy_command

    # httpx imports its own command line (click, rich, pygments) whenever they are installed;
    # cortex never runs it. Marked absent, it is not imported (httpx then defines a placeholder).
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        code = lazy_command(app)(standalone_mode=False)
    except typer.Abort:
        # End of input at a prompt (Ctrl-D): the user stopped; nothing was decided.
        print("error: aborted (nothing was done)", file=sys.stderr)
        raise SystemExit(EXIT_INPUT) from None
    except typer.exceptions.TyperException as e:
        # Usage errors (unknown command or option, missing argument): Click's own message.
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {e.message}", file=sys.stderr)
        raise SystemExit(e.exit_code if e.exit_code >= EXIT_INPUT else EXIT_INPUT) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except SystemExit as e:
        # Click exits 1 on a broken pipe (stdout closed under us): the output never arrived,
        # which is not a decision.
        cause = e.__context__
        if e.code == 1 and isinstance(cause, OSError) and cause.errno == errno.EPIPE:
            print("error: the output could not be written (broken pipe)", file=sys.stderr)
            raise SystemExit(EXIT_INTERNAL) from None
        raise
    except Exception as e:  # noqa: BLE001 - the one place a bug becomes an exit code
        report_internal_error(e)
    raise SystemExit(code if isinstance(code, int) and not isinstance(code, bool) else 0)


if __name__ == "__main__":
    main()
