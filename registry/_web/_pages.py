"""The catalogue's pages: stored documents and fragments in, HTML bytes out.

Every template is rendered by Jinja2 with autoescaping on: a publisher's text is always text.
Plugin and version pages are not rendered per request. Their parts are rendered when the
documents they show change, by the same write and in the same transaction
(:mod:`registry._web._fragments`): the version's part (verdict, evidence, capabilities) with its
documents, the plugin's part (its description and every version with its tier and state) after
any change of its versions, both by re-tiering too. Serving one is a join of the layout (rendered
once per app, split where the page's title, JSON twin and content go) with the two stored
fragments, the version list's mark on the page's own version and the address prefix: no
template runs, and every sibling page reads the one plugin fragment, so none shows a stale state.

A page whose fragments are still empty (rows written before pages were stored) is rendered from
its documents on that read and stored while the fragments are still empty
(:meth:`~registry._store.Store.keep_page_fragments`). The search, revocations, audit and error
pages are rendered per request from indexed reads.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from ._fragments import ROOT_MARKUP, TEMPLATES, environment, join_page

__all__ = ["STATIC_DIR", "Catalogue"]

#: The stylesheet and the script the pages load (same origin).
STATIC_DIR = TEMPLATES.parent / "static"

#: Where a plugin or version page's title, JSON twin and content go in the layout.
_TITLE, _API, _MAIN = "<@title@>", "<@api@>", "<@main@>"
_MARKED = {"title": Markup(_TITLE), "api": Markup(_API), "main": Markup(_MAIN)}  # noqa: S704 (constants)


class Catalogue:
    """The templates and the page layout of one app. ``registry_name`` titles the pages."""

    def __init__(self, *, registry_name: str) -> None:
        self.registry_name = registry_name
        self._env = environment(registry_name=registry_name)
        layout = self._env.from_string('{% extends "base.html" %}{% block main %}{{ main }}{% endblock %}').render(
            root=ROOT_MARKUP, **_MARKED)
        before, after = layout.split(_MAIN)
        self._layout = (before, after)

    def render(self, template: str, **context: Any) -> bytes:
        """One template rendered with ``context`` (UTF-8)."""
        return self._env.get_template(template).render(**context).encode()

    def version_page(self, *, root: str, namespace: str, name: str, version: str, pinned: bool,
                     plugin_page: str, version_page: str) -> bytes:
        """The plugin page (``pinned`` false: its latest version ``version``) or the version's own
        page, joined from the stored fragments of the plugin and of the version, served under the
        address prefix ``root``."""
        title = escape(f"{namespace}/{name}" + (f" {version}" if pinned else ""))
        api = ROOT_MARKUP + (f"/api/v1/plugins/{namespace}/{name}" + (f"/versions/{version}" if pinned else ""))
        before, after = self._layout
        layout = (before.replace(_TITLE, title).replace(_API, api), after.replace(_API, api))
        return join_page(layout=layout, plugin=plugin_page, version=version_page, current=version, pinned=pinned,
                         root=str(escape(root)))
