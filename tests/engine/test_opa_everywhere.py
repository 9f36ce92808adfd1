"""The policy engine as a setting of every command that decides: `plugin verify` with
`--policy-engine opa --opa-url URL` (or `$CORTEX_POLICY_ENGINE`/`$CORTEX_OPA_URL`, or the
configuration) asks an OPA server, here a REST front over the real OPA 1.20 engine loaded from a
bundle `cortex policy bundle build` wrote. Its decisions are identical to the embedded engine's,
and record the bundle's revision (from OPA's provenance) as the policy revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.policy import load_policy_set
from tests.cli.test_verify import IMAGE, MANIFEST, NOW, bound_report
from tests.support.opa_wire_server import OpaWireServer
from tests.support.served_registry import free_port

FIX = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()


@pytest.fixture(scope="module")
def opa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaWireServer]:
    bundle = tmp_path_factory.mktemp("opa") / "bundle.tar.gz"
    built = runner.invoke(app, ["policy", "bundle", "build", "-o", str(bundle)])
    assert built.exit_code == 0, built.output
    with OpaWireServer.from_bundle(bundle) as server:
        yield server


def _verify(*args: Any, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                               "--format", "json", *map(str, args)], env=env)


def _evidence_sets(tmp_path: Path) -> list[list[Any]]:
    scan = bound_report(tmp_path, "alpine-distroless.json")
    junit = FIX / "junit"
    return [[], ["--tests", junit / "pytest-pass.xml"], ["--scan", scan, "--scan-scanners", "vuln,secret"],
            ["--scan", scan, "--scan-scanners", "vuln,secret", "--tests", junit / "pytest-pass.xml"],
            ["--scan", scan, "--scan-scanners", "vuln,secret", "--tests", junit / "pytest-mixed.xml"]]


def test_verify_decides_through_opa_exactly_as_embedded(opa: OpaWireServer, tmp_path: Path) -> None:
    revision = load_policy_set([], []).revision
    tiers = set()
    for evidence in _evidence_sets(tmp_path):
        embedded = _verify(*evidence)
        through_opa = _verify(*evidence, "--policy-engine", "opa", "--opa-url", opa.url)
        assert through_opa.exit_code == embedded.exit_code, through_opa.output
        ours, theirs = json.loads(embedded.stdout), json.loads(through_opa.stdout)
        assert ours["policy"] == {"revision": revision, "engine": "regorus"}
        # The bundle's revision, named by OPA's provenance, is the policy revision recorded.
        assert theirs["policy"] == {"revision": revision, "engine": "opa-server"}
        assert theirs["decision"]["policy_revision"] == revision
        ours.pop("policy")
        theirs.pop("policy")
        assert ours == theirs
        tiers.add(ours["decision"]["tier"])
    assert len(tiers) >= 2
    assert any("provenance=true" in path for path, _ in opa.requests)


def test_the_engine_comes_from_the_environment_then_the_configuration(opa: OpaWireServer,
                                                                       tmp_path: Path) -> None:
    env = {"CORTEX_POLICY_ENGINE": "opa", "CORTEX_OPA_URL": opa.url}
    assert json.loads(_verify(env=env).stdout)["policy"]["engine"] == "opa-server"
    config = tmp_path / "config.json"
    set_engine = runner.invoke(app, ["config", "set", "policy-engine", "opa"], env={"CORTEX_CONFIG": str(config)})
    set_url = runner.invoke(app, ["config", "set", "opa-url", opa.url], env={"CORTEX_CONFIG": str(config)})
    assert set_engine.exit_code == 0 and set_url.exit_code == 0, set_engine.output + set_url.output
    configured = _verify(env={"CORTEX_CONFIG": str(config)})
    assert json.loads(configured.stdout)["policy"]["engine"] == "opa-server"
    # The flag wins over the environment and the configuration.
    flagged = _verify("--policy-engine", "embedded", env={**env, "CORTEX_CONFIG": str(config)})
    assert json.loads(flagged.stdout)["policy"]["engine"] == "regorus"


def test_an_unreachable_opa_server_blocks_with_exit_3() -> None:
    result = _verify("--policy-engine", "opa", "--opa-url", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 3, result.output
    decision = json.loads(result.stdout)["decision"]
    assert (decision["action"], decision["reasons"][0]["code"]) == ("block", "ENGINE_ERROR")


@pytest.mark.parametrize(("args", "message"), [
    (["--policy-engine", "opa"], "the OPA policy engine needs its URL"),
    (["--policy-engine", "opa", "--opa-url", "http://127.0.0.1:1", "--policy-dir", "."],
     "apply to the embedded engine only"),
    (["--policy-engine", "rego"], "is not embedded or opa"),
    (["--policy-engine", "opa", "--opa-url", "ftp://x"], "is not an http(s) URL"),
])
def test_bad_engine_settings_exit_2(args: list[str], message: str) -> None:
    result = _verify(*args)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_policy_eval_takes_the_engine_setting_too(opa: OpaWireServer) -> None:
    community = Path(__file__).resolve().parents[2] / "examples" / "inputs" / "community.json"
    args = ["policy", "eval", "-i", str(community), "--format", "json"]
    embedded = json.loads(runner.invoke(app, args).stdout)
    through_opa = runner.invoke(app, args, env={"CORTEX_POLICY_ENGINE": "opa", "CORTEX_OPA_URL": opa.url})
    assert through_opa.exit_code == 0, through_opa.output
    doc = json.loads(through_opa.stdout)
    assert (doc["engine"], doc["policy_revision"]) == ("opa-server", embedded["policy_revision"])
    assert doc["decision"] == embedded["decision"]
    flagged = json.loads(runner.invoke(app, [*args, "--engine", "embedded"],
                                       env={"CORTEX_POLICY_ENGINE": "opa"}).stdout)
    assert flagged["engine"] == embedded["engine"] == "regorus"
