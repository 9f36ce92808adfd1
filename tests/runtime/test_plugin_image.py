"""The plugin image contract against the REAL engine and OCI registry: the README's example
image (examples/plugins/hello/Dockerfile, which `cortex manifest init` writes for the name
hello) builds, carries its manifest's name and version as labels, runs as 65534:65534, and under
a decided sandbox (read-only root, no network, every capability dropped) answers every endpoint
its manifest declares on port 8080.

This machine cannot pull from Docker Hub, so the Dockerfile's ``BUSYBOX`` base is replaced with
a local image holding Debian's static busybox at the same path (``--build-arg``); everything
else is built exactly as a user builds it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from cortex_trust.manifest import load_manifest
from cortex_trust.policy import Decision
from cortex_trust.runtime import ContainerRuntime, container_spec
from cortex_trust.sources import OciClient
from tests.support.containers import ROOT, remove_local_image

EXAMPLE = ROOT / "examples" / "plugins" / "hello"

pytestmark = pytest.mark.slow


def _podman(container_env: dict[str, str], *args: str) -> str:
    import os

    done = subprocess.run(["podman", *args], env={**os.environ, **container_env}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def example_image(container_env: dict[str, str], oci_client: OciClient,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """examples/plugins/hello built from its own directory and pushed; its pinned reference."""
    base_ctx = tmp_path_factory.mktemp("busybox-base")
    shutil.copy2("/bin/busybox", base_ctx / "busybox")
    (base_ctx / "Containerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\n")
    token = secrets.token_hex(4)
    base = f"localhost/cortex-test/busybox-{token}:static"
    local = f"localhost/cortex-test/example-hello-{token}:0.1.0"
    _podman(container_env, "build", "-q", "-t", base, str(base_ctx))
    try:
        _podman(container_env, "build", "-q", "--build-arg", f"BUSYBOX={base}", "-t", local, str(EXAMPLE))
        registry = container_env["CORTEX_TEST_OCI_REGISTRY"]
        repository = f"examples/hello-{token}"
        _podman(container_env, "push", "-q", "--tls-verify=false", local, f"{registry}/{repository}:0.1.0")
        yield f"{registry}/{repository}:0.1.0@{oci_client.resolve(repository, '0.1.0')}"
    finally:
        remove_local_image(container_env, local)
        remove_local_image(container_env, base)


def test_the_example_image_keeps_the_contract_and_serves_its_manifest(
        container_runtime: ContainerRuntime, example_image: str) -> None:
    manifest = load_manifest(EXAMPLE / "manifest.yaml")
    # The labels must equal the manifest, or the runtime refuses the image.
    container_runtime.pull_pinned(example_image, plugin=manifest.name, version=manifest.version)
    config = container_runtime.client.images.get(example_image).attrs["Config"]
    assert config["User"] == "65534:65534"
    assert "8080/tcp" in (config.get("ExposedPorts") or {})
    decision = Decision.model_validate({
        "tier": "community", "action": "notice", "reasons": [{"code": "TIER_COMMUNITY", "message": "m"}],
        "sandbox": {"enabled": True, "network": False, "filesystem": False, "read_only_root": True,
                    "cap_drop": ["ALL"], "no_new_privileges": True, "user": "65534:65534",
                    "memory": "64m", "cpus": 0.5, "pids_limit": 64},
        "next_tier": None, "overridable": False, "policy_revision": "test-rev-1"})
    spec = container_spec(decision, plugin=f"hello-{secrets.token_hex(3)}", version=manifest.version,
                          image=example_image)
    running = container_runtime.start(spec)
    try:
        answers = {}
        for cap in manifest.capabilities:
            response = container_runtime.call(running, cap.endpoint, method=cap.method,
                                              data={"name": "Ada"} if cap.method == "POST" else None)
            assert response.status == 200, (cap.name, response)
            answers[cap.name] = response.json()
        assert answers == {"greet": {"greeting": "hello"}, "echo": {"name": "Ada"}}
        assert container_runtime.call(running, "/undeclared").status == 404
        assert container_runtime.call(running, "/greet", method="POST").status == 404
    finally:
        container_runtime.stop(spec.name, timeout=1)

