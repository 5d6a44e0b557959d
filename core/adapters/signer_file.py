"""The signer whose key is in this process's memory: read from a key file, or given.

Why: a key file (plaintext for the development cast, encrypted with a passphrase elsewhere)
is the default custody, and tests hold raw keys. Both sign through the same ``Signer`` port
as an HSM, so the validator and the node never care which one they have.

Caveat: the key stays in memory for the life of the process (as any software key does);
where that is not acceptable, use ``signer_pkcs11``.
"""

from __future__ import annotations

import os

from traco.core import crypto, keyfile
from traco.core.ports import Signer


class KeySigner(Signer):
    """Signs with a 32-byte Ed25519 private key held in memory."""

    def __init__(self, private_key: bytes) -> None:
        self._public = crypto.public_key(private_key)  # checks the key's type and size
        self._private = bytes(private_key)

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return crypto.sign(self._private, message)

    def __repr__(self) -> str:
        return f"KeySigner(public_key={self._public.hex()})"


def open_key_file(path: str | os.PathLike[str], passphrase: keyfile.PassphraseSource | None = None) -> KeySigner:
    """A signer for the key in ``path`` (plaintext or encrypted, opened with ``passphrase``)."""
    return KeySigner(keyfile.read_private_key(path, passphrase))


__all__ = ["KeySigner", "open_key_file"]
