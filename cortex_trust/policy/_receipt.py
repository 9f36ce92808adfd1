"""Decision receipts: a signed record of one decision that anyone can check and replay later.

A receipt's *statement* is a JSON object (``_type`` :data:`RECEIPT_TYPE`):

* ``subject``: the plugin (``plugin``: ``namespace/name`` or ``name``), ``version`` and image
  ``digest`` the decision is about; ``operation`` (``publish``, ``verify``...) and ``issuer``
  (who decided: ``registry NAME`` or ``cortex plugin verify``);
* ``decision``: the decision as :class:`~cortex_trust.policy.Decision` has it (tier, action,
  reasons, sandbox, next_tier, overridable, failed, policy_revision) and ``policy_revision``;
* ``input``: ``{"sha256": ..., "document": ...}``, the exact input the engine saw and the
  SHA-256 of its canonical JSON (:func:`cortex_trust._json.canonical_json`): a replay needs
  nothing else;
* ``evidence``: for every evidence piece of the input that holds something, the SHA-256 of the
  piece's canonical JSON; ``documents``: the SHA-256 of the source documents the pieces were
  read from, when the issuer had them (``bundle``, ``scan_report``, ``tests``, ``review``,
  ``usage``);
* ``engine`` (``name``, ``version``) and ``decided_at`` (RFC 3339, UTC).

Digests are written ``sha256:<64 hex digits>``. The statement travels in a DSSE envelope
(payload type :data:`RECEIPT_PAYLOAD_TYPE`; payload: the statement's canonical JSON) signed
through securesystemslib's signer API. A registry signs with the online key of its signed
index's ``timestamp`` role (:data:`RECEIPT_ROLE`), so a receipt is checked against the key the
index's trusted root names for that role (or a public key file). DSSE signs the payload type
with the payload, so a receipt signature never passes for a TUF metadata signature or for
another kind of document.

:func:`verify_receipt` says *valid* only when signatures by as many distinct given keys as the
keys' threshold (the receipt role's ``threshold`` in an unexpired trusted root, else one)
verify, the input digest matches the input document, every evidence digest matches its piece
of the input, and the decision's policy revision is the receipt's. An unsigned receipt is never
valid (its contents can still be replayed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from .._json import canonical_json, load_json
from ..errors import InputError

if TYPE_CHECKING:
    from securesystemslib.signer import Key, Signer

    from ._decision import Decision
    from ._input import PolicyInput

__all__ = [
    "RECEIPT_PAYLOAD_TYPE",
    "RECEIPT_ROLE",
    "RECEIPT_TYPE",
    "Receipt",
    "ReceiptCheck",
    "ReceiptKeys",
    "build_receipt",
    "decision_changes",
    "engine_version",
    "read_receipt",
    "receipt_input",
    "receipt_keys",
    "receipt_payload",
    "seal_payload",
    "seal_receipt",
    "sha256_digest",
    "verify_receipt",
]

RECEIPT_TYPE = "cortex.receipt/v1"
#: The DSSE payload type of a receipt envelope.
RECEIPT_PAYLOAD_TYPE = "application/vnd.cortex.receipt.v1+json"
#: The index role whose key signs a registry's receipts.
RECEIPT_ROLE = "timestamp"
#: A receipt file larger than this is not a receipt.
MAX_RECEIPT_BYTES = 4_000_000
#: The distribution that provides each embedded engine (for ``engine.version``).
_ENGINE_DISTRIBUTIONS = {"regorus": "gordon-to-regorus"}
_FIX = "pass the receipt file as written by the registry or `cortex plugin verify --receipt`"


def sha256_digest(data: bytes | str) -> str:
    """``sha256:<hex>`` of ``data`` (text as UTF-8)."""
    return "sha256:" + hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _value_digest(value: Any) -> str:
    return sha256_digest(canonical_json(value).encode("utf-8"))


@cache
def engine_version(name: str) -> str | None:
    """The installed version of the embedded engine ``name`` (``None`` when unknown, e.g. an
    OPA server, which does not say)."""
    from importlib.metadata import PackageNotFoundError, version

    dist = _ENGINE_DISTRIBUTIONS.get(name)
    if dist is None:
        return None
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _evidence_digests(document: Mapping[str, Any]) -> dict[str, str]:
    """The digest of every evidence piece of an input document that holds something."""
    out: dict[str, str] = {}
    evidence = document.get("evidence")
    if not isinstance(evidence, Mapping):
        return out
    for kind in sorted(evidence):
        piece = evidence[kind]
        if not piece or (isinstance(piece, Mapping) and piece.get("present") is False):
            continue
        out[kind] = _value_digest(piece)
    return out


def build_receipt(*, decision: Decision, policy_input: PolicyInput, engine: str,
                  engine_version: str | None, decided_at: datetime, issuer: str,
                  documents: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The statement of a receipt for ``decision`` on ``policy_input`` (see the module).

    ``documents`` are the digests (:func:`sha256_digest`) of the source documents the evidence
    was read from, by name."""
    from ._input import format_time

    document = json.loads(policy_input.to_json())
    plugin, artifact, context = policy_input.plugin, policy_input.artifact, policy_input.context
    return {
        "_type": RECEIPT_TYPE,
        "issuer": issuer,
        "operation": context.operation,
        "subject": {"plugin": plugin.full_name, "version": plugin.version,
                    "digest": artifact.digest},
        "decided_at": format_time(decided_at),
        "decision": decision.to_json_dict(),
        "policy_revision": decision.policy_revision,
        "engine": {"name": engine, "version": engine_version},
        "input": {"sha256": _value_digest(document), "document": document},
        "evidence": _evidence_digests(document),
        "documents": dict(sorted((documents or {}).items())),
    }


@dataclass(frozen=True)
class Receipt:
    """A receipt: its statement and the DSSE envelope carrying it (signed or not)."""

    statement: dict[str, Any]
    #: The envelope as a JSON object (``payload``, ``payloadType``, ``signatures``).
    envelope: dict[str, Any]

    @property
    def signed(self) -> bool:
        """Whether the envelope carries at least one signature (not whether it verifies)."""
        return bool(self.envelope.get("signatures"))

    def to_json(self) -> str:
        """The receipt file's text."""
        return json.dumps(self.envelope, indent=2, sort_keys=True) + "\n"


def receipt_payload(statement: Mapping[str, Any]) -> bytes:
    """The envelope payload of ``statement``: its canonical JSON, UTF-8."""
    return canonical_json(statement).encode("utf-8")


def seal_payload(payload: bytes, *, signer: Signer | None) -> dict[str, Any]:
    """The DSSE envelope (a JSON object) of a receipt ``payload``, signed by ``signer``
    (``None``: unsigned)."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload, RECEIPT_PAYLOAD_TYPE, {})
    if signer is not None:
        envelope.sign(signer)
    return envelope.to_dict()


def seal_receipt(statement: Mapping[str, Any], *, signer: Signer | None) -> Receipt:
    """Wrap ``statement`` in a DSSE envelope, signed by ``signer`` (``None``: unsigned)."""
    return Receipt(dict(statement), seal_payload(receipt_payload(statement), signer=signer))


def read_receipt(data: bytes) -> Receipt:
    """Parse a receipt file. Raises :class:`InputError` when it is not a receipt envelope
    (not JSON, not DSSE, another payload type, a payload that is not a receipt statement)."""
    if len(data) > MAX_RECEIPT_BYTES:
        raise InputError(f"the receipt is larger than {MAX_RECEIPT_BYTES} bytes", advice=_FIX)
    try:
        envelope = load_json(data)
    except ValueError as e:
        raise InputError(f"the receipt is not JSON: {e}", advice=_FIX) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str) \
            or not isinstance(envelope.get("signatures"), list):
        raise InputError("the receipt is not a DSSE envelope (payload, payloadType, signatures)",
                         advice=_FIX)
    if envelope.get("payloadType") != RECEIPT_PAYLOAD_TYPE:
        raise InputError(f"the envelope's payload type is {envelope.get('payloadType')!r}, not "
                         f"{RECEIPT_PAYLOAD_TYPE!r}", advice=_FIX)
    for sig in envelope["signatures"]:
        if not (isinstance(sig, dict) and isinstance(sig.get("keyid"), str) and isinstance(sig.get("sig"), str)):
            raise InputError("a signature of the receipt is not {keyid, sig}", advice=_FIX)
    try:
        statement = load_json(base64.b64decode(envelope["payload"], validate=True))
    except ValueError as e:
        raise InputError(f"the receipt's payload is not base64-encoded JSON: {e}", advice=_FIX) from None
    if not isinstance(statement, dict) or statement.get("_type") != RECEIPT_TYPE:
        raise InputError(f"the payload is not a {RECEIPT_TYPE} statement", advice=_FIX)
    for key in ("subject", "decision", "input", "evidence", "engine"):
        if not isinstance(statement.get(key), dict):
            raise InputError(f"the receipt has no {key} object", advice=_FIX)
    if not isinstance(statement["decision"].get("reasons", []), list):
        raise InputError("the receipt's decision reasons are not a list", advice=_FIX)
    if not isinstance(statement["input"].get("document"), dict):
        raise InputError("the receipt has no input document", advice=_FIX)
    return Receipt(statement, envelope)


class ReceiptKeys(list["Key"]):
    """The keys a receipt may be signed with and ``threshold``: how many distinct ones of them must
    have signed it (the receipt role's threshold when the keys come from a trusted root, else 1)."""

    def __init__(self, keys: Sequence[Key] = (), *, threshold: int = 1) -> None:
        super().__init__(keys)
        self.threshold = threshold


def receipt_keys(*, root: bytes | None = None, key: bytes | None = None,
                 now: datetime | None = None) -> ReceiptKeys:
    """The keys a receipt may be signed with: those the index's trusted ``root`` (TUF root
    metadata, checked against its own signatures and unexpired at ``now``, default the current
    time) names for :data:`RECEIPT_ROLE`, with that role's threshold, and/or the public ``key``
    (PEM). Raises :class:`InputError` for a root or key that does not load, or an expired root."""
    keys = ReceiptKeys()
    if root is not None:
        from securesystemslib.exceptions import FormatError
        from tuf.api.exceptions import RepositoryError
        from tuf.api.metadata import Metadata, Root

        try:
            md = Metadata[Root].from_bytes(root)
            md.verify_delegate(Root.type, md)
            role = md.signed.get_delegated_role(RECEIPT_ROLE)
        except (RepositoryError, FormatError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"the root is not a valid, self-signed TUF root: {e}",
                             advice="pass the index's metadata/root.json (or N.root.json) from its "
                                    "operator") from None
        if md.signed.is_expired(now or datetime.now(UTC)):
            raise InputError(f"the root expired at {md.signed.expires.isoformat()}: its keys are no longer "
                             "trusted", advice="fetch the registry's current root (its metadata/root.json, "
                                               "from its operator) and pass that")
        keys += [md.signed.keys[keyid] for keyid in role.keyids]
        keys.threshold = role.threshold
    if key is not None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        from securesystemslib.signer import SSlibKey

        try:
            keys.append(SSlibKey.from_crypto(load_pem_public_key(key)))
        except (ValueError, TypeError) as e:
            raise InputError(f"the key is not a PEM public key: {e}",
                             advice="pass the registry's public key in PEM") from None
    return keys


@dataclass
class ReceiptCheck:
    """The outcome of :func:`verify_receipt`: ``valid``, the key that signed (``keyid``) and every
    problem found (empty when valid)."""

    valid: bool
    keyid: str | None = None
    problems: list[str] = field(default_factory=list)


def verify_receipt(receipt: Receipt, *, keys: Sequence[Key]) -> ReceiptCheck:
    """Check ``receipt``'s signatures against ``keys`` (as many distinct ones as their threshold
    when they are :class:`ReceiptKeys`, else one) and its digests against its contents (see the
    module for when it is valid)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    problems: list[str] = []
    keyid = None
    threshold = keys.threshold if isinstance(keys, ReceiptKeys) else 1
    if not receipt.signed:
        problems.append("the receipt is not signed")
    elif not keys:
        problems.append("no key to check the signature with")
    elif len({k.keyid for k in keys}) < threshold:
        problems.append(f"{threshold} signatures are required but only {len({k.keyid for k in keys})} keys "
                        "are given")
    else:
        try:
            envelope = Envelope.from_dict(json.loads(json.dumps(receipt.envelope)))
            accepted = envelope.verify(list(keys), threshold)
            keyid = next(iter(accepted))
        except VerificationError:
            problems.append(f"fewer than {threshold} signature(s) verify with the given keys (signed by "
                            "another key, or the receipt was changed after signing)" if threshold > 1 else
                            "no signature verifies with the given keys (signed by another key, or "
                            "the receipt was changed after signing)")
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"the signatures cannot be read: {e}")
    problems += _content_problems(receipt.statement)
    return ReceiptCheck(valid=not problems, keyid=keyid if not problems else None, problems=problems)


def _content_problems(statement: Mapping[str, Any]) -> list[str]:
    problems = []
    document = statement["input"]["document"]
    if statement["input"].get("sha256") != _value_digest(document):
        problems.append("the input document does not match the input digest")
    recorded = statement.get("evidence") or {}
    actual = _evidence_digests(document)
    for kind in sorted(set(recorded) | set(actual)):
        if recorded.get(kind) != actual.get(kind):
            problems.append(f"the {kind} evidence digest does not match the input's {kind} piece")
    if statement["decision"].get("policy_revision") != statement.get("policy_revision"):
        problems.append("the decision's policy revision is not the receipt's")
    return problems


def receipt_input(receipt: Receipt) -> PolicyInput:
    """The stored input, validated. Raises :class:`InputError` when it does not match its digest
    or is not a valid input document."""
    from pydantic import ValidationError

    from ._input import PolicyInput

    problems = [p for p in _content_problems(receipt.statement) if "input" in p]
    if problems:
        raise InputError(problems[0], advice="use the receipt as it was issued")
    try:
        return PolicyInput.model_validate(receipt.statement["input"]["document"])
    except ValidationError as e:
        raise InputError(f"the receipt's input is not a valid input document: {e.errors()[0]['msg']}",
                         advice="replay a receipt of this cortex-trust's input schema") from None


def decision_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What differs between two decision documents: ``tier``, ``action``, ``next_tier``,
    ``sandbox``, ``overridable`` and ``failed`` as ``[before, after]`` pairs when they differ,
    reason codes ``added`` and ``removed``, and ``same`` (nothing of these differs)."""
    out: dict[str, Any] = {}
    for key in ("tier", "action", "next_tier", "sandbox", "overridable", "failed"):
        if before.get(key) != after.get(key):
            out[key] = [before.get(key), after.get(key)]
    old = [str(r.get("code")) for r in before.get("reasons") or () if isinstance(r, Mapping)]
    new = [str(r.get("code")) for r in after.get("reasons") or () if isinstance(r, Mapping)]
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    if added:
        out["added"] = added
    if removed:
        out["removed"] = removed
    if not out and old != new:
        out["reasons"] = [old, new]
    out["same"] = not out
    return out
