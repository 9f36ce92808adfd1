"""The documents an index holds, read from the registry's store: the very bytes its API serves.

Every document comes from the store's read methods (:class:`registry._store.CatalogueReads`),
the same ones the read routes return, so a document read through the index and the same read
from the API are byte for byte equal. Catalogue shards are pages of the stored summaries in key
order (:func:`registry._store._reads.page_document`); revocation chunks are the feed's pages of
:data:`~cortex_trust.sources.IndexLayout.REVOCATION_CHUNK` entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from cortex_trust.sources import IndexLayout

from .._documents import dumps
from .._errors import NotFound
from .._store._reads import page_document

if TYPE_CHECKING:
    from .._store import Store
    from ._repo import IndexRepository

__all__ = ["all_documents", "changed_documents"]

_PAGE = 1000


def plugin_documents(store: Store, namespace: str, name: str) -> dict[str, bytes]:
    """The plugin's document, its version list, and each version's document and bundle."""
    out = {IndexLayout.plugin(namespace, name): store.plugin_document(namespace, name)}
    versions = store.versions_document(namespace, name)
    out[IndexLayout.versions(namespace, name)] = versions
    for item in json.loads(versions)["items"]:
        v = item["version"]
        out[IndexLayout.version(namespace, name, v)] = store.version_document(namespace, name, v)
        try:
            out[IndexLayout.bundle(namespace, name, v)] = store.bundle(namespace, name, v)
        except NotFound:
            pass  # a version without a bundle has none to serve
    return out


def _shard(summaries: Mapping[str, str]) -> bytes:
    return page_document([summaries[k] for k in sorted(summaries)], None)


def _revocation_chunks(store: Store, *, first: int, cursor: int) -> Iterator[tuple[str, bytes]]:
    """Chunks ``first``, ``first + 1``... of the feed, starting after ``cursor``, up to the
    first short one (always at least one, possibly empty: it marks the feed's end)."""
    chunk = first
    while True:
        page = store.revocations(cursor=cursor, limit=IndexLayout.REVOCATION_CHUNK)
        yield IndexLayout.revocations(chunk), page
        doc = json.loads(page)
        if len(doc["items"]) < IndexLayout.REVOCATION_CHUNK:
            return
        cursor, chunk = int(doc["next_cursor"]), chunk + 1


def all_documents(store: Store) -> Iterator[tuple[str, bytes]]:
    """Every document of the catalogue and the whole revocation feed."""
    shards: list[dict[str, str]] = [{} for _ in range(IndexLayout.CATALOGUE_SHARDS)]
    cursor: str | None = None
    while True:
        page = json.loads(store.list_plugins(q=None, tier=None, namespace=None, cursor=cursor,
                                             limit=_PAGE))
        for item in page["items"]:
            key = f"{item['namespace']}/{item['name']}"
            # The stored summary was written by the same canonical encoder: same bytes.
            shards[IndexLayout.shard(key)][key] = dumps(item)
            yield from plugin_documents(store, item["namespace"], item["name"]).items()
        cursor = page["next_cursor"]
        if cursor is None:
            break
    for n, summaries in enumerate(shards):
        yield IndexLayout.catalogue(n), _shard(summaries)
    yield from _revocation_chunks(store, first=0, cursor=0)


def changed_documents(store: Store, repo: IndexRepository,
                      plugins: set[tuple[str, str]]) -> dict[str, bytes | None]:
    """The documents of ``plugins`` (``(namespace, name)``), their catalogue shards, and the
    revocation feed from its last full chunk on: what a write to those plugins may change."""
    out: dict[str, bytes | None] = {}
    by_shard: dict[int, dict[str, str]] = {}
    for ns, name in sorted(plugins):
        key = f"{ns}/{name}"
        try:
            out.update(plugin_documents(store, ns, name))
            summary = store.plugin_summary(ns, name)
        except NotFound:
            continue
        by_shard.setdefault(IndexLayout.shard(key), {})[key] = summary
    for shard, updates in by_shard.items():
        current = repo.document(IndexLayout.catalogue(shard))
        items = json.loads(current)["items"] if current else []
        summaries = {f"{i['namespace']}/{i['name']}": dumps(i) for i in items}
        summaries.update(updates)
        out[IndexLayout.catalogue(shard)] = _shard(summaries)
    # The feed only grows at its end: re-read from the last full chunk the index holds.
    chunk, cursor = 0, 0
    while (doc := repo.document(IndexLayout.revocations(chunk))) is not None:
        page = json.loads(doc)
        if len(page["items"]) < IndexLayout.REVOCATION_CHUNK:
            break
        chunk, cursor = chunk + 1, int(page["next_cursor"])
    out.update(_revocation_chunks(store, first=chunk, cursor=cursor))
    return out
