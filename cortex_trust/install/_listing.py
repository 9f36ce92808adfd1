"""What a registry's signed index says about one version under review (``cortex plugin verify
--index``).

:func:`index_listing` reads the version's document and the revocation feed through
:class:`~cortex_trust.sources.IndexClient` (every byte verified by TUF) and returns the
revocation facts for the policy input. Guarantees (fail closed):

* a version the index does not list, or lists with another digest, is refused
  (:class:`~cortex_trust.errors.InputError`): the image under review is not the one the registry
  published, and no decision is made about it;
* an index that does not verify (tampered, stale, rolled back, unknown keys) is
  :class:`~cortex_trust.errors.RegistryUnavailable`: nothing it says is believed;
* a version the index's record or its feed says is revoked gives ``revoked: true`` (the policy
  blocks with ``REVOKED``); the facts are current as of the index's signed timestamp
  (``fresh_as_of``), never later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import InputError
from ..policy import RevocationEvidence, format_time
from ._revocations import revocation_evidence, sync_feed
from ._state import RevocationCache

__all__ = ["IndexListing", "index_listing"]


@dataclass(frozen=True)
class IndexListing:
    """The index's record of a version: its digest and state, when the index's data was current,
    and the revocation facts about the version."""

    url: str
    digest: str
    state: str
    data_as_of: str
    revocation: RevocationEvidence


def index_listing(url: str, *, cache_dir: Path, trusted_root: bytes | None, namespace: str,
                  name: str, version: str, digest: str, now: datetime) -> IndexListing:
    """What the index at ``url`` says about ``namespace/name@version`` carrying ``digest``.

    ``cache_dir`` keeps the index's trust state (and its revocation feed) between runs;
    ``trusted_root`` is the root its operator published (``None``: the first root the index
    serves is trusted on first use). Raises :class:`InputError` when the index does not list
    this version with this digest, :class:`RegistryUnavailable` when it cannot be verified.
    """
    from ..sources import IndexClient, RegistryRequestError

    full = f"{namespace}/{name}@{version}"
    with IndexClient(url, cache_dir=cache_dir, trusted_root=trusted_root) as client:
        try:
            detail = client.get_version(namespace, name, version)
        except RegistryRequestError as e:
            if e.status != 404:
                raise
            raise InputError(f"{full} is not in the index at {client.base_url}",
                             advice="verify a published version, or check --namespace, the "
                                    "manifest's name and version, and the index URL") from None
        if detail.digest != digest:
            raise InputError(f"the index at {client.base_url} lists {full} with {detail.digest}, "
                             f"not {digest}: this image is not the version the registry published",
                             advice=f"verify the published image (@{detail.digest}), or publish "
                                    "this image as a new version")
        as_of = client.data_as_of(now)
        state = sync_feed(client, registry="index", url=client.base_url,
                          cache=RevocationCache(cache_dir), now=as_of)
        record = (detail.revocation or {}) if detail.state == "revoked" else None
        revocation = revocation_evidence(state, registry=client.base_url, digest=digest,
                                         namespace=namespace, name=name, version=version,
                                         record_revoked=record, now=as_of)
        return IndexListing(url=client.base_url, digest=detail.digest, state=detail.state,
                            data_as_of=format_time(as_of), revocation=revocation)
