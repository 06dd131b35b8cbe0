"""``commands.db``: what central issued to which gateway, its ``cseq`` counter, matched results.

One SQLite file per central API node, in the console's data folder (beside ``console.db``).
The counter is per gateway and persisted in the same transaction as the command it numbers,
so a restart never hands out a number twice: a gateway refuses a number it has already seen
(``replay``), so a reused one would be a command that silently never runs.

Results are not ingested here: central's storage holds the gateways' ``command.result`` events,
and :class:`~cloud_sync.central.commands.service.CommandService` copies a matched outcome onto
its command row so that a finished command is never looked up again. Thread-safe (the API's
handlers run in a thread pool).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cloud_sync.central.commands.states import Outcome, state_of
from cloud_sync.commands import Command
from cloud_sync.errors import CentralStoreError

__all__ = ["COMMANDS_DB", "CommandLedger", "CommandRow"]

COMMANDS_DB: Final = "commands.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cid TEXT NOT NULL UNIQUE,
    gateway TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    by_name TEXT NOT NULL,
    source TEXT NOT NULL,
    issued_at REAL NOT NULL,
    not_after REAL NOT NULL,
    config_before TEXT,
    unsent TEXT,
    status TEXT,
    detail TEXT,
    value TEXT,
    reported_at REAL,
    UNIQUE (gateway, cseq)
);
CREATE INDEX IF NOT EXISTS commands_gateway ON commands (gateway, id);
CREATE INDEX IF NOT EXISTS commands_open ON commands (gateway, issued_at) WHERE status IS NULL;
CREATE TABLE IF NOT EXISTS cseq_counter (gateway TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stray_results (
    gateway TEXT NOT NULL,
    cid TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (gateway, cid)
);
"""


@dataclass(frozen=True, slots=True)
class CommandRow:
    id: int
    cid: str
    gateway: str
    cseq: int
    action: str
    args: dict[str, Any]
    by: str
    source: str
    issued_at: float
    not_after: float
    config_before: str | None
    unsent: str | None
    status: str | None
    detail: str
    value: Any
    reported_at: float | None

    def state(self, now: float) -> str:
        return state_of(status=self.status, unsent=self.unsent is not None, not_after=self.not_after, now=now)


def _row(r: sqlite3.Row) -> CommandRow:
    return CommandRow(
        id=r["id"],
        cid=r["cid"],
        gateway=r["gateway"],
        cseq=r["cseq"],
        action=r["action"],
        args=json.loads(r["args"]),
        by=r["by_name"],
        source=r["source"],
        issued_at=r["issued_at"],
        not_after=r["not_after"],
        config_before=r["config_before"],
        unsent=r["unsent"],
        status=r["status"],
        detail=r["detail"] or "",
        value=None if r["value"] is None else json.loads(r["value"]),
        reported_at=r["reported_at"],
    )


def _marks(items: Collection[Any]) -> str:
    return ",".join("?" * len(items))


# The state filter in SQL, mirroring states.state_of (``?`` is the clock).
_STATE_SQL: Final = {
    "done": ("status = 'done'", False),
    "refused": ("status = 'refused'", False),
    "failed": ("status = 'failed'", False),
    "unsent": ("status IS NULL AND unsent IS NOT NULL", False),
    "expired": ("status IS NULL AND unsent IS NULL AND not_after < ?", True),
    "pending": ("status IS NULL AND unsent IS NULL AND not_after >= ?", True),
}


class CommandLedger:
    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise CentralStoreError(f"{path}: cannot open the command ledger: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def issue(self, gateway: str, command: Command, *, config_before: str | None = None) -> Command:
        """Record ``command`` for ``gateway`` under the next ``cseq`` (its own is ignored)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute("SELECT last FROM cseq_counter WHERE gateway = ?", (gateway,)).fetchone()
            cseq = (row[0] if row else 0) + 1
            self._db.execute(
                "INSERT INTO cseq_counter (gateway, last) VALUES (?, ?) "
                "ON CONFLICT (gateway) DO UPDATE SET last = excluded.last",
                (gateway, cseq),
            )
            numbered = Command(
                cid=command.cid,
                cseq=cseq,
                issued_at=command.issued_at,
                not_after=command.not_after,
                action=command.action,
                args=command.args,
                by=command.by,
                source=command.source,
            )
            self._db.execute(
                "INSERT INTO commands (cid, gateway, cseq, action, args, by_name, source, issued_at,"
                " not_after, config_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    numbered.cid,
                    gateway,
                    cseq,
                    numbered.action,
                    json.dumps(dict(numbered.args), ensure_ascii=False),
                    numbered.by,
                    numbered.source,
                    numbered.issued_at,
                    numbered.not_after,
                    config_before,
                ),
            )
        return numbered

    def mark_unsent(self, cid: str, reason: str) -> None:
        with self._lock:
            self._db.execute("UPDATE commands SET unsent = ? WHERE cid = ?", (reason[:512], cid))

    def open_since(self, gateway: str, since: float) -> float | None:
        """The oldest issue time of ``gateway``'s commands issued after ``since`` still without result."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(issued_at) FROM commands WHERE gateway = ? AND status IS NULL AND issued_at >= ?",
                (gateway, since),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def gateways_open(self, since: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT gateway FROM commands WHERE status IS NULL AND issued_at >= ?", (since,)
            ).fetchall()
        return sorted(r[0] for r in rows)

    def gateways(self) -> list[str]:
        with self._lock:
            return sorted(r[0] for r in self._db.execute("SELECT DISTINCT gateway FROM cseq_counter"))

    def record(self, gateway: str, outcomes: Iterable[Outcome], *, now: float) -> tuple[int, int]:
        """Copy outcomes onto their commands (first one wins); (matched, stray) counts.

        A result is matched by gateway *and* cid: a gateway cannot close another's command."""
        matched = stray = 0
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for o in outcomes:
                cur = self._db.execute(
                    "UPDATE commands SET status = ?, detail = ?, value = ?, reported_at = ?"
                    " WHERE gateway = ? AND cid = ? AND status IS NULL",
                    (o.status, o.detail, json.dumps(o.value, default=str), o.reported_at, gateway, o.cid),
                )
                if cur.rowcount:
                    matched += 1
                    continue
                known = self._db.execute(
                    "SELECT 1 FROM commands WHERE gateway = ? AND cid = ?", (gateway, o.cid)
                ).fetchone()
                if known is None:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO stray_results (gateway, cid, seen_at) VALUES (?, ?, ?)",
                        (gateway, o.cid[:128], now),
                    )
                    stray += cur.rowcount
        return matched, stray

    def stray_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM stray_results").fetchone()[0])

    def get(self, cid: str) -> CommandRow | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM commands WHERE cid = ?", (cid,)).fetchone()
        return None if r is None else _row(r)

    def page(
        self,
        *,
        gateways: Collection[str] | None,
        states: Collection[str] | None = None,
        before: int | None = None,
        limit: int,
        now: float,
    ) -> list[CommandRow]:
        """Newest first; ``before`` is the ``id`` the previous page ended with."""
        sql = "SELECT * FROM commands WHERE 1=1"
        args: list[Any] = []
        if gateways is not None:
            sql += f" AND gateway IN ({_marks(gateways)})"
            args += list(gateways)
        if states:
            clauses = []
            for s in states:
                clause, clocked = _STATE_SQL[s]
                clauses.append(f"({clause})")
                if clocked:
                    args.append(now)
            sql += " AND (" + " OR ".join(clauses) + ")"
        if before is not None:
            sql += " AND id < ?"
            args.append(before)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [_row(r) for r in self._db.execute(sql, args).fetchall()]
