"""Plant models with simple physics for the BACnet simulator: an air-handling unit, a chilled-
water plant, a smoke-control fan set (the tower fire linkage drives its fans), and a bank of
plain points for benchmarks.

A model lists its objects and moves its inputs once per tick from its outputs (first-order
lags: a fan's status follows its command after a start delay, a supply-air temperature
follows the cooling valve). Objects out of service are left alone by ``Plant.set``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.bacnet.objects import ObjectSpec

__all__ = ["AirHandler", "ChillerPlant", "MODELS", "Model", "PointBank", "SmokeFans"]

Get = Callable[[str], float | bool | int]
Set = Callable[[str, float | bool | int], None]


def _lag(current: float, target: float, tau_s: float, dt: float) -> float:
    return target + (current - target) * math.exp(-dt / tau_s)


@dataclass
class Model:
    """A device model: its objects and one physics step."""

    model_name: str = "GH-SIM"
    elapsed_s: float = 0.0

    def objects(self) -> list[ObjectSpec]:
        raise NotImplementedError

    def step(self, dt: float, get: Get, put: Set) -> None:
        """Advance ``dt`` seconds (reads with ``get``, moves inputs with ``put``)."""


@dataclass
class AirHandler(Model):
    model_name: str = "GH-AHU-200"

    def objects(self) -> list[ObjectSpec]:
        return [
            ObjectSpec(
                "analog-input",
                1,
                "SA-T",
                16.0,
                "degrees-celsius",
                "supply air temperature",
                cov_increment=0.2,
            ),
            ObjectSpec(
                "analog-input",
                2,
                "RA-T",
                24.0,
                "degrees-celsius",
                "return air temperature",
                cov_increment=0.2,
            ),
            ObjectSpec(
                "analog-input",
                3,
                "OA-T",
                31.0,
                "degrees-celsius",
                "outside air temperature",
                cov_increment=0.5,
            ),
            ObjectSpec(
                "analog-input", 4, "SA-P", 0.0, "pascals", "supply duct static pressure", cov_increment=5.0
            ),
            ObjectSpec(
                "analog-input",
                5,
                "FLT-DP",
                80.0,
                "pascals",
                "filter differential pressure",
                cov_increment=5.0,
            ),
            ObjectSpec(
                "analog-output",
                1,
                "CLG-VLV",
                0.0,
                "percent",
                "cooling valve",
                relinquish_default=0.0,
                cov_increment=1.0,
            ),
            ObjectSpec(
                "analog-output",
                2,
                "SF-SPD",
                0.0,
                "percent",
                "supply fan speed",
                relinquish_default=60.0,
                cov_increment=1.0,
            ),
            ObjectSpec(
                "analog-output",
                3,
                "OA-DMP",
                0.0,
                "percent",
                "outside air damper",
                relinquish_default=20.0,
                cov_increment=1.0,
            ),
            ObjectSpec(
                "analog-value",
                1,
                "SAT-SP",
                16.0,
                "degrees-celsius",
                "supply air setpoint",
                relinquish_default=16.0,
                cov_increment=0.1,
            ),
            ObjectSpec(
                "binary-output", 1, "SF-C", False, description="supply fan command", relinquish_default=True
            ),
            ObjectSpec("binary-input", 1, "SF-S", False, description="supply fan status"),
            ObjectSpec("binary-value", 1, "OCC", True, description="occupied", relinquish_default=True),
            ObjectSpec(
                "multi-state-value",
                1,
                "MODE",
                2,
                description="unit mode",
                relinquish_default=2,
                states=("off", "cool", "heat", "auto"),
            ),
        ]

    def step(self, dt: float, get: Get, put: Set) -> None:
        self.elapsed_s += dt
        running = bool(get("binary-output,1"))
        put("binary-input,1", running)
        speed = float(get("analog-output,2")) if running else 0.0
        put("analog-input,4", _lag(float(get("analog-input,4")), 5.0 * speed, 3.0, dt))
        valve = float(get("analog-output,1"))
        mixed = 0.8 * float(get("analog-input,2")) + 0.2 * float(get("analog-input,3"))
        target = mixed - (0.14 * valve if running else 0.0)
        put("analog-input,1", _lag(float(get("analog-input,1")), target, 20.0, dt))
        put("analog-input,3", 31.0 + 3.0 * math.sin(self.elapsed_s / 600.0))


@dataclass
class ChillerPlant(Model):
    model_name: str = "GH-CHW-2"

    def objects(self) -> list[ObjectSpec]:
        return [
            ObjectSpec(
                "analog-input",
                1,
                "CHWS-T",
                12.0,
                "degrees-celsius",
                "chilled water supply",
                cov_increment=0.1,
            ),
            ObjectSpec(
                "analog-input",
                2,
                "CHWR-T",
                12.5,
                "degrees-celsius",
                "chilled water return",
                cov_increment=0.1,
            ),
            ObjectSpec(
                "analog-input", 3, "CHW-F", 0.0, "liters-per-second", "chilled water flow", cov_increment=0.5
            ),
            ObjectSpec("analog-input", 4, "CH1-KW", 0.0, "kilowatts", "chiller 1 power", cov_increment=2.0),
            ObjectSpec(
                "analog-value",
                1,
                "CHWS-SP",
                7.0,
                "degrees-celsius",
                "chilled water setpoint",
                relinquish_default=7.0,
                cov_increment=0.1,
            ),
            ObjectSpec(
                "binary-output", 1, "CH1-EN", False, description="chiller 1 enable", relinquish_default=True
            ),
            ObjectSpec("binary-input", 1, "CH1-S", False, description="chiller 1 running"),
            ObjectSpec(
                "binary-output",
                2,
                "CHWP1-C",
                False,
                description="chilled water pump 1",
                relinquish_default=True,
            ),
            ObjectSpec("binary-input", 2, "CHWP1-S", False, description="chilled water pump 1 running"),
            ObjectSpec(
                "multi-state-value",
                1,
                "PLANT-MODE",
                2,
                description="plant mode",
                relinquish_default=2,
                states=("off", "auto", "manual"),
            ),
        ]

    def step(self, dt: float, get: Get, put: Set) -> None:
        pump = bool(get("binary-output,2"))
        put("binary-input,2", pump)
        put("analog-input,3", _lag(float(get("analog-input,3")), 45.0 if pump else 0.0, 4.0, dt))
        chiller = bool(get("binary-output,1")) and pump  # flow interlock
        put("binary-input,1", chiller)
        setpoint = float(get("analog-value,1"))
        supply = float(get("analog-input,1"))
        target = setpoint if chiller else float(get("analog-input,2"))
        put("analog-input,1", _lag(supply, target, 30.0, dt))
        put("analog-input,2", _lag(float(get("analog-input,2")), supply + (5.0 if pump else 0.5), 60.0, dt))
        load = max(0.0, float(get("analog-input,2")) - supply) * 40.0 if chiller else 0.0
        put("analog-input,4", _lag(float(get("analog-input,4")), load, 10.0, dt))


@dataclass
class SmokeFans(Model):
    """Two smoke-exhaust fans with dampers: a fire linkage starts the fans (binary-output,1/2)
    at priority; their status follows after a start delay while the damper is open."""

    model_name: str = "GH-SMK-2"
    start_delay_s: float = 1.0
    _since: dict[int, float] = field(default_factory=dict)

    def objects(self) -> list[ObjectSpec]:
        out: list[ObjectSpec] = []
        for n in (1, 2):
            out += [
                ObjectSpec(
                    "binary-output",
                    n,
                    f"SEF{n}-C",
                    False,
                    description=f"smoke exhaust fan {n} command",
                    relinquish_default=False,
                ),
                ObjectSpec(
                    "binary-input", n, f"SEF{n}-S", False, description=f"smoke exhaust fan {n} running"
                ),
                ObjectSpec(
                    "binary-output",
                    10 + n,
                    f"SD{n}-C",
                    False,
                    description=f"smoke damper {n} command",
                    relinquish_default=False,
                ),
                ObjectSpec("binary-input", 10 + n, f"SD{n}-O", False, description=f"smoke damper {n} open"),
                ObjectSpec(
                    "analog-input",
                    n,
                    f"SEF{n}-A",
                    0.0,
                    "amperes",
                    f"smoke exhaust fan {n} current",
                    cov_increment=0.5,
                ),
            ]
        out.append(
            ObjectSpec(
                "multi-state-value",
                1,
                "SMK-MODE",
                1,
                description="smoke control mode",
                relinquish_default=1,
                states=("auto", "manual", "fire"),
            )
        )
        return out

    def step(self, dt: float, get: Get, put: Set) -> None:
        for n in (1, 2):
            put(f"binary-input,{10 + n}", bool(get(f"binary-output,{10 + n}")))
            command = bool(get(f"binary-output,{n}"))
            if command:
                self._since[n] = self._since.get(n, 0.0) + dt
            else:
                self._since[n] = 0.0
            running = command and self._since[n] >= self.start_delay_s
            put(f"binary-input,{n}", running)
            put(f"analog-input,{n}", _lag(float(get(f"analog-input,{n}")), 18.0 if running else 0.0, 1.0, dt))


@dataclass
class PointBank(Model):
    """``count`` analog inputs (for benchmarks): no physics, values set from outside."""

    model_name: str = "GH-BENCH"
    count: int = 100

    def objects(self) -> list[ObjectSpec]:
        return [
            ObjectSpec("analog-input", i, f"AI-{i}", float(i), "percent", f"bench point {i}")
            for i in range(1, self.count + 1)
        ]


MODELS: dict[str, type[Model]] = {
    "ahu": AirHandler,
    "chiller": ChillerPlant,
    "smoke-fans": SmokeFans,
    "bank": PointBank,
}
