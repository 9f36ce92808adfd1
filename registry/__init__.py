"""The cortex-trust registry service: publish, evidence, tiers, revocation.

Run it with ``cortex registry serve``. Build it in code with :func:`create_app` from a
:class:`RegistryConfig` and a policy engine. Routes are thin: every read and write goes through
:class:`~registry._store.Store`, the one persistence layer, and every decision comes from the
policy engine through :func:`cortex_trust.engine.decide`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import create_app
    from ._config import RegistryConfig
    from ._db import make_engine, migrate

__all__ = ["RegistryConfig", "create_app", "make_engine", "migrate"]

_EXPORTS = {"create_app": "._app", "RegistryConfig": "._config", "make_engine": "._db",
            "migrate": "._db"}


def __getattr__(name: str) -> Any:
    # Imported on first use: the re-tiering workers import registry._retier in every process
    # they start, and those never need FastAPI or SQLModel (bench/README.md has the start-up cost).
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
