"""A test-only private Sigstore: mint real, offline-verifiable bundles over image digests.

Everything a Sigstore instance contributes to a bundle is made here with fresh keys, and the
public halves are written into a ``trusted_root.json`` that sigstore-python (4.5.1) accepts:

* a Fulcio-like CA: a self-signed ECDSA P-384 root issuing short-lived (10 minute) leaf
  certificates with the signer identity as SAN (URI or email), the OIDC issuer extensions
  (``1.3.6.1.4.1.57264.1.1`` raw and ``…1.8`` UTF8String) and, when asked, the GitHub claims
  (legacy ``…1.2/.3/.5/.6`` and V2 ``…1.12/.13/.14/.20``);
* a CT log key: the leaf carries one embedded SCT (RFC 6962, ``precert_entry``) signed over
  the precertificate TBS (the leaf's TBS without the SCT extension) and the CA key hash;
* a Rekor-v1-like transparency log key: each bundle's entry is the only leaf of a one-entry
  log (inclusion proof with no hashes, root = leaf hash), with a signed checkpoint note and a
  signed entry timestamp (SET) over the RFC 8785 canonical JSON of body, integrated time, log
  ID and index.

Such bundles verify only against this instance's root, never against the production root:
that is what tests of the verification path rely on. NOT FOR PRODUCTION: the keys live in
memory and in the test's temporary directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["GITHUB_ACTIONS_ISSUER", "MintedBundle", "PrivateSigstore"]

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
_SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
_OID = "1.3.6.1.4.1.57264.1."
#: GitHub claim -> (legacy OID raw bytes, V2 OID DER UTF8String, how V2 renders the value)
def _same(value: str) -> str:
    return value


def _github_url(value: str) -> str:
    return "https://github.com/" + value


_GITHUB_OIDS: dict[str, tuple[str, str, Callable[[str], str]]] = {
    "trigger": (_OID + "2", _OID + "20", _same),
    "sha": (_OID + "3", _OID + "13", _same),
    "repository": (_OID + "5", _OID + "12", _github_url),
    "workflow_ref": (_OID + "6", _OID + "14", _same),
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_utf8(value: str) -> bytes:
    """DER ``UTF8String`` (how Fulcio encodes V2 extension values)."""
    raw = value.encode()
    return b"\x0c" + _der_length(len(raw)) + raw


def _der_octet_string(raw: bytes) -> bytes:
    return b"\x04" + _der_length(len(raw)) + raw


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MintedBundle:
    """A minted bundle and the pieces tests may want to inspect or tamper with."""

    bundle: bytes
    certificate: x509.Certificate
    integrated_time: datetime


class PrivateSigstore:
    """A private Sigstore instance whose trusted root is ``trusted_root_path``.

    ``now`` fixes the instance's clock (signing time of every bundle); it defaults to the
    current time. The root's keys are marked valid from a day before ``now``.
    """

    def __init__(self, directory: Path, *, now: datetime | None = None,
                 origin: str = "rekor.private.test") -> None:
        self.now = (now or datetime.now(UTC)).replace(microsecond=0)
        self.origin = origin
        self._ca_key = ec.generate_private_key(ec.SECP384R1())
        self._ct_key = ec.generate_private_key(ec.SECP256R1())
        self._log_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cortex-trust tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, "private-fulcio"),
        ])
        self._ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - timedelta(days=1))
            .not_valid_after(self.now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._ca_key.public_key()),
                           critical=False)
            .sign(self._ca_key, hashes.SHA384())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.trusted_root_path = directory / "trusted_root.json"
        self.trusted_root_path.write_text(json.dumps(self.trusted_root_document(), indent=1))

    # --- the trusted root ----------------------------------------------------------------

    def trusted_root_document(self) -> dict[str, Any]:
        """The instance's ``trusted_root.json`` (media type trustedroot 0.1)."""
        start = _rfc3339(self.now - timedelta(days=1))

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(_spki(key.public_key())),
                              "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": start}},
                "logId": {"keyId": _b64(_key_id(key.public_key()))},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(f"https://{self.origin}", self._log_key)],
            "certificateAuthorities": [{
                "subject": {"organization": "cortex-trust tests", "commonName": "private-fulcio"},
                "uri": "https://fulcio.private.test",
                "certChain": {"certificates": [
                    {"rawBytes": _b64(self._ca_cert.public_bytes(serialization.Encoding.DER))}
                ]},
                "validFor": {"start": start},
            }],
            "ctlogs": [log("https://ctlog.private.test", self._ct_key)],
            "timestampAuthorities": [],
        }

    # --- Fulcio --------------------------------------------------------------------------

    def issue_certificate(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        identity: str,
        issuer: str,
        github: dict[str, str] | None = None,
        raw_extensions: dict[str, bytes] | None = None,
        not_before: datetime | None = None,
        with_sct: bool = True,
        sans: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        """A Fulcio-like leaf certificate with an embedded SCT from this instance's CT log.

        ``raw_extensions`` (dotted OID -> extension value bytes) are added or replace the
        standard claims, to build certificates with unusual or conflicting claims; ``sans``
        replaces the subject alternative names derived from ``identity``.
        """
        start = not_before or self.now - timedelta(seconds=30)
        san: x509.GeneralName
        if "@" in identity and "://" not in identity:
            san = x509.RFC822Name(identity)
        else:
            san = x509.UniformResourceIdentifier(identity)
        claims: dict[str, bytes] = {_OID + "1": issuer.encode(), _OID + "8": der_utf8(issuer)}
        for key, value in (github or {}).items():
            legacy, v2, render = _GITHUB_OIDS[key]
            claims[legacy] = value.encode()
            claims[v2] = der_utf8(render(value))
        claims.update(raw_extensions or {})

        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self._ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(minutes=10))
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False)
            .add_extension(x509.SubjectAlternativeName(sans or [san]), critical=True)
        )
        for oid, ext_value in sorted(claims.items()):
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), ext_value), critical=False)

        # RFC 6962: the SCT signs the precertificate, i.e. this TBS without the SCT extension.
        precert = builder.sign(self._ca_key, hashes.SHA384())
        if not with_sct:
            return precert
        sct = self._sct(precert.tbs_certificate_bytes, timestamp=start)
        return builder.add_extension(
            x509.UnrecognizedExtension(_SCT_OID, _der_octet_string(sct)), critical=False
        ).sign(self._ca_key, hashes.SHA384())

    def _sct(self, tbs: bytes, *, timestamp: datetime) -> bytes:
        """A SignedCertificateTimestampList holding one v1 precert SCT from our CT log."""
        millis = int(timestamp.timestamp()) * 1000
        issuer_key_hash = _key_id(self._ca_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)  # v1, certificate_timestamp, precert_entry
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big") + tbs
            + struct.pack("!H", 0)  # no CT extensions
        )
        signature = self._ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            struct.pack("!B", 0) + _key_id(self._ct_key.public_key())
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(signature)) + signature  # sha256, ecdsa
        )
        one = struct.pack("!H", len(sct)) + sct
        return struct.pack("!H", len(one)) + one

    # --- Rekor ---------------------------------------------------------------------------

    def log_entry(self, body: bytes, *, integrated_time: datetime,
                  kind: str = "hashedrekord") -> dict[str, Any]:
        """A bundle ``tlogEntries[0]``: the only entry of a fresh one-entry log."""
        log_id = _key_id(self._log_key.public_key())
        itime = int(integrated_time.timestamp())
        # RFC 6962 leaf hash; in a one-entry tree the root is the leaf and the proof is empty.
        root = hashlib.sha256(b"\x00" + body).digest()
        note = f"{self.origin} - 1\n1\n{_b64(root)}\n"
        note_sig = self._log_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = note + "\n" + f"\u2014 {self.origin} {_b64(log_id[:4] + note_sig)}\n"
        set_payload = rfc8785.dumps({
            "body": _b64(body), "integratedTime": itime, "logID": log_id.hex(), "logIndex": 0,
        })
        return {
            "logIndex": "0",
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(itime),
            "inclusionPromise": {"signedEntryTimestamp": _b64(
                self._log_key.sign(set_payload, ec.ECDSA(hashes.SHA256())))},
            "inclusionProof": {
                "logIndex": "0", "rootHash": _b64(root), "treeSize": "1", "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(body),
        }

    # --- signing -------------------------------------------------------------------------

    def mint_digest(
        self,
        digest: str,
        *,
        identity: str,
        issuer: str,
        github: dict[str, str] | None = None,
        raw_extensions: dict[str, bytes] | None = None,
        cert_not_before: datetime | None = None,
        with_sct: bool = True,
        sans: list[x509.GeneralName] | None = None,
    ) -> MintedBundle:
        """A message-signature bundle (hashedrekord 0.0.1, bundle v0.3) over ``digest``.

        ``digest`` is ``sha256:<64 hex>``: the signed artifact's SHA-256, as when
        ``sigstore sign`` signs a file whose hash is that digest. ``cert_not_before`` and
        ``with_sct`` exist to mint deliberately invalid bundles (expired certificate, no SCT).
        """
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise ValueError(f"not a sha256 digest: {digest!r}")
        raw_digest = bytes.fromhex(digest[7:])
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue_certificate(key.public_key(), identity=identity, issuer=issuer,
                                      github=github, raw_extensions=raw_extensions,
                                      not_before=cert_not_before, with_sct=with_sct,
                                      sans=sans)
        signature = key.sign(raw_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        body = json.dumps({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": raw_digest.hex()}},
                "signature": {"content": _b64(signature), "publicKey": {"content": _b64(cert_pem)}},
            },
        }, sort_keys=True, separators=(",", ":")).encode()
        integrated = self.now
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self.log_entry(body, integrated_time=integrated)],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(raw_digest)},
                "signature": _b64(signature),
            },
        }
        return MintedBundle(bundle=json.dumps(bundle).encode(), certificate=cert,
                            integrated_time=integrated)

    def sign_digest(
        self,
        digest: str,
        *,
        identity: str,
        issuer: str,
        github: dict[str, str] | None = None,
    ) -> bytes:
        """The bytes of a message-signature bundle over ``digest`` (see :meth:`mint_digest`).

        ``github`` keys: ``repository`` (``owner/repo``), ``workflow_ref`` (git ref),
        ``sha``, ``trigger``.
        """
        return self.mint_digest(digest, identity=identity, issuer=issuer, github=github).bundle

    def sign_dsse_statement(
        self,
        digest: str,
        *,
        identity: str,
        issuer: str,
        github: dict[str, str] | None = None,
        subject_name: str | None = "image",
        predicate_type: str = "https://slsa.dev/provenance/v1",
        predicate: dict[str, Any] | None = None,
    ) -> bytes:
        """A DSSE bundle (dsse 0.0.1 log entry) with an in-toto v1 Statement about ``digest``,
        the shape ``cosign attest`` and GitHub build-provenance attestations produce.
        ``predicate`` is the statement's predicate (default ``{}``), e.g. cosign's vulnerability
        predicate around a Trivy report. ``subject_name`` ``None`` leaves the subject without a
        name, as ``cosign sign`` (cosign 3) writes it."""
        statement = json.dumps({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{**({"name": subject_name} if subject_name is not None else {}),
                         "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": predicate if predicate is not None else {},
        }).encode()
        payload_type = "application/vnd.in-toto+json"
        pae = b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(),
                                      len(statement), statement)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue_certificate(key.public_key(), identity=identity, issuer=issuer,
                                      github=github)
        signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        envelope = {
            "payload": _b64(statement),
            "payloadType": payload_type,
            "signatures": [{"sig": _b64(signature)}],
        }
        body = json.dumps({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256",
                                "value": hashlib.sha256(statement).hexdigest()},
                # Rekor hashes the envelope as submitted; verifiers cannot recompute it.
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(
                    json.dumps(envelope).encode()).hexdigest()},
                "signatures": [{"signature": _b64(signature), "verifier": _b64(cert_pem)}],
            },
        }, sort_keys=True, separators=(",", ":")).encode()
        bundle = {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(cert.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self.log_entry(body, integrated_time=self.now, kind="dsse")],
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle).encode()
