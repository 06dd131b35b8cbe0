"""Merging a device's ``points:`` patches over its profile, and effective device settings."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.modbus.config import ModbusDeviceConfig as DeviceConfig
from drivers.modbus.config import ModbusPointPatch as PointPatch
from drivers.modbus.config import ModbusProfile as ProfileConfig
from drivers.modbus.config import ModbusRtuBus
from drivers.modbus.plugin import MODBUS, endpoint_of, read_limits
from drivers.modbus.types import DataType, Table
from edge.config.profiles import merge_points, resolve_device

PROFILE = ProfileConfig.model_validate(
    {
        "id": "meter",
        "name": "Meter",
        "family": "meter",
        "source": "typical",
        "defaults": {"poll_interval_s": 7, "max_gap": 3, "report": {"deadband_abs": 0.5}},
        "points": [
            {"id": "v", "table": "input", "address": 0, "type": "float32", "unit": "V", "valid_max": 500},
            {"id": "i", "table": "input", "address": 2, "type": "float32", "unit": "A"},
            {"id": "e", "table": "input", "address": 10, "type": "float32", "unit": "kWh"},
        ],
    }
)
WHERE = ("devices", 4)


def merge(patches: list[dict[str, Any]], profile: ProfileConfig | None = PROFILE) -> Any:
    return merge_points(profile, [PointPatch.model_validate(p) for p in patches], patches, WHERE, MODBUS)


def test_no_patches_keeps_the_profile_points() -> None:
    result = merge([])
    assert result.points == tuple(PROFILE.points)
    assert result.patch_of_point == (None, None, None)
    assert result.issues == []


def test_patch_changes_only_the_fields_it_names() -> None:
    result = merge([{"id": "i", "scale": 0.01, "unit": "mA"}])
    point = result.points[1]
    assert (point.scale, point.unit, point.address, point.type) == (0.01, "mA", 2, DataType.FLOAT32)
    assert result.points[0] is PROFILE.points[0]
    assert result.patch_of_point == (None, 0, None)


def test_enabled_false_removes_the_point() -> None:
    result = merge([{"id": "v", "enabled": False}])
    assert [p.id for p in result.points] == ["i", "e"]


def test_new_point_is_appended_after_the_profile_points() -> None:
    result = merge(
        [{"id": "pf", "table": "input", "address": 20, "type": "float32"}, {"id": "i", "unit": "mA"}]
    )
    assert [p.id for p in result.points] == ["v", "i", "e", "pf"]
    assert result.patch_of_point == (None, 1, None, 0)


def test_new_point_must_be_complete() -> None:
    result = merge([{"id": "pf", "type": "float32"}])
    assert [(i.loc, i.message.split(" (")[0]) for i in result.issues] == [
        (("devices", 4, "points", 0, "address"), "missing required key 'address'")
    ]
    assert "not in profile 'meter'" in result.issues[0].message


def test_patch_is_validated_together_with_the_profile_point() -> None:
    result = merge([{"id": "v", "valid_min": 600}])
    assert [i.loc for i in result.issues] == [("devices", 4, "points", 0, "valid_min")]
    assert "valid_min is above valid_max" in result.issues[0].message


def test_patch_may_not_make_an_input_register_writable() -> None:
    result = merge([{"id": "e", "access": "rw"}])
    assert [i.loc for i in result.issues] == [("devices", 4, "points", 0, "access")]


def test_patch_may_move_a_point_to_another_table() -> None:
    result = merge([{"id": "e", "table": "holding", "access": "rw"}])
    assert result.points[2].table is Table.HOLDING and not result.issues


def test_disabling_an_unknown_point_is_a_mistake() -> None:
    result = merge([{"id": "nope", "enabled": False}])
    assert [i.loc for i in result.issues] == [("devices", 4, "points", 0, "id")]


def test_without_profile_every_patch_is_a_full_point() -> None:
    result = merge([{"id": "a", "address": 1}, {"id": "b"}], profile=None)
    assert [p.id for p in result.points] == ["a"]
    assert [i.message for i in result.issues] == ["missing required key 'address'"]


BUS = ModbusRtuBus(id="rs485", type="modbus_rtu", port="/dev/ttyUSB0", timeout_ms=250, retries=4)


@pytest.mark.parametrize(
    ("device_fields", "expected"),
    [
        (
            {},
            {
                "poll_interval_s": 7.0,
                "timeout_ms": 250,
                "retries": 4,
                "max_gap": 3,
                "max_registers_per_read": 125,
            },
        ),
        (
            {
                "poll_interval_s": 1,
                "timeout_ms": 90,
                "retries": 0,
                "max_gap": 0,
                "max_registers_per_read": 10,
            },
            {
                "poll_interval_s": 1.0,
                "timeout_ms": 90,
                "retries": 0,
                "max_gap": 0,
                "max_registers_per_read": 10,
            },
        ),
    ],
)
def test_effective_settings(device_fields: dict[str, Any], expected: dict[str, Any]) -> None:
    device = DeviceConfig.model_validate({"id": "m", "bus": "rs485", "profile": "meter", **device_fields})
    resolved = resolve_device(device, BUS, PROFILE, merge([]), MODBUS)
    effective = {"poll_interval_s": resolved.poll_interval_s, "timeout_ms": resolved.timeout_ms}
    effective |= {"retries": resolved.retries, **read_limits(resolved)}
    assert {key: effective[key] for key in expected} == expected
    assert resolved.report.deadband_abs == 0.5
    assert endpoint_of(resolved) == "/dev/ttyUSB0"


def test_effective_settings_without_profile_use_the_model_defaults() -> None:
    device = DeviceConfig.model_validate({"id": "m", "bus": "rs485", "points": [{"id": "a", "address": 0}]})
    merged = merge_points(None, device.points, [{"id": "a", "address": 0}], WHERE, MODBUS)
    resolved = resolve_device(device, BUS, None, merged, MODBUS)
    assert resolved.poll_interval_s == 5.0 and resolved.report.heartbeat_s == 300.0
