"""What a policy change would do to stored versions: compare each version's stored decision with
the decision a new policy set makes, and render the changes as a text table, JSON or Markdown.

Shared by ``cortex registry retier --dry-run`` (the registry database) and ``cortex policy
what-if`` (the registry's API). Only the standard library is imported at module level.

Invariants:

* A version is *changed* when its tier, its action or its sandbox differs; reason codes that
  come or go without any of those changing are not a change.
* Each change is grouped under every reason code it gained (``+CODE``) and lost (``-CODE``);
  a change with the same reason codes is grouped under its transition
  (``tier/action -> tier/action``, or ``sandbox`` when only the sandbox changed). Group counts
  are numbers of versions.
* *Newly blocked*: the new action is ``block`` and the stored one is not. A new decision that
  failed closed (the engine could not answer) is counted in ``failed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WhatIf", "whatif_exit_code"]


@dataclass
class WhatIf:
    """Changes collected one version at a time (:meth:`add`), then :meth:`report`."""

    policy_revision: str = ""
    versions: int = 0
    failed: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, plugin: str, version: str, state: str, before: dict[str, Any],
            after: dict[str, Any]) -> None:
        """Compare the stored decision ``before`` with the new decision ``after`` (decision
        documents: ``tier``, ``action``, ``sandbox``, ``reasons``) of ``plugin`` ``version``."""
        self.versions += 1
        self.failed += bool(after.get("failed"))
        old, new = _visible(before), _visible(after)
        if old == new:
            return
        old_codes, new_codes = _codes(before), _codes(after)
        sandbox = sorted(k for k in {*(old["sandbox"] or {}), *(new["sandbox"] or {})}
                         if (old["sandbox"] or {}).get(k) != (new["sandbox"] or {}).get(k))
        messages = {r.get("code"): r.get("message", "") for r in
                    [*(before.get("reasons") or ()), *(after.get("reasons") or ())]}
        self.changes.append({
            "plugin": plugin, "version": version, "state": state,
            "before": old, "after": new,
            "added": sorted(new_codes - old_codes), "removed": sorted(old_codes - new_codes),
            "sandbox_changed": sandbox,
            "newly_blocked": new["action"] == "block" and old["action"] != "block",
            "failed": bool(after.get("failed")),
            "messages": {c: messages[c] for c in sorted(new_codes ^ old_codes)},
        })

    def report(self) -> dict[str, Any]:
        """The JSON document: counts, the groups (largest first) and every change."""
        groups: dict[str, dict[str, Any]] = {}
        for c in self.changes:
            ref = f"{c['plugin']}@{c['version']}"
            for key, code, kind in _group_keys(c):
                g = groups.setdefault(key, {"reason": key, "code": code, "change": kind,
                                            "message": c["messages"].get(code, "") if code else "",
                                            "count": 0, "newly_blocked": 0, "versions": []})
                g["count"] += 1
                g["newly_blocked"] += c["newly_blocked"]
                g["versions"].append(ref)
        return {
            "policy_revision": self.policy_revision, "versions": self.versions,
            "changed": len(self.changes),
            "newly_blocked": sum(c["newly_blocked"] for c in self.changes),
            "failed": self.failed,
            "groups": sorted(groups.values(), key=lambda g: (-g["count"], g["reason"])),
            "changes": [{k: v for k, v in c.items() if k != "messages"} for c in self.changes],
        }

    def render(self, fmt: str) -> str:
        """The report in ``fmt`` (``text``, ``json`` or ``markdown``), ending with a newline."""
        report = self.report()
        if fmt == "json":
            return json.dumps(report, indent=2) + "\n"
        if fmt == "markdown":
            return _markdown(report)
        return _text(report)


def whatif_exit_code(report: dict[str, Any]) -> int:
    """3 when a new decision failed closed (the run could not decide), 1 when a version would
    be newly blocked, else 0."""
    return 3 if report["failed"] else 1 if report["newly_blocked"] else 0


def _visible(decision: dict[str, Any]) -> dict[str, Any]:
    return {"tier": decision.get("tier"), "action": decision.get("action"),
            "sandbox": decision.get("sandbox")}


def _codes(decision: dict[str, Any]) -> set[str]:
    return {str(r.get("code")) for r in decision.get("reasons") or ()}


def _group_keys(change: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    keys: list[tuple[str, str | None, str]] = [(f"+{c}", c, "added") for c in change["added"]]
    keys += [(f"-{c}", c, "removed") for c in change["removed"]]
    if keys:
        return keys
    b, a = change["before"], change["after"]
    if (b["tier"], b["action"]) == (a["tier"], a["action"]):
        return [("sandbox", None, "sandbox")]
    return [(f"{b['tier']}/{b['action']} -> {a['tier']}/{a['action']}", None, "transition")]


def _sandbox_text(change: dict[str, Any]) -> str:
    return ", ".join(change["sandbox_changed"]) or "same"


def _headline(report: dict[str, Any]) -> str:
    from ._inert import plural

    return (f"{plural(report['changed'], 'version')} of {report['versions']} would change, "
            f"{report['newly_blocked']} newly blocked, {report['failed']} not decided "
            f"(policy revision {report['policy_revision'] or 'unknown'})")


def _text(report: dict[str, Any]) -> str:
    from ._render import table

    out = [_headline(report)]
    if report["groups"]:
        out += ["", *table(["reason", "versions", "newly blocked", "message"],
                           [[g["reason"], str(g["count"]), str(g["newly_blocked"]), g["message"]]
                            for g in report["groups"]])]
        out += ["", *table(
            ["version", "tier", "action", "sandbox", "reasons"],
            [[f"{c['plugin']}@{c['version']}",
              f"{c['before']['tier']} -> {c['after']['tier']}",
              f"{c['before']['action']} -> {c['after']['action']}"
              + (" (newly blocked)" if c["newly_blocked"] else ""),
              _sandbox_text(c),
              " ".join([*(f"+{x}" for x in c["added"]), *(f"-{x}" for x in c["removed"])])]
             for c in report["changes"]])]
    return "\n".join(out) + "\n"


def _markdown(report: dict[str, Any]) -> str:
    from ._render_ci import md

    mark = "❌" if report["newly_blocked"] or report["failed"] else "✅"
    out = ["## cortex-trust: what the policy change would do", "", f"{mark} {md(_headline(report))}"]
    if report["groups"]:
        out += ["", "| reason | versions | newly blocked | message |", "|---|---:|---:|---|"]
        out += [f"| {md(g['reason'])} | {g['count']} | {g['newly_blocked']} | {md(g['message'])} |"
                for g in report["groups"]]
        out += ["", "| version | tier | action | sandbox | reasons |", "|---|---|---|---|---|"]
        out += [f"| {md(c['plugin'] + '@' + c['version'])} | {md(str(c['before']['tier']))} → "
                f"{md(str(c['after']['tier']))} | {md(str(c['before']['action']))} → "
                f"{md(str(c['after']['action']))}{' **newly blocked**' if c['newly_blocked'] else ''} | "
                f"{md(_sandbox_text(c))} | "
                f"{md(' '.join([*(f'+{x}' for x in c['added']), *(f'-{x}' for x in c['removed'])]))} |"
                for c in report["changes"]]
    return "\n".join(out) + "\n"
