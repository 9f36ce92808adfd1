"""Production-use reports: what an installation tells a registry, and which registry.

Reporting is opt-in, per registry: a report goes only to a registry whose configuration names
the environment variable holding one of its installation tokens (``usage_token_env``; the
token itself is never stored in the configuration), and only to that registry's own URL: never
to a mirror (another party, which must not receive the token) and never to a URL that
replaces the default registry for one command (the token was issued by the configured one).

A report carries exactly the plugin's namespace, name, version and image digest
(:meth:`UsageReport.body`), sent as ``POST /api/v1/usage`` with the token as ``Authorization:
Bearer``. Nothing else: no host name, user, configuration, capability called or other plugin.
The registry learns the reporting organization from the token (its namespace) and counts at
most one report per installation token and UTC day.

This module reads no environment variable: the caller reads the token from
:attr:`UsageReport.token_env` and passes it to :func:`send_usage_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError, RegistryUnavailable
from ..ids import is_digest, is_slug
from ._config import CortexConfig, RegistryEntry, _check_env_name, resolve_registry

if TYPE_CHECKING:
    import httpx

    from ..sources import VersionDetail

__all__ = ["UsageReport", "plan_usage_report", "send_usage_report"]


@dataclass(frozen=True)
class UsageReport:
    """One production-use report: where it goes and everything it says."""

    #: The configured registry's name (``default`` or a scoped registry's).
    registry: str
    #: The registry's own URL (never a mirror).
    url: str
    #: The environment variable holding the installation token.
    token_env: str
    namespace: str
    name: str
    version: str
    digest: str

    def body(self) -> dict[str, str]:
        """The JSON body sent, which is all the report says."""
        return {"namespace": self.namespace, "name": self.name, "version": self.version,
                "digest": self.digest}


def plan_usage_report(config: CortexConfig, full_name: str, *, version: str, digest: str,
                      registry_override: str | None = None,
                      token_env: str | None = None) -> UsageReport | None:
    """The report of ``full_name`` (``namespace/name``) at ``version`` running ``digest``, sent
    to the registry the name resolves from; ``None`` when that registry has no
    ``usage_token_env`` configured and no ``token_env`` is given (not opted in: nothing is
    sent).

    ``registry_override`` is a URL replacing the default registry for this command (``--registry``);
    ``token_env`` names the token's variable instead of the configuration.

    Raises :class:`InputError` for a name that is not ``namespace/name`` (plugins installed
    from GitHub have no registry to report to), a malformed version or digest, or a default
    registry replaced by another URL than the one its token was configured for.
    """
    namespace, _, name = full_name.partition("/")
    if not (is_slug(namespace) and is_slug(name)):
        raise InputError(f"{full_name!r} is not a registry plugin (NAMESPACE/NAME)",
                         advice="usage is reported to registries; a plugin installed from "
                                "GitHub has none")
    if not is_digest(digest):
        raise InputError(f"{digest!r} is not an image digest",
                         advice="give the digest of the image that runs: sha256:<64 hex digits>")
    if not version or len(version) > 128:
        raise InputError(f"{version!r} is not a version", advice="e.g. acme/tool@1.2.0")
    if token_env is not None:
        try:
            _check_env_name(token_env)
        except ValueError as e:
            raise InputError(str(e), advice="name the variable, e.g. --token-env "
                                            "CORTEX_USAGE_TOKEN") from None
    entry: RegistryEntry = resolve_registry(config, full_name)
    variable = token_env or entry.usage_token_env
    if variable is None:
        return None
    if entry.name == "default" and registry_override:
        override = RegistryEntry(name="default", url=registry_override).url
        if override != entry.url and token_env is None:
            raise InputError(
                f"the usage token in ${variable} belongs to the default registry {entry.url}, "
                f"not to {override}; its use there is not reported",
                advice="run without --registry, or configure the registry you use: `cortex "
                       "config set registry URL`")
        url = override
    else:
        url = entry.url
    return UsageReport(registry=entry.name, url=url, token_env=variable, namespace=namespace,
                       name=name, version=version, digest=digest)


def send_usage_report(report: UsageReport, *, token: str, timeout: float = 10.0,
                      transport: httpx.BaseTransport | None = None) -> VersionDetail:
    """Send ``report`` with the installation ``token``; returns the registry's version document
    (its usage evidence now includes the report, counted once per installation and UTC day).
    ``timeout`` bounds each network step, as for every other registry call.

    Raises :class:`RegistryUnavailable` when the registry cannot be reached or answers a
    document about another version or digest, and
    :class:`~cortex_trust.sources.RegistryRequestError` (an :class:`InputError`) when it
    refuses the report (a bad, expired or non-installation token, an unknown or revoked
    version, another digest).
    """
    from ..sources import RegistryClient

    if not token:
        raise InputError(f"no installation token: ${report.token_env} is empty or unset",
                         advice=f"export {report.token_env}=<an installation token from the "
                                "registry's operator (`cortex registry token create --role "
                                "installation`)>")
    with RegistryClient(report.url, token=token, timeout=timeout, transport=transport) as client:
        detail = client.report_usage(report.namespace, report.name, report.version,
                                     digest=report.digest)
    if (detail.namespace, detail.name, detail.version, detail.digest) != (
            report.namespace, report.name, report.version, report.digest):
        raise RegistryUnavailable(
            f"the registry {report.url} answered the usage report with a document about "
            f"{detail.namespace}/{detail.name}@{detail.version} ({detail.digest})",
            advice="check that the URL is a cortex registry")
    return detail
