"""The site file's ``uplink:`` section: `gatehouse check` locates its mistakes, the daemon starts it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from cloud_sync.keys import save_public_key
from cloud_sync.ports import Lane
from core.errors import ConfigError
from core.model import Event
from edge.app import Gateway
from edge.config.loader import load_site
from edge.uplink.wiring import uplink_config
from tests.broker import Broker
from tests.integration.sync.fake_central import FakeCentral
from tests.integration.sync.helpers import CENTRAL_KEY, CENTRAL_PUB_NAME, signing_key
from tests.support import wait_until


def _site(folder: Path, uplink: Mapping[str, object]) -> Path:
    path = folder / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(
            {"site": {"id": "s1"}, "gateway": {"id": "gw-a", "data_dir": "data"}, "uplink": uplink}, fh
        )
    return path


def _check(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "check", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_reports_uplink_mistakes_with_file_line_column_and_field(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("x")
    site = _site(
        tmp_path,
        {
            "broker_host": "mq.example",
            "broker_port": 70000,
            "ca_file": "ca.crt",
            "usernme": "gw-a",
            "signing_key": "missing/signing.key",
        },
    )
    result = _check(site)
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert any(f"{site}:" in line and "uplink.broker_port:" in line for line in lines), lines
    assert any("uplink.usernme: unknown key 'usernme' (did you mean 'username'?)" in line for line in lines)
    # Positions are real: the unknown key sits on its own line of the file.
    text = site.read_text().splitlines()
    bad = next(line for line in lines if "usernme" in line)
    line_no = int(bad.split(":")[1])
    assert "usernme" in text[line_no - 1]

    fixed = _site(
        tmp_path,
        {
            "broker_host": "mq.example",
            "ca_file": "ca.crt",
            "username": "gw-a",
            "password": "pw",
            "signing_key": "missing/signing.key",
            "central_key": "central.pub",
        },
    )
    result = _check(fixed)
    assert result.returncode == 1
    assert "uplink.signing_key: file" in result.stdout and "does not exist" in result.stdout

    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "signing.key").write_text("x")
    (tmp_path / "central.pub").write_text("not a key")
    result = _check(fixed)
    assert result.returncode == 1
    assert "uplink.central_key:" in result.stdout and "no PEM public key" in result.stdout
    save_public_key(CENTRAL_KEY.public_key(), tmp_path / "central.pub")
    result = _check(fixed)
    assert result.returncode == 0, result.stdout


def test_a_site_without_central_key_is_refused_with_a_pointer_to_the_setting(tmp_path: Path) -> None:
    """No silent unsigned mode: without central's key the uplink does not start."""
    for name in ("ca.crt", "signing.key"):
        (tmp_path / name).write_text("x")
    raw = {
        "broker_host": "mq.example",
        "ca_file": "ca.crt",
        "username": "gw-a",
        "password": "pw",
        "signing_key": "signing.key",
    }
    path = _site(tmp_path, raw)
    result = _check(path)
    assert result.returncode == 1
    line = next(line for line in result.stdout.splitlines() if "uplink.central_key" in line)
    assert line.startswith(f"{path}:"), line
    assert "central-signing.pub" in line and "gatehouse certs central" in line
    with pytest.raises(ConfigError) as caught:
        uplink_config(raw, load_site(path))
    assert "uplink.central_key: required" in str(caught.value)


def test_relative_paths_and_gateway_id_default_from_the_site(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for name in ("ca.crt", "signing.key", "pw"):
        (tmp_path / "pki" / name).write_text("x")
    save_public_key(CENTRAL_KEY.public_key(), tmp_path / "pki" / "central.pub")
    raw = {
        "broker_host": "mq.example",
        "ca_file": "pki/ca.crt",
        "username": "gw-a",
        "password_file": "pki/pw",
        "signing_key": "pki/signing.key",
        "central_key": "pki/central.pub",
    }
    site = load_site(_site(tmp_path, raw))
    config = uplink_config(raw, site)
    assert config.gateway_id == "gw-a"
    assert config.ca_file == tmp_path / "pki" / "ca.crt"
    assert config.password_file == tmp_path / "pki" / "pw"
    assert config.signing_key == tmp_path / "pki" / "signing.key"
    assert config.central_key == tmp_path / "pki" / "central.pub"
    with pytest.raises(ConfigError) as caught:
        uplink_config({**raw, "client_cert": "pki/ca.crt"}, site)
    assert "client_cert and client_key go together" in str(caught.value)
    assert str(caught.value).startswith(f"{site.path}:")


async def test_gateway_runs_the_uplink_of_its_site(broker: Broker, tmp_path: Path) -> None:
    key_path, key = signing_key(tmp_path)
    user, password = broker.credentials("gw-a")
    site_path = _site(
        tmp_path,
        {
            "broker_host": broker.host,
            "broker_port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "signing_key": key_path.name,
            "central_key": CENTRAL_PUB_NAME,
            "idle_poll_s": 0.05,
        },
    )
    site = load_site(site_path)
    async with FakeCentral(broker, {"gw-a": key.public_key()}) as central, Gateway(site) as gateway:
        assert gateway.uplink is not None
        await gateway.outbox.put_event(Event("alarm.raised", "s1/tank/level", 1.0, {"level_m": 0.2}))
        await gateway.outbox.flush()
        await wait_until(lambda: central.acked("gw-a", Lane.EVENT) >= 1, message="the alarm acknowledged")
        await wait_until(lambda: gateway.uplink.status()["lanes"]["event"]["acked"] >= 1, message="ack seen")


async def test_reload_with_a_changed_uplink_restarts_it(broker: Broker, tmp_path: Path) -> None:
    """A wrong password first: nothing is delivered. SIGHUP's reload with the right one delivers
    what waited in the outbox."""
    key_path, key = signing_key(tmp_path)
    user, password = broker.credentials("gw-a")
    uplink = {
        "broker_host": broker.host,
        "broker_port": broker.port,
        "ca_file": str(broker.ca_path),
        "username": user,
        "password": "not-the-password",
        "signing_key": key_path.name,
        "central_key": CENTRAL_PUB_NAME,
        "idle_poll_s": 0.05,
        "backoff_max_s": 1.0,
    }
    site = load_site(_site(tmp_path, uplink))
    async with FakeCentral(broker, {"gw-a": key.public_key()}) as central, Gateway(site) as gateway:
        run = asyncio.create_task(gateway.run(), name="gateway")
        try:
            await gateway.outbox.put_event(Event("alarm.raised", "s1/tank/level", 1.0, {"level_m": 0.2}))
            await gateway.outbox.flush()
            first = gateway.uplink
            await wait_until(
                lambda: first.status()["counters"]["connect_failures"] >= 1, message="the refused connect"
            )
            assert central.acked("gw-a", Lane.EVENT) == 0

            gateway.reload(load_site(_site(tmp_path, {**uplink, "password": password})))
            await wait_until(lambda: central.acked("gw-a", Lane.EVENT) >= 1, message="delivered after reload")
            assert gateway.uplink is not first
            assert gateway.uplink.status()["connected"]
        finally:
            gateway.stop()
            await run
