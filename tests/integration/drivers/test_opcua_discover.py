"""Discovery against the plant simulator: the fragment it writes passes the site loader, and the
gateway's wiring runs it over SignAndEncrypt with values arriving."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

from core.model import Event, Quality, Sample, SystemClock
from drivers.opcua.certs import load_der
from drivers.opcua.discover import main
from edge.config.loader import load_site
from edge.wiring import build_devices
from simulators.opcua import LiftGroup, OpcUaSimulator, PumpStation
from tests.support import wait_until


async def test_discovered_fragment_loads_and_runs_over_sign_and_encrypt(tmp_path: Path) -> None:
    models = [PumpStation(), LiftGroup(cars=2, floors=6)]
    async with OpcUaSimulator(models, pki_dir=tmp_path / "sim", tick_s=0.5) as sim:
        trusted = tmp_path / "pki" / "opcua" / "trusted"
        trusted.mkdir(parents=True)
        (trusted / "simulator.der").write_bytes(load_der(sim.certificate_path))
        (tmp_path / "opcua.pass").write_text("operator-pass\n")
        argv = [
            sim.endpoint,
            *("--username", "operator", "--password-file", "opcua.pass"),
            *("--site-dir", str(tmp_path), "--out", str(tmp_path / "fragment.yaml"), "--bus-id", "plant"),
        ]
        assert await asyncio.to_thread(main, argv) == 0
        fragment = (tmp_path / "fragment.yaml").read_text()
        assert 'root: "2:PumpStation1"' in fragment and 'unit: "MPa"' in fragment
        site_file = tmp_path / "site.yaml"
        site_file.write_text("site: {id: estate}\ngateway: {id: gw-1}\n" + fragment)
        site = load_site(site_file)
        by_id = {d.id: d for d in site.devices}
        assert set(by_id) == {"pump_station1", "lift_group1"}
        pressure = next(p for p in by_id["pump_station1"].points if p.id == "pressure")
        assert pressure.unit == "MPa"
        assert {p.id for p in by_id["lift_group1"].points} >= {"car1_floor", "car2_door", "fire_recall"}

        samples: list[Sample] = []
        events: list[Event] = []

        async def sink(batch: list[Sample]) -> None:
            samples.extend(batch)

        async def on_event(event: Event) -> None:
            events.append(event)

        async with build_devices(site, sink=sink, events=on_event, clock=SystemClock()) as devices:
            tasks = [asyncio.create_task(c.run()) for c in devices.coordinators.values()]
            try:
                await wait_until(
                    lambda: (
                        {s.point_id.split("/")[1] for s in samples if s.quality is Quality.GOOD}
                        >= {"pump_station1", "lift_group1"}
                    ),
                    timeout_s=60,
                    message="values from both discovered devices",
                )
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        assert [e.kind for e in events if e.source == "pump_station1"] == ["device.online"]
        assert sim.counts.activated == 2  # discovery, then the gateway: both over SignAndEncrypt
        assert sim.counts.refused_insecure == 0


def test_discovery_reports_a_refused_server_certificate(tmp_path: Path) -> None:
    async def run() -> int:
        async with OpcUaSimulator([PumpStation()], pki_dir=tmp_path / "sim", tick_s=3600) as sim:
            argv = [sim.endpoint, "--site-dir", str(tmp_path), "--out", str(tmp_path / "f.yaml")]
            return await asyncio.to_thread(main, argv)

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = asyncio.run(run())
    assert code == 2
    assert "copy " in stderr.getvalue() and "trust dir" in stderr.getvalue()
    assert not (tmp_path / "f.yaml").exists()
