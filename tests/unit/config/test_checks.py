"""Cross-reference checks, on models built in the test (no files)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.config import ModbusDeviceConfig as DeviceConfig
from drivers.modbus.config import ModbusPointConfig as PointConfig
from drivers.modbus.config import ModbusRtuBus, ModbusTcpBus
from drivers.modbus.plugin import find_overlaps
from drivers.modbus.types import DataType
from edge.config.checks import check_buses, check_devices, check_profile_points


def point(**fields: Any) -> PointConfig:
    return PointConfig.model_validate({"id": f"p{fields.get('address', 0)}", **fields})


def test_overlap_of_multi_register_values() -> None:
    points = [point(id="a", address=10, type="float32"), point(id="b", address=11), point(id="c", address=12)]
    assert list(find_overlaps(points)) == [(0, 1)]


def test_same_address_in_different_tables_is_fine() -> None:
    points = [point(id="a", address=0), point(id="b", table="input", address=0)]
    assert list(find_overlaps(points)) == []


def test_bit_points_share_a_register_with_distinct_bits_only() -> None:
    points = [
        point(id="a", address=5, type="bit", bit=0),
        point(id="b", address=5, type="bit", bit=1),
        point(id="c", address=5, type="bit", bit=1),
        point(id="d", address=5),
    ]
    assert sorted(find_overlaps(points)) == [(0, 3), (1, 2), (1, 3), (2, 3)]


def _claims(p: PointConfig) -> set[tuple[str, int, int | None]]:
    """Brute force: every (table, register, bit) a point claims; None claims the whole register."""
    return {(p.table.value, r, p.bit) for r in range(p.address, p.address + p.register_count)}


def _conflict(a: PointConfig, b: PointConfig) -> bool:
    for table, register, bit in _claims(a):
        for table2, register2, bit2 in _claims(b):
            if (table, register) == (table2, register2) and (bit is None or bit2 is None or bit == bit2):
                return True
    return False


_points = st.lists(
    st.builds(
        lambda address, kind, bit: point(
            address=address,
            type=kind,
            **({"bit": bit} if kind == "bit" else {}),
            **({"length": 3} if kind == "string" else {}),
        ),
        st.integers(0, 30),
        st.sampled_from([t.value for t in DataType if t is not DataType.BOOL]),
        st.integers(0, 3),
    ),
    max_size=12,
)


@given(_points)
def test_sweep_finds_exactly_the_conflicting_pairs(points: list[PointConfig]) -> None:
    found = {tuple(sorted(pair)) for pair in find_overlaps(points)}
    expected = {
        (i, j)
        for i in range(len(points))
        for j in range(i + 1, len(points))
        if _conflict(points[i], points[j])
    }
    assert found == expected


def test_profile_points_duplicates_and_overlaps() -> None:
    points = [point(id="a", address=0, type="float32"), point(id="a", address=1)]
    issues = check_profile_points(points, "modbus")
    assert [(i.loc, i.message) for i in issues] == [
        (("points", 1, "id"), "duplicate point id 'a'"),
        (("points", 1, "address"), "point 'a' (holding 1) overlaps point 'a'"),
    ]


def test_duplicate_bus_ids_and_shared_serial_ports() -> None:
    buses = [
        (0, ModbusRtuBus(id="a", type="modbus_rtu", port="/dev/ttyS0")),
        (1, ModbusRtuBus(id="b", type="modbus_rtu", port="/dev/ttyS0")),
        (2, ModbusTcpBus(id="a", type="modbus_tcp", host="h")),
    ]
    assert [i.loc for i in check_buses(buses)] == [("buses", 1, "port"), ("buses", 2, "id")]


def test_devices_against_buses() -> None:
    rtu = ModbusRtuBus(id="rtu", type="modbus_rtu", port="/dev/ttyS0")
    devices = [
        (0, DeviceConfig(id="d", bus="rtu", profile="x", port=1502)),
        (1, DeviceConfig(id="d", bus="ghost", profile="x")),
        (2, DeviceConfig(id="e", bus="broken", profile="x")),
        (3, DeviceConfig(id="f", bus="rtu")),
    ]
    issues = check_devices(devices, {"rtu": rtu}, broken_buses={"broken"})
    # 'port' on an RTU device is the Modbus driver's check, made once profiles are merged.
    assert [(i.loc, i.at_key) for i in issues] == [
        (("devices", 1, "id"), False),
        (("devices", 1, "bus"), False),
        (("devices", 3), False),
    ]
