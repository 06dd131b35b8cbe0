"""Backup while the outbox is being written, restore on a fresh data folder, and central (its real
store and ingest) sees no reused sequence number and no hole it would wait for."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.store import CentralStore
from cloud_sync.envelope import make_sealer
from cloud_sync.keys import generate_private_key, key_id
from cloud_sync.ports import Lane, SealMode
from core.model import Event, Quality, Sample
from edge.backup import BackupError, create_backup, restore_backup, rotate, verify
from edge.backup_crypto import BackupCryptoError
from edge.config.loader import load_site
from edge.outbox import Outbox
from tests.integration.edge.daemon_support import meter, write_site

PASS = b"correct horse battery staple"


class Central:
    def __init__(self, path: Path, key: object) -> None:
        self.store = CentralStore(path)
        registry = KeyRegistry()
        registry.enroll("gw-test", key.public_key())  # type: ignore[attr-defined]
        self.ingestor = Ingestor(self.store, registry, clock=time.time)
        self.outcomes: list[tuple[str, str, int | None, str]] = []

    async def deliver(self, outbox: Outbox, seal: object, *, per_batch: int = 5) -> None:
        for lane in (Lane.EVENT, Lane.TELEMETRY):  # events first, like the uplink
            after = 0
            while True:  # resend what is sealed and not acked, then seal new batches
                pending = await outbox.pending(lane, after_seq=after, limit=100)
                if not pending:
                    break
                for batch in pending:
                    self._ingest(batch.payload, lane)
                    after = batch.seq
            while (
                b := await outbox.seal(lane, mode=SealMode.BACKLOG, max_records=per_batch, sealer=seal)
            ) is not None:
                self._ingest(b.payload, lane)
            await outbox.acknowledge(lane, self.ingestor.ack_for("gw-test", lane).acked)

    def _ingest(self, payload: bytes, lane: Lane) -> None:
        out = self.ingestor.ingest(payload, gateway_id="gw-test", lane=lane.value, transport="test")
        self.outcomes.append((out.status, out.lane, out.seq, out.reason))


async def _poll(outbox: Outbox, start: float, count: int) -> None:
    for i in range(count):
        await outbox.put_samples([Sample("testsite/m1/p", float(i), Quality.GOOD, start + i)])
        if i % 50 == 0:
            await outbox.put_event(Event("device.online", "m1", start + i, {}))
        await asyncio.sleep(0)


async def test_backup_while_polling_then_restore_continues_the_sequence(tmp_path: Path) -> None:
    key = generate_private_key()
    seal = make_sealer("gw-test", key_id(key.public_key()), key)
    central = Central(tmp_path / "central.db", key)
    data = tmp_path / "data"
    site_path = write_site(tmp_path / "site.yaml", port=1502, devices=[meter("m1", 1)], data_dir=data)
    site = load_site(site_path)
    data.mkdir()
    (data / "rules.db").touch()  # an empty database is a database too
    sqlite3.connect(data / "rules.db").execute("CREATE TABLE t (x)").connection.close()

    async with Outbox(site.outbox_path, seq_block=50) as outbox:
        await _poll(outbox, 1000.0, 200)
        await outbox.flush()
        await central.deliver(outbox, seal)
        # The backup runs in a thread while the "poller" keeps writing.
        polling = asyncio.create_task(_poll(outbox, 2000.0, 400))
        archive = await asyncio.to_thread(create_backup, site, tmp_path / "backups", PASS)
        await polling
        await outbox.flush()
        # After the backup the gateway keeps going: more batches, past the reserved block.
        await central.deliver(outbox, seal)
        await _poll(outbox, 3000.0, 300)
        await outbox.flush()
        await central.deliver(outbox, seal)
    high = {lane: central.ingestor.ack_for("gw-test", lane).acked for lane in Lane}
    assert high[Lane.TELEMETRY] > 50 + 40  # beyond the block reserved when the backup was taken

    # The gateway's disk dies. A fresh data folder, the backup, and the same keys.
    fresh = tmp_path / "fresh"
    result = restore_backup(archive, PASS, fresh, site_dir=tmp_path / "restored-site")
    assert (tmp_path / "restored-site" / "site.yaml").exists()
    assert {Path(p).name for p in result["restored"]} >= {"outbox.db", "rules.db", "site.yaml"}
    async with Outbox(fresh / "outbox.db", seq_block=50) as outbox:
        await _poll(outbox, 4000.0, 100)
        await outbox.flush()
        await central.deliver(outbox, seal)
        backlog = await outbox.backlog()

    conflicts = [o for o in central.outcomes if o[3] == "conflict"]
    assert conflicts == []
    for lane in Lane:
        ack = central.ingestor.ack_for("gw-test", lane)
        assert ack.missing == (), (lane, ack)
        assert ack.acked > high[lane]  # the new batches were stored and acknowledged
        assert backlog["lanes"][lane.value]["batches"] == 0
    rejected = central.store.count("rejected")
    assert rejected == len([o for o in central.outcomes if o[0] == "duplicate"])  # only same-byte resends
    central.store.close()


def test_verify_refuses_a_wrong_passphrase_and_a_damaged_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    site = load_site(write_site(tmp_path / "site.yaml", port=1502, devices=[meter("m1", 1)], data_dir=data))

    async def make() -> None:
        async with Outbox(site.outbox_path) as outbox:
            await _poll(outbox, 1000.0, 10)

    asyncio.run(make())
    archive = create_backup(site, tmp_path / "b", PASS)
    manifest = verify(archive, PASS, tmp_path / "ok")
    assert {m["name"] for m in manifest["members"]} >= {
        "data/outbox.db",
        "data/outbox.db.seq",
        "site/site.yaml",
    }
    with pytest.raises(BackupCryptoError, match="wrong passphrase"):
        verify(archive, b"not it", tmp_path / "wrong")
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    damaged = tmp_path / "damaged.ghbk"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(BackupCryptoError, match="damaged"):
        verify(damaged, PASS, tmp_path / "dmg")
    truncated = tmp_path / "truncated.ghbk"
    truncated.write_bytes(archive.read_bytes()[:-20])
    with pytest.raises(BackupCryptoError, match="truncated"):
        verify(truncated, PASS, tmp_path / "trunc")
    # restoring over live databases needs --force
    with pytest.raises(BackupError, match="already holds"):
        restore_backup(archive, PASS, data)


def test_rotation_keeps_the_newest(tmp_path: Path) -> None:
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        (tmp_path / f"gatehouse-gw-{stamp}.ghbk").write_bytes(b"x")
    removed = rotate(tmp_path, 2)
    assert [p.name for p in removed] == ["gatehouse-gw-20260101T000000Z.ghbk"]
    assert len(list(tmp_path.glob("*.ghbk"))) == 2


def test_backup_and_restore_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    data = tmp_path / "data"
    site_path = write_site(tmp_path / "site.yaml", port=1502, devices=[meter("m1", 1)], data_dir=data)
    site = load_site(site_path)

    async def make() -> None:
        async with Outbox(site.outbox_path) as outbox:
            await _poll(outbox, 1000.0, 20)

    asyncio.run(make())
    (tmp_path / "pass").write_text("a passphrase\n")
    assert main(["backup", "--config", str(site_path), "--to", str(tmp_path / "b")]) == 1  # none given
    assert "no passphrase" in capsys.readouterr().err
    monkeypatch.setenv("GATEHOUSE_BACKUP_PASSPHRASE", "a passphrase")
    assert main(["backup", "--config", str(site_path), "--to", str(tmp_path / "b"), "--keep", "3"]) == 0
    captured = capsys.readouterr()
    archive = Path(captured.out.strip())
    assert archive.suffix == ".ghbk" and "100.0 %" in captured.err  # the progress bar
    args = ["restore", str(archive), "--passphrase-file", str(tmp_path / "pass")]
    assert main([*args, "--check"]) == 0
    assert "complete and intact" in capsys.readouterr().out
    assert main([*args, "--data-dir", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert "telemetry lane continues after sequence" in out
    assert (tmp_path / "new" / "outbox.db").exists() and (tmp_path / "new" / "outbox.db.seq").exists()


def test_the_enrolled_identity_is_backed_up_and_restored_private(tmp_path: Path) -> None:
    # A gateway restored onto a new disk keeps its enrolment: same keys, same certificate, and
    # the private files as private as `gatehouse enroll` made them.
    from edge.identity.folder import read_identity, write_enrolment
    from edge.identity.material import new_keys
    from edge.identity.protocol import parse_grant
    from tests.unit.edge.identity.central import make_central

    keys = new_keys()
    grant = parse_grant(make_central(tmp_path, password="pw").grant(keys), keys)
    site_dir = tmp_path / "site"
    enrolled = write_enrolment(
        site_dir / "identity", grant, keys, central_url="https://c.example", api_ca=None, now=1.0
    )
    data = tmp_path / "data"
    site_path = write_site(site_dir / "site.yaml", port=1502, devices=[meter("m1", 1)], data_dir=data)
    site_path.write_text(site_path.read_text() + "uplink:\n  identity: identity\n")
    site = load_site(site_path)
    archive = create_backup(site, tmp_path / "backups", PASS)

    names = {m["name"] for m in verify(archive, PASS, tmp_path / "check")["members"]}
    assert {
        "site/identity/identity.json",
        "site/identity/v1/signing.key",
        "site/identity/v1/client.key",
    } <= names

    restored_site = tmp_path / "new-disk" / "site"
    restore_backup(archive, PASS, tmp_path / "new-disk" / "data", site_dir=restored_site)
    again = read_identity(restored_site / "identity")
    assert again.gateway_id == enrolled.gateway_id
    for name in ("signing.key", "client.key", "e2e.key", "password", "client.crt"):
        assert again.file(name).read_bytes() == enrolled.file(name).read_bytes(), name
    for name in ("signing.key", "client.key", "e2e.key", "password"):
        assert again.file(name).stat().st_mode & 0o777 == 0o600, name
    assert (restored_site / "identity").stat().st_mode & 0o777 == 0o700
    assert load_site(restored_site / "site.yaml").config.uplink == {"identity": "identity"}
