"""Following registries' revocation feeds and audit logs as they grow: what ``cortex plugin sync
--watch`` runs.

:class:`FeedWatcher` runs the caller's sync pass (the one ``cortex plugin sync`` runs: sync every
feed, re-decide every installed plugin, stop the running plugins it finds revoked or blocked) at
start, whenever a registry's feed or audit log grows, after a registry became reachable again,
and at least every ``interval`` seconds; never sooner than ``gap`` seconds after the previous
pass ended, and, while passes fail, never before the failed pass's backoff delay is over (a
registry that keeps answering with growth cannot drive passes back to back). Between passes two
follower threads per registry long-poll its feed (``GET /api/v1/revocations?wait=``) from the
cursor the last pass stored, and its audit log's size (``GET /api/v1/log/size?wait=``), which
grows with every committed write (a rescan, a re-tier: what can newly block an installed plugin).

Guarantees:

* Nothing is decided here: the pass decides. A follower only says "look again".
* A follower resumes from the stored cursor (or from what it saw, whichever is further), so a
  reconnection misses nothing: the pass re-reads every entry after the stored cursor.
* Failures (a registry down, a timeout, a refused request) are retried with exponential,
  capped, jittered delays (:class:`Backoff`); a pass that could not reach a registry is retried
  the same way, and until it succeeds the revocation data ages toward stale as for ``sync``.
* A registry read through a signed index has no long-poll: its feed is looked at by the
  periodic passes only. A registry without the log's long-poll (404) has its other changes
  seen by the periodic passes; its feed is still followed.
* :meth:`FeedWatcher.stop` (from a signal handler or another thread) ends :meth:`run` after the
  pass in progress; followers are daemon threads and never delay the exit.

No printing and no environment: lines go to the caller's ``log``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import CortexTrustError
from ._federation import RegistryTarget

if TYPE_CHECKING:
    from ..sources import RegistryClient

__all__ = ["Backoff", "FeedWatcher"]


class Backoff:
    """Delays between retries: ``base`` doubled per failure up to ``cap``, each drawn uniformly
    from its upper half (jitter: followers of one registry do not retry in step)."""

    def __init__(self, *, base: float = 1.0, cap: float = 60.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt; counts a failure."""
        delay = min(self.cap, self.base * float(2 ** min(self.failures, 32)))
        self.failures += 1
        return delay / 2 + self._rng() * delay / 2

    def reset(self) -> None:
        """An attempt succeeded: the next failure starts from ``base`` again."""
        self.failures = 0


class FeedWatcher:
    """Run ``sync`` whenever a followed feed may have changed, until :meth:`stop`.

    ``sync()`` is the sync pass; it returns ``False`` when some registry could not be synced
    (retried with backoff). ``targets()`` names the registries to follow and ``cursor(target)``
    where their stored feed ends (both asked again after each pass: plugins installed or
    removed meanwhile are followed or dropped). ``log(line, problem)`` gets one line per event
    (``problem``: a failure being retried). ``wait`` is the long-poll's length asked of the
    registry (a registry answering empty pages sooner is asked at most every ``wait / 2``
    seconds), ``interval`` the longest time between two passes, ``gap`` the shortest time from
    the end of a pass to the start of the next, ``settle`` how long a follower that saw growth
    waits before it looks again (a burst of writes, or a registry always answering with a new
    entry, is asked at most once per ``settle`` seconds). A wake during a failed pass's backoff
    delay runs the pass once that delay is over, not before.
    """

    def __init__(self, *, sync: Callable[[], bool], targets: Callable[[], Sequence[RegistryTarget]],
                 cursor: Callable[[RegistryTarget], int], log: Callable[[str, bool], None],
                 wait: int = 30, interval: float = 300.0, timeout: float = 10.0,
                 settle: float = 1.0, gap: float = 1.0, backoff: Callable[[], Backoff] = Backoff) -> None:
        self._sync, self._targets, self._cursor, self._log = sync, targets, cursor, log
        self.wait, self.interval, self.timeout, self.settle = wait, interval, timeout, settle
        self.gap = gap
        self._backoff = backoff
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._followers: dict[tuple[str, tuple[str, ...]], tuple[_Follower, ...]] = {}

    def stop(self) -> None:
        """End :meth:`run` (safe from a signal handler)."""
        self._stopped.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def wake(self) -> None:
        """Run a pass now."""
        self._wake.set()

    def run(self) -> None:
        """Pass, follow, pass again when woken; returns after :meth:`stop`."""
        retry = self._backoff()
        try:
            while not self._stopped.is_set():
                self._wake.clear()
                synced = self._sync()
                if synced:
                    retry.reset()
                    delay = self.interval
                else:
                    delay = max(self.gap, retry.next())
                    self._log(f"next sync in {delay:.1f}s", True)
                if self._stopped.is_set():
                    break
                self._follow(self._targets())
                if synced:
                    # Wakes meanwhile stay set: the pass they ask for runs once the gap is over.
                    self._stopped.wait(min(self.gap, delay))
                    self._wake.wait(max(0.0, delay - self.gap))
                else:
                    self._stopped.wait(delay)
        finally:
            for followers in self._followers.values():
                for f in followers:
                    f.stopped.set()
            self._followers.clear()

    def _follow(self, targets: Sequence[RegistryTarget]) -> None:
        """Start a follower per target not followed yet; stop those no longer wanted."""
        wanted = {(t.name, t.urls): t for t in targets if not t.index_urls}
        for key in list(self._followers):
            if key not in wanted:
                for f in self._followers.pop(key):
                    f.stopped.set()
        for key, target in wanted.items():
            if key not in self._followers:
                followers = (_FeedFollower(self, target), _LogFollower(self, target))
                self._followers[key] = followers
                for f in followers:
                    f.start()


class _Follower(threading.Thread):
    """Long-polls one thing of one registry that only grows (its URL, then its mirrors in turn
    on failures) and wakes the watcher when it grew. Subclasses say what :meth:`_look` asks."""

    what = "feed"

    def __init__(self, watcher: FeedWatcher, target: RegistryTarget) -> None:
        super().__init__(name=f"{self.what}-{target.name}", daemon=True)
        self.watcher, self.target = watcher, target
        self.stopped = threading.Event()

    def _done(self) -> bool:
        return self.stopped.is_set() or self.watcher.stopped

    def _look(self, client: RegistryClient) -> tuple[bool, str | None]:
        """One request: whether it was a long-poll, and a line to log when it saw growth."""
        raise NotImplementedError

    def _resumed(self) -> str:
        """What the line logged after a reconnection says about where following resumes."""
        raise NotImplementedError

    def _unsupported(self, url: str, e: CortexTrustError) -> bool:
        """Whether ``e`` says the registry has no such long-poll (following it stops)."""
        return False

    def run(self) -> None:
        from ..sources import RegistryClient

        w, t = self.watcher, self.target
        backoff = w._backoff()
        down = False
        url_index = 0
        while not self._done():
            url = t.urls[url_index % len(t.urls)]
            started = time.monotonic()
            try:
                with RegistryClient(url, token=t.token, timeout=w.timeout) as client:
                    polled, grown = self._look(client)
            except CortexTrustError as e:
                if self._done() or self._unsupported(url, e):
                    return
                delay = backoff.next()
                w._log(f"registry {t.name} ({url}) {self.what}: {e.message}; retrying in {delay:.1f}s",
                       True)
                down = True
                url_index += 1
                self.stopped.wait(delay)
                continue
            if self._done():
                return
            backoff.reset()
            if down:
                down = False
                w._log(f"registry {t.name} ({url}) reachable again; {self._resumed()}", False)
                w.wake()
            if grown is not None:
                w._log(f"registry {t.name}: {grown}", False)
                w.wake()
                self.stopped.wait(w.settle)
            elif polled:
                # An empty answer long before the wait was over: a registry without long-polls
                # (or one capping them short). Poll it no more often than the wait asks.
                self.stopped.wait(max(0.0, w.wait / 2 - (time.monotonic() - started)))


class _FeedFollower(_Follower):
    """Follows the revocation feed from the stored cursor (or what it saw, whichever is further)."""

    def __init__(self, watcher: FeedWatcher, target: RegistryTarget) -> None:
        super().__init__(watcher, target)
        self.seen = self.cursor = 0

    def _look(self, client: RegistryClient) -> tuple[bool, str | None]:
        w = self.watcher
        self.cursor = max(self.seen, w._cursor(self.target))
        page = client.wait_revocations(cursor=self.cursor, wait=w.wait)
        if not page.items:
            return True, None
        self.seen = page.next_cursor
        n = len(page.items)
        return True, f"{n} new feed entr{'y' if n == 1 else 'ies'} after cursor {self.cursor}"

    def _resumed(self) -> str:
        return f"resuming from cursor {self.cursor}"


class _LogFollower(_Follower):
    """Follows the size of the registry's audit log, which grows with every committed write (a
    rescan, a re-tier, a revocation...). Its first look takes the size and wakes the watcher (a
    write between the last pass and that look is not missed)."""

    what = "log"

    def __init__(self, watcher: FeedWatcher, target: RegistryTarget) -> None:
        super().__init__(watcher, target)
        self.size: int | None = None

    def _look(self, client: RegistryClient) -> tuple[bool, str | None]:
        if self.size is None:
            self.size = client.wait_log_size(after=0, wait=0)
            return False, f"following its log from size {self.size}"
        size = client.wait_log_size(after=self.size, wait=self.watcher.wait)
        if size == self.size:
            return True, None
        grown, self.size = size - self.size, size
        return True, f"{grown} new log entr{'y' if grown == 1 else 'ies'} (size {size})"

    def _resumed(self) -> str:
        return f"resuming from log size {self.size}"

    def _unsupported(self, url: str, e: CortexTrustError) -> bool:
        from ..sources import RegistryRequestError

        if not (isinstance(e, RegistryRequestError) and e.status == 404):
            return False
        self.watcher._log(f"registry {self.target.name} ({url}) has no log long-poll; its changes "
                          f"other than revocations are seen by the periodic sync", False)
        return True
