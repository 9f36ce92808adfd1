"""Federation: the one registry a name resolves from, reached through its URL, then its mirrors.

A name is never looked up in several registries (dependency confusion): the configured registry
whose scope matches the namespace most specifically, otherwise the default one. Mirrors are
tried only when a URL is *unreachable*; an answer ("no such plugin") is final.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..errors import RegistryUnavailable
from ._config import CortexConfig, RegistryEntry, resolve_registry

if TYPE_CHECKING:
    import httpx

    from ..sources import RegistryClient

__all__ = ["FederatedRegistry", "RegistryTarget", "default_target", "registry_target"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class RegistryTarget:
    """The one registry a name resolves from: its name, its URLs in order (primary, mirrors)
    and its token (never part of ``repr`` or any message)."""

    name: str
    urls: tuple[str, ...]
    token: str | None = field(default=None, repr=False)
    #: The verifier key of the registry's transparency-log checkpoints, when configured.
    log_key: str | None = None


def registry_target(config: CortexConfig, full_name: str, *,
                    tokens: Mapping[str, str | None] | None = None,
                    registry_override: str | None = None) -> RegistryTarget:
    """The registry ``full_name`` (``namespace/name``) resolves from (see
    :func:`~cortex_trust.install.resolve_registry`). ``registry_override`` replaces only the
    default registry: a namespace scoped to a private registry stays there."""
    entry: RegistryEntry = resolve_registry(config, full_name)
    url = entry.url
    if entry.name == "default" and registry_override:
        url = RegistryEntry(name="default", url=registry_override).url  # validates the URL
    # A key configured for the default registry's URL says nothing about another URL.
    overridden = entry.name == "default" and bool(registry_override)
    return RegistryTarget(name=entry.name, urls=(url, *entry.mirrors),
                          token=(tokens or {}).get(entry.name) or entry.token,
                          log_key=None if overridden else entry.log_key)


def default_target(config: CortexConfig, *, token: str | None = None,
                   registry_override: str | None = None) -> RegistryTarget:
    """The default registry: the revocation authority for plugins no scoped registry serves
    (those installed from GitHub). ``registry_override`` replaces its URL."""
    url = config.registry
    if registry_override:
        url = RegistryEntry(name="default", url=registry_override).url  # validates the URL
    return RegistryTarget(name="default", urls=(url,), token=token,
                          log_key=None if registry_override else config.registry_log_key)


class FederatedRegistry:
    """One registry reached through its URL, then its mirrors in order.

    :meth:`call` runs an operation on the first URL that is reachable; a URL that raised
    :class:`RegistryUnavailable` is skipped for the rest of this object's life. A refusal
    (4xx, e.g. "not found") is the registry's answer and is never retried elsewhere. When
    every URL failed, one :class:`RegistryUnavailable` names the registry and each URL.
    """

    def __init__(self, target: RegistryTarget, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.target = target
        self._timeout = timeout
        self._transport = transport
        self._clients: dict[str, RegistryClient] = {}
        self._down: dict[str, str] = {}
        #: The URL that answered the last call.
        self.served_by: str | None = None

    def _client(self, url: str) -> RegistryClient:
        from ..sources import RegistryClient

        client = self._clients.get(url)
        if client is None:
            client = RegistryClient(url, token=self.target.token, timeout=self._timeout,
                                    transport=self._transport)
            self._clients[url] = client
        return client

    def call(self, op: Callable[[RegistryClient], _T]) -> _T:
        """``op(client)`` on the first reachable URL. Raises :class:`RegistryUnavailable`."""
        for url in self.target.urls:
            if url in self._down:
                continue
            try:
                result = op(self._client(url))
            except RegistryUnavailable as e:
                self._down[url] = e.message
                continue
            self.served_by = url
            return result
        tried = "; ".join(f"{u}: {why}" for u, why in self._down.items())
        raise RegistryUnavailable(
            f"registry {self.target.name!r} is unavailable ({tried})",
            advice="retry later or check the URL and your network; nothing was decided on "
                   "missing data (an unavailable registry is never read as 'no such plugin' or "
                   "'not revoked')")

    def close(self) -> None:
        """Close every connection pool."""
        for c in self._clients.values():
            c.close()
        self._clients.clear()
