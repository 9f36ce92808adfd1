"""Helpers the registry tests share: Alembic steps on a test database, the CLI run in this
process, and an evaluator on the shipped policies.

Fixtures stay in ``conftest.py``; these are plain functions and context managers that tests
call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["NO_PROMOTION", "migrator", "run_cli", "shipped_policy_evaluator"]

#: Policy data that switches the promotion requirement of Community off, for tests about other
#: evidence (governance.promotion.operations: []).
NO_PROMOTION = Path(__file__).resolve().parent.parent / "fixtures" / "policy_data" / "no_promotion.yaml"


def migrator(engine: Any) -> Callable[[str, str], None]:
    """``to(revision, step)``: run Alembic's ``step`` (``"upgrade"`` or ``"downgrade"``) to
    ``revision`` on ``engine``, in one transaction, with the registry's migrations."""
    from alembic import command
    from alembic.config import Config

    from registry._db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def to(revision: str, step: str) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, step)(cfg, revision)

    return to


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            argv: Sequence[str], *, token: str | None) -> tuple[int, str, str]:
    """Run ``cortex ARGV`` in this process through :func:`cli.main.main`, the console script's
    entry point (its error rendering and exit codes included), with ``token`` as
    ``CORTEX_REGISTRY_TOKEN`` (unset for None). Returns the exit code, stdout and stderr."""
    from cli.main import main

    monkeypatch.setattr(sys, "argv", ["cortex", *argv])
    if token is None:
        monkeypatch.delenv("CORTEX_REGISTRY_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CORTEX_REGISTRY_TOKEN", token)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    code = exit_.value.code
    return (code if isinstance(code, int) else 1), out.out, out.err


@contextmanager
def shipped_policy_evaluator(data: Sequence[Path] = ()) -> Iterator[Any]:
    """A :class:`~registry._reevaluate.ThreadEvaluator` on the shipped policies and data (with
    ``data`` files over it), as ``cortex registry serve`` loads them; closed at the end."""
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set
    from registry._reevaluate import ThreadEvaluator

    policy_set = load_policy_set([], list(data))
    evaluator = ThreadEvaluator(lambda: EmbeddedEngine(policy_set))
    try:
        yield evaluator
    finally:
        evaluator.close()
