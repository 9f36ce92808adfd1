"""Policy engines: the one place decisions come from.

* :class:`PolicyEngine` is the protocol every engine implements: given the input document,
  return the value of ``data.cortex.decision`` (or ``None`` when undefined), or raise
  :class:`~cortex_trust.errors.EngineError`. It declares everything a caller may use; an engine
  that subclasses it inherits the batch methods, the validated-input method and ``close``
  written in terms of :meth:`PolicyEngine.evaluate`, and implements at least ``evaluate``,
  ``name`` and ``revision``.
* :func:`decide` is what every flow calls (verify, publish, install, run). It never raises for an
  engine problem: an engine error, a timeout, an undefined or invalid result all become the
  fail-closed **block** from :meth:`Decision.fail_closed`.

Implementations: ``EmbeddedEngine`` (regorus, in-process; the default) and ``OpaServerEngine``
(OPA's REST Data API). Both are constructed from a :class:`PolicySet`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar, runtime_checkable

from .._decision_text import DecisionText
from ..errors import EngineError, EngineTimeout

if TYPE_CHECKING:
    # Imported lazily at run time: pydantic is most of a policy worker's start-up cost.
    from ..policy import Decision, PolicyInput

__all__ = ["DECISION_PATH", "DecisionText", "PolicyEngine", "decide"]

#: The rule every policy set must define (docs/policy-contract.md).
DECISION_PATH = "data.cortex.decision"

_T = TypeVar("_T")


@runtime_checkable
class PolicyEngine(Protocol):
    """A Rego evaluator loaded with one policy set.

    Every method that evaluates returns the decoded JSON value of the decision rule (or its
    text as a :class:`DecisionText`), or ``None`` when the rule is undefined. The batch methods
    return one entry per input, in order: that value, or the exception that input raised (one
    failing input never fails the others; :func:`decide` turns the exception into the
    fail-closed block).
    """

    #: Short engine name for output and audit ("regorus", "opa-server").
    name: str
    #: Content hash of the policy modules and data the engine was loaded with.
    revision: str

    def evaluate(self, input_json: str) -> Any:
        """Evaluate ``data.cortex.decision`` for ``input_json``.

        Raises :class:`EngineError` when evaluation could not complete (error, timeout, crash).
        """
        ...

    def evaluate_input(self, policy_input: PolicyInput) -> Any:
        """:meth:`evaluate` for a validated input document; what :func:`decide` calls.

        An engine may use the validation (the embedded engine's compiled mode relies on it).
        """
        return self.evaluate(policy_input.to_json())

    def evaluate_many(self, input_jsons: Iterable[str]) -> list[Any]:
        """:meth:`evaluate` for many input texts (see the class for the entries)."""
        return _each(self.evaluate, input_jsons)

    def evaluate_inputs(self, policy_inputs: Sequence[PolicyInput]) -> list[Any]:
        """:meth:`evaluate_input` for many validated inputs (see the class for the entries)."""
        return _each(self.evaluate_input, policy_inputs)

    def close(self) -> None:
        """Release what the engine holds (a worker process, connections); idempotent."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _each(evaluate: Callable[[_T], Any], items: Iterable[_T]) -> list[Any]:
    """``evaluate`` of every item: its value, or the exception it raised (never raises but for
    an interrupt or exit)."""
    out: list[Any] = []
    for item in items:
        try:
            out.append(evaluate(item))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - attributed to this item; decide() blocks it
            out.append(e)
    return out


def decide(engine: PolicyEngine, policy_input: PolicyInput) -> Decision:
    """Ask ``engine`` for the decision on ``policy_input``; fail closed on any engine problem.

    Guarantees: the result is a validated :class:`Decision`; if the engine failed, timed out,
    returned nothing or returned an invalid document, the result is a non-overridable block with
    ``failed`` set and a reason code from :data:`~cortex_trust.policy.FAILURE_CODES`.
    """
    from ..policy import Decision

    revision = engine.revision
    try:
        value = engine.evaluate_input(policy_input)
    except TimeoutError as e:
        return Decision.fail_closed("ENGINE_TIMEOUT", f"the policy engine timed out: {e}",
                                    policy_revision=revision)
    except EngineTimeout as e:
        return Decision.fail_closed("ENGINE_TIMEOUT", f"the policy engine failed: {e}",
                                    policy_revision=revision)
    except EngineError as e:
        return Decision.fail_closed("ENGINE_ERROR", f"the policy engine failed: {e}",
                                    policy_revision=revision)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - any engine fault (a native panic is a BaseException) blocks
        return Decision.fail_closed("ENGINE_ERROR", f"the policy engine failed: {type(e).__name__}: {e}",
                                    policy_revision=revision)
    # An engine may learn the revision it decided with while answering (an OPA server names
    # its bundle's revision in each answer).
    revision = engine.revision
    if value is None:
        return Decision.fail_closed("ENGINE_UNDEFINED",
                                    f"{DECISION_PATH} is undefined for this input",
                                    policy_revision=revision)
    try:
        return Decision.from_policy_output(value, policy_revision=revision)
    except EngineError as e:
        return Decision.fail_closed("DECISION_INVALID", str(e), policy_revision=revision)
