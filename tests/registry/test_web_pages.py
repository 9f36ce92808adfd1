"""Plugin and version pages served from stored fragments: every write that changes what a page
shows (a yank, a revocation of a version, a digest or a signer, a re-tier in one write or as a
queued run) re-renders the fragments in its transaction, so every sibling page of the plugin
shows the change at once and no read renders; rows without fragments (written before they were
stored) are rendered on their first read and stored, and a page is right under any address
prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from registry._web import _fragments
from tests.registry.conftest import A_TXT_DIGEST, BEACON, BUNDLE_WHEEL, GHA, WHEEL_DIGEST, Registry
from tests.support.catalogue import markup_problems

#: A version row of a page's version list: version, tier, state and what follows the state.
_ROW = re.compile(r'<tr( class="current")?>\s*<td><a href="[^"]*/plugins/acme/hello/([^"]+)"( aria-current="page")?>'
                  r'<bdi>[^<]*</bdi></a></td>\s*<td><span class="badge tier-(\w+)"[^>]*>.*?</td>\s*'
                  r'<td><span class="state state-(\w+)">\w+</span>(.*?)</td>', re.S)


def _never(*_: Any, **__: Any) -> Any:
    raise AssertionError("a page fragment was rendered on a read")


def _get(client: TestClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    return r.text


def _assert_every_page_shows_the_stored_state(registry: Registry, monkeypatch: pytest.MonkeyPatch, *,
                                              reasons: dict[str, str] | None = None) -> dict[str, str]:
    """Every page of acme/hello (the plugin page and each version's) lists every version with its
    stored tier and state (and the reason of each in ``reasons``), marks its own version, and shows
    its version's action and state; no page is rendered on the read. Returns the pages' HTML."""
    _, listing = registry.get("/api/v1/plugins/acme/hello/versions")
    expected = {v["version"]: (v["tier"], v["state"]) for v in listing["items"]}
    _, plugin = registry.get("/api/v1/plugins/acme/hello")
    pages = {"/plugins/acme/hello": plugin["latest_version"]} | {
        f"/plugins/acme/hello/{v}": v for v in expected}
    html: dict[str, str] = {}
    with monkeypatch.context() as m:
        m.setattr(_fragments, "_template", _never)
        for path, own in pages.items():
            page = html[path] = _get(registry.client, path)
            assert markup_problems(page) == [], path
            rows = _ROW.findall(page)
            assert {r[1]: (r[3], r[4]) for r in rows} == expected, path
            assert [r[1] for r in rows if r[0] and r[2]] == [own] and sum(bool(r[0] or r[2]) for r in rows) == 1
            for r in rows:
                if r[1] in (reasons or {}):
                    assert (reasons or {})[r[1]] in r[5], (path, r)
                assert (r[5].strip() == "") == (r[4] == "active"), (path, r)
            _, doc = registry.get(f"/api/v1/plugins/acme/hello/versions/{own}")
            assert f"(action <code>{doc['action']}</code>)" in page, path
            assert ("<strong>Revoked</strong>" in page) == (doc["state"] == "revoked"), path
            assert ("<strong>Yanked</strong>" in page) == (doc["state"] == "yanked"), path
            pinned = path != "/plugins/acme/hello"
            assert f"cortex plugin install acme/hello{'@' + own if pinned else ''}</code>" in page or (
                doc["state"] == "revoked"), path
    return html


def _stored_pages(registry: Registry) -> list[Any]:
    with registry.store.engine.connect() as c:
        return [r[0] for r in c.execute(text("SELECT page_html FROM plugin UNION ALL "
                                             "SELECT page_html FROM plugin_version"))]


def _publish_three(registry: Registry) -> str:
    token = registry.token()
    for version, kw in (("1.0.0", {}), ("1.1.0", {"digest": WHEEL_DIGEST, "bundle": BUNDLE_WHEEL}), ("1.2.0", {})):
        r = registry.publish(token, version=version, **kw)
        assert r.status_code == 201, r.text
    return token


def test_a_state_change_shows_on_every_sibling_page_at_once(registry: Registry,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A yank, a version's revocation, a digest's and a signer's: each write re-renders the one
    plugin fragment every page of the plugin shares, so no sibling page shows an old state."""
    token = _publish_three(registry)
    assert all(_stored_pages(registry))  # rendered by the publishes, not by a read
    _assert_every_page_shows_the_stored_state(registry, monkeypatch)
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.1.0/yank", json={"reason": "broken <i>"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.1.0": "broken &lt;i&gt;"})
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.2.0/revoke", json={"reason": "key leaked"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    pages = _assert_every_page_shows_the_stored_state(registry, monkeypatch,
                                                      reasons={"1.1.0": "broken &lt;i&gt;", "1.2.0": "key leaked"})
    assert "cortex plugin install acme/hello</code>" in pages["/plugins/acme/hello"]
    assert '<span class="version"><bdi>1.0.0</bdi>' in pages["/plugins/acme/hello"]  # the highest active one
    admin = registry.token("cortex", "admin")
    r = registry.client.post("/api/v1/revocations/digest", json={"digest": WHEEL_DIGEST, "reason": "bad image"},
                             headers=registry.auth(admin))
    assert r.status_code == 200, r.text
    _assert_every_page_shows_the_stored_state(registry, monkeypatch,
                                              reasons={"1.1.0": "bad image", "1.2.0": "key leaked"})
    r = registry.client.post("/api/v1/revocations/identity",
                             json={"identity": BEACON, "issuer": GHA, "reason": "signer gone"},
                             headers=registry.auth(admin))
    assert r.status_code == 200, r.text
    _, listing = registry.get("/api/v1/plugins/acme/hello/versions")
    assert {v["state"] for v in listing["items"]} == {"revoked"}
    _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.0.0": "signer gone"})
    assert registry.store.audit_verify() == []


#: Makes version 1.1.0 untrusted (a tier change the version list shows).
DENY_1_1 = """\
package cortex

import rego.v1

deny contains {"code": "NOT_THIS_ONE", "message": "not this one"} if {
\tinput.plugin.version == "1.1.0"
}
"""


def test_a_retier_re_renders_every_page_in_its_switch(registry: Registry, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-tier in one write and a queued run's switch store every version's fragment with its
    new decision and every plugin's with the new tiers; staged decisions without a fragment
    (staged before fragments were stored) are rendered at the switch."""
    from tests.registry.test_jobs import _decide_all
    from tests.registry.test_retier import _policy, _retier

    token = _publish_three(registry)
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/yank", json={"reason": "old"},
                         headers=registry.auth(token))
    before = _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.0.0": "old"})
    assert "(action <code>warn</code>)" in before["/plugins/acme/hello/1.2.0"]

    result, _ = _retier(registry, _policy(tmp_path / "one", DENY_1_1, experimental="notice"), workers=1)
    assert result["changed"] == 3
    pages = _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.0.0": "old"})
    assert "(action <code>notice</code>)" in pages["/plugins/acme/hello/1.2.0"]
    assert "(action <code>block</code>)" in pages["/plugins/acme/hello/1.1.0"]
    assert all(len(_ROW.findall(p)) == 3 and "tier-untrusted" in p for p in pages.values())

    policy = _policy(tmp_path / "two", experimental="allow")
    run_id, decider = _decide_all(registry, policy)
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE retier_result SET page_html = NULL WHERE version_id IN "
                       "(SELECT MIN(version_id) FROM retier_result)"))
    try:
        result = registry.store.retier_apply(run_id, decider=decider, now=registry.clock())  # type: ignore[arg-type]
    finally:
        decider.close()  # type: ignore[attr-defined]
    assert result is not None and result["changed"] == 3
    assert all(_stored_pages(registry))
    pages = _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.0.0": "old"})
    assert all("(action <code>allow</code>)" in p for path, p in pages.items() if not path.endswith("1.0.0"))
    assert all("tier-untrusted" not in p for p in pages.values())
    assert registry.store.audit_verify() == []


def test_rows_without_fragments_are_rendered_on_first_read_and_stored(registry: Registry,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written before fragments were stored get them on their first read; a fragment is
    stored only while its column is empty, so a write made since the read always wins."""
    token = _publish_three(registry)
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE plugin SET page_html = NULL"))
        c.execute(text("UPDATE plugin_version SET page_html = NULL"))
    assert _get(registry.client, "/plugins/acme/hello/1.1.0")
    with registry.store.engine.connect() as c:
        stored = dict(c.execute(text("SELECT version, page_html FROM plugin_version")).all())
        plugin_id, plugin_page = c.execute(text("SELECT id, page_html FROM plugin")).one()
    assert stored["1.1.0"] and plugin_page and stored["1.0.0"] is None
    assert _get(registry.client, "/plugins/acme/hello") and _get(registry.client, "/plugins/acme/hello/1.0.0")
    pages = _assert_every_page_shows_the_stored_state(registry, monkeypatch)
    assert all(_stored_pages(registry))
    # A fragment rendered from older documents never replaces a stored one.
    with registry.store.engine.connect() as c:
        version_id = c.execute(text("SELECT id FROM plugin_version WHERE version = '1.2.0'")).scalar_one()
    registry.client.post("/api/v1/plugins/acme/hello/versions/1.2.0/yank", json={"reason": "late"},
                         headers=registry.auth(token))
    registry.store.keep_page_fragments(plugin_id=plugin_id, plugin_page=plugin_page, version_id=version_id,
                                       version_page="stale")
    after = _assert_every_page_shows_the_stored_state(registry, monkeypatch, reasons={"1.2.0": "late"})
    assert after["/plugins/acme/hello/1.2.0"] != pages["/plugins/acme/hello/1.2.0"]
    assert "stale" not in after["/plugins/acme/hello/1.2.0"]


def test_a_stored_page_is_right_under_any_address_prefix(registry: Registry) -> None:
    """Fragments hold a marker where the address prefix goes: a page served under a prefix links
    under it, and no marker is ever served."""
    _publish_three(registry)
    plain = _get(registry.client, "/plugins/acme/hello/1.1.0")
    with TestClient(registry.app, root_path="/cat&x") as prefixed:
        page = _get(prefixed, "/plugins/acme/hello/1.1.0")
    for html in (plain, page):
        assert "<@" not in html and markup_problems(html) == []
    assert 'href="/cat&amp;x/plugins/acme/hello/1.0.0"' in page and 'href="/plugins/acme/hello/1.0.0"' in plain
    assert 'href="/cat&amp;x/static/catalogue.css"' in page
    assert 'href="/cat&amp;x/api/v1/plugins/acme/hello/versions/1.1.0"' in page
    assert page.replace("/cat&amp;x", "") == plain


def test_publisher_text_cannot_forge_a_fragment_marker(registry: Registry) -> None:
    """The markers contain ``<``, which autoescaping turns into ``&lt;`` in every value: a
    description or reason that spells one is shown as text and splits nothing."""
    token = registry.token()
    forged = f"{_fragments.SEP}{_fragments.ROOT}<@row@><@link@>"
    r = registry.publish(token, description=json.dumps(forged))
    assert r.status_code == 201, r.text
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/yank", json={"reason": forged},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    for path in ("/plugins/acme/hello", "/plugins/acme/hello/1.0.0"):
        html = _get(registry.client, path)
        assert "<@" not in html and "&lt;@root@&gt;" in html and markup_problems(html) == []
    assert A_TXT_DIGEST in html
