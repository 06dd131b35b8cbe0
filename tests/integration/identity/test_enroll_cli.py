"""`gatehouse enroll` as a real process against a real central over HTTPS: a good token gives a
complete identity folder that `gatehouse check` accepts; a used or unknown token, or a central
whose certificate is not trusted, leaves nothing behind."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from edge.identity.folder import read_identity
from tests.broker import start_broker
from tests.integration.identity.central_support import trusted_central


async def _enroll(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "edge", "enroll", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_enroll_against_central(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "mq", start=False)  # only its CA is used here
    async with trusted_central(tmp_path, broker) as central:
        token = await central.token("gw-a")
        folder = tmp_path / "gw" / "identity"
        done = await _enroll(central.base_url, token, "--dir", str(folder), "--ca", str(central.api_ca))
        assert done.returncode == 0, done.stderr
        assert "enrolled as gateway gw-a, estate estate-a" in done.stdout
        assert f"identity: {folder}" in done.stdout
        identity = read_identity(folder)
        assert (identity.gateway_id, identity.broker_port, identity.central_url) == (
            "gw-a",
            broker.port,
            central.base_url,
        )
        assert identity.encrypt == "x25519-aes256gcm" and identity.central_e2e_key_id is not None
        assert identity.api_ca is not None and identity.api_ca.read_bytes() == central.api_ca.read_bytes()
        assert stat.S_IMODE(identity.file("signing.key").stat().st_mode) == 0o600
        assert identity.not_after - identity.renew_after == 10 * 86_400

        # The site file the command told us to write passes `gatehouse check`.
        site = tmp_path / "gw" / "site.yaml"
        with site.open("w", encoding="utf-8") as fh:
            YAML().dump(
                {"site": {"id": "s"}, "gateway": {"id": "gw-a"}, "uplink": {"identity": "identity"}}, fh
            )
        check = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "edge", "check", str(site)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout

        # The same token again: refused as used, and the existing identity is untouched.
        again = await _enroll(
            central.base_url, token, "--dir", str(folder), "--ca", str(central.api_ca), "--force"
        )
        assert again.returncode == 1 and "token refused: used" in again.stderr
        assert read_identity(folder) == identity
        assert sorted(p.name for p in folder.parent.iterdir()) == ["identity", "site.yaml"]

        unknown = tmp_path / "unknown"
        refused = await _enroll(
            central.base_url, "no-such-token", "--dir", str(unknown), "--ca", str(central.api_ca)
        )
        assert refused.returncode == 1 and "token refused: unknown" in refused.stderr
        assert not unknown.exists()

        # Without --ca the system trust store does not know central's certificate: no token sent.
        token2 = await central.token("gw-b")
        untrusted = await _enroll(central.base_url, token2, "--dir", str(tmp_path / "untrusted"))
        assert untrusted.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        assert not (tmp_path / "untrusted").exists()
        # ... so the token is still good.
        good = await _enroll(
            central.base_url, token2, "--dir", str(tmp_path / "b"), "--ca", str(central.api_ca)
        )
        assert good.returncode == 0, good.stderr


async def test_enroll_refuses_plain_http(tmp_path: Path) -> None:
    done = await _enroll("http://central.example", "tok", "--dir", str(tmp_path / "x"))
    assert done.returncode == 2 and "not an https:// URL" in done.stderr
