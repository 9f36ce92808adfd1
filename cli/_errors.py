"""The one place that turns a library error into a message and an exit code.

Exit codes (documented in the README):
  0 passed; 1 the decision reached ``--fail-on``; 2 usage or input error;
  3 the engine or a collector could not run (the decision failed closed), or cortex itself
  failed (an internal error: never 0, never 1, so no gate reads a crash as a decision).
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ._render import emphasise, neutralise, style_for

EXIT_OK = 0
EXIT_DECISION = 1
EXIT_INPUT = 2
EXIT_UNAVAILABLE = 3
#: An unexpected exception: cortex could not run, so whatever was being decided is a block.
EXIT_INTERNAL = EXIT_UNAVAILABLE
#: Set to ``1`` to print the traceback of an internal error (for a bug report).
DEBUG_ENV = "CORTEX_DEBUG"


def fail(message: str, *, advice: str | None = None, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``error: message`` (and ``fix: advice``) to stderr and exit with ``code``.

    Messages quote file names and content written by others: control characters are shown as
    escapes, never obeyed (a newline plus ``::`` is a GitHub workflow command; see
    :func:`cli._render.neutralise`); digests are quoted in full (what a person acts on: a pin to
    correct, a value to compare or report); labels are coloured on a terminal
    (:func:`cli._render.emphasise`).
    """
    style = style_for(sys.stderr)
    print(emphasise(f"error: {neutralise(message)}", style), file=sys.stderr)
    if advice:
        print(emphasise(f"  fix: {neutralise(advice)}", style), file=sys.stderr)
    raise SystemExit(code)


def report_library_error(exc: BaseException) -> NoReturn:
    """Render a :class:`cortex_trust.errors.CortexTrustError` and exit with its code."""
    from cortex_trust.errors import CortexTrustError, ManifestError

    if isinstance(exc, ManifestError):
        style = style_for(sys.stderr)
        for p in exc.problems:
            print(emphasise(f"error: {neutralise(str(p))}", style), file=sys.stderr)
        raise SystemExit(exc.exit_code)
    if isinstance(exc, CortexTrustError):
        fail(exc.message, advice=exc.advice, code=exc.exit_code)
    raise exc


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
          + (f": {neutralise(detail)}" if detail else "")
          + " (nothing was decided; treat it as a block)", file=sys.stderr)
    print(f"  fix: this is a bug in cortex-trust; re-run with {DEBUG_ENV}=1 to see the "
          "traceback and report it", file=sys.stderr)
    raise SystemExit(EXIT_INTERNAL)
