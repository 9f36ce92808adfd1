"""Publishing: turn a publish request into facts, before any database transaction.

Everything slow or hostile (manifest parsing, Sigstore verification, reports) happens here,
outside the write lock, through the same hardened loaders the CLI uses. The store then writes
the version and the policy's decision in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cortex_trust.errors import InputError, ManifestError
from cortex_trust.ids import ImageRef, ImageRefError, is_slug, parse_image_ref
from cortex_trust.policy import DroppedEvidence, ScanEvidence, TestEvidence
from cortex_trust.sources import PublishCreate

from ._config import RegistryConfig
from ._errors import Forbidden, Invalid, api_error
from ._store import Principal, PublishRecord

__all__ = ["check_image_host", "check_image_reference", "image_host", "prepare_publish"]



def image_host(image: str) -> str:
    """The registry host of an OCI reference, by the one image grammar
    (:func:`cortex_trust.ids.parse_image_ref`, the distribution rule container engines apply: a
    first component with a dot, a colon, an upper-case letter or ``localhost`` is the host; none
    means Docker Hub). The allowlist must name the host an engine would pull from.

    Raises :class:`Invalid` (``IMAGE_INVALID``) for a reference outside the grammar.
    """
    host = check_image_reference(image).host
    return host.lower() if host else "docker.io"


def check_image_reference(image: str) -> ImageRef:
    """Refuse an image reference outside the grammar manifests are held to
    (:func:`cortex_trust.ids.parse_image_ref`): control characters, whitespace, a URL scheme,
    several ``@``, a malformed host, repository, tag or digest. What is stored is later shown to
    people and handed to container engines. Returns the parsed reference.

    Raises :class:`Invalid` (``IMAGE_INVALID``).
    """
    try:
        return parse_image_ref(image)
    except ImageRefError as e:
        raise Invalid("IMAGE_INVALID", f"the image reference is not valid: {e.problem}",
                      advice=e.fix or "publish REGISTRY/REPO@sha256:<64 hex digits>") from None


def check_image_host(image: str, *, allowed: tuple[str, ...]) -> None:
    """Refuse an image whose registry is not in the configured allowlist (no SSRF).

    Raises :class:`Invalid` (``IMAGE_REGISTRY_NOT_ALLOWED``).
    """
    host = image_host(image)
    if host not in {a.lower() for a in allowed}:
        raise Invalid("IMAGE_REGISTRY_NOT_ALLOWED",
                      f"images from {host!r} are not accepted by this registry",
                      advice=f"push the image to one of: {', '.join(allowed) or '(none configured)'}")


def _check_bundle_subject(subject: str | None, *, digest: str) -> None:
    """Refuse a Sigstore bundle that says it signs another digest than the published image's:
    kept, it would be dropped as evidence about another image, and the publisher would never
    learn why the version is unsigned. A bundle that does not verify for another reason (an
    untrusted root, a bad signature) over this digest is kept as an unverified signature.

    Raises :class:`Invalid` (``BUNDLE_DIGEST_MISMATCH``).
    """
    if subject is not None and subject != digest:
        raise Invalid("BUNDLE_DIGEST_MISMATCH",
                      f"the bundle signs {subject}, not the published image {digest}",
                      advice=f"sign the image you publish (e.g. `cosign sign --bundle "
                             f"image.sigstore.json REGISTRY/REPO@{digest}`) and send that bundle, "
                             f"or publish the image the bundle signs (@{subject})")


def prepare_publish(body: PublishCreate, *, principal: Principal, config: RegistryConfig,
                    now: datetime) -> PublishRecord:
    """Validate and verify a publish request; return what the store writes.

    An uploaded scan report is recorded as ``self-reported`` (forgeable JSON: the default
    policy does not accept it for Community on a registry), a scan attestation that verifies
    against the registry's trusted roots as ``attested`` with its signer (preferred over the
    report when both are given); the registry's own scan, queued by the store for every publish,
    comes later and supersedes either. ``scan_scanners`` are recorded with the report as the
    publisher's declaration (the report stays ``self-reported``). A scan attestation that does
    not verify is not used (listed in ``evidence.dropped``). Raises :class:`Forbidden` for a
    namespace the token does not own, and :class:`Invalid` for
    an image reference outside the manifest grammar, an unpinned or non-allowlisted image,
    an invalid manifest, an unparseable bundle or report, a bundle signing another digest
    (``BUNDLE_DIGEST_MISMATCH``), ``scan_scanners`` without a report,
    a name that is not a lowercase ASCII slug, or a digest mix-up.
    """
    from cortex_trust.evidence import parse_junit, parse_trivy_report, verify_scan_attestation, verify_signature
    from cortex_trust.manifest import parse_manifest
    from cortex_trust.policy import build_input, image_digest

    namespace = body.namespace or principal.namespace
    if principal.role not in ("publisher", "admin"):
        raise Forbidden("ROLE_FORBIDDEN", f"a {principal.role} token cannot publish",
                        advice="use a publisher token for the namespace")
    if principal.role != "admin" and namespace != principal.namespace:
        raise Forbidden("NAMESPACE_FORBIDDEN",
                        f"this token publishes to {principal.namespace!r}, not {namespace!r}",
                        advice=f"use a publisher token for namespace {namespace!r}")
    check_image_reference(body.image)
    try:
        digest = image_digest(body.image)
    except InputError as e:
        raise api_error(e, "IMAGE_NOT_PINNED") from None
    if digest is None:
        raise Invalid("IMAGE_NOT_PINNED", f"{body.image!r} is not pinned by digest",
                      advice="publish REGISTRY/REPO@sha256:<digest> (tags can move)")
    check_image_host(body.image, allowed=config.oci_registries)
    try:
        manifest = parse_manifest(body.manifest.encode("utf-8"), source="manifest.yaml")
    except ManifestError as e:
        raise api_error(e, "MANIFEST_INVALID") from None
    name = str(manifest.name)
    version = str(manifest.version)
    if not is_slug(name):
        raise Invalid("NAME_NOT_SLUG", f"plugin name {name!r} is not a lowercase ASCII slug",
                      advice="use lowercase letters, digits and inner hyphens (e.g. my-plugin)")
    if not config.trusted_roots:
        raise Invalid("NO_TRUST_ROOT", "this registry has no Sigstore trusted root configured",
                      advice="the operator must start the registry with a trusted root")
    try:
        signature = verify_signature(body.bundle.encode("utf-8"), digest=digest,
                                     trusted_roots=config.trusted_roots, source="bundle")
    except InputError as e:
        raise api_error(e, "BUNDLE_INVALID") from None
    _check_bundle_subject(signature.subject_digest, digest=digest)
    if body.scan_scanners is not None and body.scan_report is None:
        raise Invalid("SCAN_SCANNERS_WITHOUT_REPORT",
                      "scan_scanners describes the scanners of scan_report, and no scan_report "
                      "was sent", advice="send the Trivy JSON report as scan_report (CLI: --scan "
                      "REPORT), or leave scan_scanners out")
    tests: TestEvidence | None = None
    scan: ScanEvidence | None = None
    dropped: list[DroppedEvidence] = []
    try:
        if body.tests_junit is not None:
            tests = parse_junit(body.tests_junit.encode("utf-8"), digest=digest, source="tests")
        # A report the publisher uploads is forgeable JSON: it is kept as what it is
        # (self-reported, by this publisher) and never skips the registry's own scan.
        if body.scan_report is not None:
            report = parse_trivy_report(body.scan_report, digest=digest, origin="self-reported",
                                        source=f"publisher {principal.token_id}",
                                        declared_scanners=body.scan_scanners or ())
            scan = report.evidence
            dropped += report.dropped
        if body.scan_attestation is not None:
            attested = verify_scan_attestation(body.scan_attestation.encode("utf-8"),
                                               digest=digest, trusted_roots=config.trusted_roots,
                                               source="scan attestation")
            dropped += attested.dropped
            if attested.evidence.present:
                scan = attested.evidence
    except InputError as e:
        raise api_error(e, "EVIDENCE_INVALID") from None
    try:
        policy_input = build_input(
            manifest=manifest, image=body.image, digest=digest, operation="publish", now=now,
            cortex_version=config.platform_version, cortex_version_source="registry",
            signature=signature, scan=scan, tests=tests,
            dropped=dropped, registry=config.name, namespace=namespace,
            publisher=principal.namespace)
    except InputError as e:
        raise api_error(e, "INPUT_INVALID") from None
    document = policy_input.manifest.document or {}
    description = document.get("description")
    capabilities = document.get("capabilities") or []
    return PublishRecord(
        namespace=namespace, name=name, version=version, image=body.image, digest=digest,
        description=description if isinstance(description, str) else "",
        capabilities=tuple(_capability_names(capabilities)),
        policy_input=policy_input, bundle=body.bundle,
        # Store the pieces as build_input kept them (a piece about another digest is dropped).
        signature=policy_input.evidence.signature,
        tests=policy_input.evidence.tests if tests is not None else None,
        scan=policy_input.evidence.scan if scan is not None else None)


def _capability_names(value: Any) -> list[str]:
    """Capability names from the manifest document (a list of strings or of objects)."""
    names: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                names.append(item["name"])
    return names[:100]
