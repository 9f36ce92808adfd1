"""The one "did you mean" of cortex-trust: suggestions for a mistyped name (a manifest field, a
policy data key), so that every loader words them the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = ["closest", "unknown_name_fix"]

#: How alike (difflib's ratio) a known name must be to be suggested.
_CUTOFF = 0.6


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word`` (difflib ratio at least 0.6), or ``None``."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=_CUTOFF)
    return found[0] if found else None


def unknown_name_fix(word: str, allowed: Sequence[str]) -> str:
    """The fix for an unknown name: ``did you mean `x`?`` when a known name is close enough,
    otherwise the names allowed there."""
    guess = closest(word, allowed)
    return f"did you mean `{guess}`?" if guess else f"remove it; allowed here: {', '.join(allowed)}"
