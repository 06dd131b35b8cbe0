"""`gatehouse buffer stats` reads a live outbox without disturbing it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_sync.ports import Lane, SealMode
from edge.cli import main
from edge.outbox import Outbox
from tests.integration.outbox.helpers import T0, event, sample, sealer

REPO = Path(__file__).resolve().parents[3]


async def test_stats_of_a_running_outbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "outbox.db"
    async with Outbox(db, quota_bytes=5_000_000) as ob:
        await ob.put_samples([sample(n) for n in range(120)])
        await ob.put_event(event(1))
        await ob.flush()
        await ob.seal(Lane.TELEMETRY, mode=SealMode.BACKLOG, max_records=20, sealer=sealer)
        capsys.readouterr()

        assert main(["buffer", "stats", "--db", str(db), "--json"]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert stats["quota_bytes"] == 5_000_000
        assert stats["telemetry_refused"] is False
        assert stats["lanes"]["telemetry"] | {"batch_bytes": 0, "row_bytes": 0} == {
            "rows": 100,
            "row_bytes": 0,
            "batches": 1,
            "batch_bytes": 0,
            "oldest_ts": T0,
            "last_seq": 1,
        }
        assert stats["lanes"]["event"]["rows"] == 1

        assert main(["buffer", "stats", "--db", str(db)]) == 0
        text = capsys.readouterr().out
        assert "telemetry" in text and "2026-01-01T00:00:00+00:00" in text

        # The writer is undisturbed by the reader.
        await ob.put_sample(sample(1_000))
        await ob.flush()


def test_stats_of_a_missing_database_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edge", "buffer", "stats", "--db", str(tmp_path / "none.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "no outbox database" in done.stderr


async def test_stats_finds_the_outbox_through_the_site_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site:\n  id: estate-a\ngateway:\n  id: gw-1\n  data_dir: data\noutbox:\n  path: buffer/outbox.db\n",
        encoding="utf-8",
    )
    db = tmp_path / "buffer" / "outbox.db"
    async with Outbox(db) as ob:
        await ob.put_event(event(1))
        await ob.flush()
    capsys.readouterr()
    assert main(["buffer", "stats", "--config", str(site), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["path"] == str(db.resolve())
    assert stats["lanes"]["event"]["rows"] == 1
