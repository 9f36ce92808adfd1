"""The web catalogue, rendered through the app: what each page shows, that publisher text stays
text, that every answer carries the security headers, and that pages follow the stored state."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from registry._web import SECURITY_HEADERS
from registry._web._views import advisory_link, safe_link, sandbox_in_words
from tests.registry.conftest import A_TXT_DIGEST, BUNDLE_WHEEL, WHEEL_DIGEST, Registry
from tests.support.catalogue import HOSTILE_ID, HOSTILE_TEXT, hostile_report, markup_problems

PAGES = ["/", "/plugins/acme/hello", "/plugins/acme/hello/1.0.0", "/revocations", "/audit",
         "/audit?plugin=acme/hello", "/?tier=experimental&namespace=acme&needs=neither&state=active"]


def _html(registry: Registry, path: str, status: int = 200) -> str:
    r = registry.client.get(path)
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    _assert_headers(r.headers)
    return r.text


def _assert_headers(headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value
    csp = headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def _publish(registry: Registry, token: str, **kw: Any) -> dict[str, Any]:
    r = registry.publish(token, **kw)
    assert r.status_code == 201, r.text
    return json.loads(r.content)  # type: ignore[no-any-return]


def test_every_page_renders_with_the_security_headers_and_only_its_own_markup(registry: Registry) -> None:
    token = registry.token()
    _publish(registry, token)
    _publish(registry, token, version="1.1.0", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.1.0/revoke", json={"reason": "r"},
                         headers=registry.auth(token))
    for path in PAGES:
        html = _html(registry, path)
        assert markup_problems(html) == [], path
        assert "acme/hello" in html, path
        # Every page names its JSON twin or the log's, and links back to the search.
        assert 'href="/"' in html and "/api/v1/" in html, path
    for name in ("catalogue.css", "catalogue.js"):
        r = registry.client.get(f"/static/{name}")
        assert r.status_code == 200
        _assert_headers(r.headers)
    assert registry.client.get("/static/other.js").status_code == 404


def test_the_plugin_page_shows_the_stored_decision(registry: Registry) -> None:
    doc = _publish(registry, registry.token())
    html = _html(registry, "/plugins/acme/hello")
    decision = doc["decision"]
    assert "Experimental" in html and "asks before installing" in html and "(action <code>warn</code>)" in html
    for reason in decision["reasons"]:
        assert reason["code"] in html and reason["message"] in html
    assert doc["policy_revision"] in html
    assert sandbox_in_words(decision["sandbox"]) == "no network, no host files"
    assert "no network, no host files" in html
    assert "cortex plugin install acme/hello</code>" in html
    assert "cortex plugin install acme/hello@1.0.0</code>" in _html(registry, "/plugins/acme/hello/1.0.0")
    # Evidence: the verified signature with its identity as a link (github.com, https).
    assert "Verified</p>" in html and 'href="https://github.com/sigstore-conformance/' in html
    assert "Not scanned" in html and "No test results" in html and "Not reviewed" in html
    # Capabilities and versions.
    assert "<code><bdi>/greet</bdi></code>" in html and "<td><bdi>POST</bdi></td>" in html
    assert '<a href="/plugins/acme/hello/1.0.0" aria-current="page">' in html


def test_hostile_publisher_text_is_shown_as_text(registry: Registry) -> None:
    token = registry.token()
    image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
    _publish(registry, token, description=json.dumps(HOSTILE_TEXT), scan_report=hostile_report(image))
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/yank",
                             json={"reason": HOSTILE_TEXT}, headers=registry.auth(token))
    assert r.status_code == 200, r.text
    for path in ["/", "/plugins/acme/hello", "/plugins/acme/hello/1.0.0", "/?q=alert"]:
        html = _html(registry, path)
        assert markup_problems(html) == [], path
        assert "<script>alert" not in html and "javascript:alert(2)\">" not in html
        assert "&lt;script&gt;alert(&#34;desc&#34;)&lt;/script&gt;" in html, path
        # Entities in the text are shown as written, not decoded into markup.
        assert "&amp;lt;b&amp;gt;bold" in html
    html = _html(registry, "/plugins/acme/hello/1.0.0")
    assert "&lt;script&gt;alert(&#34;cve&#34;)" in html
    assert "A" * 10_000 in html  # the long package name is there, as text
    assert 'href="javascript' not in html
    # Only a CVE id of the known form becomes a link.
    assert 'href="https://nvd.nist.gov/vuln/detail/CVE-2024-12345"' in html
    assert html.count("nvd.nist.gov") == 1
    assert HOSTILE_ID not in html


def test_revoked_and_yanked_versions_show_their_state_everywhere(registry: Registry) -> None:
    token = registry.token()
    _publish(registry, token)
    _publish(registry, token, version="1.1.0", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.1.0/revoke",
                             json={"reason": "key leaked <b>"}, headers=registry.auth(token))
    assert r.status_code == 200, r.text
    page = _html(registry, "/plugins/acme/hello/1.1.0")
    assert "<strong>Revoked</strong>" in page and "key leaked &lt;b&gt;" in page
    assert "nothing to install" in page and "cortex plugin install acme/hello@1.1.0" not in page
    # The plugin's latest version is the highest active one; its version list says 1.1.0 is revoked.
    plugin = _html(registry, "/plugins/acme/hello")
    assert "cortex plugin install acme/hello</code>" in plugin
    assert re.search(r'1\.1\.0</bdi></a></td>\s*<td>.*?</td>\s*<td><span class="state state-revoked">revoked</span>'
                     r" <time>2026-01-01T12:00:00Z</time>: <bdi>key leaked &lt;b&gt;", plugin, re.S)
    feed = _html(registry, "/revocations")
    assert "acme/hello@<bdi>1.1.0</bdi>" in feed and "key leaked &lt;b&gt;" in feed
    # Revoking the remaining version makes the search row say so.
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                         json={"reason": "gone"}, headers=registry.auth(token))
    home = _html(registry, "/")
    assert 'class="state state-revoked">revoked<' in home
    assert "acme/hello" in _html(registry, "/?state=revoked") and "acme/hello" not in _html(registry, "/?state=active")
    audit = _html(registry, "/audit?plugin=acme/hello")
    assert "version.revoke" in audit and "version.publish" in audit and "Intact" in audit
    assert "token.create" not in _html(registry, "/audit")


def test_search_pages_with_a_cursor_and_keeps_the_filters(registry: Registry) -> None:
    token = registry.token()
    for i in range(23):
        _publish(registry, token, name=f"p{i:02d}")
    first = _html(registry, "/?namespace=acme")
    names = re.findall(r'<a href="/plugins/acme/(p\d\d)">', first)
    assert names == [f"p{i:02d}" for i in range(20)]
    nxt = re.search(r'<a rel="next" href="([^"]+)">', first)
    assert nxt is not None and "namespace=acme" in nxt.group(1)
    second = _html(registry, nxt.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/plugins/acme/(p\d\d)">', second) == ["p20", "p21", "p22"]
    assert 'rel="next"' not in second and "First page" in second
    assert "p05" in _html(registry, "/?q=p05") and "p06" not in _html(registry, "/?q=p05")
    assert "No plugin matches" in _html(registry, "/?tier=verified")


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/plugins/acme/nope", 404, "acme/nope is not in this registry"),
    ("/plugins/acme/hello/9.9.9", 404, "acme/hello@9.9.9 is not in this registry"),
    ("/plugins/ACME/hello", 400, "not a plugin name"),
    ("/?tier=gold", 400, "tier filter"),
    ("/?cursor=%3Cscript%3E", 400, "cursor filter"),
    ("/?cursor=AAAA", 422, "cursor"),
    ("/revocations?before=-1", 400, "before filter"),
    ("/audit?plugin=../x", 400, "plugin filter"),
])
def test_bad_requests_are_html_error_pages(registry: Registry, path: str, status: int, text: str) -> None:
    _publish(registry, registry.token())
    html = _html(registry, path, status)
    assert text in html and markup_problems(html) == []


def test_a_page_follows_its_documents(registry: Registry) -> None:
    """Pages are kept rendered per document: a change of the version (a yank) shows at once."""
    token = registry.token()
    _publish(registry, token)
    assert "Yanked" not in _html(registry, "/plugins/acme/hello/1.0.0")
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/yank", json={"reason": "oops"},
                         headers=registry.auth(token))
    assert "<strong>Yanked</strong>" in _html(registry, "/plugins/acme/hello/1.0.0")
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/unyank", headers=registry.auth(token))
    assert "Yanked" not in _html(registry, "/plugins/acme/hello/1.0.0")


@pytest.mark.parametrize(("url", "link"), [
    ("https://github.com/acme/x/.github/workflows/r.yml@refs/heads/main", True),
    ("https://token.actions.githubusercontent.com", True),
    ("http://github.com/acme", False),
    ("javascript:alert(1)", False),
    ("JAVASCRIPT:alert(1)", False),
    ("https://evil.example/github.com", False),
    ("https://github.com.evil.example/", False),
    ("https://user:pw@github.com/", False),
    ("https://github.com:8443/", False),
    ("https://github.com/a b", False),
    ("https://github.com/\u202eexe", True),
    (None, False),
])
def test_only_https_links_to_known_hosts_are_links(url: Any, link: bool) -> None:
    assert safe_link(url) == (url if link else None)


def test_advisory_links_only_for_known_id_forms() -> None:
    assert advisory_link("CVE-2024-3094") == "https://nvd.nist.gov/vuln/detail/CVE-2024-3094"
    assert advisory_link("GHSA-aaaa-bbbb-1111") is None
    assert advisory_link("GHSA-2qrg-x229-3v8q") == "https://github.com/advisories/GHSA-2qrg-x229-3v8q"
    assert advisory_link("CVE-2024-3094/../x") is None and advisory_link(HOSTILE_ID) is None
