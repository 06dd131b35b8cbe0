"""Pure parts of the OPC UA driver: StatusCode → quality, value conversion, typed encoding,
config validation, browse paths, certificates and the trust list."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from core.model import Quality, Reason
from drivers.opcua.certs import (
    UntrustedCertificate,
    certificate_uris,
    check_trusted,
    load_der,
    make_application_certificate,
)
from drivers.opcua.codec import Converter, deadband_raw, encode, quality_of
from drivers.opcua.config import OpcUaBus, OpcUaPointConfig, parse_browse_path
from drivers.opcua.resolve import qualified_path


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0x00000000, (Quality.GOOD, Reason.NONE)),
        (0x00000400, (Quality.GOOD, Reason.NONE)),  # info bits only
        (0x40900000, (Quality.UNCERTAIN, Reason.STALE)),
        (0x40940000, (Quality.UNCERTAIN, Reason.OUT_OF_RANGE)),
        (0x40000000, (Quality.UNCERTAIN, Reason.DEVICE_ERROR)),
        (0x808C0000, (Quality.BAD, Reason.COMM_FAILURE)),
        (0x80340000, (Quality.BAD, Reason.CONFIG_ERROR)),
        (0x80320000, (Quality.BAD, Reason.NOT_YET_READ)),
        (0x803C0000, (Quality.BAD, Reason.OUT_OF_RANGE)),
        (0x80010000, (Quality.BAD, Reason.DEVICE_ERROR)),
        (0xC0000000, (Quality.BAD, Reason.DEVICE_ERROR)),
    ],
)
def test_status_code_maps_to_quality_and_reason(status: int, expected: tuple[Quality, Reason]) -> None:
    assert quality_of(status) == expected


def test_converter_scales_and_checks_range() -> None:
    point = OpcUaPointConfig(id="p", node_id="ns=2;s=X", scale=0.1, offset=1, valid_min=0, valid_max=10)
    convert = Converter.of(point)
    assert convert(50) == (6.0, Quality.GOOD, Reason.NONE)
    assert convert(500)[1:] == (Quality.BAD, Reason.OUT_OF_RANGE)
    assert convert(float("nan"))[1:] == (Quality.BAD, Reason.OUT_OF_RANGE)
    assert convert(True) == (True, Quality.GOOD, Reason.NONE)
    assert convert([1, 2])[1:] == (Quality.BAD, Reason.CONFIG_ERROR)
    assert Converter.of(OpcUaPointConfig(id="q", node_id="i=1"))(7) == (7, Quality.GOOD, Reason.NONE)


def test_encode_inverts_scale_and_checks_the_type() -> None:
    scaled = OpcUaPointConfig(id="sp", node_id="ns=2;s=X", type="int16", access="rw", scale=0.01)
    assert encode(scaled, 1.23) == 123
    with pytest.raises(ValueError, match="does not fit"):
        encode(scaled, 400.0)
    with pytest.raises(ValueError, match="whole"):
        encode(scaled, 1.234)
    flag = OpcUaPointConfig(id="b", node_id="ns=2;s=Y", type="bool", access="rw")
    assert encode(flag, 1) is True
    with pytest.raises(ValueError, match="bool"):
        encode(flag, "on")
    real = OpcUaPointConfig(id="f", node_id="ns=2;s=Z", type="float", access="rw")
    assert math.isclose(float(encode(real, 0.5)), 0.5)
    with pytest.raises(ValueError, match="32 bits"):
        encode(real, 1e300)
    labelled = OpcUaPointConfig(
        id="m", node_id="ns=2;s=M", type="uint16", access="rw", enum={0: "off", 1: "on"}
    )
    assert encode(labelled, "on") == 1


def test_deadband_is_converted_to_server_units() -> None:
    point = OpcUaPointConfig(id="p", browse_path="2:P", type="int32", scale=0.01)
    assert deadband_raw(point, 0.05) == pytest.approx(5.0)
    assert deadband_raw(OpcUaPointConfig(id="b", browse_path="2:B", type="bool"), 1.0) is None
    assert deadband_raw(point, None) is None


def test_point_needs_exactly_one_address_and_a_type_when_writable() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        OpcUaPointConfig(id="p")
    with pytest.raises(ValidationError, match="exactly one"):
        OpcUaPointConfig(id="p", node_id="i=1", browse_path="2:A")
    with pytest.raises(ValidationError, match="needs 'type'"):
        OpcUaPointConfig(id="p", node_id="i=1", access="rw")
    with pytest.raises(ValidationError, match="node_id is"):
        OpcUaPointConfig(id="p", node_id="Pump1.Pressure")


def test_bus_security_defaults_and_identity_shape() -> None:
    bus = OpcUaBus(id="b", type="opcua", endpoint="opc.tcp://plc:4840/ua")
    assert bus.security_policy.value == "Basic256Sha256" and bus.security_mode.value == "SignAndEncrypt"
    assert bus.host_port == ("plc", 4840)
    with pytest.raises(ValidationError, match="password_file"):
        OpcUaBus(id="b", type="opcua", endpoint="opc.tcp://plc", identity="username", username="u")
    with pytest.raises(ValidationError, match="Basic256Sha256"):
        OpcUaBus(id="b", type="opcua", endpoint="opc.tcp://plc", security_policy="Basic128Rsa15")
    with pytest.raises(ValidationError, match="opc.tcp"):
        OpcUaBus(id="b", type="opcua", endpoint="http://plc")


def test_browse_paths_take_the_namespace_before_them() -> None:
    assert parse_browse_path("2:Pumps/Pump1/Pressure") == [(2, "Pumps"), (None, "Pump1"), (None, "Pressure")]
    assert qualified_path("2:Pumps/Pump1", None) == [(2, "Pumps"), (2, "Pump1")]
    assert qualified_path("Pump1/3:X", 5) == [(5, "Pump1"), (3, "X")]
    with pytest.raises(ValueError, match="no namespace"):
        qualified_path("Pump1", None)
    with pytest.raises(ValueError, match="segment"):
        parse_browse_path("2:A//B")


def test_application_certificate_carries_uri_and_opc_ua_key_usage(tmp_path: Path) -> None:
    cert_path, key_path = make_application_certificate(tmp_path, "urn:test:gw", "gw-host")
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    assert certificate_uris(cert_path.read_bytes()) == ["urn:test:gw"]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and usage.key_encipherment
    assert usage.data_encipherment
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert key_path.stat().st_mode & 0o777 == 0o600


def test_trust_list_refuses_an_unknown_certificate_and_says_how_to_trust_it(tmp_path: Path) -> None:
    cert_path, _ = make_application_certificate(tmp_path / "server", "urn:test:server", "srv")
    der = load_der(cert_path)
    trust, rejected = tmp_path / "trusted", tmp_path / "rejected"
    with pytest.raises(UntrustedCertificate, match="copy .* to trust dir") as info:
        check_trusted(der, trust, rejected)
    saved = next(rejected.iterdir())
    assert str(saved) in str(info.value)
    trust.mkdir()
    saved.rename(trust / saved.name)
    check_trusted(der, trust, rejected)  # trusted now: no exception
