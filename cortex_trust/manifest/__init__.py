"""The plugin manifest: its model, the hardened loader (YAML subset, SPDX licenses) and
Semantic Versioning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._load import load_manifest, parse_manifest
    from ._model import Capability, Manifest, RuntimeSpec, TrustSpec, manifest_json_schema
    from ._positions import field_lines
    from ._rules import HTTP_METHODS
    from ._semver import SemVer, SemVerError, parse_semver, satisfies, semver_key

__all__ = [
    "HTTP_METHODS",
    "Capability",
    "Manifest",
    "RuntimeSpec",
    "SemVer",
    "SemVerError",
    "TrustSpec",
    "field_lines",
    "load_manifest",
    "manifest_json_schema",
    "parse_manifest",
    "parse_semver",
    "satisfies",
    "semver_key",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "Capability": "._model",
    "HTTP_METHODS": "._rules",
    "Manifest": "._model",
    "RuntimeSpec": "._model",
    "SemVer": "._semver",
    "SemVerError": "._semver",
    "TrustSpec": "._model",
    "field_lines": "._positions",
    "load_manifest": "._load",
    "manifest_json_schema": "._model",
    "parse_manifest": "._load",
    "parse_semver": "._semver",
    "satisfies": "._semver",
    "semver_key": "._semver",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
