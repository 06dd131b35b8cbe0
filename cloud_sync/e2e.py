"""End-to-end payload encryption: a batch's records readable only by central. Pure.

TLS protects each hop, but a broker operator (or anyone with broker superuser rights) still sees
every value in clear. With encryption on, the gateway encrypts a batch's compressed records to
central's X25519 public key *inside* the signed envelope (encrypt, then sign), so the broker sees
ciphertext, and central checks the signature before it decrypts anything.

Per batch (docs/protocol.md §2.7)::

    ephemeral  = a fresh X25519 key pair
    shared     = X25519(ephemeral.private, central.public)
    key, nonce = HKDF(hash, salt = ephemeral.public || central.public,
                      info = "gatehouse-e2e-v1" || context)
    blob       = "E1" || recipient key id (8 bytes) || ephemeral.public (32 bytes)
                 || AEAD(key, nonce, plain, aad = context)

``context`` binds the ciphertext to where it belongs (:func:`batch_context`: gateway id, lane and
sequence number; :func:`command_context`: gateway id and downlink sequence number), so a blob
moved into another batch or message does not decrypt. A fresh ephemeral key per message means a
fresh AEAD key per message, so the derived nonce is never reused under one key.

Two suites:

* ``x25519-aes256gcm`` — X25519, HKDF-SHA-256, AES-256-GCM (the default);
* ``x25519-sm4gcm`` — X25519, HKDF-SM3, SM4-GCM, for operators who must use China's commercial
  cryptography (GM/T 0002 SM4, GM/T 0004 SM3). ``cryptography`` has SM3 and SM4 but no SM2 (no
  SM2 key agreement, encryption or signature), so key agreement stays X25519 and signatures stay
  Ed25519; a full GM/T suite needs an SM2 implementation (e.g. GmSSL bindings) that we have not
  taken on as a dependency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cloud_sync.errors import EnvelopeError

__all__ = [
    "SUITES",
    "SUITE_AES",
    "SUITE_SM4",
    "batch_context",
    "command_context",
    "decrypt",
    "encrypt",
    "encryption_key_id",
    "keys_by_id",
    "new_private_key",
]

SUITE_AES: Final = "x25519-aes256gcm"
SUITE_SM4: Final = "x25519-sm4gcm"
SUITES: Final = (SUITE_AES, SUITE_SM4)
_MAGIC: Final = b"E1"
_KID_BYTES: Final = 8
_PUB_BYTES: Final = 32
_TAG_BYTES: Final = 16
_HEAD: Final = len(_MAGIC) + _KID_BYTES + _PUB_BYTES
_INFO: Final = b"gatehouse-e2e-v1"


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def encryption_key_id(public: X25519PublicKey) -> str:
    """16 hex characters naming an encryption key (the first 8 bytes of SHA-256 of its raw form)."""
    return hashlib.sha256(_raw(public)).digest()[:_KID_BYTES].hex()


def keys_by_id(*private: X25519PrivateKey) -> dict[str, X25519PrivateKey]:
    """The ``keys`` argument of :func:`decrypt` (and of the envelope and command decoders): a
    receiver may hold several keys while it rotates, and each blob names the one it needs."""
    return {encryption_key_id(key.public_key()): key for key in private}


def batch_context(gateway_id: str, lane: str, seq: int) -> bytes:
    """What a batch's records are bound to. The leading label keeps a batch's context and a
    command's apart whatever the ids (ids never hold NUL, so the fields cannot run together)."""
    return f"batch\x00{gateway_id}\x00{lane}\x00{seq}".encode()


def command_context(gateway_id: str, dseq: int) -> bytes:
    """What a command's body is bound to: its addressee and central's downlink sequence number."""
    return f"cmd\x00{gateway_id}\x00{dseq}".encode()


def _derive(suite: str, shared: bytes, salt: bytes, context: bytes) -> tuple[bytes, bytes]:
    if suite == SUITE_AES:
        algorithm: hashes.HashAlgorithm = hashes.SHA256()
        key_len = 32
    elif suite == SUITE_SM4:
        algorithm, key_len = hashes.SM3(), 16
    else:
        raise EnvelopeError(f"unknown encryption suite {suite[:40]!r}", reason="malformed")
    okm = HKDF(algorithm=algorithm, length=key_len + 12, salt=salt, info=_INFO + context).derive(shared)
    return okm[:key_len], okm[key_len:]


def _seal(suite: str, key: bytes, nonce: bytes, plain: bytes, aad: bytes) -> bytes:
    if suite == SUITE_AES:
        return AESGCM(key).encrypt(nonce, plain, aad)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    return encryptor.update(plain) + encryptor.finalize() + encryptor.tag


def _open(suite: str, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if suite == SUITE_AES:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    body, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(body) + decryptor.finalize()


def encrypt(
    plain: bytes,
    *,
    recipient: X25519PublicKey,
    suite: str = SUITE_AES,
    context: bytes,
    ephemeral: X25519PrivateKey | None = None,
) -> bytes:
    """``plain`` sealed for ``recipient``'s private key only.

    ``ephemeral`` exists for published test vectors: a fixed ephemeral key makes the output
    reproducible. Never pass one otherwise; reusing it would reuse the AEAD key and nonce.
    """
    if ephemeral is None:
        ephemeral = X25519PrivateKey.generate()
    epk, rpk = _raw(ephemeral.public_key()), _raw(recipient)
    key, nonce = _derive(suite, ephemeral.exchange(recipient), epk + rpk, context)
    kid = bytes.fromhex(encryption_key_id(recipient))
    return _MAGIC + kid + epk + _seal(suite, key, nonce, plain, context)


def decrypt(blob: bytes, *, keys: Mapping[str, X25519PrivateKey], suite: str, context: bytes) -> bytes:
    """The plain bytes, or ``EnvelopeError`` (reason ``undecryptable``) for any failure."""
    if len(blob) < _HEAD + _TAG_BYTES or blob[: len(_MAGIC)] != _MAGIC:
        raise EnvelopeError("not an encrypted payload", reason="undecryptable")
    kid = blob[len(_MAGIC) : len(_MAGIC) + _KID_BYTES].hex()
    private = keys.get(kid)
    if private is None:
        raise EnvelopeError(
            f"encrypted to key {kid}, which this receiver does not hold", reason="undecryptable"
        )
    epk = blob[len(_MAGIC) + _KID_BYTES : _HEAD]
    try:
        peer = X25519PublicKey.from_public_bytes(epk)
        shared = private.exchange(peer)
    except ValueError as exc:  # a low-order point gives an all-zero secret, which cryptography refuses
        raise EnvelopeError("bad ephemeral key", reason="undecryptable") from exc
    key, nonce = _derive(suite, shared, epk + _raw(private.public_key()), context)
    try:
        return _open(suite, key, nonce, blob[_HEAD:], context)
    except InvalidTag as exc:
        raise EnvelopeError(
            "payload does not decrypt (altered, or for another batch)", reason="undecryptable"
        ) from exc


def new_private_key() -> X25519PrivateKey:
    """A fresh encryption key pair (``gatehouse certs central`` keeps it beside the signing key)."""
    return X25519PrivateKey.generate()
