"""Installing and running plugins: the request grammar, federation over configured
registries, the install judgement, local state (install records, revocation cache,
configuration), revocation-feed sync and production-use reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._config import (
        DEFAULT_GITHUB_API,
        DEFAULT_REGISTRY,
        CortexConfig,
        RegistryEntry,
        load_config,
        redact,
        resolve_registry,
        save_config,
        scope_matches,
    )
    from ._installer import (
        FederatedRegistry,
        Installer,
        InstallOutcome,
        InstallPlan,
        PluginRequest,
        RegistryTarget,
        RunCheck,
        SyncReport,
        judge_install,
        parse_request,
        registry_target,
        remove_installed,
    )
    from ._revocations import FeedSource, FeedState, RevocationCache, RevokedVersion, revocation_evidence, sync_feed
    from ._state import InstallRecord, InstallStore, VersionCandidate, select_version, widened_permissions
    from ._usage import UsageReport, plan_usage_report, send_usage_report

__all__ = [
    "DEFAULT_GITHUB_API",
    "DEFAULT_REGISTRY",
    "CortexConfig",
    "FederatedRegistry",
    "FeedSource",
    "FeedState",
    "InstallOutcome",
    "InstallPlan",
    "InstallRecord",
    "InstallStore",
    "Installer",
    "PluginRequest",
    "RegistryEntry",
    "RegistryTarget",
    "RevocationCache",
    "RevokedVersion",
    "RunCheck",
    "SyncReport",
    "UsageReport",
    "VersionCandidate",
    "judge_install",
    "load_config",
    "parse_request",
    "plan_usage_report",
    "redact",
    "registry_target",
    "remove_installed",
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
    "CortexConfig": "._config",
    "DEFAULT_GITHUB_API": "._config",
    "DEFAULT_REGISTRY": "._config",
    "FederatedRegistry": "._installer",
    "FeedSource": "._revocations",
    "FeedState": "._revocations",
    "InstallOutcome": "._installer",
    "InstallPlan": "._installer",
    "InstallRecord": "._state",
    "InstallStore": "._state",
    "Installer": "._installer",
    "PluginRequest": "._installer",
    "RegistryEntry": "._config",
    "RegistryTarget": "._installer",
    "RevocationCache": "._revocations",
    "RevokedVersion": "._revocations",
    "RunCheck": "._installer",
    "SyncReport": "._installer",
    "UsageReport": "._usage",
    "VersionCandidate": "._state",
    "judge_install": "._installer",
    "load_config": "._config",
    "parse_request": "._installer",
    "plan_usage_report": "._usage",
    "redact": "._config",
    "registry_target": "._installer",
    "remove_installed": "._installer",
    "resolve_registry": "._config",
    "revocation_evidence": "._revocations",
    "save_config": "._config",
    "scope_matches": "._config",
    "select_version": "._state",
    "send_usage_report": "._usage",
    "sync_feed": "._revocations",
    "widened_permissions": "._state",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
