"""What the consumer commands (``cortex plugin install|update|list|info|remove|run|call|stop|
sync``) share: printing for people and for tools, the clock, the data directory, the installer
built from the configuration and the environment, and the container engine.

The environment is read here and nowhere below: tokens named by ``token_env``,
``GITHUB_TOKEN``, ``DOCKER_HOST``, ``CORTEX_SANDBOX_NETWORK``. Tokens never appear in output:
every token read is registered with :func:`cli._errors.register_secret`, and every line printed
goes through :func:`cli._errors.redact_secrets`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ._errors import EXIT_UNAVAILABLE, redact_secrets, register_secret
from ._errors import fail as _fail
from ._render import emphasise, for_reading, neutralise, style_for

if TYPE_CHECKING:
    from cortex_trust.install import Installer
    from cortex_trust.runtime import ContainerRuntime

__all__ = [
    "confirm",
    "data_dir",
    "decision_text",
    "installer",
    "network",
    "now",
    "runtime",
    "say",
    "say_json",
]


def say(text: str, *, err: bool = False, short: bool | None = None) -> None:
    """Print one line of text output. Names, descriptions, images, reasons and errors here come
    from registries and manifests: every control character is shown as an escape
    (:func:`cli._render.neutralise`), never obeyed by the terminal. Digests are shortened
    (``short``) by default on stdout, and quoted in full on stderr (errors and warnings: what a
    person acts on); secrets are redacted; labels are coloured on a terminal."""
    stream = sys.stderr if err else sys.stdout
    text = redact_secrets(text)
    shown = for_reading(text) if (not err if short is None else short) else neutralise(text)
    print(emphasise(shown, style_for(stream)), file=stream)


def say_json(doc: Any) -> None:
    """Print a JSON document (control characters escaped by JSON itself)."""
    print(redact_secrets(json.dumps(doc, indent=2, sort_keys=True)))


def now() -> datetime:
    # The clock is read once per command and passed down.
    return datetime.now(UTC)


def data_dir() -> Path:
    from ._paths import data_dir as configured

    return configured()


def installer(*, registry: str | None = None, trusted_roots: list[Path] | None = None,
               policy_dirs: list[Path] | None = None, data: list[Path] | None = None,
               verify: bool = True, policy_engine: str | None = None,
               opa_url: str | None = None) -> Installer:
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from cortex_trust.install import Installer, load_config

    from ._options import load_org_policy, policy_engine_factory
    from ._paths import config_path
    from ._platform import platform_version

    config = load_config(config_path())
    platform = platform_version(config)
    tokens: dict[str, str | None] = {}
    for entry in config.registries:
        token = os.environ.get(entry.token_env) if entry.token_env else None
        tokens[entry.name] = token or entry.token
        register_secret(tokens[entry.name])
    github_token = os.environ.get("GITHUB_TOKEN") or None
    register_secret(github_token)
    # Only install and update verify bundles; run, call and sync never load sigstore.
    roots = [production_trust_root(), *(load_trust_root(p) for p in trusted_roots or ())] \
        if verify else []
    # Policies first: a broken policy is an input error that should not wait for the network.
    def policy_set() -> Any:
        loaded = load_org_policy(policy_dirs, data, config=config)
        for line in loaded.override_notices():
            say(f"note: {line}", err=True)
        return loaded

    engine, _ = policy_engine_factory(policy_engine, opa_url, policy_set, config=config,
                                      explicit_policy=bool(policy_dirs or data))

    return Installer(config=config, data_dir=data_dir(), engine_factory=engine,
                     trusted_roots=roots, cortex_version=platform.version,
                     cortex_version_source=platform.source, tokens=tokens,
                     registry_override=registry, github_token=github_token)


def runtime(engine: str | None, *, required: bool) -> ContainerRuntime | None:
    url = engine or os.environ.get("DOCKER_HOST")
    if not url:
        if required:
            _fail("no container engine: set DOCKER_HOST or pass --engine",
                  advice='start one: eval "$(scripts/podman.sh)"', code=EXIT_UNAVAILABLE)
        return None
    from cortex_trust.runtime import connect

    return connect(url)


def network() -> str:
    return os.environ.get("CORTEX_SANDBOX_NETWORK") or "cortex-sandbox"


def decision_text(decision: Any) -> list[str]:
    lines = [f"  tier {decision.tier.value}, action {decision.action.value}"
             + (" (overridable)" if decision.overridable else "")]
    lines += [f"  {r.code}: {r.message}" for r in decision.reasons]
    return lines


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return typer.confirm(question, default=False)
