"""Which keys a policy data file may hold under ``cortex_config``.

The known keys and their nesting have one home, ``cortex_trust/schemas/policy-data.schema.json``
(a JSON Schema of the keys, checked here against every data file, the shipped defaults included):
an object with fixed keys refuses any other key, an object keyed by names the organization chooses
(``trusted_signers``, ``scan.cve_allowlist``, ...) takes any key and checks the entries. An
organization's own keys go under ``cortex_config.x_<name>`` (or outside ``cortex_config``),
which nothing here checks. Only keys are checked: values, types and missing keys are the
policy's to judge (``CONFIG_INVALID``), so this check never changes a decision; it refuses a
file in which a mistyped key (``max_severty``) would otherwise leave the default in force.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._suggest import unknown_name_fix

__all__ = ["CONFIG_KEY", "EXTENSION_PREFIX", "SCHEMA_PATH", "UnknownKey", "unknown_keys", "where"]

#: The schema of the keys (shipped with the package).
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "policy-data.schema.json"
#: The data key whose keys are checked.
CONFIG_KEY = "cortex_config"
#: Keys of ``cortex_config`` starting with this are an organization's own.
EXTENSION_PREFIX = "x_"

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class UnknownKey:
    """A key the schema does not allow where it stands; ``path`` runs from the document's root."""

    path: KeyPath
    allowed: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """``cortex_config.scan.max_severty``; list items as ``[0]``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    @property
    def suggestion(self) -> str:
        """``did you mean `x`?``, or the keys allowed there."""
        return unknown_name_fix(str(self.path[-1]), self.allowed)

    @property
    def fix(self) -> str:
        """The suggestion, and where an organization's own keys go when the key stands at the top
        of ``cortex_config``."""
        if self.path[:-1] == (CONFIG_KEY,):
            return f"{self.suggestion} (keys of your own go under {CONFIG_KEY}.{EXTENSION_PREFIX}<name>)"
        return self.suggestion


@functools.cache
def _schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def unknown_keys(document: Mapping[str, Any]) -> list[UnknownKey]:
    """Every key under ``document["cortex_config"]`` the schema does not allow, in document order
    (``[]`` when there is none, or no ``cortex_config`` object)."""
    found: list[UnknownKey] = []
    root = _schema()
    _walk(root, root["properties"][CONFIG_KEY], document.get(CONFIG_KEY), (CONFIG_KEY,), found)
    return found


def _walk(root: dict[str, Any], schema: dict[str, Any], value: Any, path: KeyPath,
          found: list[UnknownKey]) -> None:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    branches = schema.get("anyOf")
    if branches:
        for branch in branches:  # the branch for this value's kind; another kind is the policy's to judge
            if _kind(value) == branch.get("type"):
                _walk(root, branch, value, path, found)
        return
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        patterns: dict[str, Any] = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            pattern = next((p for p in patterns if re.match(p, key)), None)
            if key in properties:
                _walk(root, properties[key], item, (*path, key), found)
            elif pattern is not None:
                _walk(root, patterns[pattern], item, (*path, key), found)
            elif isinstance(extra, dict):
                _walk(root, extra, item, (*path, key), found)
            elif extra is False:
                found.append(UnknownKey(path=(*path, key), allowed=tuple(properties)))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(root, schema["items"], item, (*path, i), found)


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "other"


def where(text: str, path: KeyPath) -> tuple[int, int] | None:
    """The 1-based line and column of the key at ``path`` in the YAML ``text`` (``None`` if it
    cannot be found there, e.g. in JSON text that YAML does not read the same way)."""
    try:
        node: Any = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return None
            if last:
                return match[0].start_mark.line + 1, match[0].start_mark.column + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return None
