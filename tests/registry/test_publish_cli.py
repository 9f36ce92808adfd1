"""Publishing through the CLI to a real ``cortex registry serve``: the README's paths to Community,
refused bundles, the configured registry, and what write commands print.

The server is a real process (tests/support/served_registry.py); the CLI runs in this process
(its root group renders errors with their exit codes, as the console script does), with its own
configuration file. The registry's own scan runs the real scan job (in `serve`'s in-process runner) and
:func:`cortex_trust.evidence.run_trivy` on a stand-in ``trivy`` executable given with
``--trivy`` (these machines have no vulnerability database; the stand-in writes the clean JSON
report Trivy writes for a clean image, and nothing is fetched).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry._helpers import NO_PROMOTION
from tests.registry.test_scan_origin import _attestation
from tests.support.federation import fake_digest, manifest_text
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

JUNIT = Path(__file__).parent.parent / "fixtures" / "junit" / "pytest-pass.xml"
SIGNER = "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1"
ATTESTER = "https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main"
GHA = "https://token.actions.githubusercontent.com"
#: Nothing listens on port 9 (discard) on loopback: no image is ever fetched.
OCI_HOST = "127.0.0.1:9"

#: The start of a stub trivy: reads the report path (--output) and the image (after --).
STUB_TRIVY_ARGS = """#!/bin/sh
out=""; image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output) out="$2"; shift 2 ;;
    --) image="$2"; shift 2 ;;
    *) shift ;;
  esac
done
"""
#: Stands in for trivy: writes the report Trivy writes for a clean image (no Vulnerabilities or
#: Secrets keys: Trivy omits empty lists) to --output, naming the image it was given after --.
STUB_TRIVY = STUB_TRIVY_ARGS + """printf '{"SchemaVersion": 2, "ArtifactName": "%s", "ArtifactType": "container_image",
 "Metadata": {"RepoDigests": ["%s"]}, "Results": [{"Target": "%s", "Class": "os-pkgs",
 "Type": "alpine"}]}' "$image" "$image" "$image" > "$out"
"""


def clean_trivy_report(image: str) -> str:
    """A clean image's report as Trivy writes it now: it cannot show which scanners ran."""
    return json.dumps({"SchemaVersion": 2, "CreatedAt": datetime.now(UTC).isoformat(),
                       "ArtifactName": image, "ArtifactType": "container_image",
                       "Metadata": {"RepoDigests": [image]},
                       "Results": [{"Target": image, "Class": "os-pkgs", "Type": "alpine"}]})


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """The ``cortex`` CLI with a configuration file of its own, and the files a publisher has."""

    run_: Any
    work: Path
    sigstore: PrivateSigstore

    def __call__(self, *args: str, token: str | None = None) -> Run:
        return self.run_(*args, token=token)  # type: ignore[no-any-return]

    def token(self, served: ServedRegistry, namespace: str, role: str, **kw: str) -> str:
        extra = [x for k, v in kw.items() for x in (f"--{k}", v)]
        r = self("registry", "token", "create", "--namespace", namespace, "--role", role,
                 "--expires", "1d", "--db", served.db, *extra)
        assert r.code == 0, r.err
        return r.out.strip()

    def files(self, version: str, *, bundle_digest: str | None = None) -> dict[str, str]:
        """manifest, image, bundle, tests, a clean report and a signed scan attestation for
        acme/tool@``version`` (the bundle signs ``bundle_digest`` when given)."""
        digest = fake_digest("publish-cli", version)
        image = f"{OCI_HOST}/acme/tool@{digest}"
        d = self.work / version
        d.mkdir(exist_ok=True)
        contents = {
            "manifest": manifest_text("tool", version, network=True),
            "bundle": self.sigstore.sign_digest(bundle_digest or digest, identity=SIGNER,
                                                issuer=GHA).decode(),
            "scan": clean_trivy_report(image),
            "attestation": _attestation(self.sigstore, ATTESTER)(image, digest),
        }
        paths = {"image": image, "digest": digest, "tests": str(JUNIT)}
        for name, text in contents.items():
            (d / name).write_text(text)
            paths[name] = str(d / name)
        return paths


@pytest.fixture
def cli(tmp_path: Path, private_sigstore: PrivateSigstore) -> Cli:
    from typer.testing import CliRunner

    from cli.main import app

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    env = {"CORTEX_CONFIG": str(home / "config.json"), "CORTEX_DATA_DIR": str(home / "data")}

    def run(*args: str, token: str | None) -> Run:
        # The root group renders library errors with their exit codes, as the console script.
        result = CliRunner().invoke(app, list(args), env={**env, "CORTEX_REGISTRY_TOKEN": token})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    work = tmp_path / "work"
    work.mkdir()
    return Cli(run, work, private_sigstore)


@pytest.fixture(scope="module")
def scanning(tmp_path_factory: pytest.TempPathFactory,
             private_sigstore: PrivateSigstore) -> Iterator[ServedRegistry]:
    """A registry as the README's "Running a registry" starts it: default policies, scanning
    every publish with a vulnerability database (``--trivy-db``); the promotion requirement is
    off (these tests are about the scan; governance: test_governance_cli.py)."""
    tmp = tmp_path_factory.mktemp("scanning")
    trivy = tmp / "trivy"
    trivy.write_text(STUB_TRIVY)
    trivy.chmod(0o755)
    db = tmp / "trivy-cache"
    (db / "db").mkdir(parents=True)
    (db / "db" / "trivy.db").write_bytes(b"")
    with serve_registry(tmp, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--trivy", str(trivy),
                        "--trivy-db", str(db), "--data", str(NO_PROMOTION)) as served:
        yield served


@pytest.fixture(scope="module")
def organization(tmp_path_factory: pytest.TempPathFactory,
                 private_sigstore: PrivateSigstore) -> Iterator[ServedRegistry]:
    """An organization's registry that does not scan itself: it trusts its scanning workflow's
    attestations and its publishers' own reports (``scan.accepted_origins``), as the README
    shows."""
    tmp = tmp_path_factory.mktemp("organization")
    data = tmp / "org.yaml"
    data.write_text(json.dumps({"cortex_config": {
        "trusted_scan_attesters": {"acme-scanner": {
            "plugins": ["acme/*"], "issuer": GHA, "identity": ATTESTER,
            "trusted_roots": [private_sigstore.trusted_root_path.stem]}},
        "scan": {"accepted_origins": {"publish": ["registry", "attested", "self-reported"]}}}}))
    with serve_registry(tmp, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--no-scan", "--data", str(NO_PROMOTION),
                        "--data", str(data)) as served:
        yield served


def _version(served: ServedRegistry, version: str) -> dict[str, Any]:
    r = httpx.get(f"{served.url}/api/v1/plugins/acme/tool/versions/{version}", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def _publish(cli: Cli, f: dict[str, str], *extra: str, token: str) -> Run:
    return cli("plugin", "publish", f["manifest"], "--image", f["image"], "--bundle", f["bundle"],
               *extra, token=token)


# --- the README's paths to Community -------------------------------------------------------------


def test_the_registrys_own_scan_and_tests_reach_community(scanning: ServedRegistry, cli: Cli) -> None:
    """README "Running a registry": serve with ``--trivy-db``, ``cortex config set registry``,
    ``cortex plugin publish ... --tests junit.xml``; the registry's scan lifts it to Community."""
    assert cli("config", "set", "registry", scanning.url).code == 0
    token = cli.token(scanning, "acme", "publisher")
    f = cli.files("1.0.0")
    r = _publish(cli, f, "--tests", f["tests"], token=token)
    assert r.code == 0, r.err
    assert r.out == (f"published acme/tool@1.0.0 ({f['digest'][:19]}…): tier experimental, "
                     "action warn; to reach community: SCAN_MISSING\n")
    deadline = time.monotonic() + 60
    while (doc := _version(scanning, "1.0.0"))["tier"] != "community":
        assert time.monotonic() < deadline, (doc["decision"]["reasons"], scanning.log.read_text())
        time.sleep(0.3)
    scan = doc["evidence"]["scan"]
    assert (scan["origin"], scan["produced_by"]) == ("registry", "trivy")
    assert scan["scanners"] == ["vuln", "secret", "misconfig"]
    assert doc["decision"]["sandbox"]["network"] is True


def test_an_uploaded_report_counts_only_where_the_registry_accepts_self_reported_scans(
        scanning: ServedRegistry, organization: ServedRegistry, cli: Cli) -> None:
    """``--scan-scanners`` says which scanners made an uploaded report; its origin stays
    ``self-reported``: the default policy still wants the registry's scan (``SCAN_SELF_REPORTED``,
    no longer ``SCAN_INCOMPLETE``), a registry whose data accepts ``self-reported`` gives
    Community at once."""
    f = cli.files("2.0.0")
    scan = ["--scan", f["scan"], "--tests", f["tests"]]
    default = cli.token(scanning, "acme", "publisher")
    r = _publish(cli, f, *scan, "--registry", scanning.url, "--format", "json", token=default)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["tier"] == "experimental" and "SCAN_INCOMPLETE" in _codes(doc)  # the old trap
    g = cli.files("2.1.0")
    r = _publish(cli, g, "--scan", g["scan"], "--scan-scanners", "vuln,secret", "--tests",
                 g["tests"], "--registry", scanning.url, "--format", "json", token=default)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert (doc["evidence"]["scan"]["origin"], doc["evidence"]["scan"]["scanners"]) == (
        "self-reported", ["vuln", "secret"])
    assert doc["tier"] == "experimental" and "SCAN_SELF_REPORTED" in _codes(doc)
    assert "SCAN_INCOMPLETE" not in _codes(doc)

    org = cli.token(organization, "acme", "publisher")
    r = _publish(cli, g, "--scan", g["scan"], "--scan-scanners", "vuln,secret", "--tests",
                 g["tests"], "--registry", organization.url, token=org)
    assert r.code == 0, r.err
    assert r.out == (f"published acme/tool@2.1.0 ({g['digest'][:19]}…): tier community, action "
                     "notice; to reach verified: REVIEW_MISSING, SIGNER_UNTRUSTED, USAGE_MISSING\n")
    assert _version(organization, "2.1.0")["evidence"]["scan"]["origin"] == "self-reported"

    # Bad declarations are refused before anything is sent.
    r = _publish(cli, f, "--scan-scanners", "vuln", "--registry", organization.url, token=org)
    assert r.code == 2 and "--scan-scanners describes a --scan report" in r.err
    r = _publish(cli, f, *scan, "--scan-scanners", "vuln,secrets", "--registry", organization.url,
                 token=org)
    assert r.code == 2 and "unknown scanner secrets" in r.err and "fix:" in r.err
    assert httpx.get(f"{organization.url}/api/v1/plugins/acme/tool/versions/2.0.0").status_code == 404


def test_a_trusted_scan_attestation_and_tests_reach_community_at_publish(
        organization: ServedRegistry, cli: Cli) -> None:
    """README: a signed scan attestation from an attester in ``trusted_scan_attesters``."""
    token = cli.token(organization, "acme", "publisher")
    f = cli.files("3.0.0")
    r = _publish(cli, f, "--scan-attestation", f["attestation"], "--tests", f["tests"],
                 "--registry", organization.url, token=token)
    assert r.code == 0, r.err
    assert r.out.startswith(f"published acme/tool@3.0.0 ({f['digest'][:19]}…): tier community, "
                            "action notice; to reach verified: ")
    scan = _version(organization, "3.0.0")["evidence"]["scan"]
    assert scan["origin"] == "attested" and scan["attester"]["identity"] == ATTESTER


# --- a bundle about another image ------------------------------------------------------------------


def test_the_cli_shows_a_bundle_signing_another_digest_refused(organization: ServedRegistry,
                                                               cli: Cli) -> None:
    token = cli.token(organization, "acme", "publisher")
    other = fake_digest("another", "image")
    f = cli.files("4.0.0", bundle_digest=other)
    r = _publish(cli, f, "--registry", organization.url, token=token)
    assert r.code == 2 and r.out == ""
    lines = r.err.splitlines()
    assert lines[0] == f"error: the bundle signs {other}, not the published image {f['digest']}"
    assert lines[1].startswith("  fix: sign the image you publish") and f"@{f['digest']}" in lines[1]
    assert httpx.get(f"{organization.url}/api/v1/plugins/acme/tool/versions/4.0.0").status_code == 404


# --- the configured registry, one line or the document -------------------------------------------


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_write_commands_use_the_configured_registry(organization: ServedRegistry, cli: Cli) -> None:
    """``cortex config set registry URL`` is where publish, review, yank, unyank and revoke go
    (as install and search); ``--registry`` overrides it; a scoped registry serves its
    namespaces."""
    url = organization.url
    publisher = cli.token(organization, "acme", "publisher")
    reviewer = cli.token(organization, "cortex-core", "reviewer", holder="ada")
    admin = cli.token(organization, "cortex", "admin")
    assert cli("config", "set", "registry", url).code == 0
    f = cli.files("5.0.0")
    r = _publish(cli, f, "--tests", f["tests"], token=publisher)
    assert r.code == 0, r.err
    short = f["digest"][:19] + "…"  # text output shortens digests
    assert r.out.startswith(f"published acme/tool@5.0.0 ({short}): tier experimental")

    ref = "acme/tool@5.0.0"
    r = cli("plugin", "review", "approve", ref, "--note", "read it", token=reviewer)
    assert r.code == 0, r.err
    assert r.out.startswith(f"approved {ref} ({short}): tier experimental") and r.out.count("\n") == 1
    r = cli("plugin", "yank", ref, "--reason", "breaks config", token=publisher)
    assert (r.code, r.err) == (0, "")
    assert r.out.startswith(f"yanked {ref} ({short}): installers skip it unless pinned exactly")
    r = cli("plugin", "unyank", ref, "--format", "json", token=publisher)
    assert r.code == 0 and json.loads(r.out)["state"] == "active"
    # --registry overrides the configuration: nothing listens there.
    dead = _dead_url()
    r = cli("plugin", "review", "withdraw", ref, "--registry", dead, token=reviewer)
    assert r.code == 3 and f"cannot reach the registry {dead}" in r.err
    r = cli("plugin", "review", "withdraw", ref, token=reviewer)
    assert r.code == 0 and r.out.startswith(f"withdrew your review of {ref} ({short}): ")

    # The default registry moves away; acme's namespace is served by a scoped registry.
    assert cli("config", "set", "registry", dead).code == 0
    assert cli("config", "registries", "add", "acme", url, "--scope", "acme/*").code == 0
    g = cli.files("5.1.0")
    r = _publish(cli, g, token=publisher)  # whose namespace? only the registry knows
    assert r.code == 2 and "--namespace" in r.err and "acme/* -> acme" in r.err, r.err
    r = _publish(cli, g, "--namespace", "acme", token=publisher)
    assert r.code == 0 and r.out.startswith("published acme/tool@5.1.0"), r.err
    r = cli("plugin", "revoke", "acme/tool@5.1.0", "--reason", "key leaked", token=publisher)
    assert r.code == 0 and r.out.startswith("revoked acme/tool@5.1.0 (") and r.out.endswith("action block\n")
    # An image revoked everywhere has no name: the default registry (unreachable here).
    r = cli("plugin", "revoke", "--digest", f["digest"], "--reason", "malware", token=admin)
    assert r.code == 3 and f"cannot reach the registry {dead}" in r.err
    r = cli("plugin", "revoke", "--digest", f["digest"], "--reason", "malware", "--registry", url,
            token=admin)
    assert r.code == 0 and r.out == f"revoked {short} everywhere: 1 version: acme/tool@5.0.0\n"
    r = cli("plugin", "revoke", "--digest", f["digest"], "--reason", "malware", "--registry", url,
            "--format", "json", token=admin)
    assert r.code == 0 and json.loads(r.out) == {"revoked": []}
    r = cli("plugin", "yank", ref, "--reason", "x", "--format", "yaml", token=publisher)
    assert r.code == 2 and "--format 'yaml' is not text or json" in r.err
