"""``gatehouse discover bacnet`` against the simulator: directed who-is over a range, the walk
of each device, and a fragment plus profiles that the site loader accepts and the gateway's
wiring polls (values and COV through the coordinators)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

from core.model import Event, Quality, Sample, SystemClock
from drivers.bacnet.config import BacnetPointConfig
from drivers.bacnet.discover import main
from edge.config.loader import load_site
from edge.wiring import build_devices
from simulators.bacnet import AirHandler, BacnetSimulator, ChillerPlant, SimSpec, SmokeFans
from tests.support import wait_until


async def test_discovered_fragment_loads_and_polls(tmp_path: Path) -> None:
    specs = [SimSpec(3001, AirHandler()), SimSpec(3002, ChillerPlant()), SimSpec(3003, SmokeFans())]
    async with BacnetSimulator(specs) as sim:
        out = tmp_path / "fragment.yaml"
        results: dict[str, str] = {}
        for instance in (3001, 3002, 3003):
            argv = [
                *("--address", "127.0.0.1", "--port", "0", "--target", sim.address(instance)),
                *("--range", "3000-3009", "--wait-s", "1", "--out", str(out), "--bus-id", "plant"),
            ]
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                assert await asyncio.to_thread(main, argv) == 0
            assert "objects" in stderr.getvalue()  # progress while walking
            results[str(instance)] = out.read_text()
        # one fragment per directed who-is; put the three devices in one site
        devices = []
        for text in results.values():
            devices.append(text.split("devices:\n", 1)[1])
        head = results["3001"].split("devices:\n", 1)[0]
        site_file = tmp_path / "site.yaml"
        site_file.write_text(
            "site: {id: estate}\ngateway: {id: gw-1}\n" + head + "devices:\n" + "".join(devices)
        )
        profiles = sorted(p.name for p in (tmp_path / "profiles").iterdir())
        assert profiles == ["bacnet-gh-ahu-200.yaml", "bacnet-gh-chw-2.yaml", "bacnet-gh-smk-2.yaml"]
        site = load_site(site_file)
        by_id = {d.id: d for d in site.devices}
        assert set(by_id) == {"gh-ahu-200-3001", "gh-chw-2-3002", "gh-smk-2-3003"}
        sat = next(p for p in by_id["gh-ahu-200-3001"].points if p.id == "sa-t")
        assert isinstance(sat, BacnetPointConfig)
        assert sat.unit == "°C" and sat.units == "degrees-celsius"

        samples: list[Sample] = []
        events: list[Event] = []

        async def sink(batch: list[Sample]) -> None:
            samples.extend(batch)

        async def on_event(event: Event) -> None:
            events.append(event)

        async with build_devices(site, sink=sink, events=on_event, clock=SystemClock()) as built:
            tasks = [asyncio.create_task(c.run()) for c in built.coordinators.values()]
            try:
                await wait_until(
                    lambda: (
                        {s.point_id.split("/")[1] for s in samples if s.quality is Quality.GOOD} >= set(by_id)
                    ),
                    timeout_s=30,
                    message="values from the three discovered devices",
                )
                # a verified write through the coordinator, as a linkage step makes it, and the
                # restore's relinquish (its read-back echoes the request when the slot is empty)
                fans = built.coordinators["gh-smk-2-3003"]
                assert await fans.write("sef1-c", True) is True
                assert sim.device(3003).priority_array("binary-output,1")[7] is not None
                assert await fans.write("sef1-c", "relinquish") == "relinquish"
                assert sim.device(3003).priority_array("binary-output,1")[7] is None
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        assert [e.kind for e in events if e.source == "gh-ahu-200-3001"] == ["device.online"]


def test_no_answer_says_how_to_direct_who_is(tmp_path: Path) -> None:
    from tests.support import free_port

    argv = [
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--target",
        f"127.0.0.1:{free_port()}",
        "--wait-s",
        "0.3",
    ]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(argv) == 1
    assert "no device answered" in stderr.getvalue()
