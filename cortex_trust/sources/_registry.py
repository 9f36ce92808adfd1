"""A typed HTTP client for the cortex-trust registry API (``/api/v1``).

Used by the CLI (publish, review, revoke), the installer and federation. It takes its base URL
and token as arguments (no environment variables), never logs the token, and translates every
failure at this boundary:

* :class:`~cortex_trust.errors.RegistryUnavailable` when the registry cannot be reached, times
  out, answers 5xx or a redirect (never followed), sends a body larger than
  ``max_response_bytes``, or answers something that is not the documented JSON for what was
  asked (another plugin or version, a cursor that does not move forward): we cannot trust it;
* :class:`RegistryRequestError` (an :class:`~cortex_trust.errors.InputError`) when the registry
  refused the request (4xx) with its ``{"error": {"code", "message", "fix"}}`` document:
  ``status`` and ``code`` say why (``VERSION_CONFLICT``, ``NAMESPACE_FORBIDDEN``...).

A 2xx answer is only a success once its body parsed into the expected model, one of the wire
models the registry itself is built on (:mod:`cortex_trust.sources._wire`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from .._json import load_json
from ..errors import InputError, RegistryUnavailable
from ..policy import PolicyInput
from ._wire import (
    DisputeList,
    GovernanceInfo,
    LogProof,
    OidcAudience,
    OidcCredential,
    PluginDetail,
    PluginPage,
    PluginSummary,
    PromotionDoc,
    RevocationPage,
    RevokedVersions,
    VersionDetail,
    VersionList,
    VersionLog,
    VersionSummary,
)

__all__ = ["RegistryClient", "RegistryRequestError"]

_M = TypeVar("_M", bound=BaseModel)

#: Default cap on one response body: far above any document the registry serves (a version
#: document and a bundle are each capped at 512 KiB on publish), far below exhausting memory.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class RegistryRequestError(InputError):
    """The registry refused the request (HTTP 4xx). ``status`` and ``code`` say why."""

    def __init__(self, message: str, *, status: int, code: str, advice: str | None = None) -> None:
        super().__init__(message, advice=advice)
        self.status = status
        self.code = code


class RegistryClient:
    """Talk to one registry. Use as a context manager, or call :meth:`close`.

    ``token`` is sent as ``Authorization: Bearer``; it is never part of an error message.
    ``transport`` lets tests and embedders supply an httpx transport.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"{base_url!r} is not an http(s) URL",
                             advice="pass the registry URL, e.g. https://registry.cortexpersist.com")
        headers = {"Accept": "application/json", "User-Agent": "cortex-trust"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        self._timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  transport=transport, follow_redirects=False)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # ------------------------------------------------------------------------------- reads

    def data_as_of(self, now: datetime) -> datetime:
        """The moment this client's answers are known to be current: ``now`` for a registry
        answering live (an index answers as of when its timestamp was signed)."""
        return now

    def list_plugins(self, *, q: str | None = None, tier: str | None = None,
                     namespace: str | None = None, cursor: str | None = None,
                     limit: int = 20) -> PluginPage:
        """One page of plugins matching ``q`` (name, description, capabilities) and filters."""
        params = {k: v for k, v in (("q", q), ("tier", tier), ("namespace", namespace),
                                    ("cursor", cursor)) if v is not None}
        params["limit"] = str(limit)
        return self._call("GET", "/api/v1/plugins", PluginPage, params=params)

    def iter_plugins(self, *, q: str | None = None, tier: str | None = None,
                     namespace: str | None = None, page_size: int = 100) -> Iterator[PluginSummary]:
        """Every matching plugin, following cursors.

        Raises :class:`RegistryUnavailable` when the registry hands back a cursor it already
        gave, or an empty page with a cursor (a loop that would never end)."""
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list_plugins(q=q, tier=tier, namespace=namespace, cursor=cursor,
                                     limit=page_size)
            yield from page.items
            if page.next_cursor is None:
                return
            # The registry only hands out a cursor after a full page: an empty page that asks
            # for more, or a cursor seen before, would make this loop forever.
            if page.next_cursor in seen or not page.items:
                raise self._untrusted("GET", "/api/v1/plugins", "a cursor that does not advance")
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    def get_plugin(self, namespace: str, name: str) -> PluginDetail:
        """A plugin's details. Raises :class:`RegistryRequestError` (404) if unknown."""
        path = f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}"
        detail = self._call("GET", path, PluginDetail)
        if (detail.namespace, detail.name) != (namespace, name):
            raise self._untrusted("GET", path, "a document about another plugin")
        return detail

    def list_versions(self, namespace: str, name: str) -> tuple[VersionSummary, ...]:
        """Every version of a plugin, oldest first."""
        path = f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions"
        page = self._call("GET", path, VersionList)
        if any((v.namespace, v.name) != (namespace, name) for v in page.items):
            raise self._untrusted("GET", path, "versions of another plugin")
        return page.items

    def get_version(self, namespace: str, name: str, version: str) -> VersionDetail:
        """One version with its evidence summary and decision.

        Raises :class:`RegistryUnavailable` when the document is about another plugin or
        version (its decision must not stand in for the one asked about)."""
        path = f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}"
        detail = self._call("GET", path, VersionDetail)
        if (detail.namespace, detail.name, detail.version) != (namespace, name, version):
            raise self._untrusted("GET", path, "a document about another version")
        return detail

    def get_input(self, namespace: str, name: str, version: str) -> PolicyInput:
        """The input document the registry's policy sees for one version now, rebuilt from its
        stored facts (``GET .../versions/{version}/input``).

        Raises :class:`RegistryUnavailable` when the document is about another plugin or
        version."""
        path = f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}/input"
        policy_input = self._call("GET", path, PolicyInput)
        plugin = policy_input.plugin
        if (plugin.namespace, plugin.name, plugin.version) != (namespace, name, version):
            raise self._untrusted("GET", path, "an input about another version")
        return policy_input

    def search(self, q: str = "", *, tier: str | None = None, namespace: str | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` matching plugins as JSON-ready dicts (the :class:`PluginSummary`
        fields), following cursors: a convenience for renderers."""
        out: list[dict[str, Any]] = []
        for item in self.iter_plugins(q=q or None, tier=tier, namespace=namespace,
                                      page_size=min(max(limit, 1), 100)):
            out.append(item.model_dump(mode="json"))
            if len(out) >= limit:
                break
        return out

    def get_bundle(self, namespace: str, name: str, version: str) -> bytes:
        """The Sigstore bundle published with a version, as bytes (verify it yourself)."""
        path = (f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}"
                "/bundle")
        content = self._read("GET", path)
        if not content.lstrip().startswith(b"{"):
            raise RegistryUnavailable(f"the registry {self.base_url} served a bundle that is "
                                      "not JSON", advice="check that the URL is a cortex registry")
        return content

    def get_receipt(self, namespace: str, name: str, version: str, *, every: bool = False) -> bytes:
        """The receipt of a version's current decision (a DSSE envelope, JSON), or with
        ``every`` all of its receipts (``{"items": [...]}``, oldest first), as bytes: check them
        with :func:`cortex_trust.policy.verify_receipt`. The bytes are always a JSON object
        (read with :func:`cortex_trust._json.load_json`); anything else raises
        :class:`RegistryUnavailable`."""
        path = (f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}"
                f"/{'receipts' if every else 'receipt'}")
        content = self._read("GET", path)
        try:
            document = load_json(content)
        except (ValueError, UnicodeDecodeError):
            document = None
        if not isinstance(document, dict):
            raise RegistryUnavailable(f"the registry {self.base_url} served a receipt that is "
                                      "not a JSON object", advice="check that the URL is a cortex registry")
        return content

    def revocations(self, *, cursor: int = 0, limit: int = 500) -> RevocationPage:
        """Revocations after ``cursor`` (0: from the start).

        Raises :class:`RegistryUnavailable` when the page does not move forward: an entry at or
        before ``cursor``, or a ``next_cursor`` before ``cursor`` or before its last entry."""
        page = self._call("GET", "/api/v1/revocations", RevocationPage,
                          params={"cursor": str(cursor), "limit": str(limit)})
        return self._forward(page, cursor)

    def wait_revocations(self, *, cursor: int, wait: int, limit: int = 500) -> RevocationPage:
        """A long-poll of the feed: the revocations after ``cursor`` as soon as there is one,
        or an empty page once the registry waited ``wait`` seconds (it bounds the wait itself).
        The request's timeout is ``wait`` plus this client's timeout. Same checks as
        :meth:`revocations`."""
        path = "/api/v1/revocations"
        content = self._send("GET", path, params={"cursor": str(cursor), "limit": str(limit),
                                                  "wait": str(wait)},
                             timeout=wait + self._timeout).content
        return self._forward(self._parse("GET", path, RevocationPage, content), cursor)

    def wait_log_size(self, *, after: int, wait: int) -> int:
        """A long-poll of the audit log's size: the number of entries as soon as it is above
        ``after``, or the unchanged size once the registry waited ``wait`` seconds (it bounds
        the wait itself). A size that is not a count, or below ``after`` (a log never shrinks),
        is :class:`RegistryUnavailable`; a registry without the endpoint answers 404
        (:class:`RegistryRequestError`)."""
        path = "/api/v1/log/size"
        content = self._send("GET", path, params={"after": str(after), "wait": str(wait)},
                             timeout=wait + self._timeout).content
        try:
            size = load_json(content)["size"]
        except (ValueError, KeyError, TypeError):
            size = None
        if type(size) is not int or size < after:
            raise self._untrusted("GET", path, "a log size that is not a count at or above the cursor")
        return size

    def _forward(self, page: RevocationPage, cursor: int) -> RevocationPage:
        """``page`` if it moves forward from ``cursor``, else :class:`RegistryUnavailable`."""
        last = max((e.cursor for e in page.items), default=cursor)
        if page.next_cursor < max(cursor, last) or any(e.cursor <= cursor for e in page.items):
            raise self._untrusted("GET", "/api/v1/revocations", "a cursor that goes backwards")
        return page

    # ------------------------------------------------------------------------------ writes

    def publish(self, *, manifest: str, image: str, bundle: str, tests_junit: str | None = None,
                scan_report: str | None = None, namespace: str | None = None,
                scan_attestation: str | None = None,
                scan_scanners: Sequence[str] | None = None) -> VersionDetail:
        """Publish a version (publisher token). ``image`` must be pinned by digest, and
        ``bundle`` sign that digest (another digest is a 422 ``BUNDLE_DIGEST_MISMATCH``).

        ``scan_report`` is the publisher's own Trivy report (recorded as self-reported) and
        ``scan_scanners`` the scanners it was produced with (``vuln``, ``secret``,
        ``misconfig``: a clean report cannot show them); ``scan_attestation`` a Sigstore bundle
        with a signed vulnerability-scan attestation."""
        body: dict[str, Any] = {"manifest": manifest, "image": image, "bundle": bundle}
        for key, value in (("tests_junit", tests_junit), ("scan_report", scan_report),
                           ("scan_attestation", scan_attestation), ("namespace", namespace),
                           ("scan_scanners", list(scan_scanners) if scan_scanners is not None
                            else None)):
            if value is not None:
                body[key] = value
        return self._call("POST", "/api/v1/plugins", VersionDetail, json_body=body)

    def review(self, namespace: str, name: str, version: str, *,
               status: Literal["approved", "rejected", "changes_requested"],
               note: str | None = None, digest: str | None = None) -> VersionDetail:
        """Record a review (reviewer token); ``digest`` pins what was reviewed."""
        body: dict[str, Any] = {"status": status}
        if note is not None:
            body["note"] = note
        if digest is not None:
            body["digest"] = digest
        return self._call("POST", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/"
                                  f"{_seg(version)}/reviews", VersionDetail, json_body=body)

    def withdraw_review(self, namespace: str, name: str, version: str) -> VersionDetail:
        """Withdraw this reviewer token's own review of a version (the registry refuses to
        withdraw anyone else's: 403 ``REVIEW_NOT_YOURS``; none to withdraw: 404
        ``REVIEW_NOT_FOUND``); returns the re-evaluated version. Raises
        :class:`RegistryUnavailable` when the answer is about another version."""
        path = (f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}"
                "/reviews/withdraw")
        detail = self._call("POST", path, VersionDetail)
        if (detail.namespace, detail.name, detail.version) != (namespace, name, version):
            raise self._untrusted("POST", path, "a document about another version")
        return detail

    def report_usage(self, namespace: str, name: str, version: str, *,
                     digest: str) -> VersionDetail:
        """Report production use of ``digest`` (installation token)."""
        return self._call("POST", "/api/v1/usage", VersionDetail,
                          json_body={"namespace": namespace, "name": name, "version": version,
                                     "digest": digest})

    def revoke(self, namespace: str, name: str, version: str, *, reason: str) -> VersionDetail:
        """Revoke one version (publisher of the namespace, or admin); the revocation reaches
        that version only (:meth:`revoke_digest` reaches an image under every name)."""
        return self._call("POST", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/"
                                  f"{_seg(version)}/revoke", VersionDetail,
                          json_body={"reason": reason})

    def yank(self, namespace: str, name: str, version: str, *, reason: str) -> VersionDetail:
        """Yank one version (publisher of the namespace, or admin): ranges skip it, an exact
        pin still takes it. Idempotent. A revoked version is refused (409
        ``VERSION_REVOKED``). Raises :class:`RegistryUnavailable` when the answer is about
        another version."""
        return self._state_change("yank", namespace, name, version, {"reason": reason},
                                  expect="yanked")

    def unyank(self, namespace: str, name: str, version: str) -> VersionDetail:
        """Make a yanked version active again (publisher of the namespace, or admin).
        Idempotent; a revoked version is refused (409 ``VERSION_REVOKED``)."""
        return self._state_change("unyank", namespace, name, version, None, expect="active")

    def _state_change(self, op: str, namespace: str, name: str, version: str,
                      body: dict[str, Any] | None, *, expect: str) -> VersionDetail:
        path = (f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}"
                f"/{op}")
        detail = self._call("POST", path, VersionDetail, json_body=body)
        if (detail.namespace, detail.name, detail.version) != (namespace, name, version):
            raise self._untrusted("POST", path, "a document about another version")
        # A 200 is a success only if the version is now in the state asked for.
        if detail.state != expect:
            raise self._untrusted("POST", path, f"a version in state {detail.state!r}, not "
                                                f"{expect!r}")
        return detail

    def revoke_digest(self, digest: str, *, reason: str) -> tuple[str, ...]:
        """Revoke every version carrying ``digest``, under any name (admin); returns the
        versions that got a digest-wide revocation entry."""
        result = self._call("POST", "/api/v1/revocations/digest", RevokedVersions,
                            json_body={"digest": digest, "reason": reason})
        return result.revoked

    # ---------------------------------------------------------------- trusted publishing

    def oidc_audience(self) -> str:
        """The audience an OIDC identity token must be issued for to be exchanged here."""
        return self._call("GET", "/api/v1/oidc/audience", OidcAudience).audience

    def exchange_oidc(self, identity_token: str, *, namespace: str | None = None) -> OidcCredential:
        """A short-lived publisher credential for a CI identity token (sent once, as the bearer
        of this request only; never logged). ``namespace`` chooses when the identity is a
        trusted publisher of several. Raises :class:`RegistryUnavailable` when the credential
        is for another namespace than the one asked for."""
        body = {"namespace": namespace} if namespace is not None else {}
        # Sent as this request's bearer only (never through _read: a write, and not this
        # client's token).
        path = "/api/v1/oidc/exchange"
        response = self._send("POST", path, json_body=body,
                              extra_headers={"Authorization": f"Bearer {identity_token}"})
        credential = self._parse("POST", path, OidcCredential, response.content)
        if namespace is not None and credential.namespace != namespace:
            raise self._untrusted("POST", path, "a credential for another namespace")
        return credential

    # ------------------------------------------------------------------ the transparency log

    def log_checkpoint(self) -> bytes:
        """The registry's current signed checkpoint note, as bytes (verify it with the log's
        verifier key). Raises :class:`RegistryRequestError` (404 ``LOG_NOT_SIGNED``) when the
        registry signs none."""
        from ._transparency import MAX_NOTE_BYTES

        content = self._read("GET", "/api/v1/log/checkpoint")
        if len(content) > MAX_NOTE_BYTES:
            raise self._untrusted("GET", "/api/v1/log/checkpoint", "an oversized checkpoint")
        return content

    def version_log(self, namespace: str, name: str, version: str) -> VersionLog:
        """The leaves that recorded a version (see :class:`VersionLog`)."""
        return self._call("GET", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/"
                                 f"{_seg(version)}/log", VersionLog)

    def log_inclusion(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves (hashes; verify
        with :func:`cortex_trust.sources.verify_inclusion`)."""
        path = "/api/v1/log/proof/inclusion"
        proof = self._call("GET", path, LogProof, params={"index": str(index), "size": str(size)})
        if (proof.index, proof.size) != (index, size):
            raise self._untrusted("GET", path, "a proof for another leaf or size")
        return self._hashes(path, proof.hashes)

    def log_consistency(self, first: int, second: int) -> list[bytes]:
        """The consistency proof from the tree of ``first`` leaves to that of ``second``."""
        path = "/api/v1/log/proof/consistency"
        proof = self._call("GET", path, LogProof,
                           params={"first": str(first), "second": str(second)})
        if (proof.first, proof.second) != (first, second):
            raise self._untrusted("GET", path, "a proof between other sizes")
        return self._hashes(path, proof.hashes)

    def _hashes(self, path: str, values: tuple[str, ...]) -> list[bytes]:
        import base64
        import binascii

        out = []
        for v in values:
            try:
                raw = base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise self._untrusted("GET", path, "a proof that is not a list of hashes")
            out.append(raw)
        return out

    def promote(self, namespace: str, name: str, version: str) -> PromotionDoc:
        """Request the version's promotion to community (publisher of the namespace, or admin):
        the registry opens a pull request on its registry repository, or returns the existing
        one. Raises :class:`RegistryUnavailable` when the answer is about another version."""
        path = f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/{_seg(version)}/promotion"
        doc = self._call("POST", path, PromotionDoc)
        if (doc.namespace, doc.name, doc.version) != (namespace, name, version):
            raise self._untrusted("POST", path, "a promotion of another version")
        return doc

    def governance(self) -> GovernanceInfo:
        """Where this registry's promotions and disputes happen."""
        return self._call("GET", "/api/v1/governance", GovernanceInfo)

    def record_dispute(self, namespace: str, name: str, issue: int) -> DisputeList:
        """Ask the registry to record issue ``issue`` of its repository as a dispute of
        ``namespace/name`` (any token); returns the plugin's disputes."""
        return self._call("POST", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/disputes",
                          DisputeList, json_body={"issue": issue})

    def disputes(self, namespace: str, name: str) -> DisputeList:
        """Every dispute of a plugin, open and closed."""
        return self._call("GET", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/disputes", DisputeList)

    def revoke_identity(self, *, identity: str, issuer: str, reason: str) -> tuple[str, ...]:
        """Revoke every version signed by ``identity`` + ``issuer`` (admin); returns them."""
        result = self._call("POST", "/api/v1/revocations/identity", RevokedVersions,
                            json_body={"identity": identity, "issuer": issuer, "reason": reason})
        return result.revoked

    # ---------------------------------------------------------------------------- internals

    def _call(self, method: str, path: str, model: type[_M], *,
              params: dict[str, str] | None = None, json_body: Any = None) -> _M:
        return self._parse(method, path, model, self._read(method, path, params=params, json_body=json_body))

    def _parse(self, method: str, path: str, model: type[_M], content: bytes) -> _M:
        """``content`` (a 2xx answer's body) as ``model``, or :class:`RegistryUnavailable`."""
        try:
            # Bounds first (nesting, number sizes, NaN): pydantic's parser has looser ones.
            load_json(content)
            return model.model_validate_json(content)
        except (ValidationError, ValueError):
            raise RegistryUnavailable(
                f"the registry {self.base_url} answered {method} {path} with a document this "
                "client does not understand", advice="check that the URL is a cortex registry "
                "and that this cortex-trust is recent enough") from None

    def _read(self, method: str, path: str, *, params: dict[str, str] | None = None,
              json_body: Any = None) -> bytes:
        """The body of a 2xx answer to one request (the one place answers come from)."""
        return self._send(method, path, params=params, json_body=json_body).content

    def _untrusted(self, method: str, path: str, what: str) -> RegistryUnavailable:
        return RegistryUnavailable(
            f"the registry {self.base_url} answered {method} {path} with {what}",
            advice="check that the URL is a cortex registry; do not trust its answers until "
                   "its operator fixes it")

    def _send(self, method: str, path: str, *, params: dict[str, str] | None = None,
              json_body: Any = None, extra_headers: dict[str, str] | None = None,
              timeout: float | None = None) -> httpx.Response:
        """Send one request (``timeout``: this one's, instead of the client's); return a 2xx
        response or raise (see the module docstring)."""
        try:
            # Streamed so the body is read only up to the cap (a hostile or broken server
            # could otherwise make us buffer gigabytes); counted after decompression, so a
            # gzip bomb is capped too.
            with self._http.stream(method, path, params=params, json=json_body,
                                   headers=extra_headers,
                                   timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
                                   ) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        raise RegistryUnavailable(
                            f"the registry {self.base_url} sent a response larger than "
                            f"{self.max_response_bytes} bytes",
                            advice="check that the URL is a cortex registry")
            headers = [(k, v) for k, v in response.headers.multi_items()
                       if k.lower() not in ("content-encoding", "content-length",
                                            "transfer-encoding")]
            response = httpx.Response(response.status_code, headers=headers,
                                      content=bytes(body), request=response.request)
        except httpx.TimeoutException:
            raise RegistryUnavailable(f"the registry {self.base_url} timed out",
                                      advice="retry later or raise the timeout") from None
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"cannot reach the registry {self.base_url}: "
                                      f"{type(e).__name__}",
                                      advice="check the registry URL and your network") from None
        # Only 2xx is a success and 4xx a refusal: a redirect is never followed nor trusted.
        if not (200 <= response.status_code < 300 or 400 <= response.status_code < 500):
            raise RegistryUnavailable(
                f"the registry {self.base_url} answered HTTP {response.status_code}"
                f"{_error_suffix(response)}", advice="retry later; the registry has a problem")
        if response.status_code >= 400:
            code, message, fix = _error_parts(response)
            raise RegistryRequestError(message, status=response.status_code, code=code,
                                       advice=fix or None)
        return response


def _seg(value: str) -> str:
    """One URL path segment, percent-encoded (no ``/`` smuggling)."""
    return quote(value, safe="")


def _error_parts(response: httpx.Response) -> tuple[str, str, str]:
    try:
        err = load_json(response.content)["error"]
        code, message, fix = str(err["code"]), str(err["message"]), str(err.get("fix") or "")
    except (ValueError, KeyError, TypeError):
        return ("HTTP_" + str(response.status_code),
                f"the registry refused the request (HTTP {response.status_code})", "")
    return code, message, fix


def _error_suffix(response: httpx.Response) -> str:
    code, message, _ = _error_parts(response)
    return f" ({code}: {message})" if not code.startswith("HTTP_") else ""
