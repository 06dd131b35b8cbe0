"""Resolving where each point lives on the server, once per session: the namespace URIs to
indices (they may change when a server restarts), each device's root browse path from the
Objects folder, then every point's browse path from its device root, in batched
TranslateBrowsePathsToNodeIds calls. A segment without ``N:`` is in the device's namespace, or
failing that in the namespace of the segment before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStringParsingError

from drivers.opcua.calls import call
from drivers.opcua.config import parse_browse_path
from drivers.opcua.device import Item, OpcUaDevice

__all__ = ["qualified_path", "resolve_items", "translate_many", "translate_one"]

_LOG = structlog.get_logger(__name__)

_BAD_NODE_ID_INVALID = 0x80330000
_BAD_NO_MATCH = 0x806F0000  # BadNoMatch
_BAD_NAMESPACE = 0x806E0000  # BadBrowseNameInvalid: used for an unknown namespace URI


def qualified_path(path: str, namespace: int | None) -> list[tuple[int, str]]:
    """Browse path text → ``[(ns, name), ...]``; an unprefixed segment takes ``namespace`` (or
    the one before it). Raises ``ValueError`` when a segment has no namespace to take."""
    out: list[tuple[int, str]] = []
    current = namespace
    for ns, name in parse_browse_path(path):
        if ns is None:
            if current is None:
                raise ValueError(
                    f"segment {name!r} of {path!r} has no namespace: write 'N:{name}' or set 'namespace'"
                )
            ns = current
        out.append((ns, name))
        current = ns
    return out


def _relative_path(segments: Sequence[tuple[int, str]]) -> ua.RelativePath:
    elements = []
    for ns, name in segments:
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences))
        element.IsInverse = False  # type: ignore[assignment]
        element.IncludeSubtypes = True  # type: ignore[assignment]
        element.TargetName = ua.QualifiedName(name, ns)
        elements.append(element)
    path = ua.RelativePath()
    path.Elements = elements
    return path


async def translate_many(
    client: Client, requests: list[tuple[ua.NodeId, list[tuple[int, str]]]], step: int, timeout_s: float
) -> list[ua.NodeId | int]:
    """Each (start, path) → its NodeId, or the StatusCode value that says why not."""
    out: list[ua.NodeId | int] = []
    for start in range(0, len(requests), step):
        browse_paths = []
        for node, segments in requests[start : start + step]:
            bp = ua.BrowsePath()
            bp.StartingNode = node
            bp.RelativePath = _relative_path(segments)
            browse_paths.append(bp)
        results = await call(
            client.uaclient.translate_browsepaths_to_nodeids(browse_paths), timeout_s=timeout_s
        )
        for result in results:
            if result.StatusCode.is_good() and result.Targets:
                target = result.Targets[0].TargetId
                out.append(ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType))
            else:
                code = result.StatusCode.value
                out.append(code if code & 0x80000000 else _BAD_NO_MATCH)
    return out


async def translate_one(
    client: Client, start: ua.NodeId, segments: list[tuple[int, str]], timeout_s: float
) -> ua.NodeId | int:
    (found,) = await translate_many(client, [(start, segments)], 1, timeout_s)
    return found


async def resolve_items(
    client: Client, devices: Sequence[OpcUaDevice], step: int, timeout_s: float
) -> list[tuple[Item, int]]:
    """Set ``item.node`` of every item; returns the items that could not be resolved with the
    StatusCode that says why (their ``node`` is None)."""
    namespaces: list[str] = await call(client.get_namespace_array(), timeout_s=timeout_s)
    objects = ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder))
    failed: list[tuple[Item, int]] = []
    for device in devices:
        config = device.config
        items = list(device.items.values())
        for item in items:
            item.node = None
        ns_default: int | None = None
        if config is not None and config.namespace is not None:
            if config.namespace not in namespaces:
                _LOG.warning("namespace not on server", device=device.device_id, namespace=config.namespace)
                failed.extend((item, _BAD_NAMESPACE) for item in items if item.point.browse_path is not None)
                items = [item for item in items if item.point.browse_path is None]
            else:
                ns_default = namespaces.index(config.namespace)
        root, root_ns = objects, ns_default
        if config is not None and config.root is not None:
            segments = qualified_path(config.root, ns_default)
            (found,) = await translate_many(client, [(objects, segments)], step, timeout_s)
            if isinstance(found, int):
                _LOG.warning("device root not found", device=device.device_id, root=config.root)
                failed.extend((item, found) for item in items if item.point.browse_path is not None)
                items = [item for item in items if item.point.browse_path is None]
            else:
                root, root_ns = found, segments[-1][0]
        by_path: list[tuple[Item, list[tuple[int, str]]]] = []
        for item in items:
            if item.point.node_id is not None:
                try:
                    item.node = ua.NodeId.from_string(item.point.node_id)
                except (ValueError, UaStringParsingError):
                    failed.append((item, _BAD_NODE_ID_INVALID))
                continue
            assert item.point.browse_path is not None
            try:
                by_path.append((item, qualified_path(item.point.browse_path, root_ns)))
            except ValueError:
                failed.append((item, _BAD_NODE_ID_INVALID))
        if by_path:
            nodes = await translate_many(
                client, [(root, segments) for _, segments in by_path], step, timeout_s
            )
            for (item, _), node in zip(by_path, nodes, strict=True):
                if isinstance(node, int):
                    failed.append((item, node))
                else:
                    item.node = node
    return failed
