"""``cortex registry publisher``: the CI workflows that may publish to a namespace with their OIDC
identity token (trusted publishing), and whether a namespace accepts anything else.

Like ``token``, these commands act on the registry's database (``--db``); every change is one
audit-log entry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ._errors import EXIT_INPUT, fail, report_api_error
from ._options import DbOpt, FormatOpt
from ._registry_db import migrated_engine

if TYPE_CHECKING:
    from registry._store import Store

__all__ = ["register"]

_T = TypeVar("_T")

publisher_app = typer.Typer(no_args_is_help=True,
                            help="Trusted publishers: CI workflows that publish without a stored secret.")

NamespaceArg = Annotated[str, typer.Argument(metavar="NAMESPACE", help="The namespace, e.g. acme.")]


def register(app: typer.Typer) -> None:
    """Add ``publisher`` to ``cortex registry``."""
    app.add_typer(publisher_app, name="publisher")


def _on_store(db: str, act: Callable[[Store], _T]) -> _T:
    """``act(store)`` on the migrated database ``db``; a refusal by the store is rendered here."""
    from registry._errors import ApiError
    from registry._store import Store

    engine = migrated_engine(db)
    try:
        return act(Store(engine))
    except ApiError as e:  # the registry's own HTTP error, not a library error: rendered here
        report_api_error(e)
    finally:
        engine.dispose()


def _check_namespace(namespace: str | None) -> None:
    from cortex_trust.ids import is_slug

    if namespace is not None and not is_slug(namespace):
        fail(f"namespace {namespace!r} is not a lowercase slug",
             advice="use lowercase letters, digits and inner hyphens (e.g. acme)", code=EXIT_INPUT)


@publisher_app.command("add")
def publisher_add(
    namespace: NamespaceArg,
    repository: Annotated[str, typer.Option(
        "--repository", metavar="OWNER/REPO", help="The repository whose workflow publishes.")],
    workflow: Annotated[str, typer.Option(
        "--workflow", metavar="FILE", help="The workflow file in .github/workflows/, e.g. release.yml.")],
    db: DbOpt,
    issuer: Annotated[str, typer.Option(
        "--issuer", metavar="URL", help="The OIDC issuer of the CI's identity tokens.")]
    = "https://token.actions.githubusercontent.com",
    environment: Annotated[str | None, typer.Option(
        "--environment", metavar="NAME", help="Only jobs running in this deployment environment.")] = None,
) -> None:
    """Trust a CI workflow to publish to NAMESPACE with its OIDC identity token (no secret).

    The registry must accept the issuer (`cortex registry serve --oidc-issuer`, default GitHub
    Actions). Prints the publisher's id (pub_...).
    """
    from datetime import UTC, datetime

    _check_namespace(namespace)
    publisher = _on_store(db, lambda store: store.add_publisher(
        namespace=namespace, issuer=issuer, repository=repository, workflow=workflow,
        environment=environment, now=datetime.now(UTC)))
    where = f", environment {environment}" if environment else ""
    print(f"namespace {namespace} trusts {repository} workflow {workflow}{where} ({issuer})",
          file=sys.stderr)
    print(publisher.publisher_id)


@publisher_app.command("list")
def publisher_list(
    db: DbOpt,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", help="Only the trusted publishers of this namespace.")] = None,
    fmt: FormatOpt = "text",
) -> None:
    """List trusted publishers: id, namespace, repository, workflow, environment, issuer."""
    import json

    from ._render import neutralise

    _check_namespace(namespace)
    publishers = _on_store(db, lambda store: store.list_publishers(namespace=namespace))
    if fmt == "json":
        print(json.dumps([p.model_dump() for p in publishers], indent=2))
        return
    if not publishers:
        print("no trusted publishers" + (f" in namespace {namespace}" if namespace else ""), file=sys.stderr)
        return
    rows = [("ID", "NAMESPACE", "REPOSITORY", "WORKFLOW", "ENVIRONMENT", "ISSUER")]
    rows += [(p.publisher_id, p.namespace, p.repository, p.workflow, p.environment or "(any)", p.issuer)
             for p in publishers]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        # Database text: shown, never obeyed by the terminal.
        print(neutralise("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]))


@publisher_app.command("remove")
def publisher_remove(
    publisher_id: Annotated[str, typer.Argument(metavar="ID", help="The publisher's id (pub_..., see `list`).")],
    db: DbOpt,
) -> None:
    """Stop trusting a workflow; credentials already issued to it are revoked at once."""
    from datetime import UTC, datetime

    publisher = _on_store(db, lambda store: store.remove_publisher(publisher_id, now=datetime.now(UTC)))
    print(f"namespace {publisher.namespace} no longer trusts {publisher.repository} workflow "
          f"{publisher.workflow} ({publisher.publisher_id})", file=sys.stderr)


@publisher_app.command("mode")
def publisher_mode(
    namespace: NamespaceArg,
    trusted_only: Annotated[bool, typer.Option(
        "--trusted-only/--tokens-allowed",
        help="Accept publishes only from trusted publishers, or registry tokens too.")],
    db: DbOpt,
) -> None:
    """Make NAMESPACE accept publishes only from its trusted publishers (--trusted-only), or
    from registry tokens too (--tokens-allowed, the default)."""
    from datetime import UTC, datetime

    _check_namespace(namespace)
    changed = _on_store(db, lambda store: store.set_trusted_only(namespace, enabled=trusted_only,
                                                                 now=datetime.now(UTC)))
    mode = "only from trusted publishers" if trusted_only else "from trusted publishers and registry tokens"
    print(f"namespace {namespace} accepts publishes {mode}" + ("" if changed else " (unchanged)"),
          file=sys.stderr)
