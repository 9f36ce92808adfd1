"""Registry: hostile JSON (huge numbers, deep nesting, NaN) is a 422, never a 500 or a drop.

Through the app (every test on SQLite, and on PostgreSQL when it runs) and through a real
``cortex registry serve`` process (the connection must stay up and answer the error document).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from tests.registry.conftest import A_TXT_DIGEST, Registry, publish_body
from tests.registry.test_serve import _cortex, served  # noqa: F401 - the real-server fixture

HUGE_INT = "9" * 100_000
DEEP = "[" * 100_000 + "]" * 100_000


def _scan_report(extra: str) -> str:
    """A Trivy report bound to the test digest, with ``extra`` spliced in as a field value."""
    doc = {"SchemaVersion": 2, "ArtifactName": f"ghcr.io/acme/hello@{A_TXT_DIGEST}",
           "ArtifactType": "container_image",
           "Metadata": {"RepoDigests": [f"ghcr.io/acme/hello@{A_TXT_DIGEST}"]}, "Results": []}
    text = json.dumps(doc)
    return text[:-1] + f', "X": {extra}}}'


def _error(r: Any) -> dict[str, Any]:
    return json.loads(r.content)["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("extra", "needle"), [
    (HUGE_INT, "100000 digits"),
    (DEEP, "nested more than"),
    ("NaN", "NaN"),
    ("1e999", "out of range"),
])
def test_hostile_scan_report_is_a_422(registry: Registry, extra: str, needle: str) -> None:
    body = publish_body(scan_report=_scan_report(extra))
    r = registry.client.post("/api/v1/plugins", json=body, headers=registry.auth(registry.token()))
    assert r.status_code == 422, r.text
    err = _error(r)
    assert err["code"] == "EVIDENCE_INVALID" and needle in err["message"] and err["fix"]
    assert registry.client.get("/api/v1/plugins/acme/hello").status_code == 404


@pytest.mark.parametrize(("route", "body"), [
    ("/api/v1/plugins", f'{{"manifest": "x", "image": "y", "bundle": "zz", "n": {HUGE_INT}}}'),
    ("/api/v1/plugins", DEEP),
    ("/api/v1/plugins", '{"manifest": NaN}'),
    ("/api/v1/usage", f'{{"namespace": "acme", "name": "hello", "version": "1.0.0", '
                      f'"x": {HUGE_INT}}}'),
    ("/api/v1/plugins/acme/hello/versions/1.0.0/revoke", f'{{"reason": {DEEP}}}'),
    ("/api/v1/plugins", b'{"manifest": "\xff"}'),
])
def test_hostile_request_bodies_are_a_422(registry: Registry, route: str, body: str | bytes) -> None:
    r = registry.client.post(route, content=body,
                             headers={**registry.auth(registry.token(role="admin")),
                                      "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    err = _error(r)
    assert err["code"] == "INVALID_REQUEST" and "not acceptable JSON" in err["message"]
    assert "64" in err["fix"] and "Traceback" not in r.text


@pytest.mark.security_review
def test_a_long_namespace_can_publish_review_report_and_revoke(registry: Registry) -> None:
    """Actors are ``role:namespace:token_id``: with a 64-character namespace that is longer
    than 64 characters, which PostgreSQL refused (a 500 on every write of such a namespace)."""
    ns = "n" * 64
    token = registry.token(namespace=ns)
    r = registry.publish(token, namespace=ns)
    assert r.status_code == 201, r.text
    base = f"/api/v1/plugins/{ns}/hello/versions/1.0.0"
    r = registry.client.post(f"{base}/reviews", json={"status": "approved"},
                             headers=registry.auth(registry.token(namespace=ns, role="reviewer")))
    assert r.status_code == 200, r.text
    r = registry.client.post("/api/v1/usage", json={"namespace": ns, "name": "hello",
                                                    "version": "1.0.0", "digest": A_TXT_DIGEST},
                             headers=registry.auth(registry.token(namespace=ns,
                                                                  role="installation")))
    assert r.status_code == 200, r.text
    r = registry.client.post(f"{base}/revoke", json={"reason": "r"},
                             headers=registry.auth(token))
    assert r.status_code == 200, r.text
    assert registry.store.audit_verify() == []


@pytest.mark.security_review
@pytest.mark.parametrize("cursor", [2**31 - 1, 2**31, 2**62])
def test_revocation_cursor_beyond_the_id_range_is_no_500(registry: Registry,
                                                          cursor: int) -> None:
    """Revocation ids are 32-bit integers on PostgreSQL: a larger cursor made it fail (500)."""
    r = registry.client.get(f"/api/v1/revocations?cursor={cursor}")
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json() == {"items": [], "next_cursor": cursor}


def test_real_server_answers_422_and_keeps_the_connection(
        served: tuple[str, str, subprocess.Popen[bytes]]) -> None:  # noqa: F811
    url, db, proc = served
    r = _cortex("registry", "token", "create", "--namespace", "acme", "--role", "publisher",
                "--expires", "1d", "--db", db)
    assert r.returncode == 0, (r.stderr, r.exception)
    token = r.stdout.strip()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        for extra in (HUGE_INT, DEEP):
            r2 = client.post("/api/v1/plugins", json=publish_body(scan_report=_scan_report(extra)))
            assert r2.status_code == 422 and _error(r2)["code"] == "EVIDENCE_INVALID", r2.text
        r3 = client.post("/api/v1/plugins", content=DEEP,
                         headers={"Content-Type": "application/json"})
        assert r3.status_code == 422 and _error(r3)["code"] == "INVALID_REQUEST", r3.text
        assert client.get("/healthz").status_code == 200
    assert proc.poll() is None
