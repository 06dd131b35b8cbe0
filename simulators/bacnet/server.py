"""``BacnetSimulator``: several simulated BACnet devices on one host, one UDP port each, with
their physics ticking and a small control surface for tests, benches and the demo.

::

    async with BacnetSimulator([SimSpec(1001, AirHandler()), SimSpec(1002, SmokeFans())]) as sim:
        sim.address(1001)                         # "127.0.0.1:PORT"
        sim.set(1001, "analog-input,1", 18.5)
        sim.inject(1002, "silent")
        sim.device(1001).counts                   # confirmed requests seen, by service
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog

from simulators.bacnet.device import SimDevice
from simulators.bacnet.models import Model

__all__ = ["BacnetSimulator", "SimSpec"]

_LOG = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SimSpec:
    """One device to simulate: instance, model, and how it talks."""

    instance: int
    model: Model
    port: int = 0
    name: str = ""
    max_apdu: int = 1476
    segmentation: bool = True
    cov_increment_writable: bool = True
    refuse_cov: tuple[str, ...] = ()  # object keys whose COV subscriptions are refused
    fast_rpm: bool = True  # False: bacpypes3 answers every ReadPropertyMultiple (the reference)


class BacnetSimulator:
    """Devices on ``host`` (one IP, distinct UDP ports) with a physics tick every ``tick_s``."""

    def __init__(self, specs: Sequence[SimSpec], *, host: str = "127.0.0.1", tick_s: float = 0.25) -> None:
        self.host = host
        self.tick_s = tick_s
        self._specs = {spec.instance: spec for spec in specs}
        self.devices: dict[int, SimDevice] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BacnetSimulator:
        for spec in self._specs.values():
            self.devices[spec.instance] = self._build(spec, spec.port)
            self.devices[spec.instance].start()
        self._task = asyncio.create_task(self._tick(), name="bacnet-sim-physics")
        await asyncio.sleep(0)  # let the endpoints come up
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for device in self.devices.values():
            device.stop()

    def _build(self, spec: SimSpec, port: int) -> SimDevice:
        from dataclasses import replace

        objects = [
            replace(o, refuses_cov=True) if o.key in spec.refuse_cov else o for o in spec.model.objects()
        ]
        return SimDevice(
            instance=spec.instance,
            objects=objects,
            name=spec.name or f"{spec.model.model_name.lower()}-{spec.instance}",
            model_name=spec.model.model_name,
            host=self.host,
            port=port,
            max_apdu=spec.max_apdu,
            segmentation=spec.segmentation,
            cov_increment_writable=spec.cov_increment_writable,
            fast_rpm=spec.fast_rpm,
        )

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            dt, last = now - last, now
            for instance, device in self.devices.items():
                if device.app is None:
                    continue
                try:
                    self._specs[instance].model.step(dt, device.get, device.set)
                except (KeyError, ValueError, TypeError) as exc:  # a model bug must not stop the others
                    _LOG.warning("bacnet_sim.step_failed", device=instance, error=str(exc))

    # -- control ------------------------------------------------------------------------------

    def device(self, instance: int) -> SimDevice:
        return self.devices[instance]

    def address(self, instance: int) -> str:
        return self.devices[instance].address

    def set(self, instance: int, key: str, value: float | bool | int) -> None:
        self.devices[instance].set(key, value, force=True)

    def get(self, instance: int, key: str) -> Any:
        return self.devices[instance].get(key)

    def inject(self, instance: int, fault: str, **params: Any) -> None:
        self.devices[instance].inject(fault, params)

    def clear(self, instance: int) -> None:
        self.devices[instance].clear()

    async def restart(self, instance: int, *, down_s: float = 0.5) -> None:
        """Power-cycle a device: it forgets its COV subscriptions and priority array."""
        old = self.devices[instance]
        old.stop()
        await asyncio.sleep(down_s)
        fresh = self._build(self._specs[instance], old.port)
        fresh.start()
        self.devices[instance] = fresh

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "instance": d.instance,
                "address": d.address,
                "model": d.model_name,
                "objects": len(d.objects),
                "faults": {k: v for k, v in vars_of(d).items() if v},
            }
            for d in self.devices.values()
        ]


def vars_of(device: SimDevice) -> dict[str, Any]:
    f = device.faults
    return {
        "silent": f.silent,
        "slow_ms": f.slow_ms,
        "no_rpm": f.no_rpm,
        "out_of_service": sorted(device.oos),
    }
