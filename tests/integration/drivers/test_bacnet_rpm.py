"""The fast ReadPropertyMultiple paths against bacpypes3 on loopback: the simulator's own RPM
answers (``fast_rpm``) say what bacpypes3's answers say for every model, fault and property
kind, the gateway's pre-encoded requests and byte decoding read a bacpypes3-only device the
same, and an answer holding values ``rpm_codec`` does not decode is decoded by bacpypes3."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from core.model import Event, Quality, SystemClock
from drivers.bacnet.config import BacnetBus
from drivers.bacnet.device import BacnetDevice
from drivers.bacnet.errors import Refusal
from drivers.bacnet.rpm_codec import encode_request
from drivers.registry import BusContext
from simulators.bacnet import AirHandler, BacnetSimulator, ChillerPlant, SimSpec, SmokeFans
from simulators.bacnet.models import Model
from simulators.bacnet.sitegen import points_of, resolved_device

_TYPES = {"analog-input": 0, "analog-output": 1, "analog-value": 2, "binary-input": 3}
_TYPES |= {"binary-output": 4, "binary-value": 5, "multi-state-value": 19}


def _bus() -> BacnetBus:
    return BacnetBus(id="bn", type="bacnet_ip", address="127.0.0.1", port=0, timeout_ms=2000, retries=1)


@contextlib.asynccontextmanager
async def _open(bus: BacnetBus, devices: Sequence[Any]) -> AsyncIterator[dict[str, BacnetDevice]]:
    from drivers.bacnet.plugin import open_bacnet_bus

    async def sink(event: Event) -> None:
        return None

    ctx = BusContext(events=sink, clock=SystemClock(), site_dir=Path("."), data_dir=Path("."))
    async with open_bacnet_bus(bus, devices, ctx) as drivers:
        yield {k: v for k, v in drivers.items() if isinstance(v, BacnetDevice)}


async def _read_all(device: BacnetDevice) -> dict[str, Any]:
    out = {}
    for group in device.poll_groups():
        out.update({r.key: r for r in await device.read(group)})
    return out


def _plain_request(model: Model) -> bytes:
    """Every object's present-value, status-flags, out-of-service, reliability, event-state,
    and units or number-of-states: stored values and computed status flags."""
    objects: list[tuple[int, int, list[tuple[int, int | None]]]] = []
    for spec in model.objects():
        props: list[tuple[int, int | None]] = [(85, None), (111, None), (81, None), (103, None), (36, None)]
        if spec.type.startswith("analog"):
            props.append((117, None))
        elif spec.type.startswith("multi-state"):
            props.append((74, None))
        objects.append((_TYPES[spec.type], spec.instance, props))
    return encode_request(objects)


def _special_requests(model: Model) -> list[bytes]:
    """What the simulator leaves to bacpypes3: object-name (a getter), a missing property, an
    unknown object, an array element."""
    first = model.objects()[0]
    kind = _TYPES[first.type]
    return [
        encode_request([(kind, first.instance, [(85, None), (77, None)])]),
        encode_request([(kind, first.instance, [(85, None), (4000, None)])]),
        encode_request([(kind, 4000000, [(85, None)])]),
        encode_request([(kind, first.instance, [(85, None), (111, 1)])]),
    ]


async def _outcome(device: BacnetDevice, payload: bytes) -> list[Any] | str:
    """The rows as text, or the refusal (bacpypes3 refuses a request for an unknown object)."""
    try:
        rows = await device.link.read_multiple_fast(device.peer, payload)
    except Refusal as exc:
        return f"{exc.kind}/{exc.reason}"
    return [(*row[:4], str(row[4])) for row in rows]


async def test_fast_simulator_answers_say_what_bacpypes3_says() -> None:
    models: list[Model] = [AirHandler(), ChillerPlant(), SmokeFans()]
    specs = [SimSpec(3100 + n, m, fast_rpm=True) for n, m in enumerate(models)]
    specs += [SimSpec(3200 + n, m, fast_rpm=False) for n, m in enumerate(models)]
    async with BacnetSimulator(specs, tick_s=3600) as sim:
        for n in range(len(models)):
            for instance in (3100 + n, 3200 + n):
                sim.inject(instance, "out_of_service", key=models[n].objects()[0].key)
                sim.inject(instance, "fault", key=models[n].objects()[-1].key)
        bus = _bus()
        devices = [
            resolved_device(
                f"d{s.instance}", bus, s.instance, points_of(s.model), address=sim.address(s.instance)
            )
            for s in specs
        ]
        async with _open(bus, devices) as drivers:
            for n, model in enumerate(models):
                fast, reference = drivers[f"d{3100 + n}"], drivers[f"d{3200 + n}"]
                for device in (fast, reference):
                    await _read_all(device)
                answers = sim.device(3100 + n).answers
                answered, passed_on = answers.answered, answers.passed_on
                payload = _plain_request(model)
                got = await fast.link.read_multiple_fast(fast.peer, payload)
                want = await reference.link.read_multiple_fast(reference.peer, payload)
                assert got == want
                assert answers.answered == answered + 1  # the simulator answered it itself
                assert any(row[2] == 111 and row[4] == (0, 0, 0, 1) for row in want)  # out of service
                assert any(row[2] == 111 and row[4] == (0, 1, 0, 0) for row in want)  # fault
                for payload in _special_requests(model):
                    assert await _outcome(fast, payload) == await _outcome(reference, payload)
                assert answers.passed_on == passed_on + 4
                assert answers.answered == answered + 1
                # and the readings the driver makes of them are the same
                fast_readings, ref_readings = await _read_all(fast), await _read_all(reference)
                assert {k: (r.value, r.quality, r.reason) for k, r in fast_readings.items()} == {
                    k: (r.value, r.quality, r.reason) for k, r in ref_readings.items()
                }
            assert all(sim.device(3200 + n).answers.answered == 0 for n in range(len(models)))


async def test_values_rpm_codec_does_not_decode_are_decoded_by_bacpypes3() -> None:
    fans = SmokeFans()
    msv = next(s for s in fans.objects() if s.type == "multi-state-value")
    async with BacnetSimulator([SimSpec(3300, fans)]) as sim:
        bus = _bus()
        spec = resolved_device("fans", bus, 3300, points_of(fans), address=sim.address(3300))
        async with _open(bus, [spec]) as drivers:
            device = drivers["fans"]
            await _read_all(device)
            before = device.link.fallback_decodes
            # state-text without an index is an array of character strings: several values
            payload = encode_request([(19, msv.instance, [(85, None), (110, None), (111, None)])])
            rows = await device.link.read_multiple_fast(device.peer, payload)
            assert device.link.fallback_decodes == before + 1
            values: dict[int, Any] = {row[2]: row[4] for row in rows}
            assert int(values[85]) == sim.get(3300, msv.key)
            assert [str(text) for text in values[110]] == list(msv.states or ("off", "on"))
            assert list(values[111]) == [0, 0, 0, 0]
            # polls keep the fast path
            readings = await _read_all(device)
            assert all(r.quality is Quality.GOOD for r in readings.values())
            assert device.link.fallback_decodes == before + 1
