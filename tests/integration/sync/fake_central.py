"""A small test-side central: subscribes to every gateway's uplink on the real broker, verifies
each batch's signature, remembers what it stored and answers with the agreed ack message.

Knobs for failure tests: ``acking`` (stop/start acknowledging), ``drop_once`` (pretend a batch was
lost the first time it arrives, so the ack lists it as missing). Acks are signed with
``signing`` (by default the test central key the helpers pin). It reconnects by itself when the
broker restarts. Everything it saw is kept in plain lists for assertions.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.ack import AckMessage
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.envelope import decode_header, verify_envelope
from cloud_sync.mqtt_client import MqttError, MqttSession, MqttSettings
from cloud_sync.ports import Lane
from tests.broker import Broker
from tests.integration.sync.helpers import CENTRAL_KEY


@dataclass(frozen=True, slots=True)
class Arrival:
    gateway_id: str
    lane: Lane
    seq: int
    historical: bool
    record_count: int
    digest: str
    at: float  # monotonic


@dataclass
class FakeCentral:
    broker: Broker
    public_keys: dict[str, Ed25519PublicKey]
    acking: bool = True
    drop_once: set[tuple[Lane, int]] = field(default_factory=set)
    arrivals: list[Arrival] = field(default_factory=list)
    stored: dict[tuple[str, Lane], set[int]] = field(default_factory=dict)
    acks_sent: list[tuple[str, Lane, int]] = field(default_factory=list)
    states: list[tuple[str, bytes]] = field(default_factory=list)
    rejected: int = 0
    max_unacked_span: dict[tuple[str, Lane], int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _session: MqttSession | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    client_cert: tuple[Path, Path] | None = None  # log in by certificate instead of password
    signer: DownlinkSigner = field(
        default_factory=lambda: DownlinkSigner(CENTRAL_KEY, clock_us=lambda: time.time_ns() // 1000)
    )

    # -- queries for tests -------------------------------------------------------------------
    def seqs(self, gateway_id: str, lane: Lane) -> set[int]:
        return self.stored.get((gateway_id, lane), set())

    def acked(self, gateway_id: str, lane: Lane) -> int:
        have = self.seqs(gateway_id, lane)
        n = 0
        while n + 1 in have:
            n += 1
        return n

    def max_ack_sent(self, gateway_id: str, lane: Lane) -> int:
        return max((a for g, ln, a in self.acks_sent if g == gateway_id and ln is lane), default=0)

    def arrivals_of(self, gateway_id: str, lane: Lane) -> list[Arrival]:
        return [a for a in self.arrivals if a.gateway_id == gateway_id and a.lane is lane]

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> FakeCentral:
        self._task = asyncio.create_task(self._run(), name="fake-central")
        await asyncio.wait_for(self.connected.wait(), timeout=30)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._session is not None:
            await self._session.close()
        assert self._task is not None
        await self._task

    def _settings(self) -> MqttSettings:
        user: str | None
        password: str | None
        user, password = self.broker.credentials("central")
        cert, key = self.client_cert if self.client_cert is not None else (None, None)
        if cert is not None:
            user = password = None
        return MqttSettings(
            host=self.broker.host,
            port=self.broker.port,
            ca_file=self.broker.ca_path,
            client_id="central",
            username=user,
            password=password,
            client_cert=cert,
            client_key=key,
            connect_timeout_s=5.0,
            session_expiry_s=3600,  # the broker queues batches while central is away
        )

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                session = await MqttSession.open(self._settings())
            except MqttError:
                await asyncio.sleep(0.1)  # broker restarting; retry (a test helper, not production)
                continue
            self._session = session
            try:
                await session.subscribe("gh/v1/+/up/#")
                await session.subscribe("gh/v1/+/state")
                self.connected.set()
                await self._serve(session)
            except MqttError:
                pass
            finally:
                self.connected.clear()
                await session.close()

    async def _serve(self, session: MqttSession) -> None:
        while not session.closed and not self._stop.is_set():
            get = asyncio.ensure_future(session.messages.get())
            closed = asyncio.ensure_future(session.wait_closed())
            done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if get not in done:
                get.cancel()
                return
            message = get.result()
            parts = message.topic.split("/")
            if parts[-1] == "state":
                self.states.append((parts[2], message.payload))
                continue
            self._ingest(session, parts[2], message.payload)

    def _ingest(self, session: MqttSession, topic_gateway: str, payload: bytes) -> None:
        header = decode_header(payload)
        key = self.public_keys.get(header.gateway_id)
        if key is None or header.gateway_id != topic_gateway:
            self.rejected += 1
            return
        verify_envelope(header, key)
        arrival = Arrival(
            gateway_id=header.gateway_id,
            lane=header.lane,
            seq=header.seq,
            historical=header.historical,
            record_count=header.record_count,
            digest=hashlib.sha256(payload).hexdigest(),
            at=time.monotonic(),
        )
        self.arrivals.append(arrival)
        marker = (header.lane, header.seq)
        if marker in self.drop_once:
            self.drop_once.discard(marker)
            return
        have = self.stored.setdefault((header.gateway_id, header.lane), set())
        have.add(header.seq)
        acked = self.acked(header.gateway_id, header.lane)
        span_key = (header.gateway_id, header.lane)
        span = max(have) - self.max_ack_sent(header.gateway_id, header.lane)
        self.max_unacked_span[span_key] = max(self.max_unacked_span.get(span_key, 0), span)
        if not self.acking:
            return
        missing = _gaps(have, acked)
        ack = AckMessage(lane=header.lane, acked=acked, missing=missing, ts=time.time())
        self.acks_sent.append((header.gateway_id, header.lane, acked))
        _fire(session, f"gh/v1/{header.gateway_id}/ack", self.signer.sign_ack(header.gateway_id, ack))

    def ack_now(self, gateway_id: str, lane: Lane) -> None:
        """Send an ack for what is stored (after ``acking`` was switched back on)."""
        assert self._session is not None
        acked = self.acked(gateway_id, lane)
        ack = AckMessage(
            lane=lane, acked=acked, missing=_gaps(self.seqs(gateway_id, lane), acked), ts=time.time()
        )
        self.acks_sent.append((gateway_id, lane, acked))
        _fire(self._session, f"gh/v1/{gateway_id}/ack", self.signer.sign_ack(gateway_id, ack))


def _fire(session: MqttSession, topic: str, payload: bytes) -> None:
    future = session.publish(topic, payload, qos=1)
    # A lost ack is fine (the gateway resends); just do not leave the exception unretrieved.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


def _gaps(have: set[int], acked: int) -> tuple[tuple[int, int], ...]:
    if not have:
        return ()
    ranges: list[tuple[int, int]] = []
    start: int | None = None
    for seq in range(acked + 1, max(have) + 1):
        if seq not in have and start is None:
            start = seq
        elif seq in have and start is not None:
            ranges.append((start, seq - 1))
            start = None
    return tuple(ranges)
