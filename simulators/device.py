"""One simulated device: a behaviour model, its register image, its faults, and the PDU handler.

``handle_pdu`` is the whole Modbus application layer (function codes 1-6, 15, 16) and is pure:
bytes in, bytes out. The TCP and RTU servers only frame it and apply the device's faults.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.model import Value
from drivers.modbus.types import Table
from simulators.faults import FaultState
from simulators.models import DeviceModel, make_model
from simulators.profile import SimProfile
from simulators.registers import ILLEGAL_VALUE, ModbusRefusal, RegisterImage

__all__ = ["ILLEGAL_FUNCTION", "SimulatedDevice", "exception_pdu"]

_LOG = structlog.get_logger(__name__)

ILLEGAL_FUNCTION = 0x01
DEVICE_FAILURE = 0x04

_READ_TABLES = {1: Table.COIL, 2: Table.DISCRETE_INPUT, 3: Table.HOLDING, 4: Table.INPUT}
_MAX_READ = {1: 2000, 2: 2000, 3: 125, 4: 125}


def exception_pdu(function: int, code: int) -> bytes:
    return bytes((function | 0x80, code))


@dataclass(slots=True)
class SimulatedDevice:
    id: str
    profile: SimProfile
    model: DeviceModel
    image: RegisterImage
    faults: FaultState = field(default_factory=FaultState)
    meta: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        device_id: str,
        profile: SimProfile,
        *,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> SimulatedDevice:
        model = make_model(profile.family, seed=seed, params=params)
        image = RegisterImage(profile.points)
        image.refresh(model.values())
        return cls(
            device_id, profile, model, image, meta=dict(meta or {}), seed=seed, params=dict(params or {})
        )

    def restart(self) -> None:
        """Power-cycle the device: a fresh model, no scenarios, no faults."""
        self.model = make_model(self.profile.family, seed=self.seed, params=self.params)
        self.faults = FaultState()
        self.image.refresh(self.model.values())

    def tick(self, dt_s: float) -> None:
        self.model.step(dt_s)
        self.image.refresh(self.model.values())

    def values(self) -> dict[str, Value]:
        """The model's values for the points of the profile (what the gateway should read)."""
        model_values = self.model.values()
        return {p.id: model_values[p.id] for p in self.profile.points if p.id in model_values}

    def inject(self, scenario: str, params: Mapping[str, Any]) -> None:
        self.model.inject(scenario, params)
        self.image.refresh(self.model.values())

    def clear(self, scenario: str | None) -> list[str]:
        cleared = self.model.clear(scenario)
        self.image.refresh(self.model.values())
        return cleared

    def handle_pdu(self, pdu: bytes) -> bytes:
        """Answer one request PDU with a response PDU (possibly an exception response)."""
        self.requests += 1
        if not pdu:
            return exception_pdu(0, ILLEGAL_FUNCTION)
        function = pdu[0]
        try:
            return self._dispatch(function, pdu)
        except ModbusRefusal as exc:
            return exception_pdu(function, exc.code)
        except (struct.error, IndexError):
            return exception_pdu(function, ILLEGAL_VALUE)
        except ValueError as exc:
            # The model refused a written value: a real device answers "device failure".
            _LOG.warning("simulated device refused a write", device=self.id, error=str(exc))
            return exception_pdu(function, DEVICE_FAILURE)

    def _dispatch(self, function: int, pdu: bytes) -> bytes:
        if function in _READ_TABLES:
            address, count = struct.unpack(">HH", pdu[1:5])
            if not 1 <= count <= _MAX_READ[function]:
                raise ModbusRefusal(ILLEGAL_VALUE)
            table = _READ_TABLES[function]
            values = self.image.read(table, address, count)
            if table.is_bits:
                packed = _pack_bits(values)
                return bytes((function, len(packed))) + packed
            return bytes((function, 2 * count)) + struct.pack(f">{count}H", *values)
        if function == 5:
            address, raw = struct.unpack(">HH", pdu[1:5])
            if raw not in (0x0000, 0xFF00):
                raise ModbusRefusal(ILLEGAL_VALUE)
            self._apply(Table.COIL, address, [1 if raw else 0])
            return pdu[:5]
        if function == 6:
            address, raw = struct.unpack(">HH", pdu[1:5])
            self._apply(Table.HOLDING, address, [raw])
            return pdu[:5]
        if function == 15:
            address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
            bits = _unpack_bits(pdu[6 : 6 + nbytes], count)
            self._apply(Table.COIL, address, bits)
            return pdu[:5]
        if function == 16:
            address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
            if nbytes != 2 * count:
                raise ModbusRefusal(ILLEGAL_VALUE)
            regs = list(struct.unpack(f">{count}H", pdu[6 : 6 + nbytes]))
            self._apply(Table.HOLDING, address, regs)
            return pdu[:5]
        raise ModbusRefusal(ILLEGAL_FUNCTION)

    def _apply(self, table: Table, address: int, values: list[int]) -> None:
        for write in self.image.write(table, address, values):
            accepted = self.model.apply_write(write.point_id, write.value)
            _LOG.debug(
                "simulator write", device=self.id, point=write.point_id, value=write.value, accepted=accepted
            )
        # The model decides what the registers show after a command (e.g. a reset coil reads 0).
        self.image.refresh(self.model.values())


def _pack_bits(bits: list[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> list[int]:
    return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
