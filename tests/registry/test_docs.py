"""The API documentation pages of a served registry work offline: ``/docs`` (Swagger UI) and
``/redoc`` (ReDoc) name only URLs of the registry itself, each of which answers with the asset
and its content type; and ``/healthz`` answers what the README says."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.support.served_registry import serve_registry


class _Urls(HTMLParser):
    """Every URL an HTML page makes a browser load or link to, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href", "spec-url", "action", "data", "poster") and value:
                self.urls.append(value)
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.scripts.append(data)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_registry(tmp_path_factory.mktemp("docs"), "--no-scan") as server:
        yield server.url


_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
          ".json": "application/json"}


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
               "/docs/assets/favicon.png"}),
    ("/redoc", {"/docs/assets/redoc.standalone.js", "/docs/assets/favicon.png",
                "/openapi.json"}),
])
def test_the_documentation_pages_load_everything_from_the_registry(
        served: str, page: str, expected: set[str]) -> None:
    r = httpx.get(served + page, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    parsed = _Urls()
    parsed.feed(r.text)
    urls = set(parsed.urls)
    if page == "/docs":
        # Swagger UI is started by the page's inline script: the OpenAPI document it loads, and
        # no online validator (it would send the document's address elsewhere).
        (script,) = parsed.scripts
        assert "url: '/openapi.json'" in script and '"validatorUrl": null' in script
        urls.add("/openapi.json")
    assert expected <= urls
    for url in urls:
        # Same origin: an absolute path, never a scheme, a host or a protocol-relative URL.
        assert url.startswith("/") and not url.startswith("//"), url
    assert "http://" not in r.text and "https://" not in r.text
    # A browser enforces it too: nothing but this origin, for scripts, styles, images, fonts.
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp and "*" not in csp

    for url in sorted(urls):
        asset = httpx.get(served + url, timeout=10)
        assert asset.status_code == 200, url
        want = _TYPES[Path(url).suffix]
        assert asset.headers["content-type"].split(";")[0] == want, (url, asset.headers)
        assert url == "/openapi.json" or asset.headers["x-content-type-options"] == "nosniff"
        if url.endswith("swagger-ui-bundle.js"):
            assert b"SwaggerUIBundle" in asset.content
        elif url.endswith("redoc.standalone.js"):
            assert b"Redoc" in asset.content
        elif url.endswith(".css"):
            assert b".swagger-ui" in asset.content
        elif url.endswith(".png"):
            assert asset.content.startswith(b"\x89PNG\r\n\x1a\n")
        elif url == "/openapi.json":
            assert asset.json()["openapi"].startswith("3.")


def test_an_unknown_asset_is_a_404_in_the_api_error_format(served: str) -> None:
    r = httpx.get(served + "/docs/assets/../../etc/passwd", timeout=10)
    assert r.status_code == 404
    r = httpx.get(served + "/docs/assets/swagger-ui.js", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"]


def test_healthz_says_the_process_is_up_and_whether_it_scans(served: str) -> None:
    r = httpx.get(served + "/healthz", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"ok": True, "scanning": "disabled", "github": "not-configured"}
