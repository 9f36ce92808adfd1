"""`cortex registry serve --policy-engine opa --opa-url URL`: the registry's decisions come from
an OPA server (a REST front over the real OPA 1.20 engine loaded with a bundle built by
`cortex policy bundle build`), identical to the embedded engine's, with the bundle's revision as
each version's policy revision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.registry.conftest import POLICY_DIR, Clock, Registry
from tests.support.opa_wire_server import OpaWireServer


@pytest.fixture
def opa_registry(tmp_path: Path, trust_roots: tuple[Any, ...]) -> Iterator[tuple[Registry, str]]:
    from cli._registry_scan import engine_factory
    from cli.main import app as cli
    from registry import RegistryConfig, create_app, make_engine, migrate

    bundle = tmp_path / "bundle.tar.gz"
    built = CliRunner().invoke(cli, ["policy", "bundle", "build", str(POLICY_DIR), "--data",
                                     str(POLICY_DIR / "data.json"), "--no-defaults", "-o", str(bundle)])
    assert built.exit_code == 0, built.output
    revision = json.loads(_manifest(bundle))["revision"]
    other_db = f"sqlite:///{tmp_path / 'opa-registry.db'}"
    with OpaWireServer.from_bundle(bundle) as opa:
        engine = make_engine(other_db)
        migrate(engine)
        clock = Clock()
        config = RegistryConfig(db_url=other_db, trusted_roots=trust_roots, clock=clock,
                                oci_registries=("ghcr.io", "127.0.0.1:5000"))
        application = create_app(config, engine_factory=engine_factory(None, None, False, "opa", opa.url),
                                 db=engine)
        with TestClient(application, raise_server_exceptions=False) as client:
            yield Registry(client=client, app=application, clock=clock, db_url=other_db), revision
        application.state.evaluator.close()
        engine.dispose()


def _manifest(bundle: Path) -> bytes:
    import tarfile

    with tarfile.open(bundle, "r:gz") as tar:
        return tar.extractfile("/.manifest").read()  # type: ignore[union-attr]


def test_the_registry_decides_through_opa_as_with_the_embedded_engine(
        registry: Registry, opa_registry: tuple[Registry, str]) -> None:
    through_opa, revision = opa_registry
    for reg in (registry, through_opa):
        acme = reg.token()
        for name in ("tool-0", "tool-1"):
            assert reg.publish(acme, name=name).status_code == 201
        r = reg.client.post("/api/v1/plugins/acme/tool-1/versions/1.0.0/revoke",
                            json={"reason": "leaked key"}, headers=reg.auth(acme))
        assert r.status_code == 200, r.text
    for name in ("tool-0", "tool-1"):
        path = f"/api/v1/plugins/acme/{name}/versions/1.0.0"
        ours, theirs = registry.get(path)[1], through_opa.get(path)[1]
        assert theirs["policy_revision"] == revision == ours["policy_revision"]
        assert theirs["decision"] == ours["decision"]
        assert theirs["decision"]["action"] == ("block" if name == "tool-1" else "warn")
