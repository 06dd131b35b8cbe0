"""The identity folder: round trip, permissions, all-or-nothing writes, clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from edge.identity import folder as folder_mod
from edge.identity.folder import IdentityError, prune, read_identity, write_enrolment, write_renewal
from edge.identity.material import new_keys, private_pem
from edge.identity.protocol import parse_grant
from tests.unit.edge.identity.central import Central, make_central


def _enrol(tmp_path: Path, central: Central, **kwargs):  # type: ignore[no-untyped-def]
    keys = new_keys()
    grant = parse_grant(central.grant(keys), keys)
    return write_enrolment(
        tmp_path / "identity", grant, keys, central_url="https://central.example:8443", now=1000.0, **kwargs
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_and_permissions(tmp_path: Path) -> None:
    central = make_central(tmp_path, password="pw")
    written = _enrol(tmp_path, central, api_ca=b"-----BEGIN CERTIFICATE-----\n")
    read = read_identity(tmp_path / "identity")
    assert read == written
    assert (read.gateway_id, read.version, read.central_url) == ("gw-test", 1, "https://central.example:8443")
    assert read.has_password and read.api_ca == tmp_path / "identity" / "v1" / "api-ca.crt"
    assert read.central_e2e_key_id is not None
    assert _mode(tmp_path / "identity") == 0o700
    assert _mode(tmp_path / "identity" / "v1") == 0o700
    for name in ("client.key", "signing.key", "e2e.key", "password"):
        assert _mode(read.file(name)) == 0o600, name
    assert _mode(read.file("client.crt")) == 0o644
    assert read.file("password").read_text() == "pw\n"
    # Nothing left over from the write.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central-pki", "identity"]
    assert sorted(p.name for p in (tmp_path / "identity").iterdir()) == ["identity.json", "v1"]


def test_no_password_and_no_e2e_key_means_no_such_files(tmp_path: Path) -> None:
    identity = _enrol(tmp_path, make_central(tmp_path, e2e_key=None), api_ca=None)
    assert not identity.has_password and identity.central_e2e_key_id is None and identity.encrypt == "off"
    assert not identity.file("password").exists() and not identity.file("central-e2e.pub").exists()
    assert read_identity(identity.folder) == identity


def test_an_existing_folder_is_kept_unless_replaced(tmp_path: Path) -> None:
    central = make_central(tmp_path)
    first = _enrol(tmp_path, central, api_ca=None)
    with pytest.raises(FileExistsError):
        _enrol(tmp_path, central, api_ca=None)
    assert read_identity(first.folder).kid == first.kid
    second = _enrol(tmp_path, central, api_ca=None, replace=True)
    assert read_identity(first.folder).kid == second.kid != first.kid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central-pki", "identity"]


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    central = make_central(tmp_path)
    real_write, calls = folder_mod._write, []

    def failing(path: Path, data: bytes, *, private: bool) -> None:
        calls.append(path.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, data, private=private)

    monkeypatch.setattr(folder_mod, "_write", failing)
    with pytest.raises(OSError, match="No space"):
        _enrol(tmp_path, central, api_ca=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central-pki"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "identity.json").unlink(), "identity.json: no such file"),
        (lambda d: (d / "identity.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "identity.json").write_text(json.dumps({"format": 1})), "version is missing"),
        (lambda d: (d / "identity.json").write_text(json.dumps({"format": 9})), "format 9"),
        (lambda d: (d / "v1" / "signing.key").unlink(), "signing.key: cannot read"),
        (lambda d: (d / "v1" / "client.crt").write_text("garbage"), "client.crt: not a PEM certificate"),
        (
            lambda d: (d / "v1" / "e2e.key").write_bytes((d / "v1" / "client.key").read_bytes()),
            "not an X25519",
        ),
        (
            lambda d: (d / "v1" / "central-signing.pub").write_text(""),
            "central-signing.pub: not a PEM public key",
        ),
    ],
)
def test_a_damaged_folder_is_a_clear_error(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    identity = _enrol(tmp_path, make_central(tmp_path), api_ca=None)
    damage(identity.folder)
    with pytest.raises(IdentityError, match=message):
        read_identity(identity.folder)


def test_a_missing_folder_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="gatehouse enroll"):
        read_identity(tmp_path / "nowhere")


def test_a_swapped_signing_key_is_caught_by_its_key_id(tmp_path: Path) -> None:
    central = make_central(tmp_path)
    identity = _enrol(tmp_path, central, api_ca=None)
    other = new_keys()
    os.chmod(identity.file("signing.key"), 0o600)
    identity.file("signing.key").write_bytes(private_pem(other.signing_key))
    with pytest.raises(IdentityError, match="key id is not"):
        read_identity(identity.folder)


def test_renewal_adds_a_version_then_prune_drops_the_previous(tmp_path: Path) -> None:
    central = make_central(tmp_path)
    first = _enrol(tmp_path, central, api_ca=b"ca\n")
    keys = new_keys()
    renewed = write_renewal(first, parse_grant(central.grant(keys), keys), keys, now=2000.0)
    assert (renewed.version, renewed.kid, renewed.issued_at) == (2, keys.kid, 2000.0)
    assert read_identity(first.folder) == renewed  # identity.json names v2 now
    assert first.file("signing.key").is_file()  # v1 kept until the uplink has switched
    assert renewed.file("api-ca.crt").read_bytes() == b"ca\n"  # carried over
    assert prune(renewed) == ["v1"]
    assert sorted(p.name for p in first.folder.iterdir()) == ["identity.json", "v2"]


def test_a_renewal_for_another_gateway_is_refused(tmp_path: Path) -> None:
    central = make_central(tmp_path)
    first = _enrol(tmp_path, central, api_ca=None)
    keys = new_keys()
    with pytest.raises(IdentityError, match="not this gateway"):
        write_renewal(first, parse_grant(central.grant(keys, gateway_id="gw-other"), keys), keys, now=1.0)
    assert read_identity(first.folder) == first
