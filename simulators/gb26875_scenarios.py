"""Scenarios for the simulated GB/T 26875.3 transmission device, and its command line.

A scenario is a step list written ``NAME[:ARG]``, run in order::

    fire:5        fire at the first detector of zone 5 (fire:5x2 -> two detectors)
    mcp:5         the manual call point of zone 5
    fault:3       a fault at the first detector of zone 3
    clear:5       zone 5 back to normal
    silence       the panel's silence
    reset         the panel's reset (operation record and system status)
    power         main power fault
    drift:60      pressure (pump 91/1, MPa x0.1) and tank level (92/1, m x0.01) drifting for 60 s
    wait:2        pause 2 s

``python -m simulators.gb26875_scenarios --connect 127.0.0.1:5000 --scenario fire:5 wait:5 reset``
(``--serial /dev/pts/N`` instead of ``--connect``). After the steps the device stays connected,
sending heartbeats, until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from simulators.gb26875_device import MANUAL_CALL_POINT, TransmissionDevice

__all__ = ["STEPS", "main", "run_step", "run_steps"]

STEPS = ("fire", "mcp", "fault", "clear", "silence", "reset", "power", "drift", "wait")
PUMP, TANK = (91, 1), (92, 1)
PRESSURE_MPA_X10, LEVEL_M_X100 = 4, 2


async def run_step(device: TransmissionDevice, step: str) -> None:
    """Run one ``NAME[:ARG]`` step. Raises ``ValueError`` for an unknown one."""
    name, _, arg = step.partition(":")
    if name == "fire":
        zone, _, count = arg.partition("x")
        device.inject_fire(zone=zone, count=int(count or 1))
    elif name == "mcp":
        device.inject_fire(component=(MANUAL_CALL_POINT, 1000 + int(arg)))
    elif name == "fault":
        device.inject_fault(zone=arg)
    elif name == "clear":
        device.clear(zone=arg)
    elif name == "silence":
        device.silence()
    elif name == "reset":
        device.reset()
    elif name == "power":
        device.power_fault()
    elif name == "drift":
        await _drift(device, float(arg or 30))
    elif name == "wait":
        await asyncio.sleep(float(arg or 1))
    else:
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")


async def run_steps(device: TransmissionDevice, steps: list[str]) -> None:
    await device.connected.wait()
    for step in steps:
        await run_step(device, step)


async def _drift(device: TransmissionDevice, seconds: float) -> None:
    pressure, level = 6, 250  # 0.6 MPa, 2.50 m
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        pressure = max(0, min(16, pressure + device.rng.choice((-1, 0, 1))))
        level = max(0, min(400, level + device.rng.randint(-5, 4)))
        device.analog(PUMP, PRESSURE_MPA_X10, pressure)
        device.analog(TANK, LEVEL_M_X100, level)
        await asyncio.sleep(2.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators.gb26875_scenarios", description=__doc__.split("\n")[0]
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--connect", metavar="HOST:PORT", help="the gateway's gb26875 server")
    where.add_argument("--serial", metavar="PATH", help="a serial port or pty")
    p.add_argument("--address", default="2c312c320000", help="source address, 12 hex digits in wire order")
    p.add_argument("--heartbeat-s", type=float, default=30.0)
    p.add_argument("--scenario", nargs="*", default=[], metavar="STEP", help="steps, see the module docs")
    return p


async def _run(args: argparse.Namespace) -> None:
    device = TransmissionDevice(address=bytes.fromhex(args.address), heartbeat_s=args.heartbeat_s)
    async with asyncio.TaskGroup() as tg:
        if args.connect:
            host, _, port = args.connect.rpartition(":")
            tg.create_task(device.run_tcp(host or "127.0.0.1", int(port)), name="gb26875-sim-link")
        else:
            fd = os.open(args.serial, os.O_RDWR | os.O_NOCTTY)
            tg.create_task(device.run_fd(fd), name="gb26875-sim-link")
        tg.create_task(run_steps(device, args.scenario), name="gb26875-sim-steps")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for step in args.scenario:
        if step.partition(":")[0] not in STEPS:
            parser.error(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
