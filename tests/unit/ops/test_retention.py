"""Retention per data class: validated in the site file, purged by age, shown by buffer stats."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from core.errors import ConfigError
from edge.cli import main
from edge.config.loader import load_site
from edge.retention import retention_report, sweep

SITE = """site: {{id: ret}}
gateway: {{id: gw-r, data_dir: {data}}}
buses:
  - {{id: cp, type: modbus_tcp, host: 127.0.0.1, port: 1502}}
devices:
  - {{id: barrier-in, bus: cp, unit: 1, profile: vehicle-barrier}}
  - {{id: meter, bus: cp, unit: 2, profile: eastron-sdm630}}
dashboard: {{listen: '127.0.0.1:0'}}
{extra}
"""
DAY = 86400.0


def _site(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(data=tmp_path / "data", extra=extra), encoding="utf-8")
    return path


def test_less_than_180_days_for_alarms_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_site(_site(tmp_path, "retention: {alarms_days: 30, passage_days: 200}"))
    text = "\n".join(str(p) for p in err.value.problems)
    assert "retention.alarms_days" in text and "180" in text
    assert "retention.passage_days" in text  # a misspelt key


def test_sweep_keeps_each_class_for_its_time(tmp_path: Path) -> None:
    site = load_site(_site(tmp_path, "retention: {alarms_days: 200, passages_days: 400}"))
    data = Path(site.data_dir)
    data.mkdir()
    now = time.time()
    with contextlib.closing(sqlite3.connect(data / "rules.db")) as conn:
        conn.execute("CREATE TABLE alarm_history (id INTEGER PRIMARY KEY, ts REAL)")
        conn.execute("CREATE TABLE linkage_log (id INTEGER PRIMARY KEY, ts REAL)")
        conn.executemany(
            "INSERT INTO alarm_history (ts) VALUES (?)", [(now - 199 * DAY,), (now - 201 * DAY,)]
        )
        conn.commit()
    with contextlib.closing(sqlite3.connect(data / "dashboard.db")) as conn:
        conn.execute("CREATE TABLE trend (point TEXT, bucket REAL, n INTEGER, min REAL, avg REAL, max REAL)")
        rows = [
            ("ret/barrier-in/passages", now - 300 * DAY),  # passage record, inside 400 days
            ("ret/barrier-in/passages", now - 401 * DAY),  # past it
            ("ret/gone/x", now - 10 * DAY),  # a device deleted 200 days ago
        ]
        conn.executemany("INSERT INTO trend VALUES (?, ?, 1, 0, 0, 0)", rows)
        conn.commit()
    (data / "deleted-devices.json").write_text(json.dumps({"gone": now - 200 * DAY}))
    assert sweep(site, now) == {"alarms": 1, "passages": 1, "deleted_devices": 1}
    report = retention_report(site)
    assert report["alarms"]["rows"] == 1 and report["alarms"]["keep_days"] == 200
    assert report["passages"]["rows"] == 1 and report["passages"]["devices"] == 1


def test_buffer_stats_shows_retention(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from edge.outbox import Outbox

    site = load_site(_site(tmp_path))

    async def make() -> None:
        async with Outbox(site.outbox_path):
            pass

    asyncio.run(make())
    assert main(["buffer", "stats", "--config", str(site.path)]) == 0
    out = capsys.readouterr().out
    assert "alarms              365 days" in out and "passages            180 days" in out
    assert main(["buffer", "stats", "--config", str(site.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["retention"]["telemetry"]["quota_bytes"] > 0
