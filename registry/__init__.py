"""The cortex-trust registry service (issue 4): publish, evidence, tiers, revocation.

Run it with ``cortex registry serve``. Build it in code with :func:`create_app` from a
:class:`RegistryConfig` and a policy engine. Routes are thin: every read and write goes through
:class:`~registry._store.Store`, the one persistence layer, and every decision comes from the
policy engine through :func:`cortex_trust.engine.decide`.
"""

from __future__ import annotations

from ._app import create_app
from ._config import RegistryConfig
from ._db import make_engine, migrate

__all__ = ["RegistryConfig", "create_app", "make_engine", "migrate"]
