"""Decision receipts end to end: a real ``cortex registry serve`` keeping a signed index issues a
receipt for every decision, signed with the index's timestamp key; ``cortex receipt verify``
accepts it against the index's root and refuses every tampered copy; ``cortex receipt replay``
decides the stored input again and shows what a changed policy would decide differently.

The CLI runs in this process (the ``cli`` fixture of test_publish_cli: its own configuration,
the root group rendering errors with their exit codes, as the console script does).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cortex_trust.policy import default_policy_dir
from tests.registry._helpers import NO_PROMOTION
from tests.registry.test_publish_cli import OCI_HOST, Cli, _publish, cli  # noqa: F401 - the fixture
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

RECEIPT = "/api/v1/plugins/acme/tool/versions/{}/receipt"


@dataclass
class Indexed:
    served: ServedRegistry
    root: Path
    keys: Path


@pytest.fixture
def indexed(tmp_path: Path, cli: Cli, private_sigstore: PrivateSigstore) -> Iterator[Indexed]:  # noqa: F811
    """A registry serving with a signed index (``cortex registry index build``, then ``serve
    --index-dir --index-keys``), as the README's "Receipts" shows."""
    db = f"sqlite:///{tmp_path / 'served.db'}"
    index, keys = tmp_path / "index", tmp_path / "index-keys"
    r = cli("registry", "index", "build", "--db", db, "--out", str(index), "--keys", str(keys))
    assert r.code == 0, r.err
    with serve_registry(tmp_path, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--no-scan", "--data", str(NO_PROMOTION),
                        "--index-dir", str(index), "--index-keys", str(keys), db=db) as served:
        yield Indexed(served, index / "metadata" / "root.json", keys)


def _published(indexed: Indexed, cli: Cli, version: str, tmp_path: Path) -> Path:  # noqa: F811
    """Publish acme/tool@``version`` and save its receipt as served."""
    token = cli.token(indexed.served, "acme", "publisher")
    f = cli.files(version)
    r = _publish(cli, f, "--tests", f["tests"], "--registry", indexed.served.url, token=token)
    assert r.code == 0, r.err
    answer = httpx.get(indexed.served.url + RECEIPT.format(version), timeout=10)
    assert answer.status_code == 200, answer.text
    path = tmp_path / f"receipt-{version}.json"
    path.write_bytes(answer.content)
    return path


def _rewrite(path: Path, out: Path, change: Any) -> Path:
    """A copy of the receipt at ``path`` whose statement ``change`` edited, signatures kept."""
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    change(statement)
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    out.write_text(json.dumps(envelope))
    return out


def test_a_registry_receipt_verifies_and_a_tampered_one_does_not(indexed: Indexed, cli: Cli,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    path = _published(indexed, cli, "1.0.0", tmp_path)
    receipt = json.loads(path.read_text())
    assert receipt["payloadType"] == "application/vnd.cortex.receipt.v1+json"
    statement = json.loads(base64.b64decode(receipt["payload"]))
    version = httpx.get(f"{indexed.served.url}/api/v1/plugins/acme/tool/versions/1.0.0").json()
    # The receipt holds what was decided, on which input, with which evidence and policy.
    assert statement["_type"] == "cortex.receipt/v1"
    assert statement["subject"] == {"plugin": "acme/tool", "version": "1.0.0", "digest": version["digest"]}
    assert statement["decision"]["tier"] == version["tier"] == "experimental"
    assert statement["decision"]["reasons"] == version["decision"]["reasons"]
    assert statement["policy_revision"] == version["policy_revision"]
    assert statement["operation"] == "publish" and statement["engine"]["name"] == "regorus"
    assert statement["engine"]["version"]
    assert {"signature", "tests"} <= set(statement["evidence"])
    assert set(statement["documents"]) == {"bundle"}
    assert statement["input"]["document"]["artifact"]["digest"] == version["digest"]

    root = str(indexed.root)
    r = cli("receipt", "verify", str(path), "--root", root)
    assert r.code == 0, r.out + r.err
    assert r.out.startswith("valid: acme/tool@1.0.0: tier experimental, action warn")
    r = cli("receipt", "verify", str(path), "--root", root, "--format", "json")
    assert r.code == 0 and json.loads(r.out)["valid"] is True
    # The root configured for the registry, as installs read its index.
    r = cli("config", "registries", "add", "acme", indexed.served.url, "--scope", "acme/*",
            "--index-url", indexed.root.parent.parent.as_uri(), "--index-root", root)
    assert r.code == 0, r.err
    r = cli("receipt", "verify", str(path), "--registry", "acme")
    assert r.code == 0 and r.out.startswith("valid: "), r.out + r.err
    # `receipt get`: to a file the served bytes as they are, to stdout ASCII-only JSON; both verify.
    got = tmp_path / "got.json"
    r = cli("receipt", "get", "acme/tool@1.0.0", "--registry", indexed.served.url, "-o", str(got))
    assert r.code == 0 and got.read_bytes() == path.read_bytes(), r.err
    r = cli("receipt", "get", "acme/tool@1.0.0", "--registry", indexed.served.url)
    assert r.code == 0 and r.out.isascii() and json.loads(r.out) == json.loads(path.read_bytes()), r.err
    printed = tmp_path / "printed.json"
    printed.write_text(r.out)
    for copy in (got, printed):
        assert cli("receipt", "verify", str(copy), "--root", root).code == 0

    # A changed tier: the signature no longer covers the payload.
    tier = _rewrite(path, tmp_path / "tier.json",
                    lambda s: s["decision"].update(tier="community"))
    r = cli("receipt", "verify", str(tier), "--root", root)
    assert r.code == 1 and r.out.startswith("invalid: acme/tool@1.0.0: tier community")
    assert "no signature verifies" in r.out

    # A changed input with its digest recomputed: still the signature; without: the digest too.
    def other_input(s: dict[str, Any]) -> None:
        s["input"]["document"]["context"]["now"] = "2020-01-01T00:00:00Z"

    changed = _rewrite(path, tmp_path / "input.json", other_input)
    r = cli("receipt", "verify", str(changed), "--root", root)
    assert r.code == 1 and "the input document does not match the input digest" in r.out

    # Signed by another key (a key the root does not name for receipts).
    other = _public_pem(tmp_path)
    r = cli("receipt", "verify", str(path), "--key", str(other))
    assert r.code == 1 and "no signature verifies" in r.out
    # The registry's own timestamp key verifies it as --key too.
    r = cli("receipt", "verify", str(path), "--key", str(_public_pem(tmp_path, indexed.keys / "timestamp.pem")))
    assert r.code == 0, r.out + r.err

    # Unsigned receipts are never valid.
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps({**receipt, "signatures": []}))
    r = cli("receipt", "verify", str(unsigned), "--root", root)
    assert r.code == 1 and "the receipt is not signed" in r.out

    # Bad input: exit 2 with a fix.
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    for args in (("receipt", "verify", str(junk), "--root", root),
                 ("receipt", "verify", str(path)),
                 ("receipt", "verify", str(path), "--registry", "nobody"),
                 ("receipt", "verify", str(path), "--registry", "acme", "--root", root),
                 ("receipt", "verify", str(path), "--root", str(junk)),
                 ("receipt", "verify", str(tmp_path / "missing.json"), "--root", root)):
        r = cli(*args)
        assert r.code == 2 and "fix:" in r.err, (args, r.out, r.err)


def _public_pem(tmp_path: Path, private: Path | None = None) -> Path:
    """The public key of ``private`` (a new key when not given) as a PEM file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = (serialization.load_pem_private_key(private.read_bytes(), None) if private is not None
           else Ed25519PrivateKey.generate())
    out = tmp_path / f"public-{'registry' if private else 'other'}.pem"
    out.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return out


def test_replay_shows_what_a_changed_policy_would_decide(indexed: Indexed, cli: Cli,  # noqa: F811
                                                         tmp_path: Path) -> None:
    path = _published(indexed, cli, "1.1.0", tmp_path)
    policies = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policies)
    policy = ["--no-defaults", "--policy-dir", str(policies / "cortex"), "--data", str(policies / "data.yaml"),
              "--data", str(NO_PROMOTION)]

    r = cli("receipt", "replay", str(path), *policy)
    assert r.code == 0, r.out + r.err
    assert r.out.startswith("same: acme/tool@1.1.0: tier experimental, action warn")

    # The rule that makes a valid manifest experimental now says untrusted.
    tier = policies / "cortex" / "tier.rego"
    text = tier.read_text()
    assert text.count('} else := "experimental" if {') == 1
    tier.write_text(text.replace('} else := "experimental" if {', '} else := "untrusted" if {'))
    r = cli("receipt", "replay", str(path), *policy)
    assert r.code == 1, r.out + r.err
    assert r.out.startswith("different: acme/tool@1.1.0: tier experimental, action warn")
    assert "  tier: experimental -> untrusted\n" in r.out
    assert "reasons added: TIER_UNTRUSTED" in r.out and "reasons removed: " in r.out
    r = cli("receipt", "replay", str(path), *policy, "--format", "json")
    doc = json.loads(r.out)
    assert r.code == 1 and doc["same"] is False and doc["changes"]["tier"] == ["experimental", "untrusted"]
    assert "TIER_EXPERIMENTAL" in doc["changes"]["removed"]
    assert doc["policy_revision"]["then"] != doc["policy_revision"]["now"]

    # An input that no longer matches its digest is not replayed.
    changed = _rewrite(path, tmp_path / "input.json",
                       lambda s: s["input"]["document"]["context"].update(now="2020-01-01T00:00:00Z"))
    r = cli("receipt", "replay", str(changed), *policy)
    assert r.code == 2 and "does not match the input digest" in r.err


def test_every_decision_gets_a_receipt_and_re_tiering_signs_its_own(indexed: Indexed, cli: Cli,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    _published(indexed, cli, "2.0.0", tmp_path)
    r = cli("registry", "retier", "--db", indexed.served.db, "--workers", "0", "--data", str(NO_PROMOTION),
            "--index-keys", str(indexed.keys))
    assert r.code == 0, r.err
    items = httpx.get(indexed.served.url + RECEIPT.format("2.0.0") + "s", timeout=10).json()["items"]
    assert len(items) == 2
    statements = [json.loads(base64.b64decode(e["payload"])) for e in items]
    assert statements[0]["decided_at"] <= statements[1]["decided_at"]
    # The re-tiering worker's receipt names the same evidence documents as the publish's.
    assert statements[1]["documents"] == statements[0]["documents"] != {}
    assert statements[1]["input"]["document"]["artifact"] == statements[0]["input"]["document"]["artifact"]
    assert statements[0]["input"]["document"]["context"]["now"] == statements[0]["decided_at"]
    latest = tmp_path / "latest.json"
    latest.write_bytes(httpx.get(indexed.served.url + RECEIPT.format("2.0.0"), timeout=10).content)
    assert json.loads(latest.read_text()) == items[1]
    r = cli("receipt", "verify", str(latest), "--root", str(indexed.root))
    assert r.code == 0, r.out
    missing = httpx.get(indexed.served.url + RECEIPT.format("9.9.9"), timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"

    # `cortex receipt get` fetches the same bytes.
    fetched = tmp_path / "fetched.json"
    r = cli("receipt", "get", "acme/tool@2.0.0", "--registry", indexed.served.url, "-o", str(fetched))
    assert r.code == 0 and fetched.read_bytes() == latest.read_bytes(), r.err
    r = cli("receipt", "get", "acme/tool@2.0.0", "--registry", indexed.served.url, "--all")
    assert r.code == 0 and json.loads(r.out)["items"] == items
    r = cli("receipt", "get", "acme/tool@9.9.9", "--registry", indexed.served.url)
    assert r.code == 2 and "acme/tool@9.9.9 is not in this registry" in r.err, r.err
    r = cli("receipt", "get", "acme/tool", "--registry", indexed.served.url)
    assert r.code == 2 and "is not NAMESPACE/NAME@VERSION" in r.err


def test_verify_writes_an_unsigned_receipt_that_replays(tmp_path: Path, cli: Cli) -> None:  # noqa: F811
    f = cli.files("3.0.0")
    out = tmp_path / "verify-receipt.json"
    r = cli("plugin", "verify", f["manifest"], "--image", f["image"], "--bundle", f["bundle"],
            "--tests", f["tests"], "--receipt", str(out))
    assert r.code in (0, 1), r.err
    statement = json.loads(base64.b64decode(json.loads(out.read_text())["payload"]))
    assert statement["issuer"] == "cortex plugin verify" and statement["operation"] == "verify"
    assert set(statement["documents"]) == {"bundle", "tests"}
    r = cli("receipt", "verify", str(out), "--key", str(_public_pem(tmp_path)))
    assert r.code == 1 and "the receipt is not signed" in r.out
    # What a receipt says is shown inert: no terminal escapes, no workflow commands.
    hostile = _rewrite(out, tmp_path / "hostile.json",
                       lambda s: s.update(issuer="ci\n::error::forged\x1b[31m"))
    for args in (("verify", str(hostile), "--key", str(_public_pem(tmp_path))), ("replay", str(hostile))):
        r = cli("receipt", *args)
        assert r.code in (0, 1) and "\x1b" not in r.out and "\n::error" not in r.out, r.out
    r = cli("receipt", "replay", str(out))
    assert r.code == 0 and r.out.startswith("same: "), r.out + r.err
    assert "the receipt is unsigned" in r.err
    # A policy that decides nothing: the replay fails closed (3), never "same" or "different".
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "other.rego").write_text("package cortex\n\nimport rego.v1\n\nunrelated := true\n")
    r = cli("receipt", "replay", str(out), "--no-defaults", "--policy-dir", str(nothing))
    assert r.code == 3, r.out + r.err
    assert r.out.startswith("different: ") and "reasons added: ENGINE_UNDEFINED" in r.out
