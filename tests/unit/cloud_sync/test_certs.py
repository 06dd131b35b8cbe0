"""The private PKI: certificates that Mosquitto and Python's TLS accept, and broker password lines."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_sync.certs import (
    CENTRAL_USER,
    PkiError,
    PkiLayout,
    check_password,
    create_ca,
    issue_client,
    issue_server,
    load_ca,
    password_line,
    set_password,
    validate_client_name,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_server_and_client_certificates(tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    ca = create_ca(layout, now=NOW)
    issue_server(ca, layout, hostnames=["mq.estate.example", "10.1.2.3"], now=NOW)
    creds = issue_client(load_ca(layout), layout, "gw-a", now=NOW)

    ca_cert = _cert(layout.ca_cert)
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca_cert.public_key(), ec.EllipticCurvePublicKey)

    server = _cert(layout.broker_cert)
    server.verify_directly_issued_by(ca_cert)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "mq.estate.example"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.1.2.3"),
    }
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku

    client = _cert(creds.cert_path)
    client.verify_directly_issued_by(ca_cert)
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-a"
    assert client.not_valid_before_utc <= NOW < client.not_valid_after_utc

    for secret in (
        layout.ca_key,
        layout.broker_key,
        creds.key_path,
        creds.password_path,
        layout.password_file,
    ):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    line = layout.password_file.read_text().strip()
    assert line.startswith("gw-a:$7$")
    assert check_password(line, creds.password)


def test_refuses_to_replace_a_ca_unless_forced(tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    create_ca(layout, now=NOW)
    with pytest.raises(PkiError):
        create_ca(layout, now=NOW)
    create_ca(layout, now=NOW, overwrite=True)


def test_missing_ca_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="certs init"):
        load_ca(PkiLayout(tmp_path))


@pytest.mark.parametrize("name", ["", "gw/a", "gw+", "#", "-gw", "gw a", "x" * 65])
def test_unusable_gateway_ids(name: str) -> None:
    with pytest.raises(PkiError):
        validate_client_name(name)


def test_central_is_reserved() -> None:
    with pytest.raises(PkiError):
        validate_client_name(CENTRAL_USER)
    assert validate_client_name(CENTRAL_USER, allow_central=True) == CENTRAL_USER
    assert validate_client_name("Estate-7.gw_1") == "Estate-7.gw_1"


def test_password_line_matches_mosquittos_own_format(tmp_path: Path) -> None:
    """A line from mosquitto_passwd verifies with our checker, and ours has the same shape."""
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None, "mosquitto-clients/mosquitto must be installed (scripts/bootstrap.sh)"
    theirs = tmp_path / "theirs"
    subprocess.run([tool, "-c", "-b", str(theirs), "alice", "s3cret"], check=True, capture_output=True)
    line = theirs.read_text().strip()
    assert check_password(line, "s3cret")
    assert not check_password(line, "wrong")
    ours = password_line("alice", "s3cret", salt=b"\x01" * 12)
    assert ours.split("$")[:3] == line.split("$")[:3]  # user:, 7, iterations
    assert check_password(ours, "s3cret")


def test_set_password_replaces_the_users_line(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    set_password(path, "gw-a", "one")
    set_password(path, "gw-b", "two")
    set_password(path, "gw-a", "three")
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["gw-b", "gw-a"]
    assert check_password(lines[1], "three")
    with pytest.raises(PkiError):
        password_line("a:b", "x")
