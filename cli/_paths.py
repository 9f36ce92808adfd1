"""Where the CLI keeps its files. The only place that reads the path-related environment.

* configuration: ``$CORTEX_CONFIG`` (a file, for CI) or ``$XDG_CONFIG_HOME/cortex/config.json``
  (default ``~/.config/cortex/config.json``);
* state (installed plugins, revocation cache): ``$CORTEX_DATA_DIR`` or
  ``$XDG_DATA_HOME/cortex`` (default ``~/.local/share/cortex``).
"""

from __future__ import annotations

import os
from pathlib import Path


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
