"""Re-tiering the catalogue after a policy change: one policy engine per core.

:class:`RetierPool` evaluates batches of stored versions (:class:`~registry._reevaluate.Item`) in
worker processes, each holding its own :class:`~cortex_trust.engine.EmbeddedEngine` built from the
same :class:`~cortex_trust.policy.PolicySet` (regorus engines are bound to the thread that built
them, so an engine is never shared or carried across a fork: each worker is a fresh interpreter
supervised by :class:`~cortex_trust.engine.WorkerProcess`, as the embedded engine's isolated mode
is). A worker rebuilds every input from stored facts, asks :func:`cortex_trust.engine.decide` for
each decision and renders the version's read documents (:func:`registry._reevaluate.evaluate_items`,
the path every single write takes too), so the calling process only reads rows and writes results
while the workers evaluate (the pool keeps every worker busy and hands back finished batches in
completion order).

Fail closed, always through :func:`~cortex_trust.engine.decide`:

* a worker that dies (a policy overflowing the native stack, a kill) blocks its batch with
  ``ENGINE_ERROR``; a batch of several versions is first split in halves and retried on a fresh
  worker, so one input that crashes the engine blocks only itself (within a restart budget,
  after which whole batches are blocked without retrying);
* a batch that is not answered within ``timeout`` seconds: the worker is killed and the batch
  blocked with ``ENGINE_TIMEOUT``;
* an answer for another batch, or with a wrong number of decisions: the batch is blocked with
  ``ENGINE_ERROR`` and the worker replaced.

No decision is ever reused from an earlier run or another version. A stored document that does
not validate any more (a corrupt database) aborts the run with :class:`RetierFailed`: the caller
rolls its transaction back.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cortex_trust.engine import WorkerChannel, WorkerProcess
from cortex_trust.errors import CortexTrustError, EngineError, PolicyError, UnavailableError
from cortex_trust.policy import PolicySet, format_time

from ._reevaluate import Item, Outcome, evaluate_items

__all__ = [
    "Job",
    "RetierFailed",
    "RetierPool",
    "RetierStats",
    "policy_from_json",
    "policy_to_json",
    "usable_cpus",
]


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
    """Where a run's time went. CPU seconds are summed over the workers (``eval_cpu`` is the
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
    main_wait_s: float = 0.0
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

#: How a re-tiering worker is started (a fresh interpreter, supervised by WorkerProcess).
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


@dataclass
class _Flight:
    worker: WorkerProcess
    job: Job
    seq: int
    deadline: float


class RetierPool:
    """Decide batches of stored versions on ``workers`` processes (default: one per usable
    CPU), each with its own engine for ``policy_set``; ``workers=0`` decides in the calling
    thread (no processes; an engine crash then takes the caller down, so only for the
    shipped policies or tests).

    ``timeout`` bounds one batch (seconds). ``isolate`` is passed to each engine
    (:class:`~cortex_trust.engine.EmbeddedEngine`); by default (None) a worker
    evaluates in its own process, which is already the boundary that contains a crash or a
    hang, while ``workers=0`` keeps the engine's own default (organization code in a child
    process). ``max_restarts`` bounds how many workers are started to replace crashed, hung
    or killed ones. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, policy_set: PolicySet, *, registry_name: str = "cortex-registry",
                 workers: int | None = None, timeout: float = 300.0,
                 isolate: bool | None = None,
                 max_restarts: int | None = None, start_timeout: float = 120.0) -> None:
        self.policy_set = policy_set
        self.revision = policy_set.revision
        self.registry_name = registry_name
        self.workers = usable_cpus() if workers is None else max(0, workers)
        self.timeout = timeout
        self.isolate = isolate
        self.start_timeout = start_timeout
        self.max_restarts = (4 * max(1, self.workers) + 8) if max_restarts is None \
            else max_restarts
        self.stats = RetierStats(workers=self.workers)
        self._init = _dump((_policy_spec(policy_set), bool(isolate), registry_name))
        self._procs: list[WorkerProcess] = []
        self._local: Any = None
        self._seq = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers and wait until each has built its engine (idempotent).

        Raises :class:`PolicyError` when the policies do not load and :class:`EngineError`
        when a worker cannot start (it crashed or timed out while loading the policies).
        """
        started = time.perf_counter()
        if self.workers == 0:
            if self._local is None:
                from cortex_trust.engine import EmbeddedEngine

                self._local = EmbeddedEngine(self.policy_set, isolate=self.isolate,
                                             precompute=True)
                self.stats.extra["engine_mode"] = self._local.mode
            return
        while len(self._procs) < self.workers:
            self._procs.append(self._spawn())
        for p in self._procs:
            if not p.ready:
                try:
                    self._on_ready(p, p.await_ready())
                except CortexTrustError:
                    p.stop()
                    raise
        self.stats.start_s += time.perf_counter() - started

    def _spawn(self) -> WorkerProcess:
        p = WorkerProcess(_WORKER_ARGV, path=(_ROOT,))
        p.start(self._init, timeout=self.start_timeout)
        return p

    def _on_ready(self, p: WorkerProcess, frame: bytes) -> None:
        msg = _load(frame)
        if isinstance(msg, tuple) and len(msg) == 4 and msg[0] == "init_error":
            p.stop()
            cls = PolicyError if msg[1] == "PolicyError" else EngineError
            raise cls(str(msg[2]), advice=msg[3])
        if not (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "ready"):
            p.stop()
            raise EngineError("a re-tiering worker answered out of protocol",
                              advice="report this as a cortex-trust bug")
        self.stats.extra["engine_mode"] = msg[1]

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for operators and tests)."""
        return [p.pid for p in self._procs if p.pid is not None and p.alive]

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        for p in self._procs:
            p.stop()
        self._procs = []
        if self._local is not None:
            self._local.close()
            self._local = None

    def __enter__(self) -> RetierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------

    def run(self, jobs: Iterable[Job], *, now: datetime) -> Iterator[tuple[Job, list[Outcome]]]:
        """Decide every job at ``now``; yield ``(job, outcomes)`` as batches finish.

        Batches come back in completion order, one outcome per item. A batch split after a
        crash comes back as its halves (each a :class:`Job` with its own keys). Raises
        :class:`RetierFailed` when a worker reports stored facts that do not validate.
        """
        self.start()
        if self.workers == 0:
            for job in jobs:
                yield job, self._evaluate_here(job, now)
            return
        yield from self._run_pool(iter(jobs), now)

    def _evaluate_here(self, job: Job, now: datetime) -> list[Outcome]:
        try:
            outcomes, cpu = evaluate_items(self._local, job.items, now=now,
                                           registry_name=self.registry_name)
        except Exception as e:  # noqa: BLE001 - the same contract as a worker's "error"
            raise RetierFailed(f"re-tiering stopped: {type(e).__name__}: {e}"[:2000],
                               advice="the stored facts of a version do not validate; "
                                      "restore the database from a backup") from None
        self._count(job, outcomes, cpu)
        return outcomes

    def _count(self, job: Job, outcomes: list[Outcome], cpu: Sequence[float]) -> None:
        s = self.stats
        s.batches += 1
        s.versions += len(job.items)
        s.failed += sum(1 for o in outcomes if o.failed)
        s.build_cpu += cpu[0]
        s.eval_cpu += cpu[1]
        s.render_cpu += cpu[2]

    def _blocked(self, job: Job, error: BaseException, now: datetime) -> list[Outcome]:
        """Fail-closed outcomes for a batch the engine could not answer, made by decide()
        from an engine that raises ``error`` (EngineTimeout -> ENGINE_TIMEOUT, else
        ENGINE_ERROR)."""
        from ._reevaluate import _Answered

        outcomes, _ = evaluate_items(_Answered(error, self.revision), job.items, now=now,
                                     registry_name=self.registry_name)
        self._count(job, outcomes, (0.0, 0.0, 0.0))
        return outcomes

    def _replace(self, p: WorkerProcess) -> WorkerProcess | None:
        p.stop()
        self._procs.remove(p)
        if self.stats.restarts >= self.max_restarts:
            return None
        self.stats.restarts += 1
        fresh = self._spawn()
        self._procs.append(fresh)
        return fresh

    def _run_pool(self, source: Iterator[Job], now: datetime) -> Iterator[tuple[Job, list[Outcome]]]:
        now_text = format_time(now)
        retry: deque[Job] = deque()
        idle: list[WorkerProcess] = [p for p in self._procs if p.ready]
        starting: list[WorkerProcess] = [p for p in self._procs if not p.ready]
        flights: dict[int, _Flight] = {}  # by id(worker)
        exhausted = False

        def next_job() -> Job | None:
            nonlocal exhausted
            if retry:
                return retry.popleft()
            if exhausted:
                return None
            job = next(source, None)
            if job is None:
                exhausted = True
            return job

        def fill() -> None:
            while idle:
                job = next_job()
                if job is None:
                    return
                p = idle.pop()
                self._seq += 1
                # A worker that died while idle shows as a crash of this batch when it is read.
                p.send(_dump((self._seq, now_text, job.items)))
                flights[id(p)] = _Flight(p, job, self._seq, time.monotonic() + self.timeout)

        def replace(p: WorkerProcess) -> bool:
            """Replace ``p`` by a fresh worker; False when the restart budget is spent."""
            fresh = self._replace(p)
            if fresh is not None:
                starting.append(fresh)
            return fresh is not None

        def lost(f: _Flight, error: BaseException, *, split: bool) -> list[Outcome] | None:
            """A worker is gone with ``f``'s batch; returns fail-closed outcomes, or None
            when the batch was split for a retry."""
            if replace(f.worker) and split and len(f.job.items) > 1:
                half = len(f.job.items) // 2
                retry.appendleft(Job(f.job.keys[half:], f.job.items[half:]))
                retry.appendleft(Job(f.job.keys[:half], f.job.items[:half]))
                return None
            return self._blocked(f.job, error, now)

        while True:
            fill()
            if not flights and not starting:
                job = next_job()
                if job is None:
                    return
                # Every worker is gone and the restart budget is spent: block what is left.
                error = EngineError(f"the policy engine workers kept crashing; "
                                    f"{self.max_restarts} restarts were used")
                while job is not None:
                    yield job, self._blocked(job, error, now)
                    job = next_job()
                return
            deadline = min([f.deadline for f in flights.values()]
                           + [p.ready_by for p in starting])
            waited = time.perf_counter()
            WorkerProcess.wait([f.worker for f in flights.values()] + starting,
                               deadline - time.monotonic())
            self.stats.main_wait_s += time.perf_counter() - waited
            for p in list(starting):
                try:
                    frame = p.pump(doing="loading the policies")
                except EngineError:  # it died while loading: start another
                    starting.remove(p)
                    replace(p)
                    continue
                if frame is not None:
                    starting.remove(p)
                    self._on_ready(p, frame)  # raises for policies that stopped loading
                    idle.append(p)
                elif time.monotonic() > p.ready_by:
                    starting.remove(p)
                    replace(p)
            for key, f in list(flights.items()):
                p = f.worker
                try:
                    frame = p.pump(doing=_RETIERING)
                except EngineError as crash:
                    del flights[key]
                    self.stats.crashes += 1
                    blocked = lost(f, crash, split=True)
                    if blocked is not None:
                        yield f.job, blocked
                    continue
                if frame is None:
                    if time.monotonic() > f.deadline:
                        del flights[key]
                        self.stats.timeouts += 1
                        # A slow policy is slow for every input: no retry, block the batch.
                        outcomes = lost(f, p.timed_out(self.timeout, _RETIERING), split=False)
                        assert outcomes is not None
                        yield f.job, outcomes
                    continue  # still working
                del flights[key]
                reply = _load(frame)
                if isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "error":
                    raise RetierFailed(f"re-tiering stopped: {reply[2]}",
                                       advice="the stored facts of a version do not validate; "
                                              "restore the database from a backup")
                if not _valid_reply(reply, seq=f.seq, n=len(f.job.items)):
                    # Out of step with this worker: never store an answer that may belong to
                    # other versions. Replace the worker and block the batch.
                    replace(p)
                    yield f.job, self._blocked(
                        f.job, EngineError("a re-tiering worker returned a wrong number of "
                                           "answers or answered another batch"), now)
                    continue
                idle.append(p)
                fill()  # keep the worker busy before the caller stores this batch
                self._count(f.job, reply[2], reply[3])
                yield f.job, reply[2]


def _valid_reply(reply: Any, *, seq: int, n: int) -> bool:
    """True for an answer to batch ``seq`` with exactly ``n`` outcomes."""
    return (isinstance(reply, tuple) and len(reply) == 4 and reply[0] == "ok"
            and reply[1] == seq and isinstance(reply[2], list) and len(reply[2]) == n
            and all(isinstance(o, Outcome) for o in reply[2]))
