"""Production use reported by installations, against a real `cortex registry serve` process.

`cortex plugin usage report` (for any runtime) and `cortex plugin run` (once the plugin started)
report to the registry a plugin came from only when that registry is opted in (the configuration
names the variable holding an installation token): then the version's usage evidence at the
registry changes; without the opt-in nothing reaches it, even with a valid token in the
environment. What is sent is exactly namespace, name, version and digest. A report that fails
never fails `run`; `usage report` exits 3 when the registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli.main import app
from tests.support.federation import ISSUER, OCI_HOST, SIGNER, fake_digest, manifest_text
from tests.support.served_registry import CORTEX, ServedRegistry, free_port, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

USAGE_ENV = "CORTEX_USAGE_TOKEN"


@dataclass
class World:
    """A served registry trusting the private Sigstore, and where this test's CLI keeps files."""

    server: ServedRegistry
    sigstore: PrivateSigstore
    home: Path

    def token(self, namespace: str, role: str) -> str:
        r = CliRunner().invoke(app, ["registry", "token", "create", "--namespace", namespace,
                                     "--role", role, "--expires", "1d", "--db", self.server.db])
        assert r.exit_code == 0, r.output
        return r.stdout.strip()

    def publish(self, name: str, version: str = "1.0.0", *, repository: str | None = None,
                digest: str | None = None, manifest: str | None = None) -> str:
        """Publish acme/NAME@VERSION signed by the private Sigstore; returns its digest."""
        from cortex_trust.sources import RegistryClient

        digest = digest or fake_digest("usage", name, version, secrets.token_hex(4))
        bundle = self.sigstore.sign_digest(digest, identity=SIGNER, issuer=ISSUER)
        with RegistryClient(self.server.url, token=self.token("acme", "publisher")) as c:
            c.publish(manifest=manifest or manifest_text(name, version),
                      image=f"{repository or f'{OCI_HOST}/acme/{name}'}@{digest}",
                      bundle=bundle.decode(), namespace="acme")
        return digest

    def usage(self, name: str, version: str = "1.0.0") -> dict[str, Any]:
        r = httpx.get(f"{self.server.url}/api/v1/plugins/acme/{name}/versions/{version}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["evidence"]["usage"]  # type: ignore[no-any-return]

    def configure(self, *, usage_token_env: str | None, registry: str | None = None) -> None:
        from cortex_trust.install import CortexConfig, save_config

        save_config(self.home / "config.json", CortexConfig(
            registry=registry or self.server.url, usage_token_env=usage_token_env))

    def env(self, **extra: str) -> dict[str, str]:
        return {"CORTEX_CONFIG": str(self.home / "config.json"),
                "CORTEX_DATA_DIR": str(self.home / "data"), "DOCKER_HOST": "", **extra}

    def cortex(self, *args: str, **env: str) -> Result:
        return CliRunner().invoke(app, list(args), env=self.env(**env))


def _serve(directory: Path, sigstore: PrivateSigstore, oci_host: str) -> Any:
    """`cortex registry serve` trusting the private Sigstore, images from ``oci_host``."""
    return serve_registry(directory, "--no-scan", "--trusted-root", str(sigstore.trusted_root_path),
                          "--allow-registry", oci_host)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, private_sigstore: PrivateSigstore
           ) -> Iterator[ServedRegistry]:
    """One registry process for the module (each test publishes its own plugin)."""
    with _serve(tmp_path_factory.mktemp("usage-registry"), private_sigstore, OCI_HOST) as served:
        yield served


@pytest.fixture
def world(server: ServedRegistry, private_sigstore: PrivateSigstore, tmp_path: Path) -> World:
    w = World(server=server, sigstore=private_sigstore, home=tmp_path / "home")
    w.configure(usage_token_env=None)
    return w


def _installed(world: World, name: str) -> str:
    digest = world.publish(name)
    r = world.cortex("plugin", "install", f"acme/{name}", "--yes")
    assert r.exit_code == 0, r.output
    return digest


# ------------------------------------------------------------------ where a report goes


def test_a_report_goes_only_to_an_opted_in_registry_the_name_resolves_from() -> None:
    from cortex_trust.errors import InputError
    from cortex_trust.install import CortexConfig, RegistryEntry, plan_usage_report

    digest = fake_digest("where")
    config = CortexConfig(
        registry="https://public.example", usage_token_env="PUBLIC_USAGE",
        registries=(RegistryEntry(name="acme", url="https://acme.example", scopes=("acme/*",),
                                  mirrors=("https://mirror.example",),
                                  usage_token_env="ACME_USAGE"),
                    RegistryEntry(name="quiet", url="https://quiet.example",
                                  scopes=("quiet/*",))))
    acme = plan_usage_report(config, "acme/tool", version="1.0.0", digest=digest)
    assert acme is not None
    # The scoped registry's own URL and token (never a mirror, another party).
    assert (acme.registry, acme.url, acme.token_env) == ("acme", "https://acme.example",
                                                         "ACME_USAGE")
    assert acme.body() == {"namespace": "acme", "name": "tool", "version": "1.0.0",
                           "digest": digest}
    # --registry replaces only the default registry: a scoped name still reports to its own.
    assert plan_usage_report(config, "acme/tool", version="1.0.0", digest=digest,
                             registry_override="https://other.example") == acme
    public = plan_usage_report(config, "other/tool", version="1.0.0", digest=digest)
    assert public is not None and (public.registry, public.url) == ("default",
                                                                     "https://public.example")
    # A scoped registry that did not opt in gets nothing, whatever the default registry did.
    assert plan_usage_report(config, "quiet/tool", version="1.0.0", digest=digest) is None
    with pytest.raises(InputError, match="GitHub"):
        plan_usage_report(config, "github:acme/tool", version="1.0.0", digest=digest)
    with pytest.raises(InputError, match="not an image digest"):
        plan_usage_report(config, "acme/tool", version="1.0.0", digest="latest")
    with pytest.raises(InputError, match="not an environment variable name"):
        plan_usage_report(config, "quiet/tool", version="1.0.0", digest=digest,
                          token_env="not a name")
    with pytest.raises(ValueError, match="not an environment variable name"):
        CortexConfig(usage_token_env="$(curl evil)")


# ------------------------------------------------------------------------- usage report


def test_an_opted_in_report_lands_and_says_exactly_what_was_sent(world: World) -> None:
    digest = _installed(world, "counted")
    token = world.token("beta", "installation")
    assert world.usage("counted")["installations"] == 0

    world.configure(usage_token_env=USAGE_ENV)
    r = world.cortex("plugin", "usage", "report", "acme/counted", "--format", "json",
                     **{USAGE_ENV: token})
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["sent"] == {"namespace": "acme", "name": "counted", "version": "1.0.0",
                           "digest": digest}
    assert (doc["registry"], doc["url"]) == ("default", world.server.url)
    assert token not in r.output

    usage = world.usage("counted")
    assert (usage["installations"], usage["organizations"], usage["active_days"]) == (1, 1, 1)
    assert [rep["organization"] for rep in usage["reporters"]] == ["beta"]
    assert doc["usage"]["installations"] == 1  # the registry's evidence, as it answered

    # Text: one line naming what was reported where. Again the same day: accepted, not counted.
    r = world.cortex("plugin", "usage", "report", "acme/counted", **{USAGE_ENV: token})
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (f"reported use of acme/counted@1.0.0 ({digest}) to registry "
                                f"default ({world.server.url})")
    assert world.usage("counted")["installations"] == 1


def test_without_opt_in_nothing_is_sent_even_with_a_token_in_the_environment(
        world: World) -> None:
    _installed(world, "quiet")
    token = world.token("beta", "installation")
    r = world.cortex("plugin", "usage", "report", "acme/quiet", **{USAGE_ENV: token})
    assert r.exit_code == 2
    assert f"not configured for registry default ({world.server.url})" in r.stderr
    assert "usage-token-env" in r.stderr
    assert world.usage("quiet")["installations"] == 0
    # Opted in, but the variable is empty: nothing to send.
    world.configure(usage_token_env=USAGE_ENV)
    r = world.cortex("plugin", "usage", "report", "acme/quiet", **{USAGE_ENV: ""})
    assert r.exit_code == 2 and f"${USAGE_ENV} is empty or unset" in r.stderr
    assert world.usage("quiet")["installations"] == 0


def test_another_runtime_names_the_version_and_digest_it_runs(world: World) -> None:
    digest = world.publish("elsewhere")
    token = world.token("gamma", "installation")
    env = {USAGE_ENV: token}
    world.configure(usage_token_env=USAGE_ENV)
    # Not installed here: the version and digest that run must be named.
    r = world.cortex("plugin", "usage", "report", "acme/elsewhere@1.0.0", **env)
    assert r.exit_code == 2 and "--digest" in r.stderr
    # Another digest than the version's: the registry refuses, nothing is counted.
    r = world.cortex("plugin", "usage", "report", "acme/elsewhere@1.0.0", "--digest",
                     fake_digest("not", "it"), **env)
    assert r.exit_code == 2 and "usage is for" in r.stderr, r.output
    assert world.usage("elsewhere")["installations"] == 0
    r = world.cortex("plugin", "usage", "report", "acme/elsewhere@1.0.0", "--digest", digest,
                     **env)
    assert r.exit_code == 0, r.output
    assert world.usage("elsewhere")["installations"] == 1


def test_a_token_that_is_not_an_installation_token_is_refused(world: World) -> None:
    _installed(world, "wrongrole")
    world.configure(usage_token_env=USAGE_ENV)
    r = world.cortex("plugin", "usage", "report", "acme/wrongrole",
                     **{USAGE_ENV: world.token("beta", "publisher")})
    assert r.exit_code == 2 and "role installation" in r.stderr, r.output
    assert world.usage("wrongrole")["installations"] == 0


def test_the_default_registrys_token_never_goes_to_another_url(world: World) -> None:
    digest = world.publish("pinned")
    world.configure(usage_token_env=USAGE_ENV)
    elsewhere = f"http://127.0.0.1:{free_port()}"
    r = world.cortex("plugin", "usage", "report", "acme/pinned@1.0.0", "--digest", digest,
                     "--registry", elsewhere, **{USAGE_ENV: world.token("beta", "installation")})
    assert r.exit_code == 2 and "belongs to the default registry" in r.stderr


def test_an_unreachable_registry_exits_3(world: World) -> None:
    digest = world.publish("unreached")
    world.configure(usage_token_env=USAGE_ENV, registry=f"http://127.0.0.1:{free_port()}")
    # A real process: the exit code is the one a runtime's script sees.
    proc = subprocess.run(
        [CORTEX, "plugin", "usage", "report", "acme/unreached@1.0.0", "--digest", digest],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, **world.env(**{USAGE_ENV: world.token("beta", "installation")})})
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- plugin run


@pytest.mark.slow
def test_run_reports_use_only_when_opted_in_and_a_failed_report_never_fails_it(
        tmp_path: Path, private_sigstore: PrivateSigstore, container_env: dict[str, str],
        hello_image: Any, container_runtime: Any) -> None:
    image = hello_image
    env = {k: v for k, v in container_env.items()}
    container_runtime.stop("cortex-hello")
    with _serve(tmp_path, private_sigstore, image.registry) as server:
        world = World(server=server, sigstore=private_sigstore, home=tmp_path / "home")
        world.configure(usage_token_env=None)
        world.publish("hello", "0.1.0", repository=f"{image.registry}/{image.repository}",
                      digest=image.digest,
                      manifest=manifest_text("hello", "0.1.0", image=image.tagged,
                                             caps=(("greet", "POST", "/greet"),
                                                   ("health", "GET", "/health"))))
        token = world.token("delta", "installation")
        _run_and_report(world, env, token, image.digest, container_runtime)


def _run_and_report(world: World, env: dict[str, str], token: str, digest: str,
                    container_runtime: Any) -> None:
    try:
        r = world.cortex("plugin", "install", "acme/hello", "--yes", **env)
        assert r.exit_code == 0, r.output

        # Not opted in (a valid token in the environment all the same): nothing is sent.
        r = world.cortex("plugin", "run", "acme/hello", **env, **{USAGE_ENV: token})
        assert r.exit_code == 0, r.output
        assert "use of acme/hello" not in r.stderr, r.stderr  # neither reported nor warned
        assert world.usage("hello", "0.1.0")["installations"] == 0
        container_runtime.stop("cortex-hello")

        # Opted in: the registry counts this installation's use.
        world.configure(usage_token_env=USAGE_ENV)
        r = world.cortex("plugin", "run", "acme/hello", **env, **{USAGE_ENV: token})
        assert r.exit_code == 0, r.output
        assert f"reported use of acme/hello@0.1.0 ({digest})" in r.stderr, r.stderr
        usage = world.usage("hello", "0.1.0")
        assert usage["installations"] == 1 and usage["reporters"][0]["organization"] == "delta"
        container_runtime.stop("cortex-hello")

        # A report the registry refuses (a bad token): a warning; the plugin runs all the same.
        r = world.cortex("plugin", "run", "acme/hello", **env, **{USAGE_ENV: "ctr_not-a-token"})
        assert r.exit_code == 0, r.output
        assert "warning: use of acme/hello@0.1.0 not reported" in r.stderr, r.stderr
        assert container_runtime.is_running("cortex-hello")
        assert world.usage("hello", "0.1.0")["installations"] == 1
    finally:
        container_runtime.stop("cortex-hello")
