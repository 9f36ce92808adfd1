"""Helpers for the install tests: the CLI and an :class:`Installer` over the federation's
configuration (tests/support/federation.py), and a plugin installed through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from cortex_trust.install import Installer, judge_install
from tests.support.federation import Federation, installer

__all__ = ["cortex", "install_now", "installed_tool", "installer", "root_opt"]


def cortex(fed: Federation, *args: str, **env: str) -> Any:
    """Run the CLI in-process (stdin is not a terminal) with the federation's config."""
    return CliRunner().invoke(app, list(args), env=fed.env(**env), catch_exceptions=False)


def install_now(inst: Installer, name: str, *, now: datetime) -> None:
    """Plan and commit ``name`` as `cortex plugin install NAME --yes` would."""
    plan = inst.plan(name, now=now)
    inst.commit(plan, now=now, outcome=judge_install(plan, yes=True, allow_blocked=False))


@contextmanager
def installed_tool(fed: Federation) -> Iterator[tuple[Installer, datetime]]:
    """``acme/tool`` 1.0.0 published on the private registry and installed now, with the
    installer that did it and the time it did."""
    fed.private.publish(fed.sigstore, "acme", "tool", "1.0.0")
    now = datetime.now(UTC)
    with installer(fed) as inst:
        install_now(inst, "acme/tool", now=now)
        yield inst, now


def root_opt(fed: Federation) -> list[str]:
    """The CLI option that makes the test Sigstore root trusted."""
    return ["--trusted-root", str(fed.sigstore.trusted_root_path)]
