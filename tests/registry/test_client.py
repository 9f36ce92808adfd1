"""The typed registry client translates every failure at its boundary."""

from __future__ import annotations

import json

import httpx
import pytest

from cortex_trust.errors import InputError, RegistryUnavailable
from cortex_trust.sources import RegistryClient, RegistryRequestError


def _client(handler: object) -> RegistryClient:
    return RegistryClient("http://registry.test", token="ctr_secret",
                          transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_refusals_become_request_errors_with_code_and_fix() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer ctr_secret"
        return httpx.Response(409, json={"error": {"code": "VERSION_CONFLICT",
                                                   "message": "taken", "fix": "bump it"}})

    with _client(handler) as c, pytest.raises(RegistryRequestError) as exc:
        c.revoke("acme", "x", "1.0.0", reason="r")
    assert (exc.value.status, exc.value.code, exc.value.advice) == (409, "VERSION_CONFLICT",
                                                                   "bump it")
    assert isinstance(exc.value, InputError) and "ctr_secret" not in str(exc.value)


@pytest.mark.parametrize("response", [
    httpx.Response(500, text="boom"),
    httpx.Response(503, json={"error": {"code": "DATABASE_UNAVAILABLE", "message": "m"}}),
    httpx.Response(200, text="<html>captive portal</html>"),
    httpx.Response(200, json={"items": "not a list", "next_cursor": None}),
    httpx.Response(302, headers={"location": "http://elsewhere"}),
])
def test_untrustworthy_answers_are_unavailable(response: httpx.Response) -> None:
    with _client(lambda _r: response) as c, pytest.raises(RegistryUnavailable):
        c.list_plugins()


def test_transport_errors_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.get_plugin("acme", "x")


def test_path_segments_cannot_smuggle_paths() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": "no"}})

    with _client(handler) as c, pytest.raises(RegistryRequestError):
        c.get_plugin("acme", "../../admin")
    assert seen == ["/api/v1/plugins/acme/..%2F..%2Fadmin"]


def test_pages_follow_cursors() -> None:
    pages = {None: {"items": [_summary("a")], "next_cursor": "c1"},
             "c1": {"items": [_summary("b")], "next_cursor": None}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(pages[request.url.params.get("cursor")]))

    with _client(handler) as c:
        assert [p.name for p in c.iter_plugins()] == ["a", "b"]


def test_bad_base_url_is_an_input_error() -> None:
    with pytest.raises(InputError):
        RegistryClient("ftp://registry.test")


def _summary(name: str) -> dict[str, object]:
    return {"namespace": "acme", "name": name, "full_name": f"acme/{name}", "description": "",
            "latest_version": "1.0.0", "tier": "experimental", "action": "warn"}
