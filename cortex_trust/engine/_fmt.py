"""``cortex policy fmt``: a conservative layout normaliser for Rego v1 modules.

The normaliser only changes whitespace between tokens, never inside a string:

* leading indentation made of tabs and runs of four spaces becomes one tab per level (as
  ``opa fmt`` indents); any other indentation is left as written;
* trailing spaces and tabs are removed;
* runs of blank lines become one blank line, leading blank lines are removed, and the module
  ends with exactly one newline;
* a blank line follows the ``package`` line and the import block.

A line that starts inside a raw string (backticks) is kept byte for byte, and a line that ends
inside one keeps its trailing whitespace. Backticks and quotes inside comments or ordinary
strings do not open a raw string.

Formatting is checked before anything is written: the formatted module must parse as Rego v1,
declare the same packages, and give the same value for ``data`` on an empty input as the
original does; otherwise the file is left unchanged and a problem is reported. Files are
replaced atomically (a temporary file in the same directory, renamed over the original, with
the original's mode).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CortexTrustError, PolicyError
from ._check import PolicyProblem, _problem

__all__ = ["FormatResult", "format_policy_paths", "format_rego"]

_INDENT = re.compile(r"^(?:\t| {4})+(?=\S)")
_PACKAGE = re.compile(r"^package\s")
_IMPORT = re.compile(r"^import\s")


@dataclass(frozen=True)
class FormatResult:
    """One module: ``formatted`` is its normalised text, equal to ``original`` when it is
    already formatted."""

    path: Path
    original: str
    formatted: str

    @property
    def changed(self) -> bool:
        return self.original != self.formatted


def _line_states(lines: Sequence[str]) -> list[tuple[bool, bool]]:
    """For each line: (it starts inside a raw string, it ends inside a raw string)."""
    states: list[tuple[bool, bool]] = []
    in_raw = False
    for line in lines:
        start = in_raw
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if in_raw:
                if c == "`":
                    in_raw = False
            elif c == "#":
                break
            elif c == "`":
                in_raw = True
            elif c == '"':
                i += 1
                while i < n and line[i] != '"':
                    i += 2 if line[i] == "\\" else 1
            i += 1
        states.append((start, in_raw))
    return states


def format_rego(text: str) -> str:
    """``text`` with its layout normalised (see the module's description); idempotent."""
    lines = text.split("\n")
    states = _line_states(lines)
    out: list[str] = []
    kept: list[bool] = []  # the line is code (not inside a raw string)
    for line, (starts_raw, ends_raw) in zip(lines, states, strict=True):
        if starts_raw:
            out.append(line)
            kept.append(False)
            continue
        if not ends_raw:
            line = line.rstrip(" \t")
        m = _INDENT.match(line)
        if m:
            line = "\t" * (m.group().count("\t") + m.group().count(" ") // 4) + line[m.end():]
        if line == "" and (not out or (kept[-1] and out[-1] == "")):
            continue
        out.append(line)
        kept.append(True)
    while out and kept[-1] and out[-1] == "":
        out.pop()
        kept.pop()
    _blank_after(out, kept)
    return "\n".join(out) + "\n" if out else ""


def _blank_after(out: list[str], kept: list[bool]) -> None:
    """Insert a blank line after the ``package`` line and after the last import."""
    package = next((i for i, line in enumerate(out) if kept[i] and _PACKAGE.match(line)), None)
    if package is None:
        return
    last = package
    for i in range(package + 1, len(out)):
        if not kept[i]:
            break
        line = out[i]
        if _IMPORT.match(line):
            last = i
        elif line and not line.startswith("#"):
            break
    for i in sorted({package, last}, reverse=True):
        if i + 1 < len(out) and out[i + 1] != "":
            out.insert(i + 1, "")
            kept.insert(i + 1, True)


def _meaning(name: str, text: str) -> tuple[list[str], str]:
    """The packages ``text`` declares and its ``data`` on an empty input (or the error)."""
    import regorus

    engine = regorus.Engine()
    engine.add_policy(name, text)
    packages = sorted(engine.get_packages())
    engine.set_input_json("{}")
    try:
        value = json.dumps(json.loads(engine.eval_query_as_json("data")), sort_keys=True)
    except RuntimeError as e:
        value = f"error: {e}"
    return packages, value


def _verify(path: Path, original: str, formatted: str) -> None:
    """Raise a PolicyError unless ``formatted`` means what ``original`` means."""
    from ._regorus import clean_message

    try:
        before = _meaning(path.name, original)
    except RuntimeError as e:
        raise PolicyError(clean_message(str(e), paths={path.name: str(path)}),
                          advice="fix the Rego (v1 syntax: `if` before a body, `contains` for sets)") from None
    try:
        after = _meaning(path.name, formatted)
    except RuntimeError as e:
        raise PolicyError(f"{path}: the formatted module does not parse ({e}); the file is left unchanged",
                          advice="format this module by hand") from None
    if before != after:
        raise PolicyError(f"{path}: formatting would change what the module decides; the file is left unchanged",
                          advice="format this module by hand")


def _rego_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.rego") if f.is_file()
                                and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            files.append(p)
    return files


def format_policy_paths(paths: Sequence[Path], *, write: bool) -> tuple[list[FormatResult], list[PolicyProblem]]:
    """The formatting of every ``.rego`` module in ``paths`` (directories or single files) and the
    problems found; with ``write``, each verified changed module is replaced atomically. A module
    with a problem is never written."""
    from ..policy._sets import _read_module

    results: list[FormatResult] = []
    problems: list[PolicyProblem] = []
    for f in _rego_files(paths):
        if not f.exists():
            problems.append(PolicyProblem(str(f), 0, 0, "no such file or directory", "check the path"))
            continue
        if f.suffix != ".rego":
            problems.append(PolicyProblem(str(f), 0, 0, "not a Rego module (.rego)", "pass .rego files or directories"))
            continue
        try:
            original = _read_module(f)
            formatted = format_rego(original)
            if formatted != original:
                _verify(f, original, formatted)
            else:
                from ._check import _parse

                _parse(f)
        except CortexTrustError as e:
            problems.append(_problem(e, str(f)))
            continue
        result = FormatResult(f, original, formatted)
        if write and result.changed:
            try:
                _replace(f, formatted)
            except OSError as e:
                problems.append(PolicyProblem(str(f), 0, 0, f"cannot write: {e.strerror}",
                                              "check the file's and its directory's permissions"))
                continue
        results.append(result)
    return results, problems


def _replace(path: Path, text: str) -> None:
    """Write ``text`` over ``path`` atomically, keeping its mode."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
