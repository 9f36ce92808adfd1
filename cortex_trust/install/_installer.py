"""The consumer side: resolve → verify → decide → (pull) → record, and the run-time check.

Issue 5 (install and run) and the federation rules of issue 6, as a library: nothing here prints,
prompts or reads the environment. The CLI gives an :class:`Installer` its configuration, the
tokens it read, the trusted roots and a policy-engine factory; the installer returns plans and
outcomes, and the CLI acts on them (prompt, refuse, pull, start).

Install (:meth:`Installer.plan`):

1. **Resolve.** The request names exactly one registry: the configured one whose scope matches
   the namespace most specifically, otherwise the default (``registry_override`` replaces only
   the default). A name is never looked up in several registries (dependency confusion). The
   registry URL is tried first, then its mirrors in order, but only when it is *unreachable*:
   an answer ("no such plugin") from the primary is final. The version is
   :func:`~cortex_trust.install.select_version` over the registry's list; the version
   record must agree with the list (same digest) and its image must be pinned to that digest.
2. **Verify.** The Sigstore bundle the registry stored is re-verified here against our own
   trusted roots; if the registry cannot serve it, signature evidence is *not present* (listed
   in ``evidence.dropped``), never taken on the registry's word. Scan, tests, review and usage
   come from the registry record, each marked ``source`` = the registry's name (policy data
   decides how far each registry is trusted). Revocation comes from the registry's feed
   (:mod:`cortex_trust.install`) with its ``fresh_as_of``.
3. **Decide.** One :func:`~cortex_trust.policy.build_input` (operation ``install``), one
   :func:`~cortex_trust.engine.decide` (fail closed).

:func:`judge_install` turns a plan into what to do: install, ask, refuse, or "could not
decide". :meth:`Installer.commit` pulls (through a callback) and records.

Run (:meth:`Installer.check_run`): the install-time input is replayed with operation ``run``, the
current time and fresh revocation evidence; a registry that cannot be reached leaves the cached
revocation data as it was, so it goes stale and the policy refuses (``REVOCATION_STALE``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from .._text import clip
from ..engine import PolicyEngine, decide
from ..errors import EvidenceError, InputError, RegistryUnavailable
from ..ids import SLUG
from ..policy import (
    Action,
    Context,
    Decision,
    DroppedEvidence,
    PolicyInput,
    ReviewEvidence,
    RevocationEvidence,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    TransparencyEvidence,
    UsageEvidence,
    format_time,
)
from ._config import CortexConfig, RegistryEntry, resolve_registry
from ._revocations import FeedState, RevocationCache, revocation_evidence, sync_feed
from ._state import InstallRecord, InstallStore, VersionCandidate, select_version, widened_permissions

if TYPE_CHECKING:
    import httpx

    from ..evidence import TrustRoot
    from ..manifest import Manifest
    from ..sources import GitHubRef, RegistryClient

__all__ = [
    "FederatedRegistry",
    "InstallOutcome",
    "InstallPlan",
    "Installer",
    "PluginRequest",
    "RegistryTarget",
    "RunCheck",
    "SyncReport",
    "judge_install",
    "parse_request",
    "registry_target",
    "remove_installed",
]

_T = TypeVar("_T")
_REQUEST = re.compile(rf"^({SLUG})/({SLUG})(?:@([0-9A-Za-z.^~<>=, *+-]{{1,64}}))?\Z")
_MAX_EVIDENCE_DOC = 256 * 1024


# ------------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class PluginRequest:
    """What the user asked to install: ``namespace/name[@version-or-range]`` or a GitHub ref."""

    text: str
    kind: Literal["registry", "github"]
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    github: GitHubRef | None = None

    @property
    def full_name(self) -> str:
        """``namespace/name`` or ``github:owner/repo`` (the key of the install record)."""
        if self.github is not None:
            return f"github:{self.github.owner}/{self.github.repo}"
        return f"{self.namespace}/{self.name}"


def parse_request(text: str) -> PluginRequest:
    """Parse ``acme/tool``, ``acme/tool@1.2.3``, ``acme/tool@^1.2`` or ``github:org/repo[@ref]``.

    The grammar is strict (lowercase ASCII slugs, a bounded version spec), so nothing in a
    name can address another path or host. Raises :class:`InputError` with the expected form.
    """
    if not isinstance(text, str) or len(text) > 300:
        raise InputError("a plugin name is at most 300 characters",
                         advice="use NAMESPACE/NAME[@VERSION] or github:OWNER/REPO[@REF]")
    if text.startswith("github:"):
        from ..sources import parse_github_ref

        return PluginRequest(text=text, kind="github", github=parse_github_ref(text))
    m = _REQUEST.match(text)
    if m is None:
        raise InputError(f"{text[:100]!r} is not a plugin name",
                         advice="use NAMESPACE/NAME[@VERSION or @^RANGE] in lowercase, e.g. "
                                "acme/my-plugin@^1.2, or github:OWNER/REPO[@REF]")
    return PluginRequest(text=text, kind="registry", namespace=m.group(1), name=m.group(2),
                         version=m.group(3))


# ---------------------------------------------------------------------------------- federation


@dataclass(frozen=True)
class RegistryTarget:
    """The one registry a name resolves from: its name, its URLs in order (primary, mirrors)
    and its token (never part of ``repr`` or any message)."""

    name: str
    urls: tuple[str, ...]
    token: str | None = field(default=None, repr=False)
    #: The verifier key of the registry's transparency-log checkpoints, when configured.
    log_key: str | None = None


def registry_target(config: CortexConfig, full_name: str, *,
                    tokens: Mapping[str, str | None] | None = None,
                    registry_override: str | None = None) -> RegistryTarget:
    """The registry ``full_name`` (``namespace/name``) resolves from (see
    :func:`~cortex_trust.install.resolve_registry`). ``registry_override`` replaces only the
    default registry: a namespace scoped to a private registry stays there."""
    entry: RegistryEntry = resolve_registry(config, full_name)
    url = entry.url
    if entry.name == "default" and registry_override:
        url = RegistryEntry(name="default", url=registry_override).url  # validates the URL
    # A key configured for the default registry's URL says nothing about another URL.
    overridden = entry.name == "default" and bool(registry_override)
    return RegistryTarget(name=entry.name, urls=(url, *entry.mirrors),
                          token=(tokens or {}).get(entry.name) or entry.token,
                          log_key=None if overridden else entry.log_key)


def _default_target(config: CortexConfig, *, registry_override: str | None = None) -> RegistryTarget:
    """The default registry (the revocation authority for plugins not from a scoped one)."""
    url = config.registry
    if registry_override:
        url = RegistryEntry(name="default", url=registry_override).url
    return RegistryTarget(name="default", urls=(url,),
                          log_key=None if registry_override else config.registry_log_key)


class FederatedRegistry:
    """One registry reached through its URL, then its mirrors in order.

    :meth:`call` runs an operation on the first URL that is reachable; a URL that raised
    :class:`RegistryUnavailable` is skipped for the rest of this object's life. A refusal
    (4xx, e.g. "not found") is the registry's answer and is never retried elsewhere. When
    every URL failed, one :class:`RegistryUnavailable` names the registry and each URL.
    """

    def __init__(self, target: RegistryTarget, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self._timeout = timeout
        self._transport = transport
        self._clients: dict[str, RegistryClient] = {}
        self._down: dict[str, str] = {}
        #: The URL that answered the last call.
        self.served_by: str | None = None

    def _client(self, url: str) -> RegistryClient:
        from ..sources import RegistryClient

        client = self._clients.get(url)
        if client is None:
            client = RegistryClient(url, token=self.target.token, timeout=self._timeout,
                                    transport=self._transport)
            self._clients[url] = client
        return client

    def call(self, op: Callable[[RegistryClient], _T]) -> _T:
        """``op(client)`` on the first reachable URL. Raises :class:`RegistryUnavailable`."""
        for url in self.target.urls:
            if url in self._down:
                continue
            try:
                result = op(self._client(url))
            except RegistryUnavailable as e:
                self._down[url] = e.message
                continue
            self.served_by = url
            return result
        tried = "; ".join(f"{u}: {why}" for u, why in self._down.items())
        raise RegistryUnavailable(
            f"registry {self.target.name!r} is unavailable ({tried})",
            advice="retry later or check the URL and your network; nothing was decided on "
                   "missing data (an unavailable registry is never read as 'no such plugin' or "
                   "'not revoked')")

    def close(self) -> None:
        """Close every connection pool."""
        for c in self._clients.values():
            c.close()
        self._clients.clear()


# ------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class InstallPlan:
    """Everything decided for one install or update, before anything is pulled or recorded."""

    request: PluginRequest
    full_name: str
    #: The manifest's plugin name (container and label name).
    plugin: str
    version: str
    image: str
    digest: str
    registry: str | None
    registry_url: str | None
    manifest: dict[str, Any]
    policy_input: PolicyInput
    decision: Decision
    state: str = "active"
    #: Why the publisher yanked this version (only when ``state`` is ``yanked``: a yanked version
    #: is only ever chosen by an exact pin, and the caller warns).
    yank_reason: str | None = None
    source: Literal["registry", "github"] = "registry"
    #: For an update: the installed record, and what the new version asks for beyond it.
    previous: InstallRecord | None = None
    widened: tuple[str, ...] = ()
    #: Seconds per step: resolve, verify, decide.
    timings: Mapping[str, float] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no secrets)."""
        return {
            "name": self.full_name, "plugin": self.plugin, "version": self.version,
            "image": self.image, "digest": self.digest, "registry": self.registry,
            "registry_url": self.registry_url, "state": self.state,
            "yank_reason": self.yank_reason, "source": self.source,
            "decision": self.decision.to_json_dict(),
            "evidence_sources": {k: v.get("source") for k, v in
                                 self.policy_input.evidence.model_dump(mode="json").items()
                                 if isinstance(v, dict)},
            "dropped": [d.model_dump(mode="json") for d in self.policy_input.evidence.dropped],
            "previous_version": self.previous.version if self.previous else None,
            "widened": list(self.widened),
            "timings": dict(self.timings),
        }


@dataclass(frozen=True)
class InstallOutcome:
    """What the CLI must do with a plan.

    ``verdict``: ``install`` (go ahead, possibly after asking), ``refuse`` (exit 1, nothing
    installed) or ``failed`` (the decision failed closed: exit 3). ``ask`` is true when a person
    must confirm first (warn without ``--yes``, or an update that widens permissions);
    without a terminal the CLI refuses. ``override`` is true for an overridden block (the
    reason codes are recorded).
    """

    verdict: Literal["install", "refuse", "failed"]
    ask: bool = False
    override: bool = False
    notice: bool = False
    why: str = ""


def judge_install(plan: InstallPlan, *, yes: bool, allow_blocked: bool) -> InstallOutcome:
    """Map the decision (and any widening) to an :class:`InstallOutcome`. Pure.

    Revocation evidence saying revoked → refuse, whatever the action.
    allow → install; notice → install and show the notice; warn → ask unless ``yes``;
    block → refuse, unless the decision is overridable and ``allow_blocked`` is set; a decision
    that failed closed → ``failed``. An update that widens network, filesystem or capabilities
    asks whatever the tier (unless ``yes``).
    """
    d = plan.decision
    if d.failed:
        return InstallOutcome("failed", why="the policy engine could not decide")
    if plan.policy_input.evidence.revocation.revoked:
        # Issue 5: a revoked version is never installed. Not a verdict computed here: a
        # refusal on a fact, kept even when an organization's policy lost the REVOKED rule.
        return InstallOutcome("refuse", why="revoked (never installed, whatever the policy)")
    widened = bool(plan.widened)
    if d.action is Action.BLOCK:
        if d.overridable and allow_blocked:
            return InstallOutcome("install", override=True, ask=widened and not yes,
                                  why="blocked; overridden with --allow-blocked")
        why = "blocked" + ("" if d.overridable else " (not overridable)")
        return InstallOutcome("refuse", why=why)
    if d.action is Action.WARN:
        return InstallOutcome("install", ask=not yes, why="the policy warns")
    return InstallOutcome("install", ask=widened and not yes, notice=d.action is Action.NOTICE,
                          why="the update widens permissions" if widened else "")


@dataclass(frozen=True)
class RunCheck:
    """The run-time decision for an installed plugin.

    ``allowed`` is true when the decision does not block, or blocks only for reasons that the
    installation explicitly overrode (every code recorded in the record's ``overrides``) and
    the block is overridable; never when the revocation evidence says revoked. ``sync_error``
    says why fresh revocation data could not be had (or why the feed consulted cannot speak
    for this installation).
    """

    record: InstallRecord
    decision: Decision
    revocation: RevocationEvidence
    allowed: bool
    overridden: bool
    sync_error: str | None
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def revoked(self) -> bool:
        """Whether the revocation evidence says this digest is revoked."""
        return self.revocation.revoked


@dataclass(frozen=True)
class SyncReport:
    """Result of syncing every feed installed plugins depend on."""

    synced: tuple[str, ...]
    errors: Mapping[str, str]
    revoked: tuple[InstallRecord, ...]


# ------------------------------------------------------------------------------------- helpers


class _Timer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - t0


def _registry_piece(model: type[BaseModel], raw: Any, *, kind: str, registry: str,
                    dropped: list[DroppedEvidence]) -> Any:
    """A registry record's evidence piece, strictly parsed and marked with its source."""
    if raw is None:
        return None
    try:
        if not isinstance(raw, dict) or len(json.dumps(raw)) > _MAX_EVIDENCE_DOC:
            raise ValueError("not an object of bounded size")
        piece = model.model_validate(raw)
    except (ValidationError, ValueError):
        dropped.append(DroppedEvidence(
            kind=kind, code="REGISTRY_EVIDENCE_INVALID",  # type: ignore[arg-type]
            message=f"the {kind} evidence served by registry {registry!r} is malformed; "
                    "it was not used"))
        return None
    if not getattr(piece, "present", False):
        return None
    update: dict[str, Any] = {"source": registry}
    if isinstance(piece, ReviewEvidence):
        # Each review came from this registry too, whatever name the registry gives itself.
        update["reviews"] = [r.model_copy(update={"source": registry}) for r in piece.reviews]
    return piece.model_copy(update=update)


def _yank_reason(detail: Any) -> str | None:
    """The publisher's reason for a yanked version (``"no reason given"`` if it has none)."""
    if detail.state != "yanked":
        return None
    yank = detail.yank if isinstance(detail.yank, dict) else {}
    reason = yank.get("reason")
    return clip(reason, 500) if isinstance(reason, str) and reason.strip() else "no reason given"


def _manifest_from_document(doc: Mapping[str, Any], *, source: str) -> Manifest:
    """Re-validate a manifest document (as the registry serves it) with the hardened loader.

    JSON is YAML, so the same loader and the same strict model apply.
    """
    from ..manifest import parse_manifest

    return parse_manifest(json.dumps(doc).encode("utf-8"), source=source)


def _code(code: str) -> str:
    """A registry's error code as facts may quote it (it is the registry's text)."""
    return re.sub(r"[^A-Z0-9_]", "?", code[:64])


def _leaf_records(data: bytes, *, index: int, key: str, digest: str) -> bool:
    """Whether a verified log leaf (an audit entry's canonical body) is entry ``index + 1`` and
    records version ``key`` (``ns/name@version``) with ``digest`` in its effects."""
    from .._json import load_json

    try:
        entry = load_json(data)
        effects = load_json(entry["effects"])
        row = effects["plugin_version"][key]
        return bool(entry["id"] == index + 1 and row["digest"] == digest)
    except (ValueError, KeyError, TypeError):
        return False


class _CheckpointStore:
    """The last checkpoint this machine verified from each registry (per URL and log key).

    Files are private state (:mod:`cortex_trust._io`); a stored note is verified again
    when read, so an edited file is refused (:class:`InputError`), never trusted."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "checkpoints"

    def _path(self, target: RegistryTarget, verifier: Any) -> Path:
        import hashlib

        ident = hashlib.sha256(f"{target.urls[0]}\n{verifier.text}".encode()).hexdigest()[:16]
        safe = re.sub(r"[^a-z0-9-]", "_", target.name.lower())[:64]
        return self.dir / f"{safe}-{ident}.json"

    def get(self, target: RegistryTarget, verifier: Any) -> Any:
        """The stored :class:`~cortex_trust.sources.Checkpoint`, or ``None``."""
        from .._io import read_private_doc
        from ..sources import TransparencyError, open_checkpoint

        path = self._path(target, verifier)
        advice = f"move {path} away only if you trust the registry's current log"
        doc = read_private_doc(path, what="the saved log checkpoint", advice=advice)
        if doc is None:
            return None
        try:
            return open_checkpoint(str(doc.get("note", "")), verifier)
        except TransparencyError as e:
            raise InputError(f"the saved log checkpoint {path} does not verify: {e.message}",
                             advice=advice) from None

    def put(self, target: RegistryTarget, verifier: Any, note: bytes) -> None:
        """Remember ``note`` (a checkpoint already verified with ``verifier``)."""
        from .._io import write_private_json

        write_private_json(self._path(target, verifier),
                           {"registry": target.name, "url": target.urls[0],
                            "log_key": verifier.text, "note": note.decode("utf-8")},
                           what="the saved log checkpoint",
                           advice="check the permissions of the data directory")


class _InputStore:
    """The install-time policy input of each installed plugin (replayed at run time)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.dir = data_dir / "inputs"

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^a-z0-9-]", "_", name.lower())[:150]
        return self.dir / f"{safe}.json"

    def put(self, name: str, policy_input: PolicyInput, *, feed: RegistryTarget) -> None:
        """Record ``policy_input`` and the registry (name and primary URL) whose revocation
        feed speaks for the installed version."""
        from .._io import write_private_json

        write_private_json(self._path(name), {"name": name, "input": policy_input.to_dict(),
                                              "feed": [feed.name, feed.urls[0]]},
                           what="the recorded policy input", advice="check the permissions of the data directory",
                           root=self.root)

    def _doc(self, name: str) -> dict[str, Any] | None:
        """The recorded document, ``None`` when missing or corrupt. Raises :class:`InputError`
        when the file or its directories are not private (a link, writable by others...)."""
        from .._io import read_private_bytes
        from .._json import load_json

        raw = read_private_bytes(self._path(name), what="the recorded policy input",
                                 root=self.root)
        if raw is None:
            return None
        try:
            doc = load_json(raw)
        except ValueError:
            return None  # corrupt: the caller reports the install state as incomplete
        if not isinstance(doc, dict) or doc.get("name") != name:
            return None
        return doc

    def get(self, name: str) -> PolicyInput | None:
        doc = self._doc(name)
        if doc is None:
            return None
        try:
            return PolicyInput.model_validate(doc.get("input"))
        except ValidationError:
            return None

    def feed(self, name: str) -> tuple[str, str] | None:
        """The (registry name, primary URL) recorded at install, or ``None`` if unknown."""
        feed = (self._doc(name) or {}).get("feed")
        if (not isinstance(feed, list) or len(feed) != 2
                or not all(isinstance(x, str) for x in feed)):
            return None
        return feed[0], feed[1]

    def remove(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return


# ----------------------------------------------------------------------------------- installer


class Installer:
    """Plan installs and updates, record them, and check installed plugins before they run.

    ``tokens`` maps registry names (``default`` for the default registry) to tokens the caller
    read (e.g. from ``token_env``); ``engine_factory`` builds the policy engine on first use
    (call :meth:`close` to release it). ``trusted_roots`` are the Sigstore roots bundles are
    re-verified against (production plus configured ones). ``transport`` is handed to every
    HTTP client (tests). Nothing here prints or reads the environment.
    """

    def __init__(self, *, config: CortexConfig, data_dir: Path,
                 engine_factory: Callable[[], PolicyEngine],
                 trusted_roots: Sequence[TrustRoot], cortex_version: str,
                 tokens: Mapping[str, str | None] | None = None,
                 registry_override: str | None = None, github_token: str | None = None,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.store = InstallStore(data_dir)
        self.revocations = RevocationCache(data_dir)
        self.checkpoints = _CheckpointStore(data_dir)
        self._inputs = _InputStore(data_dir)
        self._engine_factory = engine_factory
        self._engine: PolicyEngine | None = None
        self.trusted_roots = tuple(trusted_roots)
        self.cortex_version = cortex_version
        self._tokens = dict(tokens or {})
        self._override = registry_override
        self._github_token = github_token
        self._timeout = timeout
        self._transport = transport

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def engine(self) -> PolicyEngine:
        """The policy engine (built on first use)."""
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def close(self) -> None:
        """Release the policy engine, if one was built."""
        if self._engine is not None:
            self._engine.close()
        self._engine = None

    def __enter__(self) -> Installer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def target(self, full_name: str) -> RegistryTarget:
        """The registry ``full_name`` resolves from (``github:`` names: the default one)."""
        if full_name.startswith("github:") or "/" not in full_name:
            urls = _default_target(self.config, registry_override=self._override).urls
            return RegistryTarget("default", urls, self._tokens.get("default"))
        return registry_target(self.config, full_name, tokens=self._tokens,
                               registry_override=self._override)

    def _federated(self, target: RegistryTarget) -> FederatedRegistry:
        return FederatedRegistry(target, timeout=self._timeout, transport=self._transport)

    def _sync(self, fed: FederatedRegistry, *, now: datetime) -> FeedState:
        target = fed.target
        # The cache is keyed by the primary URL: mirrors serve the same feed and cursors.
        return fed.call(lambda c: sync_feed(c, registry=target.name, url=target.urls[0],
                                            cache=self.revocations, now=now))

    def _cached_feed(self, target: RegistryTarget) -> FeedState | None:
        return self.revocations.get(target.name, url=target.urls[0])

    # -- install ----------------------------------------------------------------------------

    def plan(self, request: str | PluginRequest, *, now: datetime,
             previous: InstallRecord | None = None) -> InstallPlan:
        """Resolve, verify and decide ``request`` (operation ``install``). Side effects: only
        the revocation cache is updated.

        Raises :class:`InputError` (bad name, no such plugin or version, a revoked or
        inconsistent record, an unpinned image), :class:`RegistryUnavailable` (registry or
        mirrors unreachable, garbage answers).
        """
        req = parse_request(request) if isinstance(request, str) else request
        if req.kind == "github":
            return self._plan_github(req, now=now, previous=previous)
        return self._plan_registry(req, now=now, previous=previous)

    def _plan_registry(self, req: PluginRequest, *, now: datetime,
                       previous: InstallRecord | None) -> InstallPlan:
        from ..policy import build_input, image_digest
        from ..sources import RegistryRequestError

        assert req.namespace is not None and req.name is not None
        ns, name = req.namespace, req.name
        timer = _Timer()
        target = self.target(req.full_name)
        fed = self._federated(target)
        try:
            with timer.step("resolve"):
                try:
                    versions = fed.call(lambda c: c.list_versions(ns, name))
                except RegistryRequestError as e:
                    if e.status == 404:
                        raise InputError(
                            f"{req.full_name} is not in registry {target.name!r} "
                            f"({fed.served_by or target.urls[0]})",
                            advice="check the name (`cortex plugin search`); namespaces resolve "
                                   "from exactly one registry (`cortex config list`)") from None
                    raise
                for v in versions:
                    if v.namespace != ns or v.name != name:
                        raise RegistryUnavailable(
                            f"registry {target.name!r} listed {v.namespace}/{v.name} for "
                            f"{req.full_name}", advice="the registry is inconsistent; report it")
                chosen = select_version(
                    [VersionCandidate(version=v.version, state=v.state, digest=v.digest)
                     for v in versions], req.version)
                detail = fed.call(lambda c: c.get_version(ns, name, chosen.version))
                if (detail.namespace, detail.name, detail.version) != (ns, name, chosen.version):
                    raise RegistryUnavailable(
                        f"registry {target.name!r} answered {detail.namespace}/{detail.name}@"
                        f"{detail.version} for {req.full_name}@{chosen.version}",
                        advice="the registry is inconsistent; report it")
                if detail.digest != chosen.digest:
                    raise RegistryUnavailable(
                        f"registry {target.name!r} lists {chosen.digest} for {req.full_name}@"
                        f"{chosen.version} but its record says {detail.digest}",
                        advice="the registry is inconsistent (or changed under us); retry")
                if detail.state == "revoked":
                    raise InputError(f"{req.full_name}@{detail.version} is revoked",
                                     advice="install another version")
                if image_digest(detail.image) != detail.digest:
                    raise InputError(
                        f"registry {target.name!r} records image {detail.image} which is not "
                        f"pinned to {detail.digest}",
                        advice="the registry must serve images pinned by digest")
                if detail.manifest is None:
                    raise RegistryUnavailable(f"registry {target.name!r} served no manifest for "
                                              f"{req.full_name}@{detail.version}")
                manifest = _manifest_from_document(
                    detail.manifest, source=f"{target.name}:{req.full_name}@{detail.version}")
                if (manifest.name, manifest.version) != (name, detail.version):
                    raise InputError(
                        f"the manifest served for {req.full_name}@{detail.version} names "
                        f"{manifest.name}@{manifest.version}",
                        advice="refused: the plugin's manifest and the request disagree")
                served_by = fed.served_by
            with timer.step("verify"):
                dropped: list[DroppedEvidence] = []
                signature = self._registry_signature(fed, ns, name, detail.version,
                                                     digest=detail.digest, dropped=dropped)
                ev = detail.evidence if isinstance(detail.evidence, dict) else {}
                pieces = {kind: _registry_piece(model, ev.get(kind), kind=kind,
                                                registry=target.name, dropped=dropped)
                          for kind, model in (("scan", ScanEvidence), ("tests", TestEvidence),
                                              ("review", ReviewEvidence),
                                              ("usage", UsageEvidence))}
                state = self._sync(fed, now=now)
                revocation = revocation_evidence(
                    state, registry=target.name, digest=detail.digest, namespace=ns, name=name,
                    version=detail.version)
                transparency = self._transparency(fed, ns, name, detail.version,
                                                  digest=detail.digest)
            with timer.step("decide"):
                policy_input = build_input(
                    manifest=manifest, image=detail.image, digest=detail.digest,
                    operation="install", now=now, cortex_version=self.cortex_version,
                    signature=signature, revocation=revocation, transparency=transparency,
                    dropped=dropped, registry=target.name, namespace=ns, **pieces)
                decision = decide(self.engine, policy_input)
        finally:
            fed.close()
        doc = manifest.to_document()
        return InstallPlan(
            request=req, full_name=req.full_name, plugin=manifest.name, version=detail.version,
            image=detail.image, digest=detail.digest, registry=target.name,
            registry_url=served_by, manifest=doc, policy_input=policy_input, decision=decision,
            state=detail.state, yank_reason=_yank_reason(detail), source="registry", previous=previous,
            widened=tuple(widened_permissions(previous.manifest, doc)) if previous else (),
            timings=timer.times)

    def _transparency(self, fed: FederatedRegistry, ns: str, name: str, version: str, *,
                      digest: str) -> TransparencyEvidence:
        """Facts about the version and the registry's transparency log (never a verdict).

        With the registry's log key configured: the current checkpoint is verified with it
        (signature first), checked for consistency with the last one this machine saw from that
        registry (a proof that it extends it; the checkpoint is then remembered), and the leaf
        that recorded the version's publish is checked to be included in it and to name this
        version and digest. What could not be established is said in ``error``. Raises only
        :class:`RegistryUnavailable` (the registry could not be reached at all).
        """
        from ..sources import (
            NoteVerifier,
            RegistryRequestError,
            TransparencyError,
            leaf_hash,
            open_checkpoint,
            verify_inclusion,
        )

        target = fed.target
        facts: dict[str, Any] = {"source": target.name}
        if target.log_key is None:
            return TransparencyEvidence(error=f"no transparency-log key is configured for "
                                              f"registry {target.name!r}", **facts)
        verifier = NoteVerifier.from_text(target.log_key)
        seen = self.checkpoints.get(target, verifier)
        if seen is not None:
            # Once this machine holds a checkpoint, a registry that stops serving one that
            # verifies cannot show that its history extends it: that is no proof of extension,
            # so it counts as inconsistent (fail closed), never as "nothing to compare with".
            facts.update(seen_size=seen.size, consistent_with_seen=False)
        try:
            note = fed.call(lambda c: c.log_checkpoint())
        except RegistryRequestError as e:
            return TransparencyEvidence(error=f"the registry serves no signed checkpoint "
                                              f"({_code(e.code)})", **facts)
        try:
            checkpoint = open_checkpoint(note, verifier)
        except TransparencyError as e:
            return TransparencyEvidence(error="the registry's checkpoint does not verify with "
                                              f"the configured log key: {e.message}"[:500], **facts)
        facts.update(present=True, checkpoint_size=checkpoint.size)
        problems: list[str] = []
        if seen is not None:
            facts["seen_size"] = seen.size
            why = self._inconsistency(fed, seen, checkpoint)
            facts["consistent_with_seen"] = why is None
            if why is not None:
                problems.append(why)
        if facts.get("consistent_with_seen") is not False and (seen is None
                                                                or checkpoint.size > seen.size):
            self.checkpoints.put(target, verifier, note)
        try:
            log = fed.call(lambda c: c.version_log(ns, name, version))
            leaf = log.publish
            if leaf is None:
                raise TransparencyError("the registry names no leaf that recorded this version")
            facts["log_index"] = leaf.index
            if leaf.index >= checkpoint.size:
                raise TransparencyError(f"leaf {leaf.index} is not in the checkpoint of "
                                        f"{checkpoint.size} entries")
            data = leaf.leaf.encode("utf-8")
            proof = fed.call(lambda c: c.log_inclusion(leaf.index, checkpoint.size))
            verify_inclusion(index=leaf.index, size=checkpoint.size, leaf=leaf_hash(data),
                             proof=proof, root=checkpoint.root)
            # Verified bytes: now read what they say.
            if not _leaf_records(data, index=leaf.index, key=f"{ns}/{name}@{version}",
                                 digest=digest):
                raise TransparencyError(f"leaf {leaf.index} does not record {ns}/{name}@"
                                        f"{version} with {digest}")
            facts["included"] = True
        except RegistryRequestError as e:
            problems.append(f"the registry refused a log request ({_code(e.code)})")
        except TransparencyError as e:
            problems.append(e.message)
        if problems:
            facts["error"] = "; ".join(problems)[:500]
        return TransparencyEvidence(**facts)

    def _inconsistency(self, fed: FederatedRegistry, seen: Any, current: Any) -> str | None:
        """Why ``current`` does not provably extend ``seen`` (two verified checkpoints of one
        log), or ``None`` when it does."""
        from ..sources import ProofError, RegistryRequestError, verify_consistency

        if current.size < seen.size:
            return (f"the registry's log has {current.size} entries, fewer than the "
                    f"{seen.size} this machine saw before")
        if current.size == seen.size:
            return None if current.root == seen.root else (
                f"the registry's log of {current.size} entries differs from the one this "
                "machine saw before")
        try:
            proof = fed.call(lambda c: c.log_consistency(seen.size, current.size))
            verify_consistency(first=seen.size, second=current.size, first_root=seen.root,
                               second_root=current.root, proof=proof)
        except (RegistryRequestError, ProofError):
            return (f"the registry could not prove that its log of {current.size} entries "
                    f"extends the {seen.size} entries this machine saw before")
        return None

    def _registry_signature(self, fed: FederatedRegistry, ns: str, name: str, version: str, *,
                            digest: str, dropped: list[DroppedEvidence]) -> SignatureEvidence:
        """Fetch the stored Sigstore bundle and verify it here; absent when we cannot."""
        from ..evidence import verify_signature
        from ..sources import RegistryRequestError

        registry = fed.target.name
        bundle: bytes | None
        try:
            bundle = fed.call(lambda c: _get_bundle(c, ns, name, version))
        except RegistryRequestError as e:
            if e.status != 404:
                raise
            bundle = None  # an older registry without the route: no signature, never trusted
        if bundle is None:
            dropped.append(DroppedEvidence(
                kind="signature", code="BUNDLE_UNAVAILABLE",
                message=f"registry {registry!r} did not serve the Sigstore bundle of "
                        f"{ns}/{name}@{version}, so the signature could not be verified here"))
            return SignatureEvidence()
        try:
            return verify_signature(bundle, digest=digest, trusted_roots=self.trusted_roots,
                                    source=registry)
        except EvidenceError as e:
            dropped.append(DroppedEvidence(
                kind="signature", code="BUNDLE_INVALID",
                message=f"registry {registry!r} served a bundle that is not a Sigstore bundle: "
                        f"{e.message}"[:2000]))
            return SignatureEvidence()

    def _plan_github(self, req: PluginRequest, *, now: datetime,
                     previous: InstallRecord | None) -> InstallPlan:
        from ..policy import build_input
        from ..sources import GitHubClient

        assert req.github is not None
        timer = _Timer()
        with timer.step("resolve"):
            with GitHubClient(self.config.github_api, token=self._github_token,
                              timeout=self._timeout, transport=self._transport) as gh:
                raw = gh.read_manifest(req.github)
                from ..manifest import parse_manifest

                manifest = parse_manifest(raw, source=f"{req.github}/manifest.yaml")
                digest = manifest.image_digest
                if digest is None:
                    # Pinned before anything runs: a tag in a repository can move at any time.
                    raise InputError(
                        f"{req.github}: runtime.image {manifest.runtime.image} is not pinned by digest",
                        advice="the plugin's manifest.yaml must name REGISTRY/REPO@sha256:DIGEST")
                # GitHub's artifact attestations for the image digest (e.g. actions/attest-build-
                # provenance in the repository's release workflow); verified below, judged by policy.
                bundles = gh.attestations(req.github, digest)
            image = str(manifest.runtime.image)
        target = self.target(req.full_name)
        fed = self._federated(target)
        try:
            with timer.step("verify"):
                # No registry vouches for a GitHub plugin: only the revocation feed of the
                # default registry (revocations are by digest) applies.
                state = self._sync(fed, now=now)
                revocation = revocation_evidence(state, registry=target.name, digest=digest)
        finally:
            fed.close()
            signature = self._github_signature(bundles, digest=digest, source=str(req.github))
        with timer.step("decide"):
            policy_input = build_input(
                manifest=manifest, image=image, digest=digest, operation="install", now=now,
                cortex_version=self.cortex_version, revocation=revocation, signature=signature,
                registry=f"github:{req.github.owner}/{req.github.repo}",
                repository=req.github.full_name)
            decision = decide(self.engine, policy_input)
        doc = manifest.to_document()
        return InstallPlan(
            request=req, full_name=req.full_name, plugin=manifest.name,
            version=str(manifest.version), image=image, digest=digest, registry=target.name,
            registry_url=self.config.github_api, manifest=doc, policy_input=policy_input,
            decision=decision, source="github", previous=previous,
            widened=tuple(widened_permissions(previous.manifest, doc)) if previous else (),
            timings=timer.times)

    def _github_signature(self, bundles: Sequence[bytes], *, digest: str, source: str) -> SignatureEvidence | None:
        """The first of ``bundles`` that verifies for ``digest`` against our trusted roots (its
        signer is for the policy to judge), else the first one's failure, else ``None``."""
        from ..evidence import verify_signature

        first: SignatureEvidence | None = None
        for bundle in bundles:
            try:
                ev = verify_signature(bundle, digest=digest, trusted_roots=self.trusted_roots, source=source)
            except InputError:
                continue  # not a bundle at all: nothing to report as a signature
            if ev.verified:
                return ev
            first = first or ev
        return first

    def plan_update(self, name: str, *, now: datetime) -> InstallPlan | None:
        """Plan the update of installed ``name`` to its newest satisfying version; ``None`` when
        the installed version is already the newest. Raises :class:`InputError` if not
        installed (or installed from GitHub: reinstall with the new ref)."""
        from ..manifest import semver_key

        record = self.store.require(name)
        if record.source == "github":
            raise InputError(f"{name} was installed from GitHub; updates follow a ref you choose",
                             advice=f"cortex plugin install {name}@REF")
        plan = self.plan(record.name, now=now, previous=record)
        if plan.digest == record.digest or semver_key(plan.version) <= semver_key(record.version):
            return None
        return plan

    def commit(self, plan: InstallPlan, *, now: datetime, outcome: InstallOutcome,
               pull: Callable[[InstallPlan], object] | None = None) -> InstallRecord:
        """Pull (through ``pull``, which must raise on any mismatch) and record ``plan``.

        Refuses (:class:`InputError`) an outcome that is not ``install``, and a plugin whose
        manifest name is already installed under another full name (one container per name).
        Nothing is recorded if ``pull`` raises.
        """
        if outcome.verdict != "install" or plan.decision.failed:
            raise InputError(f"{plan.full_name} was not accepted for installation ({outcome.why})")
        if plan.policy_input.evidence.revocation.revoked:
            raise InputError(f"{plan.full_name}@{plan.version} is revoked",
                             advice="install another version")
        if plan.decision.action is Action.BLOCK and not (outcome.override and
                                                         plan.decision.overridable):
            raise InputError(f"{plan.full_name} is blocked")
        for other in self.store.all():
            if other.name != plan.full_name and other.manifest.get("name") == plan.plugin:
                raise InputError(
                    f"a plugin named {plan.plugin!r} is already installed as {other.name}",
                    advice=f"remove it first: cortex plugin remove {other.name}")
        if pull is not None:
            pull(plan)
        record = InstallRecord(
            name=plan.full_name, version=plan.version, image=plan.image, digest=plan.digest,
            registry=plan.registry, manifest=plan.manifest,
            decision=plan.decision.to_json_dict(), policy_revision=plan.decision.policy_revision,
            installed_at=format_time(now),
            overrides=plan.decision.codes if outcome.override else (),
            source=plan.source, registry_state="yanked" if plan.state == "yanked" else "active",
            yank_reason=plan.yank_reason)
        self._inputs.put(plan.full_name, plan.policy_input, feed=self.target(plan.full_name))
        self.store.put(record)
        return record

    def remove(self, name: str) -> InstallRecord | None:
        """Forget ``name``; returns its record, or ``None`` if it was not installed."""
        return remove_installed(self.store.path.parent, name)

    # -- run ----------------------------------------------------------------------------------

    def check_run(self, name: str, *, now: datetime, refresh: bool = True) -> RunCheck:
        """Ask the policy (operation ``run``) whether installed ``name`` may run now.

        A registry plugin's version is first confirmed with its registry (the version document:
        revoked there is revoked here, whatever the local feed cursor says, since a cursor moved
        forward in the cache would skip the revocation), then the revocation feed is synced. If
        the registry cannot be reached the cached data is used as it stands: its
        ``fresh_as_of`` is the last successful sync, so it goes stale by the policy's clock
        (``sync_error`` says why). A registry that no longer knows the version, or names
        another digest for it, leaves the revocation state unknown (the policy refuses).
        ``refresh=False`` asks no registry at all: the decision is made on what is kept locally
        (the install's evidence and the cached revocation data, stale or not), as ``run`` would
        make it with every registry unreachable.
        Raises :class:`InputError` if ``name`` is not installed or its local state is missing
        or not private.
        """
        timer = _Timer()
        record = self.store.require(name)
        stored = self._inputs.get(name)
        if stored is None or stored.artifact.digest != record.digest:
            raise InputError(f"the local install state of {name} is incomplete",
                             advice=f"reinstall it: cortex plugin install {name}")
        target = self.target(record.name)
        sync_error: str | None = None
        record_revoked: dict[str, str | None] | None = None
        with timer.step("revocation"):
            state: FeedState | None
            moved = self._moved(name, target)
            if moved is not None:
                # Another registry's feed knows nothing about this version: "not revoked"
                # from it would be a guess. Unknown, so the policy refuses.
                sync_error, state = moved, None
            elif not refresh:
                state = self._cached_feed(target)
            else:
                fed = self._federated(target)
                try:
                    unconfirmed = None
                    if record.source == "registry":
                        record_revoked, unconfirmed = self._confirm_version(fed, record)
                    state = self._sync(fed, now=now)
                    if unconfirmed is not None:
                        sync_error, state = unconfirmed, None
                except RegistryUnavailable as e:
                    sync_error = e.message
                    state = self._cached_feed(target)
                finally:
                    fed.close()
            ns = record.name.split("/", 1)[0] if record.source == "registry" else None
            revocation = revocation_evidence(
                state, registry=target.name, digest=record.digest, namespace=ns,
                name=str(record.manifest.get("name")) if ns else None,
                version=record.version if ns else None, record_revoked=record_revoked,
                now=now)
        with timer.step("decide"):
            evidence = stored.evidence.model_copy(update={"revocation": revocation})
            context = Context(now=format_time(now), cortex_version=self.cortex_version,
                              operation="run", registry=stored.context.registry)
            policy_input = stored.model_copy(update={"evidence": evidence, "context": context})
            # Round-trip through validation: model_copy does not validate.
            policy_input = PolicyInput.model_validate_json(policy_input.to_json())
            decision = decide(self.engine, policy_input)
        overridden = False
        if decision.failed or revocation.revoked:
            # A revoked plugin never starts (issue 5), even under a policy that lost the rule.
            allowed = False
        elif decision.action is Action.BLOCK:
            overridden = (decision.overridable and bool(record.overrides)
                          and set(decision.codes) <= set(record.overrides))
            allowed = overridden
        else:
            allowed = True
        return RunCheck(record=record, decision=decision, revocation=revocation,
                        allowed=allowed, overridden=overridden, sync_error=sync_error,
                        timings=timer.times)

    def _confirm_version(self, fed: FederatedRegistry, record: InstallRecord
                         ) -> tuple[dict[str, str | None] | None, str | None]:
        """``(revoked, problem)`` for installed ``record`` as its registry now describes it:
        ``revoked`` (``reason``, ``revoked_at``) when the registry says the version is revoked;
        ``problem`` when the registry no longer knows the version or names another digest for
        it (then nothing it says about revocation can be matched to what is installed). A
        version now yanked (or active again) is recorded as such in the install record.
        Raises :class:`RegistryUnavailable` when the registry cannot be reached."""
        from ..sources import RegistryRequestError

        ns, _, plugin = record.name.partition("/")
        try:
            detail = fed.call(lambda c: c.get_version(ns, plugin, record.version))
        except RegistryRequestError as e:
            return None, (f"registry {fed.target.name!r} cannot confirm {record.name}@"
                          f"{record.version}: {e.message}")
        if detail.digest != record.digest:
            return None, (f"registry {fed.target.name!r} now lists {detail.digest} for "
                          f"{record.name}@{record.version}, not the installed {record.digest}")
        if detail.state in ("active", "yanked") and detail.state != record.registry_state:
            self.store.put(record.model_copy(update={"registry_state": detail.state,
                                                     "yank_reason": _yank_reason(detail)}))
        if detail.state != "revoked":
            return None, None
        info = detail.revocation or {}
        reason, at = info.get("reason"), info.get("revoked_at")
        return {"reason": reason if isinstance(reason, str) else None,
                "revoked_at": at if isinstance(at, str) else None}, None

    def _moved(self, name: str, target: RegistryTarget) -> str | None:
        """Why ``target`` is not the registry ``name`` was installed from, or ``None``."""
        recorded = self._inputs.feed(name)
        if recorded == (target.name, target.urls[0]):
            return None
        was = f"registry {recorded[0]!r} ({recorded[1]})" if recorded else "an unrecorded registry"
        return (f"{name} was installed from {was}, but its name now resolves to registry "
                f"{target.name!r} ({target.urls[0]}), whose revocation feed does not speak for "
                f"it; reinstall it (cortex plugin install {name}) or restore the configuration")

    def sync(self, *, now: datetime) -> SyncReport:
        """Sync the feeds of every registry installed plugins came from, confirm each installed
        registry version with its registry (revoked there is revoked here, whatever the cached
        feed cursor says), and report the installed plugins now known to be revoked (the caller
        stops their containers)."""
        records = self.store.all()
        targets: dict[str, RegistryTarget] = {}
        for r in records:
            t = self.target(r.name)
            targets[t.name] = t
        synced: list[str] = []
        errors: dict[str, str] = {}
        for t in targets.values():
            fed = self._federated(t)
            try:
                self._sync(fed, now=now)
                synced.append(t.name)
            except RegistryUnavailable as e:
                errors[t.name] = e.message
            finally:
                fed.close()
        revoked = []
        for r in records:
            t = targets[self.target(r.name).name]
            moved = self._moved(r.name, t)
            if moved is not None:
                errors[t.name] = moved  # its revocation state is unknown, never "not revoked"
                continue
            ns = r.name.split("/", 1)[0] if r.source == "registry" else None
            record_revoked: dict[str, str | None] | None = None
            if ns is not None and t.name in synced:
                # As for `run`: the registry's own word on the version, so a feed cursor moved
                # forward in the local cache cannot hide a revocation from `sync` either.
                fed = self._federated(t)
                try:
                    record_revoked, problem = self._confirm_version(fed, r)
                except RegistryUnavailable as e:
                    problem = e.message
                finally:
                    fed.close()
                if problem is not None:
                    errors[t.name] = problem
            ev = revocation_evidence(self._cached_feed(t), registry=t.name, digest=r.digest,
                                     namespace=ns,
                                     name=str(r.manifest.get("name")) if ns else None,
                                     version=r.version if ns else None,
                                     record_revoked=record_revoked)
            if ev.revoked:
                revoked.append(r)
        return SyncReport(synced=tuple(synced), errors=errors, revoked=tuple(revoked))


def remove_installed(data_dir: Path, name: str) -> InstallRecord | None:
    """Forget installed ``name`` (its record and its stored input); returns the record, or
    ``None`` if it was not installed. Stopping its container is the caller's business."""
    store = InstallStore(data_dir)
    record = store.get(name)
    if record is None:
        return None
    store.remove(name)
    _InputStore(data_dir).remove(name)
    return record


def _get_bundle(client: RegistryClient, namespace: str, name: str, version: str) -> bytes:
    """The version's Sigstore bundle as the registry stored it (``GET .../bundle``)."""
    return client.get_bundle(namespace, name, version)
