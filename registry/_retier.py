"""Re-tiering the catalogue after a policy change: each thread decides on its own engine process.

A :class:`Decider` decides batches of stored versions (:class:`~registry._reevaluate.Item`) on one
:class:`~cortex_trust.engine.EmbeddedEngine` built from a :class:`~cortex_trust.policy.PolicySet`,
held in one child process supervised by :class:`~cortex_trust.engine.WorkerProcess` (regorus
engines are bound to the thread that built them, so an engine is never shared or carried across a
fork: the child is a fresh interpreter, as the embedded engine's isolated mode is). The child
rebuilds every input from stored facts, asks :func:`cortex_trust.engine.decide` for each decision
and renders the version's read documents (:func:`registry._reevaluate.evaluate_items`, the path
every single write takes too). A decider is used by one thread at a time: the job queue's workers
give each running job its own (:mod:`registry._jobs`), and :class:`LocalDeciders` runs a function
on ``workers`` threads of this process, each with its own decider.

Fail closed, always through :func:`~cortex_trust.engine.decide`:

* a child that dies (a policy overflowing the native stack, a kill) blocks its batch with
  ``ENGINE_ERROR``; a batch of several versions is first split in halves and retried on a fresh
  child, so one input that crashes the engine blocks only itself (within a restart budget, after
  which whole batches are blocked without retrying);
* a batch that is not answered within ``timeout`` seconds: the child is killed and the batch
  blocked with ``ENGINE_TIMEOUT``;
* an answer for another batch, or with a wrong number of decisions: the batch is blocked with
  ``ENGINE_ERROR`` and the child replaced.

No decision is ever reused from an earlier run or another version. A stored document that does
not validate any more (a corrupt database) aborts the run with :class:`RetierFailed`: the caller
rolls its transaction back.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from cortex_trust.engine import WorkerChannel, WorkerProcess
from cortex_trust.errors import CortexTrustError, EngineError, EngineTimeout, PolicyError, UnavailableError
from cortex_trust.policy import PolicySet, format_time

from ._reevaluate import Item, Outcome, evaluate_items

__all__ = [
    "Decider",
    "Job",
    "LocalDeciders",
    "RetierFailed",
    "RetierStats",
    "policy_from_json",
    "policy_to_json",
    "usable_cpus",
]

_T = TypeVar("_T")
_R = TypeVar("_R")
#: Deciders sharing one :class:`RetierStats` count under this lock.
_STATS = threading.Lock()


@dataclass
class Job:
    """A batch: the caller's ``keys`` (one per item, e.g. row ids) and the ``items``."""

    keys: list[Any]
    items: list[Item]


class RetierFailed(UnavailableError):
    """Re-tiering could not be completed (stored facts that no longer validate); nothing of
    the run may be kept."""


@dataclass
class RetierStats:
    """Where a run's time went. CPU seconds are summed over the engine processes (``eval_cpu`` is the
    time inside :func:`decide`: the policy evaluation and the strict parsing of its result);
    ``main_*`` are measured by the caller in its own process."""

    workers: int = 0
    versions: int = 0
    failed: int = 0
    batches: int = 0
    crashes: int = 0
    timeouts: int = 0
    restarts: int = 0
    start_s: float = 0.0
    build_cpu: float = 0.0
    eval_cpu: float = 0.0
    render_cpu: float = 0.0
    main_read_cpu: float = 0.0
    main_write_cpu: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (seconds rounded to ms)."""
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if k != "extra":
                out[k] = round(v, 3) if isinstance(v, float) else v
        return {**out, **self.extra}


def usable_cpus() -> int:
    """How many CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------------------- the worker

#: How a re-tiering engine process is started (a fresh interpreter, supervised by WorkerProcess).
_WORKER_ARGV = ("-c", "from registry._retier import _worker_main; _worker_main()")
#: The directory that holds this registry package, for the worker's import path.
_ROOT = str(Path(__file__).resolve().parent.parent)
_RETIERING = "re-tiering"


def _policy_spec(policy_set: PolicySet) -> tuple[Any, ...]:
    # PolicySet keeps its data in a read-only mapping proxy, which does not pickle: send the
    # canonical data JSON and rebuild (checked byte for byte on arrival).
    return (policy_set.modules, policy_set.data_json(), policy_set.revision,
            policy_set.has_custom, policy_set.overrides)


def _rebuild_policy_set(spec: tuple[Any, ...]) -> PolicySet:
    modules, data_json, revision, has_custom, overrides = spec
    rebuilt = PolicySet(modules=modules, data=MappingProxyType(json.loads(data_json)),
                        revision=revision, has_custom=has_custom, overrides=overrides)
    if rebuilt.data_json() != data_json:
        raise PolicyError("the policy data changed on its way to a re-tiering worker",
                          advice="report this as a cortex-trust bug")
    return rebuilt


def policy_to_json(policy_set: PolicySet) -> str:
    """``policy_set`` as JSON text, for a re-tier run decided on other machines
    (:func:`policy_from_json` rebuilds it)."""
    modules, data_json, revision, has_custom, overrides = _policy_spec(policy_set)
    return json.dumps({"modules": [[m.name, str(m.path), m.text, m.default] for m in modules],
                       "data": data_json, "revision": revision, "has_custom": has_custom,
                       "overrides": [[n, str(a), str(b)] for n, a, b in overrides]})


def policy_from_json(text: str, *, revision: str) -> PolicySet:
    """The policy set :func:`policy_to_json` wrote, with the same data; its revision is
    recomputed from its modules and data (as :func:`~cortex_trust.policy.load_policy_set` does),
    never read from ``text``. Raises :class:`PolicyError` when the data does not come back byte
    for byte or the recomputed revision is not ``revision`` (the policy was changed since)."""
    from cortex_trust.policy import PolicyModule
    from cortex_trust.policy._sets import _revision

    spec = json.loads(text)
    modules = tuple(PolicyModule(name=n, path=Path(p), text=t, default=d) for n, p, t, d in spec["modules"])
    overrides = tuple((n, Path(a), Path(b)) for n, a, b in spec["overrides"])
    actual = _revision(modules, json.loads(spec["data"]))
    if actual != revision or spec["revision"] != revision:
        raise PolicyError(f"the stored policy's modules and data have revision {actual}, not the run's {revision}",
                          advice="the stored run was modified: discard it and start another re-tier")
    return _rebuild_policy_set((modules, spec["data"], actual, spec["has_custom"], overrides))


def _dump(message: Any) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _load(frame: bytes) -> Any:
    """A message between the pool and a worker; ``None`` for bytes that are not one (the
    receiver refuses it). Both ends are this program, over the worker's private pipes."""
    try:
        return pickle.loads(frame)  # noqa: S301 - written by the other end of a private pipe
    except Exception:  # noqa: BLE001 - any undecodable message is out of protocol
        return None


def _worker_main() -> None:
    """A worker process: build one engine from the init message, answer it ``ready``, then
    answer batches until the parent closes the pipe."""
    channel = WorkerChannel()
    init = channel.receive()
    if init is None:
        return
    spec, isolate, registry_name = _load(init)
    from cortex_trust.engine import EmbeddedEngine

    try:
        engine = EmbeddedEngine(_rebuild_policy_set(spec), isolate=isolate, precompute=True)
    except CortexTrustError as e:
        channel.send(_dump(("init_error", type(e).__name__, e.message, e.advice)))
        return
    gc.freeze()  # the engine and the modules loaded so far are never garbage
    channel.send(_dump(("ready", engine.mode)))
    try:
        while (msg := channel.receive()) is not None:
            seq, now_text, items = _load(msg)
            now = datetime.strptime(now_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            # A batch allocates many short-lived, acyclic objects: the cyclic collector would
            # only rescan them (~5 % of the CPU), so it is off while a batch runs and resumes
            # between batches.
            gc.disable()
            try:
                outcomes, cpu = evaluate_items(engine, items, now=now,
                                               registry_name=registry_name)
            except Exception as e:  # noqa: BLE001 - reported; the parent aborts the run
                channel.send(_dump(("error", seq, f"{type(e).__name__}: {e}"[:2000])))
                continue
            finally:
                gc.enable()
            channel.send(_dump(("ok", seq, outcomes, cpu)))
    finally:
        engine.close()


class Decider:
    """Decide batches on one engine for ``policy_set``, used by one thread at a time: in a
    supervised child process, or with ``in_process`` in the calling thread (an engine crash then
    takes the caller down: only for the shipped policies or tests).

    ``timeout`` bounds one batch (seconds); ``max_restarts`` bounds how many children replace
    crashed, hung or out-of-step ones. ``isolate`` is the engine's
    (:class:`~cortex_trust.engine.EmbeddedEngine`; default: none in a child, which is already the
    boundary, the engine's own default in process). Batches are counted in ``stats``.
    """

    def __init__(self, policy_set: PolicySet, *, registry_name: str = "cortex-registry",
                 in_process: bool = False, timeout: float = 300.0, isolate: bool | None = None,
                 max_restarts: int = 12, start_timeout: float = 120.0,
                 stats: RetierStats | None = None) -> None:
        self.policy_set, self.revision, self.registry_name = policy_set, policy_set.revision, registry_name
        self.in_process, self.timeout, self.isolate = in_process, timeout, isolate
        self.max_restarts, self.start_timeout, self.restarts = max_restarts, start_timeout, 0
        self.stats = stats if stats is not None else RetierStats(workers=0 if in_process else 1)
        self._init = _dump((_policy_spec(policy_set), bool(isolate), registry_name))
        self._child: WorkerProcess | None = None
        self._spent = False  # the restart budget is spent: every batch is blocked
        self._local: Any = None
        self._seq = 0

    def launch(self) -> None:
        """Start the child without waiting for it to load the policies (:meth:`start` waits)."""
        if not self.in_process and self._child is None and not self._spent:
            self._child = WorkerProcess(_WORKER_ARGV, path=(_ROOT,))
            self._child.start(self._init, timeout=self.start_timeout)

    def start(self) -> None:
        """Build the engine (idempotent). Raises :class:`PolicyError` when the policies do not
        load, :class:`EngineError` when the child crashed or timed out loading them."""
        if self.in_process:
            if self._local is None:
                from cortex_trust.engine import EmbeddedEngine

                self._local = EmbeddedEngine(self.policy_set, isolate=self.isolate, precompute=True)
                self.stats.extra["engine_mode"] = self._local.mode
            return
        self.launch()
        if self._child is None or self._child.ready:
            return
        started = time.perf_counter()
        try:
            msg = _load(self._child.await_ready())
            if isinstance(msg, tuple) and len(msg) == 4 and msg[0] == "init_error":
                raise (PolicyError if msg[1] == "PolicyError" else EngineError)(str(msg[2]), advice=msg[3])
            if not (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "ready"):
                raise EngineError("a re-tiering engine process answered out of protocol",
                                  advice="report this as a cortex-trust bug")
        except CortexTrustError:
            self.close()
            raise
        with _STATS:
            self.stats.extra["engine_mode"] = msg[1]
            self.stats.start_s += time.perf_counter() - started

    @property
    def pid(self) -> int | None:
        """Process id of the live child."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    def close(self) -> None:
        """Stop the engine (idempotent)."""
        if self._child is not None:
            self._child.stop()
            self._child = None
        if self._local is not None:
            self._local.close()
            self._local = None

    def __enter__(self) -> Decider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decide(self, job: Job, *, now: datetime) -> list[Outcome]:
        """One outcome per item of ``job``, decided at ``now``. Raises :class:`RetierFailed`
        when the engine reports stored facts that do not validate."""
        self.start()
        if not self.in_process:
            return self._decide(job, now)
        try:
            outcomes, cpu = evaluate_items(self._local, job.items, now=now, registry_name=self.registry_name)
        except Exception as e:  # noqa: BLE001 - the same contract as a child's "error"
            raise _invalid(f"{type(e).__name__}: {e}") from None
        self._count(job, outcomes, cpu)
        return outcomes

    def _decide(self, job: Job, now: datetime) -> list[Outcome]:
        if self._child is None:
            return self._blocked(job, EngineError(
                f"the policy engine kept crashing; {self.max_restarts} restarts were used"), now)
        self._seq += 1
        try:
            frame = self._child.request(_dump((self._seq, format_time(now), job.items)), timeout=self.timeout,
                                        doing=_RETIERING)
        except EngineTimeout as e:  # a slow policy is slow for every input: no retry
            self._note("timeouts")
            self._restart()
            return self._blocked(job, e, now)
        except EngineError as crash:  # one input may crash the engine: halve and retry
            self._note("crashes")
            if self._restart() and len(job.items) > 1:
                half = len(job.items) // 2
                return (self._decide(Job(job.keys[:half], job.items[:half]), now)
                        + self._decide(Job(job.keys[half:], job.items[half:]), now))
            return self._blocked(job, crash, now)
        reply = _load(frame)
        if isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "error":
            raise _invalid(str(reply[2]))
        if not _valid_reply(reply, seq=self._seq, n=len(job.items)):
            # Out of step: never store an answer that may belong to other versions.
            self._restart()
            return self._blocked(job, EngineError("a re-tiering engine process returned a wrong number of "
                                                  "answers or answered another batch"), now)
        self._count(job, reply[2], reply[3])
        return list(reply[2])

    def _restart(self) -> bool:
        """Replace the child, within the restart budget; False once it is spent."""
        self.close()
        while self.restarts < self.max_restarts:
            self.restarts += 1
            self._note("restarts")
            try:
                self.start()
                return True
            except EngineError:  # it died or hung while loading: start another
                continue
        self._spent = True
        return False

    def _note(self, failure: str) -> None:
        with _STATS:
            setattr(self.stats, failure, getattr(self.stats, failure) + 1)

    def _count(self, job: Job, outcomes: Sequence[Outcome], cpu: Sequence[float]) -> None:
        with _STATS:
            s = self.stats
            s.batches += 1
            s.versions += len(job.items)
            s.failed += sum(1 for o in outcomes if o.failed)
            s.build_cpu += cpu[0]
            s.eval_cpu += cpu[1]
            s.render_cpu += cpu[2]

    def _blocked(self, job: Job, error: BaseException, now: datetime) -> list[Outcome]:
        """Fail-closed outcomes made by decide() from an engine that raises ``error``
        (EngineTimeout -> ENGINE_TIMEOUT, else ENGINE_ERROR)."""
        from ._reevaluate import _Answered

        outcomes, _ = evaluate_items(_Answered(error, self.revision), job.items, now=now,
                                     registry_name=self.registry_name)
        self._count(job, outcomes, (0.0, 0.0, 0.0))
        return outcomes


def _invalid(detail: str) -> RetierFailed:
    return RetierFailed(f"re-tiering stopped: {detail}"[:2000],
                        advice="the stored facts of a version do not validate; restore the database from a backup")


class LocalDeciders:
    """``workers`` threads of this process (default: one per usable CPU), each with its own
    :class:`Decider` (its other arguments are passed on); ``workers=0``: one decider in the
    calling thread, no process. Use as a context manager or call :meth:`close`."""

    def __init__(self, policy_set: PolicySet, *, workers: int | None = None, **decider: Any) -> None:
        self.revision = policy_set.revision
        self.workers = usable_cpus() if workers is None else max(0, workers)
        self.stats = RetierStats(workers=self.workers)
        self._deciders = [Decider(policy_set, in_process=self.workers == 0, stats=self.stats, **decider)
                          for _ in range(max(1, self.workers))]
        self._free: queue.SimpleQueue[Decider] = queue.SimpleQueue()
        for d in self._deciders:
            self._free.put(d)

    def start(self) -> None:
        """Load the policies in every decider, side by side."""
        for d in self._deciders:
            d.launch()
        for d in self._deciders:
            d.start()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live engine processes."""
        return [p for d in self._deciders if (p := d.pid) is not None]

    def map(self, fn: Callable[[Decider, _T], _R], items: Iterable[_T]) -> Iterator[_R]:
        """``fn(decider, item)`` for every item on the threads, each call with a decider of its
        own; results in completion order. A call that raises stops the run (nothing more is
        started) and its exception propagates."""
        self.start()
        if self.workers <= 1:
            yield from (fn(self._deciders[0], item) for item in items)
            return

        def call(item: _T) -> _R:
            d = self._free.get()
            try:
                return fn(d, item)
            finally:
                self._free.put(d)

        source = iter(items)
        flying: set[Future[_R]] = set()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="retier") as executor:
            try:
                while True:  # two items per thread in flight, no more: items may be large
                    while len(flying) < 2 * self.workers and (item := next(source, _END)) is not _END:
                        flying.add(executor.submit(call, item))
                    if not flying:
                        return
                    done, flying = wait(flying, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            finally:
                for f in flying:
                    f.cancel()

    def run(self, jobs: Iterable[Job], *, now: datetime) -> Iterator[tuple[Job, list[Outcome]]]:
        """Decide every job at ``now``; yield ``(job, outcomes)`` as batches finish."""
        return self.map(lambda d, job: (job, d.decide(job, now=now)), jobs)

    def close(self) -> None:
        """Stop every engine (idempotent)."""
        for d in self._deciders:
            d.close()

    def __enter__(self) -> LocalDeciders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END: Any = object()


def _valid_reply(reply: Any, *, seq: int, n: int) -> bool:
    """True for an answer to batch ``seq`` with exactly ``n`` outcomes."""
    return (isinstance(reply, tuple) and len(reply) == 4 and reply[0] == "ok"
            and reply[1] == seq and isinstance(reply[2], list) and len(reply[2]) == n
            and all(isinstance(o, Outcome) for o in reply[2]))
