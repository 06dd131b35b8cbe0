"""The register image and the PDU handler: encode through the shared codec, decode writes back."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus.codec import decode
from drivers.modbus.types import DataType, Table, WordOrder
from simulators.device import SimulatedDevice
from simulators.faults import FaultState, plan
from simulators.profile import PROFILE_DIR, SimPoint, SimProfile, load_profile_file
from simulators.registers import ILLEGAL_ADDRESS, ModbusRefusal, RegisterImage


def test_bits_of_one_register_are_merged() -> None:
    a = SimPoint("a", Table.INPUT, 6, DataType.BIT, bit=0)
    b = SimPoint("b", Table.INPUT, 6, DataType.BIT, bit=2)
    image = RegisterImage([a, b])
    image.refresh({"a": True, "b": True})
    assert image.read(Table.INPUT, 6, 1) == [0b101]
    image.refresh({"a": False, "b": True})
    assert image.read(Table.INPUT, 6, 1) == [0b100]


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.sampled_from(list(WordOrder)))
def test_float_round_trip_through_the_codec(value: float, order: WordOrder) -> None:
    point = SimPoint("x", Table.HOLDING, 10, DataType.FLOAT32, order=order)
    image = RegisterImage([point])
    image.refresh({"x": value})
    got = decode(point, image.read(Table.HOLDING, 10, 2))
    assert got == pytest.approx(value, rel=1e-6, abs=1e-6)


def test_scaled_integer_round_trip() -> None:
    point = SimPoint("level", Table.HOLDING, 4, DataType.INT16, scale=0.01)
    image = RegisterImage([point])
    image.refresh({"level": -1.23})
    assert image.read(Table.HOLDING, 4, 1) == [(-123) & 0xFFFF]


def test_reads_of_unmapped_ranges_are_refused_but_gaps_read_as_zero() -> None:
    image = RegisterImage([SimPoint("a", Table.HOLDING, 0), SimPoint("b", Table.HOLDING, 5)])
    image.refresh({"a": 7, "b": 9})
    assert image.read(Table.HOLDING, 0, 6) == [7, 0, 0, 0, 0, 9]
    with pytest.raises(ModbusRefusal) as info:
        image.read(Table.HOLDING, 100, 2)
    assert info.value.code == ILLEGAL_ADDRESS


def test_writes_to_read_only_points_are_refused() -> None:
    image = RegisterImage([SimPoint("ro", Table.HOLDING, 0), SimPoint("rw", Table.HOLDING, 1, access="rw")])
    with pytest.raises(ModbusRefusal):
        image.write(Table.HOLDING, 0, [5])
    writes = image.write(Table.HOLDING, 1, [5])
    assert [(w.point_id, w.value) for w in writes] == [("rw", 5)]


def test_a_value_that_does_not_fit_keeps_the_old_registers() -> None:
    point = SimPoint("small", Table.HOLDING, 0, DataType.UINT16)
    image = RegisterImage([point])
    image.refresh({"small": 12})
    image.refresh({"small": -5})
    assert image.read(Table.HOLDING, 0, 1) == [12]


def _charger() -> SimulatedDevice:
    return SimulatedDevice.build("c1", load_profile_file(PROFILE_DIR / "abb-terra-ac.yaml"))


def test_pdu_read_holding_registers() -> None:
    device = _charger()
    response = device.handle_pdu(struct.pack(">BHH", 3, 0x400C, 2))
    assert response[:2] == bytes((3, 4))
    assert struct.unpack(">I", response[2:6])[0] == 0x8000  # idle


def test_pdu_write_multiple_registers_reaches_the_model() -> None:
    device = _charger()
    device.inject("plug_in", {"needs_kwh": 20})
    device.tick(2.0)
    pdu = struct.pack(">BHHBI", 16, 0x4100, 2, 4, 10_000)  # 10 A in mA
    assert device.handle_pdu(pdu) == pdu[:5]
    assert device.values()["current_l1_a"] == pytest.approx(10.0)


def test_pdu_errors_are_exception_responses() -> None:
    device = _charger()
    assert device.handle_pdu(bytes((0x2B, 0x0E, 1, 0))) == bytes((0xAB, 0x01))  # unsupported function
    assert device.handle_pdu(struct.pack(">BHH", 3, 0, 2)) == bytes((0x83, 0x02))  # nothing mapped there
    assert device.handle_pdu(struct.pack(">BHH", 3, 0x4000, 200)) == bytes((0x83, 0x03))  # too many
    assert device.handle_pdu(struct.pack(">BHH", 6, 0x400C, 1)) == bytes((0x86, 0x02))  # read-only


def test_coil_write_and_bit_read() -> None:
    device = SimulatedDevice.build("door", load_profile_file(PROFILE_DIR / "access-door.yaml"))
    assert device.handle_pdu(struct.pack(">BHH", 5, 0, 0xFF00)) == struct.pack(">BHH", 5, 0, 0xFF00)
    response = device.handle_pdu(struct.pack(">BHH", 2, 0, 6))
    bits = response[2]
    assert bits & 0b100  # released
    assert not bits & 0b010  # not locked


def test_fault_plans() -> None:
    state = FaultState()
    assert plan(state).send and plan(state).delay_s == 0
    state.inject("slow", {"delay_ms": 250})
    assert plan(state).delay_s == pytest.approx(0.25)
    state.inject("exception", {"code": 6})
    assert plan(state).exception_code == 6
    state.inject("comm_loss", {})
    assert not plan(state).send
    assert set(state.active()) == {"slow", "exception", "comm_loss"}
    assert sorted(state.clear()) == ["comm_loss", "exception", "slow"]
    with pytest.raises(ValueError):
        state.inject("exception", {"code": 99})


def test_profile_reader_matches_a_hand_written_profile() -> None:
    profile = SimProfile(
        "t", "switch_room", (SimPoint("temperature_c", Table.INPUT, 0, DataType.INT16, scale=0.1),)
    )
    device = SimulatedDevice.build("sr", profile)
    regs = device.image.read(Table.INPUT, 0, 1)
    assert decode(profile.points[0], regs) == pytest.approx(device.values()["temperature_c"])
