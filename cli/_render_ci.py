"""The CI formats of a verify result: ``github``, ``sarif``, ``junit``, ``codequality``, ``markdown``.

Everything here renders a decision the policy made; nothing decides. What a format shows follows
from the decision and ``--fail-on`` alone:

* the **gate fails** when :func:`cli._inert.exit_code_for` is not 0 (the action reaches
  ``--fail-on``, or the engine failed closed);
* what **blocks** is, when the gate fails, every item the next tier misses (the fixes) and every
  reason but the tier's own (it is the summary) and the failed checks of tiers above the next
  one (a documented failed check, docs/policy-contract.md §4, that the next tier does not list:
  it is not what holds the plugin back now); a passing gate blocks nothing.

Formats:

* ``github``: workflow commands. ``::error`` for each blocking item when the gate fails, with the
  file and line it concerns where it has one (a manifest field, a failed JUnit test case, else
  the manifest), then one summary line: ``::error`` when the gate fails, ``::warning`` for a
  passing ``warn``, ``::notice`` otherwise. A passing gate annotates nothing else.
* ``markdown``: the job summary (tier, action, gate, reasons, what the next tier needs, the
  evidence); ``--format github`` also appends it to ``$GITHUB_STEP_SUMMARY`` and writes the
  ``tier`` and ``action`` step outputs to ``$GITHUB_OUTPUT`` (cli/plugin_verify.py).
* ``sarif``: SARIF 2.1.0, every reason and missing item a result (``error`` block, ``warning``
  warn, ``note`` otherwise; missing items ``note``), each rule described from the policy
  contract (cli/_reason_codes.py), results located at the manifest line the reason concerns,
  with ``partialFingerprints`` stable across runs (code, plugin, location: no digest, no
  message).
* ``junit``: one test case for the gate and one per requirement of the next tier the plugin
  misses (a failure when the gate fails, else skipped).
* ``codequality``: GitLab's Code Quality report (a JSON list of issues).

Text of others is made inert for each format: workflow-command escaping plus
:func:`cli._inert.neutralise` for ``github``; backslash escapes for Markdown (no link, image,
HTML or table cell can be injected); JSON and XML escaping for the others.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from ._inert import SEVERITY, exit_code_for, neutralise, plural, shorten_digests
from ._inert import decision_of as _decision_of
from ._inert import missing_text as _missing_text
from ._inert import value_of as _value

__all__ = ["CI_FORMATS", "Item", "gate_failed", "items", "render_ci", "summary_markdown"]

CI_FORMATS = ("github", "sarif", "junit", "codequality", "markdown")

_SARIF_LEVEL = {"block": "error", "warn": "warning", "notice": "note", "allow": "note"}
_GITLABSEVERITY = {"block": "critical", "warn": "major", "notice": "minor", "allow": "info"}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_TOOL_URI = "https://github.com/cortex-dev/cortex-trust"
_TIER_MARK = {"verified": "🟢", "community": "🔵", "experimental": "🟡", "untrusted": "🔴"}


@dataclass(frozen=True)
class Item:
    """One reason of the decision (``kind`` ``reason``) or one item the next tier misses
    (``missing``, with ``tier``), located at ``path``:``line`` (``field`` is the manifest
    field it concerns, when it names one)."""

    code: str
    message: str
    kind: str
    action: str
    tier: str | None
    path: str
    line: int
    field: str | None = None


def uri_of(location: str | None) -> str:
    """``location`` as a repository-relative POSIX path when it is under the working directory
    (what code scanning and annotations resolve), else a ``file:`` URI; ``manifest.yaml`` when
    none."""
    if not location:
        return "manifest.yaml"
    p = PurePath(location)
    if p.is_absolute():
        try:
            p = Path(location).resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return Path(location).resolve().as_uri()
    return p.as_posix()


def _field_of(evidence: tuple[str, ...]) -> str | None:
    for e in evidence:
        if e.startswith("manifest."):
            return e.removeprefix("manifest.")
    return None


def items(obj: Any, *, location: str | None) -> list[Item]:
    """Every reason and missing item of the decision in ``obj``, located in the manifest at
    ``location`` (at the line of the field a reason names in its evidence, else line 1)."""
    decision = _decision_of(obj)
    uri = uri_of(location)
    lines: dict[str, int] = {}
    if location and any(_field_of(tuple(r.evidence)) for r in _all_reasons(decision)):
        from cortex_trust.manifest import field_lines

        lines = field_lines(location)

    def where(evidence: tuple[str, ...]) -> tuple[int, str | None]:
        f = _field_of(evidence)
        if f is None:
            return 1, None
        # The field itself, else its nearest written ancestor (where it would be added).
        probe = f
        while probe and probe not in lines:
            probe = probe.rpartition(".")[0]
        return lines.get(probe, 1), f

    action = _value(decision.action)
    out = []
    for r in decision.reasons:
        line, f = where(tuple(r.evidence))
        out.append(Item(r.code, r.message, "reason", action, None, uri, line, f))
    if decision.next_tier is not None:
        tier = _value(decision.next_tier.tier)
        for m in decision.next_tier.missing:
            line, f = where(tuple(m.evidence))
            out.append(Item(m.code, f"to reach {tier}: {_missing_text(tier, m.message)}", "missing",
                            "notice", tier, uri, line, f))
    return out


def _all_reasons(decision: Any) -> list[Any]:
    return [*decision.reasons, *(decision.next_tier.missing if decision.next_tier is not None else ())]


def gate_failed(decision: Any, fail_on: str) -> bool:
    """Whether ``verify --fail-on fail_on`` exits non-zero for ``decision``."""
    return exit_code_for(decision, fail_on) != 0


def _blocking(obj: Any, *, location: str | None, fail_on: str) -> list[Item]:
    decision = _decision_of(obj)
    if not gate_failed(decision, fail_on):
        return []
    found = items(obj, location=location)
    from ._reason_codes import group_of

    missing = [i for i in found if i.kind == "missing"]
    needed = {i.code for i in missing}
    reasons = [i for i in found if i.kind == "reason"]
    if not decision.failed:  # the first is the tier's own (a failed-closed block has only its cause)
        reasons = reasons[1:]
    reasons = [i for i in reasons if i.code in needed or group_of(i.code) != "check"]
    # A code that is both a reason and a missing item is shown once, with both messages.
    fix = {i.code: i.message for i in missing}
    shown = {i.code for i in reasons}
    out = [Item(i.code, i.message + (f" ({fix[i.code]})" if i.code in fix else ""), i.kind, i.action,
                i.tier, i.path, i.line, i.field) for i in reasons]
    out.extend(i for i in missing if i.code not in shown)
    return out


def _summary_line(decision: Any, fail_on: str) -> str:
    tier, action = _value(decision.tier), _value(decision.action)
    text = f"cortex: tier {tier}, action {action}"
    if decision.failed:
        return text + " (failed closed: the policy engine could not decide)"
    return text + (f": fails --fail-on {fail_on}" if gate_failed(decision, fail_on) else
                   f": passes --fail-on {fail_on}")


# ------------------------------------------------------------------------------------ github


def _escape_data(s: str) -> str:
    # GitHub's own escaping (actions/toolkit escapeData), then every other control character
    # made inert: the runner's log would interpret ANSI sequences.
    return neutralise(s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _tests_source(obj: Any) -> str | None:
    if _decision_of(obj) is obj:
        return None
    source = obj.input.evidence.tests.source
    return str(source) if source else None


def _github(obj: Any, *, location: str | None, fail_on: str) -> str:
    decision = _decision_of(obj)
    lines = []
    for i in _blocking(obj, location=location, fail_on=fail_on):
        cases = _failed_cases(obj) if i.code.startswith("TESTS_") else []
        for c in cases:
            where = (f"file={_escape_property(c.file)},line={c.line}," if c.file and c.line else "")
            lines.append(f"::error {where}title={_escape_property(i.code)}::"
                         f"{_escape_data(f'{c.name}: {c.message}')}")
        if not cases:
            lines.append(f"::error file={_escape_property(i.path)},line={i.line},"
                         f"title={_escape_property(i.code)}::{_escape_data(i.message)}")
    level = ("error" if gate_failed(decision, fail_on) else
             "warning" if _value(decision.action) == "warn" else "notice")
    lines.append(f"::{level} title=cortex-trust::{_escape_data(_summary_line(decision, fail_on))}")
    return "\n".join(lines) + "\n"


def _failed_cases(obj: Any) -> list[Any]:
    source = _tests_source(obj)
    if source is None:
        return []
    from cortex_trust.errors import CortexTrustError
    from cortex_trust.evidence import failed_cases

    try:
        return failed_cases(source)
    except CortexTrustError:  # the report was read once already; if it is gone, say it without lines
        return []


# ---------------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([!-%'-/:;=?@\[-`{-~])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md(text: str) -> str:
    """``text`` of others as inert Markdown: one line, ``& < >`` as entities and every other
    ASCII punctuation character backslash-escaped (no link, image, emphasis, HTML or table
    cell), digests shortened."""
    escaped = _MD_SPECIAL.sub(r"\\\1", shorten_digests(neutralise(text)))
    return re.sub("[&<>]", lambda m: _MD_ENTITIES[m.group()], escaped)


def summary_markdown(obj: Any, *, fail_on: str) -> str:
    """The job summary of a verify result (or a bare decision) as Markdown."""
    decision = _decision_of(obj)
    tier, action = _value(decision.tier), _value(decision.action)
    failed = gate_failed(decision, fail_on)
    gate = ("❌ could not decide (failed closed)" if decision.failed else
            f"❌ fails `--fail-on {fail_on}`" if failed else f"✅ passes `--fail-on {fail_on}`")
    who = ""
    if decision is not obj:
        plugin = obj.to_json_dict()["plugin"]
        who = " " + md(f"{plugin.get('full_name') or '(unnamed plugin)'} {plugin.get('version') or ''}".rstrip())
    out = [f"## cortex-trust:{who}", "",
           f"**{_TIER_MARK.get(tier, '⚪')} {tier.capitalize()}** · action **{action}** · {gate}", "",
           "| reason | message |", "|---|---|"]
    out.extend(f"| `{r.code}` | {md(r.message)} |" for r in decision.reasons)
    if decision.next_tier is not None:
        next_tier = _value(decision.next_tier.tier)
        out += ["", f"### To reach {next_tier.capitalize()}", ""]
        out.extend(f"- `{m.code}`: {md(_missing_text(next_tier, m.message))}" for m in decision.next_tier.missing)
    if decision is not obj:
        out += ["", "### Evidence", "", "| evidence | state |", "|---|---|"]
        out.extend(f"| {kind} | {md(state)} |" for kind, state in _evidence_rows(obj.evidence))
        # Escapes are not read inside a code span: other people's text is never put in one.
        out += ["", f"<sub>policy revision {md(obj.policy_revision or 'unknown')} ({md(obj.engine)})</sub>"]
    return "\n".join(out) + "\n"


def _evidence_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    sig, scan, tests = summary.get("signature", {}), summary.get("scan", {}), summary.get("tests", {})
    review, usage = summary.get("review", {}), summary.get("usage", {})
    rows = [
        ("signature", "none" if not sig.get("present") else
         f"verified: {sig.get('identity')} ({sig.get('issuer')})" if sig.get("verified") else
         f"not verified: {sig.get('error')}"),
        ("scan", "none" if not scan.get("present") else
         ("bound" if scan.get("bound") else "NOT bound") + " to the digest, scanners "
         + (", ".join(scan.get("scanners") or []) or "none shown") + ", vulnerabilities "
         + (", ".join(f"{k} {v}" for k, v in (scan.get("counts") or {}).items() if v) or "none")
         + f", secrets {scan.get('secrets')}"),
        ("tests", "none" if not tests.get("present") else
         f"{tests.get('total')} total, {tests.get('failures')} failed, {tests.get('errors')} errors, "
         f"{tests.get('skipped')} skipped"),
        ("review", "none" if not review.get("reviews") else "; ".join(
            f"{r.get('verdict')} by {r.get('reviewer')}" for r in review.get("reviews") or [])),
        ("usage", "none" if not usage.get("present") else
         f"{plural(int(usage.get('days_in_production') or 0), 'day')} in production, reported by "
         + (", ".join(str(r.get("organization")) for r in usage.get("reporters") or []) or "no organization")),
    ]
    rows.extend((f"dropped {d.get('kind')}", f"{d.get('code')}: {d.get('message')}")
                for d in summary.get("dropped", []))
    return rows


# ------------------------------------------------------------------------------------- sarif


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _plugin_name(obj: Any) -> str:
    if _decision_of(obj) is obj:
        return ""
    return str(obj.input.plugin.full_name or "")


def _sarif(obj: Any, *, location: str | None, version: str, fail_on: str) -> str:
    from ._reason_codes import describe

    decision = _decision_of(obj)
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    plugin = _plugin_name(obj)
    for i in items(obj, location=location):
        level = _SARIF_LEVEL.get(i.action, "error") if i.kind == "reason" else "note"
        if i.code not in index:
            index[i.code] = len(rules)
            short, full, uri = describe(i.code)
            rules.append({
                "id": i.code, "name": "".join(w.capitalize() for w in i.code.split("_")),
                "shortDescription": {"text": short}, "fullDescription": {"text": full},
                "help": {"text": f"{full} See {uri}", "markdown": f"{md(full)} [The reason codes]({uri})"},
                "helpUri": uri, "defaultConfiguration": {"level": level},
            })
        region: dict[str, Any] = {"startLine": i.line}
        results.append({
            "ruleId": i.code,
            "ruleIndex": index[i.code],
            "kind": "fail" if level != "note" else "informational",
            "level": level,
            "message": {"text": i.message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": i.path}, "region": region}}],
            # Stable across builds: never the digest or the message, which change every run.
            "partialFingerprints": {"cortexReason/v1": _fingerprint(
                i.code, i.kind, i.tier or "", plugin, i.path, i.field or "")},
            "properties": {"kind": i.kind, **({"tier": i.tier} if i.tier else {}),
                           **({"field": i.field} if i.field else {})},
        })
    properties: dict[str, Any] = {"tier": _value(decision.tier), "action": _value(decision.action),
                                  "failed": bool(decision.failed), "failOn": fail_on,
                                  "gateFailed": gate_failed(decision, fail_on)}
    if decision is not obj:
        properties["policyRevision"] = obj.policy_revision
        properties["engine"] = obj.engine
        properties["digest"] = obj.input.artifact.digest
        properties["plugin"] = plugin or None
    doc = {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cortex-trust", "version": version or "0",
                                "semanticVersion": version or "0.0.0",
                                "informationUri": _TOOL_URI, "rules": rules}},
            "automationDetails": {"id": f"cortex-trust/{plugin or 'plugin'}/"},
            "invocations": [{"executionSuccessful": not decision.failed,
                             "exitCode": exit_code_for(decision, fail_on)}],
            "results": results,
            "properties": properties,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


# ------------------------------------------------------------------------------------- junit


def _junit(obj: Any, *, location: str | None, fail_on: str) -> str:
    decision = _decision_of(obj)
    failed = gate_failed(decision, fail_on)
    plugin = _plugin_name(obj) or "plugin"
    tier, action = _value(decision.tier), _value(decision.action)
    cases = []
    gate_name = f"tier {tier}, action {action}, --fail-on {fail_on}"
    reasons = "\n".join(f"{r.code}: {r.message}" for r in decision.reasons)
    if decision.failed:
        body = f"<error message={quoteattr(_summary_line(decision, fail_on))}>{xml_escape(reasons)}</error>"
    elif failed:
        body = f"<failure message={quoteattr(_summary_line(decision, fail_on))}>{xml_escape(reasons)}</failure>"
    else:
        body = f"<system-out>{xml_escape(reasons)}</system-out>"
    cases.append((f"cortex.{plugin}.gate", gate_name, body, failed and not decision.failed, decision.failed, False))
    if decision.next_tier is not None:
        next_tier = _value(decision.next_tier.tier)
        for m in decision.next_tier.missing:
            text = f"to reach {next_tier}: {_missing_text(next_tier, m.message)}"
            tag = "failure" if failed else "skipped"
            cases.append((f"cortex.{plugin}.{next_tier}", m.code,
                          f"<{tag} message={quoteattr(text)}/>", failed, False, not failed))
    n_fail = sum(c[3] for c in cases)
    n_err = sum(c[4] for c in cases)
    n_skip = sum(c[5] for c in cases)
    suite = f"cortex-trust verify {plugin}"
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name="cortex-trust" tests="{len(cases)}" failures="{n_fail}" errors="{n_err}" '
           f'skipped="{n_skip}">',
           f'  <testsuite name={quoteattr(suite)} tests="{len(cases)}" failures="{n_fail}" errors="{n_err}" '
           f'skipped="{n_skip}" file={quoteattr(uri_of(location))}>']
    for classname, name, body, *_ in cases:
        out.append(f"    <testcase classname={quoteattr(classname)} name={quoteattr(name)}>{body}</testcase>")
    out += ["  </testsuite>", "</testsuites>"]
    return _xml_safe("\n".join(out)) + "\n"


# Characters XML 1.0 cannot carry at all (even escaped): shown as their escape instead.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# ------------------------------------------------------------------------------- codequality


def _codequality(obj: Any, *, location: str | None) -> str:
    plugin = _plugin_name(obj)
    out = []
    for i in items(obj, location=location):
        severity = _GITLABSEVERITY.get(i.action, "critical") if i.kind == "reason" else "info"
        out.append({
            "description": i.message, "check_name": i.code, "severity": severity,
            "categories": ["Security"],
            "fingerprint": _fingerprint(i.code, i.kind, i.tier or "", plugin, i.path, i.field or ""),
            "location": {"path": i.path, "lines": {"begin": i.line}},
        })
    return json.dumps(out, indent=2) + "\n"


def render_ci(obj: Any, fmt: str, *, location: str | None, version: str, fail_on: str) -> str:
    """``obj`` (a verify result or a bare decision) in the CI format ``fmt`` (one of
    :data:`CI_FORMATS`). Raises ``ValueError`` for another format or an unknown ``fail_on``."""
    if fail_on not in SEVERITY or fail_on == "allow":
        raise ValueError(f"unknown fail_on {fail_on!r}")
    if fmt == "github":
        return _github(obj, location=location, fail_on=fail_on)
    if fmt == "markdown":
        return summary_markdown(obj, fail_on=fail_on)
    if fmt == "sarif":
        return _sarif(obj, location=location, version=version, fail_on=fail_on)
    if fmt == "junit":
        return _junit(obj, location=location, fail_on=fail_on)
    if fmt == "codequality":
        return _codequality(obj, location=location)
    raise ValueError(f"unknown CI format {fmt!r}")
