"""C2SP signed notes and checkpoints, signed and verified.

Pure functions over text: no I/O, no clock. A log signs its checkpoints (the size and root hash
of its Merkle tree, :mod:`cortex_trust.sources._merkle`) as notes; clients open them.

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
from dataclasses import dataclass

from ._merkle import HASH_SIZE, MAX_TREE_SIZE, TransparencyError

__all__ = [
    "MAX_NOTE_BYTES",
    "Checkpoint",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "generate_note_key",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_note",
]

#: Notes larger than this are refused before parsing (a checkpoint is about 200 bytes).
MAX_NOTE_BYTES = 64 * 1024
#: Go's note package refuses notes with more signatures than this.
_MAX_SIGNATURES = 100
_ED25519 = 0x01


class NoteError(TransparencyError):
    """A signed note, key or checkpoint is malformed, or its signature does not verify."""


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
