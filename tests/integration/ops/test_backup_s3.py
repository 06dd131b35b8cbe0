"""``gatehouse backup --to s3://…`` and ``gatehouse restore s3://…`` against a real S3 endpoint
(moto's server, an S3 implementation speaking the real HTTP protocol on a local port)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import server as moto_server

from core.model import Quality, Sample
from edge.config.loader import load_site
from edge.outbox import Outbox
from tests.integration.edge.daemon_support import meter, write_site
from tests.support import free_port

BUCKET = "estate-backups"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gatehouse-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gatehouse-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def _keys(client: object, prefix: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return sorted(item["Key"] for item in listed.get("Contents", ()))


def test_backup_to_s3_rotates_and_restores(
    tmp_path: Path, s3: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    data = tmp_path / "data"
    site_path = write_site(tmp_path / "site.yaml", port=1502, devices=[meter("m1", 1)], data_dir=data)
    site = load_site(site_path)

    async def make() -> None:
        async with Outbox(site.outbox_path) as outbox:
            await outbox.put_samples(
                [Sample("testsite/m1/p", float(i), Quality.GOOD, 1000.0 + i) for i in range(30)]
            )

    asyncio.run(make())
    capsys.readouterr()
    # Two older archives and an unrelated object under the same prefix.
    for stamp in ("20250101T000000Z", "20250102T000000Z"):
        old = f"site-a/gatehouse-gw-test-{stamp}.ghbk"
        s3.put_object(Bucket=BUCKET, Key=old, Body=b"old")  # type: ignore[attr-defined]
    s3.put_object(Bucket=BUCKET, Key="site-a/notes.txt", Body=b"keep me")  # type: ignore[attr-defined]

    monkeypatch.setenv("GATEHOUSE_BACKUP_PASSPHRASE", "a passphrase")
    args = ["backup", "--config", str(site_path), "--to", f"s3://{BUCKET}/site-a/", "--keep", "2", "-q"]
    assert main(args) == 0
    captured = capsys.readouterr()
    url = captured.out.strip()
    assert url.startswith(f"s3://{BUCKET}/site-a/gatehouse-") and url.endswith(".ghbk")
    assert (
        "removed old backup s3://estate-backups/site-a/gatehouse-gw-test-20250101T000000Z.ghbk"
        in captured.err
    )
    key = url.removeprefix(f"s3://{BUCKET}/")
    assert _keys(s3, "site-a/") == sorted(
        [key, "site-a/gatehouse-gw-test-20250102T000000Z.ghbk", "site-a/notes.txt"]
    )
    assert not list(tmp_path.glob("**/*.ghbk"))  # nothing left behind locally

    assert main(["restore", url, "--check", "-q"]) == 0
    assert "complete and intact" in capsys.readouterr().out
    assert main(["restore", url, "--data-dir", str(tmp_path / "new"), "-q"]) == 0
    assert "telemetry lane continues after sequence" in capsys.readouterr().out
    assert (tmp_path / "new" / "outbox.db").exists()


def test_s3_errors_are_clear(tmp_path: Path, s3: object, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    (tmp_path / "pass").write_text("p\n")
    secret = ["--passphrase-file", str(tmp_path / "pass")]
    assert main(["restore", f"s3://{BUCKET}/nope/gatehouse-x.ghbk", "--check", *secret]) == 1
    assert "download of s3://estate-backups/nope/gatehouse-x.ghbk failed" in capsys.readouterr().err
    assert main(["restore", "s3://", "--check", *secret]) == 1
    assert "no bucket" in capsys.readouterr().err
