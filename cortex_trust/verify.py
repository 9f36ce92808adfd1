"""The verify job as a library: gather evidence, build the input, ask the engine.

:func:`verify_plugin` is what ``cortex plugin verify`` (CI) runs; it prints nothing and never
decides: the tier and action come from the policy engine through
:func:`cortex_trust.engine.decide`, which fails closed.

Errors: bad input (a manifest that is missing or invalid, a garbage bundle, a malformed report, an image not
pinned by digest, digests that disagree) raises :class:`~cortex_trust.errors.InputError`
subclasses; a collector that could not run (Trivy) raises
:class:`~cortex_trust.errors.CollectorError`. (Flows that judge manifests they did not write,
such as installing from a registry, pass the :class:`~cortex_trust.errors.ManifestError` to
:func:`cortex_trust.policy.build_input` instead, and the policy decides.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .engine import PolicyEngine
    from .policy import CommandLineSigner, Decision, DroppedEvidence, PlatformVersionSource, PolicyInput
    from .policy._input import Operation

__all__ = [
    "VerifyRequest",
    "VerifyResult",
    "evidence_summary",
    "gather_input",
    "judge",
    "verify_plugin",
]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class VerifyRequest:
    """Everything one verification looks at. Paths are read by the collectors (size-capped).

    ``image`` must be pinned by digest (``REGISTRY/REPO@sha256:...``). ``trusted_roots`` are
    extra Sigstore trusted-root files tried after the pinned production root (or instead of it
    when ``production_root`` is false). Give at most one of ``scan_report`` and ``run_scan``.
    """

    manifest: PathLike
    image: str
    namespace: str | None = None
    bundle: PathLike | None = None
    trusted_roots: tuple[PathLike, ...] = ()
    production_root: bool = True
    scan_report: PathLike | None = None
    #: Scanners the pipeline says produced ``scan_report`` (recorded; see read_trivy_report).
    scan_scanners: tuple[str, ...] = ()
    run_scan: bool = False
    trivy_db: PathLike | None = None
    trivy_path: PathLike | None = None
    scan_timeout: float = 600.0
    junit: PathLike | None = None
    review: PathLike | None = None
    usage: PathLike | None = None
    registry: str | None = None
    #: The CORTEX platform's version (what ``trust.min_cortex_version`` is compared with) and
    #: where it came from; ``None``: unknown.
    cortex_version: str | None = None
    cortex_version_source: PlatformVersionSource | None = None
    operation: Operation = "verify"
    #: Signers trusted on the command line for this verification (the input's
    #: ``context.command_line_signers``; the policy decides whether they count).
    command_line_signers: tuple[CommandLineSigner, ...] = ()
    #: A registry's signed index (``http(s)://`` or ``file://``) that must list this version
    #: with this digest; its revocation facts become ``evidence.revocation``. Needs
    #: ``namespace`` and ``index_cache`` (the index's trust state between runs).
    index: str | None = None
    #: The index's root from its operator (``None``: trusted on first use, kept in ``index_cache``).
    index_root: bytes | None = None
    index_cache: PathLike | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one verification: the decision and what it rests on."""

    decision: Decision
    input: PolicyInput
    engine: str
    policy_revision: str
    manifest_path: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``cortex.verify/v1`` document (docs/verify.md documents every key)."""
        doc = self.input.to_dict()
        return {
            "schema": "cortex.verify/v1",
            "decision": self.decision.to_json_dict(),
            "plugin": doc["plugin"],
            "artifact": doc["artifact"],
            "manifest": {"path": self.manifest_path, "valid": doc["manifest"]["valid"],
                         "problems": doc["manifest"]["problems"]},
            "evidence": self.evidence,
            "policy": {"revision": self.policy_revision, "engine": self.engine},
            "context": doc["context"],
        }


def evidence_summary(policy_input: PolicyInput) -> dict[str, Any]:
    """A compact, stable summary of ``input.evidence`` for output (not for decisions)."""
    ev = policy_input.evidence
    sig, scan, tests = ev.signature, ev.scan, ev.tests
    newest = max(ev.review.reviews, key=lambda r: r.at or "", default=None)
    return {
        "signature": {
            "present": sig.present, "verified": sig.verified, "kind": sig.kind,
            "identity": sig.identity, "issuer": sig.issuer, "trusted_root": sig.trusted_root,
            "integrated_time": sig.integrated_time, "error": sig.error, "source": sig.source,
        },
        "scan": {
            "present": scan.present, "bound": scan.bound, "produced_by": scan.produced_by,
            "origin": scan.origin,
            "scanners": list(scan.scanners), "counts": dict(scan.counts),
            "vulnerabilities": len(scan.vulnerabilities), "secrets": scan.secrets,
            "misconfigurations": scan.misconfigurations, "trivy_version": scan.trivy_version,
            "db_updated_at": scan.db_updated_at, "created_at": scan.created_at, "error": scan.error,
            "source": scan.source,
        },
        "tests": {
            "present": tests.present, "total": tests.total, "failures": tests.failures,
            "errors": tests.errors, "skipped": tests.skipped, "created_at": tests.created_at,
            "source": tests.source,
        },
        "review": {
            # status, reviewer, reviewed_at: the newest review (every review is in `reviews`).
            "present": ev.review.present, "status": newest.verdict if newest else None,
            "reviewer": newest.reviewer if newest else None,
            "reviewed_at": newest.at if newest else None, "source": ev.review.source,
            "reviews": [r.model_dump(mode="json") for r in ev.review.reviews],
        },
        "usage": {
            "present": ev.usage.present, "days_in_production": ev.usage.days_in_production,
            "installations": ev.usage.installations, "source": ev.usage.source,
            "first_production_use": ev.usage.first_production_use,
            "last_production_use": ev.usage.last_production_use,
            "active_days": ev.usage.active_days, "organizations": ev.usage.organizations,
            "reporters": [r.model_dump(mode="json") for r in ev.usage.reporters],
        },
        "revocation": {"checked": ev.revocation.checked, "revoked": ev.revocation.revoked,
                       "reason": ev.revocation.reason, "fresh_as_of": ev.revocation.fresh_as_of,
                       "source": ev.revocation.source},
        "dropped": [d.model_dump(mode="json") for d in ev.dropped],
    }


def verify_plugin(request: VerifyRequest, *, engine: PolicyEngine, now: datetime) -> VerifyResult:
    """Collect every piece of evidence in ``request``, build the input and ask ``engine``.

    ``now`` is the reference time (read once by the caller, timezone-aware): it goes into
    ``context.now`` and computes days in production. Returns a :class:`VerifyResult` whose
    decision may be a fail-closed block (``decision.failed``) when the engine could not answer.

    Raises :class:`InputError` (and its subclasses) for bad input, and
    :class:`~cortex_trust.errors.CollectorError` when a collector could not run.
    """
    return judge(gather_input(request, now=now), engine=engine,
                 manifest_path=os.fspath(request.manifest))


def judge(policy_input: PolicyInput, *, engine: PolicyEngine, manifest_path: str) -> VerifyResult:
    """Ask ``engine`` for the decision on an input built by :func:`gather_input`.

    Never raises for an engine problem: :func:`cortex_trust.engine.decide` fails closed.
    """
    from .engine import decide

    decision = decide(engine, policy_input)
    return VerifyResult(
        decision=decision,
        input=policy_input,
        engine=engine.name,
        policy_revision=decision.policy_revision or engine.revision,
        manifest_path=manifest_path,
        evidence=evidence_summary(policy_input),
    )


def gather_input(request: VerifyRequest, *, now: datetime) -> PolicyInput:
    """Collect the evidence of ``request`` and build the policy input (no engine involved).

    Separate from :func:`judge` so that a caller can refuse bad input before it starts a policy
    engine. Raises like :func:`verify_plugin`; with ``request.index``, also
    :class:`InputError` when the index does not list this version with this digest and
    :class:`~cortex_trust.errors.RegistryUnavailable` when the index does not verify.
    """
    from .evidence import read_junit, read_review, read_trivy_report, read_usage, run_trivy
    from .manifest import load_manifest
    from .policy import ScanEvidence, SignatureEvidence, build_input, image_digest, plugin_full_name, resolve_digest

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    digest = image_digest(request.image)
    if digest is None:
        raise InputError(f"the image reference {request.image!r} is not pinned by digest",
                         advice="pass --image REGISTRY/REPO@sha256:DIGEST (the digest your build "
                                "pushed, e.g. from `docker buildx build --metadata-file`)")
    if request.scan_report is not None and request.run_scan:
        raise InputError("give either a scan report or --run-scan, not both",
                         advice="drop --scan to scan now, or drop --run-scan to use the report")

    manifest_path = os.fspath(request.manifest)
    # A manifest that cannot be loaded fails the CI gate as an input error (exit 2) with every
    # problem listed: the author must fix it before any evidence is worth judging.
    manifest = load_manifest(Path(manifest_path))
    # Refuse mismatched digests before any slow collector runs.
    resolve_digest(manifest=manifest, image=request.image, digest=digest)
    name, version = manifest.name, manifest.version
    full_name = plugin_full_name(request.namespace, name)

    dropped: list[DroppedEvidence] = []
    signature: SignatureEvidence | None = None
    if request.bundle is not None:
        signature = _signature(request, digest=digest)

    scan: ScanEvidence | None = None
    if request.scan_report is not None:
        # The verifying user's own report: they decide on it (origin pipeline).
        report = read_trivy_report(request.scan_report, digest=digest,
                                   declared_scanners=request.scan_scanners, origin="pipeline")
        scan = report.evidence
        dropped.extend(report.dropped)
    elif request.run_scan:
        scan = run_trivy(request.image, digest=digest, db_dir=request.trivy_db,
                         trivy_path=request.trivy_path, timeout=request.scan_timeout,
                         origin="pipeline")

    tests = read_junit(request.junit, digest=digest) if request.junit is not None else None
    review = usage = None
    if request.review is not None:
        review, more = read_review(request.review, digest=digest, plugin=full_name,
                                   version=version)
        dropped.extend(more)
    if request.usage is not None:
        usage, more = read_usage(request.usage, digest=digest, plugin=full_name,
                                 version=version, now=now)
        dropped.extend(more)
    revocation = None
    if request.index is not None:
        revocation = _index_revocation(request, name=name, version=version, digest=digest, now=now)

    return build_input(
        manifest=manifest, image=request.image, digest=digest,
        operation=request.operation,
        now=now, cortex_version=request.cortex_version,
        cortex_version_source=request.cortex_version_source, signature=signature, scan=scan,
        tests=tests, review=review, usage=usage, revocation=revocation, dropped=dropped,
        registry=request.registry, namespace=request.namespace,
        command_line_signers=request.command_line_signers)


def _index_revocation(request: VerifyRequest, *, name: str, version: str, digest: str,
                      now: datetime) -> Any:
    from .install import index_listing

    assert request.index is not None
    if request.namespace is None:
        raise InputError("checking a version against an index needs its namespace",
                         advice="add --namespace NS (the index lists NS/NAME)")
    if request.index_cache is None:
        raise InputError("checking a version against an index needs a directory for its trust state",
                         advice="set VerifyRequest.index_cache")
    return index_listing(request.index, cache_dir=Path(request.index_cache),
                         trusted_root=request.index_root, namespace=request.namespace, name=name,
                         version=version, digest=digest, now=now).revocation


def _signature(request: VerifyRequest, *, digest: str) -> Any:
    from ._io import display_path, read_evidence_file
    from .evidence import MAX_BUNDLE_BYTES, load_trust_root, production_trust_root, verify_signature

    assert request.bundle is not None
    roots = [production_trust_root()] if request.production_root else []
    roots.extend(load_trust_root(Path(p)) for p in request.trusted_roots)
    if not roots:
        raise InputError("no Sigstore trusted root to verify the bundle against",
                         advice="pass --trusted-root FILE, or keep the production root")
    shown = display_path(request.bundle)
    data = read_evidence_file(request.bundle, what="Sigstore bundle", max_bytes=MAX_BUNDLE_BYTES)
    return verify_signature(data, digest=digest, trusted_roots=roots, source=shown)
