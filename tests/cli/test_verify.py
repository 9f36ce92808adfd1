"""`cortex plugin verify`: exit codes, output formats, reason codes, and a fast `--help`.

Most tests run the Typer app in-process (CliRunner); a few run the real console entry point in
a subprocess (exit codes as CI sees them, and what `--help` imports). Policies: a small test
policy (tests/fixtures/verify/policies) for the CLI mechanics, and the shipped defaults for the
end-to-end decisions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli._inert import SEVERITY as _SEVERITY
from cli._inert import exit_code_for
from cli.main import app
from cortex_trust.engine import PolicyEngine
from cortex_trust.policy import Action, Decision
from tests.support.hostile import EDGE_TIMES, assert_inert

ROOT = Path(__file__).resolve().parents[2]
FIX = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = FIX / "verify" / "manifest.yaml"
BAD_MANIFEST = FIX / "verify" / "manifest-bad.yaml"
TEST_POLICY = FIX / "verify" / "policies"
UNDEFINED_POLICY = FIX / "verify" / "policies-undefined"
TRIVY = FIX / "trivy"
JUNIT = FIX / "junit"
SIGSTORE = FIX / "sigstore"
REVIEW = FIX / "review"
# The sha256 of tests/fixtures/sigstore/artifacts/a.txt: the real Sigstore fixtures sign it.
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
OTHER = "sha256:" + "b" * 64
IMAGE = f"127.0.0.1:5000/acme/hello@{DIGEST}"
NOW = "2026-10-31T00:00:00Z"

runner = CliRunner()


def verify(*args: Any, policy: Path | None = TEST_POLICY, image: str = IMAGE,
           manifest: Path = MANIFEST) -> Any:
    argv = ["plugin", "verify", str(manifest), "--image", image, "--now", NOW]
    if policy is not None:
        argv += ["--no-default-policies", "--policy-dir", str(policy)]
    argv += [str(a) for a in args]
    return runner.invoke(app, argv)


def as_json(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


#: When bound reports were made: an hour before NOW, so the default policy counts them as fresh.
MADE_AT = "2026-10-30T23:00:00Z"


def bound_report(tmp_path: Path, name: str, digest: str = DIGEST, *, made_at: str = MADE_AT) -> Path:
    """A real fixture report as Trivy writes it for an image pulled by digest, made at
    ``made_at`` (a test that decides at the real time passes the real time)."""
    doc = json.loads((TRIVY / name).read_text())
    doc["Metadata"]["RepoDigests"] = [f"127.0.0.1:5000/acme/hello@{digest}"]
    doc["CreatedAt"] = made_at
    path = tmp_path / f"bound-{name}"
    path.write_text(json.dumps(doc))
    return path


# ----------------------------------------------------------------------- exit codes (mechanics)


def test_pass_exit_0(tmp_path: Path) -> None:
    r = verify("--scan", bound_report(tmp_path, "alpine-distroless.json"),
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert (doc["decision"]["tier"], doc["decision"]["action"]) == ("community", "notice")
    assert [x["code"] for x in doc["decision"]["reasons"]] == ["TIER_COMMUNITY"]


def test_fail_on_reached_exit_1(tmp_path: Path) -> None:
    args = ("--scan", bound_report(tmp_path, "alpine-distroless.json"),
            "--tests", JUNIT / "pytest-pass.xml")
    assert verify(*args, "--fail-on", "notice").exit_code == 1
    assert verify(*args, "--fail-on", "warn").exit_code == 0
    # Nothing but a manifest: experimental/warn.
    assert verify().exit_code == 0
    assert verify("--fail-on", "warn").exit_code == 1


def test_block_fails_by_default() -> None:
    # A data override of the test policy's action map makes every tier block.
    data = FIX / "verify" / "block-all.yaml"
    r = verify("--data", data, "--format", "json")
    assert r.exit_code == 1, r.output
    assert as_json(r)["decision"]["action"] == "block"


def test_bad_manifest_exit_2() -> None:
    r = verify(manifest=BAD_MANIFEST)
    assert r.exit_code == 2
    assert "netwrok" in r.stderr and "version" in r.stderr


def test_missing_manifest_exit_2(tmp_path: Path) -> None:
    assert verify(manifest=tmp_path / "nope.yaml").exit_code == 2


def test_garbage_bundle_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "bundle.sigstore.json"
    garbage.write_bytes(b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "x"')
    r = verify("--bundle", garbage)
    assert r.exit_code == 2
    assert "not a Sigstore bundle" in r.stderr


def test_truncated_bundle_exit_2(tmp_path: Path) -> None:
    real = (SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json").read_bytes()
    cut = tmp_path / "cut.sigstore.json"
    cut.write_bytes(real[: len(real) // 2])
    assert verify("--bundle", cut).exit_code == 2


def test_report_for_another_digest_is_dropped(tmp_path: Path) -> None:
    r = verify("--scan", bound_report(tmp_path, "alpine-distroless.json", OTHER),
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json")
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert doc["decision"]["tier"] != "community"
    assert "DROPPED_SCAN" in [x["code"] for x in doc["decision"]["reasons"]]
    assert doc["evidence"]["scan"]["present"] is False
    assert [(d["kind"], d["code"]) for d in doc["evidence"]["dropped"]] == [
        ("scan", "DIGEST_MISMATCH")]


@pytest.mark.parametrize("image", [
    "127.0.0.1:5000/acme/hello:0.1.0",
    "127.0.0.1:5000/acme/hello",
    "127.0.0.1:5000/acme/hello@sha256:abc",
])
def test_unpinned_image_exit_2(image: str) -> None:
    r = verify(image=image)
    assert r.exit_code == 2
    assert "digest" in r.stderr and "fix:" in r.stderr


def test_image_digest_disagrees_with_manifest_exit_2() -> None:
    r = verify(image=f"127.0.0.1:5000/acme/hello@{OTHER}")
    assert r.exit_code == 2
    assert DIGEST in r.stderr and OTHER in r.stderr


def test_undefined_decision_fails_closed_exit_3() -> None:
    r = verify("--format", "json", policy=UNDEFINED_POLICY)
    assert r.exit_code == 3, r.output
    doc = as_json(r)
    assert doc["decision"]["failed"] is True and doc["decision"]["action"] == "block"
    assert [x["code"] for x in doc["decision"]["reasons"]] == ["ENGINE_UNDEFINED"]


def test_scanner_that_cannot_run_exit_3() -> None:
    # Nothing listens on 127.0.0.1:5000 here: real Trivy cannot pull the image.
    r = verify("--run-scan")
    assert r.exit_code == 3
    assert "Trivy failed" in r.stderr


@pytest.mark.parametrize("args", [
    ("--now", "yesterday"),
    ("--now", "2026-10-31T00:00:00"),
    ("--format", "xml"),
    ("--fail-on", "allow"),
    ("--trivy-db", "/tmp"),
    ("--scan", TRIVY / "npm.json", "--run-scan"),
    ("--tests", FIX / "nope.xml"),
    ("--review", FIX / "nope.json"),
    ("--policy-dir", FIX / "no-such-dir"),
])
def test_usage_errors_exit_2(args: tuple[Any, ...]) -> None:
    assert verify(*args).exit_code == 2


def test_entity_bomb_in_junit_exit_2(tmp_path: Path) -> None:
    bomb = tmp_path / "junit.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><testsuites>&b;</testsuites>')
    r = verify("--tests", bomb)
    assert r.exit_code == 2 and "DTD" in r.stderr


@pytest.mark.parametrize("option", ["--bundle", "--scan", "--tests", "--review", "--usage"])
def test_gigabyte_files_exit_2_without_reading_them(tmp_path: Path, option: str) -> None:
    huge = tmp_path / "huge"
    with huge.open("wb") as f:  # sparse: 4 GiB that cost nothing
        f.truncate(4 << 30)
    r = verify(option, huge)
    assert r.exit_code == 2 and "too large" in r.stderr


def test_review_for_another_version_is_dropped(tmp_path: Path) -> None:
    doc = json.loads((REVIEW / "review-approved.json").read_text())
    doc["version"] = "0.2.0"
    other = tmp_path / "review.json"
    other.write_text(json.dumps(doc))
    r = verify("--namespace", "acme", "--review", other, "--format", "json")
    assert r.exit_code == 0
    out = as_json(r)
    assert out["evidence"]["review"]["present"] is False
    assert out["evidence"]["dropped"][0]["code"] == "VERSION_MISMATCH"


@pytest.mark.security_review
@pytest.mark.parametrize("fmt", ["text", "github"])
def test_verify_output_never_carries_injected_workflow_commands(tmp_path: Path, fmt: str) -> None:
    # A review about another version is dropped, and the dropped message names the file: a
    # hostile file name reaches the evidence summary verbatim.
    doc = json.loads((REVIEW / "review-approved.json").read_text())
    doc["version"] = "0.2.0"
    hostile_name = tmp_path / "rev\n::error::pwned\x1b[2Jiew\u2028.json"
    hostile_name.write_text(json.dumps(doc))
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                            "--no-default-policies", "--policy-dir", str(TEST_POLICY),
                            "--namespace", "acme", "--review", str(hostile_name),
                            "--format", fmt])
    assert r.exit_code in (0, 1), r.output
    assert_inert(r.stdout, fmt=fmt)
    if fmt == "text":
        assert "VERSION_MISMATCH" in r.stdout and "pwned" in r.stdout


@pytest.mark.security_review
def test_verify_errors_with_hostile_paths_are_neutralised(tmp_path: Path) -> None:
    missing = tmp_path / "no\n::error::such\x1b[31m.json"
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                            "--review", str(missing)])
    assert r.exit_code == 2
    assert_inert(r.stderr)
    assert "no such file" in r.stderr


@pytest.mark.security_review
def test_verify_cli_refuses_a_digest_with_a_trailing_newline() -> None:
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE + "\n",
                            "--now", NOW, "--no-default-policies", "--policy-dir",
                            str(TEST_POLICY)])
    assert r.exit_code == 2, r.output  # an input error, never a traceback or a decision


@pytest.mark.security_review
@pytest.mark.parametrize("when", EDGE_TIMES)
def test_verify_now_outside_the_utc_range_is_a_usage_error(when: str) -> None:
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", when,
                            "--no-default-policies", "--policy-dir", str(TEST_POLICY)])
    assert r.exit_code == 2, r.output
    assert "out of range" in r.stderr


def test_exit_code_ordering_matches_the_decision_model() -> None:
    assert {a.value: a.severity for a in Action} == _SEVERITY
    failed = Decision.fail_closed("ENGINE_ERROR", "boom")
    assert exit_code_for(failed, "block") == 3


# ------------------------------------------------------------------------------------ formats


def _full_args(tmp_path: Path) -> list[Any]:
    return ["--namespace", "acme",
            "--bundle", SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json",
            "--scan", bound_report(tmp_path, "alpine-39.json"),
            "--tests", JUNIT / "pytest-mixed.xml",
            "--review", REVIEW / "review-approved.json",
            "--usage", REVIEW / "usage-60days.json"]


def test_json_schema(tmp_path: Path) -> None:
    r = verify(*_full_args(tmp_path), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert doc["schema"] == "cortex.verify/v1"
    assert set(doc) == {"schema", "decision", "plugin", "artifact", "manifest", "evidence",
                        "policy", "context"}
    assert doc["plugin"]["full_name"] == "acme/hello"
    assert doc["artifact"] == {"image": IMAGE, "digest": DIGEST, "pinned": True}
    assert doc["policy"]["engine"] == "regorus"
    assert doc["policy"]["revision"].startswith("sha256:")
    ev = doc["evidence"]
    assert ev["signature"]["verified"] is True and ev["signature"]["trusted_root"]
    assert ev["scan"]["bound"] is True and ev["scan"]["counts"]["CRITICAL"] == 2
    assert (ev["tests"]["total"], ev["tests"]["failures"], ev["tests"]["errors"]) == (7, 1, 1)
    assert ev["review"]["status"] == "approved"
    assert ev["usage"]["days_in_production"] == 60
    assert doc["context"]["now"] == NOW
    assert "SIGNATURE_VERIFIED" in [x["code"] for x in doc["decision"]["reasons"]]


def test_sarif(tmp_path: Path) -> None:
    r = verify(*_full_args(tmp_path), "--format", "sarif")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert len(rules) == len(set(rules))
    results = run["results"]
    assert {x["ruleId"] for x in results} <= set(rules)
    assert "TIER_EXPERIMENTAL" in rules and "SCAN_MISSING" in rules
    for res in results:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert loc.endswith("manifest.yaml")
    # experimental → warn → warning; missing items → note
    levels = {x["ruleId"]: x["level"] for x in results}
    assert levels["TIER_EXPERIMENTAL"] == "warning" and levels["SCAN_MISSING"] == "note"


def test_sarif_block_is_error() -> None:
    r = verify("--data", FIX / "verify" / "block-all.yaml", "--format", "sarif")
    assert r.exit_code == 1
    assert {x["level"] for x in json.loads(r.stdout)["runs"][0]["results"]
            if x["ruleId"].startswith("TIER_")} == {"error"}


def test_github_annotations(tmp_path: Path) -> None:
    # A warn passes --fail-on block: one ::warning summary, nothing else annotated.
    r = verify(*_full_args(tmp_path), "--format", "github")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "::warning title=cortex-trust::cortex: tier experimental, action warn: passes --fail-on block"]
    # The same decision fails --fail-on warn: ::error, and the missing items are annotated.
    r = verify(*_full_args(tmp_path), "--format", "github", "--fail-on", "warn")
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert all(line.startswith("::error ") for line in lines)
    assert any("title=SCAN_MISSING::to reach community" in line for line in lines)


def test_text(tmp_path: Path) -> None:
    r = verify(*_full_args(tmp_path))
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "tier:   experimental" in out and "action: warn" in out
    assert "  TIER_EXPERIMENTAL: " in out
    assert "to reach community: SCAN_MISSING: " in out
    assert "sandbox: network off" in out
    assert "signature: verified" in out


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_render_bare_decision(fmt: str) -> None:
    # What `plugin install` and `policy eval` reuse: a Decision without a verify result.
    from cli._render import render_decision

    decision = Decision.fail_closed("ENGINE_TIMEOUT", "the policy engine timed out\nafter 5 s")
    out = render_decision(decision, fmt, location="plugins/x/manifest.yaml", version="0.1.0")
    if fmt == "json":
        doc = json.loads(out)
        assert doc["schema"] == "cortex.decision/v1" and doc["decision"]["failed"] is True
    elif fmt == "sarif":
        run = json.loads(out)["runs"][0]
        assert [r["level"] for r in run["results"]] == ["error"]
        assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
            "uri"] == "plugins/x/manifest.yaml"
    elif fmt == "github":
        first = out.splitlines()[0]
        assert first.startswith("::error file=plugins/x/manifest.yaml,line=1,title=ENGINE_TIMEOUT::")
        assert "%0A" in first  # a newline in a message never ends the command early
    else:
        assert "failed closed" in out and "ENGINE_TIMEOUT: " in out and "sandbox: none" in out
    with pytest.raises(ValueError):
        render_decision(decision, "xml")


def test_github_escapes_newlines_and_commas() -> None:
    from cli._render_ci import _escape_data, _escape_property

    assert _escape_data("a\nb%") == "a%0Ab%25"
    assert _escape_property("x,y:z") == "x%2Cy%3Az"


# ---------------------------------------------------------------------- the default policies


def test_default_policy_blocks_community_on_critical_vulns(tmp_path: Path) -> None:
    r = verify("--scan", bound_report(tmp_path, "alpine-39.json"),
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    assert r.exit_code == 0, r.output  # experimental → warn, below the default --fail-on block
    doc = as_json(r)
    codes = [x["code"] for x in doc["decision"]["reasons"]]
    assert doc["decision"]["tier"] == "experimental"
    assert "SCAN_VULNERABILITIES" in codes
    assert verify("--scan", bound_report(tmp_path, "alpine-39.json"), "--tests",
                  JUNIT / "pytest-pass.xml", "--fail-on", "warn", policy=None).exit_code == 1


def test_default_policy_community_with_a_passing_bound_scan(tmp_path: Path) -> None:
    # A report cannot prove that the secret scanner ran (Trivy omits empty lists), and the
    # default data requires it: an organisation that accepts report-only vulnerability scans
    # says so in its data.
    data = tmp_path / "org.yaml"
    data.write_text("cortex_config:\n  scan:\n    required_scanners: [vuln]\n")
    r = verify("--scan", bound_report(tmp_path, "alpine-distroless.json"),
               "--tests", JUNIT / "pytest-pass.xml", "--data", data, "--format", "json",
               policy=None)
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert (doc["decision"]["tier"], doc["decision"]["action"]) == ("community", "notice")
    assert "TIER_COMMUNITY" in [x["code"] for x in doc["decision"]["reasons"]]
    assert doc["decision"]["next_tier"]["tier"] == "verified"


def test_a_scan_that_aged_out_is_stale_and_next_tier_says_rescan(tmp_path: Path) -> None:
    """The default policy counts a scan for 7 days (freshness.scan.max_age_days): an older
    report drops the tier, and what to do is a rescan."""
    args = ("--scan-scanners", "vuln,secret", "--tests", JUNIT / "pytest-pass.xml", "--format", "json")
    old = verify("--scan", bound_report(tmp_path, "alpine-distroless.json", made_at="2026-10-23T23:59:59Z"),
                 *args, policy=None)
    assert old.exit_code == 0, old.output
    decision = as_json(old)["decision"]
    assert (decision["tier"], decision["action"]) == ("experimental", "warn")
    assert "SCAN_STALE" in [x["code"] for x in decision["reasons"]]
    [missing] = decision["next_tier"]["missing"]
    assert missing["code"] == "SCAN_STALE"
    assert missing["message"] == f"to reach community: rescan {DIGEST}: a scan counts toward community for 7 day(s)"
    # Seven days exactly still count.
    fresh = verify("--scan", bound_report(tmp_path, "alpine-distroless.json", made_at="2026-10-24T00:00:00Z"),
                   *args, policy=None)
    assert as_json(fresh)["decision"]["tier"] == "community"
    assert as_json(fresh)["evidence"]["scan"]["created_at"] == "2026-10-24T00:00:00Z"


def test_default_policy_report_alone_is_not_enough(tmp_path: Path) -> None:
    r = verify("--scan", bound_report(tmp_path, "alpine-distroless.json"),
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    doc = as_json(r)
    assert doc["decision"]["tier"] == "experimental"
    assert "SCAN_INCOMPLETE" in [x["code"] for x in doc["decision"]["reasons"]]


def test_default_policy_community_with_declared_scanners(tmp_path: Path) -> None:
    # The pipeline declares how it ran Trivy; a clean report cannot show it by itself.
    r = verify("--scan", bound_report(tmp_path, "alpine-distroless.json"), "--scan-scanners", "vuln,secret",
               "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert (doc["decision"]["tier"], doc["decision"]["action"]) == ("community", "notice")
    assert doc["evidence"]["scan"]["scanners"] == ["vuln", "secret"]
    # Declaring scanners never launders findings: CRITICAL vulnerabilities still fail the scan.
    bad = as_json(verify("--scan", bound_report(tmp_path, "alpine-39.json"), "--scan-scanners", "vuln,secret",
                         "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None))
    assert bad["decision"]["tier"] == "experimental"
    assert "SCAN_VULNERABILITIES" in [x["code"] for x in bad["decision"]["reasons"]]


@pytest.mark.parametrize("args", [("--scan-scanners", "vuln,root"), ("--scan-scanners", "vuln")])
def test_declared_scanners_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    extra = ["--scan", bound_report(tmp_path, "alpine-distroless.json")] if "root" in args[1] else []
    assert verify(*extra, *args, policy=None).exit_code == 2


def test_default_policy_unbound_and_dropped_scans(tmp_path: Path) -> None:
    unbound = verify("--scan", TRIVY / "alpine-distroless.json", "--tests",
                     JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    assert "SCAN_UNBOUND" in [x["code"] for x in as_json(unbound)["decision"]["reasons"]]
    other = verify("--scan", bound_report(tmp_path, "alpine-distroless.json", OTHER),
                   "--tests", JUNIT / "pytest-pass.xml", "--format", "json", policy=None)
    doc = as_json(other)
    assert doc["decision"]["tier"] != "community"
    assert "SCAN_MISSING" in [x["code"] for x in doc["decision"]["reasons"]]


def test_default_policy_staging_bundle_against_production_root() -> None:
    r = verify("--bundle", SIGSTORE / "invalid" / "staging-bundle-vs-prod-root.sigstore.json",
               "--format", "json", policy=None)
    assert r.exit_code in (0, 1)
    doc = as_json(r)
    assert doc["evidence"]["signature"]["verified"] is False
    assert doc["decision"]["tier"] in ("experimental", "untrusted")


def test_default_policy_bundle_for_another_artifact_is_dropped() -> None:
    # A real, valid bundle, but over another digest (the rfc8785 wheel): never used.
    r = verify("--bundle", SIGSTORE / "valid" / "prod-gha-rfc8785-0.1.2.whl.sigstore.json",
               "--format", "json", policy=None)
    doc = as_json(r)
    assert doc["evidence"]["signature"]["present"] is False
    assert [(d["kind"], d["code"]) for d in doc["evidence"]["dropped"]] == [
        ("signature", "DIGEST_MISMATCH")]
    codes = [x["code"] for x in doc["decision"]["reasons"]]
    assert "EVIDENCE_DROPPED" in codes and "SIGNATURE_MISSING" in codes


def test_default_policy_verified_needs_a_trusted_signer() -> None:
    # Every piece for Verified, signed by a real identity that the default data does not trust.
    r = verify("--namespace", "acme",
               "--bundle", SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json",
               "--review", REVIEW / "review-approved.json",
               "--usage", REVIEW / "usage-60days.json", "--format", "json", policy=None)
    doc = as_json(r)
    assert doc["evidence"]["signature"]["verified"] is True
    assert doc["decision"]["tier"] != "verified"
    assert "SIGNER_UNTRUSTED" in [x["code"] for x in doc["decision"]["reasons"]]


# Fixed in the policies: trusted_signers entries accept only the roots in signer_trusted_roots
# (default: the public-good root) unless they name their own (policies/cortex/sources.rego).
@pytest.mark.security_review
def test_release_identity_from_a_private_root_is_not_a_trusted_signer(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tests.support.sigstore_mint import PrivateSigstore

    when = datetime(2026, 10, 30, tzinfo=UTC)
    private = PrivateSigstore(tmp_path / "private", now=when)
    identity = ("https://github.com/cortex-platform/hello/.github/workflows/release.yml"
                "@refs/tags/v0.1.0")
    bundle = tmp_path / "hello.sigstore.json"
    bundle.write_bytes(private.sign_digest(
        DIGEST, identity=identity, issuer="https://token.actions.githubusercontent.com",
        github={"repository": "cortex-platform/hello", "workflow_ref": "refs/tags/v0.1.0",
                "sha": "0" * 40, "trigger": "push"}))
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE,
                            "--now", "2026-10-31T00:00:00Z", "--namespace", "cortex",
                            "--bundle", str(bundle), "--trusted-root",
                            str(private.trusted_root_path), "--format", "json"])
    out = json.loads(r.stdout)
    assert out["evidence"]["signature"]["verified"] is True  # cryptographically valid
    decision = out["decision"]
    codes = [x["code"] for x in decision["reasons"]]
    codes += [x["code"] for x in (decision["next_tier"] or {}).get("missing", [])]
    assert "SIGNER_UNTRUSTED" in codes


BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
          ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")


def test_default_policy_verified_end_to_end(tmp_path: Path) -> None:
    # The whole pipeline to allow: a real bundle over the digest, a bound passing scan, passing
    # tests, an approved review and 60 days of use, with an organisation's data trusting the
    # signer and the reviewer (and accepting report-based scans).
    data = tmp_path / "org.yaml"
    data.write_text(
        "cortex_config:\n"
        "  scan: {required_scanners: [vuln]}\n"
        "  verified: {reviewers: [core/alice]}\n"
        "  trusted_signers:\n"
        "    beacon:\n"
        "      plugins: [acme/*]\n"
        "      issuer: https://token.actions.githubusercontent.com\n"
        f"      identity: {BEACON}\n")
    args = ["--namespace", "acme",
            "--bundle", SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json",
            "--scan", bound_report(tmp_path, "alpine-distroless.json"),
            "--tests", JUNIT / "pytest-pass.xml",
            "--review", REVIEW / "review-approved.json",
            "--usage", REVIEW / "usage-60days.json", "--data", data]
    r = verify(*args, "--format", "json", "--fail-on", "notice", policy=None)
    assert r.exit_code == 0, r.output
    doc = as_json(r)
    assert (doc["decision"]["tier"], doc["decision"]["action"]) == ("verified", "allow")
    assert doc["decision"]["next_tier"] is None
    # One day earlier than 30 days of use: community, and the missing item says so.
    early = verify(*args, "--format", "json", "--now", "2026-09-30T00:00:00Z", policy=None)
    assert as_json(early)["decision"]["tier"] == "community"


def test_private_trust_root() -> None:
    # A bundle from a private Sigstore instance over the same digest: verified only with its
    # root, and never against the production root alone.
    bundle = SIGSTORE / "valid" / "private-rekor2-hashedrekord.sigstore.json"
    alone = as_json(verify("--bundle", bundle, "--format", "json", policy=None))
    assert alone["evidence"]["signature"]["verified"] is False
    assert alone["evidence"]["signature"]["error"]
    r = verify("--bundle", bundle, "--trusted-root",
               SIGSTORE / "trusted_roots" / "private-local.json", "--format", "json", policy=None)
    sig = as_json(r)["evidence"]["signature"]
    assert sig["verified"] is True and sig["trusted_root"] == "private-local"


def test_garbage_trusted_root_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text("garbage")
    r = verify("--bundle", SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json",
               "--trusted-root", root)
    assert r.exit_code == 2 and "trusted root" in r.stderr


def test_default_policy_bad_manifest_is_still_exit_2() -> None:
    assert verify(manifest=BAD_MANIFEST, policy=None).exit_code == 2


# ------------------------------------------------------------------------------ library API


class _BrokenEngine(PolicyEngine):
    """A real PolicyEngine implementation whose evaluation always fails."""

    name = "broken"
    revision = "sha256:test"

    def evaluate(self, input_json: str) -> Any:
        raise RuntimeError("segfault averted")


def test_verify_plugin_library_api(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set
    from cortex_trust.verify import VerifyRequest, verify_plugin

    request = VerifyRequest(manifest=MANIFEST, image=IMAGE, namespace="acme",
                            scan_report=bound_report(tmp_path, "alpine-39.json"),
                            junit=JUNIT / "pytest-pass.xml", cortex_version="0.1.0")
    now = datetime(2026, 10, 31, tzinfo=UTC)
    with EmbeddedEngine(load_policy_set()) as engine:
        result = verify_plugin(request, engine=engine, now=now)
    assert result.decision.tier.value == "experimental" and not result.decision.failed
    assert "SCAN_VULNERABILITIES" in result.decision.codes
    assert result.input.evidence.scan.bound and result.policy_revision.startswith("sha256:")
    assert result.to_json_dict()["schema"] == "cortex.verify/v1"

    failed = verify_plugin(request, engine=_BrokenEngine(), now=now)
    assert failed.decision.failed and failed.decision.codes == ("ENGINE_ERROR",)
    assert exit_code_for(failed.decision, "block") == 3


# ------------------------------------------------------------------------------- subprocesses


def _cortex(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_console_exit_codes() -> None:
    ok = _cortex("plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                 "--format", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["schema"] == "cortex.verify/v1"
    unpinned = _cortex("plugin", "verify", str(MANIFEST), "--image", "acme/hello:0.1.0")
    assert unpinned.returncode == 2 and "not pinned by digest" in unpinned.stderr
    bad = _cortex("plugin", "verify", str(BAD_MANIFEST), "--image", IMAGE)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# What no help screen may import: the crypto stack, the engine, our models, the HTTP and container
# clients, YAML, pydantic (typer 0.29 imports it to coerce option values: a help screen coerces none).
HEAVY = ("sigstore", "regorus", "cryptography", "cortex_trust.policy", "cortex_trust.engine",
         "cortex_trust.verify", "cortex_trust.manifest", "cortex_trust.ids", "cortex_trust.install",
         "cortex_trust.runtime", "cortex_trust.sources", "cortex_trust.evidence", "pydantic",
         "typer._adapters", "httpx", "requests", "docker", "yaml", "rich")

_PROBE = """
import sys
sys.argv = ["cortex", *{args!r}]
from cli.main import main
try:
    main()
except SystemExit as e:
    print(f"EXIT={{e.code}}", file=sys.stderr)
print("LOADED=" + ",".join(sorted(k for k, v in sys.modules.items() if v is not None)), file=sys.stderr)
"""


def _loaded_by(args: tuple[str, ...], env: dict[str, str] | None = None) -> tuple[set[str], str, str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED=")]
    assert line, proc.stderr
    return set(line[0][len("LOADED="):].split(",")), proc.stdout, proc.stderr


def _heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("args", [("--help",), ("plugin", "--help"), ("plugin", "verify", "--help"),
                                  ("plugin", "call", "--help"), ("registry", "token", "--help"),
                                  ("manifest", "lint", "--help"), ("plugin",), ("receipt", "--help"),
                                  ("receipt", "verify", "--help"), ("receipt", "replay", "--help"),
                                  ("receipt", "get", "--help")])
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    modules, out, err = _loaded_by(args)
    shown = out + err  # a group run without a command shows its help on stderr
    assert "Usage" in shown and "Options" in shown
    assert _heavy(modules, HEAVY) == []


def test_commands_never_load_httpx_own_command_line(tmp_path: Path) -> None:
    # httpx imports click, rich and pygments for its own command line when they are installed.
    from tests.support.served_registry import free_port

    env = {**os.environ, "CORTEX_DATA_DIR": str(tmp_path / "data"),
           "CORTEX_CONFIG": str(tmp_path / "config.json")}
    modules, _, err = _loaded_by(("plugin", "install", "acme/tool", "--registry",
                                  f"http://127.0.0.1:{free_port()}"), env)
    assert "EXIT=3" in err and "httpx" in modules
    assert _heavy(modules, ("click", "rich", "pygments", "httpx._main")) == []


def test_calling_a_plugin_that_is_not_installed_needs_no_engine(tmp_path: Path) -> None:
    # `plugin call` reads the install record first: no container engine, policy engine or
    # Sigstore is loaded to say that there is nothing to call.
    env = {**os.environ, "CORTEX_DATA_DIR": str(tmp_path / "data"),
           "CORTEX_CONFIG": str(tmp_path / "config.json"), "DOCKER_HOST": "unix:///nonexistent"}
    modules, _, err = _loaded_by(("plugin", "call", "acme/tool", "greet"), env)
    assert "EXIT=2" in err and "acme/tool is not installed" in err
    assert _heavy(modules, ("sigstore", "regorus", "docker", "requests", "httpx",
                            "cortex_trust.engine", "cortex_trust.runtime")) == []


# ------------------------------------------------------------------- mix-and-match property


@pytest.fixture(scope="module")
def default_engine() -> Any:
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set

    with EmbeddedEngine(load_policy_set()) as engine:
        yield engine


def _doc_for(tmp: Path, kind: str, digest: str) -> Path:
    name = f"{kind}-{digest[7:15]}.json"
    if kind == "scan":
        return bound_report(tmp, "alpine-distroless.json", digest)
    doc = json.loads((REVIEW / ("review-approved.json" if kind == "review"
                                else "usage-60days.json")).read_text())
    doc["digest"] = digest
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def test_evidence_about_another_digest_never_changes_the_decision(
        tmp_path_factory: pytest.TempPathFactory, default_engine: Any) -> None:
    from datetime import UTC, datetime

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cortex_trust.verify import VerifyRequest, gather_input, judge

    tmp = tmp_path_factory.mktemp("mix")
    now = datetime(2026, 10, 31, tzinfo=UTC)
    right = {k: _doc_for(tmp, k, DIGEST) for k in ("scan", "review", "usage")}
    wrong = {k: _doc_for(tmp, k, OTHER) for k in ("scan", "review", "usage")}
    field = {"scan": "scan_report", "review": "review", "usage": "usage"}

    def decide(pieces: dict[str, Path], tests: bool, bundle: bool) -> Any:
        request = VerifyRequest(
            manifest=MANIFEST, image=IMAGE, namespace="acme",
            bundle=SIGSTORE / "valid" / "prod-hashedrekord-v0.3.sigstore.json" if bundle else None,
            junit=JUNIT / "pytest-pass.xml" if tests else None, cortex_version="0.1.0",
            **{field[k]: v for k, v in pieces.items()})
        return judge(gather_input(request, now=now), engine=default_engine,
                     manifest_path=str(MANIFEST)).decision

    kinds = st.sets(st.sampled_from(["scan", "review", "usage"]))

    @settings(max_examples=25, deadline=None)
    @given(good=kinds, bad=kinds, tests=st.booleans(), bundle=st.booleans())
    def check(good: set[str], bad: set[str], tests: bool, bundle: bool) -> None:
        bad = bad - good
        base = decide({k: right[k] for k in good}, tests, bundle)
        mixed = decide({**{k: right[k] for k in good}, **{k: wrong[k] for k in bad}},
                       tests, bundle)
        # The wrong-digest documents are dropped: same tier and action, never better.
        assert (mixed.tier, mixed.action) == (base.tier, base.action)

    check()
