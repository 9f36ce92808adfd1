"""Trusted publishing end to end: a real ``cortex registry serve`` process, a real OIDC issuer on
loopback (discovery document, JWKS, RSA and EC keys, a GitHub-Actions-shaped token service), and
the real CLI (``cortex registry publisher ...``, ``cortex plugin publish --oidc``).

Every bad token of the issue's list is refused through the HTTP interface with its own code, and
through the CLI with exit 2 (a refusal) or 3 (the issuer could not be asked); nothing is written
when refused. The audit log records an exchange's claims and never the token.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.registry.test_publish_cli import OCI_HOST, Cli, Run, cli
from tests.support.oidc_issuer import REQUEST_TOKEN, LocalIssuer, hs256_with_public_key, local_issuer, unsigned
from tests.support.served_registry import ServedRegistry, serve_registry
from tests.support.sigstore_mint import PrivateSigstore

__all__ = ["cli"]  # the publishing CLI fixture, shared with test_publish_cli

AUD = "https://registry.test.invalid"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as i:
        yield i


_MODES = ("slow", "huge", "redirect")


@pytest.fixture(scope="module")
def flaky() -> Iterator[dict[str, LocalIssuer]]:
    """More accepted issuers, one per way its key endpoint misbehaves (each starts with a cold
    key cache in the registry)."""
    with local_issuer() as slow, local_issuer() as huge, local_issuer() as redirect:
        yield {"slow": slow, "huge": huge, "redirect": redirect}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, private_sigstore: PrivateSigstore,
           issuer: LocalIssuer, flaky: dict[str, LocalIssuer]) -> Iterator[ServedRegistry]:
    tmp = tmp_path_factory.mktemp("trusted-publishing")
    issuers = [x for i in (issuer, *flaky.values()) for x in ("--oidc-issuer", i.url)]
    with serve_registry(tmp, "--trusted-root", str(private_sigstore.trusted_root_path),
                        "--allow-registry", OCI_HOST, "--no-scan", *issuers, "--oidc-audience", AUD) as s:
        yield s


def _rows(served: ServedRegistry, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(served.db.removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def _written(served: ServedRegistry) -> tuple[int, int, int]:
    """Audit entries, tokens and remembered jtis: what a refusal must not change."""
    return (_rows(served, "SELECT COUNT(*) FROM audit_log")[0][0],
            _rows(served, "SELECT COUNT(*) FROM api_token")[0][0],
            _rows(served, "SELECT COUNT(*) FROM oidc_jti")[0][0])


def _exchange(served: ServedRegistry, token: str, **body: str) -> httpx.Response:
    return httpx.post(f"{served.url}/api/v1/oidc/exchange", json=body,
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _publish_oidc(cli: Cli, served: ServedRegistry, version: str, token: str | None, *extra: str,
                  tmp: Path) -> Run:
    f = cli.files(version)
    args = ["plugin", "publish", f["manifest"], "--image", f["image"], "--bundle", f["bundle"],
            "--registry", served.url, "--oidc", *extra]
    if token is not None:
        (tmp / "id-token").write_text(token + "\n")
        args += ["--oidc-token-file", str(tmp / "id-token")]
    return cli(*args)


@pytest.fixture(scope="module")
def acme_publisher(served: ServedRegistry, issuer: LocalIssuer, flaky: dict[str, LocalIssuer]) -> str:
    """acme trusts acme/tool's release.yml in environment release, from every issuer; returns
    the id of the publisher of the first."""
    from typer.testing import CliRunner

    from cli.main import app

    out = ""
    for url in (issuer.url, *(i.url for i in flaky.values())):
        r = CliRunner().invoke(app, ["registry", "publisher", "add", "acme", "--issuer", url, "--repository",
                                     "acme/tool", "--workflow", "release.yml", "--environment", "release",
                                     "--db", served.db])
        assert r.exit_code == 0, r.output
        out = out or r.stdout.strip()
    assert out.startswith("pub_")
    return out


def test_the_audience_is_served(served: ServedRegistry) -> None:
    r = httpx.get(f"{served.url}/api/v1/oidc/audience", timeout=5)
    assert r.status_code == 200 and r.json() == {"audience": AUD}


def test_publishing_from_github_actions_without_a_stored_token(
        served: ServedRegistry, issuer: LocalIssuer, acme_publisher: str, cli: Cli,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI asks GitHub Actions' token service (its two variables) for a token with the
    registry's audience, exchanges it, and publishes with the short-lived credential; the audit
    log records the claims, never the token."""
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{issuer.url}/token?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    r = _publish_oidc(cli, served, "1.0.0", None, tmp=tmp_path)
    assert r.code == 0, r.err
    assert r.out.startswith("published acme/tool@1.0.0 ")
    assert f"trusted publisher {acme_publisher}: credential tok_" in r.err
    assert "ctr_" not in r.err + r.out  # the credential is never printed

    (entry,) = _rows(served, "SELECT actor, action, after_json FROM audit_log WHERE action = 'token.oidc_exchange'")
    assert entry[0] == f"oidc:{acme_publisher}"
    import json

    after = json.loads(entry[2])
    assert after["claims"]["repository"] == "acme/tool" and after["claims"]["aud"] == AUD
    assert after["claims"]["workflow_ref"].startswith("acme/tool/.github/workflows/release.yml@")
    (published_by,) = _rows(served, "SELECT published_by FROM plugin_version WHERE version = '1.0.0'")
    assert published_by[0] == f"publisher:acme:{after['token_id']}"
    # Nothing in the database holds a JWT (three base64url segments starting with a JSON header).
    dump = "\n".join(str(row) for table in ("audit_log", "api_token", "oidc_jti")
                     for row in _rows(served, f"SELECT * FROM {table}"))
    assert "eyJ" not in dump


def test_a_token_file_publishes_once_and_its_replay_is_refused(
        served: ServedRegistry, issuer: LocalIssuer, acme_publisher: str, cli: Cli, tmp_path: Path) -> None:
    token = issuer.mint(audience=AUD, kid="ec-1")  # ES256
    r = _publish_oidc(cli, served, "1.1.0", token, tmp=tmp_path)
    assert r.code == 0, r.err
    before = _written(served)
    r = _publish_oidc(cli, served, "1.2.0", token, tmp=tmp_path)
    assert r.code == 2 and "already exchanged" in r.err and "fix:" in r.err
    assert _exchange(served, token).json()["error"]["code"] == "OIDC_REPLAYED"
    assert _written(served) == before
    assert httpx.get(f"{served.url}/api/v1/plugins/acme/tool/versions/1.2.0").status_code == 404


def _bad_tokens(issuer: LocalIssuer) -> dict[str, tuple[str, int, str, str]]:
    """name -> (token, HTTP status, code, what the CLI says)."""
    now = int(time.time())
    claims = issuer.claims(audience=AUD)
    if "rogue" not in issuer.keys:
        issuer.add_key("rogue", publish=False)
    return {
        "expired": (issuer.mint(audience=AUD, exp=now - 600, iat=now - 900, nbf=now - 900),
                    401, "OIDC_EXPIRED", "has expired"),
        "not yet valid": (issuer.mint(audience=AUD, nbf=now + 900, iat=now), 401, "OIDC_NOT_YET_VALID",
                          "not valid yet"),
        "wrong audience": (issuer.mint(audience="https://another-registry.invalid"), 401,
                           "OIDC_WRONG_AUDIENCE", "another audience"),
        "wrong issuer": (issuer.mint(audience=AUD, iss="https://token.actions.githubusercontent.com"), 401,
                         "OIDC_ISSUER_NOT_ALLOWED", "does not accept identity tokens from"),
        "alg none": (unsigned(claims, kid="rsa-1"), 401, "OIDC_ALGORITHM", "'none' are not accepted"),
        "unknown key": (issuer.mint(audience=AUD, kid="rogue"), 401, "OIDC_UNKNOWN_KEY", "publishes no key"),
        "hs256 key confusion": (hs256_with_public_key(claims, kid="rsa-1", public_pem=issuer.public_pem("rsa-1")),
                                401, "OIDC_ALGORITHM", "'HS256' are not accepted"),
        "another repository": (issuer.mint(audience=AUD, repository="acme/other",
                                           workflow_ref="acme/other/.github/workflows/release.yml@refs/tags/v1"),
                               403, "OIDC_NO_PUBLISHER", "is not a trusted publisher"),
        "another workflow": (issuer.mint(audience=AUD, workflow_ref="acme/tool/.github/workflows/ci.yml@refs/heads/x"),
                             403, "OIDC_NO_PUBLISHER", "is not a trusted publisher"),
        "another environment": (issuer.mint(audience=AUD, environment="staging"), 403, "OIDC_NO_PUBLISHER",
                                "is not a trusted publisher"),
    }


@pytest.mark.parametrize("name", ["expired", "not yet valid", "wrong audience", "wrong issuer", "alg none",
                                  "unknown key", "hs256 key confusion", "another repository",
                                  "another workflow", "another environment"])
def test_each_bad_token_is_refused_and_nothing_is_written(
        served: ServedRegistry, issuer: LocalIssuer, acme_publisher: str, cli: Cli, tmp_path: Path,
        name: str) -> None:
    token, status, code, said = _bad_tokens(issuer)[name]
    before = _written(served)
    r = _exchange(served, token)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert r.json()["error"]["fix"]
    run = _publish_oidc(cli, served, "9.0.0", token, tmp=tmp_path)
    assert run.code == 2 and said in run.err, run.err
    assert _written(served) == before
    assert httpx.get(f"{served.url}/api/v1/plugins/acme/tool/versions/9.0.0").status_code == 404


def test_a_publisher_of_another_namespace_cannot_publish_here(
        served: ServedRegistry, issuer: LocalIssuer, acme_publisher: str, cli: Cli, tmp_path: Path) -> None:
    """initech trusts initech/tool's deploy.yml; its token names acme: refused, and its own
    credential cannot publish to acme either."""
    r = cli("registry", "publisher", "add", "initech", "--issuer", issuer.url, "--repository", "initech/tool",
            "--workflow", "deploy.yml", "--db", served.db)
    assert r.code == 0, r.err
    theirs = {"repository": "initech/tool", "workflow_ref": "initech/tool/.github/workflows/deploy.yml@refs/heads/main"}
    before = _written(served)
    r = _exchange(served, issuer.mint(audience=AUD, **theirs), namespace="acme")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "OIDC_NO_PUBLISHER")
    run = _publish_oidc(cli, served, "9.1.0", issuer.mint(audience=AUD, **theirs), "--namespace", "acme",
                        tmp=tmp_path)
    assert run.code == 2 and "is not a trusted publisher for namespace 'acme'" in run.err
    assert _written(served) == before
    credential = _exchange(served, issuer.mint(audience=AUD, **theirs)).json()
    assert credential["namespace"] == "initech"
    f = cli.files("9.2.0")
    r2 = httpx.post(f"{served.url}/api/v1/plugins", timeout=30,
                    headers={"Authorization": f"Bearer {credential['token']}"},
                    json={"namespace": "acme", "manifest": Path(f["manifest"]).read_text(),
                          "image": f["image"], "bundle": Path(f["bundle"]).read_text()})
    assert (r2.status_code, r2.json()["error"]["code"]) == (403, "NAMESPACE_FORBIDDEN")


@pytest.mark.parametrize("mode", _MODES)
def test_a_misbehaving_key_endpoint_refuses_the_publish(
        served: ServedRegistry, flaky: dict[str, LocalIssuer], acme_publisher: str, cli: Cli, tmp_path: Path,
        mode: str) -> None:
    """The registry gives up on a slow, huge or redirecting JWKS (503, exit 3: could not check),
    records nothing, and works again once the issuer does."""
    bad = flaky[mode]
    bad.jwks_mode, bad.delay_s = mode, 8.0
    try:
        before = _written(served)
        started = time.monotonic()
        r = _exchange(served, bad.mint(audience=AUD))
        assert (r.status_code, r.json()["error"]["code"]) == (503, "OIDC_ISSUER_UNAVAILABLE"), r.text
        assert time.monotonic() - started < 7.5
        run = _publish_oidc(cli, served, "9.3.0", bad.mint(audience=AUD), tmp=tmp_path)
        assert run.code == 3 and "cannot get the signing keys" in run.err, run.err
        assert _written(served) == before
    finally:
        bad.jwks_mode = "normal"
    assert _exchange(served, bad.mint(audience=AUD)).status_code == 200


def test_a_trusted_publishing_only_namespace_refuses_registry_tokens(
        served: ServedRegistry, issuer: LocalIssuer, acme_publisher: str, cli: Cli, tmp_path: Path) -> None:
    token = cli.token(served, "acme", "publisher")
    r = cli("registry", "publisher", "mode", "acme", "--trusted-only", "--db", served.db)
    assert r.code == 0 and "only from trusted publishers" in r.err, r.err
    try:
        f = cli.files("2.0.0")
        r = cli("plugin", "publish", f["manifest"], "--image", f["image"], "--bundle", f["bundle"],
                "--registry", served.url, token=token)
        assert r.code == 2 and "accepts publishes only from its trusted publishers" in r.err
        assert _publish_oidc(cli, served, "2.0.0", issuer.mint(audience=AUD), tmp=tmp_path).code == 0
        # The issued credential publishes and does nothing else.
        credential = _exchange(served, issuer.mint(audience=AUD)).json()["token"]
        r = cli("plugin", "yank", "acme/tool@2.0.0", "--reason", "x", "--registry", served.url, token=credential)
        assert r.code == 2 and "can only publish" in r.err
        # The long-lived token still does what is not a publish.
        r = cli("plugin", "yank", "acme/tool@2.0.0", "--reason", "bad build", "--registry", served.url, token=token)
        assert r.code == 0, r.err
    finally:
        assert cli("registry", "publisher", "mode", "acme", "--tokens-allowed", "--db", served.db).code == 0


def test_publisher_list_and_remove(served: ServedRegistry, issuer: LocalIssuer, cli: Cli) -> None:
    r = cli("registry", "publisher", "add", "globex", "--issuer", issuer.url, "--repository", "globex/app",
            "--workflow", "publish.yaml", "--db", served.db)
    assert r.code == 0, r.err
    pub = r.out.strip()
    r = cli("registry", "publisher", "add", "globex", "--issuer", issuer.url, "--repository", "Globex/App",
            "--workflow", "publish.yaml", "--db", served.db)
    assert r.code == 2 and "already trusts" in r.err
    r = cli("registry", "publisher", "list", "--namespace", "globex", "--db", served.db)
    assert r.code == 0 and pub in r.out and "globex/app" in r.out and "(any)" in r.out
    globex = {"repository": "globex/app", "workflow_ref": "globex/app/.github/workflows/publish.yaml@refs/heads/main"}
    credential = _exchange(served, issuer.mint(audience=AUD, **globex)).json()
    r = cli("registry", "token", "list", "--namespace", "globex", "--format", "json", "--db", served.db)
    import json

    assert [t["publisher_id"] for t in json.loads(r.out)] == [pub]
    r = cli("registry", "publisher", "remove", pub, "--db", served.db)
    assert r.code == 0, r.err
    # Removing the publisher revoked what it had been issued, and its tokens are no longer exchanged.
    assert httpx.post(f"{served.url}/api/v1/plugins/globex/x/versions/1/yank", json={"reason": "x"},
                      headers={"Authorization": f"Bearer {credential['token']}"}).json()["error"]["code"] \
        == "TOKEN_REVOKED"
    assert _exchange(served, issuer.mint(audience=AUD, **globex)).json()["error"]["code"] == "OIDC_NO_PUBLISHER"
    assert cli("registry", "publisher", "remove", pub, "--db", served.db).code == 2
    r = cli("registry", "publisher", "add", "globex", "--issuer", "http://issuer.example", "--repository",
            "globex/app", "--workflow", "../x.yml", "--db", served.db)
    assert r.code == 2 and "http is accepted only for a loopback issuer" in r.err and "workflow" in r.err
    assert cli("registry", "audit", "verify", "--db", served.db).code == 0


def test_publish_oidc_outside_a_ci_says_what_is_missing(served: ServedRegistry, cli: Cli,
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("CORTEX_OIDC_TOKEN_FILE", raising=False)
    r = _publish_oidc(cli, served, "9.9.0", None, tmp=tmp_path)
    assert r.code == 2 and "ACTIONS_ID_TOKEN_REQUEST_URL" in r.err and "id-token: write" in r.err
