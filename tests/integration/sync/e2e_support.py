"""The whole chain for the end-to-end sync tests (tests/e2e/test_sync_*.py).

Real parts only: a simulator (``gatehouse simulate``) serving Modbus meters, the real daemon
(``gatehouse run``) as a subprocess with an ``uplink:`` section, the project's TLS Mosquitto
(tests/broker.py) and the real central service (``CentralService``, in the test's event loop, with
its own SQLite file).

What is compared: an :class:`OutboxWatcher` reads the gateway's outbox file (read-only, as often as
it can) and remembers every telemetry row and event it ever saw committed, and every sealed batch
(its exact bytes). Whatever it saw must reach central exactly once: each sample and event once, and
each sealed batch under its sequence number with the same digest. :func:`central_contents` reads
central's database directly (the API is tested elsewhere; here the question is what is stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import sqlite3
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from cloud_sync.central.app import CentralService
from cloud_sync.central.config import CentralConfig
from cloud_sync.certs import CENTRAL_USER
from cloud_sync.envelope import decode_header, decode_records, make_sealer, to_us
from cloud_sync.keys import key_id
from cloud_sync.ports import EventRow, Lane, TelemetryRow
from edge.outbox.schema import decode_value
from tests.broker import Broker, start_broker
from tests.integration.central.conftest import TOKEN, Gateway, central_config
from tests.integration.edge.daemon_support import connect_ro, simulator, start_gateway, stop
from tests.integration.sync.helpers import CENTRAL_PUB_NAME, signing_key
from tests.support import free_port, wait_until

__all__ = [
    "GW",
    "TOKEN",
    "CentralContents",
    "OutboxWatcher",
    "central_contents",
    "make_central_config",
    "sample_key",
    "write_sync_site",
]

GW = "gw-test"
SITE_ID = "e2e"

# Fast timings so that outages and restarts recover within the tests' deadlines.
FAST_UPLINK: dict[str, Any] = {
    "batch_max_records": 200,
    "inflight_window": 8,
    "ack_timeout_s": 5.0,
    "idle_poll_s": 0.05,
    "backoff_initial_s": 0.2,
    "backoff_max_s": 1.5,
    "connect_timeout_s": 5.0,
    "state_interval_s": 2.0,
    "keepalive_s": 5,
}

SampleKey = tuple[str, int]  # (point id, receipt time in µs, as the envelope carries it)
EventKey = tuple[str, str, int]  # (kind, source, ts in µs)


def sample_key(point_id: str, receipt_ts: float) -> SampleKey:
    return point_id, to_us(receipt_ts)


def meters(count: int, *, interval_s: float = 0.1) -> list[dict[str, Any]]:
    return [
        {"id": f"m{i}", "bus": "lan", "unit": i, "profile": "eastron-sdm630", "poll_interval_s": interval_s}
        for i in range(1, count + 1)
    ]


def write_sync_site(
    folder: Path, *, sim_port: int, broker: Broker, devices: list[dict[str, Any]], **uplink: Any
) -> tuple[Path, Path]:
    """A site file whose ``uplink:`` logs in to ``broker`` as GW; returns (site, signing key)."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path, _ = signing_key(folder)
    user, _password = broker.credentials(GW)
    creds = broker.clients[GW]
    section: dict[str, Any] = {
        # gateway_id is left out on purpose: it defaults to gateway.id.
        "broker_host": broker.host,
        "broker_port": broker.port,
        "ca_file": str(broker.ca_path),
        "username": user,
        "password_file": str(creds.password_path),
        "signing_key": key_path.name,  # relative: taken from the site file's folder
        "central_key": CENTRAL_PUB_NAME,  # written by signing_key() beside it
        **FAST_UPLINK,
        **uplink,
    }
    site = {
        "site": {"id": SITE_ID},
        "gateway": {"id": GW, "data_dir": "data"},
        "outbox": {"commit_interval_ms": 20},
        "buses": [
            {"id": "lan", "type": "modbus_tcp", "host": "127.0.0.1", "port": sim_port, "timeout_ms": 500}
        ],
        "devices": devices,
        "uplink": section,
    }
    path = folder / "site.yaml"
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(site, fh)
    return path, key_path


def make_central_config(tmp_path: Path, broker: Broker, key_path: Path) -> CentralConfig:
    from cloud_sync.keys import load_private_key

    key = load_private_key(key_path)
    gateway = Gateway(GW, key, make_sealer(GW, key_id(key.public_key()), key))
    user, password = broker.credentials(CENTRAL_USER)
    folder = tmp_path / "central"
    folder.mkdir(parents=True, exist_ok=True)
    return central_config(
        folder,
        [gateway],
        broker={
            "host": broker.host,
            "port": broker.port,
            "ca_file": str(broker.ca_path),
            "username": user,
            "password": password,
            "client_id": "central-e2e",
            "keepalive_s": 5,
            "reconnect_max_s": 2,
        },
    )


@dataclass
class OutboxWatcher:
    """Everything ever seen committed in the gateway's outbox file."""

    db: Path
    samples: dict[SampleKey, Any] = field(default_factory=dict)  # -> value
    events: set[EventKey] = field(default_factory=set)
    batches: dict[tuple[str, int], bytes] = field(default_factory=dict)  # (lane, seq) -> sha256
    max_row_id: int = 0

    def poll(self) -> None:
        if not self.db.exists():
            return
        try:
            with contextlib.closing(connect_ro(self.db)) as conn:
                self._read(conn)
        except sqlite3.OperationalError as exc:
            # Not created or not migrated yet; a locked file is retried on the next poll.
            if "no such table" not in str(exc) and "locked" not in str(exc):
                raise

    def _read(self, conn: sqlite3.Connection) -> None:
        # One read transaction: rows and batches are seen as of one commit, so a row sealed
        # between the two queries cannot escape both.
        conn.execute("BEGIN")
        rows = conn.execute(
            "SELECT t.id, p.point_id, t.receipt_ts, t.value, t.flags FROM telemetry t"
            " JOIN points p ON p.id = t.point"
        ).fetchall()
        for row_id, point_id, ts, value, flags in rows:
            self.samples[sample_key(point_id, ts)] = decode_value(value, flags)
            self.max_row_id = max(self.max_row_id, row_id)
        for kind, source, ts in conn.execute("SELECT kind, source, ts FROM events"):
            self.events.add((kind, source, to_us(ts)))
        known = self.batches
        for lane, seq, payload in conn.execute("SELECT lane, seq, payload FROM batches"):
            if (lane, seq) in known:
                assert known[(lane, seq)] == hashlib.sha256(payload).digest(), f"batch {lane}/{seq} changed"
                continue
            known[(lane, seq)] = hashlib.sha256(payload).digest()
            for record in decode_records(decode_header(payload)):
                if isinstance(record, TelemetryRow):
                    self.samples[sample_key(record.point_id, record.receipt_ts)] = record.value
                else:
                    assert isinstance(record, EventRow)
                    self.events.add((record.kind, record.source, to_us(record.ts)))
        conn.execute("COMMIT")

    def leftover(self) -> dict[str, int]:
        """Rows and batches still in the outbox (0 everywhere once everything is acknowledged)."""
        with contextlib.closing(connect_ro(self.db)) as conn:
            return {
                "telemetry": conn.execute("SELECT count(*) FROM telemetry").fetchone()[0],
                "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
                "batches": conn.execute("SELECT count(*) FROM batches").fetchone()[0],
            }

    def pending_batches(self) -> set[tuple[str, int]]:
        with contextlib.closing(connect_ro(self.db)) as conn:
            return {(lane, seq) for lane, seq in conn.execute("SELECT lane, seq FROM batches")}

    def last_seq(self) -> dict[str, int]:
        with contextlib.closing(connect_ro(self.db)) as conn:
            return dict(conn.execute("SELECT lane, last_seq FROM lane_seq").fetchall())


@dataclass
class CentralContents:
    seqs: dict[str, list[int]]  # per lane, in seq order
    digests: dict[tuple[str, int], bytes]
    samples: Counter[SampleKey]
    events: Counter[EventKey]
    acked: dict[str, int]
    conflicts: int

    def contiguous(self, lane: str) -> bool:
        seqs = self.seqs.get(lane, [])
        return seqs == list(range(1, len(seqs) + 1))

    def duplicates(self) -> list[Any]:
        return [k for k, n in self.samples.items() if n > 1] + [k for k, n in self.events.items() if n > 1]


def central_contents(db: Path) -> CentralContents:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        conn.execute("BEGIN")
        seqs: dict[str, list[int]] = {lane.value: [] for lane in Lane}
        digests: dict[tuple[str, int], bytes] = {}
        for lane, seq, digest in conn.execute(
            "SELECT lane, seq, digest FROM batches WHERE gateway_id = ? ORDER BY lane, seq", (GW,)
        ):
            seqs[lane].append(seq)
            digests[(lane, seq)] = digest
        samples: Counter[SampleKey] = Counter(
            sample_key(point_id, ts)
            for point_id, ts in conn.execute(
                "SELECT p.point_id, t.ts FROM telemetry t JOIN points p ON p.id = t.point"
            )
        )
        events: Counter[EventKey] = Counter(
            (kind, source, to_us(ts))
            for kind, source, ts in conn.execute(
                "SELECT kind, source, ts FROM events WHERE gateway_id = ?", (GW,)
            )
        )
        acked = dict(conn.execute("SELECT lane, acked FROM lanes WHERE gateway_id = ?", (GW,)).fetchall())
        conflicts = conn.execute("SELECT count(*) FROM rejected WHERE reason = 'conflict'").fetchone()[0]
        conn.execute("COMMIT")
    return CentralContents(seqs, digests, samples, events, acked, conflicts)


def assert_exactly_once(watcher: OutboxWatcher, contents: CentralContents) -> None:
    """What the gateway committed reached central once; sequences contiguous; bytes identical."""
    for lane in Lane:
        assert contents.contiguous(lane.value), f"{lane} sequences at central are not 1..n"
        assert contents.acked.get(lane.value, 0) == len(contents.seqs[lane.value])
    assert not contents.duplicates(), f"stored twice: {contents.duplicates()[:5]}"
    assert contents.conflicts == 0, "a sequence number was reused for different bytes"
    lost_samples = watcher.samples.keys() - contents.samples.keys()
    assert not lost_samples, f"{len(lost_samples)} committed samples never reached central"
    lost_events = watcher.events - contents.events.keys()
    assert not lost_events, f"committed events never reached central: {sorted(lost_events)[:5]}"
    for (lane_name, seq), digest in watcher.batches.items():
        assert contents.digests.get((lane_name, seq)) == digest, f"{lane_name}/{seq} differs at central"


@dataclass
class Rig:
    """Broker + central + simulator + the daemon, for one test. Made by :func:`sync_rig`."""

    tmp: Path
    broker: Broker
    site: Path
    key_path: Path
    central_config: CentralConfig
    watcher: OutboxWatcher
    sim: subprocess.Popen[bytes]
    device_ids: tuple[str, ...] = ()
    central: CentralService | None = None
    gateway: subprocess.Popen[bytes] | None = None
    starts: int = 0

    # -- the gateway (a subprocess) -----------------------------------------------------------
    def start_gateway(self) -> subprocess.Popen[bytes]:
        assert self.gateway is None or self.gateway.poll() is not None
        self.gateway = start_gateway(self.site, self.tmp / "gw.log")
        self.starts += 1
        return self.gateway

    def stop_gateway(self, sig: int = signal.SIGTERM) -> int:
        assert self.gateway is not None
        code = stop(self.gateway, sig)
        return code

    def gateway_log(self) -> str:
        path = self.tmp / "gw.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- central (in this event loop) ---------------------------------------------------------
    async def start_central(self) -> CentralService:
        assert self.central is None
        service = CentralService(self.central_config)
        await service.__aenter__()
        self.central = service
        assert service.mqtt is not None
        await wait_until(service.mqtt.subscribed.is_set, timeout_s=60, message="central subscribed")
        return service

    async def stop_central(self) -> None:
        service, self.central = self.central, None
        if service is not None:
            await service.__aexit__(None, None, None)

    def api(self) -> httpx.AsyncClient:
        assert self.central is not None and self.central_config.api.tls is not None
        ctx = ssl.create_default_context(cafile=str(self.central_config.api.tls.cert_file))
        return httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{self.central.api_port}",
            verify=ctx,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30.0,
        )

    def contents(self) -> CentralContents:
        return central_contents(self.central_config.database)

    # -- watching -----------------------------------------------------------------------------
    async def wait(self, condition: Callable[[], bool], *, message: str, timeout_s: float = 60.0) -> None:
        """Wait for ``condition`` while the watcher keeps reading the outbox."""

        def check() -> bool:
            self.watcher.poll()
            if self.gateway is not None and self.gateway.poll() not in (None, 0, -signal.SIGKILL):
                raise AssertionError(f"gateway exited with {self.gateway.returncode}:\n{self.gateway_log()}")
            return condition()

        await wait_until(check, timeout_s=timeout_s, interval_s=0.05, message=message)

    async def watch_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.watcher.poll()
            await asyncio.sleep(0.05)

    def stored_batches(self) -> int:
        return sum(len(s) for s in self.contents().seqs.values())

    async def settle_and_check(self, *, timeout_s: float = 90.0) -> CentralContents:
        """Stop the devices, let the gateway drain, then check central holds everything once."""
        stop(self.sim)
        devices = {str(d) for d in self.device_ids}

        def all_offline() -> bool:
            seen = self.watcher.events | self.contents().events.keys()
            return devices <= {source for kind, source, _ts in seen if kind == "device.offline"}

        # Offline events (and bad-quality samples) come after the devices' timeouts; after them
        # the gateway has nothing new to say, so "drained" below is a state, not a moment.
        await self.wait(all_offline, message="every device reported offline", timeout_s=timeout_s)
        at_drain: dict[str, int] = {}

        def drained() -> bool:
            left = self.watcher.leftover()
            if any(left.values()):
                return False
            last = self.watcher.last_seq()
            acked = self.contents().acked
            at_drain.update(last)
            return all(acked.get(lane, 0) == last.get(lane, 0) for lane in ("event", "telemetry"))

        await self.wait(drained, message="outbox drained and acknowledged", timeout_s=timeout_s)
        contents = self.contents()
        assert_exactly_once(self.watcher, contents)
        for lane in Lane:
            # Every number the outbox ever handed out is at central (stored, or declared skipped).
            assert len(contents.seqs[lane.value]) >= at_drain[lane.value], lane
        return contents


@contextlib.asynccontextmanager
async def sync_rig(
    tmp_path: Path, *, devices: list[dict[str, Any]] | None = None, **uplink: Any
) -> AsyncIterator[Rig]:
    sim_port = free_port()
    with start_broker(tmp_path / "mq", gateways=(GW,)) as broker:
        site, key_path = write_sync_site(
            tmp_path / "gw", sim_port=sim_port, broker=broker, devices=devices or meters(3), **uplink
        )
        config = make_central_config(tmp_path, broker, key_path)
        with simulator(site, sim_port, tmp_path / "sim.log") as sim:
            rig = Rig(
                tmp_path,
                broker,
                site,
                key_path,
                config,
                OutboxWatcher(site.parent / "data" / "outbox.db"),
                sim,
                device_ids=tuple(str(d["id"]) for d in (devices or meters(3))),
            )
            try:
                await rig.start_central()
                yield rig
            finally:
                if rig.gateway is not None:
                    stop(rig.gateway)
                await rig.stop_central()
