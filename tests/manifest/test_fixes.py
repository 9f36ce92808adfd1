"""The linter points at the real problem and its fix is right: applying the suggested fix and
linting again passes. The base is the specification's example manifest
(``examples/plugins/spec-example/manifest.yaml``), which must lint clean as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cortex_trust.errors import ManifestError, ManifestProblem
from cortex_trust.manifest import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
SPEC_EXAMPLE = ROOT / "examples" / "plugins" / "spec-example" / "manifest.yaml"

# The specification's example without its comments; line numbers matter (cases replace a line).
BASE = """\
name: weather-forecast
version: "1.2.0"
description: Weather forecasts for a location.
author: "Ada Lovelace <ada@example.org>"
license: MIT
runtime:
  type: docker
  image: org/plugin:tag
capabilities:
  - name: forecast
    endpoint: /forecast
    method: GET
trust:
  min_cortex_version: "8.0"
  sandbox: true
  network: true
  filesystem: false
"""


def problems_of(text: str) -> list[ManifestProblem]:
    try:
        parse_manifest(text, source="m.yaml")
    except ManifestError as e:
        return e.problems
    return []


def suggested_value(fix: str, key: str) -> str:
    """The YAML value a fix proposes for ``key``: what follows the last ``key: `` (a quoted
    scalar whole, otherwise up to a parenthesised remark), else a ``did you mean X?``, else
    what follows the fix's last ``: ``."""
    found = list(re.finditer(rf"(?:^|[\s(]){re.escape(key)}: ", fix))
    if found:
        rest = fix[found[-1].end():]
    else:
        meant = re.search(r"did you mean [`']?([^`'?]+)[`']?\?", fix)
        if meant:
            return meant.group(1)
        assert ": " in fix, f"the fix proposes no value: {fix!r}"
        rest = fix.rsplit(": ", 1)[1]
    quoted = re.match(r'"(?:[^"\\]|\\.)*"', rest)
    if quoted:
        return quoted.group(0)
    return rest.split(" (", 1)[0].strip()


def apply_fix(text: str, problem: ManifestProblem) -> str:
    """``text`` with ``problem``'s suggested fix applied where the problem points."""
    lines = text.splitlines()
    key = problem.field.rsplit(".", 1)[-1]
    if problem.problem.startswith("missing required field"):
        assert "." not in problem.field, "only top-level fields are appended"
        return text + f"{key}: {suggested_value(problem.fix, key)}\n"
    line = lines[problem.line - 1]
    if problem.problem.startswith("unknown field"):
        meant = re.fullmatch(r"did you mean `([a-z_]+)`\?", problem.fix)
        assert meant, problem.fix
        lines[problem.line - 1] = line.replace(f"{key}:", f"{meant.group(1)}:", 1)
    else:
        head = line.split(":", 1)[0]
        lines[problem.line - 1] = f"{head}: {suggested_value(problem.fix, key)}"
    return "\n".join(lines) + "\n"


def test_base_is_the_specification_example_and_lints_clean() -> None:
    written = "".join(line + "\n" for line in SPEC_EXAMPLE.read_text().splitlines()
                      if not line.startswith("#"))
    assert written == BASE
    m = parse_manifest(BASE)
    assert m.trust.min_cortex_version == "8.0.0"
    assert m.runtime.image == "org/plugin:tag"


CASES = [
    # name
    (1, "name: Weather_Forecast", "name"),
    (1, "name: wеather", "name"),  # Cyrillic "е"
    (1, "name: " + "a" * 70, "name"),
    (1, 'name: ""', "name"),
    (1, "name: yes", "name"),
    (1, "name: 2024-01-01", "name"),
    # version
    (2, "version: 1.10", "version"),
    (2, "version: 1", "version"),
    (2, 'version: "1.2"', "version"),
    (2, 'version: "v1.2.0"', "version"),
    (2, 'version: "01.2.3"', "version"),
    (2, 'version: "latest"', "version"),
    (2, "version:", "version"),
    # description
    (3, "description:", "description"),
    # author: each way of getting `Name <email>` wrong
    (4, "author: Name <email>", "author"),
    (4, "author: Ada", "author"),
    (4, "author: ada@example.org", "author"),
    (4, 'author: "<ada@example.org>"', "author"),
    (4, 'author: "Ada <ada>"', "author"),
    (4, 'author: "Ada <a@b>"', "author"),
    (4, 'author: "Ada <>"', "author"),
    (4, 'author: "Ada<ada@example.org>"', "author"),
    (4, 'author: "Ada <ada@example.org"', "author"),
    (4, 'author: "Ada <ada@example.org> (work)"', "author"),
    (4, 'author: " Ada <ada@example.org>"', "author"),
    (4, 'author: ""', "author"),
    # license
    (5, "license: Apache2", "license"),
    (5, "license: mit", "license"),
    (5, "license: Apache 2.0", "license"),
    # runtime
    (7, "  type: wasm", "runtime.type"),
    (7, "  type: Docker", "runtime.type"),
    (7, "  type: podman", "runtime.type"),
    (8, "  image: https://org/plugin:tag", "runtime.image"),
    (8, "  image: org/Plugin:tag", "runtime.image"),
    (8, f"  image: org/plugin@sha256:{'AB' * 32}", "runtime.image"),
    # capabilities: the one entry is invalid, and only its field is reported
    (10, "  - name: Forecast!", "capabilities[0].name"),
    (11, "    endpoint: forecast?x=1", "capabilities[0].endpoint"),
    (11, "    endpoint: forecast", "capabilities[0].endpoint"),
    (11, "    endpoint: /forecast?x=1#top", "capabilities[0].endpoint"),
    (11, "    endpoint: /a/../forecast", "capabilities[0].endpoint"),
    (11, '    endpoint: "/fore cast"', "capabilities[0].endpoint"),
    (11, "    endpoint: //forecast", "capabilities[0].endpoint"),
    (11, "    endpoint: /fore<cast>", "capabilities[0].endpoint"),
    (11, "    endpoint: /café", "capabilities[0].endpoint"),
    (12, "    method: get", "capabilities[0].method"),
    (12, "    method: PSOT", "capabilities[0].method"),
    # trust
    (14, "  min_cortex_version: 8.10", "trust.min_cortex_version"),
    (14, "  min_cortex_version: 8", "trust.min_cortex_version"),
    (14, "  min_cortex_version: 8.0.0", "trust.min_cortex_version"),  # a string: valid
    (14, '  min_cortex_version: "v8.0"', "trust.min_cortex_version"),
    (14, '  min_cortex_version: ">=8.0"', "trust.min_cortex_version"),
    (14, '  min_cortex_version: "08.1"', "trust.min_cortex_version"),
    (14, '  min_cortex_version: "latest"', "trust.min_cortex_version"),
    (15, "  sandbox: yes", "trust.sandbox"),
    (16, '  network: "true"', "trust.network"),
    (16, "  network: 1", "trust.network"),
    (16, "  netwrok: true", "trust.netwrok"),
    (17, "  filesystem: ~", "trust.filesystem"),
]


@pytest.mark.parametrize("line, text, field", CASES, ids=[f"{c[0]}:{c[1].strip()}" for c in CASES])
def test_the_suggested_fix_passes(line: int, text: str, field: str) -> None:
    lines = BASE.splitlines()
    lines[line - 1] = text
    broken = "\n".join(lines) + "\n"
    problems = problems_of(broken)
    if text == "  min_cortex_version: 8.0.0":
        assert problems == []
        return
    # The problem is reported where it is, and nothing else is (no "needs at least one entry").
    assert [p.field for p in problems] == [field], problems
    (problem,) = problems
    assert problem.line == line
    fixed = apply_fix(broken, problem)
    assert problems_of(fixed) == [], (problem, fixed)


@pytest.mark.parametrize("missing", [1, 2, 3, 4, 5])
def test_the_fix_for_a_missing_field_passes(missing: int) -> None:
    lines = BASE.splitlines()
    del lines[missing - 1]
    (problem,) = problems_of("\n".join(lines) + "\n")
    assert problem.problem.startswith("missing required field")
    assert problems_of(apply_fix("\n".join(lines) + "\n", problem)) == []


def test_duplicate_capability_names_get_a_free_name() -> None:
    broken = BASE.replace("trust:\n", "  - name: forecast\n    endpoint: /daily\n    method: GET\n"
                                      "  - name: forecast\n    endpoint: /hourly\n    method: GET\ntrust:\n")
    problems = problems_of(broken)
    assert [p.field for p in problems] == ["capabilities[1].name", "capabilities[2].name"]
    for problem in reversed(problems):  # one at a time, as a reader would
        broken = apply_fix(broken, problem)
    assert problems_of(broken) == []


def test_the_author_message_says_what_is_wrong() -> None:
    (p,) = problems_of(BASE.replace('"Ada Lovelace <ada@example.org>"', '"Name <email>"'))
    assert p.problem == ("author 'Name <email>': the email part 'email' is not an email address "
                         "(it has no '@')")
    assert p.fix == 'write your real address, e.g. author: "Name <you@example.org>"'


def test_an_invalid_only_capability_is_not_reported_as_missing() -> None:
    (p,) = problems_of(BASE.replace("endpoint: /forecast", "endpoint: forecast?x=1"))
    assert p.field == "capabilities[0].endpoint"
    assert p.problem == "endpoint 'forecast?x=1' is not an absolute path and contains a query or fragment"
    assert p.fix.startswith("write endpoint: /forecast ")


def test_cli_lint_fixes_the_issue_scenario(tmp_path: Path) -> None:
    """Through the real command: the specification's example with the two mistakes of the
    issue (a template author, an endpoint with a query) lints with exit 2; applying each
    suggested fix of the JSON output makes it lint clean with exit 0."""
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(SPEC_EXAMPLE.read_text()
                        .replace('"Ada Lovelace <ada@example.org>"', '"Name <email>"')
                        .replace("endpoint: /forecast", "endpoint: forecast?x=1"))

    def lint() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", "manifest", "lint", "--format", "json",
                               str(manifest)], capture_output=True, text=True, cwd=ROOT, check=False)

    first = lint()
    assert first.returncode == 2, first.stderr
    found = json.loads(first.stdout)["results"][0]["problems"]
    assert [p["field"] for p in found] == ["author", "capabilities[0].endpoint"]
    text = manifest.read_text()
    for p in found:
        text = apply_fix(text, ManifestProblem(p["path"], p["line"], p["column"], p["problem"],
                                               p["fix"], p["field"]))
    manifest.write_text(text)
    second = lint()
    assert second.returncode == 0, second.stdout
    assert json.loads(second.stdout)["valid"] is True
