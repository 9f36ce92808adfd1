"""A hostile registry cannot drive the terminal through the CLI's text output.

The registry here is a real one (tests/support/federation.py) behind a proxy that rewrites its
answers the way a compromised or malicious registry could: escape sequences, carriage returns,
line breaks and bidirectional overrides in descriptions, image references, revocation reasons
and error messages, and versions it says are active although they are revoked. ``cortex plugin
install`` and ``search`` must show each such character as a visible escape and never print it
raw; an image reference outside the grammar is refused outright.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.federation import OCI_HOST, Federation

#: An erase-screen and a colour sequence, a window-title OSC ended by BEL, a carriage return and
#: a fake next line, a right-to-left override and a one-byte C1 CSI.
HOSTILE = "pwn\x1b[2J\x1b[31mRED\x1b]0;title\x07\r\nerror: all good\u202edecoy\x9b31m"
RAW = ("\x1b", "\x07", "\r", "\u202e", "\x9b")


def _rewrite(path: str, doc: Any) -> Any:
    """What the hostile registry says instead of what the real one said."""
    if path == "/api/v1/plugins":
        for item in doc["items"]:
            item["description"] = HOSTILE
    elif path == "/api/v1/revocations":
        for item in doc["items"]:
            item["reason"] = HOSTILE
    elif path.startswith("/api/v1/plugins/") and path.endswith("/versions"):
        for item in doc["items"]:
            item["state"] = "active"
            item["image"] = _hostile_image(item)
    elif path.startswith("/api/v1/plugins/") and "/versions/" in path:
        doc.update(state="active", revocation=None, image=_hostile_image(doc))
    return doc


def _hostile_image(doc: dict[str, Any]) -> str:
    # Still "pinned" to the version's digest, but outside the image grammar (only for `hello`:
    # the others keep their image so that their other hostile text reaches the output).
    if doc["name"] != "hello":
        return str(doc["image"])
    return f"{OCI_HOST}/{doc['namespace']}/{doc['name']}\x1b[31m{HOSTILE}@{doc['digest']}"


@pytest.fixture
def hostile(federation: Federation) -> Iterator[str]:
    upstream = federation.public.url

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/api/v1/plugins/tools/missing"):
                # A refusal whose message and fix the CLI shows as the registry wrote them.
                self._send(403, {"error": {"code": "FORBIDDEN", "message": HOSTILE,
                                           "fix": HOSTILE}})
                return
            r = httpx.get(upstream + self.path)
            if path.endswith("/bundle") or r.status_code != 200:
                self._send(r.status_code, r.content)
                return
            self._send(200, _rewrite(path, r.json()))

        def _send(self, status: int, body: Any) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from cortex_trust.install import CortexConfig, save_config

    save_config(federation.config_path,
                CortexConfig(registry=f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        yield server.server_address[0]
    finally:
        server.shutdown()
        server.server_close()


def cortex(fed: Federation, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=fed.env(), catch_exceptions=False)


def assert_inert(output: str) -> None:
    """Nothing a terminal acts on is printed raw, and the hostile text was printed (escaped)."""
    for ch in RAW:
        assert ch not in output, (ch, output)
    assert "\\x1b[2J" in output and "\\u202e" in output, output


def test_install_info_and_search_show_a_hostile_registrys_text_inert(
        federation: Federation, hostile: str) -> None:
    fed = federation
    fed.public.publish(fed.sigstore, "tools", "hello", "1.0.0")
    fed.public.publish(fed.sigstore, "tools", "gone", "1.0.0")
    fed.public.revoke("tools", "gone", "1.0.0", reason="compromised")
    root = ["--trusted-root", str(fed.sigstore.trusted_root_path)]

    # An image reference outside the grammar is refused (never recorded, never handed to an
    # engine), and the refusal shows it inert.
    r = cortex(fed, "plugin", "install", "tools/hello@1.0.0", "--yes", *root)
    assert r.exit_code == 2, r.output
    assert "image reference" in r.stderr and "not valid" in r.stderr
    assert_inert(r.stdout + r.stderr)
    r = cortex(fed, "plugin", "info", "tools/hello")
    assert r.exit_code == 2 and "not installed" in r.stderr, r.output

    # Said to be active, revoked in the feed: refused, with the feed's reason shown inert.
    r = cortex(fed, "plugin", "install", "tools/gone@1.0.0", "--yes", *root)
    assert r.exit_code == 1, r.output
    assert "REVOKED" in r.stdout and "REVOKED" in r.stderr
    assert_inert(r.stdout)
    assert_inert(r.stderr)

    r = cortex(fed, "plugin", "search", "hello", "--source", "registry")
    assert r.exit_code == 0, r.output
    assert "tools/hello" in r.stdout
    assert_inert(r.stdout)

    r = cortex(fed, "plugin", "install", "tools/missing", "--yes", *root)
    assert r.exit_code == 2, r.output
    assert_inert(r.stderr)
    assert not any(line.startswith("error: all good") for line in r.stderr.splitlines())


def test_colour_on_a_terminal_never_lets_a_hostile_registry_drive_it(
        federation: Federation, hostile: str) -> None:
    """With colour forced on, cortex's own escape sequences are there, and the registry's are
    still shown as escapes: decoration is added only around cortex's own labels and cells."""
    fed = federation
    fed.public.publish(fed.sigstore, "tools", "hello", "1.0.0")
    fed.public.publish(fed.sigstore, "tools", "gone", "1.0.0")
    fed.public.revoke("tools", "gone", "1.0.0", reason="compromised")
    root = ["--trusted-root", str(fed.sigstore.trusted_root_path)]
    for args, code in ((("plugin", "search", "hello", "--source", "registry"), 0),
                       (("plugin", "install", "tools/gone@1.0.0", "--yes", *root), 1),
                       (("plugin", "install", "tools/missing", "--yes", *root), 2)):
        r = CliRunner().invoke(app, list(args), env=fed.env(FORCE_COLOR="1"),
                               catch_exceptions=False)
        assert r.exit_code == code, r.output
        out = r.stdout + r.stderr
        assert "\x1b[" in out  # cortex's colour is on ...
        for raw in ("\x1b[2J", "\x1b[31mRED", "\x1b]0;", "\x07", "\r", "\u202e", "\x9b"):
            assert raw not in out, (raw, out)  # ... the registry's sequences never are
        assert "\\x1b[2J" in out and "\\u202e" in out, out
