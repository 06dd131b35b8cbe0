"""X25519 key files for end-to-end encryption (cloud_sync.keys), and `gatehouse check` reading them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cloud_sync.e2e import encryption_key_id, keys_by_id
from cloud_sync.errors import KeyFileError
from cloud_sync.keys import (
    generate_private_key,
    load_x25519_private,
    load_x25519_public,
    parse_x25519_public,
    save_private_key,
    save_public_key,
    save_x25519_private,
    save_x25519_public,
    x25519_public_pem,
)
from edge.uplink.wiring import check_uplink
from tests.integration.sync.helpers import CENTRAL_KEY


def test_save_and_load_round_trip_private_key_mode_0600(tmp_path: Path) -> None:
    key = X25519PrivateKey.generate()
    save_x25519_private(key, tmp_path / "e2e" / "central-e2e.key")
    save_x25519_public(key.public_key(), tmp_path / "e2e" / "central-e2e.pub")
    assert stat.S_IMODE((tmp_path / "e2e" / "central-e2e.key").stat().st_mode) == 0o600
    loaded = load_x25519_private(tmp_path / "e2e" / "central-e2e.key")
    public = load_x25519_public(tmp_path / "e2e" / "central-e2e.pub")
    assert (
        encryption_key_id(loaded.public_key())
        == encryption_key_id(public)
        == encryption_key_id(key.public_key())
    )
    assert parse_x25519_public(x25519_public_pem(public)) == public
    assert list(keys_by_id(loaded)) == [encryption_key_id(public)]


def test_a_signing_key_is_not_an_encryption_key(tmp_path: Path) -> None:
    signing = generate_private_key()
    save_private_key(signing, tmp_path / "signing.key")
    save_public_key(signing.public_key(), tmp_path / "signing.pub")
    with pytest.raises(KeyFileError, match="not an X25519 key"):
        load_x25519_private(tmp_path / "signing.key")
    with pytest.raises(KeyFileError, match="not an X25519 key"):
        load_x25519_public(tmp_path / "signing.pub")
    (tmp_path / "junk").write_text("junk")
    with pytest.raises(KeyFileError, match="not a PEM"):
        load_x25519_public(tmp_path / "junk")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_x25519_private(tmp_path / "absent.key")


def test_check_reports_an_unusable_central_e2e_key(tmp_path: Path) -> None:
    for name in ("ca.crt", "signing.key"):
        (tmp_path / name).write_text("x")
    save_public_key(CENTRAL_KEY.public_key(), tmp_path / "central.pub")
    raw = {
        "broker_host": "mq.example",
        "ca_file": "ca.crt",
        "username": "gw-a",
        "password": "pw",
        "signing_key": "signing.key",
        "central_key": "central.pub",
        "encrypt": "x25519-aes256gcm",
        "central_e2e_key": "central-e2e.pub",
    }

    def messages() -> list[str]:
        return [
            f"{'.'.join(i.loc)}: {i.message}" for i in check_uplink(raw, gateway_id="gw-a", base_dir=tmp_path)
        ]

    assert any(m.startswith("uplink.central_e2e_key: file") and "does not exist" in m for m in messages())
    # Central's *signing* key where its encryption key belongs: the easy mistake.
    save_public_key(CENTRAL_KEY.public_key(), tmp_path / "central-e2e.pub")
    assert messages() == [
        f"uplink.central_e2e_key: {tmp_path / 'central-e2e.pub'}: not an X25519 key"
        " (central's X25519 encryption key is expected, not its signing key)"
    ]
    save_x25519_public(X25519PrivateKey.generate().public_key(), tmp_path / "central-e2e.pub")
    assert messages() == []
    del raw["central_e2e_key"]
    assert any("needs central_e2e_key" in m for m in messages())
