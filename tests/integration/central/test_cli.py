"""`gatehouse central --config central.yaml` as a real subprocess: start, serve, stop on SIGTERM."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from cloud_sync.keys import save_public_key
from cloud_sync.ports import TelemetryRow
from tests.integration.sync.helpers import central_signing_key
from tests.support import free_port, wait_until_sync

from .conftest import TOKEN, Gateway, self_signed

REPO = Path(__file__).parents[3]


def write_config(tmp_path: Path, gw: Gateway, port: int) -> Path:
    cert, key = self_signed(tmp_path)
    save_public_key(gw.key.public_key(), tmp_path / "keys" / "gw-a.pub")
    central_signing_key(tmp_path)
    path = tmp_path / "central.yaml"
    path.write_text(
        f"""
database: data/central.db
signing_key: central-signing.key
api:
  host: 127.0.0.1
  port: {port}
  tls: {{cert_file: {cert.name}, key_file: {key.name}}}
  tokens: [{{name: test, token: {TOKEN}}}]
gateways:
  - id: gw-a
    keys: [{{file: keys/gw-a.pub}}]
"""
    )
    return path


def gatehouse(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def test_check_accepts_a_good_file_and_rejects_a_bad_one(tmp_path: Path, gw_a: Gateway) -> None:
    good = write_config(tmp_path, gw_a, 8443)
    ok = subprocess.run(
        gatehouse("central", "--config", str(good), "--check"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "1 gateway(s) enrolled" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: x.db\napi: {tokens: []}\nsurprise: 1\n")
    failed = subprocess.run(
        gatehouse("central", "--config", str(bad), "--check"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 2
    assert "api.tokens" in failed.stderr and "surprise" in failed.stderr


def test_central_serves_https_and_stops_cleanly_on_sigterm(tmp_path: Path, gw_a: Gateway) -> None:
    port = free_port()
    config = write_config(tmp_path, gw_a, port)
    proc = subprocess.Popen(
        gatehouse("central", "--config", str(config)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "api.crt"))
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=ctx,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10.0,
        ) as client:

            def up() -> bool:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                try:
                    return client.get("/api/v1/gateways").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until_sync(up, message="central API up")
            batch = gw_a.telemetry(1, [TelemetryRow("s/d/p", 4.5, 0, "", 10.0, None)])
            resp = client.post(
                "/api/v1/ingest/gw-a/telemetry", content=batch, headers={"Accept": "application/json"}
            )
            assert resp.status_code == 200 and resp.json()["acked"] == 1
            assert [p["value"] for p in client.get("/api/v1/points").json()] == [4.5]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert (tmp_path / "data" / "central.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
