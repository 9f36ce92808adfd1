"""Security review (R2) of the install/run side and the policy engine: one regression test per
finding, each asserting the outcome (no foreign code in the decision, reason codes, refusals)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.engine import EmbeddedEngine, decide
from cortex_trust.errors import InputError, PolicyError
from cortex_trust.evidence import load_trust_root, production_trust_root
from cortex_trust.install import CortexConfig, Installer, InstallOutcome, judge_install, load_config, save_config
from cortex_trust.policy import Action, PolicyInput, load_policy_set
from tests.install.test_installer_containers import world  # noqa: F401 (the fixture)
from tests.support.federation import Federation

ACME = Path(__file__).parent.parent / "examples" / "acme" / "policies"


# --------------------------------------------------- the isolated worker imports only our code


def test_worker_does_not_import_modules_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m`` puts the working directory first on ``sys.path``: a plugin checkout with a
    ``regorus.py`` (or ``json.py``) would run inside the worker that decides on that plugin."""
    marker = tmp_path / "PWNED"
    for module in ("regorus", "json", "pydantic"):
        (tmp_path / f"{module}.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).write_text({module!r})\n"
            "raise ImportError('shadowed')\n")
    monkeypatch.chdir(tmp_path)
    ps = load_policy_set([ACME])
    assert ps.has_custom
    with EmbeddedEngine(ps) as engine:
        assert engine.isolated
    assert not marker.exists()


# ------------------------------------------------- revocation comes from the registry installed from


def _installer(fed: Federation, policy_dirs: list[Path] | None = None) -> Installer:
    policy_set = load_policy_set(policy_dirs or [])
    roots = [production_trust_root(), load_trust_root(fed.sigstore.trusted_root_path)]
    return Installer(config=load_config(fed.config_path), data_dir=fed.data_dir,
                     engine_factory=lambda: EmbeddedEngine(policy_set), trusted_roots=roots,
                     cortex_version="0.1.0", tokens={"acme": fed.reader_token})


def test_run_refuses_when_the_name_now_resolves_to_another_registry(federation: Federation) -> None:
    """A plugin installed from registry A, revoked there, must not run because the
    configuration now points its namespace at registry B, whose feed has never heard of it."""
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    now = datetime.now(UTC)
    with _installer(fed) as inst:
        plan = inst.plan("acme/tool", now=now)
        inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))
        assert inst.check_run("acme/tool", now=now).allowed
    fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
    # The acme scope now points at the public registry (a moved or re-typed URL).
    cfg = load_config(fed.config_path)
    moved = tuple(e.model_copy(update={"url": fed.public.url}) if e.name == "acme" else e
                  for e in cfg.registries)
    save_config(fed.config_path, CortexConfig(registry=cfg.registry, registries=moved))
    with _installer(fed) as inst:
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
        report = inst.sync(now=now + timedelta(minutes=1))
    assert not check.allowed
    assert "REVOCATION_UNKNOWN" in check.decision.codes
    assert check.sync_error is not None and fed.private.url in check.sync_error
    assert "acme" in report.errors


# ----------------------------------------------------- a replaced default module is reported


def _org_replacing_revocation(tmp_path: Path) -> Path:
    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    # Meant to add a rule; named like the default module, it replaces it (REVOKED is gone).
    (org / "cortex" / "revocation.rego").write_text(
        "package cortex\nimport rego.v1\nacme_extra if { true }\n")
    return org


def test_policy_set_lists_the_default_modules_an_org_dir_replaces(tmp_path: Path) -> None:
    org = _org_replacing_revocation(tmp_path)
    ps = load_policy_set([org])
    assert [(name, new) for name, _, new in ps.overrides] == [
        ("cortex/revocation.rego", org / "cortex" / "revocation.rego")]
    assert "cortex/revocation.rego" in ps.override_notices()[0]
    # Adding modules under other names replaces nothing.
    assert load_policy_set([ACME]).overrides == ()


def test_policy_eval_reports_a_replaced_default_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli.test_policy import cortex
    from tests.engine.test_embedded import make_input

    org = _org_replacing_revocation(tmp_path)
    f = tmp_path / "input.json"
    f.write_text(make_input().to_json())
    code, _, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(f),
                          "--policy-dir", str(org))
    assert code == 0
    assert "cortex/revocation.rego" in err and "replaces" in err


def test_a_revoked_plugin_never_runs_even_if_an_org_policy_drops_the_rule(
        federation: Federation, tmp_path: Path) -> None:
    """The issue makes "a revoked plugin refuses to start" unconditional: a policy set whose
    revocation module was replaced (see above) must not let a revoked digest run or install."""
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    org = _org_replacing_revocation(tmp_path)
    now = datetime.now(UTC)
    with _installer(fed, [org]) as inst:
        plan = inst.plan("acme/tool@1.0.0", now=now)
        inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))
        assert inst.check_run("acme/tool", now=now).allowed
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
        assert check.revoked
        assert "REVOKED" not in check.decision.codes  # the org policy really dropped the rule
        assert not check.allowed and not check.overridden
        # At install: a plan whose revocation evidence says revoked is refused whatever the
        # action (here the feed revoked the digest; the policy no longer blocks it).
        plan2 = inst.plan("acme/tool@1.1.0", now=now)
        ev = plan2.policy_input.evidence
        revoked_ev = ev.revocation.model_copy(update={"revoked": True, "reason": "feed"})
        pi = PolicyInput.model_validate_json(plan2.policy_input.model_copy(update={
            "evidence": ev.model_copy(update={"revocation": revoked_ev})}).to_json())
        decision = decide(inst.engine, pi)
        assert decision.action is not Action.BLOCK and "REVOKED" not in decision.codes
        plan3 = replace(plan2, policy_input=pi, decision=decision)
        for yes, allow_blocked in ((True, True), (False, False)):
            assert judge_install(plan3, yes=yes, allow_blocked=allow_blocked).verdict == "refuse"
        with pytest.raises(InputError):
            inst.commit(plan3, now=now, outcome=InstallOutcome("install"))


# ------------------------------------------- call never reaches a container wider than decided


@pytest.mark.slow
def test_call_stops_a_container_started_under_another_sandbox(
        world: Any, container_runtime: Any, tmp_path: Path) -> None:  # noqa: F811
    """``run`` under org data granting more (here a higher process limit), then ``call`` under
    the current policy: the running container's sandbox is not the decided one, so it is
    stopped instead of called."""
    from tests.install.test_installer_containers import cortex, publish_hello

    fed, image, env = world
    publish_hello(fed, image)
    wider = tmp_path / "wider.yaml"
    wider.write_text("cortex_config:\n  sandbox:\n    pids_limit: 512\n")
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    r = cortex(fed, env, "plugin", "run", "acme/hello", "--data", str(wider))
    assert r.exit_code == 0, r.output
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health", "--policy-data", str(wider))
    assert r.exit_code == 0, r.output  # the same decision: called
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health")
    assert r.exit_code == 1 and "another sandbox" in r.stderr
    assert not container_runtime.is_running("cortex-hello")


# ------------------------------------------- a policy directory cannot link to other files


@pytest.mark.parametrize("link", ["cortex/leak.rego", "data.yaml"])
def test_policy_dir_refuses_symlinks_that_leave_it(tmp_path: Path, link: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    (org / "cortex" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / link).symlink_to(secret)
    with pytest.raises(PolicyError, match="outside the policy directory"):
        load_policy_set([org])


def test_policy_dir_accepts_symlinks_inside_it(tmp_path: Path) -> None:
    org = tmp_path / "org"
    (org / "acme").mkdir(parents=True)
    (org / "acme" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / "acme" / "alias.rego").symlink_to(org / "acme" / "extra.rego")
    assert {m.name for m in load_policy_set([org]).modules} >= {"acme/extra.rego", "acme/alias.rego"}


# ----------------------------------- a removed plugin's data is not handed to its namesake


@pytest.mark.slow
def test_remove_deletes_the_plugins_data_volume(world: Any, container_runtime: Any  # noqa: F811
                                                ) -> None:
    from tests.install.test_installer_containers import cortex, publish_hello

    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    client = container_runtime.client
    client.volumes.create("cortex-hello-data")  # what a run with a granted filesystem leaves
    try:
        r = cortex(fed, env, "plugin", "remove", "acme/hello")
        assert r.exit_code == 0, r.output
        assert "cortex-hello-data" not in {v.name for v in client.volumes.list()}
    finally:
        container_runtime.remove_volume("cortex-hello-data")


# ------------------------------------------ test modules never reach production decisions


def test_org_test_module_cannot_change_production_decisions(tmp_path: Path) -> None:
    from tests.engine.test_embedded import make_input

    org = tmp_path / "org"
    (org / "cortex").mkdir(parents=True)
    (org / "cortex" / "extra.rego").write_text("package acme\nimport rego.v1\nx := 1\n")
    (org / "cortex" / "evil_test.rego").write_text(
        'package cortex\nimport rego.v1\n'
        'deny contains {"code": "FROM_A_TEST", "message": "m"} if { true }\n')
    ps = load_policy_set([org])
    assert not any(m.is_test for m in ps.modules)
    with EmbeddedEngine(ps) as engine:
        decision = decide(engine, make_input())
    assert not decision.failed and "FROM_A_TEST" not in decision.codes
    # Under `cortex policy test` (include_tests=True) it is loaded, and there it does count.
    assert any(m.name == "cortex/evil_test.rego"
               for m in load_policy_set([org], include_tests=True).modules)
