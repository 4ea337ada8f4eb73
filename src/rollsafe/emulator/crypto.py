"""Secret payloads encrypted at rest (AES-256-GCM) with a key file created with mode 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["PayloadCipher"]

_NONCE = 12


class PayloadCipher:
    """Encrypts and decrypts secret payloads with a per-state-directory key."""

    def __init__(self, key_path: Path | str) -> None:
        self.key_path = Path(key_path)
        self._aead = AESGCM(self._load_or_create())

    def _load_or_create(self) -> bytes:
        try:
            # O_EXCL: never overwrite a key that exists, or every stored payload is lost
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = self.key_path.read_bytes()
            if len(key) != 32:
                raise ValueError(f"{self.key_path} is not a 32-byte key") from None
            return key
        key = AESGCM.generate_key(bit_length=256)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
        return key

    def encrypt(self, payload: bytes, *, context: bytes = b"") -> bytes:
        """Nonce + ciphertext; ``context`` (the version name) is authenticated, not secret."""
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, payload, context or None)

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> bytes:
        return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], context or None)
