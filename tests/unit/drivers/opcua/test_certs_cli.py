"""`gatehouse certs opcua` makes the application certificate the opcua bus uses by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from edge.cli import main


def test_certs_opcua_writes_a_certificate_naming_the_application_uri(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "pki" / "opcua"
    assert main(["certs", "opcua", "--dir", str(folder), "--application-uri", "urn:gw-7:gatehouse"]) == 0
    cert = x509.load_der_x509_certificate((folder / "gateway-cert.der").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:gw-7:gatehouse" in san.get_values_for_type(x509.UniformResourceIdentifier)
    assert (folder / "gateway-key.pem").stat().st_mode & 0o077 == 0
    first = (folder / "gateway-cert.der").read_bytes()
    # run again: kept, since servers have been told to trust this one
    assert main(["certs", "opcua", "--dir", str(folder)]) == 0
    assert (folder / "gateway-cert.der").read_bytes() == first
    assert "keeping it" in capsys.readouterr().out
    assert main(["certs", "opcua", "--dir", str(folder), "--force"]) == 0
    assert (folder / "gateway-cert.der").read_bytes() != first
