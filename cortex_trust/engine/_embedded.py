"""The embedded policy engine: regorus, compiled once, evaluated many times.

:class:`EmbeddedEngine` implements :class:`~cortex_trust.engine.PolicyEngine`. It runs in one
of two modes:

* **in-process** (the shipped defaults): one prepared regorus engine, only the input changes
  per call (bench/README.md has the numbers); ``timeout`` is not enforced,
  because native evaluation cannot be interrupted, and the defaults are our own code.
  For the shipped policy set alone (no organization module or data), inputs that come as a
  validated :class:`~cortex_trust.policy.PolicyInput` (:meth:`EmbeddedEngine.evaluate_input`,
  what :func:`~cortex_trust.engine.decide` uses) run in regorus' compiled mode (faster): those
  modules are audited never to hit a builtin error on schema-valid input, the one case in which
  compiled mode and the interpreter differ (docs/policy-contract.md, "Compiled mode"). Raw JSON
  text (:meth:`EmbeddedEngine.evaluate`) always goes to the interpreter, which raises on any
  builtin error.
* **isolated** (any organization module or data: ``PolicySet.has_custom``): a persistent child
  process (:mod:`cortex_trust.engine._worker`, supervised by
  :class:`~cortex_trust.engine.WorkerProcess`) loads the policy set once and evaluates every
  input. A policy that crashes regorus (a recursive function overflows the native stack) or
  runs past ``timeout`` kills only the child: the call raises
  :class:`~cortex_trust.errors.EngineError` (``decide()`` then blocks with ``ENGINE_ERROR`` or
  ``ENGINE_TIMEOUT``) and the next call starts a fresh child.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CortexTrustError, EngineError, PolicyError
from ..policy import PolicySet
from ._decide import PolicyEngine
from ._supervisor import WorkerProcess

if TYPE_CHECKING:
    from ..policy import PolicyInput

__all__ = ["EmbeddedEngine", "RuleValue"]

#: Revisions (modules and data, :attr:`PolicySet.revision`) of the shipped policy set audited
#: for compiled mode: no builtin call in them can fail on schema-valid input, so regorus'
#: compiled mode (which turns a builtin error into "undefined") decides exactly like the
#: interpreter. The audit: docs/policy-contract.md "Compiled mode" (every call site and its
#: guard) and tests/engine/test_compiled_mode.py (the call-site pin, and the interpreter never raising
#: and both modes agreeing on generated inputs). Changing a shipped module or data.yaml changes
#: the revision: until the audit is redone and the new revision added here, the interpreter runs.
AUDITED_REVISIONS = frozenset({
    "sha256:c21718d276598f54ab69d5a601eb9930eb2cb62b4c74f3694266405f2b37a58c",
})

#: How many inputs one ``eval_many`` request to the worker carries.
_BATCH = 256


class RuleValue:
    """One rule's value for ``--explain``: ``path``, ``value`` (``None`` if undefined), ``error``."""

    __slots__ = ("error", "path", "value")

    def __init__(self, path: str, value: Any, error: str | None) -> None:
        self.path = path
        self.value = value
        self.error = error

    def __repr__(self) -> str:
        return f"RuleValue({self.path!r}, {self.value!r}, {self.error!r})"


class _Worker:
    """The parent's side of one policy worker (:mod:`cortex_trust.engine._worker`): its init is
    the ``load`` request, its answers are protocol messages (``ok`` or an error)."""

    def __init__(self, policy_set: PolicySet, *, coverage: bool, load_timeout: float) -> None:
        self._load = _encode({
            "op": "load",
            "modules": [[m.name, m.text] for m in policy_set.modules],
            "data": policy_set.data_json(),
            "coverage": coverage,
            "paths": {m.name: str(m.path) for m in policy_set.modules},
        })
        self._load_timeout = load_timeout
        self.process = WorkerProcess(("-m", "cortex_trust.engine._worker"))

    @property
    def alive(self) -> bool:
        return self.process.alive

    def start(self) -> None:
        """Start a child and load the policy set. Raises PolicyError for a bad module."""
        self.process.start(self._load, timeout=self._load_timeout)
        try:
            self._answer(self.process.await_ready())
        except CortexTrustError:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.stop()

    def call(self, header: dict[str, Any], inputs: Sequence[str], timeout: float, *,
             doing: str = "evaluating") -> dict[str, Any]:
        """Send one request; start a child first if there is none. Raises EngineError on a
        crash or timeout (the child is gone afterwards), PolicyError/EngineError for an answer
        with ``ok: false``."""
        if not self.alive:
            self.start()
        return self._answer(self.process.request(_encode(header), *(t.encode("utf-8") for t in inputs),
                                                 timeout=timeout, doing=doing))

    def _answer(self, frame: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(frame)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self.stop()
            raise EngineError("the policy engine worker answered something that is not a "
                              "protocol message", advice="report this as a cortex-trust bug")
        if not answer.get("ok"):
            cls = PolicyError if answer.get("kind") == "policy" else EngineError
            raise cls(str(answer.get("error")), advice=answer.get("advice"))
        return answer


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


class EmbeddedEngine(PolicyEngine):
    """regorus loaded with one :class:`PolicySet`; implements ``PolicyEngine``.

    ``isolate=None`` isolates exactly when the policy set contains organization code
    (``policy_set.has_custom``). ``timeout`` (seconds per evaluation) applies in isolated mode;
    ``load_timeout`` bounds loading (parsing) the policies there. ``compiled`` allows regorus'
    compiled mode for :meth:`evaluate_input`; it is used only in-process and only for the shipped
    policy set (``mode`` says which: ``compiled``, ``interpreter`` or ``isolated``).
    ``precompute`` (compiled mode only) works out the policy's data-only values once, when the
    engine loads (policies/cortex/static.rego): more work at start-up, less per decision, so
    for long-lived engines (the registry, re-tiering), not one-shot commands.

    Raises :class:`PolicyError` at construction when a module does not parse, and
    :class:`EngineError` when the isolated worker cannot be started. Thread-safe: in-process,
    each thread gets its own prepared engine (regorus engines are bound to their thread);
    isolated, calls to the worker are serialised. Use as a context manager or call :meth:`close`.
    """

    name = "regorus"

    def __init__(self, policy_set: PolicySet, *, isolate: bool | None = None,
                 timeout: float = 5.0, load_timeout: float = 30.0, compiled: bool = True,
                 precompute: bool = False) -> None:
        self.policy_set = policy_set
        self.precompute = precompute
        self.revision = policy_set.revision
        self.isolated = policy_set.has_custom if isolate is None else isolate
        # Compiled mode turns a builtin error into "undefined": only for the audited shipped
        # modules and data, never for organization code (which could drop its own deny entry).
        self.compiled = (compiled and not self.isolated and not policy_set.has_custom
                         and policy_set.revision in AUDITED_REVISIONS)
        self.mode = "isolated" if self.isolated else "compiled" if self.compiled else "interpreter"
        self.timeout = timeout
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        # regorus engines are bound to the thread that built them (using one from another
        # thread panics): in-process mode keeps one prepared engine per thread.
        self._tls = threading.local()
        if self.isolated:
            self._worker = _Worker(policy_set, coverage=False, load_timeout=load_timeout)
            self._worker.start()
        else:
            # Parse now: a bad module is an error at construction (compiling parses too).
            if self.compiled:
                self._compiled()
            else:
                self._local()

    def _local(self) -> Any:
        """This thread's prepared interpreter (regorus engines are bound to their thread)."""
        from ._regorus import Prepared

        return self._per_thread("prepared", Prepared)

    def _compiled(self) -> Any:
        """This thread's compiled program (only used when ``self.compiled``)."""
        from ._regorus import Compiled

        return self._per_thread("compiled", functools.partial(Compiled, precompute=self.precompute))

    def _per_thread(self, slot: str, build: Any) -> Any:
        value = getattr(self._tls, slot, None)
        if value is None:
            ps = self.policy_set
            value = build([(m.name, m.text) for m in ps.modules], ps.data_json(),
                          paths={m.name: str(m.path) for m in ps.modules})
            setattr(self._tls, slot, value)
        return value

    def evaluate_input(self, policy_input: PolicyInput) -> Any:
        """Like :meth:`evaluate`, for a validated input document (compiled mode when allowed).

        Taking the model, not text, is what makes compiled mode safe to use here: the input is
        schema-valid by construction, the precondition of the audit of the shipped modules.
        """
        if self.compiled:
            return self._compiled().evaluate(policy_input.to_json())
        return self.evaluate(policy_input.to_json())

    def evaluate_inputs(self, policy_inputs: Sequence[PolicyInput]) -> list[Any]:
        """:meth:`evaluate_input` for many validated inputs: one entry per input, in order, the
        value or the :class:`EngineError` of that input (one failing input never fails the
        others). In compiled mode the inputs are serialised first and then evaluated in one
        tight loop, which keeps the Rvm's caches warm (~15 % less CPU than input by input).
        """
        texts = [i.to_json() for i in policy_inputs]
        if self.compiled:
            return list(self._compiled().evaluate_many(texts))
        return self.evaluate_many(texts)

    def evaluate(self, input_json: str) -> Any:
        """The value of ``data.cortex.decision`` for ``input_json`` (``None`` if undefined).

        Always the interpreter (or the isolated worker): raw text may be anything.
        Raises :class:`EngineError` on an evaluation error, a crash or a timeout.
        """
        if self._worker is None:
            return self._local().evaluate(input_json)
        with self._lock:
            return self._worker.call({"op": "eval"}, (input_json,), self.timeout)["value"]

    def evaluate_many(self, input_jsons: Iterable[str]) -> list[Any]:
        """Evaluate many inputs; one entry per input, in order.

        Each entry is the decision value (``None`` if undefined) or the :class:`EngineError`
        for that input; one failing input never fails the others. In isolated mode inputs go to
        the worker in batches; a batch that crashes or times out is retried one input at a time
        so the failure is attributed to the input that caused it.
        """
        texts = list(input_jsons)
        out: list[Any] = []
        if self._worker is None:
            prepared = self._local()
            for i in range(0, len(texts), _BATCH):
                out.extend(prepared.evaluate_many(texts[i : i + _BATCH]))
            return out
        with self._lock:
            worker = self._worker
            for i in range(0, len(texts), _BATCH):
                chunk = texts[i : i + _BATCH]
                try:
                    answer = worker.call({"op": "eval_many", "n": len(chunk)}, chunk,
                                         self.timeout * len(chunk))
                except EngineError:
                    for t in chunk:
                        try:
                            out.append(worker.call({"op": "eval"}, (t,), self.timeout)["value"])
                        except EngineError as e:
                            out.append(e)
                    continue
                for r in answer["results"]:
                    out.append(r["value"] if "value" in r
                               else EngineError(r["error"], advice=r.get("advice")))
        return out

    def explain(self, input_json: str, *, prefix: str = "data.cortex") -> list[RuleValue]:
        """The value of every rule under ``prefix`` for ``input_json`` (for ``--explain``).

        Raises :class:`EngineError` if the engine crashed or timed out; a single rule failing is
        reported in its :class:`RuleValue`.
        """
        if self._worker is None:
            rows = self._local().explain(input_json, prefix)
        else:
            with self._lock:
                rows = self._worker.call({"op": "explain", "prefix": prefix}, (input_json,),
                                         self.timeout * 10)["rules"]
        return [RuleValue(str(p), v, e) for p, v, e in rows]

    def why(self, input_json: str, codes: Sequence[str]) -> list[dict[str, Any]]:
        """Why each reason code is in the decision for ``input_json`` (for ``--explain``): per
        code, the rule bodies that emit it (``rule``, ``module``, ``line``), each condition with
        the values of its terms, and for ``not r`` the first failing expression of ``r``.

        Raises :class:`EngineError` if the engine crashed or timed out.
        """
        if self._worker is None:
            return list(self._local().why(input_json, codes))
        with self._lock:
            answer = self._worker.call({"op": "why", "codes": list(codes)}, (input_json,),
                                       self.timeout * 20)
        return list(answer["why"])

    def close(self) -> None:
        """Stop the worker (if any), and drop this thread's in-process engines (regorus objects
        must be dropped on the thread that made them; call it there). The engine is unusable
        afterwards in isolated mode; in-process it rebuilds on the next call."""
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
        for slot in ("prepared", "compiled"):
            if hasattr(self._tls, slot):
                delattr(self._tls, slot)


def open_session(policy_set: PolicySet, *, isolate: bool, coverage: bool,
                 load_timeout: float = 30.0) -> _Session:
    """A request/answer session on a loaded policy set (used by the Rego test runner)."""
    return _Session(policy_set, isolate=isolate, coverage=coverage, load_timeout=load_timeout)


class _Session:
    """Speaks the worker protocol, to a child (isolated) or to an in-process session."""

    def __init__(self, policy_set: PolicySet, *, isolate: bool, coverage: bool,
                 load_timeout: float) -> None:
        self._worker: _Worker | None = None
        self._local: Any = None
        if isolate:
            self._worker = _Worker(policy_set, coverage=coverage, load_timeout=load_timeout)
            self._worker.start()
        else:
            from ._worker import Session

            self._local = Session()
            self._check(self._local.handle({
                "op": "load", "modules": [[m.name, m.text] for m in policy_set.modules],
                "data": policy_set.data_json(), "coverage": coverage,
                "paths": {m.name: str(m.path) for m in policy_set.modules}}, []))

    @staticmethod
    def _check(answer: dict[str, Any]) -> dict[str, Any]:
        if not answer.get("ok"):
            cls: type[CortexTrustError] = PolicyError if answer.get("kind") == "policy" else EngineError
            raise cls(str(answer.get("error")), advice=answer.get("advice"))
        return answer

    def call(self, header: dict[str, Any], inputs: Sequence[str] = (), *,
             timeout: float = 30.0) -> dict[str, Any]:
        """One request; raises EngineError (crash, timeout, failure) or PolicyError."""
        if self._worker is not None:
            return self._worker.call(header, inputs, timeout)
        return self._check(self._local.handle(header, list(inputs)))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
