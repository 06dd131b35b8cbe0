"""A gateway that dies (kill -9) is announced offline by the broker through its Last Will."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.broker import Broker
from tests.integration.sync.fake_central import FakeCentral
from tests.integration.sync.helpers import signing_key, uplink_config
from tests.support import wait_until

GW = "gw-a"
ROOT = Path(__file__).resolve().parents[3]


def last_state(central: FakeCentral) -> str | None:
    mine = [json.loads(p) for g, p in central.states if g == GW]
    return mine[-1]["state"] if mine else None


async def test_killed_gateway_goes_offline_by_last_will(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    config = uplink_config(broker, key_path)
    config_path = tmp_path / "uplink.json"
    # The password is a SecretStr: write it out in clear for the child process.
    data = json.loads(config.model_dump_json())
    data["password"] = config.password.get_secret_value() if config.password else None
    config_path.write_text(json.dumps(data))
    async with FakeCentral(broker, {GW: key.public_key()}) as central:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.sync.uplink_process",
            str(config_path),
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await wait_until(lambda: last_state(central) == "online", message="gateway online")
            await wait_until(lambda: len(central.arrivals) >= 1, message="its events")
            proc.kill()  # SIGKILL: no clean disconnect, so the broker sends the Will
            await asyncio.wait_for(proc.wait(), timeout=30)
            await wait_until(lambda: last_state(central) == "offline", message="the Last Will")
        finally:
            if proc.returncode is None:
                proc.kill()
                await asyncio.wait_for(proc.wait(), timeout=30)
