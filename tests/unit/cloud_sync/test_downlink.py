"""Central's signed downlink messages (acks): round trips, every refusal reason, freshness, signer."""

from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.ack import AckMessage, encode_ack
from cloud_sync.downlink import (
    DOWNLINK_MAGIC,
    KIND_ACK,
    MAX_DOWNLINK_BYTES,
    DownlinkSigner,
    Freshness,
    SignedAck,
    encode_downlink,
    verify_ack,
    verify_downlink,
)
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane

CENTRAL = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KEYS = {key_id(CENTRAL.public_key()): CENTRAL.public_key()}
ACK = AckMessage(Lane.TELEMETRY, 41, ((42, 45),), 1767225611.25)


def signed(
    ack: AckMessage = ACK, *, gw: str = "gw-a", dseq: int = 7, key: Ed25519PrivateKey = CENTRAL
) -> bytes:
    return encode_downlink(kind=KIND_ACK, gateway_id=gw, dseq=dseq, body=encode_ack(ack), private_key=key)


def reason_of(payload: bytes, *, gw: str = "gw-a") -> str:
    with pytest.raises(EnvelopeError) as caught:
        verify_ack(payload, keys=KEYS, gateway_id=gw)
    return caught.value.reason


@st.composite
def acks(draw: st.DrawFn) -> AckMessage:
    acked = draw(st.integers(0, 2**40))
    ranges: list[tuple[int, int]] = []
    floor = acked
    for _ in range(draw(st.integers(0, 5))):
        lo = floor + draw(st.integers(1, 1000))
        hi = lo + draw(st.integers(0, 1000))
        ranges.append((lo, hi))
        floor = hi
    ts = draw(st.floats(0, 4e9, allow_nan=False))
    return AckMessage(draw(st.sampled_from(list(Lane))), acked, tuple(ranges), ts)


@given(
    ack=acks(),
    gw=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
    dseq=st.integers(1, 2**64 - 1),
)
def test_round_trip(ack: AckMessage, gw: str, dseq: int) -> None:
    result = verify_ack(signed(ack, gw=gw, dseq=dseq), keys=KEYS, gateway_id=gw)
    assert result == SignedAck(ack=ack, dseq=dseq, key_id=key_id(CENTRAL.public_key()))


@given(ack=acks(), position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(ack: AckMessage, position: int, bit: int) -> None:
    payload = bytearray(signed(ack))
    payload[position % len(payload)] ^= 1 << bit
    with pytest.raises(EnvelopeError):
        verify_ack(bytes(payload), keys=KEYS, gateway_id="gw-a")


def test_layout_is_the_documented_one() -> None:
    payload = signed()
    outer = msgpack.unpackb(payload, raw=False)
    assert outer[0] == DOWNLINK_MAGIC and len(outer[2]) == 64
    header = msgpack.unpackb(outer[1], raw=False)
    assert list(header) == ["v", "kind", "gw", "kid", "dseq", "body"]
    assert header["v"] == 1 and header["kind"] == "ack" and header["gw"] == "gw-a" and header["dseq"] == 7
    assert header["kid"] == key_id(CENTRAL.public_key())
    assert header["body"] == encode_ack(ACK)
    CENTRAL.public_key().verify(outer[2], outer[1])  # pure Ed25519 over signed_bytes as carried


def test_an_unsigned_ack_is_named_so() -> None:
    assert reason_of(encode_ack(ACK)) == "unsigned"


def test_refusals_name_their_reason() -> None:
    assert reason_of(signed(key=OTHER)) == "unknown_key"
    assert reason_of(signed(gw="gw-b")) == "wrong_gateway"
    assert reason_of(b"") == "malformed"
    assert reason_of(b"\x93\xa4GHD1") == "malformed"
    assert reason_of(b"x" * (MAX_DOWNLINK_BYTES + 1)) == "too_large"
    # The right key id but another key's signature: forged.
    outer = msgpack.unpackb(signed(), raw=False)
    forged = msgpack.packb([outer[0], outer[1], OTHER.sign(outer[1])], use_bin_type=True)
    assert reason_of(forged) == "bad_signature"
    other_kind = encode_downlink(kind="cmd", gateway_id="gw-a", dseq=1, body=b"", private_key=CENTRAL)
    assert reason_of(other_kind) == "wrong_kind"
    v2 = msgpack.packb(
        {"v": 2, "kind": "ack", "gw": "gw-a", "kid": key_id(CENTRAL.public_key()), "dseq": 1, "body": b""},
        use_bin_type=True,
    )
    assert reason_of(msgpack.packb([DOWNLINK_MAGIC, v2, CENTRAL.sign(v2)], use_bin_type=True)) == (
        "unsupported_version"
    )


def test_a_signed_but_malformed_body_is_malformed() -> None:
    payload = encode_downlink(kind=KIND_ACK, gateway_id="gw-a", dseq=1, body=b"\x80", private_key=CENTRAL)
    assert reason_of(payload) == "malformed"


def test_header_containers_are_refused_before_anything_is_built() -> None:
    # A container where a scalar belongs (here: body) is malformed; nothing is unpacked.
    header = msgpack.packb(
        {"v": 1, "kind": "ack", "gw": "gw-a", "kid": "0" * 16, "dseq": 1, "body": [[]] * 1000},
        use_bin_type=True,
    )
    assert reason_of(msgpack.packb([DOWNLINK_MAGIC, header, b"s" * 64], use_bin_type=True)) == "malformed"


def test_every_length_format_of_the_outer_array_is_accepted() -> None:
    outer = msgpack.unpackb(signed(), raw=False)
    signed_bytes, signature = outer[1], outer[2]
    # str 8 magic, bin 16 and bin 32 elements: same message, longer length prefixes.
    wide = (
        b"\x93\xd9\x04GHD1"
        + b"\xc5"
        + len(signed_bytes).to_bytes(2, "big")
        + signed_bytes
        + b"\xc6"
        + (64).to_bytes(4, "big")
        + signature
    )
    assert verify_ack(wide, keys=KEYS, gateway_id="gw-a").ack == ACK


def test_freshness_refuses_replays_per_lane() -> None:
    fresh = Freshness()
    first = verify_ack(signed(dseq=10), keys=KEYS, gateway_id="gw-a")
    fresh.check(first)
    fresh.accept(first)
    for old in (10, 9):
        with pytest.raises(EnvelopeError) as caught:
            fresh.check(verify_ack(signed(dseq=old), keys=KEYS, gateway_id="gw-a"))
        assert caught.value.reason == "stale"
    # The other lane has its own position.
    event = AckMessage(Lane.EVENT, 1, (), 1.0)
    fresh.check(verify_ack(signed(event, dseq=5), keys=KEYS, gateway_id="gw-a"))
    fresh.check(verify_ack(signed(dseq=11), keys=KEYS, gateway_id="gw-a"))


def test_signer_numbers_strictly_increase_even_when_the_clock_steps_back() -> None:
    now = [5_000_000]
    signer = DownlinkSigner(CENTRAL, clock_us=lambda: now[0])
    first = signer.next_dseq()
    now[0] = 1_000  # the clock stepped back
    second = signer.next_dseq()
    now[0] = 9_000_000
    third = signer.next_dseq()
    assert first == 5_000_000 and second == 5_000_001 and third == 9_000_000
    payload = signer.sign_ack("gw-a", ACK)
    assert verify_ack(payload, keys=KEYS, gateway_id="gw-a").dseq == 9_000_001


def test_verify_downlink_returns_the_body_unparsed() -> None:
    message = verify_downlink(signed(), keys=KEYS, gateway_id="gw-a")
    assert message.kind == "ack" and message.body == encode_ack(ACK) and message.dseq == 7


def test_the_worked_example_in_protocol_md_is_what_the_code_signs() -> None:
    """docs/protocol.md §3.1 publishes the bytes of a signed ack made with a test key."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()
    section = doc[doc.index("### 3.1") : doc.index("### 3.2")]
    listing = section[section.index("00007e") :].split("```")[0]
    signature = bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", listing.replace("00007e", ""))))
    test_key = Ed25519PrivateKey.from_private_bytes(bytes(range(0x20, 0x40)))
    payload = encode_downlink(
        kind=KIND_ACK, gateway_id="gw-demo", dseq=1767225611250000, body=encode_ack(ACK), private_key=test_key
    )
    assert len(payload) == 190 and payload[:8] == bytes.fromhex("93a4474844 31c474".replace(" ", ""))
    assert payload[-64:] == signature
    assert key_id(test_key.public_key()) == "24f6ed6acbfe1009"
    assert "24f6ed6acbfe1009" in section and "190 bytes" in section
