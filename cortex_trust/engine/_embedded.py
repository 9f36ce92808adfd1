"""The embedded policy engine: regorus, compiled once, evaluated many times.

:class:`EmbeddedEngine` implements :class:`~cortex_trust.engine.PolicyEngine`. It runs in one
of two modes:

* **in-process** (the shipped defaults): one prepared regorus engine, only the input changes
  per call (bench/README.md has the numbers); ``timeout`` is not enforced,
  because native evaluation cannot be interrupted, and the defaults are our own code.
  For the shipped policy set alone (no organization module or data), inputs that come as a
  validated :class:`~cortex_trust.policy.PolicyInput` (:meth:`EmbeddedEngine.evaluate_input`,
  what :func:`~cortex_trust.engine.decide` uses) run in regorus' compiled mode, ~4x faster: those
  modules are audited never to hit a builtin error on schema-valid input, the one case in which
  compiled mode and the interpreter differ (docs/policy-contract.md, "Compiled mode"). Raw JSON
  text (:meth:`EmbeddedEngine.evaluate`) always goes to the interpreter, which raises on any
  builtin error.
* **isolated** (any organization module or data: ``PolicySet.has_custom``): a persistent child
  process (:mod:`cortex_trust.engine._worker`) loads the policy set once and evaluates every
  input. A policy that crashes regorus (a recursive function overflows the native stack) or
  runs past ``timeout`` kills only the child: the call raises
  :class:`~cortex_trust.errors.EngineError` (``decide()`` then blocks with ``ENGINE_ERROR`` or
  ``ENGINE_TIMEOUT``) and the next call starts a fresh child.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import CortexTrustError, EngineError, EngineTimeout, PolicyError
from ..policy import PolicySet
from ._decide import PolicyEngine

if TYPE_CHECKING:
    from ..policy import PolicyInput

__all__ = ["EmbeddedEngine", "RuleValue"]

#: Revisions (modules and data, :attr:`PolicySet.revision`) of the shipped policy set audited
#: for compiled mode: no builtin call in them can fail on schema-valid input, so regorus'
#: compiled mode (which turns a builtin error into "undefined") decides exactly like the
#: interpreter. The audit: docs/policy-contract.md "Compiled mode" (every call site and its
#: guard) and tests/test_compiled_mode.py (the call-site pin, and the interpreter never raising
#: and both modes agreeing on generated inputs). Changing a shipped module or data.yaml changes
#: the revision: until the audit is redone and the new revision added here, the interpreter runs.
AUDITED_REVISIONS = frozenset({
    "sha256:aa1ea27bcb36cf16c9a7844508a4e82e7a28acdf571e4b7f18a4b02c64061920",
})

#: How many inputs one ``eval_many`` request to the worker carries.
_BATCH = 256
_CRASH_HINT = "the policies may recurse without bound"


class RuleValue:
    """One rule's value for ``--explain``: ``path``, ``value`` (``None`` if undefined), ``error``."""

    __slots__ = ("error", "path", "value")

    def __init__(self, path: str, value: Any, error: str | None) -> None:
        self.path = path
        self.value = value
        self.error = error

    def __repr__(self) -> str:
        return f"RuleValue({self.path!r}, {self.value!r}, {self.error!r})"


def _one_line(input_json: str) -> str:
    # Raw newlines can only be whitespace in valid JSON text (inside strings they are escaped),
    # so replacing them keeps the document intact and frames it as one protocol line.
    return input_json.replace("\r", " ").replace("\n", " ")


class _Worker:
    """The parent's side of one child worker: start, ask with a deadline, detect crashes."""

    def __init__(self, policy_set: PolicySet, *, coverage: bool, load_timeout: float) -> None:
        self._load = {
            "op": "load",
            "modules": [[m.name, m.text] for m in policy_set.modules],
            "data": policy_set.data_json(),
            "coverage": coverage,
            "paths": {m.name: str(m.path) for m in policy_set.modules},
        }
        self._load_timeout = load_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._buf = bytearray()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start a child and load the policy set. Raises PolicyError for a bad module."""
        self.stop()
        import cortex_trust

        root = str(Path(cortex_trust.__file__).resolve().parent.parent)
        env = dict(os.environ)
        # The child must import this very cortex_trust; and Rust backtraces are only noise.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        env["RUST_BACKTRACE"] = "0"
        env["RUST_LIB_BACKTRACE"] = "0"
        # Like -P: otherwise ``-m`` puts the working directory first on sys.path, and a plugin
        # checkout holding a regorus.py (or json.py) would run inside the engine deciding on it.
        env["PYTHONSAFEPATH"] = "1"
        self._stderr = tempfile.TemporaryFile()  # lives as long as the child
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cortex_trust.engine._worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                bufsize=0, close_fds=True,
            )
        except OSError as e:
            self.stop()
            raise EngineError(f"cannot start the policy engine worker: {e.strerror or e}",
                              advice="check that the Python interpreter can start processes") from None
        assert self._proc.stdin is not None
        # Non-blocking writes: a child that stops reading must not hang us past the deadline.
        os.set_blocking(self._proc.stdin.fileno(), False)
        self._buf = bytearray()
        self._finalizer = weakref.finalize(self, _kill, self._proc)
        try:
            self._call(self._load, (), self._load_timeout, doing="loading the policies")
        except CortexTrustError:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc is not None:
            _kill(self._proc)
            if self._finalizer is not None:
                self._finalizer.detach()
        self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def call(self, header: dict[str, Any], inputs: Sequence[str], timeout: float, *,
             doing: str = "evaluating") -> dict[str, Any]:
        """Send one request; start a child first if there is none. Raises EngineError on a
        crash or timeout (the child is gone afterwards), PolicyError/EngineError for an answer
        with ``ok: false``."""
        if not self.alive:
            self.start()
        return self._call(header, inputs, timeout, doing=doing)

    def _call(self, header: dict[str, Any], inputs: Sequence[str], timeout: float, *,
              doing: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        payload = b"".join([json.dumps(header, separators=(",", ":")).encode("utf-8"), b"\n",
                            *(_one_line(t).encode("utf-8") + b"\n" for t in inputs)])
        deadline = time.monotonic() + timeout
        try:
            self._write(proc, payload, deadline, timeout, doing)
            line = self._read_line(proc, deadline, timeout, doing)
        except BrokenPipeError:
            raise self._crashed(doing) from None
        try:
            answer = json.loads(line)
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

    def _write(self, proc: subprocess.Popen[bytes], payload: bytes, deadline: float,
               timeout: float, doing: str) -> None:
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        view = memoryview(payload)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(timeout, doing)
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                raise self._timed_out(timeout, doing)
            try:
                n = os.write(fd, view[:65536])
            except BlockingIOError:
                continue  # the pipe is full: wait for the child to read
            view = view[n:]

    def _read_line(self, proc: subprocess.Popen[bytes], deadline: float, timeout: float,
                   doing: str) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(timeout, doing)
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                raise self._timed_out(timeout, doing)
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise self._crashed(doing)
            self._buf += chunk

    def _timed_out(self, timeout: float, doing: str) -> EngineTimeout:
        self.stop()
        return EngineTimeout(f"the policy engine timed out after {timeout:g}s while {doing}",
                             advice="simplify the policy (large comprehensions, deep iteration) "
                                    "or raise the timeout")

    def _crashed(self, doing: str) -> EngineError:
        proc = self._proc
        rc = proc.wait(timeout=5) if proc is not None else None
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 400))
            lines = [ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines()
                     if ln.strip()]
            tail = f" ({lines[-1].strip()[:200]})" if lines else ""
        self.stop()
        if rc is not None and rc < 0:
            try:
                sig = f"signal {-rc}, {signal.Signals(-rc).name}"
            except ValueError:
                sig = f"signal {-rc}"
            what = f"crashed ({sig})"
        else:
            what = f"exited unexpectedly (status {rc})"
        return EngineError(f"the policy engine {what} while {doing}; {_CRASH_HINT}{tail}",
                           advice="look for recursive functions in the organization's policies")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a killed child not exiting
        pass
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            f.close()


class EmbeddedEngine(PolicyEngine):
    """regorus loaded with one :class:`PolicySet`; implements ``PolicyEngine``.

    ``isolate=None`` isolates exactly when the policy set contains organization code
    (``policy_set.has_custom``). ``timeout`` (seconds per evaluation) applies in isolated mode;
    ``load_timeout`` bounds loading (parsing) the policies there. ``compiled`` allows regorus'
    compiled mode for :meth:`evaluate_input`; it is used only in-process and only for the shipped
    policy set (``mode`` says which: ``compiled``, ``interpreter`` or ``isolated``).
    ``precompute`` (compiled mode only) works out the policy's data-only values once, when the
    engine loads (policies/cortex/static.rego): ~40 ms more at start-up, ~20 % less per
    decision, so for long-lived engines (the registry, re-tiering), not one-shot commands.

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
