"""Encrypted batches (docs/protocol.md §2.7): encrypt-then-sign inside the envelope, both suites.

Every refusal a receiver must make is here: no key, the wrong key, a blob moved to another
sequence number, a tampered ciphertext (caught by the signature, before any decryption), an unknown
suite. And a batch sealed without ``encrypt_to`` stays byte-identical to the published example.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import msgpack
import nacl.bindings
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.e2e import SUITE_AES, SUITE_SM4, SUITES, batch_context, encrypt, keys_by_id
from cloud_sync.envelope import (
    decode_envelope,
    decode_header,
    decode_records,
    make_sealer,
    verify_envelope,
)
from cloud_sync.errors import EnvelopeError, SignatureError
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from tests.fixtures.protocol.generate import EXAMPLE_KEY, GATEWAY_ID, ROWS, SEALED_AT, SEQ

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KID = key_id(KEY.public_key())
CENTRAL = X25519PrivateKey.from_private_bytes(bytes(range(0x40, 0x60)))
CENTRAL_KEYS = keys_by_id(CENTRAL)
SECRET_VALUE = "zone-7 door code 4711"
SECRET_NUMBER = 73519.625
TELEMETRY = [
    TelemetryRow("site/panel/code", SECRET_VALUE, 0, "", 1_767_225_600.0, None),
    TelemetryRow("site/meter/energy", SECRET_NUMBER, 0, "", 1_767_225_600.5, 1_767_225_600.25),
    TelemetryRow("site/meter/energy", None, 2, "comm_failure", 1_767_225_601.0, None),
]
EVENTS = [
    EventRow("alarm.raised", "site/panel/zone7", 1_767_225_600.0, {"secret": SECRET_VALUE, "n": [1, 2]})
]
FIXTURES = Path(__file__).parents[2] / "fixtures" / "protocol"
PROTOCOL_DOC = Path(__file__).parents[3] / "docs" / "protocol.md"


def _seal(suite: str, *, lane: Lane = Lane.TELEMETRY, seq: int = 7) -> bytes:
    seal = make_sealer("gw-a", KID, KEY, encrypt_to=CENTRAL.public_key(), suite=suite)
    rows = TELEMETRY if lane is Lane.TELEMETRY else EVENTS
    return seal(lane=lane, seq=seq, rows=rows, historical=False, sealed_at=1_767_225_610.0)


def _header_map(payload: bytes) -> dict[str, object]:
    _magic, signed, _sig = msgpack.unpackb(payload, raw=False)
    header: dict[str, object] = msgpack.unpackb(signed, raw=False)
    return header


def _resign(header: dict[str, object]) -> bytes:
    signed = msgpack.packb(header, use_bin_type=True)
    packed: bytes = msgpack.packb(["GH1", signed, KEY.sign(signed)], use_bin_type=True)
    return packed


def _undecryptable(payload: bytes, keys: dict[str, X25519PrivateKey] | None) -> str:
    header = decode_header(payload)
    verify_envelope(header, KEY.public_key())  # authentic: only the decryption may fail
    with pytest.raises(EnvelopeError) as caught:
        decode_records(header, e2e_keys=keys)
    return caught.value.reason


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("lane", list(Lane))
def test_round_trip_and_the_values_are_not_in_the_bytes(suite: str, lane: Lane) -> None:
    payload = _seal(suite, lane=lane)
    assert SECRET_VALUE.encode() not in payload
    assert msgpack.packb(SECRET_NUMBER) not in payload
    header = decode_header(payload)
    assert header.encryption == suite
    verify_envelope(header, KEY.public_key())
    expected = TELEMETRY if lane is Lane.TELEMETRY else EVENTS
    assert decode_records(header, e2e_keys=CENTRAL_KEYS) == expected
    envelope = decode_envelope(payload, e2e_keys=CENTRAL_KEYS)
    assert envelope.records == expected and envelope.encryption == suite
    # The same rows in clear do show the value: the check above is not vacuous.
    clear = make_sealer("gw-a", KID, KEY)(lane=lane, seq=7, rows=expected, historical=False, sealed_at=1.0)
    assert SECRET_VALUE.encode() in clear


def test_header_carries_enc_before_records_and_everything_else_as_before() -> None:
    header = _header_map(_seal(SUITE_AES))
    assert list(header) == [
        "v",
        "gw",
        "lane",
        "seq",
        "sealed_at",
        "n",
        "kid",
        "hist",
        "codec",
        "enc",
        "records",
    ]
    assert header["enc"] == SUITE_AES and header["v"] == 1 and header["n"] == len(TELEMETRY)
    blob = header["records"]
    assert isinstance(blob, bytes) and blob[:2] == b"E1"
    assert blob[2:10].hex() == next(iter(CENTRAL_KEYS))  # the recipient's key id


def test_unencrypted_batches_are_byte_identical_to_the_published_example() -> None:
    seal = make_sealer(GATEWAY_ID, key_id(EXAMPLE_KEY.public_key()), EXAMPLE_KEY, encrypt_to=None)
    payload = seal(lane=Lane.TELEMETRY, seq=SEQ, rows=ROWS, historical=False, sealed_at=SEALED_AT)
    assert payload == (FIXTURES / "example-batch.bin").read_bytes()
    header = decode_header(payload)
    assert header.encryption is None
    assert decode_records(header, e2e_keys=CENTRAL_KEYS) == ROWS  # keys at hand change nothing


@pytest.mark.parametrize("suite", SUITES)
def test_without_the_key_or_with_another_it_is_undecryptable(suite: str) -> None:
    payload = _seal(suite)
    assert _undecryptable(payload, None) == "undecryptable"
    assert _undecryptable(payload, {}) == "undecryptable"
    stranger = X25519PrivateKey.generate()
    assert _undecryptable(payload, keys_by_id(stranger)) == "undecryptable"
    # A key filed under central's key id but not central's key: the tag does not verify.
    assert _undecryptable(payload, {next(iter(CENTRAL_KEYS)): stranger}) == "undecryptable"


def test_a_blob_moved_to_another_sequence_number_does_not_decrypt() -> None:
    """Even re-signed by the gateway's own key: the blob is bound to gw, lane and seq."""
    header = _header_map(_seal(SUITE_AES, seq=7))
    for field, value in (("seq", 8), ("lane", "event"), ("gw", "gw-b")):
        moved = _resign({**header, field: value})
        assert _undecryptable(moved, CENTRAL_KEYS) == "undecryptable", field


def test_a_tampered_ciphertext_fails_the_signature_before_any_decryption() -> None:
    payload = _seal(SUITE_AES)
    blob = _header_map(payload)["records"]
    assert isinstance(blob, bytes)
    at = payload.index(blob) + len(blob) - 1  # the last tag byte
    tampered = payload[:at] + bytes([payload[at] ^ 0x01]) + payload[at + 1 :]
    header = decode_header(tampered)
    with pytest.raises(SignatureError):
        verify_envelope(header, KEY.public_key())


def test_unknown_suite_and_misplaced_enc_are_malformed() -> None:
    header = _header_map(_seal(SUITE_AES))
    for bad in ("x25519-rot13", 1, b"x25519-aes256gcm"):
        with pytest.raises(EnvelopeError) as caught:
            decode_header(_resign({**header, "enc": bad}))
        assert caught.value.reason == "malformed"
    reordered = {k: header[k] for k in header if k != "enc"} | {"enc": SUITE_AES}  # after records
    with pytest.raises(EnvelopeError, match="key 'records' where 'enc' belongs"):
        decode_header(_resign(reordered))
    assert decode_header(_resign(header)).encryption == SUITE_AES  # the untouched map still reads


def test_sealer_refuses_an_unknown_suite() -> None:
    with pytest.raises(ValueError, match="unknown encryption suite"):
        make_sealer("gw-a", KID, KEY, encrypt_to=CENTRAL.public_key(), suite="off")


def test_fresh_ephemeral_key_per_batch() -> None:
    seal = make_sealer("gw-a", KID, KEY, encrypt_to=CENTRAL.public_key())
    first, second = (
        seal(lane=Lane.TELEMETRY, seq=1, rows=TELEMETRY, historical=False, sealed_at=1.0) for _ in range(2)
    )
    assert first != second  # same rows, same seq: still different ciphertext (and key, and nonce)
    assert decode_records(decode_header(first), e2e_keys=CENTRAL_KEYS) == TELEMETRY


# --- the test vector of docs/protocol.md §2.7 ----------------------------------------------------
# Recomputed here from the document's recipe with independent primitives where the standard
# library or libsodium has them (X25519 by libsodium, HKDF by hand over hmac), so a mistake shared
# by the encoder and the decoder cannot hide.

VECTOR_CENTRAL = bytes(range(0x40, 0x60))  # central's X25519 private key (published, test only)
VECTOR_EPHEMERAL = bytes(range(0x60, 0x80))  # the ephemeral private key (published, test only)
VECTOR_PLAIN = b"gatehouse e2e test vector"
VECTOR_CONTEXT = batch_context("gw-demo", "telemetry", 42)
VECTORS = {
    SUITE_AES: (
        "dc8ea4d89e5b076026b0fe02f49f3966e55a1c2f3e6be5c5fa9911e34ac6ccef",
        "a45c3f2652bdd5df31575543",
        "453167ca2ffd6fe9efab675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"
        "4e38bae28e3463e0e76807a8f8a503890b1e78b4be5db0ac8aee01e4bebc69c0b311e2b724e1d64670",
    ),
    SUITE_SM4: (
        "6a7688486026f21c465f0293a4da996d",
        "5c144bb340a9cc16dcacbf38",
        "453167ca2ffd6fe9efab675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"
        "67d96c8c6537ec5a7e46a399ef249e36618f23d9a1773499a40fdf9baaca5ef7444309aed700c64f60",
    ),
}


def _hkdf(hash_name: str, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 with the standard library only."""
    prk = hmac.new(salt, ikm, hash_name).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // len(prk)) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        okm += block
    return okm[:length]


@pytest.mark.parametrize("suite", SUITES)
def test_published_vector(suite: str) -> None:
    key_hex, nonce_hex, blob_hex = VECTORS[suite]
    central_pub = nacl.bindings.crypto_scalarmult_base(VECTOR_CENTRAL)
    ephemeral_pub = nacl.bindings.crypto_scalarmult_base(VECTOR_EPHEMERAL)
    assert central_pub.hex() == "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a"
    assert hashlib.sha256(central_pub).hexdigest()[:16] == "67ca2ffd6fe9efab"
    shared = nacl.bindings.crypto_scalarmult(VECTOR_EPHEMERAL, central_pub)
    assert shared.hex() == "d6fb939511b2381bc8599b4b8edc5968829450dfd7a87aebe78a703cd04cd54e"
    assert VECTOR_CONTEXT == b"batch\x00gw-demo\x00telemetry\x0042"
    key_len = 32 if suite == SUITE_AES else 16
    okm = _hkdf(
        "sha256" if suite == SUITE_AES else "sm3",
        ephemeral_pub + central_pub,
        shared,
        b"gatehouse-e2e-v1" + VECTOR_CONTEXT,
        key_len + 12,
    )
    assert (okm[:key_len].hex(), okm[key_len:].hex()) == (key_hex, nonce_hex)

    blob = encrypt(
        VECTOR_PLAIN,
        recipient=X25519PrivateKey.from_private_bytes(VECTOR_CENTRAL).public_key(),
        suite=suite,
        context=VECTOR_CONTEXT,
        ephemeral=X25519PrivateKey.from_private_bytes(VECTOR_EPHEMERAL),
    )
    assert blob.hex() == blob_hex
    assert blob[:2] == b"E1" and blob[2:10].hex() == "67ca2ffd6fe9efab" and blob[10:42] == ephemeral_pub
    assert len(blob) == 42 + len(VECTOR_PLAIN) + 16
    # docs/protocol.md §2.7 prints these very bytes (key, nonce, ciphertext and tag on lines of their own).
    doc = PROTOCOL_DOC.read_text(encoding="utf-8")
    ciphertext, tag = blob[42:-16].hex(), blob[-16:].hex()
    for value in (key_hex, nonce_hex, ciphertext, tag, VECTOR_CONTEXT.hex(), shared.hex()):
        assert value in doc, value


# --- hostile input ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(blob=st.binary(max_size=300), suite=st.sampled_from(SUITES))
def test_signed_garbage_blobs_raise_only_envelope_errors(blob: bytes, suite: str) -> None:
    header = _header_map(_seal(suite)) | {"records": blob}
    decoded = decode_header(_resign(header))
    verify_envelope(decoded, KEY.public_key())
    with pytest.raises(EnvelopeError) as caught:
        decode_records(decoded, e2e_keys=CENTRAL_KEYS)
    assert caught.value.reason == "undecryptable"


@settings(max_examples=200, deadline=None)
@given(plain=st.binary(max_size=300))
def test_authentic_ciphertext_of_garbage_is_refused_after_decryption(plain: bytes) -> None:
    """A gateway's key holder encrypting junk: it decrypts, then the §2.3 checks refuse it."""
    header = _header_map(_seal(SUITE_AES, seq=9))
    blob = encrypt(plain, recipient=CENTRAL.public_key(), context=batch_context("gw-a", "telemetry", 9))
    decoded = decode_header(_resign(header | {"records": blob}))
    with pytest.raises(EnvelopeError) as caught:
        decode_records(decoded, e2e_keys=CENTRAL_KEYS)
    assert caught.value.reason in ("malformed", "too_large")
