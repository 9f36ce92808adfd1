"""GitHub discovery against a local server speaking GitHub's documented wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.errors import InputError, RegistryUnavailable
from cortex_trust.sources import GitHubClient, GitHubRateLimited, GitHubRef, parse_github_ref
from tests.support.github_wire_server import FakeGitHub, repo_item, serve


@pytest.fixture
def gh() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(repos=[
        repo_item("acme", "weather", description="Weather forecasts"),
        repo_item("acme", "calendar", description="Calendar sync"),
        repo_item("bob", "weather-lite", description="A small weather plugin"),
        repo_item("carol", "not-a-plugin", topics=("other",)),
        repo_item("dave", "tickets", description="Ticketing"),
    ])
    server, url = serve(fake)
    yield fake, url
    server.shutdown()


def test_search_follows_pagination_and_filters_topic(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    with GitHubClient(url) as c:
        names = [r.full_name for r in c.search_plugins()]
    assert names == ["acme/weather", "acme/calendar", "bob/weather-lite", "dave/tickets"]
    assert len([p for p, _, _ in fake.requests if p == "/search/repositories"]) == 2  # 2 per page


def test_search_query_and_token(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    with GitHubClient(url, token="ghp_secret123") as c:
        names = [r.full_name for r in c.search_plugins("weather")]
    assert names == ["acme/weather", "bob/weather-lite"]
    assert fake.requests[0][2].get("Authorization") == "Bearer ghp_secret123"
    assert "topic%3Acortex-plugin" in fake.requests[0][1] or "topic:cortex-plugin" in fake.requests[0][1]


def test_max_pages_bounds_the_walk(gh: tuple[FakeGitHub, str]) -> None:
    _fake, url = gh
    with GitHubClient(url, max_pages=1) as c:
        assert len(list(c.search_plugins())) == 2


@pytest.mark.parametrize("kind", ["primary", "secondary"])
def test_rate_limit_is_reported_not_retried(gh: tuple[FakeGitHub, str], kind: str) -> None:
    fake, url = gh
    fake.rate_limited = kind
    with GitHubClient(url) as c, pytest.raises(GitHubRateLimited) as e:
        list(c.search_plugins())
    assert len(fake.requests) == 1
    if kind == "secondary":
        assert e.value.retry_after == 60
    assert "GITHUB_TOKEN" in (e.value.advice or "")


def test_next_link_to_another_origin_is_refused(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    fake.next_link_override = "http://127.0.0.2:1/search/repositories?page=2"
    with GitHubClient(url, token="tok-abcdef") as c, pytest.raises(RegistryUnavailable, match="another origin"):
        list(c.search_plugins())


@pytest.mark.security_review
@pytest.mark.parametrize("headers", [
    [(b"retry-after", b"\xb2")],
    [(b"x-ratelimit-remaining", b"0"), (b"x-ratelimit-reset", b"\xb9\xb2"),
     (b"date", b"Wed, 25 Nov 2026 22:00:00 GMT")],
])
def test_github_rate_limit_headers_that_are_not_numbers(headers: list[tuple[bytes, bytes]]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429 if headers[0][0] == b"retry-after" else 403,
                              headers=headers, json={})

    with GitHubClient("https://api.github.com", transport=httpx.MockTransport(handler)) as gh:
        with pytest.raises(GitHubRateLimited) as exc:
            list(gh.search_plugins())
    assert exc.value.retry_after is None


@pytest.mark.security_review
def test_github_links_to_other_origins_or_with_credentials_are_refused() -> None:
    seen: list[str] = []
    nexts = iter(["https://token@api.github.com/search/repositories?page=2",
                  "http://api.github.com/search/repositories?page=2"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"items": []},
                              headers={"link": f'<{next(nexts)}>; rel="next"'})

    for _ in range(2):
        with GitHubClient("https://api.github.com", token="ghp_secret",
                          transport=httpx.MockTransport(handler)) as gh:
            with pytest.raises(RegistryUnavailable, match="another origin"):
                list(gh.search_plugins())
    assert all(u.startswith("https://api.github.com/search/repositories?") for u in seen)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"items": 3}', b"{" * 10])
def test_malformed_search_responses_fail(gh: tuple[FakeGitHub, str], body: bytes) -> None:
    fake, url = gh
    fake.raw_search_body = body
    with GitHubClient(url) as c, pytest.raises(RegistryUnavailable):
        list(c.search_plugins())


def test_huge_response_is_refused(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    fake.raw_search_body = json.dumps({"items": [], "pad": "x" * (3 * 1024 * 1024)}).encode()
    with GitHubClient(url) as c, pytest.raises(RegistryUnavailable, match="exceeds"):
        list(c.search_plugins())


def test_hostile_names_are_dropped(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    items = [repo_item("acme", "ok"), repo_item("..", "etc"), repo_item("acme", "../../etc/passwd"),
             repo_item("acme", "a/b"), {"name": 3, "owner": {"login": "x"}}, "garbage",
             repo_item("evil.com", "x"), repo_item("acme", "..")]
    fake.raw_search_body = json.dumps({"total_count": len(items), "items": items}).encode()
    with GitHubClient(url) as c:
        assert [r.full_name for r in c.search_plugins()] == ["acme/ok"]


def test_read_manifest_at_ref(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    fake.files[("acme", "weather", "v1.0.0", "manifest.yaml")] = b"name: weather\n"
    with GitHubClient(url) as c:
        assert c.read_manifest(parse_github_ref("github:acme/weather@v1.0.0")) == b"name: weather\n"
        with pytest.raises(InputError, match="no /repos/acme/weather/contents"):
            c.read_manifest(parse_github_ref("github:acme/weather@v9"))


def test_github_down_is_unavailable_not_empty() -> None:
    with GitHubClient("http://127.0.0.1:9", timeout=1) as c, pytest.raises(RegistryUnavailable):
        list(c.search_plugins())


@pytest.mark.parametrize("text,expected", [
    ("github:acme/weather", GitHubRef("acme", "weather", None)),
    ("github:acme/weather@v1.2.0", GitHubRef("acme", "weather", "v1.2.0")),
    ("github:Acme-Co/my.plugin_x@refs/tags/v1", GitHubRef("Acme-Co", "my.plugin_x", "refs/tags/v1")),
])
def test_parse_github_ref(text: str, expected: GitHubRef) -> None:
    assert parse_github_ref(text) == expected


@pytest.mark.parametrize("text", [
    "acme/weather", "github:acme", "github:/weather", "github:acme/weather/x", "github:acme/..",
    "github:../x", "github:acme/weather@../../x", "github:acme/weather@", "github:acme/weather@a b",
    "github:https://evil.com/x", "github:acme/weather@v1%2F..", "github:-acme/x", "github:acme/weather@x.lock",
    "github:acme//weather", "github:ac--me/x",
])
def test_parse_github_ref_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_github_ref(text)


@given(st.text(max_size=80))
def test_parsed_refs_never_escape(text: str) -> None:
    try:
        ref = parse_github_ref("github:" + text)
    except InputError:
        return
    for part in (ref.owner, ref.repo, ref.ref or ""):
        assert ".." not in part and "%" not in part and ":" not in part and " " not in part
    assert "/" not in ref.owner and "/" not in ref.repo


@pytest.mark.parametrize("text", ["github:acme/weather\n", "github:acme\n/weather", "github:acme/weather@v1\n"])
def test_parse_github_ref_rejects_newlines(text: str) -> None:
    with pytest.raises(InputError):
        parse_github_ref(text)


def test_attestations_for_a_digest(gh: tuple[FakeGitHub, str]) -> None:
    fake, url = gh
    digest = "sha256:" + "ab" * 32
    fake.attestations[("acme", "weather", digest)] = [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}]
    ref = parse_github_ref("github:acme/weather@v1")
    with GitHubClient(url) as c:
        bundles = c.attestations(ref, digest)
        assert [json.loads(b)["mediaType"] for b in bundles] == ["application/vnd.dev.sigstore.bundle.v0.3+json"]
        assert c.attestations(ref, "sha256:" + "cd" * 32) == []  # none: GitHub answers 404
        with pytest.raises(InputError):
            c.attestations(ref, "sha256:../../x")
