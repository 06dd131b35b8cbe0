"""A serial-line device on a pseudo-terminal: answers ASCII commands or prints lines on its own.

The simulator holds the pty's master side; the gateway opens ``path`` as if it were a USB
serial adapter. ``path`` is a symbolic link to the pty's slave (as ``/dev/serial/by-id/...`` is
to ``/dev/ttyUSB0``), so ``unplug()`` — the pty closed, the link removed — and ``replug()`` — a
new pty behind the same link — look to the gateway like an adapter pulled out and put back.

Three kinds ship, each driven by a behaviour model where one fits (the models are only read):

- ``water-quality``: answers ``READ\\r`` with ``T=0.42NTU CL=0.31 PH=7.12*B7`` (sum mod 256 as
  two hex digits after ``*``), from ``WaterTankModel``;
- ``level``: answers ``#01RD\\r`` with ``!01+002.345+014.2`` + CRC-16/MODBUS as four hex digits,
  from ``WaterTankModel`` (level and water temperature);
- ``fire-panel``: a printer port: prints ``2026-12-04 03:12:09 火警 回路1 地址023 B座3层 感烟`` in
  GB18030 when told to (``print_event``), or at random with ``--every`` on the command line.

Faults (``inject``): ``silent``, ``slow`` (delay_ms), ``garbage`` (bytes before each line),
``bad_checksum`` (the next ``count`` lines), ``partial`` (the next ``count`` lines cut short).

    python -m simulators.serial_line_device --kind water-quality --link /tmp/wq0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import tty
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog

from drivers.serial_line.config import ChecksumConfig, terminator_bytes
from drivers.serial_line.parser import checksum_text
from simulators.models.water_tank import WaterTankModel

__all__ = [
    "FAULTS",
    "SerialLineSimDevice",
    "SerialLineSimulator",
    "fire_panel_printer",
    "level_line",
    "level_transmitter",
    "printer_line",
    "start_serial_line",
    "water_quality_analyser",
    "water_quality_line",
]

_LOG = structlog.get_logger(__name__)

FAULTS: dict[str, str] = {
    "silent": "the device neither answers nor prints",
    "slow": "every answer waits delay_ms (default 1500) before it is sent",
    "garbage": "count (default 8) random bytes, then a line end, before every line",
    "bad_checksum": "the next count (default 5) lines carry a wrong checksum",
    "partial": "the next count (default 1) lines are cut off half-way, with no line end",
}

_SUM8 = ChecksumConfig(kind="sum8")
_CRC16 = ChecksumConfig(kind="crc16_modbus", group="cs")

# A command answered with a line: (command without its terminator) -> line, or None for silence.
Responder = Callable[[str], "str | None"]


def water_quality_line(turbidity_ntu: float, chlorine_mgl: float, ph: float) -> str:
    body = f"T={turbidity_ntu:.2f}NTU CL={chlorine_mgl:.2f} PH={ph:.2f}"
    return f"{body}*{checksum_text(_SUM8, body.encode('ascii'))}"


def level_line(address: str, level_m: float, temperature_c: float) -> str:
    body = f"!{address}{level_m:+08.3f}{temperature_c:+06.1f}"
    return body + checksum_text(_CRC16, body.encode("ascii"))


def printer_line(wall: float, event: str, loop: int, address: int, location: str = "", kind: str = "") -> str:
    """One line as fire panels' printer ports typically print an event (format unconfirmed)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(wall))
    tail = " ".join(part for part in (location, kind) if part)
    return f"{stamp} {event} 回路{loop} 地址{address:03d}" + (f" {tail}" if tail else "")


def water_quality_analyser(model: WaterTankModel) -> Responder:
    def answer(command: str) -> str | None:
        if command.strip().upper() != "READ":
            return "ERR"
        v = model.values()
        return water_quality_line(
            float(v["turbidity_ntu"] or 0), float(v["residual_chlorine_mgl"] or 0), float(v["ph"] or 0)
        )

    return answer


def level_transmitter(model: WaterTankModel, address: str = "01") -> Responder:
    def answer(command: str) -> str | None:
        if command.strip() != f"#{address}RD":
            return None  # another device's address: stay silent, as on a shared line
        v = model.values()
        return level_line(address, float(v["level_m"] or 0), float(v["water_temp_c"] or 0))

    return answer


def fire_panel_printer() -> Responder:
    def answer(command: str) -> str | None:
        return None  # a printer port does not take commands

    return answer


@dataclass(slots=True)
class _Faults:
    silent: bool = False
    slow_ms: float = 0.0
    garbage: int = 0
    bad_checksum: int = 0
    partial: int = 0
    active: dict[str, dict[str, float]] = field(default_factory=dict)


class SerialLineSimulator:
    """One simulated line device; an async context manager (the pty exists while entered)."""

    def __init__(
        self,
        responder: Responder,
        *,
        link: Path | None = None,
        terminator: bytes = b"\r\n",
        command_terminator: bytes = b"\r",
        encoding: str = "ascii",
        model: WaterTankModel | None = None,
        seed: int = 0,
    ) -> None:
        self.responder = responder  # replaceable while running (a device that changes its mind)
        self._link = link
        self._terminator = terminator
        self._command_terminator = command_terminator
        self._encoding = encoding
        self._model = model
        self._rng = random.Random(seed)
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._inbox = bytearray()
        self._faults = _Faults()
        self._last_step = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self.commands: list[tuple[float, str]] = []  # (monotonic time, command) as received
        self.lines_sent = 0

    async def __aenter__(self) -> SerialLineSimulator:
        self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()

    @property
    def path(self) -> str:
        """What the gateway opens: the stable link if there is one, else the pty itself."""
        return str(self._link) if self._link is not None else self._slave_path

    @property
    def plugged(self) -> bool:
        return self._master is not None

    # -- the adapter --------------------------------------------------------------------------

    def unplug(self) -> None:
        """The USB adapter pulled out: the pty closes and its link disappears."""
        self._close()

    def replug(self) -> None:
        """The adapter back: a new pty behind the same link."""
        if self._master is None:
            self._open()

    def _open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._slave_path = os.ttyname(slave)
        self._inbox.clear()
        if self._link is not None:
            tmp = self._link.with_name(self._link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_path)
            tmp.replace(self._link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _close(self) -> None:
        master, slave = self._master, self._slave
        self._master = self._slave = None
        if self._link is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link.unlink()
        if master is not None:
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(master)
            os.close(master)
        if slave is not None:
            os.close(slave)

    # -- faults -------------------------------------------------------------------------------

    def inject(self, fault: str, **params: float) -> None:
        f = self._faults
        if fault == "silent":
            f.silent = True
        elif fault == "slow":
            f.slow_ms = float(params.get("delay_ms", 1500))
        elif fault == "garbage":
            f.garbage = int(params.get("count", 8))
        elif fault == "bad_checksum":
            f.bad_checksum = int(params.get("count", 5))
        elif fault == "partial":
            f.partial = int(params.get("count", 1))
        else:
            raise ValueError(f"no fault '{fault}' (faults: {', '.join(FAULTS)})")
        f.active[fault] = dict(params)

    def clear(self, fault: str | None = None) -> None:
        if fault is None:
            self._faults = _Faults()
            return
        self._faults.active.pop(fault, None)
        if fault == "silent":
            self._faults.silent = False
        elif fault == "slow":
            self._faults.slow_ms = 0.0
        elif fault in ("garbage", "bad_checksum", "partial"):
            setattr(self._faults, fault, 0)

    # -- lines out ----------------------------------------------------------------------------

    def print_line(self, text: str) -> None:
        """Send one line now (an unsolicited print), faults applied."""
        if self._faults.silent:
            return
        self._send(self._faulted(text))

    def print_event(
        self,
        event: str,
        loop: int,
        address: int,
        location: str = "",
        kind: str = "",
        wall: float | None = None,
    ) -> str:
        line = printer_line(time.time() if wall is None else wall, event, loop, address, location, kind)
        self.print_line(line)
        return line

    def send_raw(self, data: bytes) -> None:
        self._send(data)

    def _faulted(self, text: str) -> bytes:
        f = self._faults
        data = text.encode(self._encoding, errors="replace")
        if f.bad_checksum > 0:
            f.bad_checksum -= 1
            # Change the last character: the checksum digits (or a value under a group checksum).
            last = data[-1:]
            data = data[:-1] + (b"0" if last != b"0" else b"1")
        out = b""
        if f.garbage:
            out += bytes(self._rng.randrange(256) for _ in range(f.garbage)) + self._terminator
        if f.partial > 0:
            f.partial -= 1
            return out + data[: max(1, len(data) // 2)]
        return out + data + self._terminator

    def _send(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except OSError as exc:  # nobody has the port open and the buffer is full: as on a wire
            _LOG.debug("serial_line_sim.write_dropped", error=str(exc))
            return
        self.lines_sent += 1

    # -- commands in --------------------------------------------------------------------------

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:  # EIO: the gateway closed its side; wait for it to open again
            return
        self._inbox += data
        while True:
            end = self._inbox.find(self._command_terminator)
            if end < 0:
                if len(self._inbox) > 4096:
                    self._inbox.clear()
                return
            raw = bytes(self._inbox[:end])
            del self._inbox[: end + len(self._command_terminator)]
            command = raw.decode(self._encoding, errors="replace").strip("\r\n")
            self.commands.append((time.monotonic(), command))
            task = asyncio.get_running_loop().create_task(self._answer(command))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, command: str) -> None:
        if self._model is not None:
            now = time.monotonic()
            self._model.step(max(0.0, now - self._last_step))
            self._last_step = now
        line = self.responder(command)
        if line is None or self._faults.silent:
            return
        if self._faults.slow_ms:
            await asyncio.sleep(self._faults.slow_ms / 1000.0)
        self._send(self._faulted(line))


# -- a site's serial-line devices (gatehouse simulate) ------------------------------------------

_PRINTER_SCENARIOS = {
    "fire": "print a fire line (params: loop, address, location, kind)",
    "fault": "print a fault line (params: loop, address, location, kind)",
    "fault_cleared": "print a fault-cleared line (params: loop, address)",
    "reset": "print the panel's reset line",
}
_LINE_FAULTS = ("slow", "garbage", "bad_checksum", "partial")


class SerialLineSimDevice:
    """One device of a site's ``serial_line`` bus, for ``simulators.protocol_sims``: its
    behaviour by profile, scenarios through the control API. Faults other than ``silent`` act
    on the whole line (the pty) the device shares."""

    def __init__(self, dev: Mapping[str, Any], bus: Mapping[str, Any], line: SerialLineSimulator) -> None:
        self.id = str(dev["id"])
        self.profile_id = str(dev.get("profile") or "")
        keys = ("name", "name_zh", "building", "floor", "zone", "location")
        self.meta: dict[str, Any] = {
            **{k: dev[k] for k in keys if dev.get(k)},
            "bus": bus.get("id"),
            "protocol": "serial_line",
        }
        self.family = "fire_panel" if self.profile_id == "fire-panel-printer" else "water_tank"
        self.silent = False
        self._line = line
        self._address = str(dev.get("address") or "01")
        self._model = WaterTankModel(seed=zlib.crc32(self.id.encode()) % 1000)
        self._stepped = time.monotonic()
        self._active: set[str] = set()
        if self.profile_id == "water-quality-analyser-ascii":
            self._answer: Responder | None = water_quality_analyser(self._model)
        elif self.profile_id == "level-transmitter-ascii":
            self._answer = level_transmitter(self._model, self._address)
        else:
            self._answer = None  # the printer, or a profile this simulator does not know: silent

    def respond(self, command: str) -> str | None:
        if self.silent or self._answer is None:
            return None
        now = time.monotonic()
        self._model.step(max(0.0, now - self._stepped))
        self._stepped = now
        return self._answer(command)

    def scenarios(self) -> dict[str, str]:
        own = _PRINTER_SCENARIOS if self.family == "fire_panel" else dict(self._model.scenarios)
        return {**own, **FAULTS}

    async def inject(self, name: str, params: Mapping[str, Any]) -> list[str]:
        if self.family == "fire_panel" and name in _PRINTER_SCENARIOS:
            self._print(name, params)
            return sorted(self._active)
        if name == "silent":
            self.silent = True
        elif name in _LINE_FAULTS:
            self._line.inject(name, **{k: float(v) for k, v in params.items()})
        elif name in self._model.scenarios:
            self._model.inject(name, params)
        else:
            raise KeyError(name)
        self._active.add(name)
        return sorted(self._active)

    async def clear(self, name: str | None) -> list[str]:
        names = set(self._active) if name is None else {name} & self._active
        for item in names:
            if item == "silent":
                self.silent = False
            elif item in _LINE_FAULTS:
                self._line.clear(item)
            else:
                self._model.clear(item)
        self._active -= names
        return sorted(names)

    def values(self) -> dict[str, Any]:
        if self.family == "fire_panel":
            return {"lines_printed": self._line.lines_sent}
        return self._model.values()

    def _print(self, name: str, params: Mapping[str, Any]) -> None:
        if name == "reset":
            self._line.print_line(time.strftime("%Y-%m-%d %H:%M:%S") + " 复位")
            return
        event = {"fire": "火警", "fault": "故障", "fault_cleared": "故障恢复"}[name]
        self._line.print_event(
            event,
            int(params.get("loop", 1)),
            int(params.get("address", 1)),
            str(params.get("location", "")),
            str(params.get("kind", "感烟" if name == "fire" else "")),
        )


async def start_serial_line(
    stack: contextlib.AsyncExitStack,
    group: asyncio.TaskGroup,
    site_dir: Path,
    bus: Mapping[str, Any],
    devices: list[Mapping[str, Any]],
    sims: Any,
) -> None:
    """``simulators.protocol_sims`` starter: one pty per ``serial_line`` bus, linked at the bus's
    ``port`` (which must be a path the simulator may create, not a ``/dev`` node), serving every
    device of the bus. ``sims`` is the ``ProtocolSims`` collecting devices and start-up lines."""
    port = Path(str(bus.get("port", "")))
    if not port.is_absolute():
        port = site_dir / port
    if str(port).startswith("/dev/"):
        _LOG.warning(
            "serial_line simulator cannot stand in for a /dev port", bus=bus.get("id"), port=str(port)
        )
        return
    port.parent.mkdir(parents=True, exist_ok=True)
    served: list[SerialLineSimDevice] = []

    def respond(command: str) -> str | None:
        for device in served:
            answer = device.respond(command)
            if answer is not None:
                return answer
        return None

    line = SerialLineSimulator(
        respond,
        link=port,
        terminator=terminator_bytes(str(bus.get("terminator", "\r\n"))),
        encoding=str(bus.get("encoding", "ascii")),
    )
    await stack.enter_async_context(line)
    for dev in devices:
        device = SerialLineSimDevice(dev, bus, line)
        served.append(device)
        sims.devices[device.id] = device
    sims.servers.append(f"serial line {bus.get('id')} -> {port} ({len(served)} devices)")


# -- command line -------------------------------------------------------------------------------

_EVENTS = ("火警", "故障", "故障恢复", "监管", "启动", "反馈")


def _make(kind: str, address: str, seed: int, link: Path | None) -> SerialLineSimulator:
    model = WaterTankModel(seed=seed)
    if kind == "water-quality":
        return SerialLineSimulator(water_quality_analyser(model), link=link, model=model, seed=seed)
    if kind == "level":
        return SerialLineSimulator(
            level_transmitter(model, address), link=link, terminator=b"\r", model=model, seed=seed
        )
    return SerialLineSimulator(fire_panel_printer(), link=link, encoding="gb18030", seed=seed)


async def _main(args: argparse.Namespace) -> None:
    link = None if args.link is None else Path(args.link)
    async with _make(args.kind, args.address, args.seed, link) as sim:
        sys.stdout.write(f"{args.kind} on {sim.path}\n")
        sys.stdout.flush()
        rng = random.Random(args.seed)
        while True:
            await asyncio.sleep(args.every if args.kind == "fire-panel" and args.every else 3600)
            if args.kind == "fire-panel" and args.every:
                line = sim.print_event(
                    rng.choice(_EVENTS), rng.randrange(1, 5), rng.randrange(1, 200), "B座3层", "感烟"
                )
                sys.stdout.write(line + "\n")
                sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.serial_line_device", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kind", choices=("water-quality", "level", "fire-panel"), default="water-quality")
    parser.add_argument("--link", help="a stable path (symbolic link) to the pty, e.g. /tmp/ttyWQ0")
    parser.add_argument("--address", default="01", help="level transmitter address")
    parser.add_argument("--every", type=float, default=0.0, help="fire-panel: print a random event every N s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
