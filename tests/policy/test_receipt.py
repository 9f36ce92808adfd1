"""Decision receipts as a library: the statement holds what was decided and on what, a signature
is accepted only from the key a trusted root names for receipts, and every change to a signed or
unsigned receipt is found. (End to end through a served registry: tests/registry/test_receipts.py.)"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner

from cortex_trust.engine import EmbeddedEngine, decide
from cortex_trust.errors import InputError
from cortex_trust.manifest import load_manifest
from cortex_trust.policy import (
    RECEIPT_ROLE,
    Receipt,
    build_input,
    build_receipt,
    decision_changes,
    engine_version,
    load_policy_set,
    read_receipt,
    receipt_input,
    receipt_keys,
    seal_receipt,
    sha256_digest,
    verify_receipt,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "verify"
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
NOW = datetime(2026, 10, 31, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def statement() -> dict[str, Any]:
    policy_input = build_input(manifest=load_manifest(FIXTURES / "manifest.yaml"),
                               image=f"127.0.0.1:5000/acme/hello@{DIGEST}", digest=DIGEST,
                               operation="verify", now=NOW, cortex_version="0.1.0", namespace="acme")
    with EmbeddedEngine(load_policy_set()) as engine:
        decision = decide(engine, policy_input)
    return build_receipt(decision=decision, policy_input=policy_input, engine=engine.name,
                         engine_version=engine_version(engine.name), decided_at=NOW, issuer="test",
                         documents={"bundle": sha256_digest(b"{}"), "tests": sha256_digest("<testsuite/>")})


def _root(*, receipts: CryptoSigner, root: CryptoSigner) -> bytes:
    """A TUF root naming ``receipts``' key for the receipt role, signed by ``root``."""
    from tuf.api.metadata import Metadata, Role, Root

    md = Metadata(Root(expires=datetime.now(UTC) + timedelta(days=365)))  # unexpired whenever the test runs
    for name in ("root", "targets", "snapshot", "timestamp"):
        md.signed.roles[name] = Role([], 1)
    md.signed.add_key(root.public_key, "root")
    for name in ("targets", "snapshot"):
        md.signed.add_key(root.public_key, name)
    md.signed.add_key(receipts.public_key, RECEIPT_ROLE)
    md.sign(root)
    return md.to_bytes()


def _pem(signer: CryptoSigner) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return signer._private_key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _edited(receipt: Receipt, change: Any) -> Receipt:
    statement = json.loads(json.dumps(receipt.statement))
    change(statement)
    envelope = {**receipt.envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    return read_receipt(json.dumps(envelope).encode())


def test_the_statement_holds_the_decision_its_input_and_the_evidence_digests(statement: dict[str, Any]) -> None:
    assert statement["subject"] == {"plugin": "acme/hello", "version": "0.1.0", "digest": DIGEST}
    assert statement["decision"]["policy_revision"] == statement["policy_revision"] != ""
    assert statement["engine"]["name"] == "regorus" and statement["engine"]["version"]
    assert statement["decided_at"] == "2026-10-31T12:00:00Z" and statement["operation"] == "verify"
    assert set(statement["documents"]) == {"bundle", "tests"}
    assert all(d.startswith("sha256:") and len(d) == 71 for d in
               [*statement["documents"].values(), *statement["evidence"].values(), statement["input"]["sha256"]])
    # Only pieces that hold something are listed (no signature, scan or tests were given).
    assert "signature" not in statement["evidence"]


def test_a_receipt_is_valid_only_when_signed_by_the_key_the_root_names(statement: dict[str, Any]) -> None:
    receipts, root_key = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    root = _root(receipts=receipts, root=root_key)
    signed = read_receipt(seal_receipt(statement, signer=receipts).to_json().encode())
    assert signed.statement == json.loads(json.dumps(statement))
    check = verify_receipt(signed, keys=receipt_keys(root=root))
    assert check.valid and check.keyid == receipts.public_key.keyid and check.problems == []
    assert verify_receipt(signed, keys=receipt_keys(key=_pem(receipts))).valid
    # The root's own key signs roots, not receipts.
    by_root = read_receipt(seal_receipt(statement, signer=root_key).to_json().encode())
    assert not verify_receipt(by_root, keys=receipt_keys(root=root)).valid
    unsigned = seal_receipt(statement, signer=None)
    assert verify_receipt(unsigned, keys=receipt_keys(root=root)).problems == ["the receipt is not signed"]
    assert not verify_receipt(signed, keys=[]).valid


def test_every_change_is_found(statement: dict[str, Any]) -> None:
    signer = CryptoSigner.generate_ed25519()
    keys = receipt_keys(key=_pem(signer))
    signed = read_receipt(seal_receipt(statement, signer=signer).to_json().encode())

    def tier(s: dict[str, Any]) -> None:
        s["decision"]["tier"] = "verified"

    def evidence(s: dict[str, Any]) -> None:
        s["evidence"]["manifest"] = "sha256:" + "0" * 64

    def document(s: dict[str, Any]) -> None:
        s["input"]["document"]["context"]["now"] = "2020-01-01T00:00:00Z"

    def revision(s: dict[str, Any]) -> None:
        s["policy_revision"] = "other"

    for change, problem in ((tier, None), (evidence, "the manifest evidence digest does not match"),
                            (document, "the input document does not match the input digest"),
                            (revision, "the decision's policy revision is not the receipt's")):
        check = verify_receipt(_edited(signed, change), keys=keys)
        assert not check.valid and check.problems[0].startswith("no signature verifies")
        if problem is not None:  # found from the contents alone, signed or not
            assert any(p.startswith(problem) for p in check.problems), check.problems
    with pytest.raises(InputError, match="does not match the input digest"):
        receipt_input(_edited(signed, document))
    assert receipt_input(signed).model_dump() == receipt_input(_edited(signed, tier)).model_dump()


@pytest.mark.parametrize("data, message", [
    (b"{", "not JSON"),
    (b"[]", "not a DSSE envelope"),
    (json.dumps({"payload": "e30=", "payloadType": "text/plain", "signatures": []}).encode(), "payload type"),
    (json.dumps({"payload": "!!", "payloadType": "application/vnd.cortex.receipt.v1+json",
                 "signatures": []}).encode(), "not base64-encoded JSON"),
    (json.dumps({"payload": "e30=", "payloadType": "application/vnd.cortex.receipt.v1+json",
                 "signatures": []}).encode(), "not a cortex.receipt/v1 statement"),
    (json.dumps({"payload": "e30=", "payloadType": "application/vnd.cortex.receipt.v1+json",
                 "signatures": [{"keyid": 1}]}).encode(), "not {keyid, sig}"),
    (b" " * 4_000_001, "larger than"),
    (json.dumps({"payload": base64.b64encode(json.dumps(
        {"_type": "cortex.receipt/v1", "subject": "x", "decision": {}, "input": {"document": {}},
         "evidence": {}, "engine": {}}).encode()).decode(),
        "payloadType": "application/vnd.cortex.receipt.v1+json", "signatures": []}).encode(), "no subject object"),
])
def test_what_is_not_a_receipt_is_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("{", r"\{").replace("}", r"\}")) as e:
        read_receipt(data)
    assert e.value.advice


def test_a_root_that_is_not_self_signed_or_a_key_that_is_not_a_key_is_bad_input() -> None:
    receipts = CryptoSigner.generate_ed25519()
    root = json.loads(_root(receipts=receipts, root=CryptoSigner.generate_ed25519()))
    root["signatures"] = []
    with pytest.raises(InputError, match="self-signed TUF root"):
        receipt_keys(root=json.dumps(root).encode())
    with pytest.raises(InputError, match="self-signed TUF root"):
        receipt_keys(root=b"{}")
    with pytest.raises(InputError, match="not a PEM public key"):
        receipt_keys(key=b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_decision_changes_name_what_differs() -> None:
    a = {"tier": "community", "action": "notice", "next_tier": None,
         "reasons": [{"code": "A"}, {"code": "B"}]}
    assert decision_changes(a, a) == {"same": True}
    b = {**a, "tier": "experimental", "reasons": [{"code": "B"}, {"code": "C"}]}
    assert decision_changes(a, b) == {"tier": ["community", "experimental"], "added": ["C"],
                                      "removed": ["A"], "same": False}
    reordered = {**a, "reasons": [{"code": "B"}, {"code": "A"}]}
    assert decision_changes(a, reordered) == {"reasons": [["A", "B"], ["B", "A"]], "same": False}


def _threshold_root(*, receipts: list[CryptoSigner], threshold: int, root: CryptoSigner,
                    expires: datetime) -> bytes:
    """A TUF root naming ``receipts``' keys for the receipt role with ``threshold``."""
    from tuf.api.metadata import Metadata, Role, Root

    md = Metadata(Root(expires=expires))
    for name in ("root", "targets", "snapshot", "timestamp"):
        md.signed.roles[name] = Role([], 1)
    for name in ("root", "targets", "snapshot"):
        md.signed.add_key(root.public_key, name)
    for signer in receipts:
        md.signed.add_key(signer.public_key, RECEIPT_ROLE)
    md.signed.roles[RECEIPT_ROLE].threshold = threshold
    md.sign(root)
    return md.to_bytes()


def test_an_expired_root_is_bad_input_that_names_the_fix(statement: dict[str, Any]) -> None:
    receipts, root_key = CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()
    root = _threshold_root(receipts=[receipts], threshold=1, root=root_key, expires=NOW - timedelta(days=1))
    with pytest.raises(InputError, match="the root expired") as e:
        receipt_keys(root=root, now=NOW)
    assert "current root" in e.value.advice
    # The same root is trusted while it is valid.
    signed = read_receipt(seal_receipt(statement, signer=receipts).to_json().encode())
    assert verify_receipt(signed, keys=receipt_keys(root=root, now=NOW - timedelta(days=2))).valid
    # Without ``now`` the current time decides.
    with pytest.raises(InputError, match="the root expired"):
        receipt_keys(root=root)


def test_a_receipt_needs_the_threshold_of_signatures_the_root_sets(statement: dict[str, Any]) -> None:
    a, b, root_key = (CryptoSigner.generate_ed25519() for _ in range(3))
    keys = receipt_keys(root=_threshold_root(receipts=[a, b], threshold=2, root=root_key,
                                             expires=NOW + timedelta(days=365)), now=NOW)
    assert keys.threshold == 2 and len(keys) == 2
    one = read_receipt(seal_receipt(statement, signer=a).to_json().encode())
    check = verify_receipt(one, keys=keys)
    assert not check.valid and check.problems[0].startswith("fewer than 2 signature(s) verify")
    # The same signature twice is one signature.
    twice = {**one.envelope, "signatures": one.envelope["signatures"] * 2}
    assert not verify_receipt(read_receipt(json.dumps(twice).encode()), keys=keys).valid
    both = json.loads(seal_receipt(statement, signer=a).to_json())
    both["signatures"] += json.loads(seal_receipt(statement, signer=b).to_json())["signatures"]
    assert verify_receipt(read_receipt(json.dumps(both).encode()), keys=keys).valid
    # A threshold above the keys named is never met.
    few = receipt_keys(root=_threshold_root(receipts=[a], threshold=2, root=root_key,
                                            expires=NOW + timedelta(days=365)), now=NOW)
    assert verify_receipt(read_receipt(json.dumps(both).encode()), keys=few).problems[0] == \
        "2 signatures are required but only 1 keys are given"


def test_decision_changes_include_sandbox_overridable_and_failed() -> None:
    a = {"tier": "community", "action": "notice", "reasons": [], "overridable": False, "failed": False,
         "sandbox": {"network": "none", "read_only_root": True}}
    loosened = {**a, "sandbox": {"network": "host", "read_only_root": True}}
    assert decision_changes(a, loosened) == {"sandbox": [a["sandbox"], loosened["sandbox"]], "same": False}
    assert decision_changes(a, {**a, "overridable": True}) == {"overridable": [False, True], "same": False}
    assert decision_changes(a, {**a, "failed": True})["same"] is False


def _invoke(*args: str) -> Any:
    from typer.testing import CliRunner

    from cli.main import app

    return CliRunner().invoke(app, list(args))


def test_replay_says_the_signature_is_not_checked_and_a_loosened_sandbox_is_different(
        statement: dict[str, Any], tmp_path: Path) -> None:
    # A signature that does not verify: replay does not check it, and says so.
    envelope = json.loads(seal_receipt(statement, signer=CryptoSigner.generate_ed25519()).to_json())
    envelope["signatures"][0]["sig"] = base64.b64encode(b"\0" * 64).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    r = _invoke("receipt", "replay", str(forged))
    assert r.exit_code == 0 and r.stdout.startswith("same:")
    assert "signature not checked (use `cortex receipt verify`)" in r.stderr
    r = _invoke("receipt", "replay", str(forged), "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["signature_checked"] is False
    # The receipt recorded a tighter sandbox than today's policy gives: today's is looser.
    tighter = json.loads(json.dumps(statement))
    assert tighter["decision"]["sandbox"] is not None
    tighter["decision"]["sandbox"]["memory_mb"] = 1
    path = tmp_path / "tighter.json"
    path.write_text(seal_receipt(tighter, signer=None).to_json())
    r = _invoke("receipt", "replay", str(path), "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["same"] is False and set(doc["changes"]) == {"sandbox"}
    r = _invoke("receipt", "replay", str(path))
    assert r.exit_code == 1 and r.stdout.startswith("different:") and "  sandbox: " in r.stdout


def test_receipt_get_never_prints_control_characters_and_o_keeps_the_bytes(tmp_path: Path) -> None:
    import http.server
    import threading

    # Valid JSON with escaped controls and raw non-ASCII (a right-to-left override, U+202E), then raw
    # control characters inside a string (not JSON), then no JSON at all.
    bodies = ['{"payload":"x","note":"\\u001b[2J\u202efake \u00e9"}'.encode(),
              b'{"payload":"x","note":"\x1b]0;pwned\x07\x1b[2J\x1b[31mFAKE\x1b[0m"}', b"\x1b[2Jnot json"]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for header, value in (("Content-Type", "application/json"), ("Content-Length", str(len(bodies[0])))):
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(bodies[0])

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        r = _invoke("receipt", "get", "acme/tool@1.0.0", "--registry", url)
        assert r.exit_code == 0, r.output
        assert r.stdout_bytes.isascii() and b"\x1b" not in r.stdout_bytes
        assert json.loads(r.stdout) == json.loads(bodies[0])
        out = tmp_path / "receipt.json"
        r = _invoke("receipt", "get", "acme/tool@1.0.0", "--registry", url, "-o", str(out))
        assert r.exit_code == 0 and out.read_bytes() == bodies[0]
        for refused in bodies[1:]:
            bodies[0] = refused
            r = _invoke("receipt", "get", "acme/tool@1.0.0", "--registry", url)
            assert r.exit_code == 3 and b"\x1b" not in r.stdout_bytes and "not a JSON object" in r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_verify_with_an_expired_root_exits_2_with_the_fix(statement: dict[str, Any], tmp_path: Path) -> None:
    receipts = CryptoSigner.generate_ed25519()
    expired = datetime.now(UTC) - timedelta(days=1)
    root = tmp_path / "root.json"
    root.write_bytes(_threshold_root(receipts=[receipts], threshold=1, root=CryptoSigner.generate_ed25519(),
                                     expires=expired))
    path = tmp_path / "receipt.json"
    path.write_text(seal_receipt(statement, signer=receipts).to_json())
    r = _invoke("receipt", "verify", str(path), "--root", str(root))
    assert r.exit_code == 2, r.output
    assert "the root expired" in r.stderr and "fetch the registry's current root" in r.stderr
    assert not r.stdout.startswith("valid")
