"""GitHub discovery (spec phase 1): repositories tagged ``cortex-plugin`` and their manifests.

Talks to GitHub's REST API (search and repository contents) with httpx. The API base URL is a
parameter (GitHub Enterprise: ``https://HOST/api/v3``), the token is passed in by the caller.

Guarantees:
- Search follows ``Link: rel="next"`` pagination only on the API's own origin (a token is never
  sent elsewhere) and stops at ``max_pages``; every response is size-capped.
- Rate limits (403/429 with ``Retry-After`` or ``X-RateLimit-Remaining: 0``) raise
  :class:`GitHubRateLimited` with the wait time; nothing is retried forever.
- Results with names outside GitHub's owner/repository grammar are dropped, never used to build
  a URL or a path; ``github:owner/repo[@ref]`` references are parsed by a strict grammar.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .._json import load_json
from ..errors import InputError, RegistryUnavailable
from ..ids import is_digest

__all__ = [
    "GitHubClient",
    "GitHubRateLimited",
    "GitHubRef",
    "GitHubRefused",
    "GitHubRepo",
    "parse_github_ref",
]

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\Z")
_REPO = re.compile(r"^[A-Za-z0-9_.-]{1,100}\Z")
_REF = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z")
_MAX_RESPONSE = 2 * 1024 * 1024
_MAX_MANIFEST = 64 * 1024


class GitHubRefused(InputError):
    """GitHub refused a write (409 or 422): a reference or pull request that exists, invalid
    fields. ``status`` is GitHub's."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, advice="check the repository's state on GitHub")
        self.status = status


def _message(body: bytes) -> str:
    """GitHub's error ``message`` (and the first error's), bounded, for refusals."""
    try:
        doc = load_json(body)
    except ValueError:
        return "no message"
    if not isinstance(doc, dict):
        return "no message"
    parts = [doc.get("message")]
    errors = doc.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        parts.append(errors[0].get("message"))
    return "; ".join(p for p in parts if isinstance(p, str))[:300] or "no message"


class GitHubRateLimited(RegistryUnavailable):
    """GitHub refused because of a rate limit. ``retry_after`` is in seconds when known."""

    def __init__(self, message: str, *, retry_after: int | None) -> None:
        wait = f"retry in {retry_after} s" if retry_after is not None else "retry later"
        super().__init__(message, advice=f"{wait}, or set GITHUB_TOKEN for a higher limit")
        self.retry_after = retry_after


@dataclass(frozen=True)
class GitHubRef:
    """A parsed ``github:owner/repo[@ref]`` reference."""

    owner: str
    repo: str
    ref: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def __str__(self) -> str:
        return f"github:{self.full_name}" + (f"@{self.ref}" if self.ref else "")


def _valid_repo_name(owner: str, repo: str) -> bool:
    return bool(_OWNER.match(owner) and _REPO.match(repo) and repo not in {".", ".."})


def _valid_ref(ref: str) -> bool:
    return (
        len(ref) <= 200
        and bool(_REF.match(ref))
        and ".." not in ref
        and not ref.endswith((".lock", "."))
        and all(part not in {".", ".."} for part in ref.split("/"))
    )


def parse_github_ref(text: str) -> GitHubRef:
    """Parse ``github:owner/repo[@ref]`` strictly.

    Nothing that could address another host or path is accepted (no scheme, no ``..``, no
    percent-encoding, no extra slashes). Raises :class:`InputError` with the expected form.
    """
    advice = "use github:OWNER/REPO or github:OWNER/REPO@REF, e.g. github:acme/weather@v1.2.0"
    if not text.startswith("github:"):
        raise InputError(f"{text!r} is not a GitHub reference", advice=advice)
    body = text[len("github:"):]
    name, _, ref = body.partition("@")
    owner, slash, repo = name.partition("/")
    if not slash or not _valid_repo_name(owner, repo):
        raise InputError(f"{text!r}: {name!r} is not a valid OWNER/REPO", advice=advice)
    if "@" in body and not _valid_ref(ref):
        raise InputError(f"{text!r}: {ref!r} is not a valid git ref", advice=advice)
    return GitHubRef(owner=owner, repo=repo, ref=ref or None)


@dataclass(frozen=True)
class GitHubRepo:
    """One search result: a repository tagged ``cortex-plugin``."""

    owner: str
    repo: str
    description: str
    stars: int
    topics: tuple[str, ...]
    default_branch: str
    archived: bool

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


def _retry_after(resp: httpx.Response) -> int | None:
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses.
    value = resp.headers.get("retry-after")
    if value and value.isascii() and value.isdigit():
        return int(value)
    reset = resp.headers.get("x-ratelimit-reset")
    date = resp.headers.get("date")
    if reset and reset.isascii() and reset.isdigit() and date:
        from email.utils import parsedate_to_datetime

        try:
            return max(0, int(reset) - int(parsedate_to_datetime(date).timestamp()))
        except (TypeError, ValueError):
            return None
    return None


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        m = re.match(r'\s*<([^>]+)>\s*;\s*rel="([^"]+)"', part)
        if m and "next" in m.group(2).split():
            return m.group(1)
    return None


class GitHubClient:
    """A small client for GitHub's REST API (search and contents).

    ``api_url`` is ``https://api.github.com`` or a GitHub Enterprise ``https://HOST/api/v3``;
    ``transport`` lets tests and embedders supply their own httpx transport.
    """

    def __init__(
        self,
        api_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        max_pages: int = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._origin = urlsplit(self.api_url)[:2]
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "cortex-trust",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.max_pages = max_pages
        self._client = httpx.Client(headers=headers, timeout=timeout, transport=transport,
                                    follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, url: str, params: dict[str, str] | None = None) -> tuple[Any, httpx.Response]:
        return self._request("GET", url, params=params)

    def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                json_body: Any = None) -> tuple[Any, int]:
        """``method`` on ``path`` (below the API URL, e.g. ``/repos/o/r/pulls``): the parsed
        JSON answer (``None`` for an empty one) and the status, for 200, 201 and 204.

        Raises :class:`GitHubRateLimited`, :class:`RegistryUnavailable` (unreachable, 5xx,
        oversized or not JSON), :class:`InputError` for 404 and :class:`GitHubRefused` for 409
        and 422 (GitHub's validation message quoted).
        """
        doc, resp = self._request(method, f"{self.api_url}{path}", params=params, json_body=json_body)
        return doc, resp.status_code

    def _request(self, method: str, url: str, params: dict[str, str] | None = None,
                 json_body: Any = None) -> tuple[Any, httpx.Response]:
        if urlsplit(url)[:2] != self._origin:
            raise RegistryUnavailable(f"GitHub sent a link to another origin ({url!r}); refused")
        try:
            with self._client.stream(method, url, params=params, json=json_body) as resp:
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > _MAX_RESPONSE:
                        raise RegistryUnavailable(
                            f"GitHub's response from {url} exceeds {_MAX_RESPONSE} bytes; refused")
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"cannot reach GitHub at {self.api_url}: {e}",
                                      advice="check the network or the configured GitHub API URL") from None
        if resp.status_code in (403, 429) and (
            resp.status_code == 429
            or resp.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in resp.headers
        ):
            raise GitHubRateLimited("GitHub's rate limit was reached", retry_after=_retry_after(resp))
        if resp.status_code == 404:
            raise InputError(f"GitHub has no {urlsplit(url).path}",
                             advice="check the repository name and ref")
        if resp.status_code in (409, 422):
            raise GitHubRefused(f"GitHub refused {method} {urlsplit(url).path}: {_message(bytes(body))}",
                                status=resp.status_code)
        if resp.status_code not in (200, 201, 204):
            raise RegistryUnavailable(f"GitHub answered HTTP {resp.status_code} for {urlsplit(url).path}",
                                      advice="retry later")
        if not body:
            return None, resp
        try:
            return load_json(bytes(body)), resp
        except ValueError:
            raise RegistryUnavailable("GitHub's response is not valid JSON") from None

    def search_plugins(self, query: str = "", *, per_page: int = 50) -> Iterator[GitHubRepo]:
        """Repositories with topic ``cortex-plugin`` matching ``query``, following pagination.

        Malformed items (bad names, wrong types) are skipped. Raises :class:`GitHubRateLimited`
        or :class:`RegistryUnavailable`; a failure is never read as "no results".
        """
        q = " ".join(filter(None, ["topic:cortex-plugin", query.strip()]))
        url: str | None = f"{self.api_url}/search/repositories"
        params: dict[str, str] | None = {"q": q, "per_page": str(min(max(per_page, 1), 100))}
        pages = 0
        while url and pages < self.max_pages:
            doc, resp = self._get(url, params)
            pages += 1
            params = None  # the next link carries its own query
            if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
                raise RegistryUnavailable("GitHub's search response has no `items` list")
            for item in doc["items"]:
                repo = self._repo(item)
                if repo is not None:
                    yield repo
            url = _next_link(resp.headers.get("link"))

    @staticmethod
    def _repo(item: Any) -> GitHubRepo | None:
        if not isinstance(item, dict):
            return None
        owner = item.get("owner")
        login = owner.get("login") if isinstance(owner, dict) else None
        name = item.get("name")
        if not isinstance(login, str) or not isinstance(name, str) or not _valid_repo_name(login, name):
            return None
        topics = item.get("topics")
        desc = item.get("description")
        branch = item.get("default_branch")
        stars = item.get("stargazers_count")
        return GitHubRepo(
            owner=login,
            repo=name,
            description=desc[:500] if isinstance(desc, str) else "",
            stars=stars if isinstance(stars, int) and not isinstance(stars, bool) else 0,
            topics=tuple(t for t in topics if isinstance(t, str))[:50] if isinstance(topics, list) else (),
            default_branch=branch if isinstance(branch, str) and _valid_ref(branch) else "main",
            archived=item.get("archived") is True,
        )

    def attestations(self, ref: GitHubRef, digest: str, *, limit: int = 10) -> list[bytes]:
        """Sigstore bundles GitHub holds for ``digest`` in ``ref``'s repository (artifact
        attestations, ``GET /repos/{owner}/{repo}/attestations/{subject_digest}``), as JSON bytes.

        Nothing is trusted here: the caller verifies each bundle and the policy judges its signer.
        A repository without attestations for the digest gives ``[]`` (GitHub answers 404).
        """
        if not is_digest(digest):
            raise InputError(f"{digest!r} is not a sha256 digest")
        url = (f"{self.api_url}/repos/{quote(ref.owner, safe='')}/{quote(ref.repo, safe='')}"
               f"/attestations/{digest}")
        try:
            doc, _ = self._get(url, {"per_page": str(limit)})
        except InputError:
            return []
        items = doc.get("attestations") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise RegistryUnavailable("GitHub's attestations response has no `attestations` list")
        out = []
        for item in items[:limit]:
            bundle = item.get("bundle") if isinstance(item, dict) else None
            if isinstance(bundle, dict):
                out.append(json.dumps(bundle).encode())
        return out

    def read_manifest(self, ref: GitHubRef, *, path: str = "manifest.yaml") -> bytes:
        """The bytes of ``manifest.yaml`` in ``ref``'s repository at its ref (default branch if
        none). Raises :class:`InputError` when absent or too large."""
        url = (f"{self.api_url}/repos/{quote(ref.owner, safe='')}/{quote(ref.repo, safe='')}"
               f"/contents/{quote(path)}")
        doc, _ = self._get(url, {"ref": ref.ref} if ref.ref else None)
        if not isinstance(doc, dict) or doc.get("type") != "file" or doc.get("encoding") != "base64":
            raise InputError(f"{ref}: {path} is not a file in the repository",
                             advice="a cortex plugin repository has manifest.yaml at its root")
        content = doc.get("content")
        if not isinstance(content, str):
            raise RegistryUnavailable(f"{ref}: GitHub returned no content for {path}")
        try:
            data = base64.b64decode(content.replace("\n", ""), validate=True)
        except ValueError:
            raise RegistryUnavailable(f"{ref}: GitHub returned invalid base64 for {path}") from None
        if len(data) > _MAX_MANIFEST:
            raise InputError(f"{ref}: {path} is larger than {_MAX_MANIFEST} bytes")
        return data
