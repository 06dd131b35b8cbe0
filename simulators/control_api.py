"""The simulators' small HTTP control API (JSON), bound to 127.0.0.1 by default.

=======  =========================================  ==========================================
method   path                                       does
=======  =========================================  ==========================================
GET      /health                                    ``{"ok": true, "devices": N}``
GET      /scenarios                                 every family's scenarios, with descriptions
GET      /devices                                   every device: id, family, endpoint, unit, ...
GET      /devices/{id}                              one device with its values and scenarios
POST     /devices/{id}/scenarios/{name}             start a scenario; JSON body = its parameters
DELETE   /devices/{id}/scenarios/{name}             end one scenario
DELETE   /devices/{id}/scenarios                    end every scenario and fault of the device
POST     /devices/{id}/restart                      power-cycle: fresh model, latches and faults gone
=======  =========================================  ==========================================

Handlers are ``async`` on purpose: they run on the event loop that also runs the Modbus
servers, so a scenario never races a request half-way through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Protocol

import structlog
from fastapi import Body, FastAPI, HTTPException

from core.model import Value
from simulators import scenarios
from simulators.device import SimulatedDevice
from simulators.models import UnknownScenario
from simulators.protocol_sims import ProtocolDevice, ProtocolSims

__all__ = ["build_app"]

_LOG = structlog.get_logger(__name__)


class SimulatorHost(Protocol):
    """What the control API reads from the simulation it controls (``SimulationRunner``); named
    here so that the runner, which serves this API, is the only one of the two that imports the
    other."""

    @property
    def devices(self) -> Mapping[str, SimulatedDevice]: ...

    @property
    def protocol(self) -> ProtocolSims: ...


def _json_value(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary(device: SimulatedDevice) -> dict[str, Any]:
    return {
        "id": device.id,
        "family": device.model.family,
        "profile": device.profile.id,
        **device.meta,
        "active": scenarios.active(device),
    }


def _protocol_summary(device: ProtocolDevice) -> dict[str, Any]:
    return {"id": device.id, "family": device.family, "profile": device.profile_id, **device.meta}


def build_app(runner: SimulatorHost) -> FastAPI:
    app = FastAPI(title="Gatehouse simulators", version="1")

    def lookup(device_id: str) -> SimulatedDevice:
        device = runner.devices.get(device_id)
        if device is None:
            raise HTTPException(404, f"no device '{device_id}'")
        return device

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "devices": len(runner.devices)}

    @app.get("/scenarios")
    async def list_scenarios() -> dict[str, dict[str, str]]:
        return scenarios.catalogue()

    @app.get("/devices")
    async def list_devices() -> list[dict[str, Any]]:
        return [_summary(d) for d in runner.devices.values()] + [
            _protocol_summary(d) for d in runner.protocol.devices.values()
        ]

    @app.get("/devices/{device_id}")
    async def get_device(device_id: str) -> dict[str, Any]:
        other = runner.protocol.devices.get(device_id)
        if other is not None:
            return {**_protocol_summary(other), "values": other.values(), "scenarios": other.scenarios()}
        device = lookup(device_id)
        return {
            **_summary(device),
            "values": {k: _json_value(v) for k, v in device.values().items()},
            "scenarios": scenarios.family_catalogue(device.model.family),
            "requests": device.requests,
        }

    @app.post("/devices/{device_id}/scenarios/{name}")
    async def start_scenario(
        device_id: str, name: str, params: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        other = runner.protocol.devices.get(device_id)
        if other is not None:
            try:
                now_active = await other.inject(name, params or {})
            except KeyError as exc:
                raise HTTPException(404, f"no scenario '{name}' for {device_id}") from exc
            except (ValueError, TypeError) as exc:
                raise HTTPException(400, str(exc)) from exc
            _LOG.info("scenario started", device=device_id, scenario=name, params=params or {})
            return {"device": device_id, "active": now_active}
        device = lookup(device_id)
        try:
            active = scenarios.inject(device, name, params or {})
        except UnknownScenario as exc:
            raise HTTPException(404, str(exc)) from exc
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from exc
        _LOG.info("scenario started", device=device_id, scenario=name, params=params or {})
        return {"device": device_id, "active": active}

    @app.delete("/devices/{device_id}/scenarios/{name}")
    async def end_scenario(device_id: str, name: str) -> dict[str, Any]:
        other = runner.protocol.devices.get(device_id)
        if other is not None:
            return {"device": device_id, "cleared": await other.clear(name), "active": []}
        device = lookup(device_id)
        try:
            cleared = scenarios.clear(device, name)
        except UnknownScenario as exc:
            raise HTTPException(404, str(exc)) from exc
        _LOG.info("scenario cleared", device=device_id, scenario=name)
        return {"device": device_id, "cleared": cleared, "active": scenarios.active(device)}

    @app.post("/devices/{device_id}/restart")
    async def restart(device_id: str) -> dict[str, Any]:
        device = lookup(device_id)
        device.restart()
        _LOG.info("device restarted", device=device_id)
        return {"device": device_id, "active": scenarios.active(device)}

    @app.delete("/devices/{device_id}/scenarios")
    async def end_all(device_id: str) -> dict[str, Any]:
        other = runner.protocol.devices.get(device_id)
        if other is not None:
            return {"device": device_id, "cleared": await other.clear(None), "active": []}
        device = lookup(device_id)
        cleared = scenarios.clear(device, None)
        return {"device": device_id, "cleared": cleared, "active": scenarios.active(device)}

    return app
