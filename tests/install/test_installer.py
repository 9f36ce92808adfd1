"""The installer library: request grammar, the act-on-decision table, revocation feeds.

Decisions come from the real default policies (embedded engine); revocation feeds are the real
registry's (see tests/install/test_federation.py) or, for feeds a real registry would never serve
(cursors going backwards, malformed entries), a small object with the same ``revocations``
method.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_trust.engine import EmbeddedEngine, decide
from cortex_trust.errors import InputError, RegistryUnavailable
from cortex_trust.install import (
    CortexConfig,
    InstallOutcome,
    InstallPlan,
    RegistryEntry,
    RevocationCache,
    judge_install,
    parse_request,
    registry_target,
    revocation_evidence,
    sync_feed,
)
from cortex_trust.manifest import parse_manifest
from cortex_trust.policy import Action, Decision, PolicyInput, build_input, load_policy_set
from cortex_trust.sources import RevocationEntry, RevocationPage
from tests.support.federation import Federation, fake_digest, installer, manifest_text
from tests.support.hostile import org_replacing_revocation

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DIGEST = fake_digest("x")


# ------------------------------------------------------------------------------ request grammar


@pytest.mark.parametrize(("text", "ns", "name", "version"), [
    ("acme/tool", "acme", "tool", None),
    ("acme/tool@1.2.3", "acme", "tool", "1.2.3"),
    ("acme/tool@^1.2", "acme", "tool", "^1.2"),
    ("cortex/my-plugin@>=1.0,<2", "cortex", "my-plugin", ">=1.0,<2"),
])
def test_parse_request_accepts_names(text: str, ns: str, name: str, version: str | None) -> None:
    r = parse_request(text)
    assert (r.kind, r.namespace, r.name, r.version) == ("registry", ns, name, version)
    assert r.full_name == f"{ns}/{name}"


@pytest.mark.parametrize("text", [
    "tool", "acme/../tool", "../acme/tool", "acme/tool/x", "ACME/tool", "acme/Tool",
    "acme/tооl",  # Cyrillic o's
    "acme/tool@", "acme/tool@1.0;rm", "acme/tool@../../x", "acme//tool", "/acme/tool",
    "acme/tool?x=1", "acme/tool#frag", "acme%2ftool", "http://evil/acme/tool", "-acme/tool",
    "acme/tool-", "a" * 65 + "/tool", "acme/tool@" + "1" * 80, "", " acme/tool",
    "github:../../etc", "github:owner/repo/../../x", "github:evil.com/x",
])
def test_parse_request_refuses_hostile_names(text: str) -> None:
    with pytest.raises(InputError):
        parse_request(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parse_request_never_lets_a_path_through(text: str) -> None:
    try:
        r = parse_request(text)
    except InputError:
        return
    if r.kind == "registry":
        assert r.namespace and r.name
        assert "/" not in r.namespace + r.name and ".." not in r.full_name
        assert r.full_name.isascii() and r.full_name == r.full_name.lower()
    else:
        assert r.github is not None and ".." not in r.github.owner + r.github.repo


def test_github_request() -> None:
    r = parse_request("github:acme-org/hello-plugin@v1.2.0")
    assert r.kind == "github" and r.full_name == "github:acme-org/hello-plugin"


@pytest.mark.security_review
@pytest.mark.parametrize("text", ["acme/tool\n", "acme/tool@1.0.0\n", "acme\n/tool"])
def test_install_requests_with_a_newline_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_request(text)


# ----------------------------------------------------------------------------- registry target


def test_target_scoping_and_override() -> None:
    config = CortexConfig(registry="https://public.example", registries=(
        RegistryEntry(name="acme", url="https://acme.internal", scopes=("acme/*",),
                      token_env="ACME_TOKEN", mirrors=("https://acme-mirror.internal",)),
        RegistryEntry(name="special", url="https://special.internal", scopes=("acme/special",)),
    ))
    t = registry_target(config, "acme/tool", tokens={"acme": "s3cret-token"},
                        registry_override="https://other.example")
    assert (t.name, t.urls) == ("acme", ("https://acme.internal", "https://acme-mirror.internal"))
    assert "s3cret" not in repr(t)
    assert registry_target(config, "acme/special").name == "special"  # most specific wins
    other = registry_target(config, "beta/tool", registry_override="https://other.example")
    assert (other.name, other.urls) == ("default", ("https://other.example",))
    assert registry_target(config, "beta/tool").urls == ("https://public.example",)


# ------------------------------------------------------------------------ act on the decision


@pytest.fixture(scope="module")
def engine() -> Any:
    with EmbeddedEngine(load_policy_set()) as e:
        yield e


def _decision(engine: Any, *, signature_trusted: bool = False, revoked: bool = False,
              fresh: bool = True, data_action: str | None = None) -> Decision:
    from cortex_trust.policy import RevocationEvidence

    m = parse_manifest(manifest_text("tool", "1.0.0"))
    rev = RevocationEvidence(checked=True, revoked=revoked,
                             fresh_as_of=(NOW if fresh else NOW - timedelta(days=3))
                             .strftime("%Y-%m-%dT%H:%M:%SZ"), source="test")
    inp = build_input(manifest=m, image=f"127.0.0.1:5000/acme/tool@{DIGEST}", digest=DIGEST,
                      operation="install", now=NOW, cortex_version="0.1.0", revocation=rev,
                      namespace="acme")
    return decide(engine, inp)


def _plan(decision: Decision, widened: tuple[str, ...] = ()) -> InstallPlan:
    m = parse_manifest(manifest_text("tool", "1.0.0"))
    inp = build_input(manifest=m, image=None, digest=DIGEST, operation="install", now=NOW,
                      cortex_version="0.1.0")
    return InstallPlan(request=parse_request("acme/tool"), full_name="acme/tool", plugin="tool",
                       version="1.0.0", image=f"r/acme/tool@{DIGEST}", digest=DIGEST,
                       registry="default", registry_url=None, manifest=m.to_document(),
                       policy_input=inp, decision=decision, widened=widened)


def test_warn_asks_unless_yes(engine: Any) -> None:
    d = _decision(engine)
    assert d.action.value == "warn"  # experimental, by the default action map
    assert judge_install(_plan(d), yes=False, allow_blocked=False).ask is True
    o = judge_install(_plan(d), yes=True, allow_blocked=False)
    assert (o.verdict, o.ask) == ("install", False)


def test_revoked_blocks_and_is_never_overridable(engine: Any) -> None:
    d = _decision(engine, revoked=True)
    assert d.action.value == "block" and "REVOKED" in d.codes and not d.overridable
    o = judge_install(_plan(d), yes=True, allow_blocked=True)
    assert o.verdict == "refuse"


def test_stale_revocation_blocks_install(engine: Any) -> None:
    d = _decision(engine, fresh=False)
    assert "REVOCATION_STALE" in d.codes
    assert judge_install(_plan(d), yes=True, allow_blocked=True).verdict == "refuse"


def test_failed_decision_is_failed_not_refused() -> None:
    d = Decision.fail_closed("ENGINE_ERROR", "boom")
    assert judge_install(_plan(d), yes=True, allow_blocked=True).verdict == "failed"


def test_widened_update_asks_whatever_the_tier(engine: Any) -> None:
    d = _decision(engine)
    o = judge_install(_plan(d, widened=("network access",)), yes=False, allow_blocked=False)
    assert o.ask
    with EmbeddedEngine(load_policy_set(data_files=[_data(d_action="allow")])) as allow_engine:
        allowed = _decision(allow_engine)
    assert allowed.action.value == "allow"
    assert judge_install(_plan(allowed), yes=False, allow_blocked=False).ask is False
    assert judge_install(_plan(allowed, widened=("network access",)), yes=False,
                         allow_blocked=False).ask is True


def test_overridable_block_needs_the_flag(engine: Any) -> None:
    with EmbeddedEngine(load_policy_set(data_files=[_data(d_action="block")])) as block_engine:
        d = _decision(block_engine)
    assert d.action.value == "block" and d.overridable
    assert judge_install(_plan(d), yes=True, allow_blocked=False).verdict == "refuse"
    o = judge_install(_plan(d), yes=False, allow_blocked=True)
    assert (o.verdict, o.override, o.ask) == ("install", True, False)



def _data(*, d_action: str) -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp())
    p = d / f"actions-{d_action}.yaml"
    p.write_text(f"cortex_config:\n  actions:\n    experimental: {d_action}\n")
    return p


@pytest.mark.security_review
def test_a_revoked_plugin_never_runs_even_if_an_org_policy_drops_the_rule(
        federation: Federation, tmp_path: Path) -> None:
    """"A revoked plugin refuses to start" is unconditional: a policy set whose revocation
    module was replaced (tests/policy/test_sets.py) must not let a revoked digest run or
    install."""
    fed = federation
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    fed.private.publish(fed.sigstore, "acme", "tool", "1.1.0")
    org = org_replacing_revocation(tmp_path)
    now = datetime.now(UTC)
    with installer(fed, policy_dirs=[org]) as inst:
        plan = inst.plan("acme/tool@1.0.0", now=now)
        inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))
        assert inst.check_run("acme/tool", now=now).allowed
        fed.private.revoke("acme", "tool", "1.0.0", reason="signing key leaked")
        check = inst.check_run("acme/tool", now=now + timedelta(minutes=1))
        assert check.revoked
        assert "REVOKED" not in check.decision.codes  # the org policy really dropped the rule
        assert not check.allowed and not check.overridden
        # At install: a plan whose revocation evidence says revoked is refused whatever the
        # action (here the feed revoked the digest; the policy no longer blocks it).
        plan2 = inst.plan("acme/tool@1.1.0", now=now)
        ev = plan2.policy_input.evidence
        revoked_ev = ev.revocation.model_copy(update={"revoked": True, "reason": "feed"})
        pi = PolicyInput.model_validate_json(plan2.policy_input.model_copy(update={
            "evidence": ev.model_copy(update={"revocation": revoked_ev})}).to_json())
        decision = decide(inst.engine, pi)
        assert decision.action is not Action.BLOCK and "REVOKED" not in decision.codes
        plan3 = replace(plan2, policy_input=pi, decision=decision)
        for yes, allow_blocked in ((True, True), (False, False)):
            assert judge_install(plan3, yes=yes, allow_blocked=allow_blocked).verdict == "refuse"
        with pytest.raises(InputError):
            inst.commit(plan3, now=now, outcome=InstallOutcome("install"))


# ----------------------------------------------------------------------------- revocation feeds


@dataclass
class Feed:
    """Serves pages like GET /api/v1/revocations (used only for feeds no real registry serves)."""

    entries: list[RevocationEntry] = field(default_factory=list)
    next_override: int | None = None
    down: bool = False

    def revocations(self, *, cursor: int = 0, limit: int = 500) -> RevocationPage:
        if self.down:
            raise RegistryUnavailable("down")
        items = [e for e in self.entries if e.cursor > cursor][:limit]
        nxt = items[-1].cursor if items else cursor
        return RevocationPage(items=tuple(items),
                              next_cursor=self.next_override if self.next_override is not None
                              else nxt)


def _entry(cursor: int, digest: str = DIGEST, version: str = "1.0.0") -> RevocationEntry:
    return RevocationEntry(cursor=cursor, namespace="acme", name="tool", version=version,
                           digest=digest, reason="key leaked", identity=None, issuer=None,
                           revoked_at="2026-02-01T00:00:00Z")


def test_never_synced_is_unchecked(tmp_path: Path) -> None:
    cache = RevocationCache(tmp_path)
    ev = revocation_evidence(cache.get("r", url="http://r"), registry="r", digest=DIGEST)
    assert (ev.checked, ev.revoked) == (False, False)


def test_sync_follows_cursor_and_finds_revocation(tmp_path: Path) -> None:
    cache = RevocationCache(tmp_path)
    feed = Feed([_entry(1, fake_digest("other")), _entry(3)])
    state = sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW)
    assert state.cursor == 3 and state.fresh_as_of == "2026-03-01T12:00:00Z"
    ev = revocation_evidence(cache.get("r", url="http://r"), registry="r", digest=DIGEST)
    assert (ev.checked, ev.revoked, ev.reason, ev.source) == (True, True, "key leaked", "r")
    # Name and version match too (the same version under another digest is still revoked).
    ev2 = revocation_evidence(state, registry="r", digest=fake_digest("z"), namespace="acme",
                              name="tool", version="1.0.0")
    assert ev2.revoked
    # Incremental: the next sync starts at cursor 3.
    feed.entries.append(_entry(7, fake_digest("later"), "2.0.0"))
    later = sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW + timedelta(hours=1))
    assert later.cursor == 7 and len(later.revoked) == 3


def test_failed_sync_keeps_old_fresh_as_of(tmp_path: Path) -> None:
    cache = RevocationCache(tmp_path)
    feed = Feed([])
    sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW)
    feed.down = True
    with pytest.raises(RegistryUnavailable):
        sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW + timedelta(days=2))
    state = cache.get("r", url="http://r")
    assert state is not None and state.fresh_as_of == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize("feed", [
    Feed([_entry(5), _entry(4)]),  # cursors going backwards
    Feed([_entry(2), _entry(2)]),  # repeated cursor
    Feed([_entry(3)], next_override=1),  # next_cursor behind the items
    Feed([], next_override=-1),
])
def test_untrustworthy_feed_is_unavailable_and_changes_nothing(tmp_path: Path, feed: Feed) -> None:
    cache = RevocationCache(tmp_path)
    with pytest.raises(RegistryUnavailable):
        sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW)
    assert cache.get("r", url="http://r") is None


def test_cache_is_bound_to_the_url(tmp_path: Path) -> None:
    cache = RevocationCache(tmp_path)
    sync_feed(Feed([_entry(9)]), registry="r", url="http://one", cache=cache, now=NOW)
    assert cache.get("r", url="http://two") is None  # another server: start again from 0
    assert (tmp_path / "revocations.json").stat().st_mode & 0o077 == 0


def test_corrupt_cache_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "revocations.json").write_text("{not json")
    with pytest.raises(InputError):
        RevocationCache(tmp_path).get("r", url="http://r")


def test_module_surfaces_are_pinned() -> None:
    """What each module of the install package offers the others (the package's own surface is
    pinned in tests/test_public_surface.py)."""
    import importlib

    expected = {
        "_evidence": ["github_signature", "registry_piece", "registry_signature",
                      "transparency_facts"],
        "_federation": ["FederatedRegistry", "RegistryTarget", "default_target", "entry_target", "registry_target"],
        "_installer": ["Installer", "remove_installed"],
        "_plan": ["InstallOutcome", "InstallPlan", "RunCheck", "SyncReport", "check_commit",
                  "check_installed", "check_name_free", "check_served_manifest",
                  "check_stored_input", "check_updatable", "check_version_record",
                  "confirm_version", "feed_moved", "github_image_digest", "is_update",
                  "judge_install", "judge_run", "not_in_registry", "yank_reason"],
        "_request": ["PluginRequest", "parse_request"],
        "_revocations": ["FeedSource", "revocation_evidence", "sync_feed"],
        "_signer_pin": ["next_pin", "pinned_continuity", "seed_pin"],
        "_state": ["CheckpointStore", "FeedState", "InputStore", "InstallRecord", "InstallStore",
                   "RevocationCache", "RevokedVersion", "SignerChange", "SignerPin"],
        "_versions": ["VersionCandidate", "select_version", "widened_permissions"],
    }
    for module, names in expected.items():
        assert importlib.import_module(f"cortex_trust.install.{module}").__all__ == names, module
