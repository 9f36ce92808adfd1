"""`cortex plugin install|update|list|info|remove|call|sync` against a real registry on loopback.

The action each decision leads to is varied through policy data (``--data``) over the default
policies: experimental → warn by default; the test data files map it to allow, notice or block.
Stdin is never a terminal here, which is exactly the "no terminal" case of issue 5.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.install import InstallStore
from tests.support.federation import Federation


def cortex(fed: Federation, *args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env=fed.env(**env), catch_exceptions=False)


def action_data(tmp_path: Path, action: str) -> list[str]:
    p = tmp_path / f"experimental-{action}.yaml"
    p.write_text(f"cortex_config:\n  actions:\n    experimental: {action}\n")
    return ["--data", str(p)]


def installed(fed: Federation) -> list[str]:
    return [r.name for r in InstallStore(fed.data_dir).all()]


def test_warn_without_terminal_and_without_yes_installs_nothing(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/tool")
    assert r.exit_code == 1, r.output
    assert "no terminal" in r.stderr and "--yes" in r.stderr
    assert "TIER_EXPERIMENTAL" in r.stdout
    assert installed(fed) == []
    r2 = cortex(fed, "plugin", "install", "acme/tool", "--yes")
    assert r2.exit_code == 0, r2.output
    assert installed(fed) == ["acme/tool"]
    assert "image not pulled yet" in r2.stdout  # no container engine in this test


def test_allow_installs_quietly_and_notice_prints_it(federation: Federation,
                                                     tmp_path: Path) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "quiet", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "noted", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/quiet", *action_data(tmp_path, "allow"))
    assert r.exit_code == 0, r.output
    assert "notice:" not in r.stdout
    r2 = cortex(fed, "plugin", "install", "acme/noted", *action_data(tmp_path, "notice"))
    assert r2.exit_code == 0, r2.output
    assert "notice: " in r2.stdout
    assert sorted(installed(fed)) == ["acme/noted", "acme/quiet"]


def test_block_refuses_with_every_reason_and_override_is_recorded(federation: Federation,
                                                                  tmp_path: Path) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    block = action_data(tmp_path, "block")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", *block)
    assert r.exit_code == 1
    for code in ("TIER_EXPERIMENTAL", "SCAN_MISSING", "TESTS_MISSING", "REVIEW_MISSING"):
        assert code in r.stderr
    assert "--allow-blocked" in r.stderr and installed(fed) == []
    r2 = cortex(fed, "plugin", "install", "acme/tool", "--allow-blocked", *block)
    assert r2.exit_code == 0, r2.output
    assert "WARNING" in r2.stderr and "BLOCKED" in r2.stderr
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None and "TIER_EXPERIMENTAL" in record.overrides
    assert record.decision["action"] == "block"
    listing = cortex(fed, "plugin", "list")
    assert "OVERRIDDEN" in listing.stdout


def test_revoked_block_cannot_be_overridden(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    fed.private.revoke("acme", "tool", "1.1.0")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["version"] == "1.0.0"  # 1.1.0 is skipped
    r2 = cortex(fed, "plugin", "install", "acme/tool@1.1.0", "--yes", "--allow-blocked")
    assert r2.exit_code == 2 and "revoked" in r2.stderr


def test_update_that_widens_permissions_asks_again(federation: Federation,
                                                   tmp_path: Path) -> None:
    fed = federation
    allow = action_data(tmp_path, "allow")
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    assert cortex(fed, "plugin", "install", "acme/tool", *allow).exit_code == 0
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0",
                        caps=(("greet", "GET", "/greet"), ("delete-all", "POST", "/delete")))
    r = cortex(fed, "plugin", "update", "acme/tool", *allow)
    assert r.exit_code == 1, r.output  # allow, but wider: asks; no terminal → refused
    assert "capability delete-all" in r.stderr
    assert InstallStore(fed.data_dir).get("acme/tool").version == "1.0.0"  # type: ignore[union-attr]
    r2 = cortex(fed, "plugin", "update", "acme/tool", "--yes", *allow)
    assert r2.exit_code == 0, r2.output
    assert InstallStore(fed.data_dir).get("acme/tool").version == "1.1.0"  # type: ignore[union-attr]
    r3 = cortex(fed, "plugin", "update", *allow)
    assert r3.exit_code == 0 and "up to date" in r3.stdout


def test_list_info_remove_and_state_permissions(federation: Federation) -> None:
    fed = federation
    digest = fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    assert cortex(fed, "plugin", "install", "acme/tool", "--yes").exit_code == 0
    r = cortex(fed, "plugin", "list", "--format", "json")
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["plugins"]] == ["acme/tool"]
    assert doc["plugins"][0]["digest"] == digest
    info = cortex(fed, "plugin", "info", "acme/tool")
    assert digest in info.stdout and "capability greet: GET /greet" in info.stdout
    for f in fed.data_dir.rglob("*"):
        if f.is_file():
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    assert cortex(fed, "plugin", "remove", "acme/tool").exit_code == 0
    assert installed(fed) == []
    assert cortex(fed, "plugin", "info", "acme/tool").exit_code == 2
    assert cortex(fed, "plugin", "remove", "acme/tool").exit_code == 2


def test_call_refuses_undeclared_capability(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    assert cortex(fed, "plugin", "install", "acme/tool", "--yes").exit_code == 0
    r = cortex(fed, "plugin", "call", "acme/tool", "rm-rf")
    assert r.exit_code == 2 and "declares no capability 'rm-rf'" in r.stderr
    assert "greet" in r.stderr
    r2 = cortex(fed, "plugin", "call", "acme/tool", "greet", "--data", "{not json")
    assert r2.exit_code == 2
    # Declared, but no container engine to reach it: could not run.
    r3 = cortex(fed, "plugin", "call", "acme/tool", "greet")
    assert r3.exit_code == 3


@pytest.mark.parametrize("name", ["acme/../etc", "ACME/tool", "acme/tооl", "acme/tool@1;id",
                                  "github:evil.com/x", "acme"])
def test_hostile_names_are_input_errors(federation: Federation, name: str) -> None:
    r = cortex(federation, "plugin", "install", name, "--yes")
    assert r.exit_code == 2, r.output
    assert installed(federation) == []


def test_same_plugin_name_from_two_namespaces_is_refused(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.public.publish(fed.sigstore, "beta", "tool", "1.0.0")
    assert cortex(fed, "plugin", "install", "acme/tool", "--yes").exit_code == 0
    r = cortex(fed, "plugin", "install", "beta/tool", "--yes")
    assert r.exit_code == 2 and "already installed as acme/tool" in r.stderr


def test_install_decides_through_an_opa_server_as_with_the_embedded_engine(federation: Federation,
                                                                          tmp_path: Path) -> None:
    from tests.support.opa_wire_server import OpaWireServer

    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    allow = action_data(tmp_path, "allow")
    bundle = tmp_path / "bundle.tar.gz"
    assert cortex(fed, "policy", "bundle", "build", "-o", str(bundle), *allow).exit_code == 0
    with OpaWireServer.from_bundle(bundle) as opa:
        # The engine from the environment; the server holds the data file's actions.
        r = cortex(fed, "plugin", "install", "acme/tool", CORTEX_POLICY_ENGINE="opa", CORTEX_OPA_URL=opa.url)
        assert r.exit_code == 0, r.output
        assert any(path.startswith("/v1/data/cortex/decision") for path, _ in opa.requests)
        refused = cortex(fed, "plugin", "install", "acme/tool", "--policy-engine", "opa", "--opa-url", opa.url,
                         *allow)
        assert refused.exit_code == 2 and "embedded engine only" in refused.stderr
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None
    through_opa = record.decision
    assert cortex(fed, "plugin", "remove", "acme/tool").exit_code == 0
    assert cortex(fed, "plugin", "install", "acme/tool", *allow).exit_code == 0
    embedded = InstallStore(fed.data_dir).get("acme/tool")
    assert embedded is not None and embedded.decision == through_opa
    assert through_opa["action"] == "allow" and through_opa["policy_revision"].startswith("sha256:")
