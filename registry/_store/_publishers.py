"""Trusted publishers: CI workflows that publish with their OIDC identity, without a stored secret.

* A trusted publisher (``add_publisher``) names, for one namespace, the issuer, repository,
  workflow file and optionally the environment whose identity tokens may publish there.
* ``exchange_oidc`` turns a verified identity (:mod:`registry._oidc`) into a short-lived
  publisher credential for the one namespace of the matching publisher, in one transaction that
  also remembers the token's ``jti`` (a second exchange of the same token is refused until it
  expires) and appends one audit entry recording the token's claims (never the token).
* Credentials issued this way publish and nothing else (:func:`refuse_issued_credential`), and a
  namespace switched to trusted-publishing-only (``set_trusted_only``) accepts publishes only
  from them (:func:`check_publish_credential`, called inside the publish transaction).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from cortex_trust.ids import is_slug
from cortex_trust.policy import format_time

from .._errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from .._models import ApiToken, Namespace, NamespaceSetting, OidcJti, TrustedPublisher, TrustedPublisherPublic
from .._oidc import OidcIdentity, check_issuer_url, check_repository, check_workflow, matches
from ._tokens import Principal, new_token
from ._tx import StoreBase, db_unavailable

__all__ = ["ISSUED_CREDENTIAL_LIFETIME", "PublisherStore", "check_publish_credential",
           "refuse_issued_credential"]

#: How long a credential issued for an identity token lives: one publish job.
ISSUED_CREDENTIAL_LIFETIME = timedelta(minutes=15)
_MAX_ENVIRONMENT = 255


def check_publish_credential(session: Session, namespace: str, principal: Principal) -> None:
    """Refuse a publish to a trusted-publishing-only namespace with anything but a credential
    issued to one of its trusted publishers.

    Raises :class:`Forbidden` (``TRUSTED_PUBLISHING_REQUIRED``).
    """
    setting = session.get(NamespaceSetting, namespace)
    if setting is not None and setting.trusted_publishing_only and principal.publisher_id is None:
        raise Forbidden("TRUSTED_PUBLISHING_REQUIRED",
                        f"namespace {namespace!r} accepts publishes only from its trusted publishers",
                        advice="publish from the configured CI workflow with `cortex plugin publish --oidc` "
                               "(see `cortex registry publisher list`)")


def refuse_issued_credential(principal: Principal) -> None:
    """Refuse anything but a publish to a credential issued for an identity token.

    Raises :class:`Forbidden` (``PUBLISH_ONLY_CREDENTIAL``).
    """
    if principal.publisher_id is not None:
        raise Forbidden("PUBLISH_ONLY_CREDENTIAL",
                        "a credential issued to a trusted publisher can only publish",
                        advice="revoke, yank and unyank with a publisher token of the namespace")


def _publisher_public(row: TrustedPublisher) -> TrustedPublisherPublic:
    return TrustedPublisherPublic(publisher_id=row.publisher_id, namespace=row.namespace, issuer=row.issuer,
                                  repository=row.repository, workflow=row.workflow,
                                  environment=row.environment, created_at=row.created_at)


def _check_publisher(*, namespace: str, issuer: str, repository: str, workflow: str,
                     environment: str | None) -> None:
    problems = []
    if not is_slug(namespace):
        problems.append(f"namespace {namespace!r} is not a lowercase ASCII slug")
    if (why := check_issuer_url(issuer)) is not None:
        problems.append(f"issuer {issuer!r}: {why}")
    if not check_repository(repository):
        problems.append(f"repository {repository!r} is not OWNER/NAME")
    if not check_workflow(workflow):
        problems.append(f"workflow {workflow!r} is not a workflow file name like release.yml")
    if environment is not None and (not environment.strip() or len(environment) > _MAX_ENVIRONMENT
                                    or any(ord(c) < 32 or ord(c) == 127 for c in environment)):
        problems.append("the environment must be 1 to 255 printable characters")
    if problems:
        raise Invalid("BAD_PUBLISHER", "; ".join(problems),
                      advice="e.g. --issuer https://token.actions.githubusercontent.com --repository "
                             "acme/tool --workflow release.yml [--environment release]")


class PublisherStore(StoreBase):
    """Trusted publishers, the namespace publishing mode, and the identity-token exchange."""

    def add_publisher(self, *, namespace: str, issuer: str, repository: str, workflow: str,
                      environment: str | None, now: datetime, actor: str = "cli") -> TrustedPublisherPublic:
        """Configure a trusted publisher for ``namespace`` (created if new, as by a token).

        Raises :class:`Invalid` (``BAD_PUBLISHER``) and :class:`Conflict` (``PUBLISHER_EXISTS``).
        """
        _check_publisher(namespace=namespace, issuer=issuer, repository=repository, workflow=workflow,
                         environment=environment)
        row = TrustedPublisher(publisher_id="pub_" + secrets.token_hex(6), namespace=namespace, issuer=issuer,
                               repository=repository, workflow=workflow, environment=environment,
                               created_at=format_time(now), created_by=actor)
        with self._write() as tx:
            s = tx.session
            same = [p for p in s.exec(select(TrustedPublisher).where(
                TrustedPublisher.namespace == namespace, TrustedPublisher.issuer == issuer)).all()
                if (p.repository.lower(), p.workflow, (p.environment or "").lower())
                == (repository.lower(), workflow, (environment or "").lower())]
            if same:
                raise Conflict("PUBLISHER_EXISTS", f"namespace {namespace!r} already trusts this workflow "
                               f"({same[0].publisher_id})", advice="list them with `cortex registry publisher list`")
            if s.exec(select(Namespace).where(Namespace.name == namespace)).first() is None:
                s.add(Namespace(name=namespace, created_at=format_time(now)))
            s.add(row)
            public = _publisher_public(row)
            tx.audit(actor=actor, action="publisher.add", target=f"publisher:{row.publisher_id}",
                     before=None, after=public.model_dump(), now=now)
        return public

    def list_publishers(self, *, namespace: str | None = None) -> list[TrustedPublisherPublic]:
        """Every trusted publisher (of ``namespace`` if given), oldest first."""
        query = select(TrustedPublisher).order_by(col(TrustedPublisher.id))
        if namespace is not None:
            query = query.where(TrustedPublisher.namespace == namespace)
        with db_unavailable(), self._read() as s:
            return [_publisher_public(r) for r in s.exec(query).all()]

    def remove_publisher(self, publisher_id: str, *, now: datetime, actor: str = "cli") -> TrustedPublisherPublic:
        """Remove a trusted publisher; the credentials already issued to it are revoked with it.

        Raises :class:`NotFound` (``NO_SUCH_PUBLISHER``).
        """
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            row = s.exec(select(TrustedPublisher).where(TrustedPublisher.publisher_id == publisher_id)).first()
            if row is None:
                raise NotFound("NO_SUCH_PUBLISHER", f"no trusted publisher {publisher_id[:40]!r} in this registry",
                               advice="list them with `cortex registry publisher list`")
            public = _publisher_public(row)
            issued = s.exec(select(ApiToken).where(ApiToken.publisher_id == publisher_id,
                                                   ApiToken.revoked == False,  # noqa: E712 - SQL
                                                   ApiToken.expires_at > ts)).all()
            for token in issued:
                token.revoked, token.revoked_at, token.revoked_by = True, ts, actor
                token.revoked_reason = f"trusted publisher {publisher_id} removed"
                s.add(token)
            s.delete(row)
            tx.audit(actor=actor, action="publisher.remove", target=f"publisher:{publisher_id}",
                     before=public.model_dump(), after={"revoked_tokens": [t.token_id for t in issued]},
                     now=now)
        return public

    def set_trusted_only(self, namespace: str, *, enabled: bool, now: datetime, actor: str = "cli") -> bool:
        """Switch ``namespace`` to accepting publishes only from its trusted publishers (or back).
        Returns whether anything changed (a no-op appends no audit entry).

        Raises :class:`NotFound` (``NO_SUCH_NAMESPACE``).
        """
        with self._write() as tx:
            s = tx.session
            if s.exec(select(Namespace).where(Namespace.name == namespace)).first() is None:
                raise NotFound("NO_SUCH_NAMESPACE", f"namespace {namespace!r} does not exist",
                               advice="add a trusted publisher first (`cortex registry publisher add`)")
            row = s.get(NamespaceSetting, namespace)
            if (row.trusted_publishing_only if row is not None else False) == enabled:
                tx.skip_audit()
                return False
            if row is None:
                row = NamespaceSetting(namespace=namespace, updated_at=format_time(now))
            row.trusted_publishing_only = enabled
            row.updated_at = format_time(now)
            s.add(row)
            tx.audit(actor=actor, action="namespace.publishing", target=f"namespace:{namespace}",
                     before={"trusted_publishing_only": not enabled},
                     after={"trusted_publishing_only": enabled}, now=now)
        return True

    def trusted_only(self, namespace: str) -> bool:
        """Whether ``namespace`` accepts publishes only from its trusted publishers."""
        with db_unavailable(), self._read() as s:
            row = s.get(NamespaceSetting, namespace)
        return bool(row is not None and row.trusted_publishing_only)

    def exchange_oidc(self, identity: OidcIdentity, *, namespace: str | None,
                      now: datetime) -> tuple[str, ApiToken]:
        """A short-lived publisher credential (plaintext, row) for the namespace of the trusted
        publisher ``identity`` matches (``namespace`` chooses when several do).

        Raises :class:`Unauthorized` (``OIDC_REPLAYED``: this token was exchanged already),
        :class:`Forbidden` (``OIDC_NO_PUBLISHER``: no trusted publisher, or none in
        ``namespace``, is this identity) and :class:`Conflict` (``OIDC_AMBIGUOUS``: publishers of
        several namespaces match and none was named). Nothing is written when refused.
        """
        ts = format_time(now)
        with self._write() as tx:
            s = tx.session
            # Forget tokens that can no longer verify anyway: the table holds live ones only.
            s.exec(delete(OidcJti).where(col(OidcJti.expires_at) < ts))
            if s.exec(select(OidcJti.id).where(OidcJti.issuer == identity.issuer,
                                               OidcJti.jti == identity.jti)).first() is not None:
                raise Unauthorized("OIDC_REPLAYED", "this identity token was already exchanged",
                                   advice="request a fresh identity token for each publish")
            candidates = [p for p in s.exec(select(TrustedPublisher).where(
                TrustedPublisher.issuer == identity.issuer).order_by(col(TrustedPublisher.id))).all()
                if matches(issuer=p.issuer, repository=p.repository, workflow=p.workflow,
                           environment=p.environment, identity=identity)]
            chosen = [p for p in candidates if namespace is None or p.namespace == namespace]
            who = f"{identity.repository or '?'} ({identity.workflow_ref or 'no workflow_ref'})"
            if not chosen:
                where = f" for namespace {namespace!r}" if namespace is not None else ""
                raise Forbidden("OIDC_NO_PUBLISHER", f"{who} is not a trusted publisher{where}",
                                advice="the namespace owner adds it with `cortex registry publisher add "
                                       "NS --issuer ... --repository ... --workflow ...`")
            if len({p.namespace for p in chosen}) > 1:
                raise Conflict("OIDC_AMBIGUOUS", f"{who} is a trusted publisher of several namespaces",
                               advice="name the namespace (cortex plugin publish --namespace NS)")
            publisher = chosen[0]
            s.add(OidcJti(issuer=identity.issuer, jti=identity.jti, expires_at=format_time(identity.expires_at)))
            plaintext, row = new_token(namespace=publisher.namespace, role="publisher", now=now,
                                       expires_in=ISSUED_CREDENTIAL_LIFETIME,
                                       publisher_id=publisher.publisher_id)
            s.add(row)
            tx.audit(actor=f"oidc:{publisher.publisher_id}", action="token.oidc_exchange",
                     target=f"token:{row.token_id}", before=None,
                     after={"token_id": row.token_id, "namespace": publisher.namespace,
                            "publisher_id": publisher.publisher_id, "expires_at": row.expires_at,
                            "claims": dict(identity.claims)}, now=now)
        return plaintext, row
