"""The ``cortex`` Typer app as a Click command tree converted one command at a time.

Typer turns a whole app into Click objects before it runs anything: every command's signature
and annotations, in every group. :func:`lazy_command` builds the same tree lazily: a group
converts a subcommand only when it is run, resolved or shown on its own. A group's help page
lists its commands from their registrations (name, help, ``hidden``, ``deprecated``), without
converting their parameters, so every help page reads exactly as Typer would render it
(tests/cli/test_lazy.py compares every page of the lazy tree with Typer's own conversion).

Registration is unchanged: commands and groups are added with ``app.command()`` and
``app.add_typer()``. A group declared with a ``cls`` of its own that is a ``TyperGroup`` keeps its
class (children lazy); any other ``cls`` is converted by Typer as usual.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info, solve_typer_info_defaults
from typer.models import CommandInfo, TyperInfo

__all__ = ["LazyGroup", "lazy_command"]


@dataclass(frozen=True)
class _Settings:
    """What Typer passes from the root app to every command it converts."""

    pretty_exceptions_short: bool
    rich_markup_mode: Any
    suggest_commands: bool


class _Commands(MutableMapping[str, Any]):
    """A group's subcommands by name, in registration order (commands, then groups, as Typer
    orders them); each converted on first access."""

    def __init__(self, app: typer.Typer, settings: _Settings) -> None:
        self._settings = settings
        self._make: dict[str, Callable[[], Any]] = {}
        self._summary: dict[str, Callable[[], Any]] = {}
        self._done: dict[str, Any] = {}
        for info in app.registered_commands:
            name = info.name or get_command_name(info.callback.__name__)  # type: ignore[union-attr]
            self._make[name] = partial(_command, info, settings)
            self._summary[name] = partial(_summary, info, name, settings)
        for group in app.registered_groups:
            group_name = solve_typer_info_defaults(group).name
            if not group_name:
                raise ValueError("a group added without a name cannot be loaded lazily")
            self._make[group_name] = self._summary[group_name] = partial(_group, group, settings)

    def __getitem__(self, name: str) -> Any:
        if name not in self._done:
            self._done[name] = self._make[name]()
        return self._done[name]

    def summary(self, name: str) -> Any:
        """A command object carrying what a help listing shows of ``name`` (its short help,
        ``hidden``, ``deprecated``), without its parameters; the command itself once converted."""
        if name in self._done:
            return self._done[name]
        return self._summary[name]()

    def __setitem__(self, name: str, command: Any) -> None:
        self._done[name] = command
        self._make.setdefault(name, partial(_same, command))
        self._summary.setdefault(name, partial(_same, command))

    def __delitem__(self, name: str) -> None:
        del self._make[name], self._summary[name]
        self._done.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._make  # without converting it (Mapping's default would)

    def __iter__(self) -> Iterator[str]:
        return iter(self._make)

    def __len__(self) -> int:
        return len(self._make)


class LazyGroup(TyperGroup):
    """A :class:`typer.core.TyperGroup` whose subcommands are converted when first needed."""

    commands: _Commands
    #: Set while the help page lists the subcommands: they are shown from their summaries.
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        """Subcommand names in registration order (without converting them)."""
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Typer's listing of subcommands, made from their summaries."""
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The subcommand ``cmd_name``, converted now (only its summary while listing them)."""
        if cmd_name not in self.commands:
            return None
        if self._listing:
            return self.commands.summary(cmd_name)
        return self.commands[cmd_name]

    def get_help_option(self, ctx: Any) -> Any:
        """Typer's ``--help``, defaulting to ``False``: a group whose ``--help`` is not given
        (``cortex plugin --help`` parses the root's) then needs no value coercion, which
        Typer would otherwise set up with pydantic for the missing value."""
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


def _same(command: Any) -> Any:
    return command


def _settings(app: typer.Typer) -> _Settings:
    return _Settings(pretty_exceptions_short=app.pretty_exceptions_short,
                     rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands)


def _command(info: CommandInfo, settings: _Settings) -> Any:
    return get_command_from_info(info, pretty_exceptions_short=settings.pretty_exceptions_short,
                                 rich_markup_mode=settings.rich_markup_mode)


def _summary(info: CommandInfo, name: str, settings: _Settings) -> Any:
    """What Typer's conversion of ``info`` shows in a listing, without parameters."""
    doc = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
    cls = info.cls or TyperCommand
    return cls(name=name, help=doc, short_help=info.short_help, hidden=info.hidden,
               deprecated=info.deprecated, rich_markup_mode=settings.rich_markup_mode,
               rich_help_panel=info.rich_help_panel)


def _group(info: TyperInfo, settings: _Settings) -> TyperGroup:
    """The group ``info`` describes, as Typer converts it but with lazily converted children."""
    app = info.typer_instance
    assert app is not None, "a group needs a Typer instance"
    declared = solve_typer_info_defaults(info).cls
    if declared in (None, TyperGroup, LazyGroup):
        lazy_cls: type[LazyGroup] = LazyGroup
    elif isinstance(declared, type) and issubclass(declared, TyperGroup):
        # A group class of its own (the root's RenderingGroup): the same class, children lazy.
        lazy_cls = type(f"Lazy{declared.__name__}", (LazyGroup, declared), {})
    else:
        return get_group_from_info(info, pretty_exceptions_short=settings.pretty_exceptions_short,
                                   rich_markup_mode=settings.rich_markup_mode,
                                   suggest_commands=settings.suggest_commands)
    # Typer converts the group itself (help, callback, options) from a copy without children.
    shell = copy.copy(app)
    shell.registered_commands, shell.registered_groups = [], []
    shell_info = copy.copy(info)
    shell_info.typer_instance, shell_info.cls = shell, lazy_cls
    group = get_group_from_info(shell_info, pretty_exceptions_short=settings.pretty_exceptions_short,
                                rich_markup_mode=settings.rich_markup_mode,
                                suggest_commands=settings.suggest_commands)
    assert isinstance(group, LazyGroup)
    group.commands = _Commands(app, settings)
    return group


def lazy_command(app: typer.Typer) -> LazyGroup:
    """The Click command of ``app`` (a Typer app with groups or several commands and without
    shell completion), its subcommands converted when first needed."""
    if app._add_completion:
        raise ValueError("lazy_command does not add Typer's shell completion options")
    group = _group(TyperInfo(app), _settings(app))
    assert isinstance(group, LazyGroup)
    return group
