"""Modbus driver: pure codec and planner, the TCP link on its own MBAP client, the device driver.

::

    from drivers.modbus import ModbusDevice, ModbusTcpLink

    async with ModbusTcpLink("10.0.0.7", 502, timeout_ms=1000, retries=1) as link:
        meter = ModbusDevice("meter-1", unit=3, link=link, points=profile.points)
        for block in meter.poll_groups():
            readings = await meter.read(block)

Several devices (unit ids) behind one TCP-to-RTU bridge share one link; the link lets one
request through at a time.
"""

from drivers.modbus.codec import Decoder, compile_decoder, decode, encode, get_bit, set_bit
from drivers.modbus.device import ModbusDevice, ModbusLink, ModbusPoint
from drivers.modbus.planner import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    BlockPoint,
    ReadBlock,
    plan_reads,
)
from drivers.modbus.tcp import LinkStats, ModbusTcpLink
from drivers.modbus.types import DataType, RegisterSpec, Table, WordOrder, register_count

__all__ = [
    "MAX_BITS_PER_READ",
    "MAX_REGISTERS_PER_READ",
    "BlockPoint",
    "DataType",
    "Decoder",
    "LinkStats",
    "ModbusDevice",
    "ModbusLink",
    "ModbusPoint",
    "ModbusTcpLink",
    "ReadBlock",
    "RegisterSpec",
    "Table",
    "WordOrder",
    "compile_decoder",
    "decode",
    "encode",
    "get_bit",
    "plan_reads",
    "register_count",
    "set_bit",
]
