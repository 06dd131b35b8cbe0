"""Simulated devices for the buses that are not Modbus register maps, started from a site file.

``gatehouse simulate SITE.yaml`` (and so ``make demo``) serves every device of the site: the
Modbus ones through ``simulators.runner``'s register-map servers, and the others here, each by
its own protocol's simulator:

* ``gb26875``: a ``TransmissionDevice`` per device that connects to the gateway's listening
  port (``mode: server`` buses) — the simulator is the client, as a real transmission device is;
* ``opcua``: one ``OpcUaSimulator`` per bus endpoint, serving a model per device (chosen by the
  device's profile); its certificate is copied into the bus's trust folder, as a commissioning
  technician would, and its user is the one the bus names (password from the bus's file);
* ``bacnet_ip`` and ``serial_line``: see their modules, registered below when present.

Each served device is a ``ProtocolDevice`` so that the control API can inject scenarios into it
just as into a register-map device (``simulate inject fire --device fire-uitd --zone 5``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog

__all__ = ["ProtocolDevice", "ProtocolSims", "start_protocol_sims"]

_LOG = structlog.get_logger(__name__)


class ProtocolDevice(Protocol):
    """What the control API needs of a simulated device that is not a register map."""

    @property
    def id(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def profile_id(self) -> str: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...

    def scenarios(self) -> dict[str, str]: ...
    async def inject(self, name: str, params: Mapping[str, Any]) -> list[str]: ...
    async def clear(self, name: str | None) -> list[str]: ...
    def values(self) -> dict[str, Any]: ...


@dataclass
class ProtocolSims:
    devices: dict[str, ProtocolDevice] = field(default_factory=dict)
    servers: list[str] = field(default_factory=list)  # what is served, for the start-up lines


Starter = Callable[
    [
        contextlib.AsyncExitStack,
        asyncio.TaskGroup,
        Path,
        Mapping[str, Any],
        list[Mapping[str, Any]],
        ProtocolSims,
    ],
    Awaitable[None],
]


def _meta(dev: Mapping[str, Any], bus: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("name", "name_zh", "building", "floor", "zone", "location")
    return {**{k: dev[k] for k in keys if dev.get(k)}, "bus": bus.get("id"), "protocol": bus.get("type")}


# --------------------------------------------------------------------------- GB/T 26875.3


class Gb26875Device:
    """A transmission device reporting one fire panel (zone N: detectors and a call point)."""

    family = "fire_panel"

    def __init__(self, device_id: str, dev: Mapping[str, Any], bus: Mapping[str, Any]) -> None:
        from simulators.gb26875_device import TransmissionDevice

        address = str(dev.get("address") or "000000000000")
        self.id = device_id
        self.profile_id = str(dev.get("profile") or "")
        self.meta = _meta(dev, bus)
        self.sim = TransmissionDevice(address=bytes.fromhex(address))
        self._active: set[str] = set()
        self._zones: set[str] = set()  # zones with a fire or fault to clear

    def scenarios(self) -> dict[str, str]:
        return {
            "fire": "fire in a zone (params: zone, count = detectors in alarm)",
            "fault": "a fault in a zone (params: zone)",
            "silence": "the panel's sounders silenced",
            "reset": "the panel reset (clears fire and fault)",
            "power_fault": "main power fault (params: backup=true for both)",
            "comm_loss": "the transmission device goes silent",
        }

    async def inject(self, name: str, params: Mapping[str, Any]) -> list[str]:
        zone = params.get("zone")
        if name in ("fire", "fault"):
            if zone is None:
                raise ValueError(f"scenario {name} needs a zone")
            self._zones.add(str(zone))
        if name == "fire":
            self.sim.inject_fire(zone=zone, count=int(params.get("count", params.get("detectors", 1))))
        elif name == "fault":
            self.sim.inject_fault(zone=zone)
        elif name == "silence":
            self.sim.silence()
        elif name == "reset":
            self.sim.reset()
            self._active.clear()
            self._zones.clear()
            return []
        elif name == "power_fault":
            self.sim.power_fault(main=True, backup=bool(params.get("backup", False)))
        elif name == "comm_loss":
            self.sim.silent = True
        else:
            raise KeyError(name)
        self._active.add(name)
        return sorted(self._active)

    async def clear(self, name: str | None) -> list[str]:
        names = set(self._active) if name is None else {name}
        for item in names:
            if item in ("fire", "fault"):
                for zone in sorted(self._zones):
                    self.sim.clear(zone=zone)
                self._zones.clear()
            elif item == "power_fault":
                self.sim.power_fault(main=False, backup=False)
            elif item == "comm_loss":
                self.sim.silent = False
        self._active -= names
        return sorted(names)

    def values(self) -> dict[str, Any]:
        return {"pending_frames": self.sim.pending, "confirmed": len(self.sim.confirmed)}


async def _start_gb26875(
    stack: contextlib.AsyncExitStack,
    group: asyncio.TaskGroup,
    site_dir: Path,
    bus: Mapping[str, Any],
    devices: list[Mapping[str, Any]],
    sims: ProtocolSims,
) -> None:
    if bus.get("mode", "server") != "server":
        _LOG.warning("gb26875 simulator serves only mode: server buses", bus=bus.get("id"))
        return
    host = str(bus.get("host") or "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - the gateway's listen-all
    port = int(bus.get("port", 5000))
    for dev in devices:
        device = Gb26875Device(str(dev["id"]), dev, bus)
        sims.devices[device.id] = device
        task = group.create_task(device.sim.run_tcp(host, port), name=f"gb26875-sim:{device.id}")
        stack.callback(task.cancel)  # it reconnects for ever: stopped before the group is awaited
    sims.servers.append(f"GB/T 26875.3 transmission devices -> {host}:{port}")


# --------------------------------------------------------------------------- OPC UA


class OpcUaDevice:
    """One model (a pump station, a lift group) on a shared OPC UA simulator."""

    def __init__(self, device_id: str, dev: Mapping[str, Any], bus: Mapping[str, Any], sim: Any, model: Any):
        self.id = device_id
        self.profile_id = str(dev.get("profile") or "")
        self.family = "fire_water" if "pump" in self.profile_id else "elevator"
        self.meta = _meta(dev, bus)
        self.sim = sim
        self.model = model

    def scenarios(self) -> dict[str, str]:
        doc = type(self.model).scenario.__doc__ or ""
        return {name.strip("`"): "" for name in doc.replace(";", " ").split() if name.startswith("``")}

    async def inject(self, name: str, params: Mapping[str, Any]) -> list[str]:
        await self.sim.scenario(self.model.name, name)
        return [name]

    async def clear(self, name: str | None) -> list[str]:
        await self.sim.scenario(self.model.name, "normal")
        return [] if name is None else [name]

    def values(self) -> dict[str, Any]:
        return {path: self.model.get(path) for path in getattr(self.model, "variables", {})}


_OPCUA_MODELS = {"opcua-pump-station": "PumpStation", "opcua-lift-group": "LiftGroup"}


async def _start_opcua(
    stack: contextlib.AsyncExitStack,
    group: asyncio.TaskGroup,
    site_dir: Path,
    bus: Mapping[str, Any],
    devices: list[Mapping[str, Any]],
    sims: ProtocolSims,
) -> None:
    from simulators.opcua import models as opcua_models
    from simulators.opcua.server import OpcUaSimulator

    url = urlsplit(str(bus["endpoint"]))
    models: list[tuple[Mapping[str, Any], Any]] = []
    for dev in devices:
        kind = _OPCUA_MODELS.get(str(dev.get("profile")))
        if kind is None:
            _LOG.warning("no OPC UA simulator model for this profile", device=dev.get("id"))
            continue
        root = str(dev.get("root") or kind + "1")
        name = root.split(":", 1)[-1].split("/")[-1]
        models.append((dev, getattr(opcua_models, kind)(name)))
    users: dict[str, str] = {}
    if bus.get("username") and bus.get("password_file"):
        secret = site_dir / str(bus["password_file"])
        if secret.is_file():
            users[str(bus["username"])] = secret.read_text(encoding="utf-8").splitlines()[0]
    sim = OpcUaSimulator(
        [m for _, m in models],
        pki_dir=site_dir / "simulator-pki" / "opcua",
        host=url.hostname or "127.0.0.1",
        port=url.port or 4840,
        users=users or None,
        allow_anonymous=bus.get("identity", "anonymous") == "anonymous",
        insecure=bus.get("security_policy") == "None",
    )
    await stack.enter_async_context(sim)
    trust = site_dir / str(bus.get("trust_dir") or "pki/opcua/trusted")
    trust.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sim.certificate_path, trust / "gatehouse-simulator.der")
    for dev, model in models:
        device = OpcUaDevice(str(dev["id"]), dev, bus, sim, model)
        sims.devices[device.id] = device
    sims.servers.append(f"OPC UA {sim.endpoint} ({', '.join(m.name for _, m in models)})")


# --------------------------------------------------------------------------- BACnet/IP


class BacnetDevice:
    """One simulated BACnet device (an AHU, a chiller plant, smoke fans) on its own UDP port."""

    def __init__(self, dev: Mapping[str, Any], bus: Mapping[str, Any], sim: Any, instance: int, family: str):
        self.id = str(dev["id"])
        self.profile_id = str(dev.get("profile") or "")
        self.family = family
        self.meta = _meta(dev, bus)
        self.sim = sim
        self.instance = instance
        self._active: set[str] = set()

    def scenarios(self) -> dict[str, str]:
        return {
            "silent": "the device stops answering",
            "slow": "answers late (params: delay_ms)",
            "no_rpm": "refuses ReadPropertyMultiple",
            "out_of_service": "objects out of service (params: key, e.g. analog-input,1)",
            "fault": "an object reports a fault (params: key, reliability)",
            "comm_loss": "the same as silent",
        }

    async def inject(self, name: str, params: Mapping[str, Any]) -> list[str]:
        if name not in self.scenarios():
            raise KeyError(name)
        self.sim.inject(self.instance, "silent" if name == "comm_loss" else name, **dict(params))
        self._active.add(name)
        return sorted(self._active)

    async def clear(self, name: str | None) -> list[str]:
        # The simulator clears every fault of the device at once; so does this.
        self.sim.clear(self.instance)
        cleared, self._active = sorted(self._active), set()
        return cleared if name is None else [name]

    def values(self) -> dict[str, Any]:
        device = self.sim.device(self.instance)
        return {key: device.get(key) for key in device.local}


_BACNET_MODELS = {
    "bacnet-ahu": ("AirHandler", "hvac"),
    "bacnet-chiller-plant": ("ChillerPlant", "hvac"),
    "bacnet-smoke-fan": ("SmokeFans", "smoke_fan"),
}


async def _start_bacnet(
    stack: contextlib.AsyncExitStack,
    group: asyncio.TaskGroup,
    site_dir: Path,
    bus: Mapping[str, Any],
    devices: list[Mapping[str, Any]],
    sims: ProtocolSims,
) -> None:
    from simulators.bacnet import models as bacnet_models
    from simulators.bacnet.server import BacnetSimulator, SimSpec

    specs: list[tuple[Mapping[str, Any], SimSpec, str]] = []
    for dev in devices:
        known = _BACNET_MODELS.get(str(dev.get("profile")))
        host, _, port = str(dev.get("address") or "").rpartition(":")
        if known is None or not port.isdigit():
            _LOG.warning(
                "no BACnet simulator for this device (profile, or address ip:port)", device=dev.get("id")
            )
            continue
        model = getattr(bacnet_models, known[0])()
        spec = SimSpec(int(dev["instance"]), model, port=int(port), name=str(dev["id"]))
        specs.append((dev, spec, known[1]))
    if not specs:
        return
    sim = await stack.enter_async_context(BacnetSimulator([s for _, s, _ in specs], host="127.0.0.1"))
    for dev, spec, family in specs:
        device = BacnetDevice(dev, bus, sim, spec.instance, family)
        sims.devices[device.id] = device
    where = ", ".join(f"{s.instance}@{sim.address(s.instance)}" for _, s, _ in specs)
    sims.servers.append(f"BACnet/IP devices {where}")


# --------------------------------------------------------------------------- registry


def _serial_line_starter() -> Starter:
    from simulators.serial_line_device import start_serial_line

    return start_serial_line


STARTERS: dict[str, Starter] = {
    "gb26875": _start_gb26875,
    "opcua": _start_opcua,
    "bacnet_ip": _start_bacnet,
    "serial_line": _serial_line_starter(),
}


async def start_protocol_sims(
    stack: contextlib.AsyncExitStack, group: asyncio.TaskGroup, site_path: Path, raw: Mapping[str, Any]
) -> ProtocolSims:
    """Start a simulator for every enabled device on a bus type in ``STARTERS``."""
    sims = ProtocolSims()
    site_dir = Path(os.path.abspath(site_path)).parent  # noqa: ASYNC240 - no I/O, string work
    buses = {str(b["id"]): b for b in raw.get("buses") or () if isinstance(b, Mapping)}
    by_bus: dict[str, list[Mapping[str, Any]]] = {}
    for dev in raw.get("devices") or ():
        if isinstance(dev, Mapping) and dev.get("enabled", True) and str(dev.get("bus")) in buses:
            by_bus.setdefault(str(dev["bus"]), []).append(dev)
    for bus_id, devices in by_bus.items():
        bus = buses[bus_id]
        starter = STARTERS.get(str(bus.get("type")))
        if starter is not None:
            await starter(stack, group, site_dir, bus, devices, sims)
    return sims
