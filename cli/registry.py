"""``cortex registry``: run and operate a registry (serve, migrate, retier; tokens in
:mod:`cli.registry_tokens`, the audit log and its key in :mod:`cli.registry_log`).

Only typer and the standard library are imported at module level; the registry service and
the library are imported inside the commands so that ``cortex --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import registry_index, registry_jobs, registry_log, registry_publishers, registry_tokens
from ._errors import EXIT_INPUT, fail
from ._options import (
    DbOpt,
    InProcessOpt,
    NoDefaultsOpt,
    OpaUrlOpt,
    PolicyEngineOpt,
    RegistryDataOpt,
    RegistryPolicyDirOpt,
    WhatIfFormatOpt,
)
from ._registry_db import IndexKeysOpt, NameOpt, migrated_engine, redact_url, sign_receipts
from ._registry_scan import (
    AllowRegistryOpt,
    RescanAfterOpt,
    ScanOpt,
    TrivyDbOpt,
    TrivyOpt,
    engine_factory,
    scanner,
    warn,
)
from ._registry_scan import rescan_after as parse_rescan_after
from .registry_governance import GitHubConfigOpt
from .registry_log import LOG_KEY_ENV, load_log_key

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="Run and operate a plugin registry (serve, tokens, audit, retier).")
registry_tokens.register(app)
registry_publishers.register(app)
registry_log.register(app)
registry_index.register(app)
registry_jobs.register(app)


@app.command("serve")
def serve(
    db: DbOpt,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    policy_dir: RegistryPolicyDirOpt = None,
    data: RegistryDataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    policy_engine: PolicyEngineOpt = None,
    opa_url: OpaUrlOpt = None,
    # Unlike the shared --trusted-root (an extra root after the production one), a registry's
    # roots replace the production root.
    trusted_root: Annotated[list[Path] | None, typer.Option(
        "--trusted-root", metavar="FILE", show_default=False,
        help="Sigstore trusted_root.json bundles must chain to (repeatable); default: the pinned "
             "production root.")] = None,
    allow_registry: AllowRegistryOpt = None,
    name: NameOpt = "cortex-registry",
    max_body: Annotated[int, typer.Option(
        "--max-body", help="Largest request body accepted, in bytes.")] = 1024 * 1024,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="API processes serving requests side by side (this process runs the "
                                 "background work); not with --index-dir.")] = 1,
    scan: ScanOpt = True,
    trivy: TrivyOpt = None,
    trivy_db: TrivyDbOpt = None,
    rescan_after: RescanAfterOpt = "6d",
    jobs: Annotated[str | None, typer.Option(
        "--jobs", metavar="local|queue",
        help="Who runs the background jobs (scans, rescans, the GitHub poll): `local`, this "
             "process; `queue`, `cortex registry worker` processes (PostgreSQL). Default: local "
             "on SQLite, queue on PostgreSQL.")] = None,
    log_key: Annotated[Path | None, typer.Option(
        "--log-key", envvar=LOG_KEY_ENV, metavar="FILE",
        help="File with the key that signs the audit log's checkpoints (`cortex registry "
             "log-key create`; mode 0600, never in the database). Without it the log serves "
             "proofs but no signed checkpoint.")] = None,
    platform_version: Annotated[str | None, typer.Option(
        "--platform-version", envvar="CORTEX_PLATFORM_VERSION", metavar="X.Y.Z",
        help="The CORTEX platform version this registry decides for (compared with manifests' "
             "min_cortex_version, recorded in its decisions). Default: unknown.")] = None,
    oidc_issuer: Annotated[list[str] | None, typer.Option(
        "--oidc-issuer", metavar="URL",
        help="OIDC issuer whose identity tokens trusted publishers may present (repeatable); "
             "default: GitHub Actions (https://token.actions.githubusercontent.com).")] = None,
    oidc_audience: Annotated[str | None, typer.Option(
        "--oidc-audience", metavar="TEXT",
        help="The audience identity tokens must be issued for (unique to this registry, e.g. its "
             "URL); default: --name.")] = None,
    github_config: GitHubConfigOpt = None,
    index_dir: Annotated[Path | None, typer.Option(
        "--index-dir", envvar="CORTEX_INDEX_DIR", metavar="DIR",
        help="Keep this signed index (made by `cortex registry index build`) current after "
             "every write and re-sign its timestamp in time.")] = None,
    index_keys: Annotated[Path | None, typer.Option(
        "--index-keys", envvar="CORTEX_INDEX_KEYS", metavar="DIR",
        help="The index's online keys (snapshot.pem, timestamp.pem, bins.pem).")] = None,
) -> None:
    """Run the registry API (migrates the database first). Ctrl-C stops it.

    Every publish queues a scan of the image by the registry itself, run as a job: here with
    --jobs local (the default on SQLite), by `cortex registry worker` processes with --jobs
    queue (the default on PostgreSQL). A registry that cannot scan (--no-scan, or no Trivy)
    says so at start-up and in /healthz, and keeps serving: its versions stay below Community
    until scanned (a publisher's own report does not count).
    """
    params = dict(locals())  # what every API process of --workers N is built from
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from registry import RegistryConfig, create_app
    from registry._config import DEFAULT_MAX_BODY, DEFAULT_OCI_REGISTRIES

    if workers > 1 and index_dir is not None:
        fail("--workers above 1 cannot keep a signed index current (--index-dir): the index follows the "
             "writes of its own process", code=EXIT_INPUT,
             advice="keep the index with one `cortex registry serve --index-dir DIR` process (--workers 1), "
                    "or drop --index-dir")
    roots = tuple(load_trust_root(p) for p in trusted_root) if trusted_root \
        else (production_trust_root(),)
    signer = load_log_key(log_key) if log_key is not None else None
    if platform_version is not None:
        from cortex_trust.install import check_platform_version

        try:
            check_platform_version(platform_version)
        except ValueError as e:
            fail(f"--platform-version {platform_version!r}: {e}",
                 advice="pass the CORTEX platform's version, e.g. --platform-version 8.1.0")
    from .registry_governance import governance_config

    governance = governance_config(github_config)
    oidc = _oidc_settings(oidc_issuer, oidc_audience or name)
    factory = engine_factory(policy_dir, data, no_default_policies, policy_engine, opa_url)
    engine = migrated_engine(db)
    every = parse_rescan_after(rescan_after)
    run_jobs = _jobs_mode(jobs, engine)
    if run_jobs == "local":
        scan_image, unavailable = scanner(scan, trivy=trivy, trivy_db=trivy_db)
    else:
        scan_image, unavailable = None, "unavailable"
        print("background jobs (scans, rescans, the GitHub poll) run on `cortex registry worker` "
              "processes (--jobs queue)", file=sys.stderr)
    config = RegistryConfig(db_url=db, trusted_roots=roots, rescan_after=every,
                            oci_registries=tuple(allow_registry or DEFAULT_OCI_REGISTRIES),
                            max_body_bytes=max_body or DEFAULT_MAX_BODY, name=name,
                            scanner=scan_image, scan_unavailable=unavailable, jobs=run_jobs,
                            log_signer=signer, platform_version=platform_version, oidc=oidc,
                            governance=governance,
                            index_dir=index_dir, index_keys=index_keys)
    if index_dir is not None:
        from .registry_index import check_online

        check_online(index_dir, index_keys)
    application = create_app(config, engine_factory=factory, db=engine)
    if governance is None:
        print("no registry repository on GitHub: promotions and disputes are off "
              "(set CORTEX_REGISTRY_GITHUB_REPOSITORY or --github-config)", file=sys.stderr)
    elif not governance.webhook_secret:
        warn("no webhook secret: GitHub's deliveries are refused; promotions and disputes are "
             "refreshed by polling only", "set CORTEX_REGISTRY_WEBHOOK_SECRET (or webhook_secret_file)")
    if signer is None:
        warn("no --log-key: the audit log's checkpoints are not signed, so no one outside "
             "this database can hold the registry to its history (GET /api/v1/log/checkpoint "
             "answers 404 LOG_NOT_SIGNED)",
             f"create a key with `cortex registry log-key create FILE` and pass --log-key FILE "
             f"(or {LOG_KEY_ENV})")
    else:
        print(f"audit log checkpoints signed by {signer.name}; verifier key: "
              f"{signer.verifier.text}", file=sys.stderr)

    from ._registry_serve import building_api_process, serve_processes

    if building_api_process(application):  # one of the API processes of --workers N
        return
    import uvicorn

    print(f"cortex registry listening on http://{host}:{port} (db: {redact_url(db)})"
          + (f", {workers} API processes" if workers > 1 else ""), file=sys.stderr)
    if workers > 1:
        serve_processes(application, params, workers=workers, host=host, port=port)
    else:
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
    application.state.evaluator.close()


def _api_process_app() -> Any:
    """uvicorn's factory for the API processes of ``serve --workers N`` (:mod:`cli._registry_serve`)."""
    from ._registry_serve import build_api_process

    return build_api_process(serve)


@app.command("rescan")
def rescan(
    db: DbOpt,
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="DURATION",
        help="Queue every version whose newest scan is older than this (90d, 12h, 30m; 0: every "
             "version, e.g. after a vulnerability database update).")] = "6d",
    name: NameOpt = "cortex-registry",
) -> None:
    """Queue a rescan of every version (not revoked) whose scan is older than --older-than.

    The registry's scan jobs (run by `cortex registry worker`, or by `cortex registry serve
    --jobs local`, with Trivy and --trivy-db) run the queued scans with their current
    vulnerability database; each outcome re-decides its version at
    once (a CRITICAL found since lowers the tier). Prints the queued versions as JSON.
    """
    import json
    from datetime import UTC, datetime, timedelta

    from registry._store import Store

    age = timedelta(0) if older_than == "0" else parse_rescan_after(older_than)
    if age is None:
        fail("--older-than off queues nothing", advice="give a duration like 6d (0: every scan)",
             code=EXIT_INPUT)
    engine = migrated_engine(db)
    try:
        now = datetime.now(UTC)
        queued = Store(engine, registry_name=name).queue_rescans(older_than=now - age, now=now,
                                                                 actor="operator")
    finally:
        engine.dispose()
    print(json.dumps({"queued": queued}))


def _jobs_mode(jobs: str | None, engine: Any) -> Any:
    """``--jobs`` (default: ``local`` on SQLite, ``queue`` on PostgreSQL); exit 2 otherwise."""
    postgres = engine.dialect.name == "postgresql"
    mode = jobs or ("queue" if postgres else "local")
    if mode not in ("local", "queue"):
        fail(f"--jobs {jobs!r}: expected local or queue", code=EXIT_INPUT)
    if mode == "queue" and not postgres:
        fail("--jobs queue needs a PostgreSQL registry database", code=EXIT_INPUT,
             advice="on SQLite the jobs run in `serve` itself (--jobs local)")
    return mode


def _oidc_settings(issuers: list[str] | None, audience: str) -> Any:
    """The registry's trusted-publishing settings; exit 2 for an issuer that is not an https
    URL (http only on loopback) or an empty audience."""
    from registry._oidc import GITHUB_ACTIONS_ISSUER, OidcSettings, check_issuer_url

    for issuer in issuers or ():
        if (why := check_issuer_url(issuer)) is not None:
            fail(f"--oidc-issuer {issuer!r}: {why}", advice="pass the issuer URL exactly as its tokens' iss "
                 "claim names it, e.g. https://token.actions.githubusercontent.com", code=EXIT_INPUT)
    if not audience.strip() or len(audience) > 255:
        fail("--oidc-audience must be 1 to 255 characters", code=EXIT_INPUT)
    return OidcSettings(audience=audience, issuers=tuple(issuers or (GITHUB_ACTIONS_ISSUER,)))


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
    migrated_engine(db).dispose()
    print(f"database {redact_url(db)} is at the newest schema", file=sys.stderr)


@app.command("retier")
def retier(
    db: DbOpt,
    policy_dir: RegistryPolicyDirOpt = None,
    data: RegistryDataOpt = None,
    no_default_policies: NoDefaultsOpt = False,
    name: NameOpt = "cortex-registry",
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Threads deciding batches here, each with its own policy engine process "
                          "(default: one per usable CPU; 0: one engine in this thread).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Write nothing: report every version whose tier, action or sandbox "
                          "would change, grouped by reason (exit 1 when one would be newly "
                          "blocked).")] = False,
    output_format: WhatIfFormatOpt = "text",
    index_keys: IndexKeysOpt = None,
    in_process: InProcessOpt = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="PostgreSQL: follow the queued run until it is applied (progress on "
                       "stderr), then print its counts.")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Versions per batch job.")] = 1000,
) -> None:
    """Re-evaluate every version with the given policy (after a policy change).

    Stored evidence is reused: no signature is verified again. All or nothing: the run's
    decisions are staged under its id and switched in one write at the end (or discarded).
    On SQLite (or with --in-process) the batches are decided here and the counts printed as
    JSON. On PostgreSQL the batches are queued as jobs for `cortex registry worker` processes
    and the run id printed; with --wait the run is followed to its end. Exit 3 when some
    versions could not be decided (they are blocked, fail closed) or the run failed. With
    --dry-run nothing is written: the report of what would change (--format text, json or
    markdown); exit 1 when a version would be newly blocked, 3 when a version could not be
    decided.
    """
    import json
    from datetime import UTC, datetime

    from cortex_trust.policy import load_policy_set
    from registry._retier import LocalDeciders
    from registry._store import Store

    from ._errors import EXIT_UNAVAILABLE

    if workers is not None and workers < 0:
        fail("--workers must be 0 (in this process) or more", code=EXIT_INPUT)
    if output_format != "text" and not dry_run:
        fail("--format applies to --dry-run", code=EXIT_INPUT,
             advice="add --dry-run for a report, or drop --format (a run prints its counts as JSON)")
    engine = migrated_engine(db)
    try:
        policy_set = load_policy_set(policy_dir or [], data or [], defaults=not no_default_policies)
        store = Store(engine, registry_name=name)
        if not dry_run:
            sign_receipts(store, index_keys)
        if dry_run:
            with LocalDeciders(policy_set, registry_name=name, workers=workers) as deciders:
                _what_if(store, deciders, output_format, now=datetime.now(UTC))
            return
        if engine.dialect.name == "postgresql" and not in_process:
            from .registry_jobs import enqueue_retier

            result = enqueue_retier(store, db, policy_set, batch=batch, wait=wait)
            if result is None:
                return
        else:
            from registry._jobs import retier_in_process

            result = retier_in_process(store, policy_set, now=datetime.now(UTC), workers=workers, batch=batch)
    finally:
        engine.dispose()
    print(json.dumps(result))
    if result["failed"]:
        from ._render import plural

        print(f"could not decide {plural(result['failed'], 'version')}, now blocked (the policy "
              "engine failed); see their decisions", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE)


def _what_if(store: Any, deciders: Any, output_format: str, *, now: Any) -> None:
    """Print what re-tiering with ``deciders`` would change and exit with the what-if code."""
    import json

    from ._whatif import WhatIf, whatif_exit_code

    whatif = WhatIf(policy_revision=deciders.revision)
    for plugin, version, state, stored, outcome in store.retier_preview(now=now, deciders=deciders):
        whatif.add(plugin, version, state, json.loads(stored), json.loads(outcome.decision_json))
    sys.stdout.write(whatif.render(output_format))
    raise SystemExit(whatif_exit_code(whatif.report()))
