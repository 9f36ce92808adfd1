"""A local HTTP server speaking the part of GitHub's REST API that cortex-trust uses.

Shapes follow GitHub's documentation: ``GET /search/repositories`` (``total_count``,
``incomplete_results``, ``items[]`` with ``owner.login``, ``name``, ``topics`` ...) with
``Link`` pagination; ``GET /repos/{owner}/{repo}/contents/{path}?ref=`` (``type: file``,
``encoding: base64``, ``content``); rate limiting (403 with ``X-RateLimit-Remaining: 0`` and
``X-RateLimit-Reset``, or 429 with ``Retry-After``). Behaviour is switched per test through
attributes of :class:`FakeGitHub`.

The registry repository's side (:class:`Repo`, in ``FakeGitHub.repositories``): branches and
commits (``git/ref``, ``git/refs``), ``contents`` reads and writes at a branch or commit, pull
requests (``pulls``: create, list by ``head``, get) and their reviews, issues (create, get,
labels: as on GitHub, labels asked for by a token without push access are dropped). Tests act as
GitHub's users through :class:`Repo`'s methods (review, merge, close, push) and send webhook
deliveries built by :func:`delivery` (payload shapes and headers as GitHub documents them,
``X-Hub-Signature-256`` an HMAC-SHA256 of the body). ``fail_next`` makes the next requests answer
with the given statuses (5xx).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import uuid
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


_NOW = "2026-11-20T10:00:00Z"
_SHAS = itertools.count(1)


def _sha() -> str:
    return hashlib.sha1(str(next(_SHAS)).encode()).hexdigest()


@dataclass
class Repo:
    """One repository with branches, commits, pull requests and issues (shared numbering)."""

    owner: str
    name: str
    base_url: str = ""
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: bytes}
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head sha
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1

    def __post_init__(self) -> None:
        sha = _sha()
        self.commits[sha] = {"README.md": b"registry index\n"}
        self.branches["main"] = sha

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def html(self, kind: str, number: int) -> str:
        return f"https://github.example/{self.full_name}/{kind}/{number}"

    def files_at(self, ref: str) -> dict[str, bytes] | None:
        return self.commits.get(self.branches.get(ref, ref))

    def commit(self, branch: str, path: str, content: bytes | None) -> str:
        files = dict(self.commits[self.branches[branch]])
        if content is None:
            files.pop(path, None)
        else:
            files[path] = content
        sha = _sha()
        self.commits[sha] = files
        self.branches[branch] = sha
        for pr in self.pulls.values():  # open pull requests follow their branch
            if pr["head"]["ref"] == branch and pr["state"] == "open":
                pr["head"]["sha"] = sha
        return sha

    def _number(self) -> int:
        n = self.next_number
        self.next_number += 1
        return n

    # -- acting as GitHub users ---------------------------------------------------------------

    def review(self, number: int, login: str, state: str, *, commit: str | None = None) -> None:
        """``login`` submits a review (``APPROVED``, ``CHANGES_REQUESTED``, ``COMMENTED``)."""
        pr = self.pulls[number]
        self.reviews.setdefault(number, []).append({
            "id": len(self.reviews.get(number, [])) + 1, "user": {"login": login, "type": "User"},
            "body": "", "state": state, "submitted_at": _NOW,
            "commit_id": commit or pr["head"]["sha"],
            "html_url": f"{pr['html_url']}#pullrequestreview-1"})

    def close_pull(self, number: int, *, merged: bool = False) -> None:
        pr = self.pulls[number]
        pr["state"] = "closed"
        pr["closed_at"] = _NOW
        if merged:
            pr["merged"] = True
            pr["merged_at"] = _NOW
            pr["merge_commit_sha"] = _sha()

    def push(self, number: int, path: str, content: bytes | None) -> None:
        """A new commit on the pull request's branch (``None`` deletes the file)."""
        self.commit(self.pulls[number]["head"]["ref"], path, content)

    def set_issue(self, number: int, *, state: str | None = None, labels: list[str] | None = None) -> None:
        issue = self.issues[number]
        if state is not None:
            issue["state"] = state
            issue["closed_at"] = _NOW if state == "closed" else None
        if labels is not None:
            issue["labels"] = [{"name": n} for n in labels]

    # -- the REST API ---------------------------------------------------------------------------

    def handle(self, method: str, rest: list[str], q: dict[str, str], body: Any,
               can_push: bool) -> tuple[int, Any]:
        if not rest:
            return 200, {"full_name": self.full_name, "default_branch": "main",
                         "permissions": {"push": can_push, "pull": True}}
        kind = rest[0]
        if kind == "git" and rest[1:3] == ["ref", "heads"] and method == "GET":
            branch = "/".join(rest[3:])
            if branch not in self.branches:
                return 404, {"message": "Not Found"}
            return 200, {"ref": f"refs/heads/{branch}", "object": {"sha": self.branches[branch], "type": "commit"}}
        if kind == "git" and rest[1:] == ["refs"] and method == "POST":
            branch = str(body.get("ref", "")).removeprefix("refs/heads/")
            if branch in self.branches:
                return 422, {"message": "Reference already exists"}
            if body.get("sha") not in self.commits:
                return 422, {"message": "Object does not exist"}
            self.branches[branch] = body["sha"]
            return 201, {"ref": f"refs/heads/{branch}", "object": {"sha": body["sha"]}}
        if kind == "contents":
            path = "/".join(rest[1:])
            if method == "GET":
                files = self.files_at(q.get("ref", "main"))
                if files is None or path not in files:
                    return 404, {"message": "Not Found"}
                data = files[path]
                return 200, {"type": "file", "encoding": "base64", "size": len(data), "path": path,
                             "sha": hashlib.sha1(data).hexdigest(),
                             "content": base64.encodebytes(data).decode()}
            if method == "PUT":
                branch = body.get("branch", "main")
                if branch not in self.branches:
                    return 404, {"message": "Branch not found"}
                current = self.files_at(branch) or {}
                if path in current and body.get("sha") != hashlib.sha1(current[path]).hexdigest():
                    return 409, {"message": f"{path} does not match"}
                sha = self.commit(branch, path, base64.b64decode(body["content"]))
                return 201, {"content": {"path": path}, "commit": {"sha": sha}}
        if kind == "pulls":
            if len(rest) == 1 and method == "POST":
                head = body.get("head")
                if head not in self.branches:
                    return 422, {"message": "Validation Failed", "errors": [{"message": "head invalid"}]}
                if any(p["head"]["ref"] == head and p["state"] == "open" for p in self.pulls.values()):
                    return 422, {"message": "Validation Failed",
                                 "errors": [{"message": f"A pull request already exists for {self.owner}:{head}."}]}
                n = self._number()
                self.pulls[n] = {
                    "number": n, "html_url": self.html("pull", n), "state": "open", "title": body.get("title"),
                    "body": body.get("body"), "merged": False, "merged_at": None, "merge_commit_sha": None,
                    "closed_at": None, "created_at": _NOW, "user": {"login": "cortex-registry-bot"},
                    "head": {"ref": head, "sha": self.branches[head], "repo": {"full_name": self.full_name}},
                    "base": {"ref": body.get("base", "main"), "repo": {"full_name": self.full_name}}}
                return 201, self.pulls[n]
            if len(rest) == 1 and method == "GET":
                owner, _, branch = q.get("head", ":").partition(":")
                found = [p for p in self.pulls.values()
                         if owner == self.owner and p["head"]["ref"] == branch
                         and q.get("state", "open") in ("all", p["state"])]
                return 200, found
            n = int(rest[1])
            if n not in self.pulls:
                return 404, {"message": "Not Found"}
            if len(rest) == 2:
                return 200, self.pulls[n]
            if rest[2:] == ["reviews"]:
                page, per = int(q.get("page", "1")), int(q.get("per_page", "30"))
                return 200, self.reviews.get(n, [])[(page - 1) * per: page * per]
        if kind == "issues":
            if len(rest) == 1 and method == "POST":
                n = self._number()
                labels = body.get("labels", []) if can_push else []  # GitHub drops them silently
                self.issues[n] = {"number": n, "html_url": self.html("issues", n), "state": "open",
                                  "title": body.get("title"), "body": body.get("body"),
                                  "labels": [{"name": lb} for lb in labels], "created_at": _NOW,
                                  "closed_at": None, "user": {"login": "someone"}}
                return 201, self.issues[n]
            n = int(rest[1])
            if n not in self.issues:
                return 404, {"message": "Not Found"}
            if len(rest) == 2:
                return 200, self.issues[n]
            if rest[2:] == ["labels"] and method == "POST":
                if not can_push:
                    return 403, {"message": "Must have push access"}
                have = {lb["name"] for lb in self.issues[n]["labels"]}
                self.issues[n]["labels"] += [{"name": lb} for lb in body.get("labels", []) if lb not in have]
                return 200, self.issues[n]["labels"]
        return 404, {"message": "Not Found"}


def delivery(event: str, payload: dict[str, Any], *, secret: str,
             delivery_id: str | None = None) -> tuple[dict[str, str], bytes]:
    """The headers and body GitHub sends for one webhook delivery, signed with ``secret``."""
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature, "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test"}, body


def pull_request_event(repo: Repo, number: int, action: str = "synchronize") -> dict[str, Any]:
    """A ``pull_request`` event payload (``opened``, ``closed``, ``synchronize`` ...)."""
    return {"action": action, "number": number, "pull_request": repo.pulls[number],
            "repository": {"full_name": repo.full_name, "name": repo.name, "owner": {"login": repo.owner}},
            "sender": {"login": "octo-reviewer"}}


def review_event(repo: Repo, number: int) -> dict[str, Any]:
    """A ``pull_request_review`` event payload for the pull request's latest review."""
    review = (repo.reviews.get(number) or [{}])[-1]
    return {"action": "submitted", "review": review, "pull_request": repo.pulls[number],
            "repository": {"full_name": repo.full_name, "name": repo.name, "owner": {"login": repo.owner}},
            "sender": review.get("user", {"login": "someone"})}


def issue_event(repo: Repo, number: int, action: str = "edited") -> dict[str, Any]:
    """An ``issues`` event payload (``opened``, ``closed``, ``labeled`` ...)."""
    return {"action": action, "issue": repo.issues[number],
            "repository": {"full_name": repo.full_name, "name": repo.name, "owner": {"login": repo.owner}},
            "sender": {"login": "someone"}}


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
    #: Repositories with pull requests and issues, by ``owner/name``.
    repositories: dict[str, Repo] = field(default_factory=dict)
    #: Tokens with push access (the others can open issues, and their labels are dropped).
    push_tokens: set[str] = field(default_factory=set)
    #: Statuses the next requests answer with, first first (e.g. ``[502]``).
    fail_next: list[int] = field(default_factory=list)
    #: A path prefix every route sits under (GitHub Enterprise: ``/api/v3``).
    prefix: str = ""

    def repo(self, full_name: str) -> Repo:
        """The repository ``owner/name``, created on first use."""
        if full_name not in self.repositories:
            owner, name = full_name.split("/")
            self.repositories[full_name] = Repo(owner, name)
        return self.repositories[full_name]

    def handle(self, h: BaseHTTPRequestHandler, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        u = urlsplit(h.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.requests.append((u.path, u.query, dict(h.headers)))
        if self.prefix:
            if not u.path.startswith(self.prefix + "/"):
                return 404, {}, b'{"message": "Not Found"}'
            u = u._replace(path=u.path[len(self.prefix):])
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, {}, json.dumps({"message": "Server Error"}).encode()
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
        if len(parts) >= 4 and parts[1] == "repos" and f"{parts[2]}/{parts[3]}" in self.repositories:
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length else b""
            auth = h.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if method != "GET" and token is None:
                return 401, {}, b'{"message": "Requires authentication"}'
            status, doc = self.repositories[f"{parts[2]}/{parts[3]}"].handle(
                method, parts[4:], q, json.loads(raw) if raw else {}, token in self.push_tokens)
            return status, {}, json.dumps(doc).encode()
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
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def do_PUT(self) -> None:
            self._answer("PUT")

        def _answer(self, method: str) -> None:
            status, headers, body = fake.handle(self, method)
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
