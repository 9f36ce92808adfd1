"""Registry API tokens: list, revoke, and the refusal of revoked and expired tokens.

Store and CLI, on SQLite and (with ``CORTEX_TEST_PG_URL``) PostgreSQL via ``db_url``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.registry.conftest import Registry
from tests.registry.test_security import _READ, _concrete, _token_routes


def _create(registry: Registry, **kw: Any) -> tuple[str, Any]:
    kw.setdefault("namespace", "acme")
    kw.setdefault("role", "publisher")
    kw.setdefault("expires_in", timedelta(days=90))
    plaintext, row = registry.store.create_token(now=registry.clock(), **kw)
    return str(plaintext), row


def _audit(registry: Registry) -> list[tuple[str, str, str | None, str | None]]:
    with registry.store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text(
            "SELECT action, target, before_json, after_json FROM audit_log ORDER BY id"))]


def _cli(*args: str) -> Any:
    from cli.main import app

    return CliRunner().invoke(app, list(args))


# ------------------------------------------------------------------------------ refusal


def test_a_revoked_token_is_refused_by_every_write_route(registry: Registry) -> None:
    token, row = _create(registry)
    other, _ = _create(registry)
    assert registry.publish(token).status_code == 201
    registry.store.revoke_token(row.token_id, reason="leaked in a CI log", now=registry.clock())

    # The identity-token exchange and GitHub's webhook take no registry token.
    targets = {(m, r.path) for r in _token_routes(registry.app)
               for m in set(r.methods or ()) - _READ if r.path != "/api/v1/oidc/exchange"}
    assert len(targets) >= 5
    for method, path in sorted(targets):
        r = registry.client.request(method, _concrete(path), json={},
                                    headers=registry.auth(token))
        assert r.status_code == 401, f"{method} {path} answered {r.status_code}"
        error = r.json()["error"]
        assert error["code"] == "TOKEN_REVOKED" and error["fix"]
        assert r.headers["www-authenticate"] == "Bearer"
        # The operator's reason stays with the operator; the secret is never echoed.
        assert "leaked" not in r.text and token not in r.text
    # Other tokens of the same namespace are untouched.
    assert registry.publish(other, version="1.1.0").status_code == 201


def test_expired_revoked_and_unknown_tokens_are_told_apart(registry: Registry) -> None:
    expiring, _ = _create(registry, expires_in=timedelta(hours=1))
    revoked, row = _create(registry)
    both, both_row = _create(registry, expires_in=timedelta(hours=1))
    registry.store.revoke_token(row.token_id, now=registry.clock())
    registry.store.revoke_token(both_row.token_id, now=registry.clock())
    registry.clock.advance(hours=2)

    def code(token: str) -> str:
        r = registry.publish(token)
        assert r.status_code == 401
        return str(r.json()["error"]["code"])

    assert code(expiring) == "TOKEN_EXPIRED"
    assert code(revoked) == "TOKEN_REVOKED"
    assert code(both) == "TOKEN_REVOKED"  # revocation is final; it wins over expiry
    r = registry.publish("ctr_" + "x" * 43)
    assert r.status_code == 401 and r.json()["error"]["code"] == "BAD_TOKEN"
    # An unknown secret learns nothing about the tokens that exist.
    for t in registry.store.list_tokens(now=registry.clock()):
        assert t.token_id not in r.text


def test_revocation_is_immediate_across_store_instances(registry: Registry) -> None:
    """A revocation written through another engine (the CLI, another replica) is seen by the
    running app on its very next request: nothing about tokens is cached."""
    from registry import make_engine
    from registry._store import Store

    token, row = _create(registry)
    assert registry.publish(token).status_code == 201
    engine = make_engine(registry.db_url)
    try:
        Store(engine).revoke_token(row.token_id, now=registry.clock())
    finally:
        engine.dispose()
    r = registry.publish(token, version="1.1.0")
    assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REVOKED"


@pytest.mark.security_review
@pytest.mark.parametrize("namespace", ["acme\n", "Acme", "acm\u0435", "", "a" * 65])
def test_tokens_are_only_minted_for_exact_slug_namespaces(registry: Registry,
                                                          namespace: str) -> None:
    """A token's namespace becomes the publish namespace when the body names none, so a
    look-alike or trailing-newline namespace must never be created."""
    from registry._errors import Invalid

    with pytest.raises(Invalid) as exc:
        registry.store.create_token(namespace=namespace, role="publisher",
                                    expires_in=timedelta(days=1), now=registry.clock())
    assert exc.value.code == "BAD_NAMESPACE"


@pytest.mark.security_review
@pytest.mark.parametrize("holder", ["Ada", "ada\n", "a/b", "", "а"])  # the last is Cyrillic
def test_token_holders_are_exact_slugs(registry: Registry, holder: str) -> None:
    from registry._errors import Invalid

    with pytest.raises(Invalid):
        registry.store.create_token(namespace="cortex-core", role="reviewer", holder=holder,
                                    expires_in=timedelta(days=1), now=registry.clock())


# --------------------------------------------------------------------------- revoke / list


def test_revoke_is_idempotent_and_audited_once(registry: Registry) -> None:
    token, row = _create(registry, holder="ada")
    first, changed = registry.store.revoke_token(row.token_id, reason="left the team",
                                                 now=registry.clock())
    assert changed and first.state == "revoked" and first.revoked_reason == "left the team"
    registry.clock.advance(hours=1)
    again, changed = registry.store.revoke_token(row.token_id, reason="other",
                                                 now=registry.clock())
    assert not changed and again == first  # the first revocation's time and reason stay

    entries = _audit(registry)
    assert [e[0] for e in entries] == ["token.create", "token.revoke"]
    _, target, before, after = entries[1]
    assert target == f"token:{row.token_id}"
    assert json.loads(before or "{}")["state"] == "active"
    assert json.loads(after or "{}") == {"token_id": row.token_id, "state": "revoked",
                                         "reason": "left the team"}
    assert registry.store.audit_verify() == []
    for e in entries:
        assert token not in str(e) and row.token_hash not in str(e)


def test_revoke_refuses_bad_ids_and_reasons(registry: Registry) -> None:
    from registry._errors import Invalid, NotFound

    _, row = _create(registry)
    for bad in ("", "tok_", row.token_id + "\n", row.token_id.upper(), row.token_id[:-1],
                "ctr_abc", "1", "tok_zzzzzzzzzzzz"):
        with pytest.raises(Invalid) as exc:
            registry.store.revoke_token(bad, now=registry.clock())
        assert exc.value.code == "BAD_TOKEN_ID"
    with pytest.raises(NotFound) as nf:
        registry.store.revoke_token("tok_000000000000", now=registry.clock())
    assert nf.value.code == "NO_SUCH_TOKEN"
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(Invalid) as exc:
            registry.store.revoke_token(row.token_id, reason=reason, now=registry.clock())
        assert exc.value.code == "BAD_REASON"
    # Nothing above wrote anything.
    assert [e[0] for e in _audit(registry)] == ["token.create"]
    assert registry.store.list_tokens(now=registry.clock())[0].state == "active"


def test_list_shows_state_and_never_a_secret(registry: Registry) -> None:
    a, a_row = _create(registry, holder="ada")
    b, b_row = _create(registry, namespace="cortex-core", role="reviewer",
                       expires_in=timedelta(hours=1))
    c, c_row = _create(registry, role="admin")
    registry.store.revoke_token(c_row.token_id, reason="rotated", now=registry.clock())
    registry.clock.advance(hours=2)

    tokens = registry.store.list_tokens(now=registry.clock())
    assert [(t.token_id, t.namespace, t.role, t.holder, t.state) for t in tokens] == [
        (a_row.token_id, "acme", "publisher", "ada", "active"),
        (b_row.token_id, "cortex-core", "reviewer", None, "expired"),
        (c_row.token_id, "acme", "admin", None, "revoked"),
    ]
    assert tokens[2].revoked_reason == "rotated" and tokens[2].revoked_at
    dumped = json.dumps([t.model_dump() for t in tokens])
    for secret, row in ((a, a_row), (b, b_row), (c, c_row)):
        assert secret not in dumped and row.token_hash not in dumped
    assert "token_hash" not in dumped
    only = registry.store.list_tokens(now=registry.clock(), namespace="cortex-core")
    assert [t.token_id for t in only] == [b_row.token_id]
    assert registry.store.list_tokens(now=registry.clock(), namespace="nobody") == []


def test_last_use_is_recorded_coarsely_and_only_on_success(registry: Registry) -> None:
    from registry._store import LAST_USED_GRANULARITY

    def last_used() -> str | None:
        value: str | None = registry.store.list_tokens(now=registry.clock())[0].last_used_at
        return value

    token, row = _create(registry, expires_in=timedelta(days=1))
    assert last_used() is None
    start = registry.clock()
    assert registry.publish(token).status_code == 201
    first = last_used()
    assert first == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    registry.clock.advance(seconds=LAST_USED_GRANULARITY.total_seconds() / 2)
    assert registry.publish(token).status_code == 409  # authenticated; within the period
    assert last_used() == first
    registry.clock.advance(seconds=LAST_USED_GRANULARITY.total_seconds())
    assert registry.publish(token).status_code == 409
    later = last_used()
    assert later is not None and first is not None and later > first
    # Refused requests record nothing; last use is not an audited action.
    registry.store.revoke_token(row.token_id, now=registry.clock())
    registry.clock.advance(hours=1)
    assert registry.publish(token).status_code == 401
    assert last_used() == later
    assert [e[0] for e in _audit(registry)] == ["token.create", "version.publish", "token.revoke"]


# ------------------------------------------------------------------------------------ CLI


def test_cli_create_list_revoke(registry: Registry) -> None:
    from registry._store import hash_token

    db = registry.db_url
    r = _cli("registry", "token", "create", "--namespace", "acme", "--role", "publisher",
             "--holder", "ada", "--expires", "1d", "--db", db)
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    r = _cli("registry", "token", "create", "--namespace", "cortex-core", "--role", "reviewer",
             "--db", db)
    assert r.exit_code == 0, r.output

    r = _cli("registry", "token", "list", "--db", db, "--format", "json")
    assert r.exit_code == 0, r.output
    items = json.loads(r.stdout)
    assert [(i["namespace"], i["role"], i["holder"], i["state"]) for i in items] == [
        ("acme", "publisher", "ada", "active"), ("cortex-core", "reviewer", None, "active")]
    assert secret not in r.stdout and hash_token(secret) not in r.stdout
    token_id = items[0]["token_id"]

    r = _cli("registry", "token", "list", "--db", db, "--namespace", "cortex-core")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAMESPACE", "ROLE"] and len(lines) == 2
    assert "cortex-core" in lines[1] and "never" in lines[1] and "active" in lines[1]

    r = _cli("registry", "token", "revoke", token_id, "--reason", "laptop\nlost", "--db", db)
    assert r.exit_code == 0, r.output
    assert "revoked" in r.stderr
    r = _cli("registry", "token", "revoke", token_id, "--db", db)
    assert r.exit_code == 0 and "already revoked" in r.stderr

    r = _cli("registry", "token", "list", "--db", db)
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if token_id in line)
    # The reason is shown with its control characters escaped, never obeyed.
    assert "revoked" in row and "laptop\\nlost" in row

    # The running app refuses the token on the next request.
    resp = registry.publish(secret)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "TOKEN_REVOKED"

    r = _cli("registry", "audit", "verify", "--db", db)
    assert r.exit_code == 0, r.output
    assert [e[0] for e in _audit(registry)].count("token.revoke") == 1


def test_cli_revoke_refuses_unknown_ids_and_secrets(registry: Registry) -> None:
    db = registry.db_url
    secret, _ = _create(registry)
    r = _cli("registry", "token", "revoke", "tok_000000000000", "--db", db)
    assert r.exit_code == 2 and "token list" in r.stderr
    r = _cli("registry", "token", "revoke", "not-an-id", "--db", db)
    assert r.exit_code == 2 and "tok_" in r.stderr
    r = _cli("registry", "token", "revoke", secret, "--db", db)
    assert r.exit_code == 2 and "not a token id" in r.stderr and secret not in r.output
    assert registry.store.list_tokens(now=registry.clock())[0].state == "active"
    r = _cli("registry", "token", "revoke", "tok_000000000000", "--reason", "x" * 501,
             "--db", db)
    assert r.exit_code == 2
    r = _cli("registry", "token", "list", "--db", db, "--format", "yaml")
    assert r.exit_code == 2
    r = _cli("registry", "token", "list", "--db", db, "--namespace", "Acme")
    assert r.exit_code == 2
    assert [e[0] for e in _audit(registry)] == ["token.create"]


def test_cli_list_of_an_empty_registry(db_url: str) -> None:
    r = _cli("registry", "token", "list", "--db", db_url, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == []
    r = _cli("registry", "token", "list", "--db", db_url)
    assert r.exit_code == 0 and r.stdout == "" and "no tokens" in r.stderr


def test_cli_list_refuses_bad_arguments(db_url: str) -> None:
    r = _cli("registry", "token", "list", "--db", db_url, "--format", "xml")
    assert r.exit_code == 2 and "--format 'xml' is not text or json" in r.stderr
    r = _cli("registry", "token", "list", "--db", db_url, "--namespace", "Acme")
    assert r.exit_code == 2 and "not a lowercase slug" in r.stderr and "fix:" in r.stderr
