"""Why a manifest document does not validate, as problems a person can fix.

Each problem names the file, the 1-based line and column, the field, what is wrong and a fix.
Scalars YAML typed on its own (``1.10`` read as a number, ``yes`` as a boolean) are reported
before model validation; duplicate capability names are found on the raw document so they are
reported even when another capability is invalid; every pydantic error is translated, unknown
fields with a "did you mean".
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from .._suggest import unknown_name_fix
from .._text import clip
from ..errors import ManifestProblem
from ._model import Capability, Manifest, RuntimeSpec, TrustSpec
from ._rules import _free_name, _rename_duplicate, _semver_candidate
from ._yaml import Document, Mark, Path, dotted

__all__: list[str] = []

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
