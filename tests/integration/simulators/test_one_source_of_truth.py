"""For every profile: serve its simulator, read it with the gateway's Modbus driver, and get the
model's engineering values back. Simulator and gateway share the profile and the codec only."""

from __future__ import annotations

import math

import pytest
from ruamel.yaml import YAML

from core.model import Quality, Value
from drivers.modbus import ModbusTcpLink
from simulators.profile import PROFILE_DIR, load_profile_file
from simulators.runner import SimulationRunner
from simulators.site_plan import PlannedDevice
from tests.integration.simulators.gateway import profile_points, read_all

# Register-map profiles only: the other protocols' simulators are tested with their drivers.
PROFILE_IDS = sorted(
    p.stem
    for p in PROFILE_DIR.glob("*.yaml")
    if YAML(typ="safe").load(p.read_text("utf-8")).get("protocol", "modbus") == "modbus"
)


def close_enough(got: Value, want: Value, scale: float) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return bool(got) == bool(want)
    assert isinstance(got, int | float) and isinstance(want, int | float), (got, want)
    # One raw step of the point's scale, plus float32 precision.
    return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=abs(scale) * 0.5 + 1e-9)


@pytest.mark.parametrize("profile_id", PROFILE_IDS)
async def test_gateway_reads_what_the_model_holds(profile_id: str) -> None:
    profile = load_profile_file(PROFILE_DIR / f"{profile_id}.yaml")
    plan = PlannedDevice("dev", profile, ("127.0.0.1", 0), unit=7, seed=3)
    points = profile_points(profile_id)
    async with SimulationRunner([plan], tick_s=None) as sim:
        sim.tick(45.0)  # move the physics off its initial state
        if profile.family == "ev_charger":
            sim.device("dev").inject("plug_in", {"needs_kwh": 20})
            sim.tick(5.0)
        host, port = sim.endpoint_of("dev")
        async with ModbusTcpLink(host, port, timeout_ms=2000, retries=1) as link:
            readings = await read_all(link, 7, points)
        want = sim.device("dev").values()
    assert set(readings) == {p.id for p in points}
    scales = {p.id: p.scale for p in points}
    for key, reading in readings.items():
        assert reading.quality is Quality.GOOD, (key, reading)
        assert close_enough(reading.value, want[key], scales[key]), (key, reading.value, want[key])


async def test_writes_from_the_gateway_reach_the_model_and_read_back() -> None:
    plans = [
        PlannedDevice("door", load_profile_file(PROFILE_DIR / "access-door.yaml"), ("127.0.0.1", 0), 1),
        PlannedDevice("charger", load_profile_file(PROFILE_DIR / "abb-terra-ac.yaml"), ("127.0.0.1", 0), 2),
        PlannedDevice("fan", load_profile_file(PROFILE_DIR / "smoke-exhaust-fan.yaml"), ("127.0.0.1", 0), 3),
    ]
    from tests.integration.simulators.gateway import device

    async with SimulationRunner(plans, tick_s=None) as sim:
        host, port = sim.endpoint_of("door")
        async with ModbusTcpLink(host, port, timeout_ms=2000) as link:
            door = device(link, 1, profile_points("access-door"))
            assert await door.write("release", True) is True
            assert (await read_all(link, 1, profile_points("access-door")))["released"].value is True

            charger = device(link, 2, profile_points("abb-terra-ac"))
            sim.device("charger").inject("plug_in", {"needs_kwh": 30})
            sim.tick(2.0)
            assert await charger.write("set_current_limit_a", 8.0) == pytest.approx(8.0)
            values = await read_all(link, 2, profile_points("abb-terra-ac"))
            assert values["current_l1_a"].value == pytest.approx(8.0)
            assert values["power_w"].value == pytest.approx(3 * 230 * 8)

            fan = device(link, 3, profile_points("smoke-exhaust-fan"))
            await fan.write("fan_start", True)
            assert (await read_all(link, 3, profile_points("smoke-exhaust-fan")))[
                "fan_running"
            ].value is False
            sim.tick(3.5)  # the fan needs about 3 s to report running
            assert (await read_all(link, 3, profile_points("smoke-exhaust-fan")))["fan_running"].value is True
