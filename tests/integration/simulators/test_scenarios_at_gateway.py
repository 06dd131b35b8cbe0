"""Every scenario, injected through the control API, is visible in the values the gateway reads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.errors import DeviceError, DeviceTimeout, TransportError
from core.model import Quality, Value
from drivers.modbus import ModbusTcpLink
from simulators.profile import PROFILE_DIR, load_profile_file
from simulators.runner import SimulationRunner
from simulators.site_plan import PlannedDevice
from tests.integration.simulators.gateway import profile_points, read_all
from tests.support import wait_until


@dataclass(frozen=True)
class Case:
    profile: str
    scenario: str
    params: dict[str, Any]
    expect: dict[str, Value | Callable[[Value], bool]]
    setup: tuple[tuple[str, dict[str, Any]], ...] = ()

    @property
    def id(self) -> str:
        return f"{self.profile}:{self.scenario}"


def above(limit: float) -> Callable[[Value], bool]:
    return lambda v: isinstance(v, int | float) and v > limit


def below(limit: float) -> Callable[[Value], bool]:
    return lambda v: isinstance(v, int | float) and v < limit


CASES = [
    Case(
        "fire-panel-modbus",
        "fire",
        {"zone": 3},
        {"zone3_fire": True, "zone3_detectors_in_alarm": 1, "fire_any": True},
    ),
    Case(
        "fire-panel-modbus",
        "fire",
        {"zone": 5, "detectors": 2},
        {"zone5_fire": True, "zone5_detectors_in_alarm": 2},
    ),
    Case(
        "fire-panel-modbus",
        "fault",
        {"zone": 4},
        {"zone4_fault": True, "fault_any": True, "zone4_fire": False},
    ),
    Case("fire-panel-modbus", "supervisory", {"zone": 1}, {"zone1_supervisory": True}),
    Case(
        "fire-panel-modbus", "detector", {"address": 3}, {"loop1_det3_fire": True, "loop1_det2_fire": False}
    ),
    Case("fire-io-module", "call_point", {}, {"call_point": True}),
    Case("fire-io-module", "fault", {}, {"input_fault": True}),
    Case(
        "fire-io-module",
        "no_feedback",
        {},
        {"output_feedback": False},
        setup=(("write_output", {}),),
    ),
    Case("smoke-detector-standalone", "smoke", {}, {"fire": True, "smoke_db_m": above(0.5)}),
    Case("smoke-detector-standalone", "fault", {}, {"fault": True, "fire": False}),
    Case("smoke-detector-standalone", "battery_low", {}, {"battery_low": True}),
    Case(
        "fire-panel-modbus",
        "power_fault",
        {"backup": True},
        {"main_power_fault": True, "backup_power_fault": True},
    ),
    Case("fire-water", "tank_low", {}, {"tank_level_m": below(1.0)}),
    Case("fire-water", "low_pressure", {}, {"pipe_pressure_mpa": below(0.1)}),
    Case("fire-water", "sprinkler_flow", {}, {"pump1_running": True, "flow_lps": above(10)}),
    Case("fire-water", "pump_fault", {"pump": 2}, {"pump2_fault": True}),
    Case("secondary-water-tank", "tank_low", {}, {"level_m": below(0.5), "low_level": True}),
    Case("secondary-water-tank", "overflow", {}, {"level_m": above(2.9), "overflow": True}),
    Case("secondary-water-tank", "freezing", {}, {"water_temp_c": below(4.0)}),
    Case("secondary-water-tank", "chlorine_low", {}, {"residual_chlorine_mgl": below(0.05)}),
    Case("secondary-water-tank", "turbidity_high", {}, {"turbidity_ntu": above(1.0)}),
    Case("secondary-water-tank", "ph_abnormal", {}, {"ph": above(8.5)}),
    Case("secondary-water-tank", "pump_fault", {"pump": 1}, {"pump1_fault": True, "pump1_running": False}),
    Case("eastron-sdm630", "abnormal_consumption", {"factor": 5}, {"power_total": above(40_000)}),
    Case("chint-dtsu666", "phase_loss", {}, {"voltage_l3": below(1.0), "current_l3": below(0.01)}),
    Case("water-meter", "abnormal_consumption", {"flow_m3h": 4.0}, {"flow_m3h": 4.0}),
    Case("gas-meter", "meter_fault", {}, {"meter_fault": True}),
    Case("gas-meter", "abnormal_consumption", {}, {"flow_m3h": above(1.6)}),
    Case("gas-meter", "battery_low", {}, {"battery_v": below(3.2), "status": 2}),
    Case("water-meter", "meter_fault", {}, {"meter_fault": True, "status": 1}),
    Case("water-meter", "battery_low", {"battery_v": 3.1}, {"battery_v": 3.1}),
    Case("heat-meter", "sensor_fault", {}, {"sensor_fault": True, "return_temp_c": -20.0}),
    Case("heat-meter", "abnormal_consumption", {"factor": 10}, {"flow_m3h": above(10.0)}),
    Case("manhole-cover", "opened", {}, {"lid_open": True, "tilt_deg": 90.0}),
    Case(
        "manhole-cover",
        "tilted",
        {"angle_deg": 25},
        {"tilt_alarm": True, "lid_open": False, "tilt_deg": 25.0},
    ),
    Case("manhole-cover", "overflow", {}, {"overflow": True, "water_level_m": above(1.2)}),
    Case("manhole-cover", "methane", {}, {"methane_pct_lel": 25.0}),
    Case("manhole-cover", "battery_low", {}, {"battery_v": below(3.3), "battery_low": True}),
    Case("abb-terra-ac", "fault", {}, {"error_code": 4, "charging_state": 0x8500}),
    Case("abb-terra-ac", "plug_in", {}, {"charging_state": 0x8100, "socket_locked": 1}),
    Case(
        "abb-terra-ac", "unplug", {}, {"charging_state": 0x8000, "socket_locked": 0}, setup=(("plug_in", {}),)
    ),
    Case(
        "elevator-monitor",
        "trapped",
        {},
        {"trapped": True, "alarm_code": 93, "fault_code": 4, "levelled": False},
    ),
    Case("elevator-monitor", "door_open_moving", {}, {"running": True, "door_state": 1, "fault_code": 5}),
    Case("elevator-monitor", "fire_recall", {}, {"event_code": 44, "fire_recall": True}),
    Case("elevator-monitor", "out_of_service", {}, {"event_code": 42, "in_service": False}),
    Case("access-door", "forced_open", {}, {"forced_open": True, "door_open": True}),
    Case("access-door", "held_open", {}, {"held_open": True}),
    Case("access-door", "lock_fault", {}, {"lock_fault": True}),
    Case("access-door", "passage", {}, {"door_open": True, "released": True, "forced_open": False}),
    Case("vehicle-barrier", "fault", {}, {"fault": True}),
    Case("vehicle-barrier", "vehicle", {}, {"vehicle_present": True}),
    Case("evacuation-lighting", "mains_failure", {}, {"mains_ok": False, "zones_in_emergency": 8}),
    Case("evacuation-lighting", "battery_fault", {}, {"battery_fault": True}),
    Case(
        "evacuation-lighting",
        "lamp_fault",
        {"zone": 2, "count": 3},
        {"zone2_lamp_faults": 3, "lamp_fault_any": True},
    ),
    Case("smoke-exhaust-fan", "fan_fault", {}, {"fan_fault": True, "fan_running": False}),
    Case("smoke-exhaust-fan", "manual_mode", {}, {"manual_mode": True}),
    Case("emergency-broadcast", "amplifier_fault", {}, {"amplifier_fault": True}),
    Case(
        "electrical-fire-monitor",
        "leakage_high",
        {"channel": 2},
        {"leakage_ch2_ma": 650, "leakage_alarm": True},
    ),
    Case(
        "electrical-fire-monitor",
        "overheat",
        {"channel": 4},
        {"cable_temp_ch4_c": 85.0, "temperature_alarm": True},
    ),
    Case("electrical-fire-monitor", "sensor_fault", {}, {"sensor_fault": True}),
    Case("fire-lane-sensor", "blocked", {}, {"occupied": True, "magnetic_ut": above(70)}),
    Case("fire-lane-sensor", "battery_low", {}, {"battery_low": True, "battery_v": below(3.3)}),
    Case("switch-room-env", "overheat", {}, {"temperature_c": above(40)}),
    Case("switch-room-env", "humidity_high", {}, {"humidity_pct": above(85)}),
    Case("switch-room-env", "water_leak", {}, {"water_leak": True}),
    Case("switch-room-env", "smoke", {}, {"smoke": True}),
]


async def test_every_behaviour_scenario_has_a_case() -> None:
    from simulators.models import MODELS

    covered = {(load_profile_file(PROFILE_DIR / f"{c.profile}.yaml").family, c.scenario) for c in CASES}
    # "energy_meter" is another name of the "meter" model
    offered = {
        (family, s) for family, cls in MODELS.items() for s in cls.scenarios if family != "energy_meter"
    }
    assert not offered - covered, offered - covered


def matches(value: Value, want: Value | Callable[[Value], bool]) -> bool:
    if callable(want):
        return bool(want(value))
    if isinstance(want, float):
        return isinstance(value, int | float) and abs(float(value) - want) < 0.01
    return value == want


# One set of servers for the whole module (starting them per test costs more than the tests).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def all_served() -> AsyncIterator[SimulationRunner]:
    profiles = sorted({c.profile for c in CASES})
    plans = [
        PlannedDevice(p, load_profile_file(PROFILE_DIR / f"{p}.yaml"), ("127.0.0.1", 0), unit=i + 1, seed=i)
        for i, p in enumerate(profiles)
    ]
    async with SimulationRunner(plans, tick_s=None, control_port=0) as sim:
        yield sim


@pytest.fixture
def served(all_served: SimulationRunner) -> Iterator[SimulationRunner]:
    yield all_served
    for device in all_served.devices.values():
        device.restart()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_scenario_is_visible_at_the_gateway(served: SimulationRunner, case: Case) -> None:
    unit = int(served.device(case.profile).meta["unit"])
    points = profile_points(case.profile)
    host, port = served.endpoint_of(case.profile)
    async with (
        httpx.AsyncClient(base_url=served.control_url) as api,
        ModbusTcpLink(host, port, timeout_ms=2000) as link,
    ):
        before = await read_all(link, unit, points)
        assert all(r.quality is Quality.GOOD for r in before.values())
        for name, params in case.setup:
            if name == "write_output":  # the gateway commands the module's output (coil 0)
                await link.write_coil(unit, 0, True)
                continue
            assert (
                await api.post(f"/devices/{case.profile}/scenarios/{name}", json=params)
            ).status_code == 200
        response = await api.post(f"/devices/{case.profile}/scenarios/{case.scenario}", json=case.params)
        assert response.status_code == 200, response.text
        assert case.scenario in response.json()["active"]
        after = await read_all(link, unit, points)
        for key, want in case.expect.items():
            assert matches(after[key].value, want), (key, after[key].value)
        response = await api.delete(f"/devices/{case.profile}/scenarios")
        assert response.status_code == 200


async def test_second_detector_in_the_same_zone(served: SimulationRunner) -> None:
    unit = int(served.device("fire-panel-modbus").meta["unit"])
    host, port = served.endpoint_of("fire-panel-modbus")
    points = profile_points("fire-panel-modbus")
    async with httpx.AsyncClient(base_url=served.control_url) as api, ModbusTcpLink(host, port) as link:
        for expected in (1, 2):
            response = await api.post("/devices/fire-panel-modbus/scenarios/fire", json={"zone": 6})
            assert response.status_code == 200
            values = await read_all(link, unit, points)
            assert values["zone6_detectors_in_alarm"].value == expected
            assert values["zone6_fire"].value is True


FAULT_PROFILE = "switch-room-env"


async def _fault(api: httpx.AsyncClient, name: str, **params: Any) -> None:
    response = await api.post(f"/devices/{FAULT_PROFILE}/scenarios/{name}", json=params)
    assert response.status_code == 200, response.text


async def test_communication_loss_and_recovery(served: SimulationRunner) -> None:
    unit = int(served.device(FAULT_PROFILE).meta["unit"])
    host, port = served.endpoint_of(FAULT_PROFILE)
    points = profile_points(FAULT_PROFILE)
    async with (
        httpx.AsyncClient(base_url=served.control_url) as api,
        ModbusTcpLink(host, port, timeout_ms=300, retries=0) as link,
    ):
        await _fault(api, "comm_loss")
        with pytest.raises(TransportError):
            await read_all(link, unit, points)
        # Its neighbours behind the same bridge still answer.
        other = "access-door"
        assert await read_all(link, int(served.device(other).meta["unit"]), profile_points(other))
        await api.delete(f"/devices/{FAULT_PROFILE}/scenarios/comm_loss")

        async def recovered() -> bool:
            try:
                return bool(await read_all(link, unit, points))
            except TransportError:
                return False

        await wait_until(recovered, message="reads after the communication loss ends")


async def test_communication_loss_behind_a_bridge(served: SimulationRunner) -> None:
    unit = int(served.device(FAULT_PROFILE).meta["unit"])
    host, port = served.endpoint_of(FAULT_PROFILE)
    async with (
        httpx.AsyncClient(base_url=served.control_url) as api,
        ModbusTcpLink(host, port, timeout_ms=2000, retries=1) as link,
    ):
        await _fault(api, "comm_loss", bridge=True, delay_ms=50)
        # The bridge answers "gateway target failed to respond": the driver reports a timeout.
        with pytest.raises(DeviceTimeout):
            await read_all(link, unit, profile_points(FAULT_PROFILE))
        assert link.stats.timeouts >= 2


async def test_slow_answers(served: SimulationRunner) -> None:
    unit = int(served.device(FAULT_PROFILE).meta["unit"])
    host, port = served.endpoint_of(FAULT_PROFILE)
    points = profile_points(FAULT_PROFILE)
    async with httpx.AsyncClient(base_url=served.control_url) as api:
        await _fault(api, "slow", delay_ms=800)
        async with ModbusTcpLink(host, port, timeout_ms=200, retries=0) as link:
            with pytest.raises(TransportError):
                await read_all(link, unit, points)
        async with ModbusTcpLink(host, port, timeout_ms=10_000, retries=0) as link:
            values = await read_all(link, unit, points)
            assert all(r.quality is Quality.GOOD for r in values.values())


async def test_exception_answers(served: SimulationRunner) -> None:
    unit = int(served.device(FAULT_PROFILE).meta["unit"])
    host, port = served.endpoint_of(FAULT_PROFILE)
    async with httpx.AsyncClient(base_url=served.control_url) as api, ModbusTcpLink(host, port) as link:
        await _fault(api, "exception", code=6)
        with pytest.raises(DeviceError) as info:
            await read_all(link, unit, profile_points(FAULT_PROFILE))
        assert info.value.code == 6


async def test_garbage_frames_and_recovery(served: SimulationRunner) -> None:
    unit = int(served.device(FAULT_PROFILE).meta["unit"])
    host, port = served.endpoint_of(FAULT_PROFILE)
    points = profile_points(FAULT_PROFILE)
    async with (
        httpx.AsyncClient(base_url=served.control_url) as api,
        ModbusTcpLink(host, port, timeout_ms=500, retries=0) as link,
    ):
        await _fault(api, "garbage")
        with pytest.raises(TransportError):
            await read_all(link, unit, points)
        await api.delete(f"/devices/{FAULT_PROFILE}/scenarios")

        async def recovered() -> bool:
            try:
                return bool(await read_all(link, unit, points))
            except TransportError:
                return False

        await wait_until(recovered, message="reads after the garbage stops")


async def test_control_api_lists_and_refuses(served: SimulationRunner) -> None:
    async with httpx.AsyncClient(base_url=served.control_url) as api:
        devices = (await api.get("/devices")).json()
        assert {d["id"] for d in devices} == set(served.devices)
        detail = (await api.get("/devices/manhole-cover")).json()
        assert "opened" in detail["scenarios"] and "comm_loss" in detail["scenarios"]
        assert detail["values"]["lid_open"] is False
        assert (await api.get("/devices/nope")).status_code == 404
        assert (await api.post("/devices/manhole-cover/scenarios/fire", json={})).status_code == 404
        bad = await api.post("/devices/fire-panel-modbus/scenarios/fire", json={"zone": 42})
        assert bad.status_code == 400
        catalogue = (await api.get("/scenarios")).json()
        assert "trapped" in catalogue["elevator"]
