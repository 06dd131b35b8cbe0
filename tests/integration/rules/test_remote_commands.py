"""Central's signed commands on a running gateway with real simulators (issue 15 item 4):
an acknowledgement that names who and from where, a write refused while a fire linkage holds
the point and done once it has restored, and replayed, expired, forged and misaddressed
commands refused — each outcome a ``command.result`` event on the event lane."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.commands import Command
from cloud_sync.downlink import DownlinkSigner, verify_command
from cloud_sync.keys import key_id
from edge.commands import CommandExecutor, GatewayCommandHost
from tests.integration.rules.support import outbox_events, running, runtime_of, simulated
from tests.support import wait_until

RULE = "fire-zone1"
DOOR = "rules-test/door/release"


def _signer(key: Ed25519PrivateKey) -> DownlinkSigner:
    return DownlinkSigner(key, clock_us=lambda: int(time.time() * 1e6))


class Central:
    """Issues commands as central would: its own numbering, signed with its key."""

    def __init__(self, key: Ed25519PrivateKey, gateway_id: str = "gw-rules") -> None:
        self.signer = _signer(key)
        self.gateway_id = gateway_id
        self.cseq = 0

    def command(
        self, action: str, args: dict[str, object], *, ttl_s: float = 60.0, cseq: int | None = None
    ) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        now = time.time()
        command = Command(f"c{cseq}", cseq, now, now + ttl_s, action, args, "duty-li", "10.8.0.5")
        return self.signer.sign_command(self.gateway_id, command)


async def test_signed_commands_on_a_running_gateway(tmp_path: Path) -> None:
    central_key = Ed25519PrivateKey.generate()
    central = Central(central_key)
    async with (
        simulated(tmp_path) as (path, site, sim, api),
        running(site) as gateway,
    ):
        rt = runtime_of(gateway)
        executor = CommandExecutor(
            GatewayCommandHost(gateway),
            gateway_id="gw-rules",
            central_keys={key_id(central_key.public_key()): central_key.public_key()},
            data_dir=site.data_dir,
        )
        (
            await api.post("/devices/fire-panel/scenarios/fire", json={"zone": 1, "detectors": 2})
        ).raise_for_status()
        await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "active", message="linkage done")
        fire = next(row for row in rt.active_alarms() if "zone1_fire" in row["key"])

        # acknowledged from central: the alarm says who, and from where
        result = await executor.handle(central.command("alarm.ack", {"key": fire["key"], "comment": "seen"}))
        assert result is not None and result.status == "done", result
        assert next(r for r in rt.active_alarms() if r["key"] == fire["key"])["state"] == "acknowledged"
        await rt.flush()
        acks = [
            h
            for h in rt.history(limit=20)
            if h["key"] == fire["key"] and "duty-li@central (10.8.0.5)" in str(h)
        ]
        assert acks, rt.history(limit=5)

        # the door is held by the running fire linkage: the write is refused, with the reason
        write = central.command("point.write", {"point": DOOR, "value": False})
        result = await executor.handle(write)
        assert result is not None and (result.status, result.detail) == (
            "refused",
            f"point is held by fire linkage {RULE!r}",
        )
        assert sim.device("door").values()["release"] is True

        # the same bytes again: a replay, refused without running
        result = await executor.handle(write)
        assert result is not None and (result.status, result.detail) == ("refused", "replay")

        # expired on the way; signed by a key that is not central's; for another gateway
        result = await executor.handle(
            central.command("point.write", {"point": DOOR, "value": False}, ttl_s=-1)
        )
        assert result is not None and (result.status, result.detail) == ("refused", "expired")
        forged = Central(Ed25519PrivateKey.generate()).command("point.write", {"point": DOOR, "value": False})
        assert await executor.handle(forged) is None
        other = Central(central_key, gateway_id="gw-other").command(
            "point.write", {"point": DOOR, "value": False}
        )
        assert await executor.handle(other) is None
        assert executor.rejected["unknown_key"] == 1 and executor.rejected["wrong_gateway"] == 1

        # fire reset and restored: now the write runs through the coordinator, with read-back
        (await api.delete("/devices/fire-panel/scenarios")).raise_for_status()
        await gateway.write("fire-panel", "reset", True, verify=False)
        await wait_until(lambda: rt.engine.linkage[RULE].state.phase == "idle", message="restored")
        result = await executor.handle(central.command("point.write", {"point": DOOR, "value": True}))
        assert result is not None and result.status == "done", result
        await wait_until(lambda: sim.device("door").values()["release"] is True, message="door written")
        assert rt.engine.io.overridden.get(DOOR, "").startswith("duty-li@central")

        # a point that is not on this gateway is refused, not failed
        result = await executor.handle(
            central.command("point.write", {"point": "rules-test/nope/x", "value": 1})
        )
        assert result is not None and result.status == "refused" and "no point" in result.detail

    # the record survives a restart: the same bytes are still a replay for a new executor
    keys = {key_id(central_key.public_key()): central_key.public_key()}
    again = CommandExecutor(
        GatewayCommandHost(gateway), gateway_id="gw-rules", central_keys=keys, data_dir=site.data_dir
    )
    assert (
        again.window.check(verify_command(write, keys=keys, gateway_id="gw-rules").command, time.time())
        == "replay"
    )

    results = [d for _, _, d in outbox_events(site, "command.result")]
    assert [(d["action"], d["status"]) for d in results] == [
        ("alarm.ack", "done"),
        ("point.write", "refused"),
        ("point.write", "refused"),
        ("point.write", "refused"),
        ("point.write", "done"),
        ("point.write", "refused"),
    ]
    assert all(d["by"] == "duty-li" and d["from"] == "10.8.0.5" for d in results)
