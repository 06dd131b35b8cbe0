"""Run an Uplink in its own process (for kill -9 tests): ``python -m tests.integration.sync.uplink_process
CONFIG.json``. The config is UplinkConfig's JSON; the store is in memory with a few rows."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from cloud_sync.ports import Lane
from cloud_sync.uplink import Uplink, UplinkConfig
from tests.integration.sync.helpers import events
from tests.unit.cloud_sync.fake_store import MemoryBatchStore


async def run(config: UplinkConfig) -> None:
    store = MemoryBatchStore()
    store.add(Lane.EVENT, events(2))
    async with Uplink(config, store=store):
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(run(UplinkConfig.model_validate_json(Path(sys.argv[1]).read_text())))
