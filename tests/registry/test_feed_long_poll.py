"""The revocation feed's long-poll (``GET /api/v1/revocations?cursor=N&wait=S``) against a real
registry app served on loopback (tests/support/federation.py), through the real client.

Shown here: an entry after the cursor is answered at once; with none the answer is an empty page
(cursor unchanged) once the wait is over, a wait above the bound is refused and the
operator's cap (``feed_max_wait_seconds``) shortens every wait; a revocation
committed by the serving process wakes a waiting poll at once (the database poll set far
beyond the test's bound, so only the wake-up can answer in time); one committed by another
process (a second store on the same database, which cannot wake it) is seen by the short
database poll; no read connection is checked out while a poll waits; polls beyond the
operator's cap on waiters (``feed_max_waiters``) are answered at once.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cortex_trust.sources import RegistryClient
from tests.support.federation import Federation, RegistryServer


def _poll_every(server: RegistryServer, seconds: float) -> None:
    """Make the served app look at its database every ``seconds`` while a poll waits."""
    server.app.state.config = dataclasses.replace(server.app.state.config,
                                                  feed_poll_seconds=seconds)


def _published(fed: Federation, name: str) -> RegistryServer:
    fed.public.publish(fed.sigstore, "beta", name, "1.0.0")
    return fed.public


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    result = call()
    return result, time.monotonic() - t0


def _head(server: RegistryServer) -> int:
    with RegistryClient(server.url) as c:
        return c.revocations(cursor=0).next_cursor


def test_an_entry_after_the_cursor_is_answered_at_once(federation: Federation) -> None:
    server = _published(federation, "tool")
    server.revoke("beta", "tool", "1.0.0", reason="leaked key")
    with RegistryClient(server.url) as c:
        page, took = _timed(lambda: c.wait_revocations(cursor=0, wait=30))
    assert [(e.namespace, e.name, e.version, e.reason) for e in page.items] == [
        ("beta", "tool", "1.0.0", "leaked key")]
    assert page.next_cursor == page.items[0].cursor
    assert took < 5, took


def test_nothing_after_the_cursor_answers_an_empty_page_after_the_wait(
        federation: Federation) -> None:
    server = _published(federation, "tool")
    server.revoke("beta", "tool", "1.0.0")
    head = _head(server)
    with RegistryClient(server.url) as c:
        page, took = _timed(lambda: c.wait_revocations(cursor=head, wait=1))
    assert page.items == () and page.next_cursor == head
    assert 0.9 <= took < 10, took


def test_a_wait_above_the_bound_is_refused(federation: Federation) -> None:
    r = httpx.get(f"{federation.public.url}/api/v1/revocations",
                  params={"cursor": "0", "wait": "31"}, timeout=10)
    assert r.status_code == 422, r.text
    assert set(r.json()["error"]) == {"code", "message", "fix"}


def test_the_operator_cap_shortens_every_wait(federation: Federation) -> None:
    server = _published(federation, "tool")
    server.app.state.config = dataclasses.replace(server.app.state.config,
                                                  feed_max_wait_seconds=1)
    with RegistryClient(server.url) as c:
        page, took = _timed(lambda: c.wait_revocations(cursor=0, wait=30))
    assert page.items == () and page.next_cursor == 0
    assert 0.9 <= took < 10, took


def _poll_in_thread(server: RegistryServer, cursor: int, wait: int
                    ) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def poll() -> None:
        with RegistryClient(server.url) as c:
            out["page"] = c.wait_revocations(cursor=cursor, wait=wait)
            out["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    return thread, out


def _waiting_then(server: RegistryServer, act: Callable[[], None]) -> tuple[Any, float]:
    """Start a 25 s poll from the feed's head, let it wait, ``act``; the page it got and how
    long after ``act`` returned."""
    head = _head(server)
    thread, out = _poll_in_thread(server, head, 25)
    time.sleep(1.0)  # the poll has read the (empty) feed and waits
    assert "page" not in out
    act()
    acted = time.monotonic()
    thread.join(30)
    assert not thread.is_alive()
    return out["page"], out["at"] - acted


def test_a_revocation_in_this_process_wakes_a_waiting_poll(federation: Federation) -> None:
    server = _published(federation, "tool")
    _poll_every(server, 60)  # only the wake-up can answer within the bound below
    page, after = _waiting_then(server, lambda: server.revoke("beta", "tool", "1.0.0"))
    assert [(e.name, e.kind) for e in page.items] == [("tool", "version")]
    assert after < 3, after


def revoke_from_another_process(server: RegistryServer) -> Callable[[], None]:
    """Revoking ``beta/tool@1.0.0`` ("from elsewhere") through a second store on the served
    database (another writer: it cannot wake the served process), with the served app's
    database poll made short."""
    from registry._store import Store

    _poll_every(server, 0.2)
    other = Store(server.store.engine)
    now = datetime.now(UTC)
    principal = other.authenticate(server.token("beta"), now=now)

    def revoke() -> None:
        other.revoke("beta", "tool", "1.0.0", reason="from elsewhere", principal=principal,
                     now=now, evaluate=server.app.state.evaluator)
    return revoke


def test_a_revocation_by_another_process_is_seen_by_the_database_poll(
        federation: Federation) -> None:
    server = _published(federation, "tool")
    page, after = _waiting_then(server, revoke_from_another_process(server))
    assert [(e.name, e.reason) for e in page.items] == [("tool", "from elsewhere")]
    assert after < 3, after


def test_a_waiting_poll_holds_no_read_connection(federation: Federation,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each look at the database checks a connection out and gives it back before the wait
    resumes: the looks of one waiting poll are separate checkouts, never one held across."""
    server = _published(federation, "tool")
    reader = server.store.reader
    events: list[str] = []
    checkout, checkin = reader._checkout, reader._checkin

    def counting_checkout() -> Any:
        events.append("out")
        return checkout()

    def counting_checkin(conn: Any) -> None:
        events.append("in")
        checkin(conn)

    head = _head(server)
    monkeypatch.setattr(reader, "_checkout", counting_checkout)
    monkeypatch.setattr(reader, "_checkin", counting_checkin)
    _poll_every(server, 0.1)  # many looks at the database during the wait
    thread, out = _poll_in_thread(server, head, 2)
    thread.join(10)
    assert out["page"].items == ()
    looks = len(events) // 2
    assert looks >= 5 and events == ["out", "in"] * looks, events


def test_long_polls_beyond_the_cap_are_answered_at_once(federation: Federation) -> None:
    """With ``feed_max_waiters`` polls waiting, one more is answered at once with the current
    page (as ``wait=0``); the waiting one still gets its entry; once it is answered, a poll
    waits again."""
    server = _published(federation, "tool")
    server.app.state.config = dataclasses.replace(server.app.state.config, feed_max_waiters=1)
    waiters = server.app.state.feed_waiters
    head = _head(server)
    thread, out = _poll_in_thread(server, head, 25)
    t0 = time.monotonic()
    while waiters.waiting < 1:
        assert time.monotonic() - t0 < 10, "the first poll never waited"
        time.sleep(0.02)
    with RegistryClient(server.url) as c:
        page, took = _timed(lambda: c.wait_revocations(cursor=head, wait=25))
    assert page.items == () and page.next_cursor == head
    assert took < 5, took
    assert "page" not in out and waiters.waiting == 1
    server.revoke("beta", "tool", "1.0.0")
    thread.join(30)
    assert not thread.is_alive()
    assert [e.name for e in out["page"].items] == ["tool"]
    with RegistryClient(server.url) as c:
        page, took = _timed(lambda: c.wait_revocations(cursor=out["page"].next_cursor, wait=1))
    assert page.items == ()
    assert 0.9 <= took < 10, took
