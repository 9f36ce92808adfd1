"""The web catalogue in a real browser (Playwright driving Debian's Chromium) against a real
``cortex registry serve`` seeded through the real publish path.

A person's path through it: search, the plugin page (reasons and next tier as the API's
decision says), the copy button, a revoked version, the revocation feed, pagination with back
and forward; with no console error, no dialog, no request to another origin, axe-core's check
on every page type, and screenshots at phone and desktop widths into ``docs/screenshots``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry.conftest import A_TXT_DIGEST, BUNDLE_WHEEL, FIXTURES, WHEEL_DIGEST, publish_body
from tests.support.catalogue import HOSTILE_TEXT, hostile_report, trivy_report
from tests.support.served_registry import CORTEX, ServedRegistry, serve_registry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).resolve().parents[1] / "support" / "vendor" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}


def _chromium() -> str:
    """Debian's Chromium, installed by the project's script when missing (never skipped)."""
    out = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedRegistry, dict[str, Any]]]:
    """A served registry on the shipped policies, seeded: acme/hello 1.0.0 (hostile description
    and scan report), 1.1.0 revoked, and 22 more plugins (two pages of search results)."""
    tmp = tmp_path_factory.mktemp("web")
    with serve_registry(tmp, "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"),
                        "--allow-registry", "ghcr.io") as server:
        token = subprocess.run([CORTEX, "registry", "token", "create", "--db", server.db, "--namespace", "acme",
                                "--role", "publisher", "--expires", "1d"],
                               check=True, capture_output=True, text=True).stdout.split()[0]
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as api:
            def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                r = api.post(path, json=body)
                assert r.status_code in (200, 201), r.text
                return r.json()  # type: ignore[no-any-return]

            image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
            hello = post("/api/v1/plugins", publish_body(description=json.dumps(HOSTILE_TEXT),
                                                          scan_report=hostile_report(image)))
            post("/api/v1/plugins", publish_body(version="1.1.0", digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL,
                                                 description=json.dumps(HOSTILE_TEXT)))
            post("/api/v1/plugins/acme/hello/versions/1.1.0/revoke", {"reason": "signing key leaked"})
            for i in range(22):
                post("/api/v1/plugins", publish_body(name=f"tool-{i:02d}", description=f"Tool number {i}."))
        yield server, hello


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


class Watch:
    """What a page did that it must not: console errors, dialogs, requests to other origins."""

    def __init__(self, page: Any, origin: str) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: None if r.url.startswith(origin + "/")
                else self.problems.append(f"request to another origin: {r.url}"))


def _axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of the page (evaluated by the driver: the page's CSP admits no
    script but its own)."""
    page.evaluate(AXE.read_text() + "\n;0")
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])} for v in result["violations"]]


def test_a_person_browses_the_catalogue(served: tuple[ServedRegistry, dict[str, Any]], browser: Any) -> None:
    server, hello = served
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    watch = Watch(page, server.url)
    violations: dict[str, list[dict[str, Any]]] = {}

    # Search.
    page.goto(server.url + "/")
    violations["home"] = _axe(page)
    page.get_by_label("Search names, descriptions and capabilities").fill("hello")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/?q=hello*")
    results = page.locator("ol.results > li")
    assert results.count() == 1
    # The hostile description is in the DOM as text, not as elements.
    assert results.locator(".description").inner_text().startswith('<script>alert("desc")</script>')
    assert page.locator("main script, main img, main a[href^='javascript']").count() == 0

    # The plugin page: the reasons and the next tier are the API's decision.
    results.get_by_role("link", name="acme/hello").click()
    page.wait_for_url("**/plugins/acme/hello")
    violations["plugin"] = _axe(page)
    decision = httpx.get(f"{server.url}/api/v1/plugins/acme/hello/versions/1.0.0").json()["decision"]
    assert decision == hello["decision"]
    reasons = page.locator("ul.reasons > li").all_inner_texts()
    assert reasons == [f"{r['code']} {r['message']}" for r in decision["reasons"]]
    assert decision["next_tier"] is not None and decision["next_tier"]["missing"]
    missing = page.locator("ul.missing > li").all_inner_texts()
    assert missing == [f"{m['code']} {m['message']}" for m in decision["next_tier"]["missing"]]
    assert page.locator("p.description").inner_text() == HOSTILE_TEXT
    assert page.locator("main script, main img").count() == 0

    # The copy button copies the install command.
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("status").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == "cortex plugin install acme/hello"

    # A revoked version shows as revoked, on its page and in the feed.
    page.get_by_role("link", name="1.1.0").click()
    page.wait_for_url("**/plugins/acme/hello/1.1.0")
    violations["version"] = _axe(page)
    assert "Revoked" in page.locator(".alert").inner_text()
    assert "signing key leaked" in page.locator(".alert").inner_text()
    assert page.get_by_role("button", name="Copy").count() == 0
    page.get_by_role("navigation", name="Catalogue").get_by_role("link", name="Revocations").click()
    page.wait_for_url("**/revocations")
    violations["revocations"] = _axe(page)
    row = page.locator("table.revocations tbody tr").first
    assert "acme/hello@1.1.0" in row.inner_text() and "signing key leaked" in row.inner_text()
    page.get_by_role("navigation", name="Catalogue").get_by_role("link", name="Audit log").click()
    page.wait_for_url("**/audit")
    violations["audit"] = _axe(page)
    assert "Intact" in page.locator(".chain").inner_text()

    # Pagination survives back and forward.
    page.goto(server.url + "/")
    first = page.locator("ol.results h3").all_inner_texts()
    assert len(first) == 20 and first[0] == "acme/hello"
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url("**/?cursor=*")
    second = page.locator("ol.results h3").all_inner_texts()
    assert second == ["acme/tool-19", "acme/tool-20", "acme/tool-21"]
    page.go_back()
    assert page.locator("ol.results h3").all_inner_texts() == first
    page.go_forward()
    assert page.locator("ol.results h3").all_inner_texts() == second

    # A filter submits itself when changed (the script), and works without it (the button).
    page.goto(server.url + "/")
    page.get_by_label("Tier").select_option("verified")
    page.wait_for_url("**/?*tier=verified*")
    assert "No plugin matches" in page.locator("main").inner_text()

    assert watch.problems == []
    serious = {k: [v for v in vs if v["impact"] in ("serious", "critical")] for k, vs in violations.items()}
    print("axe violations per page:", {k: len(v) for k, v in violations.items()})
    assert serious == {k: [] for k in violations}, violations
    context.close()


def test_screenshots_at_phone_and_desktop_widths(served: tuple[ServedRegistry, dict[str, Any]],
                                                 browser: Any) -> None:
    """The screenshots the README shows are the ones this test writes (docs/screenshots)."""
    server, _ = served
    out = SCREENSHOTS
    out.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        for name, path in (("home", "/"), ("plugin", "/plugins/acme/tool-03")):
            page.goto(server.url + path)
            target = out / f"{name}-{label}.png"
            page.screenshot(path=str(target), full_page=label == "phone")
            assert target.stat().st_size > 10_000
            # Nothing wider than the viewport: readable without sideways scrolling.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()


def test_an_allowlisted_vulnerability_is_marked(tmp_path: Path, browser: Any) -> None:
    """On the shipped policies with an allowlist entry for one of two HIGH vulnerabilities, the
    version page marks that one (visible once the list is opened), and not the other."""
    data = tmp_path / "allowlist.json"
    data.write_text(json.dumps({"cortex_config": {"scan": {"cve_allowlist": {
        "CVE-2026-0001": {"expires": "2099-01-01", "reason": "not reachable"}}}}}))
    image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
    report = trivy_report(image, [("CVE-2026-0001", "HIGH"), ("CVE-2026-0002", "HIGH")])
    with serve_registry(tmp_path, "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"),
                        "--allow-registry", "ghcr.io", "--data", str(data)) as server:
        token = subprocess.run([CORTEX, "registry", "token", "create", "--db", server.db, "--namespace", "acme",
                                "--role", "publisher", "--expires", "1d"],
                               check=True, capture_output=True, text=True).stdout.split()[0]
        r = httpx.post(f"{server.url}/api/v1/plugins", json=publish_body(scan_report=report),
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 201, r.text
        assert r.json()["decision"]["allowlisted_vulnerabilities"] == ["CVE-2026-0001"]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        watch = Watch(page, server.url)
        page.goto(server.url + "/plugins/acme/hello/1.0.0")
        summary = page.locator("summary", has_text="listed vulnerabilities")
        assert summary.inner_text() == "2 listed vulnerabilities (1 allowlisted by the policy)"
        mark = page.locator("tr", has_text="CVE-2026-0001").locator(".allowlisted")
        assert not mark.is_visible()  # the list is closed
        summary.click()
        assert mark.is_visible() and mark.inner_text() == "allowlisted"
        assert page.locator("tr", has_text="CVE-2026-0002").locator(".allowlisted").count() == 0
        assert page.locator(".allowlisted").count() == 1
        serious = [v for v in _axe(page) if v["impact"] in ("serious", "critical")]
        assert serious == [] and watch.problems == []
        context.close()
