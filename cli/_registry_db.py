"""What the ``cortex registry`` commands share: the migrated database engine and a URL safe to
print."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["migrated_engine", "redact_url"]


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
