"""Install → run → call against the real container engine (Podman's Docker API) and the local OCI
registry (scripts/podman.sh), with the hello test plugin (tests/images/hello) published into a
real registry on loopback. Slow: needs the engine (the fixtures fail, never skip, without it).

Shown here (issue 5): an installed plugin runs in the decided sandbox and answers its declared
capabilities; a revoked plugin is stopped on the next sync and refuses to start or be called; a
warn decision without a terminal and without --yes installs (and pulls) nothing; an image
whose plugin name or version differs from the request (a re-tagged image) is refused, as is a
digest the OCI registry does not have; `run` refuses (exit 3, with the fix) to start a plugin on a
sandbox network whose isolation it cannot confirm.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.install import InstallStore
from tests.support.containers import (
    HelloImage,
    UnfencedNetwork,
    unfenced_network,  # noqa: F401 (a fixture)
)
from tests.support.federation import Federation, RegistryServer, fake_digest, manifest_text
from tests.support.sigstore_mint import PrivateSigstore

pytestmark = pytest.mark.slow

CAPS = (("greet", "POST", "/greet"), ("health", "GET", "/health"))


@pytest.fixture
def world(tmp_path: Path, registry_evaluator: Any, private_sigstore: PrivateSigstore,
          container_env: dict[str, str], hello_image: HelloImage,
          container_runtime: Any) -> Iterator[tuple[Federation, HelloImage, dict[str, str]]]:
    oci = container_env["CORTEX_TEST_OCI_REGISTRY"]
    sigstore = private_sigstore
    public = RegistryServer("public", tmp_path, registry_evaluator, sigstore.trusted_root_path,
                            oci_host=oci).start()
    private = RegistryServer("acme-internal", tmp_path, registry_evaluator,
                             sigstore.trusted_root_path, private=True, oci_host=oci).start()
    fed = Federation(public=public, private=private, home=tmp_path / "home", sigstore=sigstore,
                     reader_token=private.token("acme", role="installation"))
    fed.write_config()
    env = {k: v for k, v in container_env.items()}
    container_runtime.stop("cortex-hello")
    try:
        yield fed, hello_image, env
    finally:
        container_runtime.stop("cortex-hello")
        public.close()
        private.close()


def cortex(fed: Federation, env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=fed.env(**env), catch_exceptions=False)


def publish_hello(fed: Federation, image: HelloImage, *, version: str = "0.1.0",
                  name: str = "hello", digest: str | None = None) -> str:
    return fed.private.publish(
        fed.sigstore, "acme", name, version, digest=digest or image.digest,
        repository=f"{image.registry}/{image.repository}",
        manifest=manifest_text(name, version, image=f"{image.registry}/{image.repository}:"
                                                    f"{image.tag}", caps=CAPS))


def test_install_run_call_stop(world: Any, container_runtime: Any) -> None:
    fed, image, env = world
    publish_hello(fed, image)
    r = cortex(fed, env, "plugin", "install", "acme/hello", "--yes")
    assert r.exit_code == 0, r.output
    assert "image pulled and checked" in r.stdout
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 0, r.output
    running = container_runtime.running("cortex-hello")
    assert running is not None and running.digest == image.digest
    attrs = container_runtime.client.containers.get("cortex-hello").attrs
    host = attrs["HostConfig"]
    assert host["ReadonlyRootfs"] is True and not host.get("CapAdd")
    dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"] or ()}
    # Docker reports ["ALL"]; Podman lists every capability it dropped.
    assert "ALL" in dropped or {"CHOWN", "NET_RAW", "SETUID", "KILL"} <= dropped
    assert attrs["Config"]["User"] == "65534:65534"
    r = cortex(fed, env, "plugin", "list")  # STATE asks the container engine
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split()[4] == "running", r.output
    r = cortex(fed, env, "plugin", "call", "acme/hello", "greet", "--data", '{"name": "Ada"}')
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["greeting"].endswith("Ada")
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"status": "ok"}
    r = cortex(fed, env, "plugin", "stop", "acme/hello")
    assert r.exit_code == 0 and not container_runtime.is_running("cortex-hello")
    r = cortex(fed, env, "plugin", "list", "--format", "json")
    assert json.loads(r.stdout)["plugins"][0]["status"]["running"] is False


def test_run_compares_the_platform_version_and_never_starts_silently_when_unknown(
        world: Any, container_runtime: Any) -> None:
    """`run` decides with the CORTEX platform version of the moment: an older platform
    (CORTEX_PLATFORM_VERSION) refuses to start; an unknown one starts with the policy's
    CORTEX_VERSION_UNKNOWN warning on stderr."""
    from cortex_trust.install import load_config, save_config

    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    old = cortex(fed, {**env, "CORTEX_PLATFORM_VERSION": "0.0.9"}, "plugin", "run", "acme/hello")
    assert old.exit_code == 1, old.output
    assert "CORTEX_VERSION_UNSUPPORTED: the plugin needs CORTEX 0.1.0 or later; this platform is " \
           "CORTEX 0.0.9 (set in the environment)" in old.stderr
    assert not container_runtime.is_running("cortex-hello")
    save_config(fed.config_path, load_config(fed.config_path).model_copy(update={"platform_version": None}))
    unknown = cortex(fed, env, "plugin", "run", "acme/hello")
    assert unknown.exit_code == 0, unknown.output
    assert "warning: CORTEX_VERSION_UNKNOWN: the CORTEX platform version is unknown" in unknown.stderr
    assert container_runtime.is_running("cortex-hello")
    assert cortex(fed, env, "plugin", "stop", "acme/hello").exit_code == 0


def test_revoked_plugin_is_stopped_and_refuses_to_start(world: Any, container_runtime: Any
                                                        ) -> None:
    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    assert cortex(fed, env, "plugin", "run", "acme/hello").exit_code == 0
    assert container_runtime.is_running("cortex-hello")
    fed.private.revoke("acme", "hello", "0.1.0", reason="compromised build")
    r = cortex(fed, env, "plugin", "sync")
    assert r.exit_code == 0, r.output
    assert "REVOKED" in r.stdout and "stopped" in r.stdout
    assert not container_runtime.is_running("cortex-hello")
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 1 and "REVOKED" in r.stderr
    assert not container_runtime.is_running("cortex-hello")


def test_call_on_a_revoked_running_plugin_stops_it(world: Any, container_runtime: Any) -> None:
    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    assert cortex(fed, env, "plugin", "run", "acme/hello").exit_code == 0
    fed.private.revoke("acme", "hello", "0.1.0")
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health")
    assert r.exit_code == 1 and "REVOKED" in r.stderr
    assert not container_runtime.is_running("cortex-hello")


def test_warn_without_terminal_installs_and_pulls_nothing(world: Any) -> None:
    fed, image, env = world
    publish_hello(fed, image)
    r = cortex(fed, env, "plugin", "install", "acme/hello")
    assert r.exit_code == 1 and "no terminal" in r.stderr
    assert InstallStore(fed.data_dir).all() == []
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 2  # not installed


@pytest.mark.parametrize(("name", "version", "digest"), [
    ("hello", "0.2.0", None),          # the 0.1.0 image re-tagged as 0.2.0
    ("impostor", "0.1.0", None),       # another plugin's name on the hello image
    ("hello", "0.3.0", fake_digest("nowhere")),  # a digest the OCI registry does not have
])
def test_mismatched_or_missing_image_is_refused(world: Any, name: str, version: str,
                                                digest: str | None) -> None:
    fed, image, env = world
    publish_hello(fed, image, name=name, version=version, digest=digest)
    r = cortex(fed, env, "plugin", "install", f"acme/{name}@{version}", "--yes")
    assert r.exit_code in (2, 3), r.output
    assert r.exit_code == 2 or digest is not None
    assert InstallStore(fed.data_dir).all() == []


def test_run_refuses_when_plugin_isolation_cannot_be_confirmed(
        world: Any, container_runtime: Any, unfenced_network: UnfencedNetwork,  # noqa: F811 (the fixture)
) -> None:
    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    # An internal network without the sandbox firewall: no route out, but plugins on it could
    # reach each other and the host.
    r = cortex(fed, {**env, "CORTEX_SANDBOX_NETWORK": unfenced_network.name}, "plugin", "run",
               "acme/hello")
    assert r.exit_code == 3, r.output
    assert f"cannot confirm that plugins on network {unfenced_network.name} are isolated" in r.stderr
    assert "scripts/podman.sh" in r.stderr  # the fix
    assert not container_runtime.is_running("cortex-hello")
    # Positive control: the sandbox network scripts/podman.sh set up.
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 0, r.output
    assert container_runtime.is_running("cortex-hello")


def test_run_decides_under_the_configured_policy_and_says_when_it_changed(
        world: Any, container_runtime: Any, tmp_path: Path) -> None:
    """The organization's policy data is configuration (`cortex config set policy-data`):
    install and run decide under it without --data; a run under another policy than the
    install's says so, naming both revisions, and is decided by the current policy; --data
    overrides the configuration."""
    from cortex_trust.install import load_config, save_config
    from cortex_trust.policy import load_policy_set

    fed, image, env = world
    publish_hello(fed, image)
    allow, block = tmp_path / "allow.yaml", tmp_path / "block.yaml"
    allow.write_text("cortex_config:\n  actions:\n    experimental: allow\n")
    block.write_text("cortex_config:\n  actions:\n    experimental: block\n")

    def configure(data: Path) -> None:
        save_config(fed.config_path, load_config(fed.config_path).model_copy(
            update={"policy_data": (str(data),)}))

    configure(allow)
    r = cortex(fed, env, "plugin", "install", "acme/hello")  # no --yes: the configured data allows
    assert r.exit_code == 0, r.output
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 0, r.output
    assert "policy changed" not in r.stderr
    assert cortex(fed, env, "plugin", "stop", "acme/hello").exit_code == 0

    configure(block)
    r = cortex(fed, env, "plugin", "run", "acme/hello")
    assert r.exit_code == 1, r.output
    was, now = (load_policy_set([], [p]).revision[:len("sha256:") + 12] for p in (allow, block))
    assert f"note: the policy changed since acme/hello was installed: installed under revision {was}, " \
           f"deciding now under revision {now} (the current policy decides)" in r.stderr
    assert "TIER_EXPERIMENTAL" in r.stderr and not container_runtime.is_running("cortex-hello")

    r = cortex(fed, env, "plugin", "run", "acme/hello", "--data", str(allow))
    assert r.exit_code == 0, r.output
    assert "policy changed" not in r.stderr  # the install's policy again
    assert container_runtime.is_running("cortex-hello")
    assert cortex(fed, env, "plugin", "stop", "acme/hello").exit_code == 0


@pytest.mark.security_review
def test_call_stops_a_container_started_under_another_sandbox(
        world: Any, container_runtime: Any, tmp_path: Path) -> None:
    """``run`` under org data granting more (here a higher process limit), then ``call`` under
    the current policy: the running container's sandbox is not the decided one, so it is
    stopped instead of called."""
    fed, image, env = world
    publish_hello(fed, image)
    wider = tmp_path / "wider.yaml"
    wider.write_text("cortex_config:\n  sandbox:\n    pids_limit: 512\n")
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    r = cortex(fed, env, "plugin", "run", "acme/hello", "--data", str(wider))
    assert r.exit_code == 0, r.output
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health", "--policy-data", str(wider))
    assert r.exit_code == 0, r.output  # the same decision: called
    r = cortex(fed, env, "plugin", "call", "acme/hello", "health")
    assert r.exit_code == 1 and "another sandbox" in r.stderr
    assert not container_runtime.is_running("cortex-hello")


@pytest.mark.security_review
def test_remove_deletes_the_plugins_data_volume(world: Any, container_runtime: Any) -> None:
    """A removed plugin's data volume is deleted: never handed to a later plugin of that name."""
    fed, image, env = world
    publish_hello(fed, image)
    assert cortex(fed, env, "plugin", "install", "acme/hello", "--yes").exit_code == 0
    client = container_runtime.client
    client.volumes.create("cortex-hello-data")  # what a run with a granted filesystem leaves
    try:
        r = cortex(fed, env, "plugin", "remove", "acme/hello")
        assert r.exit_code == 0, r.output
        assert "cortex-hello-data" not in {v.name for v in client.volumes.list()}
    finally:
        container_runtime.remove_volume("cortex-hello-data")
