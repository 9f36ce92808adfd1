"""Federation: the one registry a name resolves from, reached through its URL, then its mirrors.

A name is never looked up in several registries (dependency confusion): the configured registry
whose scope matches the namespace most specifically, otherwise the default one. Mirrors are
tried only when a URL is *unreachable*; an answer ("no such plugin") is final.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..errors import RegistryUnavailable
from ._config import CortexConfig, RegistryEntry, resolve_registry

if TYPE_CHECKING:
    import httpx

    from ..sources import RegistryClient

__all__ = ["FederatedRegistry", "RegistryTarget", "default_target", "entry_target", "registry_target"]

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
    #: The registry's signed index and its mirrors, in order: when set, reads go there (and are
    #: verified with TUF) instead of to ``urls``.
    index_urls: tuple[str, ...] = ()
    #: The index's trusted root (TUF root metadata); ``None``: trusted on first use.
    index_root: str | None = field(default=None, repr=False)


def registry_target(config: CortexConfig, full_name: str, *,
                    tokens: Mapping[str, str | None] | None = None,
                    registry_override: str | None = None) -> RegistryTarget:
    """The registry ``full_name`` (``namespace/name``) resolves from (see
    :func:`~cortex_trust.install.resolve_registry`). ``registry_override`` replaces only the
    default registry: a namespace scoped to a private registry stays there."""
    entry: RegistryEntry = resolve_registry(config, full_name)
    token = (tokens or {}).get(entry.name) or entry.token
    if entry.name == "default" and registry_override:
        url = RegistryEntry(name="default", url=registry_override).url  # validates the URL
        # A key (or an index) configured for the default registry's URL says nothing about
        # another URL.
        return RegistryTarget(name=entry.name, urls=(url, *entry.mirrors), token=token)
    return entry_target(entry, token=token)


def entry_target(entry: RegistryEntry, *, token: str | None) -> RegistryTarget:
    """The configured registry ``entry`` as a target (its URLs, index and keys)."""
    return RegistryTarget(name=entry.name, urls=(entry.url, *entry.mirrors), token=token,
                          log_key=entry.log_key,
                          index_urls=() if entry.index_url is None
                          else (entry.index_url, *entry.index_mirrors),
                          index_root=entry.index_root)


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
    """One registry reached through its URL, then its mirrors in order; or, when the target
    names a signed index, through the index and its mirrors (every answer verified with TUF,
    trust state kept in ``data_dir``; see :class:`~cortex_trust.sources.IndexClient`).

    :meth:`call` runs an operation on the first URL that is reachable; a URL that raised
    :class:`RegistryUnavailable` is skipped for the rest of this object's life. A refusal
    (4xx, e.g. "not found") is the registry's answer and is never retried elsewhere. When
    every URL failed, one :class:`RegistryUnavailable` names the registry and each URL.
    """

    def __init__(self, target: RegistryTarget, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None,
                 data_dir: Path | None = None) -> None:
        if target.index_urls and data_dir is None:
            raise ValueError("reading through an index needs a data directory for its trust state")
        self.target = target
        self._data_dir = data_dir
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
            if self.target.index_urls:
                client = self._index_client(url)
            else:
                client = RegistryClient(url, token=self.target.token, timeout=self._timeout,
                                        transport=self._transport)
            self._clients[url] = client
        return client

    def _index_client(self, url: str) -> RegistryClient:
        from ..sources import IndexClient, index_cache_dir

        assert self._data_dir is not None
        root = self.target.index_root.encode() if self.target.index_root is not None else None
        # One trust state for the index and all its mirrors: no mirror can take it backwards.
        cache = index_cache_dir(self._data_dir, registry=self.target.name,
                                index_url=self.target.index_urls[0], trusted_root=root)
        return IndexClient(url, cache_dir=cache, trusted_root=root, timeout=self._timeout,
                           transport=self._transport)

    @property
    def read_urls(self) -> tuple[str, ...]:
        """Where reads go, in order: the index and its mirrors, or the registry and its."""
        return self.target.index_urls or self.target.urls

    def call(self, op: Callable[[RegistryClient], _T]) -> _T:
        """``op(client)`` on the first reachable URL. Raises :class:`RegistryUnavailable`."""
        for url in self.read_urls:
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
