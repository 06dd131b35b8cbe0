"""A database written by schema v1 (``tests/fixtures/outbox/v1.db``) opens and reads unchanged."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

from cloud_sync.ports import Lane, SealMode
from edge.outbox import Outbox, migrations
from tests.integration.outbox.helpers import T0, sealer, unseal

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "outbox" / "v1.db"


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()


def test_the_v1_step_still_builds_the_v1_schema() -> None:
    """Released steps are never edited: v1 applied to an empty database gives the fixture's schema."""
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    migrations.MIGRATIONS[0](fresh)
    fixture = sqlite3.connect(f"{FIXTURE.as_uri()}?mode=ro", uri=True)
    try:
        assert _schema(fresh) == _schema(fixture)
        assert fixture.execute("PRAGMA user_version").fetchone() == (1,)
    finally:
        fixture.close()


async def test_a_v1_database_opens_with_its_batches_and_rows_intact(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    shutil.copyfile(FIXTURE, db)
    async with Outbox(db) as ob:
        [telemetry] = await ob.pending(Lane.TELEMETRY)
        assert (telemetry.seq, telemetry.record_count) == (1, 2)
        assert [r[:2] for r in unseal(telemetry.payload)["rows"]] == [
            ["estate/meter-1/kwh", 1234.5],
            ["estate/meter-1/online", True],
        ]
        [events] = await ob.pending(Lane.EVENT)
        assert unseal(events.payload)["rows"] == [
            ["alarm.raised", "estate/tank-1/level", T0 + 7, {"priority": "high", "value": 0.2}]
        ]

        batch = await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
        assert batch is not None and batch.seq == 2
        rows = unseal(batch.payload)["rows"]
        assert rows[0] == ["estate/tank-1/level", None, 2, "comm_failure", T0 + 3, None]
        assert rows[1] == ["estate/tank-1/mode", "auto", 1, "stale", T0 + 4, T0 + 3.5]
        assert rows[2][0] == "estate/tank-1/ph" and math.isnan(rows[2][1]) and rows[2][3] == "out_of_range"
        assert rows[3] == ["estate/lift-1/floor", -2, 0, "", T0 + 6, None]

        batch = await ob.seal(Lane.EVENT, mode=SealMode.BACKLOG, max_records=100, sealer=sealer)
        assert batch is not None and batch.seq == 2
        assert unseal(batch.payload)["rows"] == [["device.offline", "estate/lift-1", T0 + 8, {}]]
    assert migrations.CURRENT_VERSION >= 1
