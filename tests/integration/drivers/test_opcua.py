"""The OPC UA driver against the plant simulator (a real asyncua server on 127.0.0.1).

Secure handshakes are CPU-heavy on a shared 2-core machine: only the tests about security open
secure sessions; the others run the simulator in its explicit insecure mode.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import BadSecurityModeRejected

from core.errors import DeviceError
from core.model import Event, Quality, Reason, Sample, SystemClock
from drivers.base import LinkState, Reading
from drivers.config_base import ReportPolicy
from drivers.opcua.certs import load_der
from drivers.opcua.config import OpcUaBus, OpcUaDeviceConfig, OpcUaPointConfig
from drivers.opcua.device import OpcUaDevice, plan_items
from drivers.opcua.session import OpcUaLink
from edge.coordinator import DeviceCoordinator
from simulators.opcua import OpcUaSimulator, PumpStation
from tests.support import free_port, wait_until

PUMPS = "PumpStation1"
PASSWORD = "operator-pass"


def _points() -> list[OpcUaPointConfig]:
    return [
        OpcUaPointConfig(id="pressure", browse_path="Pressure", unit="MPa", sampling_interval_ms=100),
        OpcUaPointConfig(
            id="pump1_running", browse_path="Pump1/Running", type="bool", sampling_interval_ms=100
        ),
        OpcUaPointConfig(
            id="setpoint",
            node_id="ns=2;s=PumpStation1.PressureSetpoint",
            type="double",
            access="rw",
            mode="poll",
        ),
        OpcUaPointConfig(id="auto", browse_path="Auto", type="bool", access="rw", sampling_interval_ms=100),
        OpcUaPointConfig(id="run_hours", browse_path="RunHours", mode="poll", sampling_interval_ms=200),
    ]


def _bus(sim: OpcUaSimulator, **overrides: Any) -> OpcUaBus:
    fields: dict[str, Any] = {
        "id": "plant",
        "type": "opcua",
        "endpoint": sim.endpoint,
        "identity": "username",
        "username": "operator",
        "password_file": "opcua.pass",
        "timeout_ms": 10000,
        "reconnect_min_s": 0.2,
        "backoff_max_s": 1.0,
    }
    fields.update(overrides)
    return OpcUaBus(**fields)


class Collected:
    """Everything a device's ``pushed()`` produced, gathered by a background task."""

    def __init__(self, device: OpcUaDevice) -> None:
        self.items: list[Reading | LinkState] = []
        self._task = asyncio.create_task(self._collect(device))

    async def _collect(self, device: OpcUaDevice) -> None:
        async for item in device.pushed():
            if isinstance(item, list):
                self.items.extend(item)  # a burst that arrived together
            else:
                self.items.append(item)

    def states(self) -> list[LinkState]:
        return [i for i in self.items if isinstance(i, LinkState)]

    def values(self, key: str) -> list[Reading]:
        return [i for i in self.items if isinstance(i, Reading) and i.key == key]

    def close(self) -> None:
        self._task.cancel()


@asynccontextmanager
async def _linked(
    site: Path, bus: OpcUaBus, points: list[OpcUaPointConfig] | None = None
) -> AsyncIterator[tuple[OpcUaLink, OpcUaDevice, Collected]]:
    (site / "opcua.pass").write_text(PASSWORD + "\n")
    device = OpcUaDevice("pumps", OpcUaDeviceConfig(id="pumps", bus="plant", root="2:PumpStation1"))
    link = OpcUaLink(bus, [device], site_dir=site)
    device.attach(link, plan_items(device, points or _points(), poll_interval_s=1.0, report=ReportPolicy()))
    collected = Collected(device)
    async with link:
        try:
            yield link, device, collected
        finally:
            collected.close()


def _trust(site: Path, sim: OpcUaSimulator) -> None:
    trusted = site / "pki" / "opcua" / "trusted"
    trusted.mkdir(parents=True, exist_ok=True)
    (trusted / "simulator.der").write_bytes(load_der(sim.certificate_path))


def _sim(tmp_path: Path, **kwargs: Any) -> OpcUaSimulator:
    # No physics ticks during a test: values change only when the test sets them.
    return OpcUaSimulator([PumpStation()], pki_dir=tmp_path / "sim", tick_s=3600, **kwargs)


async def test_sign_and_encrypt_subscription_delivers_changes_without_polling(tmp_path: Path) -> None:
    async with _sim(tmp_path) as sim:
        _trust(tmp_path, sim)
        points = [OpcUaPointConfig(id="pressure", browse_path="Pressure", sampling_interval_ms=100)]
        async with _linked(tmp_path, _bus(sim), points) as (link, _device, got):
            await wait_until(lambda: got.values("pressure"), timeout_s=60, message="initial value")
            assert got.states() == [LinkState(True)]
            await sim.set(PUMPS, "Pressure", 0.0815)
            reading = await wait_until(
                lambda: [r for r in got.values("pressure") if r.value == 0.0815], message="subscribed change"
            )
            assert reading[0].quality is Quality.GOOD
            assert reading[0].source_ts is not None
            assert link.stats.polls == 0  # the value came through the subscription
        assert sim.counts.activated == 1
        assert sim.counts.refused_insecure == 0
        # The gateway made its certificate on first use, with the URI the server checked.
        assert (tmp_path / "pki" / "opcua" / "gateway-cert.der").exists()


async def test_untrusted_server_certificate_is_refused_with_how_to_trust_it(tmp_path: Path) -> None:
    async with _sim(tmp_path) as sim:
        async with _linked(tmp_path, _bus(sim)) as (link, _device, got):
            state = await wait_until(lambda: got.states(), timeout_s=60, message="refusal")
        assert state == [LinkState(False, link.last_error)]
        assert "not trusted" in state[0].error and "copy " in state[0].error and "trust dir" in state[0].error
        rejected = list((tmp_path / "pki" / "opcua" / "rejected").iterdir())
        assert len(rejected) == 1 and str(rejected[0]) in state[0].error
        assert not got.values("pressure")
        # Refused before any session: no fallback to an unsecured one either.
        assert sim.counts.activated == 0 and sim.counts.refused_insecure == 0


async def test_wrong_password_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    async with _sim(tmp_path, users={"operator": "something-else"}) as sim:
        _trust(tmp_path, sim)
        async with _linked(tmp_path, _bus(sim, reconnect_min_s=5, backoff_max_s=10)) as (_link, _d, got):
            states = await wait_until(lambda: got.states(), timeout_s=60, message="refusal")
        assert not states[0].online
        assert "BadUserAccessDenied" in states[0].error and "password_file" in states[0].error
        assert sim.counts.refused_user >= 1
        assert sim.counts.activated == 0 and sim.counts.refused_insecure == 0
        assert not [i for i in got.items if isinstance(i, Reading)]


async def test_driver_configured_for_none_is_refused_by_a_secure_only_server(tmp_path: Path) -> None:
    async with _sim(tmp_path) as sim:
        bus = _bus(sim, security_policy="None", reconnect_min_s=5, backoff_max_s=10)
        async with _linked(tmp_path, bus) as (_link, _d, got):
            states = await wait_until(lambda: got.states(), message="refusal")
        assert (
            "no None-security endpoint" in states[0].error
            and "Basic256Sha256/SignAndEncrypt" in states[0].error
        )
        assert sim.counts.activated == 0


async def _activate_over_none(sim: OpcUaSimulator) -> None:
    """A client that skips its own endpoint check: CreateSession + ActivateSession over None."""
    client = Client(sim.endpoint, timeout=10)
    await client.connect_socket()
    try:
        await client.send_hello()
        await client.open_secure_channel()
        params = ua.CreateSessionParameters()
        params.ClientNonce = os.urandom(32)
        params.ClientDescription = ua.ApplicationDescription()
        params.EndpointUrl = sim.endpoint
        params.SessionName = "sneaky"
        params.RequestedSessionTimeout = 60000
        await client.uaclient.create_session(params)
        activate = ua.ActivateSessionParameters()
        token = ua.UserNameIdentityToken()
        token.PolicyId = "username"
        token.UserName = "operator"
        token.Password = PASSWORD.encode()
        activate.UserIdentityToken = token
        await client.uaclient.activate_session(activate)
    finally:
        client.disconnect_socket()


async def test_simulator_refuses_none_policy_sessions_unless_insecure(tmp_path: Path) -> None:
    async with _sim(tmp_path) as sim:
        with pytest.raises(BadSecurityModeRejected):
            await _activate_over_none(sim)
        assert sim.counts.refused_insecure == 1 and sim.counts.activated == 0
    async with _sim(tmp_path, insecure=True) as sim:
        await _activate_over_none(sim)
        assert sim.counts.activated == 1


async def test_server_restart_gives_one_offline_and_one_online_event_then_values_flow(tmp_path: Path) -> None:
    samples: list[Sample] = []
    events: list[Event] = []

    async def sink(batch: list[Sample]) -> None:
        samples.extend(batch)

    async def on_event(event: Event) -> None:
        events.append(event)

    async with _sim(tmp_path, insecure=True) as sim:
        (tmp_path / "opcua.pass").write_text(PASSWORD + "\n")
        device = OpcUaDevice("pumps", OpcUaDeviceConfig(id="pumps", bus="plant", root="2:PumpStation1"))
        link = OpcUaLink(_bus(sim, security_policy="None"), [device], site_dir=tmp_path)
        device.attach(link, plan_items(device, _points(), poll_interval_s=1.0, report=ReportPolicy()))
        coordinator = DeviceCoordinator(
            device_id="pumps",
            driver=device,
            point_ids={p.id: f"site/pumps/{p.id}" for p in _points()},
            sink=sink,
            events=on_event,
            clock=SystemClock(),
        )
        async with link:
            task = asyncio.create_task(coordinator.run())
            try:
                await wait_until(
                    lambda: any(s.point_id.endswith("/pressure") for s in samples), message="values"
                )
                await sim.restart(down_s=1.5)
                await wait_until(lambda: [e for e in events if e.kind == "device.offline"], message="offline")
                await wait_until(
                    lambda: len([e for e in events if e.kind == "device.online"]) >= 2, message="online"
                )
                await sim.set(PUMPS, "Pressure", 0.4321)
                await wait_until(
                    lambda: [s for s in samples if s.point_id.endswith("/pressure") and s.value == 0.4321],
                    message="values after the restart",
                )
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    kinds = [e.kind for e in events]
    assert kinds == ["device.online", "device.offline", "device.online"]
    # While down, every point was bad with comm failure; nothing was left silently stale.
    offline_at = events[1].ts
    bad = [s for s in samples if s.quality is Quality.BAD and s.receipt_ts >= offline_at]
    assert {s.point_id.rsplit("/", 1)[1] for s in bad if s.reason is Reason.COMM_FAILURE} == {
        p.id for p in _points()
    }
    assert link.stats.losses == 1


async def test_verified_typed_writes(tmp_path: Path) -> None:
    async with (
        _sim(tmp_path, insecure=True) as sim,
        _linked(tmp_path, _bus(sim, security_policy="None")) as (_link, device, got),
    ):
        await wait_until(lambda: got.values("setpoint"), message="connected")
        assert await device.write("setpoint", 0.72) == pytest.approx(0.72)
        assert sim.value(PUMPS, "PressureSetpoint") == pytest.approx(0.72)
        assert await device.write("auto", False) is False
        assert sim.value(PUMPS, "Auto") is False
        assert await device.write("auto", True, verify=False) is None
        with pytest.raises(DeviceError, match="read-only"):
            await device.write("pressure", 1.0)
        with pytest.raises(ValueError, match="bool"):
            await device.write("auto", "yes")


async def test_bad_status_and_a_node_that_disappears(tmp_path: Path) -> None:
    async with (
        _sim(tmp_path, insecure=True) as sim,
        _linked(tmp_path, _bus(sim, security_policy="None")) as (_link, _device, got),
    ):
        await wait_until(lambda: got.values("run_hours") and got.values("pressure"), message="values")
        await sim.bad_status(PUMPS, "Pressure", 0x808C0000)  # BadSensorFailure
        bad = await wait_until(
            lambda: [r for r in got.values("pressure") if r.quality is Quality.BAD], message="bad status"
        )
        assert bad[0].reason is Reason.COMM_FAILURE and bad[0].value is None
        await sim.remove(PUMPS, "RunHours")
        gone = await wait_until(
            lambda: [r for r in got.values("run_hours") if r.quality is Quality.BAD], message="node gone"
        )
        assert gone[0].reason is Reason.CONFIG_ERROR


async def test_garbage_on_the_server_port_never_stops_the_driver(tmp_path: Path) -> None:
    connections = 0

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(os.urandom(4096))
        await writer.drain()
        with_data = await reader.read(100)
        del with_data
        writer.write(os.urandom(512))
        writer.close()

    port = free_port()
    server = await asyncio.start_server(garbage, "127.0.0.1", port)
    try:
        bus = OpcUaBus(
            id="plant",
            type="opcua",
            endpoint=f"opc.tcp://127.0.0.1:{port}",
            timeout_ms=500,
            reconnect_min_s=0.05,
            backoff_max_s=0.2,
        )
        async with _linked(tmp_path, bus) as (link, _device, got):
            await wait_until(lambda: connections >= 5, message="five connection attempts")
            assert link._task is not None and not link._task.done()
            assert got.states() == [LinkState(False, got.states()[0].error)]
    finally:
        server.close()
        await server.wait_closed()
