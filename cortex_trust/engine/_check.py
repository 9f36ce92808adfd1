"""``cortex policy check``: every problem in policy files, each at ``file:line:col``.

Checks, file by file so one broken file never hides another's problems:

* each ``.rego`` module parses as Rego v1 (regorus' v1 parser: ``if``/``contains`` required,
  no deprecated built-ins);
* each data file (``data.yaml``/``data.json`` at a directory's root, each ``--data`` file, or a
  ``.yaml``/``.json`` file named on the command line) loads, holds JSON values only and has no
  key under ``cortex_config`` that ``policy-data.schema.json`` does not know;
* each declarative test-case file (``*_test.yaml``) is a valid case document;
* then, only when every file passed, the directories load together over the defaults (a data
  value that would shadow a rule, a module that clashes with another).

Nothing is evaluated: checking never runs organization code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CortexTrustError, PolicyError

__all__ = ["PolicyProblem", "check_policy_paths"]

_WHERE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<message>.*)$", re.S)
_DATA_NAMES = ("data.yaml", "data.yml", "data.json")


@dataclass(frozen=True)
class PolicyProblem:
    """One problem: ``line``/``col`` are 0 when the problem has no position in the file."""

    file: str
    line: int
    col: int
    message: str
    advice: str | None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.message}"


def check_policy_paths(paths: Sequence[Path], data_files: Sequence[Path] = (), *,
                       defaults: bool = True) -> list[PolicyProblem]:
    """Every problem in ``paths`` (directories of policy files, or single files) and
    ``data_files``; empty when all is well. Never raises for a problem in a checked file."""
    from ._cases import load_cases

    problems: list[PolicyProblem] = []
    dirs = [p for p in paths if p.is_dir()]
    files: list[Path] = [p for p in paths if not p.is_dir()]
    for d in dirs:
        files.extend(sorted(f for f in d.rglob("*") if f.is_file() and _checked(f, d)))
    files.extend(data_files)
    for f in files:
        if not f.exists():
            problems.append(PolicyProblem(str(f), 0, 0, "no such file or directory", "check the path"))
            continue
        try:
            if f.suffix == ".rego":
                _parse(f)
            elif f.name.endswith(("_test.yaml", "_test.yml")):
                load_cases(f)
            elif f.suffix in (".yaml", ".yml", ".json"):
                from ..policy._sets import _load_data_file

                _load_data_file(f)
        except CortexTrustError as e:
            problems.append(_problem(e, str(f)))
    if not problems and (dirs or data_files):
        from ..policy import load_policy_set
        from ._regorus import Prepared

        try:
            ps = load_policy_set(dirs, data_files, defaults=defaults, include_tests=True)
            Prepared([(m.name, m.text) for m in ps.modules], ps.data_json(),
                     paths={m.name: str(m.path) for m in ps.modules})
        except CortexTrustError as e:
            problems.append(_problem(e, str(dirs[0] if dirs else data_files[0])))
    return problems


def _checked(f: Path, root: Path) -> bool:
    rel = f.relative_to(root)
    if any(p.startswith(".") for p in rel.parts):
        return False
    return f.suffix == ".rego" or f.name.endswith(("_test.yaml", "_test.yml")) \
        or (len(rel.parts) == 1 and f.name in _DATA_NAMES)


def _parse(path: Path) -> None:
    import regorus

    from ..policy._sets import _read_module
    from ._regorus import clean_message

    text = _read_module(path)
    try:
        regorus.Engine().add_policy(path.name, text)
    except RuntimeError as e:
        raise PolicyError(clean_message(str(e), paths={path.name: str(path)}),
                          advice="fix the Rego (v1 syntax: `if` before a body, `contains` for sets)") from None


def _problem(e: CortexTrustError, file: str) -> PolicyProblem:
    m = _WHERE.match(e.message)
    if m:
        return PolicyProblem(m["file"], int(m["line"]), int(m["col"]), m["message"], e.advice)
    message = e.message.removeprefix(f"{file}: ")
    return PolicyProblem(file, 0, 0, message, e.advice)
