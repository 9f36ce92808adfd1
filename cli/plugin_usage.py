"""``cortex plugin usage report``: tell a plugin's registry that this installation runs it.

Opt-in, per registry: a registry is reported to only when the configuration names the
environment variable holding one of its installation tokens (``cortex config set
usage-token-env VAR`` for the default registry, ``cortex config registries add ...
--usage-token-env VAR`` for a scoped one). What is sent, and only that: the plugin's namespace,
name, version and image digest, with the token (see :mod:`cortex_trust.install._usage`).

``cortex plugin run`` reports through :func:`report_after_run` once the plugin started; a
report that fails there is a warning, never a failed run. ``usage report`` is for runtimes
other than ``cortex plugin run``: exit 0 reported, 2 bad input or refused by the registry
(unknown version, another digest, a token that is not an installation token), 3 the registry
could not be reached.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._errors import EXIT_INPUT, fail
from ._render import neutralise

if TYPE_CHECKING:
    from cortex_trust.install import InstallRecord, UsageReport

__all__ = ["register", "report_after_run"]

usage_app = typer.Typer(no_args_is_help=True,
                        help="Report production use of plugins to their registry (opt-in).")


def _send(report: UsageReport) -> Any:
    """Send ``report`` with the token from its variable; the usage evidence the registry now
    holds. Raises what :func:`cortex_trust.install.send_usage_report` raises."""
    from cortex_trust.install import send_usage_report

    return send_usage_report(report, token=os.environ.get(report.token_env, "").strip())


def _sent(report: UsageReport) -> str:
    return (f"reported use of {report.namespace}/{report.name}@{report.version} "
            f"({report.digest}) to registry {report.registry} ({report.url})")


@usage_app.command("report")
def report(
    ref: Annotated[str, typer.Argument(
        metavar="NAME[@VERSION]",
        help="An installed plugin (NAMESPACE/NAME), or NAMESPACE/NAME@VERSION with --digest "
             "for a plugin another runtime installed.")],
    digest: Annotated[str | None, typer.Option(
        "--digest", metavar="sha256:DIGEST",
        help="The digest of the image that runs (default: the installed one).")] = None,
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="URL", show_default=False,
        help="The default registry's URL, as given to `plugin install --registry` (scoped "
             "registries from the configuration still win for their namespaces).")] = None,
    token_env: Annotated[str | None, typer.Option(
        "--token-env", metavar="NAME", show_default=False,
        help="The environment variable holding the installation token (default: the "
             "registry's usage-token-env in the configuration).")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="text|json",
                                     help="text: one line; json: what was sent and the "
                                          "registry's usage evidence.")] = "text",
) -> None:
    """Report that this installation runs a plugin (once a day counts; opt-in per registry).

    Sends exactly the plugin's namespace, name, version and image digest, with the
    installation token, to the registry the plugin's name resolves from.
    """
    import json

    from cortex_trust.errors import CortexTrustError
    from cortex_trust.install import InstallStore, load_config, plan_usage_report, resolve_registry

    from ._errors import report_library_error
    from ._paths import config_path, data_dir

    if fmt not in ("text", "json"):
        fail(f"--format {fmt!r} is not text or json", advice="use --format text or --format json")
    name, at, version = ref.rpartition("@") if "@" in ref else (ref, "", "")
    try:
        record = InstallStore(data_dir()).get(name)
        if record is not None and (not at or version == record.version):
            if digest is not None and digest != record.digest:
                fail(f"--digest {digest} is not the installed image of {name} ({record.digest})",
                     advice="leave --digest out to report the installed image, or name the "
                            "version that runs: NAME@VERSION --digest ...")
            version, digest = record.version, record.digest
        elif not at or digest is None:
            fail(f"{name}{'@' + version if at else ''} is not installed here, so its running "
                 "version and digest are unknown",
                 advice="name what runs: cortex plugin usage report NAMESPACE/NAME@VERSION "
                        "--digest sha256:...")
        config = load_config(config_path())
        usage = plan_usage_report(config, name, version=version, digest=digest,
                                  registry_override=registry, token_env=token_env)
        if usage is None:
            entry = resolve_registry(config, name)
            fail(f"usage reporting is not configured for registry {entry.name} ({entry.url}), "
                 f"which {name} resolves from (nothing was sent)",
                 advice="opt in with the variable holding an installation token: `cortex config "
                        "set usage-token-env VAR` (default registry), `cortex config registries "
                        "add ... --usage-token-env VAR` (a scoped one), or pass --token-env VAR",
                 code=EXIT_INPUT)
        detail = _send(usage)
    except CortexTrustError as e:
        report_library_error(e)
    evidence = detail.evidence.get("usage") if isinstance(detail.evidence, dict) else None
    if fmt == "json":
        print(json.dumps({"registry": usage.registry, "url": usage.url, "sent": usage.body(),
                          "usage": evidence}, indent=2, sort_keys=True))
        return
    print(neutralise(_sent(usage)))


def report_after_run(record: InstallRecord, *, registry: str | None,
                     sync_error: str | None) -> None:
    """Report that ``record`` runs, when its registry is opted in; say why not on stderr.

    Never raises a library error and never exits: a report that cannot be sent (the registry
    unreachable or refusing, no token in the variable) is a warning, and the plugin keeps
    running. Plugins installed from GitHub and registries not opted in send nothing, silently.
    ``sync_error`` is why the run check could not confirm the plugin with its registry: then
    nothing is sent either (that registry is unreachable or no longer the plugin's).
    """
    from cortex_trust.errors import CortexTrustError
    from cortex_trust.install import load_config, plan_usage_report

    from ._paths import config_path

    if record.source != "registry":
        return
    what = f"{record.name}@{record.version}"
    try:
        usage = plan_usage_report(load_config(config_path()), record.name,
                                  version=record.version, digest=record.digest,
                                  registry_override=registry)
        if usage is None:
            return
        if sync_error is not None:
            _warn(f"use of {what} not reported: its registry could not be confirmed "
                  f"({sync_error})", "it is reported on the next run that reaches the registry")
            return
        _send(usage)
    except CortexTrustError as e:
        _warn(f"use of {what} not reported: {e.message}",
              e.advice or "the plugin runs; retry with `cortex plugin usage report "
                          f"{record.name}`")
        return
    print(neutralise(_sent(usage)), file=sys.stderr)


def _warn(message: str, fix: str) -> None:
    print(f"warning: {neutralise(message)}\n  fix: {neutralise(fix)}", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add ``usage`` (``usage report``) to ``cortex plugin``."""
    app.add_typer(usage_app, name="usage")
