"""``cortex registry serve --workers N``: N API processes built from one configuration.

uvicorn starts the API processes (a fresh interpreter each, sharing the listening socket) and
builds each one's app with :func:`build_api_process`, which runs the same ``serve`` command with the
parameters the supervising process was given (:data:`SERVE_ENV`), so every process has the same
configuration; a process whose policy revision is not the supervisor's refuses to start. The API
processes run no background work (uvicorn's lifespan is off there): the supervising process runs
its app's lifespan (scans, the governance poll) once, without serving requests.

Every write is one transaction holding the audit lock (:mod:`registry._store._tx`: ``SELECT ...
FOR UPDATE`` on ``audit_head``, and ``BEGIN IMMEDIATE`` on SQLite), so writers in several
processes are serialised by the database and the audit chain stays one chain.

Only typer and the standard library are imported at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SERVE_ENV", "build_api_process", "building_api_process", "serve_processes"]

#: The environment variable that hands the supervisor's ``serve`` parameters to its API processes.
SERVE_ENV = "CORTEX_REGISTRY_SERVE_PROCESS"
#: Set while :func:`build_api_process` runs ``serve``: the app is handed over here, not served.
_building: list[Any] | None = None


def building_api_process(application: Any) -> bool:
    """True (and ``application`` handed over) when ``serve`` runs to build an API process's app."""
    if _building is None:
        return False
    _building.append(application)
    return True


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return {"path": str(value)}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return Path(value["path"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def build_api_process(serve: Callable[..., None]) -> Any:
    """The app of one API process of ``serve --workers N``, built by the command ``serve``."""
    global _building
    spec = json.loads(os.environ[SERVE_ENV])
    _building = []
    said = io.StringIO()  # the supervisor has said it all already
    try:
        with contextlib.redirect_stderr(said):
            serve(**{k: _decode(v) for k, v in spec["params"].items()})
    except BaseException:
        sys.stderr.write(said.getvalue())
        raise
    finally:
        built, _building = _building, None
    application = built[0]
    revision = application.state.evaluator.revision
    if revision != spec["revision"]:
        application.state.evaluator.close()
        raise SystemExit(f"error: this API process loaded policy revision {revision}, the registry serves "
                         f"{spec['revision']}: the policy files changed; restart `cortex registry serve`")
    return application


def serve_processes(application: Any, params: dict[str, Any], *, workers: int, host: str, port: int) -> None:
    """Serve on ``workers`` API processes until interrupted; ``application``'s background work
    (its lifespan) runs in this process meanwhile. ``params`` are the ``serve`` command's."""
    import uvicorn

    os.environ[SERVE_ENV] = json.dumps({"params": {k: _encode(v) for k, v in params.items()},
                                        "revision": application.state.evaluator.revision})
    stop = threading.Event()

    async def background() -> None:
        async with application.router.lifespan_context(application):
            await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=asyncio.run, args=(background(),), name="serve-background", daemon=True)
    thread.start()
    try:
        uvicorn.run("cli.registry:_api_process_app", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", access_log=False, lifespan="off")
    finally:
        stop.set()
        thread.join(30)
