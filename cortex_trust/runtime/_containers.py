"""Run plugin containers through the docker SDK, exactly as a :class:`~cortex_trust.runtime.ContainerSpec` says.

The engine is whatever speaks the Docker API at ``base_url``: here Podman's service started by
scripts/podman.sh, elsewhere Docker. This module never reads environment variables (the caller
passes the URL or a client) and never uses an environment proxy for plugin calls.

Guarantees:

* :meth:`ContainerRuntime.pull_pinned` pulls by digest only and checks that the image that
  arrived carries that digest (``RepoDigests``), and optionally that the plugin name and version
  the image declares (labels ``io.cortex.plugin.name``/``.version``) are the requested ones.
* :meth:`ContainerRuntime.start` runs only a spec from :func:`~cortex_trust.runtime.container_spec`,
  only an image already pulled and checked, and only on a sandbox network the engine reports as
  internal when the decision granted no network. It returns the address the host uses to reach
  the plugin; no port is ever published.
* Before a plugin starts on the internal network, this machine's kernel must show that network's
  isolation as scripts/podman.sh sets it up (:func:`~cortex_trust.runtime._isolation.confirm_isolation`);
  what cannot be confirmed is refused with :class:`~cortex_trust.errors.UnavailableError` before
  anything is created.
* Every plugin runs under the shipped seccomp profile with IPv6 off: the created container must
  carry the profile in its configuration before it is started, and its first process must run
  under a seccomp filter with no IPv6 address, or it is removed and refused. A running container
  whose configuration lacks the profile is never called.
* Every docker/httpx exception is translated: the engine or plugin unreachable →
  :class:`~cortex_trust.errors.UnavailableError`; a digest, name or version that does not match →
  :class:`~cortex_trust.errors.EvidenceError`; a bad argument → :class:`~cortex_trust.errors.InputError`.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Final

import docker
import docker.errors
import httpx
from docker.models.containers import Container

from ..errors import EvidenceError, InputError, UnavailableError
from ..ids import parse_image_ref
from ._handles import PluginResponse, PulledImage, RunningPlugin
from ._isolation import ENGINE_ADVICE, confirm_isolation, engine_is_local, missing_hardening, process_problem
from ._sandbox import _SECCOMP_PATH, LABEL_PREFIX, ContainerSpec, _seccomp_profile

__all__ = ["ContainerRuntime", "connect"]

_MAX_RESPONSE: Final = 1024 * 1024
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HARDENING_ADVICE: Final = ("the container engine did not apply the plugin's seccomp profile or IPv6 "
                            "setting; use Podman as scripts/podman.sh starts it, or Docker")
#: The API version of the client that only sends ``/_ping`` (a path without a version prefix).
_PROBE_API_VERSION: Final = "1.24"


def connect(base_url: str, *, timeout: float = 30.0) -> ContainerRuntime:
    """A :class:`ContainerRuntime` on the Docker API at ``base_url`` (``unix:///...``, ``tcp://...``).

    Checks that the engine answers (``/_ping``). The answer's headers name the engine's API
    version (``Api-Version``), which the client then speaks, and show a Podman engine
    (``Libpod-Api-Version``); ``/version`` is only asked when the headers do not tell (Podman
    answers it by running its runtime's and conmon's version commands). Raises
    :class:`UnavailableError` with advice if the engine does not answer.
    """
    try:
        probe = docker.APIClient(base_url=base_url, timeout=int(timeout), version=_PROBE_API_VERSION)
        try:
            resp = probe.get(f"{probe.base_url}/_ping", timeout=timeout)
            resp.raise_for_status()
        finally:
            probe.close()
        api_version = resp.headers.get("Api-Version") or "auto"
        client = docker.DockerClient(base_url=base_url, timeout=int(timeout), version=api_version)
    except docker.errors.DockerException as e:
        raise UnavailableError(f"the container engine at {base_url} does not answer: {e}",
                               advice=ENGINE_ADVICE) from None
    except OSError as e:  # requests' errors are OSErrors: no socket, refused, HTTP error status
        raise UnavailableError(f"the container engine at {base_url} does not answer: {e}",
                               advice=ENGINE_ADVICE) from None
    return ContainerRuntime(client, podman=True if resp.headers.get("Libpod-Api-Version") else None)


def _engine_error(what: str, e: Exception) -> UnavailableError:
    return UnavailableError(f"the container engine failed to {what}: {e}", advice=ENGINE_ADVICE)


class ContainerRuntime:
    """Pull, start, stop and call plugin containers on one engine (a ``docker.DockerClient``)."""

    def __init__(self, client: docker.DockerClient, *, call_timeout: float = 10.0,
                 podman: bool | None = None) -> None:
        """``podman``: whether the engine is Podman, when already known (``None``: ask the
        engine's ``/version`` when it matters)."""
        self._client = client
        self._call_timeout = call_timeout
        self._podman: bool | None = podman

    def _is_podman(self) -> bool:
        if self._podman is None:
            try:
                components = self._client.version().get("Components") or []
            except docker.errors.DockerException as e:
                raise _engine_error("report its version", e) from None
            self._podman = any(isinstance(c, dict) and c.get("Name") == "Podman Engine"
                               for c in components)
        return self._podman

    def _seccomp_option(self) -> str:
        """The ``security_opt`` entry that applies the plugin seccomp profile on this engine:
        Docker takes the profile's JSON text, Podman's Docker API a path to the file."""
        return f"seccomp={_SECCOMP_PATH}" if self._is_podman() else f"seccomp={_seccomp_profile()}"

    @property
    def client(self) -> docker.DockerClient:
        """The underlying docker client (for inspection in tools and tests)."""
        return self._client

    # -- images --------------------------------------------------------------------------

    def pull_pinned(self, image: str, *, plugin: str | None = None,
                    version: str | None = None) -> PulledImage:
        """Pull ``registry/repo[:tag]@sha256:<digest>`` by digest and check what arrived.

        The image's ``RepoDigests`` must contain ``registry/repo@<digest>``; with ``plugin`` or
        ``version`` given, its ``io.cortex.plugin.name``/``.version`` labels must equal them.
        Raises :class:`InputError` for a reference without digest, :class:`EvidenceError` when
        the registry has no such digest or what arrived does not match, :class:`UnavailableError`
        when the engine or registry cannot be reached.
        """
        ref = parse_image_ref(image, require_host=True, require_digest=True)
        pinned = ref.pinned
        try:
            self._client.api.pull(ref.repository, tag=ref.digest)
            img = self._client.images.get(pinned)
        except docker.errors.NotFound as e:
            raise EvidenceError(f"the registry has no image {pinned}: {_explain(e)}",
                                advice="check the digest against the registry record") from None
        except docker.errors.APIError as e:
            if _looks_missing(e):
                raise EvidenceError(f"the registry has no image {pinned}: {_explain(e)}",
                                    advice="check the digest against the registry record") from None
            raise UnavailableError(f"could not pull {pinned}: {_explain(e)}",
                                   advice="check that the registry is reachable from the engine"
                                   ) from None
        except docker.errors.DockerException as e:
            raise _engine_error(f"pull {pinned}", e) from None
        repo_digests = [str(d) for d in (img.attrs.get("RepoDigests") or [])]
        if pinned not in repo_digests:
            raise EvidenceError(
                f"the image pulled for {pinned} carries digests {repo_digests}, not {ref.digest}",
                advice="the registry served something else than what was pinned; refuse it")
        labels = {str(k): str(v) for k, v in (img.attrs.get("Config", {}).get("Labels") or {}).items()}
        for key, want in (("name", plugin), ("version", version)):
            if want is None:
                continue
            got = labels.get(f"{LABEL_PREFIX}.plugin.{key}")
            if got != want:
                raise EvidenceError(
                    f"image {pinned} declares plugin {key} {got!r}, but {want!r} was requested",
                    advice="the registry record and the image disagree; refuse it")
        return PulledImage(ref=pinned, digest=str(ref.digest), id=str(img.id),
                           labels=tuple(sorted(labels.items())))

    def _checked_local_image(self, spec: ContainerSpec) -> None:
        try:
            img = self._client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            raise InputError(f"image {spec.image} is not pulled",
                             advice="pull it first (ContainerRuntime.pull_pinned)") from None
        except docker.errors.DockerException as e:
            raise _engine_error(f"inspect {spec.image}", e) from None
        if spec.image not in [str(d) for d in (img.attrs.get("RepoDigests") or [])]:
            raise EvidenceError(f"the local image for {spec.image} does not carry that digest",
                                advice="pull it again by digest")

    # -- networks ------------------------------------------------------------------------

    def _checked_network(self, spec: ContainerSpec) -> dict[str, Any]:
        try:
            net = self._client.networks.get(spec.network)
        except docker.errors.NotFound:
            raise UnavailableError(f"the network {spec.network} does not exist",
                                   advice=ENGINE_ADVICE + "; it creates the sandbox network"
                                   ) from None
        except docker.errors.DockerException as e:
            raise _engine_error(f"inspect network {spec.network}", e) from None
        # Fail closed: a sandbox network that is not internal would give the plugin a route out.
        if not spec.network_granted and net.attrs.get("Internal") is not True:
            raise UnavailableError(
                f"network {spec.network} is not internal, so it cannot be a no-network sandbox",
                advice="remove it and let scripts/podman.sh create it (podman network create --internal)")
        return dict(net.attrs)

    # -- containers ----------------------------------------------------------------------

    def _get(self, name: str) -> Container | None:
        try:
            return self._client.containers.get(name)
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as e:
            raise _engine_error(f"inspect container {name}", e) from None

    def start(self, spec: ContainerSpec, *, ready_timeout: float = 10.0) -> RunningPlugin:
        """Create and start the container ``spec`` describes; return how the host reaches it.

        Waits up to ``ready_timeout`` seconds for the endpoints port to accept connections.
        A stopped container of the same name that cortex-trust created is replaced; a running
        one, or a foreign one, is an error. Raises :class:`InputError` (already running, foreign
        container, image not pulled), :class:`EvidenceError` (local image digest mismatch),
        :class:`UnavailableError` (engine failure, sandbox network missing or not internal, the
        plugin exited or never listened).
        """
        if not isinstance(spec, ContainerSpec):
            raise InputError("start() takes a ContainerSpec from cortex_trust.runtime.container_spec")
        if spec.seccomp_profile != _seccomp_profile() or ("net.ipv6.conf.all.disable_ipv6", "1") \
                not in spec.sysctls:
            raise InputError("the spec does not carry the plugin seccomp profile and IPv6 setting",
                             advice="build it with cortex_trust.runtime.container_spec")
        self._checked_local_image(spec)
        net = self._checked_network(spec)
        if not spec.network_granted:
            confirm_isolation(self._client, spec.network, net, podman=self._is_podman,
                              call_timeout=self._call_timeout)
        old = self._get(spec.name)
        if old is not None:
            if (old.labels or {}).get(f"{LABEL_PREFIX}.managed") != "true":
                raise InputError(f"a container named {spec.name} exists and was not created by "
                                 "cortex-trust", advice=f"remove or rename it: podman rm {spec.name}")
            if old.status == "running":
                raise InputError(f"plugin container {spec.name} is already running",
                                 advice="stop it first")
            try:
                old.remove(force=True)
            except docker.errors.DockerException as e:
                raise _engine_error(f"remove the old container {spec.name}", e) from None
        kwargs = spec.to_run_kwargs()
        seccomp = self._seccomp_option()
        kwargs["security_opt"] = [o for o in kwargs["security_opt"] if not o.startswith("seccomp=")
                                  ] + [seccomp]
        try:
            container = self._client.containers.create(spec.image, **kwargs)
        except docker.errors.ImageNotFound:
            raise InputError(f"image {spec.image} is not pulled",
                             advice="pull it first (ContainerRuntime.pull_pinned)") from None
        except docker.errors.DockerException as e:
            raise _engine_error(f"create container {spec.name}", e) from None
        # Admission: the engine must have taken the hardening before anything runs.
        missing = missing_hardening(container.attrs, seccomp=seccomp,
                                     no_new_privileges=spec.no_new_privileges)
        if missing:
            self._remove_quietly(container)
            raise UnavailableError(f"plugin container {spec.name} was created without {missing}; "
                                   "it was removed", advice=_HARDENING_ADVICE)
        try:
            container.start()
            container.reload()
        except docker.errors.DockerException as e:
            self._remove_quietly(container)
            raise _engine_error(f"start container {spec.name}", e) from None
        problem = process_problem(container, local=engine_is_local(self._client),
                                  no_new_privileges=spec.no_new_privileges)
        if problem:
            self._remove_quietly(container)
            raise UnavailableError(f"plugin container {spec.name} {problem}; it was removed",
                                   advice=_HARDENING_ADVICE)
        address = _address_on(container.attrs, spec.network)
        running = RunningPlugin(name=spec.name, id=str(container.id), address=address,
                                port=spec.endpoints_port, digest=spec.digest,
                                network=spec.network,
                                sandbox=dict(spec.labels).get(f"{LABEL_PREFIX}.sandbox", ""))
        self._wait_ready(container, running, ready_timeout)
        return running

    def _wait_ready(self, container: Container, running: RunningPlugin, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((running.address, running.port), timeout=0.5):
                    return
            except OSError:
                pass  # not listening yet: poll until the deadline, then report
            try:
                container.reload()
            except docker.errors.DockerException as e:
                raise _engine_error(f"inspect container {running.name}", e) from None
            if container.status != "running":
                logs = _tail_logs(container)
                raise UnavailableError(f"plugin container {running.name} exited "
                                       f"(status {container.status}): {logs}",
                                       advice="check the plugin image; its logs are above")
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"plugin container {running.name} does not listen on port {running.port} "
                    f"after {timeout:.0f} s", advice="check the plugin's endpoints port")
            time.sleep(0.05)

    def _remove_quietly(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            # Best effort after a failed start; the start error is what the caller needs.
            return

    def running(self, name: str) -> RunningPlugin | None:
        """The running plugin container called ``name`` (created by cortex-trust), or ``None``.

        Lets a later process (``cortex plugin call``) find the address again.
        """
        c = self._get(name)
        if c is None or c.status != "running":
            return None
        labels = c.labels or {}
        if labels.get(f"{LABEL_PREFIX}.managed") != "true":
            return None
        networks = (c.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        if len(networks) != 1:
            raise UnavailableError(f"plugin container {name} is on {len(networks)} networks, not 1",
                                   advice=f"stop it (podman rm -f {name}) and start it again")
        network = next(iter(networks))
        try:
            port = int(labels.get(f"{LABEL_PREFIX}.endpoints.port", ""))
        except ValueError:
            raise UnavailableError(f"plugin container {name} has no endpoints port label",
                                   advice=f"stop it (podman rm -f {name}) and start it again"
                                   ) from None
        return RunningPlugin(name=name, id=str(c.id), address=_address_on(c.attrs, network),
                             port=port, digest=labels.get(f"{LABEL_PREFIX}.plugin.digest", ""),
                             network=network, sandbox=labels.get(f"{LABEL_PREFIX}.sandbox", ""))

    def is_running(self, name: str) -> bool:
        """Whether a container called ``name`` is running. Raises :class:`UnavailableError`."""
        c = self._get(name)
        return c is not None and c.status == "running"

    def stop(self, name: str, *, timeout: int = 5, remove: bool = True) -> bool:
        """Stop (and by default remove) the container ``name``; ``False`` if there was none.

        Raises :class:`UnavailableError` if the engine fails.
        """
        c = self._get(name)
        if c is None:
            return False
        try:
            if c.status == "running":
                c.stop(timeout=timeout)
            if remove:
                c.remove(force=True)
        except docker.errors.NotFound:
            return True  # gone in between: stopped is stopped
        except docker.errors.DockerException as e:
            raise _engine_error(f"stop container {name}", e) from None
        return True

    def remove_volume(self, name: str) -> bool:
        """Remove the named volume (a plugin's granted storage); ``False`` if there was none.

        Raises :class:`UnavailableError` if the engine fails (e.g. the volume is in use).
        """
        try:
            self._client.volumes.get(name).remove(force=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.DockerException as e:
            raise _engine_error(f"remove volume {name}", e) from None
        return True

    def call(self, running: RunningPlugin, endpoint: str, *, method: str = "GET",
             data: Any = None, timeout: float | None = None) -> PluginResponse:
        """Call ``method endpoint`` on the plugin; ``data`` (if not ``None``) is sent as JSON.

        ``endpoint`` must be an absolute path (``/greet``). The request goes straight to the
        container address, never through a proxy, and only after the engine confirms that this
        container is still running at that address (a stopped plugin's address may be reused by
        another container or routed elsewhere). Raises :class:`InputError` for a bad endpoint
        or method, :class:`UnavailableError` if the plugin does not answer.
        """
        if not isinstance(endpoint, str) or not endpoint.startswith("/") or endpoint.startswith(
                "//") or any(c.isspace() or c in "#?\\" for c in endpoint) or len(endpoint) > 1024:
            raise InputError(f"not an endpoint path: {str(endpoint)[:100]!r}",
                             advice="use the absolute path the manifest declares, e.g. /greet")
        verb = method.upper()
        if verb not in _METHODS:
            raise InputError(f"not an HTTP method: {method!r}")
        self._check_live(running)
        url = httpx.URL(scheme="http", host=running.address, port=running.port, path=endpoint)
        try:
            # Plain HTTP to the container's address: the TLS context trusts no certificate
            # (no TLS connection could succeed with it) and spares loading a CA bundle.
            with httpx.Client(trust_env=False, follow_redirects=False, verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
                              timeout=timeout or self._call_timeout) as http:
                with http.stream(verb, url, json=data) as resp:
                    body = b""
                    for chunk in resp.iter_bytes():
                        body += chunk
                        if len(body) > _MAX_RESPONSE:
                            raise UnavailableError(
                                f"plugin {running.name} answered more than 1 MiB on {endpoint}",
                                advice="plugin answers are capped at 1 MiB")
                    return PluginResponse(status=resp.status_code,
                                          content_type=resp.headers.get("content-type", ""),
                                          body=body)
        except httpx.HTTPError as e:
            raise UnavailableError(f"plugin {running.name} did not answer {verb} {endpoint}: {e}",
                                   advice="check that it is running (cortex plugin run)") from None


    def _check_live(self, running: RunningPlugin) -> None:
        c = self._get(running.id)
        if c is None or c.status != "running":
            raise UnavailableError(f"plugin container {running.name} is not running",
                                   advice="start it (cortex plugin run)")
        if _address_on(c.attrs, running.network) != running.address:
            raise UnavailableError(f"plugin container {running.name} moved to another address",
                                   advice="look it up again (ContainerRuntime.running)")
        missing = missing_hardening(c.attrs, seccomp=self._seccomp_option(), no_new_privileges=False)
        if missing:
            raise UnavailableError(f"plugin container {running.name} runs without {missing}",
                                   advice=f"stop it (cortex plugin stop, or podman rm -f {running.name})"
                                   " and start it again with cortex plugin run")


def _address_on(attrs: dict[str, Any], network: str) -> str:
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    # Podman names the default network "podman" even when asked for "bridge".
    entry = networks.get(network)
    if entry is None and len(networks) == 1:
        entry = next(iter(networks.values()))
    address = str((entry or {}).get("IPAddress") or "")
    if not address:
        raise UnavailableError(f"the container has no address on network {network}",
                               advice="check the network set-up: scripts/podman.sh")
    return address


def _tail_logs(container: Container) -> str:
    try:
        raw = container.logs(tail=20)
    except docker.errors.DockerException as e:
        return f"(no logs: {e})"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text.strip()[-2000:] or "(no output)"


def _explain(e: docker.errors.APIError) -> str:
    return str(getattr(e, "explanation", None) or e)[:500]


def _looks_missing(e: docker.errors.APIError) -> bool:
    text = _explain(e).lower()
    return e.status_code == 404 or "manifest unknown" in text or "not found" in text
