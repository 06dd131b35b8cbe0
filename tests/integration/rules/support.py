"""A small site served by real simulators, for the rules runtime's integration tests."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import msgpack

from edge.app import Gateway
from edge.config.loader import load_site
from edge.config.site import Site
from edge.rules_host.runtime import RulesRuntime
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

SITE_TEMPLATE = """
site: {{id: rules-test}}
gateway: {{id: gw-rules, data_dir: {data}}}
outbox: {{commit_interval_ms: 20}}
buses:
  - {{id: room, type: modbus_tcp, host: 127.0.0.1, port: {port}, timeout_ms: 1000, retries: 1}}
devices:
  - {{id: fire-panel, bus: room, unit: 1, profile: fire-panel-modbus, poll_interval_s: 0.25}}
  - {{id: door, bus: room, unit: 2, profile: access-door, poll_interval_s: 0.5}}
  - {{id: lighting, bus: room, unit: 3, profile: evacuation-lighting, poll_interval_s: 0.5}}
rules:
  alarms:
    # a site override of the profile's communication-loss alarm (30 s there)
    - {{point: fire-panel.fire_zone_count, id: comm_lost, after_s: 3}}
  linkage:
    - id: fire-zone1
      name: {{zh: "1区火灾联动", en: zone 1 fire linkage}}
      trigger: alarm("fire-panel.zone1_fire") and point("fire-panel.zone1_detectors_in_alarm") >= 2
      reset: point("fire-panel.zone1_fire") == false
      mode: {mode}
      steps:
        - {{write: door.release, value: true, timeout_s: 5}}
        - {{write: lighting.zone1_emergency, value: true, timeout_s: 5}}
      restore:
        - {{write: door.release, value: false, timeout_s: 5}}
        - {{write: lighting.zone1_emergency, value: false, timeout_s: 5}}
"""


def write_site(tmp_path: Path, *, mode: str = "automatic") -> Path:
    path = tmp_path / "site.yaml"
    text = SITE_TEMPLATE.format(data=tmp_path / "data", port=free_port(), mode=mode)
    path.write_text(text, encoding="utf-8")
    return path


def runtime_of(gateway: Gateway) -> RulesRuntime:
    runtime = gateway.alarms
    assert isinstance(runtime, RulesRuntime)
    return runtime


@asynccontextmanager
async def running(site: Site) -> AsyncIterator[Gateway]:
    """The daemon, polling, until the block ends (then stopped as SIGTERM would)."""
    async with Gateway(site) as gateway:
        run = asyncio.create_task(gateway.run(), name="gateway")
        try:
            await wait_until(
                lambda: all(gateway.live.device_online.get(d.id) for d in site.devices),
                timeout_s=60,
                message="every device online",
            )
            yield gateway
        finally:
            gateway.stop()
            await run


def outbox_events(site: Site, kind_prefix: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, source, data) of every event committed in the outbox, oldest first."""
    with sqlite3.connect(site.outbox_path) as conn:
        rows = conn.execute("SELECT kind, source, data FROM events ORDER BY id").fetchall()
    return [(k, s, msgpack.unpackb(d, raw=False)) for k, s, d in rows if k.startswith(kind_prefix)]


def load(path: Path) -> Site:
    return load_site(path)


class Simulated(NamedTuple):
    path: Path
    site: Site
    sim: SimulationRunner
    api: httpx.AsyncClient  # the simulators' control API


@asynccontextmanager
async def simulated(tmp_path: Path, *, mode: str = "automatic") -> AsyncIterator[Simulated]:
    """The test site written and loaded, its devices served by simulators."""
    path = write_site(tmp_path, mode=mode)
    async with (
        SimulationRunner(read_site_plan(path).devices, tick_s=0.25, control_port=0) as sim,
        httpx.AsyncClient(base_url=sim.control_url) as api,
    ):
        yield Simulated(path, load(path), sim, api)
