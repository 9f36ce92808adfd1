"""Configuration of one registry process (no environment variables are read here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._oidc import OidcSettings

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_OCI_REGISTRIES", "RegistryConfig"]

#: Request bodies above this are refused with 413 before any parsing.
DEFAULT_MAX_BODY = 1024 * 1024
#: OCI registries image references may point to when nothing else is configured.
DEFAULT_OCI_REGISTRIES = ("ghcr.io", "docker.io", "quay.io")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RegistryConfig:
    """What a registry process needs to know.

    ``trusted_roots`` are the Sigstore trust roots bundles must chain to (objects accepted by
    :func:`cortex_trust.evidence.verify_signature`). ``oci_registries`` is the allowlist
    of hosts an image reference may name: the server never fetches from anywhere else (SSRF).
    ``clock`` is read once per operation. ``scanner`` runs the registry's own scans: every
    publish queues one, whether or not this process can run it (see :mod:`registry._scan`).
    """

    db_url: str
    trusted_roots: tuple[Any, ...] = ()
    oci_registries: tuple[str, ...] = DEFAULT_OCI_REGISTRIES
    max_body_bytes: int = DEFAULT_MAX_BODY
    name: str = "cortex-registry"
    page_limit_max: int = 100
    clock: Callable[[], datetime] = field(default=_utcnow)
    #: ``scanner(image_ref, digest) -> ScanEvidence``: when set, a background worker runs the
    #: persisted scan jobs every publish queues (see :mod:`registry._scan`); without one the jobs
    #: wait for a process that can scan, and versions stay unscanned (below Community).
    scanner: Callable[[str, str], Any] | None = None
    #: Why there is no ``scanner`` (``/healthz`` reports it): ``disabled`` by the operator
    #: (``--no-scan``) or ``unavailable`` (no Trivy here).
    scan_unavailable: Literal["disabled", "unavailable"] = "unavailable"
    #: Who runs the background jobs (scans, rescans, the governance poll): ``local``, this
    #: process (:class:`registry._background.LocalRunner`), or ``queue``, ``cortex registry
    #: worker`` processes reading procrastinate's queue (PostgreSQL only).
    jobs: Literal["local", "queue"] = "local"
    #: The periodic rescan job queues a rescan of every version whose newest scan is older than this
    #: (checked hourly); ``None``: no scheduled rescans (``cortex registry rescan`` still queues).
    rescan_after: timedelta | None = None
    #: Signs the audit log's checkpoints (a :class:`cortex_trust.sources.NoteSigner` read
    #: from a key file, never from the database). Without one the log still grows and serves
    #: proofs, but ``GET /api/v1/log/checkpoint`` answers 404 ``LOG_NOT_SIGNED``.
    log_signer: Any | None = None
    #: The CORTEX platform version this registry decides for (``context.cortex_version`` of its
    #: decisions, source ``registry``); ``None``: not set, and the policy says it is unknown.
    platform_version: str | None = None
    #: The GitHub side (registry repository, token, webhook secret): a
    #: :class:`registry._governance.GovernanceConfig`; ``None``: no promotions or disputes.
    governance: Any | None = None
    #: The signed index this registry keeps current after each write (see
    #: :mod:`registry._index`): its directory, created beforehand with
    #: ``cortex registry index build``; ``None``: no index is kept.
    index_dir: Path | None = None
    #: The directory of the index's online keys (``snapshot.pem``, ``timestamp.pem``,
    #: ``bins.pem``); the offline root and targets keys are never needed here.
    index_keys: Path | None = None
    #: Trusted publishing: which OIDC issuers are accepted and the audience their tokens must
    #: carry. ``None``: GitHub Actions' issuer, with this registry's ``name`` as the audience.
    oidc: OidcSettings | None = None
    #: How often a waiting long-poll (revocation feed, log size) looks at the database, in
    #: seconds: how late it sees a write committed by another process (one committed by this
    #: process wakes it at once; see :mod:`registry._feed`).
    feed_poll_seconds: float = 1.0
    #: The longest a long-poll (revocation feed, log size) waits, in seconds, whatever the client
    #: asks (at most :data:`registry._feed.MAX_WAIT`): below the timeout of any proxy in front.
    feed_max_wait_seconds: float = 30.0
    #: How many long-polls may wait at a time on each followed sequence (revocation feed, log
    #: size) in this process; one asked beyond that is answered at once, as with ``wait=0``.
    feed_max_waiters: int = 256
