"""Configuration of one registry process (no environment variables are read here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    :func:`cortex_trust.evidence.signature.verify_signature`). ``oci_registries`` is the allowlist
    of hosts an image reference may name: the server never fetches from anywhere else (SSRF).
    ``clock`` is read once per operation. ``scanner`` enables server-side scanning.
    """

    db_url: str
    trusted_roots: tuple[Any, ...] = ()
    oci_registries: tuple[str, ...] = DEFAULT_OCI_REGISTRIES
    max_body_bytes: int = DEFAULT_MAX_BODY
    name: str = "cortex-registry"
    page_limit_max: int = 100
    clock: Callable[[], datetime] = field(default=_utcnow)
    #: ``scanner(image_ref, digest) -> ScanEvidence``: when set, publishes without a scan report
    #: queue a persisted scan job that a background worker runs (see :mod:`registry._scan`).
    scanner: Callable[[str, str], Any] | None = None
