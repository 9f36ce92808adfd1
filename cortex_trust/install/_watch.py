"""Following registries' revocation feeds as they grow: what ``cortex plugin sync --watch`` runs.

:class:`FeedWatcher` runs the caller's sync pass (the one ``cortex plugin sync`` runs: sync every
feed, stop the running plugins it finds revoked) at start, whenever a registry's feed grows, after a
registry became reachable again, and at least every ``interval`` seconds. Between passes one
follower thread per registry long-polls its feed (``GET /api/v1/revocations?wait=``) from the
cursor the last pass stored.

Guarantees:

* Nothing is decided here: the pass decides. A follower only says "look again".
* A follower resumes from the stored cursor (or from what it saw, whichever is further), so a
  reconnection misses nothing: the pass re-reads every entry after the stored cursor.
* Failures (a registry down, a timeout, a refused request) are retried with exponential,
  capped, jittered delays (:class:`Backoff`); a pass that could not reach a registry is retried
  the same way, and until it succeeds the revocation data ages toward stale as for ``sync``.
* A registry read through a signed index has no long-poll: its feed is looked at by the
  periodic passes only.
* :meth:`FeedWatcher.stop` (from a signal handler or another thread) ends :meth:`run` after the
  pass in progress; followers are daemon threads and never delay the exit.

No printing and no environment: lines go to the caller's ``log``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from ..errors import CortexTrustError
from ._federation import RegistryTarget

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
    seconds), ``interval`` the longest time between two passes.
    """

    def __init__(self, *, sync: Callable[[], bool], targets: Callable[[], Sequence[RegistryTarget]],
                 cursor: Callable[[RegistryTarget], int], log: Callable[[str, bool], None],
                 wait: int = 30, interval: float = 300.0, timeout: float = 10.0,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self._sync, self._targets, self._cursor, self._log = sync, targets, cursor, log
        self.wait, self.interval, self.timeout = wait, interval, timeout
        self._backoff = backoff
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._followers: dict[tuple[str, tuple[str, ...]], _Follower] = {}

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
                if self._sync():
                    retry.reset()
                    delay = self.interval
                else:
                    delay = retry.next()
                    self._log(f"next sync in {delay:.1f}s", True)
                if self._stopped.is_set():
                    break
                self._follow(self._targets())
                self._wake.wait(delay)
        finally:
            for f in self._followers.values():
                f.stopped.set()
            self._followers.clear()

    def _follow(self, targets: Sequence[RegistryTarget]) -> None:
        """Start a follower per target not followed yet; stop those no longer wanted."""
        wanted = {(t.name, t.urls): t for t in targets if not t.index_urls}
        for key in list(self._followers):
            if key not in wanted:
                self._followers.pop(key).stopped.set()
        for key, target in wanted.items():
            if key not in self._followers:
                follower = _Follower(self, target)
                self._followers[key] = follower
                follower.start()


class _Follower(threading.Thread):
    """Long-polls one registry's feed (its URL, then its mirrors in turn on failures)."""

    def __init__(self, watcher: FeedWatcher, target: RegistryTarget) -> None:
        super().__init__(name=f"feed-{target.name}", daemon=True)
        self.watcher, self.target = watcher, target
        self.stopped = threading.Event()

    def _done(self) -> bool:
        return self.stopped.is_set() or self.watcher.stopped

    def run(self) -> None:
        from ..sources import RegistryClient

        w, t = self.watcher, self.target
        backoff = w._backoff()
        seen = 0
        down = False
        url_index = 0
        while not self._done():
            url = t.urls[url_index % len(t.urls)]
            cursor = seen
            started = time.monotonic()
            try:
                cursor = max(seen, w._cursor(t))
                with RegistryClient(url, token=t.token, timeout=w.timeout) as client:
                    page = client.wait_revocations(cursor=cursor, wait=w.wait)
            except CortexTrustError as e:
                if self._done():
                    return
                delay = backoff.next()
                w._log(f"registry {t.name} ({url}): {e.message}; retrying in {delay:.1f}s", True)
                down = True
                url_index += 1
                self.stopped.wait(delay)
                continue
            if self._done():
                return
            backoff.reset()
            if down:
                down = False
                w._log(f"registry {t.name} ({url}) reachable again; resuming from cursor {cursor}",
                       False)
                w.wake()
            if page.items:
                seen = page.next_cursor
                w._log(f"registry {t.name}: {len(page.items)} new feed "
                       f"entr{'y' if len(page.items) == 1 else 'ies'} after cursor {cursor}", False)
                w.wake()
            else:
                # An empty page long before the wait was over: a registry without long-polls
                # (or one capping them short). Poll it no more often than the wait asks.
                self.stopped.wait(max(0.0, w.wait / 2 - (time.monotonic() - started)))
