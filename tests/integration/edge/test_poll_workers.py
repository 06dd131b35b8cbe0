"""``gateway.poll_workers``: the buses polled in worker processes against real simulator servers.

Values, events, statistics and writes cross the process boundary as they would in-process; a
worker killed with SIGKILL takes its devices offline (bad samples, one event each) and comes
back on its own, and the other worker's devices never notice.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from core.errors import DeviceError
from core.model import Quality
from edge.app import Gateway
from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.integration.edge.daemon_support import events
from tests.support import free_port, wait_until

DEADLINE_S = 60


def _site(tmp: Path, ports: tuple[int, int], workers: int) -> Path:
    site = {
        "site": {"id": "ws"},
        "gateway": {"id": "gw-w", "data_dir": str(tmp / "data"), "poll_workers": workers},
        "outbox": {"commit_interval_ms": 20},
        "buses": [
            {"id": f"lan{n}", "type": "modbus_tcp", "host": "127.0.0.1", "port": port, "timeout_ms": 300}
            for n, port in enumerate(ports)
        ],
        "devices": [
            {"id": "m0", "bus": "lan0", "unit": 1, "profile": "eastron-sdm630", "poll_interval_s": 0.2},
            {"id": "door0", "bus": "lan0", "unit": 2, "profile": "access-door", "poll_interval_s": 0.2},
            {"id": "m1", "bus": "lan1", "unit": 1, "profile": "eastron-sdm630", "poll_interval_s": 0.2},
        ],
    }
    path = tmp / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    return path


def _good(gw: Gateway, device: str) -> bool:
    prefix = f"ws/{device}/"
    values = [s for p, s in gw.live.latest.items() if p.startswith(prefix)]
    return bool(values) and all(s.quality is Quality.GOOD for s in values)


def _workers(gw: Gateway) -> list[Any]:
    assert gw.devices is not None
    return list({id(c._worker): c._worker for c in gw.devices.coordinators.values()}.values())  # type: ignore[attr-defined]


async def test_two_workers_poll_write_and_survive_a_kill(tmp_path: Path) -> None:
    ports = (free_port(), free_port())
    site_path = _site(tmp_path, ports, workers=2)
    async with (
        SimulationRunner(read_site_plan(site_path).devices, tick_s=None) as sim,
        Gateway(load_site(site_path)) as gw,
    ):
        run = asyncio.create_task(gw.run())
        try:
            await wait_until(
                lambda: all(_good(gw, d) for d in ("m0", "door0", "m1")),
                timeout_s=DEADLINE_S,
                message="every device polled good through the workers",
            )
            workers = _workers(gw)
            assert sorted(w.links for w in workers) == [
                [f"lan0 127.0.0.1:{ports[0]}"],
                [f"lan1 127.0.0.1:{ports[1]}"],
            ]
            pids = {w._proc.pid for w in workers}
            assert os.getpid() not in pids and len(pids) == 2  # polled in two other processes

            assert gw.devices is not None
            coords = gw.devices.coordinators
            await wait_until(lambda: coords["m1"].stats.polls_ok >= 5, message="statistics mirrored")
            assert coords["m1"].online is True

            # A write reaches the owning worker and its read-back comes back.
            assert await gw.write("door0", "release", True) is True
            # An error crosses as the same class, with the device's exception code.
            sim.device("door0").faults.exception_code = 4
            with pytest.raises(DeviceError) as caught:
                await gw.write("door0", "release", False)
            assert caught.value.code == 4
            sim.device("door0").faults.exception_code = None
            with pytest.raises(KeyError):
                await gw.write("door0", "no_such_point", True)

            # SIGKILL the worker of lan0: its devices go bad at once, lan1 keeps polling.
            lan0 = next(w for w in workers if w.links[0].startswith("lan0 "))
            starts = lan0.starts
            os.kill(lan0._proc.pid, signal.SIGKILL)
            await wait_until(
                lambda: gw.live.device_online.get("m0") is False and not _good(gw, "m0"),
                timeout_s=DEADLINE_S,
                message="lan0's devices offline with bad values",
            )
            before = coords["m1"].stats.polls_ok
            await wait_until(lambda: coords["m1"].stats.polls_ok >= before + 3, message="lan1 unaffected")
            await wait_until(
                lambda: lan0.starts > starts and _good(gw, "m0") and _good(gw, "door0"),
                timeout_s=DEADLINE_S,
                message="lan0's worker restarted and polling again",
            )
            assert gw.live.device_online.get("m0") is True
        finally:
            gw.stop()
            await run
        for worker in workers:
            assert worker._proc.returncode is not None  # no worker outlives the gateway
    kinds = [(k, s, d.get("kind")) for k, s, d in events(tmp_path / "data" / "outbox.db")]
    assert kinds.count(("device.offline", "m0", "WorkerStopped")) == 1
    assert kinds.count(("device.offline", "door0", "WorkerStopped")) == 1
    assert [k for k in kinds if k[1] == "m1" and k[0] == "device.offline"] == []


async def test_metrics_show_each_worker(tmp_path: Path) -> None:
    from edge.metrics import BacklogCache, build_registry

    site_path = _site(tmp_path, (free_port(), free_port()), workers=2)
    async with (
        SimulationRunner(read_site_plan(site_path).devices, tick_s=None),
        Gateway(load_site(site_path)) as gw,
    ):
        run = asyncio.create_task(gw.run())
        try:
            await wait_until(lambda: _good(gw, "m1"), timeout_s=DEADLINE_S, message="polled")
            await wait_until(lambda: all(w.ready.is_set() for w in _workers(gw)), message="workers ready")
            registry = build_registry(gw, BacklogCache(gw))
            for name in ("poll-1", "poll-2"):
                assert registry.get_sample_value("gatehouse_poll_worker_up", {"worker": name}) == 1.0
                assert registry.get_sample_value("gatehouse_poll_worker_starts_total", {"worker": name}) == 1
                memory = registry.get_sample_value(
                    "gatehouse_poll_worker_resident_memory_bytes", {"worker": name}
                )
                assert memory is not None and memory > 10 * 2**20
                cpu = registry.get_sample_value("gatehouse_poll_worker_cpu_seconds_total", {"worker": name})
                assert cpu is not None and cpu > 0
        finally:
            gw.stop()
            await run


async def test_one_tcp_bus_is_shared_out_by_endpoint(tmp_path: Path) -> None:
    # Devices of one Modbus TCP bus with their own host:port share nothing, so two workers
    # take one endpoint each; two units behind one endpoint would stay together.
    ports = (free_port(), free_port())
    site = {
        "site": {"id": "ws"},
        "gateway": {"id": "gw-w", "data_dir": str(tmp_path / "data"), "poll_workers": 2},
        "buses": [{"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": ports[0]}],
        "devices": [
            {"id": "m0", "bus": "lan", "unit": 1, "profile": "eastron-sdm630", "poll_interval_s": 0.2},
            {"id": "door0", "bus": "lan", "unit": 2, "profile": "access-door", "poll_interval_s": 0.2},
            {
                "id": "m1",
                "bus": "lan",
                "port": ports[1],
                "unit": 1,
                "profile": "eastron-sdm630",
                "poll_interval_s": 0.2,
            },
        ],
    }
    site_path = tmp_path / "site.yaml"
    with site_path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    async with (
        SimulationRunner(read_site_plan(site_path).devices, tick_s=None),
        Gateway(load_site(site_path)) as gw,
    ):
        run = asyncio.create_task(gw.run())
        try:
            await wait_until(
                lambda: all(_good(gw, d) for d in ("m0", "door0", "m1")),
                timeout_s=DEADLINE_S,
                message="every device polled good",
            )
            shares = sorted(sorted(d.id for d in w.devices) for w in _workers(gw))
            assert shares == [["door0", "m0"], ["m1"]]
        finally:
            gw.stop()
            await run
