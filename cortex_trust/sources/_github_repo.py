"""The registry repository on GitHub: promotion pull requests and dispute issues.

What the registry's governance asks of GitHub's REST API, through :class:`GitHubClient` (same
origin rule, size cap, rate-limit and error handling): branches (``git/ref``, ``git/refs``), one
file per index entry (``contents``), pull requests and their reviews (``pulls``), issues and their
labels (``issues``). Answers are parsed into small frozen values; an answer of the wrong shape is
:class:`~cortex_trust.errors.RegistryUnavailable`, never a default.

Guarantees:

* Every repository name and ref is held to GitHub's grammar before it is put into a URL;
  paths are percent-encoded per segment.
* :meth:`RegistryRepository.open_pull` is idempotent: an existing branch is reused, the index
  entry is written only when it differs, and an existing pull request of the branch is returned.
* :func:`current_reviews` keeps each account's latest review that is not a plain comment (how
  GitHub itself counts reviews), in the order the accounts first reviewed.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import InputError, RegistryUnavailable
from ..ids import SLUG
from ._github import GitHubClient, GitHubRefused, _valid_ref, _valid_repo_name

__all__ = [
    "DISPUTE_LABEL",
    "SECURITY_LABEL",
    "GitHubIssue",
    "GitHubPull",
    "GitHubReview",
    "RegistryRepository",
    "current_reviews",
    "dispute_issue",
    "index_entry",
    "parse_dispute_marker",
    "parse_repository",
    "web_url",
]

#: The label every dispute carries, and the one a security dispute carries too.
DISPUTE_LABEL = "dispute"
SECURITY_LABEL = "security"
#: The machine-readable line of the dispute template: which plugin (and version) it is about.
_MARKER = re.compile(r"<!-- cortex-dispute: (\{[^<>]{1,400}\}) -->")
_SLUG = re.compile(rf"^{SLUG}\Z")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,127}\Z")


def web_url(api_url: str) -> str:
    """The web address of the GitHub an API URL belongs to: ``https://github.com`` for
    ``https://api.github.com``, ``https://HOST`` for GitHub Enterprise's ``https://HOST/api/v3``."""
    base = api_url.rstrip("/")
    if base == "https://api.github.com":
        return "https://github.com"
    return base.removesuffix("/api/v3")


def dispute_issue(*, plugin: str, version: str | None, digest: str | None, page: str | None,
                  reason: str, security: bool) -> tuple[str, str, list[str]]:
    """The dispute issue's title, body (a fixed template, with the marker the registry reads
    back) and labels."""
    marker = json.dumps({"plugin": plugin, "version": version, "security": security},
                        separators=(",", ":"))
    what = f"{plugin}@{version}" if version else plugin
    body = "\n".join([
        f"<!-- cortex-dispute: {marker} -->",
        "### Disputed plugin",
        f"- Plugin: `{plugin}`",
        f"- Version: `{version or 'all versions'}`",
        f"- Digest: `{digest or 'n/a'}`",
        f"- Registry page: {page or 'n/a'}",
        f"- Security: {'yes' if security else 'no'}",
        "",
        "### Reason",
        reason,
        "",
    ])
    labels = [DISPUTE_LABEL] + ([SECURITY_LABEL] if security else [])
    return f"Dispute: {what}" + (" (security)" if security else ""), body, labels


def parse_dispute_marker(body: str) -> tuple[str, str, str | None, bool] | None:
    """``(namespace, name, version, security)`` from a dispute issue's body, or ``None`` when it
    carries no well-formed marker."""
    m = _MARKER.search(body[:65536])
    if m is None:
        return None
    try:
        doc = json.loads(m.group(1))
    except ValueError:
        return None
    plugin, version = doc.get("plugin"), doc.get("version")
    if not isinstance(plugin, str) or plugin.count("/") != 1:
        return None
    ns, name = plugin.split("/")
    if not _SLUG.match(ns) or not _SLUG.match(name):
        return None
    if version is not None and not (isinstance(version, str) and _VERSION.match(version)):
        return None
    return ns, name, version, doc.get("security") is True

#: At most this many pages of reviews are read (100 per page).
_MAX_REVIEW_PAGES = 5


def parse_repository(text: str) -> tuple[str, str]:
    """``OWNER/REPO`` split, held to GitHub's grammar. Raises :class:`InputError`."""
    owner, slash, repo = text.partition("/")
    if not slash or not _valid_repo_name(owner, repo):
        raise InputError(f"{text!r} is not a GitHub repository (OWNER/REPO)",
                         advice="name the registry repository as OWNER/REPO, e.g. cortex/registry-index")
    return owner, repo


@dataclass(frozen=True)
class GitHubPull:
    """A pull request as GitHub reports it."""

    number: int
    url: str
    state: str
    merged: bool
    merge_commit: str | None
    merged_at: str | None
    head_sha: str
    head_ref: str
    created_at: str


@dataclass(frozen=True)
class GitHubReview:
    """One submitted review: ``state`` as GitHub names it (``APPROVED``, ``CHANGES_REQUESTED``,
    ``COMMENTED``, ``DISMISSED``)."""

    login: str
    state: str
    submitted_at: str | None
    commit_id: str | None


@dataclass(frozen=True)
class GitHubIssue:
    """An issue as GitHub reports it (pull requests, which the issues API lists too, are not
    issues here: ``is_pull`` says so)."""

    number: int
    url: str
    state: str
    labels: tuple[str, ...]
    title: str
    body: str
    created_at: str
    closed_at: str | None
    is_pull: bool


def current_reviews(reviews: list[GitHubReview]) -> list[GitHubReview]:
    """Each account's current review: its latest that is not ``COMMENTED`` (nor ``PENDING``)."""
    latest: dict[str, GitHubReview] = {}
    for r in reviews:
        if r.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest.pop(r.login.lower(), None)
            latest[r.login.lower()] = r
    return list(latest.values())


def _str(doc: Any, key: str, what: str, *, optional: bool = False) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RegistryUnavailable(f"GitHub's {what} has no {key!r}", advice="retry later")
    return value


def _int(doc: Any, key: str, what: str) -> int:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RegistryUnavailable(f"GitHub's {what} has no {key!r}", advice="retry later")
    return value


def _pull(doc: Any) -> GitHubPull:
    head = doc.get("head") if isinstance(doc, dict) else None
    return GitHubPull(
        number=_int(doc, "number", "pull request"), url=_str(doc, "html_url", "pull request"),
        state=_str(doc, "state", "pull request"), merged=doc.get("merged") is True,
        merge_commit=_str(doc, "merge_commit_sha", "pull request", optional=True)
        if doc.get("merged") is True else None,
        merged_at=_str(doc, "merged_at", "pull request", optional=True),
        head_sha=_str(head, "sha", "pull request head"), head_ref=_str(head, "ref", "pull request head"),
        created_at=_str(doc, "created_at", "pull request"))


def _issue(doc: Any) -> GitHubIssue:
    labels = doc.get("labels") if isinstance(doc, dict) else None
    names = tuple(lb["name"] for lb in labels if isinstance(lb, dict) and isinstance(lb.get("name"), str)) \
        if isinstance(labels, list) else ()
    body = doc.get("body") if isinstance(doc, dict) else None
    return GitHubIssue(
        number=_int(doc, "number", "issue"), url=_str(doc, "html_url", "issue"),
        state=_str(doc, "state", "issue"), labels=names[:30], title=_str(doc, "title", "issue"),
        body=body if isinstance(body, str) else "", created_at=_str(doc, "created_at", "issue"),
        closed_at=_str(doc, "closed_at", "issue", optional=True),
        is_pull=isinstance(doc.get("pull_request"), dict))


class RegistryRepository:
    """The registry repository ``owner/repo`` on the GitHub API ``client`` talks to."""

    def __init__(self, client: GitHubClient, repository: str) -> None:
        self.client = client
        self.owner, self.repo = parse_repository(repository)
        self._base = f"/repos/{quote(self.owner, safe='')}/{quote(self.repo, safe='')}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    def info(self) -> dict[str, Any]:
        """The repository document (``GET /repos/{owner}/{repo}``): reachable and visible."""
        doc, _ = self.client.request("GET", self._base)
        if not isinstance(doc, dict) or not isinstance(doc.get("default_branch"), str):
            raise RegistryUnavailable("GitHub's repository document has no default branch")
        return doc

    # -------------------------------------------------------------------- pull requests

    def open_pull(self, *, base: str, branch: str, path: str, content: bytes, title: str,
                  body: str) -> GitHubPull:
        """The pull request that adds ``content`` at ``path`` on ``branch`` (from ``base``):
        created, or the existing one of that branch (in any state)."""
        for ref in (base, branch):
            if not _valid_ref(ref):
                raise InputError(f"{ref!r} is not a valid branch name")
        existing = self.pull_of_branch(branch)
        if existing is not None:
            return existing
        base_doc, _ = self.client.request("GET", f"{self._base}/git/ref/heads/{_path(base)}")
        base_sha = _str(base_doc.get("object") if isinstance(base_doc, dict) else None, "sha", "base branch")
        try:
            self.client.request("POST", f"{self._base}/git/refs",
                                json_body={"ref": f"refs/heads/{branch}", "sha": base_sha})
        except GitHubRefused:
            pass  # the branch exists (an earlier attempt): reuse it
        current = self.read_file(path, ref=branch)
        if current is None or current[0] != content:
            put: dict[str, Any] = {"message": title, "branch": branch,
                                   "content": base64.b64encode(content).decode()}
            if current is not None:
                put["sha"] = current[1]
            self.client.request("PUT", f"{self._base}/contents/{_path(path)}", json_body=put)
        try:
            doc, _ = self.client.request("POST", f"{self._base}/pulls", json_body={
                "title": title, "head": branch, "base": base, "body": body})
        except GitHubRefused:
            found = self.pull_of_branch(branch)  # created concurrently
            if found is None:
                raise
            return found
        return _pull(doc)

    def pull_of_branch(self, branch: str) -> GitHubPull | None:
        """The newest pull request whose head is ``branch`` of this repository, in any state."""
        doc, _ = self.client.request("GET", f"{self._base}/pulls", params={
            "head": f"{self.owner}:{branch}", "state": "all", "per_page": "10"})
        if not isinstance(doc, list):
            raise RegistryUnavailable("GitHub's pull request list is not a list")
        pulls = [_pull(d) for d in doc]
        return max(pulls, key=lambda p: p.number) if pulls else None

    def pull(self, number: int) -> GitHubPull:
        doc, _ = self.client.request("GET", f"{self._base}/pulls/{int(number)}")
        return _pull(doc)

    def reviews(self, number: int) -> list[GitHubReview]:
        """Every submitted review of pull request ``number``, oldest first (bounded pages)."""
        out: list[GitHubReview] = []
        for page in range(1, _MAX_REVIEW_PAGES + 1):
            doc, _ = self.client.request("GET", f"{self._base}/pulls/{int(number)}/reviews",
                                         params={"per_page": "100", "page": str(page)})
            if not isinstance(doc, list):
                raise RegistryUnavailable("GitHub's review list is not a list")
            for d in doc:
                user = d.get("user") if isinstance(d, dict) else None
                login = _str(user, "login", "review author")
                out.append(GitHubReview(login=login, state=_str(d, "state", "review"),
                                        submitted_at=_str(d, "submitted_at", "review", optional=True),
                                        commit_id=_str(d, "commit_id", "review", optional=True)))
            if len(doc) < 100:
                break
        return out

    def read_file(self, path: str, *, ref: str) -> tuple[bytes, str] | None:
        """The bytes and blob sha of ``path`` at ``ref`` (a branch or a commit), ``None`` when
        there is no such file."""
        try:
            doc, _ = self.client.request("GET", f"{self._base}/contents/{_path(path)}", params={"ref": ref})
        except InputError as e:
            if isinstance(e, GitHubRefused):
                raise
            return None
        if not isinstance(doc, dict) or doc.get("type") != "file" or doc.get("encoding") != "base64":
            return None
        try:
            data = base64.b64decode(_str(doc, "content", "file").replace("\n", ""), validate=True)
        except ValueError:
            raise RegistryUnavailable(f"GitHub returned invalid base64 for {path}") from None
        return data, _str(doc, "sha", "file")

    # ------------------------------------------------------------------------- issues

    def create_issue(self, *, title: str, body: str, labels: list[str]) -> GitHubIssue:
        doc, _ = self.client.request("POST", f"{self._base}/issues",
                                     json_body={"title": title, "body": body, "labels": labels})
        return _issue(doc)

    def issue(self, number: int) -> GitHubIssue:
        doc, _ = self.client.request("GET", f"{self._base}/issues/{int(number)}")
        return _issue(doc)

    def add_labels(self, number: int, labels: list[str]) -> None:
        self.client.request("POST", f"{self._base}/issues/{int(number)}/labels", json_body={"labels": labels})


def _path(path: str) -> str:
    return "/".join(quote(part, safe="") for part in path.split("/"))


def index_entry(document: dict[str, Any]) -> bytes:
    """The bytes of an index entry file: canonical JSON (sorted keys, two-space indent)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
