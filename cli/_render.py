"""Rendering of decisions for people and machines: ``text``, ``json``, ``sarif``, ``github``.

Shared by ``cortex plugin verify``, ``plugin install`` and ``policy eval``. Everything here
takes a :class:`cortex_trust.policy.Decision` (or a verify result that carries one) and
returns text; nothing decides. Only the standard library is imported at module level (the
CLI's ``--help`` must stay fast); the objects passed in are used through their attributes.

Formats:

* ``text``: tier, action, each reason as ``CODE: message``, "to reach <tier>: …" for each
  missing item, the sandbox, and (for verify) an evidence summary.
* ``json``: for verify the ``cortex.verify/v1`` document (docs/verify.md); for a bare decision
  ``{"schema": "cortex.decision/v1", "decision": {...}}``.
* ``sarif``: SARIF 2.1.0, one rule per reason code; level ``error`` for block, ``warning`` for
  warn, ``note`` otherwise; every result located at the manifest file.
* ``github``: workflow commands (``::error file=…,title=CODE::message``).

Messages carry text that strangers wrote (file names, reviewer ids, certificate identities,
errors from third-party tools). In ``text`` and ``github`` output every such character a
terminal or a CI runner would act on is shown as an escape (:func:`neutralise`): a newline
followed by ``::`` would otherwise be a GitHub workflow command of the attacker's, and ANSI
sequences could rewrite what the reader sees. ``json`` and ``sarif`` escape them as JSON does.

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

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, TextIO

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

FORMATS = ("text", "json", "sarif", "github")
FAIL_ON_CHOICES = ("notice", "warn", "block")

# Action ordering (allow < notice < warn < block); kept as strings so that this module does
# not import the decision model. A test pins it to cortex_trust.policy.Action.severity.
_SEVERITY = {"allow": 0, "notice": 1, "warn": 2, "block": 3}
_SARIF_LEVEL = {"block": "error", "warn": "warning", "notice": "note", "allow": "note"}
_GITHUB_LEVEL = {"block": "error", "warn": "warning", "notice": "notice", "allow": "notice"}
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_TOOL_URI = "https://github.com/cortex-dev/cortex-trust"


# What a terminal or a CI runner acts on: C0 controls but tab (a newline starts a line the
# Actions runner reads as a workflow command), DEL, C1 controls (0x9B is a one-byte CSI), the
# Unicode line/paragraph separators, and bidirectional controls (text that displays in another
# order than it reads: "Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u2028\u2029\u200e\u200f"
                     "\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    return _NAMED_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def neutralise(text: str) -> str:
    """``text`` with every character a terminal or CI runner would act on shown as an escape
    (``\\n``, ``\\x1b``, ``\\u202e``): one line, inert, still readable. Never raises.

    The one function every text output of the CLI passes other people's strings through
    (registry answers: names, descriptions, images, reasons, error messages; manifests;
    reports)."""
    return _UNSAFE.sub(_escape_char, text)


# ------------------------------------------------------------------------- text for people

#: Hex digits of a digest shown in text output (Docker and git show 12 too).
SHORT_DIGEST_HEX = 12


def shorten_digests(text: str) -> str:
    """``text`` with every image digest in it shortened to ``sha256:``, the first
    :data:`SHORT_DIGEST_HEX` hex digits and ``…``."""
    return _digest_re().sub(lambda m: f"sha256:{m.group(1)[:SHORT_DIGEST_HEX]}…", text)


@functools.cache
def _digest_re() -> re.Pattern[str]:
    """The digest grammar of :mod:`cortex_trust.ids` (the one definition), with the hex digits as
    group 1; imported on first use so that help screens stay light."""
    from cortex_trust.ids import DIGEST

    prefix = "sha256:"
    assert DIGEST.startswith(prefix)
    return re.compile(f"{prefix}({DIGEST[len(prefix):]})")


def for_reading(text: str) -> str:
    """``text`` as a person reads it in text output: inert (:func:`neutralise`) and with
    digests shortened (:func:`shorten_digests`)."""
    return shorten_digests(neutralise(text))


def plural(n: int, one: str, many: str | None = None) -> str:
    """``"1 version"``, ``"2 versions"``: ``n`` and the word in the form its number needs
    (``many`` when adding an ``s`` is wrong: ``plural(n, "entry", "entries")``)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


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


def exit_code_for(decision: Any, fail_on: str) -> int:
    """0 when the decision passes, 1 when its action reaches ``fail_on``, 3 when it failed
    closed (the engine could not decide). Raises ``ValueError`` for an unknown ``fail_on``.
    """
    if fail_on not in _SEVERITY or fail_on == "allow":
        raise ValueError(f"fail_on must be one of {FAIL_ON_CHOICES}")
    if decision.failed:
        return 3
    action = str(decision.action)
    # An action we do not know is treated as the most severe (fail closed).
    return 1 if _SEVERITY.get(action, 3) >= _SEVERITY[fail_on] else 0


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _decision_of(obj: Any) -> Any:
    return obj.decision if hasattr(obj, "decision") and hasattr(obj, "input") else obj


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


def _missing_text(tier: str, message: str) -> str:
    # Policies may already phrase a missing item as "to reach <tier>: ..."; say it once.
    prefix = f"to reach {tier}: "
    return message[len(prefix):] if message.lower().startswith(prefix) else message


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


# ------------------------------------------------------------------------------------ sarif


def _uri(location: str | None) -> str:
    if not location:
        return "manifest.yaml"
    p = PurePath(location)
    if p.is_absolute():
        try:
            p = Path(location).resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return Path(location).resolve().as_uri()
    return p.as_posix()


def _items(decision: Any) -> list[tuple[str, str, str]]:
    """(code, level-action, message) for each reason and each missing item."""
    action = _value(decision.action)
    items = [(r.code, action, r.message) for r in decision.reasons]
    if decision.next_tier is not None:
        tier = _value(decision.next_tier.tier)
        items.extend((m.code, "notice", f"to reach {tier}: {_missing_text(tier, m.message)}")
                     for m in decision.next_tier.missing)
    return items


def _sarif(obj: Any, *, location: str | None, version: str) -> str:
    decision = _decision_of(obj)
    uri = _uri(location)
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for code, action, message in _items(decision):
        if code not in index:
            index[code] = len(rules)
            rules.append({"id": code, "name": code, "shortDescription": {"text": code},
                          "defaultConfiguration": {"level": _SARIF_LEVEL.get(action, "error")}})
        results.append({
            "ruleId": code,
            "ruleIndex": index[code],
            "level": _SARIF_LEVEL.get(action, "error"),
            "message": {"text": message},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri},
                                                "region": {"startLine": 1}}}],
        })
    properties: dict[str, Any] = {"tier": _value(decision.tier), "action": _value(decision.action),
                                  "failed": bool(decision.failed)}
    if decision is not obj:
        properties["policyRevision"] = obj.policy_revision
        properties["digest"] = obj.input.artifact.digest
    doc = {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cortex-trust", "version": version,
                                "informationUri": _TOOL_URI, "rules": rules}},
            "results": results,
            "properties": properties,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


# ------------------------------------------------------------------------------------ github


def _escape_data(s: str) -> str:
    # GitHub's own escaping (actions/toolkit escapeData), then every other control character
    # made inert: the runner's log would interpret ANSI sequences.
    return neutralise(s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _github(obj: Any, *, location: str | None) -> str:
    decision = _decision_of(obj)
    file = _escape_property(_uri(location))
    lines = []
    for code, action, message in _items(decision):
        level = _GITHUB_LEVEL.get(action, "error")
        lines.append(f"::{level} file={file},title={_escape_property(code)}::{_escape_data(message)}")
    summary = (f"cortex: tier {_value(decision.tier)}, action {_value(decision.action)}"
               + (" (failed closed: the policy engine could not decide)" if decision.failed else ""))
    lines.append(f"::{_GITHUB_LEVEL.get(_value(decision.action), 'error')} "
                 f"title=cortex-trust::{_escape_data(summary)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ entry


def render(obj: Any, fmt: str, *, location: str | None = None, version: str = "",
           style: Style = PLAIN) -> str:
    """Render a verify result or a bare decision in ``fmt`` (one of :data:`FORMATS`).

    ``location`` is the file results point at in SARIF and GitHub annotations (the manifest;
    taken from a verify result when not given). ``style`` decorates ``text`` (see
    :func:`style_for`); the other formats are never decorated. Raises ``ValueError`` for an
    unknown format.
    """
    if location is None and _decision_of(obj) is not obj:
        location = obj.manifest_path
    if fmt == "text":
        return _text(obj, style)
    if fmt == "json":
        return _json(obj)
    if fmt == "sarif":
        return _sarif(obj, location=location, version=version)
    if fmt == "github":
        return _github(obj, location=location)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_decision(decision: Any, fmt: str, *, location: str | None = None,
                    version: str = "", style: Style = PLAIN) -> str:
    """Render a bare :class:`~cortex_trust.policy.Decision` (for install and policy eval)."""
    return render(decision, fmt, location=location, version=version, style=style)
