"""The stored parts of the catalogue's plugin and version pages, rendered when documents change.

Every page of a plugin shows one version (its own part: verdict, evidence, capabilities) and
the plugin's part (its description, every version with its tier and state). Each part is
rendered once, by the write that changes what it shows, from the stored documents, and kept
beside them: :func:`version_fragment` in ``plugin_version.page_html`` (rendered with the
version's documents, by every re-evaluation, state change and re-tier), :func:`plugin_fragment`
in ``plugin.page_html`` (rendered with the plugin's documents, after any change of its versions).
A request only joins stored strings (:func:`join_page`): no template runs per request, and a state
change rewrites the one plugin part that every sibling page shares, so no sibling can show a
stale state.

Addresses: the fragments hold :data:`ROOT` where the page's address prefix goes (the ASGI
``root_path`` it is served under), replaced when the page is served, so a stored page is right
under any prefix. The markers (:data:`ROOT`, :data:`SEP` and the current-row marks) contain ``<``,
which the templates' autoescaping turns into ``&lt;`` in every value: a publisher's text can
never contain one.

Only Jinja2, the standard library and the document helpers are imported: re-tiering workers
import this module in every process they start.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, TemplateError, select_autoescape
from markupsafe import Markup

from .._documents import version_key
from . import _views as views

__all__ = ["ROOT", "ROOT_MARKUP", "SEP", "VersionRow", "environment", "join_page", "plugin_fragment", "stored",
           "version_fragment"]

_log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"

#: Where the address prefix goes in a stored fragment.
ROOT = "<@root@>"
#: Between the parts of a stored fragment.
SEP = "<@/@>"
#: Where the version list marks the page's own version (its row, its link).
_CURRENT_ROW = "<@row@>"
_CURRENT_LINK = "<@link@>"
#: The markers as markup (constants: autoescaping leaves them as they are).
ROOT_MARKUP = Markup(ROOT)  # noqa: S704
_SEP_MARKUP = Markup(SEP)  # noqa: S704
_CURRENT_ROW_MARKUP = Markup(_CURRENT_ROW)  # noqa: S704
_CURRENT_LINK_MARKUP = Markup(_CURRENT_LINK)  # noqa: S704

#: The parts of a version fragment, in stored order: crumbs, heading, verdict, install,
#: evidence (up to the version list), links; crumbs, install and links once for the version's
#: own page and once for the plugin page (the latest version).
_VERSION_PARTS = 9

_lock = threading.Lock()
_env: Environment | None = None


def environment(**globals_: Any) -> Environment:
    """A Jinja2 environment over the catalogue's templates with autoescaping on for every
    template and the catalogue's helpers as globals (plus ``globals_``)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.globals.update(badge=views.badge, actions=views.ACTIONS, sandbox_in_words=views.sandbox_in_words,
                       **globals_)
    return env


#: A constant: ``%`` escapes the value it is given.
_BDI = Markup("<bdi>%s</bdi>")


def _text(value: object) -> Markup:
    """A publisher's value as text in its own direction (``_macros.html``'s ``text``, as a
    function: a Jinja2 macro call costs more than the rest of a value's rendering)."""
    return _BDI % (value,)


def _template() -> Template:
    global _env
    with _lock:
        if _env is None:
            _env = environment(root=ROOT_MARKUP, text=_text)
        env = _env
    return env.get_template("fragments.html")


def version_fragment(document: Mapping[str, Any] | str) -> str:
    """The stored part of one version's pages, from its read document (the parsed document or
    its JSON text)."""
    doc = json.loads(document) if isinstance(document, str) else document
    ns, name, version = doc["namespace"], doc["name"], doc["version"]
    decision = doc.get("decision") or {}
    manifest = doc.get("manifest") or {}
    api = f"/api/v1/plugins/{ns}/{name}"
    return _template().render(
        part="version", sep=_SEP_MARKUP, doc=doc, decision=decision, manifest=manifest,
        next_tier=decision.get("next_tier"),
        cards=views.evidence_cards(doc.get("evidence"), doc["digest"], decision=decision),
        needs=views.needs_in_words(manifest.get("trust")),
        install_pinned=views.install_command(ns, name, version), install_latest=views.install_command(ns, name),
        api_pinned=ROOT_MARKUP + f"{api}/versions/{version}", api_latest=ROOT_MARKUP + api)


#: One version as its plugin's pages list it: ``(version, state, tier, published_at,
#: yanked_reason, yanked_at, revoked_reason, revoked_at)``, the version row's columns.
VersionRow = tuple[str, str, str, str, "str | None", "str | None", "str | None", "str | None"]


def plugin_fragment(*, namespace: str, name: str, description: str, versions: Sequence[VersionRow]) -> str:
    """The stored part every page of a plugin shares: its description, then each version
    (highest first) as its version text and its row (a yanked or revoked version with its
    reason and time)."""
    rows = []
    for version, state, tier, published_at, yanked_reason, yanked_at, revoked_reason, revoked_at in sorted(
            versions, key=lambda v: version_key(v[0]), reverse=True):
        why = (None if state == "active" else (yanked_reason or "", yanked_at or "") if state == "yanked"
               else (revoked_reason or "", revoked_at or ""))
        rows.append(({"namespace": namespace, "name": name, "version": version, "state": state, "tier": tier,
                      "published_at": published_at}, why))
    return _template().render(part="plugin", sep=_SEP_MARKUP, plugin={"description": description}, rows=rows,
                              current_row=_CURRENT_ROW_MARKUP, current_link=_CURRENT_LINK_MARKUP)


def stored(render: Callable[[], str]) -> str:
    """``render()`` as a write stores it: a fragment that cannot be rendered (a template or
    document defect) is stored empty and logged, so rendering never refuses the write that
    changes a version (a revocation above all); a read renders an empty fragment again and
    answers its error."""
    try:
        return render()
    except (TemplateError, LookupError, TypeError, ValueError, AttributeError):
        _log.exception("a catalogue page fragment could not be rendered; it is rendered on read")
        return ""


def join_page(*, layout: tuple[str, str], plugin: str, version: str, current: str, pinned: bool,
              root: str) -> bytes:
    """One page from stored fragments: ``layout`` is the page's layout split where the main
    content goes, ``plugin`` and ``version`` the stored fragments of the plugin and of the version
    ``current`` (marked in the version list), ``pinned`` whether the page is the version's own
    (else the plugin page), ``root`` the escaped address prefix. Raises ``ValueError`` for a
    fragment of another form."""
    v = version.split(SEP)
    if len(v) != _VERSION_PARTS:
        raise ValueError("not a version fragment")
    crumbs, heading, verdict, install, evidence, links = (
        v[0] if pinned else v[1], v[2], v[3], v[4] if pinned else v[5], v[6], v[7] if pinned else v[8])
    p = plugin.split(SEP)
    if len(p) % 2 != 1:
        raise ValueError("not a plugin fragment")
    rows = [(row.replace(_CURRENT_ROW, ' class="current"').replace(_CURRENT_LINK, ' aria-current="page"')
             if text == current else row) for text, row in zip(p[1::2], p[2::2], strict=True)]
    body = "".join((layout[0], crumbs, heading, p[0], verdict, install, evidence, *rows, links, layout[1]))
    return body.replace(_CURRENT_ROW, "").replace(_CURRENT_LINK, "").replace(ROOT, root).encode()

