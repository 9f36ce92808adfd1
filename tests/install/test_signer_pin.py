"""The installer's side of signer continuity, through the real CLI against real registries on
loopback and bundles minted by a private Sigstore (tests/support/sigstore_mint.py).

The first install pins the signer it saw (trust on first use) and `plugin info` shows it; an
install or update whose version is signed by another identity (or by nobody) is a re-consent
that `--yes` does not give: without a terminal it is refused (exit 1) naming
`--allow-signer-change`, and with it the pin moves and the change is recorded. The comparison is
a fact in the policy input, so the default policy's SIGNER_CHANGED / SIGNATURE_DROPPED reach the
person too. A pin that is damaged in the install state is an input error, never a new pin.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.install import InstallRecord, InstallStore
from tests.install.conftest import cortex, root_opt
from tests.support.federation import ISSUER, SIGNER, Federation
from tests.support.sigstore_mint import PrivateSigstore

OTHER = "https://github.com/mallory/fork/.github/workflows/release.yml@refs/heads/main"


def _record(fed: Federation) -> InstallRecord:
    record = InstallStore(fed.data_dir).get("acme/tool")
    assert record is not None
    return record


def _install_first(fed: Federation) -> InstallRecord:
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 0, r.output
    assert f"signer pinned: {SIGNER} ({ISSUER}), root {fed.sigstore.trusted_root_path.stem}" in r.stdout
    return _record(fed)


def _stored_input(fed: Federation) -> dict[str, Any]:
    [path] = (fed.data_dir / "inputs").glob("*.json")
    return json.loads(path.read_text())["input"]  # type: ignore[no-any-return]


def test_the_first_install_pins_the_signer_and_info_shows_it(federation: Federation) -> None:
    fed = federation
    record = _install_first(fed)
    assert record.signer is not None
    assert (record.signer.identity, record.signer.issuer, record.signer.trusted_root, record.signer.version) == (
        SIGNER, ISSUER, fed.sigstore.trusted_root_path.stem, "1.0.0")
    assert record.signer_changes == ()
    facts = _stored_input(fed)["evidence"]["signer_continuity"]
    assert facts == {"present": True, "first_seen_signer": True, "signer_changed": False, "signature_dropped": False,
                     "previous_version": None, "previous_signer": None, "source": "installer"}

    info = cortex(fed, "plugin", "info", "acme/tool")
    assert info.exit_code == 0, info.output
    assert (f"signer:    {SIGNER} ({ISSUER}), root {fed.sigstore.trusted_root_path.stem} (pinned at 1.0.0 on "
            f"{record.signer.pinned_at})") in info.stdout
    doc = json.loads(cortex(fed, "plugin", "info", "acme/tool", "--format", "json").stdout)
    assert doc["signer"] == record.signer.model_dump(mode="json") and doc["signer_changes"] == []

    # A version by the same signer moves nothing and asks nothing beyond the policy's warn.
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 0, r.output
    assert "SIGNER CHANGED" not in r.stderr and "signer pinned" not in r.stdout
    assert _record(fed).version == "1.1.0" and _record(fed).signer == record.signer
    assert _stored_input(fed)["evidence"]["signer_continuity"]["previous_version"] == "1.0.0"


def test_an_update_by_another_signer_is_refused_without_consent_and_recorded_with_it(
        federation: Federation) -> None:
    fed = federation
    first = _install_first(fed)
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0", identity=OTHER)

    # --yes accepts the policy's warn, never a new signer; no terminal to ask: refused.
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 1, r.output
    assert "needs your consent to a new signer and there is no terminal to ask" in r.stderr
    assert "--allow-signer-change" in r.stderr
    assert f"SIGNER CHANGED: acme/tool@1.1.0 is signed by {OTHER} ({ISSUER})" in r.stderr
    assert f"the pinned signer is {SIGNER} ({ISSUER})" in r.stderr
    assert "SIGNER_CHANGED" in r.stdout  # the policy's reason, from the installer's fact
    assert _record(fed) == first

    refused = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--format", "json", *root_opt(fed))
    assert refused.exit_code == 1
    doc = json.loads(refused.stdout)
    assert doc["installed"] is False and doc["outcome"]["ask"] is True
    assert doc["signer_continuity"]["signer_changed"] is True and doc["signer_continuity"]["source"] == "installer"
    assert doc["signer_continuity"]["previous_signer"]["identity"] == SIGNER
    assert doc["pinned_signer"]["identity"] == SIGNER
    assert "SIGNER_CHANGED" in {reason["code"] for reason in doc["decision"]["reasons"]}

    ok = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert ok.exit_code == 0, ok.output
    record = _record(fed)
    assert record.version == "1.1.0"
    assert record.signer is not None and (record.signer.identity, record.signer.version) == (OTHER, "1.1.0")
    [change] = record.signer_changes
    assert change.previous == first.signer and change.current == record.signer
    assert change.consent == "--allow-signer-change" and change.changed_at == record.signer.pinned_at
    info = cortex(fed, "plugin", "info", "acme/tool").stdout
    assert f"signer:    {OTHER} ({ISSUER})" in info
    assert (f"signer changed on {change.changed_at} (1.0.0 -> 1.1.0, accepted with --allow-signer-change): "
            f"{SIGNER} ({ISSUER})") in info

    # The pin is now the new signer: its next version is no change.
    fed.private.publish(fed.sigstore, "acme", "tool", "1.2.0", identity=OTHER)
    again = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert again.exit_code == 0, again.output
    assert _record(fed).signer == record.signer and len(_record(fed).signer_changes) == 1


def test_a_dropped_signature_is_a_change_and_a_signed_version_after_it_pins_again(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    first = _install_first(fed)
    untrusted = PrivateSigstore(tmp_path / "untrusted")  # its bundles verify against no trusted root
    fed.private.publish(untrusted, "acme", "tool", "1.1.0")
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 1 and "--allow-signer-change" in r.stderr
    assert "SIGNER CHANGED: acme/tool@1.1.0 has no verified signature (" in r.stderr, r.stderr
    assert "SIGNATURE_DROPPED" in r.stdout and "(--trusted-root, as at install)" in r.stderr
    ok = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert ok.exit_code == 0, ok.output
    record = _record(fed)
    assert record.signer is not None and record.signer.identity is None and record.signer.version == "1.1.0"
    assert [(c.previous, c.current.describe()) for c in record.signer_changes] == [(first.signer, "unsigned")]
    assert "signer:    unsigned (pinned at 1.1.0" in cortex(fed, "plugin", "info", "acme/tool").stdout

    # Signed again after an unsigned pin: nothing to consent to, the pin is the signer again.
    fed.private.publish(fed.sigstore, "acme", "tool", "1.2.0")
    signed = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert signed.exit_code == 0, signed.output
    assert _record(fed).signer is not None and _record(fed).signer.identity == SIGNER  # type: ignore[union-attr]
    assert len(_record(fed).signer_changes) == 1


def test_another_signer_after_an_accepted_unsigned_version_still_needs_consent(
        federation: Federation, tmp_path: Path) -> None:
    fed = federation
    first = _install_first(fed)
    fed.private.publish(PrivateSigstore(tmp_path / "untrusted"), "acme", "tool", "1.1.0")
    dropped = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert dropped.exit_code == 0, dropped.output
    unsigned = _record(fed)
    assert unsigned.signer is not None and unsigned.signer.identity is None

    # The unsigned pin does not make the next signer a first one: it is compared with the last signed pin.
    fed.private.publish(fed.sigstore, "acme", "tool", "1.2.0", identity=OTHER)
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 1, r.output
    assert "needs your consent to a new signer" in r.stderr and "--allow-signer-change" in r.stderr
    assert "SIGNER_CHANGED" in r.stdout
    assert f"the pinned signer is unsigned, pinned at 1.1.0 on {unsigned.signer.pinned_at}; last signed by {SIGNER}" \
        in r.stderr
    assert _record(fed) == unsigned

    ok = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert ok.exit_code == 0, ok.output
    record = _record(fed)
    assert record.signer is not None and (record.signer.identity, record.signer.version) == (OTHER, "1.2.0")
    assert [(c.previous, c.current) for c in record.signer_changes] == [
        (first.signer, unsigned.signer), (unsigned.signer, record.signer)]


def test_reinstalling_over_a_record_compares_with_its_pin(federation: Federation) -> None:
    fed = federation
    _install_first(fed)
    fed.private.publish(fed.sigstore, "acme", "tool", "2.0.0", identity=OTHER)
    r = cortex(fed, "plugin", "install", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 1 and "--allow-signer-change" in r.stderr
    assert _record(fed).version == "1.0.0"
    ok = cortex(fed, "plugin", "install", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert ok.exit_code == 0, ok.output
    assert "the change from" in ok.stdout and "accepted with --allow-signer-change" in ok.stdout
    assert _record(fed).signer.identity == OTHER  # type: ignore[union-attr]


@pytest.mark.parametrize("confirmed", [True, False])
def test_a_terminal_asks_and_records_the_answer(federation: Federation, monkeypatch: pytest.MonkeyPatch,
                                                confirmed: bool) -> None:
    import cli.plugin_install as mod

    fed = federation
    first = _install_first(fed)
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0", identity=OTHER)
    questions: list[str] = []
    monkeypatch.setattr(mod, "sys", types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True)))
    monkeypatch.setattr(mod, "_confirm", lambda q: questions.append(q) or confirmed)
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert questions == ["accept the new signer and update anyway? (recorded; the pin moves to it)"]
    if not confirmed:
        assert r.exit_code == 1 and "not confirmed" in r.stderr
        assert _record(fed) == first
        return
    assert r.exit_code == 0, r.output
    [change] = _record(fed).signer_changes
    assert change.consent == "prompt" and change.current.identity == OTHER


def _tamper(fed: Federation, edit: str) -> None:
    path = fed.data_dir / "installed.json"
    doc = json.loads(path.read_text())
    record = doc["plugins"]["acme/tool"]
    if edit == "no signer":
        del record["signer"]
    elif edit == "identity without issuer":
        record["signer"]["issuer"] = None
    elif edit == "unknown field":
        record["signer"]["trusted"] = True
    elif edit == "not an object":
        record["signer"] = OTHER
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("edit", ["no signer", "identity without issuer", "unknown field", "not an object"])
def test_a_damaged_pin_is_an_input_error_never_a_new_pin(federation: Federation, edit: str) -> None:
    fed = federation
    _install_first(fed)
    _tamper(fed, edit)
    before = (fed.data_dir / "installed.json").read_bytes()
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0", identity=OTHER)
    for args in (("update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed)),
                 ("install", "acme/tool", "--yes", *root_opt(fed)), ("info", "acme/tool")):
        r = cortex(fed, "plugin", *args)
        assert r.exit_code == 2, (args, r.output)
        assert "the install state" in r.stderr and "is corrupt" in r.stderr and "reinstall" in r.stderr
    assert (fed.data_dir / "installed.json").read_bytes() == before


def _from_before_pins(fed: Federation, *, carried_over: bool = False) -> InstallRecord:
    """Make the installed record one from before pins: a v1 state without `signer`, or (``carried_over``)
    a v2 state that wrote such a record again, unpinned (`"signer": null`)."""
    first = _install_first(fed)
    path = fed.data_dir / "installed.json"
    doc = json.loads(path.read_text())
    doc["schema"] = "cortex.installed/v2" if carried_over else "cortex.installed/v1"
    for key in ("signer", "signer_changes"):
        del doc["plugins"]["acme/tool"][key]
    if carried_over:
        doc["plugins"]["acme/tool"]["signer"] = None
    path.write_text(json.dumps(doc))
    assert "signer:    not pinned" in cortex(fed, "plugin", "info", "acme/tool").stdout
    return first


def test_a_record_from_before_pins_is_pinned_to_the_signer_its_install_was_decided_with(
        federation: Federation) -> None:
    fed = federation
    first = _from_before_pins(fed)
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 0, r.output
    record = _record(fed)
    assert record.signer is not None and (record.signer.identity, record.signer.version) == (SIGNER, "1.0.0")
    assert record.signer.pinned_at == first.installed_at and record.signer_changes == ()
    assert json.loads((fed.data_dir / "installed.json").read_text())["schema"] == "cortex.installed/v2"


@pytest.mark.parametrize("carried_over", [False, True])
def test_another_signer_on_the_first_update_of_a_record_from_before_pins_needs_consent(
        federation: Federation, carried_over: bool) -> None:
    fed = federation
    _from_before_pins(fed, carried_over=carried_over)
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0", identity=OTHER)
    r = cortex(fed, "plugin", "update", "acme/tool", "--yes", *root_opt(fed))
    assert r.exit_code == 1, r.output
    assert "needs your consent to a new signer" in r.stderr and "--allow-signer-change" in r.stderr
    assert f"the pinned signer is {SIGNER} ({ISSUER})" in r.stderr
    ok = cortex(fed, "plugin", "update", "acme/tool", "--yes", "--allow-signer-change", *root_opt(fed))
    assert ok.exit_code == 0, ok.output
    [change] = _record(fed).signer_changes
    assert (change.previous.identity, change.previous.version, change.current.identity) == (SIGNER, "1.0.0", OTHER)


def test_a_github_plugin_reinstalled_at_a_ref_without_attestation_drops_its_signature(
        federation: Federation) -> None:
    """A GitHub plugin follows refs its user chooses: reinstalling it at another ref compares the
    new ref's attested signer with the pin as an update does."""
    from cortex_trust.install import CortexConfig, load_config, save_config
    from tests.support.federation import fake_digest, manifest_text
    from tests.support.github_wire_server import FakeGitHub, serve

    fed = federation
    gh = FakeGitHub()
    identity = "https://github.com/acme-org/hello/.github/workflows/release.yml@refs/tags/v1"
    for ref, version in (("v1", "1.0.0"), ("v2", "1.1.0")):
        digest = fake_digest("gh-pin", ref)
        gh.files[("acme-org", "hello", ref, "manifest.yaml")] = manifest_text(
            "hello", version, image=f"ghcr.io/acme-org/hello@{digest}").encode()
        if ref == "v1":  # v2 has no attestation
            bundle = fed.sigstore.sign_dsse_statement(digest, identity=identity, issuer=ISSUER)
            gh.attestations[("acme-org", "hello", digest)] = [json.loads(bundle)]
    server, url = serve(gh)
    try:
        cfg = load_config(fed.config_path)
        save_config(fed.config_path, CortexConfig(registry=cfg.registry, registries=cfg.registries, github_api=url))
        data = fed.data_dir.parent / "github-signers.yaml"
        data.write_text("cortex_config:\n  github_signers:\n    trusted_roots: [trusted_root]\n")
        opts = ["--yes", *root_opt(fed), "--data", str(data)]
        first = cortex(fed, "plugin", "install", "github:acme-org/hello@v1", *opts)
        assert first.exit_code == 0, first.output
        record = InstallStore(fed.data_dir).get("github:acme-org/hello")
        assert record is not None and record.signer is not None and record.signer.identity == identity
        r = cortex(fed, "plugin", "install", "github:acme-org/hello@v2", *opts)
        assert r.exit_code == 1, r.output
        assert "SIGNER CHANGED: github:acme-org/hello@1.1.0 has no verified signature" in r.stderr
        assert "--allow-signer-change" in r.stderr and "SIGNATURE_DROPPED" in r.stdout
        assert InstallStore(fed.data_dir).get("github:acme-org/hello") == record
    finally:
        server.shutdown()
