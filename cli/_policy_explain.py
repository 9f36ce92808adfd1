"""``cortex policy eval --explain``: why each reason and each next-tier requirement is there.

The explanation comes from the embedded engine (:meth:`cortex_trust.engine.EmbeddedEngine.why`):
the rule bodies that emit each reason code, their conditions with the values of their terms,
and for a negated rule the expression that makes it false. This module only renders it; every
text that comes from the policy or the input passes through :func:`~cli._inert.neutralise`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["render_why", "why_of"]

_VALUE_LIMIT = 160


def why_of(engine: Any, input_json: str, decision: Any) -> dict[str, Any]:
    """The explanation of ``decision`` as JSON: ``reasons`` and ``next_tier.missing``, each entry
    ``{code, message, rules}`` (``rules`` as :meth:`EmbeddedEngine.why` gives them), or
    ``{"error": ...}`` when the engine could not explain."""
    from cortex_trust.errors import EngineError

    missing = decision.next_tier.missing if decision.next_tier is not None else ()
    codes = [r.code for r in decision.reasons] + [m.code for m in missing]
    try:
        found = {w["code"]: w["rules"] for w in engine.why(input_json, codes)}
    except EngineError as e:
        return {"error": e.message}

    def entries(reasons: Any) -> list[dict[str, Any]]:
        return [{"code": r.code, "message": r.message, "rules": found.get(r.code, [])} for r in reasons]

    doc: dict[str, Any] = {"reasons": entries(decision.reasons), "next_tier": None}
    if decision.next_tier is not None:
        doc["next_tier"] = {"tier": str(decision.next_tier.tier), "missing": entries(missing)}
    return doc


def render_why(why: dict[str, Any], shown: Callable[[str], str]) -> str:
    """The explanation as indented text; ``shown`` turns a module name into the path to print."""
    from ._inert import neutralise

    out = ["why:"]
    if "error" in why:
        return f"why: the engine could not explain: {neutralise(why['error'])}\n"
    explained: set[str] = set()
    for entry in why["reasons"]:
        out.append(f"  {neutralise(entry['code'])}: {neutralise(entry['message'])}")
        out.extend(_rules(entry["rules"], shown))
        explained.add(entry["code"])
    if why.get("next_tier"):
        out.append(f"to reach {neutralise(why['next_tier']['tier'])}:")
        for entry in why["next_tier"]["missing"]:
            out.append(f"  {neutralise(entry['code'])}: {neutralise(entry['message'])}")
            if entry["code"] in explained:
                out.append("    (why: as above)")
            else:
                out.extend(_rules(entry["rules"], shown))
    return "\n".join(out) + "\n"


def _rules(rules: list[dict[str, Any]], shown: Callable[[str], str]) -> list[str]:
    from ._inert import neutralise

    if not rules:
        return ["    (no rule names this code literally: it is computed)"]
    out = []
    for rule in rules:
        kind = " (else branch)" if rule.get("otherwise") else ""
        out.append(f"    {neutralise(shown(rule['module']))}:{rule['line']}: {neutralise(rule['rule'])}{kind}")
        if not rule["conditions"]:
            out.append("      (no conditions)")
        for cond in rule["conditions"]:
            out.append(f"      {cond['line']}: {neutralise(cond['expression'])}")
            out.extend(f"          {line}" for line in _values(cond["values"]))
            for b in cond["because"]:
                out.append(f"        {neutralise(b['rule'])} is false: "
                           f"{neutralise(shown(b['module']))}:{b['line']}: {neutralise(b['expression'])}")
                out.extend(f"          {line}" for line in _values(b["values"]))
    return out


def _values(values: list[dict[str, Any]]) -> list[str]:
    from cortex_trust._text import clip

    from ._inert import neutralise

    return [f"{neutralise(v['term'])} = "
            f"{neutralise(clip(json.dumps(v['value'], sort_keys=True, ensure_ascii=False), _VALUE_LIMIT))}"
            for v in values]
