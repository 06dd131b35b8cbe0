"""Key files: Ed25519 keys for signing, X25519 keys for end-to-end encryption. Save (PEM), load,
and the key id.

The key id is the first 16 hex characters of SHA-256 over the raw 32-byte public key, so a
receiver in any language can compute it from the public key alone (docs/protocol.md). The same
rule names X25519 keys (``cloud_sync.e2e.encryption_key_id``).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import structlog
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from cloud_sync.errors import KeyFileError

__all__ = [
    "ensure_signing_key",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "load_x25519_private",
    "load_x25519_public",
    "parse_public_key",
    "parse_x25519_public",
    "public_key_pem",
    "raw_public_key",
    "save_private_key",
    "save_public_key",
    "save_x25519_private",
    "save_x25519_public",
    "x25519_public_pem",
]

_LOG = structlog.get_logger(__name__)

_PRIVATE_KEY_MODE = 0o600


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _write_private_pem(pem: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE_KEY_MODE)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    # O_CREAT's mode does not apply to a file that already existed.
    os.chmod(path, _PRIVATE_KEY_MODE)


def save_private_key(private_key: Ed25519PrivateKey, path: Path) -> None:
    """Write PKCS#8 PEM, created 0600 from the start so the key is never world-readable."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private_pem(pem, path)
    _LOG.info("private key saved", path=str(path), key_id=key_id(private_key.public_key()))


def save_public_key(public_key: Ed25519PublicKey, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(public_key_pem(public_key), encoding="ascii")


def _load_private_pem(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read private key: {exc.strerror}") from exc
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a PEM private key") from exc


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = _load_private_pem(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def parse_public_key(pem: str | bytes, *, origin: str = "public key") -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{origin}: not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{origin}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key: {exc.strerror}") from exc
    return parse_public_key(data, origin=str(path))


_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def load_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """Every PEM public key in ``path`` (one or more blocks, e.g. during a rotation), by key id."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key: {exc.strerror}") from exc
    blocks = _PEM_BLOCK.findall(data)
    if not blocks:
        raise KeyFileError(f"{path}: no PEM public key in the file")
    keys = [parse_public_key(block, origin=f"{path} (key {i + 1})") for i, block in enumerate(blocks)]
    return {key_id(k): k for k in keys}


def ensure_signing_key(key_path: Path, pub_path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """Load the key at ``key_path``, or make it if absent; (re)write its public key. (key, created)

    An existing key is never replaced: everything that pinned or enrolled its public key would
    stop trusting the messages it signs.
    """
    created = not key_path.exists()
    if created:
        key = generate_private_key()
        save_private_key(key, key_path)
    else:
        key = load_private_key(key_path)
    save_public_key(key.public_key(), pub_path)
    return key, created


# --- X25519 (end-to-end encryption, cloud_sync.e2e) ------------------------------------------
# Separate from the signing key on purpose: a key used both to sign and to agree keys couples two
# proofs, and the encryption key may be rotated on a schedule of its own.


def x25519_public_pem(public_key: X25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def save_x25519_private(private_key: X25519PrivateKey, path: Path) -> None:
    """PKCS#8 PEM, mode 0600 from the start, like the signing key."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private_pem(pem, path)


def save_x25519_public(public_key: X25519PublicKey, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(x25519_public_pem(public_key), encoding="ascii")


def load_x25519_private(path: Path) -> X25519PrivateKey:
    key = _load_private_pem(path)
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path}: not an X25519 key")
    return key


def parse_x25519_public(pem: str | bytes, *, origin: str = "public key") -> X25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{origin}: not a PEM public key") from exc
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(f"{origin}: not an X25519 key")
    return key


def load_x25519_public(path: Path) -> X25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read public key: {exc.strerror}") from exc
    return parse_x25519_public(data, origin=str(path))
