"""Fuzzing the parsers that face the network: 100,000+ random and mutated inputs each.

The gateway's ack parser (``cloud_sync.downlink.verify_ack``, fed from the broker) and central's
envelope parser (``cloud_sync.envelope.decode_envelope``, fed from any gateway or anyone with an
API token) may refuse input only with the project's own error (``EnvelopeError``); anything else
(IndexError, UnicodeDecodeError, RecursionError, MemoryError…) is a bug. Seeded, so a failure
reproduces; each loop takes a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.ack import AckMessage, encode_ack
from cloud_sync.downlink import DownlinkSigner, verify_ack
from cloud_sync.envelope import decode_envelope, make_sealer
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow

INPUTS = 100_000
CENTRAL = Ed25519PrivateKey.from_private_bytes(bytes(range(40, 72)))
KEYS = {key_id(CENTRAL.public_key()): CENTRAL.public_key()}
GATEWAY = Ed25519PrivateKey.from_private_bytes(bytes(range(80, 112)))
SEAL = make_sealer("gw-a", key_id(GATEWAY.public_key()), GATEWAY)


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if choice == 0 and data:  # flip a bit
            data[pos % len(data)] ^= 1 << rng.randrange(8)
        elif choice == 1 and data:  # set a byte to an interesting value
            data[pos % len(data)] = rng.choice([0x00, 0x7F, 0x80, 0xC0, 0xC1, 0xD9, 0xDC, 0xDD, 0xDE, 0xFF])
        elif choice == 2:  # insert random bytes
            data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif choice == 3:  # delete a run
            del data[pos : pos + rng.randint(1, 16)]
        elif choice == 4:  # truncate
            del data[pos:]
        elif choice == 5:  # duplicate a slice somewhere else
            start = rng.randrange(len(data) + 1)
            data[pos:pos] = data[start : start + rng.randint(1, 32)]
        else:  # a length field blown up
            data[pos:pos] = rng.choice(
                [b"\xdb\xff\xff\xff\xff", b"\xc6\x7f\xff\xff\xff", b"\xdf\x7f\xff\xff\xff"]
            )
    return bytes(data)


def fuzz(parse: Callable[[bytes], object], seeds: list[bytes], *, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    outcomes = {"accepted": 0, "refused": 0}
    for i in range(INPUTS):
        if i % 10 == 0:
            data = rng.randbytes(rng.randint(0, 300))
            if i % 20 == 0 and data:
                data = bytes([rng.choice([0x93, 0x85, 0x8A, 0xDC])]) + data
        else:
            data = mutate(rng, rng.choice(seeds))
        try:
            parse(data)
        except EnvelopeError:
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1
    return outcomes


def test_the_gateway_ack_parser_raises_only_envelope_errors() -> None:
    signer = DownlinkSigner(CENTRAL, clock_us=lambda: 1_000_000)
    acks = [
        AckMessage(Lane.TELEMETRY, 41, ((42, 45), (50, 50)), 1767225611.25),
        AckMessage(Lane.EVENT, 0, (), 0.0),
        AckMessage(
            Lane.TELEMETRY, 2**63, tuple((2**63 + 2 * i + 1, 2**63 + 2 * i + 1) for i in range(20)), 1.0
        ),
    ]
    seeds = [signer.sign_ack("gw-a", ack) for ack in acks] + [encode_ack(acks[0])]
    outcomes = fuzz(lambda data: verify_ack(data, keys=KEYS, gateway_id="gw-a"), seeds, seed=17)
    assert outcomes["refused"] > INPUTS * 0.9  # mutations almost never survive the signature


def test_centrals_envelope_parser_raises_only_envelope_errors() -> None:
    telemetry = [
        TelemetryRow("s/m/p1", 1520.5, 0, "", 1767225600.0, None),
        TelemetryRow("s/t/level", "text", 1, "stale", 1767225600.25, 1767225600.125),
        TelemetryRow("s/m/p1", None, 2, "comm_failure", 1767225605.0, None),
        TelemetryRow("s/m/on", True, 0, "", 1767225606.0, None),
    ]
    events = [
        EventRow(
            "alarm.raised", "s/t/level", 1767225600.0, {"limit": 2.5, "zones": ["a", "b"], "n": {"x": None}}
        ),
        EventRow("outbox.gap", "outbox", 1767225601.0, {"seq_from": 3, "seq_to": 9}),
    ]
    seeds = [
        SEAL(lane=Lane.TELEMETRY, seq=42, rows=telemetry, historical=False, sealed_at=1767225610.5),
        SEAL(lane=Lane.EVENT, seq=7, rows=events, historical=True, sealed_at=1767225610.5),
        SEAL(lane=Lane.TELEMETRY, seq=1, rows=[], historical=False, sealed_at=1.0),
    ]
    # decode_envelope decodes the records without a signature check, so mutations reach the
    # zstd and column decoders too (central verifies first; the fuzz goes deeper on purpose).
    outcomes = fuzz(decode_envelope, seeds, seed=23)
    assert outcomes["refused"] > INPUTS * 0.5
