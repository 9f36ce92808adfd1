"""Keeping a registry's index current while it serves: after each write, and before the
timestamp expires.

The store calls :meth:`IndexKeeper.changed` after every committed write with what the write was
about; a background thread then re-reads the documents that write may have changed and applies
them (:meth:`~registry._index.IndexRepository.update`: only the bins that changed are
re-signed). Writes that reach many plugins at once (a digest or identity revocation, a
re-tiering) make it compare the whole catalogue with the index instead. The same thread
re-signs the timestamp when half of its period has passed.

Failures never reach the write that triggered them (it is committed): they are logged, and the
change is retried with the next one or the next refresh, which then compares everything. An
index that cannot be kept current goes stale, and clients refuse it once its timestamp
expires (fail closed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from cortex_trust.sources import IndexLayout

from ._documents import all_documents, changed_documents

if TYPE_CHECKING:
    from .._store import Store
    from ._repo import IndexRepository

__all__ = ["IndexKeeper"]

logger = logging.getLogger("registry.index")
#: Seconds between attempts while the index cannot be updated.
_RETRY_SECONDS = 5.0


class IndexKeeper:
    """Applies the store's writes to ``repo`` on one background thread (see the module)."""

    def __init__(self, store: Store, repo: IndexRepository, *, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.repo = repo
        self.clock = clock
        self._cond = threading.Condition()
        self._plugins: set[tuple[str, str]] = set()
        self._everything = True  # the first pass catches up with writes made while stopped
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        #: The last failure, for health checks and tests (``None`` after a success).
        self.error: str | None = None

    def changed(self, target: str) -> None:
        """A write about ``target`` (an audit entry's target) was committed."""
        if target.startswith(("token:", "scan:")):
            return
        with self._cond:
            key = target.split("@", 1)[0]
            if "/" in key and ":" not in key:
                ns, name = key.split("/", 1)
                self._plugins.add((ns, name))
            else:
                self._everything = True
            self._cond.notify_all()

    def start(self) -> None:
        """Start the background thread."""
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="index-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop it (pending changes are applied first)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every change made so far is applied; whether it was in time."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._plugins or self._everything),
                                       timeout=timeout)

    def run_once(self) -> None:
        """Apply pending changes now (on the caller's thread)."""
        with self._cond:
            plugins, self._plugins = self._plugins, set()
            everything, self._everything = self._everything, False
            self._busy = True
        try:
            now = self.clock()
            if everything:
                self.repo.replace_all(all_documents(self.store), now=now)
            elif plugins:
                self.repo.update(changed_documents(self.store, self.repo, plugins), now=now)
            ts = self.repo.timestamp().signed
            signed_at = ts.unrecognized_fields.get(IndexLayout.SIGNED_AT)
            if signed_at is None or (ts.expires - now) < self.repo.expiries.timestamp / 2:
                self.repo.refresh(now=now)
            self.error = None
        except Exception as e:
            logger.exception("the index could not be updated")
            self.error = f"{type(e).__name__}: {e}"
            with self._cond:
                self._everything = True
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _loop(self) -> None:
        period = self.repo.expiries.timestamp.total_seconds() / 8
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or bool(self._plugins) or self._everything,
                                    timeout=period)
                stop = self._stop
            self.run_once()
            if stop:
                return
            if self.error is not None:
                with self._cond:  # back off before retrying in full
                    self._cond.wait_for(lambda: self._stop, timeout=_RETRY_SECONDS)
