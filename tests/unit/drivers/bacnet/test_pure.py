"""Pure parts of the BACnet driver: names and numbers, quality from status flags, RPM packing,
config validation, value codec, the error translation and the plugin's checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import DeviceTimeout
from core.model import Quality, Reason
from drivers.bacnet.codec import RELINQUISH, decode, encode, flags_of
from drivers.bacnet.config import BacnetBus, BacnetDeviceConfig, BacnetPointConfig, ValueType, parse_host_port
from drivers.bacnet.errors import Refusal, translate
from drivers.bacnet.objects import ReadBudget, chunk, health_of, object_type_name, property_name
from drivers.bacnet.plugin import find_duplicates


def test_object_types_and_properties_by_name_or_number() -> None:
    assert object_type_name("analogInput") == "analog-input"
    assert object_type_name("binary_output") == "binary-output"
    assert object_type_name(19) == "multi-state-value"
    assert object_type_name("130") == "130"  # proprietary
    with pytest.raises(ValueError, match="unknown object type"):
        object_type_name("analog-thing")
    assert property_name(85) == "present-value"
    assert property_name("presentValue") == "present-value"


def test_health_from_status_flags_and_reliability() -> None:
    assert health_of([0, 0, 0, 0]).quality is Quality.GOOD
    assert health_of([1, 0, 1, 0]).quality is Quality.GOOD  # in alarm, overridden: real values
    assert health_of([0, 1, 0, 0]) == health_of([0, 1, 0, 1])  # fault wins over out of service
    assert health_of([0, 1, 0, 0]).quality is Quality.BAD
    assert health_of([0, 0, 0, 1]).quality is Quality.UNCERTAIN
    assert health_of([0, 0, 0, 1]).reason is Reason.OUT_OF_SERVICE
    assert health_of(None, "over-range").reason is Reason.DEVICE_ERROR
    assert health_of(None, "no-fault-detected").quality is Quality.GOOD


def test_chunks_fit_the_budget_and_keep_order() -> None:
    budget = ReadBudget(max_apdu=206, segmented=False)
    objects = [(i, 2) for i in range(40)]
    parts = list(chunk(objects, budget))
    assert [i for p in parts for i in p] == list(range(40))
    assert all(len(p) * budget.cost(2) <= budget.bytes for p in parts)
    assert len(parts) > 1
    big = ReadBudget(max_apdu=1476, segmented=True, segments=4)
    assert len(list(chunk(objects, big))) == 1
    assert [len(p) for p in chunk(objects, big, limit=15)] == [15, 15, 10]
    assert list(chunk([(0, 500)], budget)) == [[0]]  # too big alone still goes


def test_point_config_defaults_and_checks() -> None:
    p = BacnetPointConfig(id="t", object_type="analogInput", instance=1, units="degreesCelsius")
    assert (p.property, p.priority, p.value_type, p.units) == (
        "present-value",
        8,
        ValueType.FLOAT,
        "degrees-celsius",
    )
    assert BacnetPointConfig(id="b", object_type=4, instance=1).value_type is ValueType.BOOL
    with pytest.raises(ValidationError, match="present-value"):
        BacnetPointConfig(id="x", object_type="analog-input", instance=1, property="units", cov=True)
    with pytest.raises(ValidationError, match="priority"):
        BacnetPointConfig(id="x", object_type="analog-output", instance=1, priority=17)
    with pytest.raises(ValidationError, match="scale"):
        BacnetPointConfig(id="x", object_type="binary-input", instance=1, scale=2)
    with pytest.raises(ValidationError):
        BacnetDeviceConfig(id="d", bus="b", instance=4194303)  # the wildcard
    with pytest.raises(ValidationError):
        BacnetDeviceConfig(id="d", bus="b", instance=1, address="host.example:47808")
    assert parse_host_port("10.0.0.5") == ("10.0.0.5", 47808)
    bus = BacnetBus(id="b", type="bacnet_ip", address="192.168.1.5/24")
    assert (bus.host, bus.port, bus.timeout_ms, bus.retries) == ("192.168.1.5", 47808, 1000, 1)
    with pytest.raises(ValidationError):
        BacnetBus(id="b", type="bacnet_ip", address="192.168.1.5/40")


def test_codec_round_trips() -> None:
    analog = BacnetPointConfig(id="a", object_type="analog-input", instance=1, scale=0.1, offset=5)
    assert decode(analog, 100.0) == pytest.approx(15.0)
    assert encode(analog, 15.0) == pytest.approx(100.0)
    binary = BacnetPointConfig(id="b", object_type="binary-output", instance=1)
    assert decode(binary, "active") is True and decode(binary, 0) is False
    assert encode(binary, True) == 1 and encode(binary, "off") == 0
    msv = BacnetPointConfig(id="m", object_type="multi-state-value", instance=1, enum={1: "auto", 2: "fire"})
    assert encode(msv, "fire") == 2 and decode(msv, 2) == 2
    with pytest.raises(ValueError, match="not one of"):
        encode(msv, "smoke")
    assert decode(analog, None) is None
    assert flags_of([0, 1, 0, 0]) == [0, 1, 0, 0]
    assert RELINQUISH == "relinquish"


def test_bacpypes3_failures_become_project_errors() -> None:
    from bacpypes3.apdu import AbortPDU, RejectPDU
    from bacpypes3.errors import PropertyError

    assert isinstance(translate(AbortPDU(reason="noResponse"), "x"), DeviceTimeout)
    too_big = translate(AbortPDU(reason="segmentationNotSupported"), "x")
    assert isinstance(too_big, Refusal) and too_big.too_big
    refused = translate(RejectPDU(reason="unrecognizedService"), "x")
    assert isinstance(refused, Refusal) and refused.service_refused
    denied = translate(PropertyError("writeAccessDenied"), "x")
    assert isinstance(denied, Refusal) and denied.kind == "error"
    # the APDUs are BaseExceptions: an ``except Exception`` would not have caught them
    assert not isinstance(AbortPDU(reason="noResponse"), Exception)


def test_duplicate_points_found() -> None:
    points = [
        BacnetPointConfig(id="a", object_type="analog-input", instance=1),
        BacnetPointConfig(id="b", object_type="analog-input", instance=2),
        BacnetPointConfig(id="c", object_type=0, instance=1),
    ]
    assert list(find_duplicates(points)) == [(0, 2)]
