"""The real ``gatehouse run`` daemon as a child process, for tests that stop, pause or restart it.

The package estate (conftest.py) runs the gateway inside the test's event loop, which cannot be
paused or killed on its own. Here the gateway is a separate process on a copy of a site folder
(``tests/fixtures/sites/duty-zones``), its simulators in the test process, so a test can:

* stop it (SIGTERM) and start it again on the same data folder and port;
* freeze it (SIGSTOP): its sockets stay open but silent, as when a network path stalls — the
  event stream neither sends nor closes;
* resume it (SIGCONT).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from edge.config.loader import load_site
from simulators.runner import SimulationRunner
from simulators.site_plan import read_site_plan
from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
DUTY_ZONES = ROOT / "tests" / "fixtures" / "sites" / "duty-zones"


def copy_site(tmp: Path, source: Path = DUTY_ZONES) -> tuple[Path, int]:
    """The site folder in ``tmp`` with every port free; returns (site file, dashboard port)."""
    folder = tmp / "site"
    shutil.copytree(source, folder)
    path = folder / "site.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"port: 151\d\d", lambda _m: f"port: {free_port()}", text)
    dashboard_port = free_port()
    text = re.sub(r"listen: 127\.0\.0\.1:\d+", f"listen: 127.0.0.1:{dashboard_port}", text)
    path.write_text(text, encoding="utf-8")
    return path, dashboard_port


@dataclass
class Daemon:
    site: Path
    url: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def data_dir(self) -> Path:
        """The gateway's data folder (where it writes the dashboard's setup code)."""
        return load_site(self.site).data_dir

    async def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        out = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own CLI; Popen returns at once
            [sys.executable, "-m", "edge", "run", "--config", str(self.site), "--log-level", "warning"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        await wait_until(self._answers, timeout_s=60, message=f"the gateway answering at {self.url}")

    async def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = self.log.read_text()[-2000:]
            raise AssertionError(f"gatehouse run exited with {self.proc.returncode}: {log}")
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                response = await client.get(f"{self.url}/api/session")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if self.paused:
            self.resume()
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)

    paused: bool = False

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False


@dataclass
class DutySite:
    daemon: Daemon
    sim: SimulationRunner
    api: httpx.AsyncClient
    site_id: str

    async def inject(self, device: str, scenario: str, **params: Any) -> None:
        response = await self.api.post(f"/devices/{device}/scenarios/{scenario}", json=params)
        assert response.status_code == 200, response.text

    async def clear(self, device: str) -> None:
        response = await self.api.delete(f"/devices/{device}/scenarios")
        assert response.status_code == 200, response.text


@asynccontextmanager
async def duty_site(
    tmp: Path, *, offline: tuple[str, ...] = ("fan-b-roof-1", "fan-b-roof-2")
) -> AsyncIterator[DutySite]:
    """Simulators for every device but ``offline`` (their bus is dead), and the daemon."""
    site, port = copy_site(tmp)
    plan = read_site_plan(site)
    devices = [d for d in plan.devices if d.id not in offline]
    daemon = Daemon(site, f"http://127.0.0.1:{port}", tmp / "gateway.log")
    async with (
        SimulationRunner(devices, tick_s=0.5, control_port=free_port()) as sim,
        httpx.AsyncClient(base_url=sim.control_url, timeout=30.0) as api,
    ):
        try:
            await daemon.start()
            yield DutySite(daemon, sim, api, "tower-b")
        finally:
            await daemon.stop()
