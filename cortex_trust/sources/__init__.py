"""What cortex asks: OCI registries, GitHub, the cortex registry (client and wire models),
and the transparency-log primitives clients verify registry checkpoints with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._github import GitHubClient, GitHubRateLimited, GitHubRef, GitHubRepo, parse_github_ref
    from ._oci import MANIFEST_MEDIA_TYPES, OciClient
    from ._registry import (
        LogLeaf,
        PluginDetail,
        PluginPage,
        PluginSummary,
        RegistryClient,
        RegistryRequestError,
        RevocationEntry,
        RevocationPage,
        VersionDetail,
        VersionLog,
        VersionSummary,
    )
    from ._transparency import (
        EMPTY_ROOT,
        HASH_SIZE,
        MAX_NOTE_BYTES,
        Checkpoint,
        NoteError,
        NoteSigner,
        NoteVerifier,
        ProofError,
        SubtreeGetter,
        TransparencyError,
        append_leaf,
        consistency_proof,
        consistency_proof_nodes,
        generate_note_key,
        inclusion_proof,
        inclusion_proof_nodes,
        leaf_hash,
        node_hash,
        open_checkpoint,
        open_note,
        parse_checkpoint,
        root_from_frontier,
        root_hash,
        sign_note,
        verify_consistency,
        verify_inclusion,
    )

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MANIFEST_MEDIA_TYPES",
    "MAX_NOTE_BYTES",
    "Checkpoint",
    "GitHubClient",
    "GitHubRateLimited",
    "GitHubRef",
    "GitHubRepo",
    "LogLeaf",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "OciClient",
    "PluginDetail",
    "PluginPage",
    "PluginSummary",
    "ProofError",
    "RegistryClient",
    "RegistryRequestError",
    "RevocationEntry",
    "RevocationPage",
    "SubtreeGetter",
    "TransparencyError",
    "VersionDetail",
    "VersionLog",
    "VersionSummary",
    "append_leaf",
    "consistency_proof",
    "consistency_proof_nodes",
    "generate_note_key",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_github_ref",
    "root_from_frontier",
    "root_hash",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "Checkpoint": "._transparency",
    "EMPTY_ROOT": "._transparency",
    "GitHubClient": "._github",
    "GitHubRateLimited": "._github",
    "GitHubRef": "._github",
    "GitHubRepo": "._github",
    "HASH_SIZE": "._transparency",
    "LogLeaf": "._registry",
    "MANIFEST_MEDIA_TYPES": "._oci",
    "MAX_NOTE_BYTES": "._transparency",
    "NoteError": "._transparency",
    "NoteSigner": "._transparency",
    "NoteVerifier": "._transparency",
    "OciClient": "._oci",
    "PluginDetail": "._registry",
    "PluginPage": "._registry",
    "PluginSummary": "._registry",
    "ProofError": "._transparency",
    "RegistryClient": "._registry",
    "RegistryRequestError": "._registry",
    "RevocationEntry": "._registry",
    "RevocationPage": "._registry",
    "SubtreeGetter": "._transparency",
    "TransparencyError": "._transparency",
    "VersionDetail": "._registry",
    "VersionLog": "._registry",
    "VersionSummary": "._registry",
    "append_leaf": "._transparency",
    "consistency_proof": "._transparency",
    "consistency_proof_nodes": "._transparency",
    "generate_note_key": "._transparency",
    "inclusion_proof": "._transparency",
    "inclusion_proof_nodes": "._transparency",
    "leaf_hash": "._transparency",
    "node_hash": "._transparency",
    "open_checkpoint": "._transparency",
    "open_note": "._transparency",
    "parse_checkpoint": "._transparency",
    "parse_github_ref": "._github",
    "root_from_frontier": "._transparency",
    "root_hash": "._transparency",
    "sign_note": "._transparency",
    "verify_consistency": "._transparency",
    "verify_inclusion": "._transparency",
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
