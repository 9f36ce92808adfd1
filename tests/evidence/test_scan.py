"""Trivy scan evidence: real reports (tests/fixtures/trivy), binding, hostile files, real Trivy."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_trust.errors import CollectorError, EvidenceError
from cortex_trust.evidence import MAX_REPORT_BYTES, find_trivy, parse_trivy_report, read_trivy_report, run_trivy

FIXTURES = Path(__file__).parent.parent / "fixtures" / "trivy"
DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
# The sha256 of tests/fixtures/sigstore/artifacts/a.txt (what the signed fixtures are about).
A_TXT_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
NL_DIGEST = A_TXT_DIGEST + "\n"

# From tests/fixtures/trivy/README.md (counts per entry).
TABLE = {
    "alpine-39.json": ({"CRITICAL": 2, "MEDIUM": 4}, 0, 0, ["vuln"]),
    "debian-buster.json": ({"CRITICAL": 1, "LOW": 1}, 0, 0, ["vuln"]),
    "alpine-distroless.json": ({"MEDIUM": 1}, 0, 0, ["vuln"]),
    "pip.json": ({"HIGH": 1, "MEDIUM": 1}, 0, 0, ["vuln"]),
    "npm.json": ({"MEDIUM": 1}, 0, 0, ["vuln"]),
    "secrets.json": ({}, 2, 0, ["secret"]),
    "dockerfile.json": ({}, 0, 1, ["misconfig"]),
}


def _load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def _write(tmp_path: Path, doc: Any, name: str = "report.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("name", sorted(TABLE))
def test_real_reports_counts(name: str) -> None:
    counts, secrets, misconfigs, scanners = TABLE[name]
    report = read_trivy_report(FIXTURES / name, digest=DIGEST)
    ev = report.evidence
    assert ev.present and ev.produced_by == "report"
    assert {k: v for k, v in ev.counts.items() if v} == counts
    assert set(ev.counts) == {"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert sum(counts.values()) == len(ev.vulnerabilities)
    assert ev.secrets == secrets and ev.misconfigurations == misconfigs
    assert ev.scanners == scanners
    # None of the real reports names a digest: present but not bound, nothing dropped.
    assert not ev.bound and ev.digest is None and report.dropped == ()
    assert ev.created_at == "2021-08-25T12:20:30Z" and ev.trivy_version == "dev"
    assert ev.source == str(FIXTURES / name)


def test_vulnerability_details() -> None:
    ev = read_trivy_report(FIXTURES / "alpine-39.json", digest=DIGEST).evidence
    first = ev.vulnerabilities[0]
    assert (first.id, first.severity, first.package, first.installed_version,
            first.fixed_version) == ("CVE-2019-1549", "MEDIUM", "libcrypto1.1", "1.1.1b-r1",
                                     "1.1.1d-r0")
    assert {v.id for v in ev.vulnerabilities if v.severity == "CRITICAL"}


def test_image_metadata_kept_for_messages() -> None:
    report = read_trivy_report(FIXTURES / "alpine-39.json", digest=DIGEST)
    assert report.artifact_type == "container_image"
    assert report.image_id and report.image_id.startswith("sha256:")
    evidence, dropped = report  # unpacks as (evidence, dropped)
    assert evidence is report.evidence and dropped == []


def test_bound_when_repo_digest_matches(tmp_path: Path) -> None:
    doc = _load("alpine-distroless.json")
    doc["Metadata"]["RepoDigests"] = [f"registry.example/acme/x@{OTHER}",
                                      f"registry.example/acme/x@{DIGEST}"]
    ev = read_trivy_report(_write(tmp_path, doc), digest=DIGEST).evidence
    assert ev.present and ev.bound and ev.digest == DIGEST


def test_report_for_another_digest_is_dropped(tmp_path: Path) -> None:
    doc = _load("alpine-39.json")
    doc["Metadata"]["RepoDigests"] = [f"registry.example/acme/x@{OTHER}"]
    report = read_trivy_report(_write(tmp_path, doc), digest=DIGEST)
    assert not report.evidence.present and not report.evidence.bound
    assert report.evidence.counts == {} and report.evidence.vulnerabilities == []
    [d] = report.dropped
    assert (d.kind, d.code) == ("scan", "DIGEST_MISMATCH")
    assert OTHER in d.message and DIGEST in d.message


@pytest.mark.parametrize("version", [1, 3, "2", True, None, 2.5])
def test_other_schema_versions_rejected(tmp_path: Path, version: Any) -> None:
    doc = _load("npm.json")
    doc["SchemaVersion"] = version
    with pytest.raises(EvidenceError, match="SchemaVersion"):
        read_trivy_report(_write(tmp_path, doc), digest=DIGEST)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["Results"][0]["Vulnerabilities"][0].update(Severity="SEVERE"), "Severity"),
    (lambda d: d["Results"][0]["Vulnerabilities"][0].pop("VulnerabilityID"), "VulnerabilityID"),
    (lambda d: d["Results"][0].update(Vulnerabilities={"a": 1}), "must be a list"),
    (lambda d: d.update(Results="nope"), "must be a list"),
    (lambda d: d.update(Metadata={"RepoDigests": ["no-digest-here"]}), "RepoDigests"),
    (lambda d: d.update(Metadata={"RepoDigests": ["x@sha256:ABC"]}), "RepoDigests"),
    (lambda d: d.update(CreatedAt="yesterday"), "CreatedAt"),
    (lambda d: d.update(CreatedAt="2021-08-25T12:20:30"), "time zone"),
])
def test_malformed_reports_rejected(tmp_path: Path, mutate: Any, match: str) -> None:
    doc = _load("npm.json")
    mutate(doc)
    with pytest.raises(EvidenceError, match=match):
        read_trivy_report(_write(tmp_path, doc), digest=DIGEST)


def test_misconfig_successes_and_exceptions_not_counted(tmp_path: Path) -> None:
    doc = _load("dockerfile.json")
    failure = doc["Results"][0]["Misconfigurations"][0]
    doc["Results"][0]["Misconfigurations"] += [dict(failure, Status="PASS"),
                                               dict(failure, Status="EXCEPTION")]
    ev = read_trivy_report(_write(tmp_path, doc), digest=DIGEST).evidence
    assert ev.misconfigurations == 1 and ev.scanners == ["misconfig"]


def test_package_listing_alone_does_not_claim_a_vuln_scan(tmp_path: Path) -> None:
    # What Trivy 0.76 writes for `--scanners secret` (checked on this machine): a lang-pkgs
    # result listing packages, no Vulnerabilities key. That is not a vulnerability scan.
    doc = {"SchemaVersion": 2, "ArtifactName": "src", "ArtifactType": "filesystem",
           "Results": [{"Target": "requirements.txt", "Class": "lang-pkgs", "Type": "pip",
                        "Packages": [{"Name": "requests", "Version": "2.0.0"}]}]}
    ev = read_trivy_report(_write(tmp_path, doc), digest=DIGEST).evidence
    assert ev.present and ev.scanners == [] and sum(ev.counts.values()) == 0


def test_empty_results_prove_nothing(tmp_path: Path) -> None:
    ev = read_trivy_report(_write(tmp_path, {"SchemaVersion": 2}), digest=DIGEST).evidence
    assert ev.present and ev.scanners == [] and not ev.bound


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"not json", "not JSON"),
    (b"[1, 2]", "must be an object"),
    (b"\xff\xfe\x00garbage", "UTF-8|not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested|JSON"),
])
def test_garbage_files(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "r.json"
    p.write_bytes(content)
    with pytest.raises(EvidenceError, match=match):
        read_trivy_report(p, digest=DIGEST)


def test_missing_file_directory_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such file"):
        read_trivy_report(tmp_path / "absent.json", digest=DIGEST)
    with pytest.raises(EvidenceError, match="directory"):
        read_trivy_report(tmp_path, digest=DIGEST)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(EvidenceError, match="not a regular file"):
        read_trivy_report(fifo, digest=DIGEST)


def test_huge_file_refused_without_reading(tmp_path: Path) -> None:
    p = tmp_path / "huge.json"
    with p.open("wb") as f:  # sparse: costs no disk and no time
        f.truncate(MAX_REPORT_BYTES + 1)
    started = time.perf_counter()
    with pytest.raises(EvidenceError, match="too large"):
        read_trivy_report(p, digest=DIGEST)
    assert time.perf_counter() - started < 1


@pytest.mark.security_review
def test_scan_repo_digest_with_a_trailing_newline_is_refused() -> None:
    from cortex_trust.evidence import parse_trivy_report

    doc = json.loads((FIXTURES / "alpine-39.json").read_text())
    doc["Metadata"]["RepoDigests"] = [f"127.0.0.1:5000/acme/hello@{NL_DIGEST}"]
    with pytest.raises(EvidenceError):
        parse_trivy_report(json.dumps(doc).encode(), digest=A_TXT_DIGEST)
    with pytest.raises(EvidenceError):
        parse_trivy_report(json.dumps(doc).encode(), digest=NL_DIGEST)


def test_bad_digest_argument() -> None:
    with pytest.raises(EvidenceError, match="digest"):
        read_trivy_report(FIXTURES / "npm.json", digest="sha256:abc")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20)
_keys = st.sampled_from(["Results", "Metadata", "CreatedAt", "Trivy", "ArtifactName",
                         "Vulnerabilities", "Secrets", "RepoDigests", "Severity"])


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=5),
       st.lists(st.dictionaries(_keys, _json, max_size=4), max_size=3))
def test_hostile_documents_never_crash(top: dict[str, Any], results: list[Any]) -> None:
    doc = dict(top, SchemaVersion=2)
    if results:
        doc["Results"] = results
    try:
        report = parse_trivy_report(doc, digest=DIGEST)
    except EvidenceError:
        return
    # Whatever parsed is never bound without a matching RepoDigest.
    assert not report.evidence.bound


# ------------------------------------------------------------------------ running real Trivy


def test_find_trivy_locates_the_extra() -> None:
    path = find_trivy()
    assert os.access(path, os.X_OK)


def test_find_trivy_explicit_missing(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="not found"):
        find_trivy(tmp_path / "trivy")


def test_run_trivy_rootfs_finds_a_secret(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "app").mkdir(parents=True)
    # A fake AWS key pair in the shape Trivy's built-in rules detect.
    (root / "app" / "deploy.sh").write_text(
        "#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLX\n"
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ\n")
    ev = run_trivy(str(root), digest=DIGEST, target="rootfs", origin="registry")
    assert ev.present and ev.produced_by == "trivy" and ev.origin == "registry"
    assert ev.scanners == ["secret", "misconfig"]  # what was asked of a Trivy that succeeded
    assert ev.secrets >= 1
    assert ev.error is not None and "vulnerability scan not run" in ev.error
    assert not ev.bound and ev.digest is None  # a filesystem has no image digest
    assert ev.trivy_version == "0.76.0"


def test_run_trivy_cannot_be_narrowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings a CI job might carry that would hide the finding, each ignored by run_trivy.
    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "deploy.sh").write_text("export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLX\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "trivy.yaml").write_text("severity: [LOW]\nscan:\n  scanners: [misconfig]\n")
    (work / ".trivyignore").write_text("aws-access-key-id\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("TRIVY_SEVERITY", "LOW")
    monkeypatch.setenv("TRIVY_SKIP_FILES", "**/deploy.sh")
    ev = run_trivy("../rootfs", digest=DIGEST, target="rootfs")
    assert ev.secrets == 1


def test_run_trivy_unreachable_image_is_a_collector_error() -> None:
    # Port 9 (discard) on loopback: nothing listens; Trivy fails fast.
    with pytest.raises(CollectorError, match="Trivy failed"):
        run_trivy(f"127.0.0.1:9/acme/hello@{DIGEST}", digest=DIGEST, timeout=30)


def test_run_trivy_db_dir_without_database(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match=r"trivy\.db"):
        run_trivy(f"127.0.0.1:9/acme/hello@{DIGEST}", digest=DIGEST, db_dir=tmp_path)


def test_run_trivy_with_an_unusable_database_is_a_collector_error(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "trivy.db").write_bytes(b"")
    (tmp_path / "rootfs").mkdir()
    with pytest.raises(CollectorError, match="Trivy failed"):
        run_trivy(str(tmp_path / "rootfs"), digest=DIGEST, db_dir=tmp_path, target="rootfs")


def test_run_trivy_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(CollectorError):
        run_trivy(f"127.0.0.1:9/acme/hello@{DIGEST}", digest=DIGEST,
                  trivy_path=tmp_path / "nope")


@pytest.mark.security_review
@pytest.mark.parametrize("ref", [f"--ignorefile=/tmp/x@{A_TXT_DIGEST}", f"-q@{A_TXT_DIGEST}"])
def test_run_trivy_refuses_an_image_that_looks_like_an_option(ref: str) -> None:
    from cortex_trust.evidence import run_trivy

    with pytest.raises(EvidenceError, match="not an image reference"):
        run_trivy(ref, digest=A_TXT_DIGEST, timeout=5)


@pytest.mark.slow
def test_run_trivy_on_an_image_in_a_real_registry(hello_image: Any, tmp_path: Path) -> None:
    # The hello test plugin pushed to the local docker-registry; Trivy pulls it by digest.
    ev = run_trivy(hello_image.pinned, digest=hello_image.digest, timeout=120)
    assert ev.present and ev.produced_by == "trivy"
    assert ev.bound and ev.digest == hello_image.digest
    assert ev.scanners == ["secret", "misconfig"]
    # And what Trivy itself wrote names the digest (so a --scan of that report is bound too).
    out = tmp_path / "report.json"
    subprocess.run([find_trivy(), "image", "--format", "json", "--output", str(out),
                    "--scanners", "secret", "--cache-dir", str(tmp_path / "cache"),
                    "--skip-db-update", "--offline-scan", "--quiet", hello_image.pinned],
                   check=True, timeout=120)
    report = read_trivy_report(out, digest=hello_image.digest)
    assert report.evidence.bound and report.dropped == ()
    other = read_trivy_report(out, digest=OTHER)
    assert [d.code for d in other.dropped] == ["DIGEST_MISMATCH"]


def test_declared_scanners_are_trivys_scanners_value() -> None:
    """``--scan-scanners`` (verify and publish) takes Trivy's ``--scanners`` value."""
    from cortex_trust.evidence import parse_scanners

    assert parse_scanners("vuln, secret,,vuln") == ("vuln", "secret")
    assert parse_scanners("misconfig") == ("misconfig",)
    assert parse_scanners("") == ()
    with pytest.raises(EvidenceError) as e:
        parse_scanners("vuln,secrets,license")
    assert e.value.message == "unknown scanners license, secrets"
    assert "vuln, secret, misconfig" in (e.value.advice or "")


# --- origins and signed scan attestations ---------------------------------------------------------

def test_a_report_is_self_reported_unless_the_caller_knows_better(tmp_path: Path) -> None:
    """A report file proves nothing about who produced it: the weakest origin by default."""
    path = _write(tmp_path, _load("alpine-39.json"))
    assert read_trivy_report(path, digest=DIGEST).evidence.origin == "self-reported"
    assert read_trivy_report(path, digest=DIGEST, origin="pipeline").evidence.origin == "pipeline"


_SCANNER_ID = "https://github.com/acme/scanner/.github/workflows/scan.yml@refs/heads/main"
_GHA = "https://token.actions.githubusercontent.com"


def _vuln_predicate(report: dict[str, Any], **invocation: Any) -> dict[str, Any]:
    """cosign's vulnerability predicate (`trivy --format cosign-vuln` writes this shape)."""
    return {"invocation": {"parameters": invocation or None, "uri": "", "event_id": "",
                           "builder.id": ""},
            "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.76.0", "version": "0.76.0",
                        "db": {"uri": "", "version": ""}, "result": report},
            "metadata": {"scanStartedOn": "2026-01-01T00:00:00Z",
                         "scanFinishedOn": "2026-01-01T00:01:00Z"}}


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from cortex_trust.evidence import load_trust_root
    from tests.support.sigstore_mint import PrivateSigstore

    sigstore = PrivateSigstore(tmp_path_factory.mktemp("attesting-sigstore"))
    return sigstore, (load_trust_root(sigstore.trusted_root_path, name="private"),)


_CLEAN = {"SchemaVersion": 2, "ArtifactName": "ghcr.io/acme/tool", "ArtifactType": "container_image",
          "Results": [{"Target": "ghcr.io/acme/tool (alpine 3.19)", "Class": "os-pkgs"}]}


def test_a_verified_vulnerability_attestation_is_attested_scan_evidence(private: Any) -> None:
    from cortex_trust.evidence import VULN_ATTESTATION_PREDICATE, verify_scan_attestation

    sigstore, roots = private
    bundle = sigstore.sign_dsse_statement(
        DIGEST, identity=_SCANNER_ID, issuer=_GHA, predicate_type=VULN_ATTESTATION_PREDICATE,
        predicate=_vuln_predicate(_CLEAN, scanners="vuln,secret"))
    report = verify_scan_attestation(bundle, digest=DIGEST, trusted_roots=roots, source="att")
    ev = report.evidence
    assert report.dropped == ()
    # Bound by the signed subject (the report itself names no digest); the clean scanners are
    # the attester's signed declaration.
    assert (ev.present, ev.bound, ev.digest, ev.origin) == (True, True, DIGEST, "attested")
    assert ev.scanners == ["vuln", "secret"] and ev.counts == dict.fromkeys(
        ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"), 0)
    assert ev.attester is not None
    assert (ev.attester.identity, ev.attester.issuer, ev.attester.trusted_root,
            ev.attester.predicate_type) == (_SCANNER_ID, _GHA, "private", VULN_ATTESTATION_PREDICATE)
    assert ev.attester.signed_at is not None

    # Without a declaration, a clean attested report shows no scanner (fail closed).
    quiet = sigstore.sign_dsse_statement(DIGEST, identity=_SCANNER_ID, issuer=_GHA,
                                         predicate_type=VULN_ATTESTATION_PREDICATE,
                                         predicate=_vuln_predicate(_CLEAN))
    assert verify_scan_attestation(quiet, digest=DIGEST, trusted_roots=roots).evidence.scanners == []


def test_attestations_that_prove_nothing_are_dropped(private: Any) -> None:
    from cortex_trust.evidence import VULN_ATTESTATION_PREDICATE, production_trust_root, verify_scan_attestation

    sigstore, roots = private
    vuln = {"predicate_type": VULN_ATTESTATION_PREDICATE, "predicate": _vuln_predicate(_CLEAN)}
    cases = {
        # about another image
        "DIGEST_MISMATCH": (sigstore.sign_dsse_statement(OTHER, identity=_SCANNER_ID, issuer=_GHA,
                                                         **vuln), roots),
        # signed by an instance the registry does not trust
        "SCAN_ATTESTATION_UNVERIFIED": (sigstore.sign_dsse_statement(
            DIGEST, identity=_SCANNER_ID, issuer=_GHA, **vuln), (production_trust_root(),)),
        # a provenance attestation is not a scan
        "SCAN_ATTESTATION_NOT_A_SCAN": (sigstore.sign_dsse_statement(
            DIGEST, identity=_SCANNER_ID, issuer=_GHA, predicate=_vuln_predicate(_CLEAN)), roots),
    }
    for code, (bundle, trusted) in cases.items():
        report = verify_scan_attestation(bundle, digest=DIGEST, trusted_roots=trusted)
        assert not report.evidence.present, code
        assert [d.code for d in report.dropped] == [code]
    # A message signature over the digest signs no statement at all.
    signed = sigstore.sign_digest(DIGEST, identity=_SCANNER_ID, issuer=_GHA)
    report = verify_scan_attestation(signed, digest=DIGEST, trusted_roots=roots)
    assert [d.code for d in report.dropped] == ["SCAN_ATTESTATION_UNVERIFIED"]
    assert "not a DSSE in-toto attestation" in report.dropped[0].message
    # The report inside names another image: never used either.
    other = dict(_CLEAN, Metadata={"RepoDigests": [f"ghcr.io/acme/tool@{OTHER}"]})
    bundle = sigstore.sign_dsse_statement(DIGEST, identity=_SCANNER_ID, issuer=_GHA,
                                          predicate_type=VULN_ATTESTATION_PREDICATE,
                                          predicate=_vuln_predicate(other))
    report = verify_scan_attestation(bundle, digest=DIGEST, trusted_roots=roots)
    assert not report.evidence.present and [d.code for d in report.dropped] == ["DIGEST_MISMATCH"]


def test_malformed_attestations_are_errors(private: Any) -> None:
    from cortex_trust.evidence import VULN_ATTESTATION_PREDICATE, verify_scan_attestation

    sigstore, roots = private
    with pytest.raises(EvidenceError, match="not a Sigstore bundle"):
        verify_scan_attestation(b"{not json", digest=DIGEST, trusted_roots=roots)
    empty = sigstore.sign_dsse_statement(DIGEST, identity=_SCANNER_ID, issuer=_GHA,
                                         predicate_type=VULN_ATTESTATION_PREDICATE,
                                         predicate={"scanner": {"uri": "x"}})
    with pytest.raises(EvidenceError, match="holds no Trivy report"):
        verify_scan_attestation(empty, digest=DIGEST, trusted_roots=roots)
    bad = sigstore.sign_dsse_statement(DIGEST, identity=_SCANNER_ID, issuer=_GHA,
                                       predicate_type=VULN_ATTESTATION_PREDICATE,
                                       predicate=_vuln_predicate({"SchemaVersion": 1}))
    with pytest.raises(EvidenceError, match="SchemaVersion"):
        verify_scan_attestation(bad, digest=DIGEST, trusted_roots=roots)
