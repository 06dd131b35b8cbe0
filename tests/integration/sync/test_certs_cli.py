"""`gatehouse certs` end to end: the files it makes run a real broker that gateways can use."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.broker_config import AuthMode, BrokerFiles
from cloud_sync.certs import CENTRAL_USER, ClientCredentials, PkiLayout
from cloud_sync.keys import key_id, load_private_key, load_public_keys
from cloud_sync.mqtt_client import MqttSession, MqttSettings, PublishRefused
from edge.cli import main
from tests.broker import Broker
from tests.support import free_port


def _creds(layout: PkiLayout, name: str) -> ClientCredentials:
    folder = layout.client_dir(name)
    return ClientCredentials(
        name=name,
        cert_path=folder / "client.crt",
        key_path=folder / "client.key",
        password=(folder / "password").read_text().strip(),
        password_path=folder / "password",
    )


async def test_certs_commands_make_a_working_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = tmp_path / "pki"
    monkeypatch.setenv("GATEHOUSE_CA_PASSPHRASE", "site CA passphrase")  # the CA key is encrypted
    assert main(["certs", "init", "--dir", str(pki), "--broker-host", "mq.example.net"]) == 0
    assert main(["certs", "central", "--dir", str(pki)]) == 0
    assert main(["certs", "gateway", "--dir", str(pki), "gw-1"]) == 0
    assert main(["certs", "gateway", "--dir", str(pki), "gw-2"]) == 0
    out = capsys.readouterr().out
    assert "uplink:" in out and "gateway_id: gw-1" in out and "signing.pub" in out
    # Central's ack-signing key: made once, pinned by the gateways, kept by a second run.
    layout = PkiLayout(pki)
    assert f'signing_key: "{layout.central_signing_key}"' in out
    assert f'central_key: "{layout.central_signing_pub}"' in out
    assert layout.central_signing_key.stat().st_mode & 0o777 == 0o600
    pinned = load_public_keys(layout.central_signing_pub)
    assert list(pinned) == [key_id(load_private_key(layout.central_signing_key).public_key())]
    assert main(["certs", "central", "--dir", str(pki)]) == 0
    assert "kept" in capsys.readouterr().out
    assert load_public_keys(layout.central_signing_pub) == pinned
    assert main(["certs", "gateway", "--dir", str(pki), "central"]) == 1  # reserved name
    assert main(["certs", "init", "--dir", str(pki)]) == 1  # no silent CA replacement

    port = free_port()
    out_dir = tmp_path / "mq"
    args = ["certs", "broker-config", "--dir", str(pki), "--out", str(out_dir)]
    assert main([*args, "--port", str(port), "--bind", "127.0.0.1", "--as-root"]) == 0

    layout = PkiLayout(pki.resolve())
    files = BrokerFiles(
        config=out_dir / "mosquitto.conf",
        acl=out_dir / "acl",
        persistence_dir=out_dir / "data",
        log_file=out_dir / "mosquitto.log",
    )
    clients = {name: _creds(layout, name) for name in ("gw-1", "gw-2", CENTRAL_USER)}
    with Broker(
        workdir=tmp_path, port=port, layout=layout, files=files, clients=clients, auth=AuthMode.PASSWORD
    ) as broker:
        broker.start()
        gw1 = clients["gw-1"]
        session = await MqttSession.open(
            MqttSettings(
                host="127.0.0.1",
                port=port,
                ca_file=layout.ca_cert,
                client_id="gw-1",
                username="gw-1",
                password=gw1.password,
                connect_timeout_s=10.0,
            )
        )
        try:
            await session.publish("gh/v1/gw-1/up/event", b"ok")
            with pytest.raises(PublishRefused):
                await session.publish("gh/v1/gw-2/up/event", b"spoof")
        finally:
            await session.close()
