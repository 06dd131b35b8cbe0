"""GB/T 26875.3 mapping: objects to the fire panel's points, ranges, resets, bit 0, config shapes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drivers.base import Reading
from drivers.gb26875.config import (
    Gb26875Bus,
    Gb26875DeviceConfig,
    Gb26875PointConfig,
    parse_address,
    parse_set,
)
from drivers.gb26875.frame import TimeTag
from drivers.gb26875.mapping import Mapper
from drivers.gb26875.objects import (
    AnalogValue,
    ComponentStatus,
    OperationRecord,
    SoftwareVersion,
    SystemStatus,
    UitdOperation,
    UitdStatus,
)

T = TimeTag(37, 17, 3, 1, 6, 2012)
FIRE, FAULT, NORMAL = 0x0003, 0x0005, 0x0001


def point(**fields: Any) -> Gb26875PointConfig:
    return Gb26875PointConfig.model_validate(fields)


POINTS = [
    point(
        id="zone5_fire", object="component", sys_type=1, sys_addr=1, comp_addr="1-64", status="fire", zone="5"
    ),
    point(id="zone5_fault", object="component", comp_addr="1-64", status="fault"),
    point(
        id="zone5_count", object="component", comp_type="40-44", comp_addr="1-64", status="fire", count=True
    ),
    point(id="zone6_fire", object="component", comp_addr=[65, "66-128"], status="fire"),
    point(id="fire_any", object="system", sys_type=1, sys_addr=1, status="fire"),
    point(id="main_power", object="system", sys_type=1, status="main_power_fault"),
    point(id="pressure", object="analog", comp_type=91, comp_addr=3, analog_type=4, scale=0.1, unit="MPa"),
    point(id="resets", object="operation", operation="reset"),
    point(id="silenced", object="operation", operation="silence", mode="state"),
    point(id="uitd_fault", object="uitd_status", status="fault"),
    point(id="uitd_tests", object="uitd_operation", operation="self_test"),
    point(id="version", object="version", sys_type=1),
]


def values(readings: list[Reading]) -> dict[str, Any]:
    return {r.key: r.value for r in readings}


def comp(addr: int, status: int, comp_type: int = 42, sys_addr: int = 1) -> ComponentStatus:
    return ComponentStatus(1, sys_addr, comp_type, addr, status, "", T)


def test_a_component_fire_lights_its_zone_its_count_and_the_panel() -> None:
    m = Mapper(POINTS)
    got = values(m.apply(comp(17, 0x0002)))  # the capture's status: bit 0 clear, still a fire
    assert got == {"zone5_fire": True, "zone5_fault": False, "zone5_count": 1, "fire_any": True}
    assert values(m.apply(comp(18, FIRE)))["zone5_count"] == 2
    assert values(m.apply(comp(17, NORMAL)))["zone5_count"] == 1
    assert values(m.apply(comp(100, FIRE)))["zone6_fire"] is True
    assert values(m.apply(comp(300, FIRE))) == {"fire_any": True}


def test_readings_carry_the_objects_own_time_tag() -> None:
    (reading, *_) = Mapper(POINTS, utc_offset_s=8 * 3600).apply(comp(1, FIRE))
    assert reading.source_ts == pytest.approx(1338491857.0)
    bad = ComponentStatus(1, 1, 42, 1, FIRE, "", TimeTag(0, 0, 0, 31, 2, 2021))
    assert all(r.source_ts is None for r in Mapper(POINTS).apply(bad))  # kept, not dropped


def test_bit0_means_test_mode_only_on_devices_configured_so() -> None:
    tested = Mapper(POINTS, test_bit=True)
    assert values(tested.apply(comp(17, 0x0002)))["zone5_fire"] is False
    assert values(tested.apply(comp(17, 0x0003)))["zone5_fire"] is True


def test_a_reset_clears_the_panels_components_and_the_silence() -> None:
    m = Mapper(POINTS)
    m.apply(comp(17, FIRE))
    m.apply(comp(18, FAULT))
    assert values(m.apply(OperationRecord(1, 1, 0b10, 5, T))) == {"silenced": True}
    got = values(m.apply(OperationRecord(1, 1, 0b01, 5, T)))
    assert got["zone5_fire"] is False and got["zone5_fault"] is False and got["zone5_count"] == 0
    assert got["resets"] == 1 and got["silenced"] is False and got["fire_any"] is False


def test_a_system_reset_bit_clears_too_unless_the_device_says_not() -> None:
    m = Mapper(POINTS)
    m.apply(comp(17, FIRE))
    assert values(m.apply(SystemStatus(1, 1, 1 << 13 | 1, T)))["zone5_fire"] is False
    kept = Mapper(POINTS, reset_clears=False)
    kept.apply(comp(17, FIRE))
    assert values(kept.apply(SystemStatus(1, 1, 1 << 13 | 1, T)))["fire_any"] is True


def test_a_new_fire_ends_a_silence() -> None:
    m = Mapper(POINTS)
    m.apply(OperationRecord(1, 1, 0b10, 5, T))
    assert values(m.apply(comp(17, FIRE)))["silenced"] is False


def test_system_analog_uitd_and_version_points() -> None:
    m = Mapper(POINTS)
    assert values(m.apply(SystemStatus(1, 1, 1 << 8 | 1, T))) == {"fire_any": False, "main_power": True}
    assert values(m.apply(AnalogValue(1, 1, 91, 3, 4, 6, T))) == {"pressure": pytest.approx(0.6)}
    assert values(m.apply(AnalogValue(1, 1, 91, 3, 5, 6, T))) == {}  # another analog type
    assert values(m.apply(UitdStatus(0b101, T))) == {"uitd_fault": True}
    assert values(m.apply(UitdOperation(1 << 4, 0, T))) == {"uitd_tests": 1}
    assert values(m.apply(SoftwareVersion(1, 1, 2, 7))) == {"version": "2.7"}


def test_snapshot_gives_every_stateful_point_and_known_values() -> None:
    m = Mapper(POINTS)
    first = values(m.snapshot())
    assert first["zone5_fire"] is False and first["zone5_count"] == 0 and first["resets"] == 0
    assert "pressure" not in first and "version" not in first
    m.apply(comp(17, FIRE))
    m.apply(AnalogValue(1, 1, 91, 3, 4, 6, T))
    again = values(m.snapshot())
    assert again["zone5_fire"] is True and again["pressure"] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"object": "component", "status": "main_power_fault"}, "needs 'status'"),
        ({"object": "system", "status": "fire", "comp_addr": 1}, "no comp_type"),
        ({"object": "operation", "operation": "reboot"}, "needs 'operation'"),
        ({"object": "operation", "operation": "reset", "mode": "state"}, "mode 'state'"),
        ({"object": "component", "status": "fire", "comp_addr": "64-1"}, "not a range"),
        ({"object": "component", "status": "fire", "comp_addr": "a-b"}, "not a number"),
        ({"object": "analog", "status": "fire"}, "'status' is for"),
        ({"object": "uitd_status", "status": "fire", "sys_type": 1}, "no sys_type"),
        ({"object": "system", "status": "fire", "count": True}, "'count' is for"),
    ],
)
def test_points_that_make_no_sense_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        point(id="p", **fields)


def test_selectors_and_addresses_parse() -> None:
    assert parse_set("1-8, 12,20-30", limit=255) == ((1, 8), (12, 12), (20, 30))
    assert parse_set([3, "1-2"], limit=255) == ((1, 2), (3, 3))
    assert parse_set(None, limit=255) is None
    assert parse_address("2c:31:2c:32:00:00") == bytes.fromhex("2c312c320000")
    assert parse_address(0x322C312C) == bytes.fromhex("2c312c320000")
    with pytest.raises(ValueError, match="12 hex digits"):
        parse_address("2c312c32")
    with pytest.raises(ValidationError):
        Gb26875DeviceConfig.model_validate({"id": "d", "bus": "b", "address": "zz"})


def test_bus_modes_need_their_port_kind() -> None:
    assert Gb26875Bus.model_validate({"id": "b", "type": "gb26875", "port": 5000}).mode == "server"
    with pytest.raises(ValidationError, match="serial device path"):
        Gb26875Bus.model_validate({"id": "b", "type": "gb26875", "mode": "serial", "port": 5000})
    with pytest.raises(ValidationError, match="TCP port"):
        Gb26875Bus.model_validate({"id": "b", "type": "gb26875", "port": "/dev/ttyUSB0"})
    with pytest.raises(ValidationError, match="needs 'host'"):
        Gb26875Bus.model_validate({"id": "b", "type": "gb26875", "mode": "client", "port": 5000})
