"""``gatehouse discover bacnet``: find BACnet devices and write a ready site-file fragment.

Sends who-is (directed with ``--target ip:port``, else broadcast on the local interface) for an
instance range, then walks each device that answered: its device object (name, model, vendor,
max-APDU, segmentation), its object list, and each object's name, description and units, with
ReadPropertyMultiple where the device allows (ReadProperty otherwise). Progress goes to stderr.

It writes the fragment (``--out``: one ``bacnet_ip`` bus, one device per answer, ``profile_dirs``)
and, next to it in ``profiles/``, a profile skeleton per device model (points named after the
objects, with engineering units; outputs and values writable at priority 8).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from drivers.bacnet.config import BacnetBus, parse_host_port
from drivers.bacnet.objects import default_value_type

__all__ = ["DiscoveredDevice", "DiscoveredObject", "discover", "main", "render_fragment", "render_profile"]

_POINT_TYPES = (
    "analog-input",
    "analog-output",
    "analog-value",
    "binary-input",
    "binary-output",
    "binary-value",
    "multi-state-input",
    "multi-state-output",
    "multi-state-value",
)
_WRITABLE = (
    "analog-output",
    "analog-value",
    "binary-output",
    "binary-value",
    "multi-state-output",
    "multi-state-value",
)
_PER_REQUEST = 16  # objects per ReadPropertyMultiple while walking (fits a 480-byte APDU)

# BACnet engineering units → the display unit a point shows
_UNIT_TEXT = {
    "degrees-celsius": "°C",
    "degrees-fahrenheit": "°F",
    "percent": "%",
    "pascals": "Pa",
    "kilopascals": "kPa",
    "kilowatts": "kW",
    "amperes": "A",
    "volts": "V",
    "liters-per-second": "L/s",
    "cubic-meters-per-hour": "m³/h",
    "percent-relative-humidity": "%RH",
    "hertz": "Hz",
}


@dataclass(slots=True)
class DiscoveredObject:
    type: str
    instance: int
    name: str
    description: str = ""
    units: str | None = None
    states: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DiscoveredDevice:
    instance: int
    address: str
    name: str
    model: str = ""
    vendor: str = ""
    objects: list[DiscoveredObject] = field(default_factory=list)


def _progress(out: TextIO | None, text: str) -> None:
    if out is not None:
        out.write(f"\r{text:<78}")
        out.flush()


async def discover(
    bus: BacnetBus,
    *,
    low: int,
    high: int,
    target: str | None,
    wait_s: float = 3.0,
    progress: TextIO | None = None,
) -> list[DiscoveredDevice]:
    """who-is, then walk every device that answered."""
    from core.model import Event
    from drivers.bacnet.link import BacnetLink

    async def no_events(event: Event) -> None:
        return None

    import time

    async with BacnetLink(bus, events=no_events, wall=time.time) as link:
        from bacpypes3.pdu import Address

        destination = None
        if target is not None:
            host, port = parse_host_port(target)
            destination = Address(f"{host}:{port}")
        _progress(progress, f"who-is {low}-{high} {'to ' + target if target else '(broadcast)'}")
        i_ams = await link.app.who_is(low, high, destination, timeout=wait_s)
        found: dict[int, Any] = {}
        for i_am in i_ams or []:
            found.setdefault(int(i_am.iAmDeviceIdentifier[1]), i_am.pduSource)
        devices: list[DiscoveredDevice] = []
        for n, (instance, address) in enumerate(sorted(found.items()), start=1):
            peer = link.peer(instance, None)
            peer.address = address
            devices.append(await _walk(link, peer, f"device {n}/{len(found)}", progress))
        _progress(progress, f"{len(devices)} device(s), {sum(len(d.objects) for d in devices)} object(s)")
        if progress is not None:
            progress.write("\n")
        return devices


async def _walk(link: Any, peer: Any, label: str, progress: TextIO | None) -> DiscoveredDevice:
    from drivers.bacnet.errors import Refusal

    await link.learn(peer)
    device_id = link.objid("device", peer.instance)
    info = await _read_props(link, peer, device_id, ["object-name", "model-name", "vendor-name"])
    try:
        object_list = await link.read_property(peer, device_id, "object-list")
    except Refusal as exc:
        if not exc.too_big:
            raise
        count = int(await link.read_property(peer, device_id, "object-list", 0))
        object_list = [
            await link.read_property(peer, device_id, "object-list", i) for i in range(1, count + 1)
        ]
    wanted = [o for o in object_list if str(o[0]) in _POINT_TYPES]
    device = DiscoveredDevice(
        instance=peer.instance,
        address=str(peer.address),
        name=str(info.get("object-name") or f"device-{peer.instance}"),
        model=str(info.get("model-name") or ""),
        vendor=str(info.get("vendor-name") or ""),
    )
    for start in range(0, len(wanted), _PER_REQUEST):
        part = wanted[start : start + _PER_REQUEST]
        _progress(progress, f"{label} ({device.name}): objects {start + len(part)}/{len(wanted)}")
        for objid in part:
            kind = str(objid[0])
            props = ["object-name", "description"]
            if kind.startswith("analog"):
                props.append("units")
            if kind.startswith("multi-state"):
                props.append("state-text")
            values = await _read_props(link, peer, objid, props)
            device.objects.append(
                DiscoveredObject(
                    type=kind,
                    instance=int(objid[1]),
                    name=str(values.get("object-name") or f"{kind}-{objid[1]}"),
                    description=str(values.get("description") or ""),
                    units=str(values["units"]) if values.get("units") is not None else None,
                    states=[str(s) for s in values.get("state-text") or []],
                )
            )
    return device


async def _read_props(link: Any, peer: Any, objid: Any, props: list[str]) -> dict[str, Any]:
    """Several properties of one object; a property the object lacks is left out."""
    from drivers.bacnet.errors import Refusal

    out: dict[str, Any] = {}
    if peer.rpm:
        try:
            rows = await link.read_multiple(peer, [objid, props])
        except Refusal as exc:
            if not exc.service_refused:
                raise
            peer.rpm = False
        else:
            for _, prop, _, value in rows:
                if not hasattr(value, "errorCode"):
                    out[str(prop)] = value
            return out
    for prop in props:
        try:
            out[prop] = await link.read_property(peer, objid, prop)
        except Refusal:
            continue
    return out


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_\-]+", "-", text.lower()).strip("-_")[:56] or "x"
    if not base[0].isalnum():
        base = "p" + base
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def profile_id(device: DiscoveredDevice) -> str:
    return "bacnet-" + _slug(device.model or f"device-{device.instance}", set())


def render_profile(device: DiscoveredDevice, pid: str) -> str:
    """A profile skeleton for the device's model."""
    lines = [
        f"# Profile skeleton discovered from BACnet device {device.instance} ({device.name}).",
        "# Review names, units, access, alarms and poll intervals.",
        f"id: {pid}",
        f"name: {_q(device.model or device.name)}",
        "family: hvac",
        f"manufacturer: {_q(device.vendor)}" if device.vendor else "manufacturer: null",
        f"model: {_q(device.model)}" if device.model else "model: null",
        "source: discovered",
        "protocol: bacnet",
        "points:",
    ]
    taken: set[str] = set()
    for obj in device.objects:
        parts = [
            f"id: {_slug(obj.name, taken)}",
            f"name: {_q(obj.description or obj.name)}",
            f"object_type: {obj.type}",
            f"instance: {obj.instance}",
        ]
        if obj.units and obj.units != "no-units":
            parts.append(f"units: {obj.units}")
            if obj.units in _UNIT_TEXT:
                parts.append(f"unit: {_q(_UNIT_TEXT[obj.units])}")
        if obj.states and default_value_type(obj.type) == "enum":
            states = ", ".join(f"{i + 1}: {_q(s)}" for i, s in enumerate(obj.states))
            parts.append(f"enum: {{{states}}}")
        if obj.type in _WRITABLE:
            parts.append("access: rw")
        lines.append("  - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def render_fragment(
    bus: BacnetBus, devices: list[DiscoveredDevice], *, source: str
) -> tuple[str, dict[str, str]]:
    """The site-file fragment and the profiles it names (profile id → YAML text)."""
    profiles: dict[str, str] = {}
    keys: dict[str, tuple[tuple[str, int], ...]] = {}
    lines = [
        f"# Discovered from {source} on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC:",
        f"# {len(devices)} device(s), {sum(len(d.objects) for d in devices)} object(s).",
        "# Review before use; add 'site:' and 'gateway:'. Profiles are in profiles/.",
        "profile_dirs: [profiles]",
        "buses:",
        f"  - id: {bus.id}",
        "    type: bacnet_ip",
        f"    address: {_q(bus.address)}",
        f"    port: {bus.port}",
        f"    timeout_ms: {bus.timeout_ms}",
        f"    retries: {bus.retries}",
        "devices:",
    ]
    taken: set[str] = set()
    for device in devices:
        pid = profile_id(device)
        shape = tuple((o.type, o.instance) for o in device.objects)
        if pid in keys and keys[pid] != shape:
            pid = f"{pid}-{device.instance}"
        if pid not in profiles and device.objects:
            profiles[pid] = render_profile(device, pid)
            keys[pid] = shape
        lines += [
            f"  - id: {_slug(device.name, taken)}",
            f"    name: {_q(device.name)}",
            f"    bus: {bus.id}",
            f"    instance: {device.instance}",
            f"    address: {_q(device.address)}",
        ]
        if device.objects:
            lines.append(f"    profile: {pid}")
    return "\n".join(lines) + "\n", profiles


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatehouse discover bacnet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="0.0.0.0", help="local interface, ip[/prefix] (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=47808, help="local UDP port (default 47808; 0: any)")
    parser.add_argument("--target", help="ip:port for a directed who-is (default: broadcast)")
    parser.add_argument("--range", default="0-4194302", help="device instances LOW-HIGH")
    parser.add_argument("--wait-s", type=float, default=3.0, help="how long to collect I-Am answers")
    parser.add_argument("--bus-id", default="bacnet-1")
    parser.add_argument("--timeout-ms", type=int, default=1000)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the fragment here (profiles/ next to it)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from core.errors import TransportError

    low_text, _, high_text = args.range.partition("-")
    if not (low_text.isdigit() and (high_text or low_text).isdigit()):
        sys.stderr.write("--range is LOW-HIGH, e.g. 1000-1999\n")
        return 2
    low, high = int(low_text), int(high_text or low_text)
    if not 0 <= low <= high <= 4194303:
        sys.stderr.write("--range is LOW-HIGH within 0..4194303\n")
        return 2
    try:
        bus = BacnetBus(
            id=args.bus_id,
            type="bacnet_ip",
            address=args.address,
            port=args.port,
            timeout_ms=args.timeout_ms,
            retries=args.retries,
        )
        devices = asyncio.run(
            discover(bus, low=low, high=high, target=args.target, wait_s=args.wait_s, progress=sys.stderr)
        )
    except (TransportError, ValueError) as exc:
        sys.stderr.write(f"discovery failed: {exc}\n")
        return 1
    if not devices:
        sys.stderr.write("no device answered who-is (directed who-is: --target ip:port)\n")
        return 1
    source = args.target or f"broadcast from {args.address}:{args.port}"
    text, profiles = render_fragment(bus, devices, source=source)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        folder = args.out.parent / "profiles"
        folder.mkdir(parents=True, exist_ok=True)
        for pid, body in profiles.items():
            (folder / f"{pid}.yaml").write_text(body, encoding="utf-8")
        sys.stderr.write(
            f"wrote {args.out} and {len(profiles)} profile(s) in {folder}: {len(devices)} device(s)\n"
        )
    else:
        sys.stdout.write(text)
        for pid, body in profiles.items():
            sys.stdout.write(f"\n# --- profiles/{pid}.yaml\n{body}")
    return 0
