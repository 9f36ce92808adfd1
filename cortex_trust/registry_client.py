"""A typed HTTP client for the cortex-trust registry API (``/api/v1``).

Used by the CLI (publish, review, revoke), the installer and federation. It takes its base URL
and token as arguments (no environment variables), never logs the token, and translates every
failure at this boundary:

* :class:`~cortex_trust.errors.RegistryUnavailable` when the registry cannot be reached, times
  out, answers 5xx, or answers something that is not the documented JSON (we cannot trust it);
* :class:`RegistryRequestError` (an :class:`~cortex_trust.errors.InputError`) when the registry
  refused the request (4xx) with its ``{"error": {"code", "message", "fix"}}`` document:
  ``status`` and ``code`` say why (``VERSION_CONFLICT``, ``NAMESPACE_FORBIDDEN``...).

A 2xx answer is only a success once its body parsed into the expected model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from .decision import Decision
from .errors import InputError, RegistryUnavailable

__all__ = [
    "PluginDetail",
    "PluginPage",
    "PluginSummary",
    "RegistryClient",
    "RegistryRequestError",
    "RevocationEntry",
    "RevocationPage",
    "VersionDetail",
    "VersionSummary",
]

_M = TypeVar("_M", bound=BaseModel)


class _Doc(BaseModel):
    # Newer registries may add fields; unknown fields are ignored, known ones are strict.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PluginSummary(_Doc):
    """One item of ``GET /api/v1/plugins``."""

    namespace: str
    name: str
    full_name: str
    description: str
    latest_version: str | None
    tier: str | None
    action: str | None


class PluginPage(_Doc):
    """One page of the plugin list; pass ``next_cursor`` back for the next page."""

    items: tuple[PluginSummary, ...]
    next_cursor: str | None


class PluginDetail(PluginSummary):
    """``GET /api/v1/plugins/{namespace}/{name}``."""

    capabilities: tuple[str, ...]
    updated_at: str
    versions: int


class VersionSummary(_Doc):
    """One item of ``GET .../versions``."""

    namespace: str
    name: str
    version: str
    image: str
    digest: str
    state: Literal["active", "yanked", "revoked"]
    tier: str
    action: str
    published_at: str


class VersionDetail(VersionSummary):
    """``GET .../versions/{version}``: manifest, evidence summary and the registry's decision."""

    policy_revision: str
    published_by: str
    signer: dict[str, Any] | None
    manifest: dict[str, Any] | None
    evidence: dict[str, Any]
    decision: Decision
    revocation: dict[str, Any] | None


class RevocationEntry(_Doc):
    """One entry of the revocation feed."""

    cursor: int
    namespace: str
    name: str
    version: str
    digest: str
    reason: str
    identity: str | None
    issuer: str | None
    revoked_at: str


class RevocationPage(_Doc):
    """Revocations after a cursor; ``next_cursor`` is where to continue from."""

    items: tuple[RevocationEntry, ...]
    next_cursor: int


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
                 transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(f"{base_url!r} is not an http(s) URL",
                             advice="pass the registry URL, e.g. https://registry.cortex.dev")
        headers = {"Accept": "application/json", "User-Agent": "cortex-trust"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
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
        """Every matching plugin, following cursors."""
        cursor: str | None = None
        while True:
            page = self.list_plugins(q=q, tier=tier, namespace=namespace, cursor=cursor,
                                     limit=page_size)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_plugin(self, namespace: str, name: str) -> PluginDetail:
        """A plugin's details. Raises :class:`RegistryRequestError` (404) if unknown."""
        return self._call("GET", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}", PluginDetail)

    def list_versions(self, namespace: str, name: str) -> tuple[VersionSummary, ...]:
        """Every version of a plugin, oldest first."""
        page = self._call("GET", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions",
                          _VersionList)
        return page.items

    def get_version(self, namespace: str, name: str, version: str) -> VersionDetail:
        """One version with its evidence summary and decision."""
        return self._call("GET", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/"
                                 f"{_seg(version)}", VersionDetail)

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
        response = self._send("GET", path)
        if not response.content.lstrip().startswith(b"{"):
            raise RegistryUnavailable(f"the registry {self.base_url} served a bundle that is "
                                      "not JSON", advice="check that the URL is a cortex registry")
        return response.content

    def revocations(self, *, cursor: int = 0, limit: int = 500) -> RevocationPage:
        """Revocations after ``cursor`` (0: from the start)."""
        return self._call("GET", "/api/v1/revocations", RevocationPage,
                          params={"cursor": str(cursor), "limit": str(limit)})

    # ------------------------------------------------------------------------------ writes

    def publish(self, *, manifest: str, image: str, bundle: str, tests_junit: str | None = None,
                scan_report: str | None = None, namespace: str | None = None) -> VersionDetail:
        """Publish a version (publisher token). ``image`` must be pinned by digest."""
        body: dict[str, Any] = {"manifest": manifest, "image": image, "bundle": bundle}
        for key, value in (("tests_junit", tests_junit), ("scan_report", scan_report),
                           ("namespace", namespace)):
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

    def report_usage(self, namespace: str, name: str, version: str, *,
                     digest: str) -> VersionDetail:
        """Report production use of ``digest`` (installation token)."""
        return self._call("POST", "/api/v1/usage", VersionDetail,
                          json_body={"namespace": namespace, "name": name, "version": version,
                                     "digest": digest})

    def revoke(self, namespace: str, name: str, version: str, *, reason: str) -> VersionDetail:
        """Revoke one version (publisher of the namespace, or admin)."""
        return self._call("POST", f"/api/v1/plugins/{_seg(namespace)}/{_seg(name)}/versions/"
                                  f"{_seg(version)}/revoke", VersionDetail,
                          json_body={"reason": reason})

    def revoke_identity(self, *, identity: str, issuer: str, reason: str) -> tuple[str, ...]:
        """Revoke every version signed by ``identity`` + ``issuer`` (admin); returns them."""
        result = self._call("POST", "/api/v1/revocations/identity", _Revoked,
                            json_body={"identity": identity, "issuer": issuer, "reason": reason})
        return result.revoked

    # ---------------------------------------------------------------------------- internals

    def _call(self, method: str, path: str, model: type[_M], *,
              params: dict[str, str] | None = None, json_body: Any = None) -> _M:
        response = self._send(method, path, params=params, json_body=json_body)
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise RegistryUnavailable(
                f"the registry {self.base_url} answered {method} {path} with a document this "
                "client does not understand", advice="check that the URL is a cortex registry "
                "and that this cortex-trust is recent enough") from None

    def _send(self, method: str, path: str, *, params: dict[str, str] | None = None,
              json_body: Any = None) -> httpx.Response:
        """Send one request; return a 2xx response or raise (see the module docstring)."""
        try:
            response = self._http.request(method, path, params=params, json=json_body)
        except httpx.TimeoutException:
            raise RegistryUnavailable(f"the registry {self.base_url} timed out",
                                      advice="retry later or raise the timeout") from None
        except httpx.HTTPError as e:
            raise RegistryUnavailable(f"cannot reach the registry {self.base_url}: "
                                      f"{type(e).__name__}",
                                      advice="check the registry URL and your network") from None
        if response.status_code >= 500 or not (200 <= response.status_code < 500):
            raise RegistryUnavailable(
                f"the registry {self.base_url} answered HTTP {response.status_code}"
                f"{_error_suffix(response)}", advice="retry later; the registry has a problem")
        if response.status_code >= 400:
            code, message, fix = _error_parts(response)
            raise RegistryRequestError(message, status=response.status_code, code=code,
                                       advice=fix or None)
        return response


class _VersionList(_Doc):
    items: tuple[VersionSummary, ...]


class _Revoked(_Doc):
    revoked: tuple[str, ...]


def _seg(value: str) -> str:
    """One URL path segment, percent-encoded (no ``/`` smuggling)."""
    return quote(value, safe="")


def _error_parts(response: httpx.Response) -> tuple[str, str, str]:
    try:
        err = json.loads(response.content)["error"]
        code, message, fix = str(err["code"]), str(err["message"]), str(err.get("fix") or "")
    except (ValueError, KeyError, TypeError):
        return ("HTTP_" + str(response.status_code),
                f"the registry refused the request (HTTP {response.status_code})", "")
    return code, message, fix


def _error_suffix(response: httpx.Response) -> str:
    code, message, _ = _error_parts(response)
    return f" ({code}: {message})" if not code.startswith("HTTP_") else ""
