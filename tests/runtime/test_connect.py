"""``cortex_trust.runtime.connect`` and a plugin call against a fake Docker API on loopback (no
container engine).

The engine's ``/_ping`` answer names its API version and shows a Podman engine; ``connect`` takes
both from it. ``/version`` (which Podman answers by running its runtime's and conmon's version
commands) is only asked when the headers do not say which engine it is, and an engine that does
not answer is reported as unavailable (exit 3). A plugin call is plain HTTP to the address the
engine reports, checked live first, and loads no CA bundle.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from cortex_trust.errors import UnavailableError
from cortex_trust.runtime import connect
from tests.support.served_registry import free_port

PLUGIN_ID = "c0ffee"
PODMAN = {"Api-Version": "1.41", "Libpod-Api-Version": "4.3.1", "Server": "Libpod/4.3.1 (linux)"}
DOCKER = {"Api-Version": "1.43", "Server": "Docker/24.0.7 (linux)"}


class _Engine(http.server.BaseHTTPRequestHandler):
    headers_out: ClassVar[dict[str, str]] = {}
    ping_status: ClassVar[int] = 200
    seen: ClassVar[list[str]] = []
    container: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        if self.path.endswith("/_ping"):
            status, body = type(self).ping_status, b"OK"
        elif self.path.endswith(f"/containers/{PLUGIN_ID}/json"):
            status, body = 200, json.dumps(type(self).container).encode()
        elif self.path.endswith("/version"):
            status, body = 200, json.dumps({"ApiVersion": "1.43", "Components": [
                {"Name": "Engine", "Version": "24.0.7"}]}).encode()
        else:
            status, body = 404, b"{}"
        self.send_response(status)
        for k, v in type(self).headers_out.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def engine() -> Iterator[type[_Engine]]:
    handler = type("Engine", (_Engine,), {"headers_out": {}, "ping_status": 200, "seen": [], "container": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"tcp://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def test_podman_is_known_from_the_ping_alone(engine: Any) -> None:
    engine.headers_out = PODMAN
    runtime = connect(engine.url)
    assert runtime.client.api.api_version == "1.41"
    assert runtime._is_podman() is True
    assert engine.seen == ["/_ping"]


def test_docker_speaks_its_api_version_and_is_asked_which_engine_it_is(engine: Any) -> None:
    engine.headers_out = DOCKER
    runtime = connect(engine.url)
    assert runtime.client.api.api_version == "1.43"
    assert engine.seen == ["/_ping"]
    assert runtime._is_podman() is False
    assert runtime._is_podman() is False
    assert engine.seen == ["/_ping", "/v1.43/version"]


def test_an_engine_that_answers_the_ping_with_an_error_is_unavailable(engine: Any) -> None:
    engine.headers_out, engine.ping_status = PODMAN, 500
    with pytest.raises(UnavailableError, match="does not answer") as e:
        connect(engine.url)
    assert e.value.exit_code == 3 and "scripts/podman.sh" in (e.value.advice or "")


def test_no_engine_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="does not answer") as e:
        connect(f"tcp://127.0.0.1:{free_port()}", timeout=5)
    assert e.value.exit_code == 3
    with pytest.raises(UnavailableError, match="does not answer"):
        connect("unix:///nonexistent/docker.sock", timeout=5)


class _Plugin(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_a_plugin_call_is_plain_http_and_loads_no_ca_bundle(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from cortex_trust.runtime import RunningPlugin
    from cortex_trust.runtime._sandbox import _SECCOMP_PATH

    plugin = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Plugin)
    threading.Thread(target=plugin.serve_forever, daemon=True).start()
    try:
        engine.headers_out = PODMAN
        engine.container = {
            "Id": PLUGIN_ID, "Name": "cortex-hello", "State": {"Status": "running"},
            "Config": {"Labels": {}}, "HostConfig": {"SecurityOpt": [f"seccomp={_SECCOMP_PATH}"]},
            "NetworkSettings": {"Networks": {"cortex-sandbox": {"IPAddress": "127.0.0.1"}}}}
        runtime = connect(engine.url)

        def no_bundle(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a CA bundle was loaded for a plain-HTTP plugin call")

        monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", no_bundle)
        running = RunningPlugin(name="cortex-hello", id=PLUGIN_ID, address="127.0.0.1",
                                port=plugin.server_address[1], digest="", network="cortex-sandbox")
        resp = runtime.call(running, "/health")
        assert (resp.status, resp.json()) == (200, {"status": "ok"})
        assert f"/v1.41/containers/{PLUGIN_ID}/json" in engine.seen  # checked live first
    finally:
        plugin.shutdown()
        plugin.server_close()
