"""The Rego layout normaliser: what it changes, what it never touches, and that it never writes
a module whose formatted text would not mean the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortex_trust.engine import _fmt, format_policy_paths, format_rego


def test_strings_and_comments_do_not_open_a_raw_string() -> None:
    text = ('package a\n\nx := "a ` and a # "   \n# a ` in a comment  \n'
            'y := `raw  \n  two  spaces stay  \n`  \n')
    assert format_rego(text) == ('package a\n\nx := "a ` and a # "\n# a ` in a comment\n'
                                 'y := `raw  \n  two  spaces stay  \n`  \n')


def test_ambiguous_indentation_is_left_as_written() -> None:
    text = "package a\n\nf(x) := y if {\n  y := x\n      z := 1\n\t  w := 2\n    \tv := 3\n}\n"
    assert format_rego(text) == text.replace("    \t", "\t\t")


def test_blank_lines_package_and_imports() -> None:
    text = "\n\npackage a\nimport rego.v1\n# why\nimport data.b\nx := 1\n\n\n\ny := 2"
    want = "package a\n\nimport rego.v1\n# why\nimport data.b\n\nx := 1\n\ny := 2\n"
    assert format_rego(text) == want
    assert format_rego(want) == want


def test_a_formatting_that_would_not_parse_is_never_written(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    module = tmp_path / "a.rego"
    module.write_text("package a\n\nx := 1   \n", encoding="utf-8")
    monkeypatch.setattr(_fmt, "format_rego", lambda text: text.replace("x := 1", "x := "))
    results, problems = format_policy_paths([tmp_path], write=True)
    assert results == [] and len(problems) == 1
    assert "the formatted module does not parse" in problems[0].message
    assert module.read_text(encoding="utf-8") == "package a\n\nx := 1   \n"


def test_a_formatting_that_would_change_data_is_never_written(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    module = tmp_path / "a.rego"
    module.write_text("package a\n\nx := 1   \n", encoding="utf-8")
    monkeypatch.setattr(_fmt, "format_rego", lambda text: "package a\n\nx := 2\n")
    results, problems = format_policy_paths([module], write=True)
    assert results == [] and "would change what the module decides" in problems[0].message
    assert module.read_text(encoding="utf-8") == "package a\n\nx := 1   \n"
