"""The audit log is hash-chained: editing or deleting an entry is detected (a log cut short
or rebuilt together with its head takes a checkpoint: tests/registry/test_transparency_log.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from typer.testing import CliRunner

from tests.registry.conftest import Registry


def _activity(registry: Registry) -> None:
    acme = registry.token()
    assert registry.publish(acme).status_code == 201
    r = registry.client.post("/api/v1/plugins/acme/hello/versions/1.0.0/revoke",
                             json={"reason": "test"}, headers=registry.auth(acme))
    assert r.status_code == 200


def _entries(registry: Registry) -> list[tuple[int, str, str]]:
    with registry.store.engine.connect() as c:
        return [tuple(r) for r in c.execute(
            text("SELECT id, action, target FROM audit_log ORDER BY id"))]


def test_every_write_is_audited_and_the_chain_verifies(registry: Registry) -> None:
    _activity(registry)
    assert [e[1] for e in _entries(registry)] == ["token.create", "version.publish",
                                                  "version.revoke"]
    assert registry.store.audit_verify() == []


def test_failed_writes_leave_no_audit_entry(registry: Registry) -> None:
    acme = registry.token()
    assert registry.publish(acme).status_code == 201
    assert registry.publish(acme).status_code == 409
    assert [e[1] for e in _entries(registry)] == ["token.create", "version.publish"]


def test_edited_entry_is_detected(registry: Registry) -> None:
    _activity(registry)
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET after_json = '{\"reason\":\"nothing\"}' WHERE id = 3"))
    problems = registry.store.audit_verify()
    assert [p.entry_id for p in problems if p.entry_id] == [3]
    assert "edited" in problems[0].problem
    # The entry is a leaf of the log's Merkle tree too: its stored leaf no longer matches.
    assert any("stored tree node" in p.problem for p in problems)


@pytest.mark.parametrize("victim", [2, 3])
def test_deleted_entry_is_detected(registry: Registry, victim: int) -> None:
    _activity(registry)
    with registry.store.engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": victim})
    problems = registry.store.audit_verify()
    assert problems, "a deleted entry went unnoticed"
    assert any("deleted" in p.problem or "missing" in p.problem for p in problems)


def test_cli_audit_verify_exit_codes(registry: Registry) -> None:
    from cli.main import app

    _activity(registry)
    runner = CliRunner()
    ok = runner.invoke(app, ["registry", "audit", "verify", "--db", registry.db_url])
    assert ok.exit_code == 0, ok.output
    with registry.store.engine.begin() as c:
        c.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE id = 2"))
    bad = runner.invoke(app, ["registry", "audit", "verify", "--db", registry.db_url])
    assert bad.exit_code == 1
    assert "audit entry 2" in bad.output


# ------------------------------------------------------------------ property: any edit is caught

@dataclass(frozen=True)
class _Entry:
    id: int
    actor: str
    action: str
    target: str
    before_json: str | None
    after_json: str | None
    at: str
    prev_hash: str
    hash: str


def _chain(payloads: list[tuple[str, str | None]]) -> list[_Entry]:
    from registry._audit import GENESIS, entry_hash

    entries, prev = [], GENESIS
    for i, (actor, after) in enumerate(payloads, start=1):
        fields = {"id": i, "actor": actor, "action": "a", "target": "t", "before_json": None,
                  "after_json": after, "at": "2026-01-01T00:00:00Z", "prev_hash": prev}
        h = entry_hash(**fields)  # type: ignore[arg-type]
        entries.append(_Entry(**fields, hash=h))  # type: ignore[arg-type]
        prev = h
    return entries


@given(payloads=st.lists(st.tuples(st.text(max_size=8), st.none() | st.text(max_size=8)),
                         min_size=1, max_size=8),
       data=st.data())
def test_any_single_edit_or_deletion_breaks_the_chain(payloads: list[tuple[str, str | None]],
                                                      data: st.DataObject) -> None:
    from registry._audit import verify_chain

    chain = _chain(payloads)
    assert verify_chain(chain, head_hash=chain[-1].hash, head_seq=len(chain)) == []
    victim = data.draw(st.integers(0, len(chain) - 1))
    if data.draw(st.booleans()):
        field = data.draw(st.sampled_from(["actor", "action", "target", "after_json", "at"]))
        new = data.draw(st.text(max_size=8).filter(lambda v: v != getattr(chain[victim], field)))
        tampered = [*chain[:victim], replace(chain[victim], **{field: new}), *chain[victim + 1:]]
    else:
        tampered = chain[:victim] + chain[victim + 1:]
    assert verify_chain(tampered, head_hash=chain[-1].hash, head_seq=len(chain)) != []


def test_replay_reports_malformed_effects_instead_of_crashing() -> None:
    from registry._audit import compare_state, replay

    good = _Entry(1, "a", "x", "t", None, None, "at", "p", "h")
    rows = [
        replace(good, id=1, hash="1"),
        replace(good, id=2, hash="2"),
        replace(good, id=3, hash="3"),
        replace(good, id=4, hash="4"),
    ]
    effects = ['{"api_token":{"tok_a":{"role":"publisher"}}}', "[1, 2]",
               '{"api_token":{"tok_b":"admin"}}', "not json"]
    tagged = [type("E", (), {"id": r.id, "effects_json": fx})() for r, fx in zip(rows, effects, strict=True)]
    state = replay(tagged)
    assert state.entries_with_effects == 1 and state.unreadable == [2, 3, 4]
    problems = compare_state(state, {"api_token": {"tok_a": {"role": "admin"}}})
    assert [p.entry_id for p in problems] == [2, 3, 4, 0]
    assert 'role: logged "publisher", stored "admin"' in problems[-1].problem
