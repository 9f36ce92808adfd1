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
