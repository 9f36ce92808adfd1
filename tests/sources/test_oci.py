"""The OCI distribution client against a local stand-in speaking the real wire format (fast).

The slow tests in test_containers.py run the same client against Debian's docker-registry.
"""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cortex_trust.sources._oci as oci_mod
from cortex_trust.errors import EvidenceError, InputError, RegistryUnavailable
from cortex_trust.ids import ImageRefError, parse_image_ref
from cortex_trust.sources import OciClient

MANIFEST = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": "sha256:" + "0" * 64, "size": 1}}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def _registry(*, tags: dict[str, str], blobs: dict[str, bytes],
              header: str | None = "auto", status: int | None = None) -> httpx.Client:
    """A distribution-API stand-in: HEAD/GET /v2/<repo>/manifests/<ref>."""
    seen_accept: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen_accept.append(request.headers.get("accept", ""))
        if status is not None:
            return httpx.Response(status)
        prefix = "/v2/acme/hello/manifests/"
        if not request.url.path.startswith(prefix):
            return httpx.Response(404)
        ref = request.url.path[len(prefix):]
        digest = tags.get(ref, ref)
        if digest not in blobs:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if header == "auto":
            headers["Docker-Content-Digest"] = digest
        elif header is not None:
            headers["Docker-Content-Digest"] = header
        body = b"" if request.method == "HEAD" else blobs[digest]
        return httpx.Response(200, headers=headers, content=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    client.seen_accept = seen_accept  # type: ignore[attr-defined]
    return client


def test_public_surface() -> None:
    assert sorted(oci_mod.__all__) == sorted(["MANIFEST_MEDIA_TYPES", "OciClient"])


def test_resolve_tag_to_digest_with_accept_headers() -> None:
    http = _registry(tags={"0.1.0": DIGEST}, blobs={DIGEST: MANIFEST})
    with OciClient("http://reg", client=http) as oci:
        assert oci.resolve("acme/hello", "0.1.0") == DIGEST
    accept = http.seen_accept[0]  # type: ignore[attr-defined]
    assert "application/vnd.oci.image.manifest.v1+json" in accept
    assert "application/vnd.docker.distribution.manifest.v2+json" in accept


def test_fetch_manifest_verifies_bytes() -> None:
    http = _registry(tags={}, blobs={DIGEST: MANIFEST})
    assert OciClient("http://reg", client=http).fetch_manifest("acme/hello", DIGEST) == MANIFEST


def test_fetch_manifest_refuses_bytes_that_do_not_hash_to_the_digest() -> None:
    lie = "sha256:" + "1" * 64
    http = _registry(tags={}, blobs={lie: MANIFEST})
    with pytest.raises(EvidenceError, match="hash to"):
        OciClient("http://reg", client=http).fetch_manifest("acme/hello", lie)


def test_moved_tag_is_detected() -> None:
    other = b'{"schemaVersion": 2, "moved": true}'
    other_digest = "sha256:" + hashlib.sha256(other).hexdigest()
    http = _registry(tags={"0.1.0": other_digest}, blobs={DIGEST: MANIFEST, other_digest: other})
    oci = OciClient("http://reg", client=http)
    with pytest.raises(EvidenceError, match="re-tagged"):
        oci.check_tag("acme/hello", "0.1.0", expected_digest=DIGEST)
    oci.check_tag("acme/hello", "0.1.0", expected_digest=other_digest)


def test_missing_manifest_is_evidence_error() -> None:
    http = _registry(tags={}, blobs={})
    with pytest.raises(EvidenceError, match="no manifest"):
        OciClient("http://reg", client=http).resolve("acme/hello", "9.9.9")


@pytest.mark.parametrize("header", [None, "", "md5:abc", "sha256:short", "sha256:" + "G" * 64])
def test_unusable_digest_header_is_unavailable(header: str | None) -> None:
    http = _registry(tags={"0.1.0": DIGEST}, blobs={DIGEST: MANIFEST}, header=header)
    with pytest.raises(RegistryUnavailable, match="Docker-Content-Digest"):
        OciClient("http://reg", client=http).resolve("acme/hello", "0.1.0")


@pytest.mark.parametrize("status", [401, 403, 500, 503, 302])
def test_registry_errors_are_never_success(status: int) -> None:
    http = _registry(tags={}, blobs={}, status=status)
    with pytest.raises(RegistryUnavailable):
        OciClient("http://reg", client=http).resolve("acme/hello", "0.1.0")


def test_unreachable_registry() -> None:
    with OciClient("http://127.0.0.1:1", timeout=1) as oci, pytest.raises(RegistryUnavailable):
        oci.resolve("acme/hello", "0.1.0")


@pytest.mark.parametrize(("repo", "ref"), [("acme/../x", "0.1.0"), ("acme/hello", "../../v2"),
                                           ("acme/hello", "a b"), ("Acme/x", "1")])
def test_path_injection_is_refused(repo: str, ref: str) -> None:
    http = _registry(tags={}, blobs={})
    with pytest.raises(InputError):
        OciClient("http://reg", client=http).resolve(repo, ref)


def test_parse_refs() -> None:
    r = parse_image_ref(f"127.0.0.1:5000/acme/hello:0.1.0@{DIGEST}")
    assert (r.host, r.path, r.tag, r.digest) == ("127.0.0.1:5000", "acme/hello", "0.1.0", DIGEST)
    assert r.repository == "127.0.0.1:5000/acme/hello"
    assert r.pinned == f"127.0.0.1:5000/acme/hello@{DIGEST}"
    assert str(r) == f"127.0.0.1:5000/acme/hello:0.1.0@{DIGEST}"
    assert parse_image_ref("ghcr.io/acme/hello:1").digest is None
    with pytest.raises(InputError, match="not pinned"):
        parse_image_ref("ghcr.io/acme/hello:1", require_digest=True)
    with pytest.raises(InputError):
        _ = parse_image_ref("ghcr.io/acme/hello:1").pinned
    # the engine-facing callers need a host: "acme/x" never means Docker Hub silently
    with pytest.raises(ImageRefError, match="no registry host"):
        parse_image_ref(f"acme/hello@{DIGEST}", require_host=True)


@given(st.text(max_size=80))
def test_parse_never_crashes(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except InputError:
        return
    assert str(ref) == text
