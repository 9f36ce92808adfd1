"""Policy data keys: a mistyped key under ``cortex_config`` is an error with "did you mean", never
a silent fall-back to the default; an organization's own keys go under ``cortex_config.x_<name>``.

Through the library (:func:`load_policy_set`) and through the CLI (``cortex plugin verify --data``,
``cortex policy eval --data``, the console entry point as CI runs it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.errors import PolicyError
from cortex_trust.policy import load_policy_set
from cortex_trust.policy._data_keys import SCHEMA_PATH, unknown_keys
from tests.cli.test_policy import cortex
from tests.cli.test_verify import IMAGE, JUNIT, MANIFEST, NOW, bound_report
from tests.engine.test_embedded import make_input

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _data(tmp_path: Path, text: str, name: str = "org.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# (data file, position of the key, dotted key, fix)
MISTYPED = [
    ("cortex_config:\n  scan:\n    max_severty: LOW\n", "3:5", "cortex_config.scan.max_severty",
     "did you mean `max_severity`?"),
    ("cortex_config:\n  trusted_singers:\n    acme: {plugins: [acme/*], issuer: i, identity: x}\n", "2:3",
     "cortex_config.trusted_singers", "did you mean `trusted_signers`?"),
    ("cortex_config:\n  trusted_signers:\n    acme: {plugins: [acme/*], issuer: i, identiy: x}\n", "3:42",
     "cortex_config.trusted_signers.acme.identiy", "did you mean `identity`?"),
    ("cortex_config:\n  trusted_signers:\n    - {plugins: [acme/*], isuer: i, identity: x}\n", "3:27",
     "cortex_config.trusted_signers[0].isuer", "did you mean `issuer`?"),
    ("cortex_config:\n  scan:\n    accepted_origins:\n      instal: [registry]\n", "4:7",
     "cortex_config.scan.accepted_origins.instal", "did you mean `install`?"),
    ("cortex_config:\n  scan:\n    cve_allowlist:\n      CVE-2024-1: {expires: '2027-01-01', reson: x}\n",
     "4:43", "cortex_config.scan.cve_allowlist.CVE-2024-1.reson", "did you mean `reason`?"),
    ("cortex_config:\n  evidence_sources:\n    default: {usages: false}\n", "3:15",
     "cortex_config.evidence_sources.default.usages", "did you mean `usage`?"),
    ("cortex_config:\n  acme_rules: {strict: true}\n", "2:3", "cortex_config.acme_rules",
     "allowed here: actions, verified"),
]


@pytest.mark.parametrize(("text", "at", "key", "fix"), MISTYPED)
def test_an_unknown_key_is_refused_with_its_position_and_a_fix(tmp_path: Path, text: str, at: str,
                                                               key: str, fix: str) -> None:
    data = _data(tmp_path, text)
    with pytest.raises(PolicyError) as e:
        load_policy_set(data_files=[data])
    assert e.value.exit_code == 2
    assert str(e.value).startswith(f"{data}:{at}: unknown policy data key `{key}`"), str(e.value)
    assert fix in (e.value.advice or "")


def test_keys_of_the_organization_go_under_x_or_outside_cortex_config(tmp_path: Path) -> None:
    # Top-level unknown keys name the namespace; there, and outside cortex_config, anything goes.
    with pytest.raises(PolicyError) as e:
        load_policy_set(data_files=[_data(tmp_path, "cortex_config:\n  acme: {strict: true}\n")])
    assert "cortex_config.x_<name>" in (e.value.advice or "")
    ps = load_policy_set(data_files=[_data(tmp_path, (
        "cortex_config:\n"
        "  x_acme: {strict: true, anything: [{goes: here}]}\n"
        "  trusted_signers: {acme-release: {plugins: [acme/*], issuer: i, identity: x}, cortex-release: null}\n"
        "  evidence_sources: {default: {usage: false}}\n"
        "  denied_plugins: {other/*: no}\n"
        "  scan: {cve_allowlist: {CVE-2024-1: {expires: '2027-01-01', reason: r, plugins: [acme/*]}}}\n"
        "acme: {plugins: [acme/*], whatever: 1}\n"), name="ok.yaml")])
    assert ps.data["cortex_config"]["x_acme"] == {"strict": True, "anything": [{"goes": "here"}]}
    assert ps.data["acme"] == {"plugins": ["acme/*"], "whatever": 1}


def test_every_unknown_key_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    data = _data(tmp_path, "cortex_config:\n  trusted_singers: {}\n  scan:\n    max_severty: LOW\n")
    with pytest.raises(PolicyError) as e:
        load_policy_set(data_files=[data])
    message = str(e.value)
    assert f"{data}:2:3: `cortex_config.trusted_singers` (did you mean `trusted_signers`?)" in message
    assert f"{data}:4:5: `cortex_config.scan.max_severty` (did you mean `max_severity`?)" in message


def test_json_data_files_and_policy_directories_are_checked_too(tmp_path: Path) -> None:
    data = _data(tmp_path, json.dumps({"cortex_config": {"scan": {"max_severty": "LOW"}}}), name="org.json")
    with pytest.raises(PolicyError, match=r"unknown policy data key `cortex_config\.scan\.max_severty`") as e:
        load_policy_set(data_files=[data])
    assert "did you mean `max_severity`?" in (e.value.advice or "")
    org = tmp_path / "org"
    org.mkdir()
    _data(org, "cortex_config:\n  sandbox:\n    network_tier: [verified]\n", name="data.yaml")
    with pytest.raises(PolicyError, match=r"data.yaml:3:5: unknown policy data key") as e:
        load_policy_set([org])
    assert "did you mean `network_tiers`?" in (e.value.advice or "")


def test_only_keys_are_checked_values_stay_the_policys(tmp_path: Path) -> None:
    # Wrong types are CONFIG_INVALID for the policy to report (tests/engine/test_oracle.py), not load errors.
    bad = ROOT / "tests" / "fixtures" / "oracle_data" / "bad_data.yaml"
    assert unknown_keys(yaml.safe_load(bad.read_text())) == []
    load_policy_set(data_files=[bad])


def _schema_keys(node: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    node = defs[node["$ref"].removeprefix("#/$defs/")] if "$ref" in node else node
    keys = set(node.get("properties", {}))
    for child in [*node.get("properties", {}).values(), *node.get("anyOf", []),
                  *[v for v in (node.get("additionalProperties"), node.get("items")) if isinstance(v, dict)]]:
        keys |= _schema_keys(child, defs)
    return keys


def test_the_shipped_and_example_data_use_only_known_keys_and_the_contract_documents_them() -> None:
    files = [ROOT / "examples" / "demo" / "org.yaml",
             *sorted((ROOT / "tests" / "fixtures" / "oracle_data").glob("*.yaml"))]
    load_policy_set([ROOT / "examples" / "acme"], files)  # the defaults too: every load checks them
    for f in [ROOT / "policies" / "data.yaml", ROOT / "examples" / "acme" / "data.yaml", *files]:
        assert unknown_keys(yaml.safe_load(f.read_text())) == [], f
    schema = json.loads(SCHEMA_PATH.read_text())
    contract = (ROOT / "docs" / "policy-contract.md").read_text()
    section = contract[contract.index("## 5. Policy data"):contract.index("## 6.")]
    documented = set(re.findall(r"[a-z_]+", " ".join(re.findall(r"`([^`]+)`", section))))
    missing = _schema_keys(schema["properties"]["cortex_config"], schema["$defs"]) - documented
    assert not missing, f"keys in {SCHEMA_PATH.name} that docs/policy-contract.md §5 does not describe: {missing}"


def test_a_key_added_to_the_shipped_defaults_alone_names_the_schema(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import cortex_trust.policy._sets as sets

    shipped = tmp_path / "policies"
    (shipped / "cortex").mkdir(parents=True)
    (shipped / "cortex" / "x.rego").write_text("package cortex\n")
    (shipped / "data.yaml").write_text("cortex_config:\n  tests:\n    max_executed: 3\n")
    monkeypatch.setattr(sets, "default_policy_dir", lambda: shipped)
    with pytest.raises(PolicyError, match=r"unknown policy data key `cortex_config\.tests\.max_executed`") as e:
        sets.load_policy_set()
    assert SCHEMA_PATH.name in (e.value.advice or "")


# ------------------------------------------------------------------------------------------- CLI


def _verify(*args: Any) -> Any:
    return runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                               *[str(a) for a in args]])


def test_verify_refuses_a_mistyped_key_instead_of_deciding_under_the_default(tmp_path: Path) -> None:
    # One MEDIUM vulnerability: Community under the shipped max_severity (MEDIUM), not under the
    # organization's LOW. Mistyped, LOW would silently not apply and the plugin would pass.
    evidence = ("--scan", bound_report(tmp_path, "alpine-distroless.json"), "--scan-scanners", "vuln,secret",
                "--tests", JUNIT / "pytest-pass.xml", "--format", "json")
    meant = _data(tmp_path, "cortex_config:\n  scan:\n    max_severity: LOW\n", name="meant.yaml")
    typo = _data(tmp_path, "cortex_config:\n  scan:\n    max_severty: LOW\n", name="typo.yaml")
    default = _verify(*evidence)
    assert default.exit_code == 0 and json.loads(default.stdout)["decision"]["tier"] == "community", default.output
    strict = _verify(*evidence, "--data", meant)
    assert strict.exit_code == 0 and json.loads(strict.stdout)["decision"]["tier"] == "experimental", strict.output
    r = _verify(*evidence, "--data", typo)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert f"{typo}:3:5: unknown policy data key `cortex_config.scan.max_severty`" in r.stderr
    assert "fix: did you mean `max_severity`?" in r.stderr


def test_policy_eval_and_the_console_refuse_a_mistyped_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    typo = _data(tmp_path, "cortex_config:\n  trusted_singers:\n    a: {plugins: [a/*], issuer: i, identity: x}\n")
    input_file = _data(tmp_path, make_input().to_json(), name="input.json")
    code, out, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file), "--data", str(typo))
    assert code == 2 and out == "" and "did you mean `trusted_signers`?" in err, err
    proc = subprocess.run([sys.executable, "-m", "cli.main", "plugin", "verify", str(MANIFEST), "--image", IMAGE,
                           "--data", str(typo)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert "unknown policy data key `cortex_config.trusted_singers`" in proc.stderr
    assert "did you mean `trusted_signers`? (keys of your own go under cortex_config.x_<name>)" in proc.stderr
