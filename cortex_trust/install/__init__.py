"""Installing and running plugins: the request grammar, federation over configured
registries, the pure install and run rules, local state (install records, stored inputs,
checkpoints, revocation cache), configuration, revocation-feed sync, production-use reports, and
the installer that sequences them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._config import (
        DEFAULT_GITHUB_API,
        DEFAULT_REGISTRY,
        PLATFORM_VERSION_ENV,
        CortexConfig,
        PlatformVersion,
        RegistryEntry,
        SettingError,
        check_platform_version,
        invalid_setting,
        load_config,
        redact,
        resolve_platform_version,
        resolve_registry,
        save_config,
        scope_matches,
    )
    from ._federation import FederatedRegistry, RegistryTarget, entry_target, registry_target
    from ._installer import Installer, remove_installed
    from ._listing import IndexListing, index_listing
    from ._plan import InstallOutcome, InstallPlan, RunCheck, SyncReport, judge_install
    from ._request import PluginRequest, parse_request
    from ._revocations import FeedSource, revocation_evidence, sync_feed
    from ._state import (
        FeedState,
        InstallRecord,
        InstallStore,
        RevocationCache,
        RevokedVersion,
        SignerChange,
        SignerPin,
    )
    from ._usage import UsageReport, plan_usage_report, send_usage_report
    from ._versions import VersionCandidate, select_version, widened_permissions
    from ._watch import Backoff, FeedWatcher

__all__ = [
    "DEFAULT_GITHUB_API",
    "DEFAULT_REGISTRY",
    "PLATFORM_VERSION_ENV",
    "Backoff",
    "CortexConfig",
    "FederatedRegistry",
    "FeedSource",
    "FeedState",
    "FeedWatcher",
    "IndexListing",
    "InstallOutcome",
    "InstallPlan",
    "InstallRecord",
    "InstallStore",
    "Installer",
    "PlatformVersion",
    "PluginRequest",
    "RegistryEntry",
    "RegistryTarget",
    "RevocationCache",
    "RevokedVersion",
    "RunCheck",
    "SettingError",
    "SignerChange",
    "SignerPin",
    "SyncReport",
    "UsageReport",
    "VersionCandidate",
    "check_platform_version",
    "entry_target",
    "index_listing",
    "invalid_setting",
    "judge_install",
    "load_config",
    "parse_request",
    "plan_usage_report",
    "redact",
    "registry_target",
    "remove_installed",
    "resolve_platform_version",
    "resolve_registry",
    "revocation_evidence",
    "save_config",
    "scope_matches",
    "select_version",
    "send_usage_report",
    "sync_feed",
    "widened_permissions",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "Backoff": "._watch",
    "FeedWatcher": "._watch",
    "IndexListing": "._listing",
    "index_listing": "._listing",
    "CortexConfig": "._config",
    "DEFAULT_GITHUB_API": "._config",
    "DEFAULT_REGISTRY": "._config",
    "PLATFORM_VERSION_ENV": "._config",
    "PlatformVersion": "._config",
    "check_platform_version": "._config",
    "invalid_setting": "._config",
    "SettingError": "._config",
    "resolve_platform_version": "._config",
    "FederatedRegistry": "._federation",
    "FeedSource": "._revocations",
    "FeedState": "._state",
    "InstallOutcome": "._plan",
    "InstallPlan": "._plan",
    "InstallRecord": "._state",
    "InstallStore": "._state",
    "Installer": "._installer",
    "PluginRequest": "._request",
    "RegistryEntry": "._config",
    "RegistryTarget": "._federation",
    "RevocationCache": "._state",
    "RevokedVersion": "._state",
    "RunCheck": "._plan",
    "SignerChange": "._state",
    "SignerPin": "._state",
    "SyncReport": "._plan",
    "UsageReport": "._usage",
    "VersionCandidate": "._versions",
    "judge_install": "._plan",
    "load_config": "._config",
    "parse_request": "._request",
    "plan_usage_report": "._usage",
    "redact": "._config",
    "entry_target": "._federation",
    "registry_target": "._federation",
    "remove_installed": "._installer",
    "resolve_registry": "._config",
    "revocation_evidence": "._revocations",
    "save_config": "._config",
    "scope_matches": "._config",
    "select_version": "._versions",
    "send_usage_report": "._usage",
    "sync_feed": "._revocations",
    "widened_permissions": "._versions",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
