"""Real registries on loopback for the installer and federation tests.

:class:`RegistryServer` runs helper G's registry app (``registry.create_app``) under uvicorn in a
thread, on a socket bound to a free 127.0.0.1 port, with its own temporary SQLite database and
the test-only private Sigstore root as its trusted root. Tokens are made by the registry's own
store (what ``cortex registry token create`` does); publishing goes through the real
:class:`~cortex_trust.sources.RegistryClient`. A server can be stopped in the middle of
a test (``stop()``) to show that "down" is reported as down. :func:`installer` is the
library's installer over a :class:`Federation`.

``require_token`` wraps a registry so that *every* request needs a valid token of that
registry (a private deployment behind authentication): it checks the token with the
registry's own ``Store.authenticate``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.sigstore_mint import PrivateSigstore

SIGNER = "https://github.com/acme/plugins/.github/workflows/release.yml@refs/tags/v1"
ISSUER = "https://token.actions.githubusercontent.com"
OCI_HOST = "127.0.0.1:5000"
#: The CORTEX platform version the test installations are configured with (the test plugins
#: need 0.1.0 or later).
PLATFORM_VERSION = "0.1.0"

MANIFEST = """\
name: {name}
version: "{version}"
description: A test plugin called {name}.
author: "Ada Example <ada@example.org>"
license: Apache-2.0
runtime:
  type: docker
  image: {image}
capabilities:
{caps}
trust:
  min_cortex_version: "0.1.0"
  network: {network}
"""


def manifest_text(name: str, version: str, *, image: str | None = None, network: bool = False,
                  caps: tuple[tuple[str, str, str], ...] = (("greet", "GET", "/greet"),)) -> str:
    """A valid manifest (image defaults to the test OCI host, unpinned tag)."""
    lines = "\n".join(f"  - name: {n}\n    method: {m}\n    endpoint: {e}" for n, m, e in caps)
    return MANIFEST.format(name=name, version=version, caps=lines,
                           image=image or f"{OCI_HOST}/test/{name}:{version}",
                           network="true" if network else "false")


def fake_digest(*parts: str) -> str:
    """A deterministic sha256 digest standing in for an image that is never pulled."""
    return "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()


class _TokenGate:
    """ASGI wrapper: every request needs ``Authorization: Bearer <valid token of the registry>``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            ok = False
            if auth.lower().startswith("bearer "):
                try:
                    self.app.state.store.authenticate(auth[7:], now=datetime.now(UTC))
                    ok = True
                except Exception:  # any refusal of the token is a 401 here
                    ok = False
            if not ok:
                body = json.dumps({"error": {"code": "UNAUTHENTICATED",
                                             "message": "this registry needs a token",
                                             "fix": "send a token"}}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@dataclass
class RegistryServer:
    """One real registry app served on loopback."""

    name: str
    directory: Path
    evaluator: Any
    trust_root: Path
    private: bool = False
    oci_host: str = OCI_HOST
    app: Any = None
    url: str = ""
    _server: Any = None
    _thread: threading.Thread | None = None
    _port: int = 0
    _engine: Any = None
    published: dict[str, str] = field(default_factory=dict)
    #: Keep a signed index in ``index/www`` (keys in ``index/keys``) of the server's directory.
    index: bool = False

    def start(self) -> RegistryServer:
        import uvicorn

        from cortex_trust.evidence import load_trust_root
        from registry import RegistryConfig, create_app, make_engine, migrate

        if self.app is None:
            db = f"sqlite:///{self.directory / (self.name + '.db')}"
            self._engine = make_engine(db)
            migrate(self._engine)
            index: dict[str, Any] = {}
            if self.index:
                from registry._index import IndexRepository, KeyRing

                index = {"index_dir": self.directory / "index" / "www",
                         "index_keys": self.directory / "index" / "keys"}
                IndexRepository(index["index_dir"], KeyRing(index["index_keys"])).create(
                    bins=16, now=datetime.now(UTC))
            config = RegistryConfig(db_url=db, name=self.name,
                                    trusted_roots=(load_trust_root(self.trust_root,
                                                                   name="private"),),
                                    oci_registries=(self.oci_host,), **index)
            self.app = create_app(config, evaluator=self.evaluator, db=self._engine)
            if self.index:
                self.app.state.index_keeper.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self._port}"
        app = _TokenGate(self.app) if self.private else self.app
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                     lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"registry {self.name} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (the database stays; ``start()`` serves it again on the same port)."""
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(10)
            self._server = None

    def close(self) -> None:
        self.stop()
        if self.index and self.app is not None:
            self.app.state.index_keeper.stop()
        if self._engine is not None:
            self._engine.dispose()

    @property
    def store(self) -> Any:
        return self.app.state.store

    def token(self, namespace: str, role: str = "publisher") -> str:
        plaintext, _ = self.store.create_token(namespace=namespace, role=role,
                                               expires_in=timedelta(days=30),
                                               now=datetime.now(UTC))
        return str(plaintext)

    def client(self, token: str | None = None) -> Any:
        from cortex_trust.sources import RegistryClient

        return RegistryClient(self.url, token=token)

    def publish(self, sigstore: PrivateSigstore, namespace: str, name: str, version: str, *,
                network: bool = False, digest: str | None = None,
                caps: tuple[tuple[str, str, str], ...] = (("greet", "GET", "/greet"),),
                repository: str | None = None, token: str | None = None,
                manifest: str | None = None, identity: str = SIGNER) -> str:
        """Publish ``namespace/name@version`` (signed by ``identity`` through ``sigstore``);
        returns the digest.

        ``repository`` (``host/path``) is where the image lives; ``manifest`` replaces the
        generated manifest text."""
        digest = digest or fake_digest(self.name, namespace, name, version, secrets.token_hex(4))
        repo = repository or f"{self.oci_host}/{namespace}/{name}"
        bundle = sigstore.sign_digest(digest, identity=identity, issuer=ISSUER)
        tok = token or self.token(namespace)
        with self.client(tok) as c:
            c.publish(manifest=manifest or manifest_text(name, version, network=network, caps=caps),
                      image=f"{repo}@{digest}", bundle=bundle.decode(), namespace=namespace)
        self.published[f"{namespace}/{name}@{version}"] = digest
        return digest

    def revoke(self, namespace: str, name: str, version: str, reason: str = "compromised") -> None:
        with self.client(self.token(namespace)) as c:
            c.revoke(namespace, name, version, reason=reason)


@pytest.fixture(scope="session")
def registry_evaluator() -> Iterator[Any]:
    """One policy engine thread (default policies) shared by every test registry."""
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set
    from registry._reevaluate import ThreadEvaluator

    policy_set = load_policy_set()
    ev = ThreadEvaluator(lambda: EmbeddedEngine(policy_set))
    yield ev
    ev.close()


@pytest.fixture(scope="session")
def private_sigstore(tmp_path_factory: pytest.TempPathFactory) -> PrivateSigstore:
    """The test-only private Sigstore both registries and the installer trust."""
    return PrivateSigstore(tmp_path_factory.mktemp("sigstore"))


@dataclass
class Federation:
    """A public and a private registry, plus where the CLI keeps its files."""

    public: RegistryServer
    private: RegistryServer
    home: Path
    sigstore: PrivateSigstore
    reader_token: str

    @property
    def config_path(self) -> Path:
        return self.home / "config.json"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def write_config(self, *, private_token_env: str = "ACME_REGISTRY_TOKEN",
                     mirrors: tuple[str, ...] = (), scope: str = "acme/*") -> None:
        from cortex_trust.install import CortexConfig, RegistryEntry, save_config

        save_config(self.config_path, CortexConfig(
            registry=self.public.url, platform_version=PLATFORM_VERSION,
            registries=(RegistryEntry(name="acme", url=self.private.url, scopes=(scope,),
                                      token_env=private_token_env, mirrors=mirrors),)))

    def env(self, **extra: str) -> dict[str, str]:
        return {"CORTEX_CONFIG": str(self.config_path), "CORTEX_DATA_DIR": str(self.data_dir),
                "ACME_REGISTRY_TOKEN": self.reader_token, "DOCKER_HOST": "", **extra}


def installer(fed: Federation, *, policy_dirs: list[Path] | None = None,
              data: list[Path] | None = None, private_root: bool = True, **kw: Any) -> Any:
    """An :class:`~cortex_trust.install.Installer` over the federation's configuration and data
    directory, deciding with the default policies (plus ``policy_dirs`` and ``data``);
    ``private_root``: it trusts the test Sigstore too."""
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from cortex_trust.install import Installer, load_config
    from cortex_trust.policy import load_policy_set

    policy_set = load_policy_set(policy_dirs or [], data or [])
    roots = [production_trust_root()]
    if private_root:
        roots.append(load_trust_root(fed.sigstore.trusted_root_path))
    return Installer(config=load_config(fed.config_path), data_dir=fed.data_dir,
                     engine_factory=lambda: EmbeddedEngine(policy_set), trusted_roots=roots,
                     cortex_version="0.1.0", tokens={"acme": fed.reader_token}, **kw)


@pytest.fixture
def federation(tmp_path: Path, registry_evaluator: Any, private_sigstore: PrivateSigstore
               ) -> Iterator[Federation]:
    """A public registry and a private one (every request needs a token) on loopback."""
    public = RegistryServer("public", tmp_path, registry_evaluator,
                            private_sigstore.trusted_root_path).start()
    private = RegistryServer("acme-internal", tmp_path, registry_evaluator,
                             private_sigstore.trusted_root_path, private=True).start()
    reader = private.token("acme", role="installation")
    fed = Federation(public=public, private=private, home=tmp_path / "home",
                     sigstore=private_sigstore, reader_token=reader)
    fed.write_config()
    try:
        yield fed
    finally:
        public.close()
        private.close()
