"""The rules runtime's own SQLite file: the engine snapshot, the alarm history, the linkage log.

Kept apart from the outbox on purpose: the outbox deletes what central has acknowledged, while
the history must stay queryable on the gateway (the LAN dashboard's search, CSV export and
statistics, R2.8) and the snapshot is state, not data to ship.

One writer connection lives on a dedicated thread (``write``); readers open their own
connection on the caller's thread, which WAL mode allows alongside the writer. A snapshot and
the history rows of the same transitions are committed in one transaction, so after a crash
the history never claims a state the snapshot does not hold.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from core.errors import StorageError
from core.model import Event
from edge.outbox.migrator import Step, run_migrations

__all__ = ["MIGRATIONS", "RulesStore", "history_row", "linkage_dict", "linkage_row"]

_LOG = structlog.get_logger(__name__)

_V1 = (
    "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), site TEXT NOT NULL,"
    " saved_at REAL NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alarm_history (id INTEGER PRIMARY KEY, ts REAL NOT NULL,"
    " key TEXT NOT NULL, transition TEXT NOT NULL, by TEXT NOT NULL, priority TEXT, class TEXT,"
    " message_zh TEXT, message_en TEXT, point TEXT, zone TEXT, device TEXT, value TEXT,"
    " comment TEXT NOT NULL DEFAULT '', state_from TEXT, state_to TEXT)",
    "CREATE INDEX IF NOT EXISTS alarm_history_ts ON alarm_history (ts)",
    "CREATE INDEX IF NOT EXISTS alarm_history_key ON alarm_history (key, ts)",
    "CREATE TABLE IF NOT EXISTS linkage_log (id INTEGER PRIMARY KEY, ts REAL NOT NULL,"
    " rule TEXT NOT NULL, run INTEGER, sequence TEXT, step INTEGER, kind TEXT NOT NULL,"
    " point TEXT, device TEXT, value TEXT, attempt INTEGER, by TEXT, detail TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS linkage_log_ts ON linkage_log (ts)",
)


def _v1(conn: sqlite3.Connection) -> None:
    # IF NOT EXISTS: a store from before versioning (user_version 0) already has these tables.
    for statement in _V1:
        conn.execute(statement)


def _v2(conn: sqlite3.Connection) -> None:
    # Alarms raised during a drill are marked. (A v2 store written before the shared runner
    # has the column and says so in user_version, so this step does not run on it.)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(alarm_history)")}
    if "drill" not in columns:
        conn.execute("ALTER TABLE alarm_history ADD COLUMN drill INTEGER NOT NULL DEFAULT 0")


def _v3(conn: sqlite3.Connection) -> None:
    # The history is paged by key, newest first: (ts, id) < cursor.
    conn.execute("CREATE INDEX IF NOT EXISTS alarm_history_ts_id ON alarm_history (ts, id)")


MIGRATIONS: tuple[Step, ...] = (_v1, _v2, _v3)

_HISTORY_COLUMNS = (
    "ts, key, transition, by, priority, class, message_zh, message_en, point, zone, device, value,"
    " comment, state_from, state_to, drill"
)
_LINKAGE_COLUMNS = "ts, rule, run, sequence, step, kind, point, device, value, attempt, by, detail"


def _device_of(point_or_key: str | None) -> str | None:
    if not point_or_key:
        return None
    parts = point_or_key.split("/")
    return parts[1] if len(parts) >= 3 else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def history_row(event: Event) -> tuple[Any, ...]:
    """An ``alarm.*`` event as a row of ``alarm_history``."""
    d = event.data
    message = d.get("message") or {}
    comment = d.get("comment") or d.get("reason") or ""
    return (
        event.ts,
        event.source,
        str(d.get("transition") or event.kind.removeprefix("alarm.")),
        str(d.get("by") or "system"),
        d.get("priority"),
        d.get("class"),
        message.get("zh", ""),
        message.get("en", ""),
        d.get("point"),
        d.get("zone"),
        _device_of(d.get("point") or event.source),
        _json(d.get("value", d.get("transitions"))),
        str(comment),
        d.get("from"),
        d.get("to"),
        1 if d.get("drill") else 0,
    )


def linkage_row(event: Event, device_of: dict[str, tuple[str, str]]) -> tuple[Any, ...]:
    """A ``linkage.*`` event as a row of ``linkage_log``."""
    d = event.data
    point = d.get("point")
    target = device_of.get(point) if isinstance(point, str) else None
    detail_parts = [str(d[k]) for k in ("step_name", "reason", "detail") if d.get(k) not in (None, "")]
    if d.get("final"):
        detail_parts.append("final")
    if d.get("overridden_by"):
        detail_parts.append(f"overridden by {d['overridden_by']}")
    return (
        event.ts,
        str(d.get("rule") or event.source),
        d.get("run"),
        d.get("sequence"),
        d.get("step"),
        event.kind.removeprefix("linkage."),
        point,
        target[0] if target else _device_of(point),
        _json(d.get("value")),
        d.get("attempt"),
        d.get("by"),
        "; ".join(detail_parts),
    )


@dataclass(frozen=True, slots=True)
class _Write:
    history: Sequence[tuple[Any, ...]]
    linkage: Sequence[tuple[Any, ...]]
    snapshot: dict[str, Any] | None


class RulesStore:
    def __init__(self, path: Path, site: str) -> None:
        self.path = path
        self.site = site
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rules-db")
        self._conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> dict[str, Any] | None:
        """Open (creating the schema) and return the saved snapshot, if any, for this site."""
        saved: dict[str, Any] | None = await self._run(self._open)
        return saved

    def _open(self) -> dict[str, Any] | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledgement the operator saw succeed survives a power cut too; the
            # writes are few (one per batch of transitions), so the fsync is affordable.
            conn.execute("PRAGMA synchronous=FULL")
            run_migrations(conn, MIGRATIONS, store="rules store", path=str(self.path))
            row = conn.execute("SELECT site, data FROM snapshot WHERE id = 1").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open the rules store: {exc}") from exc
        self._conn = conn
        if row is None:
            return None
        if row[0] != self.site:
            _LOG.warning("rules snapshot of another site; starting fresh", found=row[0], site=self.site)
            return None
        data: dict[str, Any] = json.loads(row[1])
        return data

    async def close(self) -> None:
        try:
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=True)

    def _close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self._local = threading.local()  # forget the closed readers on every thread
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- writing -----------------------------------------------------------------------------
    async def write(
        self,
        history: Sequence[tuple[Any, ...]],
        linkage: Sequence[tuple[Any, ...]],
        snapshot: dict[str, Any] | None,
        saved_at: float,
    ) -> tuple[list[int], list[int]]:
        """Commit in one transaction; returns the ids given to the history and linkage rows."""
        ids: tuple[list[int], list[int]] = await self._run(
            self._write, _Write(history, linkage, snapshot), saved_at
        )
        return ids

    def _write(self, w: _Write, saved_at: float) -> tuple[list[int], list[int]]:
        conn = self._conn
        if conn is None:
            raise StorageError("the rules store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            history_sql = f"INSERT INTO alarm_history ({_HISTORY_COLUMNS}) VALUES ({','.join('?' * 16)})"
            history_ids = [int(conn.execute(history_sql, row).lastrowid or 0) for row in w.history]
            linkage_sql = f"INSERT INTO linkage_log ({_LINKAGE_COLUMNS}) VALUES ({','.join('?' * 12)})"
            linkage_ids = [int(conn.execute(linkage_sql, row).lastrowid or 0) for row in w.linkage]
            if w.snapshot is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO snapshot (id, site, saved_at, data) VALUES (1, ?, ?, ?)",
                    (self.site, saved_at, json.dumps(w.snapshot, ensure_ascii=False)),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"{self.path}: rules store commit failed: {exc}") from exc
        return history_ids, linkage_ids

    # -- reading (on the caller's thread, own connection) -----------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def history(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        priority: str | None = None,
        klass: str | None = None,
        device: str | None = None,
        text: str | None = None,
        limit: int = 200,
        offset: int = 0,
        before: tuple[float, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows newest first. Page with ``before``: the ``(ts, id)`` of the last row of the page
        before, which an index finds directly (``offset`` reads and drops every skipped row; it
        is kept for old clients)."""
        where: list[str] = []
        args: list[Any] = []
        for column, op, value in (
            ("ts", ">=", since),
            ("ts", "<", until),
            ("priority", "=", priority),
            ("class", "=", klass),
            ("device", "=", device),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        if text:
            where.append("(key LIKE ? OR message_zh LIKE ? OR message_en LIKE ? OR comment LIKE ?)")
            pattern = f"%{text}%"
            args.extend([pattern] * 4)
        if before is not None:
            where.append("(ts < ? OR (ts = ? AND id < ?))")
            args.extend([before[0], before[0], int(before[1])])
        sql = "SELECT * FROM alarm_history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?"
        args.extend([max(0, int(limit)), max(0, int(offset))])
        rows = self._reader().execute(sql, args).fetchall()
        return [
            {
                "id": r["id"],
                "ts": r["ts"],
                "key": r["key"],
                "transition": r["transition"],
                "by": r["by"],
                "priority": r["priority"],
                "class": r["class"],
                "message": {"zh": r["message_zh"] or "", "en": r["message_en"] or ""},
                "point": r["point"],
                "zone": r["zone"],
                "value": None if r["value"] is None else json.loads(r["value"]),
                "comment": r["comment"],
                "from": r["state_from"],
                "to": r["state_to"],
                "drill": bool(r["drill"]),
            }
            for r in rows
        ]

    def raised_per_day(self, since: float, until: float, utc_offset_s: float) -> list[tuple[str, str, int]]:
        """(day, class or priority, raises) for the statistics charts, days in site time."""
        sql = (
            "SELECT date(ts + ?, 'unixepoch') AS day, COALESCE(class, priority, 'other') AS c, COUNT(*)"
            " FROM alarm_history WHERE transition = 'raised' AND ts >= ? AND ts < ?"
            " GROUP BY day, c ORDER BY day"
        )
        rows = self._reader().execute(sql, (utc_offset_s, since, until)).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def top_raised(self, since: float, until: float, limit: int = 10) -> list[dict[str, Any]]:
        sql = (
            "SELECT key, COUNT(*) AS n, MAX(message_zh) AS zh, MAX(message_en) AS en FROM alarm_history"
            " WHERE transition = 'raised' AND ts >= ? AND ts < ? GROUP BY key ORDER BY n DESC, key LIMIT ?"
        )
        rows = self._reader().execute(sql, (since, until, limit)).fetchall()
        return [
            {"key": r[0], "count": int(r[1]), "message": {"zh": r[2] or "", "en": r[3] or ""}} for r in rows
        ]

    def linkage_log(self, *, device: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        sql = "SELECT * FROM linkage_log"
        args: list[Any] = []
        if device is not None:
            sql += " WHERE device = ?"
            args.append(device)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(max(0, int(limit)))
        rows = self._reader().execute(sql, args).fetchall()
        return [_linkage_dict(r) for r in rows]


def linkage_dict(row_id: int, row: tuple[Any, ...]) -> dict[str, Any]:
    """A ``linkage_row`` tuple (as written) in the shape ``linkage_log`` returns."""
    names = [c.strip() for c in _LINKAGE_COLUMNS.split(",")]
    out: dict[str, Any] = {"id": row_id, **dict(zip(names, row, strict=True))}
    out["value"] = None if out["value"] is None else json.loads(out["value"])
    return out


def _linkage_dict(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": r["id"],
        "ts": r["ts"],
        "rule": r["rule"],
        "run": r["run"],
        "sequence": r["sequence"],
        "step": r["step"],
        "kind": r["kind"],
        "point": r["point"],
        "device": r["device"],
        "value": None if r["value"] is None else json.loads(r["value"]),
        "attempt": r["attempt"],
        "by": r["by"],
        "detail": r["detail"],
    }
