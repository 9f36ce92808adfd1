"""The organization's policy the CLI decides with: the command line's ``--policy-dir`` and
``--data`` when given, else the configuration's ``policy-dir`` and ``policy-data``. Each flag
replaces its own setting (``--data`` keeps the configured directories). Every command that
decides (verify, install, update, run, call, policy eval) loads its policy here, so they all
decide under the same policy without the flags being repeated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cortex_trust.install import CortexConfig
    from cortex_trust.policy import PolicySet

__all__ = ["configured_policy", "load_org_policy"]


def configured_policy(policy_dirs: list[Path] | None, data_files: list[Path] | None,
                      config: CortexConfig) -> tuple[list[Path], list[Path], list[str]]:
    """``(directories, data files, settings used)``: each flag when given, else its setting;
    the settings used are named (``policy-dir``, ``policy-data``) for messages."""
    used: list[str] = []
    dirs = list(policy_dirs or ())
    if not dirs and config.policy_dir:
        dirs, used = [Path(p) for p in config.policy_dir], [*used, "policy-dir"]
    data = list(data_files or ())
    if not data and config.policy_data:
        data, used = [Path(p) for p in config.policy_data], [*used, "policy-data"]
    return dirs, data, used


def load_org_policy(policy_dirs: list[Path] | None, data_files: list[Path] | None, *,
                    config: CortexConfig | None = None, defaults: bool = True,
                    include_tests: bool = False) -> PolicySet:
    """Load the policy set: the defaults (unless ``defaults`` is false), then the flags' or the
    configuration's directories and data files. ``config`` is read from the configuration file
    when not given. Raises :class:`~cortex_trust.errors.PolicyError` (a configured path that
    fails says so, with the setting to change) or :class:`~cortex_trust.errors.InputError`
    for an unreadable configuration."""
    from cortex_trust.errors import PolicyError
    from cortex_trust.install import load_config
    from cortex_trust.policy import load_policy_set

    from ._paths import config_path

    if config is None:
        config = load_config(config_path())
    dirs, data, used = configured_policy(policy_dirs, data_files, config)
    try:
        return load_policy_set(dirs, data, defaults=defaults, include_tests=include_tests)
    except PolicyError as e:
        if not used:
            raise
        settings = " and ".join(used)
        raise PolicyError(f"{e.message} (the configured {settings})",
                          advice=f"{e.advice + '; or ' if e.advice else ''}change the configuration: "
                                 f"`cortex config set {used[0]} ...` or `cortex config unset "
                                 f"{used[0]}`") from None
