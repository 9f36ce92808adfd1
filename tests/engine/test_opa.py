"""The OPA-server engine against a local server speaking OPA's Data API wire format.

The same policy set is served over HTTP and loaded into the embedded engine: decisions must be
identical, and every way the server can fail must end in a fail-closed block.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from cortex_trust.engine import EmbeddedEngine, OpaServerEngine, PolicyEngine, decide
from cortex_trust.errors import EngineError, PolicyError
from cortex_trust.policy import Action, PolicyInput, load_policy_set
from tests.engine.test_embedded import make_input
from tests.support.opa_wire_server import OpaWireServer
from tests.support.strategies import policy_inputs

FIX = Path(__file__).parent.parent / "fixtures"
SMALL = FIX / "policies_small"
ORG = FIX / "policies_org"


@pytest.fixture(scope="module")
def server() -> Iterator[OpaWireServer]:
    with OpaWireServer(load_policy_set([SMALL, ORG], defaults=False)) as s:
        yield s


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedEngine]:
    with EmbeddedEngine(load_policy_set([SMALL, ORG], defaults=False), isolate=False) as e:
        yield e


@pytest.fixture
def opa(server: OpaWireServer) -> Iterator[OpaServerEngine]:
    server.mode = "ok"
    with OpaServerEngine(server.url, policy_revision="bundle-7", timeout=1.0) as e:
        yield e


def test_all_is_pinned() -> None:
    import cortex_trust.engine._opa as m

    assert m.__all__ == ["OpaServerEngine"]


def test_speaks_the_data_api(server: OpaWireServer, opa: OpaServerEngine) -> None:
    assert isinstance(opa, PolicyEngine) and opa.name == "opa-server"
    server.requests.clear()
    pi = make_input()
    d = decide(opa, pi)
    assert not d.failed and d.policy_revision == "bundle-7"
    path, body = server.requests[-1]
    assert path == "/v1/data/cortex/decision?provenance=true&strict-builtin-errors=true"
    assert json.loads(body) == {"input": pi.to_dict()}


@pytest.mark.parametrize("kwargs", [
    {"revoked": True}, {"network": True}, {"valid": False}, {}, {"operation": "install"}])
def test_same_decisions_as_embedded(opa: OpaServerEngine, embedded: EmbeddedEngine,
                                    kwargs: dict[str, bool]) -> None:
    pi = make_input(**kwargs)  # type: ignore[arg-type]
    assert decide(opa, pi) .model_dump(exclude={"policy_revision"}) == \
        decide(embedded, pi).model_dump(exclude={"policy_revision"})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pi=policy_inputs())
def test_same_decisions_as_embedded_for_generated_inputs(opa: OpaServerEngine, embedded: EmbeddedEngine,
                                                         pi: PolicyInput) -> None:
    a, b = decide(opa, pi), decide(embedded, pi)
    assert a.model_dump(exclude={"policy_revision"}) == b.model_dump(exclude={"policy_revision"})


@pytest.mark.parametrize(("mode", "code", "needle"), [
    ("500", "ENGINE_ERROR", "HTTP 500"),
    ("no_result", "ENGINE_UNDEFINED", "undefined"),
    ("garbage", "ENGINE_ERROR", "not JSON"),
    ("array", "ENGINE_ERROR", "not a JSON object"),
])
def test_server_failures_block(server: OpaWireServer, opa: OpaServerEngine, mode: str, code: str,
                               needle: str) -> None:
    server.mode = mode
    d = decide(opa, make_input())
    assert d.failed and d.action is Action.BLOCK and d.codes == (code,)
    assert needle in d.reasons[0].message


def test_slow_server_times_out(server: OpaWireServer) -> None:
    server.mode, server.delay = "slow", 1.0
    with OpaServerEngine(server.url, timeout=0.2) as opa:
        d = decide(opa, make_input())
    server.mode = "ok"
    assert d.failed and d.codes == ("ENGINE_TIMEOUT",)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_blocks_with_advice() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with OpaServerEngine(url, timeout=0.5) as opa:
        with pytest.raises(EngineError) as e:
            opa.evaluate(make_input().to_json())
        assert f"is the OPA server running at {url}?" == e.value.advice
        d = decide(opa, make_input())
    assert d.failed and d.codes == ("ENGINE_ERROR",)


def test_other_decision_path(server: OpaWireServer) -> None:
    with OpaServerEngine(server.url, decision_path="/cortex/tier/") as opa:
        assert opa.evaluate(make_input().to_json()) == "experimental"
        assert opa.query("cortex", make_input().to_json())["tier"] == "experimental"


def test_unknown_rule_is_undefined(server: OpaWireServer) -> None:
    with OpaServerEngine(server.url, decision_path="cortex/nothing") as opa:
        assert decide(opa, make_input()).codes == ("ENGINE_UNDEFINED",)


@pytest.mark.parametrize(("url", "path"), [("ftp://x", "cortex/decision"),
                                           ("http://x", "cortex/../admin"),
                                           ("http://x", "")])
def test_bad_configuration_is_a_policy_error(url: str, path: str) -> None:
    with pytest.raises(PolicyError):
        OpaServerEngine(url, decision_path=path)


def test_result_false_is_not_undefined_but_invalid() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": False})

    with OpaServerEngine("http://opa.test", transport=httpx.MockTransport(handler)) as opa:
        assert opa.evaluate("{}") is False
        assert decide(opa, make_input()).codes == ("DECISION_INVALID",)


def test_headers_are_sent() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={})

    with OpaServerEngine("http://opa.test", headers={"Authorization": "Bearer t"},
                         transport=httpx.MockTransport(handler)) as opa:
        assert opa.evaluate("{}") is None
    assert seen == ["Bearer t"]


def test_wire_server_rejects_bad_requests(server: OpaWireServer) -> None:
    server.mode = "ok"
    r = httpx.post(f"{server.url}/v1/data/cortex/decision", content=b"{nope")
    assert r.status_code == 400 and r.json()["code"] == "invalid_parameter"
    assert httpx.get(f"{server.url}/v1/data/cortex/decision").status_code == 404
    assert httpx.post(f"{server.url}/v2/other", content=b"{}").status_code == 404


def test_builtin_error_blocks_over_http(server: OpaWireServer) -> None:
    from tests.engine.test_embedded import BAD

    with OpaWireServer(load_policy_set([SMALL, BAD / "builtin_error"], defaults=False)) as bad, \
            OpaServerEngine(bad.url) as opa:
        d = decide(opa, make_input())
        assert bad.requests[-1][0].endswith("?provenance=true&strict-builtin-errors=true")
    assert d.failed and d.codes == ("ENGINE_ERROR",) and "internal_error" in d.reasons[0].message


def test_strict_builtin_errors_can_be_turned_off() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    with OpaServerEngine("http://opa.test", transport=httpx.MockTransport(handler),
                         strict_builtin_errors=False) as opa:
        opa.evaluate("{}")
    assert seen == ["http://opa.test/v1/data/cortex/decision?provenance=true"]


@pytest.mark.parametrize(("provenance", "fixed", "revision"), [
    ({"bundles": {"cortex": {"revision": "v7"}}}, "", "v7"),
    ({"bundles": {"b": {"revision": "2"}, "a": {"revision": "1"}}}, "", "a=1,b=2"),
    ({"version": "1.20.2"}, "", ""),
    (None, "", ""),
    ({"bundles": {"cortex": {"revision": "v7"}}}, "pinned", "pinned"),
])
def test_decisions_record_the_revision_opa_names(provenance: Any, fixed: str, revision: str) -> None:
    from cortex_trust.engine import decide
    from cortex_trust.policy import PolicyInput

    good = json.loads((Path(__file__).parents[2] / "examples" / "inputs" / "community.json").read_text())
    with EmbeddedEngine(load_policy_set([], [])) as embedded:
        value = embedded.evaluate(PolicyInput.model_validate(good).to_json())
    value = json.loads(value) if isinstance(value, str) else value

    def handler(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {"result": value}
        if provenance is not None:
            body["provenance"] = provenance
        return httpx.Response(200, json=body)

    with OpaServerEngine("http://opa.test", policy_revision=fixed,
                         transport=httpx.MockTransport(handler)) as opa:
        decision = decide(opa, PolicyInput.model_validate(good))
    assert not decision.failed and decision.policy_revision == revision
