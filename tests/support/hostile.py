"""Hostile values that regression tests of several subjects feed the code, and the checks that
they were handled: shown inert, refused without blocking.

Public API: :data:`HOSTILE`, :func:`assert_inert`, :data:`EDGE_TIMES`, :func:`refused_quickly`,
:func:`org_replacing_revocation`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["EDGE_TIMES", "HOSTILE", "assert_inert", "org_replacing_revocation", "refused_quickly"]

#: What an attacker would put into a field that ends up in a message: a GitHub workflow command
#: on a line of its own, ANSI escapes (clear screen, set the window title), C1 CSI, a Unicode
#: line separator and a right-to-left override.
HOSTILE = "x\n::error file=a::pwned\r\n::stop-commands::abc\x1b[2J\x1b]0;title\x07\x9b31m\u2028y\u202ez"

#: Times whose offset puts them outside the range of a UTC datetime.
EDGE_TIMES = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]


def assert_inert(text: str, *, fmt: str = "text") -> None:
    """No line an Actions runner would read as a command of the attacker's, and no terminal
    control characters. In ``github`` format every line is one of our own commands."""
    for line in text.rstrip("\n").split("\n"):
        if fmt == "github":
            assert line.startswith(("::error ", "::warning ", "::notice ")), line
        else:
            assert not line.lstrip().startswith("::"), line
    for bad in ("\x1b", "\x07", "\x9b", "\r", "\u2028", "\u202e"):
        assert bad not in text, repr(bad)


def refused_quickly(fn: Callable[[], Any], timeout: float = 5.0) -> BaseException:
    """Run ``fn`` in a thread; return what it raised. Fails if it blocks or succeeds."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # handed back to the test
            outcome.append(e)
        else:
            outcome.append(None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert outcome, f"still reading after {timeout}s"
    assert outcome[0] is not None, "a file that is not a regular file was read"
    return outcome[0]


def org_replacing_revocation(tmp_path: Path) -> Path:
    """An organization's policy directory with a module meant to add a rule; named like the
    default revocation module, it replaces that module (``REVOKED`` is gone)."""
    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    (org / "cortex" / "revocation.rego").write_text(
        "package cortex\nimport rego.v1\nacme_extra if { true }\n")
    return org
