"""Filling empty page fragments: rendered from the stored rows and documents, stored only while
still empty.

A fragment is empty (``NULL``) when its row was written before pages were stored or after
:meth:`~registry._store.Store.clear_page_fragments` (a template upgrade). A read of such a page
renders it (:func:`render_missing`) and :func:`fill_pages` (the ``registry.render_pages`` job)
renders those of a batch of versions ahead of reads; both store a fragment only while its column
is still empty (:meth:`~registry._store.Store.keep_page_fragments`), so a write made meanwhile,
which stores its own, always wins.
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import NotFound
from .._store import Store
from ._fragments import plugin_fragment, version_fragment
from ._queries import _rows, plugin_page_versions

__all__ = ["fill_pages", "render_missing"]


def render_missing(store: Store, key: str, namespace: str, name: str, version: str,
                   found: tuple[Any, ...]) -> tuple[str, str]:
    """The page fragments ``found`` (``(plugin id, plugin fragment, version id, version
    fragment, ...)``) lacks, rendered from the stored rows and documents; those never stored
    (``None``) are stored while still empty. Raises :class:`~registry._errors.NotFound` for a
    version deleted meanwhile."""
    plugin_id, plugin_page, version_id, version_page = found[:4]
    if not plugin_page:
        description, versions = plugin_page_versions(store, key)
        plugin_page = plugin_fragment(namespace=namespace, name=name, description=description, versions=versions)
    if not version_page:
        version_page = version_fragment(json.loads(store.version_document(namespace, name, version)))
    store.keep_page_fragments(plugin_id=plugin_id, plugin_page=plugin_page if found[1] is None else None,
                              version_id=version_id, version_page=version_page if found[3] is None else None)
    return plugin_page, version_page


def fill_pages(store: Store, version_ids: list[int]) -> int:
    """Render and store the empty fragments of the versions ``version_ids`` and of their plugins
    (each plugin's once); versions deleted meanwhile are skipped. Returns how many versions had
    an empty fragment (theirs or their plugin's)."""
    if not version_ids:
        return 0
    sql = ('SELECT p.id, p.page_html, v.id, v.page_html, v.version, p."key" FROM plugin p '  # noqa: S608
           'JOIN plugin_version v ON v.plugin_id = p.id WHERE v.id IN ('
           + ", ".join("?" for _ in version_ids)  # placeholders only: no value enters the SQL text
           + ') AND (p.page_html IS NULL OR v.page_html IS NULL) ORDER BY p.id, v.id')
    plugin_pages: dict[int, str] = {}
    filled = 0
    for row in _rows(store, sql, list(version_ids)):
        plugin_id, plugin_page, version_id, version_page, version, key = row
        if plugin_id in plugin_pages:  # rendered and stored for a sibling of this batch
            plugin_page = plugin_pages[plugin_id]
        namespace, name = str(key).split("/", 1)
        try:
            plugin_pages[plugin_id], _ = render_missing(
                store, key, namespace, name, version, (plugin_id, plugin_page, version_id, version_page))
        except NotFound:  # deleted since the batch was read
            continue
        filled += 1
    return filled
