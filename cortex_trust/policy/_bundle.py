"""A policy set as an OPA bundle (``bundle.tar.gz``) that an OPA server loads and decides with.

The archive holds what an engine is loaded with, and nothing else:

* ``/.manifest``: ``revision`` (the policy set's revision unless another is given), ``roots``
  (the first segment of every module's package and every top-level data key: the paths the bundle
  owns) and ``rego_version`` 1;
* ``/data.json``: the merged data document at the root of ``data``;
* every module but tests at its module name (``/cortex/decision.rego``...), byte for byte;
* ``/.signatures.json`` when a signing key is given: one compact JWS (RS256, ES256 or HS256,
  made by PyJWT)
  whose payload lists every other file with its SHA-256 hash, as OPA verifies it
  (``opa run --verification-key``): JSON files hashed over their canonical form (keys sorted,
  no whitespace, Go's string escapes), modules over their bytes.

JSON files are written in that canonical form, so their bytes are what is hashed. The archive is
reproducible: entries sorted, owner 0, mode 0644, time 0.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from typing import Any

from ..errors import PolicyError
from ._sets import PolicySet

__all__ = ["BUNDLE_SIGNING_ALGORITHMS", "build_bundle", "bundle_roots", "opa_json"]

#: The JWS algorithms :func:`build_bundle` signs with (OPA verifies each).
BUNDLE_SIGNING_ALGORITHMS = ("RS256", "ES256", "HS256")

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_GO_ESCAPES = re.compile('["\\\\\x00-\x1f\u2028\u2029]')
_GO_NAMED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_string(s: str) -> str:
    return '"' + _GO_ESCAPES.sub(lambda m: _GO_NAMED.get(m.group()) or f"\\u{ord(m.group()):04x}", s) + '"'


def opa_json(value: Any) -> str:
    """``value`` as the canonical JSON OPA hashes a bundle's JSON file over: object keys sorted,
    no whitespace, strings escaped as Go's encoder does without HTML escaping."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_go_string(str(k))}:{opa_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(opa_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_string(value)
    return json.dumps(value, allow_nan=False)


def bundle_roots(policy_set: PolicySet) -> list[str]:
    """The bundle's roots: the first segment of every non-test module's package and every
    top-level data key, sorted. Raises :class:`PolicyError` for a module without a package."""
    roots = set(policy_set.data)
    for m in policy_set.modules:
        if m.is_test:
            continue
        found = _PACKAGE.search(_without_comments(m.text))
        if found is None:
            raise PolicyError(f"{m.name}: no package declaration", advice="start the module with `package NAME`")
        roots.add(found.group(1))
    return sorted(roots)


def _without_comments(text: str) -> str:
    return re.sub(r"#[^\n]*", "", text)


def build_bundle(policy_set: PolicySet, *, revision: str | None = None, signing_key: bytes | None = None,
                 signing_alg: str = "RS256", key_id: str | None = None, scope: str | None = None) -> bytes:
    """The gzipped tar of ``policy_set`` as an OPA bundle (see the module docstring).

    ``signing_key`` is a PEM private key (RSA for RS256, EC P-256 for ES256) or the HMAC secret
    (HS256); with it the bundle carries ``.signatures.json``, its JWS header names ``key_id``
    (``kid``) and its payload ``scope`` when given. Raises :class:`PolicyError` for a key that
    does not fit ``signing_alg`` or an unknown algorithm.
    """
    manifest = {"revision": policy_set.revision if revision is None else revision,
                "roots": bundle_roots(policy_set), "rego_version": 1}
    files: list[tuple[str, bytes]] = [(".manifest", opa_json(manifest).encode()),
                                      ("data.json", opa_json(policy_set.data).encode())]
    files += sorted((m.name, m.text.encode()) for m in policy_set.modules if not m.is_test)
    if signing_key is not None:
        signatures = {"signatures": [_sign(files, signing_key, signing_alg, key_id, scope)]}
        files.append((".signatures.json", opa_json(signatures).encode()))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files:
            info = tarfile.TarInfo("/" + name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def _sign(files: list[tuple[str, bytes]], key: bytes, alg: str, key_id: str | None,
          scope: str | None) -> str:
    """The compact JWS over the files' hashes (OPA's bundle signature format), made by PyJWT."""
    import jwt

    if alg not in BUNDLE_SIGNING_ALGORITHMS:
        raise PolicyError(f"unknown signing algorithm {alg!r}", advice="use " + ", ".join(BUNDLE_SIGNING_ALGORITHMS))
    payload: dict[str, Any] = {"files": [{"name": name, "hash": hashlib.sha256(content).hexdigest(),
                                          "algorithm": "SHA-256"} for name, content in files]}
    if key_id:
        payload["keyid"] = key_id
    if scope:
        payload["scope"] = scope
    signing_key: Any = key if alg == "HS256" else _private_key(key, alg)
    return jwt.encode(payload, signing_key, algorithm=alg, headers={"kid": key_id} if key_id else None)


def _private_key(pem: bytes, alg: str) -> Any:
    """The PEM private key for ``alg`` (RSA for RS256, EC P-256 for ES256)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise PolicyError(f"the signing key is not an unencrypted PEM private key: {e}",
                          advice="pass a PEM file (openssl genpkey ...) without a passphrase") from None
    if (alg == "RS256" and isinstance(private, rsa.RSAPrivateKey)) or (
            alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey)
            and isinstance(private.curve, ec.SECP256R1)):
        return private
    raise PolicyError(f"the signing key is not a key for {alg}",
                      advice="RS256 needs an RSA key, ES256 an EC P-256 key, HS256 a secret")
