"""kill -9 of a process writing through the outbox loses no sample whose flush had returned,
and never makes it hand out a batch sequence number twice."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from tests.integration.outbox.writer_proc import numbered
from tests.support import wait_until_sync

REPO = Path(__file__).resolve().parents[3]
CYCLES = 6


def _start(db: Path, first: int) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.outbox.writer_proc", str(db), str(first)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(proc.stdout)

    reader = threading.Thread(target=read, name="writer-stdout", daemon=True)
    reader.start()
    return proc, lines, reader


def _acks_at_least(proc: subprocess.Popen[str], lines: list[str], want: int) -> Callable[[], bool]:
    def enough() -> bool:
        return sum(line.startswith("ACK ") for line in lines) >= want or proc.poll() is not None

    return enough


def _stored(db: Path) -> dict[int, tuple[str, int, int, float, float]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute(
            "SELECT p.point_id, t.value, t.flags, t.receipt_ts, t.source_ts"
            " FROM telemetry t JOIN points p ON p.id = t.point"
        ).fetchall()
    finally:
        conn.close()
    by_number: dict[int, tuple[str, int, int, float, float]] = {}
    for row in rows:
        assert row[1] not in by_number, f"sample {row[1]} stored twice"
        by_number[row[1]] = row
    return by_number


def test_kill_9_loses_no_acknowledged_sample(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    rng = random.Random()
    first = 0
    acknowledged = -1
    seals: list[int] = []
    for _cycle in range(CYCLES):
        proc, lines, reader = _start(db, first)
        try:
            want = rng.randint(4, 25)  # from the fourth ACK on, a SEAL has been printed
            wait_until_sync(_acks_at_least(proc, lines, want), message="acknowledged flushes")
            assert proc.poll() is None, "the writer died on its own"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        reader.join(timeout=30)
        acks = [line for line in lines if line.startswith("ACK ") and line.endswith("\n")]
        assert acks
        acknowledged = int(acks[-1].split()[1])
        seals.extend(
            int(line.split()[1]) for line in lines if line.startswith("SEAL ") and line.endswith("\n")
        )

        stored = _stored(db)
        for n in range(acknowledged + 1):
            expected = numbered(n)
            assert n in stored, f"sample {n} was acknowledged but is gone"
            point, value, flags, receipt_ts, source_ts = stored[n]
            assert (point, value, flags, receipt_ts, source_ts) == (
                expected.point_id,
                n,
                0,
                expected.receipt_ts,
                expected.source_ts,
            )
        first = max(stored) + 1
    assert acknowledged > 0
    # Batch sequence numbers went up across every kill: none was handed out twice.
    assert len(seals) >= CYCLES
    assert seals == sorted(set(seals)), seals
