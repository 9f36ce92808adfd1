"""The ``cortex`` command tree converted lazily (cli/_lazy.py) behaves as Typer's own conversion.

Typer's conversion (``typer.main.get_command``, what ``CliRunner`` uses) is the reference: every
help page, every "no such command" message and every group invoked without a command must read
the same from the lazy tree that :func:`cli.main.main` runs. And the lazy tree must convert only
the commands a run needs.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
import typer

import cli._lazy
from cli._lazy import LazyGroup, lazy_command
from cli.main import app


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of Typer's own conversion, groups included (the root is ``()``)."""
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _paths(sub, (*prefix, name))


EAGER = typer.main.get_command(app)
PATHS = list(_paths(EAGER))


def _run(command: Any, args: list[str]) -> tuple[str, str]:
    """stdout and the error message of one in-process run (as :func:`cli.main.main` runs it)."""
    out = io.StringIO()
    error = ""
    with contextlib.redirect_stdout(out):
        try:
            command.main(args=args, prog_name="cortex", standalone_mode=False)
        except typer.exceptions.TyperException as e:  # usage errors, shown by main()
            error = f"{type(e).__name__}: {e.format_message()}"
    return out.getvalue(), error


def test_every_command_is_reachable() -> None:
    assert len(PATHS) > 40 and ("plugin", "call") in PATHS and ("registry", "token", "create") in PATHS


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "cortex")
def test_help_pages_read_as_typer_renders_them(path: tuple[str, ...]) -> None:
    lazy, eager = _run(lazy_command(app), [*path, "--help"]), _run(EAGER, [*path, "--help"])
    assert lazy == eager
    assert lazy[0].startswith("Usage: cortex") and lazy[1] == ""


@pytest.mark.parametrize("args", [["plugin"], ["registry", "token"], ["plugin", "instal"], ["plugn"],
                                  ["plugin", "call"], ["manifest", "lint", "--nope"]],
                         ids=" ".join)
def test_usage_errors_read_as_typer_renders_them(args: list[str]) -> None:
    lazy, eager = _run(lazy_command(app), args), _run(EAGER, args)
    assert lazy == eager
    assert lazy[1], "a usage error was expected"


def test_typo_suggests_the_command() -> None:
    _, error = _run(lazy_command(app), ["plugin", "instal"])
    assert "No such command 'instal'. Did you mean 'install'" in error


def test_only_the_command_run_is_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    converted: list[str] = []
    real = cli._lazy.get_command_from_info

    def counting(info: Any, **kwargs: Any) -> Any:
        converted.append(info.name or info.callback.__name__)
        return real(info, **kwargs)

    monkeypatch.setattr(cli._lazy, "get_command_from_info", counting)
    root = lazy_command(app)
    assert isinstance(root, LazyGroup)
    _run(root, ["--help"])
    _run(lazy_command(app), ["plugin", "--help"])
    assert converted == []
    _run(lazy_command(app), ["plugin", "call", "--help"])
    assert converted == ["call"]


def test_commands_added_to_a_lazy_group_are_listed_and_run() -> None:
    ran: list[str] = []
    extra = typer.core.TyperCommand(name="extra", help="An extra command.", callback=lambda: ran.append("extra"))
    root = lazy_command(app)
    root.add_command(extra)
    assert root.list_commands(None)[-1] == "extra"  # type: ignore[arg-type]
    out, error = _run(root, ["--help"])
    assert "extra     An extra command." in out and error == ""
    _run(root, ["extra"])
    assert ran == ["extra"]
    del root.commands["extra"]
    assert "extra" not in root.list_commands(None)  # type: ignore[arg-type]
