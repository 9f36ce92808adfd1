"""The composite GitHub Action (action.yml), run locally step by step as the runner would: each
`run:` step in `bash --noprofile --norc -eo pipefail` with its `env:` (inputs substituted), and
the variables Actions sets (GITHUB_OUTPUT per step, GITHUB_STEP_SUMMARY, GITHUB_PATH,
RUNNER_TEMP, GITHUB_WORKSPACE, GITHUB_ACTIONS, CI). The action's outputs are then read from the
step outputs exactly as its `outputs:` say. `uses:` steps (the SARIF upload) are not run; their
`with:` must point at what the steps wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cortex_trust.policy import format_time
from tests.cli.test_verify import FIX, IMAGE, JUNIT, MANIFEST, bound_report

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
_EXPR = re.compile(r"\$\{\{\s*(inputs|steps)\.([A-Za-z0-9_-]+)(?:\.outputs\.([A-Za-z0-9_-]+))?\s*\}\}")


def _expand(value: str, inputs: dict[str, str], steps: dict[str, dict[str, str]]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) == "inputs":
            return inputs[m.group(2)]
        return steps.get(m.group(2), {}).get(m.group(3) or "", "")

    return _EXPR.sub(one, value)


def run_action(tmp_path: Path, **given: str) -> dict[str, Any]:
    """Run the action's steps with ``given`` inputs (names with ``_`` for ``-``); return the exit
    code of the failing step (or 0), the action's outputs, stdout, the summary and the
    upload step's ``with``."""
    declared = ACTION["inputs"]
    inputs = {name: str(spec.get("default", "")) for name, spec in declared.items()}
    for key, value in given.items():
        name = key.replace("_", "-")
        assert name in declared, name
        inputs[name] = value
    for name, spec in declared.items():
        assert not spec.get("required") or inputs[name], f"required input {name}"
    summary, path_file = tmp_path / "step_summary.md", tmp_path / "github_path"
    summary.touch()
    path_file.touch()
    steps: dict[str, dict[str, str]] = {}
    stdout, code, upload = "", 0, None
    for n, step in enumerate(ACTION["runs"]["steps"]):
        if "uses" in step:
            upload = {k: _expand(str(v), inputs, steps) for k, v in step.get("with", {}).items()}
            continue
        out = tmp_path / f"output-{n}"
        out.touch()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1",
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_OUTPUT": str(out),
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_PATH": str(path_file),
               "RUNNER_TEMP": str(tmp_path), "GITHUB_WORKSPACE": str(tmp_path)}
        env.update({k: _expand(str(v), inputs, steps) for k, v in step.get("env", {}).items()})
        assert "${{" not in step["run"], "inputs reach scripts through env only"
        r = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        stdout += r.stdout
        steps[step.get("id", str(n))] = dict(
            line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        if r.returncode != 0:
            code = r.returncode
            break
    outputs = {name: _expand(spec["value"], inputs, steps) for name, spec in ACTION["outputs"].items()}
    return {"code": code, "outputs": outputs, "stdout": stdout, "summary": summary.read_text(),
            "upload": upload}


def evidence(tmp_path: Path, report: str) -> dict[str, str]:
    return {"manifest": str(MANIFEST), "image": IMAGE, "namespace": "acme",
            # made now: the action decides at the real time
            "scan": str(bound_report(tmp_path, report, made_at=format_time(datetime.now(UTC)))),
            "scan_scanners": "vuln,secret",
            "tests": str(JUNIT / "pytest-pass.xml"), "install": ""}


def test_action_passes_and_outputs_tier_and_action(tmp_path: Path) -> None:
    args = evidence(tmp_path, "alpine-distroless.json")
    result = run_action(tmp_path, **args)
    assert result["code"] == 0, result
    out = result["outputs"]
    assert (out["tier"], out["action"], out["exit-code"]) == ("community", "notice", "0")
    sarif = json.loads((tmp_path / out["sarif-file"]).read_text())
    jsonschema.validate(sarif, json.loads((FIX / "sarif" / "sarif-schema-2.1.0.json").read_text()))
    assert result["upload"] == {"sarif_file": "cortex-trust.sarif", "category": "cortex-trust"}
    assert "**🔵 Community** · action **notice** · ✅ passes `--fail-on block`" in result["summary"]
    assert result["stdout"].splitlines()[-1].startswith("::notice title=cortex-trust::")


def test_action_fails_the_step_when_the_gate_fails(tmp_path: Path) -> None:
    args = evidence(tmp_path, "alpine-39.json")
    # Two data files, one per line: the second makes Experimental block.
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("cortex_config:\n  actions: {experimental: warn}\n")
    second.write_text("cortex_config:\n  actions: {experimental: block}\n")
    result = run_action(tmp_path, **args, fail_on="warn", data=f"{first}\n{second}\n")
    assert result["code"] == 1
    assert result["outputs"]["exit-code"] == "1"
    assert result["outputs"]["action"] == "block"
    assert "::error title=cortex-trust::" in result["stdout"]
    assert "❌ fails `--fail-on warn`" in result["summary"]


def test_action_inputs_never_become_shell_code(tmp_path: Path) -> None:
    args = evidence(tmp_path, "alpine-distroless.json")
    marker = tmp_path / "pwned"
    result = run_action(tmp_path, **(args | {"namespace": f"acme$(touch {marker})"}))
    assert not marker.exists()
    assert result["code"] == 2  # an invalid namespace is bad input, said by cortex
