"""Batches as a broken or hostile gateway could send them, into central's ingest path.

Three kinds of input: any bytes and damaged real batches (stopped before or at the signature),
and *signed* garbage from an enrolled key (headers with wrong types and limits, records blobs that
are not zstd, zstd of msgpack that is not the column layout), which reaches the record decoder.
The decoder raises only EnvelopeError; the ingestor answers every one with an outcome, never an
exception, and stores only what verified.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import MAGIC, decode_envelope, decode_header, decode_records, make_sealer
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from tests.fuzz.support import fuzz_settings, mutated

GW = "gw-fuzz"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KID = key_id(KEY.public_key())
SEAL = make_sealer(GW, KID, KEY)


def _seeds() -> list[bytes]:
    rows = [
        TelemetryRow(f"s/d/p{i}", v, 0, "", 1.7e9 + i, None) for i, v in enumerate([1.5, 2, True, "x", None])
    ]
    events = [EventRow("alarm.raised", "s/d/p", 1.7e9, {"n": 1, "nested": [1, {"a": None}]})]
    return [
        SEAL(lane=Lane.TELEMETRY, seq=1, rows=rows, historical=False, sealed_at=1.7e9),
        SEAL(lane=Lane.EVENT, seq=2, rows=events, historical=True, sealed_at=1.7e9),
        SEAL(lane=Lane.TELEMETRY, seq=3, rows=[], historical=False, sealed_at=1.7e9),
    ]


SEEDS = _seeds()

_msgpack_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # what msgpack can carry
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_msgpack_values = st.recursive(
    _msgpack_scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=30,
)


def _column_maps() -> st.SearchStrategy[Any]:
    """Records that look like the column layout: the right keys, wrong shapes and types."""
    keys = ["p", "v", "q", "r", "t", "s", "k", "src", "d", "ts"]
    return st.dictionaries(
        st.sampled_from(keys), st.lists(_msgpack_values, max_size=6) | _msgpack_values, max_size=8
    )


@st.composite
def signed_garbage(draw: st.DrawFn) -> bytes:
    records_raw = msgpack.packb(draw(st.one_of(_column_maps(), _msgpack_values)), use_bin_type=True)
    blob_kind = draw(st.sampled_from(("zstd", "zstd_nosize", "raw", "truncated")))
    if blob_kind == "zstd":
        blob = zstandard.ZstdCompressor(write_content_size=True).compress(records_raw)
    elif blob_kind == "zstd_nosize":
        blob = zstandard.ZstdCompressor(write_content_size=False).compress(records_raw)
    elif blob_kind == "truncated":
        full = zstandard.ZstdCompressor(write_content_size=True).compress(records_raw)
        blob = full[: draw(st.integers(0, len(full)))]
    else:
        blob = records_raw
    header: dict[str, Any] = {
        "v": draw(st.sampled_from([1, 1, 1, 2, "1"])),
        "gw": GW,
        "lane": draw(st.sampled_from(["telemetry", "event", "other"])),
        "seq": draw(st.one_of(st.integers(1, 10), st.integers(-5, 2**64 - 1))),
        "sealed_at": draw(st.one_of(st.floats(allow_nan=True), st.integers(-(2**63), 2**63 - 1))),
        "n": draw(st.one_of(st.integers(0, 8), st.integers(-1, 2**40))),
        "kid": KID,
        "hist": draw(st.one_of(st.booleans(), st.integers(0, 1))),
        "codec": draw(st.sampled_from(["zstd", "zstd", "gzip"])),
        "records": blob,
    }
    if draw(st.booleans()):
        header.pop(draw(st.sampled_from(sorted(header))))
    signed = msgpack.packb(header, use_bin_type=True)
    return bytes(msgpack.packb([MAGIC, signed, KEY.sign(signed)], use_bin_type=True))


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingestor]:
    store = CentralStore(Path(tmp_path_factory.mktemp("central")) / "central.db")
    try:
        yield Ingestor(store, KeyRegistry({GW: {KID: KEY.public_key()}}), clock=time.time)
    finally:
        store.close()


def _decode(payload: bytes) -> None:
    try:
        decode_records(decode_header(payload))
    except EnvelopeError:
        pass
    try:
        decode_envelope(payload)
    except EnvelopeError:
        pass


@fuzz_settings()
@given(mutated(SEEDS, max_random=400))
def test_damaged_batches_raise_only_envelope_errors(payload: bytes) -> None:
    _decode(payload)


@fuzz_settings()
@given(signed_garbage())
def test_signed_garbage_raises_only_envelope_errors(payload: bytes) -> None:
    _decode(payload)


@fuzz_settings()
@given(
    st.one_of(mutated(SEEDS, max_random=400), signed_garbage()),
    st.sampled_from([(GW, "telemetry"), (GW, "event"), ("gw-other", "telemetry"), ("../x", "telemetry")]),
)
def test_central_ingest_answers_every_payload(
    ingestor: Ingestor, payload: bytes, route: tuple[str, str]
) -> None:
    gateway_id, lane = route
    outcome = ingestor.ingest(payload, gateway_id=gateway_id, lane=lane, transport="mqtt")
    assert outcome.status in ("stored", "duplicate", "rejected")
    if outcome.status == "rejected":
        assert outcome.reason and outcome.ack is None
    ingestor.note_state(gateway_id, payload)
