"""`cortex registry serve` as a real process, driven by the CLI and the typed client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.registry.conftest import A_TXT_DIGEST, BEACON, FIXTURES, POLICY_DIR, manifest
from tests.support.served_registry import serve_registry


@dataclass
class _Result:
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None


def _cortex(*args: str, env: dict[str, str] | None = None) -> _Result:
    """Run a CLI command in this process (the server is the real separate process; starting
    more interpreters only costs time)."""
    from typer.testing import CliRunner

    from cli.main import app

    r = CliRunner().invoke(app, list(args), env=env)
    exc = r.exception if not isinstance(r.exception, SystemExit) else None
    return _Result(r.exit_code, r.stdout, r.stderr, exc)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    with serve_registry(tmp_path, "--no-default-policies", "--policy-dir", str(POLICY_DIR),
                        "--data", str(POLICY_DIR / "data.json"),
                        "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"),
                        "--allow-registry", "ghcr.io") as server:
        yield server.url, server.db, server.proc


def test_serve_publish_review_revoke_through_cli_and_client(
        served: tuple[str, str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    from cortex_trust.errors import RegistryUnavailable
    from cortex_trust.sources import RegistryClient, RegistryRequestError

    url, db, proc = served
    tokens = {}
    for role, ns in (("publisher", "acme"), ("reviewer", "cortex")):
        r = _cortex("registry", "token", "create", "--namespace", ns, "--role", role,
                    "--expires", "1d", "--db", db)
        assert r.returncode == 0, (r.stderr, r.exception)
        tokens[role] = r.stdout.strip()
        assert tokens[role].startswith("ctr_") and tokens[role] not in r.stderr

    (tmp_path / "manifest.yaml").write_text(manifest())
    image = f"ghcr.io/acme/hello@{A_TXT_DIGEST}"
    bundle = FIXTURES / "valid" / "prod-hashedrekord-v0.3.sigstore.json"
    r = _cortex("plugin", "publish", str(tmp_path / "manifest.yaml"), "--image", image,
                "--bundle", str(bundle), "--registry", url, "--token-env", "PUB_TOKEN",
                env={"PUB_TOKEN": tokens["publisher"]})
    assert r.returncode == 0, (r.stderr, r.exception)
    assert tokens["publisher"] not in r.stdout + r.stderr

    with RegistryClient(url) as client:
        version = client.get_version("acme", "hello", "1.0.0")
        assert version.digest == A_TXT_DIGEST and version.tier == "experimental"
        assert version.decision.tier == "experimental" and version.signer == {
            "identity": BEACON, "issuer": "https://token.actions.githubusercontent.com"}
        assert [p.full_name for p in client.iter_plugins(q="hello")] == ["acme/hello"]
        assert [p["full_name"] for p in client.search("greets")] == ["acme/hello"]
        assert client.get_bundle("acme", "hello", "1.0.0") == bundle.read_bytes()
        assert [v.version for v in client.list_versions("acme", "hello")] == ["1.0.0"]

    r = _cortex("plugin", "review", "approve", "acme/hello@1.0.0", "--note", "ok",
                "--registry", url, env={"CORTEX_REGISTRY_TOKEN": tokens["reviewer"]})
    assert r.returncode == 0, (r.stderr, r.exception)
    r = _cortex("plugin", "revoke", "acme/hello@1.0.0", "--reason", "compromised",
                "--registry", url, env={"CORTEX_REGISTRY_TOKEN": tokens["publisher"]})
    assert r.returncode == 0, (r.stderr, r.exception)

    with RegistryClient(url, token=tokens["publisher"]) as client:
        assert client.get_plugin("acme", "hello").tier == "untrusted"
        feed = client.revocations()
        assert [(e.name, e.reason) for e in feed.items] == [("hello", "compromised")]
        with pytest.raises(RegistryRequestError) as exc:
            client.publish(manifest=manifest(), image=image, bundle=bundle.read_text())
        assert exc.value.status == 409 and exc.value.code == "VERSION_EXISTS"
        assert tokens["publisher"] not in str(exc.value)

    r = _cortex("plugin", "revoke", "acme/hello@1.0.0", "--reason", "x", "--registry", url,
                env={"CORTEX_REGISTRY_TOKEN": "ctr_wrong"})
    # The registry's 401, rendered as an input error without the token.
    assert r.returncode == 2 and "the token is not one this registry issued" in r.stderr, r
    assert "ctr_wrong" not in r.stdout + r.stderr

    r = _cortex("registry", "audit", "verify", "--db", db)
    assert r.returncode == 0, (r.stderr, r.exception)

    proc.terminate()
    proc.wait(timeout=10)
    with RegistryClient(url, timeout=2) as client, pytest.raises(RegistryUnavailable):
        client.get_plugin("acme", "hello")
