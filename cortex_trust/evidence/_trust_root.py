"""Sigstore trusted roots: loading and validating one, the pinned production root, and the
verifier built on a root.

A root is the exact JSON document that was loaded and validated, so it cannot change between
loading and verifying. Roots are files, never the sigstore-python TUF cache in the home
directory; a file can only be named as the production root when it is the pinned one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cortex_trust.errors import InputError

from .._io import ReadRefused, read_bounded
from .._text import first_line as _first_line

if TYPE_CHECKING:  # sigstore is slow to import: only inside the functions that verify
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier

__all__ = [
    "MAX_TRUSTED_ROOT_BYTES",
    "PRODUCTION_ROOT_NAME",
    "TrustRoot",
    "load_trust_root",
    "production_trust_root",
]

#: Trusted-root documents larger than this are refused (the production root is ~7 KB).
MAX_TRUSTED_ROOT_BYTES = 1024 * 1024
#: Name of the Sigstore public-good production root shipped with the package.
PRODUCTION_ROOT_NAME = "sigstore-production"


@dataclass(frozen=True)
class TrustRoot:
    """A Sigstore trusted root (Fulcio CAs, transparency logs, CT logs, timestamp authorities).

    ``document`` is the exact JSON content that was loaded and validated, so the root cannot
    change between loading and verifying. Build one with :func:`load_trust_root` or
    :func:`production_trust_root`; ``name`` is what ``SignatureEvidence.trusted_root`` reports.
    """

    name: str
    source: str
    document: bytes = field(repr=False)



def _parse_trust_root(document: bytes, *, source: str) -> None:
    """Validate a trusted-root document with sigstore's own parser (raises InputError)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    try:
        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(document))
        # Each of these raises when the root lacks what verification needs.
        root.get_fulcio_certs()
        if not root._inner.tlogs:
            raise SigstoreError("it lists no transparency log")
    except (SigstoreError, ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"{source} is not a usable Sigstore trusted root: {_first_line(exc)}",
            advice="pass a trusted_root.json of the Sigstore instance that signed the bundle "
            "(media type application/vnd.dev.sigstore.trustedroot+json;version=0.1)",
        ) from exc


def load_trust_root(path: Path | str, *, name: str | None = None) -> TrustRoot:
    """Load and validate a Sigstore ``trusted_root.json`` file (a custom or private instance).

    ``name`` defaults to the file's stem. Raises :class:`InputError` when the file cannot be
    read (or is not a regular file), is larger than :data:`MAX_TRUSTED_ROOT_BYTES`, is not a
    usable trusted root, or would be named :data:`PRODUCTION_ROOT_NAME` without being the
    pinned production root.
    """
    p = Path(path)
    try:
        # The one bounded reader: a FIFO (or /dev/stdin) never blocks, anything but a regular
        # file is refused before a byte is read, at most the bound + 1 byte is read.
        document = read_bounded(p, max_bytes=MAX_TRUSTED_ROOT_BYTES)
    except ReadRefused as e:
        if e.kind in ("directory", "not_regular"):
            raise InputError(f"cannot read trusted root {p}: not a regular file",
                             advice="pass the path of a trusted_root.json file") from None
        if e.kind == "invalid":  # a NUL character in the path
            raise InputError(f"cannot read trusted root {str(p)!r}: not a valid path",
                             advice="check the --trusted-root path") from None
        if e.kind == "too_large":
            raise InputError(f"trusted root {p} is larger than {MAX_TRUSTED_ROOT_BYTES} bytes",
                             advice="pass a Sigstore trusted_root.json (a few kilobytes)") from None
        raise InputError(f"cannot read trusted root {p}: {e.detail}",
                         advice="check the --trusted-root path") from None
    _parse_trust_root(document, source=str(p))
    chosen = name or p.stem
    if chosen == PRODUCTION_ROOT_NAME and document != production_trust_root().document:
        # ``trusted_root`` in the evidence is how output and policy tell the public-good
        # instance from any other: a file called sigstore-production.json must not pose as it.
        raise InputError(
            f"trusted root {p} is not the pinned Sigstore production root, so it cannot be "
            f"named {PRODUCTION_ROOT_NAME!r}",
            advice="rename the file (its name is what the evidence reports), or drop it: the "
            "production root is always tried first",
        )
    return TrustRoot(name=chosen, source=str(p), document=document)


@functools.cache
def production_trust_root() -> TrustRoot:
    """The Sigstore public-good production root, pinned as a file shipped in this package.

    Never the sigstore-python TUF cache in the home directory (``Verifier.production()``):
    that cache is trusted without verification when offline. Updating the pinned root is a
    release of cortex-trust.
    """
    ref = resources.files("cortex_trust").joinpath("_roots/production.json")
    document = ref.read_bytes()
    _parse_trust_root(document, source="cortex_trust/_roots/production.json")
    return TrustRoot(
        name=PRODUCTION_ROOT_NAME, source="cortex_trust/_roots/production.json", document=document
    )


@functools.lru_cache(maxsize=32)
def _sigstore_root(document: bytes) -> TrustedRoot:
    # Keyed by the document bytes, so equal roots share one parse and a changed root never
    # reuses a stale one.
    from sigstore.models import TrustedRoot
    from sigstore_models.trustroot import v1 as trustroot_v1

    return TrustedRoot(trustroot_v1.TrustedRoot.from_json(document))


@functools.cache
def _recording_verifier_type() -> type[Verifier]:
    from sigstore.verify import Verifier

    class _RecordingVerifier(Verifier):
        """A ``Verifier`` that keeps the verified signing times it established.

        sigstore-python (pinned 4.5.1) establishes them inside verification (SET-backed log
        time, RFC 3161 timestamps that chain to the root's TSAs) but does not return them;
        recomputing would verify every TSA token twice. One instance per verification call
        (construction is cheap), so nothing is shared between threads.
        """

        established: list[Any]

        def _establish_time(self, bundle: Bundle) -> list[Any]:
            times = super()._establish_time(bundle)
            self.established = list(times)
            return times

    return _RecordingVerifier


def _verifier(document: bytes) -> Verifier:
    return _recording_verifier_type()(trusted_root=_sigstore_root(document))
