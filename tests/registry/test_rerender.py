"""``cortex registry rerender``: every stored page fragment emptied in one write, then rendered
again from the stored documents (in this process on SQLite or with ``--in-process``, by
``registry.render_pages`` jobs of a real ``cortex registry worker`` on PostgreSQL), never
overwriting a fragment a write stored meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.registry.conftest import Registry, pg_only
from tests.registry.test_jobs import _cli, _stop, _worker

#: What an older template rendered, as far as these tests can tell.
OLD = "<p>rendered by an old template</p>"


def _catalogue(registry: Registry) -> None:
    """Four plugins, one with three versions: six versions."""
    acme = registry.token()
    for i in range(4):
        assert registry.publish(acme, name=f"tool-{i}").status_code == 201
    for v in ("1.1.0", "2.0.0"):
        assert registry.publish(acme, name="tool-0", version=v).status_code == 201


def _stored(registry: Registry) -> dict[tuple[str, int], str | None]:
    with registry.store.engine.connect() as c:
        return {(table, row_id): page for table in ("plugin", "plugin_version")
                for row_id, page in c.execute(text(f"SELECT id, page_html FROM {table}"))}


def _fresh(registry: Registry) -> dict[tuple[str, int], str]:
    """Every fragment as the current templates render it from the stored documents."""
    from registry._web._fragments import plugin_fragment, version_fragment
    from registry._web._queries import plugin_page_versions

    store, out = registry.store, {}
    with store.engine.connect() as c:
        plugins = c.execute(text('SELECT id, "key" FROM plugin')).all()
        versions = c.execute(text('SELECT v.id, p."key", v.version FROM plugin_version v '
                                  'JOIN plugin p ON p.id = v.plugin_id')).all()
    for plugin_id, key in plugins:
        namespace, name = key.split("/")
        description, rows = plugin_page_versions(store, key)
        out["plugin", plugin_id] = plugin_fragment(namespace=namespace, name=name, description=description,
                                                   versions=rows)
    for version_id, key, version in versions:
        namespace, name = key.split("/")
        out["plugin_version", version_id] = version_fragment(store.version_document(namespace, name, version).decode())
    return out


def _age(registry: Registry) -> None:
    """Every stored fragment as an older template left it."""
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE plugin SET page_html = :old"), {"old": OLD})
        c.execute(text("UPDATE plugin_version SET page_html = :old"), {"old": OLD})
    assert set(_stored(registry).values()) == {OLD}


def _assert_all_fresh(registry: Registry) -> None:
    stored = _stored(registry)
    assert len(stored) == 10 and all(page for page in stored.values())
    assert not any(OLD in str(page) for page in stored.values())
    assert stored == _fresh(registry)


@pytest.mark.parametrize("db_url", ["sqlite", *pg_only()], indirect=True)
def test_rerender_in_process_replaces_every_old_fragment(registry: Registry) -> None:
    _catalogue(registry)
    _age(registry)
    extra = () if registry.db_url.startswith("sqlite") else ("--in-process",)
    r = _cli("registry", "rerender", "--db", registry.db_url, "--batch", "2", *extra)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"versions": 6, "rendered": 6}
    _assert_all_fresh(registry)
    page = registry.client.get("/plugins/acme/tool-0/1.1.0")
    assert page.status_code == 200 and OLD not in page.text and "1.1.0" in page.text


@pytest.mark.parametrize("db_url", ["sqlite", *pg_only()], indirect=True)
def test_a_write_between_the_emptying_and_the_render_keeps_its_fragment(registry: Registry) -> None:
    """The render stores only into empty fragments: what a write stored after the emptying (here
    a marker) stays; versions deleted meanwhile (an unknown id) are skipped."""
    from registry._web._fill import fill_pages

    _catalogue(registry)
    store = registry.store
    ids = store.clear_page_fragments()
    assert len(ids) == 6 and set(_stored(registry).values()) == {None}
    written = "<p>stored by a write</p>"
    with store.engine.begin() as c:
        plugin_id = c.execute(text('SELECT id FROM plugin WHERE "key" = \'acme/tool-0\'')).scalar_one()
        c.execute(text("UPDATE plugin SET page_html = :w WHERE id = :id"), {"w": written, "id": plugin_id})
        c.execute(text("UPDATE plugin_version SET page_html = :w WHERE id = :id"), {"w": written, "id": ids[0]})
    # Version ids[0] (of acme/tool-0) and its plugin are written: the five others are rendered.
    assert fill_pages(store, [*ids, max(ids) + 1000]) == 5
    stored, fresh = _stored(registry), _fresh(registry)
    assert stored.pop(("plugin", plugin_id)) == written and stored.pop(("plugin_version", ids[0])) == written
    assert all(page == fresh[k] for k, page in stored.items()) and len(stored) == 8
    # Run again (a retried job): nothing left to render, nothing overwritten.
    assert fill_pages(store, ids) == 0
    assert _stored(registry)[("plugin_version", ids[0])] == written


@pytest.mark.slow
@pytest.mark.parametrize("db_url", pg_only(), indirect=True)
def test_a_queued_rerender_is_rendered_by_a_worker(registry: Registry, tmp_path: Path) -> None:
    _catalogue(registry)
    _age(registry)
    worker = _worker(registry.db_url, tmp_path / "w.log")
    try:
        r = _cli("registry", "rerender", "--db", registry.db_url, "--batch", "2", "--wait")
    finally:
        _stop(worker)
    assert r.returncode == 0, r.stderr + (tmp_path / "w.log").read_text()
    assert json.loads(r.stdout) == {"versions": 6, "jobs": 3}
    assert "3/3 jobs" in r.stderr
    _assert_all_fresh(registry)
    listing = _cli("registry", "jobs", "--db", registry.db_url, "--status", "succeeded", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    assert [j["task"] for j in json.loads(listing.stdout)] == ["registry.render_pages"] * 3
