"""A minimal OCI distribution client: image references, tag → digest, verified manifests.

What it guarantees:

* Image references are parsed by :func:`cortex_trust.ids.parse_image_ref` (the one grammar);
  this client takes a repository and a tag or digest.
* :meth:`OciClient.resolve` asks the registry which manifest a tag points to *now*
  (``HEAD /v2/<repo>/manifests/<tag>``, ``Docker-Content-Digest``), so a caller can detect a tag
  that moved away from the digest it pinned (:meth:`OciClient.check_tag`).
* :meth:`OciClient.fetch_manifest` hashes the bytes it received and compares them with the
  digest it asked for **before** anything parses them (content addressing is the only reason a
  digest pin means anything).

Errors: a registry that cannot be reached, or answers in a way we cannot trust (no digest header,
a malformed one, 5xx, auth required) raises :class:`~cortex_trust.errors.RegistryUnavailable`;
a manifest the registry does not have, bytes that do not match their digest, or a tag that moved
raise :class:`~cortex_trust.errors.EvidenceError`. This module never reads environment variables
and never uses a proxy from the environment (``trust_env=False``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import httpx

from ..errors import EvidenceError, InputError, RegistryUnavailable
from ..ids import is_digest, is_image_path, is_image_tag

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "OciClient",
]

#: What we accept for a manifest, in the order we prefer it. Without an Accept header a registry
#: may down-convert to schema 1 and answer with a digest of *that* document.
MANIFEST_MEDIA_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_ACCEPT: Final = ", ".join(MANIFEST_MEDIA_TYPES)

_MAX_MANIFEST: Final = 4 * 1024 * 1024  # distribution's own limit for a manifest body


def _check_digest_format(value: str, *, what: str) -> str:
    if not is_digest(value):
        raise InputError(f"{what} is not a sha256 digest: {value[:80]!r}",
                         advice="use sha256: followed by 64 lower-case hex digits")
    return value


class OciClient:
    """Talks to one registry over the OCI distribution API (anonymous access only).

    ``base_url`` is e.g. ``http://127.0.0.1:5000`` or ``https://registry.example``; the scheme is
    the caller's choice (plain HTTP only makes sense on loopback). Pass ``client`` to reuse an
    ``httpx.Client`` (tests pass one with a ``MockTransport``); otherwise one is created without
    environment proxies. Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, base_url: str, *, client: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._own = client is None
        self._http = client if client is not None else httpx.Client(
            timeout=timeout, trust_env=False, follow_redirects=False)

    def __enter__(self) -> OciClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own:
            self._http.close()

    def _request(self, method: str, repository: str, reference: str) -> httpx.Response:
        # Both end up in the URL path: only the reference grammar may pass.
        if not is_image_path(repository):
            raise InputError(f"not a valid repository name: {repository[:100]!r}",
                             advice="lower-case path components separated by '/', e.g. acme/my-plugin")
        if not (is_image_tag(reference) or is_digest(reference)):
            raise InputError(f"not a valid tag or digest: {reference[:100]!r}",
                             advice="a tag like 0.1.0, or sha256:<64 hex>")
        url = f"{self._base}/v2/{repository}/manifests/{reference}"
        try:
            resp = self._http.request(method, url, headers={"Accept": _ACCEPT})
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"cannot reach the OCI registry at {self._base}: {e}",
                                      advice="check the registry URL and that it is running") from None
        if resp.status_code == 404:
            raise EvidenceError(f"the registry has no manifest {repository}:{reference}"
                                if not reference.startswith("sha256:")
                                else f"the registry has no manifest {repository}@{reference}",
                                advice="check the name, tag or digest against the registry record")
        if resp.status_code in (401, 403):
            raise RegistryUnavailable(f"the OCI registry at {self._base} wants credentials "
                                      f"(HTTP {resp.status_code})",
                                      advice="cortex-trust pulls anonymously; make the image public")
        if resp.status_code != 200:
            raise RegistryUnavailable(f"the OCI registry at {self._base} answered HTTP "
                                      f"{resp.status_code} for {repository}:{reference}",
                                      advice="retry later; a registry error never counts as success")
        return resp

    def resolve(self, repository: str, reference: str) -> str:
        """The digest the registry serves for ``reference`` (a tag or a digest) right now.

        Uses ``HEAD /v2/<repository>/manifests/<reference>`` and the ``Docker-Content-Digest``
        header. Raises :class:`EvidenceError` if the registry has no such manifest,
        :class:`RegistryUnavailable` if it cannot be reached or gives no usable digest header.
        """
        resp = self._request("HEAD", repository, reference)
        digest = str(resp.headers.get("Docker-Content-Digest", ""))
        if not is_digest(digest):
            raise RegistryUnavailable(
                f"the OCI registry at {self._base} gave no usable Docker-Content-Digest for "
                f"{repository}:{reference} (got {digest[:80]!r})",
                advice="use a registry that implements the distribution spec's digest header")
        return digest

    def fetch_manifest(self, repository: str, digest: str) -> bytes:
        """The manifest bytes for ``digest``, verified: their sha256 equals ``digest``.

        The bytes are hashed before anyone parses them. Raises :class:`EvidenceError` if they do
        not match or the registry has no such manifest, :class:`InputError` for a malformed digest,
        :class:`RegistryUnavailable` if the registry cannot be reached or the body is too large.
        """
        _check_digest_format(digest, what="the manifest digest")
        resp = self._request("GET", repository, digest)
        body = resp.content
        if len(body) > _MAX_MANIFEST:
            raise RegistryUnavailable(f"manifest {repository}@{digest} is larger than 4 MiB")
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(actual, digest):
            raise EvidenceError(
                f"the registry served manifest bytes for {repository}@{digest} that hash to {actual}",
                advice="the registry or something between us is not serving what was pinned; do not use it")
        return body

    def check_tag(self, repository: str, tag: str, *, expected_digest: str) -> None:
        """Refuse a tag that no longer points at ``expected_digest`` (a re-tagged image).

        Raises :class:`EvidenceError` when the tag moved (or vanished),
        :class:`RegistryUnavailable` when the registry cannot tell us.
        """
        _check_digest_format(expected_digest, what="the pinned digest")
        now = self.resolve(repository, tag)
        if not hmac.compare_digest(now, expected_digest):
            raise EvidenceError(
                f"tag {repository}:{tag} now points at {now}, not the pinned {expected_digest}: "
                "the image was re-tagged",
                advice="refuse it; if the publisher released a new build, it needs its own version "
                "and its own decision")


