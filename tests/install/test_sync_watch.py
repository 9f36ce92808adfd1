"""What `cortex plugin sync --watch` runs (:class:`cortex_trust.install.FeedWatcher`), without
containers: the installer's real sync pass against a real private registry on loopback.

Shown here: the retry delays double up to their cap, each drawn from the upper half of its
step, and start over after a success; a registry that goes down is retried (logged, with
backoff) and, once it is back, the follower resumes from the stored cursor and a revocation
made while it was down reaches the pass without waiting for the periodic sync; a revocation
while followed reaches the pass within seconds; a rescan that finds a CRITICAL (a registry write
that adds no feed entry, followed through the audit log's size) reaches the pass within seconds
and the pass reports the plugin blocked; a registry without the log's long-poll (an older one)
is followed through its feed alone, its log never asked again; a registry that answers the long-polls at once (no
long-poll support) is not polled in a loop; a registry that answers every long-poll with growth
gets a bounded number of requests and passes, whether the passes succeed or fail; stop() ends
the watch promptly.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cortex_trust.install import Backoff, FeedWatcher, Installer, SyncReport
from tests.install.conftest import install_now, installed_tool, installer
from tests.install.test_rescan_sync import NO_PROMOTION, publish_networked, scan
from tests.support.federation import Federation


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets() -> None:
    low = Backoff(base=1, cap=8, rng=lambda: 0.0)
    assert [low.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    high = Backoff(base=1, cap=8, rng=lambda: 0.999999)
    assert [round(high.next(), 3) for _ in range(5)] == [1, 2, 4, 8, 8]
    high.reset()
    assert round(high.next(), 3) == 1
    assert all(0.5 <= Backoff(base=1, cap=8).next() <= 1 for _ in range(100))


def _until(what: Callable[[], bool], *, within: float, why: str, log: list[str]) -> float:
    """Seconds until ``what()`` held; fails after ``within`` seconds."""
    t0 = time.monotonic()
    while not what():
        assert time.monotonic() - t0 < within, f"{why}; log: {log}"
        time.sleep(0.02)
    return time.monotonic() - t0


@contextmanager
def watching(inst: Installer, *, wait: int = 1) -> Iterator[tuple[list[SyncReport], list[str]]]:
    """A watcher over ``inst``'s real sync pass, in a thread; short polls and retries, and no
    periodic pass within any test's time (only a feed can trigger one)."""
    passes: list[SyncReport] = []
    log: list[str] = []

    def one_pass() -> bool:
        report = inst.sync(now=datetime.now(UTC))
        passes.append(report)
        return not report.errors

    watcher = FeedWatcher(sync=one_pass, targets=inst.feed_targets, cursor=inst.feed_cursor,
                          log=lambda line, _problem: log.append(line), wait=wait,
                          interval=3600, timeout=2,
                          backoff=lambda: Backoff(base=0.1, cap=0.4))
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        _until(lambda: bool(passes), within=20, why="no first pass", log=log)
        assert passes[0].synced == ("acme",) and passes[0].revoked == ()
        yield passes, log
    finally:
        watcher.stop()
        thread.join(10)
    assert not thread.is_alive()


def _revoked(passes: list[SyncReport]) -> list[str]:
    return [f"{r.name}@{r.version}" for p in passes for r in p.revoked]


def test_a_revocation_reaches_the_pass_within_seconds(federation: Federation) -> None:
    fed = federation
    with installed_tool(fed) as (inst, _), watching(inst) as (passes, log):
        time.sleep(0.5)  # the follower is waiting on the feed
        fed.private.revoke("acme", "tool", "1.0.0")
        took = _until(lambda: bool(_revoked(passes)), within=10, why="revocation not seen",
                      log=log)
        # The first pass that saw it (the log's growth may wake another one).
        assert _revoked([next(p for p in passes if p.revoked)]) == ["acme/tool@1.0.0"]
        assert any("1 new feed entry after cursor 0" in line for line in log), log
        print(f"revocation reached the sync pass {took:.2f}s after the revoke call returned")


def test_a_rescan_blocking_an_installed_plugin_reaches_the_pass_within_seconds(
        federation: Federation) -> None:
    fed = federation
    now = datetime.now(UTC)
    digest = "sha256:" + "6" * 64
    publish_networked(fed, digest)
    scan(fed, digest, now=now - timedelta(minutes=10), critical=False)
    with installer(fed, data=[NO_PROMOTION]) as inst:
        install_now(inst, "acme/tool", now=now)
        assert inst.check_run("acme/tool", now=now).allowed
        _watch_rescan(fed, inst, digest, now=now)


def _watch_rescan(fed: Federation, inst: Installer, digest: str, *, now: datetime) -> None:
    with watching(inst) as (passes, log):
        _until(lambda: any("following its log" in line for line in log), within=10,
               why="the log is not followed", log=log)
        time.sleep(1.5)  # the follower is waiting on the log (past its settle time)
        assert all(p.blocked == () for p in passes)
        store = fed.private.store
        assert store.queue_rescans(older_than=now, now=now - timedelta(minutes=5),
                                   evaluate=fed.private.evaluator) == ["acme/tool@1.0.0"]
        scan(fed, digest, now=now - timedelta(minutes=1), critical=True)
        took = _until(lambda: any(p.blocked for p in passes), within=10,
                      why="the rescan's block not seen", log=log)
        [(record, decision)] = next(p for p in passes if p.blocked).blocked
        assert record.name == "acme/tool" and decision.action.value == "block"
        assert "SCAN_VULNERABILITIES" in decision.codes
        assert any("new log entr" in line for line in log), log
        assert not any("new feed entr" in line for line in log), log
        # A pass writes nothing to the registry: once the writes stop, so do the passes.
        time.sleep(1.5)
        settled = len(passes)
        time.sleep(2.5)
        assert len(passes) == settled, log
        print(f"the rescan reached the sync pass {took:.2f}s after it was recorded")


def _without_log_poll(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Registries answer the log's long-poll as one without it does (404); the cursors asked."""
    from cortex_trust.sources import RegistryClient, RegistryRequestError

    asked: list[int] = []

    def older_registry(self: RegistryClient, *, after: int, wait: int) -> int:
        asked.append(after)
        raise RegistryRequestError("the registry refused the request (HTTP 404)", status=404,
                                   code="HTTP_404")

    monkeypatch.setattr(RegistryClient, "wait_log_size", older_registry)
    return asked


def test_a_registry_without_the_log_long_poll_is_followed_through_its_feed(
        federation: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _without_log_poll(monkeypatch)
    fed = federation
    with installed_tool(fed) as (inst, _), watching(inst) as (passes, log):
        _until(lambda: any("has no log long-poll" in line for line in log), within=10,
               why="the missing long-poll not noticed", log=log)
        fed.private.revoke("acme", "tool", "1.0.0")
        _until(lambda: bool(_revoked(passes)), within=10, why="revocation not seen", log=log)
        time.sleep(1.0)
    assert asked == [0], asked
    assert sum("has no log long-poll" in line for line in log) == 1, log
    assert not any("retrying in" in line for line in log), log


def test_a_registry_down_then_up_is_retried_and_resumed_from_the_cursor(
        federation: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_log_poll(monkeypatch)  # only the feed's follower can wake the pass
    fed = federation
    with installed_tool(fed) as (inst, _), watching(inst) as (passes, log):
        fed.private.stop()
        _until(lambda: sum(") feed: " in line and "retrying in" in line for line in log) >= 3,
               within=20, why="no retries while the registry is down", log=log)
        retries = [float(line.rsplit("retrying in ", 1)[1].rstrip("s")) for line in log
                   if ") feed: " in line and "retrying in" in line]
        assert all(0.05 <= d <= 0.4 for d in retries), retries
        assert max(retries) > min(retries), retries  # the delays grew
        # Revoked while the follower cannot reach the registry.
        _revoke_in_store(fed)
        assert _revoked(passes) == []
        fed.private.start()
        _until(lambda: bool(_revoked(passes)), within=20, why="not resumed after reconnect",
               log=log)
        assert _revoked(passes) == ["acme/tool@1.0.0"]
        assert any("reachable again; resuming from cursor 0" in line for line in log), log


def _revoke_in_store(fed: Federation) -> None:
    server = fed.private
    now = datetime.now(UTC)
    store: Any = server.store
    store.revoke("acme", "tool", "1.0.0", reason="revoked while you were away",
                 principal=store.authenticate(server.token("acme"), now=now), now=now,
                 evaluate=server.app.state.evaluator)


def test_a_registry_answering_at_once_is_not_polled_in_a_loop(federation: Federation) -> None:
    """A registry that answers empty pages without waiting (no long-poll, or a short cap) is
    asked at most every ``wait / 2`` seconds, not as fast as it answers."""
    import dataclasses

    fed = federation
    server = fed.private
    server.app.state.config = dataclasses.replace(server.app.state.config,
                                                  feed_max_wait_seconds=0)
    store: Any = server.store
    looks: list[float] = []
    page = store.revocation_page

    def counted(**kw: Any) -> Any:
        looks.append(time.monotonic())
        return page(**kw)

    with installed_tool(fed) as (inst, _), watching(inst, wait=2) as (_passes, log):
        store.revocation_page = counted
        time.sleep(3.5)
        store.revocation_page = page
    assert 2 <= len(looks) <= 5, (looks, log)


class _AlwaysGrowing:
    """A hostile registry's client: every long-poll is answered at once with one new entry (its
    feed's cursor and its log's size move forward on every request)."""

    requests = 0

    def __init__(self, *_a: Any, **_k: Any) -> None:
        pass

    def __enter__(self) -> _AlwaysGrowing:
        return self

    def __exit__(self, *_a: object) -> None:
        pass

    def wait_revocations(self, *, cursor: int, wait: int) -> Any:
        import types

        type(self).requests += 1
        return types.SimpleNamespace(items=[object()], next_cursor=cursor + 1)

    def wait_log_size(self, *, after: int, wait: int) -> int:
        type(self).requests += 1
        return after + 1


@pytest.mark.parametrize("synced", [False, True], ids=["passes-failing", "passes-succeeding"])
def test_a_registry_always_answering_with_growth_cannot_drive_passes_back_to_back(
        monkeypatch: pytest.MonkeyPatch, synced: bool) -> None:
    """Each follower asks at most once per ``settle``, passes are at least ``gap`` apart, and
    while passes fail a wake does not cut their backoff delay short (default settings)."""
    import cortex_trust.sources as sources
    from cortex_trust.install._federation import RegistryTarget

    client = type("Client", (_AlwaysGrowing,), {"requests": 0})
    monkeypatch.setattr(sources, "RegistryClient", client)
    passes: list[float] = []

    def one_pass() -> bool:
        passes.append(time.monotonic())
        return synced

    target = RegistryTarget(name="evil", urls=("https://evil.example",))
    log: list[str] = []
    watcher = FeedWatcher(sync=one_pass, targets=lambda: [target], cursor=lambda _t: 0,
                          log=lambda line, _problem: log.append(line), interval=300)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    time.sleep(3)
    watcher.stop()
    thread.join(5)
    assert not thread.is_alive()
    # Unbounded, this is hundreds of passes and hundreds of thousands of requests.
    assert 1 <= len(passes) <= 5, (passes, log)
    assert client.requests <= 20, (client.requests, log)
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(passes)), passes
    assert any("new feed entry" in line for line in log), log
