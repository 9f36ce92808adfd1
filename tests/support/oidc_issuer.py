"""A real OIDC issuer on loopback for the trusted-publishing tests.

It serves a discovery document (``/.well-known/openid-configuration``), a JWKS
(``/.well-known/jwks``) with real RSA and EC public keys, and a token service shaped like GitHub
Actions' (``/token?audience=...`` with ``Authorization: Bearer <request token>`` answers
``{"value": "<JWT>"}``). Tokens are signed with PyJWT and real private keys. The JWKS endpoint
can be made to misbehave (``slow``, ``huge``, ``redirect``) and its keys rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["REQUEST_TOKEN", "LocalIssuer", "hs256_with_public_key", "local_issuer", "unsigned"]

#: The request token the token service wants (GitHub's ACTIONS_ID_TOKEN_REQUEST_TOKEN).
REQUEST_TOKEN = "actions-request-token-for-tests"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Key:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


@dataclass
class LocalIssuer:
    """The issuer's URL, its keys (``published`` are in the JWKS) and the JWKS behaviour."""

    url: str = ""
    keys: dict[str, _Key] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    #: ``normal``, ``slow`` (answers after ``delay_s``), ``huge`` (10 MiB) or ``redirect``.
    jwks_mode: str = "normal"
    delay_s: float = 8.0
    jwks_requests: int = 0
    #: Claims the token service puts in the tokens it issues (GitHub Actions' names).
    actions_claims: dict[str, Any] = field(default_factory=dict)

    def add_key(self, kid: str, alg: str = "RS256", *, publish: bool = True, bits: int = 2048) -> str:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=bits) if alg == "RS256" \
            else ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = _Key(kid, alg, private)
        if publish:
            self.published.append(kid)
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.keys[k].jwk() for k in self.published]}

    def public_pem(self, kid: str) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.keys[kid].private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def claims(self, *, audience: str, **overrides: Any) -> dict[str, Any]:
        """GitHub Actions-shaped claims for acme/tool's release.yml in environment release."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "aud": audience, "jti": str(uuid.uuid4()), "iat": now, "nbf": now,
            "exp": now + 300, "sub": "repo:acme/tool:environment:release",
            "repository": "acme/tool", "repository_owner": "acme", "repository_id": "42",
            "workflow_ref": "acme/tool/.github/workflows/release.yml@refs/tags/v1",
            "job_workflow_ref": "acme/tool/.github/workflows/release.yml@refs/tags/v1",
            "ref": "refs/tags/v1", "sha": "0" * 40, "environment": "release",
            "event_name": "push", "run_id": "7", "run_attempt": "1", "actor": "ada",
            **self.actions_claims}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, *, audience: str, kid: str | None = None, **overrides: Any) -> str:
        """A token signed with key ``kid`` (default: the first key) over :meth:`claims`."""
        import jwt

        key = self.keys[kid or next(iter(self.keys))]
        return jwt.encode(self.claims(audience=audience, **overrides), key.private, algorithm=key.alg,
                          headers={"kid": key.kid})


def unsigned(claims: dict[str, Any], *, kid: str) -> str:
    """An ``alg: none`` token (no signature)."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any], *, kid: str, public_pem: bytes) -> str:
    """The key-confusion forgery: HS256 with the issuer's public key (PEM) as the HMAC secret."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@contextmanager
def local_issuer() -> Iterator[LocalIssuer]:
    """A :class:`LocalIssuer` with one RSA key (``rsa-1``) and one EC key (``ec-1``), served on
    a free loopback port until the block ends."""
    issuer = LocalIssuer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _json(self, doc: Any, status: int = 200) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path)
            if path.path == "/.well-known/openid-configuration":
                self._json({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks",
                            "response_types_supported": ["id_token"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
            elif path.path == "/.well-known/jwks":
                issuer.jwks_requests += 1
                self._jwks()
            elif path.path == "/token":
                if self.headers.get("Authorization") != f"Bearer {REQUEST_TOKEN}":
                    self._json({"message": "bad request token"}, 401)
                    return
                audience = parse_qs(path.query).get("audience", [""])[0]
                self._json({"value": issuer.mint(audience=audience)})
            else:
                self._json({"message": "not found"}, 404)

        def _jwks(self) -> None:
            if issuer.jwks_mode == "redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:9/jwks")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif issuer.jwks_mode == "huge":
                # Undeclared length: the reader must stop on its own.
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(b'{"keys": [' + b" " * (10 * 1024 * 1024) + b"]}")
                except OSError:
                    pass  # the registry stopped reading, as it should
                self.close_connection = True
            elif issuer.jwks_mode == "slow":
                time.sleep(issuer.delay_s)
                try:
                    self._json(issuer.jwks())
                except OSError:
                    pass
            else:
                self._json(issuer.jwks())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    issuer.add_key("rsa-1", "RS256")
    issuer.add_key("ec-1", "ES256")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
