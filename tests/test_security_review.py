"""Regression tests from the adversarial security review of the finished library modules.

Each test pins one finding: a way hostile input could have turned into a wrong "allow", a hang,
an untranslated exception, or output that a CI runner or a terminal would interpret (GitHub
workflow commands, ANSI escape sequences). Real fixtures (tests/fixtures/) and real components.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.errors import CortexTrustError, EvidenceError, InputError
from cortex_trust.policy import Decision

FIX = Path(__file__).parent / "fixtures"
MANIFEST = FIX / "verify" / "manifest.yaml"
TEST_POLICY = FIX / "verify" / "policies"
REVIEW = FIX / "review"
TRIVY = FIX / "trivy"
SIGSTORE = FIX / "sigstore"
# The sha256 of tests/fixtures/sigstore/artifacts/a.txt (what the fixtures are about).
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
IMAGE = f"127.0.0.1:5000/acme/hello@{DIGEST}"
NOW = "2026-10-31T00:00:00Z"

# What an attacker would put into a field that ends up in a message: a GitHub workflow command
# on a line of its own, ANSI escapes (clear screen, set the window title), C1 CSI, a Unicode
# line separator and a right-to-left override.
HOSTILE = "x\n::error file=a::pwned\r\n::stop-commands::abc\x1b[2J\x1b]0;title\x07\x9b31m\u2028y\u202ez"

runner = CliRunner()


def _assert_inert(text: str, *, fmt: str = "text") -> None:
    """No line an Actions runner would read as a command of the attacker's, and no terminal
    control characters. In ``github`` format every line is one of our own commands."""
    for line in text.rstrip("\n").split("\n"):
        if fmt == "github":
            assert line.startswith(("::error ", "::warning ", "::notice ")), line
        else:
            assert not line.lstrip().startswith("::"), line
    for bad in ("\x1b", "\x07", "\x9b", "\r", "\u2028", "\u202e"):
        assert bad not in text, repr(bad)


def _hostile_decision() -> Decision:
    return Decision.from_policy_output({
        "tier": "community", "action": "allow",
        "reasons": [{"code": "COMMUNITY_OK", "message": f"reviewer {HOSTILE}"}],
        "sandbox": {"enabled": True, "network": False, "filesystem": False,
                    "read_only_root": True, "cap_drop": [f"ALL{HOSTILE}"],
                    "no_new_privileges": True, "user": "1000:1000", "memory": "256m",
                    "cpus": 1, "pids_limit": 64},
        "next_tier": {"tier": "verified", "missing": [{"code": "REVIEW_MISSING",
                                                       "message": HOSTILE}]},
        "overridable": True,
    })


# ------------------------------------------------------------------ output (cli/_render.py)


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_render_neutralises_control_characters(fmt: str) -> None:
    from cli._render import render_decision

    out = render_decision(_hostile_decision(), fmt, location="manifest.yaml")
    _assert_inert(out, fmt=fmt)
    assert "pwned" in out  # still shown, as inert text
    if fmt == "github":
        # Exactly our lines (reason, missing item, summary): the injected newlines added none.
        assert len(out.rstrip("\n").split("\n")) == 3


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_machine_formats_stay_valid_json_with_hostile_text(fmt: str) -> None:
    from cli._render import render_decision

    out = render_decision(_hostile_decision(), fmt)
    doc = json.dumps(json.loads(out))
    assert "pwned" in doc
    for bad in ("\x1b", "\x07", "\x9b", "\u2028", "\u202e"):
        assert bad not in out


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
    _assert_inert(r.stdout, fmt=fmt)
    if fmt == "text":
        assert "VERSION_MISMATCH" in r.stdout and "pwned" in r.stdout


def test_error_messages_are_neutralised(capsys: pytest.CaptureFixture[str]) -> None:
    from cli._errors import fail, report_library_error

    with pytest.raises(SystemExit) as exc:
        fail(f"bad {HOSTILE}", advice=HOSTILE)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    _assert_inert(err)
    assert err.count("\n") == 2  # the error line and the fix line, nothing injected
    with pytest.raises(SystemExit):
        report_library_error(EvidenceError(f"review {HOSTILE}", advice="x"))
    _assert_inert(capsys.readouterr().err)


def test_verify_errors_with_hostile_paths_are_neutralised(tmp_path: Path) -> None:
    missing = tmp_path / "no\n::error::such\x1b[31m.json"
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", NOW,
                            "--review", str(missing)])
    assert r.exit_code == 2
    _assert_inert(r.stderr)
    assert "no such file" in r.stderr


# ------------------------------------------------------- digests with a trailing newline


NL_DIGEST = DIGEST + "\n"


def test_image_reference_with_a_trailing_newline_is_not_a_pin() -> None:
    from cortex_trust.policy import image_digest, resolve_digest

    with pytest.raises(InputError):
        image_digest("127.0.0.1:5000/acme/hello@" + NL_DIGEST)
    from cortex_trust.manifest import load_manifest

    with pytest.raises(InputError):
        resolve_digest(manifest=load_manifest(MANIFEST), image=None, digest=NL_DIGEST)


def test_verify_cli_refuses_a_digest_with_a_trailing_newline() -> None:
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE + "\n",
                            "--now", NOW, "--no-default-policies", "--policy-dir",
                            str(TEST_POLICY)])
    assert r.exit_code == 2, r.output  # an input error, never a traceback or a decision


def test_scan_repo_digest_with_a_trailing_newline_is_refused() -> None:
    from cortex_trust.evidence import parse_trivy_report

    doc = json.loads((TRIVY / "alpine-39.json").read_text())
    doc["Metadata"]["RepoDigests"] = [f"127.0.0.1:5000/acme/hello@{NL_DIGEST}"]
    with pytest.raises(EvidenceError):
        parse_trivy_report(json.dumps(doc).encode(), digest=DIGEST)
    with pytest.raises(EvidenceError):
        parse_trivy_report(json.dumps(doc).encode(), digest=NL_DIGEST)


# ------------------------------------------------------------- install_state.select_version


@pytest.mark.parametrize("state", ["Revoked", "REVOKED", "deleted", "", "revoked "])
def test_exact_pin_never_takes_a_version_in_an_unknown_state(state: str) -> None:
    from cortex_trust.install import VersionCandidate, select_version

    with pytest.raises(InputError):
        select_version([VersionCandidate("1.0.0", state, DIGEST)], "1.0.0")


def test_exact_pin_still_takes_active_and_yanked() -> None:
    from cortex_trust.install import VersionCandidate, select_version

    for state in ("active", "yanked"):
        assert select_version([VersionCandidate("1.0.0", state, DIGEST)], "1.0.0").state == state


def test_bad_range_with_no_active_version_is_an_input_error() -> None:
    from cortex_trust.install import VersionCandidate, select_version

    with pytest.raises(InputError):
        select_version([VersionCandidate("1.0.0", "yanked", DIGEST)], ">>1")


def test_corrupt_install_record_is_an_input_error(tmp_path: Path) -> None:
    from cortex_trust.install import InstallStore

    (tmp_path / "installed.json").write_text(json.dumps(
        {"schema": "cortex.installed/v1", "plugins": {"acme/x": {"name": "acme/x"}}}))
    store = InstallStore(tmp_path)
    with pytest.raises(InputError):
        store.get("acme/x")
    with pytest.raises(InputError):
        store.all()


# ------------------------------------------------------------ files that are not files


def _finishes(fn: Any, timeout: float = 5.0) -> BaseException | None:
    """Run ``fn`` in a thread; return what it raised. Fails if it does not finish in time."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # handed back to the test
            outcome.append(e)
        else:
            outcome.append(None)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert outcome, "blocked (reading a FIFO without a writer)"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_trusted_root_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    from cortex_trust.evidence import load_trust_root

    fifo = tmp_path / "root.json"
    os.mkfifo(fifo)
    raised = _finishes(lambda: load_trust_root(fifo))
    assert isinstance(raised, InputError)


def test_trusted_root_that_is_a_device_is_refused() -> None:
    from cortex_trust.evidence import load_trust_root

    with pytest.raises(InputError):
        load_trust_root("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_config_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    from cortex_trust.install import load_config

    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    raised = _finishes(lambda: load_config(fifo))
    assert isinstance(raised, InputError)


def test_config_that_is_a_device_is_refused() -> None:
    from cortex_trust.install import load_config

    raised = _finishes(lambda: load_config(Path("/dev/zero")))
    assert isinstance(raised, InputError)


# ----------------------------------------------------------------------- configuration


@pytest.mark.parametrize("url", [
    "https://registry\x1b[2J.example",
    "https://registry.example/\x1b]0;x\x07",
    "https://registry.example/a\x00b",
    "https://registry.example/\u202egnp",
])
def test_registry_urls_with_control_characters_are_refused(url: str) -> None:
    from pydantic import ValidationError

    from cortex_trust.install import RegistryEntry

    with pytest.raises(ValidationError):
        RegistryEntry(name="acme", url=url)


def test_config_set_never_echoes_credentials_in_a_url(tmp_path: Path) -> None:
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}
    r = runner.invoke(app, ["config", "set", "registry", "https://bob:s3cr3t-t0ken@registry.example"],
                      env=env)
    assert r.exit_code == 2
    assert "s3cr3t-t0ken" not in r.output
    assert "s3cr3t-t0ken" not in (tmp_path / "config.json").read_text() if (
        tmp_path / "config.json").exists() else True


def test_config_file_errors_never_echo_credentials(tmp_path: Path) -> None:
    from cortex_trust.install import load_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"registry": "https://bob:s3cr3t-t0ken@registry.example"}))
    with pytest.raises(InputError) as exc:
        load_config(path)
    assert "s3cr3t-t0ken" not in str(exc.value)


# ------------------------------------------------------------------ review and usage


@pytest.mark.parametrize("reviewer", ["core/alice\n::error::x", "core/\x1b[31malice", "a\u2028b",
                                      "core/alice\u202e"])
def test_reviewer_ids_with_control_characters_are_refused(reviewer: str) -> None:
    from cortex_trust.evidence import parse_review

    doc = json.loads((REVIEW / "review-approved.json").read_text())
    doc["reviewer"] = reviewer
    with pytest.raises(EvidenceError):
        parse_review(json.dumps(doc).encode(), digest=DIGEST, plugin="acme/hello",
                     version="0.1.0")


def test_every_library_error_here_is_a_cortex_error() -> None:
    # The regression tests above rely on these being CortexTrustErrors (exit 2, not a crash).
    assert issubclass(EvidenceError, InputError) and issubclass(InputError, CortexTrustError)


# ------------------------------------------------------------------------- Sigstore roots


def test_a_custom_root_cannot_pose_as_the_production_root(tmp_path: Path) -> None:
    from cortex_trust.evidence import PRODUCTION_ROOT_NAME, load_trust_root

    posing = tmp_path / f"{PRODUCTION_ROOT_NAME}.json"
    posing.write_bytes((SIGSTORE / "trusted_roots" / "staging.json").read_bytes())
    with pytest.raises(InputError, match="not the pinned Sigstore production root"):
        load_trust_root(posing)
    with pytest.raises(InputError):
        load_trust_root(SIGSTORE / "trusted_roots" / "staging.json", name=PRODUCTION_ROOT_NAME)
    # The real production root under that name is still the production root.
    real = tmp_path / "prod" / f"{PRODUCTION_ROOT_NAME}.json"
    real.parent.mkdir()
    real.write_bytes((Path(__file__).parent.parent / "cortex_trust" / "_roots" /
                      "production.json").read_bytes())
    assert load_trust_root(real).name == PRODUCTION_ROOT_NAME



# ------------------------------------------------------------------------ JUnit and usage


@pytest.mark.parametrize("value", ["1_000", "+3", "\uff11\uff12", "99999999999999999999999",
                                   str(2**53), "1e3", "0x10"])
def test_junit_counts_are_plain_bounded_numbers(value: str) -> None:
    from cortex_trust.evidence import parse_junit

    with pytest.raises(EvidenceError, match="whole number"):
        parse_junit(f'<testsuite tests="{value}"><testcase/></testsuite>'.encode())


def test_junit_plain_counts_still_read() -> None:
    from cortex_trust.evidence import parse_junit

    ev = parse_junit(b'<testsuite tests=" 3 " failures=" 2 "><testcase/></testsuite>')
    assert (ev.total, ev.failures) == (2, 2)


@pytest.mark.parametrize("installations", [2**53, 10**30, True, -1, 1.5])
def test_usage_installations_must_be_a_plausible_count(installations: Any) -> None:
    from datetime import UTC, datetime

    from cortex_trust.evidence import parse_usage

    doc = json.loads((REVIEW / "usage-60days.json").read_text())
    doc["installations"] = installations
    with pytest.raises(EvidenceError):
        parse_usage(json.dumps(doc).encode(), digest=DIGEST, plugin="acme/hello",
                    version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))


# ------------------------------------------------------------------------------- time


EDGE_TIMES = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"]


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_times_outside_the_utc_range_are_evidence_errors(when: str) -> None:
    from datetime import UTC, datetime

    from cortex_trust.evidence import parse_review, parse_trivy_report, parse_usage

    usage = json.loads((REVIEW / "usage-60days.json").read_text())
    usage["first_production_use"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                    version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    review = json.loads((REVIEW / "review-approved.json").read_text())
    review["reviewed_at"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_review(json.dumps(review).encode(), digest=DIGEST, plugin="acme/hello",
                     version="0.1.0")
    report = json.loads((TRIVY / "alpine-39.json").read_text())
    report["CreatedAt"] = when
    with pytest.raises(EvidenceError, match="out of range"):
        parse_trivy_report(json.dumps(report).encode(), digest=DIGEST)


@pytest.mark.parametrize("when", EDGE_TIMES)
def test_verify_now_outside_the_utc_range_is_a_usage_error(when: str) -> None:
    r = runner.invoke(app, ["plugin", "verify", str(MANIFEST), "--image", IMAGE, "--now", when,
                            "--no-default-policies", "--policy-dir", str(TEST_POLICY)])
    assert r.exit_code == 2, r.output
    assert "out of range" in r.stderr


def test_first_use_in_the_future_never_adds_days() -> None:
    from datetime import UTC, datetime

    from cortex_trust.evidence import parse_usage

    usage = json.loads((REVIEW / "usage-60days.json").read_text())
    usage["first_production_use"] = "2027-01-01T00:00:00Z"
    ev, _ = parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                        version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    assert ev.days_in_production == 0
    # 59 days, 23 hours and 59.5 seconds is 59 whole days, never rounded up to 60.
    usage["first_production_use"] = "2026-09-01T00:00:00.5Z"
    ev, _ = parse_usage(json.dumps(usage).encode(), digest=DIGEST, plugin="acme/hello",
                        version="0.1.0", now=datetime(2026, 10, 31, tzinfo=UTC))
    assert ev.days_in_production == 59


# ----------------------------------------------------------------------------- Trivy


@pytest.mark.parametrize("ref", [f"--ignorefile=/tmp/x@{DIGEST}", f"-q@{DIGEST}"])
def test_run_trivy_refuses_an_image_that_looks_like_an_option(ref: str) -> None:
    from cortex_trust.evidence import run_trivy

    with pytest.raises(EvidenceError, match="not an image reference"):
        run_trivy(ref, digest=DIGEST, timeout=5)


def test_paths_with_a_nul_character_are_input_errors() -> None:
    from cortex_trust._io import read_evidence_file
    from cortex_trust.evidence import load_trust_root

    with pytest.raises(EvidenceError):
        read_evidence_file("report\x00.json", what="Trivy report")
    with pytest.raises(InputError):
        load_trust_root("root\x00.json")


# ------------------------------------------------------------ files holding tokens and state


def test_save_config_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    from cortex_trust.install import CortexConfig, RegistryEntry, load_config, save_config

    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    path = tmp_path / "config.json"
    (tmp_path / "config.json.tmp").symlink_to(victim)
    config = CortexConfig(registries=(RegistryEntry(name="acme", url="https://r.acme.example",
                                                    scopes=("acme/*",), token="s3cr3t-t0ken"),))
    save_config(path, config)
    assert victim.read_text() == "untouched\n"
    assert not path.is_symlink() and load_config(path) == config
    assert (path.stat().st_mode & 0o777) == 0o600


def test_install_store_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    from cortex_trust.install import InstallStore

    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (tmp_path / f"installed.json.{os.getpid()}.tmp").symlink_to(victim)
    store = InstallStore(tmp_path)
    assert store.remove("nothing") is False
    store._write({})
    assert victim.read_text() == "untouched\n"
    assert store.all() == []


@pytest.mark.parametrize("image", [
    "127.0.0.1:5000/acme/hello@" + DIGEST.upper(),
    "127.0.0.1:5000/acme/hello@SHA256:" + DIGEST[7:],
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:].upper(),
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:] + " ",
    "127.0.0.1:5000/acme/hello@sha256:" + DIGEST[7:-1] + "\uff46",  # fullwidth f
    "127.0.0.1:5000/acme/hello@sha512:" + "a" * 128,
])
def test_digest_look_alikes_are_never_a_pin(image: str) -> None:
    from cortex_trust.policy import image_digest

    with pytest.raises(InputError):
        image_digest(image)


def test_namespace_with_a_trailing_newline_is_refused() -> None:
    from datetime import UTC, datetime

    from cortex_trust.manifest import load_manifest
    from cortex_trust.policy import build_input

    with pytest.raises(InputError):
        build_input(manifest=load_manifest(MANIFEST), image=IMAGE, digest=None,
                    operation="verify", now=datetime(2026, 10, 31, tzinfo=UTC),
                    cortex_version="0", namespace="acme\n")


# ------------------------------------------------- signers are bound to their trust root (policy)


# Fixed in the policies: trusted_signers entries accept only the roots in signer_trusted_roots
# (default: the public-good root) unless they name their own (policies/cortex/sources.rego).
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


# ------------------------------------------------------------------------------ GitHub


@pytest.mark.parametrize("headers", [
    [(b"retry-after", b"\xb2")],
    [(b"x-ratelimit-remaining", b"0"), (b"x-ratelimit-reset", b"\xb9\xb2"),
     (b"date", b"Wed, 25 Nov 2026 22:00:00 GMT")],
])
def test_github_rate_limit_headers_that_are_not_numbers(headers: list[tuple[bytes, bytes]]) -> None:
    import httpx

    from cortex_trust.sources import GitHubClient, GitHubRateLimited

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429 if headers[0][0] == b"retry-after" else 403,
                              headers=headers, json={})

    with GitHubClient("https://api.github.com", transport=httpx.MockTransport(handler)) as gh:
        with pytest.raises(GitHubRateLimited) as exc:
            list(gh.search_plugins())
    assert exc.value.retry_after is None


def test_github_links_to_other_origins_or_with_credentials_are_refused() -> None:
    import httpx

    from cortex_trust.errors import RegistryUnavailable
    from cortex_trust.sources import GitHubClient

    seen: list[str] = []
    nexts = iter(["https://token@api.github.com/search/repositories?page=2",
                  "http://api.github.com/search/repositories?page=2"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"items": []},
                              headers={"link": f'<{next(nexts)}>; rel="next"'})

    for _ in range(2):
        with GitHubClient("https://api.github.com", token="ghp_secret",
                          transport=httpx.MockTransport(handler)) as gh:
            with pytest.raises(RegistryUnavailable, match="another origin"):
                list(gh.search_plugins())
    assert all(u.startswith("https://api.github.com/search/repositories?") for u in seen)


# ----------------------------------------------------- trailing newlines in the later modules


@pytest.mark.parametrize("text", ["acme/tool\n", "acme/tool@1.0.0\n", "acme\n/tool"])
def test_install_requests_with_a_newline_are_refused(text: str) -> None:
    from cortex_trust.install import parse_request

    with pytest.raises(InputError):
        parse_request(text)


@pytest.mark.parametrize("ref", ["127.0.0.1:5000/acme/hello@sha256:" + "a" * 64 + "\n",
                                 "127.0.0.1:5000/acme/hello:1.0\n@sha256:" + "a" * 64])
def test_oci_pinned_refs_with_a_newline_are_refused(ref: str) -> None:
    from cortex_trust.ids import parse_image_ref

    with pytest.raises(InputError):
        parse_image_ref(ref, require_host=True, require_digest=True)


def test_junit_declared_totals_without_test_cases_prove_nothing() -> None:
    from cortex_trust.evidence import parse_junit

    ev = parse_junit(b'<testsuite name="s" tests="500" failures="0" errors="0"/>')
    assert (ev.present, ev.total) == (True, 0)
    worse = parse_junit(b'<testsuite tests="1" failures="3"><testcase name="a"/></testsuite>')
    assert (worse.total, worse.failures) == (3, 3)
