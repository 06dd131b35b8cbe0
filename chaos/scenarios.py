"""The scenarios: one fault family each, on a fresh rig, ending with the ledger.

Durations and counts come from :class:`Durations`: :data:`FULL` is ``make chaos`` (the numbers
issue 17 asks for), :data:`SHORT` the bounded subset in ``make test``. Every scenario returns a
:class:`Result`; ``survived`` means every part that was not deliberately killed kept running
(no crash, no unhandled traceback in the gateway's log) and the gateway resumed sending.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaos.disk import Ballast, small_filesystem
from chaos.ledger import Tally
from chaos.rig import Rig, RigOptions, chaos_rig

__all__ = ["FULL", "SCENARIOS", "SHORT", "Durations", "Result", "run_scenario"]


@dataclass(frozen=True)
class Durations:
    gateway_kills: int = 50
    central_kills: int = 20
    broker_outage_s: float = 300.0
    central_outage_s: float = 300.0
    partition_s: float = 60.0
    slow_link_s: float = 60.0
    disk_full_hold_s: float = 30.0
    clock_hold_s: float = 15.0
    device_faults_s: float = 30.0
    seed: int = 20261204


FULL = Durations()
SHORT = Durations(
    gateway_kills=5,
    central_kills=2,
    broker_outage_s=10.0,
    central_outage_s=10.0,
    partition_s=8.0,
    slow_link_s=8.0,
    disk_full_hold_s=3.0,
    clock_hold_s=3.0,
    device_faults_s=8.0,
)


@dataclass
class Result:
    scenario: str
    faults: int
    survived: bool
    tally: Tally
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.survived and self.tally.clean

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "faults": self.faults,
            "survived": self.survived,
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            **self.tally.as_dict(),
            "notes": self.notes,
        }


def _tracebacks(rig: Rig) -> int:
    try:
        return rig.gateway.log.read_text(errors="replace").count("Traceback")
    except FileNotFoundError:
        return 0


def _survived(rig: Rig, notes: dict[str, Any]) -> bool:
    notes["gateway_tracebacks"] = _tracebacks(rig)
    return rig.gateway.running and notes["gateway_tracebacks"] == 0


async def _timed_recovery(rig: Rig, what: str, notes: dict[str, Any]) -> None:
    t0 = time.monotonic()
    await rig.wait_draining(message=f"batches reaching central after {what}", timeout_s=120)
    notes["recovery_s"] = round(time.monotonic() - t0, 2)


# -- kills ----------------------------------------------------------------------------------------


async def gateway_kill9(root: Path, d: Durations) -> Result:
    rng = random.Random(d.seed)
    notes: dict[str, Any] = {}
    async with chaos_rig(root, RigOptions(devices=3)) as rig:
        for cycle in range(d.gateway_kills):
            # Only once connected and draining: central is storing this run's batches.
            await rig.wait_draining(message=f"kill {cycle}: the restarted gateway sending")
            await rig.hold(rng.uniform(0.0, 0.6))
            rig.gateway.kill()
            rig.start_gateway()
        await rig.wait_draining(message="the gateway sending after the last kill")
        survived = _survived(rig, notes)
        notes["starts"] = rig.gateway.starts
        tally = await rig.settle()
    return Result("gateway kill -9 mid-drain", d.gateway_kills, survived, tally, notes=notes)


async def central_kill9(root: Path, d: Durations) -> Result:
    rng = random.Random(d.seed + 1)
    notes: dict[str, Any] = {}
    async with chaos_rig(root, RigOptions(devices=3)) as rig:
        for cycle in range(d.central_kills):
            await rig.wait_draining(message=f"central kill {cycle}: central ingesting")
            await rig.hold(rng.uniform(0.0, 0.5))
            rig.central.kill()
            await rig.hold(rng.uniform(0.2, 2.0))
            await rig.start_central()
        await rig.wait_draining(message="central ingesting after the last kill")
        survived = _survived(rig, notes)
        tally = await rig.settle()
    return Result("central kill -9 mid-ingest", d.central_kills, survived, tally, notes=notes)


# -- outages and the link -------------------------------------------------------------------------


async def broker_outage(root: Path, d: Durations) -> Result:
    notes: dict[str, Any] = {"outage_s": d.broker_outage_s}
    async with chaos_rig(root, RigOptions(devices=3)) as rig:
        await rig.wait_draining(message="batches flowing before the outage")
        rig.broker.stop()
        await rig.hold(d.broker_outage_s)
        await rig.start_broker()
        await _timed_recovery(rig, "the broker came back", notes)
        survived = _survived(rig, notes)
        tally = await rig.settle()
    return Result(f"broker down {d.broker_outage_s:g} s", 1, survived, tally, notes=notes)


async def central_outage(root: Path, d: Durations) -> Result:
    notes: dict[str, Any] = {"outage_s": d.central_outage_s}
    async with chaos_rig(root, RigOptions(devices=3)) as rig:
        await rig.wait_draining(message="batches flowing before the outage")
        rig.central.stop()
        await rig.hold(d.central_outage_s)
        await rig.start_central()
        await _timed_recovery(rig, "central came back", notes)
        survived = _survived(rig, notes)
        tally = await rig.settle()
    return Result(f"central down {d.central_outage_s:g} s", 1, survived, tally, notes=notes)


async def partition(root: Path, d: Durations) -> Result:
    notes: dict[str, Any] = {"partition_s": d.partition_s}
    async with chaos_rig(root, RigOptions(devices=3, proxy=True)) as rig:
        assert rig.proxy is not None
        await rig.wait_draining(message="batches flowing before the partition")
        rig.proxy.partition()
        await rig.hold(d.partition_s)
        rig.proxy.heal()
        await _timed_recovery(rig, "the partition healed", notes)
        notes["connections"] = rig.proxy.connections
        survived = _survived(rig, notes)
        tally = await rig.settle()
    return Result(f"partition gateway|broker {d.partition_s:g} s", 1, survived, tally, notes=notes)


async def slow_link(root: Path, d: Durations) -> Result:
    notes: dict[str, Any] = {"slow_s": d.slow_link_s, "latency_s": 0.3, "rate_bytes_s": 8000}
    async with chaos_rig(root, RigOptions(devices=3, proxy=True)) as rig:
        assert rig.proxy is not None
        await rig.wait_draining(message="batches flowing before the link slows")
        rig.proxy.slow(latency_s=0.3, rate_bps=8000)
        before = rig.stored_batches()
        await rig.hold(d.slow_link_s)
        notes["batches_while_slow"] = rig.stored_batches() - before
        rig.proxy.fast()
        await rig.wait_draining(message="batches flowing at full speed again")
        survived = _survived(rig, notes) and notes["batches_while_slow"] > 0
        tally = await rig.settle()
    return Result(f"slow link {d.slow_link_s:g} s", 1, survived, tally, notes=notes)


# -- the disk -------------------------------------------------------------------------------------


async def disk_full(root: Path, d: Durations) -> Result:
    """The outbox's filesystem fills while the broker is away: old telemetry is evicted under a
    gap record, events are kept, the gateway goes on; space returns and everything drains."""
    notes: dict[str, Any] = {}
    with small_filesystem(root / "disk", 32 * 1024 * 1024) as disk:
        options = RigOptions(devices=3, poll_interval_s=0.05, data_dir=disk / "data")
        async with chaos_rig(root / "rig", options) as rig:
            await rig.wait_draining(message="batches flowing before the disk fills")
            rig.broker.stop()  # nothing drains: the backlog grows on the small disk
            ballast = Ballast(disk)
            notes["ballast_bytes"] = ballast.fill(leave_bytes=400_000)
            # Events while the disk is full: a device drops out and comes back.
            await rig.inject_device_fault("m1", "comm_loss")

            def evicted() -> bool:
                return any(g.get("reason") == "disk_full" for g in rig.watcher.gaps)

            def disk_full_seen() -> bool:
                return evicted() or "disk is full" in rig.gateway.tail(20_000)

            await rig.wait(disk_full_seen, message="the outbox meeting the full disk", timeout_s=180)
            # The promise: old telemetry evicted under a gap record. Give it a moment to happen.
            try:
                await rig.wait(evicted, message="eviction with a gap record", timeout_s=10)
            except AssertionError:
                notes["eviction_failed"] = rig.gateway.tail(20_000).count("could not make room")
            await rig.hold(d.disk_full_hold_s)
            await rig.clear_device_faults("m1")
            notes["system_alarms"] = rig.watcher.event_kinds.get("system.alarm", 0)
            ballast.remove()
            await rig.start_broker()
            await _timed_recovery(rig, "space and the broker came back", notes)
            # Its return could only be committed once there was room again.
            await rig.wait_devices_online()
            survived = _survived(rig, notes)
            tally = await rig.settle()
            notes["gap_records"] = sum(1 for g in rig.watcher.gaps if g.get("reason") == "disk_full")
            notes["system_alarms"] = rig.watcher.event_kinds.get("system.alarm", 0)
            if not notes["gap_records"]:
                tally.problems.append(
                    "disk full: the outbox could not evict telemetry (the eviction itself needs disk);"
                    " new samples were refused without a gap record"
                )
            if not notes["system_alarms"]:
                tally.problems.append("disk full: no system alarm was raised")
    return Result("disk full on the outbox", 1, survived, tally, notes=notes)


# -- the clock ------------------------------------------------------------------------------------


_STORM_KINDS = ("device.offline", "device.online", "system.alarm", "alarm.raised")


async def clock_steps(root: Path, d: Durations) -> Result:
    notes: dict[str, Any] = {}
    async with chaos_rig(root, RigOptions(devices=3, clockstep=True)) as rig:
        await rig.wait_draining(message="batches flowing before the clock steps")
        # Every device's first contact happens before the steps: on a loaded machine a device
        # may still be coming up when batches already flow, and its first device.online is no storm.
        await rig.wait_devices_online()
        before = Counter(rig.watcher.event_kinds)
        for offset in (-3600.0, 86_400.0, 0.0):  # back 1 h; forward to +1 day; back to true time
            rig.step_clock(offset)
            await rig.hold(d.clock_hold_s)
            await rig.wait_draining(message=f"batches flowing with the clock at {offset:+.0f} s")
        storm = {k: rig.watcher.event_kinds.get(k, 0) - before.get(k, 0) for k in _STORM_KINDS}
        notes["events_during_steps"] = storm
        survived = _survived(rig, notes)
        tally = await rig.settle()
        if any(storm.values()):
            tally.problems.append(f"events caused by the clock steps: {storm}")
    return Result("clock -1 h, +1 day", 3, survived, tally, notes=notes)


# -- the devices ----------------------------------------------------------------------------------


async def device_faults(root: Path, d: Durations) -> Result:
    """Simulator faults (timeouts, exception codes, garbage, slow answers) and a rogue endpoint
    (wrong unit id, partial frames, lying lengths, wrong transaction ids, wrong functions)."""
    notes: dict[str, Any] = {}
    async with chaos_rig(root, RigOptions(devices=4, rogue=True)) as rig:
        assert rig.rogue is not None
        await rig.wait_draining(message="batches flowing before the device faults")
        faults = [("m1", "comm_loss", {}), ("m2", "exception", {"code": 4}), ("m3", "garbage", {})]
        for device, name, params in faults:
            await rig.inject_device_fault(device, name, params)
        await rig.hold(d.device_faults_s / 2)
        await rig.inject_device_fault("m2", "exception", {"code": 2})
        await rig.inject_device_fault("m3", "slow", {"delay_ms": 1500})
        await rig.hold(d.device_faults_s / 2)
        for device in ("m1", "m2", "m3"):
            await rig.clear_device_faults(device)
        await rig.wait_devices_online()
        await rig.wait_draining(message="batches flowing after the faults cleared")
        kinds = Counter(k for k, _s, _t in rig.watcher.events)
        notes["rogue_answers"] = dict(rig.rogue.answers)
        notes["events"] = dict(kinds)
        # No storm: a failing device is reported offline once and probed with backoff.
        per_source = Counter(s for k, s, _t in rig.watcher.events if k == "device.offline")
        notes["offline_events_max_per_device"] = max(per_source.values(), default=0)
        survived = _survived(rig, notes)
        tally = await rig.settle()
        if rig.rogue.requests == 0:
            tally.problems.append("the rogue endpoint was never polled")
    faults_injected = len(faults) + 2 + sum(notes["rogue_answers"].values())
    return Result("device faults (sim + rogue endpoint)", faults_injected, survived, tally, notes=notes)


Scenario = Callable[[Path, Durations], Awaitable[Result]]

SCENARIOS: dict[str, Scenario] = {
    "gateway_kill9": gateway_kill9,
    "central_kill9": central_kill9,
    "broker_outage": broker_outage,
    "central_outage": central_outage,
    "partition": partition,
    "slow_link": slow_link,
    "disk_full": disk_full,
    "clock_steps": clock_steps,
    "device_faults": device_faults,
}


async def run_scenario(name: str, root: Path, durations: Durations) -> Result:
    t0 = time.monotonic()
    result = await SCENARIOS[name](root / name, durations)
    return replace(result, seconds=time.monotonic() - t0)
