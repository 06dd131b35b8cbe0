"""``uplink: {identity: DIR}`` in a site file: what it fills in, what the site still overrides,
and how ``gatehouse check`` reports a missing or damaged folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from edge.cli import main
from edge.config.loader import load_site
from edge.identity.folder import Identity, write_enrolment
from edge.identity.material import new_keys
from edge.identity.protocol import parse_grant
from edge.uplink.wiring import uplink_config
from tests.unit.edge.identity.central import make_central


def _site(folder: Path, uplink: Mapping[str, object], gateway_id: str = "gw-test") -> Path:
    path = folder / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(
            {"site": {"id": "s1"}, "gateway": {"id": gateway_id, "data_dir": "data"}, "uplink": uplink}, fh
        )
    return path


def _identity(tmp_path: Path, **central: object) -> Identity:
    keys = new_keys()
    grant = parse_grant(make_central(tmp_path, **central).grant(keys), keys)
    return write_enrolment(
        tmp_path / "identity", grant, keys, central_url="https://c.example", api_ca=None, now=1.0
    )


def test_the_identity_fills_the_uplink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    identity = _identity(tmp_path, password="pw")
    site_path = _site(tmp_path, {"identity": "identity"})  # relative to the site file
    assert main(["check", str(site_path)]) == 0, capsys.readouterr().out
    config = uplink_config(load_site(site_path).config.uplink or {}, load_site(site_path))
    assert config.gateway_id == "gw-test"
    assert (config.broker_host, config.broker_port, config.username) == ("127.0.0.1", 8883, "gw-test")
    assert config.client_cert == identity.file("client.crt") and config.client_key == identity.file(
        "client.key"
    )
    assert config.ca_file == identity.file("ca.crt") and config.password_file == identity.file("password")
    assert config.signing_key == identity.file("signing.key")
    assert config.central_key == identity.file("central-signing.pub")
    assert config.e2e_key == identity.file("e2e.key")
    assert (config.encrypt, config.central_e2e_key) == ("x25519-aes256gcm", identity.file("central-e2e.pub"))


def test_what_the_site_file_sets_wins(tmp_path: Path) -> None:
    identity = _identity(tmp_path, password="pw")
    site_path = _site(
        tmp_path,
        {"identity": str(identity.folder), "broker_host": "mq.local", "password": "other", "encrypt": "off"},
    )
    site = load_site(site_path)
    config = uplink_config(site.config.uplink or {}, site)
    assert config.broker_host == "mq.local" and config.encrypt == "off"
    # A password from the site replaces the identity's password file; the username stays.
    assert config.password is not None and config.password_file is None and config.username == "gw-test"
    assert config.client_cert == identity.file("client.crt")


def _problems(site_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["check", str(site_path)]) == 1
    return capsys.readouterr().out.splitlines()


def test_check_locates_a_damaged_identity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    identity = _identity(tmp_path)
    identity.file("client.crt").write_text("not a certificate")
    site_path = _site(tmp_path, {"identity": "identity"})
    lines = _problems(site_path, capsys)
    problem = next(line for line in lines if "uplink.identity:" in line)
    assert problem.startswith(f"{site_path}:") and "client.crt: not a PEM certificate" in problem
    line_no = int(problem.split(":")[1])
    assert "identity:" in site_path.read_text().splitlines()[line_no - 1]


def test_check_says_how_to_make_a_missing_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _problems(_site(tmp_path, {"identity": "nowhere"}), capsys)
    assert any("uplink.identity:" in line and "gatehouse enroll" in line for line in lines), lines


def test_check_wants_gateway_id_to_match_the_enrolment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity(tmp_path)
    lines = _problems(_site(tmp_path, {"identity": "identity"}, gateway_id="gw-local"), capsys)
    assert any(
        "enrolled as gateway 'gw-test'" in line and "set gateway.id: gw-test" in line for line in lines
    )
