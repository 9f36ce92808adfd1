"""Long-polls of what only grows: the revocation feed (``GET /api/v1/revocations?cursor=N&wait=S``)
and the audit log's size (``GET /api/v1/log/size?after=N&wait=S``).

A follower asks for what is after its cursor and, with ``wait``, is answered as soon as there
is something, or with an empty answer (its cursor unchanged) once ``wait`` seconds passed.

Guarantees:

* No database connection is held while waiting: each look at the feed is one read of the
  fixed-SQL read path, which gives its connection back before the wait resumes.
* The wait is bounded (:data:`MAX_WAIT`), whatever the client asks.
* A write committed by this process wakes its waiters at once (one :class:`FeedWaiters` per
  followed sequence, notified by the store after the commit); one committed by another process (several workers, a
  CLI on the same database) is seen by the next look at the database, every
  ``feed_poll_seconds`` of the configuration.
* A follower that went away stops its wait at the next look (no orphaned waits piling up).
* At most ``limit`` long-polls wait on one sequence at a time (``feed_max_waiters`` of the
  configuration); one asked beyond that is answered at once with the current page, as with
  ``wait=0`` (the follower asks again later; nothing is missed).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from starlette.requests import Request

__all__ = ["MAX_WAIT", "FeedWaiters", "long_poll"]

#: The longest a feed request waits for an entry, in seconds (below common proxy timeouts).
MAX_WAIT = 30


class FeedWaiters:
    """The long-polls waiting on one growing sequence of this process (the feed, the log).

    :meth:`notify` may be called from any thread (writes run in worker threads); each waiter
    is an :class:`asyncio.Event` set on its own event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def waiting(self) -> int:
        """How many long-polls are waiting now."""
        with self._lock:
            return len(self._waiting)

    def notify(self) -> None:
        """Wake every waiter: the sequence may have grown. Never raises."""
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # that loop is closed: its waiter is gone with it

    @contextmanager
    def listening(self, *, limit: int) -> Iterator[asyncio.Event | None]:
        """An event set by every :meth:`notify` while the block runs (on the running loop);
        ``None`` (nothing registered) when ``limit`` waiters are already listening."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            full = len(self._waiting) >= limit
            if not full:
                self._waiting.add(entry)
        if full:
            yield None
            return
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiting.discard(entry)


async def long_poll(request: Request, read: Callable[[], Awaitable[tuple[bytes, bool]]], *,
                    waiters: FeedWaiters, wait: float, poll: float, limit: int) -> bytes:
    """The first page ``read()`` reports non-empty (``(document, has_entries)``), or the last
    empty one after ``wait`` seconds (at most :data:`MAX_WAIT`); the first page at once when
    ``limit`` long-polls already wait on ``waiters``.

    ``read`` is called once at the start, after each :meth:`FeedWaiters.notify` and at least
    every ``poll`` seconds; the wait stops early when the client disconnected.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_WAIT)
    with waiters.listening(limit=limit) as woken:
        if woken is None:
            document, _ = await read()
            return document
        while True:
            woken.clear()  # before the read: a notify during the read is not lost
            document, has_entries = await read()
            left = deadline - loop.time()
            if has_entries or left <= 0:
                return document
            try:
                await asyncio.wait_for(woken.wait(), timeout=min(poll, left))
            except TimeoutError:
                pass
            if await request.is_disconnected():
                return document
