"""The CI examples of docs/verify.md work as written: the GitLab job's `cortex` commands, run in
a shell with the variables GitLab would set and real evidence files under the names the job
uses, reach Community and write the reports GitLab reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from cortex_trust.policy import format_time
from tests.cli.test_verify import DIGEST, JUNIT, MANIFEST, SIGSTORE, bound_report

ROOT = Path(__file__).resolve().parents[2]


def _yaml_block_after(heading: str) -> dict[str, object]:
    text = (ROOT / "docs" / "verify.md").read_text()
    start = text.index(heading)
    m = re.compile(r"```yaml\n(.*?)```", re.S).search(text, start)
    assert m is not None
    doc: dict[str, object] = yaml.safe_load(m.group(1))
    return doc


def test_gitlab_example_reaches_community_and_writes_its_reports(tmp_path: Path) -> None:
    job = _yaml_block_after("### GitLab CI")["cortex-verify"]
    assert isinstance(job, dict)
    commands = [c for c in job["script"] if c.startswith("cortex ")]
    assert commands, job["script"]
    # The files the job names, from the real fixtures.
    (tmp_path / "manifest.yaml").write_text(MANIFEST.read_text())
    bundle = SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json"
    (tmp_path / "image.sigstore.json").write_bytes(bundle.read_bytes())
    # made now: the job decides at the real time
    report = bound_report(tmp_path, "alpine-distroless.json", made_at=format_time(datetime.now(UTC)))
    (tmp_path / "trivy.json").write_bytes(report.read_bytes())
    (tmp_path / "junit.xml").write_bytes((JUNIT / "pytest-pass.xml").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "GITLAB_CI": "true", "CI": "true",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "CI_REGISTRY_IMAGE": "127.0.0.1:5000/acme/hello", "IMAGE_DIGEST": DIGEST}
    for command in commands:
        r = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    verdict = json.loads((tmp_path / "cortex-verify.json").read_text())
    assert verdict["decision"]["tier"] == "community"
    reports = job["artifacts"]["reports"]
    suite = ET.parse(tmp_path / reports["junit"]).getroot()
    assert suite.findall(".//testcase")
    quality = json.loads((tmp_path / reports["codequality"]).read_text())
    assert {i["check_name"] for i in quality} >= {"TIER_COMMUNITY"}


@pytest.mark.parametrize("tier", ["untrusted", "experimental", "community", "verified"])
def test_example_inputs_decide_as_named(tier: str) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from cortex_trust.policy import PolicyInput

    path = ROOT / "examples" / "inputs" / f"{tier}.json"
    PolicyInput.model_validate_json(path.read_text())
    r = CliRunner().invoke(app, ["policy", "eval", "--input", str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decision"]["tier"] == tier
