"""The ack codec and the key files."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.ack import AckMessage, decode_ack, encode_ack
from cloud_sync.errors import EnvelopeError, KeyFileError
from cloud_sync.keys import (
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    raw_public_key,
    save_private_key,
    save_public_key,
)
from cloud_sync.ports import Lane


@st.composite
def acks(draw: st.DrawFn) -> AckMessage:
    acked = draw(st.integers(0, 2**40))
    bounds = sorted(draw(st.sets(st.integers(acked + 1, acked + 10_000), max_size=20)))
    ranges = tuple((bounds[i], bounds[i + 1]) for i in range(0, len(bounds) - 1, 2))
    ts = draw(st.floats(0, 4e9, allow_nan=False))
    return AckMessage(lane=draw(st.sampled_from(list(Lane))), acked=acked, missing=ranges, ts=ts)


@given(acks())
def test_ack_round_trip(ack: AckMessage) -> None:
    assert decode_ack(encode_ack(ack)) == ack


def test_ack_wire_layout() -> None:
    wire = encode_ack(AckMessage(Lane.TELEMETRY, 41, ((43, 45),), 1.5))
    assert msgpack.unpackb(wire) == {
        "v": 1,
        "lane": "telemetry",
        "acked": 41,
        "missing": [[43, 45]],
        "ts": 1.5,
    }


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"v": 1},
        {"v": 2, "lane": "event", "acked": 0, "missing": [], "ts": 0.0},
        {"v": 1, "lane": "bulk", "acked": 0, "missing": [], "ts": 0.0},
        {"v": 1, "lane": "event", "acked": -1, "missing": [], "ts": 0.0},
        {"v": 1, "lane": "event", "acked": 5, "missing": [[3, 4]], "ts": 0.0},
        {"v": 1, "lane": "event", "acked": 5, "missing": [[7, 6]], "ts": 0.0},
        {"v": 1, "lane": "event", "acked": 5, "missing": [[7, 9], [8, 10]], "ts": 0.0},
        {"v": 1, "lane": "event", "acked": 5, "missing": [], "ts": "now"},
    ],
)
def test_bad_acks_are_rejected(obj: object) -> None:
    with pytest.raises(EnvelopeError):
        decode_ack(msgpack.packb(obj))


def test_garbage_ack_is_rejected() -> None:
    with pytest.raises(EnvelopeError):
        decode_ack(b"\xc1\x00")


def test_key_files_round_trip_and_private_key_is_0600(tmp_path: Path) -> None:
    key = generate_private_key()
    save_private_key(key, tmp_path / "k" / "gw.key")
    save_public_key(key.public_key(), tmp_path / "k" / "gw.pub")
    assert stat.S_IMODE((tmp_path / "k" / "gw.key").stat().st_mode) == 0o600
    loaded = load_private_key(tmp_path / "k" / "gw.key")
    pub = load_public_key(tmp_path / "k" / "gw.pub")
    assert raw_public_key(loaded.public_key()) == raw_public_key(pub)
    assert key_id(pub) == hashlib.sha256(raw_public_key(pub)).hexdigest()[:16]


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "missing.key")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KeyFileError):
        load_public_key(tmp_path / "junk.pem")
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "junk.pem")
