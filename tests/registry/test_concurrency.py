"""Concurrent publishes: exactly one winner; a crash mid-publish leaves nothing behind."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from tests.registry.conftest import A_TXT_DIGEST, BUNDLE_A, BUNDLE_WHEEL, WHEEL_DIGEST, Registry


def _race(registry: Registry, bodies: list[dict[str, Any]]) -> list[Any]:
    barrier = threading.Barrier(len(bodies))
    results: list[Any] = [None] * len(bodies)
    token = registry.token()

    def run(i: int) -> None:
        barrier.wait()
        results[i] = registry.client.post("/api/v1/plugins", json=bodies[i],
                                          headers=registry.auth(token))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_publishes_of_one_version_one_wins(registry: Registry, round_: int) -> None:
    from tests.registry.conftest import publish_body

    bodies = [publish_body(digest=A_TXT_DIGEST, bundle=BUNDLE_A),
              publish_body(digest=WHEEL_DIGEST, bundle=BUNDLE_WHEEL)]
    results = _race(registry, bodies)
    statuses = Counter(r.status_code for r in results)
    assert statuses == Counter({201: 1, 409: 1}), [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["error"]["code"] == "VERSION_CONFLICT"
    winner = next(r for r in results if r.status_code == 201).json()
    _, stored = registry.get("/api/v1/plugins/acme/hello/versions/1.0.0")
    assert stored["digest"] == winner["digest"]
    with registry.store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM plugin_version")).scalar() == 1
    assert registry.store.audit_verify() == []


def test_many_concurrent_writers_keep_the_audit_chain_intact(registry: Registry) -> None:
    from tests.registry.conftest import publish_body

    bodies = [publish_body(name=f"tool-{i}") for i in range(6)]
    results = _race(registry, bodies)
    assert [r.status_code for r in results] == [201] * 6
    assert registry.store.audit_verify() == []


def test_crash_mid_publish_leaves_nothing_half_written(registry: Registry) -> None:
    from cortex_trust.sources import PublishCreate
    from registry._service import prepare_publish
    from registry._store import Principal
    from tests.registry.conftest import publish_body

    token = registry.token()
    principal = registry.store.authenticate(token, now=registry.clock())
    record = prepare_publish(PublishCreate(**publish_body()), principal=principal,
                             config=registry.app.state.config, now=registry.clock())

    def tables() -> dict[str, int]:
        with registry.store.engine.connect() as c:
            return {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("plugin", "plugin_version", "evidence", "audit_log")}

    before = tables()

    def crash(_inputs: Any) -> Any:
        # Called after the plugin, version and evidence rows were written in the transaction.
        raise KeyboardInterrupt("power cut")

    with pytest.raises(KeyboardInterrupt):
        registry.store.publish(record, principal=principal, now=registry.clock(), evaluate=crash)
    assert tables() == before
    assert registry.store.audit_verify() == []
    # And the registry still works afterwards.
    assert registry.publish(token).status_code == 201
    assert isinstance(principal, Principal)
