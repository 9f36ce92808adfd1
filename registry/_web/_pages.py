"""The catalogue's pages: stored documents in, HTML bytes out.

A :class:`Catalogue` renders each page from the read documents the API serves (the same bytes,
so a page and its JSON twin always agree) with Jinja2 templates whose autoescaping is on for
every template: a publisher's text is always text. Plugin and version pages are kept rendered
in a bounded in-memory cache keyed by the exact documents they were made from, so a page is
rendered once per change of its documents and then served from memory; a change of any
document (publish, review, usage, yank, revocation, re-tiering) changes the key.

Pages are not stored with the documents: each page lists every version of its plugin with its
state, so a state change would re-render all the plugin's pages inside the write, re-tiering would
render one page per version, and a page depends on the address prefix it is served under.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .._documents import version_key
from . import _views as views

__all__ = ["STATIC_DIR", "Catalogue"]

_HERE = Path(__file__).parent
#: The stylesheet and the script the pages load (same origin).
STATIC_DIR = _HERE / "static"

#: Rendered plugin and version pages kept in memory.
_CACHE_SIZE = 2048


class _Rendered:
    """A bounded LRU map of rendered pages; thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pages: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
                return page
        page = render()
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return page


class Catalogue:
    """The templates and the page cache of one app. ``registry_name`` titles the pages."""

    def __init__(self, *, registry_name: str) -> None:
        self.registry_name = registry_name
        self._env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                                autoescape=select_autoescape(default=True, default_for_string=True),
                                undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self._env.globals.update(badge=views.badge, actions=views.ACTIONS,
                                 sandbox_in_words=views.sandbox_in_words,
                                 registry_name=registry_name)
        self._pages = _Rendered(_CACHE_SIZE)

    def render(self, template: str, **context: Any) -> bytes:
        """One template rendered with ``context`` (UTF-8)."""
        return self._env.get_template(template).render(**context).encode()

    def version_page(self, *, root: str, plugin_doc: bytes, versions_doc: bytes, version_doc: bytes,
                     inactive: tuple[tuple[str, ...], ...], pinned: bool) -> bytes:
        """The plugin page (``pinned`` false: its latest version) or one version's page.
        ``inactive`` is ``(version, state, reason, since)`` of the yanked and revoked versions."""
        key = ("version", root, pinned, plugin_doc, versions_doc, version_doc, inactive)
        return self._pages.get(key, lambda: self._version_page(
            root=root, plugin=json.loads(plugin_doc), versions=json.loads(versions_doc)["items"],
            doc=json.loads(version_doc), inactive=inactive, pinned=pinned))

    def _version_page(self, *, root: str, plugin: Mapping[str, Any], versions: list[Any],
                      doc: Mapping[str, Any], inactive: tuple[tuple[str, ...], ...], pinned: bool) -> bytes:
        ns, name, version = doc["namespace"], doc["name"], doc["version"]
        decision = doc.get("decision") or {}
        manifest = doc.get("manifest") or {}
        next_tier = decision.get("next_tier")
        return self.render(
            "version.html", root=root, plugin=plugin, doc=doc, pinned=pinned,
            decision=decision, manifest=manifest, next_tier=next_tier,
            versions=sorted(versions, key=lambda v: version_key(v["version"]), reverse=True),
            why={v[0]: (v[2], v[3]) for v in inactive},
            cards=views.evidence_cards(doc.get("evidence"), doc["digest"], decision=decision),
            needs=views.needs_in_words(manifest.get("trust")),
            install=views.install_command(ns, name, version if pinned else None),
            api=f"{root}/api/v1/plugins/{ns}/{name}" + (f"/versions/{version}" if pinned else ""),
            title=f"{ns}/{name}" + (f" {version}" if pinned else ""))

