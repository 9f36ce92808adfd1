"""Where the CLI keeps its files. The only place that reads the path-related environment.

* configuration: ``$CORTEX_CONFIG`` (a file, for CI) or ``$XDG_CONFIG_HOME/cortex/config.json``
  (default ``~/.config/cortex/config.json``);
* state (installed plugins, revocation cache): ``$CORTEX_DATA_DIR`` or
  ``$XDG_DATA_HOME/cortex`` (default ``~/.local/share/cortex``);
* the database of a registry this user operates (``cortex registry ...`` without ``--db``):
  ``$CORTEX_REGISTRY_DB``, else the configuration's ``registry-db``, else
  ``sqlite:///cortex-registry.db`` in the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_REGISTRY_DB", "REGISTRY_DB_ENV", "config_path", "data_dir", "registry_db"]

#: The environment variable holding the registry database URL (between ``--db`` and the
#: configuration's ``registry-db``).
REGISTRY_DB_ENV = "CORTEX_REGISTRY_DB"
#: The registry database when nothing names one: SQLite in the current directory.
DEFAULT_REGISTRY_DB = "sqlite:///cortex-registry.db"


def config_path() -> Path:
    """The configuration file the CLI reads and writes."""
    override = os.environ.get("CORTEX_CONFIG")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cortex" / "config.json"


def data_dir() -> Path:
    """The directory holding the CLI's local state."""
    override = os.environ.get("CORTEX_DATA_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cortex"


def registry_db() -> str:
    """The registry database URL of a ``cortex registry`` command given no ``--db`` (the flag
    wins over all of these): ``$CORTEX_REGISTRY_DB`` when set and not empty, else the
    configuration's ``registry-db``, else :data:`DEFAULT_REGISTRY_DB`.

    Reads the configuration only when the environment does not decide; raises
    :class:`~cortex_trust.errors.InputError` when it must be read and is invalid.
    """
    env = os.environ.get(REGISTRY_DB_ENV, "").strip()
    if env:
        return env
    from cortex_trust.install import load_config

    return load_config(config_path()).registry_db or DEFAULT_REGISTRY_DB
