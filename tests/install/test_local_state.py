"""Local state trusts nothing already there: permissions, owners, links, and `run` re-checks.

Through the `cortex` console script (a real process) wherever the finding was found on the CLI:
a data directory or configuration that others can write, or that another user owns, is refused
with the path and the `chmod` that fixes it (never tightened silently, never used); a planted
link is never followed; a state file that is a FIFO does not block. And `run` confirms the
installed version's state with its registry (two real registries on loopback), so a feed cursor
moved forward in the cache does not hide a revocation; with Podman, `cortex plugin run` of such
a plugin is refused and no container starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.errors import InputError
from cortex_trust.install import CortexConfig, InstallStore, RevocationCache, load_config, save_config
from tests.install.conftest import installed_tool, root_opt
from tests.install.test_installer_containers import world  # noqa: F401 - the Podman fixture
from tests.support.federation import Federation

CORTEX = str(Path(sys.executable).parent / "cortex")


def _cortex(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CORTEX, *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, **env})


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _env(tmp_path: Path, *, data: Path | None = None, config: Path | None = None) -> dict[str, str]:
    return {"CORTEX_DATA_DIR": str(data or _private_dir(tmp_path / "data")),
            "CORTEX_CONFIG": str(config or tmp_path / "none" / "config.json"), "DOCKER_HOST": ""}


# ------------------------------------------------------------------------------- permissions

def test_data_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    data = _private_dir(tmp_path / "data")
    InstallStore(data).path.write_text('{"plugins": {}}')
    InstallStore(data).path.chmod(0o600)
    data.chmod(0o777)
    r = _cortex("plugin", "list", env=_env(tmp_path, data=data))
    assert r.returncode == 2, r.stderr
    assert f"the directory {data} is writable by other users (mode 0777)" in r.stderr
    assert f"fix: chmod 700 {data}" in r.stderr
    data.chmod(0o700)
    assert _cortex("plugin", "list", env=_env(tmp_path, data=data)).returncode == 0


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_state_file_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    data = _private_dir(tmp_path / "data")
    store = InstallStore(data)
    store.path.write_text('{"plugins": {}}')
    store.path.chmod(mode)
    r = _cortex("plugin", "list", env=_env(tmp_path, data=data))
    assert r.returncode == 2 and f"fix: chmod 600 {store.path}" in r.stderr, r.stderr
    assert store.path.stat().st_mode & 0o7777 == mode  # refused, never tightened silently


def test_configuration_writable_by_others_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg" / "config.json"
    save_config(cfg, CortexConfig(registry="https://registry.example.org"))
    cfg.chmod(0o666)
    r = _cortex("config", "list", env=_env(tmp_path, config=cfg))
    assert r.returncode == 2 and f"fix: chmod 600 {cfg}" in r.stderr, r.stderr
    cfg.chmod(0o600)
    cfg.parent.chmod(0o777)
    r = _cortex("config", "list", env=_env(tmp_path, config=cfg))
    assert r.returncode == 2 and f"fix: chmod 700 {cfg.parent}" in r.stderr, r.stderr
    # Setting a value does not write into a directory others can change either.
    r = _cortex("config", "set", "registry", "https://other.example.org",
                env=_env(tmp_path, config=cfg))
    assert r.returncode == 2 and "writable by other users" in r.stderr
    cfg.parent.chmod(0o700)
    assert load_config(cfg).registry == "https://registry.example.org"


def test_a_sticky_shared_directory_is_allowed_for_a_file_we_own(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: others cannot replace a file we own
    cfg = shared / "config.json"
    save_config(cfg, CortexConfig(registry="https://registry.example.org"))
    assert load_config(cfg).registry == "https://registry.example.org"


def test_state_owned_by_another_user_is_refused(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg" / "config.json"
    save_config(cfg, CortexConfig())
    me = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: me + 4242)  # as if another user ran cortex
    with pytest.raises(InputError) as e:
        load_config(cfg)
    assert f"owned by uid {me}, not by you (uid {me + 4242})" in e.value.message
    assert e.value.advice and "chown" in e.value.advice


# ------------------------------------------------------------------------------------- links

def test_planted_links_are_never_followed(tmp_path: Path) -> None:
    data = _private_dir(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"plugins": {}}')
    elsewhere.chmod(0o600)
    InstallStore(data).path.symlink_to(elsewhere)
    r = _cortex("plugin", "list", env=_env(tmp_path, data=data))
    assert r.returncode == 2, r.stderr
    assert "is a symbolic link; state files are never read through links" in r.stderr
    assert f"rm {InstallStore(data).path}" in r.stderr

    cfg = tmp_path / "cfg" / "config.json"
    _private_dir(cfg.parent)
    cfg.symlink_to(elsewhere)
    r = _cortex("config", "list", env=_env(tmp_path, config=cfg))
    assert r.returncode == 2 and "symbolic link" in r.stderr, r.stderr


def test_a_fifo_state_file_is_refused_without_blocking(tmp_path: Path) -> None:
    data = _private_dir(tmp_path / "data")
    os.mkfifo(InstallStore(data).path, 0o600)
    r = _cortex("plugin", "list", env=_env(tmp_path, data=data))  # times out if it blocks
    assert r.returncode == 2 and "is not a regular file" in r.stderr, r.stderr


def test_planted_revocation_cache_link_is_refused_by_install(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    data = _private_dir(fed.data_dir)
    # A "cache" elsewhere claiming the feed is current with nothing revoked.
    planted = fed.home / "planted.json"
    planted.write_text(json.dumps({"schema": "cortex.revocations/v1", "registries": {}}))
    planted.chmod(0o600)
    RevocationCache(data).path.symlink_to(planted)
    r = _cortex("plugin", "install", "acme/tool", "--yes", *root_opt(fed), env=fed.env())
    assert r.returncode == 2, r.stderr
    assert "the revocation cache" in r.stderr and "symbolic link" in r.stderr
    assert InstallStore(data).get("acme/tool") is None


# ------------------------------------------------------------------------ run re-checks state

def _move_cursor_forward(data: Path, registry: str, by: int = 1) -> None:
    """The attack: edit the cached feed cursor so the next sync starts after the revocation."""
    path = RevocationCache(data).path
    doc = json.loads(path.read_text())
    doc["registries"][registry]["cursor"] += by
    path.write_text(json.dumps(doc))


def test_cursor_moved_forward_does_not_hide_a_revocation(federation: Federation) -> None:
    fed = federation
    with installed_tool(fed) as (inst, now):
        assert inst.check_run("acme/tool", now=now).allowed
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        _move_cursor_forward(fed.data_dir, "acme")
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
    assert not check.allowed and check.revoked, check.decision.codes
    assert "REVOKED" in check.decision.codes and check.sync_error is None
    assert check.revocation.reason == "signing key leaked"


def test_sync_with_a_moved_cursor_still_reports_the_revocation(federation: Federation) -> None:
    # `sync` (which stops running revoked plugins) must not trust the cached cursor either.
    fed = federation
    with installed_tool(fed) as (inst, now):
        assert inst.sync(now=now).revoked == ()
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        _move_cursor_forward(fed.data_dir, "acme", by=1000)
        report = inst.sync(now=now + timedelta(minutes=1))
    assert [r.name for r in report.revoked] == ["acme/tool"], report


def test_unreachable_registry_after_a_moved_cursor_goes_stale(federation: Federation) -> None:
    fed = federation
    with installed_tool(fed) as (inst, now):
        _move_cursor_forward(fed.data_dir, "acme", by=1000)
        fed.private.stop()
        # Freshness is the time of the last successful sync, whatever the cursor says.
        later = inst.check_run("acme/tool", now=now + timedelta(hours=30))
    assert not later.allowed and "REVOCATION_STALE" in later.decision.codes
    assert later.sync_error is not None


@pytest.mark.slow
def test_cli_run_of_a_revoked_plugin_with_a_moved_cursor_is_refused(
        world: Any, container_runtime: Any) -> None:  # noqa: F811
    from tests.install.test_installer_containers import cortex, publish_hello

    fed, image, env = world
    publish_hello(fed, image)
    for args in (("install", "acme/hello", "--yes"), ("run", "acme/hello"), ("stop", "acme/hello")):
        done = cortex(fed, env, "plugin", *args)
        assert done.exit_code == 0, (args, done.output)
    fed.private.revoke("acme", "hello", "0.1.0", reason="compromised build")
    _move_cursor_forward(fed.data_dir, "acme")
    r = _cortex("plugin", "run", "acme/hello", env=fed.env(**env))
    assert r.returncode == 1, r.stderr
    assert "REVOKED" in r.stderr
    assert not container_runtime.is_running("cortex-hello")

