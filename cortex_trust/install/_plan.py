"""The pure trust core of install and run: what a plan is, and every refusal, written once.

Nothing here opens a socket or a file or reads the clock: each function takes the values the
orchestration (:mod:`cortex_trust.install._installer`) gathered and returns a value or raises.
What this module leaves out, on purpose:

* **verdicts**: the tier, the action and the sandbox come from the policy (Rego); here a decision
  is only mapped to what to do with it (:func:`judge_install`, :func:`judge_run`);
* **the registry client's own checks**: a listing of another plugin's versions, or a version
  document about another version, is refused by :class:`~cortex_trust.sources.RegistryClient`
  for every caller (its one home), before anything reaches this module;
* **version choice and widening**: :mod:`cortex_trust.install._versions`.

One rule stands beside the policy: a revoked version is never installed or run
(:func:`_revoked`), whatever the decision says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .._text import clip
from ..errors import InputError, RegistryUnavailable
from ..manifest import semver_key
from ..policy import Action, Decision, PolicyInput, RevocationEvidence, image_digest

if TYPE_CHECKING:
    from ..manifest import Manifest
    from ..sources import GitHubRef, VersionDetail
    from ._federation import RegistryTarget
    from ._request import PluginRequest
    from ._state import InstallRecord
    from ._versions import VersionCandidate

__all__ = [
    "InstallOutcome",
    "InstallPlan",
    "RunCheck",
    "SyncReport",
    "check_commit",
    "check_installed",
    "check_name_free",
    "check_served_manifest",
    "check_stored_input",
    "check_updatable",
    "check_version_record",
    "confirm_version",
    "feed_moved",
    "github_image_digest",
    "is_update",
    "judge_install",
    "judge_run",
    "not_in_registry",
    "yank_reason",
]


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

    @property
    def signer_changed(self) -> bool:
        """Whether this version's signer differs from the installed record's pinned one, or this
        version is unsigned where the pin is signed (the facts in the policy input)."""
        facts = self.policy_input.evidence.signer_continuity
        return facts.signer_changed or facts.signature_dropped

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
            "pinned_signer": (self.previous.signer.model_dump(mode="json")
                              if self.previous is not None and self.previous.signer is not None else None),
            "signer_continuity": self.policy_input.evidence.signer_continuity.model_dump(mode="json"),
            "timings": dict(self.timings),
        }


@dataclass(frozen=True)
class InstallOutcome:
    """What the CLI must do with a plan.

    ``verdict``: ``install`` (go ahead, possibly after asking), ``refuse`` (exit 1, nothing
    installed) or ``failed`` (the decision failed closed: exit 3). ``ask`` is true when a person
    must confirm first (warn without ``--yes``, an update that widens permissions, or a signer
    that is not the pinned one without ``--allow-signer-change``); without a terminal the CLI
    refuses. ``override`` is true for an overridden block (the reason codes are recorded).
    ``signer_consent`` says how a change of the pinned signer is accepted (``None``: the plan
    changes no signer, or its change is not accepted yet): by the flag, or by the person's yes at
    the prompt ``ask`` leads to (:meth:`confirmed`).
    """

    verdict: Literal["install", "refuse", "failed"]
    ask: bool = False
    override: bool = False
    notice: bool = False
    why: str = ""
    signer_consent: Literal["--allow-signer-change", "prompt"] | None = None

    def confirmed(self, plan: InstallPlan) -> InstallOutcome:
        """This outcome once the person answered yes at the prompt ``ask`` led to for ``plan``:
        for a plan that changes the signer the answer is also the consent to it (``prompt``).
        Only a confirmed outcome carries that consent, so an outcome nobody confirmed cannot
        record a signer change."""
        consent = self.signer_consent if self.signer_consent is not None or not plan.signer_changed else "prompt"
        return replace(self, ask=False, signer_consent=consent)


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
        return _revoked(self.revocation)

    @property
    def policy_changed(self) -> bool:
        """Whether this decision was made under another policy revision than the one recorded
        at install (the decision stands: it is the current policy's; callers say so)."""
        return self.decision.policy_revision != self.record.policy_revision


@dataclass(frozen=True)
class SyncReport:
    """Result of syncing every feed installed plugins depend on."""

    synced: tuple[str, ...]
    errors: Mapping[str, str]
    revoked: tuple[InstallRecord, ...]
    #: Installed plugins not revoked that may no longer run, decided again (operation ``run``)
    #: with their registry's current scan (a rescan found something, or the scan aged out).
    blocked: tuple[tuple[InstallRecord, Decision], ...] = ()


# -------------------------------------------------------------------------- the revocation rule


def _revoked(revocation: RevocationEvidence) -> bool:
    """Whether the revocation evidence says revoked."""
    # A revoked version is never installed or run, even under a policy that lost the rule.
    # Not a verdict computed here: a refusal on a fact, whatever the decision says.
    return revocation.revoked


# ---------------------------------------------------------------------------------- decisions


def judge_install(plan: InstallPlan, *, yes: bool, allow_blocked: bool,
                  allow_signer_change: bool = False) -> InstallOutcome:
    """Map the decision (and any re-consent the plan needs) to an :class:`InstallOutcome`.

    Revocation evidence saying revoked → refuse, whatever the action.
    allow → install; notice → install and show the notice; warn → ask unless ``yes``;
    block → refuse, unless the decision is overridable and ``allow_blocked`` is set; a decision
    that failed closed → ``failed``. Re-consent asks whatever the tier: an update that widens
    network, filesystem or capabilities (unless ``yes``), and a version whose signer is not the
    pinned one (unless ``allow_signer_change``: ``yes`` never accepts a new signer).
    """
    d = plan.decision
    if d.failed:
        return InstallOutcome("failed", why="the policy engine could not decide")
    if _revoked(plan.policy_input.evidence.revocation):
        return InstallOutcome("refuse", why="revoked (never installed, whatever the policy)")
    widened = bool(plan.widened)
    resigned = plan.signer_changed
    reconsent = (widened and not yes) or (resigned and not allow_signer_change)
    # Consent at the prompt is given only by the person's answer (:meth:`InstallOutcome.confirmed`).
    consent: Literal["--allow-signer-change"] | None = "--allow-signer-change" if resigned and allow_signer_change \
        else None
    if d.action is Action.BLOCK:
        if d.overridable and allow_blocked:
            return InstallOutcome("install", override=True, ask=reconsent, signer_consent=consent,
                                  why="blocked; overridden with --allow-blocked")
        why = "blocked" + ("" if d.overridable else " (not overridable)")
        return InstallOutcome("refuse", why=why)
    if d.action is Action.WARN:
        return InstallOutcome("install", ask=not yes or reconsent, signer_consent=consent,
                              why="the policy warns")
    why = "the signer is not the pinned one" if resigned else "the update widens permissions" if widened else ""
    return InstallOutcome("install", ask=reconsent, notice=d.action is Action.NOTICE, signer_consent=consent,
                          why=why)


def judge_run(decision: Decision, revocation: RevocationEvidence, *,
              overrides: Iterable[str]) -> tuple[bool, bool]:
    """``(allowed, overridden)`` for an installed plugin about to run.

    Never allowed when the decision failed closed or the revocation evidence says revoked. A
    block is allowed only when it is overridable and every one of its codes was overridden at
    install (``overrides``): a new reason is never covered by an old override.
    """
    if decision.failed or _revoked(revocation):
        return False, False
    if decision.action is Action.BLOCK:
        recorded = set(overrides)
        overridden = decision.overridable and bool(recorded) and set(decision.codes) <= recorded
        return overridden, overridden
    return True, False


# ---------------------------------------------------------------------- what a registry answers


def not_in_registry(full_name: str, *, registry: str, url: str) -> InputError:
    """The error for a registry that answered 404 for ``full_name`` (its answer is final: the
    name is never looked up elsewhere)."""
    return InputError(f"{full_name} is not in registry {registry!r} ({url})",
                      advice="check the name (`cortex plugin search`); namespaces resolve "
                             "from exactly one registry (`cortex config list`)")


def check_version_record(full_name: str, chosen: VersionCandidate, detail: VersionDetail, *,
                         registry: str) -> None:
    """Refuse a version record that disagrees with the listing it was chosen from, is revoked,
    names an image not pinned to its digest, or carries no manifest.

    Raises :class:`RegistryUnavailable` (an inconsistent registry) or :class:`InputError`.
    """
    if detail.digest != chosen.digest:
        raise RegistryUnavailable(
            f"registry {registry!r} lists {chosen.digest} for {full_name}@"
            f"{chosen.version} but its record says {detail.digest}",
            advice="the registry is inconsistent (or changed under us); retry")
    if detail.state == "revoked":
        raise InputError(f"{full_name}@{detail.version} is revoked",
                         advice="install another version")
    if image_digest(detail.image) != detail.digest:
        raise InputError(
            f"registry {registry!r} records image {detail.image} which is not "
            f"pinned to {detail.digest}",
            advice="the registry must serve images pinned by digest")
    if detail.manifest is None:
        raise RegistryUnavailable(f"registry {registry!r} served no manifest for "
                                  f"{full_name}@{detail.version}")


def check_served_manifest(full_name: str, manifest: Manifest, *, name: str, version: str) -> None:
    """Refuse a served manifest whose plugin name or version is not the one requested."""
    if (manifest.name, manifest.version) != (name, version):
        raise InputError(
            f"the manifest served for {full_name}@{version} names "
            f"{manifest.name}@{manifest.version}",
            advice="refused: the plugin's manifest and the request disagree")


def yank_reason(detail: VersionDetail) -> str | None:
    """The publisher's reason for a yanked version (``"no reason given"`` if it has none)."""
    if detail.state != "yanked":
        return None
    yank = detail.yank if isinstance(detail.yank, dict) else {}
    reason = yank.get("reason")
    return clip(reason, 500) if isinstance(reason, str) and reason.strip() else "no reason given"


def github_image_digest(ref: GitHubRef, manifest: Manifest) -> str:
    """The digest a GitHub plugin's manifest pins its image to; an image not pinned is refused
    before anything runs (a tag in a repository can move at any time)."""
    digest = manifest.image_digest
    if digest is None:
        raise InputError(
            f"{ref}: runtime.image {manifest.runtime.image} is not pinned by digest",
            advice="the plugin's manifest.yaml must name REGISTRY/REPO@sha256:DIGEST")
    return digest


# ------------------------------------------------------------------------------ installed state


def check_installed(name: str, record: InstallRecord | None) -> InstallRecord:
    """The install record of ``name``; refused when it is not installed."""
    if record is None:
        raise InputError(f"{name} is not installed", advice="see `cortex plugin list`")
    return record


def check_updatable(name: str, record: InstallRecord | None) -> InstallRecord:
    """``record``, when ``name`` is installed from a registry (a GitHub plugin follows a ref
    its user chooses: it is reinstalled, never updated)."""
    record = check_installed(name, record)
    if record.source == "github":
        raise InputError(f"{name} was installed from GitHub; updates follow a ref you choose",
                         advice=f"cortex plugin install {name}@REF")
    return record


def is_update(plan: InstallPlan, record: InstallRecord) -> bool:
    """Whether ``plan`` is newer than installed ``record`` (another digest, a higher version)."""
    return not (plan.digest == record.digest
                or semver_key(plan.version) <= semver_key(record.version))


def check_commit(plan: InstallPlan, outcome: InstallOutcome) -> None:
    """Refuse to record ``plan`` unless ``outcome`` accepted it: not an ``install`` verdict, a
    decision that failed closed, revoked, blocked without an accepted override, or a change of
    the pinned signer without consent."""
    if outcome.verdict != "install" or plan.decision.failed:
        raise InputError(f"{plan.full_name} was not accepted for installation ({outcome.why})")
    if _revoked(plan.policy_input.evidence.revocation):
        raise InputError(f"{plan.full_name}@{plan.version} is revoked",
                         advice="install another version")
    if plan.decision.action is Action.BLOCK and not (outcome.override and
                                                     plan.decision.overridable):
        raise InputError(f"{plan.full_name} is blocked")
    if plan.signer_changed and outcome.signer_consent is None:
        raise InputError(f"{plan.full_name}@{plan.version} is not signed by the pinned signer and the change "
                         "was not accepted", advice="re-run with --allow-signer-change to accept it (recorded)")


def check_name_free(plan: InstallPlan, installed: Iterable[InstallRecord]) -> None:
    """Refuse a plugin whose manifest name is already installed under another full name (one
    container per plugin name)."""
    for other in installed:
        if other.name != plan.full_name and other.manifest.get("name") == plan.plugin:
            raise InputError(
                f"a plugin named {plan.plugin!r} is already installed as {other.name}",
                advice=f"remove it first: cortex plugin remove {other.name}")


def check_stored_input(name: str, record: InstallRecord,
                       stored: PolicyInput | None) -> PolicyInput:
    """The install-time input of installed ``record``; refused when none was recorded or it is
    about another digest than the record."""
    if stored is None or stored.artifact.digest != record.digest:
        raise InputError(f"the local install state of {name} is incomplete",
                         advice=f"reinstall it: cortex plugin install {name}")
    return stored


def confirm_version(record: InstallRecord, detail: VersionDetail | None, *, registry: str,
                    refused: str | None = None) -> tuple[dict[str, str | None] | None, str | None]:
    """``(revoked, problem)`` for installed ``record`` as its registry now describes it
    (``detail``, or ``refused``: why the registry refused to describe it).

    ``revoked`` (``reason``, ``revoked_at``) when the registry says the version is revoked;
    ``problem`` when the registry no longer knows the version or names another digest for it
    (then nothing it says about revocation can be matched to what is installed).
    """
    if detail is None:
        return None, (f"registry {registry!r} cannot confirm {record.name}@"
                      f"{record.version}: {refused}")
    if detail.digest != record.digest:
        return None, (f"registry {registry!r} now lists {detail.digest} for "
                      f"{record.name}@{record.version}, not the installed {record.digest}")
    if detail.state != "revoked":
        return None, None
    info = detail.revocation or {}
    reason, at = info.get("reason"), info.get("revoked_at")
    return {"reason": reason if isinstance(reason, str) else None,
            "revoked_at": at if isinstance(at, str) else None}, None


def feed_moved(name: str, recorded: tuple[str, str] | None, target: RegistryTarget) -> str | None:
    """Why ``target`` cannot speak for installed ``name`` (its install recorded the feed of
    another registry, or none), or ``None`` when it is the recorded one. Another registry's
    feed knows nothing about this version: "not revoked" from it would be a guess."""
    if recorded == (target.name, target.urls[0]):
        return None
    was = f"registry {recorded[0]!r} ({recorded[1]})" if recorded else "an unrecorded registry"
    return (f"{name} was installed from {was}, but its name now resolves to registry "
            f"{target.name!r} ({target.urls[0]}), whose revocation feed does not speak for "
            f"it; reinstall it (cortex plugin install {name}) or restore the configuration")
