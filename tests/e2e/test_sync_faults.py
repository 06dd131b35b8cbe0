"""Faults on the way to central, with the real daemon (`gatehouse run`), Mosquitto and central.

* central stopped while the broker stays up: the gateway keeps every sealed batch until central is
  back and has acknowledged it, and what it resent meanwhile is stored once;
* the gateway killed with SIGKILL at random moments over 20+ cycles: afterwards central holds every
  sample and event the outbox ever committed, once, under contiguous sequence numbers, each batch
  byte-identical to what the outbox sealed (tests/integration/sync/e2e_support.py).
"""

from __future__ import annotations

import random
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.integration.sync.e2e_support import sync_rig

pytestmark = pytest.mark.slow

KILL_CYCLES = 20


def _audit_count(db: Path, reason: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        count: int = conn.execute("SELECT count(*) FROM rejected WHERE reason = ?", (reason,)).fetchone()[0]
    return count


async def test_central_down_gateway_keeps_batches_until_central_acknowledges(tmp_path: Path) -> None:
    async with sync_rig(tmp_path) as rig:
        rig.start_gateway()
        await rig.wait(lambda: rig.stored_batches() >= 3, message="batches flowing before central stops")
        await rig.stop_central()
        stored_before = rig.stored_batches()
        # An ack already on its way when central stopped may still delete a batch: start watching
        # once the outbox holds batches that central has certainly never seen.
        await rig.wait(lambda: len(rig.watcher.pending_batches()) >= 4, message="batches waiting")
        held = rig.watcher.pending_batches()
        # Longer than the uplink's ack timeout (5 s): unacknowledged batches are resent meanwhile.
        for _ in range(4):
            await rig.watch_for(2.0)
            pending = rig.watcher.pending_batches()
            assert held <= pending, f"deleted without central's ack: {sorted(held - pending)}"
            held = pending
        assert len(held) >= 8, "the gateway kept sealing while central was away"
        assert rig.stored_batches() == stored_before

        await rig.start_central()
        await rig.wait(
            lambda: not held & rig.watcher.pending_batches(),
            message="the held batches deleted after central acknowledged them",
            timeout_s=90,
        )
        await rig.settle_and_check()
        # The resends queued at the broker for central arrived as duplicates and stored nothing.
        assert _audit_count(rig.central_config.database, "duplicate") >= 1


async def test_kill_9_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    async with sync_rig(tmp_path) as rig:
        for cycle in range(KILL_CYCLES):
            rig.start_gateway()
            if rng.random() < 0.25:
                # Early: while it starts, connects or seals its first batches.
                await rig.watch_for(rng.uniform(0.2, 1.5))
            else:
                before = rig.stored_batches()
                await rig.wait(
                    lambda before=before: rig.stored_batches() > before,  # type: ignore[misc]
                    message=f"cycle {cycle}: this run's batches reaching central",
                )
                await rig.watch_for(rng.uniform(0.0, 0.8))
            rig.stop_gateway(signal.SIGKILL)
            rig.watcher.poll()
        rig.start_gateway()
        contents = await rig.settle_and_check()
        assert rig.starts == KILL_CYCLES + 1
        # The comparison means something only if the watcher saw a good part of the traffic.
        assert len(rig.watcher.samples) >= 200, len(rig.watcher.samples)
        assert len(contents.samples) >= len(rig.watcher.samples)
