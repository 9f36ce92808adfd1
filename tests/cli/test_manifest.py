"""`cortex manifest lint|schema`: output lines, streams and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from cortex_trust.manifest import manifest_json_schema

ROOT = Path(__file__).resolve().parents[2]
HELLO = "examples/plugins/hello/manifest.yaml"
NETFETCH = "examples/plugins/netfetch/manifest.yaml"
BROKEN = "examples/plugins/broken/manifest.yaml"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_lint_valid(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    result = run("manifest", "lint", HELLO, NETFETCH)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"ok: {HELLO} (hello@0.1.0)",
                                          f"ok: {NETFETCH} (netfetch@1.2.0)"]
    assert result.stderr == ""


def test_lint_invalid_prints_every_problem_to_stderr(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    result = run("manifest", "lint", HELLO, BROKEN)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [f"ok: {HELLO} (hello@0.1.0)"]
    lines = result.stderr.splitlines()
    assert len(lines) == 11
    assert lines[1] == (f'{BROKEN}:3:10: version: YAML reads the unquoted version 1.10 as a '
                        'number (1.1) (fix: quote it and write all three parts: version: "1.10.0")')
    assert f"{BROKEN}:20:3: trust.netwrok: unknown field `netwrok` (fix: did you mean " \
           "`network`?)" in lines
    assert all(line.startswith(f"{BROKEN}:") for line in lines)


def test_lint_json(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    result = run("manifest", "lint", "--format", "json", HELLO, BROKEN, "no/such.yaml")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    hello, broken, missing = doc["results"]
    assert hello == {"path": HELLO, "valid": True, "name": "hello", "version": "0.1.0",
                     "problems": [], "warnings": []}
    assert broken["valid"] is False and len(broken["problems"]) == 11
    assert broken["warnings"] == []
    assert broken["problems"][-1] == {
        "path": BROKEN, "line": 20, "column": 3, "field": "trust.netwrok",
        "problem": "unknown field `netwrok`", "fix": "did you mean `network`?"}
    assert missing["problems"][0]["problem"] == "file not found"


def test_lint_json_all_valid(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    result = run("manifest", "lint", "--format", "json", HELLO)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["valid"] is True


def test_lint_directory_and_missing(tmp_path: Path) -> None:
    result = run("manifest", "lint", str(tmp_path), str(tmp_path / "x.yaml"))
    assert result.exit_code == 2
    assert f"{tmp_path}:1:1: is a directory" in result.stderr
    assert f"{tmp_path / 'x.yaml'}:1:1: file not found" in result.stderr


def test_lint_needs_a_path() -> None:
    result = CliRunner().invoke(app, ["manifest", "lint"])
    assert result.exit_code == 2  # usage error


def test_schema_prints_the_json_schema() -> None:
    result = run("manifest", "schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == manifest_json_schema()


def test_console_script_end_to_end() -> None:
    # The real entry point, in a fresh interpreter: exit codes survive the whole stack.
    cmd = [sys.executable, "-c", "from cli.main import main; main()", "manifest", "lint"]
    ok = subprocess.run([*cmd, HELLO], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: ")
    bad = subprocess.run([*cmd, BROKEN], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 11
