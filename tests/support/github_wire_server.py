"""A local HTTP server speaking the part of GitHub's REST API that cortex-trust uses.

Shapes follow GitHub's documentation: ``GET /search/repositories`` (``total_count``,
``incomplete_results``, ``items[]`` with ``owner.login``, ``name``, ``topics`` ...) with
``Link`` pagination; ``GET /repos/{owner}/{repo}/contents/{path}?ref=`` (``type: file``,
``encoding: base64``, ``content``); rate limiting (403 with ``X-RateLimit-Remaining: 0`` and
``X-RateLimit-Reset``, or 429 with ``Retry-After``). Behaviour is switched per test through
attributes of :class:`FakeGitHub`.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def repo_item(owner: str, name: str, *, description: str = "", topics: tuple[str, ...] = ("cortex-plugin",),
              stars: int = 0) -> dict[str, Any]:
    return {
        "id": abs(hash((owner, name))) % 10**9,
        "name": name,
        "full_name": f"{owner}/{name}",
        "owner": {"login": owner, "type": "Organization"},
        "description": description,
        "html_url": f"https://github.com/{owner}/{name}",
        "stargazers_count": stars,
        "topics": list(topics),
        "default_branch": "main",
        "archived": False,
    }


@dataclass
class FakeGitHub:
    repos: list[dict[str, Any]] = field(default_factory=list)
    files: dict[tuple[str, str, str, str], bytes] = field(default_factory=dict)  # (owner, repo, ref, path)
    per_page: int = 2
    rate_limited: str | None = None  # None | "primary" | "secondary"
    raw_search_body: bytes | None = None  # hostile override of the search response
    next_link_override: str | None = None
    # (owner, repo, digest) -> Sigstore bundles
    attestations: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    def handle(self, h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        u = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.requests.append((u.path, u.query, dict(h.headers)))
        if self.rate_limited == "primary":
            return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"}, \
                json.dumps({"message": "API rate limit exceeded"}).encode()
        if self.rate_limited == "secondary":
            return 429, {"Retry-After": "60"}, json.dumps({"message": "secondary rate limit"}).encode()
        if u.path == "/search/repositories":
            if self.raw_search_body is not None:
                return 200, {}, self.raw_search_body
            terms = q.get("q", "").split()
            if "topic:cortex-plugin" not in terms:
                return 422, {}, b'{"message": "Validation Failed"}'
            words = [t.lower() for t in terms if not t.startswith("topic:")]
            hits = [r for r in self.repos if "cortex-plugin" in r["topics"]
                    and all(w in (r["name"] + " " + (r["description"] or "")).lower() for w in words)]
            page = int(q.get("page", "1"))
            per = min(int(q.get("per_page", "30")), self.per_page)
            chunk = hits[(page - 1) * per: page * per]
            headers = {}
            if page * per < len(hits):
                nxt = self.next_link_override or (
                    f"{self.base_url}/search/repositories?q={q['q'].replace(' ', '+')}&per_page={per}&page={page + 1}")
                headers["Link"] = f'<{nxt}>; rel="next", <{self.base_url}/search/repositories?page=99>; rel="last"'
            body = {"total_count": len(hits), "incomplete_results": False, "items": chunk}
            return 200, headers, json.dumps(body).encode()
        parts = u.path.split("/")
        if len(parts) == 6 and parts[1] == "repos" and parts[4] == "attestations":
            found = self.attestations.get((parts[2], parts[3], parts[5]))
            if not found:
                return 404, {}, b'{"message": "Not Found"}'
            return 200, {}, json.dumps({"attestations": [{"bundle": b, "repository_id": 1} for b in found]}).encode()
        if len(parts) >= 6 and parts[1] == "repos" and parts[4] == "contents":
            owner, repo, path = parts[2], parts[3], "/".join(parts[5:])
            key = (owner, repo, q.get("ref", "main"), path)
            if key not in self.files:
                return 404, {}, b'{"message": "Not Found"}'
            data = self.files[key]
            return 200, {}, json.dumps({"type": "file", "encoding": "base64", "size": len(data), "path": path,
                                        "content": base64.encodebytes(data).decode()}).encode()
        return 404, {}, b'{"message": "Not Found"}'


def serve(fake: FakeGitHub) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = fake.handle(self)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    fake.base_url = url
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url
