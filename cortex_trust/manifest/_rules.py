"""The rules of each manifest field, and the message and fix for each way to break one.

Every check takes the value a field holds and returns it (normalised where the field says so) or
raises one precise validation error whose context carries the problem and a fix the author can
paste (a slug for a name that is not one, the quoted version YAML misread, the endpoint a path
most plausibly means). Patterns are ECMA-262 compatible: the JSON Schema publishes them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from pydantic_core import PydanticCustomError

from .._suggest import closest
from ..ids import PLUGIN_NAME_PATTERN, ImageRefError, parse_image_ref
from . import _spdx
from ._semver import SemVerError, parse_minimum, parse_semver

__all__ = [
    "AUTHOR_PATTERN",
    "CAPABILITY_PATTERN",
    "ENDPOINT_PATTERN",
    "HTTP_METHODS",
    "MAX_AUTHOR",
    "MAX_DESCRIPTION",
    "MAX_ENDPOINT",
    "MAX_NAME",
    "MIN_VERSION_PATTERN",
    "NAME_PATTERN",
    "SEMVER_PATTERN",
]

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_NAME = 64
MAX_DESCRIPTION = 1000
MAX_AUTHOR = 256
MAX_ENDPOINT = 512

# --- patterns (also published in the JSON Schema; ECMA-262 compatible) ----------------------
NAME_PATTERN = PLUGIN_NAME_PATTERN
CAPABILITY_PATTERN = r"^[a-z0-9]+([-_][a-z0-9]+)*$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
#: ``trust.min_cortex_version``: ``MAJOR``, ``MAJOR.MINOR`` (missing parts are 0) or a full version.
MIN_VERSION_PATTERN = r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))?$|" + SEMVER_PATTERN
AUTHOR_PATTERN = r"^[^<>\s]([^<>]*[^<>\s])? <[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+>$"
ENDPOINT_PATTERN = r"^(/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+/?$|^/$"
_NAME_RE = re.compile(NAME_PATTERN)
_CAPABILITY_RE = re.compile(CAPABILITY_PATTERN)
_AUTHOR_RE = re.compile(AUTHOR_PATTERN)
_ENDPOINT_RE = re.compile(ENDPOINT_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# Characters that look like ASCII letters and digits (Unicode confusables, the common ones):
# "hеllo" with a Cyrillic "е" must never pass as, or be mistaken for, "hello".
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ɡ": "g", "ο": "o", "α": "a", "ν": "v", "ρ": "p", "τ": "t",
    "κ": "k", "ι": "i", "υ": "u", "χ": "x", "ε": "e", "β": "b", "ѵ": "v", "ⅼ": "l", "ı": "i",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "０": "0", "Ο": "o",
}


def _err(problem: str, fix: str, *, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error carrying our own problem and fix (and optionally a deeper location)."""
    return PydanticCustomError("cortex", "{problem}", {"problem": problem, "fix": fix, "at": at})


def _no_controls(value: str, what: str) -> None:
    m = _CONTROL.search(value)
    if m is not None:
        raise _err(f"{what} contains the control character U+{ord(m.group()):04X}",
                   "remove it; only plain text is allowed")


# --- field checks (each raises one precise error) -------------------------------------------

def _lookalike(value: str) -> tuple[str, str | None, str] | None:
    """For the first non-ASCII character: (its description, the ASCII letter it imitates if
    known, the whole value spelled in ASCII if every character has a spelling, else "")."""
    for ch in value:
        if ord(ch) <= 127:
            continue
        try:
            uname = unicodedata.name(ch)
        except ValueError:
            uname = "UNNAMED CHARACTER"
        spelled = "".join(
            c if ord(c) < 128 else (_CONFUSABLES.get(c) or unicodedata.normalize(
                "NFKD", c).encode("ascii", "ignore").decode().lower())
            for c in value)
        return (f"{ch!r} (U+{ord(ch):04X} {uname})", _CONFUSABLES.get(ch),
                spelled if _NAME_RE.fullmatch(spelled) else "")
    return None


def _check_name(value: str) -> str:
    # spec: name is a slug: lowercase letters, digits and inner hyphens, at most 64 characters.
    if not value:
        raise _err("name is empty", "write a slug, e.g. name: my-plugin")
    found = _lookalike(value)
    if found is not None:
        described, looks, spelled = found
        like = (f", which looks like the Latin {looks!r} but is a different character"
                if looks else "")
        fix = (f"type the name in plain ASCII: {spelled}" if spelled
               else "use only ASCII lowercase letters, digits and hyphens")
        raise _err(f"name contains the non-ASCII character {described}{like}", fix)
    if len(value) > MAX_NAME:
        shorter = value[:MAX_NAME].rstrip("-")
        hint = f": {shorter}" if _NAME_RE.fullmatch(shorter) else ""
        raise _err(f"name is {len(value)} characters long; the limit is {MAX_NAME}",
                   f"shorten the name{hint}")
    if not _NAME_RE.fullmatch(value):
        suggestion = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:MAX_NAME]
        hint = f": {suggestion}" if suggestion and _NAME_RE.fullmatch(suggestion) else ""
        raise _err(f"name {value!r} is not a slug (lowercase letters, digits and inner hyphens)",
                   f"rename it{hint}")
    return value


def _semver_candidate(value: str, *, minimum: bool) -> str | None:
    """A corrected spelling of ``value`` that parses (``v1.2`` → ``1.2.0``, ``>=8.0`` → ``8.0``
    for a minimum, leading zeros dropped), or None when there is no obvious one."""
    text = value.strip()
    if minimum:
        text = re.sub(r"^(?:>=|=>|==|=|\^|~)\s*", "", text)
    if text[:1] in ("v", "V"):
        text = text[1:]
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+){0,2})((?:[-+].*)?)", text)
    if m is None:
        return None
    parts = [str(int(p)) for p in m.group(1).split(".")]
    if not minimum or m.group(2):
        parts += ["0"] * (3 - len(parts))
    candidate = ".".join(parts) + m.group(2)
    try:
        (parse_minimum if minimum else parse_semver)(candidate)
    except SemVerError:
        return None
    return candidate


def _check_semver(value: str, what: str) -> str:
    try:
        parse_semver(value)
    except SemVerError as e:
        candidate = _semver_candidate(value, minimum=False) or "1.0.0"
        parts = value.split(".")
        if 0 < len(parts) < 3 and all(p.isdigit() for p in parts):
            fix = f'write all three parts: {what}: "{candidate}"'
        elif value[:1] in "vV" and len(value) > 1:
            fix = f"drop the 'v': {what}: \"{candidate}\""
        else:
            fix = f'write MAJOR.MINOR.PATCH, e.g. {what}: "{candidate}"'
        raise _err(f"{what}: {e}", fix) from None
    return value


def _check_version(value: str) -> str:
    return _check_semver(value, "version")


def _check_min_version(value: str) -> str:
    # The platform version a plugin needs at least. "8.0" and "8" are minimums (8.0.0), as the
    # specification writes them; the document always carries the full version.
    try:
        return str(parse_minimum(value))
    except SemVerError as e:
        candidate = _semver_candidate(value, minimum=True) or "8.0"
        raise _err(f"min_cortex_version: {e}", f'write min_cortex_version: "{candidate}"') from None


def _check_description(value: str, what: str = "description") -> str:
    if not value.strip():
        raise _err(f"{what} is empty", "say in one sentence what the plugin does")
    if len(value) > MAX_DESCRIPTION:
        raise _err(f"{what} is {len(value)} characters long; the limit is {MAX_DESCRIPTION}",
                   "shorten it; put long documentation in the plugin's README")
    _no_controls(value.replace("\n", "").replace("\t", ""), what)
    return value


def _check_capability_description(value: str | None) -> str | None:
    return None if value is None else _check_description(value, "capability description")


_EMAIL_RE = re.compile(r"[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+")
_PLACEHOLDER_EMAIL = "you@example.org"


def _yaml_text(value: str) -> str:
    """``value`` as a YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _author_problem(value: str) -> tuple[str, str]:
    """What is wrong with an author that is not ``Name <email>``, and a value that is."""
    if not value.strip():
        return ("author is empty", f"write e.g. author: {_yaml_text(f'Your Name <{_PLACEHOLDER_EMAIL}>')}")
    lt = value.find("<")
    head = value if lt < 0 else value[:lt]
    name = " ".join(head.replace(">", " ").split())
    if lt < 0:
        if _EMAIL_RE.fullmatch(name):
            return (f"author {value!r} is only an email address; the name is missing",
                    f"put your name before it: author: {_yaml_text(f'Your Name <{name}>')}")
        shown = name or "Your Name"
        return (f"author {value!r} has no email address (the form is `Name <email>`)",
                f"add your email address in angle brackets, e.g. author: "
                f"{_yaml_text(f'{shown} <{_PLACEHOLDER_EMAIL}>')}")
    gt = value.find(">", lt)
    email = (value[lt + 1:gt] if gt >= 0 else value[lt + 1:]).strip()
    wrong: list[str] = []
    if not name:
        wrong.append("there is no name before the '<'")
    if gt < 0:
        wrong.append("the '<' is never closed with '>'")
    elif value[gt + 1:].strip():
        wrong.append(f"there is text after the '>' ({value[gt + 1:].strip()!r})")
    email_ok = bool(_EMAIL_RE.fullmatch(email))
    if not email_ok:
        if not email:
            wrong.append("the angle brackets hold no email address")
        elif "@" not in email:
            wrong.append(f"the email part {email!r} is not an email address (it has no '@')")
        else:
            wrong.append(f"the email part {email!r} is not an email address "
                         "(the form is local@domain.tld)")
    if not wrong:
        wrong.append("the spacing is off (one space between the name and '<', none before or after)")
    fixed = f"{name or 'Your Name'} <{email if email_ok else _PLACEHOLDER_EMAIL}>"
    how = "write your real address, e.g." if not email_ok else "write"
    return (f"author {value!r}: {'; '.join(wrong)}", f"{how} author: {_yaml_text(fixed)}")


def _check_author(value: str) -> str:
    if len(value) > MAX_AUTHOR:
        raise _err(f"author is longer than {MAX_AUTHOR} characters", "shorten it")
    _no_controls(value, "author")
    if not _AUTHOR_RE.fullmatch(value):
        raise _err(*_author_problem(value))
    return value


def _check_license(value: str) -> str:
    try:
        _spdx.check_license_expression(value)
    except _spdx.LicenseProblem as e:
        raise _err(e.problem, e.fix) from None
    return value


def _check_runtime_type(value: Any) -> Any:
    if isinstance(value, str) and value != "docker":
        if value == "wasm":
            raise _err("runtime.type wasm is not supported yet; use docker",
                       "package the plugin as a container image and set type: docker")
        if value.lower() == "docker":
            raise _err(f"runtime.type {value!r} must be lower case", "write type: docker")
        raise _err(f"unknown runtime.type {value!r}", "the only supported type is docker: write type: docker")
    return value


def _check_method(value: Any) -> Any:
    if isinstance(value, str) and value not in HTTP_METHODS:
        if value.upper() in HTTP_METHODS:
            raise _err(f"method {value!r} must be upper case", f"write method: {value.upper()}")
        guess = closest(value.upper(), HTTP_METHODS)
        hint = f"did you mean {guess}? " if guess else ""
        raise _err(f"method {value!r} is not an HTTP method",
                   f"{hint}use one of {', '.join(HTTP_METHODS)}")
    return value


def _check_capability_name(value: str) -> str:
    if not value:
        raise _err("capability name is empty", "name it, e.g. name: greet")
    if len(value) > MAX_NAME or not _CAPABILITY_RE.fullmatch(value):
        slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:MAX_NAME].rstrip("-")
        hint = f": {slug}" if _CAPABILITY_RE.fullmatch(slug) else ", e.g. greet or send-mail"
        raise _err(f"capability name {value!r} is not a slug (lowercase letters, digits, "
                   f"inner '-' or '_', at most {MAX_NAME} characters)", f"rename it{hint}")
    return value


_ENDPOINT_SAFE = "-._~!$&'()*+,;=:@%"


def _endpoint_faults(value: str) -> list[str]:
    """Everything wrong with an endpoint, in the order a reader fixes it (empty: valid)."""
    faults: list[str] = []
    if len(value) > MAX_ENDPOINT:
        faults.append(f"is longer than {MAX_ENDPOINT} characters")
    if not value.startswith("/"):
        faults.append("is not an absolute path")
    if any(c.isspace() for c in value):
        faults.append("contains whitespace")
    if "?" in value or "#" in value:
        faults.append("contains a query or fragment")
    path = re.split(r"[?#]", value, maxsplit=1)[0]
    if any(seg in (".", "..") for seg in path.split("/")):
        faults.append("contains '.' or '..' segments")
    if "//" in path:
        faults.append("contains an empty segment (//)")
    if not faults and not _ENDPOINT_RE.fullmatch(value):
        faults.append("contains characters not allowed in a URL path")
    return faults


def _endpoint_candidate(value: str) -> str:
    """The path ``value`` most plausibly means, as a valid endpoint: query and fragment dropped,
    absolute, dot segments resolved, empty segments removed, other characters percent-encoded."""
    from urllib.parse import quote

    path = re.split(r"[?#]", value.strip(), maxsplit=1)[0]
    segments: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segments:
                segments.pop()
            continue
        segments.append(quote(seg, safe=_ENDPOINT_SAFE.replace("%", "")))
    candidate = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        candidate += "/"
    while len(candidate) > MAX_ENDPOINT and "/" in candidate.rstrip("/")[1:]:
        candidate = candidate.rstrip("/").rsplit("/", 1)[0]
    return candidate if not _endpoint_faults(candidate) else "/"


def _check_endpoint(value: str) -> str:
    if len(value) > MAX_ENDPOINT:
        raise _err(f"endpoint is longer than {MAX_ENDPOINT} characters", "shorten it")
    faults = _endpoint_faults(value)
    if faults:
        why = ""
        if "contains a query or fragment" in faults:
            why = " (declare only the path; parameters belong in the request)"
        elif "contains whitespace" in faults or faults[-1].startswith("contains characters"):
            why = " (percent-encode what a URL path cannot hold)"
        listed = ", ".join(faults[:-1]) + (" and " if len(faults) > 1 else "") + faults[-1]
        raise _err(f"endpoint {value!r} {listed}",
                   f"write endpoint: {_endpoint_candidate(value)}{why}")
    return value


# --- image references -------------------------------------------------------------------------

def _image_candidate(value: str) -> str | None:
    """``value`` with what has one obvious correction corrected (a URL scheme or whitespace
    dropped, upper-case repository components or digest hex lowered), if that parses."""
    ref = "".join(value.split())
    ref = ref.split("://", 1)[1] if "://" in ref else ref
    name_tag, at, digest = ref.partition("@")
    last_slash = name_tag.rfind("/")
    colon = name_tag.rfind(":")
    name, tag = (name_tag[:colon], name_tag[colon:]) if colon > last_slash else (name_tag, "")
    parts = name.split("/")
    first = parts[0]
    keep_host = len(parts) > 1 and ("." in first or ":" in first or first == "localhost")
    lowered = [p if (i == 0 and keep_host) else p.lower() for i, p in enumerate(parts)]
    candidate = "/".join(lowered) + tag + at + digest.lower()
    try:
        parse_image_ref(candidate, what="runtime.image")
    except ImageRefError:
        return None
    return candidate if candidate != value else None


def _check_image(value: str) -> str:
    try:
        parse_image_ref(value, what="runtime.image")
    except ImageRefError as e:
        candidate = _image_candidate(value)
        raise _err(e.problem, f"write image: {candidate}" if candidate else e.fix) from None
    return value


def _free_name(name: str, taken: set[Any]) -> str:
    base = name[:MAX_NAME - 4].rstrip("-_")
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _rename_duplicate(name: str, taken: set[Any]) -> str:
    return f"give each capability its own name, e.g. name: {_free_name(name, taken)}"
