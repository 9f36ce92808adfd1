"""Plugin manifest v1: the model, its strict rules, and loading ``manifest.yaml`` safely.

A manifest says what a plugin is (``name``, ``version``, ``description``, ``author``,
``license``), how it runs (``runtime``: a Docker/OCI image), what it offers (``capabilities``:
HTTP endpoints) and what it asks for (``trust``: sandbox, network, filesystem). Policies read the
normalised document (:meth:`Manifest.to_document`) as ``input.manifest.document``; a manifest that
does not load is ``input.manifest.valid == false`` and grants nothing.

Guarantees:

* :func:`parse_manifest` and :func:`load_manifest` return a :class:`Manifest` or raise
  :class:`~cortex_trust.errors.ManifestError` listing **every** problem found, each with file,
  1-based line and column, the field, the problem and a fix. No YAML or pydantic exception ever
  escapes, whatever the input (the hardened loader is :mod:`cortex_trust.manifest._yaml`).
* Nothing YAML silently converts is accepted: an unquoted ``version: 1.10`` (the float 1.1) is
  refused with "quote the version", ``network: yes`` and ``network: "true"`` are not booleans.
* Unknown fields are errors, with a "did you mean" hint (``netwrok`` → ``network``).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .._io import ReadRefused, read_bounded
from .._suggest import closest, unknown_name_fix
from .._text import clip
from ..errors import ManifestError, ManifestProblem
from ..ids import IMAGE_PATTERN, MAX_IMAGE, PLUGIN_NAME_PATTERN, ImageRef, ImageRefError, parse_image_ref
from . import _spdx
from ._semver import SemVerError, parse_minimum, parse_semver
from ._yaml import MAX_BYTES, Document, Mark, Path, dotted, load_document

__all__ = [
    "HTTP_METHODS",
    "Capability",
    "Manifest",
    "RuntimeSpec",
    "TrustSpec",
    "load_manifest",
    "manifest_json_schema",
    "parse_manifest",
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


# --- the model ----------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class RuntimeSpec(_Strict):
    """How the plugin runs: a container image (``type`` is ``docker``; ``wasm`` is reserved)."""

    type: Annotated[Literal["docker"], BeforeValidator(_check_runtime_type)] = Field(
        description="The runtime. Only `docker` is supported; `wasm` is reserved.")
    image: Annotated[StrictStr, AfterValidator(_check_image), Field(
        description="OCI image reference: [host[:port]/]repository[:tag][@sha256:<64 hex>]. "
                    "Pin the digest for anything beyond development.",
        json_schema_extra={"pattern": IMAGE_PATTERN, "maxLength": MAX_IMAGE})]


class Capability(_Strict):
    """One HTTP endpoint the plugin serves."""

    name: Annotated[StrictStr, AfterValidator(_check_capability_name), Field(
        description="Unique slug within the manifest (lowercase, digits, inner - or _).",
        json_schema_extra={"pattern": CAPABILITY_PATTERN, "maxLength": MAX_NAME})]
    endpoint: Annotated[StrictStr, AfterValidator(_check_endpoint), Field(
        description="Absolute URL path, e.g. /greet (no query, no '..', no whitespace).",
        json_schema_extra={"pattern": ENDPOINT_PATTERN, "maxLength": MAX_ENDPOINT})]
    method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                      BeforeValidator(_check_method)] = Field(description="HTTP method, upper case.")
    description: Annotated[StrictStr | None, AfterValidator(_check_capability_description), Field(
        description="What the endpoint does.",
        json_schema_extra={"maxLength": MAX_DESCRIPTION, "minLength": 1})] = None


class TrustSpec(_Strict):
    """What the plugin asks for. Policy decides what it gets; the defaults ask for least."""

    min_cortex_version: Annotated[StrictStr, AfterValidator(_check_min_version), Field(
        description='Lowest CORTEX platform version the plugin works with: MAJOR.MINOR.PATCH, '
                    'MAJOR.MINOR or MAJOR, quoted ("8.0" means 8.0.0). Loaded as the full '
                    'version.',
        json_schema_extra={"pattern": MIN_VERSION_PATTERN})]
    sandbox: StrictBool = Field(
        default=True, description="Run in the sandbox. `false` is blocked by the default policy.")
    network: StrictBool = Field(
        default=False, description="Ask for network access (granted only if policy allows).")
    filesystem: StrictBool = Field(
        default=False, description="Ask for host filesystem access (granted only if policy "
                                   "allows).")


class Manifest(_Strict):
    """A valid plugin manifest (v1). Instances are immutable and always satisfy every rule."""

    name: Annotated[StrictStr, AfterValidator(_check_name), Field(
        description="Plugin name: lowercase letters, digits and inner hyphens, at most 64.",
        json_schema_extra={"pattern": NAME_PATTERN, "maxLength": MAX_NAME})]
    version: Annotated[StrictStr, AfterValidator(_check_version), Field(
        description='SemVer 2.0.0 version. Quote it in YAML: version: "1.10.0".',
        json_schema_extra={"pattern": SEMVER_PATTERN})]
    description: Annotated[StrictStr, AfterValidator(_check_description), Field(
        description="What the plugin does.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_DESCRIPTION})]
    author: Annotated[StrictStr, AfterValidator(_check_author), Field(
        description="`Name <email>`.",
        json_schema_extra={"pattern": AUTHOR_PATTERN, "maxLength": MAX_AUTHOR})]
    license: Annotated[StrictStr, AfterValidator(_check_license), Field(
        description="SPDX license identifier or expression, e.g. MIT or Apache-2.0 OR MIT.",
        json_schema_extra={"minLength": 1, "maxLength": _spdx.MAX_LEN})]
    runtime: RuntimeSpec
    capabilities: tuple[Capability, ...] = Field(
        min_length=1, description="The HTTP endpoints the plugin serves (at least one).")
    trust: TrustSpec

    @field_validator("capabilities")
    @classmethod
    def _unique_capabilities(cls, caps: tuple[Capability, ...]) -> tuple[Capability, ...]:
        names: dict[str, int] = {}
        routes: dict[tuple[str, str], int] = {}
        for i, cap in enumerate(caps):
            if cap.name in names:
                raise _err(f"capability name {cap.name!r} is already used by "
                           f"capabilities[{names[cap.name]}]",
                           _rename_duplicate(cap.name, {c.name for c in caps}), at=(i, "name"))
            names[cap.name] = i
            route = (cap.method, cap.endpoint)
            if route in routes:
                raise _err(f"{cap.method} {cap.endpoint} is already declared by "
                           f"capabilities[{routes[route]}]", "declare each endpoint once",
                           at=(i, "endpoint"))
            routes[route] = i
        return caps

    @property
    def image(self) -> ImageRef:
        """``runtime.image`` split into domain, path, tag and digest."""
        return parse_image_ref(self.runtime.image, what="runtime.image")

    @property
    def image_digest(self) -> str | None:
        """The ``sha256:...`` digest pinned in ``runtime.image``, or None if not pinned."""
        return self.image.digest

    @property
    def image_repository(self) -> str:
        """``runtime.image`` without tag and digest (``127.0.0.1:5000/cortex/hello``)."""
        return self.image.repository

    @property
    def image_tag(self) -> str | None:
        """The tag of ``runtime.image``, or None."""
        return self.image.tag

    def to_document(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict with every default applied.

        Keys are exactly the manifest's field names; this is ``input.manifest.document``.
        """
        return self.model_dump(mode="json")


# --- loading --------------------------------------------------------------------------------

# What each field must be in YAML terms, so that values YAML converted on its own (1.10 → 1.1,
# yes → True, 2024-01-01 → a date) are refused with a precise hint before model validation.
_STR, _BOOL = "text", "boolean"
_KINDS: dict[tuple[str, ...], str] = {
    ("name",): _STR, ("version",): _STR, ("description",): _STR, ("author",): _STR,
    ("license",): _STR, ("runtime", "type"): _STR, ("runtime", "image"): _STR,
    ("capabilities", "*", "name"): _STR, ("capabilities", "*", "endpoint"): _STR,
    ("capabilities", "*", "method"): _STR, ("capabilities", "*", "description"): _STR,
    ("trust", "min_cortex_version"): _STR, ("trust", "sandbox"): _BOOL,
    ("trust", "network"): _BOOL, ("trust", "filesystem"): _BOOL,
}
_EXAMPLES = {
    "name": "name: my-plugin", "version": 'version: "0.1.0"',
    "description": "description: Says hello.", "author": 'author: "Ada <ada@example.org>"',
    "license": "license: MIT", "runtime": "runtime: {type: docker, image: ...}",
    "type": "type: docker", "image": "image: registry.example.org/team/plugin:0.1.0",
    "capabilities": "capabilities: [{name: greet, endpoint: /greet, method: GET}]",
    "endpoint": "endpoint: /greet", "method": "method: GET", "trust": "trust: "
    '{min_cortex_version: "0.1.0"}', "min_cortex_version": 'min_cortex_version: "0.1.0"',
}
_YAML_TYPE_NAMES = {
    "tag:yaml.org,2002:int": "a number", "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:null": "null (no value)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def _kind_of(path: Path) -> str | None:
    return _KINDS.get(tuple("*" if isinstance(p, int) else p for p in path))


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null (no value)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return "a date"
    return "text"


def _scalar_problems(doc: Document) -> tuple[list[ManifestProblem], set[Path]]:
    """Refuse scalars YAML typed differently from what the field needs (see ``_KINDS``)."""
    problems: list[ManifestProblem] = []
    seen: set[Path] = set()
    for path, info in doc.scalars.items():
        kind = _kind_of(path)
        if kind is None:
            continue
        key = str(path[-1])
        at = doc.positions[path]
        field = dotted(path)
        if kind == _STR and info.tag != "tag:yaml.org,2002:str":
            what = _YAML_TYPE_NAMES.get(info.tag, "not text")
            value = _value_at(doc.value, path)
            if info.tag == "tag:yaml.org,2002:null":
                if len(path) == 3 and path[0] == "capabilities" and key == "description":
                    continue  # an optional field may be null
                problem = f"`{key}` has no value"
                fix = f"write a value, e.g. {_EXAMPLES.get(key, key + ': ...')}"
            elif key in ("version", "min_cortex_version"):
                shown = f" ({value!r})" if str(value) != info.text else ""
                problem = f"YAML reads the unquoted {key} {info.text} as {what}{shown}"
                minimum = key == "min_cortex_version"
                candidate = _semver_candidate(info.text, minimum=minimum)
                if candidate == info.text:
                    fix = f'quote it: {key}: "{info.text}"'
                else:
                    fix = (f'quote it and write all three parts: {key}: '
                           f'"{candidate or "1.0.0"}"')
            else:
                problem = f"YAML reads {info.text!r} as {what}, but `{key}` must be text"
                fix = f'quote it: {key}: "{info.text}"'
            problems.append(ManifestProblem(doc.source, at.line, at.column, problem, fix, field))
            seen.add(path)
        elif kind == _BOOL:
            if info.tag == "tag:yaml.org,2002:bool" and info.text in ("true", "false"):
                continue
            if info.tag == "tag:yaml.org,2002:bool":
                problem = f"`{info.text}` is not a strict boolean"
                fix = f"write {key}: {str(_value_at(doc.value, path)).lower()}"
            elif info.tag == "tag:yaml.org,2002:str" and info.text.lower() in (
                    "true", "false", "yes", "no", "on", "off"):
                problem = f"{info.text!r} is text, not a boolean"
                good = "true" if info.text.lower() in ("true", "yes", "on") else "false"
                fix = f"write {key}: {good} (unquoted, lower case)"
            else:
                actual = _YAML_TYPE_NAMES.get(info.tag, "text")
                problem = f"`{key}` must be true or false, not {actual}"
                fix = f"write {key}: true or {key}: false"
            problems.append(ManifestProblem(doc.source, at.line, at.column, problem, fix, field))
            seen.add(path)
    return problems, seen


def _duplicate_capabilities(doc: Document, reported: set[Path]) -> list[ManifestProblem]:
    """Duplicate capability names, found on the raw document so they are reported even when
    another capability is invalid (the model's own check only runs on valid entries)."""
    caps = doc.value.get("capabilities")
    if not isinstance(caps, list):
        return []
    problems: list[ManifestProblem] = []
    first: dict[str, int] = {}
    taken = {c["name"] for c in caps if isinstance(c, dict) and isinstance(c.get("name"), str)}
    for i, cap in enumerate(caps):
        name = cap.get("name") if isinstance(cap, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            path: Path = ("capabilities", i, "name")
            at = doc.mark(path)
            problems.append(ManifestProblem(
                doc.source, at.line, at.column,
                f"capability name {name!r} is already used by capabilities[{first[name]}]",
                _rename_duplicate(name, taken), dotted(path)))
            taken.add(_free_name(name, taken))
            reported.add(path)
        else:
            first[name] = i
    return problems


def _free_name(name: str, taken: set[Any]) -> str:
    base = name[:MAX_NAME - 4].rstrip("-_")
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _rename_duplicate(name: str, taken: set[Any]) -> str:
    return f"give each capability its own name, e.g. name: {_free_name(name, taken)}"


def _value_at(root: Any, path: Path) -> Any:
    node = root
    for p in path:
        node = node[p]
    return node


_MODELS: dict[str, type[BaseModel]] = {
    "runtime": RuntimeSpec, "capabilities": Capability, "trust": TrustSpec,
}


def _model_at(loc: Path) -> type[BaseModel]:
    """The model whose fields are allowed at the mapping ``loc`` (for "did you mean")."""
    model: type[BaseModel] = Manifest
    for p in loc:
        if isinstance(p, str) and p in _MODELS and model is Manifest:
            model = _MODELS[p]
    return model


def _pydantic_problems(doc: Document, exc: ValidationError,
                       already: set[Path]) -> list[ManifestProblem]:
    problems: list[ManifestProblem] = []
    for err in exc.errors(include_url=False):
        loc: Path = tuple(err["loc"])
        etype = err["type"]
        ctx = err.get("ctx") or {}
        if etype == "cortex":
            loc = (*loc, *ctx.get("at", ()))
        if any(loc[: len(p)] == p for p in already):
            continue
        field = dotted(loc)
        key = str(loc[-1]) if loc else ""
        actual = _describe(err.get("input")) if "input" in err else "something else"
        try:
            actual = _describe(_value_at(doc.value, loc))
        except (KeyError, IndexError, TypeError):
            pass  # missing or not addressable: keep pydantic's view
        mark: Mark
        if etype == "cortex":
            mark = doc.mark(loc)
            problem, fix = str(ctx["problem"]), str(ctx["fix"])
        elif etype == "extra_forbidden":
            mark = doc.mark(loc, key=True)
            problem = f"unknown field `{clip(key, 60)}`"
            fix = unknown_name_fix(key, list(_model_at(loc[:-1]).model_fields))
        elif etype == "missing":
            mark = doc.mark(loc[:-1], key=True) if len(loc) > 1 else Mark(1, 1)
            problem = f"missing required field `{key}`"
            fix = f"add it, e.g. {_EXAMPLES.get(key, key + ': ...')}"
        elif etype == "string_type":
            mark = doc.mark(loc)
            problem = f"`{key}` must be text, not {actual}"
            fix = f"write a single value, e.g. {_EXAMPLES.get(key, key + ': ...')}"
        elif etype == "bool_type":
            mark = doc.mark(loc)
            problem = f"`{key}` must be true or false, not {actual}"
            fix = f"write {key}: true or {key}: false"
        elif etype in ("model_type", "dict_type", "model_attributes_type"):
            mark = doc.mark(loc)
            what = "a capability" if isinstance(loc[-1], int) else f"`{key}`"
            allowed = list(_model_at(loc).model_fields)
            problem = f"{what} must be a mapping, not {actual}"
            fix = f"write its fields ({', '.join(allowed)}) as `field: value` lines"
        elif etype in ("tuple_type", "list_type", "iterable_type"):
            mark = doc.mark(loc)
            problem = f"`{key}` must be a list, not {actual}"
            fix = "write one `- name: ...` entry per capability"
        elif etype == "too_short":
            try:
                written = _value_at(doc.value, loc)
            except (KeyError, IndexError, TypeError):
                written = None
            if isinstance(written, list) and written:
                continue  # the entries were written; their own problems are reported
            mark = doc.mark(loc)
            problem = f"`{key}` needs at least one entry"
            fix = f"declare at least one, e.g. {_EXAMPLES.get(key, key + ': [...]')}"
        elif etype in ("literal_error", "enum"):
            mark = doc.mark(loc)
            problem = f"`{key}` has an invalid value ({actual})"
            fix = f"use one of: {ctx.get('expected', 'see `cortex manifest schema`')}"
        else:
            mark = doc.mark(loc)
            problem = f"`{key or 'manifest'}`: {err['msg']}"
            fix = "see `cortex manifest schema` for what is allowed here"
        problems.append(ManifestProblem(doc.source, mark.line, mark.column, problem, fix, field))
    return problems


def parse_manifest(data: bytes | str, *, source: str = "manifest.yaml") -> Manifest:
    """Validate a manifest given as bytes or text.

    ``source`` names the file in problems (``source:line:col``). Returns a :class:`Manifest`;
    raises :class:`~cortex_trust.errors.ManifestError` with every problem found, sorted by
    position. Never raises anything else.
    """
    doc = load_document(data, source=source)
    problems, reported = _scalar_problems(doc)
    problems.extend(_duplicate_capabilities(doc, reported))
    try:
        manifest = Manifest.model_validate(doc.value)
    except ValidationError as e:
        problems.extend(_pydantic_problems(doc, e, reported))
    else:
        if not problems:
            return manifest
    if not problems:  # pragma: no cover - a failed validation always yields a problem
        problems.append(ManifestProblem(source, 1, 1, "the manifest is invalid",
                                        "see `cortex manifest schema`"))
    problems.sort(key=lambda p: (p.line, p.column))
    raise ManifestError([
        ManifestProblem(p.path, p.line, p.column, clip(p.problem), clip(p.fix), clip(p.field, 200))
        for p in problems])


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest file.

    A missing, unreadable or oversized file, a directory or a non-regular file (a FIFO, a device)
    is a :class:`~cortex_trust.errors.ManifestError` at line 1, column 1 with advice. The file is
    read with :func:`cortex_trust._io.read_bounded` (open, ``fstat``, bounded read).
    """
    source = os.fspath(path)
    try:
        data = read_bounded(source, max_bytes=MAX_BYTES)
    except ReadRefused as e:
        raise _read_refused(e, source) from None
    return parse_manifest(data, source=source)


def _read_refused(e: ReadRefused, source: str) -> ManifestError:
    """The manifest problem (line 1, column 1, with a fix) for a file :func:`read_bounded` refused."""
    problem, fix = {
        "missing": ("file not found", "check the path; a plugin's manifest is usually "
                                      "manifest.yaml at the root of its repository"),
        "directory": ("is a directory, not a manifest file",
                      f"pass the manifest file inside it: {os.path.join(source, 'manifest.yaml')}"),
        "not_regular": ("is not a regular file", "pass a manifest.yaml file"),
        "permission": ("cannot be read (permission denied)", "make the file readable for the user running cortex"),
        "invalid": ("is not a valid path", "check the path"),
        "too_large": (f"the manifest is {'more than ' + str(MAX_BYTES) if e.size is None else e.size} bytes; "
                      f"the limit is {MAX_BYTES} (64 KiB)",
                      "a manifest is a short description; move large content out of it"),
    }.get(e.kind, (f"cannot be read ({e.detail or e.kind})", "check the path and the file"))
    return ManifestError([ManifestProblem(source, 1, 1, problem, fix)])


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of manifest v1, for editors and other tools.

    Strict like the loader: every object has ``additionalProperties: false``. Some rules (unique
    capability names, SPDX identifiers, confusable characters) are only enforced by
    ``cortex manifest lint``.
    """
    schema = Manifest.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cortex.dev/schemas/cortex.manifest/v1.json"
    schema["title"] = "CORTEX plugin manifest v1"
    schema["description"] = "manifest.yaml of a CORTEX plugin. Validate with `cortex manifest lint`."
    return schema
