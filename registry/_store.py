"""The one persistence layer of the registry.

Every read and write of the service goes through :class:`Store`. Guarantees:

* Every write is one transaction that first locks the ``audit_head`` row (and on SQLite starts
  with ``BEGIN IMMEDIATE``): writers are serialised, each write appends exactly one hash-chained
  audit entry, and a failure anywhere rolls back everything (no half-written version).
* Versions are immutable: ``(plugin, version)`` is unique in the schema and checked under the
  lock, so two concurrent publishes end with one winner and one :class:`Conflict`.
* Read documents are pre-rendered JSON kept beside each row and rewritten on every change, so
  read routes return stored bytes (see /work/shared/PERFORMANCE.md).
* Tokens are stored as SHA-256 hashes only. Revoked and expired tokens are refused on every
  authenticated request; a token's last-use time is the one unaudited write (bookkeeping, at
  most one per token every :data:`LAST_USED_GRANULARITY`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from cortex_trust.ids import is_slug
from cortex_trust.policy import Decision, PolicyInput, ScanEvidence, SignatureEvidence, TestEvidence, format_time
from cortex_trust.sources import Checkpoint

from ._audit import AuditProblem, canonical
from ._documents import dumps, plugin_documents, version_documents
from ._errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from ._evaluate import ReporterFacts, UsageFacts
from ._models import (
    REVOCATION_KINDS,
    ApiToken,
    AuditHead,
    Evidence,
    Namespace,
    Plugin,
    PluginVersion,
    ReviewRow,
    RevocationRow,
    RevokedIdentity,
    ScanJob,
    TokenPublic,
    UsageDay,
    VersionBundle,
)
from ._reads import Reader, ReadUnavailable
from ._tlog import (
    AuditReport,
    EffectsRecorder,
    TransparencyLog,
    append_entry,
    rendered_hash,
    verify_log,
)

if TYPE_CHECKING:
    from ._retier import RetierPool

__all__ = [
    "LAST_USED_GRANULARITY",
    "ROLES",
    "Evaluator",
    "Principal",
    "PublishRecord",
    "Store",
    "hash_token",
    "parse_duration",
]

ROLES = ("publisher", "reviewer", "installation", "admin")
TOKEN_PREFIX = "ctr_"  # noqa: S105 - a public prefix, not a secret
#: How precisely a token's last use is recorded: at most one UPDATE per token and period.
LAST_USED_GRANULARITY = timedelta(minutes=15)
#: A token's public id (``create_token``): random, independent of the secret, unique.
_TOKEN_ID = re.compile(r"tok_[0-9a-f]{12}")
_MAX_TOKEN_REASON = 500
#: Revocation kinds that reach an image under every name (admin acts): the digest is never
#: published again. A ``version`` revocation reaches its own version (and keeps the digest out
#: of its own namespace).
_WIDE_KINDS = ("digest", "identity")

#: Given the inputs, return one decision each (in order). Never raises for engine problems.
Evaluator = Callable[[Sequence[PolicyInput]], list[Decision]]


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` → timedelta. Raises ValueError for anything else."""
    units = {"d": 86400, "h": 3600, "m": 60}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"{text!r} is not a duration like 90d, 12h or 30m")
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds <= 0 or seconds > 3 * 365 * 86400:
        raise ValueError(f"{text!r} must be between 1m and 3 years")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's public id, its namespace and its role."""

    token_id: str
    namespace: str
    role: str
    holder: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.namespace}:{self.token_id}"

    @property
    def reviewer_id(self) -> str:
        """How reviews by this token are recorded: ``namespace/holder`` (the policy's reviewer
        ids, e.g. ``cortex-core/ada``), or the token id when the token names no holder."""
        return f"{self.namespace}/{self.holder}" if self.holder else self.token_id


@dataclass(frozen=True)
class PublishRecord:
    """Everything a publish stores, established before the transaction (crypto done)."""

    namespace: str
    name: str
    version: str
    image: str
    digest: str
    description: str
    capabilities: tuple[str, ...]
    #: The publish-time input from :func:`cortex_trust.policy.build_input`; later
    #: re-evaluations start from it and replace the evidence that changed.
    policy_input: PolicyInput
    #: The bundle text exactly as published (installers re-verify it themselves).
    bundle: str
    signature: SignatureEvidence
    tests: TestEvidence | None
    scan: ScanEvidence | None


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                               validate=True).decode("ascii")
        if _CURSOR_KEY.match(key) is None:
            raise ValueError(key)
        return key
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Invalid("BAD_CURSOR", "the cursor is not one this registry issued",
                      fix="pass next_cursor from the previous page unchanged") from None


_CURSOR_KEY = re.compile(r"^[a-z0-9-]{1,64}/[a-z0-9-]{1,64}\Z")


def _like_escape(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store:
    """The registry database. Build it on an engine whose schema is migrated."""

    def __init__(self, engine: Engine, *, registry_name: str = "cortex-registry") -> None:
        self.engine = engine
        # Write transactions are marked so that SQLite starts them with BEGIN IMMEDIATE (see
        # registry._db); reads stay deferred and never wait for the write lock.
        self._write_engine = engine.execution_options(cortex_write=True)
        self.registry_name = registry_name
        # Read routes use fixed SQL on dedicated autocommit connections (see registry._reads).
        self.reader = Reader(engine)

    # ------------------------------------------------------------------ transactions and audit

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        try:
            with Session(self._write_engine, expire_on_commit=False) as session:
                head = session.exec(
                    select(AuditHead).where(AuditHead.id == 1).with_for_update()
                ).one()
                tx = _Tx(session, head)
                try:
                    yield tx
                    if tx.entries == 0 and not tx.read_only:
                        raise RuntimeError("every registry write must append an audit entry")
                    tx.finish()
                finally:
                    tx.recorder.close()
                session.commit()
        except OperationalError:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None

    def _read(self) -> Session:
        return Session(self.engine)

    # ------------------------------------------------------------------------------- tokens

    def create_token(self, *, namespace: str, role: str, expires_in: timedelta,
                     now: datetime, actor: str = "cli", holder: str | None = None) -> tuple[str, ApiToken]:
        """Create a token; return the plaintext (shown once, never stored) and its row.

        Creates ``namespace`` if it does not exist: holding a publisher token for a namespace is
        what owning it means.
        """
        if role not in ROLES:
            raise Invalid("BAD_ROLE", f"unknown role {role!r}", fix=f"use one of {', '.join(ROLES)}")
        # fullmatch: `$` in SLUG would also accept a trailing newline. The token's namespace is
        # where its publishes land, so no case, Unicode or whitespace look-alike may be created.
        if not is_slug(namespace):
            raise Invalid("BAD_NAMESPACE", f"namespace {namespace!r} is not a lowercase ASCII slug",
                          fix="use lowercase letters, digits and inner hyphens (at most 64)")
        if holder is not None and not is_slug(holder):
            raise Invalid("BAD_HOLDER", f"holder {holder!r} is not a lowercase ASCII slug",
                          fix="name the holder with lowercase letters, digits and inner hyphens (e.g. ada)")
        plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(token_id="tok_" + secrets.token_hex(6), token_hash=hash_token(plaintext),
                       namespace=namespace, role=role, holder=holder, created_at=format_time(now),
                       expires_at=format_time(now + expires_in))
        with self._write() as tx:
            s = tx.session
            if s.exec(select(Namespace).where(Namespace.name == namespace)).first() is None:
                s.add(Namespace(name=namespace, created_at=format_time(now)))
            s.add(row)
            tx.audit(actor=actor, action="token.create", target=f"token:{row.token_id}",
                     before=None, after={"token_id": row.token_id, "namespace": namespace,
                                         "role": role, "holder": holder, "expires_at": row.expires_at},
                     now=now)
        return plaintext, row

    def authenticate(self, token: str, *, now: datetime) -> Principal:
        """The principal behind ``token``, checked on every authenticated request.

        Raises :class:`Unauthorized`: ``BAD_TOKEN`` when no token has this secret,
        ``TOKEN_REVOKED`` when it was revoked (checked first: revocation is final) and
        ``TOKEN_EXPIRED`` when it expired. The distinction is only ever told to whoever presents
        the secret, about that token, and names nothing but its public id: it reveals nothing
        about other tokens (a wrong secret matches no row at all), and the revocation reason
        stays with the operator. Raises :class:`Unavailable` when the database is.
        """
        try:
            with self._read() as s:
                row = s.exec(select(ApiToken)
                             .where(ApiToken.token_hash == hash_token(token))).first()
        except OperationalError:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None
        if row is None:
            raise Unauthorized("BAD_TOKEN", "the token is not one this registry issued",
                               fix="check that the whole token was sent, or ask the registry "
                                   "operator for one (`cortex registry token create`)")
        if row.revoked:
            raise Unauthorized("TOKEN_REVOKED", f"token {row.token_id} was revoked",
                               fix="a revoked token never works again: ask the registry operator "
                                   "for a new one (`cortex registry token create`)")
        if row.expires_at <= format_time(now):
            raise Unauthorized("TOKEN_EXPIRED", f"token {row.token_id} expired at {row.expires_at}",
                               fix="ask the registry operator for a new token "
                                   "(`cortex registry token create --expires ...`)")
        self._record_use(row, now=now)
        return Principal(token_id=row.token_id, namespace=row.namespace, role=row.role, holder=row.holder)

    def _record_use(self, row: ApiToken, *, now: datetime) -> None:
        """Note that ``row`` authenticated, at most once per :data:`LAST_USED_GRANULARITY`.

        The one write outside :meth:`_write`: a last-use time is bookkeeping shown by
        ``token list``, not an action, so it appends no audit entry (one per request would
        drown the log) and does not queue behind the audit lock. It is a single guarded
        ``UPDATE`` of one row, so concurrent requests with the same token cannot move it back.
        """
        stale = format_time(now - LAST_USED_GRANULARITY)
        if row.last_used_at is not None and row.last_used_at > stale:
            return
        table = ApiToken.__table__  # type: ignore[attr-defined]
        try:
            with self._write_engine.begin() as conn:
                conn.execute(update(table)
                             .where(table.c.id == row.id,
                                    or_(table.c.last_used_at.is_(None),
                                        table.c.last_used_at <= stale))
                             .values(last_used_at=format_time(now)))
        except OperationalError:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None

    def list_tokens(self, *, now: datetime, namespace: str | None = None) -> list[TokenPublic]:
        """Every token (of ``namespace`` if given), oldest first, with its state at ``now``.

        Never returns a secret or a hash. Raises :class:`Unavailable` when the database is.
        """
        query = select(ApiToken).order_by(col(ApiToken.id))
        if namespace is not None:
            query = query.where(ApiToken.namespace == namespace)
        try:
            with self._read() as s:
                rows = s.exec(query).all()
        except OperationalError:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None
        return [_token_public(r, now) for r in rows]

    def revoke_token(self, token_id: str, *, now: datetime, reason: str | None = None,
                     actor: str = "cli") -> tuple[TokenPublic, bool]:
        """Revoke the token with public id ``token_id``; every authenticated route refuses it
        (``TOKEN_REVOKED``) from the next request on. Expired tokens can be revoked too.

        Returns the token and whether this call revoked it. Idempotent: revoking a revoked
        token changes nothing (the first revocation's time and reason stay) and appends no
        audit entry; a revocation appends one ``token.revoke`` entry.

        Raises :class:`Invalid` (``BAD_TOKEN_ID``, ``BAD_REASON``) and :class:`NotFound`
        (``NO_SUCH_TOKEN``).
        """
        if _TOKEN_ID.fullmatch(token_id) is None:
            raise Invalid("BAD_TOKEN_ID", f"{token_id!r} is not a token id",
                          fix="pass the id shown by `cortex registry token list` (tok_ and 12 hex "
                              "digits), never the token itself")
        if reason is not None and (not reason.strip() or len(reason) > _MAX_TOKEN_REASON):
            raise Invalid("BAD_REASON", f"the reason must be 1 to {_MAX_TOKEN_REASON} characters",
                          fix="say briefly why, e.g. --reason \"leaked in a CI log\"")
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            row = s.exec(select(ApiToken).where(ApiToken.token_id == token_id)).first()
            if row is None:
                raise NotFound("NO_SUCH_TOKEN", f"no token {token_id} in this registry",
                               fix="list the tokens with `cortex registry token list`")
            if row.revoked:
                tx.skip_audit()
                return _token_public(row, now), False
            before = _token_public(row, now)
            row.revoked = True
            row.revoked_at = ts
            row.revoked_reason = reason
            row.revoked_by = actor
            s.add(row)
            tx.audit(actor=actor, action="token.revoke", target=f"token:{token_id}",
                     before={"token_id": token_id, "namespace": row.namespace, "role": row.role,
                             "holder": row.holder, "state": before.state},
                     after={"token_id": token_id, "state": "revoked", "reason": reason},
                     now=now)
        return _token_public(row, now), True

    # ------------------------------------------------------------------------------- reads

    def _read_rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self.reader.rows(sql, params)
        except ReadUnavailable:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None

    def list_plugins(self, *, q: str | None, tier: str | None, namespace: str | None,
                     cursor: str | None, limit: int) -> bytes:
        """One page of plugin summaries as a JSON document ``{"items": [...], "next_cursor"}``.

        Pages follow the unique ``key`` index (``key > cursor ORDER BY key LIMIT n``): the cost
        of a page does not depend on the catalogue's size or the cursor's position."""
        after = _decode_cursor(cursor) if cursor else None
        params: list[Any] = [p for p in (after, namespace, tier) if p]
        if q:
            params.append(f"%{_like_escape(q.lower())}%")
        params.append(limit + 1)
        sql = self.reader.list_sql(after=bool(after), namespace=bool(namespace),
                                   tier=bool(tier), like=bool(q))
        rows = self._read_rows(sql, params)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _encode_cursor(rows[-1][0]) if more else None
        return (b'{"items":[' + ",".join(r[1] for r in rows).encode() + b'],"next_cursor":'
                + json.dumps(nxt).encode() + b"}")

    def plugin_document(self, namespace: str, name: str) -> bytes:
        """The pre-rendered plugin document. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_plugin, (f"{namespace}/{name}",))
        if not rows:
            raise _not_found(namespace, name)
        return str(rows[0][0]).encode()

    def versions_document(self, namespace: str, name: str) -> bytes:
        """``{"items": [version summaries, oldest first]}``. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_versions, (f"{namespace}/{name}",))
        if not rows:
            raise _not_found(namespace, name)
        docs = [r[1] for r in rows if r[1] is not None]
        return b'{"items":[' + ",".join(docs).encode() + b"]}"

    def version_document(self, namespace: str, name: str, version: str) -> bytes:
        """The pre-rendered version document. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_version, (f"{namespace}/{name}", version))
        if not rows:
            raise _not_found(namespace, name, version)
        return str(rows[0][0]).encode()

    def bundle(self, namespace: str, name: str, version: str) -> bytes:
        """The Sigstore bundle published with the version. Raises :class:`NotFound`."""
        rows = self._read_rows(self.reader.sql_bundle, (f"{namespace}/{name}", version))
        if not rows:
            raise _not_found(namespace, name, version)
        return str(rows[0][0]).encode()

    def revocations(self, *, cursor: int, limit: int) -> bytes:
        """Revocations after ``cursor`` (exclusive), oldest first, and the next cursor. Each
        entry says its ``kind`` (see :data:`~registry._models.REVOCATION_KINDS`) and the
        ``log_index`` of the audit-log leaf that recorded it (its inclusion proof:
        ``GET /api/v1/log/proof/inclusion``)."""
        rows = self._read_rows(self.reader.sql_revocations, (cursor, limit))
        items = [{"cursor": r[0], "kind": r[9], "namespace": r[1], "name": r[2],
                  "version": r[3], "digest": r[4], "reason": r[5], "identity": r[6],
                  "issuer": r[7], "revoked_at": r[8], "log_index": r[10]} for r in rows]
        nxt = rows[-1][0] if rows else cursor
        return dumps({"items": items, "next_cursor": nxt}).encode()

    # ------------------------------------------------------------------------------ writes

    def publish(self, rec: PublishRecord, *, principal: Principal, now: datetime,
                evaluate: Evaluator) -> tuple[bytes, Decision]:
        """Store a new version with its evidence and the policy's decision, atomically.

        Every publish queues a :class:`ScanJob` in the same transaction, whatever scan evidence
        ``rec`` carries (spec: Trivy scans run on every version publish; a version never exists
        without its pending scan). The registry's scan is stored after the publish, so it is the
        newest scan evidence and supersedes an uploaded (self-reported) one.

        An image belongs to the namespace that first published it: another namespace's
        publisher gets ``DIGEST_OWNED`` (an admin may publish it anywhere, and a namespace
        holding it may publish it again).

        Raises :class:`Conflict` when the version exists (``VERSION_EXISTS`` with the same
        digest, ``VERSION_CONFLICT`` with another one), its digest was revoked everywhere or by
        this namespace (``DIGEST_REVOKED``), belongs to another namespace (``DIGEST_OWNED``) or
        its signer was revoked (``IDENTITY_REVOKED``), and :class:`Invalid`
        (``PUBLISH_BLOCKED``, nothing stored) when the policy blocks the publish.
        """
        ts = format_time(now)
        key = f"{rec.namespace}/{rec.name}"
        try:
            with self._write() as tx:
                s = tx.session
                if s.exec(select(Namespace.id).where(Namespace.name == rec.namespace)).first() is None:
                    raise NotFound("NO_SUCH_NAMESPACE", f"namespace {rec.namespace!r} does not exist",
                                   fix="an admin creates it with `cortex registry token create`")
                plugin = s.exec(select(Plugin).where(Plugin.key == key)).first()
                if plugin is not None:
                    existing = s.exec(select(PluginVersion).where(
                        PluginVersion.plugin_id == plugin.id,
                        PluginVersion.version == rec.version)).first()
                    if existing is not None:
                        raise _version_conflict(key, rec.version, existing.digest, rec.digest)
                else:
                    plugin = Plugin(namespace=rec.namespace, name=rec.name, key=key,
                                    created_at=ts, updated_at=ts, summary_json="{}",
                                    document_json="{}")
                # A revoked image must not come back as an active version under another
                # version string or plugin name: anywhere once an admin revoked it everywhere
                # (digest, identity), and in the namespace that revoked one of its versions.
                # Another namespace's revocation never stops the owner.
                if s.exec(select(RevocationRow.id).where(
                        RevocationRow.digest == rec.digest,
                        or_(col(RevocationRow.kind).in_(_WIDE_KINDS),
                            col(RevocationRow.namespace) == rec.namespace))).first() is not None:
                    raise Conflict("DIGEST_REVOKED",
                                   f"{rec.digest} was revoked in this registry",
                                   fix="build, sign and publish a new image")
                _check_digest_owner(s, rec, principal)
                # Revoking an identity covers what it signs later, too (a leaked CI identity).
                if rec.signature.verified and s.exec(select(RevokedIdentity.id).where(
                        RevokedIdentity.identity == rec.signature.identity,
                        RevokedIdentity.issuer == rec.signature.issuer)).first() is not None:
                    raise Conflict("IDENTITY_REVOKED",
                                   f"the signer {rec.signature.identity!r} was revoked in this "
                                   "registry", fix="sign with an identity that is not revoked")
                plugin.description = rec.description
                plugin.capabilities_json = dumps(sorted(set(rec.capabilities)))
                plugin.search_text = " ".join([key, rec.description.lower(),
                                               *(c.lower() for c in rec.capabilities)])
                plugin.updated_at = ts
                s.add(plugin)
                s.flush()
                assert plugin.id is not None
                version = PluginVersion(
                    plugin_id=plugin.id, version=rec.version, digest=rec.digest, image=rec.image,
                    state="active", input_json=rec.policy_input.model_dump_json(),
                    decision_json="{}", tier="untrusted", action="block",
                    signer_identity=rec.signature.identity if rec.signature.verified else None,
                    signer_issuer=rec.signature.issuer if rec.signature.verified else None,
                    published_at=ts, published_by=principal.actor,
                    summary_json="{}", document_json="{}")
                s.add(version)
                s.flush()
                assert version.id is not None
                s.add(VersionBundle(version_id=version.id, bundle_json=rec.bundle))
                for kind, facts in (("signature", rec.signature), ("tests", rec.tests),
                                    ("scan", rec.scan)):
                    if facts is not None:
                        s.add(Evidence(version_id=version.id, kind=kind, digest=rec.digest,
                                       facts_json=facts.model_dump_json(),
                                       actor=principal.actor, created_at=ts))
                s.flush()
                decision = self._reevaluate(s, {plugin.id: plugin}, [version], now=now,
                                            evaluate=evaluate)[0]
                if decision.failed:
                    raise Unavailable("ENGINE_UNAVAILABLE",
                                      "the registry policy could not be evaluated; nothing was "
                                      f"published ({', '.join(decision.codes)})",
                                      fix="retry later; the operator should check the policy")
                if decision.action == "block":
                    raise Invalid("PUBLISH_BLOCKED",
                                  f"the registry policy blocks publishing {key}@{rec.version}",
                                  fix="; ".join(r.message for r in decision.reasons)[:2000],
                                  details={"decision": decision.to_json_dict()})
                s.add(ScanJob(version_id=version.id, image=rec.image, digest=rec.digest,
                              state="queued", created_at=ts, updated_at=ts))
                self._refresh_plugin(s, plugin)
                tx.audit(actor=principal.actor, action="version.publish",
                         target=f"{key}@{rec.version}", before=None,
                         after={"digest": rec.digest, "image": rec.image,
                                "tier": version.tier, "action": version.action,
                                "signer": [version.signer_identity, version.signer_issuer]},
                         now=now)
                doc = version.document_json
        except IntegrityError:
            # Only reachable if the lock was bypassed; the unique constraint still holds.
            raise Conflict("VERSION_CONFLICT", f"{key}@{rec.version} was published concurrently",
                           fix="versions are immutable: publish a new version") from None
        return doc.encode(), decision

    def add_review(self, namespace: str, name: str, version: str, *, status: str,
                   digest: str | None, note: str | None, principal: Principal, now: datetime,
                   evaluate: Evaluator) -> bytes:
        """Record the calling reviewer's review of the version's digest and re-evaluate its tier.

        Reviews are kept per reviewer (``principal.reviewer_id``): a reviewer's new review
        replaces their own earlier one and nobody else's, so every reviewer's current review
        reaches the policy. Raises :class:`NotFound`, or :class:`Conflict`
        (``DIGEST_MISMATCH``) when ``digest`` is given and is not the version's (the reviewer
        looked at another image).
        """
        ts = format_time(now)
        reviewer = principal.reviewer_id
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            if digest is not None and digest != row.digest:
                raise Conflict("DIGEST_MISMATCH",
                               f"the review is for {digest}, the version is {row.digest}",
                               fix="review the image that was published under this version")
            assert row.id is not None
            own = s.exec(select(ReviewRow).where(ReviewRow.version_id == row.id,
                                                 ReviewRow.reviewer == reviewer)).first()
            before = {"tier": row.tier, "action": row.action,
                      "review": None if own is None else {"status": own.verdict,
                                                          "reviewed_at": own.reviewed_at}}
            if own is None:
                own = ReviewRow(version_id=row.id, reviewer=reviewer, verdict=status,
                                digest=row.digest, actor=principal.actor, reviewed_at=ts)
            own.verdict, own.note, own.actor, own.reviewed_at = status, note, principal.actor, ts
            s.add(own)
            s.flush()
            self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
            self._refresh_plugin(s, plugin)
            tx.audit(actor=principal.actor, action="version.review",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"reviewer": reviewer, "status": status, "note": note,
                            "digest": row.digest, "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode()

    def withdraw_review(self, namespace: str, name: str, version: str, *,
                        reviewer: str | None, principal: Principal, now: datetime,
                        evaluate: Evaluator) -> bytes:
        """Withdraw the calling reviewer's own review of a version and re-evaluate its tier.

        Only a reviewer's own review can be withdrawn: ``reviewer``, when given, must be the
        caller's reviewer id, else :class:`Forbidden` (``REVIEW_NOT_YOURS``). Raises
        :class:`NotFound` for an unknown version or when the caller has no review of it
        (``REVIEW_NOT_FOUND``). The withdrawn review stays in the audit log.
        """
        own_id = principal.reviewer_id
        if reviewer is not None and reviewer != own_id:
            raise Forbidden("REVIEW_NOT_YOURS",
                            f"this token reviews as {own_id!r}; it cannot withdraw the review "
                            f"of {reviewer!r}",
                            fix="a review can only be withdrawn by the reviewer who wrote it")
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            own = s.exec(select(ReviewRow).where(ReviewRow.version_id == row.id,
                                                 ReviewRow.reviewer == own_id)).first()
            if own is None:
                raise NotFound("REVIEW_NOT_FOUND",
                               f"{own_id!r} has no review of {plugin.key}@{version} to withdraw",
                               fix="check the version, and that this is the token you "
                                   "reviewed with")
            before = {"reviewer": own_id, "status": own.verdict, "note": own.note,
                      "reviewed_at": own.reviewed_at, "tier": row.tier, "action": row.action}
            s.delete(own)
            s.flush()
            self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
            self._refresh_plugin(s, plugin)
            tx.audit(actor=principal.actor, action="version.review.withdraw",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"reviewer": own_id, "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode()

    def report_usage(self, namespace: str, name: str, version: str, *, digest: str,
                     principal: Principal, now: datetime,
                     evaluate: Evaluator) -> tuple[bytes, bool]:
        """Record that the calling installation runs ``digest`` today; re-evaluate the tier.

        The installation is the token (its id), its organization the token's namespace. At most
        one report per installation and UTC day is counted: a further report the same day is
        accepted and changes nothing (no write, no audit entry). Returns the version document
        and whether the report was counted. Raises :class:`NotFound`, or :class:`Conflict`:
        ``DIGEST_MISMATCH``, or ``VERSION_REVOKED`` (use of a revoked version is not evidence).
        """
        ts = format_time(now)
        day = ts[:10]
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            if digest != row.digest:
                raise Conflict("DIGEST_MISMATCH",
                               f"usage is for {digest}, the version is {row.digest}",
                               fix="report the digest of the image actually installed")
            if row.state == "revoked":
                raise Conflict("VERSION_REVOKED",
                               f"{plugin.key}@{version} is revoked; its use is not recorded",
                               fix="stop running it and install another version")
            assert row.id is not None
            if s.exec(select(UsageDay.id).where(
                    UsageDay.version_id == row.id,
                    UsageDay.installation_id == principal.token_id,
                    UsageDay.day == day)).first() is not None:
                tx.skip_audit()
                return row.document_json.encode(), False
            before = {"tier": row.tier, "action": row.action}
            s.add(UsageDay(version_id=row.id, installation_id=principal.token_id,
                           organization=principal.namespace, day=day, digest=row.digest,
                           reported_at=ts))
            s.flush()
            self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
            self._refresh_plugin(s, plugin)
            tx.audit(actor=principal.actor, action="version.usage",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"digest": row.digest, "day": day, "organization": principal.namespace,
                            "tier": row.tier, "action": row.action},
                     now=now)
            return row.document_json.encode(), True

    def revoke(self, namespace: str, name: str, version: str, *, reason: str,
               principal: Principal, now: datetime, evaluate: Evaluator) -> bytes:
        """Revoke one version (idempotent: revoking a revoked version changes nothing).

        The feed entry is of kind ``version``: it reaches this namespace, name and version only,
        never other versions or names carrying the same image (revoking those is
        :meth:`revoke_digest`, an admin act)."""
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            before = {"state": row.state, "tier": row.tier}
            if row.state != "revoked":
                self._revoke_row(s, plugin, row, kind="version", reason=reason,
                                 principal=principal, now=now)
                self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
                self._refresh_plugin(s, plugin)
            tx.audit(actor=principal.actor, action="version.revoke",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state, "tier": row.tier, "reason": reason,
                            "kind": "version"}, now=now)
            return row.document_json.encode()

    def revoke_digest(self, digest: str, *, reason: str, principal: Principal, now: datetime,
                      evaluate: Evaluator) -> bytes:
        """Revoke every version carrying ``digest``, under any namespace and name (an admin
        act), and keep the digest from being published again.

        Each version gets one feed entry of kind ``digest`` (clients match it by digest alone),
        also a version its publisher had already revoked; a version already revoked everywhere
        gets none (idempotent). A version's state, reason and time are those of its first
        revocation. Returns ``{"revoked": ["ns/name@version", ...]}`` (the versions this call
        added an entry for). Raises :class:`NotFound` (``NO_SUCH_DIGEST``) when no version
        carries ``digest``.
        """
        with self._write() as tx:
            s = tx.session
            rows = s.exec(select(PluginVersion).where(PluginVersion.digest == digest)
                          .order_by(col(PluginVersion.id))).all()
            if not rows:
                raise NotFound("NO_SUCH_DIGEST", f"no version in this registry carries {digest}",
                               fix="check the digest: GET /api/v1/plugins/NS/NAME/versions "
                                   "lists each version's")
            revoked = self._revoke_wide(s, rows, kind="digest", reason=reason,
                                        principal=principal, now=now, evaluate=evaluate)
            tx.audit(actor=principal.actor, action="digest.revoke", target=f"digest:{digest}",
                     before=None, after={"reason": reason, "revoked": revoked}, now=now)
        return dumps({"revoked": revoked}).encode()

    def yank(self, namespace: str, name: str, version: str, *, reason: str,
             principal: Principal, now: datetime) -> bytes:
        """Yank one version, as PyPI and npm do: installers skip it for ranges and ``latest``
        and take it only when pinned exactly, with a warning
        (:func:`cortex_trust.install.select_version`).

        Only the state changes: the evidence and the decision stay exactly as they are (nothing
        is re-evaluated), while the version's documents and the plugin's latest version, tier
        and documents are re-rendered. The reason, time and actor are recorded. Idempotent:
        yanking a yanked version keeps the first yank and changes nothing. Returns the version
        document. Raises :class:`NotFound`, or :class:`Conflict` (``VERSION_REVOKED``) for a
        revoked version: revocation is final and is never softened into a yank.
        """
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            _refuse_state_change(plugin, row, "yank")
            before = {"state": row.state, "reason": row.yanked_reason}
            if row.state != "yanked":
                row.state = "yanked"
                row.yanked_reason = reason
                row.yanked_at = format_time(now)
                row.yanked_by = principal.actor
                self._restate(s, plugin, row)
            tx.audit(actor=principal.actor, action="version.yank",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state, "reason": row.yanked_reason,
                            "yanked_at": row.yanked_at, "requested_reason": reason}, now=now)
            return row.document_json.encode()

    def unyank(self, namespace: str, name: str, version: str, *, principal: Principal,
               now: datetime) -> bytes:
        """Make a yanked version active again; its decision is unchanged (see :meth:`yank`).

        Idempotent: unyanking an active version changes nothing. Returns the version document.
        Raises :class:`NotFound`, or :class:`Conflict` (``VERSION_REVOKED``) for a revoked
        version.
        """
        with self._write() as tx:
            s = tx.session
            plugin, row = self._get_version(s, namespace, name, version)
            _refuse_state_change(plugin, row, "unyank")
            before = {"state": row.state, "reason": row.yanked_reason,
                      "yanked_at": row.yanked_at, "yanked_by": row.yanked_by}
            if row.state == "yanked":
                # The yank's details leave the row with the yank; the audit log keeps them.
                row.state = "active"
                row.yanked_reason = row.yanked_at = row.yanked_by = None
                self._restate(s, plugin, row)
            tx.audit(actor=principal.actor, action="version.unyank",
                     target=f"{plugin.key}@{version}", before=before,
                     after={"state": row.state}, now=now)
            return row.document_json.encode()

    def revoke_identity(self, *, identity: str, issuer: str, reason: str, principal: Principal,
                        now: datetime, evaluate: Evaluator) -> bytes:
        """Revoke every version whose verified signature came from ``identity`` + ``issuer``,
        and remember the identity so that :meth:`publish` refuses what it signs later.

        Feed entries are of kind ``identity`` (matched by digest, like :meth:`revoke_digest`),
        one per version not already revoked everywhere."""
        with self._write() as tx:
            s = tx.session
            if s.exec(select(RevokedIdentity.id).where(
                    RevokedIdentity.identity == identity,
                    RevokedIdentity.issuer == issuer)).first() is None:
                s.add(RevokedIdentity(identity=identity, issuer=issuer, reason=reason,
                                      actor=principal.actor, created_at=format_time(now)))
            rows = s.exec(select(PluginVersion).where(
                PluginVersion.signer_identity == identity,
                PluginVersion.signer_issuer == issuer).order_by(col(PluginVersion.id))).all()
            revoked = self._revoke_wide(s, rows, kind="identity", reason=reason,
                                        principal=principal, now=now, evaluate=evaluate,
                                        identity=identity, issuer=issuer)
            tx.audit(actor=principal.actor, action="identity.revoke",
                     target=f"identity:{identity}|{issuer}", before=None,
                     after={"reason": reason, "revoked": revoked}, now=now)
        return dumps({"revoked": revoked}).encode()

    def retier_all(self, *, now: datetime, pool: RetierPool, batch: int = 500,
                   actor: str = "cli") -> dict[str, Any]:
        """Re-evaluate every version with ``pool``'s policy, reusing stored evidence.

        No cryptography is redone: signature facts are read from the evidence rows, and every
        decision comes from :func:`cortex_trust.engine.decide` in ``pool``'s workers. This
        process reads batches of ``batch`` versions (five queries per batch: versions, their
        evidence, their reviews, their usage in two) and stores each finished batch with one executemany UPDATE
        while the workers evaluate the next ones; the plugin documents are recomputed from the
        new tiers at the end (one more executemany).

        One transaction, holding the write lock for the whole run (other writes wait): a crash
        or an error midway rolls everything back, so a half-done run is never visible and never
        audited. Returns counts: ``versions``, ``changed`` (tier or action differs),
        ``failed`` (versions the engine could not decide: blocked fail-closed),
        ``policy_revision``. Raises :class:`~registry._retier.RetierFailed` (nothing stored)
        when stored facts do not validate, :class:`Unavailable` when the database fails.
        """
        from sqlalchemy import bindparam, update
        from sqlalchemy import select as core_select

        from ._retier import Item, Job

        pv = PluginVersion.__table__  # type: ignore[attr-defined]
        pt = Plugin.__table__  # type: ignore[attr-defined]
        stats = pool.stats
        pool.start()  # workers load the policies before the write lock is taken
        changed = total = failed = 0
        revision = ""
        with self._write() as tx:
            conn = tx.session.connection()
            cpu = time.process_time()
            plugins = {r[0]: r for r in conn.execute(
                core_select(pt.c.id, pt.c.namespace, pt.c.name, pt.c.key, pt.c.description,
                       pt.c.capabilities_json, pt.c.updated_at)).all()}
            versions_of: dict[int, list[tuple[str, str, str, str]]] = {pid: [] for pid in plugins}
            stats.main_read_cpu += time.process_time() - cpu

            def jobs() -> Iterator[Job]:
                last = 0
                while True:
                    cpu = time.process_time()
                    rows = conn.execute(
                        core_select(pv.c.id, pv.c.plugin_id, pv.c.version, pv.c.digest, pv.c.image,
                               pv.c.state, pv.c.input_json, pv.c.signer_identity,
                               pv.c.signer_issuer, pv.c.published_at, pv.c.published_by,
                               pv.c.revoked_reason, pv.c.revoked_at, pv.c.tier, pv.c.action,
                               pv.c.yanked_reason, pv.c.yanked_at)
                        .where(pv.c.id > last).order_by(pv.c.id).limit(batch)).all()
                    if not rows:
                        return
                    first, last = last, rows[-1][0]
                    # Ids are a contiguous key range: the facts of the batch are a range scan.
                    def in_batch(c: Any, lo: int = first, hi: int = last) -> Any:
                        return (c > lo) & (c <= hi)

                    latest, usage = self._facts(conn, in_batch, {r[0]: r[3] for r in rows})
                    keys: list[tuple[int, int, str, str, str, str]] = []
                    items: list[Item] = []
                    for (vid, pid, version, digest, image, state, input_json, identity, issuer,
                         published_at, published_by, reason, revoked_at, tier, action,
                         yanked_reason, yanked_at) in rows:
                        plugin = plugins[pid]
                        keys.append((vid, pid, version, state, tier, action))
                        items.append(Item(input_json, latest.get(vid), usage.get(vid), digest,
                                          state, reason, revoked_at, plugin[1], plugin[2],
                                          version, image, published_at, published_by, identity,
                                          issuer, yanked_reason, yanked_at))
                    stats.main_read_cpu += time.process_time() - cpu
                    yield Job(keys, items)

            # The hot write goes to the driver's executemany with positional tuples: building
            # and processing a parameter dict per row in SQLAlchemy cost ~50 us per version.
            store = _RETIER_UPDATE if conn.dialect.paramstyle == "qmark" \
                else _RETIER_UPDATE.replace("?", "%s")
            # Written without the ORM: the log's effects are recorded here (every version's
            # decision and documents are rewritten).
            rewritten: dict[str, Any] = {}
            for job, outcomes in pool.run(jobs(), now=now):
                cpu = time.process_time()
                params = []
                for (vid, pid, version, state, tier, action), out in zip(job.keys, outcomes,
                                                                          strict=True):
                    params.append((out.tier, out.action, out.policy_revision, out.decision_json,
                                   out.summary_json, out.document_json, vid))
                    # Only what re-tiering changes (the log merges it over the row's fields).
                    rewritten[f"{plugins[pid][3]}@{version}"] = {
                        "tier": out.tier, "action": out.action, "rendered": rendered_hash(
                            decision_json=out.decision_json, summary_json=out.summary_json,
                            document_json=out.document_json)}
                    changed += (out.tier, out.action) != (tier, action)
                    failed += out.failed
                    versions_of[pid].append((version, state, out.tier, out.action))
                    revision = out.policy_revision
                if params:
                    conn.exec_driver_sql(store, params)
                total += len(params)
                stats.main_write_cpu += time.process_time() - cpu
            cpu = time.process_time()
            plugin_params = []
            for pid, p in plugins.items():
                latest_version, tier, action, summary, document = plugin_documents(
                    namespace=p[1], name=p[2], key=p[3], description=p[4],
                    capabilities_json=p[5], updated_at=p[6], versions=versions_of[pid])
                plugin_params.append({"b_id": pid, "latest_version": latest_version,
                                      "tier": tier, "action": action, "summary_json": summary,
                                      "document_json": document})
            if plugin_params:
                conn.execute(update(pt).where(pt.c.id == bindparam("b_id")), plugin_params)
            result = {"versions": total, "changed": changed, "failed": failed,
                      "policy_revision": revision or pool.revision}
            tx.audit(actor=actor, action="catalogue.retier", target="*", before=None,
                     after=result, now=now, effects={"plugin_version": rewritten})
            stats.main_write_cpu += time.process_time() - cpu
        return result

    def claim_scan_job(self, *, now: datetime, lease: timedelta) -> ScanJob | None:
        """Take the oldest queued job, or a running one whose lease expired (its worker died).

        The claim is recorded (state, attempts, lease) and audited like every write.
        """
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            job = s.exec(select(ScanJob).where(
                (col(ScanJob.state) == "queued")
                | ((col(ScanJob.state) == "running") & (col(ScanJob.lease_until) < ts)))
                .order_by(col(ScanJob.id)).limit(1)).first()
            if job is None:
                tx.skip_audit()
                return None
            job.state = "running"
            job.attempts += 1
            job.lease_until = format_time(now + lease)
            job.updated_at = ts
            s.add(job)
            tx.audit(actor="scanner", action="scan.claim", target=f"scan:{job.id}",
                     before=None, after={"digest": job.digest, "attempt": job.attempts},
                     now=now)
            return job

    def finish_scan_job(self, job_id: int, *, evidence: ScanEvidence | None, error: str | None,
                        now: datetime, evaluate: Evaluator, max_attempts: int = 3) -> None:
        """Record a scan's outcome: evidence (re-evaluating the tier) or an error (queued again
        until ``max_attempts``, then failed; the version simply stays unscanned)."""
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            job = s.get(ScanJob, job_id)
            if job is None:
                raise _not_found("scan", str(job_id))
            row = s.get(PluginVersion, job.version_id)
            assert row is not None and row.id is not None
            plugin = s.get(Plugin, row.plugin_id)
            assert plugin is not None
            before = {"tier": row.tier, "action": row.action}
            if evidence is not None:
                s.add(Evidence(version_id=row.id, kind="scan", digest=row.digest,
                               facts_json=evidence.model_dump_json(), actor="scanner",
                               created_at=ts))
                s.flush()
                self._reevaluate(s, {row.plugin_id: plugin}, [row], now=now, evaluate=evaluate)
                self._refresh_plugin(s, plugin)
                job.state, job.error = "done", None
            else:
                job.state = "failed" if job.attempts >= max_attempts else "queued"
                job.error = (error or "scan failed")[:2000]
            job.lease_until = None
            job.updated_at = ts
            s.add(job)
            tx.audit(actor="scanner", action="version.scan", target=f"{plugin.key}@{row.version}",
                     before=before, after={"job": job.id, "state": job.state,
                                           "error": job.error, "tier": row.tier,
                                           "action": row.action}, now=now)

    def audit_verify(self, *, checkpoint: Checkpoint | None = None) -> list[AuditProblem]:
        """Every problem :meth:`audit_report` finds; an empty list means intact."""
        return self.audit_report(checkpoint=checkpoint).problems

    def audit_report(self, *, checkpoint: Checkpoint | None = None) -> AuditReport:
        """Check the audit log from its entries alone: the chain, the Merkle tree, consistency
        with ``checkpoint`` (a checkpoint seen earlier, signature already verified) and the
        tracked state tables against a replay of the log. ``problems`` empty: intact."""
        try:
            return verify_log(self.engine, checkpoint=checkpoint)
        except OperationalError:
            raise Unavailable("DATABASE_UNAVAILABLE", "the registry database is unavailable",
                              fix="retry later") from None

    @property
    def log(self) -> TransparencyLog:
        """The audit log's read side: tree head, checkpoints, proofs, leaves."""
        return TransparencyLog(self.engine)

    # ---------------------------------------------------------------------------- internals

    def _get_version(self, s: Session, namespace: str, name: str,
                     version: str) -> tuple[Plugin, PluginVersion]:
        plugin = s.exec(select(Plugin).where(Plugin.key == f"{namespace}/{name}")).first()
        if plugin is None:
            raise _not_found(namespace, name)
        row = s.exec(select(PluginVersion).where(PluginVersion.plugin_id == plugin.id,
                                                 PluginVersion.version == version)).first()
        if row is None:
            raise _not_found(namespace, name, version)
        return plugin, row

    def _revoke_row(self, s: Session, plugin: Plugin, row: PluginVersion, *, kind: str,
                    reason: str, principal: Principal, now: datetime,
                    identity: str | None = None, issuer: str | None = None) -> None:
        """Append one feed entry of ``kind`` for ``row``; a version not yet revoked becomes
        revoked with this reason and time (a revoked one keeps its first revocation's)."""
        assert row.id is not None and kind in REVOCATION_KINDS
        ts = format_time(now)
        if row.state != "revoked":
            row.state = "revoked"
            row.revoked_reason = reason
            row.revoked_at = ts
            s.add(row)
        s.add(RevocationRow(version_id=row.id, kind=kind, namespace=plugin.namespace,
                            name=plugin.name, version=row.version, digest=row.digest,
                            reason=reason, identity=identity or row.signer_identity,
                            issuer=issuer or row.signer_issuer,
                            actor=principal.actor, created_at=ts))

    def _revoke_wide(self, s: Session, rows: Sequence[PluginVersion], *, kind: str, reason: str,
                     principal: Principal, now: datetime, evaluate: Evaluator,
                     identity: str | None = None, issuer: str | None = None) -> list[str]:
        """Give each of ``rows`` not yet revoked everywhere a ``kind`` (digest-wide) feed entry;
        re-evaluate the versions whose state changed and refresh their plugins. Returns the
        versions given an entry, as ``ns/name@version``."""
        ids = [r.id for r in rows]
        wide = set(s.exec(select(RevocationRow.version_id).where(
            col(RevocationRow.version_id).in_(ids),
            col(RevocationRow.kind).in_(_WIDE_KINDS))).all()) if ids else set()
        revoked: list[str] = []
        changed: dict[int, tuple[Plugin, list[PluginVersion]]] = {}
        for row in rows:
            if row.id in wide:
                continue
            plugin = s.get(Plugin, row.plugin_id)
            assert plugin is not None and plugin.id is not None
            was_active = row.state != "revoked"
            self._revoke_row(s, plugin, row, kind=kind, reason=reason, principal=principal,
                             now=now, identity=identity, issuer=issuer)
            if was_active:
                changed.setdefault(plugin.id, (plugin, []))[1].append(row)
            revoked.append(f"{plugin.key}@{row.version}")
        touched = [r for _, versions in changed.values() for r in versions]
        if touched:
            self._reevaluate(s, {pid: p for pid, (p, _) in changed.items()}, touched,
                             now=now, evaluate=evaluate)
        for plugin, _versions in changed.values():
            self._refresh_plugin(s, plugin)
        return revoked

    def _facts(self, s: Any, where: Callable[[Any], Any],
               digests: dict[int, str]) -> tuple[dict[int, dict[str, str]], dict[int, UsageFacts]]:
        """The stored facts of a batch of versions, each bound to the version's digest, in four
        queries: the newest evidence row of each kind; every reviewer's review, as the facts JSON
        of one review piece; usage per version and per organization. ``where(column)`` selects
        the batch by a table's version-id column."""
        from sqlalchemy import select as columns  # any number of columns (sqlmodel's: <= 4)

        latest: dict[int, dict[str, str]] = {}
        for vid, kind, digest, facts in s.execute(
                columns(col(Evidence.version_id), col(Evidence.kind), col(Evidence.digest),
                        col(Evidence.facts_json))
                .where(where(col(Evidence.version_id))).order_by(col(Evidence.id))).all():
            # Reviews are per reviewer (ReviewRow); an evidence row never stands for them.
            if digests.get(vid) == digest and kind != "review":
                latest.setdefault(vid, {})[kind] = facts  # the newest of each kind wins
        reviews: dict[int, list[dict[str, Any]]] = {}
        for vid, reviewer, verdict, digest, at in s.execute(
                columns(col(ReviewRow.version_id), col(ReviewRow.reviewer), col(ReviewRow.verdict),
                        col(ReviewRow.digest), col(ReviewRow.reviewed_at))
                .where(where(col(ReviewRow.version_id)))
                .order_by(col(ReviewRow.version_id), col(ReviewRow.reviewer))).all():
            if digests.get(vid) == digest:
                reviews.setdefault(vid, []).append(
                    {"reviewer": reviewer, "verdict": verdict, "at": at,
                     "source": self.registry_name})
        for vid, records in reviews.items():
            # Validated with the rest of the input (registry._evaluate.stored_input).
            latest.setdefault(vid, {})["review"] = json.dumps(
                {"present": True, "reviews": records, "digest": digests[vid],
                 "source": self.registry_name}, separators=(",", ":"))
        day, inst = col(UsageDay.day), col(UsageDay.installation_id)
        first, last = func.min(col(UsageDay.reported_at)), func.max(col(UsageDay.reported_at))
        by_org: dict[int, list[ReporterFacts]] = {}
        for vid, digest, org, installations, days, org_first, org_last in s.execute(
                columns(col(UsageDay.version_id), col(UsageDay.digest), col(UsageDay.organization),
                        func.count(inst.distinct()), func.count(day.distinct()), first, last)
                .where(where(col(UsageDay.version_id)))
                .group_by(col(UsageDay.version_id), col(UsageDay.digest),
                          col(UsageDay.organization))
                .order_by(col(UsageDay.version_id), col(UsageDay.organization))).all():
            if digests.get(vid) == digest:
                by_org.setdefault(vid, []).append(
                    ReporterFacts(org, int(installations), int(days), org_first, org_last))
        usage: dict[int, UsageFacts] = {}
        for vid, digest, installations, days, all_first, all_last in s.execute(
                columns(col(UsageDay.version_id), col(UsageDay.digest), func.count(inst.distinct()),
                        func.count(day.distinct()), first, last)
                .where(where(col(UsageDay.version_id)))
                .group_by(col(UsageDay.version_id), col(UsageDay.digest))).all():
            if digests.get(vid) == digest:
                usage[vid] = UsageFacts(all_first, all_last, int(days), int(installations),
                                        tuple(by_org.get(vid, ())))
        return latest, usage

    def _reevaluate(self, s: Session, plugins: dict[int, Plugin], rows: list[PluginVersion],
                    *, now: datetime, evaluate: Evaluator) -> list[Decision]:
        """Evaluate ``rows`` in one batch and store each decision and its documents.

        The inputs, the evaluation and the documents are exactly those of re-tiering
        (:mod:`registry._retier`): rebuilt from stored facts, no parsing of uploads and no
        cryptography."""
        from ._retier import Item, build_inputs, render_outcome

        ids = [r.id for r in rows]
        latest, usage = self._facts(s, lambda c: c.in_(ids),
                                    {r.id: r.digest for r in rows if r.id is not None})
        items = []
        for r in rows:
            assert r.id is not None
            plugin = plugins[r.plugin_id]
            items.append(Item(r.input_json, latest.get(r.id), usage.get(r.id), r.digest,
                              r.state, r.revoked_reason, r.revoked_at, plugin.namespace,
                              plugin.name, r.version, r.image, r.published_at, r.published_by,
                              r.signer_identity, r.signer_issuer, r.yanked_reason, r.yanked_at))
        inputs = build_inputs(items, now=now, registry_name=self.registry_name)
        decisions = evaluate(inputs)
        if len(decisions) != len(rows):
            raise RuntimeError("the evaluator returned a wrong number of decisions")
        for row, item, inp, decision in zip(rows, items, inputs, decisions, strict=True):
            out = render_outcome(item, inp, decision)
            row.tier, row.action, row.policy_revision = out.tier, out.action, out.policy_revision
            row.decision_json = out.decision_json
            row.summary_json, row.document_json = out.summary_json, out.document_json
            s.add(row)
        return decisions

    def _restate(self, s: Session, plugin: Plugin, row: PluginVersion) -> None:
        """Re-render and store ``row``'s documents after a change of its state alone (a yank or
        unyank), then the plugin's.

        The stored decision and the evidence and manifest it was made on are spliced back as
        they are: a state change must not re-evaluate (a yank never changes a tier)."""

        stored = json.loads(row.document_json)

        def compact(value: Any) -> str:
            # Key order kept as stored (pydantic's field order), not sorted.
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

        row.summary_json, row.document_json = version_documents(
            namespace=plugin.namespace, name=plugin.name, version=row.version, image=row.image,
            digest=row.digest, state=row.state, tier=row.tier, action=row.action,
            published_at=row.published_at, policy_revision=row.policy_revision,
            published_by=row.published_by, signer_identity=row.signer_identity,
            signer_issuer=row.signer_issuer, revoked_reason=row.revoked_reason,
            revoked_at=row.revoked_at, manifest_json=compact(stored["manifest"]),
            evidence_json=compact(stored["evidence"]), decision_json=row.decision_json,
            yanked_reason=row.yanked_reason, yanked_at=row.yanked_at)
        s.add(row)
        s.flush()
        self._refresh_plugin(s, plugin)

    def _refresh_plugin(self, s: Session, plugin: Plugin) -> None:
        """Recompute the plugin's latest version, tier and documents from its versions."""
        rows = s.exec(select(PluginVersion.version, PluginVersion.state, PluginVersion.tier,
                             PluginVersion.action)
                      .where(PluginVersion.plugin_id == plugin.id)).all()
        (plugin.latest_version, plugin.tier, plugin.action, plugin.summary_json,
         plugin.document_json) = plugin_documents(
            namespace=plugin.namespace, name=plugin.name, key=plugin.key,
            description=plugin.description, capabilities_json=plugin.capabilities_json,
            updated_at=plugin.updated_at, versions=[(r[0], r[1], r[2], r[3]) for r in rows])
        s.add(plugin)

class _Tx:
    """One write transaction: its session and its audit entry (exactly one, appended by
    :meth:`finish` just before the commit, with the effects the transaction left in the tracked
    tables; see :mod:`registry._tlog`)."""

    def __init__(self, session: Session, head: AuditHead) -> None:
        self.session = session
        self.head = head
        self.entries = 0
        self.read_only = False
        self.recorder = EffectsRecorder(session)
        self._pending: dict[str, Any] | None = None

    def skip_audit(self) -> None:
        """This transaction turned out to change nothing: commit without an entry."""
        self.read_only = True

    def audit(self, *, actor: str, action: str, target: str, before: Any, after: Any,
              now: datetime, effects: dict[str, dict[str, Any]] | None = None) -> None:
        """Record this transaction's entry (appended at commit). ``effects`` adds tracked rows
        written without the ORM (projections keyed like :func:`registry._tlog.projection`)."""
        if self._pending is not None:
            raise RuntimeError("a registry write appends exactly one audit entry")
        self._pending = {"actor": actor, "action": action, "target": target[:512],
                         "before_json": canonical(before) if before is not None else None,
                         "after_json": canonical(after) if after is not None else None,
                         "at": format_time(now), "extra": effects or {}}
        self.entries += 1

    def finish(self) -> None:
        """Append the entry with the transaction's effects; new versions and revocations learn
        their leaf index. A transaction that skipped its entry must have changed no tracked
        row."""
        effects = self.recorder.effects()
        if self._pending is None:
            if any(effects.values()):
                raise RuntimeError("a write changed tracked rows without an audit entry")
            return
        pending = self._pending
        for table, rows in pending.pop("extra").items():
            effects.setdefault(table, {}).update(rows)
        index = self.head.seq  # the leaf index of the entry about to be appended
        for obj in self.recorder.new:
            if isinstance(obj, (PluginVersion, RevocationRow)):
                obj.log_index = index
                self.session.add(obj)
        self.recorder.close()
        append_entry(self.session, self.head, effects=effects, **pending)


#: One version's re-tiering result (``Store.retier_all``), in the qmark style (``%s`` on
#: PostgreSQL). Only constants: every value is a bound parameter.
_RETIER_UPDATE = ("UPDATE plugin_version SET tier = ?, action = ?, policy_revision = ?, "
                  "decision_json = ?, summary_json = ?, document_json = ? WHERE id = ?")


def _token_public(row: ApiToken, now: datetime) -> TokenPublic:
    """What ``token list`` shows of a row: everything but the hash."""
    state: Literal["active", "expired", "revoked"] = (
        "revoked" if row.revoked else "expired" if row.expires_at <= format_time(now) else "active")
    return TokenPublic(token_id=row.token_id, namespace=row.namespace, role=row.role,
                       holder=row.holder, created_at=row.created_at, expires_at=row.expires_at,
                       last_used_at=row.last_used_at, revoked_at=row.revoked_at,
                       revoked_reason=row.revoked_reason, state=state)


def _refuse_state_change(plugin: Plugin, row: PluginVersion, what: str) -> None:
    """Only active and yanked versions can be yanked or unyanked: a revoked version stays
    revoked (a yank must never look like a way out of a revocation), and a state this code
    does not know is refused rather than overwritten."""
    if row.state == "revoked":
        raise Conflict("VERSION_REVOKED",
                       f"{plugin.key}@{row.version} is revoked and cannot be {what}ed",
                       fix="revocation is final: publish a new version instead")
    if row.state not in ("active", "yanked"):
        raise Conflict("VERSION_STATE",
                       f"{plugin.key}@{row.version} is in state {row.state!r} and cannot be "
                       f"{what}ed", fix="ask the registry's operator")


def _check_digest_owner(s: Session, rec: PublishRecord, principal: Principal) -> None:
    """An image belongs to the namespace that first published it in this registry with a
    verified signature.

    A publish without a verified signature claims nothing (anyone can copy a digest from a
    public OCI registry and publish it unsigned), so it never locks the image's real publisher
    out. Raises :class:`Conflict` (``DIGEST_OWNED``) when another namespace holds ``rec.digest``
    with a verified signature and ``rec.namespace`` holds no signed version of it, unless
    ``principal`` is an admin.
    Otherwise any namespace could carry another's image under its own name and act on it. The
    message names the first owner, nothing more.

    The owner's signer does not open the image to other namespaces: its bundle is public
    (``GET .../bundle``), so a replay of it proves nothing about who publishes.
    """
    if principal.role == "admin":
        return
    owners = s.exec(
        select(Plugin.namespace)
        .join(PluginVersion, col(PluginVersion.plugin_id) == col(Plugin.id))
        .where(PluginVersion.digest == rec.digest,
               col(PluginVersion.signer_identity).is_not(None))
        .order_by(col(PluginVersion.id))).all()
    if not owners or any(ns == rec.namespace for ns in owners):
        return
    raise Conflict("DIGEST_OWNED",
                   f"the image {rec.digest} belongs to namespace {owners[0]!r}, which published "
                   "it first in this registry with a verified signature",
                   fix="publish an image you built and signed yourself (a new digest); if this "
                       "image is yours, ask the registry operator (an admin)")


def _not_found(namespace: str, name: str, version: str | None = None) -> NotFound:
    what = f"{namespace}/{name}" + (f"@{version}" if version else "")
    return NotFound("NOT_FOUND", f"{what} is not in this registry",
                    fix="check the name with GET /api/v1/plugins?q=...")


def _version_conflict(key: str, version: str, existing: str, new: str) -> Conflict:
    if existing == new:
        return Conflict("VERSION_EXISTS", f"{key}@{version} is already published with {existing}",
                        fix="nothing to do: this exact image is already published")
    return Conflict("VERSION_CONFLICT",
                    f"{key}@{version} is already published with {existing}, not {new}",
                    fix="versions are immutable: bump the version and publish again")
