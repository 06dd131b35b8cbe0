"""Plant models the OPC UA simulator serves: a pump station and a lift group controller, with
simple physics and named scenarios, plus a synthetic block of variables for benchmarks.

Pure Python, no asyncua: each model lists its variables (path, type, writable, value) and
``step(dt_s)`` advances the physics. The server copies values in and out around each step, so a
client's write (a setpoint, a pump start, a fire recall) takes effect on the next step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SCENARIOS", "BenchBlock", "LiftGroup", "Model", "PumpStation", "Variable", "VarType"]

VarType = Literal["bool", "int16", "int32", "float", "double", "string"]


@dataclass(slots=True)
class Variable:
    """One variable of a model: ``path`` below the model's object, e.g. ``Pump1/Running``."""

    path: str
    type: VarType
    value: bool | int | float | str
    writable: bool = False
    unit: str | None = None  # engineering unit shown as EUInformation (analog values)
    description: str = ""


class Model:
    """A simulated device: a named object with variables and physics."""

    name: str
    variables: dict[str, Variable]

    def __init__(self, name: str) -> None:
        self.name = name
        self.variables = {}

    def add(self, variable: Variable) -> None:
        self.variables[variable.path] = variable

    def get(self, path: str) -> bool | int | float | str:
        return self.variables[path].value

    def set(self, path: str, value: bool | int | float | str) -> None:
        self.variables[path].value = value

    def step(self, dt_s: float) -> None:
        """Advance the physics by ``dt_s`` seconds."""

    def step_changed(self, dt_s: float) -> list[Variable]:
        """``step(dt_s)``, returning the variables whose value it changed."""
        before = [variable.value for variable in self.variables.values()]
        self.step(dt_s)
        return [
            variable
            for variable, old in zip(self.variables.values(), before, strict=True)
            if variable.value != old
        ]

    def scenario(self, name: str) -> None:
        raise ValueError(f"{self.name} has no scenario {name!r}")


class PumpStation(Model):
    """A booster pump station: a suction tank, two pumps on pressure control, a demand.

    Pressure follows the running pumps with a first-order lag and sags with demand; the tank
    drains with the flow and refills at a fixed inflow. In automatic the controller starts the
    next healthy pump below setpoint − 0.05 MPa and stops one above setpoint + 0.10 MPa.
    """

    def __init__(self, name: str = "PumpStation1", *, seed: int = 1) -> None:
        super().__init__(name)
        self._rng = random.Random(seed)
        self.demand_lps = 4.0
        self.inflow_lps = 6.0
        self.tank_area_m2 = 20.0
        for v in (
            Variable("Pressure", "double", 0.55, unit="MPa", description="discharge header pressure"),
            Variable("Flow", "double", 4.0, unit="L/s", description="outlet flow"),
            Variable("TankLevel", "double", 3.2, unit="m", description="suction tank level"),
            Variable("PressureSetpoint", "double", 0.6, writable=True, unit="MPa"),
            Variable("Auto", "bool", True, writable=True, description="pressure control in automatic"),
            Variable("Pump1/Running", "bool", True),
            Variable("Pump1/Fault", "bool", False),
            Variable("Pump1/Start", "bool", False, writable=True, description="manual start (Auto off)"),
            Variable("Pump1/Speed", "float", 42.0, unit="Hz"),
            Variable("Pump2/Running", "bool", False),
            Variable("Pump2/Fault", "bool", False),
            Variable("Pump2/Start", "bool", False, writable=True, description="manual start (Auto off)"),
            Variable("Pump2/Speed", "float", 0.0, unit="Hz"),
            Variable("RunHours", "int32", 1200, unit="h"),
            Variable("Status", "string", "normal"),
        ):
            self.add(v)

    def step(self, dt_s: float) -> None:
        pumps = ("Pump1", "Pump2")
        for pump in pumps:
            if self.get(f"{pump}/Fault"):
                self.set(f"{pump}/Running", False)
        if self.get("Auto"):
            self._control()
        else:
            for pump in pumps:
                self.set(f"{pump}/Running", bool(self.get(f"{pump}/Start")) and not self.get(f"{pump}/Fault"))
        running = sum(1 for p in pumps if self.get(f"{p}/Running"))
        level = float(self.get("TankLevel"))
        suction_ok = level > 0.3
        capacity = 12.0 * running if suction_ok else 0.0
        flow = min(self.demand_lps * (1 + 0.03 * self._rng.uniform(-1, 1)), capacity)
        target = (0.25 + 0.35 * running - 0.004 * flow) if suction_ok and running else 0.05
        pressure = float(self.get("Pressure"))
        pressure += (target - pressure) * min(1.0, dt_s / 3.0)
        level += (self.inflow_lps - flow) / 1000.0 / self.tank_area_m2 * dt_s
        self.set("Pressure", round(max(0.0, pressure), 4))
        self.set("Flow", round(max(0.0, flow), 3))
        self.set("TankLevel", round(min(5.0, max(0.0, level)), 4))
        for pump in pumps:
            self.set(
                f"{pump}/Speed", 42.0 + self._rng.uniform(-0.5, 0.5) if self.get(f"{pump}/Running") else 0.0
            )

    def _control(self) -> None:
        setpoint = float(self.get("PressureSetpoint"))
        pressure = float(self.get("Pressure"))
        healthy = [p for p in ("Pump1", "Pump2") if not self.get(f"{p}/Fault")]
        running = [p for p in healthy if self.get(f"{p}/Running")]
        if pressure < setpoint - 0.05:
            for pump in healthy:
                if pump not in running:
                    self.set(f"{pump}/Running", True)
                    break
        elif pressure > setpoint + 0.10 and len(running) > 1:
            self.set(f"{running[-1]}/Running", False)

    def scenario(self, name: str) -> None:
        """``normal``; ``pump1_fault``; ``low_pressure`` (both pumps fail); ``fire_demand``
        (a hydrant draws 20 L/s); ``tank_low`` (inflow lost, tank nearly empty)."""
        if name == "normal":
            self.demand_lps, self.inflow_lps = 4.0, 6.0
            for pump in ("Pump1", "Pump2"):
                self.set(f"{pump}/Fault", False)
            self.set("Status", "normal")
        elif name == "pump1_fault":
            self.set("Pump1/Fault", True)
            self.set("Status", "pump 1 fault")
        elif name == "low_pressure":
            self.set("Pump1/Fault", True)
            self.set("Pump2/Fault", True)
            self.set("Status", "both pumps faulted")
        elif name == "fire_demand":
            self.demand_lps = 20.0
            self.set("Status", "fire demand")
        elif name == "tank_low":
            self.inflow_lps = 0.0
            self.set("TankLevel", 0.4)
            self.set("Status", "inflow lost")
        else:
            super().scenario(name)


@dataclass(slots=True)
class _Car:
    floor: int = 1
    target: int = 1
    direction: int = 0  # 0 stop, 1 up, 2 down
    door: int = 0  # 0 closed, 1 open, 2 closing, 3 opening
    door_timer_s: float = 0.0
    travel_s: float = 0.0
    fault: int = 0
    stops: list[int] = field(default_factory=list)


class LiftGroup(Model):
    """A lift group controller with ``cars`` cars over ``floors`` floors.

    Cars travel a floor every 2 s, open their doors for 4 s at a stop, and pick random calls.
    ``FireRecall`` (writable) sends every car to the recall floor, where it stops with its
    doors open. Fault codes follow the GB/T 24476 numbering (2 = door-close fault, ...).
    """

    FLOOR_TIME_S = 2.0
    DOOR_OPEN_S = 4.0
    DOOR_MOVE_S = 1.5

    def __init__(self, name: str = "LiftGroup1", *, cars: int = 3, floors: int = 18, seed: int = 2) -> None:
        super().__init__(name)
        self._rng = random.Random(seed)
        self.floors = floors
        self.recall_floor = 1
        self.cars = [_Car(floor=1 + i * (floors // max(cars, 1)) % floors) for i in range(cars)]
        self.add(Variable("FireRecall", "bool", False, writable=True, description="fire recall command"))
        self.add(Variable("RecallFloor", "int16", 1, writable=True))
        for n, car in enumerate(self.cars, start=1):
            self.add(Variable(f"Car{n}/Floor", "int16", car.floor))
            self.add(Variable(f"Car{n}/Direction", "int16", 0, description="0 stop, 1 up, 2 down"))
            self.add(
                Variable(f"Car{n}/Door", "int16", 0, description="0 closed, 1 open, 2 closing, 3 opening")
            )
            self.add(Variable(f"Car{n}/Fault", "int16", 0, description="GB/T 24476 fault code, 0 none"))
            self.add(
                Variable(f"Car{n}/FireRecalled", "bool", False, description="at the recall floor, doors open")
            )

    def step(self, dt_s: float) -> None:
        recall = bool(self.get("FireRecall"))
        self.recall_floor = int(self.get("RecallFloor"))
        for n, car in enumerate(self.cars, start=1):
            self._move(car, dt_s, recall)
            self.set(f"Car{n}/Floor", car.floor)
            self.set(f"Car{n}/Direction", car.direction)
            self.set(f"Car{n}/Door", car.door)
            self.set(f"Car{n}/Fault", car.fault)
            self.set(f"Car{n}/FireRecalled", recall and car.floor == self.recall_floor and car.door == 1)

    def _move(self, car: _Car, dt_s: float, recall: bool) -> None:
        if car.fault:
            car.direction = 0
            return
        if recall:
            car.target = self.recall_floor
        if car.door in (1, 2, 3):
            car.door_timer_s -= dt_s
            if car.door_timer_s > 0:
                return
            if car.door == 3:
                car.door, car.door_timer_s = 1, self.DOOR_OPEN_S
            elif car.door == 1:
                if recall and car.floor == self.recall_floor:
                    car.door_timer_s = self.DOOR_OPEN_S  # parked open until the recall ends
                    return
                car.door, car.door_timer_s = 2, self.DOOR_MOVE_S
            else:
                car.door = 0
            return
        if car.floor == car.target:
            car.direction = 0
            if recall or self._rng.random() < min(1.0, dt_s / 3.0):
                if not recall:
                    car.target = self._rng.randint(1, self.floors)
                if car.floor == car.target:
                    car.door, car.door_timer_s = 3, self.DOOR_MOVE_S
            return
        car.direction = 1 if car.target > car.floor else 2
        car.travel_s += dt_s
        if car.travel_s >= self.FLOOR_TIME_S:
            car.travel_s = 0.0
            car.floor += 1 if car.direction == 1 else -1
            if car.floor == car.target:
                car.door, car.door_timer_s = 3, self.DOOR_MOVE_S

    def scenario(self, name: str) -> None:
        """``normal``; ``fire_recall``; ``car_fault`` (car 2 door-close fault, code 2)."""
        if name == "normal":
            self.set("FireRecall", False)
            for car in self.cars:
                car.fault = 0
        elif name == "fire_recall":
            self.set("FireRecall", True)
        elif name == "car_fault":
            if len(self.cars) >= 2:
                self.cars[1].fault = 2
        else:
            super().scenario(name)


class BenchBlock(Model):
    """``count`` double variables ``V0..V{count-1}`` in folders of ``per_folder`` (``G0/V0``,
    ``G0/V1``, …, ``G1/V100``, …) for benchmarks.

    Each step changes one of ``slices`` equal slices of the variables, in turn, so every
    variable changes once per ``slices`` steps and the changes are spread over that period
    rather than all at one instant. The values are a counter plus a per-variable offset (no
    physics): a step costs next to nothing and always changes every variable of its slice.

    Folders keep the address space cheap to build: asyncua checks a new node's reference
    against every reference of its parent, so 10,000 siblings under one object take minutes.
    """

    def __init__(
        self, name: str = "Bench", *, count: int = 10_000, per_folder: int = 100, slices: int = 1
    ) -> None:
        super().__init__(name)
        if not 1 <= slices <= max(1, count):
            raise ValueError(f"slices must be 1..{max(1, count)}")
        self.count = count
        self.per_folder = per_folder
        self.slices = slices
        self.ticks = 0
        self.changes = 0  # values changed by all steps so far
        for i in range(count):
            self.add(Variable(self.path(i), "double", 0.0))
        ordered = list(self.variables.values())
        bounds = [round(k * count / slices) for k in range(slices + 1)]
        self._slices = [ordered[bounds[k] : bounds[k + 1]] for k in range(slices)]

    def path(self, index: int) -> str:
        """The path of variable ``index`` (its NodeId is ``ns=2;s=<name>.<path with dots>``)."""
        return f"G{index // self.per_folder}/V{index}"

    def step(self, dt_s: float) -> None:
        self.step_changed(dt_s)

    def step_changed(self, dt_s: float) -> list[Variable]:
        part = self._slices[self.ticks % self.slices]
        self.ticks += 1
        base = float(self.ticks)
        for offset, variable in enumerate(part):
            variable.value = base + offset * 1e-6
        self.changes += len(part)
        return part


SCENARIOS: dict[str, tuple[str, ...]] = {
    "PumpStation": ("normal", "pump1_fault", "low_pressure", "fire_demand", "tank_low"),
    "LiftGroup": ("normal", "fire_recall", "car_fault"),
}
