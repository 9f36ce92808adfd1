"""Rendering of decisions for people and machines: ``text``, ``json``, and the CI formats.

Shared by ``cortex plugin verify``, ``plugin install`` and ``policy eval``. Everything here
takes a :class:`cortex_trust.policy.Decision` (or a verify result that carries one) and
returns text; nothing decides. Only the standard library is imported at module level (the
CLI's ``--help`` must stay fast); the objects passed in are used through their attributes.

Formats:

* ``text``: tier, action, each reason as ``CODE: message``, "to reach <tier>: …" for each
  missing item, the sandbox, and (for verify) an evidence summary.
* ``json``: for verify the ``cortex.verify/v1`` document (docs/verify.md); for a bare decision
  ``{"schema": "cortex.decision/v1", "decision": {...}}``.
* ``github``, ``sarif``, ``junit``, ``codequality``, ``markdown``: for CI systems
  (cli/_render_ci.py documents them).

Messages carry text that strangers wrote (file names, reviewer ids, certificate identities,
errors from third-party tools). In ``text``, ``github`` and ``markdown`` output every such character a
terminal or a CI runner would act on is shown as an escape (:func:`neutralise`): a newline
followed by ``::`` would otherwise be a GitHub workflow command of the attacker's, and ANSI
sequences could rewrite what the reader sees. The JSON and XML formats escape them as JSON and XML do.

Text for people (``text`` here, and every table and message of the CLI) also:

* shows image digests shortened on stdout (``sha256:0123456789ab…``, :func:`shorten_digests`);
  the full value is in ``json`` and ``cortex plugin info``, and errors and warnings on stderr
  quote it in full (what a person acts on: a pin to correct, two values to compare). A message
  cut to a length never ends inside a digest (:func:`cortex_trust._text.clip`);
* uses colour and symbols (``✓ allow``, ``✗ block``) only when the stream is a terminal, never
  when it is piped or ``NO_COLOR`` is set; ``FORCE_COLOR`` turns them on anyway
  (:func:`style_for`). Escape sequences are only ever added around text of ours, after the
  text of others in the line was neutralised.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ._inert import FAIL_ON_CHOICES, exit_code_for, for_reading, neutralise, plural, shorten_digests
from ._inert import decision_of as _decision_of
from ._inert import missing_text as _missing_text
from ._inert import value_of as _value

__all__ = [
    "FAIL_ON_CHOICES",
    "FORMATS",
    "PLAIN",
    "Style",
    "emphasise",
    "exit_code_for",
    "for_reading",
    "neutralise",
    "plural",
    "render",
    "render_decision",
    "shorten_digests",
    "style_for",
    "table",
    "version_text",
]

FORMATS = ("text", "json", "sarif", "github", "junit", "codequality", "markdown")


# ------------------------------------------------------------------------- text for people

_SGR = {"ok": "32", "notice": "36", "warn": "33", "bad": "31", "strong": "1", "header": "1",
        "dim": "2"}
_SYMBOLS = {"ok": "✓", "notice": "•", "warn": "!", "bad": "✗"}
#: The role (colour, symbol) of each action and tier value.
_ROLES = {"allow": "ok", "notice": "notice", "warn": "warn", "block": "bad",
          "verified": "ok", "community": "notice", "experimental": "warn", "untrusted": "bad"}


@dataclass(frozen=True)
class Style:
    """How text for people is decorated on one stream: ANSI colours (``colour``) and the
    symbols ``✓ • ! ✗`` (``symbols``, only with colour and an encoding that has them)."""

    colour: bool = False
    symbols: bool = False

    def paint(self, text: str, role: str | None) -> str:
        """``text`` in the colour of ``role`` (``ok``, ``notice``, ``warn``, ``bad``,
        ``strong``, ``header``, ``dim``, or an action or tier value); unchanged without colour."""
        code = _SGR.get(_ROLES.get(role or "", role or ""))
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour and code else text

    def mark(self, role: str | None) -> str:
        """The symbol of ``role`` and a space (``"✓ "``), or ``""`` without symbols."""
        symbol = _SYMBOLS.get(_ROLES.get(role or "", role or ""))
        return f"{symbol} " if self.symbols and symbol else ""


#: No decoration (files, pipes, ``NO_COLOR``, and every machine format).
PLAIN = Style()


def style_for(stream: TextIO) -> Style:
    """The decoration for text written to ``stream``: none when ``NO_COLOR`` is set (to
    anything but the empty string, https://no-color.org) or ``TERM=dumb``; colour when
    ``FORCE_COLOR`` is set or ``stream`` is a terminal. Symbols also need an encoding that has
    them."""
    env = os.environ
    if env.get("NO_COLOR"):
        return PLAIN
    if not env.get("FORCE_COLOR"):
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError, OSError):  # closed or not a real stream
            tty = False
        if not tty or env.get("TERM") == "dumb":
            return PLAIN
    try:
        "".join(_SYMBOLS.values()).encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return Style(colour=True)
    return Style(colour=True, symbols=True)


# Line starts that are ours (labels of text output), never text of others: a line's own text
# starts with a label and other people's text only ever follows one, so decorating these
# cannot be steered by what a registry or a manifest says.
_LABELS = [
    (re.compile(r"^(\s*)(error|ERROR|REVOKED)(:)"), "bad"),
    (re.compile(r"^(\s*)(warning|WARNING)(:)"), "warn"),
    (re.compile(r"^(\s*)(note|notice)(:)"), "notice"),
    (re.compile(r"^(\s*)(fix|ok)(:)"), "ok"),
]
_REASON = re.compile(r"^(\s+)([A-Z][A-Z0-9_]{2,})(: )")
_TIER_LINE = re.compile(r"^(tier:\s+)([a-z]+)$")
_ACTION_LINE = re.compile(r"^(action:\s+)([a-z]+)")
_TIER_ACTION = re.compile(r"^(\s+tier )([a-z]+)(, action )([a-z]+)")


def emphasise(line: str, style: Style) -> str:
    """``line`` (already neutralised) with its label decorated: ``error:``, ``warning:``,
    ``note:``, ``fix:``, ``ok:``, ``REVOKED:`` in their colour; the tier of a ``tier:`` line and the
    action of an ``action:`` line (and both in ``  tier X, action Y``) in theirs, the action
    with its symbol; a reason code (``  CODE: message``) in bold. Unchanged without colour."""
    if not style.colour:
        return line
    for pattern, role in _LABELS:
        m = pattern.match(line)
        if m:
            return m.group(1) + style.paint(m.group(2) + m.group(3), role) + line[m.end():]
    if m := _REASON.match(line):
        return m.group(1) + style.paint(m.group(2), "strong") + line[m.start(3):]
    if m := _TIER_LINE.match(line):
        return m.group(1) + style.paint(m.group(2), m.group(2))
    if m := _ACTION_LINE.match(line):
        return m.group(1) + style.mark(m.group(2)) + style.paint(m.group(2), m.group(2)) + line[m.end():]
    if m := _TIER_ACTION.match(line):
        tier, action = m.group(2), m.group(4)
        return (m.group(1) + style.paint(tier, tier) + m.group(3) + style.mark(action)
                + style.paint(action, action) + line[m.end():])
    return line


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, style: Style = PLAIN,
          roles: Sequence[Sequence[str | None]] | None = None) -> list[str]:
    """The lines of a table: a header row, then one line per row, columns aligned and two
    spaces apart (the last column is not padded). Every cell is shown
    :func:`for_reading` (other people's text is inert, digests short); ``roles`` (a role per
    cell, see :meth:`Style.paint`) colours cells, the header is bold."""
    shown = [[for_reading(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(headers)]
    last = len(headers) - 1

    def line(cells: Sequence[str], cell_roles: Sequence[str | None]) -> str:
        parts = [style.paint(c if i == last else c.ljust(widths[i]), cell_roles[i])
                 for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers), ["header"] * len(headers))]
    for n, row in enumerate(shown):
        out.append(line(row, roles[n] if roles is not None else [None] * len(row)))
    return out


def version_text() -> str:
    """What ``cortex --version`` prints."""
    from cortex_trust import __version__

    return f"cortex-trust {__version__}"


# ------------------------------------------------------------------------------------ text


def _sandbox_line(sandbox: Any) -> str:
    if sandbox is None:
        return "sandbox: none (the plugin must not run)"
    if not sandbox.enabled:
        return "sandbox: DISABLED by policy"
    parts = [
        "network " + ("on" if sandbox.network else "off"),
        "host filesystem " + ("on" if sandbox.filesystem else "off"),
        "read-only root" if sandbox.read_only_root else "writable root",
        "caps dropped " + (",".join(sandbox.cap_drop) or "none"),
        "no-new-privileges" if sandbox.no_new_privileges else "new privileges allowed",
        f"user {sandbox.user}",
        f"memory {sandbox.memory}",
        f"cpus {sandbox.cpus:g}",
        f"pids {sandbox.pids_limit}",
    ]
    return "sandbox: " + ", ".join(parts)


def _decision_lines(decision: Any) -> list[str]:
    lines = []
    if decision.failed:
        lines.append("the policy engine could not decide: failed closed (block)")
    lines.append(f"tier:   {_value(decision.tier)}")
    lines.append(f"action: {_value(decision.action)}"
                 + ("" if decision.overridable else " (not overridable)"))
    lines.append("reasons:")
    lines.extend(f"  {r.code}: {r.message}" for r in decision.reasons)
    if decision.next_tier is not None:
        tier = _value(decision.next_tier.tier)
        lines.extend(f"to reach {tier}: {m.code}: {_missing_text(tier, m.message)}"
                     for m in decision.next_tier.missing)
    lines.append(_sandbox_line(decision.sandbox))
    return lines


def _evidence_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["evidence:"]
    sig = summary.get("signature", {})
    if not sig.get("present"):
        lines.append("  signature: none")
    elif sig.get("verified"):
        lines.append(f"  signature: verified ({sig.get('kind')}) identity={sig.get('identity')} "
                     f"issuer={sig.get('issuer')} root={sig.get('trusted_root')}")
    else:
        lines.append(f"  signature: NOT verified: {sig.get('error')}")
    scan = summary.get("scan", {})
    if not scan.get("present"):
        lines.append("  scan: none")
    else:
        counts = ", ".join(f"{k} {v}" for k, v in scan.get("counts", {}).items() if v) or "none"
        lines.append(
            f"  scan: {'bound to the digest' if scan.get('bound') else 'NOT bound to the digest'}"
            f"; scanners shown: {','.join(scan.get('scanners') or []) or 'none'}"
            f"; vulnerabilities: {counts}; secrets {scan.get('secrets')}"
            f"; misconfigurations {scan.get('misconfigurations')}"
            + (f"; {scan['error']}" if scan.get("error") else ""))
    tests = summary.get("tests", {})
    lines.append("  tests: none" if not tests.get("present") else
                 f"  tests: {tests.get('total')} total, {tests.get('failures')} failed, "
                 f"{tests.get('errors')} errors, {tests.get('skipped')} skipped")
    review = summary.get("review", {})
    records = review.get("reviews") or []
    lines.append("  review: none" if not review.get("present") or not records else
                 "  review: " + "; ".join(f"{r.get('verdict')} by {r.get('reviewer')} "
                                          f"at {r.get('at')}" for r in records))
    usage = summary.get("usage", {})
    orgs = ", ".join(str(r.get("organization")) for r in usage.get("reporters") or [])
    lines.append("  usage: none" if not usage.get("present") else
                 f"  usage: {usage.get('days_in_production')} days in production, "
                 f"{usage.get('active_days')} active days, {usage.get('installations')} "
                 f"installations, reported by {orgs or 'no named organization'}")
    for d in summary.get("dropped", []):
        lines.append(f"  dropped {d['kind']}: {d['code']}: {d['message']}")
    return lines


def _platform_text(context: Any) -> str:
    """The CORTEX platform version the input carries and where it came from."""
    from cortex_trust.install import PlatformVersion

    return PlatformVersion(context.cortex_version, context.cortex_version_source).describe()


def _text(obj: Any, style: Style) -> str:
    decision = _decision_of(obj)
    lines: list[str] = []
    if decision is not obj:
        doc = obj.to_json_dict()
        plugin, artifact = doc["plugin"], doc["artifact"]
        who = plugin.get("full_name") or "(unnamed plugin)"
        lines.append(f"plugin: {who} {plugin.get('version') or ''}".rstrip())
        lines.append(f"image:  {artifact.get('image')}")
        lines.append(f"platform: CORTEX {_platform_text(obj.input.context)}")
    lines.extend(_decision_lines(decision))
    if decision is not obj:
        lines.extend(_evidence_lines(obj.evidence))
        lines.append(f"policy: {obj.engine} revision {obj.policy_revision or '(unknown)'}")
    # Each line is ours; what the values in it contain is shown, never obeyed.
    return "\n".join(emphasise(for_reading(line), style) for line in lines) + "\n"


# ------------------------------------------------------------------------------------ json


def _json(obj: Any) -> str:
    decision = _decision_of(obj)
    if decision is not obj:
        doc = obj.to_json_dict()
    else:
        doc = {"schema": "cortex.decision/v1", "decision": decision.to_json_dict()}
    return json.dumps(doc, indent=2) + "\n"


# ------------------------------------------------------------------------------------ entry


def render(obj: Any, fmt: str, *, location: str | None = None, version: str = "",
           style: Style = PLAIN, fail_on: str = "block") -> str:
    """Render a verify result or a bare decision in ``fmt`` (one of :data:`FORMATS`).

    ``location`` is the file results point at in the CI formats (the manifest; taken from a
    verify result when not given); ``fail_on`` is the gate's threshold, which decides what the
    CI formats show as failing (cli/_render_ci.py). ``style`` decorates ``text`` (see
    :func:`style_for`); the other formats are never decorated. Raises ``ValueError`` for an
    unknown format.
    """
    if location is None and _decision_of(obj) is not obj:
        location = obj.manifest_path
    if fmt == "text":
        return _text(obj, style)
    if fmt == "json":
        return _json(obj)
    if fmt in FORMATS:
        from ._render_ci import render_ci

        return render_ci(obj, fmt, location=location, version=version, fail_on=fail_on)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_decision(decision: Any, fmt: str, *, location: str | None = None,
                    version: str = "", style: Style = PLAIN, fail_on: str = "block") -> str:
    """Render a bare :class:`~cortex_trust.policy.Decision` (for install and policy eval)."""
    return render(decision, fmt, location=location, version=version, style=style, fail_on=fail_on)
