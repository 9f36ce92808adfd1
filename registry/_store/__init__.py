"""The one persistence layer of the registry.

Every read and write of the service goes through :class:`Store`, composed of one part per
domain over :class:`~registry._store._tx.StoreBase`:

========================  ==========================================================
``_tx``                   the write transaction and its audit entry; the one mapping of
                          database failures to ``DATABASE_UNAVAILABLE``
``_tokens``               tokens: create, authenticate, list, revoke
``_publishers``           trusted publishers, the namespace publishing mode, OIDC exchange
``_reads``                the catalogue's read documents and the revocation feed
``_rows``                 what version writes share: stored facts, re-evaluation, plugin documents
``_versions``             publish, reviews, usage, yank and unyank
``_revocations``          revoking a version, a digest, a signer identity
``_scans``                the scan queue
``_retier``               re-tiering the whole catalogue in bulk SQL
``_retier_runs``          re-tier runs decided by batch jobs, applied in one switch
``_governance``           promotion pull requests, disputes, processed webhook deliveries
``_audit``                verifying the audit log; the transparency-log reads
========================  ==========================================================

Guarantees:

* Every write is one transaction that first locks the ``audit_head`` row (and on SQLite starts
  with ``BEGIN IMMEDIATE``): writers are serialised, each write appends exactly one hash-chained
  audit entry, and a failure anywhere rolls back everything (no half-written version).
* Versions are immutable: ``(plugin, version)`` is unique in the schema and checked under the
  lock, so two concurrent publishes end with one winner and one :class:`~registry._errors.Conflict`.
* Read documents are pre-rendered JSON kept beside each row and rewritten on every change, so
  read routes return stored bytes; the catalogue's page fragments (``page_html`` of versions and
  plugins, :mod:`registry._web._fragments`) are rendered with them in the same transaction.
* Tokens are stored as SHA-256 hashes only. Revoked and expired tokens are refused on every
  authenticated request; a token's last-use time is the one unaudited write (bookkeeping, at
  most one per token every :data:`LAST_USED_GRANULARITY`).
"""

from __future__ import annotations

from ._audit import AuditReads
from ._governance import GovernanceWrites, PromotionFacts, Watched
from ._publishers import PublisherStore
from ._reads import CatalogueReads
from ._retier_runs import RetierRuns, TamperedRun, UnknownRun, VersionsGone
from ._revocations import RevocationWrites
from ._rows import Evaluator
from ._scans import ScanGone, ScanQueue
from ._tokens import LAST_USED_GRANULARITY, ROLES, TOKEN_PREFIX, Principal, TokenStore, hash_token, parse_duration
from ._versions import PublishRecord, VersionWrites

__all__ = [
    "LAST_USED_GRANULARITY",
    "ROLES",
    "TOKEN_PREFIX",
    "Evaluator",
    "Principal",
    "PromotionFacts",
    "PublishRecord",
    "ScanGone",
    "Store",
    "TamperedRun",
    "UnknownRun",
    "VersionsGone",
    "Watched",
    "hash_token",
    "parse_duration",
]


class Store(TokenStore, PublisherStore, CatalogueReads, VersionWrites, RevocationWrites, ScanQueue,
            RetierRuns, AuditReads, GovernanceWrites):
    """The registry database. Build it on an engine whose schema is migrated:
    ``Store(engine, registry_name=...)``."""
