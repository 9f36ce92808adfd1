"""Policy authoring through the real CLI: failing Rego tests explained, ``eval --explain`` in
the policy's words, declarative YAML test cases, ``fmt``/``check``, OPA bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_policy import cortex

FAILING = """package acme.mine_test

import data.cortex.fixtures_test as fx
import rego.v1

test_community_is_verified if {
\td := fx.decide(fx.community)
\td.action == "notice"
\td.tier == "verified"
}

test_each if {
\txs := [1, 2, 3]
\tsome x in xs
\tx > 5
}

test_unicode if {
\tname := "caf\u00e9"
\tcount(name) == 4; name == "tea"
}

test_passes if {
\tfx.decide(fx.community).tier == "community"
}
"""


@pytest.fixture
def failing_dir(tmp_path: Path) -> Path:
    d = tmp_path / "org"
    d.mkdir()
    (d / "mine_test.rego").write_text(FAILING, encoding="utf-8")
    return d


def test_a_failing_test_shows_the_failing_expression_and_its_values(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failing_dir: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", str(failing_dir), "--run", "mine_test")
    assert code == 1
    assert "3 passed" not in out and "1 passed, 3 failed" in out
    where = f"{failing_dir / 'mine_test.rego'}"
    lines = out.splitlines()
    i = lines.index("FAIL  acme.mine_test.test_community_is_verified")
    assert lines[i + 2] == f'      {where}:9: fails: d.tier == "verified"'
    assert lines[i + 3] == '        d.tier = "community"'
    assert lines[i + 4].startswith('        d = {"action":"notice"')
    # inside an iteration: every value the variable took
    assert f"      {where}:15: fails: x > 5" in out and "        x (each of) = [1,2,3]" in out
    # byte offsets of non-ASCII text; two statements on one line: the second one fails
    assert f'      {where}:20: fails: name == "tea"' in out and '        name = "café"' in out


def test_failure_detail_in_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                failing_dir: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", str(failing_dir), "--run",
                          "mine_test", "--format", "json")
    assert code == 1
    results = {r["name"]: r for r in json.loads(out)["results"]}
    failure = results["test_community_is_verified"]["failure"]
    assert failure["line"] == 9 and failure["expression"] == 'd.tier == "verified"'
    assert failure["values"][0] == {"term": "d.tier", "value": "community"}
    assert failure["values"][1]["term"] == "d" and failure["values"][1]["value"]["tier"] == "community"
    assert results["test_passes"]["failure"] is None


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "inputs"


def test_explain_says_which_rule_and_condition_emit_each_reason(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "-i", str(EXAMPLES / "experimental.json"),
                          "--explain", "--format", "json")
    assert code == 0
    why = json.loads(out)["explain"]
    by_code = {e["code"]: e for e in why["reasons"]}
    assert list(by_code) == [r["code"] for r in json.loads(out)["decision"]["reasons"]]
    scan = by_code["SCAN_MISSING"]["rules"]
    assert [(r["rule"], r["module"]) for r in scan] == [("data.cortex.community_failures", "cortex/community.rego")]
    cond = scan[0]["conditions"][0]
    assert cond["expression"] == "not scan_present"
    # why the negated rule is false, with the value that made it so
    assert cond["because"] == [{"rule": "data.cortex.scan_present", "module": "cortex/community.rego",
                                "line": cond["because"][0]["line"], "expression": "scan.present == true",
                                "values": cond["because"][0]["values"]}]
    assert cond["because"][0]["values"][0] == {"term": "scan.present", "value": False}
    # the tier reason: the else branch that matched, and the tier's value
    tier = by_code["TIER_EXPERIMENTAL"]["rules"]
    assert [(r["rule"], r["otherwise"]) for r in tier] == [("data.cortex.tier_reason", True)]
    assert tier[0]["conditions"][0]["values"] == [{"term": "tier", "value": "experimental"}]
    # each requirement of the next tier is explained too
    assert why["next_tier"]["tier"] == "community"
    missing = {e["code"]: e for e in why["next_tier"]["missing"]}
    assert set(missing) == {"SCAN_MISSING", "TESTS_MISSING"}
    assert missing["TESTS_MISSING"]["rules"][0]["conditions"][0]["expression"] == "not tests_present"
    # not a dump of every rule
    assert "rules" not in json.loads(out)


def test_explain_text_in_an_isolated_org_policy(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    org = tmp_path / "acme"
    org.mkdir()
    (org / "acme.rego").write_text(
        'package cortex\n\nimport rego.v1\n\n'
        'deny contains {"code": "ACME_NO_NETWORK", "message": "acme plugins get no network", '
        '"evidence": ["manifest"]} if {\n\tinput.context.operation == "verify"\n}\n', encoding="utf-8")
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "-i", str(EXAMPLES / "community.json"),
                          "--policy-dir", str(org),
                          "--explain")
    assert code == 0
    text = out[out.index("why:"):]
    assert "  ACME_NO_NETWORK: acme plugins get no network\n" in text
    assert f"    {org / 'acme.rego'}:5: data.cortex.deny\n" in text
    assert '      6: input.context.operation == "verify"\n          input.context.operation = "verify"\n' in text


ACME = Path(__file__).resolve().parents[2] / "examples" / "acme"


def test_acme_declarative_cases_pass_beside_its_rego_tests(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", str(ACME), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    cases = [r for r in doc["results"] if r["package"].endswith("pins_test.yaml")]
    assert [r["name"] for r in cases] == [
        "an experimental plugin is blocked at acme", "a community plugin that asks for network stays blocked",
        "the verified demo plugin is installed"]
    assert all(r["status"] == "pass" for r in cases)
    assert any(r["package"] == "cortex.acme_network_test" for r in doc["results"])  # the Rego tests ran too


CASES = """cases:
  - name: pinned blocked
    input: experimental.json
    expect:
      action: block
      reasons: [SCAN_MISSING]
  - name: still experimental
    input: experimental.json
    patch: {evidence: {revocation: {revoked: true}}}
    expect:
      tier: experimental
      absent: [REVOKED]
  - name: inline input that is no input document
    input: {schema: nope}
    expect: {tier: untrusted}
  - name: missing input file
    input: nowhere.json
    expect: {tier: untrusted}
"""


def test_declarative_cases_fail_with_the_mismatch_and_error_on_bad_inputs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "experimental.json").write_text((EXAMPLES / "experimental.json").read_text())
    (tmp_path / "pins_test.yaml").write_text(CASES)
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", str(tmp_path), "--run", "::")
    assert code == 1
    f = tmp_path / "pins_test.yaml"
    assert f"FAIL  {f}::pinned blocked\n      {f}:2: expected action \"block\", got \"warn\"\n" in out
    assert f'      {f}:5: fails: action: "block"\n        action = "warn"\n' in out
    assert f"FAIL  {f}::still experimental\n      {f}:7: reason(s) REVOKED must be absent\n" in out
    assert f"ERROR {f}::inline input that is no input document\n" in out
    assert f"ERROR {f}::missing input file\n" in out and "nowhere.json" in out
    assert "0 passed, 2 failed, 2 errors" in out
    # --run selects cases by file::name
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", str(tmp_path), "--run", "::pinned", "-v")
    assert "0 passed, 1 failed" in out


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("cases:\n  - name: a\n    input: x.json\n    expect:\n      teir: verified\n", ":5:7:",
     "unknown expectation 'teir'"),
    ("cases:\n  - name: a\n    input: x.json\n", ":2:5:", "needs a non-empty expect"),
    ("case: []\n", ":1:1:", "unknown key 'case'"),
    ("cases:\n  - name: a\n    input: x.json\n    expect: {tier: 1}\n", ":4:20:", "expect.tier must be a string"),
    ("cases:\n  - &a {name: a}\n", ":2:5:", "anchor"),
])
def test_a_malformed_case_file_exits_2_with_its_position(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        text: str, where: str, problem: str) -> None:
    (tmp_path / "bad_test.yaml").write_text(text)
    code, out, err = cortex(monkeypatch, capsys, "policy", "test", str(tmp_path))
    assert code == 2, out + err
    assert f"bad_test.yaml{where}" in err and problem in err


def test_check_reports_every_problem_with_its_position(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "old.rego").write_text("package acme\n\nallow {\n  true\n}\n")  # Rego v0
    (tmp_path / "broken.rego").write_text("package acme2\n\nimport rego.v1\n\nx if {\n  1 ==\n}\n")
    (tmp_path / "data.yaml").write_text("cortex_config:\n  scan:\n    max_severty: LOW\n")
    (tmp_path / "pins_test.yaml").write_text("cases:\n  - name: a\n    input: x.json\n    expect: {teir: x}\n")
    (tmp_path / "good.rego").write_text("package acme3\n\nimport rego.v1\n\nok if true\n")
    code, out, err = cortex(monkeypatch, capsys, "policy", "check", str(tmp_path))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'old.rego'}:3:7: `if` keyword is required before rule body\n" in err
    assert f"{tmp_path / 'broken.rego'}:7:1: " in err
    assert (f"{tmp_path / 'data.yaml'}:3:5: unknown policy data key `cortex_config.scan.max_severty`\n"
            "  fix: did you mean `max_severity`?\n") in err
    assert f"{tmp_path / 'pins_test.yaml'}:4:14: unknown expectation 'teir'" in err
    assert "good.rego" not in err
    code, out, _ = cortex(monkeypatch, capsys, "policy", "check", str(tmp_path / "good.rego"), "--format", "json")
    assert code == 0 and json.loads(out) == {"ok": True, "problems": []}
    code, out, _ = cortex(monkeypatch, capsys, "policy", "check", str(tmp_path / "old.rego"), "--format", "json")
    assert code == 2
    assert json.loads(out)["problems"][0] | {"advice": None} == {
        "file": str(tmp_path / "old.rego"), "line": 3, "col": 7,
        "message": "`if` keyword is required before rule body", "advice": None}


def test_check_passes_the_shipped_and_example_policies(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cortex(monkeypatch, capsys, "policy", "check", str(ACME))
    assert (code, out, err) == (0, "ok: every policy file is valid\n", "")


def test_check_finds_data_that_shadows_a_rule(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "data.yaml").write_text("cortex:\n  tier: verified\n")
    code, _, err = cortex(monkeypatch, capsys, "policy", "check", str(tmp_path))
    assert code == 2 and "policy data defines data.cortex.tier, where the rule data.cortex.tier lives" in err


MESSY = ('package cortex\nimport rego.v1   \n\n\n\n'
         'deny contains {"code": "ACME_NO_NETWORK", "message": msg, "evidence": ["manifest"]} if {  \n'
         '    input.context.operation == "verify"\t\n'
         '        msg := concat(" ", ["acme", "says", "no"])\n'
         '}\n\n\n'
         '# a comment with a `backtick\n'
         'note := `a raw string  \n    kept as written\t\n\n\n` if {\n'
         '    true\n'
         '}\n\n\n')
FORMATTED = ('package cortex\n\nimport rego.v1\n\n'
             'deny contains {"code": "ACME_NO_NETWORK", "message": msg, "evidence": ["manifest"]} if {\n'
             '\tinput.context.operation == "verify"\n'
             '\t\tmsg := concat(" ", ["acme", "says", "no"])\n'
             '}\n\n'
             '# a comment with a `backtick\n'
             'note := `a raw string  \n    kept as written\t\n\n\n` if {\n'
             '\ttrue\n'
             '}\n')


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    org = tmp_path / "acme"
    org.mkdir()
    (org / "acme.rego").write_text(MESSY, encoding="utf-8")
    (org / "acme.rego").chmod(0o640)
    return org


def _decision(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], org: Path) -> object:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "-i", str(EXAMPLES / "community.json"),
                          "--policy-dir", str(org), "--rules", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    doc["decision"].pop("policy_revision")  # a hash of the modules' text
    return doc["decision"], doc["rules"]


def test_fmt_formats_a_messy_module_that_still_decides_identically(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], messy: Path) -> None:
    module = messy / "acme.rego"
    before = _decision(monkeypatch, capsys, messy)
    assert "ACME_NO_NETWORK" in json.dumps(before)
    code, out, err = cortex(monkeypatch, capsys, "policy", "fmt", str(messy))
    assert (code, out, err) == (0, f"reformatted {module}\n", "")
    assert module.read_text(encoding="utf-8") == FORMATTED  # the raw string is byte-identical
    assert module.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in messy.iterdir()] == ["acme.rego"]  # no temporary file left
    assert _decision(monkeypatch, capsys, messy) == before
    # idempotent
    assert cortex(monkeypatch, capsys, "policy", "fmt", str(module))[:2] == (0, "")
    assert module.read_text(encoding="utf-8") == FORMATTED


def test_fmt_check_exits_1_then_0_after_formatting(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], messy: Path) -> None:
    module = messy / "acme.rego"
    code, out, _ = cortex(monkeypatch, capsys, "policy", "fmt", "--check", str(messy))
    assert (code, out) == (1, f"would reformat {module}\n")
    assert module.read_text(encoding="utf-8") == MESSY
    assert cortex(monkeypatch, capsys, "policy", "fmt", str(messy))[0] == 0
    assert cortex(monkeypatch, capsys, "policy", "fmt", "--check", str(messy))[:2] == (0, "")


def test_fmt_diff_prints_the_change_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], messy: Path) -> None:
    module = messy / "acme.rego"
    code, out, _ = cortex(monkeypatch, capsys, "policy", "fmt", "--diff", str(module))
    assert code == 0
    assert f"--- a/{module}\n+++ b/{module}\n" in out
    lines = out.splitlines()
    assert '-    input.context.operation == "verify"\t' in lines and '+\tinput.context.operation == "verify"' in lines
    assert module.read_text(encoding="utf-8") == MESSY


def test_fmt_leaves_a_module_with_a_syntax_error_unchanged(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    module = tmp_path / "bad.rego"
    text = "package acme   \n\n\n\nallow if {\n    input.x ==\n"
    module.write_text(text, encoding="utf-8")
    code, out, err = cortex(monkeypatch, capsys, "policy", "fmt", str(module))
    assert code == 2 and out == ""
    assert err.startswith(f"{module}:") and "\n  fix: " in err
    assert err.split(":")[1].isdigit() and err.split(":")[2].isdigit()
    assert module.read_text(encoding="utf-8") == text


def test_the_shipped_policies_are_formatted(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    policies = Path(__file__).resolve().parents[2] / "policies"
    assert cortex(monkeypatch, capsys, "policy", "fmt", "--check", str(policies))[:2] == (0, "")
