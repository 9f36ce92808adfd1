"""Fixtures for the registry tests: a real app on a real database, real Sigstore bundles.

The ``db_url`` fixture is parametrised: SQLite (a temp file) always, and PostgreSQL when
``CORTEX_TEST_PG_URL`` points to a server (``scripts/postgres.sh`` starts one); every test that
uses the app runs on both.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cortex_trust.policy import load_policy_set
from tests.registry._helpers import migrator

HERE = Path(__file__).parent
FIXTURES = HERE.parent / "fixtures" / "sigstore"
POLICY_DIR = HERE / "policy"

#: The artifact signed by the prod-hashedrekord/dsse fixtures (a.txt) stands in for an image.
A_TXT_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
#: The wheel signed by prod-gha-rfc8785-0.1.2.whl (another valid production signature).
WHEEL_DIGEST = "sha256:c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"
BEACON = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
          ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
GHA = "https://token.actions.githubusercontent.com"

BUNDLE_A = (FIXTURES / "valid" / "prod-hashedrekord-v0.3.sigstore.json").read_text()
BUNDLE_WHEEL = (FIXTURES / "valid" / "prod-gha-rfc8785-0.1.2.whl.sigstore.json").read_text()
BUNDLE_BAD = (FIXTURES / "invalid" / "prod-signature-mismatch.sigstore.json").read_text()

MANIFEST = """\
name: {name}
version: "{version}"
description: {description}
author: "Ada Example <ada@example.org>"
license: Apache-2.0
runtime:
  type: docker
  image: ghcr.io/acme/{name}:{version}
capabilities:
  - name: greet
    endpoint: /greet
    method: GET
  - name: {capability}
    endpoint: /other
    method: POST
trust:
  min_cortex_version: "0.1.0"
"""


def manifest(name: str = "hello", version: str = "1.0.0", *,
             description: str = "Greets whoever asks.", capability: str = "echo") -> str:
    return MANIFEST.format(name=name, version=version, description=description,
                           capability=capability)


def publish_body(name: str = "hello", version: str = "1.0.0", *, digest: str = A_TXT_DIGEST,
                 bundle: str = BUNDLE_A, namespace: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "manifest": manifest(name, version, **{k: extra.pop(k) for k in
                                                ("description", "capability") if k in extra}),
        "image": f"ghcr.io/acme/{name}@{digest}",
        "bundle": bundle,
        **extra,
    }
    if namespace is not None:
        body["namespace"] = namespace
    return body


def make_policy_engine(policy_dir: Path = POLICY_DIR) -> Any:
    policy_set = load_policy_set([policy_dir], [policy_dir / "data.json"], defaults=False)
    from cortex_trust.engine import EmbeddedEngine

    return EmbeddedEngine(policy_set)


def migration_steps(db_url: str) -> tuple[Any, Callable[[str, str], None]]:
    """An engine on ``db_url`` and its :func:`tests.registry._helpers.migrator`. The caller
    disposes of the engine."""
    from registry import make_engine

    engine = make_engine(db_url)
    return engine, migrator(engine)


@pytest.fixture(scope="session")
def evaluator() -> Iterator[Any]:
    """One engine on its own thread for the whole session (starting one costs ~1 s)."""
    from registry._reevaluate import ThreadEvaluator

    ev = ThreadEvaluator(make_policy_engine)
    yield ev
    ev.close()


@pytest.fixture(scope="session")
def trust_roots() -> tuple[Any, ...]:
    from cortex_trust.evidence import load_trust_root

    return (load_trust_root(FIXTURES / "trusted_roots" / "production.json", name="production"),)


def _pg_params() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if os.environ.get("CORTEX_TEST_PG_URL"):
        params.append(pytest.param("postgresql", marks=pytest.mark.slow))
    return params


def pg_only() -> list[Any]:
    """Parameters for ``db_url`` (indirect) of a test that only means something on PostgreSQL.

    CI (``./dev test``) always starts PostgreSQL, so these tests always run there."""
    return [p for p in _pg_params() if p != "sqlite"]


def _fresh_pg(url: str) -> str:
    """A new, empty database on the test server (dropped at the end by the caller)."""
    import psycopg

    name = "cortex_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _drop_pg(url: str, db_url: str) -> None:
    import psycopg

    name = db_url.rpartition("/")[2]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=_pg_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    server = os.environ["CORTEX_TEST_PG_URL"]
    url = _fresh_pg(server)
    try:
        yield url
    finally:
        _drop_pg(server, url)


@dataclass
class Clock:
    """A settable clock: the registry reads it once per operation."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Registry:
    """A running app (TestClient) plus ways to mint tokens, for tests."""

    client: TestClient
    app: Any
    clock: Clock
    db_url: str

    @property
    def store(self) -> Any:
        return self.app.state.store

    def token(self, namespace: str = "acme", role: str = "publisher",
              expires: timedelta = timedelta(days=90), holder: str | None = None) -> str:
        plaintext, _ = self.store.create_token(namespace=namespace, role=role, holder=holder,
                                               expires_in=expires, now=self.clock())
        return str(plaintext)

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def publish(self, token: str, **kw: Any) -> Any:
        return self.client.post("/api/v1/plugins", json=publish_body(**kw),
                                headers=self.auth(token))

    def get(self, path: str) -> Any:
        r = self.client.get(path)
        return r.status_code, json.loads(r.content)


@pytest.fixture
def registry(db_url: str, evaluator: Any, trust_roots: tuple[Any, ...]) -> Iterator[Registry]:
    with registry_on(db_url, evaluator, trust_roots) as served:
        yield served


@contextmanager
def registry_on(db_url: str, evaluator: Any, trust_roots: tuple[Any, ...]) -> Iterator[Registry]:
    """A registry app on ``db_url`` (migrated here) deciding with ``evaluator``."""
    from registry import RegistryConfig, create_app, make_engine, migrate

    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    config = RegistryConfig(db_url=db_url, trusted_roots=trust_roots, clock=clock,
                            oci_registries=("ghcr.io", "127.0.0.1:5000"))
    app = create_app(config, evaluator=evaluator, db=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Registry(client=client, app=app, clock=clock, db_url=db_url)
    engine.dispose()
