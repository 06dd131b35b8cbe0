"""Signed messages from central to a gateway (acks and commands): encode + sign, verify + decode. Pure.

The layout is specified in docs/protocol.md §3; in short::

    message      = msgpack array [ "GHD1", signed_bytes (bin), signature (bin, 64 bytes) ]
    signed_bytes = msgpack map {v: 1, kind: "ack", gw, kid, dseq, [enc,] body (bin)}
    body         = for kind "ack": the ack map of cloud_sync.ack (v, lane, acked, missing, ts)
                   for kind "cmd": a command of cloud_sync.commands (cid, cseq, not_after, action, ...),
                   or, with ``enc``, that command encrypted to the gateway's X25519 key
                   (cloud_sync.e2e, context = command_context(gw, dseq); docs/protocol.md §2.7)

The signature is central's Ed25519 signature over ``signed_bytes`` as carried. ``gw`` binds the
message to one gateway (a captured ack replayed on another gateway's topic does not verify for
it), the lane is inside the signed body, and ``dseq`` is central's downlink sequence number,
strictly increasing, so a receiver can refuse a replay of an older message (:class:`Freshness`).

The gateway pins central's public key(s) (``uplink.central_key``); a message is accepted only if
its ``kid`` names a pinned key and the signature verifies. Every failure is an
:class:`~cloud_sync.errors.EnvelopeError` whose ``reason`` is one of :data:`REASONS`.

Encrypted commands are signed after encryption, like batches: the gateway verifies before it
spends a key agreement, and the broker sees neither the operator's name nor a pushed site file.
Acks are never encrypted (they carry only sequence numbers).

No I/O here; the signer's sequence source is an injected clock so that it stays testable.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from cloud_sync.ack import MAX_ACK_BYTES, AckMessage, decode_ack, encode_ack
from cloud_sync.commands import KIND_CMD, MAX_SITE_BYTES, Command, decode_command, encode_command
from cloud_sync.e2e import SUITE_AES, SUITES, command_context, decrypt, encrypt
from cloud_sync.errors import EnvelopeError, SignatureError
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane
from cloud_sync.wire import scalar_map, split_signed

__all__ = [
    "DOWNLINK_MAGIC",
    "DOWNLINK_VERSION",
    "KIND_ACK",
    "MAX_DOWNLINK_BYTES",
    "REASONS",
    "DownlinkSigner",
    "Freshness",
    "SignedAck",
    "SignedCommand",
    "encode_downlink",
    "verify_ack",
    "verify_command",
    "verify_downlink",
]

DOWNLINK_MAGIC: Final = "GHD1"
DOWNLINK_VERSION: Final = 1
KIND_ACK: Final = "ack"
# An ack body is at most MAX_ACK_BYTES, a command (a pushed site file) MAX_SITE_BYTES plus its
# other fields; the header and signature add well under 1 KiB.
MAX_DOWNLINK_BYTES: Final = max(MAX_ACK_BYTES, MAX_SITE_BYTES + 4096) + 1024
_KEYS: Final = ("v", "kind", "gw", "kid", "dseq", "body")
# An encrypted message's header: ``enc`` (the suite) right before the body it describes.
_ENC_KEYS: Final = (*_KEYS[:-1], "enc", "body")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAX_UINT64: Final = 2**64 - 1
# Why a message was refused, for counters (Uplink.status()["rejected_acks"]) and logs.
REASONS: Final = (
    "unsigned",  # a plain (version 1, unsigned) ack map, or anything that is not the signed array
    "malformed",
    "too_large",
    "unsupported_version",
    "unknown_key",  # kid names no pinned central key
    "bad_signature",
    "wrong_gateway",  # signed for another gateway
    "wrong_kind",
    "stale",  # dseq not above the last accepted one (a replay)
    "undecryptable",  # an encrypted command, and no key (or the wrong one) to open it
)


@dataclass(frozen=True, slots=True)
class Downlink:
    kind: str
    gateway_id: str
    key_id: str
    dseq: int
    body: bytes  # as carried: still encrypted when ``encryption`` is set
    encryption: str | None = None


@dataclass(frozen=True, slots=True)
class SignedAck:
    ack: AckMessage
    dseq: int
    key_id: str


def encode_downlink(
    *,
    kind: str,
    gateway_id: str,
    dseq: int,
    body: bytes,
    private_key: Ed25519PrivateKey,
    enc: str | None = None,
) -> bytes:
    """Sign ``body`` for ``gateway_id`` as message ``dseq`` of kind ``kind``; ``enc`` names the
    suite ``body`` is already encrypted with (see :meth:`DownlinkSigner.sign_command`)."""
    if not 1 <= dseq <= _MAX_UINT64:
        raise ValueError(f"dseq must be 1 … 2**64-1, got {dseq}")
    if enc is not None and enc not in SUITES:
        raise ValueError(f"unknown encryption suite {enc!r}")
    header: dict[str, object] = {
        "v": DOWNLINK_VERSION,
        "kind": kind,
        "gw": gateway_id,
        "kid": key_id(private_key.public_key()),
        "dseq": dseq,
    }
    if enc is not None:
        header["enc"] = enc
    header["body"] = body
    signed: bytes = msgpack.packb(header, use_bin_type=True)
    packed: bytes = msgpack.packb([DOWNLINK_MAGIC, signed, private_key.sign(signed)], use_bin_type=True)
    return packed


def _unsigned_or_malformed(payload: bytes, exc: EnvelopeError) -> EnvelopeError:
    # A map where the signed array belongs is most likely a version 1 (unsigned) ack: name it so.
    if payload and (0x80 <= payload[0] <= 0x8F or payload[0] in (0xDE, 0xDF)):
        return EnvelopeError("unsigned message (a bare map, not the signed array)", reason="unsigned")
    return exc


def verify_downlink(payload: bytes, *, keys: Mapping[str, Ed25519PublicKey], gateway_id: str) -> Downlink:
    """Check layout, key, signature and addressee; the body is returned still encoded."""
    if len(payload) > MAX_DOWNLINK_BYTES:
        raise EnvelopeError(f"downlink message of {len(payload)} bytes is too large", reason="too_large")
    try:
        signed, signature = split_signed(payload, DOWNLINK_MAGIC)
    except EnvelopeError as exc:
        raise _unsigned_or_malformed(payload, exc) from exc
    # A map of seven entries (fixmap or map 16) is an encrypted message's; anything else is read
    # as the six-entry header and refused there if it is not one.
    fields = _ENC_KEYS if signed[:1] == b"\x87" or signed[:3] == b"\xde\x00\x07" else _KEYS
    header = scalar_map(signed, fields, "downlink header")
    version, kind, gw, kid, dseq, body = (header[k] for k in _KEYS)
    enc = header.get("enc")
    if type(version) is not int or version != DOWNLINK_VERSION:
        raise EnvelopeError(f"unsupported downlink version {version!r}", reason="unsupported_version")
    if not isinstance(kind, str) or not isinstance(gw, str) or not isinstance(body, bytes):
        raise EnvelopeError("kind and gw must be str, body bin", reason="malformed")
    if type(dseq) is not int or not 1 <= dseq <= _MAX_UINT64:
        raise EnvelopeError("dseq is not an unsigned integer ≥ 1", reason="malformed")
    if not isinstance(kid, str) or _KEY_ID.fullmatch(kid) is None:
        raise EnvelopeError("kid is not 16 hex characters", reason="malformed")
    if enc is not None and enc not in SUITES:
        raise EnvelopeError(f"unknown encryption suite {str(enc)[:40]!r}", reason="malformed")
    public_key = keys.get(kid)
    if public_key is None:
        raise SignatureError(f"key id {kid} is not a pinned central key", reason="unknown_key")
    try:
        public_key.verify(signature, signed)
    except InvalidSignature as exc:
        raise SignatureError("downlink signature does not verify", reason="bad_signature") from exc
    # Checked after the signature: an unauthenticated claim about the addressee is just malformed.
    if gw != gateway_id:
        raise SignatureError(f"message is signed for gateway {gw[:64]!r}", reason="wrong_gateway")
    return Downlink(kind=kind, gateway_id=gw, key_id=kid, dseq=dseq, body=body, encryption=enc)


@dataclass(frozen=True, slots=True)
class SignedCommand:
    command: Command
    dseq: int
    key_id: str


def verify_command(
    payload: bytes,
    *,
    keys: Mapping[str, Ed25519PublicKey],
    gateway_id: str,
    e2e_keys: Mapping[str, X25519PrivateKey] | None = None,
) -> SignedCommand:
    """A verified command for ``gateway_id``; ``EnvelopeError`` (reason of :data:`REASONS`).

    An encrypted command is opened with ``e2e_keys`` (the gateway's X25519 keys by key id,
    ``cloud_sync.e2e.encryption_key_id``) after the signature has verified; without the key it
    names, it is refused as ``undecryptable``. Replay and expiry are the receiver's to judge
    (``cloud_sync.commands.ReplayWindow``): they depend on what it already ran and on its clock."""
    message = verify_downlink(payload, keys=keys, gateway_id=gateway_id)
    if message.kind != KIND_CMD:
        raise EnvelopeError(f"downlink kind {message.kind[:32]!r} is not a command", reason="wrong_kind")
    body = message.body
    if message.encryption is not None:
        if not e2e_keys:
            raise EnvelopeError(
                f"command is encrypted ({message.encryption}) and this gateway holds no decryption key"
                " (uplink.e2e_key)",
                reason="undecryptable",
            )
        body = decrypt(
            body,
            keys=e2e_keys,
            suite=message.encryption,
            context=command_context(message.gateway_id, message.dseq),
        )
    return SignedCommand(command=decode_command(body), dseq=message.dseq, key_id=message.key_id)


def verify_ack(payload: bytes, *, keys: Mapping[str, Ed25519PublicKey], gateway_id: str) -> SignedAck:
    """A verified ack for ``gateway_id``; ``EnvelopeError`` (with a reason of :data:`REASONS`)."""
    message = verify_downlink(payload, keys=keys, gateway_id=gateway_id)
    if message.kind != KIND_ACK:
        raise EnvelopeError(f"downlink kind {message.kind[:32]!r} is not an ack", reason="wrong_kind")
    if message.encryption is not None:
        raise EnvelopeError("acks are never encrypted", reason="malformed")
    return SignedAck(ack=decode_ack(message.body), dseq=message.dseq, key_id=message.key_id)


class Freshness:
    """Per lane, the highest ``dseq`` accepted: an ack at or below it is a replay (``stale``)."""

    def __init__(self) -> None:
        self._last: dict[Lane, int] = {}

    def check(self, signed: SignedAck) -> None:
        last = self._last.get(signed.ack.lane, 0)
        if signed.dseq <= last:
            raise EnvelopeError(f"dseq {signed.dseq} is not above {last}: a replay", reason="stale")

    def accept(self, signed: SignedAck) -> None:
        self._last[signed.ack.lane] = max(self._last.get(signed.ack.lane, 0), signed.dseq)


class DownlinkSigner:
    """Central's signer: numbers and signs downlink messages. Thread-safe.

    ``dseq`` is ``max(previous + 1, clock in µs)``: strictly increasing within a process and,
    as long as the clock does not step back by more than central was down, across restarts,
    without storing a counter.
    """

    def __init__(self, private_key: Ed25519PrivateKey, *, clock_us: Callable[[], int]) -> None:
        self._key = private_key
        self._clock_us = clock_us
        self._last = 0
        self._lock = threading.Lock()
        self.key_id = key_id(private_key.public_key())

    def next_dseq(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, self._clock_us())
            return self._last

    def sign_command(
        self,
        gateway_id: str,
        command: Command,
        *,
        encrypt_to: X25519PublicKey | None = None,
        suite: str = SUITE_AES,
    ) -> bytes:
        """The signed command; with ``encrypt_to`` (the gateway's X25519 public key) its body is
        encrypted to that gateway with ``suite``, bound to the gateway id and this ``dseq``."""
        dseq = self.next_dseq()
        body = encode_command(command)
        if encrypt_to is None:
            return encode_downlink(
                kind=KIND_CMD, gateway_id=gateway_id, dseq=dseq, body=body, private_key=self._key
            )
        if suite not in SUITES:
            raise ValueError(f"unknown encryption suite {suite!r}: one of {', '.join(SUITES)}")
        return encode_downlink(
            kind=KIND_CMD,
            gateway_id=gateway_id,
            dseq=dseq,
            body=encrypt(body, recipient=encrypt_to, suite=suite, context=command_context(gateway_id, dseq)),
            private_key=self._key,
            enc=suite,
        )

    def sign_ack(self, gateway_id: str, ack: AckMessage) -> bytes:
        return encode_downlink(
            kind=KIND_ACK,
            gateway_id=gateway_id,
            dseq=self.next_dseq(),
            body=encode_ack(ack),
            private_key=self._key,
        )
