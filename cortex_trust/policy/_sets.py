"""Policy sets: the Rego modules and the data document one engine is loaded with.

A policy set is built from the shipped defaults (``policies/``) and, in order, each
organization directory given with ``--policy-dir`` and each data file given with ``--data``:

* every ``*.rego`` file below a directory is a module whose identity is its path relative to
  that directory (``cortex/tier.rego``). A module whose relative path equals an earlier one
  **replaces** it (the documented way to override a default module; each replacement is listed
  in :attr:`PolicySet.overrides` so callers can say so); any other module is added.
  ``*_test.rego`` files are only loaded with ``include_tests=True`` (``cortex policy test``).
* ``data.yaml`` or ``data.json`` at a directory's root, then each ``--data`` file, is a JSON
  object merged at the root of ``data``: objects merge recursively, anything else (lists,
  strings, numbers) is replaced by the later file. Every key under ``cortex_config`` in each file
  must be one the policy contract knows, or an organization's own under ``cortex_config.x_<name>``
  (:mod:`cortex_trust.policy._data_keys`): a mistyped key is an error, never a default left in force.

Loading reads files and checks data; it does not parse Rego (that happens where the engine is
built, in a child process for organization code, because a hostile module can hang the parser).
Every problem is a :class:`~cortex_trust.errors.PolicyError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .._io import ReadRefused, read_bounded
from .._json import MAX_DEPTH, MAX_INT_DIGITS, load_json
from ..errors import PolicyError
from ._data_keys import CONFIG_KEY, EXTENSION_PREFIX, SCHEMA_PATH, UnknownKey, unknown_keys, where

__all__ = [
    "MAX_DATA_BYTES",
    "MAX_MODULE_BYTES",
    "PolicyModule",
    "PolicySet",
    "default_policy_dir",
    "load_policy_set",
]

#: Size caps: policy data and modules are configuration, not bulk data.
MAX_DATA_BYTES = 1024 * 1024
MAX_MODULE_BYTES = 1024 * 1024
_DATA_NAMES = ("data.yaml", "data.yml", "data.json")


@dataclass(frozen=True)
class PolicyModule:
    """One Rego module.

    ``name`` is the module's identity (its path relative to the directory it was loaded from,
    with ``/`` separators); ``path`` is where it came from, for messages; ``default`` is true
    when it comes from the shipped default policies.
    """

    name: str
    path: Path
    text: str
    default: bool = False

    @property
    def is_test(self) -> bool:
        """True for ``*_test.rego`` modules (tests are excluded from coverage)."""
        return self.name.endswith("_test.rego")


@dataclass(frozen=True)
class PolicySet:
    """The modules and merged data an engine is loaded with. Immutable; build with
    :func:`load_policy_set`.

    ``revision`` is ``sha256:<hex>`` over the sorted module names and texts and the canonical
    JSON of the data; ``has_custom`` is true when any module or data did not come from the
    shipped defaults (organization code, which the embedded engine evaluates in a child process).
    """

    modules: tuple[PolicyModule, ...]
    data: Mapping[str, Any]
    revision: str
    has_custom: bool
    #: Every module an organization directory replaced: ``(name, replaced path, new path)``.
    #: Replacing is by relative path, so a file meant to add rules (``cortex/revocation.rego``)
    #: can silently drop a default module; callers must show these to the user.
    overrides: tuple[tuple[str, Path, Path], ...] = ()

    def override_notices(self) -> list[str]:
        """One line per replaced module, for people (empty when nothing was replaced)."""
        return [f"policy module {name} from {new} replaces {old} (every rule of the replaced "
                f"module is gone; rename the file to add rules instead)"
                for name, old, new in self.overrides]

    @property
    def short_revision(self) -> str:
        """The first 12 hex digits of :attr:`revision` (for humans)."""
        return self.revision.removeprefix("sha256:")[:12]

    def data_json(self) -> str:
        """The data document as canonical JSON text (what engines are given)."""
        return _canonical_json(self.data)

    def module_path(self, name: str) -> Path | None:
        """The file a module name came from, or ``None`` if no module has that name."""
        for m in self.modules:
            if m.name == name:
                return m.path
        return None


def default_policy_dir() -> Path:
    """The directory of the shipped default policies.

    In an installed wheel they live in ``cortex_trust/_default_policies`` (pyproject
    force-includes ``policies/`` there); in a source checkout or editable install they are the
    repository's ``policies/``. The returned path may not exist if neither is present.
    """
    package_root = Path(__file__).resolve().parent.parent  # cortex_trust/ (this is policy/_sets.py)
    packaged = package_root / "_default_policies"
    if packaged.is_dir():
        return packaged
    return package_root.parent / "policies"


#: ``data.cortex_static`` holds what the embedded engine precomputes from the policy data
#: (policies/cortex/static.rego); no data file or module may define it.
RESERVED_DATA_KEY = "cortex_static"
_RESERVED_PACKAGE = re.compile(r"^\s*package\s+cortex_static\b", re.M)


def load_policy_set(
    policy_dirs: Sequence[str | os.PathLike[str]] = (),
    data_files: Sequence[str | os.PathLike[str]] = (),
    *,
    defaults: bool = True,
    include_tests: bool = False,
) -> PolicySet:
    """Load the defaults (unless ``defaults=False``), then each policy dir and data file in order.

    A directory given twice (or the default directory given explicitly) is loaded once.
    Raises :class:`PolicyError` for a missing directory or file, a directory with no modules
    and no data (a mistyped path must not silently drop rules), an unreadable or oversized
    file, invalid data (not an object, YAML aliases, non-JSON values), or an empty set.
    """
    modules: dict[str, PolicyModule] = {}
    overrides: list[tuple[str, Path, Path]] = []
    data: dict[str, Any] = {}
    has_custom = False
    seen: set[Path] = set()
    default_dir = default_policy_dir().resolve()

    dirs: list[tuple[Path, bool]] = []
    if defaults:
        if not default_dir.is_dir():
            raise PolicyError(f"the default policies are missing: {default_dir} is not a directory",
                              advice="reinstall cortex-trust, or pass --no-defaults with --policy-dir")
        dirs.append((default_dir, True))
    for d in policy_dirs:
        p = Path(d)
        if not p.is_dir():
            raise PolicyError(f"policy directory {p} does not exist or is not a directory",
                              advice="pass an existing directory of .rego files to --policy-dir")
        dirs.append((p, p.resolve() == default_dir))

    for directory, is_default in dirs:
        key = directory.resolve()
        if key in seen:
            continue
        seen.add(key)
        found = False
        for name, path in _rego_files(directory, include_tests=include_tests):
            if name in modules:
                overrides.append((name, modules[name].path, path))
            modules[name] = PolicyModule(name=name, path=path, text=_read_module(path),
                                         default=is_default)
            has_custom = has_custom or not is_default
            found = True
        for data_name in _DATA_NAMES:
            data_path = directory / data_name
            if data_path.is_file():
                _inside(data_path, key)
                _deep_merge(data, _load_data_file(data_path))
                has_custom = has_custom or not is_default
                found = True
        if not found and not _rego_files(directory, include_tests=True):
            # A mistyped directory must not silently drop an organization's rules.
            raise PolicyError(f"policy directory {directory} contains no .rego files and no "
                              "data.yaml or data.json",
                              advice="point --policy-dir at the directory that holds the modules")
    for f in data_files:
        _deep_merge(data, _load_data_file(Path(f)))
        has_custom = True

    if not modules:
        raise PolicyError("no Rego modules were loaded",
                          advice="pass a --policy-dir containing .rego files, or drop --no-defaults")
    ordered = tuple(sorted(modules.values(), key=lambda m: m.name))
    return PolicySet(modules=ordered, data=_freeze(data), revision=_revision(ordered, data),
                     has_custom=has_custom, overrides=tuple(overrides))


def _rego_files(directory: Path, *, include_tests: bool) -> list[tuple[str, Path]]:
    out = []
    root = directory.resolve()
    for path in sorted(directory.rglob("*.rego")):
        rel = path.relative_to(directory)
        # Hidden directories (.git, editor state) are never policy.
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        _inside(path, root)
        if path.name.endswith("_test.rego") and not include_tests:
            continue
        out.append((rel.as_posix(), path))
    return out


def _inside(path: Path, root: Path) -> None:
    """Refuse a file that resolves outside ``root`` (a symlink in a policy directory, e.g. from
    a pull request, must not make us read and echo another file of the machine)."""
    if not path.resolve().is_relative_to(root):
        raise PolicyError(f"{path} resolves to {path.resolve()}, outside the policy directory {root}",
                          advice="copy the file into the policy directory instead of linking it")


def _read_text(path: Path, *, what: str, max_bytes: int, too_large: str, unreadable: str,
               not_utf8: str) -> str:
    """``path`` as UTF-8 text of at most ``max_bytes`` (:func:`read_bounded`). Raises
    :class:`PolicyError` naming ``what`` the file is, with the advice given for each refusal."""
    try:
        raw = read_bounded(path, max_bytes=max_bytes)
    except ReadRefused as e:
        if e.kind == "too_large":
            size = f"{e.size} bytes" if e.size is not None else "larger than that"
            raise PolicyError(f"{path}: the {what} is {size}, above the {max_bytes}-byte cap",
                              advice=too_large) from None
        raise PolicyError(f"{path}: cannot read the {what}: {_refusal(e)}", advice=unreadable) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: the {what} is not UTF-8 text", advice=not_utf8) from None


def _read_module(path: Path) -> str:
    text = _read_text(path, what="module", max_bytes=MAX_MODULE_BYTES,
                      too_large="split the module or move bulk values into a data file",
                      unreadable="check the path and its permissions", not_utf8="save the file as UTF-8")
    if _RESERVED_PACKAGE.search(text):
        raise PolicyError(f"{path}: package {RESERVED_DATA_KEY} is reserved: the embedded engine "
                          "puts the values it precomputes from the policy data there",
                          advice="use another package name")
    return text


class _DataLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without aliases (billion-laughs) and without duplicate keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.MarkedYAMLError("while reading policy data", None,
                                       "YAML aliases are not allowed in policy data",
                                       event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError("while reading policy data", None,
                                           f"keys must be strings, got {key!r}", key_node.start_mark)
            if key in keys:
                raise yaml.MarkedYAMLError("while reading policy data", None,
                                           f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _refusal(e: ReadRefused) -> str:
    """What :func:`read_bounded` refused, in the system's words where it has them."""
    if e.kind in ("directory", "not_regular"):
        return "not a regular file (a directory, a device or a FIFO)"
    return e.detail or e.kind


def _load_data_file(path: Path) -> dict[str, Any]:
    text = _read_text(path, what="data file", max_bytes=MAX_DATA_BYTES,
                      too_large="policy data is configuration; keep it small",
                      unreadable="check the path given to --data", not_utf8="save it as UTF-8")
    if path.suffix.lower() == ".json":
        try:
            value = load_json(text)
        except (json.JSONDecodeError, ValueError) as e:
            where = f":{e.lineno}:{e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            msg = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            raise PolicyError(f"{path}{where}: invalid JSON: {msg}",
                              advice="fix the JSON syntax at that position") from None
    else:
        try:
            value = yaml.load(text, Loader=_DataLoader)  # noqa: S506 - _DataLoader is a SafeLoader
        except (RecursionError, ValueError):
            # Nesting deeper than the stack, or an integer beyond Python's int-to-str limit.
            raise PolicyError(f"{path}: policy data nested too deeply or with a number too large",
                              advice=f"keep policy data within {MAX_DEPTH} levels and numbers "
                                     f"within {MAX_INT_DIGITS} digits") from None
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise PolicyError(f"{path}{where}: invalid policy data: {e.problem or e.context}",
                              advice="write plain YAML mappings, lists and scalars") from None
        except yaml.YAMLError as e:
            raise PolicyError(f"{path}: invalid YAML: {e}", advice="fix the YAML syntax") from None
    if not isinstance(value, dict):
        raise PolicyError(f"{path}: the data file must hold an object (mapping) at the top, "
                          f"got {type(value).__name__}",
                          advice="write `key: value` pairs; they become data.<key> in Rego")
    _check_json_value(value, path, "")
    if RESERVED_DATA_KEY in value:
        raise PolicyError(f"{path}: `{RESERVED_DATA_KEY}` is reserved: the embedded engine puts the "
                          "values it precomputes from the policy data there",
                          advice=f"remove the `{RESERVED_DATA_KEY}` key (or rename it)")
    unknown = unknown_keys(value)
    if unknown:
        raise _unknown_keys_error(path, text, unknown)
    return value


def _unknown_keys_error(path: Path, text: str, unknown: Sequence[UnknownKey]) -> PolicyError:
    """One error for every unknown ``cortex_config`` key of a data file, each with its position
    and a "did you mean"."""
    def at(u: UnknownKey) -> str:
        pos = where(text, u.path)
        return f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)

    if len(unknown) == 1:
        message, advice = f"{at(unknown[0])}: unknown policy data key `{unknown[0].dotted}`", unknown[0].fix
    else:
        message = "unknown policy data keys: " + "; ".join(f"{at(u)}: `{u.dotted}` ({u.suggestion})"
                                                           for u in unknown)
        advice = (f"correct or remove each key; keys of your own go under {CONFIG_KEY}.{EXTENSION_PREFIX}<name> "
                  "(docs/policy-contract.md §5)")
    if path.resolve().is_relative_to(default_policy_dir().resolve()):
        advice += f"; a key added to the shipped defaults must also be added to {SCHEMA_PATH}"
    return PolicyError(message, advice=advice)


def _check_json_value(value: Any, path: Path, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise PolicyError(f"{path}: {where}: nested more than {MAX_DEPTH} levels deep",
                          advice="policy data is configuration; flatten it")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_INT_DIGITS:
            raise PolicyError(f"{path}: {where or '(root)'}: an integer of more than "
                              f"{MAX_INT_DIGITS} digits", advice="use a smaller number")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PolicyError(f"{path}: {where or '(root)'}: {value} is not a JSON number",
                              advice="use a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_value(item, path, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise PolicyError(f"{path}: {where or '(root)'}: key {k!r} is not a string",
                                  advice="quote the key")
            _check_json_value(v, path, f"{where}.{k}" if where else k, depth + 1)
        return
    raise PolicyError(f"{path}: {where or '(root)'}: a {type(value).__name__} is not a JSON value",
                      advice="quote dates and times (\"2026-01-01\"); policy data is plain JSON")


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Merge ``new`` into ``into``: objects recursively, anything else replaced."""
    for k, v in new.items():
        old = into.get(k)
        if isinstance(old, dict) and isinstance(v, dict):
            _deep_merge(old, v)
        else:
            into[k] = _copy(v)


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def _freeze(data: dict[str, Any]) -> Mapping[str, Any]:
    # Read-only at the top; the canonical JSON (revision and engines) is computed from it.
    return MappingProxyType(data)


def _canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _revision(modules: Sequence[PolicyModule], data: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    for m in sorted(modules, key=lambda m: m.name):
        for part in (m.name, m.text):
            b = part.encode("utf-8")
            h.update(len(b).to_bytes(8, "big"))
            h.update(b)
    d = _canonical_json(data).encode("utf-8")
    h.update(len(d).to_bytes(8, "big"))
    h.update(d)
    return "sha256:" + h.hexdigest()
