"""`cortex policy bundle build`: a real OPA bundle that the real OPA engine (the oracle) decides
with exactly as the embedded engine does, signed in OPA's bundle signature format.

The bundle is built through the CLI, unpacked like OPA unpacks it (modules by path, data.json at
the root of ``data``) and loaded into OPA 1.20 (``tests/support/opa_oracle.py``); generated inputs
and the documented tier inputs must get identical decisions. Signatures are checked with PyJWT
against the public key, and every file's hash is recomputed (JSON files over their canonical
form, modules over their bytes).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.engine import EmbeddedEngine, decide
from cortex_trust.policy import PolicyInput, load_policy_set
from tests.support.opa_oracle import REPO_ROOT, OpaOracle, TestPolicySet
from tests.support.strategies import random_documents

ACME = REPO_ROOT / "examples" / "acme"
ACME_ARGS = [str(ACME / "policies"), "--data", str(ACME / "data.yaml")]


def _build(tmp_path: Path, *args: str) -> tuple[Any, dict[str, bytes]]:
    out = tmp_path / "bundle.tar.gz"
    result = CliRunner().invoke(app, ["policy", "bundle", "build", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    with tarfile.open(out, "r:gz") as tar:
        members = tar.getmembers()
        assert all(m.isfile() and m.mode == 0o644 and m.mtime == 0 for m in members)
        files = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    return result, files


def _canonical(content: bytes) -> bytes:
    return json.dumps(json.loads(content), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def test_the_bundle_decides_like_the_embedded_engine_in_real_opa(tmp_path: Path) -> None:
    _, files = _build(tmp_path, *ACME_ARGS)
    policy_set = load_policy_set([ACME / "policies"], [ACME / "data.yaml"])
    manifest = json.loads(files["/.manifest"])
    assert manifest == {"revision": policy_set.revision, "roots": ["acme", "cortex", "cortex_config"],
                        "rego_version": 1}
    modules = {n.removeprefix("/"): c.decode() for n, c in files.items() if n.endswith(".rego")}
    assert modules == {m.name: m.text for m in policy_set.modules if not m.is_test}
    assert json.loads(files["/data.json"]) == json.loads(policy_set.data_json())
    assert set(files) == {"/.manifest", "/data.json", *(f"/{n}" for n in modules)}

    # As OPA loads a bundle: every module, and data.json at the root of data.
    opa = OpaOracle(TestPolicySet(modules=tuple(sorted(modules.items())),
                                  data=json.loads(files["/data.json"])))
    docs = [json.loads(p.read_text()) for p in sorted((REPO_ROOT / "examples" / "inputs").glob("*.json"))]
    docs += list(random_documents(150, seed=16))
    tiers = set()
    with EmbeddedEngine(policy_set) as embedded:
        for doc in docs:
            policy_input = PolicyInput.model_validate(doc)
            ours, theirs = decide(embedded, policy_input), decide(opa, policy_input)
            assert not ours.failed, ours.reasons
            assert ours.model_dump(exclude={"policy_revision"}) == theirs.model_dump(exclude={"policy_revision"}), \
                policy_input.to_json()
            tiers.add(ours.tier.value)
    assert tiers == {"untrusted", "experimental", "community", "verified"}


def _pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_a_signed_bundle_lists_every_file_with_its_hash(tmp_path: Path, alg: str) -> None:
    key_file = tmp_path / "key"
    if alg == "HS256":
        key_file.write_text("a shared secret of at least 32 bytes\n")
        private: Any = None
        verify_with: Any = b"a shared secret of at least 32 bytes"
    else:
        private = rsa.generate_private_key(65537, 2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
        key_file.write_bytes(_pem(private))
        verify_with = private.public_key()
    _, files = _build(tmp_path, *ACME_ARGS, "--signing-key", str(key_file), "--signing-alg", alg,
                      "--signing-key-id", "acme-policy", "--scope", "write", "--revision", "v1.2.3")
    assert json.loads(files["/.manifest"])["revision"] == "v1.2.3"
    (token,) = json.loads(files["/.signatures.json"])["signatures"]
    assert jwt.get_unverified_header(token) == {"alg": alg, "typ": "JWT", "kid": "acme-policy"}
    claims = jwt.decode(token, verify_with, algorithms=[alg])
    assert claims["keyid"] == "acme-policy" and claims["scope"] == "write"
    listed = {f["name"]: f for f in claims["files"]}
    assert set(listed) == {n.removeprefix("/") for n in files} - {".signatures.json"}
    for name, content in files.items():
        if name == "/.signatures.json":
            continue
        entry = listed[name.removeprefix("/")]
        hashed = _canonical(content) if name.endswith((".json", ".manifest")) else content
        assert entry == {"name": name.removeprefix("/"), "hash": hashlib.sha256(hashed).hexdigest(),
                         "algorithm": "SHA-256"}
    other: Any = (rsa.generate_private_key(65537, 2048).public_key() if alg == "RS256" else
                  ec.generate_private_key(ec.SECP256R1()).public_key() if alg == "ES256" else
                  b"another shared secret of 32 bytes or more")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=[alg])


def test_a_key_that_does_not_fit_the_algorithm_exits_2(tmp_path: Path) -> None:
    key_file = tmp_path / "ec.pem"
    key_file.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    out = tmp_path / "b.tar.gz"
    runner = CliRunner()
    wrong = runner.invoke(app, ["policy", "bundle", "build", "-o", str(out), "--signing-key", str(key_file)])
    assert wrong.exit_code == 2 and "not a key for RS256" in wrong.stderr, wrong.output
    unknown = runner.invoke(app, ["policy", "bundle", "build", "-o", str(out), "--signing-alg", "none"])
    assert unknown.exit_code == 2 and "--signing-alg 'none'" in unknown.stderr
    assert not out.exists()


def test_the_archive_is_reproducible(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _build(first)
    _build(second)
    assert (first / "bundle.tar.gz").read_bytes() == (second / "bundle.tar.gz").read_bytes()
    assert io.BytesIO((first / "bundle.tar.gz").read_bytes()).read(2) == b"\x1f\x8b"
