"""`cortex plugin verify` in CI: GitHub annotations and job summary, SARIF (validated against the
official SARIF 2.1.0 schema), JUnit, GitLab Code Quality, `--report`, the identity flags of
cosign, and `--print-input` / `--save-input`.

Decisions come from the shipped default policies; the evidence is the real fixtures of
tests/fixtures (Sigstore bundles, Trivy reports, pytest JUnit output).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cli.test_verify import BEACON, DIGEST, FIX, IMAGE, JUNIT, MANIFEST, NOW, SIGSTORE, bound_report, verify

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = json.loads((FIX / "sarif" / "sarif-schema-2.1.0.json").read_text())
BUNDLE = SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json"
ISSUER = "https://token.actions.githubusercontent.com"


def community_args(tmp_path: Path, *, junit: str = "pytest-pass.xml",
                   report: str = "alpine-distroless.json") -> list[Any]:
    """Evidence that reaches Community under the default policy (or misses it by the one piece
    the caller spoils)."""
    return ["--namespace", "acme", "--scan", bound_report(tmp_path, report), "--scan-scanners", "vuln,secret",
            "--tests", JUNIT / junit]


def manifest_with(tmp_path: Path, old: str, new: str) -> Path:
    text = MANIFEST.read_text()
    assert old in text
    path = tmp_path / "manifest.yaml"
    path.write_text(text.replace(old, new))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# ---------------------------------------------------------------------------------- github


def test_github_passing_gate_annotates_nothing_but_the_summary(tmp_path: Path) -> None:
    r = verify(*community_args(tmp_path), "--format", "github", policy=None)
    assert r.exit_code == 0, r.output
    # Community (notice) passes --fail-on block: the Verified items it misses are no annotation.
    assert r.stdout.splitlines() == [
        "::notice title=cortex-trust::cortex: tier community, action notice: passes --fail-on block"]


def test_github_failing_gate_is_error_with_only_what_blocks(tmp_path: Path) -> None:
    r = verify(*community_args(tmp_path, report="alpine-39.json"), "--format", "github", "--fail-on", "warn",
               policy=None)
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[-1] == "::error title=cortex-trust::cortex: tier experimental, action warn: fails --fail-on warn"
    assert all(line.startswith("::error ") for line in lines)
    titles = {line.split("title=")[1].split("::")[0] for line in lines[:-1]}
    # What holds it at Experimental; never the Verified checks (review, signature, usage).
    assert titles == {"SCAN_VULNERABILITIES"}


def test_github_points_at_the_manifest_line_of_the_field(tmp_path: Path) -> None:
    manifest = manifest_with(tmp_path, "sandbox: true", "sandbox: false")
    r = verify(*community_args(tmp_path), "--format", "github", manifest=manifest, policy=None)
    assert r.exit_code == 1, r.output
    sandbox = [line for line in r.stdout.splitlines() if "title=SANDBOX_REQUIRED::" in line]
    assert len(sandbox) == 1
    assert f",line={line_of(manifest, 'sandbox: false')}," in sandbox[0]
    assert sandbox[0].startswith("::error file=")


def test_github_points_at_failed_junit_tests(tmp_path: Path) -> None:
    r = verify(*community_args(tmp_path, junit="pytest-mixed.xml"), "--format", "github", "--fail-on", "warn",
               policy=None)
    assert r.exit_code == 1, r.output
    tests = [line for line in r.stdout.splitlines() if "title=TESTS_FAILED::" in line]
    # pytest-mixed.xml: test_fail fails at test_sample.py:7, test_error errors at :15.
    assert tests == [
        "::error file=test_sample.py,line=7,title=TESTS_FAILED::test_sample.test_fail: assert (1 + 1) == 3",
        '::error file=test_sample.py,line=15,title=TESTS_FAILED::test_sample.test_error: failed on setup '
        'with "RuntimeError: fixture broke"']


def run_cli(*args: Any, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", **(env or {})},
                          cwd=cwd or ROOT, timeout=120)


def test_github_writes_the_job_summary_and_step_outputs(tmp_path: Path) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "output.txt"
    summary.write_text("earlier step\n")
    r = run_cli("plugin", "verify", MANIFEST, "--image", IMAGE, "--now", NOW,
                *community_args(tmp_path, report="alpine-39.json"), "--format", "github", "--fail-on", "warn",
                env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)})
    assert r.returncode == 1, r.stderr
    text = summary.read_text()
    assert text.startswith("earlier step\n## cortex-trust: acme\\/hello 0\\.1\\.0\n")  # appended
    assert "**🟡 Experimental** · action **warn** · ❌ fails `--fail-on warn`" in text
    assert "### To reach Community" in text and "| `SCAN_VULNERABILITIES` |" in text
    assert "### Evidence" in text and "| tests | 2 total" in text
    outs = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert (outs["tier"], outs["action"]) == ("experimental", "warn")
    assert outs["policy-revision"].startswith("sha256:")


def test_markdown_summary_is_inert() -> None:
    from cli._render_ci import md

    hostile = "x](https://evil.example/p.png) <img src=x> | cell\n::error::y `code`"
    shown = md(hostile)
    # No raw HTML, and no table cell, code span, link or image syntax left unescaped.
    assert "<" not in shown and "&lt;img" in shown
    assert re.search(r"(?<!\\)[|`\[\]()!]", shown) is None, shown
    assert "\n" not in shown


# ----------------------------------------------------------------------------------- sarif


def sarif(tmp_path: Path, *args: Any, manifest: Path = MANIFEST) -> dict[str, Any]:
    r = verify(*args, "--format", "sarif", manifest=manifest, policy=None)
    assert r.exit_code in (0, 1), r.output
    doc: dict[str, Any] = json.loads(r.stdout)
    jsonschema.validate(doc, SARIF_SCHEMA)  # the official SARIF 2.1.0 schema
    return doc


def test_sarif_validates_and_describes_every_rule(tmp_path: Path) -> None:
    manifest = manifest_with(tmp_path, "sandbox: true", "sandbox: false")
    doc = sarif(tmp_path, *community_args(tmp_path), "--bundle", BUNDLE, manifest=manifest)
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "cortex-trust" and driver["version"]
    assert run["properties"]["policyRevision"].startswith("sha256:")
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
        assert rule["helpUri"].endswith("docs/policy-contract.md#4-reason-codes")
    rules = {r["id"]: r for r in driver["rules"]}
    assert rules["SANDBOX_REQUIRED"]["fullDescription"]["text"].startswith("The manifest turns the sandbox off")
    by_rule = {x["ruleId"]: x for x in run["results"]}
    region = by_rule["SANDBOX_REQUIRED"]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == line_of(manifest, "sandbox: false")
    assert all(x["partialFingerprints"]["cortexReason/v1"] for x in run["results"])


def test_sarif_fingerprints_are_stable_across_builds(tmp_path: Path) -> None:
    # Another build of the same plugin (another digest, another reference time): code scanning
    # must see the same alerts, not new ones.
    other = "sha256:" + "c" * 64
    manifest = manifest_with(tmp_path, DIGEST, DIGEST)
    first = sarif(tmp_path, *community_args(tmp_path), manifest=manifest)
    manifest_with(tmp_path, DIGEST, other)
    report = bound_report(tmp_path, "alpine-distroless.json", other, made_at="2026-11-30T23:00:00Z")
    r = verify("--namespace", "acme", "--scan", report,
               "--scan-scanners", "vuln,secret", "--tests", JUNIT / "pytest-pass.xml", "--format", "sarif",
               "--now", "2026-12-01T00:00:00Z", image=f"127.0.0.1:5000/acme/hello@{other}", manifest=manifest,
               policy=None)
    second = json.loads(r.stdout)

    def prints(doc: dict[str, Any]) -> dict[str, str]:
        return {x["ruleId"] + x["properties"]["kind"]: x["partialFingerprints"]["cortexReason/v1"]
                for x in doc["runs"][0]["results"]}

    assert prints(first) == prints(second)
    assert len(set(prints(first).values())) == len(prints(first))


def test_sarif_of_an_organization_code_is_valid(tmp_path: Path) -> None:
    org = tmp_path / "org" / "cortex"
    org.mkdir(parents=True)
    (org / "frozen.rego").write_text('package cortex\n\nimport rego.v1\n\n'
                                     'deny contains {"code": "MYORG_FROZEN", "message": "frozen", '
                                     '"evidence": ["manifest.trust.network"]} if true\n')
    doc = sarif(tmp_path, *community_args(tmp_path), "--policy-dir", tmp_path / "org")
    rule = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "MYORG_FROZEN")
    assert "organization" in rule["fullDescription"]["text"]
    result = next(x for x in doc["runs"][0]["results"] if x["ruleId"] == "MYORG_FROZEN")
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == line_of(MANIFEST, "network:")


# ----------------------------------------------------------------------- junit, codequality


def junit(tmp_path: Path, *args: Any) -> tuple[int, ET.Element]:
    r = verify(*args, "--format", "junit", policy=None)
    return r.exit_code, ET.fromstring(r.stdout)


def test_junit_failing_gate(tmp_path: Path) -> None:
    code, root = junit(tmp_path, *community_args(tmp_path, report="alpine-39.json"), "--fail-on", "warn")
    assert code == 1
    cases = root.findall(".//testcase")
    # The gate, then one case per requirement of Community the plugin misses.
    assert [c.get("name") for c in cases][1:] == ["SCAN_VULNERABILITIES"]
    assert all(c.find("failure") is not None for c in cases)
    suite = root.find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "2")


def test_junit_passing_gate_skips_the_next_tier(tmp_path: Path) -> None:
    code, root = junit(tmp_path, *community_args(tmp_path))
    assert code == 0
    cases = root.findall(".//testcase")
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    assert {c.get("name") for c in cases[1:]} == {"REVIEW_MISSING", "SIGNATURE_MISSING", "USAGE_MISSING"}
    assert all(c.find("skipped") is not None for c in cases[1:])


def test_codequality_and_report_files(tmp_path: Path) -> None:
    quality, sarif_file = tmp_path / "gl-code-quality.json", tmp_path / "cortex.sarif"
    r = verify(*community_args(tmp_path), "--report", f"codequality={quality}", "--report", f"sarif={sarif_file}",
               "--format", "json", policy=None)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decision"]["tier"] == "community"
    issues = json.loads(quality.read_text())
    assert {i["check_name"] for i in issues} >= {"TIER_COMMUNITY", "REVIEW_MISSING"}
    for i in issues:
        assert i["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert i["location"]["path"].endswith("manifest.yaml") and i["location"]["lines"]["begin"] >= 1
        assert len(i["fingerprint"]) == 64
    jsonschema.validate(json.loads(sarif_file.read_text()), SARIF_SCHEMA)


def test_report_flag_is_checked() -> None:
    r = verify("--report", "pdf=out.pdf")
    assert r.exit_code == 2 and "FORMAT=FILE" in r.output


# --------------------------------------------------------------------- cosign identity flags


def signed(tmp_path: Path, *args: Any, fmt: str = "json") -> Any:
    return verify(*community_args(tmp_path), "--bundle", BUNDLE, *args, "--format", fmt, policy=None)


def codes(doc: dict[str, Any]) -> set[str]:
    return {x["code"] for x in doc["decision"]["reasons"]}


def test_without_identity_flags_the_signer_is_untrusted(tmp_path: Path) -> None:
    doc = json.loads(signed(tmp_path).stdout)
    assert "SIGNER_UNTRUSTED" in codes(doc)
    assert doc["context"]["command_line_signers"] == []


def test_certificate_identity_trusts_the_signer_and_is_recorded(tmp_path: Path) -> None:
    r = signed(tmp_path, "--certificate-identity", BEACON, "--certificate-oidc-issuer", ISSUER)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert "SIGNER_UNTRUSTED" not in codes(doc)
    assert "SIGNER_FROM_COMMAND_LINE" in codes(doc)
    assert "SIGNATURE_MISSING" not in {m["code"] for m in doc["decision"]["next_tier"]["missing"]}
    assert doc["context"]["command_line_signers"] == [
        {"identity": BEACON, "identity_regexp": None, "issuer": ISSUER, "issuer_regexp": None,
         "source": "command-line"}]


def test_certificate_identity_regexp_is_anchored(tmp_path: Path) -> None:
    ok = signed(tmp_path, "--certificate-identity-regexp",
                r"https://github\.com/sigstore-conformance/.*@refs/heads/main",
                "--certificate-oidc-issuer-regexp", r"https://token\.actions\.githubusercontent\.com")
    assert "SIGNER_FROM_COMMAND_LINE" in codes(json.loads(ok.stdout))
    # cosign searches; here the whole identity must match: a prefix trusts nothing.
    prefix = signed(tmp_path, "--certificate-identity-regexp", "https://github.com/sigstore-conformance/",
                    "--certificate-oidc-issuer", ISSUER)
    assert "SIGNER_UNTRUSTED" in codes(json.loads(prefix.stdout))
    wrong_issuer = signed(tmp_path, "--certificate-identity", BEACON, "--certificate-oidc-issuer",
                          "https://accounts.google.com")
    assert "SIGNER_UNTRUSTED" in codes(json.loads(wrong_issuer.stdout))


@pytest.mark.parametrize(("args", "message"), [
    (["--certificate-identity", BEACON], "--certificate-oidc-issuer"),
    (["--certificate-oidc-issuer", ISSUER], "--certificate-identity"),
    (["--certificate-identity", BEACON, "--certificate-identity-regexp", ".*", "--certificate-oidc-issuer", ISSUER],
     "exactly one"),
    (["--certificate-identity-regexp", "a)|(.*", "--certificate-oidc-issuer", ISSUER], "not a valid regular"),
    (["--certificate-identity-regexp", "(?=x).*", "--certificate-oidc-issuer", ISSUER], "do not support"),
    (["--certificate-identity-regexp", r"(a)\1", "--certificate-oidc-issuer", ISSUER], "do not support"),
    (["--certificate-identity-regexp", "a" * 513, "--certificate-oidc-issuer", ISSUER], "512"),
])
def test_identity_flags_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    r = signed(tmp_path, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output


# ------------------------------------------------------------------ --print-input, --save-input


def test_print_and_save_input_give_what_the_policy_decides_on(tmp_path: Path) -> None:
    saved = tmp_path / "input.json"
    printed = verify(*community_args(tmp_path), "--print-input", "--save-input", saved, policy=None)
    assert printed.exit_code == 0, printed.output
    doc = json.loads(printed.stdout)
    assert doc["schema_version"] == "cortex.input/v1" and doc["context"]["operation"] == "verify"
    assert json.loads(saved.read_text()) == doc
    decided = json.loads(verify(*community_args(tmp_path), "--format", "json", policy=None).stdout)["decision"]
    evaluated = run_cli("policy", "eval", "--input", saved, "--format", "json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["decision"] == decided


def test_reason_code_catalogue_matches_the_policy_contract() -> None:
    from cli._reason_codes import _COPY, parse_contract

    documented = parse_contract((ROOT / "docs" / "policy-contract.md").read_text())
    assert json.loads(_COPY.read_text()) == documented, "run: python -m cli._reason_codes --update"
    assert documented["SIGNER_FROM_COMMAND_LINE"]["group"] == "note"
    assert documented["SCAN_VULNERABILITIES"]["group"] == "check"
