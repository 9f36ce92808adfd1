"""The consumer side: resolve → verify → decide → (pull) → record, and the run-time check.

The I/O layer around the pure core (:mod:`cortex_trust.install._plan`): this module sequences
registry calls, evidence gathering, feed syncs, the policy engine and the local stores, and
hands every value it gathered to the core's checks; it holds no refusal of its own. Nothing here
prints, prompts or reads the environment. The CLI gives an :class:`Installer` its configuration,
the tokens it read, the trusted roots and a policy-engine factory; the installer returns plans
and outcomes, and the CLI acts on them (prompt, refuse, pull, start).

Install (:meth:`Installer.plan`):

1. **Resolve.** The request names exactly one registry (:mod:`cortex_trust.install._federation`),
   tried through its URL and then its mirrors. The version is
   :func:`~cortex_trust.install.select_version` over the registry's list; the version record
   must agree with the list and carry a manifest that names the request.
2. **Verify.** Signature, registry evidence, revocation (from the registry's feed, with its
   ``fresh_as_of``) and transparency facts (:mod:`cortex_trust.install._evidence`).
3. **Decide.** One :func:`~cortex_trust.policy.build_input` (operation ``install``), one
   :func:`~cortex_trust.engine.decide` (fail closed).

:func:`~cortex_trust.install.judge_install` turns a plan into what to do: install, ask, refuse,
or "could not decide". :meth:`Installer.commit` pulls (through a callback) and records.

Run (:meth:`Installer.check_run`): the install-time input is refreshed
(:func:`~cortex_trust.policy.refresh_input`) with operation ``run``, the current time and fresh
revocation evidence; a registry that cannot be reached leaves the cached revocation data as it
was, so it goes stale and the policy refuses (``REVOCATION_STALE``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import PolicyEngine, decide
from ..errors import RegistryUnavailable
from ..policy import (
    DisputeEvidence,
    DroppedEvidence,
    PromotionEvidence,
    ReviewEvidence,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    UsageEvidence,
    format_time,
)
from ._config import CortexConfig
from ._evidence import github_signature, registry_piece, registry_signature, transparency_facts
from ._federation import FederatedRegistry, RegistryTarget, default_target, registry_target
from ._plan import (
    InstallOutcome,
    InstallPlan,
    RunCheck,
    SyncReport,
    check_commit,
    check_name_free,
    check_served_manifest,
    check_stored_input,
    check_updatable,
    check_version_record,
    confirm_version,
    feed_moved,
    github_image_digest,
    is_update,
    judge_run,
    not_in_registry,
    yank_reason,
)
from ._request import PluginRequest, parse_request
from ._revocations import revocation_evidence, sync_feed
from ._signer_pin import next_pin, pinned_continuity, seed_pin
from ._state import CheckpointStore, FeedState, InputStore, InstallRecord, InstallStore, RevocationCache
from ._versions import VersionCandidate, select_version, widened_permissions

if TYPE_CHECKING:
    import httpx

    from ..evidence import TrustRoot
    from ..manifest import Manifest
    from ..policy import Decision, PlatformVersionSource, PolicyInput, RevocationEvidence

__all__ = ["Installer", "remove_installed"]


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


def _manifest_from_document(doc: Mapping[str, object], *, source: str) -> Manifest:
    """Re-validate a manifest document (as the registry serves it) with the hardened loader.

    JSON is YAML, so the same loader and the same strict model apply.
    """
    from ..manifest import parse_manifest

    return parse_manifest(json.dumps(doc).encode("utf-8"), source=source)


class Installer:
    """Plan installs and updates, record them, and check installed plugins before they run.

    ``tokens`` maps registry names (``default`` for the default registry) to tokens the caller
    read (e.g. from ``token_env``); ``engine_factory`` builds the policy engine on first use
    (call :meth:`close` to release it). ``trusted_roots`` are the Sigstore roots bundles are
    re-verified against (production plus configured ones). ``transport`` is handed to every
    HTTP client (tests). ``cortex_version`` is the CORTEX platform's version decisions compare
    ``trust.min_cortex_version`` with (``None``: unknown, which the policy reports) and
    ``cortex_version_source`` where it came from. Nothing here prints or reads the environment.
    """

    def __init__(self, *, config: CortexConfig, data_dir: Path,
                 engine_factory: Callable[[], PolicyEngine],
                 trusted_roots: Sequence[TrustRoot], cortex_version: str | None,
                 cortex_version_source: PlatformVersionSource | None = None,
                 tokens: Mapping[str, str | None] | None = None,
                 registry_override: str | None = None, github_token: str | None = None,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.store = InstallStore(data_dir)
        self._data_dir = data_dir
        self.revocations = RevocationCache(data_dir)
        self.checkpoints = CheckpointStore(data_dir)
        self._inputs = InputStore(data_dir)
        self._engine_factory = engine_factory
        self._engine: PolicyEngine | None = None
        self.trusted_roots = tuple(trusted_roots)
        self.cortex_version = cortex_version
        self.cortex_version_source = cortex_version_source
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
            return default_target(self.config, token=self._tokens.get("default"),
                                  registry_override=self._override)
        return registry_target(self.config, full_name, tokens=self._tokens,
                               registry_override=self._override)

    def _federated(self, target: RegistryTarget) -> FederatedRegistry:
        return FederatedRegistry(target, timeout=self._timeout, transport=self._transport,
                                 data_dir=self._data_dir)

    def _sync(self, fed: FederatedRegistry, *, now: datetime) -> FeedState:
        target = fed.target
        # The cache is keyed by the primary URL: mirrors serve the same feed and cursors.
        # A feed read through an index is current as of its verified timestamp, not as of now.
        return fed.call(lambda c: sync_feed(c, registry=target.name, url=target.urls[0],
                                            cache=self.revocations, now=c.data_as_of(now)))

    def _cached_feed(self, target: RegistryTarget) -> FeedState | None:
        return self.revocations.get(target.name, url=target.urls[0])

    # -- install ----------------------------------------------------------------------------

    def plan(self, request: str | PluginRequest, *, now: datetime,
             previous: InstallRecord | None = None) -> InstallPlan:
        """Resolve, verify and decide ``request`` (operation ``install``). Side effects: only
        the revocation cache (and the saved log checkpoint) are updated.

        Raises :class:`InputError` (bad name, no such plugin or version, a revoked or
        inconsistent record, an unpinned image), :class:`RegistryUnavailable` (registry or
        mirrors unreachable, garbage answers).
        """
        req = parse_request(request) if isinstance(request, str) else request
        if previous is not None and previous.signer is None:
            # Installed before signers were pinned: pinned to the signer its install was decided with.
            previous = seed_pin(previous, self._inputs.get(previous.name))
        if req.kind == "github":
            return self._plan_github(req, now=now, previous=previous)
        return self._plan_registry(req, now=now, previous=previous)

    def _plan_registry(self, req: PluginRequest, *, now: datetime,
                       previous: InstallRecord | None) -> InstallPlan:
        from ..policy import build_input
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
                        raise not_in_registry(req.full_name, registry=target.name,
                                              url=fed.served_by or target.urls[0]) from None
                    raise
                chosen = select_version(
                    [VersionCandidate(version=v.version, state=v.state, digest=v.digest)
                     for v in versions], req.version)
                detail = fed.call(lambda c: c.get_version(ns, name, chosen.version))
                check_version_record(req.full_name, chosen, detail, registry=target.name)
                assert detail.manifest is not None
                manifest = _manifest_from_document(
                    detail.manifest, source=f"{target.name}:{req.full_name}@{detail.version}")
                check_served_manifest(req.full_name, manifest, name=name, version=detail.version)
                served_by = fed.served_by
            with timer.step("verify"):
                dropped: list[DroppedEvidence] = []
                signature = registry_signature(fed, ns, name, detail.version, digest=detail.digest,
                                               trusted_roots=self.trusted_roots, dropped=dropped)
                ev = detail.evidence if isinstance(detail.evidence, dict) else {}
                pieces = {kind: registry_piece(model, ev.get(kind), kind=kind,
                                               registry=target.name, dropped=dropped)
                          for kind, model in (("scan", ScanEvidence), ("tests", TestEvidence),
                                              ("review", ReviewEvidence),
                                              ("usage", UsageEvidence),
                                              ("promotion", PromotionEvidence),
                                              ("disputes", DisputeEvidence))}
                state = self._sync(fed, now=now)
                revocation = revocation_evidence(
                    state, registry=target.name, digest=detail.digest, namespace=ns, name=name,
                    version=detail.version)
                transparency = transparency_facts(fed, self.checkpoints, ns, name, detail.version,
                                                  digest=detail.digest)
            with timer.step("decide"):
                policy_input = build_input(
                    manifest=manifest, image=detail.image, digest=detail.digest,
                    operation="install", now=now, cortex_version=self.cortex_version,
                    cortex_version_source=self.cortex_version_source,
                    signature=signature, revocation=revocation, transparency=transparency,
                    signer_continuity=pinned_continuity(signature, previous),
                    dropped=dropped, registry=target.name, namespace=ns, **pieces)
                decision = decide(self.engine, policy_input)
        finally:
            fed.close()
        doc = manifest.to_document()
        return InstallPlan(
            request=req, full_name=req.full_name, plugin=manifest.name, version=detail.version,
            image=detail.image, digest=detail.digest, registry=target.name,
            registry_url=served_by, manifest=doc, policy_input=policy_input, decision=decision,
            state=detail.state, yank_reason=yank_reason(detail), source="registry",
            previous=previous,
            widened=tuple(widened_permissions(previous.manifest, doc)) if previous else (),
            timings=timer.times)

    def _plan_github(self, req: PluginRequest, *, now: datetime,
                     previous: InstallRecord | None) -> InstallPlan:
        from ..manifest import parse_manifest
        from ..policy import build_input
        from ..sources import GitHubClient

        assert req.github is not None
        timer = _Timer()
        with timer.step("resolve"):
            with GitHubClient(self.config.github_api, token=self._github_token,
                              timeout=self._timeout, transport=self._transport) as gh:
                raw = gh.read_manifest(req.github)
                manifest = parse_manifest(raw, source=f"{req.github}/manifest.yaml")
                digest = github_image_digest(req.github, manifest)
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
            signature = github_signature(bundles, digest=digest, trusted_roots=self.trusted_roots,
                                         source=str(req.github))
        with timer.step("decide"):
            policy_input = build_input(
                manifest=manifest, image=image, digest=digest, operation="install", now=now,
                cortex_version=self.cortex_version, cortex_version_source=self.cortex_version_source,
                revocation=revocation, signature=signature,
                signer_continuity=pinned_continuity(signature or SignatureEvidence(), previous),
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

    def plan_update(self, name: str, *, now: datetime) -> InstallPlan | None:
        """Plan the update of installed ``name`` to its newest satisfying version; ``None`` when
        the installed version is already the newest. Raises :class:`InputError` if not
        installed (or installed from GitHub: reinstall with the new ref)."""
        record = check_updatable(name, self.store.require(name))
        plan = self.plan(record.name, now=now, previous=record)
        return plan if is_update(plan, record) else None

    def commit(self, plan: InstallPlan, *, now: datetime, outcome: InstallOutcome,
               pull: Callable[[InstallPlan], object] | None = None) -> InstallRecord:
        """Pull (through ``pull``, which must raise on any mismatch) and record ``plan``.

        Refuses (:class:`InputError`) an outcome that is not ``install`` (or does not accept the
        plan's change of signer), and a plugin whose manifest name is already installed under
        another full name (one container per name). Nothing is recorded if ``pull`` raises.
        The record pins the signer (:func:`~cortex_trust.install._signer_pin.next_pin`): this
        version's at a first install, the new one (with the change recorded) after an accepted
        change, otherwise the installed record's.
        """
        check_commit(plan, outcome)
        check_name_free(plan, self.store.all())
        signer, change = next_pin(plan, now=format_time(now), consent=outcome.signer_consent)
        if pull is not None:
            pull(plan)
        earlier_changes = plan.previous.signer_changes if plan.previous is not None else ()
        record = InstallRecord(
            name=plan.full_name, version=plan.version, image=plan.image, digest=plan.digest,
            registry=plan.registry, manifest=plan.manifest,
            decision=plan.decision.to_json_dict(), policy_revision=plan.decision.policy_revision,
            installed_at=format_time(now),
            overrides=plan.decision.codes if outcome.override else (),
            source=plan.source, registry_state="yanked" if plan.state == "yanked" else "active",
            yank_reason=plan.yank_reason, signer=signer,
            signer_changes=(*earlier_changes, change) if change is not None else earlier_changes)
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
        Raises :class:`InputError` if ``name`` is not installed (naming the installed plugins it
        may mean) or its local state is missing, corrupt or not private.
        """
        from ..policy import refresh_input

        timer = _Timer()
        record = self.store.require(name)
        stored = check_stored_input(name, record, self._inputs.get(name))
        target = self.target(record.name)
        sync_error: str | None = None
        record_revoked: dict[str, str | None] | None = None
        with timer.step("revocation"):
            state: FeedState | None
            moved = feed_moved(name, self._inputs.feed(name), target)
            if moved is not None:
                # Unknown, so the policy refuses.
                sync_error, state = moved, None
            elif not refresh:
                state = self._cached_feed(target)
            else:
                fed = self._federated(target)
                try:
                    unconfirmed = None
                    if record.source == "registry":
                        record_revoked, unconfirmed, scan = self._confirm_version(fed, record)
                        stored = self._rescanned(name, stored, scan, target)
                    state = self._sync(fed, now=now)
                    if unconfirmed is not None:
                        sync_error, state = unconfirmed, None
                except RegistryUnavailable as e:
                    sync_error = e.message
                    state = self._cached_feed(target)
                finally:
                    fed.close()
            revocation = self._revocation(record, target, state, record_revoked, now=now)
        with timer.step("decide"):
            policy_input = refresh_input(stored, now=now, operation="run", revocation=revocation,
                                         cortex_version=self.cortex_version,
                                         cortex_version_source=self.cortex_version_source,
                                         revalidate=True)
            decision = decide(self.engine, policy_input)
        allowed, overridden = judge_run(decision, revocation, overrides=record.overrides)
        return RunCheck(record=record, decision=decision, revocation=revocation,
                        allowed=allowed, overridden=overridden, sync_error=sync_error,
                        timings=timer.times)

    @staticmethod
    def _revocation(record: InstallRecord, target: RegistryTarget, state: FeedState | None,
                    record_revoked: Mapping[str, str | None] | None, *,
                    now: datetime | None = None) -> RevocationEvidence:
        """The revocation facts about installed ``record`` from ``state`` (and the registry's
        own word on the version, ``record_revoked``, read at ``now``)."""
        ns = record.name.split("/", 1)[0] if record.source == "registry" else None
        return revocation_evidence(
            state, registry=target.name, digest=record.digest, namespace=ns,
            name=str(record.manifest.get("name")) if ns else None,
            version=record.version if ns else None, record_revoked=record_revoked, now=now)

    def _confirm_version(self, fed: FederatedRegistry, record: InstallRecord
                         ) -> tuple[dict[str, str | None] | None, str | None, ScanEvidence | None]:
        """``(revoked, problem, scan)`` for installed ``record`` as its registry now describes it
        (:func:`~cortex_trust.install._plan.confirm_version`); ``scan`` is the registry's current
        scan of the installed digest (``None`` when it serves none or names another digest). A
        version now yanked (or active again) is recorded as such in the install record. Raises
        :class:`RegistryUnavailable` when the registry cannot be reached."""
        from ..sources import RegistryRequestError

        ns, _, plugin = record.name.partition("/")
        try:
            detail = fed.call(lambda c: c.get_version(ns, plugin, record.version))
        except RegistryRequestError as e:
            return (*confirm_version(record, None, registry=fed.target.name, refused=e.message), None)
        if (detail.digest == record.digest and detail.state in ("active", "yanked")
                and detail.state != record.registry_state):
            self.store.put(record.model_copy(update={"registry_state": detail.state,
                                                     "yank_reason": yank_reason(detail)}))
        scan = None
        if detail.digest == record.digest and isinstance(detail.evidence, dict):
            scan = registry_piece(ScanEvidence, detail.evidence.get("scan"), kind="scan",
                                  registry=fed.target.name, dropped=[])
        return (*confirm_version(record, detail, registry=fed.target.name), scan)

    def _rescanned(self, name: str, stored: PolicyInput, scan: ScanEvidence | None,
                   target: RegistryTarget) -> PolicyInput:
        """``stored`` with the registry's current scan of the installed digest, recorded when it
        is another scan than the one kept (a rescan: its age and findings are what the policy
        judges now); ``stored`` itself when there is none."""
        from ..policy import PolicyInput

        if scan is None or scan == stored.evidence.scan:
            return stored
        rescanned = PolicyInput.model_validate_json(stored.model_copy(update={
            "evidence": stored.evidence.model_copy(update={"scan": scan})}).to_json())
        self._inputs.put(name, rescanned, feed=target)
        return rescanned

    def _feed_targets(self, records: Sequence[InstallRecord]) -> dict[str, RegistryTarget]:
        targets: dict[str, RegistryTarget] = {}
        for r in records:
            t = self.target(r.name)
            targets[t.name] = t
        return targets

    def feed_targets(self) -> tuple[RegistryTarget, ...]:
        """The registries whose revocation feeds :meth:`sync` follows: one per registry name
        an installed plugin resolves from, as the installed plugins are now."""
        return tuple(self._feed_targets(self.store.all()).values())

    def feed_cursor(self, target: RegistryTarget) -> int:
        """Where :meth:`sync` continues ``target``'s feed from (0: never synced)."""
        state = self._cached_feed(target)
        return state.cursor if state is not None else 0

    def sync(self, *, now: datetime) -> SyncReport:
        """Sync the feeds of every registry installed plugins came from, confirm each installed
        registry version with its registry (revoked there is revoked here, whatever the cached
        feed cursor says), and report the installed plugins now known to be revoked (the caller
        stops their containers). A plugin whose revocation state cannot be known (its registry
        unreachable, its feed moved) is reported in ``errors``, never as "not revoked", and the
        others are still checked."""
        records = self.store.all()
        targets = self._feed_targets(records)
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
        revoked: list[InstallRecord] = []
        blocked: list[tuple[InstallRecord, Decision]] = []
        for r in records:
            t = targets[self.target(r.name).name]
            moved = feed_moved(r.name, self._inputs.feed(r.name), t)
            if moved is not None:
                errors[t.name] = moved  # its revocation state is unknown, never "not revoked"
                continue
            record_revoked: dict[str, str | None] | None = None
            scan: ScanEvidence | None = None
            if r.source == "registry" and t.name in synced:
                # As for `run`: the registry's own word on the version, so a feed cursor moved
                # forward in the local cache cannot hide a revocation from `sync` either.
                fed = self._federated(t)
                try:
                    record_revoked, problem, scan = self._confirm_version(fed, r)
                except RegistryUnavailable as e:
                    problem = e.message
                finally:
                    fed.close()
                if problem is not None:
                    errors[t.name] = problem
            revocation = self._revocation(r, t, self._cached_feed(t), record_revoked, now=now)
            if revocation.revoked:
                revoked.append(r)
            elif scan is not None:
                blocked.extend(self._redecide(r, t, scan, revocation, now=now))
        return SyncReport(synced=tuple(synced), errors=errors, revoked=tuple(revoked),
                          blocked=tuple(blocked))

    def _redecide(self, record: InstallRecord, target: RegistryTarget, scan: ScanEvidence,
                  revocation: RevocationEvidence, *, now: datetime
                  ) -> list[tuple[InstallRecord, Decision]]:
        """Decide installed ``record`` again (operation ``run``) with its registry's current
        scan; ``[(record, decision)]`` when it may no longer run, as ``run`` would judge it."""
        from ..policy import refresh_input

        stored = self._rescanned(record.name, check_stored_input(
            record.name, record, self._inputs.get(record.name)), scan, target)
        decision = decide(self.engine, refresh_input(
            stored, now=now, operation="run", revocation=revocation,
            cortex_version=self.cortex_version, cortex_version_source=self.cortex_version_source,
            revalidate=True))
        allowed, _ = judge_run(decision, revocation, overrides=record.overrides)
        return [] if allowed else [(record, decision)]


def remove_installed(data_dir: Path, name: str) -> InstallRecord | None:
    """Forget installed ``name`` (its record and its stored input); returns the record, or
    ``None`` if it was not installed. Stopping its container is the caller's business."""
    store = InstallStore(data_dir)
    record = store.get(name)
    if record is None:
        return None
    store.remove(name)
    InputStore(data_dir).remove(name)
    return record
