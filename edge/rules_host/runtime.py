"""The rules engine inside the daemon: samples in, alarms and linkage writes out, state kept.

``RulesRuntime`` wraps the pure ``rules.RulesEngine`` (which reads no clock and does no I/O)
with what a running gateway needs:

* every sample the coordinators deliver is fed to the engine (``feed``), not only the ones
  the reporter sends on;
* a ticker task moves time on (delays, shelving expiry, linkage delays and timeouts) at the
  engine's ``next_due`` or at least once a second (communication-loss timers);
* linkage write commands go to the device's coordinator (``Gateway.write``, with read-back)
  and their outcome comes back as ``command_result``: ``verified`` when the read-back equals
  the value, ``written`` for a point without read-back, ``failed`` otherwise;
* every alarm transition and linkage audit step becomes an ``Event`` in the outbox's event
  lane, and a row of the alarm history or linkage log (``edge.rules_host.store``), for the
  dashboard's search, CSV export and statistics;
* the engine's snapshot is committed to SQLite, in the same transaction as those rows,
  whenever the state changed; an operator action returns only once it is durable. After a
  restart every alarm is exactly as it was: nothing is raised twice and no acknowledgement is
  lost.

Ordering: the store is committed before the events are handed to the outbox. A crash between
the two can lose those few events from the uplink, never duplicate a raise (the other order
would restore an older snapshot and raise the same condition again).

It implements ``edge.alarm_api.AlarmService`` for the LAN dashboard.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import structlog

from core.errors import DeviceError, StorageError, TransportError
from core.model import Event, Sample, Value
from edge.alarm_api import AlarmUpdate
from edge.config.site import Site
from edge.rules_host.host import RulesGateway
from edge.rules_host.site import compile_site_rules, point_targets
from edge.rules_host.store import RulesStore, history_row, linkage_dict, linkage_row
from edge.rules_host.views import linkage_rule_rows, per_day, utc_offset_s
from rules import Command, CommandResult, RulesEngine, restore, snapshot

__all__ = ["RulesRuntime", "enter_rules"]

_LOG = structlog.get_logger(__name__)

_TICK_MAX_S = 1.0  # communication-loss timers are checked at least this often
_QUEUE_SIZE = 256  # batches waiting to be stored; a full queue slows the feeders down
_IDLE_SNAPSHOT_S = 60.0  # values that changed without any transition are saved this often
_RETRY_MAX_S = 5.0


async def enter_rules(stack: AsyncExitStack, gateway: RulesGateway) -> RulesRuntime:
    """Start the rules runtime for ``gateway``; it stops when ``stack`` closes."""
    return await stack.enter_async_context(RulesRuntime(gateway))


@dataclass(slots=True)
class _Batch:
    events: list[Event]
    snapshot: bool  # save the engine's state with these events (taken when the batch is stored)
    at: float
    done: asyncio.Future[None] | None = None


class RulesRuntime:
    """The engine, its store and its tasks. Everything runs on the gateway's event loop."""

    def __init__(self, gateway: RulesGateway) -> None:
        self._gateway = gateway
        self._clock = gateway.clock
        self.site: Site = gateway.site
        self.rules = compile_site_rules(self.site)
        self._targets = point_targets(self.site)
        self.store = RulesStore(self.site.data_dir / "rules.db", self.site.id)
        self.engine = RulesEngine(self.rules, self._clock.wall())
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._wake = asyncio.Event()
        self._listeners: list[AlarmUpdate] = []
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._commands: set[asyncio.Task[None]] = set()
        self._last_due: float | None = None
        self._dirty_since: float | None = None  # values changed since the last saved snapshot
        self.restored = False
        self.stats = {"samples": 0, "events": 0, "commands": 0, "snapshots": 0}

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> RulesRuntime:
        saved = await self.store.open()
        now = self._clock.wall()
        if saved is not None:
            try:
                self.engine = restore(self.rules, saved, now)
            except (ValueError, KeyError, TypeError) as exc:
                _LOG.error("rules snapshot unusable; alarms start from normal", error=str(exc))
            else:
                self.engine.restart_stale_clocks(now)
                self.restored = True
        self._last_due = self.engine.next_due()
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        self._tasks = [
            tg.create_task(self._store_loop(), name="rules:store"),
            tg.create_task(self._tick_loop(), name="rules:ticker"),
        ]
        _LOG.info(
            "rules running",
            alarms=len(self.rules.alarms),
            linkage=len(self.rules.linkage),
            restored=self.restored,
            standing=self.engine.counters().get("standing", 0),
        )
        # whatever came due while the gateway was down (delays, shelving expiry) happens now
        self.engine.tick(now)
        await self._after(now, snapshot_anyway=True)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tg, self._tg = self._tg, None
        try:
            for task in self._commands:
                task.cancel()
            ticker = self._tasks[1] if len(self._tasks) > 1 else None
            if ticker is not None:
                ticker.cancel()
            # the last state and every event not yet stored go out before the store closes
            if self._tasks and not self._tasks[0].done():
                await self._enqueue(_Batch([], True, self._clock.wall()), wait=True)
            for task in self._tasks:
                task.cancel()
            if tg is not None:
                await tg.__aexit__(None, None, None)
        finally:
            await self.store.close()

    def reload(self, site: Site) -> None:
        """A new, validated site (SIGHUP): recompile and carry every alarm's state over."""
        rules = compile_site_rules(site)
        now = self._clock.wall()
        engine = restore(rules, snapshot(self.engine), now)
        self.site, self.rules, self.engine = site, rules, engine
        self._targets = point_targets(site)
        self._last_due = None
        self._wake.set()
        _LOG.info("rules reloaded", alarms=len(rules.alarms), linkage=len(rules.linkage))

    # -- input -------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Return once everything produced so far is in the store and handed to the outbox."""
        await self._enqueue(_Batch([], False, self._clock.wall()), wait=True)

    async def tick(self) -> None:
        """Move the engine to the clock's present now (the ticker does this on its own)."""
        now = self._clock.wall()
        self.engine.tick(now)
        await self._after(now)

    async def feed(self, samples: list[Sample]) -> None:
        """Every sample the coordinators deliver (called from ``Gateway._on_samples``)."""
        engine = self.engine
        for sample in samples:
            engine.feed(sample)
        self.stats["samples"] += len(samples)
        await self._after(self._clock.wall())

    async def _after(self, now: float, *, snapshot_anyway: bool = False, wait: bool = False) -> None:
        """Collect what the engine produced: send commands, queue events and the snapshot."""
        out = self.engine.drain()
        for command in out.commands:
            self._dispatch(command)
        due = self.engine.next_due()
        due_changed = due != self._last_due
        if due_changed:
            self._last_due = due
            self._wake.set()
        if not (out.events or out.commands or due_changed or snapshot_anyway or wait):
            if self._dirty_since is None:
                self._dirty_since = now
            elif now - self._dirty_since >= _IDLE_SNAPSHOT_S:
                await self._enqueue(_Batch([], True, now))
            return
        self.stats["events"] += len(out.events)
        await self._enqueue(_Batch(out.events, True, now), wait=wait)

    async def _enqueue(self, batch: _Batch, *, wait: bool = False) -> None:
        if batch.snapshot:
            self._dirty_since = None
        if wait:
            batch.done = asyncio.get_running_loop().create_future()
        await self._queue.put(batch)
        if batch.done is not None:
            await batch.done

    # -- tasks -------------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            due = self.engine.next_due()
            now = self._clock.wall()
            wait_s = _TICK_MAX_S if due is None else min(_TICK_MAX_S, max(0.0, due - now))
            if wait_s > 0:
                try:
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            self._wake.clear()
            now = self._clock.wall()
            self.engine.tick(now)  # idempotent in time, so an early wake-up costs nothing
            await self._after(now)

    async def _store_loop(self) -> None:
        while True:
            batches = [await self._queue.get()]
            while not self._queue.empty():
                batches.append(self._queue.get_nowait())
            await self._store(batches)

    async def _store(self, batches: list[_Batch]) -> None:
        events = [ev for b in batches for ev in b.events]
        history_events = [ev for ev in events if ev.kind.startswith("alarm.")]
        linkage_events = [ev for ev in events if ev.kind.startswith("linkage.")]
        history = [history_row(ev) for ev in history_events]
        linkage = [linkage_row(ev, self._targets) for ev in linkage_events]
        # one snapshot for all the batches waiting, of the state as it is now: it may be ahead of
        # these events (never behind), so a crash can lose events but never repeat a raise
        snap = snapshot(self.engine) if any(b.snapshot for b in batches) else None
        pause_s = 0.1
        while True:
            try:
                _, linkage_ids = await self.store.write(history, linkage, snap, batches[-1].at)
                break
            except StorageError as exc:
                # Alarm state must not be dropped: hold the batch (the bounded queue slows the
                # feeders) and try again.
                _LOG.error("rules store write failed; retrying", error=str(exc), retry_s=pause_s)
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, _RETRY_MAX_S)
        if snap is not None:
            self.stats["snapshots"] += 1
        outbox = self._gateway.outbox
        for ev in events:
            await outbox.put_event(ev)
        self._notify(
            history_events,
            [linkage_dict(i, r) for i, r in zip(linkage_ids, linkage, strict=True)],
            any(ev.kind.startswith("drill.") for ev in events),
        )
        for b in batches:
            if b.done is not None and not b.done.done():
                b.done.set_result(None)

    def _notify(
        self, alarm_events: list[Event], linkage_rows: list[dict[str, Any]], drill_changed: bool = False
    ) -> None:
        if not self._listeners:
            return
        updates: list[dict[str, Any]] = []
        for ev in alarm_events:
            try:
                row = self.engine.alarm_row(ev.source)
            except KeyError:
                row = None
            updates.append({"type": "alarm", "row": row, "key": ev.source, "transition": ev.kind[6:]})
        updates.extend({"type": "linkage", "row": r} for r in linkage_rows)
        if drill_changed:
            updates.append({"type": "drill"})
        for update in updates:
            for listener in list(self._listeners):
                try:
                    listener(update)
                except Exception:  # noqa: BLE001 - one broken listener must not stop alarm handling
                    _LOG.exception("alarm listener failed")

    # -- linkage commands --------------------------------------------------------------------
    def _dispatch(self, command: Command) -> None:
        tg = self._tg
        if tg is None:
            return  # shutting down; the engine times the step out after a restart
        self.stats["commands"] += 1
        task = tg.create_task(self._execute(command), name=f"linkage:{command.correlation_id}")
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _execute(self, command: Command) -> None:
        status, detail = await self._write(command)
        now = self._clock.wall()
        self.engine.command_result(CommandResult(command.correlation_id, status, detail), now)
        await self._after(now)

    async def _write(self, command: Command) -> tuple[Literal["written", "verified", "failed"], str]:
        target = self._targets.get(command.point_id)
        if target is None:
            return "failed", f"no point {command.point_id}"
        device_id, key = target
        try:
            async with asyncio.timeout(command.timeout_s):
                # a linkage that resumes after a restart (or runs across a reload) must not spend
                # its retries before the coordinators are up: wait for them within the timeout
                await self._gateway.devices_running()
                if command.priority is None:
                    readback = await self._gateway.write(device_id, key, command.value, verify=command.verify)
                else:  # only a step that names one (BACnet): other writes stay as they were
                    readback = await self._gateway.write(
                        device_id, key, command.value, verify=command.verify, priority=command.priority
                    )
        except TimeoutError:
            return "failed", f"no answer within {command.timeout_s:g} s"
        except (TransportError, DeviceError) as exc:
            return "failed", f"{type(exc).__name__}: {exc}"
        except (KeyError, ValueError) as exc:
            return "failed", str(exc)
        if not command.verify or readback is None:
            return "written", "" if command.verify is False else "the point has no read-back"
        if _same(readback, command.value):
            return "verified", ""
        return "failed", f"read back {readback!r}, expected {command.value!r}"

    # -- AlarmService ------------------------------------------------------------------------
    def active_alarms(self) -> list[dict[str, Any]]:
        return self.engine.alarm_table()

    async def acknowledge(self, key: str, *, by: str, comment: str = "") -> bool:
        now = self._clock.wall()
        done = self.engine.ack(key, by, now, comment)
        await self._after(now, wait=True)
        return done

    async def shelve(self, key: str, *, by: str, until_wall: float, reason: str) -> bool:
        now = self._clock.wall()
        done = self.engine.shelve(key, until_wall, by, now, reason)
        await self._after(now, wait=True)
        return done

    async def unshelve(self, key: str, *, by: str) -> bool:
        now = self._clock.wall()
        done = self.engine.unshelve(key, by, now)
        await self._after(now, wait=True)
        return done

    async def reset(self, key: str, *, by: str) -> bool:
        now = self._clock.wall()
        done = self.engine.reset(key, by, now)
        await self._after(now, wait=True)
        return done

    async def remove_from_service(self, key: str, *, by: str, reason: str = "") -> bool:
        """Additive to the protocol: a technician takes an alarm out of service."""
        now = self._clock.wall()
        done = self.engine.remove_from_service(key, by, now, reason)
        await self._after(now, wait=True)
        return done

    async def return_to_service(self, key: str, *, by: str) -> bool:
        now = self._clock.wall()
        done = self.engine.return_to_service(key, by, now)
        await self._after(now, wait=True)
        return done

    async def comment(self, key: str, *, by: str, text: str) -> None:
        info = self.engine.alarm_info(key)  # KeyError for an unknown alarm
        now = self._clock.wall()
        st = self.engine.alarm(key)
        event = Event(
            "alarm.comment",
            key,
            now,
            {
                "transition": "comment",
                "by": by,
                "at": now,
                "priority": info.priority,
                "class": info.klass,
                "message": {"zh": info.message_zh, "en": info.message_en},
                "point": info.point_id,
                "zone": info.zone,
                "value": st.value,
                "comment": text,
                "from": st.name.value,
                "to": st.name.value,
            },
        )
        batch = _Batch([event], False, now)
        await self._enqueue(batch, wait=True)

    async def confirm_linkage(self, rule_id: str, *, by: str) -> bool:
        if rule_id not in self.engine.linkage:
            raise KeyError(f"no linkage rule {rule_id!r}")
        now = self._clock.wall()
        done = self.engine.confirm(rule_id, by, now)
        await self._after(now, wait=True)
        return done

    async def cancel_linkage(self, rule_id: str, *, by: str) -> bool:
        if rule_id not in self.engine.linkage:
            raise KeyError(f"no linkage rule {rule_id!r}")
        now = self._clock.wall()
        done = self.engine.cancel(rule_id, by, now)
        await self._after(now, wait=True)
        return done

    async def manual_start_linkage(self, rule_id: str, *, by: str) -> bool:
        """Additive: an operator starts a linkage rule by hand (audited by the caller)."""
        if rule_id not in self.engine.linkage:
            raise KeyError(f"no linkage rule {rule_id!r}")
        now = self._clock.wall()
        done = self.engine.manual_start(rule_id, by, now)
        await self._after(now, wait=True)
        return done

    async def manual_restore_linkage(self, rule_id: str, *, by: str) -> bool:
        if rule_id not in self.engine.linkage:
            raise KeyError(f"no linkage rule {rule_id!r}")
        now = self._clock.wall()
        done = self.engine.manual_restore(rule_id, by, now)
        await self._after(now, wait=True)
        return done

    async def start_drill(
        self, zone: str | None, *, by: str, until_wall: float, linkage: bool = False, reason: str = ""
    ) -> None:
        """Additive: put a zone (None: the site) in drill mode until ``until_wall``."""
        now = self._clock.wall()
        self.engine.start_drill(zone, until_wall, by, now, linkage=linkage, reason=reason)
        self._wake.set()
        await self._after(now, wait=True)

    async def end_drill(self, zone: str | None, *, by: str) -> bool:
        now = self._clock.wall()
        done = self.engine.end_drill(zone, by, now)
        await self._after(now, wait=True)
        return done

    def drills(self) -> list[dict[str, Any]]:
        return self.engine.drills.rows()

    async def override(self, point_id: str, *, by: str, value: Value = None) -> Value:
        """Additive: an operator takes ``point_id`` over by hand (GB 50116 4.1.4).

        The point is marked overridden first, so no linkage step writes it from now on (not
        even a restore), then ``value``, if given, is written through the device's
        coordinator; returns the read-back. Raises ``KeyError`` for an unknown point and the
        driver's ``TransportError``/``DeviceError`` when the write fails (the override stays).
        """
        target = self._targets.get(point_id)
        if target is None:
            raise KeyError(f"no point {point_id!r}")
        await self.mark_override(point_id, by=by, value=value)
        if value is None:
            return None
        readback: Value = await self._gateway.write(target[0], target[1], value, verify=True)
        return readback

    async def mark_override(self, point_id: str, *, by: str, value: Value = None) -> None:
        """Mark ``point_id`` as under manual control without writing it (``Gateway.write(by=)``
        calls this before an operator's write)."""
        if point_id not in self._targets:
            raise KeyError(f"no point {point_id!r}")
        now = self._clock.wall()
        self.engine.override(point_id, by, now, value)
        await self._after(now, wait=True)

    async def release_override(self, point_id: str, *, by: str) -> bool:
        now = self._clock.wall()
        done = self.engine.release_override(point_id, by, now)
        await self._after(now, wait=True)
        return done

    def overrides(self) -> list[dict[str, Any]]:
        """The points under manual control now: ``[{point, device, key, by}]`` by point id."""
        rows: list[dict[str, Any]] = []
        for point_id, by in sorted(self.engine.io.overridden.items()):
            device, key = self._targets.get(point_id, (None, None))
            rows.append({"point": point_id, "device": device, "key": key, "by": by})
        return rows

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
        return self.store.history(
            before=before,
            since=since,
            until=until,
            priority=priority,
            klass=klass,
            device=device,
            text=text,
            limit=limit,
            offset=offset,
        )

    def statistics(self, *, since: float, until: float) -> dict[str, Any]:
        offset_s = utc_offset_s(self.site.config.site.timezone, until)
        return {
            "per_day": per_day(self.store.raised_per_day(since, until, offset_s)),
            "top": self.store.top_raised(since, until),
            "counters": {**self.engine.counters(), **self.stats},
        }

    def linkage_log(self, *, device: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        return self.store.linkage_log(device=device, limit=limit)

    def linkage_rules(self) -> list[dict[str, Any]]:
        return linkage_rule_rows(self.engine)

    def subscribe(self, listener: AlarmUpdate) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe


def _same(readback: Value, wanted: Value) -> bool:
    if isinstance(wanted, bool) or isinstance(readback, bool):
        return bool(readback) == bool(wanted) if isinstance(readback, bool | int) else False
    if isinstance(wanted, int | float) and isinstance(readback, int | float):
        return math.isclose(float(readback), float(wanted), rel_tol=1e-6, abs_tol=1e-6)
    return readback == wanted
