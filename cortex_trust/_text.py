"""Bounded message text: the one way cortex-trust shortens a value it echoes into a message.

Messages quote values someone else wrote (a field of a manifest, a tool's error, a stored
record), and those may be huge, so they are cut to a length. A cut never falls inside an image
digest: half a digest still reads as a digest and names nothing (or, worse, looks like the
start of another one), so a digest that does not fit is left out whole and the text ends
before it, with ``…``.
"""

from __future__ import annotations

import re

from .ids import DIGEST

__all__ = ["ELLIPSIS", "clip", "first_line"]

#: What a clipped text ends with.
ELLIPSIS = "…"

#: A digest, with any hex digits that run on from it: one unit a cut never falls in (cut after
#: 64 of them, a longer run would read as a whole digest it is not).
_DIGEST_RE = re.compile(rf"{DIGEST}[0-9a-f]*")


def clip(text: str, limit: int = 300) -> str:
    """``text`` when it has at most ``limit`` characters; otherwise its start, cut so that the
    result with :data:`ELLIPSIS` has at most ``limit`` characters and no digest is cut in two
    (the cut moves back to where the digest starts; hex digits running on from a digest count
    as part of it). Never raises for ``limit >= 1``."""
    if len(text) <= limit:
        return text
    cut = max(limit - len(ELLIPSIS), 0)
    for m in _DIGEST_RE.finditer(text, 0, cut + len("sha256:") + 64):
        if m.start() < cut < m.end():
            cut = m.start()
            break
    return text[:cut] + ELLIPSIS


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), clipped to
    ``limit`` characters: some messages embed whole documents or proofs."""
    text = str(exc).strip()
    return clip(text.splitlines()[0] if text else type(exc).__name__, limit)
