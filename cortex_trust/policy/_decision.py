"""The typed decision that comes out of the policy engine.

Rego decides; Python only parses what Rego returned, strictly. :meth:`Decision.from_policy_output`
turns the value of ``data.cortex.decision`` into a frozen :class:`Decision` or raises
:class:`~cortex_trust.errors.EngineError`; :meth:`Decision.fail_closed` is the **only** place
in the code base where a verdict is built in Python, and it always blocks.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from .._decision_text import DecisionText
from ..errors import EngineError

__all__ = [
    "FAILURE_CODES",
    "Action",
    "Decision",
    "NextTier",
    "Reason",
    "Sandbox",
    "Tier",
]


class Tier(enum.StrEnum):
    """Trust tiers, lowest first. ``rank`` orders them (untrusted 0 … verified 3)."""

    UNTRUSTED = "untrusted"
    EXPERIMENTAL = "experimental"
    COMMUNITY = "community"
    VERIFIED = "verified"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)


class Action(enum.StrEnum):
    """What happens on install, least severe first. ``severity`` orders them."""

    ALLOW = "allow"
    NOTICE = "notice"
    WARN = "warn"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return list(Action).index(self)


#: Reason codes used by :meth:`Decision.fail_closed`. Policies must not emit them.
FAILURE_CODES = frozenset({"ENGINE_ERROR", "ENGINE_TIMEOUT", "ENGINE_UNDEFINED", "DECISION_INVALID"})

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Reason(BaseModel):
    """Why a decision came out the way it did. Tests and tools key on ``code``."""

    model_config = _STRICT

    code: StrictStr = Field(pattern=r"^[A-Z][A-Z0-9_]{1,63}$")
    message: StrictStr = Field(min_length=1, max_length=2000)
    #: The evidence this reason rests on (``signature``, ``scan``, ``manifest.trust.network``...).
    evidence: tuple[StrictStr, ...] = ()


class Sandbox(BaseModel):
    """The container constraints a plugin must run under (decided by policy)."""

    model_config = _STRICT

    #: ``False`` only if a policy explicitly allowed running outside a sandbox.
    enabled: StrictBool
    network: StrictBool
    filesystem: StrictBool
    read_only_root: StrictBool
    cap_drop: tuple[StrictStr, ...]
    no_new_privileges: StrictBool
    #: ``uid:gid``; the root user and group (0) are rejected on the way out of the engine.
    user: StrictStr = Field(pattern=r"^[0-9]{1,10}:[0-9]{1,10}$")
    memory: StrictStr = Field(pattern=r"^[1-9][0-9]{0,9}[kmg]$")
    cpus: float = Field(gt=0, le=1024)
    pids_limit: StrictInt = Field(gt=0, le=1_000_000)

    @field_validator("cpus", mode="before")
    @classmethod
    def _int_cpus(cls, v: Any) -> Any:
        # JSON has one number type; Rego may hand back 1 for 1.0.
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError("cpus must be a number")
        return float(v)

    @field_validator("user")
    @classmethod
    def _not_root(cls, v: str) -> str:
        uid, gid = (int(x) for x in v.split(":", 1))
        if uid == 0 or gid == 0:
            raise ValueError("a sandbox never runs as root (uid 0) or in the root group (gid 0)")
        return v


class NextTier(BaseModel):
    """The next tier up and the evidence still missing for it."""

    model_config = _STRICT

    tier: Tier
    missing: tuple[Reason, ...]


class _PolicyOutput(BaseModel):
    """Exactly the document ``data.cortex.decision`` must evaluate to (see docs/policy-contract.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier
    action: Action
    reasons: tuple[Reason, ...] = Field(min_length=1)
    sandbox: Sandbox
    next_tier: NextTier | None
    overridable: StrictBool
    #: Optional in the contract: a policy set that does not name them (an organization's own
    #: ``decision``) names none.
    allowlisted_vulnerabilities: tuple[StrictStr, ...] = ()


class Decision(BaseModel):
    """A validated, frozen decision.

    ``failed`` is true only for the fail-closed block built when the engine could not answer;
    callers use it to tell "the check said no" (exit 1) from "the check could not run" (exit 3).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier
    action: Action
    reasons: tuple[Reason, ...]
    sandbox: Sandbox | None
    next_tier: NextTier | None
    overridable: bool
    #: The scan's vulnerabilities that the policy's CVE allowlist excused (ids, sorted), as the
    #: policy named them; shown beside the scan, never re-derived.
    allowlisted_vulnerabilities: tuple[str, ...] = ()
    failed: bool = False
    policy_revision: str = ""

    @property
    def codes(self) -> tuple[str, ...]:
        """The reason codes, in order."""
        return tuple(r.code for r in self.reasons)

    @classmethod
    def from_policy_output(cls, value: Any, *, policy_revision: str = "") -> Decision:
        """Parse the value of ``data.cortex.decision``.

        Raises :class:`EngineError` if the value is undefined (``None``), not an object, has
        unknown or missing keys, an unknown tier or action, or uses a failure reason code.
        """
        if value is None:
            raise EngineError("the policy returned no decision (data.cortex.decision is undefined)",
                              advice="make sure a module defines data.cortex.decision for every input")
        try:
            if isinstance(value, DecisionText):  # the engine's JSON text: parse and validate at once
                out = _PolicyOutput.model_validate_json(value)
            elif isinstance(value, dict):
                out = _PolicyOutput.model_validate(value)
            else:
                raise EngineError(f"data.cortex.decision must be an object, got {type(value).__name__}")
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()
            )
            raise EngineError(f"the policy returned an invalid decision: {problems}",
                              advice="check the policy against docs/policy-contract.md") from None
        missing = out.next_tier.missing if out.next_tier is not None else ()
        bad = FAILURE_CODES.intersection(r.code for r in (*out.reasons, *missing))
        if bad:
            raise EngineError(f"the policy used reserved reason code{'s' if len(bad) > 1 else ''} "
                              f"{', '.join(sorted(bad))}")
        # Every field was just validated (same types as here): construct without a second pass.
        return cls.model_construct(**dict(out), failed=False, policy_revision=str(policy_revision))

    @classmethod
    def fail_closed(cls, code: str, message: str, *, policy_revision: str = "") -> Decision:
        """The one verdict Python builds itself: **block**, not overridable, no sandbox.

        Used when the engine failed, timed out, returned nothing or returned something invalid.
        """
        if code not in FAILURE_CODES:
            raise ValueError(f"fail_closed takes one of {sorted(FAILURE_CODES)}, not {code!r}")
        return cls(
            tier=Tier.UNTRUSTED,
            action=Action.BLOCK,
            reasons=(Reason(code=code, message=message[:2000] or code, evidence=("engine",)),),
            sandbox=None,
            next_tier=None,
            overridable=False,
            failed=True,
            policy_revision=policy_revision,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``decision`` part of every JSON output)."""
        return self.model_dump(mode="json")
