"""The real daemon (`gatehouse run`) against the real simulator, as separate processes."""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from pathlib import Path

from tests.integration.edge.daemon_support import (
    events,
    meter,
    simulator,
    start_gateway,
    stop,
    telemetry,
    write_site,
)
from tests.support import free_port, wait_until_sync


def test_run_polls_fills_the_outbox_and_flushes_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    site = write_site(tmp_path / "site.yaml", port=port, devices=[meter("m1", 1)], data_dir=data)
    db = data / "outbox.db"
    with simulator(site, port, tmp_path / "sim.log"):
        gw = start_gateway(site, tmp_path / "gw.log")
        try:
            wait_until_sync(
                lambda: (
                    {p for _, p, _ in telemetry(db)}
                    >= {"testsite/m1/voltage_l1", "testsite/m1/energy_import"}
                ),
                message="meter values in the outbox",
            )
            assert ("device.online", "m1", {}) in events(db)
        finally:
            code = stop(gw)
    assert code == 0
    log = (tmp_path / "gw.log").read_text()
    assert "outbox flushed" in log
    # every log line is JSON, the libraries' included
    import json

    for line in log.splitlines():
        json.loads(line)


def test_sighup_reloads_a_valid_site_and_keeps_running_on_an_invalid_one(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    site_path = tmp_path / "site.yaml"
    both = [meter("m1", 1), meter("m2", 2)]
    # The simulator serves both meters from the start; the gateway first knows only m1.
    sim_site = write_site(tmp_path / "sim.yaml", port=port, devices=both, data_dir=data)
    write_site(site_path, port=port, devices=[meter("m1", 1)], data_dir=data)
    db = data / "outbox.db"
    with simulator(sim_site, port, tmp_path / "sim.log"):
        gw = start_gateway(site_path, tmp_path / "gw.log")
        try:
            wait_until_sync(lambda: ("device.online", "m1", {}) in events(db), message="m1 online")

            write_site(site_path, port=port, devices=both, data_dir=data)
            gw.send_signal(signal.SIGHUP)
            wait_until_sync(lambda: ("device.online", "m2", {}) in events(db), message="m2 after reload")

            site_path.write_text(site_path.read_text().replace("unit: 2", "unit: 'two'"))
            gw.send_signal(signal.SIGHUP)
            log = tmp_path / "gw.log"
            wait_until_sync(lambda: "reload refused" in log.read_text(), message="reload refused")
            assert gw.poll() is None
            seen = len(telemetry(db))
            wait_until_sync(lambda: len(telemetry(db)) > seen, message="polling goes on")
            assert "unit" in log.read_text()
        finally:
            assert stop(gw) == 0


def test_kill_9_loses_no_committed_sample(tmp_path: Path) -> None:
    """Every row a reader saw committed before a SIGKILL is still there, intact, afterwards."""
    port = free_port()
    data = tmp_path / "data"
    devices = [meter(f"m{i}", i, interval_s=0.05) for i in range(1, 4)]
    site = write_site(tmp_path / "site.yaml", port=port, devices=devices, data_dir=data)
    db = data / "outbox.db"
    rng = random.Random(7)
    seen: dict[int, tuple[str, float]] = {}
    with simulator(site, port, tmp_path / "sim.log"):
        for _cycle in range(6):
            gw = start_gateway(site, tmp_path / "gw.log")
            before = len(seen)
            wait_until_sync(
                lambda before=before: len(telemetry(db)) > before + 50, message="new rows this cycle"
            )
            # Kill at a random moment while rows keep arriving.
            deadline = time.monotonic() + rng.uniform(0.05, 0.6)
            while time.monotonic() < deadline:
                for row_id, point, ts in telemetry(db):
                    seen[row_id] = (point, ts)
            stop(gw, signal.SIGKILL)
            after = {row_id: (point, ts) for row_id, point, ts in telemetry(db)}
            missing = [row_id for row_id in seen if row_id not in after]
            assert not missing, f"{len(missing)} committed rows lost"
            assert all(after[row_id] == value for row_id, value in seen.items())
            conn = sqlite3.connect(db)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            finally:
                conn.close()
