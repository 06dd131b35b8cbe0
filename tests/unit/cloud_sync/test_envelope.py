"""The batch envelope: round trip, determinism, tampering, truncation, keys and limits."""

from __future__ import annotations

import msgpack
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sync import envelope as env_mod
from cloud_sync.envelope import (
    MAX_PAYLOAD_BYTES,
    MAX_RECORDS,
    decode_envelope,
    decode_header,
    decode_records,
    make_sealer,
    verify_envelope,
)
from cloud_sync.errors import EnvelopeError, SignatureError
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KID = key_id(KEY.public_key())
SEAL = make_sealer("gw-a", KID, KEY)

timestamps = st.floats(min_value=0.0, max_value=4_102_444_800.0, allow_nan=False)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
telemetry_rows = st.builds(
    TelemetryRow,
    point_id=st.sampled_from(["s/m1/v_l1", "s/m1/i_l1", "s/tank/level", "s/pump/run", "s/φ/温度"]),
    value=values,
    quality=st.integers(min_value=0, max_value=2),
    reason=st.sampled_from(["", "comm_failure", "stale"]),
    receipt_ts=timestamps,
    source_ts=st.one_of(st.none(), timestamps),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
event_rows = st.builds(
    EventRow,
    kind=st.sampled_from(["alarm.raised", "device.offline", "outbox.gap"]),
    source=st.text(max_size=20),
    ts=timestamps,
    data=st.dictionaries(st.text(max_size=6), json_values, max_size=4),
)


def _us(ts: float) -> float:
    # Timestamps travel as integer microseconds (docs/protocol.md).
    return round(ts * 1_000_000) / 1_000_000


def _telemetry(n: int = 3, t0: float = 1_767_225_600.0) -> list[TelemetryRow]:
    return [
        TelemetryRow(f"site/m{i % 2}/p{i}", float(i) / 3, 0, "", t0 + i * 0.5, t0 + i * 0.5 - 0.25)
        for i in range(n)
    ]


def _seal(rows: list[TelemetryRow] | list[EventRow], *, lane: Lane = Lane.TELEMETRY, seq: int = 7) -> bytes:
    return SEAL(lane=lane, seq=seq, rows=rows, historical=False, sealed_at=1_767_225_700.5)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(telemetry_rows, max_size=40), seq=st.integers(1, 2**64 - 1), hist=st.booleans())
def test_telemetry_round_trip(rows: list[TelemetryRow], seq: int, hist: bool) -> None:
    payload = SEAL(lane=Lane.TELEMETRY, seq=seq, rows=rows, historical=hist, sealed_at=12.25)
    env = decode_envelope(payload)
    verify_envelope(env, KEY.public_key())
    assert (env.version, env.gateway_id, env.lane, env.seq) == (1, "gw-a", Lane.TELEMETRY, seq)
    assert (env.sealed_at, env.record_count, env.key_id, env.historical) == (12.25, len(rows), KID, hist)
    expected = [
        TelemetryRow(
            r.point_id,
            r.value,
            r.quality,
            r.reason,
            _us(r.receipt_ts),
            None if r.source_ts is None else _us(r.source_ts),
        )
        for r in rows
    ]
    assert len(env.records) == len(expected)
    for got, want in zip(env.records, expected, strict=True):
        assert isinstance(got, TelemetryRow)
        assert (got.point_id, got.value, got.quality, got.reason) == (
            want.point_id,
            want.value,
            want.quality,
            want.reason,
        )
        assert type(got.value) is type(want.value)
        assert got.receipt_ts == pytest.approx(want.receipt_ts, abs=1e-6)
        if want.source_ts is None:
            assert got.source_ts is None
        else:
            assert got.source_ts == pytest.approx(want.source_ts, abs=1e-6)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(event_rows, max_size=20), hist=st.booleans())
def test_event_round_trip(rows: list[EventRow], hist: bool) -> None:
    payload = SEAL(lane=Lane.EVENT, seq=1, rows=rows, historical=hist, sealed_at=1.0)
    env = decode_envelope(payload)
    verify_envelope(env, KEY.public_key())
    assert env.lane is Lane.EVENT and env.historical is hist
    events = [e for e in env.records if isinstance(e, EventRow)]
    assert [(e.kind, e.source, e.data) for e in events] == [(r.kind, r.source, r.data) for r in rows]
    for got, want in zip(events, rows, strict=True):
        assert got.ts == pytest.approx(_us(want.ts), abs=1e-6)


@settings(max_examples=50)
@given(rows=st.lists(telemetry_rows, min_size=1, max_size=20))
def test_sealing_is_deterministic(rows: list[TelemetryRow]) -> None:
    assert _seal(rows) == _seal(list(rows))


def test_event_data_key_order_does_not_change_the_bytes() -> None:
    a = [EventRow("alarm.raised", "s/t/level", 5.0, {"b": 1, "a": {"y": 2, "x": 3}})]
    b = [EventRow("alarm.raised", "s/t/level", 5.0, {"a": {"x": 3, "y": 2}, "b": 1})]
    assert _seal(a, lane=Lane.EVENT) == _seal(b, lane=Lane.EVENT)


def test_every_single_byte_change_is_rejected() -> None:
    payload = _seal(_telemetry(5))
    for i in range(len(payload)):
        for flip in (0x01, 0x80):
            tampered = bytearray(payload)
            tampered[i] ^= flip
            with pytest.raises(EnvelopeError):
                env = decode_envelope(bytes(tampered))
                verify_envelope(env, KEY.public_key())


def test_every_truncation_is_malformed() -> None:
    payload = _seal(_telemetry(4))
    for cut in range(len(payload)):
        with pytest.raises(EnvelopeError) as info:
            decode_envelope(payload[:cut])
        assert not isinstance(info.value, SignatureError)


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(EnvelopeError):
        decode_envelope(_seal(_telemetry(2)) + b"\x00")


def test_wrong_key_is_a_signature_error() -> None:
    env = decode_envelope(_seal(_telemetry(2)))
    with pytest.raises(SignatureError):
        verify_envelope(env, OTHER_KEY.public_key())


def test_forged_by_another_key_under_the_same_key_id_fails() -> None:
    forged = make_sealer("gw-a", KID, OTHER_KEY)(
        lane=Lane.TELEMETRY, seq=1, rows=_telemetry(1), historical=False, sealed_at=0.0
    )
    header = decode_header(forged)
    assert header.key_id == KID
    with pytest.raises(SignatureError):
        verify_envelope(header, KEY.public_key())


def _resign(header_map: dict[str, object]) -> bytes:
    signed: bytes = msgpack.packb(header_map, use_bin_type=True)
    payload: bytes = msgpack.packb(["GH1", signed, KEY.sign(signed)], use_bin_type=True)
    return payload


def _header_map(payload: bytes) -> dict[str, object]:
    header = decode_header(payload)
    return dict(msgpack.unpackb(header.signed_bytes, raw=False))


def test_signed_but_malformed_headers_are_rejected() -> None:
    base = _header_map(_seal(_telemetry(2)))
    bad_values = {
        "v": 2,
        "gw": "gw/a",
        "lane": "bulk",
        "seq": 0,
        "sealed_at": 5,
        "n": MAX_RECORDS + 1,
        "kid": "XYZ",
        "hist": 1,
        "codec": "gzip",
        "records": "text",
    }
    for key, bad in bad_values.items():
        with pytest.raises(EnvelopeError):
            decode_envelope(_resign({**base, key: bad}))
    extra = {**base, "extra": 1}
    with pytest.raises(EnvelopeError):
        decode_envelope(_resign(extra))
    reordered = dict(reversed(list(base.items())))
    with pytest.raises(EnvelopeError):
        decode_envelope(_resign(reordered))


def test_record_count_must_match_columns() -> None:
    base = _header_map(_seal(_telemetry(3)))
    with pytest.raises(EnvelopeError):
        decode_envelope(_resign({**base, "n": 2}))


def test_decompression_bomb_is_refused_before_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    base = _header_map(_seal(_telemetry(1)))
    bomb = zstandard.ZstdCompressor().compress(b"\x00" * (env_mod.MAX_RECORDS_BYTES + 1))
    assert len(bomb) < 10_000
    payload = _resign({**base, "records": bomb})
    header = decode_header(payload)  # cheap and bounded: the records stay compressed
    with pytest.raises(EnvelopeError) as info:
        decode_records(header)
    assert info.value.reason == "too_large"


def test_frame_without_content_size_is_refused() -> None:
    base = _header_map(_seal(_telemetry(1)))
    blob = zstandard.ZstdCompressor(write_content_size=False).compress(b"\x90")
    with pytest.raises(EnvelopeError):
        decode_records(decode_header(_resign({**base, "records": blob})))


def test_oversize_payload_is_refused_unparsed() -> None:
    with pytest.raises(EnvelopeError) as info:
        decode_header(b"\x00" * (MAX_PAYLOAD_BYTES + 1))
    assert info.value.reason == "too_large"


def test_sealer_refuses_too_many_records_and_wrong_row_types() -> None:
    with pytest.raises(EnvelopeError):
        _seal(_telemetry(1) * (MAX_RECORDS + 1))
    with pytest.raises(EnvelopeError):
        _seal([EventRow("k", "s", 0.0, {})])
    with pytest.raises(ValueError, match="sequence"):
        _seal(_telemetry(1), seq=0)
    with pytest.raises(EnvelopeError):
        _seal([EventRow("k", "s", 0.0, {"a": {1: "x", "b": 2}})], lane=Lane.EVENT)
    with pytest.raises(EnvelopeError):
        _seal([TelemetryRow("s/d/p", 2**64, 0, "", 0.0, None)])


def test_sealer_validates_its_identity() -> None:
    with pytest.raises(ValueError, match="gateway id"):
        make_sealer("gw/a", KID, KEY)
    with pytest.raises(ValueError, match="key id"):
        make_sealer("gw-a", "nothex", KEY)


def test_wire_layout_matches_the_protocol_document() -> None:
    payload = _seal(_telemetry(2))
    outer = msgpack.unpackb(payload, raw=False)
    assert outer[0] == "GH1" and len(outer[2]) == 64
    header = msgpack.unpackb(outer[1], raw=False)
    assert list(header) == ["v", "gw", "lane", "seq", "sealed_at", "n", "kid", "hist", "codec", "records"]
    columns = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(header["records"]), raw=False)
    assert list(columns) == ["pid", "p", "v", "q", "r", "t", "s"]
    assert columns["pid"] == ["site/m0/p0", "site/m1/p1"]
    assert columns["t"] == [1_767_225_600_000_000, 500_000]
    assert columns["s"] == [-250_000, -250_000]


def test_committed_protocol_example_is_what_the_sealer_makes() -> None:
    from tests.fixtures.protocol.generate import HERE, example_batch

    committed = (HERE / "example-batch.bin").read_bytes()
    assert example_batch() == committed, "format changed: update docs/protocol.md §9 and regenerate"
    env = decode_envelope(committed)
    assert (env.gateway_id, env.seq, env.record_count) == ("gw-demo", 42, 3)
