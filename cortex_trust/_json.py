"""Bounded JSON parsing for every document written by someone else.

Evidence files, policy inputs, local state, registry answers and registry request bodies are
read with :func:`load_json`, never with a bare :func:`json.loads`, which an attacker can make
fail in ways no caller expects:

* an integer longer than Python's int-to-str limit raises a bare :class:`ValueError` (and a
  shorter one of thousands of digits still costs quadratic time to convert);
* nesting deeper than the interpreter's recursion limit raises :class:`RecursionError`, and a
  document just below it exhausts the stack of whatever walks the result next;
* ``NaN``, ``Infinity`` and numbers that overflow to infinity are accepted, although JSON has
  no such values and no other parser (regorus, OPA, pydantic's) agrees on them.

:func:`load_json` refuses all of these with :class:`JsonLimitError`, a
:class:`json.JSONDecodeError`: a caller that handles malformed JSON handles an over-limit
document the same way, with a message naming the limit. Nesting is measured on the text before
the recursive parser runs, so the parser never recurses deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "MAX_NUMBER_CHARS", "JsonLimitError", "canonical_json", "load_json"]

#: Deepest nesting of arrays and objects accepted. Every document cortex-trust reads is at most
#: about ten levels deep (a Trivy report, a Sigstore bundle, a policy input).
MAX_DEPTH = 64
#: Most digits in an integer. Counts, cursors and sizes need far fewer.
MAX_INT_DIGITS = 64
#: Longest text of a number with a fraction or an exponent.
MAX_NUMBER_CHARS = 64

# A JSON string (escapes included; an unterminated one runs to the end of the text) or one
# bracket. Strings are matched whole so that brackets inside them are not counted. Once a
# string has started the pattern cannot fail, so it never backtracks: linear in the text.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*\\?(?:"|\Z)|[\[{]|[\]}]', re.DOTALL)


class JsonLimitError(json.JSONDecodeError):
    """Well-formed JSON that exceeds a bound (nesting, number size) or uses NaN/Infinity."""


class _Refused(Exception):
    """Raised inside a parse hook; turned into :class:`JsonLimitError` with a position."""

    def __init__(self, message: str, literal: str) -> None:
        super().__init__(message)
        self.message = message
        self.literal = literal


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are accepted)",
                       text)
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number written with {len(text)} characters (at most "
                       f"{MAX_NUMBER_CHARS} are accepted)", text)
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is out of range", text)
    return value


def _parse_constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number", text)


def _text(data: bytes | bytearray | str) -> str:
    if isinstance(data, str):
        return data
    # Exactly as json.loads decodes bytes (UTF-8, or UTF-16/32 by the RFC's detection).
    return bytes(data).decode(json.detect_encoding(data), "surrogatepass")


def _check_depth(text: str, max_depth: int) -> None:
    # Cheap test first: a document with few brackets cannot be deep.
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth = 0
    for m in _STRUCTURE.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonLimitError(f"nested more than {max_depth} levels deep", text, m.start())
        elif c in "]}":
            depth -= 1


def load_json(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` as JSON within the bounds of this module.

    Raises :class:`JsonLimitError` when the document nests deeper than ``max_depth``, has an
    integer of more than :data:`MAX_INT_DIGITS` digits, another number longer than
    :data:`MAX_NUMBER_CHARS` characters or out of the float range, or uses ``NaN``/``Infinity``;
    :class:`json.JSONDecodeError` when it is not JSON; :class:`UnicodeDecodeError` when bytes
    are not text. All three are :class:`ValueError`; nothing else escapes.
    """
    text = _text(data)
    _check_depth(text, max_depth)
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_parse_constant)
    except _Refused as e:
        raise JsonLimitError(e.message, text, max(text.find(e.literal), 0)) from None
    except RecursionError:  # unreachable after the depth check; kept as a last line
        raise JsonLimitError("nested too deeply", text, 0) from None


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, non-ASCII kept. What cortex-trust hashes
    and signs (audit entries, decision receipts): equal values give equal text, so a digest of
    the text is a digest of the value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
