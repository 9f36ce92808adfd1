"""The bounded JSON reader (:func:`cortex_trust._json.load_json`): what it accepts parses as
``json`` does; beyond the bounds (digits, depth, NaN and infinities) it raises a
``json.JSONDecodeError`` with the position, and its depth scan stays linear on hostile text."""

from __future__ import annotations

import json
import time

import pytest

from cortex_trust._json import MAX_DEPTH, MAX_INT_DIGITS, JsonLimitError, load_json


@pytest.mark.parametrize("text", [
    "9" * MAX_INT_DIGITS, "-" + "9" * MAX_INT_DIGITS, "[" * MAX_DEPTH + "]" * MAX_DEPTH,
    '"' + "[" * 1000 + '"', '["\\"[[[[", 1.5e300, -0.0]', '{"a": "\\\\"}',
])
def test_within_bounds_parses_like_json(text: str) -> None:
    assert load_json(text) == json.loads(text)
    assert load_json(text.encode("utf-16")) == json.loads(text)


@pytest.mark.parametrize("text", [
    "9" * (MAX_INT_DIGITS + 1), "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    '{"a": ' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "NaN", "[-Infinity]", "1e400",
    "0." + "1" * 100,
])
def test_beyond_bounds_is_a_json_decode_error(text: str) -> None:
    with pytest.raises(JsonLimitError) as e:
        load_json(text)
    assert isinstance(e.value, json.JSONDecodeError) and e.value.lineno == 1


def test_depth_scan_is_linear_on_hostile_strings() -> None:
    # An unterminated string of escaped quotes (the brackets at its end make the depth scan
    # run, and are inside the string): a backtracking scan would be quadratic.
    text = '"' + '\\"' * 500_000 + "[" * (MAX_DEPTH + 1)
    start = time.monotonic()
    with pytest.raises(json.JSONDecodeError):
        load_json(text)
    assert time.monotonic() - start < 2
