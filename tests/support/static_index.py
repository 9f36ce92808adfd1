"""A signed index on disk and a static HTTP server on loopback, for the index tests.

:func:`plugin_doc` is a plugin document as the registry renders it; :func:`new_index` builds an
index with the repository's own code (:class:`registry._index.IndexRepository`);
:class:`StaticServer` serves a directory as any static server or CDN would (``http.server``), and
can be told to misbehave on some paths (the "evil mirror"): serve other bytes, trickle them, or
answer an error.
"""

from __future__ import annotations

import json
import shutil
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

__all__ = ["StaticServer", "copy_tree", "new_index", "plugin_doc", "serve_dir"]


def plugin_doc(namespace: str, name: str, *, description: str = "A plugin.",
               latest: str = "1.0.0") -> bytes:
    """A plugin document (``GET /api/v1/plugins/NS/NAME``) in the registry's canonical form."""
    doc = {"namespace": namespace, "name": name, "full_name": f"{namespace}/{name}",
           "description": description, "latest_version": latest, "tier": "experimental",
           "action": "warn", "capabilities": ["greet"], "updated_at": "2026-01-01T00:00:00Z",
           "versions": 1}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def new_index(directory: Path, *, bins: int = 16, now: datetime | None = None,
              documents: dict[str, bytes] | None = None) -> Any:
    """A fresh index in ``directory/www`` (keys in ``directory/keys``) holding ``documents``."""
    from registry._index import IndexRepository, KeyRing

    repo = IndexRepository(directory / "www", KeyRing(directory / "keys"))
    now = now or datetime.now(UTC)
    repo.create(bins=bins, now=now)
    if documents:
        repo.update(documents, now=now)
    return repo


@dataclass
class StaticServer:
    """A static file server on 127.0.0.1 over ``root``. ``override`` maps a URL path to other
    bytes to serve; ``trickle`` paths are sent one byte every ``trickle_delay`` seconds;
    ``status`` maps a path to an HTTP error status."""

    root: Path
    override: dict[str, bytes] = field(default_factory=dict)
    trickle: set[str] = field(default_factory=set)
    trickle_delay: float = 0.2
    status: dict[str, int] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""

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
                if body is None and path in server.trickle:
                    local = server.root / path.lstrip("/")
                    body = local.read_bytes() if local.is_file() else None
                if body is None:
                    super().do_GET()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.trickle:
                    for b in body:
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        time.sleep(server.trickle_delay)
                else:
                    self.wfile.write(body)

        return Handler(*args, directory=str(self.root), **kw)


@contextmanager
def serve_dir(root: Path, **kw: Any) -> Iterator[StaticServer]:
    """Serve ``root`` on a free loopback port until the block ends."""
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
