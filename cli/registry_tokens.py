"""``cortex registry token``: create, list and revoke the registry's API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ._errors import EXIT_INPUT, fail, report_api_error
from ._options import DbOpt, FormatOpt
from ._registry_db import migrated_engine

__all__ = ["register"]

token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke registry API tokens.")


def register(app: typer.Typer) -> None:
    """Add ``token`` to ``cortex registry``."""
    app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    namespace: Annotated[str, typer.Option(
        "--namespace", help="Namespace the token acts in (created if new).")],
    role: Annotated[str, typer.Option(
        "--role", help="publisher, reviewer, installation or admin.")],
    db: DbOpt,
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 90d, 12h, 30m.")] = "90d",
    holder: Annotated[str | None, typer.Option(
        "--holder", help="Who holds it, e.g. ada: a reviewer's reviews are recorded as "
                         "NAMESPACE/HOLDER (cortex-core/ada), as the policy's reviewer list names them.")] = None,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    from datetime import UTC, datetime

    from cortex_trust.ids import is_slug
    from registry._store import ROLES, Store, parse_duration

    if not is_slug(namespace) or (holder is not None and not is_slug(holder)):
        fail(f"namespace {namespace!r} (or holder {holder!r}) is not a lowercase slug",
             advice="use lowercase letters, digits and inner hyphens (e.g. acme)", code=EXIT_INPUT)
    if role not in ROLES:
        fail(f"unknown role {role!r}", advice=f"use one of {', '.join(ROLES)}", code=EXIT_INPUT)
    try:
        lifetime = parse_duration(expires)
    except ValueError as e:
        fail(str(e), advice="use e.g. --expires 90d", code=EXIT_INPUT)
    engine = migrated_engine(db)
    try:
        plaintext, row = Store(engine).create_token(namespace=namespace, role=role, holder=holder,
                                                    expires_in=lifetime, now=datetime.now(UTC))
    finally:
        engine.dispose()
    print(f"token {row.token_id} ({role} in {namespace}, expires {row.expires_at}); "
          "it is shown only once:", file=sys.stderr)
    print(plaintext)


@token_app.command("list")
def token_list(
    db: DbOpt,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Only the tokens of this namespace.")] = None,
    fmt: FormatOpt = "text",
) -> None:
    """List tokens: id, namespace, role, holder, created, expires, last use, state.

    Secrets are shown only once, by `token create`; they and their hashes are never listed.
    Last use is recorded at most every 15 minutes. Refer to a token by its id (tok_...).
    """
    import json
    from datetime import UTC, datetime

    from cortex_trust.ids import is_slug
    from registry._errors import ApiError
    from registry._store import Store

    from ._render import neutralise

    if namespace is not None and not is_slug(namespace):
        fail(f"namespace {namespace!r} is not a lowercase slug",
             advice="use lowercase letters, digits and inner hyphens (e.g. acme)", code=EXIT_INPUT)
    engine = migrated_engine(db)
    try:
        tokens = Store(engine).list_tokens(now=datetime.now(UTC), namespace=namespace)
    except ApiError as e:  # the registry's own HTTP error, not a library error: rendered here
        report_api_error(e)
    finally:
        engine.dispose()
    if fmt == "json":
        print(json.dumps([t.model_dump() for t in tokens], indent=2))
        return
    if not tokens:
        print("no tokens" + (f" in namespace {namespace}" if namespace else ""), file=sys.stderr)
        return
    rows = [("ID", "NAMESPACE", "ROLE", "HOLDER", "CREATED", "EXPIRES", "LAST USED", "STATE")]
    for t in tokens:
        state: str = t.state
        if t.revoked_at:
            # The reason is an operator's free text: shown, never obeyed by the terminal.
            state += f" {t.revoked_at}" + (f": {neutralise(t.revoked_reason)}"
                                           if t.revoked_reason else "")
        rows.append((t.token_id, t.namespace, t.role, t.holder or "-", t.created_at,
                     t.expires_at, t.last_used_at or "never", state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        # Every cell is database text: an edited row must not drive the terminal either.
        print(neutralise("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(
        metavar="ID", help="The token's id (tok_..., see `token list`), not the token.")],
    db: DbOpt,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why (kept for operators and in the audit log).")] = None,
) -> None:
    """Revoke a token: every authenticated route refuses it from the next request on.

    Idempotent: revoking a revoked token changes nothing and exits 0. Each revocation is one
    entry in the audit log. Exit 2 for an unknown id.
    """
    from datetime import UTC, datetime

    from registry._errors import ApiError
    from registry._store import TOKEN_PREFIX, Store

    if token_id.startswith(TOKEN_PREFIX):
        # Someone pasted the secret: do not look it up (it is now in the shell history; that
        # token must be revoked by its id, and the operator should know).
        fail("that is a token, not a token id",
             advice="revoke it by its id (tok_..., see `cortex registry token list`); it has "
                    "been exposed on a command line, so do revoke it", code=EXIT_INPUT)
    engine = migrated_engine(db)
    try:
        token, changed = Store(engine).revoke_token(token_id, reason=reason, now=datetime.now(UTC))
    except ApiError as e:  # the registry's own HTTP error, not a library error: rendered here
        report_api_error(e)
    finally:
        engine.dispose()
    if changed:
        print(f"token {token.token_id} ({token.role} in {token.namespace}) revoked", file=sys.stderr)
    else:
        print(f"token {token.token_id} was already revoked at {token.revoked_at}; nothing changed",
              file=sys.stderr)
