"""The policy side of the flow: the input document and how it is built, the decision, and
policy sets (the Rego modules and data an engine is loaded with).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._build import build_input, image_digest, manifest_facts, plugin_full_name, resolve_digest
    from ._decision import FAILURE_CODES, Action, Decision, NextTier, Reason, Sandbox, Tier
    from ._input import (
        SCHEMA_VERSION,
        Artifact,
        Context,
        DroppedEvidence,
        Evidence,
        GitHubClaims,
        ManifestFacts,
        PlatformVersionSource,
        PluginRef,
        PolicyInput,
        ReviewEvidence,
        ReviewRecord,
        ReviewVerdict,
        RevocationEvidence,
        ScanAttester,
        ScanEvidence,
        ScanOrigin,
        ScanVulnerability,
        SignatureEvidence,
        TestEvidence,
        TransparencyEvidence,
        UsageEvidence,
        UsageReporter,
        format_time,
        input_json_schema,
    )
    from ._sets import MAX_DATA_BYTES, MAX_MODULE_BYTES, PolicyModule, PolicySet, default_policy_dir, load_policy_set

__all__ = [
    "FAILURE_CODES",
    "MAX_DATA_BYTES",
    "MAX_MODULE_BYTES",
    "SCHEMA_VERSION",
    "Action",
    "Artifact",
    "Context",
    "Decision",
    "DroppedEvidence",
    "Evidence",
    "GitHubClaims",
    "ManifestFacts",
    "NextTier",
    "PlatformVersionSource",
    "PluginRef",
    "PolicyInput",
    "PolicyModule",
    "PolicySet",
    "Reason",
    "ReviewEvidence",
    "ReviewRecord",
    "ReviewVerdict",
    "RevocationEvidence",
    "Sandbox",
    "ScanAttester",
    "ScanEvidence",
    "ScanOrigin",
    "ScanVulnerability",
    "SignatureEvidence",
    "TestEvidence",
    "Tier",
    "TransparencyEvidence",
    "UsageEvidence",
    "UsageReporter",
    "build_input",
    "default_policy_dir",
    "format_time",
    "image_digest",
    "input_json_schema",
    "load_policy_set",
    "manifest_facts",
    "plugin_full_name",
    "resolve_digest",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "Action": "._decision",
    "Artifact": "._input",
    "Context": "._input",
    "Decision": "._decision",
    "DroppedEvidence": "._input",
    "Evidence": "._input",
    "FAILURE_CODES": "._decision",
    "GitHubClaims": "._input",
    "MAX_DATA_BYTES": "._sets",
    "MAX_MODULE_BYTES": "._sets",
    "ManifestFacts": "._input",
    "NextTier": "._decision",
    "PlatformVersionSource": "._input",
    "PluginRef": "._input",
    "PolicyInput": "._input",
    "PolicyModule": "._sets",
    "PolicySet": "._sets",
    "Reason": "._decision",
    "ReviewEvidence": "._input",
    "ReviewRecord": "._input",
    "ReviewVerdict": "._input",
    "RevocationEvidence": "._input",
    "SCHEMA_VERSION": "._input",
    "Sandbox": "._decision",
    "ScanAttester": "._input",
    "ScanEvidence": "._input",
    "ScanOrigin": "._input",
    "ScanVulnerability": "._input",
    "SignatureEvidence": "._input",
    "TestEvidence": "._input",
    "Tier": "._decision",
    "TransparencyEvidence": "._input",
    "UsageEvidence": "._input",
    "UsageReporter": "._input",
    "build_input": "._build",
    "default_policy_dir": "._sets",
    "format_time": "._input",
    "image_digest": "._build",
    "input_json_schema": "._input",
    "load_policy_set": "._sets",
    "manifest_facts": "._build",
    "plugin_full_name": "._build",
    "resolve_digest": "._build",
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
