"""The cross-namespace revocation attack, end to end: a real ``cortex registry serve`` process and
the ``cortex`` CLI as separate processes (exit codes and output as a user sees them).

1. acme publishes ``acme/hello@1.0.0`` (image digest D).
2. evil downloads acme's bundle (``GET .../bundle``) and publishes D as ``evil/clone``: 409,
   the image belongs to acme.
3. The end state the attack aimed at, forced the only way left (an admin places D in evil's
   namespace): evil revokes ``evil/clone@1.0.0``; the feed holds {evil, clone, 1.0.0, D}.
   acme can still publish D, ``cortex plugin install acme/hello@1.0.0`` is not refused as
   revoked, and ``sync`` finds nothing revoked.
4. evil's publisher token cannot revoke D everywhere (403); an admin can, and then ``sync``
   reports acme's installed plugin revoked and a new install is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.federation import ISSUER, OCI_HOST, SIGNER, fake_digest, manifest_text
from tests.support.served_registry import CORTEX, serve_registry
from tests.support.sigstore_mint import PrivateSigstore


@dataclass
class Served:
    url: str
    db: str
    home: Path
    root: Path

    def cortex(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the ``cortex`` console script as a user would, with this test's config and data
        directories (and no container engine)."""
        env = {**os.environ, "CORTEX_CONFIG": str(self.home / "config.json"),
               "CORTEX_DATA_DIR": str(self.home / "data"), "DOCKER_HOST": "",
               "CORTEX_REGISTRY_TOKEN": token or ""}
        return subprocess.run([CORTEX, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    def token(self, namespace: str, role: str) -> str:
        r = self.cortex("registry", "token", "create", "--namespace", namespace, "--role", role,
                        "--expires", "1d", "--db", self.db)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def publish(self, token: str, *, name: str, version: str, digest: str, bundle: Path,
                namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        manifest = self.home / f"{name}-{version}.yaml"
        manifest.write_text(manifest_text(name, version))
        ns = ["--namespace", namespace] if namespace else []
        return self.cortex("plugin", "publish", str(manifest), "--image",
                           f"{OCI_HOST}/{namespace or 'acme'}/{name}@{digest}",
                           "--bundle", str(bundle), "--registry", self.url, *ns, token=token)

    def feed(self) -> list[dict[str, object]]:
        items: list[dict[str, object]] = httpx.get(f"{self.url}/api/v1/revocations").json()["items"]
        return items


@pytest.fixture
def served(tmp_path: Path, private_sigstore: PrivateSigstore) -> Iterator[Served]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with serve_registry(tmp_path, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST) as server:
        (home / "config.json").write_text(json.dumps({"registry": server.url}))
        (home / "config.json").chmod(0o600)
        yield Served(url=server.url, db=server.db, home=home,
                     root=private_sigstore.trusted_root_path)


def test_a_namespace_cannot_get_another_namespaces_plugin_revoked(
        served: Served, private_sigstore: PrivateSigstore, tmp_path: Path) -> None:
    s = served
    acme, evil = s.token("acme", "publisher"), s.token("evil", "publisher")
    admin = s.token("cortex", "admin")
    digest = fake_digest("acme", "hello", "1.0.0")
    bundle = tmp_path / "hello.sigstore.json"
    bundle.write_bytes(private_sigstore.sign_digest(digest, identity=SIGNER, issuer=ISSUER))
    root = ["--trusted-root", str(s.root)]

    # 1. acme publishes its plugin.
    r = s.publish(acme, name="hello", version="1.0.0", digest=digest, bundle=bundle)
    assert r.returncode == 0, r.stderr

    # 2. evil takes acme's bundle from the registry and publishes acme's image as its own.
    stolen = tmp_path / "stolen.sigstore.json"
    stolen.write_bytes(httpx.get(f"{s.url}/api/v1/plugins/acme/hello/versions/1.0.0/bundle")
                       .content)
    r = s.publish(evil, name="clone", version="1.0.0", digest=digest, bundle=stolen,
                  namespace="evil")
    assert r.returncode == 2, r.stderr
    assert "belongs to namespace 'acme'" in r.stderr and "fix:" in r.stderr
    assert httpx.get(f"{s.url}/api/v1/plugins/evil/clone").status_code == 404

    # 3. The attack's end state, forced: the image under evil's name, revoked by evil.
    r = s.publish(admin, name="clone", version="1.0.0", digest=digest, bundle=stolen,
                  namespace="evil")
    assert r.returncode == 0, r.stderr
    r = s.cortex("plugin", "revoke", "evil/clone@1.0.0", "--reason", "gotcha",
                 "--registry", s.url, token=evil)
    assert r.returncode == 0, r.stderr
    assert [(e["kind"], e["namespace"], e["name"], e["version"], e["digest"])
            for e in s.feed()] == [("version", "evil", "clone", "1.0.0", digest)]
    # acme is not locked out of its own image.
    r = s.publish(acme, name="hello", version="1.0.1", digest=digest, bundle=bundle)
    assert r.returncode == 0, r.stderr
    # Installing acme's plugin is not refused as revoked (the default policy warns on
    # Experimental; --yes accepts that).
    r = s.cortex("plugin", "install", "acme/hello@1.0.0", "--yes", "--format", "json", *root)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["installed"] is True and doc["digest"] == digest
    assert "REVOKED" not in [x["code"] for x in doc["decision"]["reasons"]]
    r = s.cortex("plugin", "sync")
    assert r.returncode == 0, r.stderr
    assert "REVOKED" not in r.stdout

    # 4. Revoking an image everywhere is an admin act.
    r = s.cortex("plugin", "revoke", "--digest", digest, "--reason", "everywhere",
                 "--registry", s.url, token=evil)
    assert r.returncode == 2, r.stderr
    assert "a publisher token cannot do this" in r.stderr
    assert len(s.feed()) == 1
    r = s.cortex("plugin", "revoke", "--digest", digest, "--reason", "malware in the image",
                 "--registry", s.url, "--format", "json", token=admin)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["revoked"] == ["acme/hello@1.0.0", "evil/clone@1.0.0",
                                               "acme/hello@1.0.1"]
    r = s.cortex("plugin", "sync")
    assert r.returncode == 0, r.stderr
    assert f"REVOKED: acme/hello@1.0.0 ({digest[:19]}…)" in r.stdout  # text: the short digest
    r = s.cortex("plugin", "install", "acme/hello@1.0.1", "--yes", *root)
    assert r.returncode == 2 and "revoked" in r.stderr
    r = s.publish(acme, name="hello", version="1.0.2", digest=digest, bundle=bundle)
    assert r.returncode == 2 and "was revoked in this registry" in r.stderr
    r = s.cortex("registry", "audit", "verify", "--db", s.db)
    assert r.returncode == 0, r.stdout + r.stderr
