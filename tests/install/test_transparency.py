"""`cortex plugin install` and the registry's transparency log, against real registries on
loopback (tests/support/federation.py) whose checkpoints are signed.

With ``transparency.require_inclusion`` (policy data) an install needs the version proven in
the log at a checkpoint signed by the configured key; a registry that shows this machine a
history that does not extend the one it showed before is refused whatever the data says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust.install import InstallStore
from cortex_trust.sources import NoteSigner, generate_note_key
from tests.support.federation import RegistryServer
from tests.support.sigstore_mint import PrivateSigstore

ORIGIN = "registry.test/audit"


def _signed_app(server: RegistryServer, key: NoteSigner | None, db_name: str) -> None:
    """Give ``server`` an app on its own database that signs checkpoints with ``key`` (none
    served without one)."""
    from cortex_trust.evidence import load_trust_root
    from registry import RegistryConfig, create_app, make_engine, migrate

    db = f"sqlite:///{server.directory / db_name}"
    engine = make_engine(db)
    migrate(engine)
    config = RegistryConfig(db_url=db, name=server.name, oci_registries=(server.oci_host,),
                            trusted_roots=(load_trust_root(server.trust_root, name="private"),),
                            log_signer=key)
    if server._engine is not None:
        server._engine.dispose()
    server._engine = engine
    server.app = create_app(config, evaluator=server.evaluator, db=engine)


class Home:
    def __init__(self, root: Path, registry: RegistryServer) -> None:
        self.root = root
        self.registry = registry
        self.required = root / "require-inclusion.yaml"
        root.mkdir(parents=True, exist_ok=True)
        self.required.write_text("cortex_config:\n  transparency:\n    require_inclusion: true\n")

    def configure(self, log_key: str | None) -> None:
        from cortex_trust.install import CortexConfig, save_config

        save_config(self.root / "config.json",
                    CortexConfig(registry=self.registry.url, registry_log_key=log_key))

    def install(self, name: str, *, required: bool = True) -> Any:
        args = ["plugin", "install", name, "--yes", "--format", "json"]
        if required:
            args += ["--data", str(self.required)]
        return CliRunner().invoke(app, args, catch_exceptions=False, env={
            "CORTEX_CONFIG": str(self.root / "config.json"),
            "CORTEX_DATA_DIR": str(self.root / "data"), "DOCKER_HOST": ""})

    def transparency(self, name: str) -> dict[str, Any]:
        """The transparency facts recorded with an installed plugin's input."""
        path = next((self.root / "data" / "inputs").glob(name.replace("/", "_") + ".json"))
        return dict(json.loads(path.read_text())["input"]["evidence"]["transparency"])

    def installed(self) -> list[str]:
        return sorted(r.name for r in InstallStore(self.root / "data").all())


@pytest.fixture
def signed_registry(tmp_path: Path, registry_evaluator: Any,
                    private_sigstore: PrivateSigstore) -> Any:
    key = generate_note_key(ORIGIN)
    server = RegistryServer("public", tmp_path, registry_evaluator,
                            private_sigstore.trusted_root_path)
    _signed_app(server, key, "first.db")
    server.start()
    try:
        yield server, key
    finally:
        server.close()


def _fork(server: RegistryServer, signer: NoteSigner | None, db_name: str) -> None:
    """The operator serves another history at the same URL: a new database, its checkpoints
    signed by ``signer`` (none served without one)."""
    server.stop()
    _signed_app(server, signer, db_name)
    server.start()


def _home_with_tool(signed_registry: tuple[RegistryServer, NoteSigner], sigstore: PrivateSigstore,
                    root: Path) -> Home:
    """A home that trusts the registry's log key, once ``acme/tool`` 1.0.0 is published."""
    server, key = signed_registry
    home = Home(root, server)
    home.configure(key.verifier.text)
    server.publish(sigstore, "acme", "tool", "1.0.0")
    return home


def test_required_inclusion_allows_a_logged_version_and_refuses_a_forked_log(
        signed_registry: tuple[RegistryServer, NoteSigner], private_sigstore: PrivateSigstore,
        tmp_path: Path) -> None:
    server, key = signed_registry
    home = _home_with_tool(signed_registry, private_sigstore, tmp_path / "home")
    first = home.install("acme/tool")
    assert first.exit_code == 0, first.output
    facts = home.transparency("acme/tool")
    assert facts["present"] is True and facts["included"] is True
    assert facts["consistent_with_seen"] is None  # nothing seen from this registry before
    assert facts["error"] is None
    seen_size = facts["checkpoint_size"]
    assert list((home.root / "data" / "checkpoints").glob("*.json"))

    # The log grows; the next install proves the new checkpoint extends the one kept.
    server.publish(private_sigstore, "acme", "other", "1.0.0")
    second = home.install("acme/other")
    assert second.exit_code == 0, second.output
    facts = home.transparency("acme/other")
    assert facts["consistent_with_seen"] is True and facts["seen_size"] == seen_size
    assert facts["checkpoint_size"] > seen_size

    # The operator (holding the key and a database) now serves another history at the same
    # URL, longer than what this machine saw: a fork, shown to this user.
    _fork(server, key, "forked.db")
    for i in range(12):
        server.token(f"filler-{i}")
    server.publish(private_sigstore, "acme", "third", "1.0.0")
    forked = home.install("acme/third")
    assert forked.exit_code == 1, forked.output
    assert "LOG_INCONSISTENT" in forked.stderr
    assert "could not prove that its log" in forked.stderr
    # Proven misbehaviour blocks even where inclusion is not required.
    assert home.install("acme/third", required=False).exit_code == 1
    assert home.installed() == ["acme/other", "acme/tool"]


def test_required_inclusion_refuses_what_cannot_be_proven(
        signed_registry: tuple[RegistryServer, NoteSigner], private_sigstore: PrivateSigstore,
        tmp_path: Path) -> None:
    server, _key = signed_registry
    home = Home(tmp_path / "home", server)
    server.publish(private_sigstore, "acme", "tool", "1.0.0")
    # No log key configured: nothing can be proven.
    home.configure(None)
    r = home.install("acme/tool")
    assert r.exit_code == 1 and "LOG_INCLUSION_MISSING" in r.stderr, r.output
    assert "no transparency-log key is configured" in r.stderr
    # A checkpoint signed by another key (a manipulated checkpoint) proves nothing either.
    home.configure(generate_note_key(ORIGIN).verifier.text)
    r = home.install("acme/tool")
    assert r.exit_code == 1 and "LOG_INCLUSION_MISSING" in r.stderr, r.output
    assert "does not verify with the configured log key" in r.stderr
    assert home.installed() == []
    # Without the requirement the same install goes ahead, the facts recorded.
    ok = home.install("acme/tool", required=False)
    assert ok.exit_code == 0, ok.output
    assert home.transparency("acme/tool")["present"] is False


def test_log_keys_in_the_configuration_are_validated(tmp_path: Path) -> None:
    key = generate_note_key(ORIGIN)
    env = {"CORTEX_CONFIG": str(tmp_path / "config.json")}

    def cortex(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    ok = cortex("config", "registries", "add", "acme", "https://registry.acme.example",
                "--scope", "acme/*", "--log-key", key.verifier.text)
    assert ok.exit_code == 0, ok.output
    assert cortex("config", "set", "registry-log-key", key.verifier.text).exit_code == 0
    listing = cortex("config", "list").stdout
    assert f"registry-log-key = {key.verifier.text}" in listing
    assert f"log-key={key.verifier.text}" in listing
    mangled = key.verifier.text[:-3] + "AAA"
    bad = cortex("config", "registries", "add", "evil", "https://registry.evil.example",
                 "--scope", "evil/*", "--log-key", mangled)
    assert bad.exit_code == 2 and "verifier key" in bad.output
    assert cortex("config", "set", "registry-log-key", "not-a-key").exit_code == 2
    assert cortex("config", "get", "registry-log-key").stdout.strip() == key.verifier.text


def test_a_registry_that_stops_signing_after_a_checkpoint_was_seen_is_inconsistent(
        signed_registry: tuple[RegistryServer, NoteSigner], private_sigstore: PrivateSigstore,
        tmp_path: Path) -> None:
    # A forked history that simply serves no (or no verifiable) checkpoint must not slip past
    # the comparison with the checkpoint this machine kept: no proof of extension, no install.
    server, _key = signed_registry
    home = _home_with_tool(signed_registry, private_sigstore, tmp_path / "home")
    assert home.install("acme/tool", required=False).exit_code == 0
    assert home.transparency("acme/tool")["present"] is True

    forks: list[tuple[str, NoteSigner | None]] = [("unsigned.db", None),
                                                  ("foreign.db", generate_note_key(ORIGIN))]
    for fork, signer in forks:
        _fork(server, signer, fork)
        server.publish(private_sigstore, "acme", "other", "1.0.0")
        r = home.install("acme/other", required=False)
        assert r.exit_code == 1, (fork, r.output)
        assert "LOG_INCONSISTENT" in r.stderr, (fork, r.stderr)
    assert home.installed() == ["acme/tool"]

