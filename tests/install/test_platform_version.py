"""The CORTEX platform version: a manifest's ``trust.min_cortex_version`` is compared with the
platform's version (``CORTEX_PLATFORM_VERSION``, else ``cortex config set platform-version``),
never cortex-trust's own; the output says which version was compared and where it came from;
an unknown version is the policy's ``CORTEX_VERSION_UNKNOWN`` (at least warn), never a silent
allow or block. Also: the default registry is the specification's host."""

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
from cortex_trust import __version__
from cortex_trust.errors import InputError
from cortex_trust.install import (
    DEFAULT_REGISTRY,
    CortexConfig,
    InstallStore,
    PlatformVersion,
    load_config,
    resolve_platform_version,
    save_config,
)
from cortex_trust.manifest import parse_manifest
from cortex_trust.policy import build_input
from tests.support.federation import Federation, manifest_text

ROOT = Path(__file__).resolve().parents[2]
SPEC_EXAMPLE = "examples/plugins/spec-example/manifest.yaml"
HELLO = ROOT / "examples" / "plugins" / "hello"
DIGEST = "sha256:" + "ab" * 32


def cli(*args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


# --- where the version comes from -------------------------------------------------------------------

def test_the_environment_wins_over_the_configuration_and_nothing_is_unknown() -> None:
    config = CortexConfig(platform_version="8.1.0")
    assert resolve_platform_version(config, env="9.0.0") == PlatformVersion("9.0.0", "env")
    assert resolve_platform_version(config, env=None) == PlatformVersion("8.1.0", "config")
    assert resolve_platform_version(config, env="  ") == PlatformVersion("8.1.0", "config")
    assert resolve_platform_version(CortexConfig(), env=None) == PlatformVersion(None, None)
    assert __version__ not in (resolve_platform_version(CortexConfig(), env=None).version,)


@pytest.mark.parametrize("value", ["8.1", "8", "v8.1.0", "latest", "8.1.0 "])
def test_an_invalid_platform_version_is_refused_never_ignored(value: str) -> None:
    with pytest.raises(InputError, match="CORTEX_PLATFORM_VERSION") as e:
        resolve_platform_version(None, env=value)
    assert e.value.advice and "8.1.0" in e.value.advice
    with pytest.raises(ValueError, match="exact version"):
        CortexConfig(platform_version=value)


def test_config_set_get_list_unset_platform_version(tmp_path: Path) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    assert "platform-version = (not set: unknown)" in cli("config", "list", **env).stdout
    r = cli("config", "set", "platform-version", "8.1.0", **env)
    assert r.exit_code == 0, r.output
    assert cli("config", "get", "platform-version", **env).stdout.strip() == "8.1.0"
    assert "platform-version = 8.1.0" in cli("config", "list", **env).stdout
    assert load_config(tmp_path / "config.json").platform_version == "8.1.0"
    bad = cli("config", "set", "platform-version", "8.1", **env)
    assert bad.exit_code == 2
    assert "8.1.0" in bad.stderr  # the fix names the full version
    assert cli("config", "unset", "platform-version", **env).exit_code == 0
    assert load_config(tmp_path / "config.json").platform_version is None


def test_the_default_registry_is_the_specifications_host(tmp_path: Path) -> None:
    assert DEFAULT_REGISTRY == "https://registry.cortexpersist.com"
    env = {"CORTEX_CONFIG": str(tmp_path / "none" / "config.json")}
    assert cli("config", "get", "registry", **env).stdout.strip() == "https://registry.cortexpersist.com"
    readme = (ROOT / "README.md").read_text()
    assert "https://registry.cortexpersist.com" in readme and "registry.cortex.dev" not in readme


def test_library_inputs_carry_the_platform_version_or_null() -> None:
    manifest = parse_manifest((HELLO / "manifest.yaml").read_bytes())
    now = datetime(2026, 1, 1, tzinfo=UTC)
    unknown = build_input(manifest=manifest, image=None, digest=None, operation="install", now=now,
                          cortex_version=None)
    assert unknown.context.cortex_version is None and unknown.context.cortex_version_source is None
    known = build_input(manifest=manifest, image=None, digest=None, operation="install", now=now,
                        cortex_version="8.1.0", cortex_version_source="config")
    assert known.to_dict()["context"]["cortex_version"] == "8.1.0"
    assert known.to_dict()["context"]["cortex_version_source"] == "config"


# --- manifest lint ------------------------------------------------------------------------------------

def test_lint_warns_when_the_minimum_is_above_the_platform(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    config = tmp_path / "config.json"
    save_config(config, CortexConfig(platform_version="7.2.0"))
    r = cli("manifest", "lint", SPEC_EXAMPLE, CORTEX_CONFIG=str(config))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [f"ok: {SPEC_EXAMPLE} (weather-forecast@1.2.0)"]
    assert r.stderr.splitlines() == [
        f"warning: {SPEC_EXAMPLE}: trust.min_cortex_version 8.0.0 is above the CORTEX platform "
        "version 7.2.0 (from the configuration: platform-version): installing it on this platform "
        "is blocked (CORTEX_VERSION_UNSUPPORTED)"]
    doc = json.loads(cli("manifest", "lint", "--format", "json", SPEC_EXAMPLE,
                         CORTEX_CONFIG=str(config), CORTEX_PLATFORM_VERSION="7.9.9").stdout)
    assert doc["valid"] is True
    assert doc["results"][0]["warnings"] == [
        "trust.min_cortex_version 8.0.0 is above the CORTEX platform version 7.9.9 (from "
        "CORTEX_PLATFORM_VERSION): installing it on this platform is blocked "
        "(CORTEX_VERSION_UNSUPPORTED)"]
    for ok in ("8.0.0", "8.0.1", "8.0.0-rc.1", "10.0.0"):  # compared on MAJOR.MINOR.PATCH
        quiet = cli("manifest", "lint", SPEC_EXAMPLE, CORTEX_CONFIG=str(config), CORTEX_PLATFORM_VERSION=ok)
        assert (quiet.exit_code, quiet.stderr) == (0, ""), ok
    unknown = cli("manifest", "lint", SPEC_EXAMPLE, CORTEX_CONFIG=str(tmp_path / "none.json"))
    assert (unknown.exit_code, unknown.stderr) == (0, "")


def test_lint_does_not_fail_on_an_unreadable_platform_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    r = cli("manifest", "lint", SPEC_EXAMPLE, CORTEX_PLATFORM_VERSION="eight")
    assert r.exit_code == 0
    assert "could not be read" in r.stderr and "CORTEX_PLATFORM_VERSION" in r.stderr


# --- verify -------------------------------------------------------------------------------------------

def _verify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "plugin", "verify", str(HELLO / "manifest.yaml"),
         "--image", f"127.0.0.1:5000/cortex/hello@{_hello_digest()}", "--now", "2026-06-01T00:00:00Z",
         *args], capture_output=True, text=True, cwd=ROOT, env=env, check=False)


def _hello_digest() -> str:
    return str(parse_manifest((HELLO / "manifest.yaml").read_bytes()).image_digest)


def test_verify_says_which_platform_version_it_used(tmp_path: Path) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if k != "CORTEX_PLATFORM_VERSION"}
    base["CORTEX_CONFIG"] = str(tmp_path / "none" / "config.json")
    text = _verify(env={**base, "CORTEX_PLATFORM_VERSION": "8.1.0"})
    assert text.returncode == 0, text.stderr
    assert "platform: CORTEX 8.1.0 (from CORTEX_PLATFORM_VERSION)" in text.stdout.splitlines()
    doc = json.loads(_verify("--format", "json", env={**base, "CORTEX_PLATFORM_VERSION": "8.1.0"}).stdout)
    assert doc["context"]["cortex_version"] == "8.1.0"
    assert doc["context"]["cortex_version_source"] == "env"
    unknown = _verify("--format", "json", env=base)
    assert unknown.returncode == 0  # verify does not enforce the minimum
    context = json.loads(unknown.stdout)["context"]
    assert context["cortex_version"] is None and context["cortex_version"] != __version__
    assert "platform: CORTEX unknown (set it with `cortex config set platform-version X.Y.Z` or " \
           "CORTEX_PLATFORM_VERSION)" in _verify(env=base).stdout


# --- install (a real registry on loopback) -------------------------------------------------------------

def _install(fed: Federation, *args: str, **env: str) -> Any:
    return CliRunner().invoke(app, ["plugin", "install", *args], env=fed.env(**env),
                              catch_exceptions=False)


def _allow_data(tmp_path: Path) -> list[str]:
    p = tmp_path / "experimental-allow.yaml"
    p.write_text("cortex_config:\n  actions:\n    experimental: allow\n")
    return ["--data", str(p)]


def _publish_needing(fed: Federation, version: str, minimum: str) -> None:
    text = manifest_text("spec", version).replace('min_cortex_version: "0.1.0"',
                                                  f'min_cortex_version: "{minimum}"')
    fed.private.publish(fed.sigstore, "acme", "spec", version, manifest=text)


def test_install_compares_the_platform_version_and_says_where_it_came_from(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    _publish_needing(fed, "1.0.0", "8.0")  # the specification's short form
    allow = _allow_data(tmp_path)
    # The configuration says 0.1.0 (tests/support/federation.py): too old, blocked, and said so.
    old = _install(fed, "acme/spec", *allow)
    assert old.exit_code == 1, old.output
    assert "  CORTEX platform 0.1.0 (from the configuration: platform-version); the plugin needs " \
           "8.0.0 or later" in old.stdout.splitlines()
    assert "CORTEX_VERSION_UNSUPPORTED: the plugin needs CORTEX 8.0.0 or later; this platform is " \
           "CORTEX 0.1.0 (set in the configuration)" in old.stdout
    assert f"this is cortex {__version__}" not in old.output
    # The environment names a newer platform: allowed quietly, and the output says so.
    new = _install(fed, "acme/spec", "--format", "json", *allow, CORTEX_PLATFORM_VERSION="8.1.0")
    assert new.exit_code == 0, new.output
    doc = json.loads(new.stdout)
    assert doc["platform_version"] == {"version": "8.1.0", "source": "env"}
    assert doc["decision"]["action"] == "allow" and doc["installed"] is True
    assert InstallStore(fed.data_dir).get("acme/spec") is not None


def test_an_unknown_platform_version_is_a_reason_and_a_question_never_a_silent_allow(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    _publish_needing(fed, "1.0.0", "0.1.0")
    save_config(fed.config_path, load_config(fed.config_path).model_copy(update={"platform_version": None}))
    allow = _allow_data(tmp_path)  # the tier alone would install quietly
    r = _install(fed, "acme/spec", *allow)
    assert r.exit_code == 1, r.output
    assert "  CORTEX platform unknown (set it with `cortex config set platform-version X.Y.Z` or " \
           "CORTEX_PLATFORM_VERSION); the plugin needs 0.1.0 or later" in r.stdout.splitlines()
    assert "tier experimental, action warn" in r.stdout
    assert "CORTEX_VERSION_UNKNOWN: the CORTEX platform version is unknown, so the plugin's " \
           "min_cortex_version 0.1.0 cannot be checked" in r.stdout
    assert "needs confirmation" in r.stderr and InstallStore(fed.data_dir).get("acme/spec") is None
    accepted = _install(fed, "acme/spec", "--yes", "--format", "json", *allow)
    assert accepted.exit_code == 0, accepted.output
    doc = json.loads(accepted.stdout)
    assert doc["platform_version"] == {"version": None, "source": None}
    assert doc["decision"]["action"] == "warn"
    assert "CORTEX_VERSION_UNKNOWN" in [r["code"] for r in doc["decision"]["reasons"]]


# --- the registry's setting ------------------------------------------------------------------------------

def test_registry_serve_refuses_an_invalid_platform_version(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "cli.main", "registry", "serve", "--db",
                        f"sqlite:///{tmp_path / 'r.db'}", "--no-scan", "--platform-version", "8.1"],
                       capture_output=True, text=True, cwd=ROOT, check=False, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--platform-version '8.1'" in r.stderr and "8.1.0" in r.stderr
