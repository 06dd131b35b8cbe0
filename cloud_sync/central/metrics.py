"""What central says about itself to Prometheus (docs/operations.md, "Central: metrics and health").

- :class:`IngestTally` counts arrivals by transport and lane, stored batches, records,
  duplicates and rejections by reason, HTTPS acks and commit time. :class:`MeteredIngestor` is
  the service's :class:`~cloud_sync.central.ingest.Ingestor` with the tally kept around its two
  public stages (``verify_many``, ``commit``), so MQTT and HTTPS ingest are both counted and the
  ingest code itself stays as it is.
- :class:`CentralCollector` reads everything else at scrape time: the MQTT link and its two
  ingest queues, per gateway what central stored and what the gateway reports in its state
  message (backlog, sequence), and the database's size on disk. Nothing is copied on the ingest
  path but the tally's counter increments.
- :func:`build_registry` puts the collector and the process collector (RSS, CPU, open fds) in a
  registry of its own: tests run several centrals in one process.

Scrapes read SQLite: call ``generate_latest`` in a thread, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from cloud_sync.central.byte_queue import ByteBoundedQueue
from cloud_sync.central.ingest import Ingestor, IngestOutcome, Prepared
from cloud_sync.errors import CentralStoreError
from cloud_sync.ports import Lane

if TYPE_CHECKING:
    from cloud_sync.central.mqtt import CentralMqtt
    from cloud_sync.central.service_view import ServiceView

__all__ = ["CentralCollector", "IngestTally", "MeteredIngestor", "build_registry", "ingest_queues"]

_LOG = structlog.get_logger(__name__)
_LANES = frozenset(lane.value for lane in Lane)
NAMESPACE = "gatehouse_central"


def _lane_label(lane: str) -> str:
    # The lane comes from a topic or URL a client chose: keep the label set bounded.
    return lane if lane in _LANES else "other"


class IngestTally:
    """Thread-safe counters of what ingest did (MQTT runs two pipelines in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: Counter[tuple[str, str]] = Counter()  # (transport, lane)
        self.stored: Counter[tuple[str, str]] = Counter()  # (transport, lane)
        self.records: Counter[str] = Counter()  # lane
        self.duplicates: Counter[tuple[str, str]] = Counter()  # (transport, duplicate|conflict)
        self.rejected: Counter[tuple[str, str]] = Counter()  # (transport, reason)
        self.https_acks = 0
        self.commits = 0
        self.commit_seconds = 0.0

    def note_received(self, transport: str, lanes: Sequence[str]) -> None:
        with self._lock:
            for lane in lanes:
                self.received[(transport, _lane_label(lane))] += 1

    def note_outcome(self, transport: str, outcome: IngestOutcome) -> None:
        with self._lock:
            if outcome.status == "stored":
                lane = _lane_label(outcome.lane)
                self.stored[(transport, lane)] += 1
                self.records[lane] += outcome.records
            elif outcome.status == "duplicate":
                self.duplicates[(transport, outcome.reason or "duplicate")] += 1
            else:
                self.rejected[(transport, outcome.reason or "unknown")] += 1
            if transport == "https" and outcome.ack is not None:
                self.https_acks += 1  # the API answers it: one ack per accepted POST

    def note_commit(self, seconds: float) -> None:
        with self._lock:
            self.commits += 1
            self.commit_seconds += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": dict(self.received),
                "stored": dict(self.stored),
                "records": dict(self.records),
                "duplicates": dict(self.duplicates),
                "rejected": dict(self.rejected),
                "https_acks": self.https_acks,
                "commits": self.commits,
                "commit_seconds": self.commit_seconds,
            }


class MeteredIngestor(Ingestor):
    """The ingestor, counted: rejections at verification, stored and duplicate ones at commit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tally = IngestTally()

    def verify_many(self, items: Sequence[tuple[bytes, str, str]], *, transport: str) -> list[Prepared]:
        prepared = super().verify_many(items, transport=transport)
        self.tally.note_received(transport, [lane for _payload, _gw, lane in items])
        for p in prepared:
            if isinstance(p, IngestOutcome):  # rejected before anything was stored
                self.tally.note_outcome(transport, p)
        return prepared

    def commit(self, prepared: Sequence[Prepared], *, transport: str) -> list[IngestOutcome]:
        started = time.perf_counter()
        outcomes = super().commit(prepared, transport=transport)
        if any(not isinstance(p, IngestOutcome) for p in prepared):  # something was stored
            self.tally.note_commit(time.perf_counter() - started)
        # Rejections were counted at verification; they come back unchanged from commit.
        for outcome in outcomes:
            if outcome.status != "rejected":
                self.tally.note_outcome(transport, outcome)
        return outcomes


def ingest_queues(mqtt: CentralMqtt | None) -> dict[str, ByteBoundedQueue[Any]]:
    """The MQTT ingest queues by lane (empty without a broker)."""
    return {} if mqtt is None else mqtt.queues


def database_files(path: Path) -> dict[str, int]:
    """Bytes of the database and its WAL and shared-memory files (absent ones left out)."""
    sizes: dict[str, int] = {}
    for kind, suffix in (("main", ""), ("wal", "-wal"), ("shm", "-shm")):
        try:
            sizes[kind] = (path.parent / (path.name + suffix)).stat().st_size
        except FileNotFoundError:
            continue
    return sizes


def _number(value: Any) -> float | None:
    # The state message's backlog is informative (protocol.md §5): take numbers, skip the rest.
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


class CentralCollector(Collector):
    """Prometheus families read from a running :class:`ServiceView` at scrape time."""

    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        yield from self._ingest_families()
        yield from self._mqtt_families()
        yield from self._database_families()
        try:
            yield from self._gateway_families()
        except CentralStoreError as exc:
            _LOG.warning("metrics: gateways not read", error=str(exc))

    def _ingest_families(self) -> Iterator[Metric]:
        ingestor = self._service.ingestor
        tally = ingestor.tally.snapshot() if isinstance(ingestor, MeteredIngestor) else None
        if tally is not None:
            received = CounterMetricFamily(
                f"{NAMESPACE}_batches_received", "Batches that arrived", labels=["transport", "lane"]
            )
            stored = CounterMetricFamily(
                f"{NAMESPACE}_batches_stored", "Batches stored (new)", labels=["transport", "lane"]
            )
            rejected = CounterMetricFamily(
                f"{NAMESPACE}_batches_rejected", "Batches refused, by reason", labels=["transport", "reason"]
            )
            duplicates = CounterMetricFamily(
                f"{NAMESPACE}_batches_duplicate",
                "Batches already stored: resends (duplicate) or other bytes under a stored seq (conflict)",
                labels=["transport", "kind"],
            )
            records = CounterMetricFamily(f"{NAMESPACE}_records_stored", "Records stored", labels=["lane"])
            for (transport, lane), n in sorted(tally["received"].items()):
                received.add_metric([transport, lane], n)
            for (transport, lane), n in sorted(tally["stored"].items()):
                stored.add_metric([transport, lane], n)
            for (transport, reason), n in sorted(tally["rejected"].items()):
                rejected.add_metric([transport, reason], n)
            for (transport, kind), n in sorted(tally["duplicates"].items()):
                duplicates.add_metric([transport, kind], n)
            for lane, n in sorted(tally["records"].items()):
                records.add_metric([lane], n)
            commit = SummaryMetricFamily(
                f"{NAMESPACE}_commit_seconds",
                "Time to store one group of verified batches",
                count_value=tally["commits"],
                sum_value=tally["commit_seconds"],
            )
            yield from (received, stored, rejected, duplicates, records, commit)
        acks = CounterMetricFamily(f"{NAMESPACE}_acks_sent", "Signed acks sent", labels=["transport"])
        mqtt = self._service.mqtt
        if mqtt is not None:
            acks.add_metric(["mqtt"], mqtt.acks_published)
        if tally is not None:
            acks.add_metric(["https"], tally["https_acks"])
        yield acks
        pending = GaugeMetricFamily(f"{NAMESPACE}_audit_pending", "Audit rows waiting to be written")
        pending.add_metric([], ingestor.audit_pending)
        dropped = CounterMetricFamily(
            f"{NAMESPACE}_audit_dropped", "Rejections counted but not itemised (audit buffer full)"
        )
        dropped.add_metric([], ingestor.counters.get("audit_dropped", 0))
        yield from (pending, dropped)

    def _mqtt_families(self) -> Iterator[Metric]:
        mqtt = self._service.mqtt
        configured = GaugeMetricFamily(f"{NAMESPACE}_broker_configured", "1 if central ingests over MQTT")
        configured.add_metric([], 0.0 if self._service.config.broker is None else 1.0)
        yield configured
        if mqtt is None:
            return
        connected = GaugeMetricFamily(
            f"{NAMESPACE}_broker_connected", "1 while connected and subscribed to the gateways' topics"
        )
        connected.add_metric([], 1.0 if mqtt.subscribed.is_set() else 0.0)
        depth = GaugeMetricFamily(f"{NAMESPACE}_ingest_queue_items", "Messages waiting", labels=["queue"])
        size = GaugeMetricFamily(f"{NAMESPACE}_ingest_queue_bytes", "Bytes waiting", labels=["queue"])
        cap_items = GaugeMetricFamily(
            f"{NAMESPACE}_ingest_queue_capacity_items", "Messages the queue holds at most", labels=["queue"]
        )
        cap_bytes = GaugeMetricFamily(
            f"{NAMESPACE}_ingest_queue_capacity_bytes", "Bytes the queue holds at most", labels=["queue"]
        )
        peak = GaugeMetricFamily(
            f"{NAMESPACE}_ingest_queue_peak_bytes", "Most bytes ever waiting", labels=["queue"]
        )
        for name, queue in sorted(ingest_queues(mqtt).items()):
            depth.add_metric([name], queue.qsize())
            size.add_metric([name], queue.nbytes)
            cap_items.add_metric([name], queue.max_items)
            cap_bytes.add_metric([name], queue.max_bytes)
            peak.add_metric([name], queue.peak_bytes)
        yield from (connected, depth, size, cap_items, cap_bytes, peak)

    def _database_families(self) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            f"{NAMESPACE}_database_bytes", "Size of the database files on disk", labels=["file"]
        )
        path = getattr(self._service.store, "path", None)
        if isinstance(path, Path):  # SQLite; PostgreSQL reports its own size
            for kind, n in database_files(path).items():
                size.add_metric([kind], n)
        yield size

    def _gateway_families(self) -> Iterator[Metric]:
        service = self._service
        store = service.store
        now = time.time()
        g = ["gateway"]
        gl = ["gateway", "lane"]
        enrolled = GaugeMetricFamily(f"{NAMESPACE}_gateway_enrolled", "1 if enrolled", labels=g)
        online = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_online", "1 if its last state message said online", labels=g
        )
        seen_age = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_last_seen_age_seconds", "Since anything arrived from it", labels=g
        )
        state_age = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_state_age_seconds", "Since its last state message", labels=g
        )
        batch_age = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_last_batch_age_seconds",
            "Since the batch with the highest sequence number was received",
            labels=gl,
        )
        delay = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_last_batch_delay_seconds",
            "Received minus sealed time of that batch (gateway clock)",
            labels=gl,
        )
        acked = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_acked_seq", "Highest contiguous seq stored", labels=gl
        )
        highest = GaugeMetricFamily(f"{NAMESPACE}_gateway_highest_seq", "Highest seq stored", labels=gl)
        reported = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_reported_seq", "Highest seq the gateway reports having sent", labels=gl
        )
        b_rows = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_backlog_rows", "Records waiting in its outbox, as reported", labels=gl
        )
        b_batches = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_backlog_batches", "Sealed batches not yet acked, as reported", labels=gl
        )
        b_bytes = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_backlog_bytes", "Bytes of those batches, as reported", labels=gl
        )
        b_age = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_backlog_oldest_age_seconds",
            "Age of its oldest unacknowledged record, as reported",
            labels=gl,
        )
        used = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_outbox_used_bytes", "Its outbox's size, as reported", labels=g
        )
        quota = GaugeMetricFamily(
            f"{NAMESPACE}_gateway_outbox_quota_bytes", "Its outbox's quota, as reported", labels=g
        )
        # One snapshot: a lane's acked and highest seq come from the same read.
        rows = {r["gateway_id"]: r for r in store.gateway_rows()}
        lanes = {(gw, lane): info["acked"] for gw, r in rows.items() for lane, info in r["lanes"].items()}
        newest: dict[tuple[str, str], tuple[int, float, float]] = {
            (gw, lane): (info["highest"], info["last_batch_at"], info["last_sealed_at"])
            for gw, r in rows.items()
            for lane, info in r["lanes"].items()
            if info["last_batch_at"] is not None
        }
        known = set(service.registry.gateway_ids)
        for gw in sorted(known | set(rows)):
            enrolled.add_metric([gw], 1.0 if gw in known else 0.0)
            row = rows.get(gw)
            if row is None:
                online.add_metric([gw], 0.0)
                continue
            online.add_metric([gw], 1.0 if row["state"] == "online" else 0.0)
            seen_age.add_metric([gw], max(0.0, now - row["last_seen"]))
            if row["state_ts"] is not None:
                state_age.add_metric([gw], max(0.0, now - row["state_ts"]))
            backlog, seqs = row["backlog"], row["reported_seq"]
            backlog = backlog if isinstance(backlog, dict) else {}
            seqs = seqs if isinstance(seqs, dict) else {}
            for family, key in ((used, "used_bytes"), (quota, "quota_bytes")):
                value = _number(backlog.get(key))
                if value is not None:
                    family.add_metric([gw], value)
            reported_lanes = backlog.get("lanes") if isinstance(backlog.get("lanes"), dict) else {}
            for lane in sorted(_LANES):
                if (gw, lane) in newest:
                    seq, received_at, sealed_at = newest[(gw, lane)]
                    highest.add_metric([gw, lane], seq)
                    batch_age.add_metric([gw, lane], max(0.0, now - received_at))
                    delay.add_metric([gw, lane], received_at - sealed_at)
                acked.add_metric([gw, lane], lanes.get((gw, lane), 0))
                top_reported = _number(seqs.get(lane))
                if top_reported is not None:
                    reported.add_metric([gw, lane], top_reported)
                info = reported_lanes.get(lane) if isinstance(reported_lanes, dict) else None
                if not isinstance(info, dict):
                    continue
                for family, key in ((b_rows, "rows"), (b_batches, "batches"), (b_bytes, "batch_bytes")):
                    value = _number(info.get(key))
                    if value is not None:
                        family.add_metric([gw, lane], value)
                oldest = _number(info.get("oldest_ts"))
                b_age.add_metric([gw, lane], 0.0 if oldest is None else max(0.0, now - oldest))
        yield from (enrolled, online, seen_age, state_age, batch_age, delay, acked, highest, reported)
        yield from (b_rows, b_batches, b_bytes, b_age, used, quota)


def build_registry(service: ServiceView) -> CollectorRegistry:
    """A registry of its own with the central collector and the process collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CentralCollector(service))
    ProcessCollector(namespace=NAMESPACE, registry=registry)
    return registry
