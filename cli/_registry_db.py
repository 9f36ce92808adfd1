"""What the ``cortex registry`` commands share: the migrated database engine, a URL safe to
print, the registry's name and the key its receipts are signed with."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["IndexKeysOpt", "NameOpt", "migrated_engine", "redact_url", "sign_receipts"]

NameOpt = Annotated[str, typer.Option("--name", help="This registry's name in decisions.")]
IndexKeysOpt = Annotated[Path | None, typer.Option(
    "--index-keys", envvar="CORTEX_INDEX_KEYS", metavar="DIR",
    help="The signed index's online keys: the receipt of every new decision is signed with "
         "timestamp.pem, as the serving registry signs its own (default: unsigned receipts).")]


def sign_receipts(store: Any, index_keys: Path | None) -> None:
    """Have ``store`` sign the receipts it seals with the index's receipt key in ``index_keys``
    (nothing when None: unsigned receipts)."""
    if index_keys is None:
        return
    from cortex_trust.policy import RECEIPT_ROLE
    from registry._index import KeyRing

    store.receipt_issuer.signer = KeyRing(index_keys).signer(RECEIPT_ROLE)


def migrated_engine(db: str) -> Any:
    """An engine on ``db`` with the registry's schema at the newest migration."""
    from registry import make_engine, migrate

    from ._render import neutralise

    engine = make_engine(db, warn=lambda m: print(f"warning: {neutralise(m)}", file=sys.stderr))
    migrate(engine)
    return engine


def redact_url(url: str) -> str:
    """The URL without a password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
