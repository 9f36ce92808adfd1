"""Following registries' revocation feeds, and matching their entries to an installed version.

Each registry serves ``GET /api/v1/revocations?cursor=N``: revoked versions after a
cursor, oldest first. :func:`sync_feed` follows it from the cursor stored in a
:class:`RevocationCache` to the end and records *when* the data was known to be current
(``fresh_as_of``, the reference time of the operation that completed the sync).

:func:`revocation_evidence` turns the cached state into the
:class:`~cortex_trust.policy.RevocationEvidence` the policy reads. Guarantees (fail
closed):

* a registry that was never synced gives ``checked: false`` (the policy blocks with
  ``REVOCATION_UNKNOWN`` where fresh data is required), never "not revoked";
* a failed sync leaves ``fresh_as_of`` where it was, so old data turns stale by the policy's
  clock (``REVOCATION_STALE``) instead of being read as current;
* a feed that goes backwards, repeats cursors or names malformed digests is
  :class:`~cortex_trust.errors.RegistryUnavailable` (we cannot trust it), and the cache is not
  touched;
* the cache is keyed by registry name *and* URL: pointing a name at another server starts
  that feed from zero;
* an entry reaches only what its ``kind`` says (see :func:`revocation_evidence`): a
  publisher's ``version`` revocation never reaches another namespace's plugin carrying the same
  image, while an entry without a kind, or of a kind this code does not know, is matched by
  the broadest rule (fail closed);
* a cache written before entries carried kinds is read as never synced, so its feed is read
  again from the start (its kind-less entries would otherwise stay matched by digest forever).

The cache is a state file like the others (:mod:`cortex_trust.install._state`). No environment
variables, no printing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from ..errors import InputError, RegistryUnavailable
from ..ids import is_digest
from ..policy import RevocationEvidence, format_time
from ._state import FeedState, RevocationCache, RevokedVersion

__all__ = ["FeedSource", "revocation_evidence", "sync_feed"]

#: Bounds on one sync, so a hostile feed cannot keep us reading forever.
_PAGE = 500
_MAX_PAGES = 2000
_MAX_ENTRIES = 200_000


class FeedSource(Protocol):
    """Anything with the registry client's ``revocations(cursor=, limit=)`` method."""

    def revocations(self, *, cursor: int = 0, limit: int = 500) -> Any: ...


def sync_feed(source: FeedSource, *, registry: str, url: str, cache: RevocationCache,
              now: datetime) -> FeedState:
    """Follow ``registry``'s feed from the cached cursor to its end; store and return the state.

    ``now`` (the operation's reference time) becomes ``fresh_as_of`` once the end of the feed
    was reached. Raises :class:`RegistryUnavailable` when the registry cannot be reached or
    serves a feed we cannot trust (cursors going backwards or repeating, malformed entries, no
    end in sight); the cache is then left unchanged, so its data ages into staleness.
    """
    state = cache.get(registry, url=url) or FeedState(registry=registry, url=url)
    cursor = state.cursor
    revoked = list(state.revoked)
    for _ in range(_MAX_PAGES):
        page = source.revocations(cursor=cursor, limit=_PAGE)
        items = list(page.items)
        last = cursor
        for item in items:
            if item.cursor <= last:
                raise _untrusted(registry, url, f"cursor {item.cursor} after {last}")
            last = item.cursor
            try:
                revoked.append(RevokedVersion(
                    kind=getattr(item, "kind", None), namespace=item.namespace, name=item.name,
                    version=item.version, digest=item.digest, reason=item.reason[:2000],
                    revoked_at=item.revoked_at))
            except ValidationError:
                raise _untrusted(registry, url, f"a malformed entry at cursor {item.cursor}"
                                 ) from None
        if len(revoked) > _MAX_ENTRIES:
            raise _untrusted(registry, url, f"more than {_MAX_ENTRIES} revocations")
        nxt = int(page.next_cursor)
        if nxt < last or (items and nxt != last):
            raise _untrusted(registry, url, f"next_cursor {nxt} does not follow cursor {last}")
        cursor = nxt
        if len(items) < _PAGE:
            new = FeedState(registry=registry, url=url, cursor=cursor,
                            fresh_as_of=format_time(now), revoked=tuple(revoked), kinds=True)
            cache.put(new)
            return new
    raise _untrusted(registry, url, f"the feed did not end after {_MAX_PAGES} pages")


#: Kinds matched by digest alone: an admin revoked the image under every name
#: (``digest``), or everything a signer signed (``identity``).
_DIGEST_WIDE = frozenset({"digest", "identity"})


def _entry_matches(entry: RevokedVersion, *, digest: str, namespace: str | None,
                  name: str | None, version: str | None) -> bool:
    """Whether feed ``entry`` revokes the plugin ``namespace/name@version`` with ``digest``.

    * ``version`` (a publisher revoking one of its versions): only that namespace, name and
      version; a plugin of another namespace carrying the same image is never reached, so no
      namespace can revoke another's. The entry's digest is carried but not required to
      match: within its own version a registry is not trusted to un-revoke by changing it.
    * ``digest`` and ``identity`` (admin acts): every plugin carrying the digest.
    * no kind (a registry or cache from before kinds) or a kind this code does not know: the
      broadest rule, the digest or the exact namespace, name and version (fail closed).

    A plugin without a namespace (installed from GitHub) is reached by digest only.
    """
    same_version = (namespace is not None and entry.namespace == namespace
                    and entry.name == name and entry.version == version)
    if entry.kind == "version":
        return same_version
    if entry.kind in _DIGEST_WIDE:
        return entry.digest == digest
    return entry.digest == digest or same_version


def _untrusted(registry: str, url: str, why: str) -> RegistryUnavailable:
    return RegistryUnavailable(
        f"the revocation feed of registry {registry!r} ({url}) cannot be trusted: {why}",
        advice="the registry operator must fix the feed; until then its revocation data "
               "counts as stale")


def revocation_evidence(state: FeedState | None, *, registry: str, digest: str,
                        namespace: str | None = None, name: str | None = None,
                        version: str | None = None,
                        record_revoked: Mapping[str, str | None] | None = None,
                        now: datetime | None = None) -> RevocationEvidence:
    """The revocation facts about ``digest`` (and ``namespace/name@version``) from ``state``.

    ``state`` ``None`` (never synced) gives ``checked: false``. Each feed entry reaches what
    its kind says (:func:`_entry_matches`). ``record_revoked`` (``reason``,
    ``revoked_at``), when the registry's own version record says revoked, is a revocation too:
    any one source saying revoked is enough; it was read at ``now``, which is then its
    ``fresh_as_of``.
    """
    if not is_digest(digest):
        raise InputError(f"{digest!r} is not an image digest")
    match = None
    if state is not None:
        for r in state.revoked:
            if _entry_matches(r, digest=digest, namespace=namespace, name=name,
                             version=version):
                match = r
                break
    if match is not None:
        return RevocationEvidence(checked=True, revoked=True, reason=match.reason,
                                  revoked_at=match.revoked_at,
                                  fresh_as_of=state.fresh_as_of if state else None,
                                  source=registry)
    if record_revoked is not None:
        return RevocationEvidence(checked=True, revoked=True, reason=record_revoked.get("reason"),
                                  revoked_at=record_revoked.get("revoked_at"),
                                  fresh_as_of=format_time(now) if now else
                                  (state.fresh_as_of if state else None),
                                  source=registry)
    if state is None or state.fresh_as_of is None:
        return RevocationEvidence(checked=False, source=registry)
    return RevocationEvidence(checked=True, revoked=False, fresh_as_of=state.fresh_as_of,
                              source=registry)
