"""The audit log's size long-poll (``GET /api/v1/log/size?after=N&wait=S``) against a real
registry app served on loopback (tests/support/federation.py), through the real client.

Shown here: a log already above ``after`` is answered at once; one that is not is answered with
its unchanged size once the wait is over, and a wait above the bound is refused; any write
committed by the serving process (a publish: no revocation feed entry) wakes a waiting poll at
once (the database poll set far beyond the test's bound, so only the wake-up can answer in
time); one committed by another process (a second store on the same database) is seen by the
short database poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from cortex_trust.sources import RegistryClient
from tests.registry.test_feed_long_poll import _poll_every, _published, _timed, revoke_from_another_process
from tests.support.federation import Federation, RegistryServer


def _size(server: RegistryServer) -> int:
    with RegistryClient(server.url) as c:
        return c.wait_log_size(after=0, wait=0)


def test_a_log_above_the_cursor_is_answered_at_once(federation: Federation) -> None:
    server = _published(federation, "tool")
    size = _size(server)
    assert size > 0
    with RegistryClient(server.url) as c:
        got, took = _timed(lambda: c.wait_log_size(after=size - 1, wait=30))
    assert got == size
    assert took < 5, took


def test_no_growth_answers_the_unchanged_size_after_the_wait(federation: Federation) -> None:
    server = _published(federation, "tool")
    size = _size(server)
    with RegistryClient(server.url) as c:
        got, took = _timed(lambda: c.wait_log_size(after=size, wait=1))
    assert got == size
    assert 0.9 <= took < 10, took


def test_a_log_wait_above_the_bound_is_refused(federation: Federation) -> None:
    r = httpx.get(f"{federation.public.url}/api/v1/log/size", params={"after": "0", "wait": "31"},
                  timeout=10)
    assert r.status_code == 422, r.text
    assert set(r.json()["error"]) == {"code", "message", "fix"}


def _waiting_then(server: RegistryServer, act: Callable[[], None]) -> tuple[int, int, float]:
    """Start a 25 s poll from the log's size, let it wait, ``act``; the size it started from,
    the size it got and how long after ``act`` returned."""
    size = _size(server)
    out: dict[str, Any] = {}

    def poll() -> None:
        with RegistryClient(server.url) as c:
            out["size"] = c.wait_log_size(after=size, wait=25)
            out["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(1.0)  # the poll has read the size and waits
    assert "size" not in out
    act()
    acted = time.monotonic()
    thread.join(30)
    assert not thread.is_alive()
    return size, out["size"], out["at"] - acted


def test_a_write_in_this_process_wakes_a_waiting_poll(federation: Federation) -> None:
    fed = federation
    server = _published(fed, "tool")
    _poll_every(server, 60)  # only the wake-up can answer within the bound below
    before, after, took = _waiting_then(
        server, lambda: server.publish(fed.sigstore, "beta", "tool", "1.1.0"))
    assert after > before
    assert took < 3, took


def test_a_write_by_another_process_is_seen_by_the_database_poll(federation: Federation) -> None:
    server = _published(federation, "tool")
    before, after, took = _waiting_then(server, revoke_from_another_process(server))
    assert after == before + 1
    assert took < 3, took
