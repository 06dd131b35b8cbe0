"""Acks and commands as a broken central or a hostile broker could deliver them to a gateway.

Unsigned, damaged and foreign messages stop at the layout or signature check; messages signed
with the pinned central key but carrying damaged bodies reach the ack and command decoders.
Every failure is an EnvelopeError (SignatureError is one); nothing else escapes.
"""

from __future__ import annotations

from typing import Any

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.ack import AckMessage, decode_ack, encode_ack
from cloud_sync.commands import Command, decode_command, encode_command
from cloud_sync.downlink import KIND_ACK, encode_downlink, verify_ack, verify_command
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id
from cloud_sync.ports import Lane
from tests.fuzz.support import fuzz_settings, mutated

GW = "gw-fuzz"
CENTRAL = Ed25519PrivateKey.from_private_bytes(bytes(range(40, 72)))
KEYS = {key_id(CENTRAL.public_key()): CENTRAL.public_key()}

ACK_BODIES = [
    encode_ack(AckMessage(lane=Lane.TELEMETRY, acked=41, missing=((43, 44), (50, 50)), ts=1.7e9)),
    encode_ack(AckMessage(lane=Lane.EVENT, acked=0, missing=(), ts=1.7e9)),
]
COMMAND_BODIES = [
    encode_command(
        Command(
            cid="c-1",
            cseq=1,
            issued_at=1.7e9,
            not_after=1.7e9 + 60,
            action="point.write",
            args={"point": "s/d/p", "value": 1.5},
            by="ops",
        )
    )
]


def _signed(kind: str, body: bytes, dseq: int = 7) -> bytes:
    return encode_downlink(kind=kind, gateway_id=GW, dseq=dseq, body=body, private_key=CENTRAL)


SEEDS = [_signed(KIND_ACK, b) for b in ACK_BODIES] + [_signed("cmd", b) for b in COMMAND_BODIES]

_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(),
        st.text(max_size=12),
        st.binary(max_size=12),
    ),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=25,
)


@st.composite
def damaged_bodies(draw: st.DrawFn) -> bytes:
    """A body signed by central that is wrong inside: mutated bytes, or maps of the right keys."""
    if draw(st.booleans()):
        return draw(mutated(ACK_BODIES + COMMAND_BODIES, max_random=120))
    keys = [
        "v",
        "lane",
        "acked",
        "missing",
        "ts",
        "cid",
        "cseq",
        "issued_at",
        "not_after",
        "action",
        "args",
        "by",
        "from",
    ]
    body: dict[str, Any] = draw(st.dictionaries(st.sampled_from(keys), _values, max_size=10))
    return bytes(msgpack.packb(body, use_bin_type=True))


def _verify(payload: bytes) -> None:
    for verify in (verify_ack, verify_command):
        try:
            verify(payload, keys=KEYS, gateway_id=GW)
        except EnvelopeError:
            pass


@fuzz_settings()
@given(mutated(SEEDS, max_random=300))
def test_damaged_downlink_messages_raise_only_envelope_errors(payload: bytes) -> None:
    _verify(payload)


@fuzz_settings()
@given(st.sampled_from([KIND_ACK, "cmd", "other"]), damaged_bodies())
def test_signed_damaged_bodies_raise_only_envelope_errors(kind: str, body: bytes) -> None:
    _verify(_signed(kind, body))
    for decode in (decode_ack, decode_command):
        try:
            decode(body)
        except EnvelopeError:
            pass
