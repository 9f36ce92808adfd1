"""Helpers the registry tests share: Alembic steps on a test database, an app served on loopback
for the CLI, and an evaluator on the shipped policies.

Fixtures stay in ``conftest.py``; these are plain functions and context managers that tests
call.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["migrator", "serve_app", "shipped_policy_evaluator"]


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


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a daemon thread (lifespan off);
    yields its base URL and stops the server at the end."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


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
