"""A hardened YAML loader for small configuration documents (manifests).

Verify bytes before parsing what they claim: the checks run cheapest-first, and the YAML parser
only ever sees text that has passed the ones it could choke on.

1. Size: at most :data:`MAX_BYTES` (64 KiB), checked on the raw bytes before decoding.
2. Encoding: strict UTF-8 (an optional BOM is dropped); no NUL or other control characters.
3. An iterative scan of the YAML *event* stream (``yaml.parse``, with libyaml's C parser when
   PyYAML has it), which never builds values and never recurses: it rejects anchors and
   aliases (billion laughs), explicit tags (``!!python``, ``!custom``, even ``!!str``), nesting
   deeper than :data:`MAX_DEPTH` (it stops at the first level too deep, so ``"[" * 100000``
   costs milliseconds and never reaches ``RecursionError``), and more than one document.
4. Building plain Python values from the same events with an explicit stack: mappings become
   ``dict`` with ``str`` keys only, no duplicate keys, no merge keys (``<<``); sequences become
   ``list``; scalars are resolved with PyYAML's safe implicit resolvers (so ``1.10`` is the float
   ``1.1``, ``yes`` a boolean) and the source text, quoting style and resolved tag of every
   scalar are kept so the caller can refuse what YAML silently converted.

Every problem is a :class:`~cortex_trust.errors.ManifestProblem` with a 1-based line and
column; problems are collected (all of them where the document structure allows) and raised
together as one :class:`~cortex_trust.errors.ManifestError`. No ``yaml`` exception escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .._text import clip
from ..errors import ManifestError, ManifestProblem

MAX_BYTES = 64 * 1024
MAX_DEPTH = 20
_MAX_PROBLEMS = 50

Path = tuple[str | int, ...]

_YAML_NS = "tag:yaml.org,2002:"
_TAG_STR = "tag:yaml.org,2002:str"
_TAG_MERGE = "tag:yaml.org,2002:merge"
_TAG_VALUE = "tag:yaml.org,2002:value"
# Characters YAML itself forbids, plus NUL and the C1 controls, reported by us with a position
# instead of PyYAML's ReaderError. Tab, LF and CR are the only controls a manifest may contain.
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# libyaml's parser (C) when PyYAML was built with it: the same events, marks and errors, faster,
# and its simple-key look-ahead on hostile flow nesting is not quadratic like the pure-Python
# parser's scan. Only events are taken from it.
_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the source text."""

    line: int
    column: int


@dataclass(frozen=True)
class ScalarInfo:
    """How a scalar was written: its exact source text, whether it was quoted, and the tag YAML
    resolved it to (``tag:yaml.org,2002:float`` for an unquoted ``1.10``)."""

    text: str
    quoted: bool
    tag: str


@dataclass
class Document:
    """A loaded document: plain values plus where each value and each mapping key came from.

    ``positions`` maps a path (``("capabilities", 0, "method")``) to the start of its value;
    ``key_positions`` maps the same path to the start of its key (for "unknown field" errors);
    ``scalars`` maps the path of every scalar to how it was written.
    """

    value: dict[str, Any]
    source: str
    positions: dict[Path, Mark] = field(default_factory=dict)
    key_positions: dict[Path, Mark] = field(default_factory=dict)
    scalars: dict[Path, ScalarInfo] = field(default_factory=dict)

    def mark(self, path: Path, *, key: bool = False) -> Mark:
        """The position of ``path`` (its key if ``key``), else of its nearest known ancestor."""
        p = path
        while True:
            if key and p in self.key_positions:
                return self.key_positions[p]
            if p in self.positions:
                return self.positions[p]
            if not p:
                return Mark(1, 1)
            p = p[:-1]


def _problem(source: str, line: int, column: int, problem: str, fix: str,
             field_: str = "") -> ManifestProblem:
    return ManifestProblem(path=source, line=line, column=column, problem=clip(problem),
                           fix=clip(fix), field=clip(field_, 200))


def _mark_of(m: Any) -> Mark:
    # PyYAML's and libyaml's marks both carry 0-based ``line`` and ``column``.
    if m is None:
        return Mark(1, 1)
    return Mark(int(m.line) + 1, int(m.column) + 1)


def _resolve(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag PyYAML's safe implicit resolvers give a scalar (``1.10`` → float)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    return tag


def _position_of_index(text: str, index: int) -> Mark:
    line = text.count("\n", 0, index) + 1
    return Mark(line, index - (text.rfind("\n", 0, index) + 1) + 1)


def decode(data: bytes | str, *, source: str, what: str = "manifest") -> str:
    """Check size, encoding and characters; return the text. Raises ManifestError."""
    if isinstance(data, str):
        # Size is checked on what would be on disk; a str that is not encodable (a lone
        # surrogate) is refused the same way as bytes that are not UTF-8.
        if len(data) > MAX_BYTES:  # every character is at least one byte: cheap early exit
            raw_len = len(data)
            raise ManifestError([_problem(
                source, 1, 1,
                f"the {what} is at least {raw_len} bytes; the limit is {MAX_BYTES} (64 KiB)",
                f"a {what} is a short description; move large content out of it")])
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as e:
            at = _position_of_index(data, e.start)
            raise ManifestError([_problem(
                source, at.line, at.column,
                f"the {what} contains a character that cannot be encoded as UTF-8",
                "remove it; manifests are UTF-8 text")]) from None
    else:
        raw = bytes(data)
    if len(raw) > MAX_BYTES:
        raise ManifestError([_problem(
            source, 1, 1, f"the {what} is {len(raw)} bytes; the limit is {MAX_BYTES} (64 KiB)",
            f"a {what} is a short description; move large content out of it")])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        column = e.start - (before.rfind(b"\n") + 1) + 1
        hint = ("it looks like UTF-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff")
                else f"byte 0x{raw[e.start]:02x} is not valid UTF-8")
        raise ManifestError([_problem(
            source, line, column, f"the {what} is not UTF-8 text ({hint})",
            "save the file as UTF-8")]) from None
    bad = _BAD_CHAR.search(text)
    if bad is not None:
        at = _position_of_index(text, bad.start())
        ch = bad.group()
        name = "a NUL byte" if ch == "\x00" else f"the control character U+{ord(ch):04X}"
        raise ManifestError([_problem(
            source, at.line, at.column, f"the {what} contains {name}",
            "remove it; a manifest is plain text (use \\n escapes inside double quotes if needed)",
        )])
    return text


def _scan(text: str, source: str) -> list[yaml.Event]:
    """Iterate the event stream once, refusing what must never reach the composer."""
    events: list[yaml.Event] = []
    problems: list[ManifestProblem] = []
    depth = 0
    documents = 0
    aliases_seen: set[str | None] = set()
    try:
        for ev in yaml.parse(text, Loader=_EVENT_LOADER):
            at = _mark_of(ev.start_mark)
            if isinstance(ev, yaml.AliasEvent):
                # One report per anchor name: a bomb repeats the same alias thousands of times.
                if ev.anchor in aliases_seen:
                    continue
                aliases_seen.add(ev.anchor)
                problems.append(_problem(
                    source, at.line, at.column, f"YAML alias *{ev.anchor} is not allowed",
                    "write the value out in full; anchors and aliases are refused"))
                continue
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    problems.append(_problem(
                        source, at.line, at.column,
                        "the file holds more than one YAML document (---)",
                        "keep exactly one document per manifest file"))
                    break
            anchor = getattr(ev, "anchor", None)
            if anchor is not None:
                problems.append(_problem(
                    source, at.line, at.column, f"YAML anchor &{anchor} is not allowed",
                    "remove the anchor; anchors and aliases are refused"))
            tag = getattr(ev, "tag", None)
            if tag is not None and isinstance(
                    ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                shown = "!!" + tag[len(_YAML_NS):] if tag.startswith(_YAML_NS) else tag
                problems.append(_problem(
                    source, at.line, at.column, f"explicit YAML tag {shown} is not allowed",
                    "remove the tag; quote the value if it must be a string"))
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    problems.append(_problem(
                        source, at.line, at.column,
                        f"the document is nested deeper than {MAX_DEPTH} levels",
                        "flatten the structure; a manifest is only a few levels deep"))
                    break  # stop here: never walk further into a hostile nesting
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            events.append(ev)
            if len(problems) >= _MAX_PROBLEMS:
                problems.append(_problem(source, at.line, at.column,
                                         "too many problems; stopped reading here",
                                         "fix the problems above first"))
                break
    except yaml.MarkedYAMLError as e:
        at = _mark_of(e.problem_mark or e.context_mark)
        if "nesting depth" in str(e.problem):  # libyaml's own cap (1000) met in its look-ahead
            problems.append(_problem(
                source, at.line, at.column,
                f"the document is nested deeper than {MAX_DEPTH} levels",
                "flatten the structure; a manifest is only a few levels deep"))
            raise ManifestError(problems) from None
        problems.append(_problem(
            source, at.line, at.column, f"invalid YAML: {e.problem or e.context or 'syntax error'}",
            "fix the YAML syntax (indentation, quotes, colons) at this position"))
    except yaml.YAMLError as e:
        problems.append(_problem(source, 1, 1, f"invalid YAML: {e}", "fix the YAML syntax"))
    except RecursionError:  # pragma: no cover - the scan is iterative; belt and braces
        problems.append(_problem(source, 1, 1, "the document is nested too deeply",
                                 "flatten the structure"))
    if problems:
        raise ManifestError(problems)
    return events


def _scalar(ev: yaml.ScalarEvent) -> tuple[Any, ScalarInfo]:
    tag = _resolve(ev.value, ev.implicit)
    quoted = ev.style is not None and ev.style in ("'", '"', "|", ">")
    info = ScalarInfo(text=ev.value, quoted=quoted, tag=tag)
    if tag in (_TAG_STR, _TAG_MERGE, _TAG_VALUE):
        return ev.value, info
    node = yaml.ScalarNode(tag, ev.value, None, None, style=ev.style)
    constructor = _CONSTRUCTOR.yaml_constructors.get(tag)
    if constructor is None:  # pragma: no cover - implicit resolvers only yield known tags
        return ev.value, info
    return constructor(_CONSTRUCTOR, node), info


class _Frame:
    __slots__ = ("container", "key", "key_mark", "path")

    def __init__(self, container: dict[str, Any] | list[Any], path: Path) -> None:
        self.container = container
        self.path = path
        self.key: str | None = None  # pending mapping key
        self.key_mark: Mark | None = None


def _build(events: list[yaml.Event], source: str) -> Document:
    """Plain values from a checked event list, with positions. Collects all key problems."""
    problems: list[ManifestProblem] = []
    positions: dict[Path, Mark] = {}
    key_positions: dict[Path, Mark] = {}
    scalars: dict[Path, ScalarInfo] = {}
    stack: list[_Frame] = []
    root: Any = None
    root_seen = False
    skip_next = False  # the next node is the value of a refused key: drop it
    nest = 0  # > 0 while dropping such a value that is a container

    def place(value: Any, ev: yaml.Event, info: ScalarInfo | None) -> Path | None:
        """Attach ``value`` to the current container; return its path (None if dropped)."""
        nonlocal root, root_seen
        at = _mark_of(ev.start_mark)
        if not stack:
            root, root_seen = value, True
            positions[()] = at
            return ()
        top = stack[-1]
        if isinstance(top.container, list):
            path = (*top.path, len(top.container))
            top.container.append(value)
        else:
            if top.key is None:
                raise AssertionError("value without key")  # pragma: no cover
            path = (*top.path, top.key)
            top.container[top.key] = value
            if top.key_mark is not None:
                key_positions[path] = top.key_mark
            top.key = None
        positions[path] = at
        if info is not None:
            scalars[path] = info
        return path

    def where(path: Path) -> str:
        return dotted(path)

    for ev in events:
        is_start = isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
        is_end = isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent))
        if skip_next:
            skip_next = False
            if is_start:
                nest = 1
            continue
        if nest:
            if is_start:
                nest += 1
            elif is_end:
                nest -= 1
            continue
        if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentStartEvent,
                           yaml.DocumentEndEvent)):
            continue
        if is_end:
            stack.pop()
            continue
        top = stack[-1] if stack else None
        awaiting_key = top is not None and isinstance(top.container, dict) and top.key is None
        if awaiting_key:
            assert top is not None
            at = _mark_of(ev.start_mark)
            if isinstance(ev, yaml.ScalarEvent):
                tag = _resolve(ev.value, ev.implicit)
                key_path = (*top.path, ev.value)
                shown_key = clip(ev.value, 60)
                if tag == _TAG_MERGE:
                    problems.append(_problem(
                        source, at.line, at.column, "YAML merge keys (<<) are not allowed",
                        "write the fields out in full", where(top.path)))
                elif tag not in (_TAG_STR, _TAG_VALUE):
                    problems.append(_problem(
                        source, at.line, at.column,
                        f"mapping key {shown_key!r} is not a string (YAML reads it as "
                        f"{tag.rsplit(':', 1)[-1]})",
                        f'use a text key; quote it if needed: "{shown_key}":', where(top.path)))
                elif ev.value in top.container:
                    first = key_positions.get(key_path)
                    seen = f" (first at line {first.line})" if first else ""
                    problems.append(_problem(
                        source, at.line, at.column, f"duplicate key {shown_key!r}{seen}",
                        "keep only one of them", where(key_path)))
                else:
                    top.key, top.key_mark = ev.value, at
                    continue
                skip_next = True  # drop this entry's value
                continue
            problems.append(_problem(
                source, at.line, at.column, "mapping keys must be plain strings",
                "use a text key, not a list or mapping", where(top.path)))
            # Collections as keys only appear in hostile input: stop here.
            raise ManifestError(problems)
        if isinstance(ev, yaml.ScalarEvent):
            try:
                value, info = _scalar(ev)
            except (ValueError, OverflowError, yaml.YAMLError) as e:
                at = _mark_of(ev.start_mark)
                path_now: Path = ()
                if top is not None and isinstance(top.container, list):
                    path_now = (*top.path, len(top.container))
                elif top is not None:
                    path_now = (*top.path, top.key or "")
                problems.append(_problem(
                    source, at.line, at.column, f"value {ev.value[:40]!r} cannot be read ({e})",
                    "quote the value if it is meant as text", where(path_now)))
                value, info = ev.value, ScalarInfo(ev.value, False, _TAG_STR)
            place(value, ev, info)
        elif isinstance(ev, yaml.MappingStartEvent):
            mapping: dict[str, Any] = {}
            path = place(mapping, ev, None)
            stack.append(_Frame(mapping, path if path is not None else ()))
        elif isinstance(ev, yaml.SequenceStartEvent):
            seq: list[Any] = []
            path = place(seq, ev, None)
            stack.append(_Frame(seq, path if path is not None else ()))
    if not root_seen or root is None:
        problems.append(_problem(source, 1, 1, "the manifest is empty",
                                 "write the manifest fields (see `cortex manifest schema`)"))
    elif not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else f"a single value ({type(root).__name__})"
        problems.insert(0, _problem(
            source, 1, 1, f"the top level of the manifest is {kind}, not a mapping",
            "write the manifest as `field: value` lines (name:, version:, ...)"))
    if problems:
        raise ManifestError(problems)
    assert isinstance(root, dict)
    return Document(root, source, positions, key_positions, scalars)


def dotted(path: Path) -> str:
    """``("capabilities", 1, "method")`` as ``capabilities[1].method``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def load_document(data: bytes | str, *, source: str, what: str = "manifest") -> Document:
    """Load one YAML mapping under every hardening rule above.

    Returns a :class:`Document`. Raises :class:`~cortex_trust.errors.ManifestError` listing
    every problem found; never any other exception for any input.
    """
    text = decode(data, source=source, what=what)
    events = _scan(text, source)
    return _build(events, source)
