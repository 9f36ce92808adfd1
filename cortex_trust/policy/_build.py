"""Assemble the one policy input document from a manifest, an artifact and evidence pieces.

:func:`build_input` is the only place a :class:`~cortex_trust.policy.PolicyInput` is put
together for verify, publish, install and run. What it guarantees (the mix-and-match defence):

* The artifact digest is known from ``digest`` or from the ``@sha256:`` part of ``image``; if
  both are given and differ, or the manifest's ``runtime.image`` is pinned to a different
  digest, it refuses with an :class:`~cortex_trust.errors.InputError` naming both digests.
* Any evidence piece that says it is about another digest (``digest``, or a signature's
  ``subject_digest``) is replaced by "not present" and listed in ``evidence.dropped`` with
  ``DIGEST_MISMATCH``: collectors already drop such pieces; this is the second lock.
* ``plugin.full_name`` is ``namespace/name`` (or ``name`` without a namespace), and
  ``artifact.pinned`` is true only when the image reference itself carries the digest.

:func:`refresh_input` is the one way a stored input is brought up to date (re-evaluation in the
registry, the run-time check of an installed plugin): newer evidence pieces and the clock, never
a new artifact or manifest.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from ..errors import InputError
from ..ids import ImageRefError, is_digest, is_slug, parse_image_ref
from ._input import (
    Artifact,
    CommandLineSigner,
    Context,
    DisputeEvidence,
    DroppedEvidence,
    Evidence,
    ManifestFacts,
    Operation,
    PlatformVersionSource,
    PluginRef,
    PolicyInput,
    PromotionEvidence,
    ReviewEvidence,
    RevocationEvidence,
    ScanEvidence,
    SignatureEvidence,
    SignerContinuityEvidence,
    TestEvidence,
    TransparencyEvidence,
    UsageEvidence,
    format_time,
)

if TYPE_CHECKING:
    from ..errors import ManifestError
    from ..manifest import Manifest

__all__ = ["build_input", "image_digest", "manifest_facts", "plugin_full_name", "refresh_input", "resolve_digest"]

_Kind = Literal["signature", "scan", "tests", "review", "usage", "promotion"]


def image_digest(reference: str) -> str | None:
    """The ``sha256:`` digest an OCI reference is pinned to, or ``None`` if it has none.

    The whole reference is held to the image grammar (:func:`cortex_trust.ids.parse_image_ref`,
    the one manifests are held to), so what counts as pinned here is what a container engine
    would pull: one ``@``, no control characters, a valid host and repository.

    Raises :class:`InputError` for a reference outside that grammar, including an ``@`` part
    that is not a ``sha256:<64 lowercase hex>`` digest (a truncated or upper-case digest is a
    mistake, not "unpinned").
    """
    try:
        digest = parse_image_ref(reference).digest
    except ImageRefError as e:
        raise InputError(f"image reference {reference!r} is not valid: {e.problem}",
                         advice=e.fix) from None
    if digest is not None and not is_digest(digest):  # pragma: no cover - the grammar's rule
        raise InputError(f"image reference {reference!r}: {digest!r} is not a sha256 digest",
                         advice="pin the image as REGISTRY/REPO@sha256:<64 lowercase hex digits>")
    return digest


def manifest_facts(m: Manifest | ManifestError) -> ManifestFacts:
    """``input.manifest`` for the policy input: the document if valid, else the problems."""
    from ..manifest import Manifest

    if isinstance(m, Manifest):
        return ManifestFacts(valid=True, document=m.to_document())
    return ManifestFacts(valid=False, problems=[str(p) for p in m.problems], document=None)


def plugin_full_name(namespace: str | None, name: str | None) -> str | None:
    """``namespace/name``, ``name`` when there is no namespace, ``None`` without a name."""
    if name is None:
        return None
    return f"{namespace}/{name}" if namespace else name


def resolve_digest(*, manifest: Manifest | ManifestError, image: str | None,
                   digest: str | None) -> str | None:
    """The artifact digest: ``digest``, else the pin of ``image``, else the manifest's pin.

    Raises :class:`InputError` when two of them name different digests (mix-and-match
    refused), or a digest is malformed. Cheap: callers run it before slow collectors.
    """
    from ..errors import ManifestError

    if digest is not None and not is_digest(digest):
        raise InputError(f"{digest!r} is not an image digest",
                         advice="give the digest as sha256:<64 lowercase hex digits>")
    ref_digest = image_digest(image) if image is not None else None
    if digest is not None and ref_digest is not None and digest != ref_digest:
        raise InputError(
            f"the image reference {image} is pinned to {ref_digest}, but the artifact digest "
            f"given is {digest}",
            advice="use one digest for the image and its evidence (mix-and-match refused)")
    artifact_digest = digest or ref_digest
    if not isinstance(manifest, ManifestError):
        declared_digest = manifest.image_digest
        if declared_digest is not None and artifact_digest is not None \
                and declared_digest != artifact_digest:
            raise InputError(
                f"the manifest's runtime.image is pinned to {declared_digest}, but the image "
                f"being verified is {artifact_digest}",
                advice="verify the image the manifest names, or update runtime.image "
                       "(mix-and-match refused)")
        if artifact_digest is None:
            artifact_digest = declared_digest
    return artifact_digest


def build_input(
    *,
    manifest: Manifest | ManifestError,
    image: str | None,
    digest: str | None,
    operation: Operation,
    now: datetime,
    cortex_version: str | None,
    cortex_version_source: PlatformVersionSource | None = None,
    signature: SignatureEvidence | None = None,
    scan: ScanEvidence | None = None,
    tests: TestEvidence | None = None,
    review: ReviewEvidence | None = None,
    usage: UsageEvidence | None = None,
    revocation: RevocationEvidence | None = None,
    transparency: TransparencyEvidence | None = None,
    promotion: PromotionEvidence | None = None,
    disputes: DisputeEvidence | None = None,
    signer_continuity: SignerContinuityEvidence | None = None,
    dropped: Sequence[DroppedEvidence] = (),
    registry: str | None = None,
    namespace: str | None = None,
    repository: str | None = None,
    publisher: str | None = None,
    command_line_signers: Sequence[CommandLineSigner] = (),
) -> PolicyInput:
    """Build the policy input document.

    ``manifest`` is a loaded manifest, or the :class:`ManifestError` loading it raised (the
    input then says ``manifest.valid: false`` and the policy decides). ``cortex_version`` is the
    CORTEX platform's version (``None``: unknown, which the policy reports) and
    ``cortex_version_source`` where it came from. ``now`` is the reference
    time, read once by the caller; it must be timezone-aware. Evidence pieces left out are
    "not present". ``dropped`` lists pieces collectors refused; more are added here for
    pieces about another digest.

    Raises :class:`InputError` when ``image`` and ``digest`` (or the manifest's
    ``runtime.image``) name different digests, a digest is malformed, or the namespace is not
    a slug. ``repository`` (``owner/repo``) names the source repository of a GitHub plugin;
    ``publisher`` the namespace of the registry token that publishes it.
    """
    from ..errors import ManifestError

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if namespace is not None and not is_slug(namespace):
        raise InputError(f"namespace {namespace!r} is not valid",
                         advice="use lowercase letters, digits and inner hyphens (at most 64)")
    artifact_digest = resolve_digest(manifest=manifest, image=image, digest=digest)
    ref_digest = image_digest(image) if image is not None else None
    name = version = None
    if not isinstance(manifest, ManifestError):
        name, version = manifest.name, manifest.version

    pieces: dict[_Kind, Any] = {
        "signature": signature or SignatureEvidence(),
        "scan": scan or ScanEvidence(),
        "tests": tests or TestEvidence(),
        "review": review or ReviewEvidence(),
        "usage": usage or UsageEvidence(),
        "promotion": promotion or PromotionEvidence(),
    }
    all_dropped = list(dropped)
    for kind, piece in list(pieces.items()):
        claimed = piece.subject_digest if kind == "signature" else piece.digest
        if not piece.present or claimed is None:
            continue
        if artifact_digest is None or claimed != artifact_digest:
            # Second lock of the mix-and-match defence: never use a piece about another image.
            all_dropped.append(DroppedEvidence(
                kind=kind, code="DIGEST_MISMATCH",
                message=f"the {kind} evidence is about {claimed}, not "
                        f"{artifact_digest or 'an unknown digest'}; it was not used "
                        f"({piece.source or 'unnamed source'})"))
            pieces[kind] = type(piece)()

    plugin = PluginRef(namespace=namespace, name=name, version=version,
                       full_name=plugin_full_name(namespace, name), repository=repository,
                       publisher=publisher)
    artifact = Artifact(
        image=image,
        digest=artifact_digest,
        pinned=ref_digest is not None and ref_digest == artifact_digest,
    )
    evidence = Evidence(
        **pieces,
        revocation=revocation or RevocationEvidence(),
        transparency=transparency or TransparencyEvidence(),
        disputes=disputes or DisputeEvidence(),
        signer_continuity=signer_continuity or SignerContinuityEvidence(),
        dropped=all_dropped,
    )
    return PolicyInput(
        manifest=manifest_facts(manifest),
        plugin=plugin,
        artifact=artifact,
        evidence=evidence,
        context=Context(now=format_time(now), cortex_version=cortex_version,
                        operation=operation, registry=registry,
                        cortex_version_source=cortex_version_source if cortex_version else None,
                        command_line_signers=list(command_line_signers)),
    )


class _Pieces(TypedDict, total=False):
    """Evidence pieces by kind, as :func:`refresh_input` takes them (``None``: keep the base's)."""

    signature: SignatureEvidence | None
    scan: ScanEvidence | None
    tests: TestEvidence | None
    review: ReviewEvidence | None
    usage: UsageEvidence | None
    revocation: RevocationEvidence | None
    transparency: TransparencyEvidence | None
    promotion: PromotionEvidence | None
    disputes: DisputeEvidence | None
    signer_continuity: SignerContinuityEvidence | None


class _Keep(enum.Enum):
    """The default of :func:`refresh_input`'s ``cortex_version``: keep the base's platform version."""

    BASE = "base"


def refresh_input(base: PolicyInput, *, now: datetime, operation: Operation,
                  cortex_version: str | _Keep | None = _Keep.BASE,
                  cortex_version_source: PlatformVersionSource | None = None,
                  now_text: str | None = None,
                  revalidate: bool = False, **pieces: Unpack[_Pieces]) -> PolicyInput:
    """``base`` (a stored input) with newer evidence ``pieces``, the reference time ``now`` and
    ``operation``.

    A piece left out or ``None`` keeps the base's piece. ``cortex_version`` left out keeps the
    base's platform version and its source; given, it replaces both (``None``: the platform
    version is unknown now, and so is its source). The manifest, plugin, artifact and dropped
    evidence are the base's: every piece
    handed in must be about the base's digest (the caller vouches for it; :func:`build_input`
    is where pieces about another digest are dropped). ``now_text`` is ``format_time(now)``
    when the caller has it already (refreshing many inputs). ``revalidate`` holds the result to
    the input contract again (a JSON round trip; copies are not validated), for inputs read
    back from storage a user controls.
    """
    update = {kind: piece for kind, piece in pieces.items() if piece is not None}
    context: dict[str, Any] = {"now": now_text or format_time(now), "operation": operation}
    if not isinstance(cortex_version, _Keep):
        context["cortex_version"] = cortex_version
        context["cortex_version_source"] = cortex_version_source if cortex_version is not None else None
    refreshed = base.model_copy(update={"evidence": base.evidence.model_copy(update=update),
                                        "context": base.context.model_copy(update=context)})
    if revalidate:
        return PolicyInput.model_validate_json(refreshed.to_json())
    return refreshed
