"""The public surface is small and explicit: every public module's ``__all__`` is pinned here,
so that growing or shrinking the API is a visible, reviewed change (httpx and sigstore-python do
the same). Internal modules start with ``_`` and are not listed."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import cortex_trust

PUBLIC: dict[str, list[str]] = {
    "cortex_trust.evidence": [
        "GITHUB_ACTIONS_ISSUER",
        "MAX_BUNDLE_BYTES",
        "MAX_DOCUMENT_BYTES",
        "MAX_JUNIT_BYTES",
        "MAX_REPORT_BYTES",
        "MAX_TRUSTED_ROOT_BYTES",
        "PRODUCTION_ROOT_NAME",
        "REVIEW_SCHEMA",
        "ReviewDocument",
        "SEVERITIES",
        "ScanReport",
        "TrustRoot",
        "USAGE_SCHEMA",
        "UsageDocument",
        "UsageReporterDocument",
        "VULN_ATTESTATION_PREDICATE",
        "find_trivy",
        "load_trust_root",
        "parse_junit",
        "parse_review",
        "parse_trivy_report",
        "parse_usage",
        "production_trust_root",
        "read_junit",
        "read_review",
        "read_trivy_report",
        "read_usage",
        "run_trivy",
        "verify_attestation",
        "verify_scan_attestation",
        "verify_signature",
    ],
    "cortex_trust": ["__version__"],
    "cortex_trust.errors": [
        "CollectorError",
        "CortexTrustError",
        "EngineError",
        "EngineTimeout",
        "EvidenceError",
        "InputError",
        "ManifestError",
        "ManifestProblem",
        "PolicyError",
        "RegistryUnavailable",
        "SemVerError",
        "UnavailableError",
    ],
    "cortex_trust.ids": [
        "DIGEST",
        "DIGEST_PATTERN",
        "IMAGE_PATTERN",
        "ImageRef",
        "ImageRefError",
        "MAX_IMAGE",
        "PLUGIN_NAME_PATTERN",
        "SLUG",
        "SLUG_PATTERN",
        "is_digest",
        "is_image_path",
        "is_image_tag",
        "is_slug",
        "parse_image_ref",
    ],
    "cortex_trust.verify": [
        "VerifyRequest",
        "VerifyResult",
        "evidence_summary",
        "gather_input",
        "judge",
        "verify_plugin",
    ],
    "registry": ["RegistryConfig", "create_app", "make_engine", "migrate"],
    "cortex_trust.manifest": [
        "Capability",
        "HTTP_METHODS",
        "Manifest",
        "RuntimeSpec",
        "SemVer",
        "SemVerError",
        "TrustSpec",
        "load_manifest",
        "manifest_json_schema",
        "parse_manifest",
        "parse_semver",
        "satisfies",
        "semver_key",
    ],
    "cortex_trust.policy": [
        "Action",
        "Artifact",
        "Context",
        "Decision",
        "DroppedEvidence",
        "Evidence",
        "FAILURE_CODES",
        "GitHubClaims",
        "MAX_DATA_BYTES",
        "MAX_MODULE_BYTES",
        "ManifestFacts",
        "NextTier",
        "PluginRef",
        "PolicyInput",
        "PolicyModule",
        "PolicySet",
        "Reason",
        "ReviewEvidence",
        "ReviewRecord",
        "ReviewVerdict",
        "RevocationEvidence",
        "SCHEMA_VERSION",
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
    ],
    "cortex_trust.sources": [
        "Checkpoint",
        "DigestRevokeCreate",
        "EMPTY_ROOT",
        "GitHubClient",
        "GitHubRateLimited",
        "GitHubRef",
        "GitHubRepo",
        "HASH_SIZE",
        "IdentityRevokeCreate",
        "LogLeaf",
        "LogProof",
        "MANIFEST_MEDIA_TYPES",
        "MAX_NOTE_BYTES",
        "NoteError",
        "NoteSigner",
        "NoteVerifier",
        "OciClient",
        "PluginDetail",
        "PluginPage",
        "PluginSummary",
        "ProofError",
        "PublishCreate",
        "RegistryClient",
        "RegistryRequestError",
        "ReviewCreate",
        "ReviewWithdraw",
        "RevocationCreate",
        "RevocationEntry",
        "RevocationPage",
        "RevokedVersions",
        "SubtreeGetter",
        "TransparencyError",
        "UsageCreate",
        "VERSION_PATTERN",
        "VersionDetail",
        "VersionList",
        "VersionLog",
        "VersionSummary",
        "YankCreate",
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
    ],
    "cortex_trust.engine": [
        "DECISION_PATH",
        "DecisionText",
        "EmbeddedEngine",
        "FileCoverage",
        "OpaServerEngine",
        "PolicyEngine",
        "RuleValue",
        "TestReport",
        "TestResult",
        "decide",
        "run_policy_tests",
    ],
    "cortex_trust.install": [
        "CortexConfig",
        "DEFAULT_GITHUB_API",
        "DEFAULT_REGISTRY",
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
        "VersionCandidate",
        "judge_install",
        "load_config",
        "parse_request",
        "redact",
        "registry_target",
        "remove_installed",
        "resolve_registry",
        "revocation_evidence",
        "save_config",
        "scope_matches",
        "select_version",
        "sync_feed",
        "widened_permissions",
    ],
    "cortex_trust.runtime": [
        "ContainerRuntime",
        "ContainerSpec",
        "DATA_MOUNT",
        "LABEL_PREFIX",
        "PluginResponse",
        "PulledImage",
        "RunningPlugin",
        "SandboxRefused",
        "connect",
        "container_name",
        "container_spec",
        "volume_name",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name}, which does not exist"


def test_every_public_module_is_pinned() -> None:
    found = {
        m.name
        for m in pkgutil.walk_packages(cortex_trust.__path__, "cortex_trust.")
        if not any(part.startswith("_") for part in m.name.split("."))
    }
    assert found - set(PUBLIC) == set(), "a new public module: add its __all__ here (or make it internal)"


def test_the_library_never_imports_the_cli_or_the_registry() -> None:
    import ast
    from pathlib import Path

    root = Path(cortex_trust.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for n in names:
                assert n.split(".")[0] not in {"cli", "registry"}, f"{path} imports {n}"


def _import_graph() -> dict[str, set[str]]:
    """Module -> internal modules it imports (top level and inside functions; ``TYPE_CHECKING``
    imports are left out: they never run)."""
    import ast
    from pathlib import Path

    repo = Path(cortex_trust.__file__).parent.parent
    modules: dict[str, Path] = {}
    for package in ("cortex_trust", "cli", "registry"):
        for path in (repo / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(repo).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(mod: str, node: ast.Import | ast.ImportFrom, is_pkg: bool) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if node.level:
            base = mod.split(".") if is_pkg else mod.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        return [f"{name}.{a.name}" if f"{name}.{a.name}" in modules else name for a in node.names]

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        def walk(node: ast.AST, mod: str = mod, path: Path = path) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for t in targets(mod, child, path.name == "__init__.py"):
                        if t in modules and t != mod:
                            graph[mod].add(t)
                else:
                    walk(child)

        walk(ast.parse(path.read_text(encoding="utf-8")))
    return graph


def test_imports_have_no_cycle() -> None:
    """Imports flow one way: no two modules import each other, even lazily (Tarjan's SCC)."""
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []
