"""`cortex registry serve` as a real process, for the tests that need one, and a registry app
served on loopback inside the test process.

One helper for every test that starts the registry server: a free loopback port, the console
script of this interpreter, the wait for ``/healthz``, the server's output kept in a log file,
and the process stopped (terminate, then kill) whatever the test did. :func:`serve_app` serves
an app the test built (uvicorn on a thread) for a client in another process, and stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["CORTEX", "ServedRegistry", "free_port", "serve_app", "serve_registry"]

#: The ``cortex`` console script installed beside this interpreter.
CORTEX = str(Path(sys.executable).parent / "cortex")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedRegistry:
    """A running ``cortex registry serve``: its URL, database URL, log file and process."""

    url: str
    db: str
    log: Path
    proc: subprocess.Popen[bytes]


@contextmanager
def serve_registry(directory: Path, *args: str, env: Mapping[str, str] | None = None,
                   db: str | None = None, deadline_s: float = 60) -> Iterator[ServedRegistry]:
    """Start ``cortex registry serve --db ... --host 127.0.0.1 --port ... ARGS`` (SQLite in
    ``directory`` unless ``db`` is given) and wait until ``/healthz`` answers 200.

    Raises ``AssertionError`` with the server's output when it exits or does not answer in
    ``deadline_s`` seconds.
    """
    db = db or f"sqlite:///{directory / 'served.db'}"
    port = free_port()
    log = directory / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CORTEX, "registry", "serve", "--db", db, "--host", "127.0.0.1", "--port", str(port),
             *args], stdout=out, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else os.environ.copy())
    served = ServedRegistry(f"http://127.0.0.1:{port}", db, log, proc)
    try:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                if httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start: " + log.read_text())
            time.sleep(0.2)
        yield served
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port of this process; yields its URL."""
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
