"""Ed25519 keys: generation, key files, and signing over exact bytes.

A private key file holds one line: the 32-byte Ed25519 seed as 64 hex digits (either case;
`pausenet keygen` writes lowercase and a newline). White space around it is ignored, none
inside it is allowed. The file must be readable by its owner only (mode 0600 or stricter).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from pausenet.errors import KeyFileError, KeyFormatError

__all__ = ["PublicKey", "SigningKey", "generate", "load_signing_key", "write_signing_key"]

_KEY_BYTES = 32
_SIG_BYTES = 64
_HEX_RE = re.compile(r"[0-9A-Fa-f]*")  # bytes.fromhex alone would also take white space


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (32 bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != _KEY_BYTES:
            raise KeyFormatError(f"an Ed25519 public key is {_KEY_BYTES} bytes")

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        if not _HEX_RE.fullmatch(text):
            raise KeyFormatError("public key is not hex")
        if len(text) != _KEY_BYTES * 2:
            raise KeyFormatError(f"public key must be {_KEY_BYTES * 2} hex digits, got {len(text)}")
        return cls(bytes.fromhex(text))

    def hex(self) -> str:
        return self.raw.hex()

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when signature is a valid Ed25519 signature of message by this key."""
        if len(signature) != _SIG_BYTES:
            return False
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            return False
        return True


class SigningKey:
    """An Ed25519 private key. Signing is deterministic: same message, same signature."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != _KEY_BYTES:
            raise KeyFormatError(f"an Ed25519 seed is {_KEY_BYTES} bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = PublicKey(bytes(self._key.verify_key))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)

    def seed_hex(self) -> str:
        return bytes(self._key).hex()

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"


def generate() -> SigningKey:
    return SigningKey(bytes(nacl.signing.SigningKey.generate()))


def write_signing_key(path: Path, key: SigningKey, *, overwrite: bool = False) -> None:
    """Write key to path with mode 0600, created that way (never briefly readable by others)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists; choose another path or remove it") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key.seed_hex() + "\n")
        f.flush()
        os.fsync(f.fileno())


def load_signing_key(path: Path) -> SigningKey:
    """Load a private key file, refusing one that others can read or that is malformed."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"{path}: key file not found; create one with 'pausenet keygen'"
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path}: not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"{path}: key file is readable by others (mode {stat.S_IMODE(st.st_mode):04o});"
            f" run 'chmod 600 {path}'"
        )
    if st.st_size > 1024:
        raise KeyFileError(f"{path}: too large for a key file ({st.st_size} bytes)")
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: not a pausenet key file (expected 64 hex digits)") from exc
    if not _HEX_RE.fullmatch(text) or len(text) % 2:
        raise KeyFileError(f"{path}: not a pausenet key file (expected 64 hex digits)")
    seed = bytes.fromhex(text)
    if len(seed) != _KEY_BYTES:
        raise KeyFileError(
            f"{path}: key has {len(seed)} bytes, an Ed25519 seed has {_KEY_BYTES} (64 hex digits)"
        )
    return SigningKey(seed)
