"""The outbox's synchronous core: one SQLite connection, used from one thread only.

``edge.outbox.store.Outbox`` owns an instance and calls every method on its dedicated thread;
nothing here knows about asyncio. SQLite errors leave this module as ``StorageError``.

Transactions are explicit (autocommit connection, ``BEGIN IMMEDIATE`` … ``COMMIT``) so that a
group of rows, a seal, or an eviction round with its gap event is all-or-nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgpack
import structlog

from cloud_sync.ports import Lane, SealedBatch, Sealer, SealMode
from core.errors import StorageError
from core.model import Clock, Sample
from core.sqlite_rows import MultiRowInsert
from edge.outbox import batches, migrations, quota
from edge.outbox.live_tail import LiveTail
from edge.outbox.reserve import DiskReserve
from edge.outbox.schema import (
    BOOL_FLAG,
    NAN_FLAG,
    REASON_FLAGS,
)
from edge.outbox.seqmark import SeqMarks, read_marks, seq_path, write_marks

__all__ = ["LIVE_TAIL_ROWS", "DbOptions", "EncodedEvent", "OutboxDb"]

_LOG = structlog.get_logger(__name__)

_SQLITE_FULL = 13
_LANES = (Lane.EVENT.value, Lane.TELEMETRY.value)
# One statement step per chunk of rows, not per row (see core.sqlite_rows).
_insert_rows = MultiRowInsert("INSERT INTO telemetry (point, value, flags, receipt_ts, source_ts)", 5)
_INSERT_EVENT = "INSERT INTO events (kind, source, ts, data) VALUES (?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event whose ``data`` was packed on the caller's side, so bad data fails there."""

    kind: str
    source: str
    ts: float
    data: bytes


# Rows kept after their commit for LIVE seals (edge.outbox.live_tail); 0 reads every batch back
# from SQLite. At most 50,000 rows (about 6.5 MB, while the uplink is stalled; a few thousand
# when it keeps up): most of a second at 60,000 values/s, so a short stall of the uplink does
# not push the rows it will send next out of the tail and onto the slower path (issue 19).
LIVE_TAIL_ROWS = 50_000


@dataclass(frozen=True, slots=True)
class DbOptions:
    quota_bytes: int
    live_window_s: float = 10.0
    synchronous: Literal["normal", "full"] = "normal"
    seq_block: int = 1000
    max_page_count: int | None = None  # a hard cap, to test a full disk
    live_tail_rows: int = LIVE_TAIL_ROWS


def pack_event_data(data: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(data, use_bin_type=True)
    return packed


def _bindable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    value = row[1]
    if (
        value is None
        or isinstance(value, float | str)
        or (isinstance(value, int) and -(2**63) <= value < 2**63)
    ):
        return row
    return (row[0], repr(value), *row[2:])


def _require_wal(path: Path, mode: object) -> None:
    # Concurrent readers (``buffer stats``) and cheap commits both depend on WAL.
    if str(mode).lower() != "wal":
        raise StorageError(f"{path}: could not switch to WAL (journal_mode={mode})")


_RESERVE_CHECK_S = 10.0


def _is_disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) == _SQLITE_FULL


class OutboxDb:
    def __init__(self, path: Path, options: DbOptions, clock: Clock) -> None:
        self.path = path
        self.options = options
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._page_size = 4096
        self._point_ids: dict[str, int] = {}
        # Point names by id, the ids dense from 1: a list, not a dict (2 MB less at 60,000 points).
        self._point_names: list[str] = [""]
        self._next_point = 1
        self._rows = dict.fromkeys(_LANES, 0)
        self._last_seq = dict.fromkeys(_LANES, 0)
        self._marks = SeqMarks()
        self._seq_path = seq_path(path)
        self.refused = False
        self.low_water_bytes = int(options.quota_bytes * 0.9)
        self._reserve_file = DiskReserve(path, options.quota_bytes)
        self._reserve_checked_at = float("-inf")
        self._tail = LiveTail(options.live_tail_rows)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("the outbox database is not open")
        return self._conn

    def open(self) -> None:
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            conn = self._conn
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            _require_wal(self.path, mode)
            conn.execute(f"PRAGMA synchronous = {self.options.synchronous.upper()}")
            checkpoint_pages, wal_limit_bytes = quota.wal_bounds(self.options.quota_bytes)
            conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages:d}")
            conn.execute(f"PRAGMA journal_size_limit = {wal_limit_bytes:d}")
            # 1 MB: writes are appends and the seal reads walk an index, so a bigger cache bought
            # no throughput (bench/outbox: 294k samples/s at 4 MB, 307k at 0.5 MB) but cost its
            # size in RSS on a small gateway (issue 19).
            conn.execute("PRAGMA cache_size = -1000")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA busy_timeout = 5000")
            if self.options.max_page_count is not None:
                conn.execute(f"PRAGMA max_page_count = {self.options.max_page_count:d}")
            migrations.migrate(conn, path=str(self.path))
            self._page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            self._load_state()
            self._start_session()
            self._enforce_quota()
            self._reserve_file.take()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise StorageError(f"{self.path}: cannot open the outbox: {exc}") from exc
        except StorageError:
            self._close_quietly()
            raise

    def _load_state(self) -> None:
        conn = self.conn
        names = self._point_names
        for pid, name in conn.execute("SELECT id, point_id FROM points ORDER BY id"):
            self._point_ids[name] = pid
            if pid >= len(names):
                names.extend([""] * (pid + 1 - len(names)))  # a gap never read: no row refers to it
            names[pid] = name
        self._next_point = len(names)
        self._rows[Lane.TELEMETRY] = int(conn.execute("SELECT count(*) FROM telemetry").fetchone()[0])
        self._rows[Lane.EVENT] = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        for lane, last in conn.execute("SELECT lane, last_seq FROM lane_seq"):
            self._last_seq[lane] = int(last)
        self.refused = self._meta("outbox_full") == 1

    def _start_session(self) -> None:
        """Decide where each lane's sequence continues (see ``edge.outbox.seqmark``)."""
        conn = self.conn
        side = read_marks(self._seq_path)
        clean = self._meta("clean_session")
        skipped: dict[str, tuple[int, int]] = {}
        if side is not None and clean != side.session:
            for lane in _LANES:
                jumped = max(self._last_seq[lane], side.reserved.get(lane, 0))
                if jumped != self._last_seq[lane]:
                    skipped[lane] = (self._last_seq[lane] + 1, jumped)
                    _LOG.warning(
                        "outbox was not closed by the last session (crash or restored copy);"
                        " sequence continues above the reserved mark",
                        lane=lane,
                        db_last_seq=self._last_seq[lane],
                        continues_after=jumped,
                    )
                self._last_seq[lane] = jumped
        previous = side or SeqMarks()
        self._marks = SeqMarks(
            session=previous.session + 1,
            reserved={lane: max(previous.reserved.get(lane, 0), self._last_seq[lane]) for lane in _LANES},
        )
        write_marks(self._seq_path, self._marks)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE lane_seq SET last_seq = ? WHERE lane = ?",
                [(self._last_seq[lane], lane) for lane in _LANES],
            )
            for lane, (seq_from, seq_to) in skipped.items():
                # Central acknowledges the highest *contiguous* sequence: without this signed
                # record it would wait for the skipped numbers forever (docs/protocol.md §8).
                self._insert_event(
                    "outbox.gap",
                    "outbox",
                    {"reason": "seq_skipped", "lane": lane, "seq_from": seq_from, "seq_to": seq_to},
                )
            conn.execute("DELETE FROM meta WHERE key = 'clean_session'")
            self._set_meta("quota_bytes", self.options.quota_bytes)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def close(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._set_meta("clean_session", self._marks.session)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            self._close_quietly()
            raise StorageError(f"{self.path}: could not close the outbox cleanly: {exc}") from exc
        try:
            # Fold the WAL back so that a copy of the .db file alone is complete. Optional: on
            # a full disk the file cannot grow, and the WAL is just as durable.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            _LOG.warning("outbox checkpoint on close failed; the WAL keeps the data", error=str(exc))
        finally:
            self._close_quietly()

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                _LOG.warning("outbox close failed", path=str(self.path), error=str(exc))
            self._conn = None

    # -- small helpers -----------------------------------------------------------------------

    def _meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                _LOG.warning("outbox rollback failed", path=str(self.path), error=str(exc))

    def used_bytes(self) -> int:
        return quota.used_bytes(self.conn, self._page_size)

    def _insert_event(self, kind: str, source: str, data: dict[str, Any]) -> None:
        self.conn.execute(_INSERT_EVENT, (kind, source, self._clock.wall(), pack_event_data(data)))
        self._rows[Lane.EVENT] += 1

    # -- writing -----------------------------------------------------------------------------

    def write(self, parts: Iterable[Sequence[Sample]], events: Sequence[EncodedEvent]) -> int:
        """Commit samples and events in one transaction; returns the samples written.

        The hot path of the gateway: one tuple per sample, no other per-sample objects.
        """
        point_ids = self._point_ids
        reason_flags = REASON_FLAGS
        new_points: list[tuple[int, str]] = []
        rows: list[tuple[Any, ...]] = []
        append = rows.append
        try:
            for part in parts:
                for s in part:
                    pid = point_ids.get(s.point_id)
                    if pid is None:
                        pid = self._next_point + len(new_points)
                        new_points.append((pid, s.point_id))
                        point_ids[s.point_id] = pid
                    value = s.value
                    flags = s.quality | reason_flags[s.reason]
                    kind = type(value)
                    if kind is bool:
                        flags |= BOOL_FLAG
                    elif kind is float and value != value:
                        flags |= NAN_FLAG
                        value = None
                    append((pid, value, flags, s.receipt_ts, s.source_ts))
            try:
                last_id = self._insert(new_points, rows, events)
            except (sqlite3.ProgrammingError, sqlite3.InterfaceError, OverflowError) as exc:
                # A value SQLite cannot bind (a foreign type, an int beyond 64 bits) would fail
                # every retry and block the lane: store its text form instead, and say so.
                self._rollback()
                _LOG.warning("outbox stored unbindable values as text", error=str(exc))
                rows = [_bindable(row) for row in rows]
                last_id = self._insert(new_points, rows, events)
        except sqlite3.Error as exc:
            self._forget(new_points)
            if _is_disk_full(exc):
                self._make_room_after_disk_full()
            raise StorageError(f"{self.path}: commit failed: {exc}") from exc
        except BaseException:
            self._forget(new_points)
            raise
        for _pid, name in new_points:
            self._point_names.append(name)  # new ids run on from _next_point == len(names)
        self._next_point += len(new_points)
        if rows and self._tail.max_rows:
            self._tail.append(last_id - len(rows) + 1, rows, self._clock.wall() - self.options.live_window_s)
        self._rows[Lane.TELEMETRY] += len(rows)
        self._rows[Lane.EVENT] += len(events)
        self._enforce_quota()
        self._retake_reserve()
        return len(rows)

    def _insert(
        self, new_points: list[tuple[int, str]], rows: list[tuple[Any, ...]], events: Sequence[EncodedEvent]
    ) -> int:
        """One transaction; returns the id of the last telemetry row (0 when there were none)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        if new_points:
            conn.executemany("INSERT INTO points (id, point_id) VALUES (?, ?)", new_points)
        last_id = _insert_rows(conn, rows) if rows else 0
        if events:
            conn.executemany(_INSERT_EVENT, [(e.kind, e.source, e.ts, e.data) for e in events])
        conn.execute("COMMIT")
        return last_id

    def _forget(self, new_points: list[tuple[int, str]]) -> None:
        """Undo a failed write: roll back and drop the point ids it had interned."""
        self._rollback()
        for _, name in new_points:
            self._point_ids.pop(name, None)

    # -- quota -------------------------------------------------------------------------------

    def _enforce_quota(self, *, target_bytes: int | None = None, reason: str = "quota") -> None:
        """Evict old telemetry when over quota; refuse telemetry when events alone fill it."""
        used = self.used_bytes()
        q = self.options.quota_bytes
        if target_bytes is None:
            if used <= q and not (self.refused and used <= self.low_water_bytes):
                return
            target_bytes = self.low_water_bytes
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            gap = quota.Gap()
            if used > target_bytes:
                deleted = quota.evict_oldest_telemetry(
                    conn,
                    measure=self.used_bytes,
                    target_bytes=target_bytes,
                    telemetry_rows=self._rows[Lane.TELEMETRY],
                    gap=gap,
                )
            else:
                deleted = 0
            used = self.used_bytes()
            if gap:
                self._insert_event(
                    "outbox.gap", "outbox", gap.as_data(reason=reason, used_bytes=used, quota_bytes=q)
                )
            full = self.refused
            if used > q and not self.refused:
                self._insert_event("system.alarm", "outbox", self._alarm_data(True, used))
                self._set_meta("outbox_full", 1)
                full = True
            elif self.refused and used <= self.low_water_bytes:
                self._insert_event("system.alarm", "outbox", self._alarm_data(False, used))
                self._set_meta("outbox_full", 0)
                full = False
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"{self.path}: quota eviction failed: {exc}") from exc
        if deleted:
            self._tail.clear()  # the oldest rows went; rare enough to start the tail again
        self._rows[Lane.TELEMETRY] -= deleted
        if gap:
            data = gap.as_data(reason=reason, used_bytes=used, quota_bytes=q)
            _LOG.warning("outbox evicted old telemetry", **data)
        if full and not self.refused:
            _LOG.error("outbox full of events: telemetry refused", used_bytes=used)
        elif self.refused and not full:
            _LOG.info("outbox has room again: telemetry accepted", used_bytes=used)
        self.refused = full

    def _alarm_data(self, active: bool, used: int) -> dict[str, Any]:
        return {
            "code": "outbox_full",
            "active": active,
            "used_bytes": used,
            "quota_bytes": self.options.quota_bytes,
        }

    def _make_room_after_disk_full(self) -> None:
        """The disk (not the quota) is full: give up old telemetry as if the quota were lower.

        Deleting needs disk too (the WAL), so the reserve is given back first; the checkpoint
        afterwards moves the freed pages out of the WAL so that new rows reuse them."""
        self._reserve_file.release()
        try:
            self._enforce_quota(target_bytes=int(self.used_bytes() * 0.9), reason="disk_full")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._disk_full_alarm(True)
        except (StorageError, sqlite3.Error) as exc:
            _LOG.error("outbox could not make room on a full disk", error=str(exc))

    def _disk_full_alarm(self, active: bool) -> None:
        """Raise (or clear) the ``disk_full`` system alarm once per full-disk episode."""
        if (self._meta("disk_full") == 1) == active:
            return
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            data = {"code": "disk_full", "active": active, "reserve_bytes": self._reserve_file.size}
            self._insert_event("system.alarm", "outbox", data)
            self._set_meta("disk_full", 1 if active else 0)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            _LOG.error("outbox disk-full alarm not stored", active=active, error=str(exc))
            return
        if active:
            _LOG.error("outbox: the disk is full; old telemetry evicted to keep recording")
        else:
            _LOG.info("outbox: the disk has room again")

    def _retake_reserve(self) -> None:
        """After a full disk: hold the reserve again once there is room (checked every 10 s)."""
        now = self._clock.monotonic()
        if now - self._reserve_checked_at >= _RESERVE_CHECK_S:
            self._reserve_checked_at = now
            if self._reserve_file.take():
                self._disk_full_alarm(False)

    # -- sequence numbers --------------------------------------------------------------------

    def _reserve(self, lane: str, seq: int) -> None:
        if seq > self._marks.reserved.get(lane, 0):
            reserved = dict(self._marks.reserved)
            reserved[lane] = seq + self.options.seq_block - 1
            marks = SeqMarks(session=self._marks.session, reserved=reserved)
            write_marks(self._seq_path, marks)
            self._marks = marks

    def advance_seq(self, lane: Lane, at_least: int) -> int:
        """Make the lane's last sequence number at least ``at_least``; returns it."""
        if at_least <= self._last_seq[lane]:
            return self._last_seq[lane]
        self._reserve(lane, at_least)
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE lane_seq SET last_seq = ? WHERE lane = ?", (at_least, lane.value))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"{self.path}: cannot advance the sequence: {exc}") from exc
        _LOG.warning("outbox sequence advanced", lane=lane.value, last_seq=at_least)
        self._last_seq[lane] = at_least
        return at_least

    # -- batches -----------------------------------------------------------------------------

    def seal(self, lane: Lane, mode: SealMode, max_records: int, sealer: Sealer) -> SealedBatch | None:
        conn = self.conn
        now = self._clock.wall()
        cutoff = now - self.options.live_window_s
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken = None
            if lane is Lane.TELEMETRY and mode is SealMode.LIVE:
                taken = batches.take_from_tail(
                    self._tail, max_records=max_records, cutoff_ts=cutoff, names=self._point_names
                )
            from_tail = taken is not None
            if taken is None:
                taken = batches.take_rows(
                    conn, lane, mode, max_records=max_records, cutoff_ts=cutoff, names=self._point_names
                )
            if taken is None:
                conn.execute("ROLLBACK")
                return None
            historical = mode is SealMode.BACKLOG and taken.last_ts < cutoff
            seq = self._last_seq[lane] + 1
            self._reserve(lane, seq)
            count = len(taken.rows)
            payload = sealer(lane=lane, seq=seq, rows=taken.rows, historical=historical, sealed_at=now)
            conn.execute(
                "INSERT INTO batches (lane, seq, payload, record_count, sealed_at, first_ts, last_ts,"
                " historical) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (lane.value, seq, payload, count, now, taken.first_ts, taken.last_ts, int(historical)),
            )
            deleted = conn.execute(taken.delete_sql, taken.delete_args).rowcount
            if from_tail and deleted != count:
                # The tail held rows the table no longer has: never seal them (they may have
                # gone already). Start the tail again and read this batch from the table.
                self._rollback()
                self._tail.clear()
                _LOG.error(
                    "outbox live tail out of step with the table; reading rows back",
                    ids=list(taken.delete_args),
                    deleted=deleted,
                )
                return self.seal(lane, mode, max_records, sealer)
            conn.execute("UPDATE lane_seq SET last_seq = ? WHERE lane = ?", (seq, lane.value))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"{self.path}: seal failed: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        if lane is Lane.TELEMETRY:
            # Every row up to the newest taken is deleted now, or (older than the live window)
            # left for a BACKLOG seal: the tail keeps exactly the rows after it.
            self._tail.drop_through(taken.last_id)
        self._last_seq[lane] = seq
        self._rows[lane] -= count
        return SealedBatch(lane=lane, seq=seq, payload=payload, record_count=count, sealed_at=now)

    def pending(self, lane: Lane, after_seq: int, limit: int) -> list[SealedBatch]:
        try:
            found = self.conn.execute(
                "SELECT seq, payload, record_count, sealed_at FROM batches WHERE lane = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (lane.value, after_seq, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot read pending batches: {exc}") from exc
        return [SealedBatch(lane, seq, payload, count, sealed_at) for seq, payload, count, sealed_at in found]

    def acknowledge(self, lane: Lane, upto_seq: int) -> int:
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(
                "DELETE FROM batches WHERE lane = ? AND seq <= ?", (lane.value, upto_seq)
            ).rowcount
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StorageError(f"{self.path}: acknowledge failed: {exc}") from exc
        if deleted:
            self._enforce_quota()
        return int(deleted)

    def backlog(self) -> dict[str, Any]:
        conn = self.conn
        lanes: dict[str, Any] = {}
        try:
            for lane in _LANES:
                count, size, oldest_batch = conn.execute(
                    "SELECT count(*), coalesce(sum(length(payload)), 0), min(first_ts) FROM batches"
                    " WHERE lane = ?",
                    (lane,),
                ).fetchone()
                if lane == Lane.TELEMETRY:
                    row = conn.execute("SELECT receipt_ts FROM telemetry ORDER BY id LIMIT 1").fetchone()
                else:
                    row = conn.execute("SELECT ts FROM events ORDER BY id LIMIT 1").fetchone()
                stamps = [t for t in (oldest_batch, None if row is None else row[0]) if t is not None]
                lanes[lane] = {
                    "rows": self._rows[lane],
                    "batches": int(count),
                    "batch_bytes": int(size),
                    "oldest_ts": min(stamps) if stamps else None,
                    "last_seq": self._last_seq[lane],
                }
            used = self.used_bytes()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot read the backlog: {exc}") from exc
        return {
            "used_bytes": used,
            "quota_bytes": self.options.quota_bytes,
            "telemetry_refused": self.refused,
            "lanes": lanes,
        }
