"""``cortex policy eval|test|schema`` through the real entry point: output and exit codes."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from cli.main import main
from cortex_trust.policy import default_policy_dir
from tests.engine.test_embedded import make_input
from tests.support.hostile import org_replacing_revocation
from tests.support.opa_wire_server import OpaWireServer

FIX = Path(__file__).resolve().parents[1] / "fixtures"
SMALL = FIX / "policies_small"
ORG = FIX / "policies_org"
BAD = FIX / "policies_bad"


def cortex(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
           stdin: str | None = None) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cortex", *args])
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    f = tmp_path / "input.json"
    f.write_text(make_input(revoked=True).to_json())
    return f


SMALL_ARGS = ("--no-defaults", "--policy-dir", str(SMALL))


def test_eval_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   input_file: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file), *SMALL_ARGS)
    assert code == 0
    assert "tier:   experimental" in out and "action: block (not overridable)" in out
    assert "REVOKED: this version was revoked" in out
    assert "policy: regorus revision sha256:" in out
    assert "explain" not in out


def test_eval_json_with_explain(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                input_file: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          *SMALL_ARGS, "--format", "json", "--rules")
    assert code == 0
    doc = json.loads(out)
    assert doc["engine"] == "regorus" and doc["policy_revision"].startswith("sha256:")
    assert doc["decision"]["action"] == "block" and doc["decision"]["reasons"][0]["code"] == "REVOKED"
    assert "explain" not in doc
    rules = {r["rule"]: r for r in doc["rules"]}
    assert rules["data.cortex.tier"]["value"] == "experimental"
    assert rules["data.cortex.blocked"]["value"] is True
    assert "data.cortex.decision" not in rules


def test_eval_explain_text_and_stdin(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", "-", *SMALL_ARGS,
                          "--rules", stdin=make_input().to_json())
    assert code == 0
    assert '  data.cortex.tier = "experimental"' in out
    assert "  data.cortex.community = undefined" in out


def test_eval_org_dir_and_data(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path) -> None:
    f = tmp_path / "in.json"
    f.write_text(make_input(network=True).to_json())
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "-i", str(f), *SMALL_ARGS,
                          "--policy-dir", str(ORG), "--format", "json")
    assert code == 0
    assert json.loads(out)["decision"]["reasons"][0]["code"] == "ORG_NETWORK_NEEDS_VERIFIED"


@pytest.mark.security_review
def test_policy_eval_reports_a_replaced_default_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    org = org_replacing_revocation(tmp_path)
    f = tmp_path / "input.json"
    f.write_text(make_input().to_json())
    code, _, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(f),
                          "--policy-dir", str(org))
    assert code == 0
    assert "cortex/revocation.rego" in err and "replaces" in err


@pytest.mark.parametrize(("content", "needle"), [
    ("{nope", "not valid JSON"),
    ('{"manifest": {"valid": true}}', "input.context"),
    ('{"manifest": {"valid": true}, "context": {"now": "x", "cortex_version": "1", '
     '"operation": "fly"}}', "input.context.operation"),
    ('{"manifest": {"valid": true, "netwrok": 1}, "context": {"now": "x", "cortex_version": "1", '
     '"operation": "run"}}', "input.manifest.netwrok"),
])
def test_eval_invalid_input_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    code, out, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(f), *SMALL_ARGS)
    assert code == 2 and out == ""
    assert needle in err and "fix:" in err


def test_eval_missing_input_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                 tmp_path: Path) -> None:
    code, _, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(tmp_path / "no.json"))
    assert code == 2 and "cannot read" in err


def test_eval_failed_closed_exits_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                    input_file: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          *SMALL_ARGS, "--policy-dir", str(BAD / "builtin_error"))
    assert code == 3
    assert "failed closed" in out and "ENGINE_ERROR" in out


def test_eval_bad_policy_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                 input_file: Path) -> None:
    code, _, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          *SMALL_ARGS, "--policy-dir", str(BAD / "syntax"))
    assert code == 2 and "broken.rego:7:1" in err and "fix:" in err
    code, _, err = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          "--policy-dir", str(FIX / "nope"))
    assert code == 2 and "does not exist" in err


def test_eval_opa_engine_matches_embedded(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], input_file: Path) -> None:
    from cortex_trust.policy import load_policy_set

    code, embedded_out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                                   *SMALL_ARGS, "--format", "json")
    assert code == 0
    with OpaWireServer(load_policy_set([SMALL], defaults=False)) as server:
        code, opa_out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                                  "--engine", "opa", "--opa-url", server.url, "--format", "json",
                                  "--rules")
    assert code == 0
    opa_doc, emb_doc = json.loads(opa_out), json.loads(embedded_out)
    assert opa_doc["engine"] == "opa-server"
    emb_doc["decision"].pop("policy_revision")
    opa_doc["decision"].pop("policy_revision")
    assert opa_doc["decision"] == emb_doc["decision"]
    assert {r["rule"]: r["value"] for r in opa_doc["rules"]}["data.cortex.tier"] == "experimental"


def test_eval_opa_engine_down_exits_3(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], input_file: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          "--engine", "opa", "--opa-url", f"http://127.0.0.1:{port}")
    assert code == 3 and "ENGINE_ERROR" in out


@pytest.mark.parametrize("extra", [(), ("--policy-dir", "x")])
def test_eval_opa_engine_usage_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      input_file: Path, extra: tuple[str, ...]) -> None:
    args = ["policy", "eval", "--input", str(input_file), "--engine", "opa"]
    if extra:
        args += ["--opa-url", "http://127.0.0.1:1", *extra]
    code, _, err = cortex(monkeypatch, capsys, *args)
    assert code == 2 and "error:" in err


def test_test_passes_and_prints_coverage(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL))
    assert code == 0
    assert "PASS" not in out  # passes only with -v
    assert "4 passed, 0 failed" in out
    assert "cortex/decision.rego" in out and "total" in out
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL), "-v")
    assert "PASS  cortex_test.test_experimental" in out


def test_test_failures_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL),
                          str(BAD / "failing_tests"))
    assert code == 1
    assert "FAIL  cortex_extra_test.test_fails" in out
    assert "ERROR cortex_extra_test.test_errors" in out
    assert "extra_test.rego:" in out
    assert "5 passed, 2 failed, 1 errors" in out


def test_test_min_coverage_and_json(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL),
                          "--min-coverage", "99", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["passed"] is False and doc["counts"] == {"pass": 4, "fail": 0, "error": 0}
    assert doc["coverage"]["files"][0]["module"] == "cortex/decision.rego"
    assert 0 < doc["coverage"]["percent"] < 99
    code, _, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL),
                        "--min-coverage", "50")
    assert code == 0


def test_test_run_filter_matching_nothing_fails(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL),
                          "--run", "zzz")
    assert code == 1 and "no test_* rules found" in out


def test_test_bad_policy_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(SMALL),
                          str(BAD / "syntax"))
    assert code == 2 and "broken.rego:7:1" in err


def test_test_default_dir_given_explicitly_is_loaded_once(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _, plain, _ = cortex(monkeypatch, capsys, "policy", "test", "--format", "json")
    _, explicit, _ = cortex(monkeypatch, capsys, "policy", "test", str(default_policy_dir()),
                            "--format", "json")
    a, b = json.loads(plain), json.loads(explicit)
    assert a["counts"] == b["counts"] and a["policy_revision"] == b["policy_revision"]
    assert len(a["results"]) == len({(r["package"], r["name"]) for r in a["results"]})


def test_schema(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "schema")
    assert code == 0
    doc = json.loads(out)
    assert doc["$id"] == "https://cortex.dev/schemas/cortex.input/v1.json"
    assert "context" in doc["properties"]


def test_eval_with_the_default_policies(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], input_file: Path) -> None:
    code, out, _ = cortex(monkeypatch, capsys, "policy", "eval", "--input", str(input_file),
                          "--format", "json")
    assert code == 0
    assert json.loads(out)["decision"]["failed"] is False


def test_test_run_filter_reports_coverage_of_what_it_touched(monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    # As `opa test --run`: the modules the selected tests never reached are not in the coverage
    # (they would only drag it down), the ones they reached are, with their uncovered lines.
    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.rego").write_text(
            f"package {name}\n\nimport rego.v1\n\nok if input.x == 1\n\nother if input.x == 2\n")
        (tmp_path / f"{name}_test.rego").write_text(
            f"package {name}_test\n\nimport rego.v1\n\ntest_ok if data.{name}.ok with input as {{\"x\": 1}}\n")
    code, out, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(tmp_path),
                          "--run", "alpha_test", "--format", "json")
    assert code == 0, out
    files = json.loads(out)["coverage"]["files"]
    assert [f["module"] for f in files] == ["alpha.rego"]
    assert files[0]["not_covered"] == [7]
    _, everything, _ = cortex(monkeypatch, capsys, "policy", "test", "--no-defaults", str(tmp_path),
                              "--format", "json")
    assert [f["module"] for f in json.loads(everything)["coverage"]["files"]] == ["alpha.rego", "beta.rego"]
