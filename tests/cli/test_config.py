"""The organization's policy is configuration: ``cortex config set policy-dir DIR`` and
``policy-data FILE...`` apply to every command that decides (verify, install, run, policy eval)
without the flags, ``--policy-dir`` / ``--data`` override their own setting, and the registry
takes its policy from ``CORTEX_REGISTRY_POLICY_DIR`` / ``_DATA``. ``cortex config`` words its
errors plainly: "did you mean" for a mistyped setting, what is wrong with a refused value and the
fix, nothing written. (``run`` under a changed policy: tests/install/test_installer_containers.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.install import CortexConfig, InstallStore, load_config, save_config
from tests.engine.test_embedded import make_input
from tests.install.conftest import install_now
from tests.support.federation import Federation, installer

ROOT = Path(__file__).resolve().parents[2]
FIX = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = FIX / "verify" / "manifest.yaml"
IMAGE = "127.0.0.1:5000/acme/hello@sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"


def cortex(*args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process (errors rendered as users see them)."""
    import os

    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, check=False, timeout=120)


def action_data(tmp_path: Path, action: str) -> Path:
    """Organization data mapping the experimental tier to ``action`` (the default is warn)."""
    p = tmp_path / f"experimental-{action}.yaml"
    p.write_text(f"cortex_config:\n  actions:\n    experimental: {action}\n")
    return p


def org_dir(tmp_path: Path) -> Path:
    """An organization's policy directory: one deny rule of its own."""
    d = tmp_path / "acme-policy"
    (d / "acme").mkdir(parents=True)
    (d / "acme" / "signed.rego").write_text(
        "package cortex\n\nimport rego.v1\n\n"
        'deny contains {"code": "ACME_UNSIGNED", "message": "acme runs signed plugins only", '
        '"evidence": ["evidence.signature"]} if {\n'
        "\tnot input.evidence.signature.present\n}\n")
    return d


def neutral_dir(tmp_path: Path) -> Path:
    """A policy directory that changes no decision."""
    d = tmp_path / "neutral-policy"
    d.mkdir()
    (d / "extra.rego").write_text("package acme_extra\n\nimport rego.v1\n\nnothing := true\n")
    return d


# --- config: plain words ------------------------------------------------------------------------------

def test_an_unknown_setting_says_did_you_mean(tmp_path: Path) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    r = cortex("config", "set", "regisrty", "https://registry.acme.example", **env)
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == "error: unknown setting 'regisrty'; did you mean 'registry'?"
    assert not (tmp_path / "config.json").exists()
    for command in (("get", "polcy-data"), ("unset", "polcy-data"), ("add", "polcy-data", "x")):
        r = cortex("config", *command, **env)
        assert r.exit_code == 2
        assert "unknown setting 'polcy-data'; did you mean 'policy-data'?" in r.stderr
    far = cortex("config", "get", "colour", **env)
    assert far.exit_code == 2 and "did you mean" not in far.stderr
    every = ", ".join(f.replace("_", "-") for f in CortexConfig.model_fields if f != "registries")
    assert f"settings are: {every};" in far.stderr and "policy-dir, policy-data" in every


@pytest.mark.parametrize(("key", "value", "problem", "fix"), [
    ("platform-version", "8.1", "platform-version not changed: '8.1' is not MAJOR.MINOR.PATCH",
     "exact version, e.g. 8.1.0"),
    ("registry", "http://registry.acme.example", "registry not changed: "
     "'http://registry.acme.example' uses plain http", "use https, e.g. "
     "https://registry.acme.example"),
    ("registry", "registry.acme.example", "registry not changed: 'registry.acme.example' is not "
     "an http(s) URL", "with its scheme and no query, e.g. https://registry.acme.example"),
    ("registry-log-key", "nonsense", "registry-log-key not changed: not a transparency-log "
     "verifier key", "cortex registry log-key create"),
])
def test_a_refused_value_says_what_is_wrong_and_the_fix(tmp_path: Path, key: str, value: str,
                                                       problem: str, fix: str) -> None:
    config = tmp_path / "config.json"
    save_config(config, CortexConfig(platform_version="8.0.0"))
    r = cortex("config", "set", key, value, CORTEX_CONFIG=str(config))
    assert r.exit_code == 2
    error, advice = r.stderr.splitlines()[:2]
    assert error.startswith(f"error: {problem}"), error
    assert advice.startswith("  fix: ") and fix in advice, advice
    assert "Value error" not in r.stderr and "cortex config --help" not in r.stderr
    assert load_config(config) == CortexConfig(platform_version="8.0.0")  # nothing written


def test_a_hand_edited_configuration_is_refused_in_plain_words(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"platform_version": "8.1"}))
    config.chmod(0o600)
    r = run_cli("config", "list", CORTEX_CONFIG=str(config))
    assert r.returncode == 2
    assert f"error: the configuration {config} is invalid at platform_version: '8.1' is not " \
           "MAJOR.MINOR.PATCH" in r.stderr
    assert "Value error" not in r.stderr and "e.g. 8.1.0" in r.stderr


# --- config: the policy settings ------------------------------------------------------------------------

def test_policy_settings_are_stored_absolute_and_listed(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    org = org_dir(tmp_path)
    block, allow = action_data(tmp_path, "block"), action_data(tmp_path, "allow")
    monkeypatch.chdir(tmp_path)
    assert cortex("config", "set", "policy-dir", org.name, **env).exit_code == 0
    r = cortex("config", "set", "policy-data", block.name, allow.name, **env)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [f"policy-data = {block}", f"policy-data = {allow}"]
    assert cortex("config", "get", "policy-dir", **env).stdout.splitlines() == [str(org)]
    extra = tmp_path / "extra.yaml"
    extra.write_text("x_acme_note: kept outside cortex_config\n")
    assert cortex("config", "add", "policy-data", "extra.yaml", **env).exit_code == 0
    stored = load_config(tmp_path / "config.json")
    assert stored.policy_dir == (str(org),)
    assert stored.policy_data == (str(block), str(allow), str(extra))
    listing = cortex("config", "list", **env).stdout.splitlines()
    assert [line for line in listing if line.startswith("policy-")] == [
        f"policy-dir = {org}", f"policy-data = {block}", f"policy-data = {allow}",
        f"policy-data = {extra}"]
    again = cortex("config", "add", "policy-data", str(allow), **env)
    assert again.exit_code == 2 and f"{allow} is already in policy-data" in again.stderr
    one = cortex("config", "add", "platform-version", "8.1.0", **env)
    assert one.exit_code == 2 and "platform-version holds one value" in one.stderr
    assert cortex("config", "unset", "policy-data", **env).exit_code == 0
    assert cortex("config", "get", "policy-data", **env).stdout == ""
    assert "policy-data = (not set: the shipped policy data only)" in cortex("config", "list", **env).stdout


def test_a_policy_setting_that_would_not_load_is_refused(tmp_path: Path) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    typo = tmp_path / "org.yaml"
    typo.write_text("cortex_config:\n  scan:\n    max_severty: LOW\n")
    r = cortex("config", "set", "policy-data", str(typo), **env)
    assert r.exit_code == 2
    assert "policy-data not changed: " in r.stderr and "max_severty" in r.stderr
    assert "did you mean `max_severity`?" in r.stderr
    missing = cortex("config", "set", "policy-dir", str(tmp_path / "nowhere"), **env)
    assert missing.exit_code == 2 and "is not a directory" in missing.stderr
    assert load_config(tmp_path / "config.json") == CortexConfig()


# --- verify and policy eval ------------------------------------------------------------------------------

def verify(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now",
                                    "2026-10-31T00:00:00Z", "--format", "json", *args],
                              env={"CORTEX_CONFIG": str(config)}, catch_exceptions=False)


def test_verify_decides_under_the_configured_policy_and_a_flag_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    plain = verify(config)  # nothing configured: experimental, warn (passes --fail-on block)
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["decision"]["action"] == "warn"

    block = action_data(tmp_path, "block")
    save_config(config, CortexConfig(policy_data=(str(block),)))
    blocked = verify(config)
    assert blocked.exit_code == 1, blocked.output
    assert json.loads(blocked.stdout)["decision"]["action"] == "block"
    # --data replaces the configured data (and only that).
    allowed = verify(config, "--data", str(action_data(tmp_path, "allow")))
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout)["decision"]["action"] == "allow"

    save_config(config, CortexConfig(policy_dir=(str(org_dir(tmp_path)),)))
    denied = verify(config)
    assert denied.exit_code == 1
    assert "ACME_UNSIGNED" in [r["code"] for r in json.loads(denied.stdout)["decision"]["reasons"]]
    own = verify(config, "--policy-dir", str(neutral_dir(tmp_path)))  # another directory instead
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["decision"]["action"] == "warn"


def test_a_configured_policy_that_no_longer_loads_says_where_it_came_from(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    gone = tmp_path / "gone.yaml"
    save_config(config, CortexConfig(policy_data=(str(gone),)))
    r = verify(config)
    assert r.exit_code == 2
    assert "(the configured policy-data)" in r.stderr
    assert "`cortex config unset policy-data`" in r.stderr


def test_policy_eval_uses_the_configured_policy(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    doc = tmp_path / "input.json"
    doc.write_text(make_input().to_json())

    def action(*args: str) -> str:
        r = CliRunner().invoke(app, ["policy", "eval", "--input", str(doc), "--format", "json", *args],
                               env={"CORTEX_CONFIG": str(config)}, catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return str(json.loads(r.stdout)["decision"]["action"])

    plain = action()
    save_config(config, CortexConfig(policy_dir=(str(org_dir(tmp_path)),)))
    assert plain != "block" and action() == "block"
    assert action("--policy-dir", str(neutral_dir(tmp_path))) == plain


# --- install (a real registry on loopback) ---------------------------------------------------------------

def test_install_decides_under_the_configured_policy_and_a_flag_overrides_it(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "other", "1.0.0")
    config = load_config(fed.config_path)
    save_config(fed.config_path, config.model_copy(update={
        "policy_data": (str(action_data(tmp_path, "allow")),)}))

    def install(*args: str) -> Any:
        return CliRunner().invoke(app, ["plugin", "install", *args], env=fed.env(),
                                  catch_exceptions=False)

    # Experimental warns by default, and there is no terminal to ask: the organization's data
    # (experimental: allow) is what lets it install without --yes.
    r = install("acme/tool")
    assert r.exit_code == 0, r.output
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None and record.decision["action"] == "allow"
    refused = install("acme/other", "--data", str(action_data(tmp_path, "block")))
    assert refused.exit_code == 1, refused.output
    assert InstallStore(fed.data_dir).get("acme/other") is None


def test_run_check_tells_a_policy_change_since_install(federation: Federation,
                                                       tmp_path: Path) -> None:
    """The installer's run check compares the policy revision it decides under with the one
    recorded at install (the CLI's note on it: tests/install/test_installer_containers.py)."""
    from cortex_trust.policy import load_policy_set

    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    allow, block = action_data(tmp_path, "allow"), action_data(tmp_path, "block")
    now = datetime.now(UTC)
    with installer(fed, data=[allow]) as inst:
        install_now(inst, "acme/tool", now=now)
        same = inst.check_run("acme/tool", now=now)
    assert same.allowed and not same.policy_changed
    with installer(fed, data=[block]) as inst:
        changed = inst.check_run("acme/tool", now=now)
    assert changed.policy_changed and not changed.allowed  # decided under the current policy
    assert changed.record.policy_revision == same.decision.policy_revision
    assert changed.decision.policy_revision == load_policy_set([], [block]).revision


# --- the registry's setting ------------------------------------------------------------------------------

def test_registry_commands_take_their_policy_from_the_environment(tmp_path: Path) -> None:
    typo = tmp_path / "registry.yaml"
    typo.write_text("cortex_config:\n  scan:\n    max_severty: LOW\n")
    good = action_data(tmp_path, "block")

    def retier(*args: str, **env: str) -> Any:
        return CliRunner().invoke(app, ["registry", "retier", "--db", f"sqlite:///{tmp_path / 'r.db'}",
                                        "--workers", "0", *args], env=env)

    assert retier().exit_code == 0
    r = retier(CORTEX_REGISTRY_POLICY_DATA=f"{good}:{typo}")
    assert r.exit_code == 2, r.output
    assert "max_severty" in r.stderr
    assert retier("--data", str(good), CORTEX_REGISTRY_POLICY_DATA=str(typo)).exit_code == 0
    missing = retier(CORTEX_REGISTRY_POLICY_DIR=str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "nowhere" in missing.stderr
