"""Helpers for the install tests: an :class:`Installer` over the federation's configuration
(tests/support/federation.py), and a plugin installed through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app
from cortex_trust.engine import EmbeddedEngine
from cortex_trust.evidence import load_trust_root, production_trust_root
from cortex_trust.install import Installer, judge_install, load_config
from cortex_trust.policy import load_policy_set
from tests.support.federation import Federation

__all__ = ["cortex", "install_now", "installed_tool", "installer", "root_opt"]


def cortex(fed: Federation, *args: str, **env: str) -> Any:
    """Run the CLI in-process (stdin is not a terminal) with the federation's config."""
    return CliRunner().invoke(app, list(args), env=fed.env(**env), catch_exceptions=False)


def installer(fed: Federation, *, policy_dirs: list[Path] | None = None,
              data: list[Path] | None = None, private_root: bool = True, **kw: Any) -> Installer:
    """An installer over the federation's configuration and data directory, deciding with the
    default policies (plus ``policy_dirs`` and ``data``); ``private_root``: it trusts the test
    Sigstore too."""
    policy_set = load_policy_set(policy_dirs or [], data or [])
    roots = [production_trust_root()]
    if private_root:
        roots.append(load_trust_root(fed.sigstore.trusted_root_path))
    return Installer(config=load_config(fed.config_path), data_dir=fed.data_dir,
                     engine_factory=lambda: EmbeddedEngine(policy_set), trusted_roots=roots,
                     cortex_version="0.1.0", tokens={"acme": fed.reader_token}, **kw)


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
