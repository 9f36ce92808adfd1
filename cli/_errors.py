"""The one place that turns a library error into a message and an exit code.

Exit codes (documented in the README):
  0 passed; 1 the decision reached ``--fail-on``; 2 usage or input error;
  3 the engine or a collector could not run (the decision failed closed).
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ._render import neutralise

EXIT_OK = 0
EXIT_DECISION = 1
EXIT_INPUT = 2
EXIT_UNAVAILABLE = 3


def fail(message: str, *, advice: str | None = None, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``error: message`` (and ``fix: advice``) to stderr and exit with ``code``.

    Messages quote file names and content written by others: control characters are shown as
    escapes, never obeyed (a newline plus ``::`` is a GitHub workflow command; see
    :func:`cli._render.neutralise`).
    """
    print(f"error: {neutralise(message)}", file=sys.stderr)
    if advice:
        print(f"  fix: {neutralise(advice)}", file=sys.stderr)
    raise SystemExit(code)


def report_library_error(exc: BaseException) -> NoReturn:
    """Render a :class:`cortex_trust.errors.CortexTrustError` and exit with its code."""
    from cortex_trust.errors import CortexTrustError, ManifestError

    if isinstance(exc, ManifestError):
        for p in exc.problems:
            print(f"error: {neutralise(str(p))}", file=sys.stderr)
        raise SystemExit(exc.exit_code)
    if isinstance(exc, CortexTrustError):
        fail(exc.message, advice=exc.advice, code=exc.exit_code)
    raise exc
