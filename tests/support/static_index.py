"""A signed index on disk and a static HTTP server on loopback, for the index tests.

:func:`plugin_doc` is a plugin document as the registry renders it; :func:`new_index` builds an
index with the repository's own code (:class:`registry._index.IndexRepository`);
:class:`StaticServer` serves a directory as any static server or CDN would (``http.server``), and
can be told to misbehave on some paths (the "evil mirror"): serve other bytes, trickle them, or
answer an error; with ``upstream`` it stands in front of another server (the "evil mirror" in
front of a real one), relaying every path it was not told to change.

:func:`nginx` (a session fixture) is Debian's nginx started by ``scripts/nginx.sh`` over a
world-readable directory; :func:`www` gives each test a fresh directory under it, served at
:meth:`Nginx.url_for`. If nginx cannot be started the fixture fails, never skips.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = ["Nginx", "StaticServer", "copy_tree", "new_index", "nginx", "plugin_doc", "serve_dir",
           "start_nginx", "stop_nginx", "www"]

ROOT = Path(__file__).resolve().parents[2]
NGINX_SCRIPT = ROOT / "scripts" / "nginx.sh"


def plugin_doc(namespace: str, name: str, *, description: str = "A plugin.",
               latest: str = "1.0.0") -> bytes:
    """A plugin document (``GET /api/v1/plugins/NS/NAME``) in the registry's canonical form."""
    doc = {"namespace": namespace, "name": name, "full_name": f"{namespace}/{name}",
           "description": description, "latest_version": latest, "tier": "experimental",
           "action": "warn", "capabilities": ["greet"], "updated_at": "2026-01-01T00:00:00Z",
           "versions": 1}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def new_index(directory: Path, *, bins: int = 16, now: datetime | None = None,
              documents: dict[str, bytes] | None = None, out: Path | None = None) -> Any:
    """A fresh index in ``out`` (default ``directory/www``; keys in ``directory/keys``) holding
    ``documents``."""
    from registry._index import IndexRepository, KeyRing

    repo = IndexRepository(out or directory / "www", KeyRing(directory / "keys"))
    now = now or datetime.now(UTC)
    repo.create(bins=bins, now=now)
    if documents:
        repo.update(documents, now=now)
    return repo


@dataclass
class StaticServer:
    """A static file server on 127.0.0.1 over ``root``, or in front of the server at
    ``upstream`` (a base URL). ``override`` maps a URL path to other bytes to serve; ``trickle``
    paths are sent one byte every ``trickle_delay`` seconds; ``status`` maps a path to an HTTP
    error status. ``requests`` records every path asked for."""

    root: Path | None
    override: dict[str, bytes] = field(default_factory=dict)
    trickle: set[str] = field(default_factory=set)
    trickle_delay: float = 0.2
    status: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""
    upstream: str | None = None

    def fetch(self, path: str) -> tuple[int, bytes]:
        """The status and body of ``path`` at ``upstream``."""
        assert self.upstream is not None
        base = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(base.netloc, timeout=30)
        try:
            conn.request("GET", base.path.rstrip("/") + path)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def handler(self, *args: Any, **kw: Any) -> SimpleHTTPRequestHandler:
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                if path in server.status:
                    self.send_error(server.status[path])
                    return
                body = server.override.get(path)
                status = 200
                if body is None and path in server.trickle and server.root is not None:
                    local = server.root / path.lstrip("/")
                    body = local.read_bytes() if local.is_file() else None
                if body is None and server.upstream is not None:
                    status, body = server.fetch(path)
                if body is None:
                    super().do_GET()
                    return
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.trickle:
                    for b in body:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(server.trickle_delay)
                else:
                    self.wfile.write(body)

        return Handler(*args, directory=str(self.root or "/nonexistent"), **kw)


@contextmanager
def serve_dir(root: Path | None, **kw: Any) -> Iterator[StaticServer]:
    """Serve ``root`` (or relay ``upstream=URL``) on a free loopback port until the block
    ends."""
    static = StaticServer(root, **kw)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(StaticServer.handler, static))
    httpd.daemon_threads = True
    static.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield static
    finally:
        httpd.shutdown()
        httpd.server_close()


def copy_tree(src: Path, dest: Path) -> Path:
    """A copy of an index tree (a mirror, to be tampered with)."""
    shutil.copytree(src, dest)
    return dest


@dataclass(frozen=True)
class Nginx:
    """An nginx instance serving ``root`` at ``url``."""

    root: Path
    url: str

    def url_for(self, directory: Path) -> str:
        """The URL at which ``directory`` (under :attr:`root`) is served."""
        return f"{self.url}/{directory.relative_to(self.root).as_posix()}"


def start_nginx(root: Path) -> str:
    """Start (idempotently) nginx over ``root`` with scripts/nginx.sh; its base URL. Raises
    :class:`RuntimeError` with the script's output when it could not."""
    proc = subprocess.run([str(NGINX_SCRIPT), str(root)], capture_output=True, text=True,
                          timeout=900, check=False)
    url = proc.stdout.strip()
    if proc.returncode != 0 or not url.startswith("http://127.0.0.1:"):
        raise RuntimeError(f"scripts/nginx.sh {root} failed ({proc.returncode}):\n{proc.stdout}\n"
                           f"{proc.stderr}")
    return url


def stop_nginx(root: Path) -> None:
    """Stop the nginx serving ``root``."""
    subprocess.run([str(NGINX_SCRIPT), "stop", str(root)], capture_output=True, timeout=60,
                   check=False)


@pytest.fixture(scope="session")
def nginx() -> Iterator[Nginx]:
    """Debian's nginx serving a fresh world-readable directory (its workers run as nobody)."""
    root = Path(tempfile.mkdtemp(prefix="cortex-www-"))
    root.chmod(0o755)
    try:
        try:
            url = start_nginx(root)
        except RuntimeError as e:
            pytest.fail(str(e))
        yield Nginx(root, url)
    finally:
        stop_nginx(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def www(nginx: Nginx) -> Path:
    """A fresh directory served by :func:`nginx`."""
    path = Path(tempfile.mkdtemp(dir=nginx.root))
    path.chmod(0o755)
    return path
