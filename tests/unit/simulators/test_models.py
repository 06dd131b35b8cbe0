"""Physics and state of the behaviour models: pure, stepped by hand."""

from __future__ import annotations

import pytest

from simulators.models import MODELS, UnknownScenario, make_model
from simulators.models.ev_charger import State


def run(model: object, seconds: float, step_s: float = 1.0) -> None:
    elapsed = 0.0
    while elapsed < seconds:
        model.step(step_s)  # type: ignore[attr-defined]
        elapsed += step_s


def test_every_family_steps_and_offers_scenarios() -> None:
    for family in MODELS:
        model = make_model(family, seed=1)
        model.step(5.0)
        assert model.values(), family
        assert model.scenarios, family


def test_water_tank_level_follows_inflow_and_outflow() -> None:
    tank = make_model("water_tank", params={"level_m": 2.0, "start_hour": 3.0})
    run(tank, 600)
    # At night demand is low and the inlet opened below 2.2 m: the tank fills.
    assert tank.values()["inlet_valve_open"] is True
    assert tank.values()["level_m"] > 2.0
    run(tank, 3 * 3600, 10.0)
    # The float valve holds the level between its open and close points.
    assert 2.1 <= float(tank.values()["level_m"]) <= 2.7  # type: ignore[arg-type]


def test_water_tank_drains_when_the_inlet_is_blocked() -> None:
    tank = make_model("water_tank", params={"level_m": 2.4, "start_hour": 7.5})
    tank.inject("tank_low", {"level_m": 0.3})
    assert tank.values()["level_m"] == pytest.approx(0.3)
    assert tank.values()["low_level"] is True
    run(tank, 600)
    assert tank.values()["inlet_valve_open"] is False
    tank.clear("tank_low")
    run(tank, 60)
    assert tank.values()["inlet_valve_open"] is True


def test_water_quality_scenarios_set_and_clear() -> None:
    tank = make_model("water_tank")
    tank.inject("chlorine_low", {})
    assert float(tank.values()["residual_chlorine_mgl"]) < 0.05  # type: ignore[arg-type]
    tank.inject("freezing", {})
    assert float(tank.values()["water_temp_c"]) < 4  # type: ignore[arg-type]
    tank.clear()
    assert float(tank.values()["residual_chlorine_mgl"]) >= 0.05  # type: ignore[arg-type]
    assert tank.active == {}


def test_energy_meter_accumulates_energy_from_its_load() -> None:
    meter = make_model("meter", params={"peak_kw": 20.0, "start_hour": 20.0, "import_kwh": 100.0})
    energy = []
    for _ in range(60):
        meter.step(60.0)
        energy.append(float(meter.values()["energy_import"]))  # type: ignore[arg-type]
    assert energy == sorted(energy)
    used = energy[-1] - 100.0
    # Around the evening peak the load is close to peak_kw × 1: one hour is about 20 kWh.
    assert 12.0 < used < 25.0
    meter.inject("abnormal_consumption", {"factor": 5})
    assert float(meter.values()["power_total"]) > 60_000  # type: ignore[arg-type]


def test_charger_goes_idle_connected_charging_and_back() -> None:
    charger = make_model("ev_charger", params={"rated_a": 32, "limit_a": 32})
    assert charger.values()["charging_state"] == State.IDLE
    charger.inject("plug_in", {"needs_kwh": 5.0})
    assert charger.values()["charging_state"] == State.CONNECTED
    charger.step(2.0)
    values = charger.values()
    assert values["charging_state"] == State.CHARGING
    assert values["current_l1_a"] == pytest.approx(16.0)  # the car's own maximum
    assert values["power_w"] == pytest.approx(3 * 230 * 16, rel=0.01)
    charger.apply_write("set_current_limit_a", 10.0)
    assert charger.values()["current_l1_a"] == pytest.approx(10.0)
    charger.apply_write("set_current_limit_a", 0.0)
    assert charger.values()["charging_state"] == State.WAITING
    charger.apply_write("set_current_limit_a", 32.0)
    run(charger, 3600, 10.0)
    assert charger.values()["charging_state"] == State.READY  # the car is full
    assert float(charger.values()["session_energy_kwh"]) == pytest.approx(5.0, abs=0.05)  # type: ignore[arg-type]
    charger.inject("unplug", {})
    assert charger.values()["charging_state"] == State.IDLE


def test_charger_fault_stops_charging() -> None:
    charger = make_model("ev_charger", params={"plugged": True})
    charger.step(2.0)
    charger.inject("fault", {"code": 8})
    assert charger.values()["error_code"] == 8
    assert charger.values()["current_l1_a"] == 0


def test_elevator_travels_to_a_call_and_opens_its_doors() -> None:
    lift = make_model("elevator", params={"floors": 18})
    assert lift.values()["floor"] == 1
    lift.apply_write("car_call", 5)
    lift.step(2.5)  # doors close
    assert lift.values()["door_state"] == 0
    lift.step(1.0)
    assert lift.values()["running"] is True
    assert lift.values()["direction"] == 1
    run(lift, 8.0, 0.5)  # 4 floors at 2 s each
    run(lift, 2.5, 0.5)  # doors open
    values = lift.values()
    assert values["floor"] == 5
    assert values["levelled"] is True
    assert values["door_state"] == 1


def test_elevator_trapped_passenger_and_door_open_while_moving() -> None:
    lift = make_model("elevator")
    lift.inject("trapped", {})
    values = lift.values()
    assert values["trapped"] is True
    assert values["levelled"] is False
    assert values["fault_code"] == 4
    assert values["alarm_code"] == 93
    run(lift, 30)
    assert lift.values()["trapped"] is True  # stays stuck until rescued
    lift.clear("trapped")
    assert lift.values()["trapped"] is False
    lift.inject("door_open_moving", {})
    lift.step(0.5)
    values = lift.values()
    assert values["running"] is True and values["door_state"] == 1 and values["fault_code"] == 5


def test_manhole_battery_drains_and_scenarios_show() -> None:
    cover = make_model("manhole", params={"drain_v_per_s": 1e-5, "battery_v": 3.6})
    run(cover, 3600, 60.0)
    assert float(cover.values()["battery_v"]) == pytest.approx(3.564, abs=0.006)  # type: ignore[arg-type]
    cover.inject("opened", {})
    assert cover.values()["lid_open"] is True
    cover.clear("opened")
    cover.inject("tilted", {"angle_deg": 20})
    assert cover.values()["tilt_alarm"] is True and cover.values()["lid_open"] is False
    cover.inject("overflow", {})
    assert cover.values()["overflow"] is True


def test_writes_take_effect_door_release_and_fan_start_delay() -> None:
    door = make_model("access_door")
    assert door.values()["locked"] is True
    assert door.apply_write("release", True)
    assert door.values()["released"] is True
    fan = make_model("smoke_fan", params={"fan_start_delay_s": 3.0})
    fan.apply_write("fan_start", True)
    fan.step(1.0)
    assert fan.values()["fan_running"] is False
    fan.step(2.5)
    assert fan.values()["fan_running"] is True
    fan.apply_write("fan_start", False)
    assert fan.values()["fan_running"] is False


def test_door_forced_and_held_open() -> None:
    door = make_model("access_door", params={"held_open_after_s": 30})
    door.inject("forced_open", {})
    assert door.values()["forced_open"] is True
    door.clear("forced_open")
    door.inject("held_open", {})
    assert door.values()["held_open"] is True


def test_fire_panel_one_then_two_detectors_latch_until_reset() -> None:
    panel = make_model("fire_panel")
    panel.inject("fire", {"zone": 3})
    assert panel.values()["zone3_fire"] is True
    assert panel.values()["zone3_detectors_in_alarm"] == 1
    panel.inject("fire", {"zone": 3})
    assert panel.values()["zone3_detectors_in_alarm"] == 2
    panel.apply_write("silence", True)
    assert panel.values()["silenced"] is True
    panel.clear("fire")
    assert panel.values()["zone3_fire"] is True  # latched
    panel.apply_write("reset", True)
    assert panel.values()["zone3_fire"] is False
    assert panel.values()["silenced"] is False


def test_fire_panel_reset_while_detector_in_alarm_re_raises() -> None:
    panel = make_model("fire_panel")
    panel.inject("fire", {"zone": 2})
    panel.apply_write("reset", True)
    assert panel.values()["zone2_fire"] is True
    with pytest.raises(ValueError, match="zone"):
        panel.inject("fire", {"zone": 99})


def test_evacuation_lighting_reaches_emergency_within_five_seconds() -> None:
    lights = make_model("evacuation_lighting")
    lights.apply_write("all_emergency", True)
    run(lights, 5.0, 0.25)
    assert lights.values()["zones_in_emergency"] == 8


def test_barrier_opens_and_closes_for_a_vehicle() -> None:
    barrier = make_model("barrier")
    barrier.inject("vehicle", {})
    run(barrier, 4.0)
    assert barrier.values()["is_open"] is True
    run(barrier, 10.0)
    assert barrier.values()["position"] == 0
    assert barrier.values()["passages"] == 1


def test_fire_water_sprinkler_flow_starts_a_pump_and_drains_the_tank() -> None:
    water = make_model("fire_water", params={"tank_level_m": 3.0})
    water.inject("sprinkler_flow", {"flow_lps": 30})
    assert water.values()["pump1_running"] is True
    run(water, 600, 5.0)
    assert float(water.values()["tank_level_m"]) < 3.0  # type: ignore[arg-type]
    water.inject("low_pressure", {})
    run(water, 10)
    assert float(water.values()["pipe_pressure_mpa"]) < 0.1  # type: ignore[arg-type]


def test_volume_meters_leak_shows_as_constant_flow() -> None:
    meter = make_model("water_meter", params={"start_hour": 3.0, "peak_m3h": 1.0})
    meter.step(60)
    night_flow = float(meter.values()["flow_m3h"])  # type: ignore[arg-type]
    meter.inject("abnormal_consumption", {})
    assert float(meter.values()["flow_m3h"]) > 10 * night_flow  # type: ignore[arg-type]
    meter.apply_write("valve_open", False)
    assert meter.values()["flow_m3h"] == 0


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(UnknownScenario):
        make_model("switch_room").inject("earthquake", {})
    with pytest.raises(ValueError, match="no simulator model"):
        make_model("toaster")


def test_time_does_not_run_backwards() -> None:
    with pytest.raises(ValueError):
        make_model("switch_room").step(-1.0)
