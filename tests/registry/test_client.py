"""The typed registry client translates every failure at its boundary."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cortex_trust.errors import InputError, RegistryUnavailable
from cortex_trust.sources import RegistryClient, RegistryRequestError
from tests.registry.conftest import A_TXT_DIGEST


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


def _summary(name: str) -> dict[str, object]:
    return {"namespace": "acme", "name": name, "full_name": f"acme/{name}", "description": "",
            "latest_version": "1.0.0", "tier": "experimental", "action": "warn"}


@pytest.mark.security_review
def test_client_caps_response_bodies() -> None:
    """A hostile or broken registry cannot make the client buffer an unbounded body."""
    sent: list[int] = []

    def endless() -> Any:
        chunk = b" " * 65536
        for _ in range(10_000):  # 640 MiB if read to the end
            sent.append(len(chunk))
            yield chunk

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    with _client(handler) as c, pytest.raises(RegistryUnavailable) as exc:
        c.list_plugins()
    assert "larger than" in exc.value.message
    assert sum(sent) < 64 * 1024 * 1024


@pytest.mark.security_review
def test_client_never_treats_a_redirect_as_a_success() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://evil.test/b"},
                              content=b'{"not": "a bundle"}')

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.get_bundle("acme", "hello", "1.0.0")


@pytest.mark.security_review
def test_client_stops_on_a_cursor_that_does_not_advance() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor"))
        if len(calls) > 50:
            raise AssertionError("the client loops on a repeating cursor")
        return httpx.Response(200, json={"items": [_summary("a")], "next_cursor": "c1"})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        list(c.iter_plugins())
    assert len(calls) == 2


@pytest.mark.security_review
def test_client_stops_on_empty_pages_that_ask_for_more() -> None:
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params.get("cursor"))
        if len(calls) > 50:
            raise AssertionError("the client loops on empty pages")
        return httpx.Response(200, json={"items": [], "next_cursor": f"c{len(calls)}"})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.search("x", limit=5)
    assert len(calls) == 1


@pytest.mark.security_review
def test_client_refuses_a_revocation_cursor_going_backwards() -> None:
    """A feed whose cursor does not move forward would make followers re-read forever (or
    skip entries): it is not the documented feed."""
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": 3})

    with _client(handler) as c, pytest.raises(RegistryUnavailable):
        c.revocations(cursor=10)


@pytest.mark.security_review
def test_client_refuses_a_document_about_another_version() -> None:
    """A 200 with the right shape but about another plugin or version (say a verified one)
    must not be taken as the answer for the one asked about."""
    doc = {"namespace": "acme", "name": "trusted", "version": "9.9.9", "image": "ghcr.io/a/b",
           "digest": A_TXT_DIGEST, "state": "active", "tier": "verified", "action": "allow",
           "published_at": "2026-01-01T00:00:00Z", "policy_revision": "", "published_by": "p",
           "signer": None, "manifest": None, "evidence": {}, "revocation": None,
           "decision": {"tier": "verified", "action": "allow", "reasons": [],
                        "sandbox": None, "next_tier": None, "overridable": True}}
    plugin = {**_summary("trusted"), "capabilities": [], "updated_at": "t", "versions": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        if "/versions/" in request.url.path:
            return httpx.Response(200, content=json.dumps(doc))
        if request.url.path.endswith("/versions"):
            return httpx.Response(200, content=json.dumps({"items": [doc]}))
        return httpx.Response(200, content=json.dumps(plugin))

    with _client(handler) as c:
        assert c.get_version("acme", "trusted", "9.9.9").tier == "verified"
        assert c.get_plugin("acme", "trusted").name == "trusted"
        assert len(c.list_versions("acme", "trusted")) == 1
        for call in (lambda: c.get_version("acme", "hello", "9.9.9"),
                     lambda: c.get_version("acme", "trusted", "1.0.0"),
                     lambda: c.get_version("other", "trusted", "9.9.9"),
                     lambda: c.get_plugin("acme", "hello"),
                     lambda: c.list_versions("acme", "hello")):
            with pytest.raises(RegistryUnavailable):
                call()


def test_bad_base_url_is_an_input_error() -> None:
    with pytest.raises(InputError):
        RegistryClient("ftp://registry.test")


def _summary(name: str) -> dict[str, object]:
    return {"namespace": "acme", "name": name, "full_name": f"acme/{name}", "description": "",
            "latest_version": "1.0.0", "tier": "experimental", "action": "warn"}
