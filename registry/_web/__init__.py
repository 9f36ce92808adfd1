"""The registry's web catalogue: server-rendered pages over the stored read documents.

``install_catalogue(app)`` adds ``/`` (search), ``/plugins/NS/NAME`` and
``/plugins/NS/NAME/VERSION``, ``/revocations``, ``/audit`` and ``/static/...`` to the registry
app. The pages only show what the registry stored (the policy's decisions and the evidence they
were made on) and link to their JSON twins under ``/api/v1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._routes import SECURITY_HEADERS, install_catalogue

__all__ = ["SECURITY_HEADERS", "install_catalogue"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the store and the re-tiering workers import the page fragments
    # (registry._web._fragments), which never need the routes, FastAPI or the store.
    if name in __all__:
        from . import _routes

        value = getattr(_routes, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
