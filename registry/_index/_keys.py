"""The index's signing keys: one Ed25519 key per role, in PEM (PKCS#8) files.

Roles and where their keys belong (TUF's recommendation, PEP 458's layout):

* ``root`` and ``targets``: **offline**. The root key says which keys every role has; the
  targets key delegates the documents to the hashed bins. They are needed only to create the
  index, change the number of bins and rotate keys; keep them apart (another machine, a
  removable disk), not beside the registry.
* ``snapshot``, ``timestamp`` and ``bins``: **online**. The registry signs every change with
  them; they are what a running registry holds.

A key file is private: written 0600 in a 0700 directory, and refused when another user could
read or write it (:func:`cortex_trust._io.read_private_bytes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cortex_trust.errors import InputError

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

__all__ = ["OFFLINE_ROLES", "ONLINE_ROLES", "ROLES", "KeyRing"]

OFFLINE_ROLES = ("root", "targets")
ONLINE_ROLES = ("snapshot", "timestamp", "bins")
ROLES = OFFLINE_ROLES + ONLINE_ROLES
_MAX_KEY_BYTES = 16_384


@dataclass
class KeyRing:
    """The key files of one index: ``<keys>/<role>.pem``, the root key possibly elsewhere
    (``root_key``: a path the operator keeps apart, e.g. on a removable disk)."""

    keys: Path
    root_key: Path | None = None
    _loaded: dict[str, CryptoSigner] = field(default_factory=dict, repr=False)

    def path(self, role: str) -> Path:
        """Where ``role``'s key file is."""
        if role not in ROLES:
            raise ValueError(role)
        if role == "root" and self.root_key is not None:
            return self.root_key
        return self.keys / f"{role}.pem"

    def has(self, role: str) -> bool:
        """Whether ``role``'s key file exists."""
        return self.path(role).exists()

    def signer(self, role: str) -> CryptoSigner:
        """The signer of ``role``. Raises :class:`InputError` when its key file is missing,
        not private or not an Ed25519 key."""
        if role in self._loaded:
            return self._loaded[role]
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        from securesystemslib.signer import CryptoSigner

        from cortex_trust._io import read_private_bytes

        where = self.path(role)
        offline = " (an offline key: bring it from where it is kept)" if role in OFFLINE_ROLES else ""
        raw = read_private_bytes(where, what=f"the index's {role} key", max_bytes=_MAX_KEY_BYTES,
                                 advice=f"chmod 600 {where}")
        if raw is None:
            raise InputError(f"the index's {role} key {where} does not exist{offline}",
                             advice=f"pass the directory holding {role}.pem with --keys"
                                    + (" or the root key with --root-key" if role == "root" else ""))
        try:
            key = load_pem_private_key(raw, None)
        except (ValueError, TypeError):
            raise InputError(f"{where} is not an unencrypted PEM private key",
                             advice="use the key files `cortex registry index build` wrote") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InputError(f"{where} is not an Ed25519 key",
                             advice="use the key files `cortex registry index build` wrote")
        signer = CryptoSigner(key)
        self._loaded[role] = signer
        return signer

    def generate(self, role: str) -> CryptoSigner:
        """A new key for ``role``, written to its file (0600) in place of the old one."""
        from securesystemslib.signer import CryptoSigner

        signer = CryptoSigner.generate_ed25519()
        where = self.path(role)
        where.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = where.with_name(f".{where.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, signer.private_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, where)
        self._loaded[role] = signer
        return signer
