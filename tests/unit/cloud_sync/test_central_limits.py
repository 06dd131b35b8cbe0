"""Central's resource bounds: msgpack amplification, the byte-bounded ingest queue, batched audit rows."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.central.byte_queue import ByteBoundedQueue
from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import decode_header, decode_records
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id

KEY = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)
KID = key_id(KEY.public_key())


def peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(EnvelopeError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_nested_containers_in_the_unauthenticated_header_build_nothing() -> None:
    """Before the header was read without building containers, this 1 MiB payload became a
    million dicts (~70 MiB) before its shape was checked."""
    count = 1 << 20
    header = b"\x8a\xa1v\xdd" + count.to_bytes(4, "big") + b"\x80" * count
    payload = msgpack.packb(["GH1", header, b"s" * 64], use_bin_type=True)
    assert peak_bytes(lambda: decode_header(payload)) < 6 * len(payload)
    outer_bomb = b"\x93\xdd" + count.to_bytes(4, "big") + b"\x80" * count
    assert peak_bytes(lambda: decode_header(outer_bomb)) < 6 * len(outer_bomb)


def signed_events(columns: dict[str, Any], n: int) -> bytes:
    raw = msgpack.packb(columns, use_bin_type=True)
    blob = zstandard.ZstdCompressor(write_content_size=True).compress(raw)
    header = msgpack.packb(
        {
            "v": 1,
            "gw": "gw-a",
            "lane": "event",
            "seq": 1,
            "sealed_at": 1.0,
            "n": n,
            "kid": KID,
            "hist": False,
            "codec": "zstd",
            "records": blob,
        },
        use_bin_type=True,
    )
    return msgpack.packb(["GH1", header, KEY.sign(header)], use_bin_type=True)


def test_a_signed_batch_cannot_make_central_build_a_million_maps() -> None:
    """Columns are read with max_*_len and a container budget (16 per record): before, the
    records of this one-event batch unpacked to a million dicts (~70 MiB) before the column
    check refused them."""
    bomb = [[{}] * 100_000 for _ in range(10)]
    payload = signed_events({"k": ["x"], "src": ["y"], "t": [0], "d": [{"a": bomb}]}, n=1)
    header = decode_header(payload)
    assert peak_bytes(lambda: decode_records(header)) < 8 * 1024 * 1024
    # One column longer than any batch may be is refused by its length alone.
    long = signed_events({"k": ["x"] * 100_001, "src": [], "t": [], "d": []}, n=1)
    with pytest.raises(EnvelopeError, match="within the limits"):
        decode_records(decode_header(long))


async def test_the_queue_is_bounded_by_bytes_as_well_as_count() -> None:
    queue: ByteBoundedQueue[str] = ByteBoundedQueue(max_items=100, max_bytes=10_000)
    await queue.put("a", 6_000)
    blocked = asyncio.create_task(queue.put("b", 6_000))
    await asyncio.sleep(0.05)
    assert not blocked.done() and queue.nbytes == 6_000  # count allows it, bytes do not
    assert await queue.get() == "a"
    await asyncio.wait_for(blocked, timeout=5)
    assert queue.nbytes == 6_000 and queue.qsize() == 1
    # An item over the byte bound still passes, alone, rather than blocking for ever.
    assert await queue.get() == "b"
    await asyncio.wait_for(queue.put("huge", 50_000), timeout=5)
    assert queue.peak_bytes == 50_000
    with pytest.raises(asyncio.QueueEmpty):
        await queue.get_nowait() and await queue.get_nowait()


def test_rejections_are_written_in_one_transaction_per_group(tmp_path: Path) -> None:
    """Before, each rejected message was its own fsync'd transaction: 50 garbage messages, 50
    commits."""
    store = CentralStore(tmp_path / "central.db")
    registry = KeyRegistry()
    registry.enroll("gw-a", KEY.public_key())
    ingestor = Ingestor(store, registry, clock=lambda: 1.0)
    commits: list[str] = []
    store._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    outcomes = ingestor.ingest_many(
        [(b"junk%d" % i, "gw-a", "telemetry") for i in range(50)], transport="mqtt"
    )
    assert {o.status for o in outcomes} == {"rejected"} and ingestor.audit_pending == 50
    assert ingestor.flush_audit() == 50
    assert len(commits) == 1
    assert store.count("rejected") == 50
    store.close()


def test_the_audit_buffer_is_bounded_and_counts_what_it_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloud_sync.central.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "MAX_PENDING_AUDIT", 10)
    store = CentralStore(tmp_path / "central.db")
    ingestor = Ingestor(store, KeyRegistry({"gw-a": {KID: KEY.public_key()}}), clock=lambda: 1.0)
    ingestor.verify_many([(b"junk", "gw-a", "telemetry")] * 25, transport="https")
    assert ingestor.audit_pending == 10 and ingestor.counters["audit_dropped"] == 15
    assert ingestor.counters["rejected"] == 25  # every rejection is still counted
    ingestor.flush_audit()
    assert store.count("rejected") == 10
    store.close()
