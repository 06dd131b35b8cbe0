"""A site file pushed by central (issue 15 item 5): refused with its lines when it does not check,
applied when it does, and rolled back on its own when it starts but cannot poll."""

from __future__ import annotations

import re
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.commands import Command
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.keys import key_id
from edge.commands import CommandExecutor, GatewayCommandHost
from edge.config_push import ConfigPush, read_version, recover_interrupted_push
from tests.integration.rules.support import running, simulated
from tests.support import free_port, wait_until

KEY = Ed25519PrivateKey.generate()


class Central:
    def __init__(self) -> None:
        self.signer = DownlinkSigner(KEY, clock_us=lambda: int(time.time() * 1e6))
        self.cseq = 0

    def push(self, text: str, version: str, health_s: int = 30) -> bytes:
        self.cseq += 1
        now = time.time()
        args = {"text": text, "version": version, "health_s": health_s}
        return self.signer.sign_command(
            "gw-rules", Command(f"p{self.cseq}", self.cseq, now, now + 60, "config.push", args, "ops", "hq")
        )


async def test_push_refused_applied_and_rolled_back(tmp_path: Path) -> None:
    central = Central()
    async with simulated(tmp_path) as (path, site, sim, api), running(site) as gateway:
        executor = CommandExecutor(
            GatewayCommandHost(gateway),
            gateway_id="gw-rules",
            central_keys={key_id(KEY.public_key()): KEY.public_key()},
            data_dir=site.data_dir,
            config_push=ConfigPush(gateway),
        )
        original = path.read_text(encoding="utf-8")

        # 1. a mistake: refused with line, column and field; nothing changes
        bad = original.replace("poll_interval_s: 0.5}", "poll_intervl_s: 0.5}", 1)
        result = await executor.handle(central.push(bad, "v2-bad"))
        assert result is not None and result.status == "refused", result
        assert re.search(r"\d+:\d+: devices\[1\]\.poll_intervl_s: unknown key", result.detail), result.detail
        assert path.read_text(encoding="utf-8") == original and gateway.site is site

        # 2. a good file: applied, running, versioned, the old one kept
        good = original.replace("poll_interval_s: 0.5}", "poll_interval_s: 0.4}", 1)
        result = await executor.handle(central.push(good, "v2"))
        assert result is not None and (result.status, result.detail) == ("done", "version v2 running"), result
        assert path.read_text(encoding="utf-8") == good
        assert gateway.site.devices[1].poll_interval_s == 0.4
        assert path.with_name("site.yaml.previous").read_text(encoding="utf-8") == original
        record = read_version(site.data_dir)
        assert (record["version"], record["previous_version"], record["trial"]) == ("v2", None, False)

        # 3. a file that checks but cannot poll (nothing listens on the new port): rolled back
        dead = re.sub(r"port: \d+", f"port: {free_port()}", good, count=1)
        result = await executor.handle(central.push(dead, "v3", health_s=10))
        assert result is not None and result.status == "failed", result
        assert result.detail.startswith("rolled back to the previous configuration: not healthy within 10 s")
        assert "devices not answering: door, fire-panel, lighting" in result.detail
        assert path.read_text(encoding="utf-8") == good
        record = read_version(site.data_dir)
        assert (record["version"], record["rejected_version"], record["trial"]) == ("v2", "v3", False)
        await wait_until(
            lambda: all(gateway.live.device_online.get(d.id) for d in gateway.site.devices),
            timeout_s=30,
            message="polling again after the rollback",
        )


def test_an_interrupted_trial_is_undone_before_the_daemon_loads(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    data = tmp_path / "data"
    data.mkdir()
    site.write_text("new: file\n")
    (tmp_path / "site.yaml.previous").write_text("old: file\n")
    assert not recover_interrupted_push(site, data)  # no trial recorded: nothing to undo
    (data / "config-version.json").write_text('{"version": "v9", "previous_version": "v8", "trial": true}')
    assert recover_interrupted_push(site, data)
    assert site.read_text() == "old: file\n"
    assert read_version(data)["version"] == "v8" and read_version(data)["trial"] is False
