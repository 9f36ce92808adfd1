"""The registry's signed index (TUF): the API's documents as a static tree any server, CDN or
mirror can serve, with metadata that lets clients verify them (see
:class:`cortex_trust.sources.IndexClient`).

* :class:`IndexRepository`: the tree on disk, its roles, expiries and signing;
* :class:`KeyRing`: the role keys (root and targets offline, snapshot, timestamp and bins online);
* :func:`all_documents` / :func:`changed_documents`: the documents, read from the store;
* :class:`IndexKeeper`: keeps the tree current while the registry serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cortex_trust._lazy import lazy_exports

if TYPE_CHECKING:
    from ._documents import all_documents, changed_documents
    from ._keeper import IndexKeeper
    from ._keys import OFFLINE_ROLES, ONLINE_ROLES, ROLES, KeyRing
    from ._repo import DEFAULT_BINS, Expiries, IndexRepository, IndexStats

__all__ = ["DEFAULT_BINS", "OFFLINE_ROLES", "ONLINE_ROLES", "ROLES", "Expiries", "IndexKeeper",
           "IndexRepository", "IndexStats", "KeyRing", "all_documents", "changed_documents"]

_EXPORTS = {"DEFAULT_BINS": "._repo", "Expiries": "._repo", "IndexRepository": "._repo",
            "IndexStats": "._repo", "IndexKeeper": "._keeper", "KeyRing": "._keys",
            "OFFLINE_ROLES": "._keys", "ONLINE_ROLES": "._keys", "ROLES": "._keys",
            "all_documents": "._documents", "changed_documents": "._documents"}


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
