"""How the registry asks the policy engine: re-evaluation inputs and a thread-safe evaluator.

The first input of a version is built at publish time by :func:`cortex_trust.inputs.build_input`
(the one builder). Later evaluations start from that stored document and replace only the
evidence that changed since (a review, usage, a revocation) and the clock: no parsing, no
cryptography. Python never decides: every verdict comes from :func:`cortex_trust.engine.decide`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from cortex_trust.decision import Decision
from cortex_trust.engine import PolicyEngine, decide
from cortex_trust.errors import EngineError
from cortex_trust.policy_input import (
    PolicyInput,
    ReviewEvidence,
    RevocationEvidence,
    ScanEvidence,
    SignatureEvidence,
    TestEvidence,
    UsageEvidence,
    format_time,
)

__all__ = ["ThreadEvaluator", "version_input"]


def version_input(base: PolicyInput, *, signature: SignatureEvidence | None,
                  scan: ScanEvidence | None, tests: TestEvidence | None,
                  review: ReviewEvidence | None, usage: UsageEvidence,
                  revocation: RevocationEvidence, now: datetime,
                  operation: str = "publish") -> PolicyInput:
    """``base`` with newer evidence pieces (``None`` keeps the base piece) and ``now``.

    Every piece handed in is about the version's digest (the store only passes rows bound to
    it); a piece about another digest would have been dropped by ``build_input`` at publish.
    """
    update: dict[str, Any] = {"usage": usage, "revocation": revocation}
    for key, piece in (("signature", signature), ("scan", scan), ("tests", tests),
                       ("review", review)):
        if piece is not None:
            update[key] = piece
    evidence = base.evidence.model_copy(update=update)
    context = base.context.model_copy(update={"now": format_time(now), "operation": operation})
    return base.model_copy(update={"evidence": evidence, "context": context})


class _Answered:
    """A PolicyEngine whose answer is already known (one value of a batch evaluation)."""

    name = "batch"

    def __init__(self, value: Any, revision: str) -> None:
        self.value = value
        self.revision = revision

    def evaluate(self, input_json: str) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


class ThreadEvaluator:
    """Evaluate inputs on one engine that lives on one dedicated thread.

    regorus engines are bound to the thread that created them (using one from another thread
    panics), while the web server calls from a pool of threads. So the engine is built by
    ``factory`` on a private single-thread executor and every evaluation is sent there; this
    also serialises evaluations. Calling it never raises for engine problems: :func:`decide`
    turns them into the fail-closed block.
    """

    def __init__(self, factory: Callable[[], PolicyEngine]) -> None:
        self._factory = factory
        self._engine: PolicyEngine | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-engine")

    def _engine_here(self) -> PolicyEngine:
        if self._engine is None:
            self._engine = self._factory()
        return self._engine

    def _run(self, inputs: Sequence[PolicyInput]) -> list[Decision]:
        engine = self._engine_here()
        many = getattr(engine, "evaluate_many", None)
        if many is None or len(inputs) < 2:
            return [decide(engine, i) for i in inputs]
        # Batch evaluation (one round trip to an isolated worker); each answer still goes
        # through decide(), so validation and fail-closed handling are exactly the same.
        try:
            values = list(many([i.to_json() for i in inputs]))
        except Exception as e:  # noqa: BLE001 - any engine fault must end in block
            values = [e] * len(inputs)
        if len(values) != len(inputs):
            values = [EngineError("the engine returned a wrong number of answers")] * len(inputs)
        revision = str(getattr(engine, "revision", ""))
        return [decide(_Answered(v, revision), i) for v, i in zip(values, inputs, strict=True)]

    @property
    def revision(self) -> str:
        """The policy revision of the engine (builds it if needed)."""
        return self._pool.submit(lambda: str(getattr(self._engine_here(), "revision", ""))).result()

    def __call__(self, inputs: Sequence[PolicyInput]) -> list[Decision]:
        return self._pool.submit(self._run, list(inputs)).result()

    def close(self) -> None:
        """Close the engine (an isolated worker process, if any) and stop the thread."""
        def _close() -> None:
            closer = getattr(self._engine, "close", None)
            if closer is not None:
                closer()

        self._pool.submit(_close).result()
        self._pool.shutdown(wait=True)
