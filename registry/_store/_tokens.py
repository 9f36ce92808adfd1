"""API tokens: creation, authentication on every request, listing and revocation.

Tokens are stored as SHA-256 hashes only. Revoked and expired tokens are refused on every
authenticated request; a token's last-use time is the one unaudited write (bookkeeping, at most
one per token every :data:`LAST_USED_GRANULARITY`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, update
from sqlmodel import col, select

from cortex_trust.ids import is_slug
from cortex_trust.policy import format_time

from .._errors import Invalid, NotFound, Unauthorized
from .._models import ApiToken, Namespace, TokenPublic
from ._tx import StoreBase, db_unavailable

__all__ = ["LAST_USED_GRANULARITY", "ROLES", "TOKEN_PREFIX", "Principal", "TokenStore", "hash_token",
           "new_token", "parse_duration"]

ROLES = ("publisher", "reviewer", "installation", "admin")
TOKEN_PREFIX = "ctr_"  # noqa: S105 - a public prefix, not a secret
#: How precisely a token's last use is recorded: at most one UPDATE per token and period.
LAST_USED_GRANULARITY = timedelta(minutes=15)
#: A token's public id (``create_token``): random, independent of the secret, unique.
_TOKEN_ID = re.compile(r"tok_[0-9a-f]{12}")
_MAX_TOKEN_REASON = 500


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


def new_token(*, namespace: str, role: str, now: datetime, expires_in: timedelta,
              holder: str | None = None, publisher_id: str | None = None) -> tuple[str, ApiToken]:
    """A fresh token's plaintext (random, :data:`TOKEN_PREFIX`) and its unsaved row, which holds
    only the plaintext's hash."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(token_id="tok_" + secrets.token_hex(6), token_hash=hash_token(plaintext),
                   namespace=namespace, role=role, holder=holder, created_at=format_time(now),
                   expires_at=format_time(now + expires_in), publisher_id=publisher_id)
    return plaintext, row


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's public id, its namespace and its role; ``publisher_id`` names
    the trusted publisher a short-lived credential was issued to (``None``: an operator's
    token)."""

    token_id: str
    namespace: str
    role: str
    holder: str | None = None
    publisher_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.namespace}:{self.token_id}"

    @property
    def reviewer_id(self) -> str:
        """How reviews by this token are recorded: ``namespace/holder`` (the policy's reviewer
        ids, e.g. ``cortex-core/ada``), or the token id when the token names no holder."""
        return f"{self.namespace}/{self.holder}" if self.holder else self.token_id


class TokenStore(StoreBase):
    """Tokens: who may call the API."""

    def create_token(self, *, namespace: str, role: str, expires_in: timedelta,
                     now: datetime, actor: str = "cli", holder: str | None = None) -> tuple[str, ApiToken]:
        """Create a token; return the plaintext (shown once, never stored) and its row.

        Creates ``namespace`` if it does not exist: holding a publisher token for a namespace is
        what owning it means.
        """
        if role not in ROLES:
            raise Invalid("BAD_ROLE", f"unknown role {role!r}", advice=f"use one of {', '.join(ROLES)}")
        # fullmatch: `$` in SLUG would also accept a trailing newline. The token's namespace is
        # where its publishes land, so no case, Unicode or whitespace look-alike may be created.
        if not is_slug(namespace):
            raise Invalid("BAD_NAMESPACE", f"namespace {namespace!r} is not a lowercase ASCII slug",
                          advice="use lowercase letters, digits and inner hyphens (at most 64)")
        if holder is not None and not is_slug(holder):
            raise Invalid("BAD_HOLDER", f"holder {holder!r} is not a lowercase ASCII slug",
                          advice="name the holder with lowercase letters, digits and inner hyphens (e.g. ada)")
        plaintext, row = new_token(namespace=namespace, role=role, holder=holder, now=now,
                                   expires_in=expires_in)
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
        with db_unavailable(), self._read() as s:
            row = s.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
        if row is None:
            raise Unauthorized("BAD_TOKEN", "the token is not one this registry issued",
                               advice="check that the whole token was sent, or ask the registry "
                                      "operator for one (`cortex registry token create`)")
        if row.revoked:
            raise Unauthorized("TOKEN_REVOKED", f"token {row.token_id} was revoked",
                               advice="a revoked token never works again: ask the registry "
                                      "operator for a new one (`cortex registry token create`)")
        if row.expires_at <= format_time(now):
            raise Unauthorized("TOKEN_EXPIRED", f"token {row.token_id} expired at {row.expires_at}",
                               advice="ask the registry operator for a new token "
                                      "(`cortex registry token create --expires ...`)")
        self._record_use(row, now=now)
        return Principal(token_id=row.token_id, namespace=row.namespace, role=row.role, holder=row.holder,
                         publisher_id=row.publisher_id)

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
        with db_unavailable(), self._write_engine.begin() as conn:
            conn.execute(update(table)
                         .where(table.c.id == row.id,
                                or_(table.c.last_used_at.is_(None), table.c.last_used_at <= stale))
                         .values(last_used_at=format_time(now)))

    def list_tokens(self, *, now: datetime, namespace: str | None = None) -> list[TokenPublic]:
        """Every token (of ``namespace`` if given), oldest first, with its state at ``now``.

        Never returns a secret or a hash. Raises :class:`Unavailable` when the database is.
        """
        query = select(ApiToken).order_by(col(ApiToken.id))
        if namespace is not None:
            query = query.where(ApiToken.namespace == namespace)
        with db_unavailable(), self._read() as s:
            rows = s.exec(query).all()
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
                          advice="pass the id shown by `cortex registry token list` (tok_ and 12 "
                                 "hex digits), never the token itself")
        if reason is not None and (not reason.strip() or len(reason) > _MAX_TOKEN_REASON):
            raise Invalid("BAD_REASON", f"the reason must be 1 to {_MAX_TOKEN_REASON} characters",
                          advice="say briefly why, e.g. --reason \"leaked in a CI log\"")
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            row = s.exec(select(ApiToken).where(ApiToken.token_id == token_id)).first()
            if row is None:
                raise NotFound("NO_SUCH_TOKEN", f"no token {token_id} in this registry",
                               advice="list the tokens with `cortex registry token list`")
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


def _token_public(row: ApiToken, now: datetime) -> TokenPublic:
    """What ``token list`` shows of a row: everything but the hash."""
    state: Literal["active", "expired", "revoked"] = (
        "revoked" if row.revoked else "expired" if row.expires_at <= format_time(now) else "active")
    return TokenPublic(token_id=row.token_id, namespace=row.namespace, role=row.role,
                       holder=row.holder, created_at=row.created_at, expires_at=row.expires_at,
                       last_used_at=row.last_used_at, revoked_at=row.revoked_at,
                       revoked_reason=row.revoked_reason, state=state, publisher_id=row.publisher_id)
