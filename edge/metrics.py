"""What the running gateway says about itself: Prometheus metrics, ``/healthz``, systemd ``STATUS=``.

Everything here *reads* the gateway at the moment it is asked (a scrape, a health probe, a
watchdog tick); nothing sits in the polling hot path. The per-device counters already exist
(``edge.coordinator.CoordinatorStats``), the outbox answers ``backlog()`` on its database
thread, the uplink answers ``status()``, the alarm service ``active_alarms()``.

- :class:`GatewayCollector` turns that into Prometheus families (a custom collector, so the
  numbers are never copied twice); :func:`build_registry` adds the process collector (RSS, CPU,
  open fds) from ``prometheus_client``.
- :func:`health` says what is unhealthy, for ``/healthz`` (200 when nothing is, else 503).
- :class:`StatusLine` is the one-line summary sent to systemd as ``STATUS=``.

The outbox backlog is read asynchronously (:meth:`BacklogCache.refresh`) before a scrape or a
health probe, with a deadline: a stuck disk must show up as unhealthy, not hang the endpoint.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.errors import StorageError

__all__ = ["BacklogCache", "GatewayCollector", "StatusLine", "build_registry", "health"]

_LOG = structlog.get_logger(__name__)

_BACKLOG_TIMEOUT_S = 5.0
# Health thresholds. An unacknowledged record older than this means the uplink is not working.
STALE_BACKLOG_S = 15 * 60.0
# Outbox use above this share of its quota is reported before eviction starts.
QUOTA_WARN = 0.9


class BacklogCache:
    """The outbox's ``backlog()`` as last read, with when and whether the read worked."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self.value: dict[str, Any] | None = None
        self.error: str | None = None
        self.read_at: float | None = None

    async def refresh(self, timeout_s: float = _BACKLOG_TIMEOUT_S) -> dict[str, Any] | None:
        try:
            async with asyncio.timeout(timeout_s):
                self.value = await self._gateway.outbox.backlog()
            self.error = None
            self.read_at = time.time()
        except TimeoutError:
            self.error = f"the outbox did not answer within {timeout_s:g} s"
        except (StorageError, RuntimeError) as exc:
            self.error = str(exc)
        return self.value


def _devices(gateway: Any) -> list[tuple[str, str, Any]]:
    """(device id, bus id, coordinator) of every running device."""
    devices = gateway.devices
    if devices is None:
        return []
    bus_of = {d.id: d.bus.id for d in gateway.site.devices}
    return [(dev, bus_of.get(dev, "?"), coord) for dev, coord in devices.coordinators.items()]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class GatewayCollector(Collector):
    """Prometheus families read from the gateway at scrape time."""

    def __init__(self, gateway: Any, backlog: BacklogCache) -> None:
        self._gateway = gateway
        self._backlog = backlog

    def collect(self) -> Iterator[Metric]:
        yield from self._device_families()
        yield from self._worker_families()
        yield from self._outbox_families()
        yield from self._uplink_families()
        yield from self._alarm_families()

    def _device_families(self) -> Iterator[Metric]:
        gw = self._gateway
        labels = ["device", "bus"]
        polls = CounterMetricFamily(
            "gatehouse_device_polls", "Polls per device by result", labels=[*labels, "result"]
        )
        errors = CounterMetricFamily(
            "gatehouse_device_errors", "Failed reads per device by kind", labels=[*labels, "kind"]
        )
        latency = GaugeMetricFamily(
            "gatehouse_device_poll_latency_seconds", "Last poll's duration", labels=labels
        )
        lateness = GaugeMetricFamily(
            "gatehouse_device_poll_lateness_seconds",
            "How late recent polls started (recent window)",
            labels=[*labels, "quantile"],
        )
        up = GaugeMetricFamily(
            "gatehouse_device_up", "1 online, 0 offline (absent: not heard yet)", labels=labels
        )
        bus_polls = CounterMetricFamily(
            "gatehouse_bus_polls", "Polls per bus by result", labels=["bus", "result"]
        )
        bus_errors = CounterMetricFamily("gatehouse_bus_errors", "Failed reads per bus", labels=["bus"])
        bus_latency = GaugeMetricFamily(
            "gatehouse_bus_poll_latency_seconds", "Mean of its devices' last poll durations", labels=["bus"]
        )
        per_bus: dict[str, list[Any]] = {}
        for device, bus, coord in _devices(gw):
            s = coord.stats
            per_bus.setdefault(bus, []).append(s)
            polls.add_metric([device, bus, "ok"], s.polls_ok)
            polls.add_metric([device, bus, "failed"], s.polls_failed)
            errors.add_metric([device, bus, "transport"], s.reads_failed)
            errors.add_metric([device, bus, "device"], s.device_errors)
            if s.last_latency_s is not None:
                latency.add_metric([device, bus], s.last_latency_s)
            late = list(s.lateness_s)
            if late:
                for q in (0.5, 0.95, 1.0):
                    lateness.add_metric([device, bus, f"{q:g}"], _percentile(late, q))
            online = gw.live.device_online.get(device)
            if online is not None:
                up.add_metric([device, bus], 1.0 if online else 0.0)
        for bus, stats in per_bus.items():
            bus_polls.add_metric([bus, "ok"], sum(s.polls_ok for s in stats))
            bus_polls.add_metric([bus, "failed"], sum(s.polls_failed for s in stats))
            bus_errors.add_metric([bus], sum(s.reads_failed + s.device_errors for s in stats))
            last = [s.last_latency_s for s in stats if s.last_latency_s is not None]
            if last:
                bus_latency.add_metric([bus], sum(last) / len(last))
        skipped = GaugeMetricFamily("gatehouse_devices_disabled", "Devices in the site file not polled")
        skipped.add_metric([], len(gw.devices.skipped) if gw.devices is not None else 0)
        dropped = CounterMetricFamily("gatehouse_samples_dropped", "Samples refused by a full outbox")
        dropped.add_metric([], getattr(gw, "dropped_samples", 0))
        yield from (
            polls,
            errors,
            latency,
            lateness,
            up,
            bus_polls,
            bus_errors,
            bus_latency,
            skipped,
            dropped,
        )

    def _worker_families(self) -> Iterator[Metric]:
        """The poll worker processes (gateway.poll_workers); the process collector sees only
        the gateway's own process."""
        devices = self._gateway.devices
        workers = [] if devices is None else devices.workers
        if not workers:
            return
        up = GaugeMetricFamily("gatehouse_poll_worker_up", "1 running, 0 restarting", labels=["worker"])
        starts = CounterMetricFamily(
            "gatehouse_poll_worker_starts", "Times the worker process was started", labels=["worker"]
        )
        cpu = CounterMetricFamily(
            "gatehouse_poll_worker_cpu_seconds", "CPU time of the running worker process", labels=["worker"]
        )
        rss = GaugeMetricFamily(
            "gatehouse_poll_worker_resident_memory_bytes", "Resident memory of the worker", labels=["worker"]
        )
        for worker in workers:
            pid = worker.pid
            usage = None if pid is None else _proc_usage(pid)
            up.add_metric([worker.name], 1.0 if usage is not None and worker.ready.is_set() else 0.0)
            starts.add_metric([worker.name], worker.starts)
            if usage is not None:
                cpu.add_metric([worker.name], usage[0])
                rss.add_metric([worker.name], usage[1])
        yield from (up, starts, cpu, rss)

    def _outbox_families(self) -> Iterator[Metric]:
        backlog = self._backlog.value
        ok = GaugeMetricFamily("gatehouse_outbox_readable", "1 if the last backlog read worked")
        ok.add_metric([], 0.0 if self._backlog.error else 1.0)
        yield ok
        if backlog is None:
            return
        now = time.time()
        rows = GaugeMetricFamily("gatehouse_outbox_rows", "Records not yet sealed", labels=["lane"])
        batches = GaugeMetricFamily(
            "gatehouse_outbox_batches", "Sealed batches not yet acked", labels=["lane"]
        )
        size = GaugeMetricFamily("gatehouse_outbox_batch_bytes", "Bytes of sealed batches", labels=["lane"])
        age = GaugeMetricFamily(
            "gatehouse_outbox_oldest_unacked_age_seconds",
            "Age of the oldest unacknowledged record",
            labels=["lane"],
        )
        seq = GaugeMetricFamily("gatehouse_outbox_last_seq", "Last sequence number sealed", labels=["lane"])
        for lane, info in backlog["lanes"].items():
            rows.add_metric([lane], info["rows"])
            batches.add_metric([lane], info["batches"])
            size.add_metric([lane], info["batch_bytes"])
            seq.add_metric([lane], info["last_seq"])
            age.add_metric([lane], 0.0 if info["oldest_ts"] is None else max(0.0, now - info["oldest_ts"]))
        used = GaugeMetricFamily("gatehouse_outbox_used_bytes", "Bytes the outbox database uses")
        used.add_metric([], backlog["used_bytes"])
        quota = GaugeMetricFamily("gatehouse_outbox_quota_bytes", "The outbox's disk quota")
        quota.add_metric([], backlog["quota_bytes"])
        refused = GaugeMetricFamily(
            "gatehouse_outbox_telemetry_refused", "1 while events alone fill the quota"
        )
        refused.add_metric([], 1.0 if backlog["telemetry_refused"] else 0.0)
        yield from (rows, batches, size, age, seq, used, quota, refused)

    def _uplink_families(self) -> Iterator[Metric]:
        uplink = self._gateway.uplink
        configured = GaugeMetricFamily("gatehouse_uplink_configured", "1 if the site has an uplink")
        configured.add_metric([], 0.0 if uplink is None else 1.0)
        yield configured
        if uplink is None:
            return
        status = uplink.status()
        counters: dict[str, int] = status.get("counters", {})
        connected = GaugeMetricFamily("gatehouse_uplink_connected", "1 while connected to the broker")
        connected.add_metric([], 1.0 if status.get("connected") else 0.0)
        sent = CounterMetricFamily("gatehouse_uplink_batches_sent", "Batches published (resends included)")
        sent.add_metric([], counters.get("batches_sent", 0))
        acked = CounterMetricFamily("gatehouse_uplink_batches_acked", "Batches deleted after central's ack")
        acked.add_metric([], counters.get("batches_deleted", 0))
        rejected = CounterMetricFamily(
            "gatehouse_uplink_batches_rejected", "Publishes the broker refused, and refusals per lane"
        )
        rejected.add_metric([], counters.get("publish_refused", 0))
        events = CounterMetricFamily("gatehouse_uplink_events", "Every uplink counter", labels=["counter"])
        for name, value in sorted(counters.items()):
            events.add_metric([name], value)
        lane_acked = GaugeMetricFamily(
            "gatehouse_uplink_acked_seq", "Central's acked sequence", labels=["lane"]
        )
        in_flight = GaugeMetricFamily(
            "gatehouse_uplink_in_flight", "Batches sent, not yet acked", labels=["lane"]
        )
        refusals = CounterMetricFamily(
            "gatehouse_uplink_lane_refused", "Batches central refused", labels=["lane"]
        )
        for lane, info in status.get("lanes", {}).items():
            lane_acked.add_metric([lane], info.get("acked") or 0)
            in_flight.add_metric([lane], info.get("in_flight") or 0)
            refusals.add_metric([lane], info.get("refused") or 0)
        yield from (connected, sent, acked, rejected, events, lane_acked, in_flight, refusals)
        yield from self._behind_families()

    def _behind_families(self) -> Iterator[Metric]:
        """The "uplink behind" alarm and its figures (edge.uplink.watch), once it has looked."""
        watch = getattr(self._gateway, "uplink_watch", None)
        if watch is None or watch.latest is None:
            return
        trend = watch.latest
        active = GaugeMetricFamily("gatehouse_uplink_behind", "1 while the uplink-behind alarm is raised")
        active.add_metric([], 1.0 if watch.active else 0.0)
        behind = GaugeMetricFamily(
            "gatehouse_uplink_behind_seconds", "Age of the oldest record central has not acknowledged"
        )
        behind.add_metric([], trend.behind_s)
        growth = GaugeMetricFamily(
            "gatehouse_outbox_growth_bytes_per_second", "Outbox growth, least squares over the last minute"
        )
        growth.add_metric([], trend.growth_bytes_per_s)
        yield from (active, behind, growth)
        if trend.quota_full_in_s is not None:
            full = GaugeMetricFamily(
                "gatehouse_outbox_quota_full_in_seconds", "At the current growth; absent while not growing"
            )
            full.add_metric([], trend.quota_full_in_s)
            yield full

    def _alarm_families(self) -> Iterator[Metric]:
        alarms = self._gateway.alarms
        if alarms is None:
            return
        by_state = GaugeMetricFamily(
            "gatehouse_alarms",
            "Alarms that are not normal, by state and priority",
            labels=["state", "priority"],
        )
        counts: dict[tuple[str, str], int] = {}
        for row in alarms.active_alarms():
            key = (str(row.get("state")), str(row.get("priority")))
            counts[key] = counts.get(key, 0) + 1
        for (state, priority), n in sorted(counts.items()):
            by_state.add_metric([state, priority], n)
        yield by_state


def _proc_usage(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, resident bytes) of a process from /proc, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, int(statm[1]) * os.sysconf("SC_PAGE_SIZE")


def build_registry(gateway: Any, backlog: BacklogCache) -> CollectorRegistry:
    """A registry of its own (not the global one): tests run several gateways in one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(gateway, backlog))
    ProcessCollector(namespace="gatehouse", registry=registry)
    return registry


def health(gateway: Any, backlog: BacklogCache) -> dict[str, Any]:
    """``{"healthy": bool, "problems": [{"check", "detail"}], "checks": {...}}``."""
    problems: list[dict[str, str]] = []
    devices = _devices(gateway)
    online = sum(1 for d, _, _ in devices if gateway.live.device_online.get(d) is True)
    offline = sorted(d for d, _, _ in devices if gateway.live.device_online.get(d) is False)
    if gateway.devices is None:
        problems.append({"check": "devices", "detail": "the devices are not running (starting or reloading)"})
    elif devices and not online:
        problems.append({"check": "devices", "detail": f"none of {len(devices)} devices answers"})
    if backlog.error is not None:
        problems.append({"check": "outbox", "detail": backlog.error})
    info = backlog.value
    oldest_age_s: float | None = None
    if info is not None:
        stamps = [lane["oldest_ts"] for lane in info["lanes"].values() if lane["oldest_ts"] is not None]
        if stamps:
            oldest_age_s = max(0.0, time.time() - min(stamps))
        used, quota = info["used_bytes"], info["quota_bytes"]
        if info["telemetry_refused"]:
            problems.append({"check": "outbox", "detail": "events fill the quota; telemetry is refused"})
        elif quota and used >= QUOTA_WARN * quota:
            problems.append(
                {"check": "outbox", "detail": f"outbox at {100 * used / quota:.0f} % of its quota"}
            )
    uplink = gateway.uplink
    uplink_state: dict[str, Any] | None = None
    if uplink is not None:
        status = uplink.status()
        uplink_state = {"connected": bool(status.get("connected")), "last_error": status.get("last_error")}
        if oldest_age_s is not None and oldest_age_s > STALE_BACKLOG_S:
            problems.append(
                {
                    "check": "uplink",
                    "detail": f"oldest unacknowledged record is {oldest_age_s / 60:.0f} min old"
                    + (
                        ""
                        if status.get("connected")
                        else f" and the uplink is down ({status.get('last_error')})"
                    ),
                }
            )
    return {
        "healthy": not problems,
        "problems": problems,
        "checks": {
            "devices": {"running": len(devices), "online": online, "offline": offline},
            "outbox": {"readable": backlog.error is None, "oldest_unacked_age_s": oldest_age_s},
            "uplink": uplink_state,
        },
    }


class StatusLine:
    """The ``STATUS=`` text: devices, how many answer, and the backlog per lane."""

    def __init__(self, gateway: Any) -> None:
        self._gateway = gateway
        self._backlog = BacklogCache(gateway)
        self.text = "starting"

    async def refresh(self) -> str:
        await self._backlog.refresh()
        gw = self._gateway
        devices = _devices(gw)
        online = sum(1 for d, _, _ in devices if gw.live.device_online.get(d) is True)
        parts = [f"{len(devices)} devices, {online} online"]
        info = self._backlog.value
        if self._backlog.error is not None:
            parts.append(f"outbox: {self._backlog.error}")
        elif info is not None:
            lanes = info["lanes"]
            parts.append(
                "backlog "
                + ", ".join(
                    f"{lane} {v['rows']} rows/{v['batches']} batches" for lane, v in sorted(lanes.items())
                )
            )
        if gw.uplink is not None:
            parts.append("uplink " + ("connected" if gw.uplink.status().get("connected") else "down"))
        self.text = "; ".join(parts)
        return self.text

    async def run(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.refresh()
