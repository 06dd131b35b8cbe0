"""`gatehouse run` with a dashboard: it serves, keeps the gateway's signal handling, and stops
cleanly on SIGTERM even with an event stream open."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from edge.dashboard.setup_code import read_setup_code
from tests.integration.dashboard.test_gateway_dashboard import _site
from tests.integration.edge.daemon_support import simulator, start_gateway, stop
from tests.support import free_port, wait_until
from tests.unit.dashboard.sse import next_event, sse_events

XHR = {"X-Requested-With": "gatehouse"}


async def test_sigterm_stops_the_daemon_with_an_open_event_stream(tmp_path: Path) -> None:
    port, web = free_port(), free_port()
    sim_site = _site(tmp_path / "sim.yaml", port=port, data_dir=tmp_path / "sim", dashboard=None)
    site = _site(
        tmp_path / "site.yaml", port=port, data_dir=tmp_path / "gw", dashboard={"listen": f"127.0.0.1:{web}"}
    )
    log = tmp_path / "gateway.log"
    with simulator(sim_site, port, tmp_path / "sim.log"):
        proc = start_gateway(site, log)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web}", timeout=30.0) as client:

                async def up() -> bool:
                    assert proc.poll() is None, log.read_text()
                    try:
                        return (await client.get("/api/session")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(up, message="the dashboard answering")
                code = read_setup_code(tmp_path / "gw")
                assert code is not None and code in log.read_text()  # printed on the console too
                setup = {"username": "admin", "password": "a-long-password", "code": code}
                assert (await client.post("/api/setup", json=setup, headers=XHR)).status_code == 201
                async with client.stream("GET", "/api/events") as response:
                    stream = sse_events(response)
                    await next_event(stream, "hello")
                    proc.send_signal(signal.SIGTERM)
                    # The server ends the stream as it stops.
                    async with asyncio.timeout(30):
                        async for _ in stream:
                            pass
            code = await asyncio.to_thread(proc.wait, 30)
            assert code == 0, log.read_text()
            assert "dashboard stopped" in log.read_text()
        finally:
            stop(proc)
