"""``cortex plugin run|call|stop|sync``: running installed plugins under a fresh decision.

``run`` and ``call`` both sync the plugin's registry revocation feed and ask the policy
(operation ``run``) first: a revoked plugin is stopped, stale revocation data refuses; ``call``
then admits the running container (:func:`cortex_trust.runtime.admit_call`) before calling it.
``sync`` does the same for every installed plugin and stops the revoked ones. A started plugin's
use is reported to its registry when that registry is opted in (:mod:`cli.plugin_usage`).
Exit codes:

  0 done; 1 refused by the decision (block, revoked, a container not admitted, a plugin
    answering an error); 2 usage or input error (unknown plugin, undeclared capability, bad
    JSON); 3 something could not run (a registry, the policy engine, the container engine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._consumer import data_dir as _data_dir
from ._consumer import decision_text as _decision_text
from ._consumer import installer as _installer
from ._consumer import network as _network
from ._consumer import now as _now
from ._consumer import runtime as _runtime
from ._consumer import say as _say
from ._errors import EXIT_DECISION, EXIT_UNAVAILABLE
from ._errors import fail as _fail
from ._inert import SHORT_DIGEST_HEX
from ._options import CallPolicyDataOpt, DataOpt, EngineOpt, OpaUrlOpt, PolicyDirOpt, PolicyEngineOpt, RegistryOpt

if TYPE_CHECKING:
    from cortex_trust.install import Installer, RunCheck
    from cortex_trust.runtime import ContainerRuntime

__all__ = ["register"]


def _checked(name: str, *, engine: str | None, policy_dir: list[Path] | None,
             data: list[Path] | None, registry: str | None, policy_engine: str | None = None,
             opa_url: str | None = None) -> tuple[RunCheck, ContainerRuntime]:
    """The run check; a refused check stops a running container when revoked, then exits."""
    from cortex_trust.runtime import container_name

    runtime = _runtime(engine, required=True)  # fail fast: nothing to do without an engine
    assert runtime is not None
    with _installer(registry=registry, policy_dirs=policy_dir, data=data, verify=False,
                    policy_engine=policy_engine, opa_url=opa_url) as inst:
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
    """A policy revision for people: ``sha256:`` and its first :data:`~cli._inert.SHORT_DIGEST_HEX`
    hex digits."""
    return revision[:len("sha256:") + SHORT_DIGEST_HEX] if revision else "(unknown)"


def run(name: Annotated[str, typer.Argument(help="Installed plugin.")],
        engine: EngineOpt = None, registry: RegistryOpt = None, policy_dir: PolicyDirOpt = None,
        data: DataOpt = None, policy_engine: PolicyEngineOpt = None, opa_url: OpaUrlOpt = None) -> None:
    """Start an installed plugin's container with exactly the decided sandbox.

    Then, when its registry is opted in to usage reporting (`cortex config set usage-token-env
    VAR`), report that this installation runs it: namespace, name, version and digest, with the
    installation token. A report that fails is a warning; the plugin keeps running.
    """
    check, runtime = _checked(name, engine=engine, policy_dir=policy_dir, data=data,
                              registry=registry, policy_engine=policy_engine, opa_url=opa_url)
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


def sync(engine: EngineOpt = None, registry: RegistryOpt = None,
         watch: Annotated[bool, typer.Option(
             "--watch", help="Keep following the feeds and registry logs (long-poll) and stop a "
                             "plugin as soon as it is revoked or blocked; runs until SIGINT or "
                             "SIGTERM (then exits 0).")
         ] = False,
         interval: Annotated[int, typer.Option(
             "--interval", min=5, max=86400, metavar="SECONDS",
             help="With --watch: the longest time between two full syncs.")] = 300) -> None:
    """Follow the revocation feeds of installed plugins and decide them again with their
    registries' current scans; stop the ones now revoked or blocked."""
    runtime = _runtime(engine, required=watch)  # --watch is there to stop containers
    with _installer(registry=registry, verify=False) as inst:
        if watch:
            _watch(inst, runtime, interval=interval)
            return
        errors = _sync_pass(inst, runtime)
    if errors:
        raise SystemExit(EXIT_UNAVAILABLE)


def _sync_pass(inst: Installer, runtime: ContainerRuntime | None) -> bool:
    """One sync: every feed, every installed plugin decided again with its registry's current
    scan; stop the running ones now revoked or blocked. Says what happened; returns whether some
    registry could not be synced."""
    from cortex_trust.runtime import container_name

    report = inst.sync(now=_now())
    stopping = [(r, f"REVOKED: {r.name}@{r.version} ({r.digest})") for r in report.revoked]
    stopping += [(r, f"BLOCKED: {r.name}@{r.version} ({r.digest}): "
                     + ", ".join(x.code for x in d.reasons[1:] or d.reasons))
                 for r, d in report.blocked]
    for r, line in stopping:
        stopped = runtime.stop(container_name(str(r.manifest.get("name")))) \
            if runtime is not None else False
        _say(line + ("; its container was stopped" if stopped else ""))
    for reg, why in report.errors.items():
        _say(f"error: registry {reg}: {why} (its revocation data ages toward stale)", err=True)
    if not report.errors:
        _say(f"synced {', '.join(report.synced) or 'nothing'}")
    return bool(report.errors)


def _watch(inst: Installer, runtime: ContainerRuntime | None, *, interval: int) -> None:
    """``sync --watch``: :func:`_sync_pass` whenever a feed or a registry's log grows (see
    :class:`cortex_trust.install.FeedWatcher`), until SIGINT or SIGTERM."""
    import signal

    from cortex_trust.errors import CortexTrustError
    from cortex_trust.install import FeedWatcher

    for stream in (sys.stdout, sys.stderr):  # one line per event, also into a pipe or journal
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)

    def one_pass() -> bool:
        try:
            return not _sync_pass(inst, runtime)
        except CortexTrustError as e:  # e.g. the container engine went away: retried
            _say(f"error: {e.message}" + (f" ({e.advice})" if e.advice else ""), err=True)
            return False

    watcher = FeedWatcher(sync=one_pass, targets=inst.feed_targets, cursor=inst.feed_cursor,
                          log=lambda line, problem: _say(line, err=problem), interval=interval)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: watcher.stop())
    _say("watching the revocation feeds and logs of installed plugins' registries "
         "(SIGINT or SIGTERM stops)")
    watcher.run()
    _say("stopped watching")


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``cortex plugin``."""
    app.command("run")(run)
    app.command("call")(call)
    app.command("stop")(stop)
    app.command("sync")(sync)
