"""What the registry's background jobs run against (:class:`JobSettings`), read by each task with
:func:`settings`: those of the in-process runner calling it (:mod:`registry._background`), or
those this worker process was started with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cortex_trust.errors import InputError

if TYPE_CHECKING:
    from ._store import Evaluator, Store

__all__ = ["JobSettings", "running", "set_process_settings", "settings"]


@dataclass
class JobSettings:
    """What this process's jobs run against. ``scanner`` (``image, digest -> ScanEvidence``)
    is ``None`` in a process that cannot scan: it takes no scan job. ``allowed`` are the OCI
    registries an image may come from; scans older than ``rescan_after`` are rescanned (``None``:
    never); ``governance`` is the :class:`registry._governance.Governance` polled (``None``: no
    GitHub side); a claimed scan is taken back from a silent process after ``lease``; the
    periodic rescan check runs on ``rescan_cron`` (``None``: hourly)."""

    store: Store
    evaluate: Evaluator
    clock: Callable[[], datetime]
    scanner: Callable[[str, str], Any] | None = None
    allowed: tuple[str, ...] = ()
    rescan_after: timedelta | None = None
    governance: Any | None = None
    lease: timedelta = timedelta(minutes=15)
    rescan_cron: str | None = None


_current: ContextVar[JobSettings | None] = ContextVar("registry_job_settings", default=None)
_process: list[JobSettings] = []


def settings() -> JobSettings:
    """The settings of the runner calling this task, else of this worker process."""
    found = _current.get() or (_process[0] if _process else None)
    if found is None:
        raise InputError("this process has no registry database for its jobs",
                         advice="run jobs with `cortex registry worker --db URL`")
    return found


@contextmanager
def running(job_settings: JobSettings) -> Iterator[None]:
    """Tasks called in this block read ``job_settings``."""
    token = _current.set(job_settings)
    try:
        yield
    finally:
        _current.reset(token)


def set_process_settings(job_settings: JobSettings) -> None:
    """The settings of this worker process's tasks."""
    _process[:] = [job_settings]
