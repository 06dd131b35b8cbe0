"""The daemon: the outbox, one coordinator per device, the uplink, all in one TaskGroup.

``Gateway`` is an async context manager. Entering opens the outbox; ``run()`` polls until
``stop()`` is called; leaving flushes the outbox, so a SIGTERM loses nothing that was polled.
``reload(site)`` swaps the devices of a new, already validated site without closing the
outbox: SIGHUP uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, cast

import structlog

from core.errors import QuotaExceeded, StorageError
from core.model import Clock, Event, Quality, Reason, Sample, SystemClock
from edge.config.site import Site
from edge.coordinator import supervise
from edge.live import LiveState
from edge.outbox import Outbox
from edge.reporter import Reporter, ReportPolicyLike
from edge.wiring import DeviceSet, build_devices

__all__ = ["Gateway"]

_LOG = structlog.get_logger(__name__)


_PORT_EVENTS = frozenset({"bus.port_open", "bus.port_lost"})


class Gateway:
    def __init__(self, site: Site, *, clock: Clock | None = None) -> None:
        self.site = site
        self.clock: Clock = clock or SystemClock()
        self.live = LiveState()
        self.dropped_samples = 0
        self._stack = AsyncExitStack()
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._pending_site: Site | None = None
        self._outbox: Outbox | None = None
        self._devices: DeviceSet | None = None
        self._devices_up = asyncio.Event()  # set while a device set is running (not during a reload)
        self._reporter = Reporter({})
        self._uplink: Any = None
        # The uplink has a stack of its own so that a reload can replace it alone.
        self._uplink_stack = AsyncExitStack()
        # Set by edge.rules_host.runtime when the site has rules (alarm lifecycle and linkage);
        # satisfies edge.alarm_api.AlarmService for the dashboard.
        self.alarms: Any = None
        self.commands: Any = None  # edge.commands.CommandExecutor while the uplink runs
        self.uplink_watch: Any = None  # edge.uplink.watch.UplinkWatch while the uplink runs
        self._dashboard: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        cfg = self.site.config.outbox
        self.site.data_dir.mkdir(parents=True, exist_ok=True)
        self._outbox = await self._stack.enter_async_context(
            Outbox(
                self.site.outbox_path,
                quota_bytes=cfg.quota_bytes,
                queue_size=cfg.queue_size,
                commit_interval_ms=cfg.commit_interval_ms,
                commit_batch=cfg.commit_batch,
                clock=self.clock,
            )
        )
        # Closed before the outbox (LIFO): the uplink reads the outbox until it stops.
        self._stack.push_async_callback(self._close_uplink)
        self._uplink = await self._enter_uplink()
        self.alarms = await self._enter_rules()
        self._dashboard = await self._enter_dashboard()
        from edge.retention import enter_retention

        await enter_retention(self._stack, self)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._outbox is not None:
                await self._outbox.flush()
        finally:
            await self._stack.aclose()

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the gateway is not running")
        return self._outbox

    @property
    def devices(self) -> DeviceSet | None:
        return self._devices

    @property
    def uplink(self) -> Any:
        """The running ``cloud_sync.uplink.Uplink`` (``status()`` for health views), or None."""
        return self._uplink

    @property
    def dashboard(self) -> Any:
        """The running LAN dashboard server (``edge.dashboard``), or None."""
        return self._dashboard

    def stop(self) -> None:
        self._stop.set()

    def reload(self, site: Site) -> None:
        """Swap in a new site; the caller has validated it already."""
        self._pending_site = site
        self._reload.set()

    async def run(self) -> None:
        """Poll every device until ``stop()``; reload on request."""
        while not self._stop.is_set():
            async with self._device_set(self.site) as devices:
                self._devices = devices
                self._devices_up.set()
                # Everything built so far (config models, profiles, drivers, compiled rules)
                # lives as long as this device set: keep it out of the collector's full passes,
                # which otherwise stall the loop for a quarter of a second on a big site.
                gc.freeze()
                await self._wait_for_stop_or_reload()
                self._devices_up.clear()
            self._devices = None
            if self._pending_site is not None:
                _LOG.info(
                    "configuration reloaded",
                    devices=len(self._pending_site.devices),
                    previous_devices=len(self.site.devices),
                )
                previous = self.site
                self.site, self._pending_site = self._pending_site, None
                self._reload.clear()
                if previous.config.uplink != self.site.config.uplink:
                    await self._restart_uplink()
                if self.alarms is not None:
                    self.alarms.reload(self.site)

    async def devices_running(self) -> None:
        """Return once the devices are running (at start-up and after a reload they are not yet)."""
        await self._devices_up.wait()

    async def write(
        self,
        device_id: str,
        key: str,
        value: Any,
        *,
        verify: bool = True,
        by: str | None = None,
        priority: int | None = None,
    ) -> Any:
        """Write a point through its device's coordinator (commands never bypass it).

        ``by`` names the operator of a manual write: the point is then marked as overridden
        for the linkage rules first, so automation never undoes it (GB 50116 4.1.4) until the
        operator releases it (``alarms.release_override``).
        """
        devices = self._devices
        if devices is None or device_id not in devices.coordinators:
            raise KeyError(f"no running device {device_id!r}")
        if by is not None and self.alarms is not None:
            await self.alarms.mark_override(self.site.point_id(device_id, key), by=by, value=value)
        return await devices.coordinators[device_id].write(key, value, verify=verify, priority=priority)

    # -- internals ---------------------------------------------------------------------------

    def _build_devices(self, site: Site) -> contextlib.AbstractAsyncContextManager[DeviceSet]:
        workers = site.config.gateway.poll_workers
        if workers == 0:
            return build_devices(site, sink=self._on_samples, events=self._on_event, clock=self.clock)
        from edge.logs import logging_args
        from edge.poll_workers.pool import worker_devices

        return worker_devices(
            site,
            workers=workers,
            sink=self._on_samples,
            events=self._on_event,
            clock=self.clock,
            log_args=logging_args(),
        )

    @contextlib.asynccontextmanager
    async def _device_set(self, site: Site) -> Any:
        async with self._build_devices(site) as ds:
            # ReportPolicy has every field of ReportPolicyLike (a structural stand-in kept free of
            # edge.config imports, but a class rather than a Protocol, hence the cast)
            self._reporter = Reporter(cast("Mapping[str, ReportPolicyLike]", ds.report_policies))
            # The reporter holds what it needs; this map of every point would stay for the
            # device set's whole life (1.9 MB at 60,000 points).
            ds.report_policies.clear()
            for device_id in ds.coordinators:
                self.live.set_online(device_id, None)
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(supervise(coord), name=f"device:{device_id}")
                    for device_id, coord in ds.coordinators.items()
                ]
                try:
                    yield ds
                finally:
                    for task in tasks:
                        task.cancel()

    async def _wait_for_stop_or_reload(self) -> None:
        stop = asyncio.create_task(self._stop.wait(), name="wait-stop")
        reload = asyncio.create_task(self._reload.wait(), name="wait-reload")
        try:
            await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            reload.cancel()

    async def _on_samples(self, samples: list[Sample]) -> None:
        self.live.update(samples)
        if self.alarms is not None:
            # every sample, not only the reported ones: alarms and linkage must see each value
            await self.alarms.feed(samples)
        reported = self._reporter.select(samples, self.clock.monotonic())
        if not reported:
            return
        try:
            await self.outbox.put_samples(reported)
        except QuotaExceeded:
            # The outbox has raised its own system alarm; telemetry is shed until space returns.
            self.dropped_samples += len(reported)

    async def _on_event(self, event: Event) -> None:
        if event.kind in ("device.online", "device.offline"):
            self.live.set_online(event.source, event.kind == "device.online")
        elif event.kind in _PORT_EVENTS:
            # A shared port's own state is a point too (SITE/_bus/BUS), so rules, the dashboard
            # and central see an unplugged RS-485 adapter as one value, not only as events.
            is_open = event.kind == "bus.port_open"
            sample = Sample(
                self.site.point_id("_bus", event.source),
                is_open,
                Quality.GOOD,
                event.ts,
                Reason.NONE,
            )
            await self._on_samples([sample])
        try:
            await self.outbox.put_event(event)
        except StorageError:
            _LOG.error("event could not be stored", kind=event.kind, source=event.source)
            raise

    async def _enter_uplink(self) -> Any:
        raw = self.site.config.uplink
        if not raw:
            return None
        from edge.commands import CommandExecutor, CommandInbox, GatewayCommandHost
        from edge.config_push import ConfigPush
        from edge.uplink.wiring import enter_uplink

        inbox = CommandInbox()
        stack = self._uplink_stack
        uplink = await enter_uplink(stack, raw, site=self.site, store=self.outbox, on_command=inbox.submit)
        executor = CommandExecutor(
            GatewayCommandHost(self),
            gateway_id=self.site.config.gateway.id,
            central_keys=uplink.central_keys,
            data_dir=self.site.data_dir,
            resend=uplink.resend_range,
            config_push=ConfigPush(self),
        )
        self.commands = await stack.enter_async_context(inbox.running(executor))
        self.uplink_watch = await stack.enter_async_context(self._uplink_watch(uplink.config))
        return uplink

    def _uplink_watch(self, config: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        """The "uplink behind" alarm (edge.uplink.watch), for as long as the uplink runs."""
        from edge.uplink.watch import UplinkWatch, watching

        async def on_change(change: Any) -> None:
            # The alarm's own point, like a port's SITE/_bus/BUS: the dashboard, rules and central.
            point = self.site.point_id("_uplink", "behind")
            sample = Sample(point, change.active, Quality.GOOD, self.clock.wall(), Reason.NONE)
            await self._on_samples([sample])

        watch = UplinkWatch(
            self.outbox,
            on_change=on_change,
            raise_s=config.behind_alarm_s,
            clear_s=config.behind_clear_s,
            wall=self.clock.wall,
            monotonic=self.clock.monotonic,
        )
        return watching(watch, every_s=config.behind_check_s)

    async def _close_uplink(self) -> None:
        self._uplink = None
        self.uplink_watch = None
        await self._uplink_stack.aclose()
        self._uplink_stack = AsyncExitStack()

    async def _restart_uplink(self) -> None:
        """A reload changed ``uplink:``: stop the running uplink and start the new one.

        Nothing is lost in between: unacknowledged batches stay in the outbox and the new
        uplink resends them (byte-identical, so central stores each once).
        """
        _LOG.info("uplink configuration changed; restarting the uplink")
        await self._close_uplink()
        try:
            self._uplink = await self._enter_uplink()
        except (OSError, ValueError) as exc:
            # The site validated, but a file it names could not be used (a key unreadable since
            # the check): keep polling and buffering; the next reload or restart tries again.
            _LOG.error("uplink not restarted; buffering only", error=str(exc))

    async def _enter_rules(self) -> Any:
        if not self.site.config.rules and not _site_has_alarms(self.site):
            return None
        from edge.rules_host.runtime import enter_rules

        return await enter_rules(self._stack, self)

    async def _enter_dashboard(self) -> Any:
        raw = self.site.config.dashboard
        if not raw:
            return None
        from edge.dashboard import enter_dashboard

        return await enter_dashboard(self._stack, raw, gateway=self)


def _site_has_alarms(site: Site) -> bool:
    return any(point.alarms for device in site.devices for point in device.points)
