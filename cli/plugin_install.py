"""``cortex plugin install|update|list|info|remove``: installing plugins and what is installed.

The library (:mod:`cortex_trust.install`) resolves, verifies and decides; this module asks on a
terminal, prints, and turns outcomes into exit codes:

  0 done; 1 refused by the decision (block, a warn, a widening or a new signer not confirmed,
  revoked);
  2 usage or input error (unknown plugin or version, bad request);
  3 something could not run (a registry or mirror down or answering garbage, the policy engine,
    the container engine): nothing was installed.

With a container engine (``--engine`` or ``DOCKER_HOST``), ``install`` pulls by digest and checks
what arrived (digest, plugin name and version labels) before recording; without one it records
the decision and the pinned digest, and ``cortex plugin run`` pulls (with the same checks).
Reading the environment and printing are :mod:`cli._consumer`'s.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._consumer import confirm as _confirm
from ._consumer import data_dir as _data_dir
from ._consumer import decision_text as _decision_text
from ._consumer import installer as _installer
from ._consumer import now as _now
from ._consumer import runtime as _runtime
from ._consumer import say as _say
from ._consumer import say_json as _say_json
from ._errors import EXIT_DECISION, EXIT_UNAVAILABLE
from ._errors import fail as _fail
from ._options import (
    AllowBlockedOpt,
    AllowSignerChangeOpt,
    DataOpt,
    EngineOpt,
    FormatOpt,
    OpaUrlOpt,
    PolicyDirOpt,
    PolicyEngineOpt,
    RegistryOpt,
    TrustedRootOpt,
    YesOpt,
)
from ._render import style_for

if TYPE_CHECKING:
    from cortex_trust.install import Installer, InstallOutcome, InstallPlan

__all__ = ["register"]


# ----------------------------------------------------------------------------------- install


def _act(inst: Installer, plan: InstallPlan, *, yes: bool, allow_blocked: bool, allow_signer_change: bool,
         engine: str | None, fmt: str, now: datetime) -> None:
    """Act on ``plan``: ask, refuse, override, pull, record; print; exit on refusal."""
    from cortex_trust.install import judge_install

    outcome = judge_install(plan, yes=yes, allow_blocked=allow_blocked, allow_signer_change=allow_signer_change)
    verb, done = ("update", "updated") if plan.previous else ("install", "installed")
    what = f"{plan.full_name}@{plan.version}"
    if fmt == "text":
        src = f"registry {plan.registry} ({plan.registry_url})" if plan.source == "registry" \
            else f"GitHub ({plan.request.text})"
        _say(f"{what} from {src}, image {plan.image}")
        _say(f"  {_platform_line(plan)}")
        for line in _decision_text(plan.decision):
            _say(line)
        for d in plan.policy_input.evidence.dropped:
            _say(f"  evidence not used: {d.kind}: {d.code}: {d.message}")
    if outcome.verdict == "failed":
        _emit(fmt, plan, outcome, installed=False, pulled=False)
        _fail(f"could not decide on {what}: the policy engine failed (nothing {done})",
              advice="check the policies (cortex policy test) and retry", code=EXIT_UNAVAILABLE)
    if outcome.verdict == "refuse":
        _emit(fmt, plan, outcome, installed=False, pulled=False)
        advice = ("the block is overridable: --allow-blocked installs it anyway (recorded)"
                  if plan.decision.overridable else "this block cannot be overridden")
        _fail(f"{verb} of {what} refused: {outcome.why}; reasons: "
              + "; ".join(f"{r.code}: {r.message}" for r in plan.decision.reasons),
              advice=advice, code=EXIT_DECISION)
    if plan.state == "yanked":
        # pip's behaviour: a yanked version is only taken when pinned exactly, and said so.
        _say(f"warning: {what} was yanked by its publisher ({plan.yank_reason or ''}); "
             "installing it only because it was pinned exactly", err=True)
    if outcome.override:
        _say(f"WARNING: {what} is BLOCKED by policy ({', '.join(plan.decision.codes)}); "
             "installing anyway because of --allow-blocked. This override is recorded.", err=True)
    if plan.widened:
        _say(f"{what} asks for more than the installed {plan.previous.version if plan.previous else ''}: "
             + ", ".join(plan.widened), err=True)
    signer_pending = plan.signer_changed and not allow_signer_change
    if plan.signer_changed:
        _say(_signer_change_line(plan), err=True)
    if outcome.ask:
        question = (f"accept the new signer and {verb} anyway? (recorded; the pin moves to it)" if signer_pending
                    else "the update widens permissions; update anyway?" if plan.widened
                    else f"{what} is {plan.decision.tier.value}; install anyway?")
        if not sys.stdin.isatty():
            _emit(fmt, plan, outcome, installed=False, pulled=False)
            if signer_pending:
                _fail(f"{verb} of {what} needs your consent to a new signer and there is no terminal to ask "
                      "(nothing installed)",
                      advice="if you expected the change (check with the publisher), re-run with "
                             "--allow-signer-change to accept it (recorded in the install record)"
                             + ("" if yes else " and --yes")
                             + ("; a bundle that should verify needs its Sigstore root trusted here "
                                "(--trusted-root, as at install)"
                                if plan.policy_input.evidence.signer_continuity.signature_dropped else ""),
                      code=EXIT_DECISION)
            _fail(f"{verb} of {what} needs confirmation and there is no terminal to ask "
                  "(nothing installed)", advice="re-run with --yes to accept", code=EXIT_DECISION)
        if not _confirm(question):
            _fail(f"{verb} of {what} not confirmed (nothing installed)", code=EXIT_DECISION)
        outcome = outcome.confirmed(plan)
    runtime = _runtime(engine, required=False)

    def pull(p: InstallPlan) -> object:
        assert runtime is not None
        return runtime.pull_pinned(p.image, plugin=p.plugin, version=p.version)

    record = inst.commit(plan, now=now, outcome=outcome, pull=pull if runtime is not None else None)
    _emit(fmt, plan, outcome, installed=True, pulled=runtime is not None)
    if fmt == "text":
        if outcome.notice:
            _say("notice: " + "; ".join(r.message for r in plan.decision.reasons))
        if record.signer is not None and (plan.previous is None or plan.previous.signer != record.signer):
            _say(f"signer pinned: {record.signer.describe()}"
                 + (f" (the change from {plan.previous.signer.describe()} is recorded, "
                    f"{_CONSENT[outcome.signer_consent or 'prompt']})"
                    if plan.signer_changed and plan.previous is not None and plan.previous.signer is not None
                    else ""))
        _say(f"{done} {what} ({plan.digest})"
             + ("; image pulled and checked" if runtime is not None else
                "; image not pulled yet (no container engine): `cortex plugin run` pulls it"))


#: How a change of the pinned signer was accepted, in words.
_CONSENT = {"prompt": "accepted at the prompt", "--allow-signer-change": "accepted with --allow-signer-change"}


def _signer_change_line(plan: InstallPlan) -> str:
    """What changed about the signer of ``plan`` compared with the installed record's pin."""
    from cortex_trust.evidence import signer_of

    pin = plan.previous.signer if plan.previous is not None else None
    now = signer_of(plan.policy_input.evidence.signature)
    error = plan.policy_input.evidence.signature.error
    signed = (f"is signed by {now.identity} ({now.issuer}), root {now.trusted_root}" if now
              else "has no verified signature" + (f" ({error})" if error else ""))
    pinned = f"{pin.describe()}, pinned at {pin.version} on {pin.pinned_at}" if pin else "another signer"
    last = plan.policy_input.evidence.signer_continuity.previous_signer
    if pin is not None and pin.ref is None and last is not None:
        pinned += f"; last signed by {last.identity} ({last.issuer})"
    return f"SIGNER CHANGED: {plan.full_name}@{plan.version} {signed}; the pinned signer is {pinned}"


def _platform_line(plan: InstallPlan) -> str:
    """Which CORTEX platform version the decision compared the plugin's minimum with, and where
    that version came from."""
    from cortex_trust.install import PlatformVersion

    context = plan.policy_input.context
    trust = plan.manifest.get("trust")
    needed = trust.get("min_cortex_version") if isinstance(trust, dict) else None
    platform = PlatformVersion(context.cortex_version, context.cortex_version_source)
    return f"CORTEX platform {platform.describe()}; the plugin needs {needed} or later"


def _emit(fmt: str, plan: InstallPlan, outcome: InstallOutcome, *, installed: bool,
          pulled: bool) -> None:
    if fmt != "json":
        return
    doc = {"schema": "cortex.install/v1", **plan.to_json_dict(),
           "platform_version": {"version": plan.policy_input.context.cortex_version,
                                "source": plan.policy_input.context.cortex_version_source},
           "outcome": {"verdict": outcome.verdict, "ask": outcome.ask,
                       "override": outcome.override, "why": outcome.why},
           "installed": installed, "pulled": pulled}
    _say_json(doc)


def install(
    name: Annotated[str, typer.Argument(help="NAMESPACE/NAME[@VERSION|@^RANGE] or "
                                             "github:OWNER/REPO[@REF].")],
    registry: RegistryOpt = None,
    yes: YesOpt = False,
    allow_blocked: AllowBlockedOpt = False,
    allow_signer_change: AllowSignerChangeOpt = False,
    trusted_root: TrustedRootOpt = None,
    policy_dir: PolicyDirOpt = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    policy_engine: PolicyEngineOpt = None,
    opa_url: OpaUrlOpt = None,
    output_format: FormatOpt = "text",
) -> None:
    """Install a plugin: resolve, verify, decide (operation install), pull by digest, record."""
    now = _now()
    with _installer(registry=registry, trusted_roots=trusted_root, policy_dirs=policy_dir,
                    data=data, policy_engine=policy_engine, opa_url=opa_url) as inst:
        from cortex_trust.install import parse_request

        request = parse_request(name)
        previous = inst.store.get(request.full_name)
        plan = inst.plan(request, now=now, previous=previous)
        _act(inst, plan, yes=yes, allow_blocked=allow_blocked, allow_signer_change=allow_signer_change,
             engine=engine, fmt=output_format, now=now)


def update(
    name: Annotated[str | None, typer.Argument(help="Installed plugin (default: all).")] = None,
    registry: RegistryOpt = None,
    yes: YesOpt = False,
    allow_blocked: AllowBlockedOpt = False,
    allow_signer_change: AllowSignerChangeOpt = False,
    trusted_root: TrustedRootOpt = None,
    policy_dir: PolicyDirOpt = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    policy_engine: PolicyEngineOpt = None,
    opa_url: OpaUrlOpt = None,
    output_format: FormatOpt = "text",
) -> None:
    """Update installed plugins to their newest version; widened permissions and a signer other
    than the one pinned at first install always ask."""
    now = _now()
    with _installer(registry=registry, trusted_roots=trusted_root, policy_dirs=policy_dir,
                    data=data, policy_engine=policy_engine, opa_url=opa_url) as inst:
        names = [name] if name else [r.name for r in inst.store.all()
                                     if r.source == "registry"]
        for n in names:
            plan = inst.plan_update(n, now=now)
            if plan is None:
                if output_format == "text":
                    _say(f"{n} is up to date")
                continue
            _act(inst, plan, yes=yes, allow_blocked=allow_blocked, allow_signer_change=allow_signer_change,
                 engine=engine, fmt=output_format, now=now)


# ------------------------------------------------------------------------- list / info / remove


def list_installed(policy_dir: PolicyDirOpt = None, data: DataOpt = None,
                   engine: EngineOpt = None, output_format: FormatOpt = "text") -> None:
    """List installed plugins and their state now.

    TIER and ACTION are the decision at install (OVERRIDDEN: installed with --allow-blocked).
    STATE says, from what this machine knows (no registry is asked): running (its container
    runs; asked only when a container engine is given, --engine or DOCKER_HOST), revoked (the
    cached revocation data says so), yanked (its publisher yanked the version, as its registry
    said at install or at the last run, call or sync), blocked now (the current policy, asked
    again with the evidence recorded at install and the cached revocation data, blocks it:
    what `run` would decide with no registry reachable; stale revocation data blocks too, and
    `cortex plugin sync` refreshes it), ok (none of these).
    """
    from cortex_trust.install import InstallStore

    records = InstallStore(_data_dir()).all()
    states = _states(records, policy_dir=policy_dir, data=data, engine=engine) if records else []
    if output_format == "json":
        _say_json({"schema": "cortex.installed/v1",
                   "plugins": [{**r.model_dump(mode="json"), "status": st}
                               for r, st in zip(records, states, strict=True)]})
        return
    if not records:
        _say("no plugins installed")
        return
    from ._render import table

    rows, roles = [], []
    for r, st in zip(records, states, strict=True):
        d = r.decision
        words = [w for w, on in (("running", st["running"]), ("revoked", st["revoked"]),
                                 ("yanked", st["yanked"]), ("blocked now", st["blocked_now"])) if on]
        state = ", ".join(words) or "ok"
        rows.append([r.name, r.version, str(d.get("tier")),
                     f"{d.get('action')}{' OVERRIDDEN' if r.overrides else ''}", state,
                     r.registry or r.source, r.digest])
        roles.append([None, None, str(d.get("tier")), "bad" if r.overrides else str(d.get("action")),
                      "bad" if st["revoked"] or st["blocked_now"] else "warn" if st["yanked"] else "ok",
                      None, None])
    for line in table(["NAME", "VERSION", "TIER", "ACTION", "STATE", "REGISTRY", "DIGEST"], rows,
                      style=style_for(sys.stdout), roles=roles):
        print(line)  # table() shows every cell inert
    for r, st in zip(records, states, strict=True):
        if st["blocked_now"]:
            _say(f"{r.name} is blocked now: " + (st["problem"] or ", ".join(st["reasons"])))


def _states(records: list[Any], *, policy_dir: list[Path] | None, data: list[Path] | None,
            engine: str | None) -> list[dict[str, Any]]:
    """What ``plugin list`` says of each record now, from local state only (see its help)."""
    from cortex_trust.errors import CortexTrustError
    from cortex_trust.runtime import container_name

    try:
        runtime = _runtime(engine, required=False)
    except CortexTrustError as e:
        _say(f"warning: the container engine could not be asked, so running is not shown: "
             f"{e.message}", err=True)
        runtime = None
    now = _now()
    states = []
    with _installer(policy_dirs=policy_dir, data=data, verify=False) as inst:
        for r in records:
            st: dict[str, Any] = {"running": None, "revoked": False,
                                  "yanked": r.registry_state == "yanked", "yank_reason": r.yank_reason,
                                  "blocked_now": True, "reasons": [], "problem": None}
            try:
                check = inst.check_run(r.name, now=now, refresh=False)
            except CortexTrustError as e:
                st["problem"] = e.message  # `run` would refuse it too
            else:
                st.update(revoked=check.revoked, blocked_now=not check.allowed,
                          reasons=[] if check.allowed else list(check.decision.codes))
            if runtime is not None:
                try:
                    st["running"] = runtime.is_running(container_name(str(r.manifest.get("name"))))
                except CortexTrustError as e:
                    _say(f"warning: the container engine could not say whether {r.name} runs: "
                         f"{e.message}", err=True)
            states.append(st)
    return states


def info(name: Annotated[str, typer.Argument(help="Installed plugin, by its full name "
                                                  "(NAMESPACE/NAME or github:OWNER/REPO).")],
         output_format: FormatOpt = "text") -> None:
    """Show what an installed plugin was decided on (the full digest included)."""
    from cortex_trust.install import InstallStore

    record = InstallStore(_data_dir()).require(name)
    if output_format == "json":
        _say_json(record.model_dump(mode="json"))
        return
    d = record.decision
    _say(f"{record.name} {record.version}")
    _say(f"  image:     {record.image}", short=False)
    _say(f"  registry:  {record.registry} (source {record.source})")
    if record.registry_state == "yanked":
        _say(f"  warning: yanked by its publisher: {record.yank_reason or 'no reason given'}")
    _say(f"  installed: {record.installed_at}, policy revision {record.policy_revision}")
    _say(f"  decision:  tier {d.get('tier')}, action {d.get('action')}")
    for reason in d.get("reasons") or []:
        _say(f"    {reason.get('code')}: {reason.get('message')}")
    if record.overrides:
        _say(f"  OVERRIDDEN at install: {', '.join(record.overrides)}")
    pin = record.signer
    _say("  signer:    " + (f"{pin.describe()} (pinned at {pin.version} on {pin.pinned_at})" if pin else
                            "not pinned (installed before signers were pinned; the next update pins it)"))
    for change in record.signer_changes:
        _say(f"  signer changed on {change.changed_at} ({change.previous.version} -> {change.current.version}, "
             f"{_CONSENT[change.consent]}): {change.previous.describe()} -> {change.current.describe()}")
    for cap in record.manifest.get("capabilities") or []:
        _say(f"  capability {cap.get('name')}: {cap.get('method')} {cap.get('endpoint')}")


def remove(name: Annotated[str, typer.Argument(help="Installed plugin.")],
           engine: EngineOpt = None) -> None:
    """Stop (if an engine is reachable) and forget an installed plugin."""
    from cortex_trust.install import InstallStore

    record = InstallStore(_data_dir()).require(name)
    runtime = _runtime(engine, required=False)
    if runtime is not None:
        from cortex_trust.runtime import container_name, volume_name

        plugin = str(record.manifest.get("name"))
        runtime.stop(container_name(plugin))
        # Volumes are named by the manifest's plugin name: left behind, the next plugin
        # calling itself the same (e.g. from another GitHub repository) would get this data.
        runtime.remove_volume(volume_name(plugin))
    from cortex_trust.install import remove_installed

    remove_installed(_data_dir(), name)
    _say(f"removed {name}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cortex plugin``."""
    app.command("install")(install)
    app.command("update")(update)
    app.command("list")(list_installed)
    app.command("info")(info)
    app.command("remove")(remove)
