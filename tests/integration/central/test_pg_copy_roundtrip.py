"""Central's binary COPY of telemetry against a real PostgreSQL (tests/pg.py).

What the encoder writes is read back as written, in both of its layouts; and the store keeps the
same rows, latest values and duplicate decisions whether ingest hands it decoded columns or rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Any

import asyncpg

from cloud_sync.central.storage.pg_copy import (
    COPY_HEADER,
    COPY_TRAILER,
    TELEMETRY_COLUMNS,
    encode_value,
    one_layout,
    telemetry_copy_rows,
)
from cloud_sync.central.storage.postgres import PostgresStore
from cloud_sync.central.store import BatchMeta
from cloud_sync.envelope import TelemetryColumns, decode_header, decode_telemetry_columns
from cloud_sync.ports import Lane, TelemetryRow
from tests.integration.central.conftest import make_gateway
from tests.pg import Postgres

T0 = 1_767_225_600.0


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b


async def _copy_back(url: str, cols: tuple[list[Any], ...]) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE t (LIKE telemetry, ord serial)")
        body = COPY_HEADER + telemetry_copy_rows(*cols) + COPY_TRAILER
        await conn.copy_to_table("t", source=memoryview(body), columns=TELEMETRY_COLUMNS, format="binary")
        return [
            tuple(r) for r in await conn.fetch(f"SELECT {', '.join(TELEMETRY_COLUMNS)} FROM t ORDER BY ord")
        ]
    finally:
        await conn.close()


def _expected(cols: tuple[list[Any], ...]) -> list[tuple[Any, ...]]:
    return [(p, t, s, *encode_value(v), q, r, h, seq) for p, t, s, v, q, r, h, seq in zip(*cols, strict=True)]


def _check_round_trip(url: str, cols: tuple[list[Any], ...]) -> None:
    got = asyncio.run(_copy_back(url, cols))
    want = _expected(cols)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert all(_same(a, b) for a, b in zip(g, w, strict=True)), (g, w)


def test_the_fast_layout_reads_back_as_written(postgres: Postgres) -> None:
    url = postgres.create_database()
    PostgresStore(url).close()  # the schema
    n = 50
    cols: tuple[list[Any], ...] = (
        [1 + i % 9 for i in range(n)],
        [T0 + i / 1000 for i in range(n)],
        [T0 - 1 + i for i in range(n)],
        [[True, 7, -(2**53), 2.5, math.nan, -math.inf][i % 6] for i in range(n)],
        [i % 3 for i in range(n)],
        ["stale"] * n,
        [i % 2 == 0 for i in range(n)],
        [10 + i // 10 for i in range(n)],
    )
    assert one_layout(cols[2], cols[3], cols[5])
    _check_round_trip(url, cols)


def test_every_other_layout_reads_back_as_written(postgres: Postgres) -> None:
    url = postgres.create_database()
    PostgresStore(url).close()
    values: list[Any] = [None, "ünïcode ✓", "", 2**63, -(2**53) - 1, 1.25, False, 0]
    n = len(values) * 2
    cols: tuple[list[Any], ...] = (
        [2**31 - 1 - i for i in range(n)],
        [T0 + i for i in range(n)],
        [None if i % 3 else T0 - i for i in range(n)],
        values * 2,
        [i % 3 for i in range(n)],
        ["", "comm", "ünï"] * (n // 3) + [""] * (n % 3),
        [True] * n,
        [2**62] * n,
    )
    assert not one_layout(cols[2], cols[3], cols[5])
    _check_round_trip(url, cols)


def _rows(gw: str, seq: int, *, values: list[Any] | None = None, step: float = 1.0) -> list[TelemetryRow]:
    vals = values if values is not None else [seq * 100.0 + i for i in range(30)]
    return [
        TelemetryRow(f"{gw}/p{i % 7}", v, 0, "", T0 + seq * 100 + i * step, None) for i, v in enumerate(vals)
    ]


def _meta(gw: str, seq: int, payload: bytes) -> BatchMeta:
    return BatchMeta(gw, Lane.TELEMETRY, seq, "k" * 16, T0 + seq, False, hashlib.sha256(payload).digest())


def _store(url: str, *, columnar: bool, prepare: bool = False, twice: bool = True) -> dict[str, Any]:
    gw = make_gateway("gw-a", 1)
    batches = [
        (1, _rows("gw-a", 1)),
        # Out of time order within the batch: latest must still pick each point's newest.
        (2, _rows("gw-a", 2, step=-1.0)),
        # A layout of its own in the same group: the group is written batch by batch.
        (3, _rows("gw-a", 3, values=["on", None, 2**60, True, 1.5, 7])),
    ]
    if twice:
        batches.append((2, _rows("gw-a", 2, step=-1.0)))  # the same batch twice in one group
    group: list[tuple[BatchMeta, Any]] = []
    for seq, rows in batches:
        payload = gw.telemetry(seq, rows)
        records: Any = decode_telemetry_columns(decode_header(payload)) if columnar else rows
        assert isinstance(records, TelemetryColumns) == columnar
        group.append((_meta("gw-a", seq, payload), records))
    store = PostgresStore(url)
    try:
        if prepare:
            store.prepare_batches(group)  # as ingest's decoding stage does
            assert len(store._ready) == 1
        results = store.store_batches(group, transport="mqtt", received_at=T0 + 999)
        assert not store._ready  # taken by the transaction (used, or encoded afresh)
        return {
            "results": [(r.stored, r.same_bytes) for r in results],
            "count": store.count("telemetry"),
            "latest": store.latest(gateways=None, limit=100),
            "history": {f"gw-a/p{i}": store.history(f"gw-a/p{i}", T0, T0 + 10_000, 1000) for i in range(7)},
            "ack": store.ack_position("gw-a", Lane.TELEMETRY),
        }
    finally:
        store.close()


def test_columns_and_rows_store_the_same(postgres: Postgres) -> None:
    from_columns = _store(postgres.create_database(), columnar=True)
    from_rows = _store(postgres.create_database(), columnar=False)
    # Encoded ahead, then a duplicate in the group: the transaction encodes afresh.
    assert _store(postgres.create_database(), columnar=True, prepare=True) == from_columns
    assert from_columns == from_rows
    assert from_columns["results"] == [(True, True), (True, True), (True, True), (False, True)]
    assert from_columns["count"] == 66
    assert from_columns["ack"] == (3, ())
    latest = {r["point_id"]: (r["ts"], r["value"]) for r in from_columns["latest"]}
    # Batch 3 is the newest in time; its values of every kind come back as they were sent.
    assert [latest[f"gw-a/p{i}"][1] for i in range(6)] == ["on", None, 2**60, True, 1.5, 7]
    # Batch 3 has no p6. Batch 2 ran backwards in time: p6's first row there is its newest.
    assert latest["gw-a/p6"] == (T0 + 200 - 6, 206.0)
    history = from_columns["history"]["gw-a/p1"]
    assert [h["ts"] for h in history] == sorted(h["ts"] for h in history)


def test_a_group_encoded_ahead_stores_what_it_would_have_stored(postgres: Postgres) -> None:
    ahead = _store(postgres.create_database(), columnar=True, prepare=True, twice=False)
    assert ahead == _store(postgres.create_database(), columnar=False, twice=False)
    assert ahead["results"] == [(True, True)] * 3 and ahead["count"] == 66
