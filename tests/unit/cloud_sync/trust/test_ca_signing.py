"""Central's CA signs a gateway's CSR and builds CRLs (cloud_sync.certs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_sync.certs import (
    CertificateAuthority,
    PkiError,
    PkiLayout,
    build_crl,
    create_ca,
    load_ca_files,
    sign_csr,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def csr_for(key: ec.EllipticCurvePrivateKey, cn: str = "whatever", *, ca: bool = False) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    layout = PkiLayout(tmp_path_factory.mktemp("pki"))
    create_ca(layout, now=NOW, passphrase=b"a long passphrase")
    return load_ca_files(layout.ca_cert, layout.ca_key, passphrase=b"a long passphrase")


def test_csr_key_gets_a_client_certificate_named_by_central(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign_csr(ca, csr_for(key, "central", ca=True), common_name="gw-01", now=NOW, valid_days=90)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-01"
    assert cert.public_key() == key.public_key()
    assert cert.issuer == ca.cert.subject
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The CSR asked to be a CA; central ignores everything in it but the key.
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=90)
    cert.verify_directly_issued_by(ca.cert)


def test_only_p256_csrs_that_verify_are_signed(ca: CertificateAuthority) -> None:
    with pytest.raises(PkiError, match="P-256"):
        sign_csr(
            ca, csr_for(ec.generate_private_key(ec.SECP384R1())), common_name="gw-01", now=NOW, valid_days=9
        )
    with pytest.raises(PkiError, match="PKCS#10"):
        sign_csr(ca, "not a csr", common_name="gw-01", now=NOW, valid_days=9)
    with pytest.raises(PkiError, match="reserved"):
        sign_csr(
            ca, csr_for(ec.generate_private_key(ec.SECP256R1())), common_name="central", now=NOW, valid_days=9
        )


def test_crl_lists_revoked_serials_signed_by_the_ca(ca: CertificateAuthority) -> None:
    crl = x509.load_pem_x509_crl(build_crl(ca, [(1234, NOW), (2**150, NOW)], now=NOW))
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(2**150) is not None
    assert crl.get_revoked_certificate_by_serial_number(99) is None
    empty = x509.load_pem_x509_crl(build_crl(ca, [], now=NOW))
    assert len(empty) == 0 and empty.issuer == ca.cert.subject


def test_encrypted_ca_key_needs_its_passphrase(tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    create_ca(layout, now=NOW, passphrase=b"a long passphrase")
    with pytest.raises(PkiError, match="encrypted"):
        load_ca_files(layout.ca_cert, layout.ca_key)
    with pytest.raises(PkiError, match="wrong passphrase"):
        load_ca_files(layout.ca_cert, layout.ca_key, passphrase=b"another passphrase")
