"""The web catalogue, rendered through the app: what each page shows, that publisher text stays
text, that every answer carries the security headers, and that pages follow the stored state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cortex_trust.policy import format_time
from registry._web import SECURITY_HEADERS
from registry._web._views import advisory_link, safe_link, sandbox_in_words
from tests.registry.conftest import (
    A_TXT_DIGEST,
    BUNDLE_WHEEL,
    WHEEL_DIGEST,
    Registry,
    manifest,
    migration_steps,
    registry_on,
)
from tests.support.catalogue import HOSTILE_ID, HOSTILE_TEXT, hostile_report, markup_problems, trivy_report

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


def _walk(registry: Registry, path: str) -> tuple[list[str], list[str]]:
    """Every plugin a search lists, following its Next links; and the pages' URLs."""
    names: list[str] = []
    urls = [path]
    while True:
        html = _html(registry, urls[-1])
        names += re.findall(r'<h3><a href="/plugins/([a-z0-9-]+/[a-z0-9-]+)">', html)
        nxt = re.search(r'<a rel="next" href="([^"]+)">', html)
        if nxt is None:
            return names, urls
        urls.append(nxt.group(1).replace("&amp;", "&"))


def test_search_sorts_by_name_recent_publish_and_use_across_pages(registry: Registry) -> None:
    """Each order holds across pages (cursors carry the sort value), ties included, and a page's
    URL shows the same page again (back and forward)."""
    token = registry.token()
    start = registry.clock.now
    published: dict[str, str] = {}
    for i in range(25):
        # Two plugins per second: equal publish times must page without loss or repeat.
        registry.clock.now = start + timedelta(seconds=i // 2)
        _publish(registry, token, name=f"p{i:02d}")
        published[f"acme/p{i:02d}"] = format_time(registry.clock.now)
    registry.clock.now = start + timedelta(minutes=5)
    _publish(registry, token, name="p03", version="1.1.0", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    published["acme/p03"] = format_time(registry.clock.now)
    installations = [registry.token("initech", "installation") for _ in range(3)]
    used = {f"acme/p{i:02d}": i % 4 for i in range(25)}
    for key, n in used.items():
        for installation in installations[:n]:
            for _day in range(2):  # a second report of the same installation counts once
                r = registry.client.post("/api/v1/usage", headers=registry.auth(installation), json={
                    "namespace": "acme", "name": key.split("/")[1], "version": "1.0.0",
                    "digest": A_TXT_DIGEST})
                assert r.status_code == 200, r.text
                registry.clock.advance(days=1)

    by_name, _ = _walk(registry, "/")
    assert by_name == sorted(used)
    recent, urls = _walk(registry, "/?sort=recent")
    assert recent == sorted(published, key=lambda k: (published[k], k), reverse=True)
    assert recent[0] == "acme/p03" and len(urls) == 2
    most_used, urls = _walk(registry, "/?sort=used")
    assert most_used == sorted(used, key=lambda k: (used[k], k), reverse=True)
    assert "3 installations in production" in _html(registry, "/?sort=used")
    # The second page again (a bookmark, back then forward): the same rows.
    again, _ = _walk(registry, urls[1])
    assert again == most_used[20:]
    # Filters with an order: only matching plugins, in that order.
    mine, _ = _walk(registry, "/?sort=used&q=p1")
    assert mine == [k for k in most_used if k.startswith("acme/p1")]
    # A cursor of one order is refused by another.
    cursor = urls[1].split("cursor=")[1]
    assert "not one this registry issued" in _html(registry, f"/?sort=recent&cursor={cursor}", 422)
    assert "not one this registry issued" in _html(registry, f"/?cursor={cursor}", 422)


def test_state_and_needs_filters_follow_the_latest_version(registry: Registry) -> None:
    token = registry.token()
    asks = manifest("net").replace('min_cortex_version: "0.1.0"',
                                   'min_cortex_version: "0.1.0"\n  network: true\n  filesystem: true')
    _publish(registry, token, name="net", manifest=asks)
    _publish(registry, token, name="plain")
    _publish(registry, token, name="gone", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)
    r = registry.client.post("/api/v1/plugins/acme/gone/versions/1.0.0/yank", json={"reason": "old"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text

    def listed(query: str) -> list[str]:
        return _walk(registry, "/?" + query)[0]

    assert listed("needs=network") == listed("needs=filesystem") == ["acme/net"]
    assert listed("needs=neither") == ["acme/gone", "acme/plain"]
    assert listed("state=yanked") == ["acme/gone"]
    assert listed("state=active&sort=recent") == ["acme/plain", "acme/net"]
    for _ in range(2):
        r = registry.client.post("/api/v1/usage", headers=registry.auth(registry.token("initech", "installation")),
                                 json={"namespace": "acme", "name": "plain", "version": "1.0.0",
                                       "digest": A_TXT_DIGEST})
        assert r.status_code == 200, r.text
    # The migration fills the columns of an existing catalogue as the writers keep them.
    columns = ('SELECT "key", latest_published_at, usage_count, latest_state, asks_network, asks_filesystem '
               'FROM plugin ORDER BY "key"')
    engine, to = migration_steps(registry.db_url)
    try:
        with engine.connect() as conn:
            kept = [tuple(r) for r in conn.execute(text(columns)).all()]
        to("trusted_publishing", "downgrade")
        to("head", "upgrade")
        with engine.connect() as conn:
            filled = [tuple(r) for r in conn.execute(text(columns)).all()]
    finally:
        engine.dispose()
    assert kept == filled == [("acme/gone", "2026-01-01T12:00:00Z", 0, "yanked", False, False),
                              ("acme/net", "2026-01-01T12:00:00Z", 0, "active", True, True),
                              ("acme/plain", "2026-01-01T12:00:00Z", 2, "active", False, False)]
    assert listed("sort=used")[0] == "acme/plain"
    registry.client.post("/api/v1/plugins/acme/gone/versions/1.0.0/unyank", headers=registry.auth(token))
    assert listed("state=yanked") == [] and "acme/gone" in listed("state=active")


@pytest.mark.parametrize(("query", "ordered"), [
    ("", True), ("sort=recent", True), ("sort=used", True), ("tier=community", True), ("namespace=acme", True),
    ("state=revoked", True), ("needs=network", True), ("needs=neither", True),
    ("sort=used&state=yanked", True), ("sort=recent&needs=neither", True), ("sort=used&tier=community", True),
    ("sort=recent&namespace=acme", True), ("sort=recent&tier=verified&needs=network", False)])
def test_every_search_page_walks_an_index_in_page_order(tmp_path: Path, query: str, ordered: bool) -> None:
    """SQLite's plan of each search statement, with and without a cursor: the plugins are always
    read through an index; one order with at most one filter reads them in page order (no sort).
    Several filters in an order other than the name may sort one filter's matches."""
    from registry import make_engine, migrate
    from registry._store import Store
    from registry._web import _queries as queries

    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    store = Store(engine)
    seen: list[str] = []
    real = queries._rows

    def explain(store_: Any, sql: str, params: Any) -> list[Any]:
        seen.extend(str(r[-1]) for r in real(store_, "EXPLAIN QUERY PLAN " + sql, params))
        return []

    filters = dict(p.split("=") for p in query.split("&") if p)
    sort = filters.pop("sort", "name")
    cursor = queries._encode(sort, {"name": "", "recent": "2026-01-01T00:00:00Z", "used": 3}[sort], "acme/x")
    try:
        queries._rows = explain  # type: ignore[assignment]
        for c in (None, cursor):
            queries.search_page(store, sort=sort, q=None, tier=filters.get("tier"), namespace=filters.get("namespace"),
                                needs=filters.get("needs"), state=filters.get("state"), cursor=c, limit=20)
    finally:
        queries._rows = real  # type: ignore[assignment]
        engine.dispose()
    plans = " | ".join(seen)
    # The plugin table is read through an index (searched, or walked in order), never scanned.
    assert all(" USING " in step for step in seen if step.startswith(("SCAN p", "SEARCH p"))), plans
    # Only the two arms of a union (each at most a page) are sorted, never the plugins.
    sorted_after = [seen[i - 1] for i, step in enumerate(seen) if step.startswith("USE TEMP B-TREE")]
    assert all(step in ("SCAN a", "SCAN b") for step in sorted_after) or not ordered, plans


def _walk_api(registry: Registry, query: str) -> list[str]:
    """Every plugin ``GET /api/v1/plugins?QUERY`` lists, two per page, following next_cursor."""
    keys: list[str] = []
    cursor = ""
    while True:
        status, page = registry.get(f"/api/v1/plugins?limit=2&{query}{cursor}")
        assert status == 200, (query, page)
        keys += [f"{item['namespace']}/{item['name']}" for item in page["items"]]
        if page["next_cursor"] is None:
            return keys
        cursor = f"&cursor={page['next_cursor']}"


def test_the_json_twin_sorts_and_filters_like_the_home_page(registry: Registry) -> None:
    """``GET /api/v1/plugins`` takes the page's sort, needs and state and lists the same plugins
    in the same order, across pages."""
    token = registry.token()
    start = registry.clock.now
    asks = manifest("net").replace('min_cortex_version: "0.1.0"',
                                   'min_cortex_version: "0.1.0"\n  network: true')
    files = manifest("files").replace('min_cortex_version: "0.1.0"',
                                      'min_cortex_version: "0.1.0"\n  filesystem: true')
    seeds: list[tuple[str, dict[str, Any]]] = [("net", {"manifest": asks}), ("files", {"manifest": files}), ("p0", {}),
                                               ("p1", {}), ("p2", {}),
                                               ("gone", {"digest": WHEEL_DIGEST, "bundle": BUNDLE_WHEEL})]
    for i, (name, kw) in enumerate(seeds):
        registry.clock.now = start + timedelta(seconds=i // 2)  # equal publish times page too
        _publish(registry, token, name=name, **kw)
    r = registry.client.post("/api/v1/plugins/acme/gone/versions/1.0.0/yank", json={"reason": "old"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    for name, n in (("p1", 3), ("files", 2), ("p2", 2), ("net", 1)):
        for _ in range(n):
            r = registry.client.post("/api/v1/usage", headers=registry.auth(registry.token("initech", "installation")),
                                     json={"namespace": "acme", "name": name, "version": "1.0.0",
                                           "digest": A_TXT_DIGEST})
            assert r.status_code == 200, r.text
    expected = {
        "sort=recent": ["acme/p2", "acme/gone", "acme/p1", "acme/p0", "acme/net", "acme/files"],
        "sort=used": ["acme/p1", "acme/p2", "acme/files", "acme/net", "acme/p0", "acme/gone"],
        "sort=name": ["acme/files", "acme/gone", "acme/net", "acme/p0", "acme/p1", "acme/p2"],
        "needs=network": ["acme/net"],
        "needs=filesystem": ["acme/files"],
        "needs=neither&sort=used": ["acme/p1", "acme/p2", "acme/p0", "acme/gone"],
        "state=yanked": ["acme/gone"],
        "state=active&sort=recent&q=p": ["acme/p2", "acme/p1", "acme/p0"],
        "state=revoked": [],
        "sort=used&tier=experimental&namespace=acme&needs=filesystem": ["acme/files"],
    }
    for query, keys in expected.items():
        assert _walk_api(registry, query) == keys, query
        assert _walk(registry, "/?" + query)[0] == keys, query
    # A cursor carries its order: one from another order is refused, as on the page.
    _, page = registry.get("/api/v1/plugins?limit=2&sort=used")
    status, body = registry.get(f"/api/v1/plugins?sort=recent&cursor={page['next_cursor']}")
    assert status == 422 and body["error"]["code"] == "BAD_CURSOR", body


@pytest.mark.parametrize(("query", "name"), [
    ("sort=popular", "sort"), ("sort=NAME", "sort"), ("needs=gpu", "needs"), ("state=deleted", "state"),
    ("tier=gold", "tier"), ("namespace=ACME", "namespace"), ("cursor=%3Cscript%3E", "cursor"),
    ("q=" + "x" * 101, "q"), ("sort=recent&needs=network&state=" + "y" * 101, "state"),
])
def test_the_json_twin_refuses_what_the_home_page_refuses(registry: Registry, query: str, name: str) -> None:
    """One validator for both: the same value is refused with the same message and fix, as an
    API error (422) and as an error page (400)."""
    _publish(registry, registry.token())
    status, body = registry.get(f"/api/v1/plugins?{query}")
    assert status == 422, body
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message", "fix"}
    assert body["error"]["code"] == "INVALID_REQUEST"
    assert body["error"]["message"] == f"the {name} filter is not one this catalogue knows"
    assert body["error"]["fix"]
    html = _html(registry, f"/?{query}", 400)
    assert body["error"]["message"] in html and body["error"]["fix"].replace("'", "&#39;") in html


@pytest.fixture
def shipped_registry(db_url: str, trust_roots: tuple[Any, ...], tmp_path: Path) -> Iterator[Registry]:
    """A registry deciding with the shipped policies and an allowlist: CVE-2026-0001 (HIGH in
    the report below) and CVE-2026-0003 (LOW: within the maximum, nothing to excuse)."""
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set
    from registry._reevaluate import ThreadEvaluator

    data = tmp_path / "allowlist.json"
    entry = {"expires": "2099-01-01", "reason": "not reachable"}
    data.write_text(json.dumps({"cortex_config": {"scan": {"cve_allowlist": {
        "CVE-2026-0001": entry, "CVE-2026-0003": entry}}}}))
    evaluator = ThreadEvaluator(lambda: EmbeddedEngine(load_policy_set(data_files=[data])))
    try:
        with registry_on(db_url, evaluator, trust_roots) as served:
            yield served
    finally:
        evaluator.close()


def test_allowlisted_vulnerabilities_are_marked_as_the_decision_names_them(shipped_registry: Registry) -> None:
    """The page marks exactly the ids the policy's decision names in
    ``allowlisted_vulnerabilities``: an excused HIGH one, not the HIGH one the allowlist does
    not cover, nor a LOW one with an allowlist entry (within the maximum, nothing was excused)."""
    registry = shipped_registry
    image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
    report = trivy_report(image, [("CVE-2026-0001", "HIGH"), ("CVE-2026-0002", "HIGH"), ("CVE-2026-0003", "LOW")])
    _publish(registry, registry.token(), scan_report=report)
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    listed = {v["id"] for v in doc["evidence"]["scan"]["vulnerabilities"]}
    assert listed == {"CVE-2026-0001", "CVE-2026-0002", "CVE-2026-0003"}
    # The JSON twin carries the policy's word; the page only shows it.
    assert doc["decision"]["allowlisted_vulnerabilities"] == ["CVE-2026-0001"]
    for path in ("/plugins/acme/hello", "/plugins/acme/hello/1.0.0"):
        html = _html(registry, path)
        assert markup_problems(html) == []
        rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr><td><a href="[^"]+" rel="noopener noreferrer">'
                                                            r'(CVE-2026-000\d)</a>.*?</tr>', html, re.S)}
        assert set(rows) == listed, path
        assert 'class="allowlisted"' in rows["CVE-2026-0001"]
        assert "allowlisted" not in rows["CVE-2026-0002"] and "allowlisted" not in rows["CVE-2026-0003"]
        assert html.count('class="allowlisted"') == 1
        assert "3 listed vulnerabilities (1 allowlisted by the policy)" in html


def test_nothing_is_marked_when_the_decision_names_nothing(registry: Registry) -> None:
    """A decision without ``allowlisted_vulnerabilities`` (a policy that does not name them, or
    stored before it did) marks nothing, whatever the scan lists."""
    image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
    _publish(registry, registry.token(), scan_report=trivy_report(image, [("CVE-2026-0001", "HIGH")]))
    _, doc = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert doc["decision"]["allowlisted_vulnerabilities"] == []
    html = _html(registry, "/plugins/acme/hello/1.0.0")
    assert "CVE-2026-0001" in html and "allowlisted" not in html
