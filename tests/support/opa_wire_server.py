"""A small real HTTP server speaking OPA's REST Data API, for testing ``OpaServerEngine``.

No OPA binary can be installed here, so this server implements exactly the wire format the
client relies on, evaluating either with the project's regorus wrapper loaded with a
``PolicySet``, or (:meth:`OpaWireServer.from_bundle`) with the real OPA engine of the oracle
(``tests/support/opa_oracle.py``) loaded from an OPA bundle as OPA loads one (its modules, its
``data.json`` at the root of ``data``, its manifest's revision):

* ``POST /v1/data/<path>`` with ``{"input": ...}`` → 200 ``{"result": value}``, or 200 ``{}``
  when the rule is undefined;
* a body that is not JSON (or not an object) → 400 ``{"code": "invalid_parameter", ...}``;
* an evaluation error → 500 ``{"code": "internal_error", "message": ...}`` (OPA does this with
  ``?strict-builtin-errors=true``, which the client always sends; the request log lets tests
  check that);
* any other route or method → 404 ``{"code": "resource_not_found", ...}``;
* with ``?provenance=true``, the answer carries ``provenance.bundles.<name>.revision`` when the
  server was given a bundle (as OPA names the revisions of the bundles it loaded).

``mode`` switches in failure behaviours for tests: ``"ok"``, ``"500"``, ``"no_result"``,
``"garbage"``, ``"array"``, ``"slow"`` (sleeps ``delay`` seconds before answering).
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from cortex_trust.engine._regorus import Prepared
from cortex_trust.errors import EngineError
from cortex_trust.policy import PolicySet


class _OpaBackend:
    """The real OPA engine loaded with a bundle's modules and data; ``query`` as ``Prepared``'s."""

    def __init__(self, modules: list[tuple[str, str]], data: Any) -> None:
        from tests.support.opa_oracle import OpaOracle, TestPolicySet

        self._oracle = OpaOracle(TestPolicySet(modules=tuple(modules), data=data))

    def query(self, input_json: str, rule: str) -> Any:
        from opa_bindings import OpaError, OpaUndefinedError

        try:
            return self._oracle._engine.eval_document(rule.removeprefix("data."), json.loads(input_json))
        except OpaUndefinedError:
            return None
        except OpaError as e:
            raise EngineError(f"OPA failed: {e}") from None


class OpaWireServer:
    """Serve ``policy_set`` on 127.0.0.1 (a free port) in a background thread."""

    @classmethod
    def from_bundle(cls, bundle: Path, *, name: str = "cortex") -> OpaWireServer:
        """A server evaluating with the real OPA engine loaded from the OPA bundle ``bundle``
        (a ``.tar.gz``), naming it ``name`` with its manifest's revision in provenance."""
        modules: list[tuple[str, str]] = []
        data: Any = {}
        manifest: Any = {}
        with tarfile.open(bundle, "r:gz") as tar:
            for member in tar.getmembers():
                content = tar.extractfile(member).read()  # type: ignore[union-attr]
                path = member.name.lstrip("/")
                if path.endswith(".rego"):
                    modules.append((path, content.decode()))
                elif path == "data.json":
                    data = json.loads(content)
                elif path == ".manifest":
                    manifest = json.loads(content)
        server = cls(None)
        server._backend = lambda: _OpaBackend(sorted(modules), data)
        server.bundles = {name: {"revision": manifest.get("revision", "")}}
        return server

    def __init__(self, policy_set: PolicySet | None) -> None:
        self._policy_set = policy_set
        self._prepared: Any = None  # built in the serving thread (regorus engines are bound to
        # the thread that built them)
        self._backend: Any = None
        #: Named bundles and their revisions, reported as provenance when asked.
        self.bundles: dict[str, dict[str, str]] = {}
        self.mode = "ok"
        self.delay = 0.0
        self.requests: list[tuple[str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, doc: Any) -> None:
                self._send(status, json.dumps(doc).encode())

            def do_GET(self) -> None:
                self._json(404, {"code": "resource_not_found", "message": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                path = self.path.partition("?")[0]
                server.requests.append((self.path, body))
                if not path.startswith("/v1/data/"):
                    self._json(404, {"code": "resource_not_found", "message": "not found"})
                    return
                if server.mode == "slow":
                    time.sleep(server.delay)
                if server.mode == "500":
                    self._json(500, {"code": "internal_error", "message": "boom"})
                    return
                if server.mode == "garbage":
                    self._send(200, b"<html>not json</html>")
                    return
                if server.mode == "array":
                    self._send(200, b"[1, 2]")
                    return
                try:
                    doc = json.loads(body)
                    if not isinstance(doc, dict):
                        raise ValueError("body must be an object")
                except ValueError as e:
                    self._json(400, {"code": "invalid_parameter", "message": f"body: {e}"})
                    return
                rule = "data." + path[len("/v1/data/"):].strip("/").replace("/", ".")
                input_json = json.dumps(doc.get("input"))
                try:
                    if server._prepared is None and server._backend is not None:
                        server._prepared = server._backend()
                    elif server._prepared is None:
                        ps = server._policy_set
                        assert ps is not None
                        server._prepared = Prepared([(m.name, m.text) for m in ps.modules],
                                                    ps.data_json())
                    value = server._prepared.query(input_json, rule)
                except EngineError as e:
                    self._json(500, {"code": "internal_error", "message": e.message})
                    return
                answer: dict[str, Any] = {}
                if "provenance=true" in self.path.partition("?")[2].split("&") and server.bundles:
                    answer["provenance"] = {"version": "1.20.2", "bundles": server.bundles}
                if value is not None and server.mode != "no_result":
                    answer["result"] = value
                self._json(200, answer)

        # One serving thread: requests are answered one at a time, by one regorus engine.
        self._httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._prepared = None  # dropped on the thread that built it

    def __enter__(self) -> OpaWireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._thread.join(timeout=5)
        self._httpd.server_close()
