"""``cortex plugin``: verify, publish, review, revoke, install, run, search, usage...

The commands live in one module per concern; each exposes ``register(app)``.
"""

from __future__ import annotations

import typer

from . import (
    plugin_governance,
    plugin_install,
    plugin_registry,
    plugin_run,
    plugin_search,
    plugin_usage,
    plugin_verify,
)

app = typer.Typer(help="Verify, publish, install and run plugins.", no_args_is_help=True)

plugin_verify.register(app)
plugin_registry.register(app)
plugin_governance.register(app)
plugin_install.register(app)
plugin_run.register(app)
plugin_search.register(app)
plugin_usage.register(app)
