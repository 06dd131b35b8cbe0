"""The parts of one chaos scenario, all real, each its own process.

:func:`chaos_rig` makes a private PKI (``cloud_sync.certs``), renders the project's Mosquitto
configuration (TLS, passwords, ACL: ``cloud_sync.broker_config``) on a free port, writes
``central.yaml`` and the gateway's site file, and starts the broker, central
(``gatehouse central``), the simulators (``gatehouse simulate``) and, when asked, the gateway
(``gatehouse run``, or :mod:`chaos.clockstep` for a steppable clock). Optionally the gateway's
uplink goes through a :class:`~chaos.proxy.LinkProxy` and a :class:`~chaos.rogue_modbus.RogueModbus`
endpoint joins the site.

The rig watches the gateway's outbox the whole time (:class:`~chaos.ledger.OutboxWatcher`) and
:meth:`Rig.settle` ends a scenario: devices stopped, every device reported offline, the outbox
drained and acknowledged, then the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from chaos.ledger import CentralContents, OutboxWatcher, Tally, central_contents, tally
from chaos.procs import GATEHOUSE, Proc
from chaos.proxy import LinkProxy
from chaos.rogue_modbus import MODES, RogueModbus
from cloud_sync.broker_config import write_broker_config
from cloud_sync.certs import CENTRAL_USER, PkiLayout, create_ca, issue_client, issue_server
from cloud_sync.keys import ensure_signing_key, generate_private_key, save_private_key, save_public_key
from core import ports

__all__ = ["GW", "Rig", "RigOptions", "chaos_rig"]

GW = "gw-chaos"
SITE_ID = "chaos"
TOKEN = "chaos-token"
MOSQUITTO = "/usr/sbin/mosquitto"

# Small batches and a small window: a drain is many round trips, so a kill lands mid-send.
SLOW_DRAIN_UPLINK: dict[str, Any] = {
    "batch_max_records": 40,
    "inflight_window": 2,
    "ack_timeout_s": 5.0,
    "idle_poll_s": 0.05,
    "backoff_initial_s": 0.2,
    "backoff_max_s": 1.5,
    "connect_timeout_s": 5.0,
    "state_interval_s": 2.0,
    "keepalive_s": 5,
}


@dataclass
class RigOptions:
    devices: int = 3
    poll_interval_s: float = 0.1
    uplink: dict[str, Any] = field(default_factory=dict)
    proxy: bool = False  # the uplink goes through a LinkProxy
    rogue: bool = False  # a RogueModbus endpoint with one device per misbehaviour
    clockstep: bool = False  # the gateway runs chaos.clockstep
    data_dir: Path | None = None  # the gateway's data folder (a small filesystem for disk full)
    outbox: dict[str, Any] = field(default_factory=dict)


def _free_port() -> int:
    return ports.free_port()


def _tls_up(port: int, ca: Path) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2.0) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return True
    except OSError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _dump(path: Path, data: dict[str, Any]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(data, fh)
    return path


@dataclass
class Rig:
    root: Path
    options: RigOptions
    broker: Proc
    central: Proc
    sim: Proc
    gateway: Proc
    site: Path
    central_db: Path
    central_port: int
    broker_port: int
    ca: Path
    watcher: OutboxWatcher
    sim_devices: tuple[str, ...]
    proxy: LinkProxy | None = None
    rogue: RogueModbus | None = None
    offset_file: Path | None = None
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5.0))
    faults: int = 0

    # -- the parts ----------------------------------------------------------------------------
    async def start_broker(self) -> None:
        self.broker.start()
        await self.wait(
            lambda: _tls_up(self.broker_port, self.ca), message="the broker's TLS port", timeout_s=60
        )

    async def start_central(self) -> None:
        self.central.start()

        async def ready() -> bool:
            try:
                return (await self.http.get(f"http://127.0.0.1:{self.central_port}/openapi.json")).is_success
            except httpx.HTTPError:
                return False

        await self.wait(ready, message="central's API", timeout_s=90)

    def start_gateway(self) -> None:
        self.gateway.start()

    def step_clock(self, offset_s: float) -> None:
        assert self.offset_file is not None, "the rig was not made with clockstep=True"
        self.offset_file.write_text(f"{offset_s}\n")
        self.gateway.signal(signal.SIGUSR1)

    async def inject_device_fault(self, device: str, name: str, params: dict[str, Any] | None = None) -> None:
        url = f"http://127.0.0.1:{self.control_port}/devices/{device}/scenarios/{name}"
        response = await self.http.post(url, json=params or {})
        response.raise_for_status()

    async def clear_device_faults(self, device: str) -> None:
        response = await self.http.delete(f"http://127.0.0.1:{self.control_port}/devices/{device}/scenarios")
        response.raise_for_status()

    control_port: int = 0

    # -- watching -----------------------------------------------------------------------------
    def check_alive(self) -> None:
        for proc in (self.broker, self.central, self.sim, self.gateway):
            code = proc.exited_badly()
            if code is not None:
                raise AssertionError(f"{proc.name} exited with {code}:\n{proc.tail()}")

    async def wait(
        self, condition: Callable[[], Any], *, message: str, timeout_s: float = 60.0, interval_s: float = 0.05
    ) -> None:
        """Poll ``condition`` (sync or async) while the watcher keeps reading the outbox."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.watcher.poll()
            self.check_alive()
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s:.0f} s waiting for {message}\n{self.gateway.tail()}"
                )
            await asyncio.sleep(interval_s)

    async def hold(self, seconds: float) -> None:
        """Let a fault last ``seconds`` (an outage's length), reading the outbox meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.watcher.poll()
            self.check_alive()
            await asyncio.sleep(0.05)

    def contents(self) -> CentralContents:
        return central_contents(self.central_db, GW)

    def stored_batches(self) -> int:
        return self.contents().batch_count

    async def wait_draining(self, *, message: str, timeout_s: float = 90.0) -> None:
        """Until central stores a batch it did not have: the gateway is connected and sending."""
        before = self.stored_batches()
        await self.wait(lambda: self.stored_batches() > before, message=message, timeout_s=timeout_s)

    async def settle(self, *, timeout_s: float = 180.0) -> Tally:
        """Stop the devices, wait until the gateway has said so and drained, and compare."""
        self.watcher.poll()
        offline_before = self._offline_counts()
        self.sim.stop()
        if self.rogue is not None:
            await self.rogue.close()

        def all_offline() -> bool:
            now = self._offline_counts()
            return all(now.get(d, 0) > offline_before.get(d, 0) for d in self.sim_devices)

        await self.wait(all_offline, message="every device reported offline", timeout_s=timeout_s)
        last: dict[str, int] = {}

        def drained() -> bool:
            if any(self.watcher.leftover().values()):
                return False
            last.update(self.watcher.last_seq())
            acked = self.contents().acked
            return all(acked.get(lane, 0) == last.get(lane, 0) for lane in ("event", "telemetry"))

        await self.wait(
            drained, message="the outbox drained and acknowledged", timeout_s=timeout_s, interval_s=0.2
        )
        return tally(self.watcher, self.contents(), last_seq=last)

    def device_states(self) -> dict[str, str]:
        """Each device's latest ``device.online``/``device.offline`` event kind, by event time."""
        latest: dict[str, tuple[int, str]] = {}
        for kind, source, ts in self.watcher.events | set(self.contents().events):
            if kind in ("device.online", "device.offline") and ts >= latest.get(source, (-1, ""))[0]:
                latest[source] = (ts, kind)
        return {source: kind for source, (_ts, kind) in latest.items()}

    async def wait_devices_online(self, *, timeout_s: float = 60.0) -> None:
        def online() -> bool:
            states = self.device_states()
            return all(states.get(d) == "device.online" for d in self.sim_devices)

        await self.wait(online, message="every simulated device online", timeout_s=timeout_s, interval_s=0.2)

    def _offline_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, source, _ts in self.watcher.events | set(self.contents().events):
            if kind == "device.offline":
                counts[source] = counts.get(source, 0) + 1
        return counts


def _make_files(root: Path, options: RigOptions, *, sim_port: int, rogue_port: int | None) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    layout = PkiLayout(root / "pki")
    ca = create_ca(layout, now=now)
    issue_server(ca, layout, now=now)
    gw_creds = issue_client(ca, layout, GW, now=now)
    central_creds = issue_client(ca, layout, CENTRAL_USER, now=now)
    ensure_signing_key(layout.central_signing_key, layout.central_signing_pub)
    broker_port = _free_port()
    files = write_broker_config(
        root / "broker", layout=layout, port=broker_port, run_as_root=os.geteuid() == 0
    )

    gw_dir = root / "gw"
    gw_dir.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    save_private_key(key, gw_dir / "signing.key")
    save_public_key(key.public_key(), gw_dir / "signing.pub")
    # At most 200 unit ids per simulated endpoint (Modbus allows 247): a soak's 500 devices
    # are spread over several buses, each its own simulator port.
    per_bus = 200
    devices: list[dict[str, Any]] = []
    buses: list[dict[str, Any]] = []
    for index in range((options.devices + per_bus - 1) // per_bus):
        bus_id = "lan" if index == 0 else f"lan{index}"
        # A short backoff: a device whose fault is cleared is back within seconds.
        buses.append(
            {
                "id": bus_id,
                "type": "modbus_tcp",
                "host": "127.0.0.1",
                "port": sim_port if index == 0 else _free_port(),
                "timeout_ms": 500,
                "backoff_max_s": 2.0,
            }
        )
        first = index * per_bus + 1
        for i in range(first, min(options.devices, first + per_bus - 1) + 1):
            devices.append(
                {
                    "id": f"m{i}",
                    "bus": bus_id,
                    "unit": i - index * per_bus,
                    "profile": "eastron-sdm630",
                    "poll_interval_s": options.poll_interval_s,
                }
            )
    if rogue_port is not None:
        buses.append(
            {"id": "rogue", "type": "modbus_tcp", "host": "127.0.0.1", "port": rogue_port, "timeout_ms": 300}
        )
        devices += [
            {
                "id": f"rogue-{mode}",
                "bus": "rogue",
                "unit": unit,
                "profile": "eastron-sdm630",
                "poll_interval_s": 0.2,
            }
            for unit, mode in MODES.items()
        ]
    site = {
        "site": {"id": SITE_ID},
        "gateway": {"id": GW, "data_dir": str(options.data_dir or gw_dir / "data")},
        "outbox": {"commit_interval_ms": 20, **options.outbox},
        "buses": buses,
        "devices": devices,
        "uplink": {
            "broker_host": "127.0.0.1",
            "broker_port": broker_port,  # replaced by the proxy's port when there is one
            "ca_file": str(layout.ca_cert),
            "username": GW,
            "password_file": str(gw_creds.password_path),
            "signing_key": "signing.key",
            "central_key": str(layout.central_signing_pub),
            **SLOW_DRAIN_UPLINK,
            **options.uplink,
        },
    }
    central_dir = root / "central"
    central_dir.mkdir(parents=True, exist_ok=True)
    central_port = _free_port()
    central = {
        "database": str(central_dir / "central.db"),
        "signing_key": str(layout.central_signing_key),
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "ca_file": str(layout.ca_cert),
            "username": CENTRAL_USER,
            "password_file": str(central_creds.password_path),
            "client_id": "central-chaos",
            "keepalive_s": 5,
            "reconnect_max_s": 2,
        },
        "api": {
            "host": "127.0.0.1",
            "port": central_port,
            "tokens": [{"name": "chaos", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}],
        },
        "gateways": [{"id": GW, "keys": [{"file": str(gw_dir / "signing.pub")}]}],
    }
    return {
        "site": site,
        "site_path": gw_dir / "site.yaml",
        "central": central,
        "central_path": _dump(central_dir / "central.yaml", central),
        "broker_conf": files.config,
        "broker_port": broker_port,
        "central_port": central_port,
        "ca": layout.ca_cert,
        "devices": tuple(f"m{i}" for i in range(1, options.devices + 1)),
    }


def _write_sites(root: Path, made: dict[str, Any], options: RigOptions) -> tuple[Path, Path, Path | None]:
    site_path = _dump(made["site_path"], made["site"])
    # The simulators serve the site's own devices; the rogue endpoint is served by the harness.
    sim_site = dict(made["site"])
    sim_site["buses"] = [b for b in made["site"]["buses"] if b["id"] != "rogue"]
    sim_site["devices"] = [d for d in made["site"]["devices"] if d["bus"] != "rogue"]
    sim_site_path = _dump(site_path.with_name("sim-site.yaml"), sim_site)
    offset_file = None
    if options.clockstep:
        offset_file = root / "gw" / "clock-offset"
        offset_file.write_text("0\n")
    return site_path, sim_site_path, offset_file


@contextlib.asynccontextmanager
async def chaos_rig(
    root: Path, options: RigOptions | None = None, *, start_gateway: bool = True
) -> AsyncIterator[Rig]:
    options = options or RigOptions()
    logs = root / "logs"
    async with AsyncExitStack() as stack:
        rogue = await stack.enter_async_context(RogueModbus()) if options.rogue else None
        sim_port = _free_port()
        made = _make_files(root, options, sim_port=sim_port, rogue_port=rogue.port if rogue else None)
        proxy: LinkProxy | None = None
        if options.proxy:
            proxy = await stack.enter_async_context(LinkProxy("127.0.0.1", made["broker_port"]))
            made["site"]["uplink"]["broker_port"] = proxy.port
        control_port = _free_port()
        site_path, sim_site_path, offset_file = _write_sites(root, made, options)
        if offset_file is not None:
            gw_argv = [
                sys.executable,
                "-m",
                "chaos.clockstep",
                "--config",
                str(site_path),
                "--offset-file",
                str(offset_file),
            ]
        else:
            gw_argv = [*GATEHOUSE, "run", "--config", str(site_path)]
        data_dir = Path(made["site"]["gateway"]["data_dir"])
        rig = Rig(
            root=root,
            options=options,
            broker=Proc("broker", [MOSQUITTO, "-c", str(made["broker_conf"])], log=logs / "broker.log"),
            central=Proc(
                "central",
                [*GATEHOUSE, "central", "--config", str(made["central_path"])],
                log=logs / "central.log",
            ),
            sim=Proc(
                "simulators",
                [*GATEHOUSE, "simulate", str(sim_site_path), "--control-port", str(control_port)],
                log=logs / "sim.log",
            ),
            gateway=Proc("gateway", gw_argv, log=logs / "gateway.log"),
            site=site_path,
            central_db=Path(made["central"]["database"]),
            central_port=made["central_port"],
            broker_port=made["broker_port"],
            ca=made["ca"],
            watcher=OutboxWatcher(data_dir / "outbox.db"),
            sim_devices=made["devices"],
            proxy=proxy,
            rogue=rogue,
            offset_file=offset_file,
            control_port=control_port,
        )
        stack.push_async_callback(rig.http.aclose)
        for proc in (rig.broker, rig.sim, rig.central, rig.gateway):
            stack.callback(proc.stop)
        await rig.start_broker()
        rig.sim.start()
        await rig.wait(lambda: _port_open(sim_port), message="the simulated Modbus endpoint", timeout_s=60)
        await rig.start_central()
        if start_gateway:
            rig.start_gateway()
        yield rig
