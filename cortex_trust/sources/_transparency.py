"""Transparency-log primitives: RFC 9162 Merkle trees, C2SP signed notes and checkpoints.

Pure functions over bytes and text: no I/O, no clock. The registry builds its audit log with
them (the server side: appending leaves, computing roots and proofs from stored subtree
hashes) and clients verify with them (inclusion and consistency proofs, signed checkpoints).

Merkle trees (RFC 9162 §2.1, the same hashing as RFC 6962 and Certificate Transparency):

* leaf hash ``SHA-256(0x00 || leaf)``, interior node ``SHA-256(0x01 || left || right)``, the
  root of the empty tree ``SHA-256("")``; a tree of ``n`` leaves splits at the largest power of
  two smaller than ``n``;
* a *perfect subtree* ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) *
  2**level)``. Proof generation only ever asks for perfect subtrees, so a server that stores
  them (about two per leaf) answers any proof with O(log n) look-ups;
* :func:`verify_inclusion` and :func:`verify_consistency` follow RFC 9162 §2.1.3.2 and
  §2.1.4.2 step by step and raise :class:`ProofError` on any mismatch (wrong size, index, hash,
  length, extra or missing hashes).

Signed notes (https://c2sp.org/signed-note) and checkpoints (https://c2sp.org/tlog-checkpoint),
byte-compatible with Go's ``golang.org/x/mod/sumdb/note``:

* a note is UTF-8 text ending in a newline, a blank line, then signature lines
  ``— <key name> <base64(4-byte key id || signature)>``; the signature covers the text
  including its final newline;
* Ed25519 keys only; key id = the first 4 bytes of ``SHA-256(name || 0x0A || 0x01 || public
  key)``; verifier keys are ``<name>+<hex key id>+<base64(0x01 || public key)>`` and signer keys
  ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>``;
* a checkpoint's text is ``<origin>\\n<size>\\n<base64 root hash>\\n`` (optional extension lines
  after). :func:`open_checkpoint` verifies the signature *before* parsing the text, and requires
  the origin to be the verifier key's name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import InputError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_BYTES",
    "Checkpoint",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "SubtreeGetter",
    "TransparencyError",
    "append_leaf",
    "consistency_proof",
    "consistency_proof_nodes",
    "generate_note_key",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "root_from_frontier",
    "root_hash",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: The root hash of the tree with no leaves: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Proofs longer than this are refused before any hashing (a tree of 2**63 leaves needs fewer).
MAX_PROOF_HASHES = 130
#: Notes larger than this are refused before parsing (a checkpoint is about 200 bytes).
MAX_NOTE_BYTES = 64 * 1024
#: The largest tree size a checkpoint may state (sizes are unsigned 64-bit in C2SP).
MAX_TREE_SIZE = 2**63 - 1
#: Go's note package refuses notes with more signatures than this.
_MAX_SIGNATURES = 100
_ED25519 = 0x01

#: ``get(level, index)`` → the hash of the perfect subtree ``(level, index)``.
SubtreeGetter = Callable[[int, int], bytes]


class TransparencyError(InputError):
    """A transparency-log artifact (proof, note, key, checkpoint) is malformed or does not
    verify."""


class ProofError(TransparencyError):
    """A Merkle inclusion or consistency proof does not verify."""


class NoteError(TransparencyError):
    """A signed note, key or checkpoint is malformed, or its signature does not verify."""


# ----------------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def append_leaf(frontier: Sequence[bytes], size: int,
                leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append the leaf hash ``leaf`` to a tree of ``size`` leaves.

    ``frontier`` is the tree's compact range: the hashes of its maximal perfect subtrees, left
    to right (one per set bit of ``size``, largest first). Returns the new frontier and every
    perfect subtree ``(level, index, hash)`` completed by this leaf (the leaf itself first).
    """
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier of a {size}-leaf tree has {size.bit_count()} hashes, "
                         f"not {len(frontier)}")
    hashes = list(frontier)
    created = [(0, size, leaf)]
    h, index, level = leaf, size, 0
    while index & 1:
        h = node_hash(hashes.pop(), h)
        index >>= 1
        level += 1
        created.append((level, index, h))
    hashes.append(h)
    return hashes, created


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root hash of the tree whose compact range is ``frontier`` (see :func:`append_leaf`)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = node_hash(h, root)
    return root


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH of the tree whose leaves have these hashes (``EMPTY_ROOT`` if none)."""
    frontier: list[bytes] = []
    for size, h in enumerate(leaf_hashes):
        frontier, _ = append_leaf(frontier, size, h)
    return root_from_frontier(frontier)


# ------------------------------------------------------------------------- proof generation


def _range_hash(get: SubtreeGetter, start: int, end: int) -> bytes:
    # Every range the RFC recursion reaches starts at a multiple of the power of two above its
    # length, so its left part is always a perfect, aligned subtree.
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, start >> level)
    k = _split(n)
    return node_hash(_range_hash(get, start, start + k), _range_hash(get, start + k, end))


def _path(get: SubtreeGetter, index: int, start: int, end: int) -> list[bytes]:
    # RFC 6962 §2.1.1 PATH(m, D[start:end]), with absolute leaf positions.
    if end - start == 1:
        return []
    k = _split(end - start)
    if index < start + k:
        return [*_path(get, index, start, start + k), _range_hash(get, start + k, end)]
    return [*_path(get, index, start + k, end), _range_hash(get, start, start + k)]


def _subproof(get: SubtreeGetter, first: int, start: int, end: int, complete: bool) -> list[bytes]:
    # RFC 6962 §2.1.2 SUBPROOF(m, D[start:end], b), with absolute positions.
    if first == end:
        return [] if complete else [_range_hash(get, start, end)]
    k = _split(end - start)
    if first <= start + k:
        return [*_subproof(get, first, start, start + k, complete), _range_hash(get, start + k, end)]
    return [*_subproof(get, first, start + k, end, False), _range_hash(get, start, start + k)]


def inclusion_proof(index: int, size: int, get: SubtreeGetter) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves, built
    from perfect subtree hashes (``get``). Raises ValueError unless ``0 <= index < size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _path(get, index, 0, size)


def consistency_proof(first: int, second: int, get: SubtreeGetter) -> list[bytes]:
    """The consistency proof from the tree of ``first`` leaves to the tree of ``second``
    leaves (empty when ``first`` is 0 or equal to ``second``). Raises ValueError unless
    ``0 <= first <= second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    return _subproof(get, first, 0, second, True)


def _nodes_of(build: Callable[[SubtreeGetter], object]) -> list[tuple[int, int]]:
    # The recursion's shape depends only on the sizes, never on hash values: record which
    # subtrees it asks for, so a server can fetch them all in one query first.
    wanted: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        wanted.append((level, index))
        return EMPTY_ROOT

    build(record)
    return sorted(set(wanted))


def inclusion_proof_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that :func:`inclusion_proof` reads."""
    return _nodes_of(lambda get: inclusion_proof(index, size, get))


def consistency_proof_nodes(first: int, second: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that :func:`consistency_proof` reads."""
    return _nodes_of(lambda get: consistency_proof(first, second, get))


# --------------------------------------------------------------------------- verification


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def verify_inclusion(*, index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that the leaf hash ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose
    root hash is ``root`` (RFC 9162 §2.1.3.2). Raises :class:`ProofError` otherwise."""
    _check_hash(leaf, "the leaf hash")
    _check_hash(root, "the root hash")
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError("the inclusion proof is too long")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash(p, "a proof element")
        if sn == 0:
            raise ProofError("the inclusion proof has more hashes than the tree has levels")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof has fewer hashes than the tree has levels")
    if r != root:
        raise ProofError(f"leaf {index} is not included in the tree of size {size} with this root")


def verify_consistency(*, first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of ``second`` leaves with root ``second_root`` extends the tree of
    ``first`` leaves with root ``first_root`` (RFC 9162 §2.1.4.2): the first ``first`` leaves
    are unchanged. Raises :class:`ProofError` otherwise (including ``first > second``)."""
    _check_hash(first_root, "the first root hash")
    _check_hash(second_root, "the second root hash")
    if not 0 <= first <= second:
        raise ProofError(f"a tree of {second} leaves cannot extend a tree of {first} leaves")
    if len(proof) > MAX_PROOF_HASHES:
        raise ProofError("the consistency proof is too long")
    if first == second:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different trees of size {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    for p in path:
        _check_hash(p, "a proof element")
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof has more hashes than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof has fewer hashes than the trees need")
    if fr != first_root or sr != second_root:
        raise ProofError(f"the tree of size {second} does not extend the tree of size {first} "
                         "with this root")


# ------------------------------------------------------------------------------ signed notes

#: Key names: non-empty, no whitespace and no '+', printable ASCII (a stricter subset of what
#: the signed-note specification allows, so names are safe to print and to embed in a line).
_KEY_NAME = re.compile(r"^[!-*,-~]{1,128}\Z")
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}\Z")


def _b64decode(text: str, what: str) -> bytes:
    if not _B64.match(text):
        raise NoteError(f"{what} is not standard base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard base64") from None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _KEY_NAME.match(name):
        raise NoteError(f"{name!r} is not a key name",
                        advice="use printable ASCII without spaces or '+', e.g. "
                               "registry.example.org/audit")
    return name


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 verifier key of the signed-note format (``name+keyid+base64key``)."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_text(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key; its key id must match its name and key. Raises
        :class:`NoteError`."""
        vkey = vkey.strip() if isinstance(vkey, str) else vkey
        # maxsplit: base64 key material may itself contain '+'.
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3:
            raise NoteError("a log verifier key is NAME+KEYID+KEY",
                            advice="copy the verifier key printed by `cortex registry log-key "
                                   "create` (or served by the registry's operator) unchanged")
        name, hex_id, material = parts
        _check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError("the verifier key's id is not 8 lowercase hex digits")
        raw = _b64decode(material, "the verifier key")
        if len(raw) != 33 or raw[0] != _ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (algorithm 1, 32 bytes)")
        if _key_id(name, raw[1:]).hex() != hex_id:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name=name, key_id=bytes.fromhex(hex_id), public_key=raw[1:])

    @property
    def text(self) -> str:
        """The verifier key in its text form."""
        material = base64.b64encode(bytes([_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``message``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 signer key of the signed-note format. ``repr`` never shows the seed."""

    name: str
    key_id: bytes
    seed: bytes

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id.hex()})"

    @classmethod
    def from_text(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+NAME+KEYID+KEY``; the id must match. Raises :class:`NoteError`
        (whose message never contains key material)."""
        parts = skey.strip().split("+", 4) if isinstance(skey, str) else []
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a log signing key is PRIVATE+KEY+NAME+KEYID+KEY",
                            advice="create one with `cortex registry log-key create FILE`")
        name, hex_id, material = parts[2:]
        _check_name(name)
        raw = _b64decode(material, "the signing key")
        if len(raw) != 33 or raw[0] != _ED25519 or not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError("the signing key is not an Ed25519 key (algorithm 1, 32 bytes)")
        signer = cls(name=name, key_id=bytes.fromhex(hex_id), seed=raw[1:])
        if signer.verifier.key_id != signer.key_id:
            raise NoteError("the signing key's id does not match its name and key")
        return signer

    @property
    def text(self) -> str:
        """The signer key in its text form (a secret: store it 0600)."""
        material = base64.b64encode(bytes([_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{material}"

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier key."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw)
        return NoteVerifier(name=self.name, key_id=_key_id(self.name, public), public_key=public)

    def sign(self, message: bytes) -> bytes:
        """The Ed25519 signature of ``message``."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


def generate_note_key(name: str) -> NoteSigner:
    """A new random Ed25519 signer key named ``name``. Raises :class:`NoteError` for a bad
    name."""
    import secrets

    _check_name(name)
    seed = secrets.token_bytes(32)
    probe = NoteSigner(name=name, key_id=b"\0\0\0\0", seed=seed)
    return NoteSigner(name=name, key_id=probe.verifier.key_id, seed=seed)


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("a note's text must be non-empty lines, each ending in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text must not contain control characters")


def sign_note(text: str, signer: NoteSigner) -> str:
    """``text`` signed by ``signer`` as a signed note. Raises :class:`NoteError` for a text
    that is not a valid note text."""
    _check_text(text)
    blob = base64.b64encode(signer.key_id + signer.sign(text.encode("utf-8"))).decode()
    return f"{text}\n\u2014 {signer.name} {blob}\n"


def open_note(note: str | bytes, verifier: NoteVerifier) -> str:
    """Verify ``note`` with ``verifier`` and return its text.

    Signatures by other keys are ignored; a signature line naming ``verifier``'s name and key
    id that does not verify rejects the note (as Go's ``note.Open`` does). Raises
    :class:`NoteError` for a malformed note, one without a signature by ``verifier``, or a bad
    signature.
    """
    raw = note.encode("utf-8") if isinstance(note, str) else note
    if len(raw) > MAX_NOTE_BYTES:
        raise NoteError(f"the note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the note is not UTF-8") from None
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no signatures (no blank line before them)")
    text, block = decoded[:split + 1], decoded[split + 2:]
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("the note's signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("the note has too many signatures")
    found = False
    for line in lines:
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if m is None:
            raise NoteError("a signature line of the note is malformed")
        name, blob = m.group(1), _b64decode(m.group(2), "a note signature")
        if len(blob) < 5:
            raise NoteError("a note signature is too short")
        if name != verifier.name or blob[:4] != verifier.key_id:
            continue
        if not verifier.verify(text.encode("utf-8"), blob[4:]):
            raise NoteError(f"the note's signature by {verifier.name} does not verify",
                            advice="the note was altered or signed by another key")
        found = True
    if not found:
        raise NoteError(f"the note is not signed by {verifier.name} "
                        f"(key id {verifier.key_id.hex()})",
                        advice="check that the verifier key is this log's")
    return text


# -------------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A log's size and root hash, named by its origin (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The checkpoint body (what is signed)."""
        body = f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"
        return body + "".join(f"{e}\n" for e in self.extensions)

    def sign(self, signer: NoteSigner) -> str:
        """This checkpoint as a note signed by ``signer``."""
        return sign_note(self.text, signer)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body. Raises :class:`NoteError` when it is not one."""
    _check_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin.strip() or origin != origin.strip():
        raise NoteError("the checkpoint's origin line is empty or padded")
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text) or int(size_text) > MAX_TREE_SIZE:
        raise NoteError("the checkpoint's size is not a decimal tree size")
    root = _b64decode(root_text, "the checkpoint's root hash")
    if len(root) != HASH_SIZE:
        raise NoteError("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))


def open_checkpoint(note: str | bytes, verifier: NoteVerifier) -> Checkpoint:
    """Verify a signed checkpoint with ``verifier`` (signature first), then parse it; its
    origin must be the verifier key's name. Raises :class:`NoteError`."""
    checkpoint = parse_checkpoint(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"the checkpoint is for log {checkpoint.origin!r}, not "
                        f"{verifier.name!r}")
    return checkpoint
