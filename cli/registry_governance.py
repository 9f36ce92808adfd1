"""The registry's GitHub side as ``cortex registry serve`` and ``cortex registry doctor`` read
it: from the environment or a configuration file, never from the command line (secrets there
end up in shell histories and process lists).

Environment (each overrides the file's key):

==================================  ==========================================================
``CORTEX_REGISTRY_GITHUB_CONFIG``    the file (YAML or JSON), or ``--github-config FILE``
``CORTEX_REGISTRY_GITHUB_REPOSITORY`` the registry repository, ``OWNER/REPO`` (``repository``)
``CORTEX_REGISTRY_GITHUB_API``       GitHub's API URL (``api_url``; GitHub Enterprise:
                                     ``https://HOST/api/v3``)
``CORTEX_REGISTRY_GITHUB_TOKEN``     the registry's GitHub token (``token_file``: a file holding it)
``CORTEX_REGISTRY_WEBHOOK_SECRET``   the webhook secret (``webhook_secret_file``)
``CORTEX_REGISTRY_PUBLIC_URL``       this registry's address, for links (``public_url``)
==================================  ==========================================================

The file may also set ``base_branch``, ``index_dir``, ``poll_seconds`` and ``poll_batch``.
Without a repository the registry has no GitHub side (no promotions or disputes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from ._errors import EXIT_INPUT, fail

__all__ = ["GitHubConfigOpt", "governance_config"]

CONFIG_ENV = "CORTEX_REGISTRY_GITHUB_CONFIG"
_ENV = {"repository": "CORTEX_REGISTRY_GITHUB_REPOSITORY", "api_url": "CORTEX_REGISTRY_GITHUB_API",
        "token": "CORTEX_REGISTRY_GITHUB_TOKEN", "webhook_secret": "CORTEX_REGISTRY_WEBHOOK_SECRET",
        "public_url": "CORTEX_REGISTRY_PUBLIC_URL"}
_KEYS = {"repository", "api_url", "token_file", "webhook_secret_file", "public_url", "base_branch",
         "index_dir", "poll_seconds", "poll_batch"}
_MAX_FILE = 64 * 1024

GitHubConfigOpt = Annotated[Path | None, typer.Option(
    "--github-config", envvar=CONFIG_ENV, metavar="FILE",
    help="The registry's GitHub side (repository, API URL, token and webhook-secret files): YAML or "
         "JSON. The CORTEX_REGISTRY_GITHUB_* variables override it. Secrets never on the command line.")]


def _read(path: Path, what: str) -> str:
    from cortex_trust._io import ReadRefused, read_bounded

    try:
        return read_bounded(path, max_bytes=_MAX_FILE).decode("utf-8").strip()
    except (ReadRefused, UnicodeDecodeError) as e:
        fail(f"cannot read the {what} {path}: {getattr(e, 'detail', e)}", advice="check the path", code=EXIT_INPUT)


def governance_config(path: Path | None, env: Mapping[str, str] | None = None) -> Any:
    """The :class:`registry._governance.GovernanceConfig` from ``path`` and ``env`` (default:
    the process environment), or ``None`` when no repository is configured. Exits 2 on a bad
    file or value."""
    import yaml

    from cortex_trust.errors import InputError
    from cortex_trust.sources import parse_repository
    from registry._governance import GovernanceConfig

    env = os.environ if env is None else env
    doc: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(_read(path, "GitHub configuration")) or {}
        if not isinstance(loaded, dict) or set(loaded) - _KEYS:
            fail(f"{path}: unknown keys {sorted(set(loaded) - _KEYS) if isinstance(loaded, dict) else ''}",
                 advice=f"the keys are {', '.join(sorted(_KEYS))}", code=EXIT_INPUT)
        doc = dict(loaded)
    values: dict[str, Any] = {k: doc[k] for k in ("repository", "api_url", "public_url", "base_branch",
                                                  "index_dir", "poll_seconds", "poll_batch") if k in doc}
    if "token_file" in doc:
        values["token"] = _read(Path(str(doc["token_file"])), "GitHub token file")
    if "webhook_secret_file" in doc:
        values["webhook_secret"] = _read(Path(str(doc["webhook_secret_file"])), "webhook secret file")
    for key, name in _ENV.items():
        if env.get(name):
            values[key] = env[name]
    if not values.get("repository"):
        return None
    try:
        parse_repository(str(values["repository"]))
    except InputError as e:
        fail(e.message, advice=e.advice or "", code=EXIT_INPUT)
    if not str(values.get("api_url", "https://")).startswith(("https://", "http://127.0.0.1", "http://localhost")):
        fail(f"the GitHub API URL {values['api_url']!r} is not https", advice="e.g. https://api.github.com",
             code=EXIT_INPUT)
    try:
        return GovernanceConfig(**values)
    except TypeError as e:
        fail(f"the GitHub configuration is invalid: {e}", advice="see `cortex registry serve --help`",
             code=EXIT_INPUT)


def doctor(config: Any) -> tuple[int, list[str]]:
    """The exit code (0 ready or not configured, 2 configured without a token, 3 not reachable)
    and what to say about the GitHub side."""
    if config is None:
        return 0, ["github: not configured (no promotions or disputes); set "
                      "CORTEX_REGISTRY_GITHUB_REPOSITORY or --github-config"]
    from registry._governance import Governance

    lines = [f"github: repository {config.repository} at {config.api_url}",
             f"github: token {'set' if config.token else 'NOT set (promotions cannot be opened)'}",
             f"github: webhook secret {'set' if config.webhook_secret else 'NOT set (webhooks refused; polling only)'}"]
    result = Governance.probe(config)
    if result["reachable"]:
        lines.append(f"github: reachable (default branch {result['default_branch']}, "
                     f"push access {'yes' if result['can_push'] else 'NO'})")
    else:
        lines.append(f"github: NOT reachable: {result['problem']}")
        return 3, lines
    return (0 if config.token else EXIT_INPUT), lines
