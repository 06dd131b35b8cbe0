"""`gatehouse run` speaks systemd's notify protocol to a real AF_UNIX datagram socket.

The socket stands in for systemd: READY=1 must come only once the devices run, the outbox is
open and the dashboard listens; WATCHDOG=1 at half of WATCHDOG_USEC; STATUS= with the counts;
STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.integration.edge.daemon_support import GATEHOUSE, meter, simulator, stop, write_site
from tests.support import free_port, wait_until_sync


class FakeSystemd:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def drain(self) -> list[tuple[float, dict[str, str]]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def first(self, key: str) -> dict[str, str] | None:
        return next((m for _, m in self.drain() if key in m), None)


@pytest.fixture
def fake_systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.sock.close()


def test_ready_watchdog_status_and_stopping(tmp_path: Path, fake_systemd: FakeSystemd) -> None:
    port = free_port()
    dash_port = free_port()
    data = tmp_path / "data"
    site = write_site(
        tmp_path / "site.yaml", port=port, devices=[meter("m1", 1), meter("m2", 2)], data_dir=data
    )
    yaml = YAML()
    doc = yaml.load(site.read_text())
    doc["dashboard"] = {"listen": f"127.0.0.1:{dash_port}"}
    with site.open("w") as fh:
        yaml.dump(doc, fh)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        "WATCHDOG_USEC": "1000000",  # feed every 0.5 s
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "gw.log"
    with simulator(site, port, tmp_path / "sim.log"), log.open("wb") as out:
        gw = subprocess.Popen(
            [*GATEHOUSE, "run", "--config", str(site)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            ready = wait_until_sync(lambda: fake_systemd.first("READY"), timeout_s=60, message="READY=1")
            # At READY the outbox is open and the dashboard answers.
            assert (data / "outbox.db").exists()
            # It answers: healthy (200), or not yet (503: devices still coming up) — never refused.
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/healthz", timeout=10) as resp:
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            assert status in (200, 503)
            assert ready["READY"] == "1"
            assert ready["MAINPID"] == str(gw.pid)
            assert ready["STATUS"].startswith("2 devices")

            def watchdogs() -> list[float]:
                return [t for t, m in fake_systemd.drain() if m.get("WATCHDOG") == "1"]

            wait_until_sync(lambda: len(watchdogs()) >= 4, timeout_s=30, message="four WATCHDOG=1")
            stamps = watchdogs()
            gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
            assert max(gaps) < 1.0, gaps  # inside WATCHDOG_USEC, so systemd never fires

            def status_online() -> bool:
                return any("2 online" in m.get("STATUS", "") for _, m in fake_systemd.drain())

            wait_until_sync(status_online, message="STATUS with both devices online")
            assert any("backlog event" in m.get("STATUS", "") for _, m in fake_systemd.drain())
        finally:
            code = stop(gw)
    assert code == 0
    wait_until_sync(lambda: fake_systemd.first("STOPPING"), message="STOPPING=1")


def test_wedged_loop_stops_feeding_the_watchdog(tmp_path: Path, fake_systemd: FakeSystemd) -> None:
    """A blocked event loop sends nothing: systemd's timer runs out and it restarts the daemon."""
    script = (
        "import asyncio, time\n"
        "from edge.sd_notify import Notifier, watchdog_loop\n"
        "async def main():\n"
        "    n = Notifier()\n"
        "    t = asyncio.create_task(watchdog_loop(n, 0.1))\n"
        "    await asyncio.sleep(0.5)\n"
        "    n.send(MARK='wedged')\n"
        "    time.sleep(1.5)\n"  # the loop is wedged: no task runs
        "    n.send(MARK='free')\n"
        "    t.cancel()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    subprocess.run([GATEHOUSE[0], "-c", script], env=env, check=True, timeout=30)
    kinds = [next(iter(m)) if "MARK" not in m else m["MARK"] for _, m in fake_systemd.drain()]
    wedged, free = kinds.index("wedged"), kinds.index("free")
    assert kinds[:wedged].count("WATCHDOG") >= 3
    assert "WATCHDOG" not in kinds[wedged:free]
