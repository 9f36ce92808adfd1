"""The one place that turns an error into a message and an exit code.

Exit codes (documented in the README):
  0 passed; 1 the decision reached ``--fail-on``; 2 usage or input error;
  3 the engine or a collector could not run (the decision failed closed), or cortex itself
  failed (an internal error: never 0, never 1, so no gate reads a crash as a decision).

A library error (:class:`cortex_trust.errors.CortexTrustError`) raised by any command is
rendered by :class:`RenderingGroup`, the root command group, so that the console script, ``python
-m cli.main`` and a test driving the Typer app all exit alike. Every message passes through
:func:`redact_secrets` (the tokens a command read, see :func:`register_secret`) and
:func:`cli._render.neutralise`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

from typer.core import TyperGroup

from ._render import emphasise, neutralise, style_for

if TYPE_CHECKING:
    from typer._click.core import Context  # typer's own copy of click

    from registry._errors import ApiError

__all__ = [
    "DEBUG_ENV",
    "EXIT_DECISION",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "RenderingGroup",
    "fail",
    "redact_secrets",
    "register_secret",
    "report_api_error",
    "report_internal_error",
    "report_library_error",
]

EXIT_OK = 0
EXIT_DECISION = 1
EXIT_INPUT = 2
EXIT_UNAVAILABLE = 3
#: An unexpected exception: cortex could not run, so whatever was being decided is a block.
EXIT_INTERNAL = EXIT_UNAVAILABLE
#: Set to ``1`` to print the traceback of an internal error (for a bug report).
DEBUG_ENV = "CORTEX_DEBUG"

#: Secret values this process read (registry and GitHub tokens): never printed.
_secrets: list[str | None] = []


def register_secret(value: str | None) -> None:
    """Remember a secret this process read, so that no output of :func:`fail`, the error
    reports and :func:`redact_secrets` ever shows it."""
    if value:
        _secrets.append(value)


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if not _secrets:
        return text
    from cortex_trust.install import redact

    return redact(text, _secrets)


def _say(line: str) -> None:
    """One line to stderr: secrets redacted, then every control character shown as an escape,
    then its label coloured on a terminal (:func:`cli._render.emphasise`)."""
    print(emphasise(neutralise(redact_secrets(line)), style_for(sys.stderr)), file=sys.stderr)


def fail(message: str, *, advice: str | None = None, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``error: message`` (and ``fix: advice``) to stderr and exit with ``code``.

    Messages quote file names and content written by others: control characters are shown as
    escapes, never obeyed (a newline plus ``::`` is a GitHub workflow command; see
    :func:`cli._render.neutralise`); digests are quoted in full (what a person acts on: a pin to
    correct, a value to compare or report); labels are coloured on a terminal
    (:func:`cli._render.emphasise`).
    """
    _say(f"error: {message}")
    if advice:
        _say(f"  fix: {advice}")
    raise SystemExit(code)


def report_library_error(exc: BaseException) -> NoReturn:
    """Render a :class:`cortex_trust.errors.CortexTrustError` and exit with its code; re-raise
    anything else."""
    from cortex_trust.errors import CortexTrustError, ManifestError

    if isinstance(exc, ManifestError):
        for p in exc.problems:
            _say(f"error: {p}")
        raise SystemExit(exc.exit_code)
    if isinstance(exc, CortexTrustError):
        fail(exc.message, advice=exc.advice, code=exc.exit_code)
    raise exc


def report_api_error(error: ApiError) -> NoReturn:
    """Render a registry :class:`registry._errors.ApiError` raised by a store call made in this
    process and exit: 3 when the database is unavailable (HTTP 5xx), 2 otherwise."""
    fail(error.message, advice=error.advice or None,
         code=EXIT_UNAVAILABLE if error.status >= 500 else EXIT_INPUT)


def report_internal_error(exc: BaseException) -> NoReturn:
    """Render an unexpected exception (a bug, not a user's mistake) and exit with
    :data:`EXIT_INTERNAL`: one short message, the traceback only when ``CORTEX_DEBUG=1``."""
    import os

    if os.environ.get(DEBUG_ENV) == "1":
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    try:
        detail = next(iter(str(exc).splitlines()), "")
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the report
        detail = ""
    from cortex_trust._text import clip

    detail = clip(detail, 200)
    print(f"error: internal error: {type(exc).__name__}"
          + (f": {neutralise(redact_secrets(detail))}" if detail else "")
          + " (nothing was decided; treat it as a block)", file=sys.stderr)
    print(f"  fix: this is a bug in cortex-trust; re-run with {DEBUG_ENV}=1 to see the "
          "traceback and report it", file=sys.stderr)
    raise SystemExit(EXIT_INTERNAL)


class RenderingGroup(TyperGroup):
    """The root command group: a library error raised while a command runs (or while its options
    are parsed) is rendered by :func:`report_library_error` and exits with its code. Commands
    therefore never catch :class:`~cortex_trust.errors.CortexTrustError` only to render it."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            from cortex_trust.errors import CortexTrustError

            if isinstance(e, CortexTrustError):
                report_library_error(e)
            raise
