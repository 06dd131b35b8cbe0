"""Central's SQLite storage: each (gateway, lane, seq) stored exactly once, acks, reads for the API.

One writer connection, used under a lock (MQTT ingest and HTTPS POST both write); every read
opens its own short-lived connection, which WAL lets run beside the writer. One verified batch
is one transaction: the batch row (whose primary key is the exactly-once guarantee), its records,
the latest values and the gateway's last-seen time commit together or not at all.
"""

from __future__ import annotations

import json
import operator
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from cloud_sync.ack import MAX_MISSING_RANGES
from cloud_sync.central.config import RetentionConfig
from cloud_sync.central.storage.alarms import alarm_change
from cloud_sync.central.storage.common import finite, missing_ranges, state_versions
from cloud_sync.errors import CentralStoreError
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from core.sqlite_rows import MultiRowInsert

__all__ = ["BatchMeta", "CentralStore", "Rejection", "StoreResult"]

_LOG = structlog.get_logger(__name__)

# Keeps the audit table bounded even if a misconfigured gateway sends garbage all day.
MAX_REJECTED_ROWS: Final = 100_000
# Digest of a placeholder for a batch the gateway evicted unsent (reported by ``outbox.gap``).
_EVICTED: Final = b""
_MAX_EVICTED_RANGE: Final = 1_000_000
_POINT_TS: Final = operator.itemgetter(0, 1)
# Chunks of rows a statement (core.sqlite_rows): the commit thread steps once per chunk, not once
# per record, and so gives up the GIL that many times fewer.
_insert_telemetry_rows: Final = MultiRowInsert("INSERT INTO telemetry", 8)
_upsert_latest_rows: Final = MultiRowInsert(
    "INSERT INTO latest",
    8,
    " ON CONFLICT (point_id) DO UPDATE SET"
    " gateway_id=excluded.gateway_id, ts=excluded.ts, source_ts=excluded.source_ts,"
    " value=excluded.value, quality=excluded.quality, reason=excluded.reason,"
    " is_bool=excluded.is_bool WHERE excluded.ts >= latest.ts",
)

# Bumped with every schema change; a migration from the previous version goes with it.
SCHEMA_VERSION: Final = 2

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS gateways (
    gateway_id TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_ts REAL,
    backlog TEXT NOT NULL DEFAULT '{}',
    reported_seq TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS lanes (
    gateway_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (gateway_id, lane)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches (
    gateway_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL,
    key_id TEXT NOT NULL,
    sealed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    record_count INTEGER NOT NULL,
    historical INTEGER NOT NULL,
    transport TEXT NOT NULL,
    PRIMARY KEY (gateway_id, lane, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY,
    point_id TEXT NOT NULL UNIQUE,
    gateway_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry (
    point INTEGER NOT NULL REFERENCES points (id),
    ts REAL NOT NULL,
    source_ts REAL,
    value,
    quality INTEGER NOT NULL,
    reason TEXT NOT NULL,
    historical INTEGER NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS telemetry_point_ts ON telemetry (point, ts);
CREATE TABLE IF NOT EXISTS latest (
    point_id TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    ts REAL NOT NULL,
    source_ts REAL,
    value,
    quality INTEGER NOT NULL,
    reason TEXT NOT NULL,
    is_bool INTEGER NOT NULL  -- SQLite keeps true/false as 1/0; this lets the API give booleans back
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL,
    historical INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    transport TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    seq INTEGER,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    size INTEGER NOT NULL,
    digest BLOB NOT NULL
);
"""

# Versioned migrations: _MIGRATIONS[n] takes a version-n database to version n + 1, in one
# transaction with the new user_version. Version 1 is _SCHEMA above (as first released).
_MIGRATIONS: Final[dict[int, str]] = {
    1: """
ALTER TABLE gateways ADD COLUMN versions TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS events_gateway_kind ON events (gateway_id, kind, ts);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    alarm_key TEXT NOT NULL,
    point_id TEXT,
    alarm_class TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    raised_at REAL NOT NULL,
    acked_at REAL,
    acked_by TEXT,
    cleared_at REAL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_open ON alarms (gateway_id, alarm_key) WHERE state <> 'closed';
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_at);
CREATE INDEX IF NOT EXISTS alarms_version ON alarms (version);
-- Every change of an alarm row, as it was then: the live stream sends each one, not only the last.
CREATE TABLE IF NOT EXISTS alarm_changes (
    version INTEGER PRIMARY KEY,
    gateway_id TEXT NOT NULL,
    alarm_class TEXT NOT NULL,
    priority TEXT NOT NULL,
    at REAL NOT NULL,
    data TEXT NOT NULL
);
""",
}


@dataclass(frozen=True, slots=True)
class BatchMeta:
    gateway_id: str
    lane: Lane
    seq: int
    key_id: str
    sealed_at: float
    historical: bool
    digest: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """One row of the audit (``GET /api/v1/audit/rejected``): a rejected or duplicate arrival."""

    received_at: float
    transport: str
    gateway_id: str
    lane: str
    seq: int | None
    reason: str
    detail: str
    size: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class StoreResult:
    stored: bool  # False: this (gateway, lane, seq) was already stored
    same_bytes: bool  # for a duplicate: whether the bytes match the stored batch's digest


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    # An ack lets the gateway delete the batch for good: what central acknowledges must survive a
    # power loss, not only a crash of this process (NORMAL may lose the last commits). Commits are
    # per group of batches, so the fsync each costs is small next to the work.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    # A telemetry group dirties index pages all over the (point, ts) index; checkpointing every
    # 64 MiB of WAL rather than every 4 MiB copies a page rewritten by many groups back once.
    conn.execute("PRAGMA wal_autocheckpoint=16384")
    conn.execute("PRAGMA journal_size_limit=67108864")
    return conn


def _migrate(db: sqlite3.Connection, version: int) -> None:
    if version == 0:
        db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version=1; COMMIT;")
        version = 1
    while version < SCHEMA_VERSION:
        db.executescript(f"BEGIN; {_MIGRATIONS[version]} PRAGMA user_version={version + 1}; COMMIT;")
        version += 1


class CentralStore:
    """The SQLite backend (the default): one file, one writer."""

    backend: Final = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = _connect(path)
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if not 0 <= version <= SCHEMA_VERSION:
                self._db.close()
                raise CentralStoreError(
                    f"{path}: schema version {version}, this central knows {SCHEMA_VERSION} (no migration)"
                )
            _migrate(self._db, version)
        except (sqlite3.Error, OSError) as exc:
            raise CentralStoreError(f"{path}: cannot open central database: {exc}") from exc
        self._lock = threading.Lock()
        self._rejections = 0
        # Alarm row versions increase with every change; the SSE stream follows them.
        self._alarm_version = int(
            self._db.execute("SELECT coalesce(max(version), 0) FROM alarms").fetchone()[0]
        )
        # point id → integer id in ``points``; filled lazily, cleared when a transaction fails.
        self._point_ids: dict[str, int] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise CentralStoreError(f"central database: {exc}") from exc

    def store_batch(
        self,
        meta: BatchMeta,
        records: Sequence[TelemetryRow] | Sequence[EventRow],
        *,
        transport: str,
        received_at: float,
    ) -> StoreResult:
        """Store one verified batch once; a second arrival of the same key changes nothing."""
        return self.store_batches([(meta, records)], transport=transport, received_at=received_at)[0]

    def store_batches(
        self,
        batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]],
        *,
        transport: str,
        received_at: float,
        audit: Sequence[Rejection] = (),
    ) -> list[StoreResult]:
        """Store several verified batches in one transaction (group commit), each at most once.

        ``audit`` rows (rejections and duplicates waiting to be recorded) share the transaction.

        One commit per group rather than per batch matters: each commit rewrites every index page
        the group touched, and a telemetry batch touches pages all over the (point, ts) index.
        """
        results: list[StoreResult] = []
        # Newest record per point over the whole group: only these can change the latest table.
        newest: dict[str, tuple[str, TelemetryRow]] = {}
        try:
            with self._transaction() as db:
                for meta, records in batches:
                    results.append(self._store_one(db, meta, records, transport, received_at, newest))
                self._update_latest(db, newest)
                self._insert_rejections(db, audit)
        except BaseException:
            # Ids handed out inside the rolled-back transaction do not exist: forget them all.
            self._point_ids.clear()
            raise
        return results

    def _store_one(
        self,
        db: sqlite3.Connection,
        meta: BatchMeta,
        records: Sequence[TelemetryRow] | Sequence[EventRow],
        transport: str,
        received_at: float,
        newest: dict[str, tuple[str, TelemetryRow]],
    ) -> StoreResult:
        gw, lane, seq = meta.gateway_id, str(meta.lane), meta.seq
        row_values = (
            meta.digest,
            meta.key_id,
            meta.sealed_at,
            received_at,
            len(records),
            int(meta.historical),
            transport,
        )
        cur = db.execute(
            "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (gw, lane, seq, *row_values),
        )
        self._touch(db, gw, received_at)
        if cur.rowcount == 0:
            (digest,) = db.execute(
                "SELECT digest FROM batches WHERE gateway_id=? AND lane=? AND seq=?", (gw, lane, seq)
            ).fetchone()
            if bytes(digest) != _EVICTED:
                return StoreResult(stored=False, same_bytes=bytes(digest) == meta.digest)
            # The gateway reported this batch evicted, yet it arrived (it was in flight): keep it.
            db.execute(
                "UPDATE batches SET digest=?, key_id=?, sealed_at=?, received_at=?, record_count=?,"
                " historical=?, transport=? WHERE gateway_id=? AND lane=? AND seq=?",
                (*row_values, gw, lane, seq),
            )
        hist = int(meta.historical)
        if meta.lane is Lane.TELEMETRY:
            self._insert_telemetry(db, gw, seq, hist, records, newest)  # type: ignore[arg-type]
        else:
            db.executemany(
                "INSERT INTO events (gateway_id, seq, kind, source, ts, data, historical)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(gw, seq, r.kind, r.source, r.ts, json.dumps(r.data), hist) for r in records],  # type: ignore[union-attr]
            )
            self._note_evictions(db, gw, records, received_at)  # type: ignore[arg-type]
            self._apply_alarms(db, gw, records)  # type: ignore[arg-type]
        self._advance(db, gw, lane)
        return StoreResult(stored=True, same_bytes=True)

    def _point_id_map(self, db: sqlite3.Connection, gw: str, point_ids: Iterable[str]) -> dict[str, int]:
        known = self._point_ids
        if not known:
            known.update(db.execute("SELECT point_id, id FROM points"))
        new = [p for p in dict.fromkeys(point_ids) if p not in known]
        if new:
            db.executemany(
                "INSERT OR IGNORE INTO points (point_id, gateway_id) VALUES (?, ?)", [(p, gw) for p in new]
            )
            for p in new:
                known[p] = db.execute("SELECT id FROM points WHERE point_id=?", (p,)).fetchone()[0]
        return known

    def _insert_telemetry(
        self,
        db: sqlite3.Connection,
        gw: str,
        seq: int,
        hist: int,
        records: Sequence[TelemetryRow],
        newest: dict[str, tuple[str, TelemetryRow]],
    ) -> None:
        ids = self._point_id_map(db, gw, {r[0] for r in records})
        # TelemetryRow is a named tuple: unpacking it is the cheapest way through ~10⁵ records/s.
        rows = [
            (ids[point], receipt_ts, source_ts, value, quality, reason, hist, seq)
            for point, value, quality, reason, receipt_ts, source_ts in records
        ]
        # In (point, ts) order the inserts walk the (point, ts) index once, left to right, instead
        # of jumping between its pages for every record: markedly cheaper once it is large.
        rows.sort(key=_POINT_TS)
        _insert_telemetry_rows(db, rows)
        for r in records:
            seen = newest.get(r.point_id)
            if seen is None or r.receipt_ts >= seen[1].receipt_ts:
                newest[r.point_id] = (gw, r)

    @staticmethod
    def _update_latest(db: sqlite3.Connection, newest: dict[str, tuple[str, TelemetryRow]]) -> None:
        _upsert_latest_rows(
            db,
            [
                (
                    r.point_id,
                    gw,
                    r.receipt_ts,
                    r.source_ts,
                    r.value,
                    r.quality,
                    r.reason,
                    type(r.value) is bool,
                )
                for gw, r in newest.values()
            ],
        )

    @staticmethod
    def _touch(db: sqlite3.Connection, gw: str, now: float) -> None:
        db.execute(
            "INSERT INTO gateways (gateway_id, first_seen, last_seen) VALUES (?, ?, ?)"
            " ON CONFLICT (gateway_id) DO UPDATE SET last_seen=max(last_seen, excluded.last_seen)",
            (gw, now, now),
        )

    @staticmethod
    def _advance(db: sqlite3.Connection, gw: str, lane: str) -> None:
        """Move the lane's contiguous ack over every batch now present right above it."""
        db.execute("INSERT OR IGNORE INTO lanes (gateway_id, lane) VALUES (?, ?)", (gw, lane))
        (acked,) = db.execute("SELECT acked FROM lanes WHERE gateway_id=? AND lane=?", (gw, lane)).fetchone()
        new_acked = acked
        # Batches above the ack are few (the resend window), so this walk is short.
        for (next_seq,) in db.execute(
            "SELECT seq FROM batches WHERE gateway_id=? AND lane=? AND seq>? ORDER BY seq",
            (gw, lane, acked),
        ):
            if next_seq != new_acked + 1:
                break
            new_acked = next_seq
        if new_acked != acked:
            db.execute("UPDATE lanes SET acked=? WHERE gateway_id=? AND lane=?", (new_acked, gw, lane))

    def _note_evictions(
        self, db: sqlite3.Connection, gw: str, records: Sequence[EventRow], received_at: float
    ) -> None:
        """An ``outbox.gap`` naming sequence numbers that will never come (docs/protocol.md §8).

        Sealed telemetry batches evicted under the disk quota, or numbers a gateway skipped after
        a crash (``lane`` names the lane; absent means telemetry). They are recorded as
        placeholders so the contiguous ack can pass them; without this a gateway that evicted
        batch 7 would be acknowledged at 6 forever.
        """
        for r in records:
            if r.kind != "outbox.gap":
                continue
            lo, hi = r.data.get("seq_from"), r.data.get("seq_to")
            lane = r.data.get("lane", Lane.TELEMETRY.value)
            if (
                type(lo) is not int
                or type(hi) is not int
                or not 1 <= lo <= hi
                or hi - lo > _MAX_EVICTED_RANGE
                or lane not in (Lane.TELEMETRY.value, Lane.EVENT.value)
            ):
                continue
            db.executemany(
                "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, '', 0, ?, 0, 0, 'evicted')",
                [(gw, lane, seq, _EVICTED, received_at) for seq in range(lo, hi + 1)],
            )
            _LOG.warning(
                "gateway reports sequence numbers that will never come",
                gateway=gw,
                lane=lane,
                seq_from=lo,
                seq_to=hi,
                reason=r.data.get("reason"),
            )
            self._advance(db, gw, lane)

    def _apply_alarms(self, db: sqlite3.Connection, gw: str, records: Sequence[EventRow]) -> None:
        for r in records:
            change = alarm_change(r)
            if change is None:
                continue
            self._alarm_version += 1
            version = self._alarm_version
            open_row = db.execute(
                "SELECT id FROM alarms WHERE gateway_id=? AND alarm_key=? AND state<>'closed'",
                (gw, change.key),
            ).fetchone()
            if open_row is None:
                if change.state == "closed":
                    continue  # closing an episode central never saw open: nothing to show
                db.execute(
                    "INSERT INTO alarms (gateway_id, alarm_key, point_id, alarm_class, priority, state,"
                    " message, raised_at, acked_at, acked_by, cleared_at, updated_at, version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
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
                        change.at,
                        version,
                    ),
                )
                self._log_alarm_change(db, version)
                continue
            db.execute(
                "UPDATE alarms SET state=?, updated_at=?, version=?,"
                " acked_at=CASE WHEN ? IS NOT NULL THEN ? ELSE acked_at END,"
                " acked_by=coalesce(?, acked_by),"
                " cleared_at=CASE WHEN ? AND cleared_at IS NULL THEN ? ELSE cleared_at END,"
                " message=CASE WHEN ?<>'' THEN ? ELSE message END WHERE id=?",
                (
                    change.state,
                    change.at,
                    version,
                    change.acked_by,
                    change.at,
                    change.acked_by,
                    int(change.cleared),
                    change.at,
                    change.message,
                    change.message,
                    open_row[0],
                ),
            )
            self._log_alarm_change(db, version)

    @staticmethod
    def _log_alarm_change(db: sqlite3.Connection, version: int) -> None:
        cur = db.execute("SELECT * FROM alarms WHERE version=?", (version,))
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone(), strict=True))
        db.execute(
            "INSERT INTO alarm_changes VALUES (?, ?, ?, ?, ?, ?)",
            (
                version,
                row["gateway_id"],
                row["alarm_class"],
                row["priority"],
                row["updated_at"],
                json.dumps(row),
            ),
        )

    def record_rejection(self, **fields: Any) -> None:
        """One audit row in its own transaction (tests, tools); ingest batches them instead."""
        self.record_rejections([Rejection(**fields)])

    def record_rejections(self, rows: Sequence[Rejection]) -> None:
        """Audit rows in one transaction: a flood of garbage costs one fsync per group, not each."""
        if rows:
            with self._transaction() as db:
                self._insert_rejections(db, rows)

    def _insert_rejections(self, db: sqlite3.Connection, rows: Sequence[Rejection]) -> None:
        if not rows:
            return
        db.executemany(
            "INSERT INTO rejected (received_at, transport, gateway_id, lane, seq, reason, detail, size,"
            " digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        # Keeps the table bounded (MAX_REJECTED_ROWS) without a DELETE on every insert.
        if self._rejections // 1000 != before // 1000:
            db.execute(
                "DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?", (MAX_REJECTED_ROWS,)
            )

    def note_state(self, gateway_id: str, state: dict[str, Any], received_at: float) -> None:
        """Record what a gateway's retained state message says (online/offline, backlog, seq)."""
        with self._transaction() as db:
            self._touch(db, gateway_id, received_at)
            db.execute(
                "UPDATE gateways SET state=?, state_ts=?, backlog=?, reported_seq=?, versions=?"
                " WHERE gateway_id=?",
                (
                    str(state.get("state", "unknown")),
                    received_at,
                    json.dumps(state.get("backlog") or {}),
                    json.dumps(state.get("seq") or {}),
                    json.dumps(state_versions(state)),
                    gateway_id,
                ),
            )

    # -- ack positions -------------------------------------------------------------------------

    def ack_position(self, gateway_id: str, lane: Lane) -> tuple[int, tuple[tuple[int, int], ...]]:
        """(highest contiguous seq stored, gaps below the highest seq stored, as inclusive ranges)."""
        with self._lock:
            try:
                return self._ack_position(self._db, gateway_id, lane)
            except sqlite3.Error as exc:
                raise CentralStoreError(f"central database: {exc}") from exc

    @staticmethod
    def _ack_position(
        db: sqlite3.Connection, gateway_id: str, lane: Lane
    ) -> tuple[int, tuple[tuple[int, int], ...]]:
        row = db.execute(
            "SELECT acked FROM lanes WHERE gateway_id=? AND lane=?", (gateway_id, str(lane))
        ).fetchone()
        acked = int(row[0]) if row else 0
        missing: list[tuple[int, int]] = []
        expected = acked + 1
        for (seq,) in db.execute(
            "SELECT seq FROM batches WHERE gateway_id=? AND lane=? AND seq>? ORDER BY seq",
            (gateway_id, str(lane), acked),
        ):
            if seq > expected:
                missing.append((expected, seq - 1))
                if len(missing) >= MAX_MISSING_RANGES:
                    break
            expected = seq + 1
        return acked, tuple(missing)

    # -- reading (own connection per call) -------------------------------------------------------

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)
        except sqlite3.Error as exc:
            raise CentralStoreError(f"central database: {exc}") from exc
        conn.row_factory = sqlite3.Row
        try:
            # One read transaction: every statement of a request sees the same snapshot (a lane's
            # acked and highest seq are then never read on two sides of a commit).
            conn.execute("BEGIN")
            yield conn
        except sqlite3.Error as exc:
            raise CentralStoreError(f"central database: {exc}") from exc
        finally:
            conn.close()

    def count(self, table: str) -> int:
        if table not in {"batches", "telemetry", "latest", "events", "rejected", "gateways"}:
            raise ValueError(table)
        with self.reader() as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    # -- queries for the API (the PostgreSQL backend answers the same ones) ----------------------

    def gateway_rows(self, ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Every gateway seen (limited to ``ids``) with its lanes and active alarms, one snapshot."""
        with self.reader() as db:
            gws = [dict(r) for r in db.execute("SELECT * FROM gateways ORDER BY gateway_id")]
            if ids is not None:
                gws = [g for g in gws if g["gateway_id"] in ids]
            lanes: dict[tuple[str, str], dict[str, Any]] = {}
            for gw, lane, acked in db.execute("SELECT gateway_id, lane, acked FROM lanes"):
                lanes[(gw, lane)] = {"acked": acked, "seqs": []}
            for r in db.execute(
                "SELECT l.gateway_id, l.lane, b.seq FROM lanes l JOIN batches b"
                " ON b.gateway_id=l.gateway_id AND b.lane=l.lane AND b.seq>l.acked ORDER BY 1, 2, 3"
            ):
                lanes[(r[0], r[1])]["seqs"].append(r[2])
            tops: dict[tuple[str, str], tuple[int, float, float]] = {}
            for g in gws:
                for lane in _LANES:
                    top = db.execute(
                        "SELECT seq, received_at, sealed_at FROM batches WHERE gateway_id=? AND lane=?"
                        " ORDER BY seq DESC LIMIT 1",
                        (g["gateway_id"], lane),
                    ).fetchone()
                    if top is not None:
                        tops[(g["gateway_id"], lane)] = (int(top[0]), float(top[1]), float(top[2]))
            active: dict[str, dict[str, int]] = {}
            for gw, klass, n in db.execute(
                "SELECT gateway_id, alarm_class, count(*) FROM alarms"
                " WHERE state IN ('active_unacked', 'active_acked') GROUP BY 1, 2"
            ):
                active.setdefault(gw, {})[klass] = n
        return [_gateway_row(g, lanes, tops, active) for g in gws]

    def latest(
        self,
        *,
        gateways: Collection[str] | None,
        prefix: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM latest WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            sql += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        if prefix is not None:
            # substr() rather than LIKE: point ids may contain % and _.
            sql += " AND substr(point_id, 1, ?)=?"
            args += [len(prefix), prefix]
        if q is not None:
            sql += " AND instr(lower(point_id), lower(?)) > 0"
            args.append(q)
        if after is not None:
            sql += " AND point_id>?"
            args.append(after)
        sql += " ORDER BY point_id LIMIT ?"
        args.append(limit)
        with self.reader() as db:
            return [
                {
                    "point_id": r["point_id"],
                    "gateway_id": r["gateway_id"],
                    "ts": r["ts"],
                    "source_ts": r["source_ts"],
                    "value": bool(r["value"]) if r["is_bool"] else finite(r["value"]),
                    "quality": r["quality"],
                    "reason": r["reason"],
                }
                for r in db.execute(sql, args)
            ]

    def point_gateway(self, point_id: str) -> str | None:
        with self.reader() as db:
            row = db.execute("SELECT gateway_id FROM points WHERE point_id=?", (point_id,)).fetchone()
        return None if row is None else str(row[0])

    def history(self, point_id: str, start: float, end: float, limit: int) -> list[dict[str, Any]]:
        with self.reader() as db:
            rows = db.execute(
                "SELECT ts, source_ts, value, quality, reason, historical FROM telemetry"
                " WHERE point=(SELECT id FROM points WHERE point_id=?) AND ts>=? AND ts<?"
                " ORDER BY ts LIMIT ?",
                (point_id, start, end, limit),
            ).fetchall()
        return [{**dict(r), "value": finite(r["value"]), "historical": bool(r["historical"])} for r in rows]

    def history_buckets(self, point_id: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        bucket = "CAST((ts - ?) / ? AS INTEGER)"
        where = "point=(SELECT id FROM points WHERE point_id=?) AND ts>=? AND ts<?"
        num = "CASE WHEN quality=0 AND typeof(value) IN ('integer','real') THEN value END"
        with self.reader() as db:
            stats = db.execute(
                f"SELECT {bucket} AS b, count(*), avg({num}), min({num}), max({num})"
                f" FROM telemetry WHERE {where} GROUP BY b ORDER BY b",
                (start, step, point_id, start, end),
            ).fetchall()
            # SQLite returns the bare column from the row that holds max(ts): the bucket's last value.
            lasts = {
                r[0]: r[1]
                for r in db.execute(
                    f"SELECT {bucket} AS b, value, max(ts) FROM telemetry WHERE {where} GROUP BY b",
                    (start, step, point_id, start, end),
                )
            }
        return [
            {
                "ts": start + b * step,
                "count": n,
                "avg": finite(a),
                "min": finite(lo),
                "max": finite(hi),
                "last": finite(lasts.get(b)),
            }
            for b, n, a, lo, hi in stats
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
        sql = "SELECT * FROM events WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            sql += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        for clause, value in ((" AND kind=?", kind), (" AND ts>=?", start), (" AND ts<?", end)):
            if value is not None:
                sql += clause
                args.append(value)
        if after is not None:
            sql += " AND (ts>? OR (ts=? AND id>?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY ts, id LIMIT ?"
        args.append(limit)
        with self.reader() as db:
            return [
                {
                    "id": r["id"],
                    "gateway_id": r["gateway_id"],
                    "seq": r["seq"],
                    "kind": r["kind"],
                    "source": r["source"],
                    "ts": r["ts"],
                    "data": json.loads(r["data"]),
                    "historical": bool(r["historical"]),
                }
                for r in db.execute(sql, args)
            ]

    def rejected(
        self,
        *,
        gateways: Collection[str] | None,
        reason: str | None = None,
        before: int | None = None,
        limit: int,
    ) -> tuple[dict[str, int], list[dict[str, Any]]]:
        where = " WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            where += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        with self.reader() as db:
            counts = dict(
                db.execute(f"SELECT reason, count(*) FROM rejected{where} GROUP BY reason", args).fetchall()
            )
            if reason is not None:
                where += " AND reason=?"
                args.append(reason)
            if before is not None:
                where += " AND id<?"
                args.append(before)
            rows = db.execute(
                f"SELECT * FROM rejected{where} ORDER BY id DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return counts, [{**dict(r), "digest": bytes(r["digest"]).hex()} for r in rows]

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
        sql = "SELECT * FROM alarms WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            sql += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        if states is not None:
            sql += f" AND state IN ({_marks(states)})"
            args += list(states)
        for clause, value in (
            (" AND alarm_class=?", alarm_class),
            (" AND priority=?", priority),
            (" AND raised_at>=?", start),
            (" AND raised_at<?", end),
        ):
            if value is not None:
                sql += clause
                args.append(value)
        if since_version is not None:
            return self._alarm_changes(gateways, alarm_class, priority, since_version, limit)
        if after is not None:
            sql += " AND id<?"
            args.append(after)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self.reader() as db:
            return [dict(r) for r in db.execute(sql, args)]

    def _alarm_changes(
        self,
        gateways: Collection[str] | None,
        alarm_class: str | None,
        priority: str | None,
        since: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        sql = "SELECT data FROM alarm_changes WHERE version>?"
        args: list[Any] = [since]
        if gateways is not None:
            sql += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        for clause, value in ((" AND alarm_class=?", alarm_class), (" AND priority=?", priority)):
            if value is not None:
                sql += clause
                args.append(value)
        sql += " ORDER BY version LIMIT ?"
        args.append(limit)
        with self.reader() as db:
            return [json.loads(r[0]) for r in db.execute(sql, args)]

    def alarm_version(self) -> int:
        with self.reader() as db:
            return int(db.execute("SELECT coalesce(max(version), 0) FROM alarm_changes").fetchone()[0])

    def alarm_counts(
        self, *, gateways: Collection[str] | None, start: float | None, end: float | None, by: str
    ) -> list[tuple[str, int]]:
        """Alarm episodes raised in [start, end) counted by class, priority, gateway, state, day or hour."""
        column = {
            "class": "alarm_class",
            "priority": "priority",
            "gateway": "gateway_id",
            "state": "state",
            "day": "strftime('%Y-%m-%d', raised_at, 'unixepoch')",
            "hour": "strftime('%Y-%m-%dT%H:00', raised_at, 'unixepoch')",
        }[by]
        sql = f"SELECT {column} AS k, count(*) FROM alarms WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            sql += f" AND gateway_id IN ({_marks(gateways)})"
            args += list(gateways)
        if start is not None:
            sql += " AND raised_at>=?"
            args.append(start)
        if end is not None:
            sql += " AND raised_at<?"
            args.append(end)
        sql += " GROUP BY k ORDER BY k"
        with self.reader() as db:
            return [(str(k), int(n)) for k, n in db.execute(sql, args)]

    def apply_retention(self, retention: RetentionConfig, now: float) -> dict[str, int]:
        """Delete what is older than its data class keeps (SQLite has no partitions to drop)."""
        day = 86400.0
        with self._transaction() as db:
            telemetry = db.execute(
                "DELETE FROM telemetry WHERE ts<?", (now - retention.telemetry_days * day,)
            )
            events = db.execute("DELETE FROM events WHERE ts<?", (now - retention.events_days * day,))
            alarms = db.execute(
                "DELETE FROM alarms WHERE state='closed' AND updated_at<?",
                (now - retention.alarms_days * day,),
            )
        return {"telemetry": telemetry.rowcount, "events": events.rowcount, "alarms": alarms.rowcount}


_LANES: Final = (Lane.EVENT.value, Lane.TELEMETRY.value)


def _marks(values: Collection[Any]) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def _gateway_row(
    g: dict[str, Any],
    lanes: dict[tuple[str, str], dict[str, Any]],
    tops: dict[tuple[str, str], tuple[int, float, float]],
    active: dict[str, dict[str, int]],
) -> dict[str, Any]:
    gw = g["gateway_id"]
    out: dict[str, Any] = {
        "gateway_id": gw,
        "first_seen": g["first_seen"],
        "last_seen": g["last_seen"],
        "state": g["state"],
        "state_ts": g["state_ts"],
        "backlog": _json_dict(g["backlog"]),
        "reported_seq": _json_dict(g["reported_seq"]),
        "versions": _json_dict(g.get("versions") or "{}"),
        "active_alarms": active.get(gw, {}),
        "lanes": {},
    }
    for lane in _LANES:
        info = lanes.get((gw, lane), {"acked": 0, "seqs": []})
        top = tops.get((gw, lane))
        out["lanes"][lane] = {
            "acked": int(info["acked"]),
            "highest": max(top[0] if top else 0, int(info["acked"])),
            "missing": missing_ranges(int(info["acked"]), info["seqs"], MAX_MISSING_RANGES),
            "last_batch_at": top[1] if top else None,
            "last_sealed_at": top[2] if top else None,
        }
    return out


def _json_dict(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
