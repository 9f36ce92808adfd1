"""The text form of a decision, shared by the engines and the decision model.

It lives in a module of its own, importing nothing, so that the decision model
(:mod:`cortex_trust.policy`) and the engines (:mod:`cortex_trust.engine`, including the
isolated worker, which must start without pydantic) both use it without importing each other.
"""

from __future__ import annotations

__all__ = ["DecisionText"]


class DecisionText(str):
    """The value of ``data.cortex.decision`` as the JSON text an engine produced, unparsed.

    An engine may return this instead of the decoded value: :meth:`Decision.from_policy_output`
    then parses and validates the text in one strict pass (pydantic's JSON mode), which is
    cheaper than decoding it first. Any other string is not a decision.
    """

    __slots__ = ()
