"""``cortex registry``: run and operate a registry (serve, migrate, tokens, audit, retier).

Only typer and the standard library are imported at module level; the registry service and
the library are imported inside the commands so that ``cortex --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ._errors import EXIT_DECISION, EXIT_INPUT, fail

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="Run and operate a plugin registry (serve, tokens, audit, retier).")
token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke registry API tokens.")
audit_app = typer.Typer(no_args_is_help=True, help="Check the registry's audit log.")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")

_DEFAULT_DB = "sqlite:///cortex-registry.db"

DbOption = Annotated[str, typer.Option(
    "--db", help="Database URL: sqlite:///PATH (default ./cortex-registry.db) or "
                 "postgresql://USER@HOST:PORT/DB.")]
PolicyDirOption = Annotated[list[Path] | None, typer.Option(
    "--policy-dir", help="Directory of Rego modules adding to or overriding the defaults "
                         "(repeatable).")]
DataOption = Annotated[list[Path] | None, typer.Option(
    "--data", help="Data file (YAML/JSON) merged over the default data (repeatable).")]
NoDefaultsOption = Annotated[bool, typer.Option(
    "--no-default-policies", help="Use only --policy-dir/--data, not the built-in policies.")]


def _migrated_engine(db: str) -> Any:
    from registry import make_engine, migrate

    engine = make_engine(db)
    migrate(engine)
    return engine


def _engine_factory(policy_dir: list[Path] | None, data: list[Path] | None,
                    no_defaults: bool) -> Callable[[], Any]:
    """Load the policy set now (errors surface at start-up) and return an engine factory."""
    from cortex_trust.engine.embedded import EmbeddedEngine
    from cortex_trust.policyset import load_policy_set

    policy_set = load_policy_set(policy_dir or [], data or [], defaults=not no_defaults)
    # A server's engine decides for its whole life: worth the precomputation at load.
    return lambda: EmbeddedEngine(policy_set, precompute=True)


@app.command("serve")
def serve(
    db: DbOption = _DEFAULT_DB,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    policy_dir: PolicyDirOption = None,
    data: DataOption = None,
    no_default_policies: NoDefaultsOption = False,
    trusted_root: Annotated[list[Path] | None, typer.Option(
        "--trusted-root", help="Sigstore trusted_root.json bundles must chain to (repeatable); "
                               "default: the pinned production root.")] = None,
    allow_registry: Annotated[list[str] | None, typer.Option(
        "--allow-registry", help="OCI registry host image references may name (repeatable); "
                                 "default: ghcr.io, docker.io, quay.io.")] = None,
    name: Annotated[str, typer.Option("--name", help="This registry's name in decisions.")]
    = "cortex-registry",
    max_body: Annotated[int, typer.Option(
        "--max-body", help="Largest request body accepted, in bytes.")] = 1024 * 1024,
    workers: Annotated[int, typer.Option("--workers", help="Server worker processes.")] = 1,
    scan: Annotated[bool, typer.Option(
        "--scan", help="Scan published images without a scan report with Trivy (a persisted "
                       "background job; needs trivy, see `cortex-trust[scan]`).")] = False,
    trivy_db: Annotated[Path | None, typer.Option(
        "--trivy-db", help="Trivy cache directory with a vulnerability database.")] = None,
) -> None:
    """Run the registry API (migrates the database first). Ctrl-C stops it."""
    from cortex_trust.evidence.signature import load_trust_root, production_trust_root
    from registry import RegistryConfig, create_app
    from registry._config import DEFAULT_MAX_BODY, DEFAULT_OCI_REGISTRIES

    if workers != 1:
        fail("--workers other than 1 is not supported by `serve`",
             advice="run several `cortex registry serve` replicas on one PostgreSQL instead")
    roots = tuple(load_trust_root(p) for p in trusted_root) if trusted_root \
        else (production_trust_root(),)
    factory = _engine_factory(policy_dir, data, no_default_policies)
    engine = _migrated_engine(db)
    scanner = None
    if scan:
        from cortex_trust.evidence.scan import find_trivy, run_trivy

        find_trivy()  # fail at start-up, not on the first job

        def scanner(image: str, digest: str) -> Any:
            return run_trivy(image, digest=digest, db_dir=trivy_db)

    config = RegistryConfig(db_url=db, trusted_roots=roots,
                            oci_registries=tuple(allow_registry or DEFAULT_OCI_REGISTRIES),
                            max_body_bytes=max_body or DEFAULT_MAX_BODY, name=name,
                            scanner=scanner)
    application = create_app(config, engine_factory=factory, db=engine)

    import uvicorn

    print(f"cortex registry listening on http://{host}:{port} (db: {_redact(db)})",
          file=sys.stderr)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    application.state.evaluator.close()


@app.command("migrate")
def migrate_cmd(db: DbOption = _DEFAULT_DB) -> None:
    """Create or upgrade the registry database schema (Alembic)."""
    _migrated_engine(db).dispose()
    print(f"database {_redact(db)} is at the newest schema", file=sys.stderr)


@token_app.command("create")
def token_create(
    namespace: Annotated[str, typer.Option(
        "--namespace", help="Namespace the token acts in (created if new).")],
    role: Annotated[str, typer.Option(
        "--role", help="publisher, reviewer, installation or admin.")],
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 90d, 12h, 30m.")] = "90d",
    holder: Annotated[str | None, typer.Option(
        "--holder", help="Who holds it, e.g. ada: a reviewer's reviews are recorded as "
                         "NAMESPACE/HOLDER (cortex-core/ada), as the policy's reviewer list names them.")] = None,
    db: DbOption = _DEFAULT_DB,
) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    import re
    from datetime import UTC, datetime

    from registry._models import SLUG
    from registry._store import ROLES, Store, parse_duration

    if not re.fullmatch(SLUG, namespace) or (holder is not None and not re.fullmatch(SLUG, holder)):
        fail(f"namespace {namespace!r} (or holder {holder!r}) is not a lowercase slug",
             advice="use lowercase letters, digits and inner hyphens (e.g. acme)", code=EXIT_INPUT)
    if role not in ROLES:
        fail(f"unknown role {role!r}", advice=f"use one of {', '.join(ROLES)}", code=EXIT_INPUT)
    try:
        lifetime = parse_duration(expires)
    except ValueError as e:
        fail(str(e), advice="use e.g. --expires 90d", code=EXIT_INPUT)
    engine = _migrated_engine(db)
    try:
        plaintext, row = Store(engine).create_token(namespace=namespace, role=role, holder=holder,
                                                    expires_in=lifetime, now=datetime.now(UTC))
    finally:
        engine.dispose()
    print(f"token {row.token_id} ({role} in {namespace}, expires {row.expires_at}); "
          "it is shown only once:", file=sys.stderr)
    print(plaintext)


def _api_fail(error: Any) -> NoReturn:
    """Report a :class:`registry._errors.ApiError` from a store call and exit (2 for a bad
    argument, 3 when the database is unavailable)."""
    from ._errors import EXIT_UNAVAILABLE

    fail(error.message, advice=error.fix or None,
         code=EXIT_UNAVAILABLE if error.status >= 500 else EXIT_INPUT)


@token_app.command("list")
def token_list(
    db: DbOption = _DEFAULT_DB,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Only the tokens of this namespace.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """List tokens: id, namespace, role, holder, created, expires, last use, state.

    Secrets are shown only once, by `token create`; they and their hashes are never listed.
    Last use is recorded at most every 15 minutes. Refer to a token by its id (tok_...).
    """
    import json
    import re
    from datetime import UTC, datetime

    from registry._errors import ApiError
    from registry._models import SLUG
    from registry._store import Store

    from ._render import neutralise

    if fmt not in ("text", "json"):
        fail(f"--format {fmt!r} is not text or json", advice="use --format text or --format json",
             code=EXIT_INPUT)
    if namespace is not None and not re.fullmatch(SLUG, namespace):
        fail(f"namespace {namespace!r} is not a lowercase slug",
             advice="use lowercase letters, digits and inner hyphens (e.g. acme)", code=EXIT_INPUT)
    engine = _migrated_engine(db)
    try:
        tokens = Store(engine).list_tokens(now=datetime.now(UTC), namespace=namespace)
    except ApiError as e:
        _api_fail(e)
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
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(
        metavar="ID", help="The token's id (tok_..., see `token list`), not the token.")],
    db: DbOption = _DEFAULT_DB,
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
    engine = _migrated_engine(db)
    try:
        token, changed = Store(engine).revoke_token(token_id, reason=reason, now=datetime.now(UTC))
    except ApiError as e:
        _api_fail(e)
    finally:
        engine.dispose()
    if changed:
        print(f"token {token.token_id} ({token.role} in {token.namespace}) revoked", file=sys.stderr)
    else:
        print(f"token {token.token_id} was already revoked at {token.revoked_at}; nothing changed",
              file=sys.stderr)


@audit_app.command("verify")
def audit_verify(db: DbOption = _DEFAULT_DB) -> None:
    """Check the hash chain of the audit log. Exit 0 intact, 1 tampered."""
    from registry._store import Store

    engine = _migrated_engine(db)
    try:
        problems = Store(engine).audit_verify()
    finally:
        engine.dispose()
    if problems:
        for p in problems:
            print(f"audit entry {p.entry_id}: {p.problem}", file=sys.stderr)
        print("the audit log was tampered with", file=sys.stderr)
        raise SystemExit(EXIT_DECISION)
    print("audit log intact", file=sys.stderr)


@app.command("retier")
def retier(
    db: DbOption = _DEFAULT_DB,
    policy_dir: PolicyDirOption = None,
    data: DataOption = None,
    no_default_policies: NoDefaultsOption = False,
    name: Annotated[str, typer.Option("--name", help="This registry's name in decisions.")]
    = "cortex-registry",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Policy engine processes (default: one per usable CPU).")] = None,
) -> None:
    """Re-evaluate every version with the given policy (after a policy change).

    Stored evidence is reused: no signature is verified again. One transaction: all or
    nothing. Prints the counts as JSON; exit 3 when some versions could not be decided (they
    are blocked, fail closed).
    """
    import json
    from datetime import UTC, datetime

    from cortex_trust.errors import CortexTrustError
    from cortex_trust.policyset import load_policy_set
    from registry._retier import RetierPool
    from registry._store import Store

    from ._errors import EXIT_UNAVAILABLE, report_library_error

    if workers is not None and workers < 0:
        fail("--workers must be 0 (in this process) or more", code=EXIT_INPUT)
    engine = _migrated_engine(db)
    try:
        policy_set = load_policy_set(policy_dir or [], data or [], defaults=not no_default_policies)
        with RetierPool(policy_set, registry_name=name, workers=workers) as pool:
            result = Store(engine, registry_name=name).retier_all(now=datetime.now(UTC),
                                                                 pool=pool)
    except CortexTrustError as e:
        report_library_error(e)
    finally:
        engine.dispose()
    print(json.dumps(result))
    if result["failed"]:
        print(f"{result['failed']} version(s) could not be decided and are blocked "
              "(the policy engine failed); see their decisions", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE)


def _redact(url: str) -> str:
    """The URL without a password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
