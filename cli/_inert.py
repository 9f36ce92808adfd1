"""What every output of the CLI shares, below the renderers: other people's text made inert and
shortened for reading, the gate's exit code, and small accessors of a decision or verify result.

Only the standard library is imported at module level (``cortex --help`` must stay fast).
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = [
    "FAIL_ON_CHOICES",
    "SEVERITY",
    "SHORT_DIGEST_HEX",
    "decision_of",
    "exit_code_for",
    "for_reading",
    "missing_text",
    "neutralise",
    "plural",
    "shorten_digests",
    "value_of",
]

FAIL_ON_CHOICES = ("notice", "warn", "block")

# Action ordering (allow < notice < warn < block); kept as strings so that this module does
# not import the decision model. A test pins it to cortex_trust.policy.Action.severity.
SEVERITY = {"allow": 0, "notice": 1, "warn": 2, "block": 3}


# What a terminal or a CI runner acts on: C0 controls but tab (a newline starts a line the
# Actions runner reads as a workflow command), DEL, C1 controls (0x9B is a one-byte CSI), the
# Unicode line/paragraph separators, and bidirectional controls (text that displays in another
# order than it reads: "Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u2028\u2029\u200e\u200f"
                     "\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    return _NAMED_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def neutralise(text: str) -> str:
    """``text`` with every character a terminal or CI runner would act on shown as an escape
    (``\\n``, ``\\x1b``, ``\\u202e``): one line, inert, still readable. Never raises.

    The one function every text output of the CLI passes other people's strings through
    (registry answers: names, descriptions, images, reasons, error messages; manifests;
    reports)."""
    return _UNSAFE.sub(_escape_char, text)


#: Hex digits of a digest shown in text output (Docker and git show 12 too).
SHORT_DIGEST_HEX = 12


def shorten_digests(text: str) -> str:
    """``text`` with every image digest in it shortened to ``sha256:``, the first
    :data:`SHORT_DIGEST_HEX` hex digits and ``…``."""
    return _digest_re().sub(lambda m: f"sha256:{m.group(1)[:SHORT_DIGEST_HEX]}…", text)


@functools.cache
def _digest_re() -> re.Pattern[str]:
    """The digest grammar of :mod:`cortex_trust.ids` (the one definition), with the hex digits as
    group 1; imported on first use so that help screens stay light."""
    from cortex_trust.ids import DIGEST

    prefix = "sha256:"
    assert DIGEST.startswith(prefix)
    return re.compile(f"{prefix}({DIGEST[len(prefix):]})")


def for_reading(text: str) -> str:
    """``text`` as a person reads it in text output: inert (:func:`neutralise`) and with
    digests shortened (:func:`shorten_digests`)."""
    return shorten_digests(neutralise(text))


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 version"``, ``"2 versions"``: ``n`` and the word in the form its number needs
    (``many`` when adding an ``s`` is wrong: ``plural(n, "entry", "entries")``)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def exit_code_for(decision: Any, fail_on: str) -> int:
    """0 when the decision passes, 1 when its action reaches ``fail_on``, 3 when it failed
    closed (the engine could not decide). Raises ``ValueError`` for an unknown ``fail_on``.
    """
    if fail_on not in SEVERITY or fail_on == "allow":
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}")
    if decision.failed:
        return 3
    action = str(decision.action)
    # An action we do not know is treated as the most severe (fail closed).
    return 1 if SEVERITY.get(action, 3) >= SEVERITY[fail_on] else 0


def value_of(x: Any) -> str:
    return str(getattr(x, "value", x))


def decision_of(obj: Any) -> Any:
    return obj.decision if hasattr(obj, "decision") and hasattr(obj, "input") else obj


def missing_text(tier: str, message: str) -> str:
    # Policies may already phrase a missing item as "to reach <tier>: ..."; say it once.
    prefix = f"to reach {tier}: "
    return message[len(prefix):] if message.lower().startswith(prefix) else message
