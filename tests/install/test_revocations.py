"""How clients match revocation feed entries (cortex_trust.install): each entry reaches what
its kind says, and what a client cannot interpret is matched by the broadest rule.

The feeds here are small objects with the registry client's ``revocations`` method; the real
registry's feed and the CLI are exercised in tests/registry/test_revocation_ownership.py.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cortex_trust.install import RevocationCache, revocation_evidence, sync_feed
from cortex_trust.sources import RevocationEntry, RevocationPage
from tests.support.federation import fake_digest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
D = fake_digest("acme", "hello")
OTHER = fake_digest("other")


@dataclass
class Feed:
    entries: list[RevocationEntry] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    def revocations(self, *, cursor: int = 0, limit: int = 500) -> RevocationPage:
        self.calls.append(cursor)
        items = [e for e in self.entries if e.cursor > cursor][:limit]
        return RevocationPage(items=tuple(items), next_cursor=items[-1].cursor if items else cursor)


def entry(cursor: int, kind: str | None, *, namespace: str = "evil", name: str = "clone",
          version: str = "1.0.0", digest: str = D) -> RevocationEntry:
    doc = {"cursor": cursor, "namespace": namespace, "name": name, "version": version,
           "digest": digest, "reason": f"revoked by {namespace}", "identity": None,
           "issuer": None, "revoked_at": "2026-02-01T00:00:00Z"}
    if kind is not None:
        doc["kind"] = kind
    return RevocationEntry.model_validate(doc)


def evidence(tmp_path: Path, *entries: RevocationEntry, namespace: str | None = "acme",
             name: str | None = "hello", version: str | None = "1.0.0",
             digest: str = D) -> bool:
    directory = tmp_path / uuid.uuid4().hex  # a fresh cache for each question
    directory.mkdir(mode=0o700)
    cache = RevocationCache(directory)
    state = sync_feed(Feed(list(entries)), registry="r", url="http://r", cache=cache, now=NOW)
    ev = revocation_evidence(state, registry="r", digest=digest, namespace=namespace, name=name,
                             version=version)
    assert ev.checked
    return ev.revoked


def test_another_namespaces_version_revocation_of_the_same_image_does_not_match(
        tmp_path: Path) -> None:
    """The attack: {evil, clone, 1.0.0, acme's digest} must not revoke acme/hello@1.0.0."""
    assert not evidence(tmp_path, entry(1, "version"))
    # The same image installed from GitHub (no namespace) is not reached either.
    assert not evidence(tmp_path, entry(1, "version"), namespace=None, name=None, version=None)


def test_a_version_revocation_matches_its_own_version(tmp_path: Path) -> None:
    own = entry(1, "version", namespace="acme", name="hello")
    assert evidence(tmp_path, own)
    # The same version under another digest (a registry that changed its record) stays revoked.
    assert evidence(tmp_path, own, digest=OTHER)
    assert not evidence(tmp_path, own, version="1.0.1")
    assert not evidence(tmp_path, own, name="hello-two")


@pytest.mark.parametrize("kind", ["digest", "identity"])
def test_admin_revocations_match_the_digest_under_any_name(tmp_path: Path, kind: str) -> None:
    assert evidence(tmp_path, entry(1, kind))
    assert evidence(tmp_path, entry(1, kind), namespace=None, name=None, version=None)
    assert not evidence(tmp_path, entry(1, kind, digest=OTHER))


@pytest.mark.parametrize("kind", [None, "namespace", "VERSION", ""])
def test_entries_without_a_known_kind_match_by_the_broadest_rule(tmp_path: Path,
                                                                 kind: str | None) -> None:
    """An older registry (no kind) or a kind this client does not know: fail closed."""
    assert evidence(tmp_path, entry(1, kind))
    assert evidence(tmp_path, entry(1, kind, namespace="acme", name="hello", digest=OTHER))
    assert not evidence(tmp_path, entry(1, kind, digest=OTHER))


def test_a_cache_written_before_kinds_is_read_again_from_the_start(tmp_path: Path) -> None:
    """A cached kind-less entry would be matched by digest forever; the feed is re-read so the
    registry's kinds apply (the cache is not trusted as current meanwhile)."""
    old = {"schema": "cortex.revocations/v1", "registries": {"r": {
        "registry": "r", "url": "http://r", "cursor": 1, "fresh_as_of": "2026-03-01T11:00:00Z",
        "revoked": [{"namespace": "evil", "name": "clone", "version": "1.0.0", "digest": D,
                     "reason": "x", "revoked_at": "2026-02-01T00:00:00Z"}]}}}
    path = tmp_path / "revocations.json"
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    cache = RevocationCache(tmp_path)
    assert cache.get("r", url="http://r") is None  # never synced, as far as matching goes
    ev = revocation_evidence(cache.get("r", url="http://r"), registry="r", digest=D,
                             namespace="acme", name="hello", version="1.0.0")
    assert (ev.checked, ev.revoked) == (False, False)
    feed = Feed([entry(1, "version")])
    state = sync_feed(feed, registry="r", url="http://r", cache=cache, now=NOW)
    assert feed.calls[0] == 0 and state.kinds and [r.kind for r in state.revoked] == ["version"]
    stored = cache.get("r", url="http://r")
    assert stored is not None and stored.revoked == state.revoked
    assert not revocation_evidence(stored, registry="r", digest=D, namespace="acme",
                                   name="hello", version="1.0.0").revoked
