"""The registry's web catalogue: server-rendered pages over the stored read documents.

``install_catalogue(app)`` adds ``/`` (search), ``/plugins/NS/NAME`` and
``/plugins/NS/NAME/VERSION``, ``/revocations``, ``/audit`` and ``/static/...`` to the registry
app. The pages only show what the registry stored (the policy's decisions and the evidence they
were made on) and link to their JSON twins under ``/api/v1``.
"""

from __future__ import annotations

from ._routes import SECURITY_HEADERS, install_catalogue

__all__ = ["SECURITY_HEADERS", "install_catalogue"]
