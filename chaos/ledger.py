"""The ledger: what the gateway committed against what central stored, sample by sample.

*Produced* is every sample the gateway is known to have committed to its outbox: the
:class:`OutboxWatcher` reads the outbox file (read-only, many times a second) and remembers each
telemetry row, event and sealed batch it ever saw; a batch sealed and acknowledged between two
reads still reaches central, and central stores only batches signed by the gateway's key, so
central's rows count as produced too. *Stored* is what central's database holds. *Lost* is
produced and not stored, less what the gateway itself declared given up in a signed
``outbox.gap`` record (a full disk or quota: *evicted*, reported separately and never silently).
*Duplicated* is every extra copy of a sample or event at central.

The ledger also checks order where the protocol promises it: events reach central in the order
the gateway committed them (an alarm never overtakes an earlier one), and inside each telemetry
batch a point's samples keep their commit order. (Across telemetry batches the order is not
promised: after an outage live values go first and the backlog follows, docs/protocol.md.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from cloud_sync.envelope import decode_header, decode_records, to_us
from cloud_sync.ports import EventRow, TelemetryRow

__all__ = ["CentralContents", "OutboxWatcher", "Tally", "central_contents", "tally"]

SampleKey = tuple[str, int]  # (point id, receipt time in µs as the envelope carries it)
EventKey = tuple[str, str, int]  # (kind, source, ts in µs)


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


@dataclass
class OutboxWatcher:
    """Everything ever seen committed in one gateway's outbox file."""

    db: Path
    # -> (read number, outbox row id) when seen as a row: row ids are reused once the rows are
    # sealed away, so only ids read in one snapshot compare; earlier reads committed earlier.
    samples: dict[SampleKey, tuple[int, int] | None] = field(default_factory=dict)
    events: set[EventKey] = field(default_factory=set)
    event_order: dict[EventKey, tuple[int, int]] = field(default_factory=dict)  # as samples
    event_kinds: Counter[str] = field(default_factory=Counter)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    batches: dict[tuple[str, int], bytes] = field(default_factory=dict)  # (lane, seq) -> sha256
    changed_batches: list[tuple[str, int]] = field(default_factory=list)
    reads: int = 0

    def poll(self) -> None:
        if not self.db.exists():
            return
        try:
            with contextlib.closing(_ro(self.db)) as conn:
                self._read(conn)
        except sqlite3.OperationalError as exc:
            # Not created or migrated yet, or busy: the next poll reads it.
            text = str(exc)
            if "no such table" not in text and "locked" not in text and "unable to open" not in text:
                raise

    def _read(self, conn: sqlite3.Connection) -> None:
        # One read transaction: a row sealed between two queries cannot escape both.
        conn.execute("BEGIN")
        try:
            rows = conn.execute(
                "SELECT t.id, p.point_id, t.receipt_ts FROM telemetry t JOIN points p ON p.id = t.point"
            ).fetchall()
            self.reads += 1
            for row_id, point_id, ts in rows:
                self.samples.setdefault((point_id, to_us(ts)), (self.reads, row_id))
            for event_id, kind, source, ts, data in conn.execute(
                "SELECT id, kind, source, ts, data FROM events"
            ):
                self._event(kind, source, ts, lambda d=data: msgpack.unpackb(d))
                self.event_order.setdefault((kind, source, to_us(ts)), (self.reads, event_id))
            for lane, seq, payload in conn.execute("SELECT lane, seq, payload FROM batches"):
                digest = hashlib.sha256(payload).digest()
                known = self.batches.get((lane, seq))
                if known is not None:
                    if known != digest:
                        self.changed_batches.append((lane, seq))
                    continue
                self.batches[(lane, seq)] = digest
                for record in decode_records(decode_header(payload)):
                    if isinstance(record, TelemetryRow):
                        self.samples.setdefault((record.point_id, to_us(record.receipt_ts)), None)
                    else:
                        assert isinstance(record, EventRow)
                        self._event(record.kind, record.source, record.ts, lambda r=record: r.data)
        finally:
            conn.execute("COMMIT")

    def _event(self, kind: str, source: str, ts: float, data: Any) -> None:
        key = (kind, source, to_us(ts))
        if key in self.events:
            return
        self.events.add(key)
        self.event_kinds[kind] += 1
        if kind == "outbox.gap":
            self.gaps.append(dict(data()))

    def leftover(self) -> dict[str, int]:
        """Rows and batches still in the outbox (all 0 once central acknowledged everything)."""
        with contextlib.closing(_ro(self.db)) as conn:
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
                for table in ("telemetry", "events", "batches")
            }

    def last_seq(self) -> dict[str, int]:
        with contextlib.closing(_ro(self.db)) as conn:
            return {str(lane): int(seq) for lane, seq in conn.execute("SELECT lane, last_seq FROM lane_seq")}


@dataclass
class CentralContents:
    seqs: dict[str, list[int]]
    digests: dict[tuple[str, int], bytes]
    samples: Counter[SampleKey]
    events: Counter[EventKey]
    gaps: list[dict[str, Any]]
    acked: dict[str, int]
    conflicts: int
    order: dict[tuple[str, int], list[SampleKey]]  # per (point, batch seq), in row order
    event_order: list[EventKey]  # in (seq, row) order

    def contiguous(self, lane: str) -> bool:
        seqs = self.seqs.get(lane, [])
        return seqs == list(range(1, len(seqs) + 1))

    @property
    def batch_count(self) -> int:
        return sum(len(s) for s in self.seqs.values())


def central_contents(db: Path, gateway_id: str) -> CentralContents:
    empty = CentralContents({}, {}, Counter(), Counter(), [], {}, 0, {}, [])
    if not db.exists():
        return empty
    try:
        with contextlib.closing(_ro(db)) as conn:
            conn.execute("BEGIN")
            try:
                return _read_central(conn, gateway_id)
            finally:
                conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return empty
        raise


def _read_central(conn: sqlite3.Connection, gw: str) -> CentralContents:
    seqs: dict[str, list[int]] = {"telemetry": [], "event": []}
    digests: dict[tuple[str, int], bytes] = {}
    for lane, seq, digest in conn.execute(
        "SELECT lane, seq, digest FROM batches WHERE gateway_id = ? ORDER BY lane, seq", (gw,)
    ):
        seqs.setdefault(lane, []).append(seq)
        digests[(lane, seq)] = digest
    samples: Counter[SampleKey] = Counter()
    order: dict[tuple[str, int], list[SampleKey]] = defaultdict(list)
    for point_id, ts, seq in conn.execute(
        "SELECT p.point_id, t.ts, t.seq FROM telemetry t JOIN points p ON p.id = t.point"
        " WHERE p.gateway_id = ? ORDER BY t.seq, t.rowid",
        (gw,),
    ):
        key = (point_id, to_us(ts))
        samples[key] += 1
        order[(point_id, seq)].append(key)
    events: Counter[EventKey] = Counter()
    gaps: list[dict[str, Any]] = []
    event_order: list[EventKey] = []
    for kind, source, ts, data in conn.execute(
        "SELECT kind, source, ts, data FROM events WHERE gateway_id = ? ORDER BY seq, id", (gw,)
    ):
        events[(kind, source, to_us(ts))] += 1
        event_order.append((kind, source, to_us(ts)))
        if kind == "outbox.gap":
            gaps.append(json.loads(data))
    acked = {
        str(k): int(v) for k, v in conn.execute("SELECT lane, acked FROM lanes WHERE gateway_id = ?", (gw,))
    }
    conflicts = int(conn.execute("SELECT count(*) FROM rejected WHERE reason = 'conflict'").fetchone()[0])
    return CentralContents(seqs, digests, samples, events, gaps, acked, conflicts, dict(order), event_order)


@dataclass
class Tally:
    """One scenario's counts, as the table shows them."""

    produced: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    evicted: int = 0  # given up by the gateway under a signed gap record (full disk, quota)
    events_produced: int = 0
    events_lost: int = 0
    events_duplicated: int = 0
    reordered: int = 0  # batches (per point) or events central holds in another order than committed
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.duplicated or self.events_lost or self.events_duplicated or self.problems
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "stored": self.stored,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "evicted": self.evicted,
            "events_produced": self.events_produced,
            "events_lost": self.events_lost,
            "events_duplicated": self.events_duplicated,
            "reordered": self.reordered,
            "problems": self.problems,
        }


def _resealed_by_eviction(lane: str, seq: int, gaps: list[dict[str, Any]]) -> bool:
    for gap in gaps:
        lo, hi = gap.get("seq_from"), gap.get("seq_to")
        if lane == "telemetry" and isinstance(lo, int) and isinstance(hi, int) and lo <= seq <= hi:
            return True
    return False


def _in_declared_gap(key: SampleKey, gaps: list[dict[str, Any]]) -> bool:
    ts = key[1]
    for gap in gaps:
        lo, hi = gap.get("from_ts"), gap.get("to_ts")
        if lo is not None and hi is not None and to_us(float(lo)) <= ts <= to_us(float(hi)):
            return True
    return False


def tally(
    watcher: OutboxWatcher, central: CentralContents, *, last_seq: dict[str, int] | None = None
) -> Tally:
    """Compare; ``last_seq`` (the outbox's, once drained) also checks no number was left out."""
    out = Tally()
    committed = set(watcher.samples) | set(central.samples)
    out.produced = len(committed)
    out.stored = len(central.samples)
    gaps = watcher.gaps + central.gaps
    missing = [k for k in watcher.samples if k not in central.samples]
    evicted = [k for k in missing if _in_declared_gap(k, gaps)]
    out.evicted = len(evicted)
    out.lost = len(missing) - len(evicted)
    out.duplicated = sum(n - 1 for n in central.samples.values() if n > 1)
    out.events_produced = len(watcher.events | set(central.events))
    out.events_lost = len(watcher.events - set(central.events))
    out.events_duplicated = sum(n - 1 for n in central.events.values() if n > 1)
    for keys in central.order.values():
        seen = [i for i in (watcher.samples.get(k) for k in keys) if i is not None]
        if seen != sorted(seen):
            out.reordered += 1
    seen_events = [i for i in (watcher.event_order.get(k) for k in central.event_order) if i is not None]
    if seen_events != sorted(seen_events):
        out.reordered += 1
        out.problems.append("events stored out of commit order")
    if out.reordered:
        out.problems.append(f"{out.reordered} batch(es) or event lane stored out of commit order")
    for lane, seqs in central.seqs.items():
        if not central.contiguous(lane):
            out.problems.append(f"{lane} sequences at central are not 1..n")
        if last_seq is not None and len(seqs) < last_seq.get(lane, 0):
            out.problems.append(
                f"{lane}: outbox handed out {last_seq[lane]} numbers, central holds {len(seqs)}"
            )
    if central.conflicts:
        out.problems.append(f"{central.conflicts} sequence number(s) reused for other bytes")
    if watcher.changed_batches:
        out.problems.append(f"sealed batches changed in the outbox: {watcher.changed_batches[:3]}")
    for (lane, seq), digest in watcher.batches.items():
        # Eviction may thin a sealed batch that was never sent (the gap record names its sequence
        # range); central holding the thinned bytes is then the promised outcome. A batch that
        # was sent and then changed shows up as a conflict at central instead (checked above).
        stored = central.digests.get((lane, seq))
        if stored is not None and stored != digest and not _resealed_by_eviction(lane, seq, gaps):
            out.problems.append(f"batch {lane}/{seq} differs at central")
    return out
