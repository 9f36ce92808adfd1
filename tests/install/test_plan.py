"""The pure trust core of install and run (cortex_trust/install/_plan.py): every refusal, on
values alone.

Decisions are built directly here (the table maps whatever the policy says); the same rules
through the real policy and real registries are in test_installer.py, test_federation.py and
test_local_state.py.
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import cortex_trust.install._plan as core
from cortex_trust.errors import InputError, RegistryUnavailable
from cortex_trust.install import InstallRecord, RegistryTarget, VersionCandidate, parse_request
from cortex_trust.manifest import parse_manifest
from cortex_trust.policy import Decision, PolicyInput, RevocationEvidence, SignerContinuityEvidence, build_input
from cortex_trust.sources import VersionDetail, parse_github_ref
from tests.support.federation import fake_digest, manifest_text

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIGEST = fake_digest("plan")
OTHER = fake_digest("other")
SANDBOX = {"enabled": True, "network": False, "filesystem": False, "read_only_root": True,
           "cap_drop": ["ALL"], "no_new_privileges": True, "user": "65534:65534",
           "memory": "64m", "cpus": 0.5, "pids_limit": 64}
REVOKED = RevocationEvidence(checked=True, revoked=True, reason="key leaked",
                             fresh_as_of="2026-03-01T12:00:00Z", source="acme")
NOT_REVOKED = RevocationEvidence(checked=True, revoked=False, fresh_as_of="2026-03-01T12:00:00Z",
                                 source="acme")


def _decision(action: str, *, codes: tuple[str, ...] = ("TIER_COMMUNITY",),
              overridable: bool = False) -> Decision:
    return Decision.model_validate({
        "tier": "community", "action": action,
        "reasons": [{"code": c, "message": c.lower()} for c in codes],
        "sandbox": SANDBOX, "next_tier": None, "overridable": overridable,
        "policy_revision": "rev"})


def _input(revocation: RevocationEvidence = NOT_REVOKED, digest: str = DIGEST) -> PolicyInput:
    return build_input(manifest=parse_manifest(manifest_text("tool", "1.0.0")), image=None,
                       digest=digest, operation="install", now=NOW, cortex_version="0.1.0",
                       revocation=revocation, namespace="acme")


def _plan(decision: Decision, *, revocation: RevocationEvidence = NOT_REVOKED,
          full_name: str = "acme/tool", version: str = "1.0.0", digest: str = DIGEST) -> core.InstallPlan:
    m = parse_manifest(manifest_text("tool", version))
    return core.InstallPlan(request=parse_request(full_name), full_name=full_name, plugin="tool",
                       version=version, image=f"r.example/acme/tool@{digest}", digest=digest,
                       registry="acme", registry_url=None, manifest=m.to_document(),
                       policy_input=_input(revocation, digest), decision=decision)


def _record(name: str = "acme/tool", *, plugin: str = "tool", version: str = "1.0.0",
            digest: str = DIGEST, source: str = "registry") -> InstallRecord:
    return InstallRecord(name=name, version=version, image=f"r.example/acme/{plugin}@{digest}",
                         digest=digest, registry="acme", manifest={"name": plugin},
                         decision={}, policy_revision="rev", installed_at="2026-03-01T12:00:00Z",
                         source=source)


def _detail(**over: Any) -> VersionDetail:
    doc: dict[str, Any] = {
        "namespace": "acme", "name": "tool", "version": "1.0.0",
        "image": f"r.example/acme/tool@{DIGEST}", "digest": DIGEST, "state": "active",
        "tier": "community", "action": "notice", "published_at": "2026-03-01T12:00:00Z",
        "policy_revision": "rev", "published_by": "acme", "signer": None,
        "manifest": {"name": "tool"}, "evidence": {},
        "decision": _decision("notice").model_dump(mode="json", exclude={"failed"}),
        "revocation": None}
    doc.update(over)
    return VersionDetail.model_validate(doc)


# ------------------------------------------------------------------------ the revocation rule


def test_a_revoked_version_is_never_installed_or_run_whatever_the_decision() -> None:
    """The one rule beside the policy: an organization's policy that lost the REVOKED rule
    (here: an allow) still installs nothing and runs nothing revoked."""
    allow = _decision("allow")
    plan = _plan(allow, revocation=REVOKED)
    assert core.judge_install(plan, yes=True, allow_blocked=True).verdict == "refuse"
    with pytest.raises(InputError, match=r"acme/tool@1.0.0 is revoked"):
        core.check_commit(plan, core.InstallOutcome("install"))
    assert core.judge_run(allow, REVOKED, overrides=("TIER_COMMUNITY",)) == (False, False)
    assert core.judge_run(allow, NOT_REVOKED, overrides=()) == (True, False)


# ------------------------------------------------------------------------------------ run rule


@pytest.mark.parametrize("action", ["allow", "notice", "warn"])
def test_run_allows_what_does_not_block(action: str) -> None:
    assert core.judge_run(_decision(action), NOT_REVOKED, overrides=()) == (True, False)


def test_run_never_allows_a_failed_decision() -> None:
    failed = Decision.fail_closed("ENGINE_ERROR", "boom")
    assert core.judge_run(failed, NOT_REVOKED, overrides=("ENGINE_ERROR",)) == (False, False)


@pytest.mark.parametrize(("codes", "overridable", "overrides", "expected"), [
    (("TIER_EXPERIMENTAL",), True, ("TIER_EXPERIMENTAL",), (True, True)),
    (("TIER_EXPERIMENTAL",), True, ("TIER_EXPERIMENTAL", "OTHER"), (True, True)),
    # A new reason is never covered by an old override.
    (("TIER_EXPERIMENTAL", "REVOCATION_STALE"), True, ("TIER_EXPERIMENTAL",), (False, False)),
    (("TIER_EXPERIMENTAL",), True, (), (False, False)),
    (("TIER_EXPERIMENTAL",), False, ("TIER_EXPERIMENTAL",), (False, False)),
])
def test_run_allows_a_block_only_when_every_code_was_overridden(
        codes: tuple[str, ...], overridable: bool, overrides: tuple[str, ...],
        expected: tuple[bool, bool]) -> None:
    block = _decision("block", codes=codes, overridable=overridable)
    assert core.judge_run(block, NOT_REVOKED, overrides=overrides) == expected


# ---------------------------------------------------------------------- a new signer's consent


def _resigned(decision: Decision) -> core.InstallPlan:
    """A plan whose signer is not the one pinned in the installed record (the installer's fact)."""
    plan = _plan(decision)
    facts = SignerContinuityEvidence(present=True, signer_changed=True, previous_version="0.9.0",
                                     source="installer")
    evidence = plan.policy_input.evidence.model_copy(update={"signer_continuity": facts})
    return dataclasses.replace(plan, policy_input=plan.policy_input.model_copy(update={"evidence": evidence}))


@pytest.mark.parametrize(("action", "yes", "allow_signer_change", "ask", "consent"), [
    ("allow", True, False, True, None),  # --yes never accepts a new signer
    ("allow", False, True, False, "--allow-signer-change"),
    ("warn", True, False, True, None),
    ("warn", False, True, True, "--allow-signer-change"),  # the policy's warn still asks
    ("warn", True, True, False, "--allow-signer-change"),
    ("block", True, False, True, None),  # an overridden block asks for the signer too
    ("block", True, True, False, "--allow-signer-change"),
])
def test_a_new_signer_is_accepted_only_by_the_flag_or_at_the_prompt(
        action: str, yes: bool, allow_signer_change: bool, ask: bool, consent: str | None) -> None:
    plan = _resigned(_decision(action, overridable=True))
    assert plan.signer_changed and not _plan(_decision(action)).signer_changed
    outcome = core.judge_install(plan, yes=yes, allow_blocked=True, allow_signer_change=allow_signer_change)
    # Before the prompt nothing consented to the new signer: only the person's yes does.
    assert (outcome.verdict, outcome.ask, outcome.signer_consent) == ("install", ask, consent)
    assert outcome.confirmed(plan).signer_consent == (consent or "prompt")
    unchanged = core.judge_install(_plan(_decision(action, overridable=True)), yes=yes, allow_blocked=True,
                                   allow_signer_change=allow_signer_change)
    assert unchanged.signer_consent is None and unchanged.ask == (action == "warn" and not yes)


def test_commit_refuses_a_new_signer_that_was_not_accepted() -> None:
    plan = _resigned(_decision("allow"))
    with pytest.raises(InputError, match=r"acme/tool@1.0.0 is not signed by the pinned signer") as e:
        core.check_commit(plan, core.InstallOutcome("install"))
    assert "--allow-signer-change" in (e.value.advice or "")
    core.check_commit(plan, core.InstallOutcome("install", signer_consent="prompt"))


@pytest.mark.parametrize("action", ["allow", "notice", "warn"])
def test_a_new_signer_is_committed_only_once_the_prompt_was_confirmed(action: str) -> None:
    plan = _resigned(_decision(action))
    asked = core.judge_install(plan, yes=True, allow_blocked=False)
    assert asked.ask and asked.signer_consent is None
    with pytest.raises(InputError, match="is not signed by the pinned signer"):
        core.check_commit(plan, asked)  # judged but never confirmed: no consent to record
    core.check_commit(plan, asked.confirmed(plan))
    assert asked.confirmed(plan).signer_consent == "prompt" and not asked.confirmed(plan).ask
    unchanged = _plan(_decision(action))
    assert core.judge_install(unchanged, yes=False, allow_blocked=False).confirmed(unchanged).signer_consent is None


# ------------------------------------------------------------------------------------- commit


@pytest.mark.parametrize(("decision", "outcome", "message"), [
    (_decision("notice"), core.InstallOutcome("refuse", why="blocked"),
     "acme/tool was not accepted for installation (blocked)"),
    (Decision.fail_closed("ENGINE_ERROR", "boom"), core.InstallOutcome("install"),
     "acme/tool was not accepted for installation"),
    (_decision("block", overridable=True), core.InstallOutcome("install"), "acme/tool is blocked"),
    (_decision("block", overridable=False), core.InstallOutcome("install", override=True),
     "acme/tool is blocked"),
])
def test_commit_refuses_what_was_not_accepted(decision: Decision, outcome: core.InstallOutcome,
                                              message: str) -> None:
    with pytest.raises(InputError) as e:
        core.check_commit(_plan(decision), outcome)
    assert e.value.message.startswith(message)


def test_commit_takes_an_accepted_plan_and_an_accepted_override() -> None:
    core.check_commit(_plan(_decision("notice")), core.InstallOutcome("install"))
    core.check_commit(_plan(_decision("block", overridable=True)),
                 core.InstallOutcome("install", override=True))


def test_one_container_per_plugin_name() -> None:
    plan = _plan(_decision("notice"))
    core.check_name_free(plan, [_record("acme/tool"), _record("acme/other", plugin="other")])
    with pytest.raises(InputError) as e:
        core.check_name_free(plan, [_record("beta/tool")])
    assert e.value.message == "a plugin named 'tool' is already installed as beta/tool"
    assert e.value.advice == "remove it first: cortex plugin remove beta/tool"


# --------------------------------------------------------------------- what a registry answers


def test_a_consistent_version_record_passes() -> None:
    core.check_version_record("acme/tool", VersionCandidate("1.0.0", "active", DIGEST), _detail(),
                         registry="acme")


@pytest.mark.parametrize(("over", "error", "message"), [
    ({"digest": OTHER, "image": f"r.example/acme/tool@{OTHER}"}, RegistryUnavailable,
     f"registry 'acme' lists {DIGEST} for acme/tool@1.0.0 but its record says {OTHER}"),
    ({"state": "revoked"}, InputError, "acme/tool@1.0.0 is revoked"),
    ({"image": "r.example/acme/tool:1.0.0"}, InputError,
     f"registry 'acme' records image r.example/acme/tool:1.0.0 which is not pinned to {DIGEST}"),
    ({"image": f"r.example/acme/tool@{OTHER}"}, InputError,
     f"registry 'acme' records image r.example/acme/tool@{OTHER} which is not pinned to {DIGEST}"),
    ({"manifest": None}, RegistryUnavailable, "registry 'acme' served no manifest for acme/tool@1.0.0"),
])
def test_an_inconsistent_or_unusable_version_record_is_refused(
        over: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as e:
        core.check_version_record("acme/tool", VersionCandidate("1.0.0", "active", DIGEST),
                             _detail(**over), registry="acme")
    assert type(e.value) is error and e.value.message == message


@pytest.mark.parametrize(("name", "version"), [("other", "1.0.0"), ("tool", "1.0.1")])
def test_a_served_manifest_must_name_the_request(name: str, version: str) -> None:
    core.check_served_manifest("acme/tool", parse_manifest(manifest_text("tool", "1.0.0")),
                          name="tool", version="1.0.0")
    with pytest.raises(InputError, match="the plugin's manifest and the request disagree"):
        core.check_served_manifest("acme/tool", parse_manifest(manifest_text(name, version)),
                              name="tool", version="1.0.0")


def test_a_404_is_not_in_that_registry() -> None:
    e = core.not_in_registry("acme/tool", registry="acme", url="https://acme.example")
    assert isinstance(e, InputError)
    assert e.message == "acme/tool is not in registry 'acme' (https://acme.example)"


def test_yank_reason() -> None:
    assert core.yank_reason(_detail()) is None
    assert core.yank_reason(_detail(state="yanked")) == "no reason given"
    assert core.yank_reason(_detail(state="yanked", yank={"reason": "  "})) == "no reason given"
    assert core.yank_reason(_detail(state="yanked", yank={"reason": "x" * 900})) == "x" * 499 + "…"


def test_a_github_plugin_must_pin_its_image() -> None:
    ref = parse_github_ref("github:acme-org/hello@v1")
    pinned = parse_manifest(manifest_text("hello", "1.0.0", image=f"ghcr.io/acme-org/hello@{DIGEST}"))
    assert core.github_image_digest(ref, pinned) == DIGEST
    tagged = parse_manifest(manifest_text("hello", "1.0.0", image="ghcr.io/acme-org/hello:1.0.0"))
    with pytest.raises(InputError, match="is not pinned by digest"):
        core.github_image_digest(ref, tagged)


# ------------------------------------------------------------------------------ installed state


def test_only_a_registry_install_is_updated() -> None:
    record = _record()
    assert core.check_updatable("acme/tool", record) is record
    with pytest.raises(InputError, match="acme/tool is not installed"):
        core.check_updatable("acme/tool", None)
    with pytest.raises(InputError, match="installed from GitHub"):
        core.check_updatable("github:acme-org/hello", _record("github:acme-org/hello", source="github"))


@pytest.mark.parametrize(("version", "digest", "expected"), [
    ("1.1.0", OTHER, True), ("1.1.0", DIGEST, False), ("1.0.0", OTHER, False),
    ("0.9.0", OTHER, False),
])
def test_an_update_is_another_digest_at_a_higher_version(version: str, digest: str,
                                                         expected: bool) -> None:
    assert core.is_update(_plan(_decision("notice"), version=version, digest=digest), _record()) is expected


def test_the_stored_input_must_be_there_and_about_the_installed_digest() -> None:
    stored = _input()
    assert core.check_stored_input("acme/tool", _record(), stored) is stored
    for missing in (None, _input(digest=OTHER)):
        with pytest.raises(InputError, match="the local install state of acme/tool is incomplete"):
            core.check_stored_input("acme/tool", _record(), missing)


def test_confirming_an_installed_version_with_its_registry() -> None:
    record = _record()
    assert core.confirm_version(record, _detail(), registry="acme") == (None, None)
    revoked = _detail(state="revoked", revocation={"reason": "leak", "revoked_at": "2026-03-02T00:00:00Z"})
    assert core.confirm_version(record, revoked, registry="acme") == (
        {"reason": "leak", "revoked_at": "2026-03-02T00:00:00Z"}, None)
    odd = _detail(state="revoked", revocation={"reason": 7})
    assert core.confirm_version(record, odd, registry="acme") == ({"reason": None, "revoked_at": None}, None)
    moved = _detail(digest=OTHER, image=f"r.example/acme/tool@{OTHER}")
    assert core.confirm_version(record, moved, registry="acme") == (None, (
        f"registry 'acme' now lists {OTHER} for acme/tool@1.0.0, not the installed {DIGEST}"))
    assert core.confirm_version(record, None, registry="acme", refused="no such version") == (
        None, "registry 'acme' cannot confirm acme/tool@1.0.0: no such version")


def test_only_the_recorded_feed_speaks_for_an_installation() -> None:
    target = RegistryTarget(name="acme", urls=("https://acme.example", "https://mirror.example"))
    assert core.feed_moved("acme/tool", ("acme", "https://acme.example"), target) is None
    moved = core.feed_moved("acme/tool", ("public", "https://public.example"), target)
    assert moved is not None and "installed from registry 'public' (https://public.example)" in moved
    unrecorded = core.feed_moved("acme/tool", None, target)
    assert unrecorded is not None and "installed from an unrecorded registry" in unrecorded
    assert core.feed_moved("acme/tool", ("acme", "https://other.example"), target) is not None


# ------------------------------------------------------------------------------------- purity


def test_the_core_has_no_socket_file_or_clock() -> None:
    """_plan.py imports only the error types, the manifest's semver, the policy's documents,
    the message clipping of ``cortex_trust._text`` and typing helpers (outside
    ``TYPE_CHECKING``), and calls no ``open``."""
    tree = ast.parse(Path(core.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                imported.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                imported.add("." * child.level + (child.module or ""))
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Name):
                assert child.func.id != "open"
            walk(child)

    walk(tree)
    assert imported == {"__future__", "collections.abc", "dataclasses", "typing", ".._text",
                        "..errors", "..manifest", "..policy"}
