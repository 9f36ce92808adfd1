"""``cortex plugin install|update|list|info|remove|run|call|stop|sync``: the consumer side.

The library (:mod:`cortex_trust.install`) resolves, verifies and decides; this module reads
the environment (tokens named by ``token_env``, ``GITHUB_TOKEN``, ``DOCKER_HOST``,
``CORTEX_SANDBOX_NETWORK``), asks on a terminal, prints, and turns outcomes into exit codes:

  0 done; 1 refused by the decision (block, a warn or widening not confirmed, revoked);
  2 usage or input error (unknown plugin or version, undeclared capability, bad JSON);
  3 something could not run (a registry or mirror down or answering garbage, the policy engine,
    the container engine): nothing was installed or started.

Choices (issue 5): with a container engine (``--engine`` or ``DOCKER_HOST``), ``install`` pulls
by digest and checks what arrived (digest, plugin name and version labels) before recording;
without one it records the decision and the pinned digest, and ``run`` pulls (with the same
checks). ``run`` and ``call`` both sync the plugin's registry revocation feed and ask the policy
(operation ``run``) first: a revoked plugin is stopped, stale revocation data refuses. ``sync``
does the same for every installed plugin and stops the revoked ones. A started plugin's use is
reported to its registry when that registry is opted in (:mod:`cli.plugin_usage`).

Tokens never appear in output: every token read is registered with
:func:`cli._errors.register_secret`, and every message goes through :func:`cli._errors.redact_secrets`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_DECISION, EXIT_UNAVAILABLE, redact_secrets, register_secret
from ._errors import fail as _fail
from ._options import (
    AllowBlockedOpt,
    CallPolicyDataOpt,
    DataOpt,
    EngineOpt,
    FormatOpt,
    PolicyDirOpt,
    RegistryOpt,
    TrustedRootOpt,
    YesOpt,
)
from ._render import emphasise, for_reading, neutralise, style_for

if TYPE_CHECKING:
    from cortex_trust.install import Installer, InstallOutcome, InstallPlan, RunCheck
    from cortex_trust.runtime import ContainerRuntime

__all__ = ["register"]


# ------------------------------------------------------------------------------------ helpers


def _say(text: str, *, err: bool = False, short: bool | None = None) -> None:
    """Print one line of text output. Names, descriptions, images, reasons and errors here come
    from registries and manifests: every control character is shown as an escape
    (:func:`cli._render.neutralise`), never obeyed by the terminal. Digests are shortened
    (``short``) by default on stdout, and quoted in full on stderr (errors and warnings: what a
    person acts on); secrets are redacted; labels are coloured on a terminal."""
    stream = sys.stderr if err else sys.stdout
    text = redact_secrets(text)
    shown = for_reading(text) if (not err if short is None else short) else neutralise(text)
    print(emphasise(shown, style_for(stream)), file=stream)


def _say_json(doc: Any) -> None:
    """Print a JSON document (control characters escaped by JSON itself)."""
    print(redact_secrets(json.dumps(doc, indent=2, sort_keys=True)))


def _now() -> datetime:
    # The clock is read once per command and passed down.
    return datetime.now(UTC)


def _data_dir() -> Path:
    from ._paths import data_dir

    return data_dir()


def _installer(*, registry: str | None = None, trusted_roots: list[Path] | None = None,
               policy_dirs: list[Path] | None = None, data: list[Path] | None = None,
               verify: bool = True) -> Installer:
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from cortex_trust.install import Installer, load_config

    from ._options import load_org_policy
    from ._paths import config_path
    from ._platform import platform_version

    config = load_config(config_path())
    platform = platform_version(config)
    tokens: dict[str, str | None] = {}
    for entry in config.registries:
        token = os.environ.get(entry.token_env) if entry.token_env else None
        tokens[entry.name] = token or entry.token
        register_secret(tokens[entry.name])
    github_token = os.environ.get("GITHUB_TOKEN") or None
    register_secret(github_token)
    # Only install and update verify bundles; run, call and sync skip loading sigstore (~0.3 s).
    roots = [production_trust_root(), *(load_trust_root(p) for p in trusted_roots or ())] \
        if verify else []
    # Policies first: a broken policy is an input error that should not wait for the network.
    policy_set = load_org_policy(policy_dirs, data, config=config)
    for line in policy_set.override_notices():
        _say(f"note: {line}", err=True)

    def engine() -> Any:
        from cortex_trust.engine import EmbeddedEngine

        return EmbeddedEngine(policy_set)

    return Installer(config=config, data_dir=_data_dir(), engine_factory=engine,
                     trusted_roots=roots, cortex_version=platform.version,
                     cortex_version_source=platform.source, tokens=tokens,
                     registry_override=registry, github_token=github_token)


def _runtime(engine: str | None, *, required: bool) -> ContainerRuntime | None:
    url = engine or os.environ.get("DOCKER_HOST")
    if not url:
        if required:
            _fail("no container engine: set DOCKER_HOST or pass --engine",
                  advice='start one: eval "$(scripts/podman.sh)"', code=EXIT_UNAVAILABLE)
        return None
    from cortex_trust.runtime import connect

    return connect(url)


def _network() -> str:
    return os.environ.get("CORTEX_SANDBOX_NETWORK") or "cortex-sandbox"


def _decision_text(decision: Any) -> list[str]:
    lines = [f"  tier {decision.tier.value}, action {decision.action.value}"
             + (" (overridable)" if decision.overridable else "")]
    lines += [f"  {r.code}: {r.message}" for r in decision.reasons]
    return lines


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return typer.confirm(question, default=False)


# ----------------------------------------------------------------------------------- install


def _act(inst: Installer, plan: InstallPlan, *, yes: bool, allow_blocked: bool, engine: str | None,
         fmt: str, now: datetime) -> None:
    """Act on ``plan``: ask, refuse, override, pull, record; print; exit on refusal."""
    from cortex_trust.install import judge_install

    outcome = judge_install(plan, yes=yes, allow_blocked=allow_blocked)
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
    if outcome.ask:
        question = ("the update widens permissions; update anyway?" if plan.widened
                    else f"{what} is {plan.decision.tier.value}; install anyway?")
        if not sys.stdin.isatty():
            _emit(fmt, plan, outcome, installed=False, pulled=False)
            _fail(f"{verb} of {what} needs confirmation and there is no terminal to ask "
                  "(nothing installed)", advice="re-run with --yes to accept", code=EXIT_DECISION)
        if not _confirm(question):
            _fail(f"{verb} of {what} not confirmed (nothing installed)", code=EXIT_DECISION)
    runtime = _runtime(engine, required=False)

    def pull(p: InstallPlan) -> object:
        assert runtime is not None
        return runtime.pull_pinned(p.image, plugin=p.plugin, version=p.version)

    inst.commit(plan, now=now, outcome=outcome, pull=pull if runtime is not None else None)
    _emit(fmt, plan, outcome, installed=True, pulled=runtime is not None)
    if fmt == "text":
        if outcome.notice:
            _say("notice: " + "; ".join(r.message for r in plan.decision.reasons))
        _say(f"{done} {what} ({plan.digest})"
             + ("; image pulled and checked" if runtime is not None else
                "; image not pulled yet (no container engine): `cortex plugin run` pulls it"))


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
    trusted_root: TrustedRootOpt = None,
    policy_dir: PolicyDirOpt = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    output_format: FormatOpt = "text",
) -> None:
    """Install a plugin: resolve, verify, decide (operation install), pull by digest, record."""
    now = _now()
    with _installer(registry=registry, trusted_roots=trusted_root, policy_dirs=policy_dir,
                    data=data) as inst:
        from cortex_trust.install import parse_request

        request = parse_request(name)
        previous = inst.store.get(request.full_name)
        plan = inst.plan(request, now=now, previous=previous)
        _act(inst, plan, yes=yes, allow_blocked=allow_blocked, engine=engine,
             fmt=output_format, now=now)


def update(
    name: Annotated[str | None, typer.Argument(help="Installed plugin (default: all).")] = None,
    registry: RegistryOpt = None,
    yes: YesOpt = False,
    allow_blocked: AllowBlockedOpt = False,
    trusted_root: TrustedRootOpt = None,
    policy_dir: PolicyDirOpt = None,
    data: DataOpt = None,
    engine: EngineOpt = None,
    output_format: FormatOpt = "text",
) -> None:
    """Update installed plugins to their newest version; widened permissions always ask."""
    now = _now()
    with _installer(registry=registry, trusted_roots=trusted_root, policy_dirs=policy_dir,
                    data=data) as inst:
        names = [name] if name else [r.name for r in inst.store.all()
                                     if r.source == "registry"]
        for n in names:
            plan = inst.plan_update(n, now=now)
            if plan is None:
                if output_format == "text":
                    _say(f"{n} is up to date")
                continue
            _act(inst, plan, yes=yes, allow_blocked=allow_blocked, engine=engine,
                 fmt=output_format, now=now)


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


# ------------------------------------------------------------------------------ run / call / stop


def _checked(name: str, *, engine: str | None, policy_dir: list[Path] | None,
             data: list[Path] | None, registry: str | None) -> tuple[RunCheck, ContainerRuntime]:
    """The run check; a refused check stops a running container when revoked, then exits."""
    from cortex_trust.runtime import container_name

    runtime = _runtime(engine, required=True)  # fail fast: nothing to do without an engine
    assert runtime is not None
    with _installer(registry=registry, policy_dirs=policy_dir, data=data, verify=False) as inst:
        check = inst.check_run(name, now=_now())
    if check.sync_error:
        _say(f"warning: revocation data could not be refreshed: {check.sync_error}", err=True)
    if check.policy_changed:
        _say(f"note: the policy changed since {name} was installed: installed under revision "
             f"{_revision(check.record.policy_revision)}, deciding now under revision "
             f"{_revision(check.decision.policy_revision)} (the current policy decides)", err=True)
    for r in check.decision.reasons:
        if r.code == "CORTEX_VERSION_UNKNOWN":  # allowed to run, never silently
            _say(f"warning: {r.code}: {r.message}", err=True)
    if not check.allowed:
        cname = container_name(str(check.record.manifest.get("name")))
        stopped = runtime.stop(cname) if check.revoked or runtime.is_running(cname) else False
        for line in _decision_text(check.decision):
            _say(line, err=True)
        _fail(f"{name} may not run: "
              + "; ".join(f"{r.code}: {r.message}" for r in check.decision.reasons)
              + ("; its running container was stopped" if stopped else ""),
              advice="see the reasons; revoked plugins never run, stale revocation data needs "
                     "a reachable registry", code=EXIT_UNAVAILABLE if check.decision.failed
              else EXIT_DECISION)
    return check, runtime


def _revision(revision: str) -> str:
    """A policy revision for people: ``sha256:`` and its first 12 hex digits."""
    return revision[:len("sha256:") + 12] if revision else "(unknown)"


def run(name: Annotated[str, typer.Argument(help="Installed plugin.")],
        engine: EngineOpt = None, registry: RegistryOpt = None, policy_dir: PolicyDirOpt = None,
        data: DataOpt = None) -> None:
    """Start an installed plugin's container with exactly the decided sandbox.

    Then, when its registry is opted in to usage reporting (`cortex config set usage-token-env
    VAR`), report that this installation runs it: namespace, name, version and digest, with the
    installation token. A report that fails is a warning; the plugin keeps running.
    """
    check, runtime = _checked(name, engine=engine, policy_dir=policy_dir, data=data,
                              registry=registry)
    from cortex_trust.runtime import container_spec

    record = check.record
    plugin = str(record.manifest.get("name"))
    runtime.pull_pinned(record.image, plugin=plugin, version=record.version)
    if check.overridden:
        _say(f"WARNING: running {name} although policy blocks it "
             f"({', '.join(check.decision.codes)}): override recorded at install", err=True)
    spec = container_spec(check.decision, plugin=plugin, version=record.version,
                          image=record.image, internal_network=_network(),
                          unsafe_allow_blocked=check.overridden)
    running = runtime.start(spec)
    _say(f"running {name} {record.version} as {running.name} at {running.base_url}")
    from .plugin_usage import report_after_run

    # Opt-in production-use report to the plugin's registry; a failure is only a warning.
    report_after_run(record, registry=registry, sync_error=check.sync_error)


def call(name: Annotated[str, typer.Argument(help="Installed plugin.")],
         capability: Annotated[str, typer.Argument(help="A capability its manifest declares.")],
         data: Annotated[str | None, typer.Option("--data", help="JSON body to send.")] = None,
         engine: EngineOpt = None, registry: RegistryOpt = None,
         policy_dir: PolicyDirOpt = None, policy_data: CallPolicyDataOpt = None) -> None:
    """Call a declared capability of a running plugin and print its answer."""
    from cortex_trust._json import load_json
    from cortex_trust.install import InstallStore

    body: Any = None
    if data is not None:
        try:
            body = load_json(data)
        except ValueError as e:
            _fail(f"--data is not JSON: {e}", advice="pass a JSON document, e.g. --data '{\"x\": 1}'")
    record = InstallStore(_data_dir()).require(name)
    caps = {c.get("name"): c for c in record.manifest.get("capabilities") or []
            if isinstance(c, dict)}
    cap = caps.get(capability)
    if cap is None:
        _fail(f"{name} declares no capability {capability!r}",
              advice="declared: " + (", ".join(sorted(str(k) for k in caps)) or "none"))
    check, runtime = _checked(name, engine=engine, policy_dir=policy_dir, data=policy_data,
                              registry=registry)
    from cortex_trust.runtime import admit_call, container_name

    admission = admit_call(name, runtime.running(container_name(str(record.manifest.get("name")))),
                           installed_digest=record.digest, sandbox=check.decision.sandbox)
    if admission.verdict == "stop" and admission.container is not None:
        runtime.stop(admission.container.name)
        _fail(f"{admission.problem}; it was stopped", advice=admission.advice, code=EXIT_DECISION)
    if admission.verdict != "admit" or admission.container is None:
        _fail(admission.problem, advice=admission.advice, code=EXIT_UNAVAILABLE)
    resp = runtime.call(admission.container, str(cap.get("endpoint")),
                        method=str(cap.get("method") or "GET"), data=body)
    sys.stdout.write(resp.body.decode("utf-8", "replace"))
    if not resp.body.endswith(b"\n"):
        sys.stdout.write("\n")
    if not 200 <= resp.status < 300:
        _say(f"error: {name} answered HTTP {resp.status}", err=True)
        raise SystemExit(EXIT_DECISION)


def stop(name: Annotated[str, typer.Argument(help="Installed plugin.")],
         engine: EngineOpt = None) -> None:
    """Stop a running plugin."""
    from cortex_trust.install import InstallStore
    from cortex_trust.runtime import container_name

    record = InstallStore(_data_dir()).require(name)
    runtime = _runtime(engine, required=True)
    assert runtime is not None
    stopped = runtime.stop(container_name(str(record.manifest.get("name"))))
    _say(f"stopped {name}" if stopped else f"{name} was not running")


def sync(engine: EngineOpt = None, registry: RegistryOpt = None) -> None:
    """Follow the revocation feeds of installed plugins; stop the ones now revoked."""
    from cortex_trust.runtime import container_name

    with _installer(registry=registry, verify=False) as inst:
        report = inst.sync(now=_now())
    runtime = _runtime(engine, required=False)
    for r in report.revoked:
        stopped = runtime.stop(container_name(str(r.manifest.get("name")))) \
            if runtime is not None else False
        _say(f"REVOKED: {r.name}@{r.version} ({r.digest})"
             + ("; its container was stopped" if stopped else ""))
    for reg, why in report.errors.items():
        _say(f"error: registry {reg}: {why} (its revocation data ages toward stale)", err=True)
    if report.errors:
        raise SystemExit(EXIT_UNAVAILABLE)
    _say(f"synced {', '.join(report.synced) or 'nothing'}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cortex plugin``."""
    app.command("install")(install)
    app.command("update")(update)
    app.command("list")(list_installed)
    app.command("info")(info)
    app.command("remove")(remove)
    app.command("run")(run)
    app.command("call")(call)
    app.command("stop")(stop)
    app.command("sync")(sync)
