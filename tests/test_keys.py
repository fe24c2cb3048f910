"""Keys: key files (mode, format, length), public key checks, signature verification."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pausenet.core.keys import PublicKey, SigningKey, generate, load_signing_key, write_signing_key
from pausenet.errors import KeyFileError, KeyFormatError, PausenetError

SEED = bytes(range(32))


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_keygen_writes_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    old = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        write_signing_key(path, generate())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_round_trip(tmp_path: Path) -> None:
    key = SigningKey(SEED)
    path = tmp_path / "k.key"
    write_signing_key(path, key)
    loaded = load_signing_key(path)
    assert loaded.public_key == key.public_key
    assert loaded.seed_hex() == SEED.hex()
    assert loaded.sign(b"m") == key.sign(b"m")


def test_write_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_signing_key(path, SigningKey(SEED))
    with pytest.raises(KeyFileError, match="already exists"):
        write_signing_key(path, generate())
    other = generate()
    write_signing_key(path, other, overwrite=True)
    assert load_signing_key(path).public_key == other.public_key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o601])
def test_load_refuses_key_readable_by_others(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path / "k.key", SEED.hex() + "\n", mode)
    with pytest.raises(KeyFileError, match="chmod 600") as exc:
        load_signing_key(path)
    assert str(path) in str(exc.value)


def test_load_accepts_0400(tmp_path: Path) -> None:
    path = _write(tmp_path / "k.key", SEED.hex(), 0o400)
    assert load_signing_key(path).seed_hex() == SEED.hex()


@pytest.mark.parametrize(
    "text",
    ["zz" * 32, SEED.hex()[:-1], "not a key", SEED.hex() + " extra", "0x" + SEED.hex()[2:]],
)
def test_load_refuses_malformed_hex(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "k.key", text)
    with pytest.raises(KeyFileError, match="64 hex digits"):
        load_signing_key(path)


@pytest.mark.parametrize("n", [0, 16, 31, 33, 64])
def test_load_refuses_wrong_length(tmp_path: Path, n: int) -> None:
    path = _write(tmp_path / "k.key", bytes(n).hex())
    with pytest.raises(KeyFileError, match="64 hex digits"):
        load_signing_key(path)


def test_load_refuses_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"\xff\xfe" * 32)
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a pausenet key file"):
        load_signing_key(path)


def test_load_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"not found.*keygen"):
        load_signing_key(tmp_path / "absent.key")


def test_load_refuses_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.key"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signing_key(d)


def test_key_file_error_is_a_pausenet_error() -> None:
    assert issubclass(KeyFileError, PausenetError)


@pytest.mark.parametrize("n", [0, 31, 33, 64])
def test_public_key_length_checked(n: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PublicKey(bytes(n))


@pytest.mark.parametrize("text", ["00" * 31, "00" * 33, "", "xyz"])
def test_public_key_from_hex_checked(text: str) -> None:
    with pytest.raises(ValueError, match="public key"):
        PublicKey.from_hex(text)


def test_public_key_hex_round_trip() -> None:
    pk = SigningKey(SEED).public_key
    assert PublicKey.from_hex(pk.hex()) == pk


@pytest.mark.parametrize("n", [0, 31, 33])
def test_signing_key_seed_length_checked(n: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey(bytes(n))


def test_signing_key_repr_hides_seed() -> None:
    key = SigningKey(SEED)
    assert SEED.hex() not in repr(key)
    assert key.public_key.hex() in repr(key)


def test_verify() -> None:
    key = SigningKey(SEED)
    sig = key.sign(b"message")
    assert len(sig) == 64
    assert key.sign(b"message") == sig  # deterministic
    assert key.public_key.verify(b"message", sig)
    assert not key.public_key.verify(b"messagE", sig)
    assert not generate().public_key.verify(b"message", sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not key.public_key.verify(b"message", flipped)


@pytest.mark.parametrize("n", [0, 63, 65, 128])
def test_verify_rejects_wrong_signature_length(n: int) -> None:
    key = SigningKey(SEED)
    sig = key.sign(b"message")
    bad = (sig * 2)[:n]
    assert not key.public_key.verify(b"message", bad)


def test_a_key_file_is_64_hex_digits_with_white_space_only_around_them(tmp_path: Path) -> None:
    """README's key file format: one line, the seed in hex (either case)."""
    upper = _write(tmp_path / "upper.key", "  " + SEED.hex().upper() + "\r\n")
    assert load_signing_key(upper).seed_hex() == SEED.hex()
    spaced = " ".join(SEED.hex()[i : i + 2] for i in range(0, 64, 2))  # bytes.fromhex takes it
    with pytest.raises(KeyFileError, match="not a pausenet key file"):
        load_signing_key(_write(tmp_path / "spaced.key", spaced))


def test_a_public_key_is_exactly_64_hex_digits() -> None:
    pk = SigningKey(SEED).public_key
    assert PublicKey.from_hex(pk.hex().upper()) == pk
    with pytest.raises(KeyFormatError, match="not hex"):
        PublicKey.from_hex(pk.hex()[:62] + " " + pk.hex()[62:])
    with pytest.raises(KeyFormatError, match="64 hex digits, got 63"):
        PublicKey.from_hex(pk.hex()[:63])
