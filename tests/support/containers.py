"""Fixtures for tests against the real container engine and OCI registry (slow tests).

``container_env`` runs scripts/podman.sh (idempotent: it starts Podman's Docker API service, the
firewalled internal sandbox network and a loopback docker-registry only if they are not running)
and returns the variables it prints. ``hello_image`` builds tests/images/hello with ``podman
build``, pushes it to the local registry under a repository unique to this session, and returns
its pinned reference with the digest the *registry* reports. ``unfenced_network`` is an internal
network created without the sandbox firewall (what a plugin must never be started on), and
``free_subnet`` picks an IPv4 subnet no network on this engine uses.

If the engine cannot be started these fixtures fail, never skip: a slow test that did not run
must not look like a pass.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported inside the fixtures: every pytest run loads this module
    from cortex_trust.runtime import ContainerRuntime
    from cortex_trust.sources import OciClient

ROOT = Path(__file__).resolve().parents[2]
HELLO_DIR = ROOT / "tests" / "images" / "hello"

__all__ = [
    "HelloImage",
    "UnfencedNetwork",
    "build_image",
    "container_env",
    "container_runtime",
    "drop_network",
    "free_subnet",
    "hello_image",
    "oci_client",
    "parse_exports",
    "remove_local_image",
    "unfenced_network",
]


def _run(cmd: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def parse_exports(text: str) -> dict[str, str]:
    """The ``NAME=value`` lines (``export`` optional) that scripts/podman.sh prints."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.removeprefix("export ").strip()
        if "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    return env


@pytest.fixture(scope="session")
def container_env() -> dict[str, str]:
    """The environment printed by scripts/podman.sh (DOCKER_HOST, CORTEX_TEST_OCI_REGISTRY...)."""
    out = _run([str(ROOT / "scripts" / "podman.sh")], dict(os.environ), timeout=900)
    env = parse_exports(out)
    for key in ("DOCKER_HOST", "CORTEX_TEST_OCI_REGISTRY", "CORTEX_SANDBOX_NETWORK"):
        if key not in env:
            pytest.fail(f"scripts/podman.sh did not print {key}:\n{out}")
    return env


def _podman_env(container_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(container_env)
    return env


@pytest.fixture(scope="session")
def container_runtime(container_env: dict[str, str]) -> ContainerRuntime:
    """A ContainerRuntime on the project's Podman service, with no plugin container left over
    from an earlier, interrupted run (containers outlive the process that started them)."""
    from cortex_trust.runtime import LABEL_PREFIX, connect

    runtime = connect(container_env["DOCKER_HOST"])
    for stale in runtime.client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}.managed=true"}):
        stale.remove(force=True)
    return runtime


@pytest.fixture(scope="session")
def oci_client(container_env: dict[str, str]) -> Iterator[OciClient]:
    """An OciClient on the local test registry."""
    from cortex_trust.sources import OciClient

    with OciClient(f"http://{container_env['CORTEX_TEST_OCI_REGISTRY']}") as client:
        yield client


@dataclass(frozen=True)
class HelloImage:
    """The hello test plugin as pushed to the local registry."""

    registry: str
    repository: str
    tag: str
    digest: str
    local_tag: str

    @property
    def pinned(self) -> str:
        """``registry/repository:tag@digest``."""
        return f"{self.registry}/{self.repository}:{self.tag}@{self.digest}"

    @property
    def tagged(self) -> str:
        """``registry/repository:tag``."""
        return f"{self.registry}/{self.repository}:{self.tag}"


def build_image(container_env: dict[str, str], tmp: Path, *, repository: str, tag: str,
                greeting: str = "hello", oci_client: OciClient, plugin: str = "hello") -> HelloImage:
    """Build tests/images/hello (answering ``greeting``, its labels naming the plugin ``plugin``),
    push it as ``repository:tag``, return it."""
    env = _podman_env(container_env)
    ctx = tmp / f"ctx-{greeting}"
    shutil.copytree(HELLO_DIR, ctx)
    for file in ("Containerfile", "cortex-plugin.json"):
        text = (ctx / file).read_text()
        (ctx / file).write_text(text.replace('io.cortex.plugin.name="hello"', f'io.cortex.plugin.name="{plugin}"')
                                .replace('"name": "hello"', f'"name": "{plugin}"'))
    # The static busybox from Debian's busybox-static; a scratch image has nothing else.
    shutil.copy2("/bin/busybox", ctx / "busybox")
    (ctx / "greeting").write_text(greeting + "\n")
    local = f"localhost/cortex-test/{repository.replace('/', '-')}:{greeting}"
    _run(["podman", "build", "-q", "-t", local, str(ctx)], env)
    registry = container_env["CORTEX_TEST_OCI_REGISTRY"]
    _run(["podman", "push", "-q", "--tls-verify=false", local, f"{registry}/{repository}:{tag}"],
         env)
    digest = oci_client.resolve(repository, tag)
    return HelloImage(registry=registry, repository=repository, tag=tag, digest=digest,
                      local_tag=local)


@pytest.fixture(scope="session")
def hello_image(container_env: dict[str, str], oci_client: OciClient,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelloImage]:
    """The hello plugin 0.1.0 in the local registry, in a repository unique to this session."""
    repository = f"acme/hello-{secrets.token_hex(4)}"
    image = build_image(container_env, tmp_path_factory.mktemp("hello"), repository=repository,
                        tag="0.1.0", oci_client=oci_client)
    yield image
    remove_local_image(container_env, image.local_tag)


def remove_local_image(container_env: dict[str, str], ref: str) -> None:
    """Untag a locally built test image (the layers are shared and tiny)."""
    subprocess.run(["podman", "rmi", "-f", ref], env=_podman_env(container_env),
                   capture_output=True, check=False, timeout=60)


def free_subnet(container_env: dict[str, str]) -> str:
    """A ``10.89.N.0/24`` no network of this engine overlaps (the project's own address range)."""
    env = _podman_env(container_env)
    names = _run(["podman", "network", "ls", "--format", "{{.Name}}"], env).split()
    used = [ipaddress.ip_network(s["subnet"]) for n in json.loads(_run(["podman", "network", "inspect", *names], env))
            for s in n.get("subnets") or []]
    candidates = [ipaddress.ip_network(f"10.89.{i}.0/24") for i in range(211, 250)]
    random.shuffle(candidates)
    for net in candidates:
        if not any(net.overlaps(u) for u in used):
            return str(net)
    pytest.fail("no free 10.89.N.0/24 subnet left on this engine")


def drop_network(container_env: dict[str, str], name: str) -> None:
    """Remove network ``name`` (and its containers) and the sandbox firewall tables named after it."""
    subprocess.run(["podman", "network", "rm", "-f", name], env=_podman_env(container_env),
                   capture_output=True, check=False, timeout=120)
    for family in ("bridge", "inet"):
        subprocess.run(["nft", "delete", "table", family, f"cortex_net_{name}"], capture_output=True,
                       check=False, timeout=30)


@dataclass(frozen=True)
class UnfencedNetwork:
    """An internal network without the sandbox firewall."""

    name: str
    bridge: str
    subnet: str


@pytest.fixture
def unfenced_network(container_env: dict[str, str]) -> Iterator[UnfencedNetwork]:
    """An internal network created with podman alone (no firewall tables), removed afterwards."""
    name = f"cortex-unfenced-{secrets.token_hex(3)}"
    subnet = free_subnet(container_env)
    gateway = str(next(ipaddress.ip_network(subnet).hosts()))
    env = _podman_env(container_env)
    _run(["podman", "network", "create", "--internal", "--disable-dns", "--subnet", subnet,
          "--gateway", gateway, name], env)
    try:
        bridge = _run(["podman", "network", "inspect", "--format", "{{.NetworkInterface}}", name], env).strip()
        yield UnfencedNetwork(name=name, bridge=bridge, subnet=subnet)
    finally:
        drop_network(container_env, name)
