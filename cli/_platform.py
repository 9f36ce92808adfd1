"""The CORTEX platform version the CLI decides with: ``CORTEX_PLATFORM_VERSION`` when set, else
the configuration's ``platform-version``, else unknown (the policy then says so). Never
cortex-trust's own version."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cortex_trust.install import CortexConfig, PlatformVersion

__all__ = ["platform_version"]


def platform_version(config: CortexConfig | None = None) -> PlatformVersion:
    """The platform version and its source. ``config`` is read from the configuration file when
    not given and the environment variable is unset. Raises
    :class:`~cortex_trust.errors.InputError` for an invalid value or configuration file."""
    from cortex_trust.install import PLATFORM_VERSION_ENV, load_config, resolve_platform_version

    from ._paths import config_path

    env = os.environ.get(PLATFORM_VERSION_ENV)
    if config is None and not (env and env.strip()):
        config = load_config(config_path())
    return resolve_platform_version(config, env=env)
