"""A policy engine that asks an OPA server, over OPA's REST Data API.

``POST {url}/v1/data/{decision_path}?strict-builtin-errors=true`` with ``{"input": ...}``.
Strict built-in errors matter: by default OPA turns a built-in error (``to_number("x")``) into an
undefined expression, so a ``deny`` entry could silently vanish (an allow); in strict mode OPA
answers an error, as the embedded engine does, and the decision blocks. OPA answers HTTP 200 with
``{"result": value}`` when the rule is defined and HTTP 200 **without** ``result`` when it is
undefined: that is ``None`` here, which :func:`~cortex_trust.engine.decide` turns into a block.
Each query asks for OPA's provenance (``?provenance=true``): the revision of the bundle (or
bundles) the server decided with becomes :attr:`OpaServerEngine.revision`, so decisions record
the policy revision that made them.
Every other outcome (a non-200 status, a body that is not a JSON object, a refused connection, a
timeout) raises :class:`~cortex_trust.errors.EngineError`; nothing an OPA server says is read as
an allow unless it is a complete, valid decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from .._json import load_json
from ..errors import EngineError, EngineTimeout, PolicyError
from ._decide import PolicyEngine

__all__ = ["OpaServerEngine"]

_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


class OpaServerEngine(PolicyEngine):
    """``PolicyEngine`` backed by an OPA server at ``url`` (e.g. ``http://127.0.0.1:8181``).

    ``policy_revision``, when given, is what decisions record as their revision; otherwise each
    answer's provenance names it: the revision of the server's one bundle, or
    ``name=revision`` of each bundle joined by ``,`` (empty when the server loaded no bundle). ``timeout`` bounds each
    request (connect, read, write) in seconds. ``transport`` lets tests plug in an httpx
    transport. ``strict_builtin_errors`` (default on; see above) should only be turned off for a
    server that rejects the parameter. Raises :class:`PolicyError` for a malformed URL or
    decision path.
    """

    name = "opa-server"

    def __init__(self, url: str, *, policy_revision: str = "", decision_path: str = "cortex/decision",
                 timeout: float = 2.0, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 strict_builtin_errors: bool = True) -> None:
        if not url.startswith(("http://", "https://")):
            raise PolicyError(f"the OPA server URL {url!r} is not an http(s) URL",
                              advice="pass e.g. --opa-url http://127.0.0.1:8181")
        path = decision_path.strip("/")
        if not _PATH.match(path):
            raise PolicyError(f"the decision path {decision_path!r} is not a Rego rule path",
                              advice="write it like cortex/decision")
        self.url = url.rstrip("/")
        self.decision_path = path
        self.revision = policy_revision
        self.timeout = timeout
        self._fixed_revision = bool(policy_revision)
        self._params = {"provenance": "true"}
        if strict_builtin_errors:
            self._params["strict-builtin-errors"] = "true"
        self._client = httpx.Client(timeout=timeout, headers=dict(headers or {}),
                                    transport=transport, follow_redirects=False)

    def evaluate(self, input_json: str) -> Any:
        """The value of the decision rule for ``input_json``; ``None`` when undefined.

        Raises :class:`EngineError` (with advice) when the server cannot be reached, is too
        slow, or answers anything but HTTP 200 with a JSON object.
        """
        return self.query(self.decision_path, input_json)

    def query(self, path: str, input_json: str) -> Any:
        """The value of ``data/<path>`` for ``input_json`` (``None`` when undefined)."""
        endpoint = f"{self.url}/v1/data/{path.strip('/')}"
        # The input text is embedded as is: it is already JSON, and re-encoding could change it.
        body = b'{"input":' + input_json.encode("utf-8") + b"}"
        try:
            resp = self._client.post(endpoint, content=body, params=self._params,
                                     headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            raise EngineTimeout(f"the OPA server at {self.url} timed out after {self.timeout:g}s",
                                advice="check the server's load, or raise the timeout") from None
        except httpx.HTTPError as e:
            raise EngineError(f"cannot reach the OPA server at {self.url}: {type(e).__name__}: {e}",
                              advice=f"is the OPA server running at {self.url}?") from None
        if resp.status_code != 200:
            detail = _opa_message(resp)
            raise EngineError(
                f"the OPA server answered HTTP {resp.status_code} for {endpoint}{detail}",
                advice="check the server's logs and that it has the cortex policies loaded")
        try:
            doc = load_json(resp.content)
        except ValueError:  # not JSON, not text, or beyond the bounds of load_json
            raise EngineError(f"the OPA server at {self.url} answered a body that is not JSON",
                              advice=f"is {self.url} really an OPA server?") from None
        if not isinstance(doc, dict):
            raise EngineError(f"the OPA server at {self.url} answered {type(doc).__name__}, "
                              "not a JSON object", advice=f"is {self.url} really an OPA server?")
        if not self._fixed_revision:
            self.revision = _bundle_revision(doc.get("provenance"))
        if "result" not in doc:
            return None  # undefined: decide() blocks
        return doc["result"]

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def _bundle_revision(provenance: Any) -> str:
    """The revision an answer's provenance names (see :class:`OpaServerEngine`), cut to 256
    characters; empty when there is none."""
    bundles = provenance.get("bundles") if isinstance(provenance, dict) else None
    if not isinstance(bundles, dict):
        return ""
    revisions = {str(name): str(b.get("revision", "")) for name, b in bundles.items() if isinstance(b, dict)}
    if len(revisions) == 1:
        return next(iter(revisions.values()))[:256]
    return ",".join(f"{n}={r}" for n, r in sorted(revisions.items()))[:256]


def _opa_message(resp: httpx.Response) -> str:
    try:
        doc = load_json(resp.content)
    except ValueError:
        return ""
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        code = doc.get("code")
        return f": {code}: {doc['message'][:300]}" if isinstance(code, str) else f": {doc['message'][:300]}"
    return ""
