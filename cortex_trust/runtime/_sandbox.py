"""From a decision's sandbox to a container run spec: pure, no I/O.

:func:`container_spec` is the one place that turns the policy's :class:`~cortex_trust.policy.Sandbox`
into the arguments of ``docker.containers.run``/``create``. It adds nothing the decision did not
grant and drops nothing it asked for:

* no network unless granted: the container joins the *internal* sandbox network (no route out;
  scripts/podman.sh also firewalls the host side, so the plugin cannot connect to the host or to
  other plugins), which still lets the host reach the plugin's declared endpoints. A granted
  network joins the ordinary bridge network instead;
* ``read_only`` root filesystem, ``cap_drop`` and ``no-new-privileges`` exactly as decided; never
  ``cap_add``, never ``privileged``, never a device, never a published port;
* always, whatever the decision: the plugin seccomp profile shipped beside this module
  (``plugin_seccomp.json``: the engines' default allowlist without the calls that create or enter
  namespaces, mount, load kernel code or inspect other processes: ``unshare``, ``setns``, ``mount``,
  ``keyctl``, ``bpf``, ``ptrace`` and the like fail with ``EPERM``; ``clone`` is allowed only
  without namespace flags; ``clone3``, whose flags a filter cannot see, and every call outside the
  allowlist fail with ``ENOSYS``, so that libc falls back to ``clone``), and IPv6 disabled inside the
  container (``net.ipv6.conf.{all,default}.disable_ipv6=1``), so a plugin sends no IPv6 frame;
* the decided non-root user, memory, CPU and process limits;
* small ``noexec`` tmpfs mounts at ``/tmp``, ``/run`` and ``/var/tmp`` and, only when a
  filesystem is granted, a dedicated named volume ``cortex-<plugin>-data`` at ``/data``.
  Never a host path;
* labels recording plugin, version, digest, tier and policy revision, so a running container can
  be traced back to the decision it runs under.

It refuses (raises :class:`SandboxRefused`) a blocked decision unless the caller passes the
explicitly unsafe override, a decision without a sandbox (the fail-closed block has none), a
sandbox with ``enabled`` false, and an image not pinned by digest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from ..errors import InputError
from ..ids import is_slug, parse_image_ref
from ..policy import Action, Decision, Sandbox

__all__ = [
    "DATA_MOUNT",
    "LABEL_PREFIX",
    "ContainerSpec",
    "SandboxRefused",
    "container_name",
    "container_spec",
    "volume_name",
]

#: Every label cortex-trust puts on a container starts with this.
LABEL_PREFIX: Final = "io.cortex"
#: Where a granted filesystem appears inside the container.
DATA_MOUNT: Final = "/data"
#: The tmpfs mounts every plugin gets: small, not executable, no set-uid, no devices. /run and
#: /var/tmp are listed because Podman otherwise adds its own (executable, unbounded) tmpfs there
#: for a read-only container.
_TMPFS: Final = {
    "/tmp": "rw,noexec,nosuid,nodev,size=16m",  # noqa: S108 (a path inside the container)
    "/run": "rw,noexec,nosuid,nodev,size=1m",
    "/var/tmp": "rw,noexec,nosuid,nodev,size=1m",  # noqa: S108 (a path inside the container)
}
#: The seccomp profile every plugin container runs under (Docker's profile format).
_SECCOMP_PATH: Final = Path(__file__).with_name("plugin_seccomp.json")
#: Kernel settings every plugin container gets: no IPv6 on any of its interfaces.
_SYSCTLS: Final = (("net.ipv6.conf.all.disable_ipv6", "1"), ("net.ipv6.conf.default.disable_ipv6", "1"))
_NETWORK: Final = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}\Z")


class SandboxRefused(InputError):
    """The decision does not allow running this plugin in a container (or not like this)."""


def container_name(plugin: str) -> str:
    """``cortex-<plugin>``: one container per installed plugin. Raises :class:`InputError`."""
    return f"cortex-{_slug(plugin)}"


def volume_name(plugin: str) -> str:
    """``cortex-<plugin>-data``: the only storage a plugin can ever be given."""
    return f"cortex-{_slug(plugin)}-data"


def _sandbox_label(sandbox: Sandbox | None) -> str:
    """The canonical text of ``sandbox`` as the ``io.cortex.sandbox`` label records it (``""``
    for none), so a running container can be compared with a fresh decision."""
    if sandbox is None:
        return ""
    return json.dumps(sandbox.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


@cache
def _seccomp_profile() -> str:
    """The plugin seccomp profile as compact JSON text (what Docker's ``seccomp=`` option takes).

    Raises :class:`InputError` if the shipped file is missing or not a profile that denies by
    default: no spec is ever built without it.
    """
    try:
        profile = json.loads(_SECCOMP_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"the plugin seccomp profile {_SECCOMP_PATH} cannot be read: {e}",
                         advice="reinstall cortex-trust; the profile ships with the package") from None
    if not isinstance(profile, dict) or profile.get("defaultAction") != "SCMP_ACT_ERRNO" or not \
            isinstance(profile.get("syscalls"), list):
        raise InputError(f"{_SECCOMP_PATH} is not a deny-by-default seccomp profile",
                         advice="reinstall cortex-trust; the profile ships with the package")
    return json.dumps(profile, sort_keys=True, separators=(",", ":"))


def _slug(plugin: str) -> str:
    if not isinstance(plugin, str) or not is_slug(plugin):
        raise InputError(f"not a plugin name: {str(plugin)[:80]!r}",
                         advice="lower-case letters, digits and inner hyphens, at most 64 characters")
    return plugin


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the runtime passes to the engine for one plugin container. Immutable.

    Build it with :func:`container_spec`, not by hand: that is where the refusals live.
    """

    name: str
    image: str
    digest: str
    plugin: str
    version: str
    user: str
    network: str
    network_granted: bool
    read_only: bool
    cap_drop: tuple[str, ...]
    no_new_privileges: bool
    mem_limit: str
    nano_cpus: int
    pids_limit: int
    endpoints_port: int
    volume: str | None
    labels: tuple[tuple[str, str], ...]
    #: The seccomp profile (JSON text); :func:`container_spec` always sets the shipped one.
    seccomp_profile: str
    #: Kernel settings inside the container; :func:`container_spec` always disables IPv6.
    sysctls: tuple[tuple[str, str], ...]

    def to_run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for docker SDK 7.x ``client.containers.create``/``run``.

        The image is not included (pass ``spec.image`` positionally). Every key is explicit so
        that an engine default can never widen the sandbox (``privileged``, ``cap_add``,
        ``ports`` and ``devices`` are set to their closed values on purpose). The seccomp profile
        is passed as Docker takes it, ``seccomp=<JSON text>``; an engine that wants a file path
        instead (Podman) gets it from :class:`~cortex_trust.runtime.ContainerRuntime`.
        """
        security_opt = ["no-new-privileges"] if self.no_new_privileges else []
        security_opt.append(f"seccomp={self.seccomp_profile}")
        kwargs: dict[str, Any] = {
            "name": self.name,
            "hostname": self.plugin,
            "detach": True,
            "user": self.user,
            "network": self.network,
            "read_only": self.read_only,
            "cap_drop": list(self.cap_drop),
            "cap_add": [],
            "privileged": False,
            "security_opt": security_opt,
            "sysctls": dict(self.sysctls),
            "mem_limit": self.mem_limit,
            # Swap equal to memory: the limit is the limit, not memory plus as much swap again.
            "memswap_limit": self.mem_limit,
            "nano_cpus": self.nano_cpus,
            "pids_limit": self.pids_limit,
            "tmpfs": dict(_TMPFS),
            "ports": {},
            "devices": [],
            "labels": dict(self.labels),
            "environment": {},
            # A plugin that dies stays dead: restarts are the installer's decision.
            "restart_policy": {"Name": "no"},
        }
        if self.volume is not None:
            # A name without "/" is a named volume for both Docker and Podman, never a host path.
            kwargs["volumes"] = {self.volume: {"bind": DATA_MOUNT, "mode": "rw"}}
        return kwargs


def container_spec(
    decision: Decision,
    *,
    plugin: str,
    version: str,
    image: str,
    endpoints_port: int = 8080,
    internal_network: str = "cortex-sandbox",
    egress_network: str = "bridge",
    unsafe_allow_blocked: bool = False,
) -> ContainerSpec:
    """The container spec for running ``plugin`` ``version`` from ``image`` under ``decision``.

    ``image`` must be pinned by digest (``registry/repo[:tag]@sha256:...``); the spec runs the
    digest, never the tag. ``internal_network`` is the sandbox network (internal, firewalled:
    see scripts/podman.sh) used when the decision grants no network; ``egress_network`` the
    network used when it does. ``endpoints_port`` is the port inside the container that the
    host calls; nothing is published on the host.

    Raises :class:`SandboxRefused` when the decision blocks (and ``unsafe_allow_blocked`` is not
    set: the caller must have checked that the block is overridable and recorded the override),
    has no sandbox, or has a sandbox with ``enabled`` false; :class:`InputError` for a
    reference not pinned by digest, a bad plugin name, version, port or network name.
    """
    if not isinstance(decision, Decision):
        raise SandboxRefused("container_spec needs a Decision from the policy engine")
    sandbox = decision.sandbox
    if sandbox is None:
        raise SandboxRefused(
            f"the decision for {plugin} carries no sandbox ({', '.join(decision.codes)}), "
            "so it cannot be run",
            advice="fix what the reasons say and decide again; nothing runs without a sandbox")
    if not sandbox.enabled:
        raise SandboxRefused(
            f"the decision for {plugin} disables the sandbox; cortex-trust never runs a plugin "
            "outside a container sandbox",
            advice="remove `sandbox: false` from the manifest or the policy")
    if decision.action is Action.BLOCK and not unsafe_allow_blocked:
        raise SandboxRefused(
            f"the decision for {plugin} is block ({', '.join(decision.codes)})",
            advice="fix what the reasons say; only an overridable block can be overridden, "
            "explicitly")
    if decision.action is Action.BLOCK and decision.failed:
        # Defence in depth: fail_closed has no sandbox anyway, and it is never overridable.
        raise SandboxRefused("the policy engine could not decide; nothing runs")
    ref = parse_image_ref(image, require_host=True, require_digest=True)
    digest = ref.digest
    if digest is None:  # require_digest guarantees a digest; this narrows the type
        raise InputError(f"image {image!r} is not pinned by digest")
    if not isinstance(version, str) or not version or len(version) > 128 or any(
            c.isspace() for c in version):
        raise InputError(f"not a plugin version: {str(version)[:80]!r}")
    if not isinstance(endpoints_port, int) or isinstance(endpoints_port, bool) or not (
            1 <= endpoints_port <= 65535):
        raise InputError(f"endpoints_port must be 1..65535, not {endpoints_port!r}")
    for net in (internal_network, egress_network):
        if not _NETWORK.match(net) or net in ("host", "none") or net.startswith("container:"):
            raise InputError(f"not a usable network name: {net!r}",
                             advice="name a bridge network; host, none and container: are refused")
    labels = {
        f"{LABEL_PREFIX}.managed": "true",
        f"{LABEL_PREFIX}.plugin.name": _slug(plugin),
        f"{LABEL_PREFIX}.plugin.version": version,
        f"{LABEL_PREFIX}.plugin.digest": digest,
        f"{LABEL_PREFIX}.decision.tier": decision.tier.value,
        f"{LABEL_PREFIX}.decision.action": decision.action.value,
        f"{LABEL_PREFIX}.decision.policy_revision": decision.policy_revision,
        f"{LABEL_PREFIX}.decision.overridden": "true" if decision.action is Action.BLOCK else "false",
        f"{LABEL_PREFIX}.endpoints.port": str(endpoints_port),
        f"{LABEL_PREFIX}.sandbox": _sandbox_label(sandbox),
    }
    return ContainerSpec(
        name=container_name(plugin),
        image=ref.pinned,
        digest=digest,
        plugin=plugin,
        version=version,
        user=sandbox.user,
        network=egress_network if sandbox.network else internal_network,
        network_granted=sandbox.network,
        read_only=sandbox.read_only_root,
        cap_drop=tuple(sandbox.cap_drop),
        no_new_privileges=sandbox.no_new_privileges,
        # The Sandbox model already restricts memory to <digits>[kmg], which the SDK takes as is.
        mem_limit=sandbox.memory,
        nano_cpus=round(sandbox.cpus * 1_000_000_000),
        pids_limit=sandbox.pids_limit,
        endpoints_port=endpoints_port,
        volume=volume_name(plugin) if sandbox.filesystem else None,
        labels=tuple(sorted(labels.items())),
        seccomp_profile=_seccomp_profile(),
        sysctls=_SYSCTLS,
    )

