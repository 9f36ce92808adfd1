"""The registry's GitHub side: promotion pull requests, disputes, webhooks and polling.

The registry repository (``OWNER/REPO`` on github.com or a GitHub Enterprise API) is where
people review: a promotion is a pull request adding one index entry file for a version, a
dispute is an issue. GitHub reports, the policy judges (``evidence.promotion``,
``evidence.disputes``).

Guarantees:

* **GitHub is always re-read.** A webhook delivery only says *which* pull request or issue
  changed; its state, reviews, labels and the index entry at the pull request's head are read
  from GitHub's API, so a forged, stale, duplicated or reordered delivery can never make the
  registry store something GitHub does not say now. Polling (:meth:`Governance.poll_once`, run
  by the periodic job :func:`governance_poll` about every ``poll_seconds``) is the same refresh
  for the open ones, at most ``poll_batch`` per run.
* **Deliveries are authenticated before they are read**: the body is capped
  (``max_webhook_bytes``), its ``X-Hub-Signature-256`` HMAC-SHA256 under the webhook secret is
  compared in constant time, and only then is it parsed; a delivery about another repository is
  refused, a replayed delivery id changes nothing.
* **Nothing half-written**: GitHub is asked before the write transaction; when GitHub fails
  (5xx, rate limit, unreachable) the request ends in ``GITHUB_UNAVAILABLE`` (retry later) and the
  registry is unchanged (a webhook delivery is not marked processed, so GitHub's redelivery
  works).
* A promotion request is idempotent: one pull request per version (its branch is derived from
  the version), returned again on a second request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cortex_trust.errors import CortexTrustError, InputError, RegistryUnavailable
from cortex_trust.ids import DIGEST_PATTERN
from cortex_trust.policy import format_time
from cortex_trust.sources import DISPUTE_LABEL, SECURITY_LABEL, parse_dispute_marker

from ._errors import ApiError, Forbidden, Invalid, NotFound, TooLarge, Unauthorized, Unavailable
from ._jobs import app
from ._store import Principal, PromotionFacts, Store, Watched
from ._store._rows import Evaluator

__all__ = ["DISPUTE_LABEL", "GOVERNANCE_QUEUE", "GOVERNANCE_TASK", "SECURITY_LABEL", "Governance", "GovernanceConfig",
           "governance_poll", "verify_signature"]

#: The periodic poll of the registry repository (a job of :mod:`registry._jobs`), and its queue.
GOVERNANCE_TASK = "registry.governance_poll"
GOVERNANCE_QUEUE = "governance"
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9-]{1,64}\Z")


@dataclass(frozen=True)
class GovernanceConfig:
    """Where the registry's GitHub side lives. Secrets come from the environment or a file
    (``cortex registry serve``), never from the command line.

    ``repository`` is the registry repository (``OWNER/REPO``); ``api_url`` GitHub's API
    (``https://HOST/api/v3`` for GitHub Enterprise); ``token`` the registry's GitHub token (opens
    pull requests, labels disputes); ``webhook_secret`` the secret GitHub signs deliveries with
    (without one the webhook route refuses every delivery). ``public_url`` is this registry's
    address, for links in index entries.
    """

    repository: str
    api_url: str = "https://api.github.com"
    token: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    base_branch: str = "main"
    index_dir: str = "plugins"
    public_url: str | None = None
    #: Polling: at most ``poll_batch`` open promotions and disputes are re-read per
    #: ``poll_seconds``; 0 turns polling off (webhooks only).
    poll_seconds: float = 300.0
    poll_batch: int = 20
    max_webhook_bytes: int = 256 * 1024
    timeout: float = 10.0
    #: An httpx transport (tests, embedders).
    transport: Any = field(default=None, repr=False, compare=False)

    @property
    def web_url(self) -> str:
        """The repository's GitHub page (``https://HOST/OWNER/REPO``)."""
        from cortex_trust.sources import web_url

        return f"{web_url(self.api_url)}/{self.repository}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of body under secret>`` (GitHub's
    ``X-Hub-Signature-256``), compared in constant time."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("ascii", "replace"))


def _digest_of_entry(data: bytes | None, key: str) -> str | None:
    """The digest an index entry names, when it is the entry of ``key`` (``ns/name@version``)."""
    if data is None or len(data) > 65536:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or f"{doc.get('namespace')}/{doc.get('name')}@{doc.get('version')}" != key:
        return None
    digest = doc.get("digest")
    return digest if isinstance(digest, str) and re.fullmatch(DIGEST_PATTERN, digest) else None


class Governance:
    """Promotions, disputes, webhook deliveries and polling for one registry process."""

    def __init__(self, config: GovernanceConfig, *, store: Store, evaluate: Evaluator,
                 clock: Callable[[], datetime]) -> None:
        from cortex_trust.sources import parse_repository

        parse_repository(config.repository)  # refuse a bad name at start, not at first use
        self.config = config
        self.store = store
        self.evaluate = evaluate
        self.clock = clock
        self._paused_until: datetime | None = None

    # ------------------------------------------------------------------ GitHub

    @contextmanager
    def _github(self) -> Iterator[Any]:
        """The registry repository's client; GitHub failures become ``GITHUB_UNAVAILABLE``."""
        from cortex_trust.sources import GitHubClient, GitHubRateLimited, RegistryRepository

        try:
            with GitHubClient(self.config.api_url, token=self.config.token, timeout=self.config.timeout,
                              transport=self.config.transport) as client:
                yield RegistryRepository(client, self.config.repository)
        except GitHubRateLimited as e:
            raise Unavailable("GITHUB_RATE_LIMITED", f"GitHub's rate limit was reached: {e.message}",
                              advice=e.advice or "retry later",
                              details={"retry_after": e.retry_after}) from None
        except RegistryUnavailable as e:
            raise Unavailable("GITHUB_UNAVAILABLE", f"GitHub could not answer: {e.message}",
                              advice="retry later; nothing was changed") from None
        except ApiError:
            raise  # the registry's own refusal, raised inside the block
        except InputError as e:
            raise Unavailable("GITHUB_REFUSED", f"GitHub refused: {e.message}",
                              advice="check the registry repository and the registry's GitHub token") from None

    def _entry_path(self, key: str) -> str:
        ns_name, _, version = key.partition("@")
        return f"{self.config.index_dir}/{ns_name}/{version}.json"

    def _page(self, namespace: str, name: str, version: str | None = None) -> str | None:
        if not self.config.public_url:
            return None
        path = f"/api/v1/plugins/{namespace}/{name}" + (f"/versions/{version}" if version else "")
        return self.config.public_url.rstrip("/") + path

    def _promotion_facts(self, repo: Any, pull: Any, key: str) -> PromotionFacts:
        from cortex_trust.sources import current_reviews

        reviews = current_reviews(repo.reviews(pull.number))
        entry = repo.read_file(self._entry_path(key), ref=pull.head_sha)
        return PromotionFacts(
            pull=pull, head_digest=_digest_of_entry(entry[0] if entry else None, key),
            reviews=tuple({"login": r.login, "state": r.state.lower(), "at": r.submitted_at,
                           "commit": r.commit_id} for r in reviews[:100]))

    # -------------------------------------------------------------- promotions

    def promote(self, namespace: str, name: str, version: str, *, principal: Principal) -> bytes:
        """Open (or find) the version's promotion pull request and record it."""
        from cortex_trust.sources import index_entry

        digest, existing = self.store.existing_promotion(namespace, name, version)
        if existing is not None:
            return existing
        document = json.loads(self.store.version_document(namespace, name, version))
        key = f"{namespace}/{name}@{version}"
        decision = document.get("decision") or {}
        entry = index_entry({
            "schema": "cortex.index-entry/v1", "namespace": namespace, "name": name,
            "version": version, "digest": digest, "image": document.get("image"),
            "tier": document.get("tier"), "action": document.get("action"),
            "policy_revision": document.get("policy_revision"),
            "evidence": sorted(k for k, v in (document.get("evidence") or {}).items()
                               if isinstance(v, dict) and v.get("present") is True),
            "reasons": [r.get("code") for r in decision.get("reasons", []) if isinstance(r, dict)],
            "registry_page": self._page(namespace, name, version),
        })
        branch = f"cortex-promote/{namespace}/{name}/{version.replace('+', '_')}"
        title = f"Promote {key} to community"
        body = "\n".join([
            f"Promotion of `{key}` (`{digest}`) to the **community** tier.",
            "", f"Registry page: {self._page(namespace, name, version) or 'n/a'}",
            "", "An approving review by a community reviewer, on a head whose index entry still "
                "names this digest, is the promotion evidence the registry's policy weighs."])
        with self._github() as repo:
            pull = repo.open_pull(base=self.config.base_branch, branch=branch,
                                  path=self._entry_path(key), content=entry, title=title, body=body)
            facts = self._promotion_facts(repo, pull, key)
        return self.store.record_promotion(
            namespace, name, version, digest=digest, repository=self.config.repository, branch=branch,
            facts=facts, principal=principal, now=self.clock(), evaluate=self.evaluate)

    def refresh_promotion(self, watched: Watched, *, delivery: tuple[str, str] | None = None) -> bool:
        """Re-read a promotion from GitHub and store it (re-tiering when it changed)."""
        with self._github() as repo:
            facts = self._promotion_facts(repo, repo.pull(watched.number), watched.key)
        return self.store.update_promotion(watched.id, facts=facts, now=self.clock(),
                                           evaluate=self.evaluate, delivery=delivery)

    # ---------------------------------------------------------------- disputes

    def record_dispute(self, namespace: str, name: str, number: int, *, actor: str,
                       delivery: tuple[str, str] | None = None) -> bytes:
        """Record issue ``number`` of the registry repository as a dispute of ``namespace/name``:
        read from GitHub, it must carry the dispute template for this plugin; the registry adds
        the ``dispute`` label (and ``security`` when the template asks) if missing."""
        with self._github() as repo:
            issue = repo.issue(number)
            marker = None if issue.is_pull else parse_dispute_marker(issue.body)
            if marker is None or marker[:2] != (namespace, name):
                raise Invalid("DISPUTE_NOT_RECOGNISED",
                              f"issue {number} of {self.config.repository} is not a dispute of {namespace}/{name}",
                              advice="open the dispute with `cortex plugin dispute`, which writes the template")
            wanted = [DISPUTE_LABEL] + ([SECURITY_LABEL] if marker[3] else [])
            missing = [lb for lb in wanted if lb not in issue.labels]
            if missing and self.config.token:
                repo.add_labels(number, missing)
                issue = repo.issue(number)
        return self.store.record_dispute(
            namespace, name, marker[2], repository=self.config.repository,
            facts=issue, actor=actor, now=self.clock(), evaluate=self.evaluate,
            delivery=delivery)

    def refresh_dispute(self, watched: Watched, *, delivery: tuple[str, str] | None = None) -> bool:
        with self._github() as repo:
            issue = repo.issue(watched.number)
        return self.store.update_dispute(watched.id, facts=issue, now=self.clock(),
                                         evaluate=self.evaluate, delivery=delivery)

    # ---------------------------------------------------------------- webhooks

    def webhook(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Handle one GitHub webhook delivery (see the module docstring for what is checked, in
        which order). Returns what was done: ``applied``, ``unchanged``, ``duplicate``,
        ``ignored`` or ``pong``."""
        secret = self.config.webhook_secret
        if not secret:
            raise NotFound("WEBHOOK_NOT_CONFIGURED", "this registry has no webhook secret",
                           advice="set CORTEX_REGISTRY_WEBHOOK_SECRET (or webhook_secret_file) and restart")
        if len(body) > self.config.max_webhook_bytes:
            raise TooLarge("WEBHOOK_TOO_LARGE", f"the delivery is larger than {self.config.max_webhook_bytes} bytes",
                           advice="subscribe the webhook to pull_request, pull_request_review and issues only")
        if not verify_signature(secret, body, headers.get("x-hub-signature-256")):
            raise Unauthorized("WEBHOOK_SIGNATURE_INVALID",
                               "the delivery's X-Hub-Signature-256 is missing or does not match",
                               advice="configure the webhook with the registry's secret and content "
                                      "type application/json")
        delivery_id = headers.get("x-github-delivery", "")
        event = headers.get("x-github-event", "")
        if not _DELIVERY_ID.match(delivery_id) or not re.fullmatch(r"[a-z_]{1,64}", event):
            raise Invalid("WEBHOOK_HEADERS_INVALID", "X-GitHub-Delivery or X-GitHub-Event is missing or malformed",
                          advice="deliveries come from GitHub with both headers")
        from cortex_trust._json import load_json

        try:
            payload = load_json(body)
        except ValueError:
            raise Invalid("WEBHOOK_PAYLOAD_INVALID", "the delivery is not a JSON document",
                          advice="set the webhook's content type to application/json") from None
        repository = payload.get("repository") if isinstance(payload, dict) else None
        full_name = repository.get("full_name") if isinstance(repository, dict) else None
        if not isinstance(full_name, str) or full_name.lower() != self.config.repository.lower():
            raise Forbidden("WEBHOOK_REPOSITORY_MISMATCH",
                            f"the delivery is about {str(full_name)[:140]!r}, not {self.config.repository!r}",
                            advice="deliver only the registry repository's events to this registry")
        if self.store.delivery_seen(delivery_id):
            return {"status": "duplicate", "delivery": delivery_id}
        delivery = (delivery_id, event)
        changed: bool | None = None
        if event in ("pull_request", "pull_request_review"):
            number = _number(payload, "pull_request")
            found = self.store.watched_promotions(limit=1, number=number) if number else []
            if found:
                changed = self.refresh_promotion(found[0], delivery=delivery)
        elif event == "issues":
            number = _number(payload, "issue")
            found = self.store.watched_disputes(limit=1, number=number) if number else []
            if found:
                changed = self.refresh_dispute(found[0], delivery=delivery)
            elif number and payload.get("action") == "opened":
                issue = payload.get("issue") or {}
                text = issue.get("body")
                marker = parse_dispute_marker(text if isinstance(text, str) else "")
                if marker is not None:
                    try:
                        self.record_dispute(marker[0], marker[1], number, actor="github", delivery=delivery)
                        changed = True
                    except (Invalid, NotFound):
                        changed = None  # not a dispute of a plugin this registry holds
        if changed is None:
            self.store.record_delivery(delivery, now=self.clock())
            return {"status": "pong" if event == "ping" else "ignored", "delivery": delivery_id}
        return {"status": "applied" if changed else "unchanged", "delivery": delivery_id}

    # ----------------------------------------------------------------- polling

    def poll_once(self) -> dict[str, int]:
        """Re-read the open promotions and disputes least recently checked (at most
        ``poll_batch`` of each, each unchecked for ``poll_seconds``). A rate limit pauses polling
        for GitHub's ``Retry-After``; any GitHub failure ends this round (the next retries)."""
        now = self.clock()
        counts = {"checked": 0, "changed": 0}
        if self._paused_until is not None and now < self._paused_until:
            return counts
        before = format_time(now - timedelta(seconds=self.config.poll_seconds))
        try:
            for refresh, watched in [
                    *((self.refresh_promotion, w) for w in self.store.watched_promotions(
                        limit=self.config.poll_batch, checked_before=before)),
                    *((self.refresh_dispute, w) for w in self.store.watched_disputes(
                        limit=self.config.poll_batch, checked_before=before))]:
                counts["changed"] += refresh(watched)
                counts["checked"] += 1
        except Unavailable as e:
            retry = (e.details or {}).get("retry_after")
            if e.code == "GITHUB_RATE_LIMITED":
                self._paused_until = now + timedelta(seconds=retry if isinstance(retry, int) else 60)
        return counts

    @staticmethod
    def probe(config: GovernanceConfig) -> dict[str, Any]:
        """Whether the registry repository is reachable with the configured token
        (``cortex registry doctor``): ``reachable``, and ``default_branch`` and ``can_push``, or
        ``problem``."""
        from cortex_trust.sources import GitHubClient, RegistryRepository

        try:
            with GitHubClient(config.api_url, token=config.token, timeout=config.timeout,
                              transport=config.transport) as client:
                info = RegistryRepository(client, config.repository).info()
        except CortexTrustError as e:
            return {"reachable": False, "problem": e.message}
        return {"reachable": True, "default_branch": info["default_branch"],
                "can_push": bool((info.get("permissions") or {}).get("push"))}


def _number(payload: dict[str, Any], key: str) -> int | None:
    item = payload.get(key)
    number = item.get("number") if isinstance(item, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31 else None


@app.task(name=GOVERNANCE_TASK, queue=GOVERNANCE_QUEUE)
def governance_poll(timestamp: int | None = None) -> dict[str, int]:
    """Poll the registry repository once (:meth:`Governance.poll_once`) with the governance of
    the process's job settings (nothing without one). A failure of GitHub or the database ends
    this run; the next period tries again. ``timestamp`` is the period the engine scheduled."""
    from ._job_context import settings

    governance = settings().governance
    if governance is None:
        return {"checked": 0, "changed": 0}
    result: dict[str, int] = governance.poll_once()
    return result
