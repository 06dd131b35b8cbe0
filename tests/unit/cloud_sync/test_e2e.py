"""End-to-end payload encryption (cloud_sync.e2e): both suites round-trip, and every way of
getting it wrong is refused as undecryptable."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.e2e import SUITE_AES, SUITE_SM4, SUITES, batch_context, decrypt, encrypt, encryption_key_id
from cloud_sync.errors import EnvelopeError

CENTRAL = X25519PrivateKey.generate()
KEYS = {encryption_key_id(CENTRAL.public_key()): CENTRAL}
CTX = batch_context("gw-a", "telemetry", 7)


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_and_ciphertext_hides_the_values(suite: str) -> None:
    plain = b"rules-test/fire-panel/zone1_fire=true " * 20
    blob = encrypt(plain, recipient=CENTRAL.public_key(), suite=suite, context=CTX)
    assert b"zone1_fire" not in blob
    assert decrypt(blob, keys=KEYS, suite=suite, context=CTX) == plain
    # a fresh ephemeral key per batch: the same plain text never gives the same bytes
    assert encrypt(plain, recipient=CENTRAL.public_key(), suite=suite, context=CTX) != blob


def _reason(
    blob: bytes, *, keys: dict[str, X25519PrivateKey] = KEYS, suite: str = SUITE_AES, ctx: bytes = CTX
) -> str:
    with pytest.raises(EnvelopeError) as caught:
        decrypt(blob, keys=keys, suite=suite, context=ctx)
    return caught.value.reason


def test_refusals() -> None:
    blob = encrypt(b"values", recipient=CENTRAL.public_key(), context=CTX)
    assert _reason(blob, ctx=batch_context("gw-a", "telemetry", 8)) == "undecryptable"  # moved batch
    assert _reason(blob, ctx=batch_context("gw-b", "telemetry", 7)) == "undecryptable"  # other gateway
    assert _reason(blob, suite=SUITE_SM4) == "undecryptable"
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    assert _reason(flipped) == "undecryptable"
    other = X25519PrivateKey.generate()
    assert _reason(blob, keys={encryption_key_id(other.public_key()): other}) == "undecryptable"
    assert _reason(b"E1" + b"\x00" * 60) == "undecryptable"
    assert _reason(b"") == "undecryptable"
    with pytest.raises(EnvelopeError):
        encrypt(b"x", recipient=CENTRAL.public_key(), suite="rot13", context=CTX)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_undecryptable_never_a_crash(blob: bytes) -> None:
    assert _reason(blob) == "undecryptable"
