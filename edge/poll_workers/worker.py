"""A poll worker: ``python -m edge.poll_workers.worker --site FILE --devices A,B --fd N``.

Started by the gateway (:mod:`edge.poll_workers.pool`), never by hand. It loads the same site
file, opens the buses of its devices with the registered drivers (``edge.wiring.build_devices``)
and runs their coordinators exactly as the gateway would in-process; every sample batch and event goes to
the gateway over the inherited socket, writes come back the other way. When the socket closes
(the gateway stopped or died) the worker closes its buses and exits: it never polls unattended.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Any

import structlog

from core.errors import ConfigError
from core.model import Event, Sample, SystemClock
from edge.coordinator import supervise
from edge.poll_workers.frames import (
    HEADER,
    MAX_FRAME,
    PointCodes,
    decode_body,
    encode_error,
    event_body,
    frame,
    stats_row,
)

_LOG = structlog.get_logger(__name__)
STATS_EVERY_S = 1.0


class _Link:
    """The worker's end of the socket: frames out under backpressure, frames in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, body: list[Any]) -> None:
        if self.writer.is_closing():
            return  # the gateway is gone; receive() sees the end and the worker exits
        self.writer.write(frame(body))
        # A gateway that falls behind slows polling here instead of growing this process.
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def receive(self) -> list[Any] | None:
        try:
            header = await self.reader.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            if size > MAX_FRAME:
                return None
            return decode_body(await self.reader.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            return None


async def serve(site_path: Path, devices: list[str], sock: socket.socket) -> int:
    from edge.config.loader import load_site
    from edge.wiring import build_devices

    try:
        site = load_site(site_path, only_devices=set(devices))
    except (ConfigError, OSError) as exc:
        _LOG.error("poll worker cannot load the site", error=str(exc))
        return 2
    reader, writer = await asyncio.open_connection(sock=sock)
    link = _Link(reader, writer)
    codes = PointCodes()

    async def on_samples(samples: list[Sample]) -> None:
        await link.send(codes.samples_body(samples))

    async def on_event(event: Event) -> None:
        await link.send(event_body(event))

    async with build_devices(
        site, sink=on_samples, events=on_event, clock=SystemClock(), only=set(devices)
    ) as running:
        coordinators = running.coordinators
        await link.send(["R", sorted(coordinators), running.skipped])
        async with asyncio.TaskGroup() as tg:
            polling = [
                tg.create_task(supervise(coord), name=f"device:{device_id}")
                for device_id, coord in coordinators.items()
            ]
            stats = tg.create_task(_send_stats(link, coordinators), name="stats")
            writes: set[asyncio.Task[None]] = set()
            while (body := await link.receive()) is not None and body[0] != "Q":
                if body[0] == "W":
                    task = tg.create_task(_write(link, coordinators, body), name=f"write:{body[1]}")
                    writes.add(task)
                    task.add_done_callback(writes.discard)
            for task in (*polling, stats, *writes):
                task.cancel()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return 0


async def _write(link: _Link, coordinators: dict[str, Any], body: list[Any]) -> None:
    _, request, device_id, key, value, verify, priority = body
    coord = coordinators.get(device_id)
    if coord is None:
        await link.send(["W", request, False, encode_error(KeyError(f"no running device {device_id!r}"))])
        return
    try:
        result = await coord.write(key, value, verify=verify, priority=priority)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, typed
        await link.send(["W", request, False, encode_error(exc)])
    else:
        await link.send(["W", request, True, result])


async def _send_stats(link: _Link, coordinators: dict[str, Any]) -> None:
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        await link.send(["T", {d: stats_row(c.stats, c.online) for d, c in coordinators.items()}])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatehouse poll worker")
    parser.add_argument("--site", required=True, type=Path)
    parser.add_argument("--devices", required=True, help="the device ids this worker polls, comma-separated")
    parser.add_argument("--fd", required=True, type=int)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--console-logs", action="store_true")
    parser.add_argument("--name", default="poll-worker")
    args = parser.parse_args(argv)

    from edge.logs import configure_logging

    configure_logging(args.log_level, json=not args.console_logs)
    structlog.contextvars.bind_contextvars(worker=args.name)
    sock = socket.socket(fileno=args.fd)
    os.set_inheritable(args.fd, False)
    try:
        return asyncio.run(serve(args.site, [d for d in args.devices.split(",") if d], sock))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
