"""The private CA key is encrypted at rest; `gatehouse certs` asks for its passphrase (issue 17 H3),
and issues the LAN dashboard's HTTPS certificate from the same CA."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509

from cloud_sync.certs import PkiError, PkiLayout, ca_key_encrypted, create_ca, load_ca, protect_ca_key
from edge.cli import main

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
SECRET = b"correct horse battery"


def test_key_is_encrypted_and_needs_its_passphrase(tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    create_ca(layout, now=NOW, passphrase=SECRET)
    pem = layout.ca_key.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert ca_key_encrypted(layout)
    assert stat.S_IMODE(layout.ca_key.stat().st_mode) == 0o600
    with pytest.raises(PkiError, match="encrypted"):
        load_ca(layout)
    with pytest.raises(PkiError, match="wrong passphrase"):
        load_ca(layout, passphrase=b"not the passphrase")
    assert load_ca(layout, passphrase=SECRET).cert.subject == load_ca(layout, passphrase=SECRET).cert.issuer


def test_short_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="at least"):
        create_ca(PkiLayout(tmp_path), now=NOW, passphrase=b"short")
    assert not PkiLayout(tmp_path).ca_key.exists()


def test_plain_key_of_an_older_install_is_protected_in_place(tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    ca = create_ca(layout, now=NOW)
    assert not ca_key_encrypted(layout)
    protect_ca_key(load_ca(layout), layout, SECRET)
    assert ca_key_encrypted(layout)
    assert load_ca(layout, passphrase=SECRET).key.private_numbers() == ca.key.private_numbers()
    assert not list(tmp_path.glob("*.new"))


def test_cli_init_encrypts_by_default_and_refuses_without_a_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = tmp_path / "pki"
    monkeypatch.delenv("GATEHOUSE_CA_PASSPHRASE", raising=False)
    # no file, no environment, no terminal: refused, and nothing written
    assert main(["certs", "init", "--dir", str(pki)]) == 1
    assert "passphrase" in capsys.readouterr().out
    assert not (pki / "ca.key").exists()

    secret_file = tmp_path / "ca-pass"
    secret_file.write_text("a long enough phrase\n")
    assert main(["certs", "init", "--dir", str(pki), "--ca-passphrase-file", str(secret_file)]) == 0
    layout = PkiLayout(pki)
    assert ca_key_encrypted(layout)
    load_ca(layout, passphrase=b"a long enough phrase")  # the trailing newline is not part of it

    assert main(["certs", "gateway", "--dir", str(pki), "gw-1"]) == 1  # no passphrase given
    assert "encrypted" in capsys.readouterr().out
    monkeypatch.setenv("GATEHOUSE_CA_PASSPHRASE", "wrong wrong wrong")
    assert main(["certs", "gateway", "--dir", str(pki), "gw-1"]) == 1
    assert "wrong passphrase" in capsys.readouterr().out
    monkeypatch.setenv("GATEHOUSE_CA_PASSPHRASE", "a long enough phrase")
    assert main(["certs", "gateway", "--dir", str(pki), "gw-1"]) == 0

    # the dashboard's HTTPS certificate, from the same CA, for the names browsers use
    capsys.readouterr()
    assert main(["certs", "dashboard", "--dir", str(pki), "gw-1", "--host", "gw1.estate.lan",
                 "--host", "10.1.2.3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "dashboard:" in out and "tls_cert:" in out and "tls_key:" in out
    cert = x509.load_pem_x509_certificate(layout.dashboard_cert("gw-1").read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(layout.ca_cert.read_bytes()))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "gw1.estate.lan" in san.get_values_for_type(x509.DNSName)
    assert stat.S_IMODE(layout.dashboard_key("gw-1").stat().st_mode) == 0o600

    # a new passphrase
    new_file = tmp_path / "new-pass"
    new_file.write_text("another long phrase\n")
    assert main(["certs", "protect", "--dir", str(pki), "--new-passphrase-file", str(new_file)]) == 0
    load_ca(layout, passphrase=b"another long phrase")
    with pytest.raises(PkiError):
        load_ca(layout, passphrase=b"a long enough phrase")


def test_cli_init_without_passphrase_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEHOUSE_CA_PASSPHRASE", raising=False)
    pki = tmp_path / "pki"
    assert main(["certs", "init", "--dir", str(pki), "--no-ca-passphrase"]) == 0
    assert not ca_key_encrypted(PkiLayout(pki))
    assert main(["certs", "gateway", "--dir", str(pki), "gw-1"]) == 0  # no passphrase to ask for
