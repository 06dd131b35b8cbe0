"""``gatehouse discover opcua URL``: browse a server and write a ready site-file fragment.

Browses forward hierarchical references breadth-first from ``--root`` (the Objects folder by
default) down to ``--depth`` levels, in batched Browse calls; reads each variable's display
name, data type, access level and engineering units (its EngineeringUnits property) in batched
Read calls; and writes one ``opcua`` bus and one device per object directly below the root, each
with ``root`` and ``namespace`` set and its variables as points addressed by browse path from
that root. Progress goes to stderr. The connection uses the same security, trust list and
identity options as the driver (a refused server certificate says how to trust it).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from drivers.opcua.config import DataType, Identity, OpcUaBus, SecurityMode, SecurityPolicy

__all__ = ["DiscoveredDevice", "DiscoveredVariable", "discover", "main", "render_fragment"]

# OPC UA built-in DataType NodeIds (namespace 0) → point types.
_TYPES: dict[int, DataType] = {
    1: DataType.BOOL,
    2: DataType.SBYTE,
    3: DataType.BYTE,
    4: DataType.INT16,
    5: DataType.UINT16,
    6: DataType.INT32,
    7: DataType.UINT32,
    8: DataType.INT64,
    9: DataType.UINT64,
    10: DataType.FLOAT,
    11: DataType.DOUBLE,
    12: DataType.STRING,
}
_NODE_CLASSES = {"object": 1, "variable": 2}
_BATCH = 500


@dataclass(slots=True)
class DiscoveredVariable:
    path: list[tuple[int, str]]  # from the device root
    display_name: str
    type: DataType | None
    writable: bool
    unit: str | None = None
    node_id: str = ""


@dataclass(slots=True)
class DiscoveredDevice:
    name: str
    root: list[tuple[int, str]]  # from the Objects folder
    namespace: str | None
    variables: list[DiscoveredVariable] = field(default_factory=list)


def _progress(out: TextIO, text: str) -> None:
    out.write(f"\r{text:<78}")
    out.flush()


async def discover(
    bus: OpcUaBus,
    *,
    site_dir: Path,
    root: str | None,
    depth: int,
    node_classes: Sequence[str] = ("object", "variable"),
    progress: TextIO | None = None,
) -> list[DiscoveredDevice]:
    """Connect as the driver would and browse; returns the devices found."""
    from asyncua import ua
    from asyncua.ua.attribute_ids import AttributeIds
    from asyncua.ua.object_ids import ObjectIds

    from drivers.opcua.calls import call
    from drivers.opcua.resolve import qualified_path
    from drivers.opcua.session import OpcUaLink

    link = OpcUaLink(bus, [], site_dir=site_dir)
    client = await link.open_client()
    timeout_s = bus.timeout_ms / 1000
    out = progress or sys.stderr
    try:
        namespaces: list[str] = await call(client.get_namespace_array(), timeout_s=timeout_s)
        start = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))
        prefix: list[tuple[int, str]] = []
        if root:
            prefix = qualified_path(root, None)
            from drivers.opcua.resolve import translate_one

            found = await translate_one(client, start, prefix, timeout_s)
            if isinstance(found, int):
                raise SystemExit(f"root {root!r} not found on the server")
            start = found
        # Breadth-first over forward hierarchical references, one Browse per batch of nodes.
        frontier: list[tuple[Any, list[tuple[int, str]]]] = [(start, [])]
        variables: list[tuple[Any, list[tuple[int, str]], str]] = []
        seen = {start}
        browsed = 0
        mask = sum(_NODE_CLASSES[c] for c in node_classes) or 0
        for level in range(depth):
            next_frontier: list[tuple[Any, list[tuple[int, str]]]] = []
            for batch_start in range(0, len(frontier), _BATCH):
                batch = frontier[batch_start : batch_start + _BATCH]
                params = ua.BrowseParameters()
                params.NodesToBrowse = [_browse_description(ua, node, mask) for node, _ in batch]
                results = await call(client.uaclient.browse(params), timeout_s=timeout_s)
                browsed += len(batch)
                for (_, path), result in zip(batch, results, strict=True):
                    for ref in result.References:
                        node = ua.NodeId(
                            ref.NodeId.Identifier, ref.NodeId.NamespaceIndex, ref.NodeId.NodeIdType
                        )
                        qname = (int(ref.BrowseName.NamespaceIndex), str(ref.BrowseName.Name))
                        if node in seen or (level == 0 and not root and qname[0] == 0):
                            continue  # the Server object and other namespace-0 furniture
                        seen.add(node)
                        child = [*path, qname]
                        if ref.NodeClass == ua.NodeClass.Variable:
                            if ref.ReferenceTypeId != ua.NodeId(ua.Int32(ObjectIds.HasProperty)):
                                variables.append((node, child, ref.DisplayName.Text or qname[1]))
                        elif ref.NodeClass == ua.NodeClass.Object:
                            next_frontier.append((node, child))
                _progress(
                    out, f"browsed {browsed} nodes, found {len(variables)} variables (level {level + 1})"
                )
            frontier = next_frontier
            if not frontier:
                break
        # Data types and access levels, then engineering units, in batches.
        nodes = [v[0] for v in variables]
        types: list[Any] = []
        access: list[Any] = []
        for s in range(0, len(nodes), _BATCH):
            chunk = nodes[s : s + _BATCH]
            types += await call(
                client.uaclient.read_attributes(chunk, AttributeIds.DataType), timeout_s=timeout_s
            )
            access += await call(
                client.uaclient.read_attributes(chunk, AttributeIds.UserAccessLevel), timeout_s=timeout_s
            )
            _progress(out, f"read attributes of {min(s + _BATCH, len(nodes))}/{len(nodes)} variables")
        units = await _units(client, nodes, timeout_s, out)
        out.write("\n")
    finally:
        await link.close_client(client)
    return _group(variables, types, access, units, prefix, namespaces)


def _browse_description(ua: Any, node: Any, mask: int) -> Any:
    from asyncua.ua.object_ids import ObjectIds

    desc = ua.BrowseDescription()
    desc.NodeId = node
    desc.BrowseDirection = ua.BrowseDirection.Forward
    desc.ReferenceTypeId = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
    desc.IncludeSubtypes = True
    desc.NodeClassMask = mask
    desc.ResultMask = ua.BrowseResultMask.All
    return desc


async def _units(client: Any, nodes: list[Any], timeout_s: float, out: TextIO) -> list[str | None]:
    from asyncua.ua.attribute_ids import AttributeIds

    from drivers.opcua.calls import call
    from drivers.opcua.resolve import translate_many

    found = await translate_many(
        client, [(node, [(0, "EngineeringUnits")]) for node in nodes], _BATCH, timeout_s
    )
    units: list[str | None] = [None] * len(nodes)
    have = [(i, n) for i, n in enumerate(found) if not isinstance(n, int)]
    for s in range(0, len(have), _BATCH):
        chunk = have[s : s + _BATCH]
        values = await call(
            client.uaclient.read_attributes([n for _, n in chunk], AttributeIds.Value), timeout_s=timeout_s
        )
        for (i, _), dv in zip(chunk, values, strict=True):
            eu = dv.Value.Value if dv.Value is not None else None
            text = getattr(getattr(eu, "DisplayName", None), "Text", None)
            units[i] = text or None
        _progress(out, f"read engineering units of {min(s + _BATCH, len(have))}/{len(have)} variables")
    return units


def _group(
    variables: list[tuple[Any, list[tuple[int, str]], str]],
    types: list[Any],
    access: list[Any],
    units: list[str | None],
    prefix: list[tuple[int, str]],
    namespaces: list[str],
) -> list[DiscoveredDevice]:
    """One device per object directly below the root; variables right at the root form a
    device named after the root."""
    devices: dict[str, DiscoveredDevice] = {}
    for (node, path, display), dtype, level, unit in zip(variables, types, access, units, strict=True):
        if len(path) >= 2:
            head, rest = path[:1], path[1:]
        else:
            head, rest = [], path
        root = [*prefix, *head]
        name = root[-1][1] if root else "Objects"
        ns_index = root[-1][0] if root else rest[0][0]
        device = devices.get(name)
        if device is None:
            namespace = namespaces[ns_index] if ns_index < len(namespaces) else None
            device = devices[name] = DiscoveredDevice(name, root, namespace)
        data_type = None
        value = dtype.Value.Value if dtype.Value is not None else None
        if value is not None and value.NamespaceIndex == 0 and isinstance(value.Identifier, int):
            data_type = _TYPES.get(value.Identifier)
        access_bits = level.Value.Value if level.Value is not None and level.Value.Value is not None else 1
        device.variables.append(
            DiscoveredVariable(
                rest, display, data_type, bool(int(access_bits) & 0x02), unit, node.to_string()
            )
        )
    return list(devices.values())


def _ident(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()).strip("_")
    base = (base or "x")[:60]
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}_{n}", n + 1
    taken.add(ident)
    return ident


def _path_text(path: list[tuple[int, str]], default_ns: int | None) -> str:
    return "/".join(name if ns == default_ns else f"{ns}:{name}" for ns, name in path)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_fragment(bus: OpcUaBus, devices: list[DiscoveredDevice], *, source: str) -> str:
    """The site-file fragment: the bus and one device per discovered object, in YAML."""
    lines = [
        f"# Discovered from {source} on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC:",
        f"# {len(devices)} device(s), {sum(len(d.variables) for d in devices)} point(s).",
        "# Review names, units, access and sampling before use; add 'site:' and 'gateway:'.",
        "buses:",
        f"  - id: {bus.id}",
        "    type: opcua",
        f"    endpoint: {_q(bus.endpoint)}",
        f"    security_policy: {bus.security_policy.value}",
        f"    security_mode: {bus.security_mode.value}",
    ]
    if bus.application_uri:
        lines.append(f"    application_uri: {_q(bus.application_uri)}")
    for key in ("certificate", "private_key", "trust_dir", "rejected_dir"):
        value = getattr(bus, key)
        if value != OpcUaBus.model_fields[key].default:
            lines.append(f"    {key}: {_q(value)}")
    lines.append(f"    identity: {bus.identity.value}")
    for key in ("username", "password_file", "user_certificate", "user_private_key"):
        value = getattr(bus, key)
        if value is not None:
            lines.append(f"    {key}: {_q(value)}")
    lines.append("devices:")
    device_ids: set[str] = set()
    for device in devices:
        default_ns = device.root[-1][0] if device.root else None
        lines += [
            f"  - id: {_ident(device.name, device_ids)}",
            f"    name: {_q(device.name)}",
            f"    bus: {bus.id}",
        ]
        if device.root:
            lines.append(f"    root: {_q(_path_text(device.root, None))}")
        if device.namespace:
            lines.append(f"    namespace: {_q(device.namespace)}")
        lines.append("    points:")
        point_ids: set[str] = set()
        for v in device.variables:
            path = _path_text(v.path, default_ns)
            parts = [
                f"id: {_ident(path.replace('/', '_'), point_ids)}",
                f"name: {_q(v.display_name)}",
                f"browse_path: {_q(path)}",
            ]
            if v.type is not None:
                parts.append(f"type: {v.type.value}")
            if v.unit:
                parts.append(f"unit: {_q(v.unit)}")
            if v.writable and v.type is not None:
                parts.append("access: rw")
            lines.append("      - {" + ", ".join(parts) + "}")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatehouse discover opcua", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="opc.tcp://host:port[/path]")
    parser.add_argument("--root", help="browse path from the Objects folder, e.g. 2:PumpStation1")
    parser.add_argument("--depth", type=int, default=6, help="levels to browse (default 6)")
    parser.add_argument(
        "--node-class", action="append", choices=sorted(_NODE_CLASSES), help="follow only these (repeatable)"
    )
    parser.add_argument("--bus-id", default="opcua-1")
    parser.add_argument(
        "--security-policy", default="Basic256Sha256", choices=[p.value for p in SecurityPolicy]
    )
    parser.add_argument("--security-mode", default="SignAndEncrypt", choices=[m.value for m in SecurityMode])
    parser.add_argument("--site-dir", type=Path, default=Path("."), help="relative paths are taken from here")
    parser.add_argument("--certificate", help="gateway certificate (default pki/opcua/gateway-cert.der)")
    parser.add_argument("--private-key", help="gateway key (default pki/opcua/gateway-key.pem)")
    parser.add_argument("--application-uri")
    parser.add_argument("--trust-dir", help="trusted server certificates (default pki/opcua/trusted)")
    parser.add_argument("--username")
    parser.add_argument("--password-file")
    parser.add_argument("--timeout-ms", type=int, default=10000)
    parser.add_argument("--out", type=Path, help="write the fragment here (default: stdout)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    fields: dict[str, Any] = {
        "id": args.bus_id,
        "type": "opcua",
        "endpoint": args.url,
        "security_policy": args.security_policy,
        "security_mode": args.security_mode,
        "timeout_ms": args.timeout_ms,
    }
    for name in ("certificate", "private_key", "application_uri", "trust_dir"):
        if getattr(args, name):
            fields[name] = getattr(args, name)
    if args.username:
        fields.update(identity=Identity.USERNAME, username=args.username, password_file=args.password_file)
    from core.errors import TransportError
    from drivers.opcua.calls import LinkRefused

    try:
        bus = OpcUaBus(**fields)
        devices = asyncio.run(
            discover(
                bus,
                site_dir=args.site_dir,
                root=args.root,
                depth=args.depth,
                node_classes=args.node_class or ("object", "variable"),
            )
        )
    except LinkRefused as exc:
        sys.stderr.write(f"refused: {exc}\n")
        return 2
    except (TransportError, ValueError) as exc:
        sys.stderr.write(f"discovery failed: {exc}\n")
        return 1
    text = render_fragment(bus, devices, source=args.url)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {args.out}: {len(devices)} device(s)\n")
    else:
        sys.stdout.write(text)
    return 0
