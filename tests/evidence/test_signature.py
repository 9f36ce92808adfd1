"""Sigstore signature evidence against real, offline-verifiable bundles (tests/fixtures/sigstore)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex_trust.errors import EvidenceError, InputError
from cortex_trust.evidence import (
    MAX_BUNDLE_BYTES,
    MAX_TRUSTED_ROOT_BYTES,
    PRODUCTION_ROOT_NAME,
    TrustRoot,
    load_trust_root,
    production_trust_root,
    verify_signature,
)
from cortex_trust.policy import GitHubClaims, SignatureEvidence
from tests.support.hostile import refused_quickly

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sigstore"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
RECORDS = {r["id"]: r for r in MANIFEST["fixtures"]}
BEACON = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
GHA = "https://token.actions.githubusercontent.com"
WHEEL_DIGEST = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
A_TXT_DIGEST = "sha256:" + hashlib.sha256((FIXTURES / "artifacts/a.txt").read_bytes()).hexdigest()
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _root(rel: str) -> TrustRoot:
    path = FIXTURES / rel
    if path.name == "production.json":
        return production_trust_root()
    return load_trust_root(path, name=path.stem)


def _digest(record: dict[str, Any]) -> str:
    if record.get("artifact_sha256"):
        return "sha256:" + str(record["artifact_sha256"])
    return "sha256:" + hashlib.sha256((FIXTURES / record["artifact"]).read_bytes()).hexdigest()


def _bundle(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def _verify(rel: str, *, digest: str = A_TXT_DIGEST, roots: list[TrustRoot] | None = None,
            ) -> SignatureEvidence:
    return verify_signature(_bundle(rel), digest=digest,
                            trusted_roots=roots or [production_trust_root()], source=rel)


VALID = [r for r in MANIFEST["fixtures"] if r["expect"] == "pass"]
INVALID = [r for r in MANIFEST["fixtures"] if r["expect"] == "fail"]


# --- valid fixtures ---------------------------------------------------------------------------

@pytest.mark.parametrize("record", VALID, ids=[r["id"] for r in VALID])
def test_valid_fixture_verifies_with_its_root(record: dict[str, Any]) -> None:
    root = _root(record["trusted_root"])
    ev = verify_signature(_bundle(record["bundle"]), digest=_digest(record),
                          trusted_roots=[root], source=record["bundle"])
    assert ev.verified is True, ev.error
    assert ev.present is True
    assert ev.error is None
    assert ev.identity == record["identity"]
    assert ev.issuer == record["issuer"]
    assert ev.kind == ("dsse" if "dsse" in record["id"].lower() else "message_signature")
    assert ev.subject_digest == _digest(record)
    assert ev.trusted_root == root.name
    assert ev.integrated_time is not None and RFC3339.match(ev.integrated_time)
    assert ev.source == record["bundle"]


def test_production_fixture_reports_the_pinned_production_root_name() -> None:
    ev = _verify("valid/prod-hashedrekord-v0.3.sigstore.json")
    assert ev.verified and ev.trusted_root == PRODUCTION_ROOT_NAME
    # the SET-backed integrated time of the log entry (1710869186)
    assert ev.integrated_time == "2024-03-19T17:26:26Z"


def test_github_claims_from_the_rfc8785_release_wheel() -> None:
    ev = _verify("valid/prod-gha-rfc8785-0.1.2.whl.sigstore.json", digest=WHEEL_DIGEST)
    assert ev.verified, ev.error
    assert ev.identity == ("https://github.com/trailofbits/rfc8785.py/.github/workflows/"
                           "release.yml@refs/tags/v0.1.2")
    assert ev.issuer == GHA
    assert ev.github == GitHubClaims(
        repository="trailofbits/rfc8785.py",
        workflow_ref="refs/tags/v0.1.2",
        sha="d8b4a6445f38c48b9137a8099706d9b8073146e4",
        trigger="release",
    )


def test_email_identity_has_no_github_claims() -> None:
    ev = _verify("valid/staging-hashedrekord-email.sigstore.json",
                 digest=_digest(RECORDS["staging-hashedrekord-email"]),
                 roots=[_root("trusted_roots/staging.json")])
    assert ev.verified and ev.identity == "william@yossarian.net"
    assert ev.issuer == "https://github.com/login/oauth"
    assert ev.github is None


def test_rekor_v2_time_comes_from_the_timestamp_authority() -> None:
    ev = _verify("valid/staging-rekor2-hashedrekord-tsa.sigstore.json",
                 roots=[_root("trusted_roots/staging.json")])
    assert ev.verified and ev.integrated_time == "2025-06-12T12:02:20Z"


def test_roots_are_tried_in_order_and_the_one_that_verifies_is_named() -> None:
    staging = _root("trusted_roots/staging.json")
    ev = _verify("valid/staging-rekor2-dsse-tsa.sigstore.json",
                 roots=[production_trust_root(), staging])
    assert ev.verified and ev.trusted_root == "staging"


# --- invalid fixtures -------------------------------------------------------------------------

@pytest.mark.parametrize("record", INVALID, ids=[r["id"] for r in INVALID])
def test_invalid_fixture_never_verifies(record: dict[str, Any]) -> None:
    root = _root(record["trusted_root"])
    digest = _digest(record) if record["artifact"] else A_TXT_DIGEST
    data = _bundle(record["bundle"])
    if "Bundle.from_json" in record["error"]["type"] or record["error"]["type"].endswith(
            "InvalidBundle"):
        with pytest.raises(EvidenceError, match="is not a Sigstore bundle"):
            verify_signature(data, digest=digest, trusted_roots=[root])
        return
    ev = verify_signature(data, digest=digest, trusted_roots=[root])
    assert ev.present is True
    assert ev.verified is False
    assert ev.trusted_root is None and ev.integrated_time is None
    assert ev.error and record["error"]["contains"] in ev.error
    assert len(ev.error) <= 400


def test_staging_bundle_against_production_root_is_not_verified() -> None:
    ev = _verify("valid/staging-hashedrekord-email.sigstore.json",
                 digest=_digest(RECORDS["staging-hashedrekord-email"]))
    assert not ev.verified
    assert ev.error is not None and "sigstore-production" in ev.error
    # the identity is still reported (unverified, for diagnostics)
    assert ev.identity == "william@yossarian.net"


def test_no_root_verifies_lists_every_root() -> None:
    staging = _root("trusted_roots/staging.json")
    private = _root("trusted_roots/private-local.json")
    ev = _verify("valid/prod-hashedrekord-v0.3.sigstore.json", roots=[staging, private])
    assert not ev.verified
    assert ev.error is not None
    assert ev.error.startswith("not verified against any trusted root")
    assert "staging:" in ev.error and "private-local:" in ev.error


# --- mix and match: the bundle must be about THIS digest --------------------------------------

OTHER_DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("rel", [
    "valid/prod-hashedrekord-v0.3.sigstore.json",
    "valid/prod-hashedrekord-v0.1.sigstore.json",
])
def test_message_signature_for_another_digest_is_not_verified(rel: str) -> None:
    ev = _verify(rel, digest=OTHER_DIGEST)
    assert not ev.verified
    assert ev.error and "digest mismatch" in ev.error
    # the digest the bundle is really about is reported, so it can be dropped as a mismatch
    assert ev.subject_digest == A_TXT_DIGEST


def test_wheel_bundle_is_not_a_signature_over_another_digest() -> None:
    ev = _verify("valid/prod-gha-rfc8785-0.1.2.whl.sigstore.json", digest=A_TXT_DIGEST)
    assert not ev.verified
    assert ev.subject_digest == WHEEL_DIGEST


@pytest.mark.parametrize("rel,root", [
    ("valid/prod-dsse-intoto.sigstore.json", "trusted_roots/production.json"),
    ("valid/staging-rekor2-dsse-tsa.sigstore.json", "trusted_roots/staging.json"),
])
def test_dsse_statement_about_another_digest_is_not_verified(rel: str, root: str) -> None:
    ev = _verify(rel, digest=OTHER_DIGEST, roots=[_root(root)])
    assert not ev.verified
    assert ev.error == f"DSSE statement is not about {OTHER_DIGEST}"
    assert ev.subject_digest == A_TXT_DIGEST
    assert ev.trusted_root is None


# --- not a bundle -----------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    b"",
    b"garbage \x00\xff not json",
    b"{}",
    b"[]",
    b'{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.3"}',
    b"null",
    b'"a string"',
    _bundle("valid/prod-hashedrekord-v0.3.sigstore.json")[:700],
    _bundle("valid/prod-hashedrekord-v0.3.sigstore.json")[:-2],
], ids=["empty", "garbage", "empty-object", "list", "media-type-only", "null", "string",
        "truncated-700", "truncated-end"])
def test_not_a_bundle_raises_evidence_error(data: bytes) -> None:
    with pytest.raises(EvidenceError, match="is not a Sigstore bundle") as info:
        verify_signature(data, digest=A_TXT_DIGEST, trusted_roots=[production_trust_root()],
                         source="x.sigstore.json")
    assert info.value.advice
    assert "x.sigstore.json" in info.value.message


def test_oversized_bundle_is_refused_before_parsing() -> None:
    data = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    start = time.perf_counter()
    with pytest.raises(EvidenceError, match=f"larger than {MAX_BUNDLE_BYTES} bytes"):
        verify_signature(data, digest=A_TXT_DIGEST, trusted_roots=[production_trust_root()])
    assert time.perf_counter() - start < 0.5


def test_empty_tlog_entries_is_not_a_bundle() -> None:
    doc = json.loads(_bundle("valid/prod-hashedrekord-v0.3.sigstore.json"))
    doc["verificationMaterial"]["tlogEntries"] = []
    with pytest.raises(EvidenceError, match="expected exactly one log entry"):
        verify_signature(json.dumps(doc).encode(), digest=A_TXT_DIGEST,
                         trusted_roots=[production_trust_root()])


@pytest.mark.parametrize("digest", [
    "", "sha256:", "sha256:" + "A" * 64, "sha512:" + "a" * 64, "a" * 64, "sha256:" + "a" * 63,
    "sha256:" + "a" * 64 + "\n",
])
def test_malformed_digest_is_an_input_error(digest: str) -> None:
    with pytest.raises(InputError, match="not an image manifest digest"):
        verify_signature(_bundle("valid/prod-hashedrekord-v0.3.sigstore.json"), digest=digest,
                         trusted_roots=[production_trust_root()])


def test_no_trusted_root_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no Sigstore trusted root"):
        verify_signature(_bundle("valid/prod-hashedrekord-v0.3.sigstore.json"),
                         digest=A_TXT_DIGEST, trusted_roots=[])


# --- tampered variants (README "Tampered variants") -------------------------------------------

def _flip_b64(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _tampered(rel: str, edit: Any) -> bytes:
    doc = json.loads(_bundle(rel))
    edit(doc)
    return json.dumps(doc).encode()


def _entry(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["verificationMaterial"]["tlogEntries"][0]  # type: ignore[no-any-return]


def _set(doc: dict[str, Any], path: list[Any], fn: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = fn(node[path[-1]])


A_REL = "valid/prod-hashedrekord-v0.3.sigstore.json"
B_REL = "valid/prod-dsse-intoto.sigstore.json"
TAMPERS: list[tuple[str, str, Any, str]] = [
    ("message-signature-flipped", A_REL,
     lambda d: _set(d, ["messageSignature", "signature"], _flip_b64), "Signature is invalid"),
    ("message-digest-flipped", A_REL,
     lambda d: _set(d, ["messageSignature", "messageDigest", "digest"], _flip_b64),
     "digest mismatch"),
    ("set-flipped", A_REL,
     lambda d: _set(_entry(d), ["inclusionPromise", "signedEntryTimestamp"], _flip_b64),
     "SET: invalid inclusion promise"),
    ("integrated-time-plus-1", A_REL,
     lambda d: _set(_entry(d), ["integratedTime"], lambda v: str(int(v) + 1)),
     "SET: invalid inclusion promise"),
    ("log-index-plus-1", A_REL,
     lambda d: _set(_entry(d), ["logIndex"], lambda v: str(int(v) + 1)),
     "SET: invalid inclusion promise"),
    ("inclusion-hash-flipped", A_REL,
     lambda d: _set(_entry(d)["inclusionProof"], ["hashes", 0], _flip_b64),
     "inclusion proof contains invalid root hash"),
    ("inclusion-log-index-minus-1", A_REL,
     lambda d: _set(_entry(d), ["inclusionProof", "logIndex"], lambda v: str(int(v) - 1)),
     "invalid log entry"),
    ("checkpoint-signature-flipped", A_REL,
     lambda d: _set(_entry(d), ["inclusionProof", "checkpoint", "envelope"],
                    lambda env: env.replace(env.rstrip("\n").split(" ")[-1],
                                            _flip_b64(env.rstrip("\n").split(" ")[-1]))),
     "checkpoint"),
    ("dsse-signature-flipped", B_REL,
     lambda d: _set(d["dsseEnvelope"]["signatures"][0], ["sig"], _flip_b64),
     "DSSE: invalid signature"),
    ("dsse-payload-rewritten", B_REL,
     lambda d: _set(d["dsseEnvelope"], ["payload"], lambda p: base64.b64encode(
         base64.b64decode(p).replace(A_TXT_DIGEST[7:].encode(), b"ab" * 32)).decode()),
     "DSSE: invalid signature"),
]


@pytest.mark.parametrize("name,rel,edit,expected", TAMPERS, ids=[t[0] for t in TAMPERS])
def test_tampered_bundle_is_not_verified(name: str, rel: str, edit: Any, expected: str) -> None:
    ev = verify_signature(_tampered(rel, edit), digest=A_TXT_DIGEST,
                          trusted_roots=[production_trust_root()])
    assert not ev.verified
    assert ev.error is not None and expected in ev.error, ev.error


def test_leaf_certificate_swapped_for_another_real_one_is_not_verified() -> None:
    other = json.loads(_bundle("valid/prod-dsse-intoto.sigstore.json"))
    cert = other["verificationMaterial"]["certificate"]["rawBytes"]

    def swap(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"]["certificate"]["rawBytes"] = cert

    ev = verify_signature(_tampered(A_REL, swap), digest=A_TXT_DIGEST,
                          trusted_roots=[production_trust_root()])
    assert not ev.verified
    assert ev.identity == BEACON  # same identity, but not the certificate that signed


# --- hostile inputs (hypothesis) --------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_verify(data: bytes) -> None:
    try:
        ev = verify_signature(data, digest=A_TXT_DIGEST, trusted_roots=[production_trust_root()])
    except EvidenceError:
        return
    assert not ev.verified


_VALID_A = _bundle(A_REL)
_VALID_B = _bundle(B_REL)


def _semantics(data: bytes) -> Any:
    """The parsed bundle, with the key names of its checkpoint's signature lines left out.

    A signed note's signature line is ``— NAME BASE64(KEY_HASH || SIGNATURE)``: the signature
    covers the note's body, and sigstore-python finds the log's key by the key hash, so the name
    is unsigned metadata (changing it cannot change what is proven). Everything signed stays
    compared."""
    import re

    from sigstore.models import Bundle

    inner = Bundle.from_json(data)._inner
    for entry in inner.verification_material.tlog_entries or ():
        proof = entry.inclusion_proof
        if proof is not None and proof.checkpoint is not None:
            proof.checkpoint.envelope = re.sub(r"(?m)^\u2014 \S+ ", "\u2014 <name> ",
                                               proof.checkpoint.envelope)
    return inner


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.sampled_from([_VALID_A, _VALID_B]), data=st.data())
def test_mutated_bundles_never_verify_unless_semantically_unchanged(which: bytes,
                                                                    data: st.DataObject) -> None:
    buf = bytearray(which)
    n = data.draw(st.integers(min_value=1, max_value=4), label="mutations")
    for _ in range(n):
        i = data.draw(st.integers(min_value=0, max_value=len(buf) - 1), label="index")
        buf[i] = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    mutated = bytes(buf)
    try:
        ev = verify_signature(mutated, digest=A_TXT_DIGEST,
                              trusted_roots=[production_trust_root()])
    except EvidenceError:
        return
    if ev.verified:
        # only a no-op for the parsed bundle may still verify (e.g. JSON whitespace, or
        # base64 padding bits that decode to the same bytes)
        assert _semantics(mutated) == _semantics(which)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_a_valid_bundle_verifies_for_no_other_digest(raw: bytes) -> None:
    digest = "sha256:" + raw.hex()
    if digest == A_TXT_DIGEST:
        return
    ev = verify_signature(_VALID_A, digest=digest, trusted_roots=[production_trust_root()])
    assert not ev.verified


@settings(max_examples=100, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20))
def test_arbitrary_json_never_verifies(doc: Any) -> None:
    try:
        ev = verify_signature(json.dumps(doc).encode(), digest=A_TXT_DIGEST,
                              trusted_roots=[production_trust_root()])
    except EvidenceError:
        return
    assert not ev.verified


# --- trusted roots ----------------------------------------------------------------------------

def test_production_root_is_the_pinned_file_shipped_in_the_package() -> None:
    root = production_trust_root()
    assert root.name == PRODUCTION_ROOT_NAME
    assert root.document == (FIXTURES / "trusted_roots/production.json").read_bytes()
    assert hashlib.sha256(root.document).hexdigest() == (
        "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66")
    assert "document" not in repr(root)


def test_load_trust_root_defaults_its_name_to_the_file_stem() -> None:
    root = load_trust_root(FIXTURES / "trusted_roots/staging.json")
    assert root.name == "staging"
    assert root.source.endswith("staging.json")


def test_missing_trust_root_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read trusted root") as info:
        load_trust_root(tmp_path / "nope.json")
    assert info.value.advice


@pytest.mark.parametrize("content", [
    b"", b"not json", b"{}", b'{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;'
    b'version=0.1"}', _bundle(A_REL),
])
def test_not_a_trust_root_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match="is not a usable Sigstore trusted root"):
        load_trust_root(path)


def test_oversized_trust_root_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "root.json"
    path.write_bytes(b" " * (MAX_TRUSTED_ROOT_BYTES + 1))
    with pytest.raises(InputError, match="larger than"):
        load_trust_root(path)


@pytest.mark.security_review
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_trusted_root_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "root.json"
    os.mkfifo(fifo)
    raised = refused_quickly(lambda: load_trust_root(fifo))
    assert isinstance(raised, InputError)


@pytest.mark.security_review
def test_trusted_root_that_is_a_device_is_refused() -> None:
    with pytest.raises(InputError):
        load_trust_root("/dev/zero")


@pytest.mark.security_review
def test_a_custom_root_cannot_pose_as_the_production_root(tmp_path: Path) -> None:
    posing = tmp_path / f"{PRODUCTION_ROOT_NAME}.json"
    posing.write_bytes((FIXTURES / "trusted_roots" / "staging.json").read_bytes())
    with pytest.raises(InputError, match="not the pinned Sigstore production root"):
        load_trust_root(posing)
    with pytest.raises(InputError):
        load_trust_root(FIXTURES / "trusted_roots" / "staging.json", name=PRODUCTION_ROOT_NAME)
    # The real production root under that name is still the production root.
    real = tmp_path / "prod" / f"{PRODUCTION_ROOT_NAME}.json"
    real.parent.mkdir()
    real.write_bytes((Path(__file__).parents[2] / "cortex_trust" / "_roots" /
                      "production.json").read_bytes())
    assert load_trust_root(real).name == PRODUCTION_ROOT_NAME


def test_verification_never_reads_the_home_directory_cache(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    # An empty HOME/XDG: if anything fell back to sigstore-python's TUF cache it would fail
    # (or try the network). The pinned root must be enough.
    code = (
        "from pathlib import Path\n"
        "from cortex_trust.evidence import verify_signature, production_trust_root\n"
        f"ev = verify_signature(Path({str(FIXTURES / A_REL)!r}).read_bytes(),"
        f" digest={A_TXT_DIGEST!r}, trusted_roots=[production_trust_root()])\n"
        "assert ev.verified, ev.error\n"
    )
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "c"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not any(tmp_path.rglob("*"))


# --- import cost ------------------------------------------------------------------------------


def test_importing_the_module_does_not_import_sigstore() -> None:
    code = ("import sys, cortex_trust.evidence\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'sigstore'], 'sigstore'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_evidence_is_json_serialisable_for_the_policy_input() -> None:
    ev = _verify("valid/prod-gha-rfc8785-0.1.2.whl.sigstore.json", digest=WHEEL_DIGEST)
    doc = json.loads(ev.model_dump_json())
    assert doc["verified"] is True and doc["github"]["trigger"] == "release"
    assert SignatureEvidence.model_validate(copy.deepcopy(doc)) == ev
