"""Signer continuity at the registry, end to end: a real ``cortex registry serve`` on the shipped
policies (with data that accepts the test attester's scans and exempts the organization's own
``acme/*`` from promotion, so versions reach Community at publish) and the real CLI. A version
signed by a new identity, or by none, warns; a changed signer keeps the version from Verified
until a core-team review; the facts are the registry's, stored in the version's publish-time
input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.evidence import signer_continuity
from cortex_trust.policy import SignatureEvidence, SignerRef
from tests.registry.test_publish_cli import ATTESTER, GHA, OCI_HOST, SIGNER, Cli, cli
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

__all__ = ["cli"]

OTHER = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/heads/main"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, private_sigstore: PrivateSigstore) -> Iterator[ServedRegistry]:
    tmp = tmp_path_factory.mktemp("continuity")
    data = tmp / "org.yaml"
    # acme is this organization's own namespace: no promotion pull request (governance has its own
    # tests), so the scan and tests alone reach Community at publish.
    data.write_text(json.dumps({"cortex_config": {"trusted_scan_attesters": {"acme-scanner": {
        "plugins": ["acme/*"], "issuer": GHA, "identity": ATTESTER,
        "trusted_roots": [private_sigstore.trusted_root_path.stem]}},
        "governance": {"promotion": {"exempt_plugins": ["acme/*"]}}}}))
    with serve_registry(tmp, "--trusted-root", str(private_sigstore.trusted_root_path), "--allow-registry",
                        OCI_HOST, "--no-scan", "--data", str(data)) as s:
        yield s


def _publish(cli: Cli, served: ServedRegistry, token: str, version: str, *,
             bundle: bytes | None = None) -> dict[str, Any]:
    f = cli.files(version)
    if bundle is not None:
        Path(f["bundle"]).write_bytes(bundle)
    r = cli("plugin", "publish", f["manifest"], "--image", f["image"], "--bundle", f["bundle"],
            "--scan-attestation", f["attestation"], "--tests", f["tests"], "--registry", served.url,
            "--format", "json", token=token)
    assert r.code == 0, r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def _codes(doc: dict[str, Any]) -> set[str]:
    return {r["code"] for r in doc["decision"]["reasons"]}


def test_a_new_signer_or_none_warns_at_the_registry(served: ServedRegistry, cli: Cli, tmp_path: Path) -> None:
    token = cli.token(served, "acme", "publisher")
    first = _publish(cli, served, token, "1.0.0")
    assert (first["tier"], first["action"]) == ("community", "notice")
    assert not _codes(first) & {"SIGNER_CHANGED", "SIGNATURE_DROPPED", "SIGNER_CHANGE_UNREVIEWED"}
    same = _publish(cli, served, token, "1.1.0")
    assert (same["tier"], same["action"]) == ("community", "notice")

    from tests.support.federation import fake_digest

    other = cli.sigstore.sign_digest(fake_digest("publish-cli", "2.0.0"), identity=OTHER, issuer=GHA)
    changed = _publish(cli, served, token, "2.0.0", bundle=other)
    assert (changed["tier"], changed["action"]) == ("community", "warn")
    reasons = {r["code"]: r["message"] for r in changed["decision"]["reasons"]}
    assert reasons["SIGNER_CHANGED"] == (f"acme/tool is signed by {OTHER} ({GHA}); the previous version 1.1.0 "
                                         f"was signed by {SIGNER} ({GHA})")
    assert "SIGNER_CHANGE_UNREVIEWED" in reasons  # Verified needs a core-team review of this digest

    # Signed again by the original workflow: a change again (compared with the previous version).
    back = _publish(cli, served, token, "2.1.0")
    assert "SIGNER_CHANGED" in _codes(back)

    untrusted = PrivateSigstore(tmp_path / "untrusted").sign_digest(
        fake_digest("publish-cli", "3.0.0"), identity=SIGNER, issuer=GHA)
    dropped = _publish(cli, served, token, "3.0.0", bundle=untrusted)
    assert dropped["action"] == "warn" and "SIGNATURE_DROPPED" in _codes(dropped)
    assert "SIGNER_CHANGED" not in _codes(dropped)

    import sqlite3

    with sqlite3.connect(served.db.removeprefix("sqlite:///")) as conn:
        stored = {v: json.loads(i)["evidence"]["signer_continuity"] for v, i in conn.execute(
            "SELECT version, input_json FROM plugin_version")}
    assert stored["1.0.0"]["first_seen_signer"] is True and stored["1.0.0"]["previous_version"] is None
    assert stored["1.1.0"]["first_seen_signer"] is False and stored["1.1.0"]["signer_changed"] is False
    assert stored["2.0.0"]["previous_signer"]["identity"] == SIGNER and stored["2.0.0"]["source"] == "registry"
    assert stored["2.1.0"]["first_seen_signer"] is False  # SIGNER signed 1.x
    assert stored["3.0.0"]["signature_dropped"] is True


def test_the_previous_version_is_the_latest_not_revoked(served: ServedRegistry, cli: Cli) -> None:
    """A version revoked (e.g. signed after a compromise) is not what its successor is compared
    with."""
    token = cli.token(served, "acme", "publisher")
    from tests.support.federation import fake_digest

    _publish(cli, served, token, "4.0.0")
    evil = cli.sigstore.sign_digest(fake_digest("publish-cli", "4.1.0"), identity=OTHER, issuer=GHA)
    _publish(cli, served, token, "4.1.0", bundle=evil)
    r = cli("plugin", "revoke", "acme/tool@4.1.0", "--reason", "signed by a stolen identity", "--registry",
            served.url, token=token)
    assert r.code == 0, r.err
    fixed = _publish(cli, served, token, "4.2.0")
    assert not _codes(fixed) & {"SIGNER_CHANGED", "SIGNATURE_DROPPED"}


def _sig(identity: str | None, *, root: str = "r") -> SignatureEvidence:
    if identity is None:
        return SignatureEvidence(present=True, verified=False, error="untrusted root")
    return SignatureEvidence(present=True, verified=True, identity=identity, issuer=GHA, trusted_root=root)


def _ref(identity: str, *, root: str = "r") -> SignerRef:
    return SignerRef(identity=identity, issuer=GHA, trusted_root=root)


@pytest.mark.parametrize(("current", "earlier", "expected"), [
    (_sig("a"), [], (True, False, False)),
    (_sig(None), [], (False, False, False)),
    (_sig("a"), [("1", _ref("a"))], (False, False, False)),
    (_sig("b"), [("1", _ref("a"))], (True, True, False)),
    (_sig("a", root="other"), [("1", _ref("a"))], (True, True, False)),  # same identity, another root
    (_sig("a"), [("1", _ref("a")), ("2", _ref("b"))], (False, True, False)),
    (_sig(None), [("1", _ref("a"))], (False, False, True)),
    (_sig("a"), [("1", None)], (True, False, False)),  # signed after an unsigned version: no change
])
def test_the_continuity_facts(current: SignatureEvidence, earlier: list[tuple[str, SignerRef | None]],
                              expected: tuple[bool, bool, bool]) -> None:
    facts = signer_continuity(current, earlier=earlier, source="registry")
    assert facts.present
    assert (facts.first_seen_signer, facts.signer_changed, facts.signature_dropped) == expected
    assert facts.previous_version == (earlier[-1][0] if earlier else None)
