"""Federation (issue 6) against two real registries on loopback: a public one and a private one
that needs a token for every request (tests/support/federation.py).

Shown here: each namespace resolves from exactly one registry (the confusion case: a private
namespace that also exists publicly resolves only to the private one); a registry that is down,
or answers garbage, is reported as such (exit 3), never "no such plugin" or "not revoked";
mirrors are tried in order; the private registry's token works and never appears in output;
revocation is fed from the private registry; stale revocation data refuses to run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.errors import RegistryUnavailable
from cortex_trust.install import CortexConfig, InstallStore, judge_install, load_config, save_config
from tests.install.conftest import cortex, installed_tool, installer, root_opt
from tests.support.federation import ISSUER, SIGNER, Federation

# ----------------------------------------------------------------------------------- scoping


def test_private_namespace_resolves_only_to_the_private_registry(federation: Federation) -> None:
    fed = federation
    private = fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    # The dependency-confusion attempt: the same name, a higher version, on the public registry.
    fed.public.publish(fed.sigstore, "acme", "tool", "99.0.0")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--format", "json",
               *root_opt(fed))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["version"], doc["digest"], doc["registry"]) == ("1.0.0", private, "acme")
    assert doc["registry_url"] == fed.private.url
    # Every piece of registry evidence names the registry it came from.
    assert doc["evidence_sources"]["revocation"] == "acme"
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None and (record.registry, record.digest) == ("acme", private)


def test_unscoped_namespace_uses_the_default_registry(federation: Federation) -> None:
    fed = federation
    public = fed.public.publish(fed.sigstore, "beta", "tool", "2.0.0")
    fed.private.publish(fed.sigstore, "beta", "tool", "3.0.0")  # not in acme's scope
    with installer(fed) as inst:
        plan = inst.plan("beta/tool", now=datetime.now(UTC))
    assert (plan.registry, plan.version, plan.digest) == ("default", "2.0.0", public)


def test_unknown_plugin_on_its_registry_is_exit_2_naming_the_registry(
        federation: Federation) -> None:
    fed = federation
    fed.public.publish(fed.sigstore, "acme", "only-public", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/only-public", "--yes")
    # Present publicly, but acme/* resolves only from the private registry: not found there.
    assert r.exit_code == 2
    assert "not in registry 'acme'" in r.stderr


# ------------------------------------------------------------------------------------- tokens


def test_private_registry_token_works_and_is_never_printed(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--format", "json",
               *root_opt(fed))
    assert r.exit_code == 0, r.output
    assert fed.reader_token not in r.output
    for path in fed.data_dir.rglob("*"):
        if path.is_file():
            assert fed.reader_token not in path.read_text()
    # Without the token the private registry refuses; the message does not leak anything.
    r2 = cortex(fed, "plugin", "install", "acme/tool@1.0.0", "--yes", ACME_REGISTRY_TOKEN="")
    assert r2.exit_code == 2
    assert "token" in r2.stderr.lower()
    # A wrong token is refused, and not echoed back.
    wrong = "ctr_wrong-token-value-1234567890"
    r3 = cortex(fed, "plugin", "install", "acme/tool@1.0.0", "--yes", ACME_REGISTRY_TOKEN=wrong)
    assert r3.exit_code == 2 and wrong not in r3.output


# ----------------------------------------------------------------------------- unavailability


def test_registry_going_down_in_the_middle_is_exit_3(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    r = cortex(fed, "plugin", "install", "acme/tool@1.0.0", "--yes", *root_opt(fed))
    assert r.exit_code == 0, r.output
    fed.private.stop()
    r2 = cortex(fed, "plugin", "update", "acme/tool", "--yes")
    assert r2.exit_code == 3, r2.output
    assert "registry 'acme' is unavailable" in r2.stderr and "not in registry" not in r2.stderr
    r3 = cortex(fed, "plugin", "install", "acme/other", "--yes")
    assert r3.exit_code == 3
    assert "not in registry" not in r3.stderr
    # The installed record is untouched.
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None and record.version == "1.0.0"
    # Stopping the revocation feed: `sync` reports it, never "nothing revoked".
    r4 = cortex(fed, "plugin", "sync")
    assert r4.exit_code == 3 and "acme" in r4.stderr


def test_mirrors_are_tried_in_order(federation: Federation) -> None:
    fed = federation
    digest = fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    # The configured URL points to a closed port; the mirror is the real private registry.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()
    from cortex_trust.install import CortexConfig, RegistryEntry, save_config

    save_config(fed.config_path, CortexConfig(registry=fed.public.url, registries=(
        RegistryEntry(name="acme", url=dead, scopes=("acme/*",), token_env="ACME_REGISTRY_TOKEN",
                      mirrors=(fed.private.url,)),)))
    with installer(fed) as inst:
        plan = inst.plan("acme/tool", now=datetime.now(UTC))
    assert (plan.digest, plan.registry_url) == (digest, fed.private.url)
    # All URLs down: one error naming each of them.
    fed.private.stop()
    with installer(fed) as inst, pytest.raises(RegistryUnavailable) as err:
        inst.plan("acme/tool", now=datetime.now(UTC))
    assert dead in err.value.message and fed.private.url in err.value.message


class _Garbage(BaseHTTPRequestHandler):
    body = b'{"items": [{"namespace": "acme"'  # truncated JSON

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def garbage_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_garbage_answers_are_unavailable_not_missing(federation: Federation,
                                                     garbage_registry: str) -> None:
    fed = federation
    r = cortex(fed, "plugin", "install", "beta/tool", "--yes", "--registry", garbage_registry)
    assert r.exit_code == 3, r.output
    assert "does not understand" in r.stderr


def test_registry_override_does_not_move_a_scoped_namespace(federation: Federation,
                                                            garbage_registry: str) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--registry", garbage_registry,
               *root_opt(fed))
    assert r.exit_code == 0, r.output


# --------------------------------------------------------------------------------- revocation


def test_revocation_fed_from_the_private_registry(federation: Federation) -> None:
    fed = federation
    with installed_tool(fed) as (inst, now):
        ok = inst.check_run("acme/tool", now=now)
        assert ok.allowed and not ok.revoked and ok.sync_error is None
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
    assert check.revoked and not check.allowed
    assert "REVOKED" in check.decision.codes and not check.decision.overridable
    assert check.revocation.source == "acme"
    r = cortex(fed, "plugin", "sync")
    assert r.exit_code == 0 and "REVOKED: acme/tool@1.0.0" in r.stdout
    # A revoked version is never installed again, even pinned.
    r2 = cortex(fed, "plugin", "install", "acme/tool@1.0.0", "--yes")
    assert r2.exit_code == 2 and "revoked" in r2.stderr


def test_unreachable_registry_means_stale_never_not_revoked(federation: Federation) -> None:
    fed = federation
    with installed_tool(fed) as (inst, now):
        fed.private.stop()
        # Within the policy's freshness window the cached data still counts...
        soon = inst.check_run("acme/tool", now=now + timedelta(hours=1))
        assert soon.allowed and soon.sync_error is not None
        # ...past it, starting is refused (fail closed), and the reason says why.
        later = inst.check_run("acme/tool", now=now + timedelta(hours=30))
    assert not later.allowed and "REVOCATION_STALE" in later.decision.codes
    assert not later.revoked


@pytest.mark.security_review
def test_run_refuses_when_the_name_now_resolves_to_another_registry(federation: Federation) -> None:
    """A plugin installed from registry A, revoked there, must not run because the
    configuration now points its namespace at registry B, whose feed has never heard of it."""
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    now = datetime.now(UTC)
    with installer(fed) as inst:
        plan = inst.plan("acme/tool", now=now)
        inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))
        assert inst.check_run("acme/tool", now=now).allowed
    fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
    # The acme scope now points at the public registry (a moved or re-typed URL).
    cfg = load_config(fed.config_path)
    moved = tuple(e.model_copy(update={"url": fed.public.url}) if e.name == "acme" else e
                  for e in cfg.registries)
    save_config(fed.config_path, CortexConfig(registry=cfg.registry, registries=moved))
    with installer(fed) as inst:
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
        report = inst.sync(now=now + timedelta(minutes=1))
    assert not check.allowed
    assert "REVOCATION_UNKNOWN" in check.decision.codes
    assert check.sync_error is not None and fed.private.url in check.sync_error
    assert "acme" in report.errors


def test_github_install_uses_the_default_registry_feed(federation: Federation) -> None:
    from tests.support.federation import fake_digest, manifest_text
    from tests.support.github_wire_server import FakeGitHub, serve

    fed = federation
    digest = fake_digest("gh")
    gh = FakeGitHub()
    gh.files[("acme-org", "hello", "v1", "manifest.yaml")] = manifest_text(
        "hello", "1.0.0", image=f"ghcr.io/acme-org/hello@{digest}").encode()
    gh.files[("acme-org", "unpinned", "main", "manifest.yaml")] = manifest_text(
        "unpinned", "1.0.0", image="ghcr.io/acme-org/unpinned:1.0.0").encode()
    server, url = serve(gh)
    try:
        from cortex_trust.install import CortexConfig, save_config

        cfg = load_config(fed.config_path)
        save_config(fed.config_path, CortexConfig(registry=cfg.registry,
                                                  registries=cfg.registries, github_api=url))
        r = cortex(fed, "plugin", "install", "github:acme-org/hello@v1", "--yes", "--format",
                   "json")
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert (doc["name"], doc["digest"], doc["source"]) == ("github:acme-org/hello", digest,
                                                               "github")
        assert doc["evidence_sources"]["revocation"] == "default"
        r2 = cortex(fed, "plugin", "install", "github:acme-org/unpinned", "--yes")
        assert r2.exit_code == 2 and "not pinned by digest" in r2.stderr
    finally:
        server.shutdown()


# ------------------------------------------------------------------------- signature, override


def test_signature_is_reverified_locally_against_our_roots(federation: Federation) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    now = datetime.now(UTC)
    with installer(fed) as inst:
        sig = inst.plan("acme/tool", now=now).policy_input.evidence.signature
    assert (sig.verified, sig.identity, sig.issuer, sig.source) == (True, SIGNER, ISSUER, "acme")
    # The registry trusted this bundle; an installer that does not trust that root does not.
    with installer(fed, private_root=False) as inst:
        untrusted = inst.plan("acme/tool", now=now).policy_input.evidence.signature
    assert untrusted.present and not untrusted.verified and untrusted.error


def test_override_is_honoured_at_run_only_for_the_overridden_codes(federation: Federation,
                                                                    tmp_path: Path) -> None:
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    block = tmp_path / "block.yaml"
    block.write_text("cortex_config:\n  actions:\n    experimental: block\n")
    now = datetime.now(UTC)
    with installer(fed, data=[block]) as inst:
        plan = inst.plan("acme/tool", now=now)
        refused = judge_install(plan, yes=True, allow_blocked=False)
        assert refused.verdict == "refuse"
        outcome = judge_install(plan, yes=False, allow_blocked=True)
        record = inst.commit(plan, now=now, outcome=outcome)
        assert "TIER_EXPERIMENTAL" in record.overrides
        check = inst.check_run("acme/tool", now=now)
        assert check.allowed and check.overridden and check.decision.action.value == "block"
        fed.private.stop()
        stale = inst.check_run("acme/tool", now=now + timedelta(days=3))
    # A new, non-overridable reason is never covered by the old override.
    assert not stale.allowed and "REVOCATION_STALE" in stale.decision.codes


GHA = "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize("signer_repo,trusted", [("acme-org/hello", True), ("mallory/hello", False)])
def test_github_install_verifies_the_repositorys_attestation(federation: Federation, signer_repo: str,
                                                           trusted: bool) -> None:
    """A GitHub plugin's signature comes from GitHub's artifact attestations for the image digest
    (DSSE in-toto, as actions/attest-build-provenance makes them), verified locally; by default the
    policy trusts only that repository's own release workflow as the signer."""
    from tests.support.federation import fake_digest, manifest_text
    from tests.support.github_wire_server import FakeGitHub, serve

    fed = federation
    digest = fake_digest("gh-attested")
    gh = FakeGitHub()
    gh.files[("acme-org", "hello", "v1", "manifest.yaml")] = manifest_text(
        "hello", "1.0.0", image=f"ghcr.io/acme-org/hello@{digest}").encode()
    identity = f"https://github.com/{signer_repo}/.github/workflows/release.yml@refs/tags/v1"
    bundle = fed.sigstore.sign_dsse_statement(digest, identity=identity, issuer=GHA)
    gh.attestations[("acme-org", "hello", digest)] = [json.loads(bundle)]
    server, url = serve(gh)
    try:
        from cortex_trust.install import CortexConfig, save_config

        cfg = load_config(fed.config_path)
        save_config(fed.config_path, CortexConfig(registry=cfg.registry, registries=cfg.registries,
                                                  github_api=url))
        # The test's Sigstore is private: the organization names its root for GitHub signers
        # (by default only the public-good root is accepted).
        data = fed.data_dir.parent / "github-signers.yaml"
        data.write_text("cortex_config:\n  github_signers:\n    trusted_roots: [trusted_root]\n")
        with installer(fed, data=[data]) as inst:
            plan = inst.plan("github:acme-org/hello@v1", now=datetime.now(UTC))
        sig = plan.policy_input.evidence.signature
        assert (sig.present, sig.verified, sig.identity) == (True, True, identity)
        assert plan.policy_input.plugin.repository == "acme-org/hello"
        assert ("SIGNER_UNTRUSTED" in plan.decision.codes) is not trusted
        assert "SIGNATURE_MISSING" not in plan.decision.codes
    finally:
        server.shutdown()
