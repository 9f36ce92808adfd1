"""A real registry process with the hello test plugin published, for the benchmarks that install,
run and call it (bench/install.py, bench/startup.py).

:func:`container_env` runs scripts/podman.sh (it starts Podman's Docker API service, the sandbox
network and the local OCI registry if they are not running) and returns what it exports.
:func:`published_hello` builds the hello test plugin (tests/images/hello), pushes it to the local
OCI registry, starts ``cortex registry serve`` as its own process (temporary SQLite database, the
test-only private Sigstore root trusted), publishes the plugin under ``acme/hello`` with a bundle
from that Sigstore, writes a cortex configuration naming the registry, and stops the registry when
the ``with`` block ends.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["ROOT", "Published", "cli_command", "container_env", "process_env", "published_hello"]


def container_env() -> dict[str, str]:
    """The ``NAME=value`` lines scripts/podman.sh prints (DOCKER_HOST, CORTEX_TEST_OCI_REGISTRY...)."""
    from tests.support.containers import parse_exports

    out = subprocess.run([str(ROOT / "scripts" / "podman.sh")], capture_output=True, text=True,
                         check=True, timeout=900).stdout
    return parse_exports(out)


def cli_command() -> list[str]:
    """How a user runs ``cortex``: the console script installed beside this interpreter (run with
    :func:`process_env`, so that it imports this tree), else ``python -c`` of the same entry point."""
    script = Path(sys.executable).parent / "cortex"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli.main import main; sys.argv[0] = 'cortex'; main()"]


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured process: this tree first on the path, bytecode written and
    reused (with ``PYTHONDONTWRITEBYTECODE`` an editable install recompiles on every start)."""
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


@dataclass(frozen=True)
class Published:
    """The published plugin and where it lives."""

    image: Any  #: the first plugin's image (tests.support.containers.HelloImage)
    sigstore: Any  #: tests.support.sigstore_mint.PrivateSigstore
    registry_url: str
    config_path: Path  #: a cortex configuration whose default registry is ``registry_url``
    plugins: tuple[str, ...]  #: the manifests' (and the image labels') plugin names

    @property
    def plugin(self) -> str:
        """The first plugin's name."""
        return self.plugins[0]

    @property
    def name(self) -> str:
        """What ``cortex plugin install`` takes for the first plugin: ``acme/<plugin>``."""
        return f"acme/{self.plugin}"

    @property
    def container(self) -> str:
        """The container ``cortex plugin run`` starts for the first plugin."""
        return f"cortex-{self.plugin}"


@contextmanager
def published_hello(tmp: Path, cenv: dict[str, str], *, count: int = 1) -> Iterator[Published]:
    """Build, push and publish the hello plugin ``count`` times under different names; a registry
    serves them until the block ends.

    Each gets a name of its own (``hello-bench-<hex>``): containers are named after the plugin,
    and other test runs on the same engine start, stop and clean up ``cortex-hello``."""
    import httpx

    from cortex_trust.install import CortexConfig, save_config
    from cortex_trust.sources import OciClient, RegistryClient
    from tests.support.containers import build_image
    from tests.support.federation import ISSUER, SIGNER, manifest_text
    from tests.support.sigstore_mint import PrivateSigstore

    oci = cenv["CORTEX_TEST_OCI_REGISTRY"]
    plugins = tuple(f"hello-bench-{secrets.token_hex(4)}" for _ in range(count))
    with OciClient(f"http://{oci}") as oci_client:
        images = [build_image(cenv, tmp / plugin, repository=f"bench/{plugin}", tag="0.1.0",
                              oci_client=oci_client, plugin=plugin) for plugin in plugins]
    sig = PrivateSigstore(tmp / "sigstore")
    # The registry runs as its own process (`cortex registry serve`), as in production: in the
    # benchmark's process it would compete for the GIL with what is measured.
    cli = cli_command()
    db = f"sqlite:///{tmp / 'registry.db'}"
    benv = process_env()
    token = subprocess.run([*cli, "registry", "token", "create", "--namespace", "acme", "--role",
                            "publisher", "--db", db], env=benv, check=True, capture_output=True,
                           text=True).stdout.strip()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([*cli, "registry", "serve", "--db", db, "--port", str(port),
                               "--trusted-root", str(sig.trusted_root_path),
                               "--allow-registry", oci, "--name", "public"], env=benv,
                              stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the registry did not start") from None
                time.sleep(0.2)
        with RegistryClient(url, token=token) as rc:
            for plugin, image in zip(plugins, images, strict=True):
                rc.publish(manifest=manifest_text(plugin, "0.1.0",
                                                  image=f"{image.registry}/{image.repository}:0.1.0",
                                                  caps=(("greet", "POST", "/greet"),
                                                        ("health", "GET", "/health"))),
                           image=f"{image.registry}/{image.repository}@{image.digest}",
                           bundle=sig.sign_digest(image.digest, identity=SIGNER, issuer=ISSUER).decode(),
                           namespace="acme")
        config_path = tmp / "config.json"
        save_config(config_path, CortexConfig(registry=url))
        yield Published(image=images[0], sigstore=sig, registry_url=url, config_path=config_path,
                        plugins=plugins)
    finally:
        server.terminate()
        server.wait(30)
