"""Central's PostgreSQL backend (``database: postgresql://...``): asyncpg, COPY, partitions.

The interface is the SQLite backend's (:class:`~cloud_sync.central.storage.interface.CentralStorage`,
synchronous); asyncpg runs on an event loop of this store's own, in a thread, and each call hands
it a coroutine. Several central processes may share one database (``--workers``): everything
that must be exactly once is decided by the database inside one transaction per group of
batches, never by a process's memory.

- **Exactly once.** ``INSERT INTO batches ... ON CONFLICT DO NOTHING RETURNING``: a (gateway,
  lane, seq) that another transaction stored (or is storing: the insert waits for it) is a
  duplicate, and its records are not copied. Records, latest values, alarms and the lane's
  contiguous ack commit with the batch rows, or none of them do.
- **COPY.** A group's telemetry goes in with one binary ``COPY`` into the partitioned table, its
  stream built from the decoded columns (:mod:`~cloud_sync.central.storage.pg_copy`), not row
  by row, and in point order. Ingest has it built ahead (:meth:`PostgresStore.prepare_batches`)
  while the previous group's transaction runs; the transaction only sends it.
- **Lock order.** Lanes, gateways and latest values are updated at the end of the group in sorted
  order, so two workers never wait on each other crosswise; a deadlock PostgreSQL still reports
  (the same batch delivered to two workers at once) retries the whole group.
"""

from __future__ import annotations

import asyncio
import json
import math
import operator
import threading
from collections.abc import Awaitable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import asyncpg
import structlog

from cloud_sync.ack import MAX_MISSING_RANGES
from cloud_sync.central.config import RetentionConfig
from cloud_sync.central.storage.alarms import alarm_change
from cloud_sync.central.storage.common import finite, missing_ranges, state_versions
from cloud_sync.central.storage.pg_copy import (
    COPY_HEADER,
    COPY_TRAILER,
    TELEMETRY_COLUMNS,
    encode_value,
    one_layout,
    telemetry_copy_rows,
)
from cloud_sync.central.storage.postgres_schema import (
    EVENTS,
    HOURLY,
    MIGRATIONS,
    SANE_FROM,
    SANE_TO,
    TELEMETRY,
    PartitionScheme,
    partition_bounds,
    partition_end,
    partition_name,
)
from cloud_sync.central.store import (
    _EVICTED,
    _MAX_EVICTED_RANGE,
    MAX_REJECTED_ROWS,
    BatchMeta,
    Rejection,
    StoreResult,
)
from cloud_sync.envelope import TelemetryColumns
from cloud_sync.errors import CentralStoreError
from cloud_sync.ports import EventRow, Lane, TelemetryRow

__all__ = ["PostgresStore"]

_LOG = structlog.get_logger(__name__)
T = TypeVar("T")

_LANES: Final = (Lane.EVENT.value, Lane.TELEMETRY.value)
_MIGRATION_LOCK: Final = 0x6761_7465  # advisory lock key: "gate"
_RETRIES: Final = 5
_COUNTABLE: Final = frozenset({"batches", "telemetry", "latest", "events", "rejected", "gateways", "alarms"})


def _decode(vnum: float | None, vtext: str | None, vkind: int) -> Any:
    if vkind == 1:
        return bool(vnum)
    if vkind == 2:
        return int(vtext) if vtext is not None else (None if vnum is None else int(vnum))
    if vkind == 3:
        return finite(vnum)
    if vkind == 4:
        return vtext
    return None


def _sane(ts: float) -> bool:
    return math.isfinite(ts) and SANE_FROM <= ts < SANE_TO


def _as_columns(records: Sequence[TelemetryRow]) -> TelemetryColumns:
    """Ingest hands over decoded columns already; rows (other callers) are transposed once."""
    if isinstance(records, TelemetryColumns):
        return records
    if not records:
        return TelemetryColumns([], [], [], [], [], [], [])
    index: dict[str, int] = {}
    p = [index.setdefault(r[0], len(index)) for r in records]
    _, v, q, r, receipt, source = map(list, zip(*records, strict=True))
    return TelemetryColumns(list(index), p, v, q, r, receipt, source)


def _days(receipt: list[float]) -> set[float]:
    """The UTC days (as their first second) the receipt times fall in; NaN has none."""
    if not receipt:
        return set()
    lo, hi = min(receipt), max(receipt)
    if lo == lo and hi == hi and lo // 86400 == hi // 86400:
        return {lo // 86400 * 86400}  # a batch nearly always lies within one day
    return {ts // 86400 * 86400 for ts in receipt if ts == ts}


def _copy_stream(copied: list[tuple[TelemetryColumns, list[int], bool, int]]) -> bytes:
    """The group's telemetry as one binary COPY stream, in point order when it can be.

    Rows in point order walk the (point, ts) index left to right instead of jumping between
    its leaf pages for every row: PostgreSQL spends about a fifth less on the COPY (and a
    point's rows share heap pages, which history queries like). The sort is stable, so each
    point's rows keep their order of arrival. A group holding a batch of another layout (text
    values, nulls) is written batch by batch as it came.
    """
    columns: list[list[Any]] = [[] for _ in range(8)]
    for rows, points, hist, seq in copied:
        n = len(points)
        parts: tuple[Sequence[Any], ...] = (points, rows.receipt, rows.source, rows.v, rows.q, rows.r)
        for column, part in zip(columns, (*parts, [hist] * n, [seq] * n), strict=True):
            column.extend(part)
    point, receipt, source, value, quality, reason, hist_col, seq_col = columns
    n = len(point)
    if one_layout(source, value, reason) and n > 1:
        pick = operator.itemgetter(*sorted(range(n), key=point.__getitem__))
        # A column with one value throughout (often source, quality, reason, historical) needs no reordering.
        body = telemetry_copy_rows(
            *(column if column.count(column[0]) == n else pick(column) for column in columns)
        )
    else:
        body = b"".join(
            telemetry_copy_rows(
                points,
                rows.receipt,
                rows.source,
                rows.v,
                rows.q,
                rows.r,
                [hist] * len(points),
                [seq] * len(points),
            )
            for rows, points, hist, seq in copied
        )
    return COPY_HEADER + body + COPY_TRAILER


# point id → (receipt time, gateway, the batch's columns, row): the newest row of the group.
_Newest = dict[str, tuple[float, str, TelemetryColumns, int]]


def _note_newest(newest: _Newest, gw: str, cols: TelemetryColumns) -> None:
    """Keep each point's newest row (the latest receipt time; on a tie the later row)."""
    receipt = cols.receipt
    last: dict[int, int]
    if all(map(operator.le, receipt, receipt[1:])):
        # In time order (the normal case) a point's last row is its newest: one C-level pass.
        last = dict(zip(cols.p, range(len(receipt)), strict=True))
    else:
        last = {}
        for i, (point, ts) in enumerate(zip(cols.p, receipt, strict=True)):
            j = last.get(point)
            if j is None or ts >= receipt[j]:
                last[point] = i
    names = cols.names
    for point, i in last.items():
        name, ts = names[point], receipt[i]
        seen = newest.get(name)
        if seen is None or ts >= seen[0]:
            newest[name] = (ts, gw, cols, i)


_Telemetry = list[tuple[BatchMeta, TelemetryColumns]]


@dataclass(frozen=True, slots=True)
class _TelemetryWork:
    """What a group's telemetry sends: its COPY stream and its latest rows, as columns."""

    copy: bytes
    latest: list[list[Any]]


def _telemetry_work(telemetry: _Telemetry, ids: dict[str, int]) -> _TelemetryWork:
    copied: list[tuple[TelemetryColumns, list[int], bool, int]] = []
    newest: _Newest = {}
    for meta, rows in telemetry:
        by_index = [ids[name] for name in rows.names]
        copied.append((rows, list(map(by_index.__getitem__, rows.p)), meta.historical, meta.seq))
        _note_newest(newest, meta.gateway_id, rows)
    # In point order: two workers' upserts never lock latest rows crosswise.
    latest = [
        (point, gw, ts, rows.source[i], *encode_value(rows.v[i]), rows.q[i], rows.r[i])
        for point, (ts, gw, rows, i) in sorted(newest.items())
    ]
    return _TelemetryWork(_copy_stream(copied), [list(c) for c in zip(*latest, strict=True)])


def _identity(telemetry: _Telemetry) -> tuple[int, ...]:
    return tuple(id(rows) for _, rows in telemetry)


class PostgresStore:
    backend: Final = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="central-postgres", daemon=True)
        self._thread.start()
        self._partitions: set[str] = set()
        self._point_ids: dict[str, int] = {}
        # Groups whose telemetry ingest had encoded ahead (prepare_batches), by the identity of
        # their batches' columns; the entries hold those columns, so an id is not reused.
        self._ready: dict[tuple[int, ...], tuple[_Telemetry, _TelemetryWork]] = {}
        self._ready_lock = threading.Lock()
        self._rejections = 0
        try:
            self._pool: asyncpg.Pool = self._run(self._create_pool(url, pool_size))
            self._run(self._migrate())
        except BaseException:
            self._stop_loop()
            raise

    # -- plumbing -----------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        async def wrapped() -> T:
            try:
                return await coro
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise CentralStoreError(f"central database: {exc}") from exc

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result()

    @staticmethod
    async def _create_pool(url: str, size: int) -> asyncpg.Pool:
        # Made on the store's own loop, which the pool's connections then belong to.
        pool: asyncpg.Pool = await asyncpg.create_pool(url, min_size=1, max_size=size, command_timeout=120)
        return pool

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._pool.close())
        except CentralStoreError as exc:
            _LOG.warning("closing the database pool", error=str(exc))
        finally:
            self._stop_loop()

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if version > len(MIGRATIONS):
                raise CentralStoreError(
                    f"database schema version {version}, this central knows {len(MIGRATIONS)} (no migration)"
                )
            for target in range(version + 1, len(MIGRATIONS) + 1):
                await conn.execute(MIGRATIONS[target - 1])
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", target)
                _LOG.info("database migrated", version=target)

    def check_writable(self) -> str | None:
        """None when a write transaction can be opened (``/healthz``), else why not."""

        async def probe() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT txid_current()")

        try:
            self._run(probe())
        except CentralStoreError as exc:
            return str(exc)
        return None

    async def _ensure_partitions(self, scheme: PartitionScheme, times: Iterable[float]) -> None:
        wanted: dict[str, tuple[float, float]] = {}
        for ts in times:
            if not _sane(ts):
                continue  # the default partition takes it
            start, end, suffix = partition_bounds(scheme, ts)
            name = partition_name(scheme, suffix)
            if name not in self._partitions:
                wanted[name] = (start, end)
        for name, (start, end) in sorted(wanted.items()):
            # Its own short transaction (not the batch's): a partition outlives a rolled-back batch,
            # and another worker making the same one at the same moment is not an error.
            async with self._pool.acquire() as conn:
                try:
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {scheme.table}"
                        f" FOR VALUES FROM ({start!r}) TO ({end!r})"
                    )
                except (asyncpg.DuplicateTableError, asyncpg.UniqueViolationError):
                    pass
            self._partitions.add(name)

    # -- writing ------------------------------------------------------------------------------

    def store_batch(
        self,
        meta: BatchMeta,
        records: Sequence[TelemetryRow] | Sequence[EventRow],
        *,
        transport: str,
        received_at: float,
    ) -> StoreResult:
        return self.store_batches([(meta, records)], transport=transport, received_at=received_at)[0]

    def store_batches(
        self,
        batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]],
        *,
        transport: str,
        received_at: float,
        audit: Sequence[Rejection] = (),
    ) -> list[StoreResult]:
        return self._run(self._store_batches(batches, transport, received_at, audit))

    def prepare_batches(
        self, batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]]
    ) -> None:
        """Encode a group's telemetry ahead of :meth:`store_batches` (optional; ingest calls it
        from its decoding stage, so that this Python work overlaps the database's work on the
        previous group instead of following it). Makes the partitions and point ids the group
        needs, which outlive it harmlessly. The group's transaction uses the result when the
        same batches arrive and every one of them is stored; otherwise it encodes afresh."""
        telemetry = [(m, r) for m, r in batches if isinstance(r, TelemetryColumns)]
        if not telemetry:
            return
        ids = self._run(self._make_room(batches))
        work = _telemetry_work(telemetry, ids)
        with self._ready_lock:
            self._ready[_identity(telemetry)] = (telemetry, work)
            while len(self._ready) > 4:  # prepared, then never stored (the group failed)
                del self._ready[next(iter(self._ready))]

    async def _make_room(
        self, batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]]
    ) -> dict[str, int]:
        """The partitions the batches' times fall in, and the ids of their points."""
        telemetry_times: set[float] = set()
        event_times: set[float] = set()
        points: dict[str, str] = {}
        for meta, records in batches:
            if isinstance(records, TelemetryColumns):
                telemetry_times.update(_days(records.receipt))
                for point in set(records.names).difference(self._point_ids):
                    points.setdefault(point, meta.gateway_id)
            else:
                event_times.update(r.ts for r in records)  # type: ignore[union-attr]
        await self._ensure_partitions(TELEMETRY, telemetry_times)
        await self._ensure_partitions(EVENTS, event_times)
        return await self._point_id_map(points)

    async def _store_batches(
        self,
        batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]],
        transport: str,
        received_at: float,
        audit: Sequence[Rejection],
    ) -> list[StoreResult]:
        batches = [
            (meta, _as_columns(records) if meta.lane is Lane.TELEMETRY else records)  # type: ignore[arg-type]
            for meta, records in batches
        ]
        ids = await self._make_room(batches)
        with self._ready_lock:
            ready = self._ready.pop(
                _identity([(m, r) for m, r in batches if isinstance(r, TelemetryColumns)]), None
            )
        for attempt in range(_RETRIES):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await self._store_group(conn, batches, transport, received_at, audit, ids, ready)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                # The same batch delivered to two workers at once: one of them tries again.
                _LOG.info(
                    "group retried after a conflict with another worker", attempt=attempt, error=str(exc)
                )
                await asyncio.sleep(0.01 * (attempt + 1))
        raise CentralStoreError(f"central database: group not stored after {_RETRIES} conflicts")

    async def _point_id_map(self, points: dict[str, str]) -> dict[str, int]:
        known = self._point_ids
        new = [p for p in points if p not in known]
        if new:
            async with self._pool.acquire() as conn:
                # Outside the batch's transaction: a point id that outlives a rolled-back batch
                # is harmless, and workers do not queue behind each other's open transactions.
                await conn.execute(
                    "INSERT INTO points (point_id, gateway_id) SELECT * FROM unnest($1::text[], $2::text[])"
                    " ON CONFLICT (point_id) DO NOTHING",
                    new,
                    [points[p] for p in new],
                )
                for row in await conn.fetch("SELECT point_id, id FROM points WHERE point_id = ANY($1)", new):
                    known[row[0]] = row[1]
        return known

    async def _store_group(
        self,
        conn: asyncpg.Connection,
        batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]],
        transport: str,
        received_at: float,
        audit: Sequence[Rejection],
        ids: dict[str, int],
        ready: tuple[_Telemetry, _TelemetryWork] | None,
    ) -> list[StoreResult]:
        results: list[StoreResult] = []
        telemetry: _Telemetry = []
        events: list[tuple[Any, ...]] = []
        lanes: set[tuple[str, str]] = set()
        gateways: set[str] = set()
        alarm_events: list[tuple[str, EventRow]] = []
        # All the group's batch rows in one statement, in the group's order (as one statement
        # each would take their locks). A key it did not insert is a duplicate (or a placeholder)
        # and is looked at on its own below; so is the second of a batch that came twice.
        batch_rows = [
            (
                m.gateway_id,
                str(m.lane),
                m.seq,
                m.digest,
                m.key_id,
                m.sealed_at,
                received_at,
                len(records),
                m.historical,
                transport,
            )
            for m, records in batches
        ]
        fresh = {
            (r[0], r[1], r[2])
            for r in await conn.fetch(
                "INSERT INTO batches SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[],"
                " $5::text[], $6::float8[], $7::float8[], $8::integer[], $9::boolean[], $10::text[])"
                " ON CONFLICT DO NOTHING RETURNING gateway_id, lane, seq",
                *(list(column) for column in zip(*batch_rows, strict=True)),
            )
        }
        for (meta, records), batch_row in zip(batches, batch_rows, strict=True):
            gw, lane, seq = meta.gateway_id, str(meta.lane), meta.seq
            gateways.add(gw)
            row_values = batch_row[3:]
            if (gw, lane, seq) in fresh:
                fresh.discard((gw, lane, seq))
            else:
                digest = await conn.fetchval(
                    "SELECT digest FROM batches WHERE gateway_id=$1 AND lane=$2 AND seq=$3 FOR UPDATE",
                    gw,
                    lane,
                    seq,
                )
                if bytes(digest) != _EVICTED:
                    results.append(StoreResult(stored=False, same_bytes=bytes(digest) == meta.digest))
                    continue
                # Reported evicted, yet it arrived (it was in flight): keep it.
                await conn.execute(
                    "UPDATE batches SET digest=$1, key_id=$2, sealed_at=$3, received_at=$4, record_count=$5,"
                    " historical=$6, transport=$7 WHERE gateway_id=$8 AND lane=$9 AND seq=$10",
                    *row_values,
                    gw,
                    lane,
                    seq,
                )
            lanes.add((gw, lane))
            hist = meta.historical
            if isinstance(records, TelemetryColumns):
                telemetry.append((meta, records))
            else:
                for e in records:
                    ev: EventRow = e  # type: ignore[assignment]
                    events.append((gw, seq, ev.kind, ev.source, ev.ts, json.dumps(ev.data), hist))
                    if ev.kind == "outbox.gap":
                        lanes.update(await self._note_eviction(conn, gw, ev, received_at))
                    elif ev.kind.startswith("alarm."):
                        alarm_events.append((gw, ev))
            results.append(StoreResult(stored=True, same_bytes=True))
        work: _TelemetryWork | None = None
        if telemetry:
            # Encoded ahead only if exactly these batches were (none turned out a duplicate).
            same = ready is not None and len(ready[0]) == len(telemetry)
            if (
                ready is not None
                and same
                and all(a[1] is b[1] for a, b in zip(ready[0], telemetry, strict=True))
            ):
                work = ready[1]
            else:
                work = _telemetry_work(telemetry, ids)
            # A memoryview: asyncpg would take bytes for a file name.
            await conn.copy_to_table(
                "telemetry", source=memoryview(work.copy), columns=TELEMETRY_COLUMNS, format="binary"
            )
        if events:
            await conn.executemany(
                "INSERT INTO events (gateway_id, seq, kind, source, ts, data, historical)"
                " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
                events,
            )
        for gw, ev in alarm_events:
            await self._apply_alarm(conn, gw, ev)
        # Shared rows last and in sorted order: two workers never hold them crosswise.
        for gw in sorted(gateways):
            await conn.execute(
                "INSERT INTO gateways (gateway_id, first_seen, last_seen) VALUES ($1, $2, $2)"
                " ON CONFLICT (gateway_id) DO UPDATE"
                " SET last_seen=greatest(gateways.last_seen, excluded.last_seen)",
                gw,
                received_at,
            )
        for gw, lane in sorted(lanes):
            await self._advance(conn, gw, lane)
        if work is not None:
            await self._update_latest(conn, work.latest)
        await self._insert_rejections(conn, audit)
        return results

    @staticmethod
    async def _update_latest(conn: asyncpg.Connection, cols: list[list[Any]]) -> None:
        await conn.execute(
            "INSERT INTO latest SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[],"
            " $5::float8[], $6::text[], $7::int2[], $8::int2[], $9::text[])"
            " ON CONFLICT (point_id) DO UPDATE SET gateway_id=excluded.gateway_id, ts=excluded.ts,"
            " source_ts=excluded.source_ts, vnum=excluded.vnum, vtext=excluded.vtext, vkind=excluded.vkind,"
            " quality=excluded.quality, reason=excluded.reason WHERE excluded.ts >= latest.ts",
            *cols,
        )

    @staticmethod
    async def _advance(conn: asyncpg.Connection, gw: str, lane: str) -> None:
        """Move the lane's contiguous ack over every batch now present right above it."""
        await conn.execute(
            "INSERT INTO lanes (gateway_id, lane) VALUES ($1, $2) ON CONFLICT DO NOTHING", gw, lane
        )
        # The row lock serialises workers on this lane; the next statement then sees what the
        # other committed (READ COMMITTED takes a new snapshot per statement).
        acked = await conn.fetchval(
            "SELECT acked FROM lanes WHERE gateway_id=$1 AND lane=$2 FOR UPDATE", gw, lane
        )
        seqs = await conn.fetch(
            "SELECT seq FROM batches WHERE gateway_id=$1 AND lane=$2 AND seq>$3 ORDER BY seq", gw, lane, acked
        )
        new_acked = acked
        for (seq,) in seqs:
            if seq != new_acked + 1:
                break
            new_acked = seq
        if new_acked != acked:
            await conn.execute(
                "UPDATE lanes SET acked=$1 WHERE gateway_id=$2 AND lane=$3", new_acked, gw, lane
            )

    async def _note_eviction(
        self, conn: asyncpg.Connection, gw: str, r: EventRow, received_at: float
    ) -> set[tuple[str, str]]:
        """Placeholders for sequence numbers the gateway says will never come (docs/protocol.md §8)."""
        lo, hi = r.data.get("seq_from"), r.data.get("seq_to")
        lane = r.data.get("lane", Lane.TELEMETRY.value)
        if (
            type(lo) is not int
            or type(hi) is not int
            or not 1 <= lo <= hi
            or hi - lo > _MAX_EVICTED_RANGE
            or lane not in _LANES
        ):
            return set()
        await conn.execute(
            "INSERT INTO batches SELECT $1, $2, s, $3, '', 0, $4, 0, false, 'evicted'"
            " FROM generate_series($5::bigint, $6::bigint) AS s ON CONFLICT DO NOTHING",
            gw,
            lane,
            _EVICTED,
            received_at,
            lo,
            hi,
        )
        _LOG.warning(
            "gateway reports sequence numbers that will never come",
            gateway=gw,
            lane=lane,
            seq_from=lo,
            seq_to=hi,
            reason=r.data.get("reason"),
        )
        return {(gw, lane)}

    @staticmethod
    async def _apply_alarm(conn: asyncpg.Connection, gw: str, record: EventRow) -> None:
        change = alarm_change(record)
        if change is None:
            return
        open_id = await conn.fetchval(
            "SELECT id FROM alarms WHERE gateway_id=$1 AND alarm_key=$2 AND state<>'closed' FOR UPDATE",
            gw,
            change.key,
        )
        if open_id is None:
            if change.state == "closed":
                return
            await conn.execute(
                "INSERT INTO alarms (gateway_id, alarm_key, point_id, alarm_class, priority, state, message,"
                " raised_at, acked_at, acked_by, cleared_at, updated_at, version)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $8, nextval('alarm_versions'))",
                gw,
                change.key,
                change.point_id,
                change.alarm_class,
                change.priority,
                change.state,
                change.message,
                change.at,
                change.at if change.acked_by else None,
                change.acked_by,
                change.at if change.cleared else None,
            )
            await PostgresStore._log_alarm_change(conn, gw, change.key)
            return
        await conn.execute(
            "UPDATE alarms SET state=$1, updated_at=$2, version=nextval('alarm_versions'),"
            " acked_at=CASE WHEN $3::text IS NOT NULL THEN $2 ELSE acked_at END,"
            " acked_by=coalesce($3, acked_by),"
            " cleared_at=CASE WHEN $4 AND cleared_at IS NULL THEN $2 ELSE cleared_at END,"
            " message=CASE WHEN $5<>'' THEN $5 ELSE message END WHERE id=$6",
            change.state,
            change.at,
            change.acked_by,
            change.cleared,
            change.message,
            open_id,
        )
        await PostgresStore._log_alarm_change(conn, gw, change.key)

    @staticmethod
    async def _log_alarm_change(conn: asyncpg.Connection, gw: str, key: str) -> None:
        # The newest row of this alarm is the one just written (its version is the newest).
        await conn.execute(
            "INSERT INTO alarm_changes SELECT version, gateway_id, alarm_class, priority, updated_at,"
            " to_jsonb(a) FROM alarms a WHERE gateway_id=$1 AND alarm_key=$2 ORDER BY version DESC LIMIT 1",
            gw,
            key,
        )

    def record_rejection(self, **fields: Any) -> None:
        self.record_rejections([Rejection(**fields)])

    def record_rejections(self, rows: Sequence[Rejection]) -> None:
        if rows:
            self._run(self._record_rejections(rows))

    async def _record_rejections(self, rows: Sequence[Rejection]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._insert_rejections(conn, rows)

    async def _insert_rejections(self, conn: asyncpg.Connection, rows: Sequence[Rejection]) -> None:
        if not rows:
            return
        await conn.executemany(
            "INSERT INTO rejected (received_at, transport, gateway_id, lane, seq, reason, detail, size,"
            " digest)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    r.received_at,
                    r.transport,
                    r.gateway_id[:200],
                    r.lane[:50],
                    r.seq,
                    r.reason,
                    r.detail[:500],
                    r.size,
                    r.digest,
                )
                for r in rows
            ],
        )
        before = self._rejections
        self._rejections += len(rows)
        if self._rejections // 1000 != before // 1000:
            await conn.execute(
                "DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - $1", MAX_REJECTED_ROWS
            )

    def note_state(self, gateway_id: str, state: dict[str, Any], received_at: float) -> None:
        self._run(
            self._execute(
                "INSERT INTO gateways (gateway_id, first_seen, last_seen, state, state_ts, backlog,"
                " reported_seq,"
                " versions) VALUES ($1, $2, $2, $3, $2, $4::jsonb, $5::jsonb, $6::jsonb)"
                " ON CONFLICT (gateway_id) DO UPDATE SET last_seen=greatest(gateways.last_seen, $2),"
                " state=$3, state_ts=$2, backlog=$4::jsonb, reported_seq=$5::jsonb, versions=$6::jsonb",
                gateway_id,
                received_at,
                str(state.get("state", "unknown")),
                json.dumps(state.get("backlog") or {}),
                json.dumps(state.get("seq") or {}),
                json.dumps(state_versions(state)),
            )
        )

    async def _execute(self, sql: str, *args: Any) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    # -- ack positions ------------------------------------------------------------------------

    def ack_position(self, gateway_id: str, lane: Lane) -> tuple[int, tuple[tuple[int, int], ...]]:
        # One statement, one snapshot: the ack and the seqs above it are read together.
        rows = self._run(
            self._fetch(
                "SELECT coalesce((SELECT acked FROM lanes WHERE gateway_id=$1 AND lane=$2), 0) AS acked,"
                " array(SELECT seq FROM batches WHERE gateway_id=$1 AND lane=$2 AND seq >"
                " coalesce((SELECT acked FROM lanes WHERE gateway_id=$1 AND lane=$2), 0)"
                " ORDER BY seq LIMIT 100000) AS seqs",
                gateway_id,
                str(lane),
            )
        )
        acked = int(rows[0]["acked"])
        return acked, tuple(missing_ranges(acked, list(rows[0]["seqs"]), MAX_MISSING_RANGES))

    def count(self, table: str) -> int:
        if table not in _COUNTABLE:
            raise ValueError(table)
        rows = self._run(self._fetch(f"SELECT count(*) FROM {table}"))  # noqa: S608
        return int(rows[0][0])

    # -- queries for the API ------------------------------------------------------------------

    def gateway_rows(self, ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        return self._run(self._gateway_rows(None if ids is None else sorted(ids)))

    async def _gateway_rows(self, ids: list[str] | None) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            gws = await conn.fetch(
                "SELECT * FROM gateways WHERE $1::text[] IS NULL OR gateway_id = ANY($1) ORDER BY gateway_id",
                ids,
            )
            lanes = await conn.fetch(
                "SELECT l.gateway_id, l.lane, l.acked,"
                " array(SELECT seq FROM batches b WHERE b.gateway_id=l.gateway_id AND b.lane=l.lane"
                " AND b.seq>l.acked ORDER BY seq LIMIT 100000) AS seqs,"
                " t.seq AS top, t.received_at, t.sealed_at"
                " FROM lanes l LEFT JOIN LATERAL (SELECT seq, received_at, sealed_at FROM batches b"
                " WHERE b.gateway_id=l.gateway_id AND b.lane=l.lane ORDER BY seq DESC LIMIT 1) t ON true"
                " WHERE $1::text[] IS NULL OR l.gateway_id = ANY($1)",
                ids,
            )
            alarms = await conn.fetch(
                "SELECT gateway_id, alarm_class, count(*) FROM alarms"
                " WHERE state IN ('active_unacked', 'active_acked')"
                " AND ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " GROUP BY 1, 2",
                ids,
            )
        by_lane = {(r["gateway_id"], r["lane"]): r for r in lanes}
        active: dict[str, dict[str, int]] = {}
        for gw, klass, n in alarms:
            active.setdefault(gw, {})[klass] = n
        out: list[dict[str, Any]] = []
        for g in gws:
            gw = g["gateway_id"]
            row: dict[str, Any] = {
                "gateway_id": gw,
                "first_seen": g["first_seen"],
                "last_seen": g["last_seen"],
                "state": g["state"],
                "state_ts": g["state_ts"],
                "backlog": _json(g["backlog"]),
                "reported_seq": _json(g["reported_seq"]),
                "versions": _json(g["versions"]),
                "active_alarms": active.get(gw, {}),
                "lanes": {},
            }
            for lane in _LANES:
                r = by_lane.get((gw, lane))
                acked = int(r["acked"]) if r else 0
                top = r["top"] if r else None
                row["lanes"][lane] = {
                    "acked": acked,
                    "highest": max(int(top or 0), acked),
                    "missing": missing_ranges(acked, list(r["seqs"]) if r else [], MAX_MISSING_RANGES),
                    "last_batch_at": r["received_at"] if r else None,
                    "last_sealed_at": r["sealed_at"] if r else None,
                }
            out.append(row)
        return out

    def latest(
        self,
        *,
        gateways: Collection[str] | None,
        prefix: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = self._run(
            self._fetch(
                "SELECT * FROM latest WHERE ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " AND ($2::text IS NULL OR left(point_id, length($2)) = $2)"
                " AND ($3::text IS NULL OR strpos(lower(point_id), lower($3)) > 0)"
                ' AND ($4::text IS NULL OR point_id COLLATE "C" > $4) ORDER BY point_id COLLATE "C" LIMIT $5',
                None if gateways is None else list(gateways),
                prefix,
                q,
                after,
                limit,
            )
        )
        return [
            {
                "point_id": r["point_id"],
                "gateway_id": r["gateway_id"],
                "ts": r["ts"],
                "source_ts": r["source_ts"],
                "value": _decode(r["vnum"], r["vtext"], r["vkind"]),
                "quality": r["quality"],
                "reason": r["reason"],
            }
            for r in rows
        ]

    def point_gateway(self, point_id: str) -> str | None:
        rows = self._run(self._fetch("SELECT gateway_id FROM points WHERE point_id=$1", point_id))
        return None if not rows else str(rows[0][0])

    def history(self, point_id: str, start: float, end: float, limit: int) -> list[dict[str, Any]]:
        rows = self._run(
            self._fetch(
                "SELECT ts, source_ts, vnum, vtext, vkind, quality, reason, historical FROM telemetry"
                " WHERE point=(SELECT id FROM points WHERE point_id=$1) AND ts>=$2 AND ts<$3"
                " ORDER BY ts LIMIT $4",
                point_id,
                start,
                end,
                limit,
            )
        )
        return [
            {
                "ts": r["ts"],
                "source_ts": r["source_ts"],
                "value": _decode(r["vnum"], r["vtext"], r["vkind"]),
                "quality": r["quality"],
                "reason": r["reason"],
                "historical": r["historical"],
            }
            for r in rows
        ]

    def history_buckets(self, point_id: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        num = "vnum) FILTER (WHERE quality=0 AND vkind IN (2, 3)"
        rows = self._run(
            self._fetch(
                f"SELECT trunc((ts - $2) / $4)::bigint AS b, count(*) AS n, avg({num}) AS a,"
                f" min({num}) AS lo,"
                f" max({num}) AS hi, (array_agg(vnum ORDER BY ts DESC))[1] AS lnum,"
                " (array_agg(vtext ORDER BY ts DESC))[1] AS ltext,"
                " (array_agg(vkind ORDER BY ts DESC))[1] AS lkind"
                " FROM telemetry WHERE point=(SELECT id FROM points WHERE point_id=$1) AND ts>=$2 AND ts<$3"
                " GROUP BY b ORDER BY b",
                point_id,
                start,
                end,
                step,
            )
        )
        return [
            {
                "ts": start + r["b"] * step,
                "count": r["n"],
                "avg": finite(r["a"]),
                "min": finite(r["lo"]),
                "max": finite(r["hi"]),
                "last": _decode(r["lnum"], r["ltext"], r["lkind"]),
            }
            for r in rows
        ]

    def events(
        self,
        *,
        gateways: Collection[str] | None,
        kind: str | None = None,
        start: float | None = None,
        end: float | None = None,
        after: tuple[float, int] | None = None,
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = self._run(
            self._fetch(
                "SELECT * FROM events WHERE ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " AND ($2::text IS NULL OR kind=$2) AND ($3::float8 IS NULL OR ts>=$3)"
                " AND ($4::float8 IS NULL OR ts<$4)"
                " AND ($5::float8 IS NULL OR ts>$5 OR (ts=$5 AND id>$6)) ORDER BY ts, id LIMIT $7",
                None if gateways is None else list(gateways),
                kind,
                start,
                end,
                None if after is None else after[0],
                None if after is None else after[1],
                limit,
            )
        )
        return [
            {
                "id": r["id"],
                "gateway_id": r["gateway_id"],
                "seq": r["seq"],
                "kind": r["kind"],
                "source": r["source"],
                "ts": r["ts"],
                "data": _json(r["data"]),
                "historical": r["historical"],
            }
            for r in rows
        ]

    def rejected(
        self,
        *,
        gateways: Collection[str] | None,
        reason: str | None = None,
        before: int | None = None,
        limit: int,
    ) -> tuple[dict[str, int], list[dict[str, Any]]]:
        return self._run(self._rejected(None if gateways is None else list(gateways), reason, before, limit))

    async def _rejected(
        self, gateways: list[str] | None, reason: str | None, before: int | None, limit: int
    ) -> tuple[dict[str, int], list[dict[str, Any]]]:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = await conn.fetch(
                "SELECT reason, count(*) FROM rejected WHERE $1::text[] IS NULL OR gateway_id = ANY($1)"
                " GROUP BY reason",
                gateways,
            )
            rows = await conn.fetch(
                "SELECT * FROM rejected WHERE ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " AND ($2::text IS NULL OR reason=$2) AND ($3::bigint IS NULL OR id<$3)"
                " ORDER BY id DESC LIMIT $4",
                gateways,
                reason,
                before,
                limit,
            )
        return (
            {r[0]: int(r[1]) for r in counts},
            [{**dict(r), "digest": bytes(r["digest"]).hex()} for r in rows],
        )

    def alarms(
        self,
        *,
        gateways: Collection[str] | None,
        alarm_class: str | None = None,
        priority: str | None = None,
        states: Collection[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        after: int | None = None,
        since_version: int | None = None,
        limit: int,
    ) -> list[dict[str, Any]]:
        if since_version is not None:
            return self._alarm_changes(gateways, alarm_class, priority, since_version, limit)
        order = "($8::bigint IS NULL OR id<$8) ORDER BY id DESC"
        rows = self._run(
            self._fetch(
                "SELECT * FROM alarms WHERE ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " AND ($2::text IS NULL OR alarm_class=$2) AND ($3::text IS NULL OR priority=$3)"
                " AND ($4::text[] IS NULL OR state = ANY($4)) AND ($5::float8 IS NULL OR raised_at>=$5)"
                f" AND ($6::float8 IS NULL OR raised_at<$6) AND {order} LIMIT $7",
                None if gateways is None else list(gateways),
                alarm_class,
                priority,
                None if states is None else list(states),
                start,
                end,
                limit,
                after,
            )
        )
        return [dict(r) for r in rows]

    def _alarm_changes(
        self,
        gateways: Collection[str] | None,
        alarm_class: str | None,
        priority: str | None,
        since: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        rows = self._run(
            self._fetch(
                "SELECT data FROM alarm_changes WHERE version>$1"
                " AND ($2::text[] IS NULL OR gateway_id = ANY($2))"
                " AND ($3::text IS NULL OR alarm_class=$3) AND ($4::text IS NULL OR priority=$4)"
                " ORDER BY version LIMIT $5",
                since,
                None if gateways is None else list(gateways),
                alarm_class,
                priority,
                limit,
            )
        )
        return [_json(r[0]) for r in rows]

    def alarm_version(self) -> int:
        rows = self._run(self._fetch("SELECT coalesce(max(version), 0) FROM alarm_changes"))
        return int(rows[0][0])

    def alarm_counts(
        self, *, gateways: Collection[str] | None, start: float | None, end: float | None, by: str
    ) -> list[tuple[str, int]]:
        column = {
            "class": "alarm_class",
            "priority": "priority",
            "gateway": "gateway_id",
            "state": "state",
            "day": "to_char(to_timestamp(raised_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            "hour": "to_char(to_timestamp(raised_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00')",
        }[by]
        rows = self._run(
            self._fetch(
                f"SELECT {column} AS k, count(*) FROM alarms"
                " WHERE ($1::text[] IS NULL OR gateway_id = ANY($1))"
                " AND ($2::float8 IS NULL OR raised_at>=$2) AND ($3::float8 IS NULL OR raised_at<$3)"
                " GROUP BY 1",
                None if gateways is None else list(gateways),
                start,
                end,
            )
        )
        return sorted((str(r[0]), int(r[1])) for r in rows)

    # -- retention ----------------------------------------------------------------------------

    def apply_retention(self, retention: RetentionConfig, now: float) -> dict[str, int]:
        """Roll finished days up into hourly aggregates, then drop the partitions past their class's age."""
        return self._run(self._retention(retention, now))

    async def _partitions_of(
        self, conn: asyncpg.Connection, scheme: PartitionScheme
    ) -> list[tuple[str, float]]:
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid=i.inhrelid"
            " WHERE i.inhparent=$1::regclass",
            scheme.table,
        )
        found = [(r[0], partition_end(scheme, r[0])) for r in rows]
        return sorted((name, end) for name, end in found if end is not None)

    async def _retention(self, retention: RetentionConfig, now: float) -> dict[str, int]:
        day = 86400.0
        dropped = {"telemetry": 0, "telemetry_hourly": 0, "events": 0, "alarms": 0}
        async with self._pool.acquire() as conn:
            for name, end in await self._partitions_of(conn, TELEMETRY):
                start = end - day
                if end > now - 3600:
                    continue  # not finished yet (an hour of grace for late batches)
                if not await conn.fetchval("SELECT true FROM rollups WHERE day=$1", start):
                    await self._ensure_partitions(HOURLY, [start])
                    async with conn.transaction():
                        await conn.execute(
                            f"INSERT INTO telemetry_hourly SELECT point, floor(ts / 3600) * 3600, count(*),"
                            " avg(vnum) FILTER (WHERE quality=0 AND vkind IN (2, 3)),"
                            " min(vnum) FILTER (WHERE quality=0 AND vkind IN (2, 3)),"
                            " max(vnum) FILTER (WHERE quality=0 AND vkind IN (2, 3))"
                            f" FROM {name} GROUP BY 1, 2 ON CONFLICT (point, hour) DO NOTHING"
                        )
                        await conn.execute("INSERT INTO rollups VALUES ($1, $2)", start, now)
                if end <= now - retention.telemetry_days * day:
                    await conn.execute(f"DROP TABLE {name}")
                    self._partitions.discard(name)
                    dropped["telemetry"] += 1
            for scheme, days in ((HOURLY, retention.hourly_days), (EVENTS, retention.events_days)):
                for name, end in await self._partitions_of(conn, scheme):
                    if end <= now - days * day:
                        await conn.execute(f"DROP TABLE {name}")
                        self._partitions.discard(name)
                        dropped[scheme.table] += 1
            status = await conn.execute(
                "DELETE FROM alarms WHERE state='closed' AND updated_at<$1", now - retention.alarms_days * day
            )
            dropped["alarms"] = int(status.split()[-1])
            # The change log only feeds live streams; a day of it is plenty for a reconnect.
            await conn.execute(
                "DELETE FROM alarm_changes WHERE at<$1 AND version<(SELECT max(version) FROM alarm_changes)",
                now - day,
            )
        return dropped


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
