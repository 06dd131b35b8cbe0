"""The gateway's MQTT uplink: seal batches from the outbox, publish them, delete on central's ack.

::

    async with Outbox(...) as outbox, Uplink(config, store=outbox) as uplink:
        ...
        uplink.status()   # for the dashboard / health view

Topics (docs/protocol.md): ``gh/v1/{gw}/up/{lane}`` (batches, QoS 1), ``gh/v1/{gw}/state``
(retained JSON, Last Will ``offline``), ``gh/v1/{gw}/ack`` (central's signed acks).

Acks are trusted only when signed by a pinned central key (``central_key``), addressed to this
gateway and newer than the last one accepted for their lane (``cloud_sync.downlink``). Anything
else on the ack topic (unsigned, forged, replayed, for another gateway) deletes nothing: it is
counted per reason (``status()["rejected_acks"]``), logged once per burst and reported as a
``system.ack_rejected`` event through ``on_event``; the batches stay and are resent as usual.

Sending order, each time there is room: the event lane first (sealing LIVE, then BACKLOG rows),
then one telemetry batch (LIVE before BACKLOG), then events again — so an alarm raised during a
large backlog drain waits for at most one telemetry batch. Each lane has its own bounded window
of batches in flight (published, not yet acknowledged by central). A batch is deleted from the
outbox only when central's ack covers it; it is resent byte-identical after ``ack_timeout_s``,
when central lists it as missing, and after every reconnect. A publish the broker refuses with a
failure reason code (e.g. 0x87, the ACL) is recorded as an error and is not counted as delivered.

Reconnects use exponential backoff with full jitter, capped low (``backoff_max_s``, a few
seconds) while the broker is unreachable so that alarms flow soon after it returns, and high
(``backoff_refused_max_s``) only after repeated refusals (``uplink_schedule.ReconnectPolicy``).
TLS is always on and verified.
The bookkeeping lives in ``cloud_sync.uplink_schedule`` (pure), the paho wrapper in
``cloud_sync.mqtt_client``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from cloud_sync.downlink import REASONS, Freshness, verify_ack
from cloud_sync.envelope import make_sealer, valid_gateway_id
from cloud_sync.errors import EnvelopeError
from cloud_sync.keys import key_id, load_private_key, load_public_keys, load_x25519_public
from cloud_sync.mqtt_client import (
    IncomingMessage,
    MqttConnectError,
    MqttDisconnected,
    MqttError,
    MqttSession,
    MqttSettings,
    PublishRefused,
    Will,
)
from cloud_sync.ports import BatchStore, Lane, SealedBatch, Sealer, SealMode
from cloud_sync.uplink_schedule import SEND_ORDER, Clock, LaneSchedule, ReconnectPolicy

__all__ = ["EventSink", "Uplink", "UplinkConfig", "topics"]

_LOG = structlog.get_logger(__name__)

# A session that lasted this long resets the reconnect backoff.
_STABLE_SESSION_S = 10.0
# Rejected acks closer together than this are one burst: one warning and one event per burst.
_ACK_BURST_QUIET_S = 60.0

# (kind, source, data) → the daemon's event lane (edge.uplink.wiring passes the outbox's).
EventSink = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class UplinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway_id: str
    broker_host: str
    broker_port: int = Field(default=8883, ge=1, le=65535)
    ca_file: Path
    client_cert: Path | None = None
    client_key: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    signing_key: Path
    # Central's Ed25519 public key(s), PEM (several blocks during a rotation): acks must verify.
    central_key: Path
    # End-to-end encryption (docs/protocol.md §2.7): batches sealed to central's X25519 public
    # key ``central_e2e_key`` with this suite; "off" sends records in clear (inside TLS).
    encrypt: Literal["off", "x25519-aes256gcm", "x25519-sm4gcm"] = "off"
    central_e2e_key: Path | None = None
    # The gateway's own X25519 private key: commands central encrypts to the gateway open with it.
    e2e_key: Path | None = None
    topic_prefix: str = "gh/v1"
    batch_max_records: int = Field(default=5000, ge=1, le=100_000)
    inflight_window: int = Field(default=32, ge=1, le=1000)  # batches per lane
    ack_timeout_s: float = Field(default=30.0, gt=0)
    missing_grace_s: float = Field(default=1.0, ge=0)
    state_interval_s: float = Field(default=30.0, gt=0)
    idle_poll_s: float = Field(default=0.2, gt=0)
    live_probe_interval_s: float = Field(default=0.5, ge=0)
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=4.0, gt=0)  # while the broker is unreachable
    backoff_refused_max_s: float = Field(default=60.0, gt=0)  # after repeated refusals
    backoff_slow_after: int = Field(default=5, ge=1)  # consecutive refusals before the slow cap
    keepalive_s: int = Field(default=30, ge=5)
    connect_timeout_s: float = Field(default=15.0, gt=0)
    # The "uplink behind" alarm (edge.uplink.watch): raised when the oldest unacknowledged record
    # is this old, cleared once it is back within behind_clear_s; the backlog checked this often.
    behind_alarm_s: float = Field(default=60.0, gt=0)
    behind_clear_s: float = Field(default=10.0, ge=0)
    behind_check_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not valid_gateway_id(self.gateway_id):
            raise ValueError(f"gateway_id {self.gateway_id!r} cannot be an MQTT topic level")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if has_password and self.username is None:
            raise ValueError("a password needs a username")
        if self.client_cert is None and not has_password:
            raise ValueError("configure a client certificate or a username and password")
        if self.encrypt != "off" and self.central_e2e_key is None:
            raise ValueError(f"encrypt: {self.encrypt} needs central_e2e_key (central's X25519 public key)")
        if self.behind_clear_s >= self.behind_alarm_s:
            raise ValueError("behind_clear_s must be below behind_alarm_s")
        return self


def _make_sealer(config: UplinkConfig) -> Sealer:
    key = load_private_key(config.signing_key)
    # End to end (docs/protocol.md §2.7): records readable by central only, not the broker.
    central_e2e = None if config.encrypt == "off" else config.central_e2e_key
    return make_sealer(
        config.gateway_id,
        key_id(key.public_key()),
        key,
        encrypt_to=None if central_e2e is None else load_x25519_public(central_e2e),
        suite=config.encrypt,
    )


class Topics:
    def __init__(self, prefix: str, gateway_id: str) -> None:
        base = f"{prefix}/{gateway_id}"
        self.state = f"{base}/state"
        self.ack = f"{base}/ack"
        self.cmd = f"{base}/cmd"
        self._up = {lane: f"{base}/up/{lane.value}" for lane in Lane}

    def up(self, lane: Lane) -> str:
        return self._up[lane]


def topics(config: UplinkConfig) -> Topics:
    return Topics(config.topic_prefix, config.gateway_id)


class _SystemClock:
    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Uplink:
    def __init__(
        self,
        config: UplinkConfig,
        *,
        store: BatchStore,
        clock: Clock | None = None,
        sealer: Sealer | None = None,
        rng: random.Random | None = None,
        on_event: EventSink | None = None,
        on_command: Callable[[bytes], None] | None = None,
    ) -> None:
        self._config = config
        # Central's commands (docs/protocol.md §12) are handed over as bytes, unverified: the
        # receiver (edge.commands) judges and runs them off this loop's critical path.
        self._on_command = on_command
        self._store = store
        self._clock: Clock = clock or _SystemClock()
        self._sealer = sealer
        self._rng = rng or random.Random()
        self._on_event = on_event
        self._central_keys: dict[str, Ed25519PublicKey] = {}
        self._freshness = Freshness()
        self._rejected_acks = dict.fromkeys(REASONS, 0)
        self._ack_burst: tuple[float, int] | None = None  # (last rejection, count in the burst)
        self._reconnect = ReconnectPolicy(
            initial_s=config.backoff_initial_s,
            max_s=config.backoff_max_s,
            refused_max_s=config.backoff_refused_max_s,
            slow_after=config.backoff_slow_after,
        )
        self._topics = topics(config)
        self._lanes = {
            lane: LaneSchedule(
                lane,
                window=config.inflight_window,
                ack_timeout_s=config.ack_timeout_s,
                missing_grace_s=config.missing_grace_s,
            )
            for lane in Lane
        }
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._session: MqttSession | None = None
        self._task_group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_state_at = float("-inf")
        self._live_probe_after = float("-inf")
        self._counters = {
            "batches_sent": 0,
            "records_sent": 0,
            "resends": 0,
            "acks": 0,
            "batches_deleted": 0,
            "publish_refused": 0,
            "connect_failures": 0,
            "disconnects": 0,
            "bad_acks": 0,
        }
        self._last_error: str | None = None
        self._last_refusal: dict[str, Any] | None = None
        # CONNACK reason code of the last refused connect, None once a connect succeeds.
        self._connect_refused: int | None = None
        self._reconnect_now = False  # set by switch_identity: end the session, connect anew
        self._last_ack_wall: dict[Lane, float | None] = dict.fromkeys(Lane)
        self._connected_since: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        # Before anything connects: without central's key no ack could ever be trusted.
        self._central_keys = load_public_keys(self._config.central_key)
        if self._sealer is None:
            self._sealer = _make_sealer(self._config)
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._task = self._task_group.create_task(self._run(), name=f"uplink:{self._config.gateway_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._wakeup.set()
        assert self._task_group is not None
        await self._task_group.__aexit__(exc_type, exc, tb)

    def wake(self) -> None:
        """Look for new rows now (the daemon may call this when it writes an alarm)."""
        self._wakeup.set()

    async def switch_identity(self, config: UplinkConfig) -> None:
        """Carry on with a renewed identity (``edge.identity.renewal``): batches sealed from now
        on are signed with ``config``'s key; the session ends and the next one connects with
        ``config``'s certificate or password. Batches already sealed stay as they are and are
        sent byte-identical (central accepts the old key for a grace period), so none is lost
        or sent twice under two names. Call on the uplink's loop; same gateway and topics only."""
        if (config.gateway_id, config.topic_prefix) != (self._config.gateway_id, self._config.topic_prefix):
            raise ValueError("a switched identity must keep the gateway id and topic prefix")
        central_keys = load_public_keys(config.central_key)
        sealer = _make_sealer(config)  # both loaded before anything changes: all or nothing
        self._config, self._central_keys, self._sealer = config, central_keys, sealer
        # Only a live session is ended; a connect under way used the old, still valid, credentials.
        self._reconnect_now = self._session is not None
        self._wakeup.set()

    def status(self) -> dict[str, Any]:
        return {
            "gateway_id": self._config.gateway_id,
            "connected": self._session is not None and not self._session.closed,
            "connected_since": self._connected_since,
            "lanes": {
                lane.value: {
                    "acked": sched.acked,
                    "last_sent": sched.cursor,
                    "in_flight": sched.in_flight,
                    "window": sched.window,
                    "refused": sched.refused_count(),
                    "last_ack_at": self._last_ack_wall[lane],
                }
                for lane, sched in self._lanes.items()
            },
            "counters": dict(self._counters),
            "last_error": self._last_error,
            "last_refusal": self._last_refusal,
            "connect_refused": self._connect_refused,
            "rejected_acks": {k: v for k, v in self._rejected_acks.items() if v},
            "central_keys": sorted(self._central_keys),
        }

    # -- connection loop ---------------------------------------------------------------------
    def _settings(self) -> MqttSettings:
        cfg = self._config
        password: str | None = None
        if cfg.password is not None:
            password = cfg.password.get_secret_value()
        elif cfg.password_file is not None:
            password = cfg.password_file.read_text().strip()
        return MqttSettings(
            host=cfg.broker_host,
            port=cfg.broker_port,
            ca_file=cfg.ca_file,
            client_id=cfg.gateway_id,
            username=cfg.username,
            password=password,
            client_cert=cfg.client_cert,
            client_key=cfg.client_key,
            keepalive_s=cfg.keepalive_s,
            connect_timeout_s=cfg.connect_timeout_s,
            # Both lanes' windows plus state publishes; paho queues beyond this, never drops.
            max_inflight=2 * cfg.inflight_window + 4,
        )

    async def _run(self) -> None:
        # A session that dies at once (a duplicate client id kicking us, a broker that drops us
        # after CONNACK) backs off like a failed connect, not reconnect in a tight loop.
        while not self._stopping.is_set():
            will = Will(self._topics.state, json.dumps({"state": "offline"}).encode())
            try:
                session = await MqttSession.open(self._settings(), will=will)
            except (MqttError, OSError) as exc:
                self._counters["connect_failures"] += 1
                self._last_error = f"connect: {exc}"
                code = exc.reason_code if isinstance(exc, MqttConnectError) else None
                self._connect_refused = code
                delay_s = self._reconnect.connect_failed(reason_code=code, jitter=self._rng.random())
                _LOG.warning("uplink.connect_failed", error=str(exc), retry_in_s=round(delay_s, 2))
                await self._sleep_unless_stopping(delay_s)
                continue
            opened_at = self._clock.monotonic()
            try:
                await self._serve(session)
            except MqttError as exc:
                self._last_error = f"session: {exc}"
                _LOG.warning("uplink.session_ended", error=str(exc))
            finally:
                self._session = None
                self._connected_since = None
                if self._stopping.is_set():
                    await self._say_goodbye(session)
                await session.close()
            if self._stopping.is_set():
                break
            self._counters["disconnects"] += 1
            lasted_s = self._clock.monotonic() - opened_at
            # Even after a good session pause a little (jittered): the broker may be restarting,
            # and a fleet of gateways should not come back in step.
            delay_s = self._reconnect.session_ended(
                stable=lasted_s >= _STABLE_SESSION_S, jitter=self._rng.random()
            )
            await self._sleep_unless_stopping(delay_s)

    async def _sleep_unless_stopping(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay_s)
        except TimeoutError:
            return

    async def _say_goodbye(self, session: MqttSession) -> None:
        """Clean shutdown: the broker does not send the Last Will, so say offline ourselves."""
        if session.closed:
            return
        payload = json.dumps({"state": "offline", "ts": self._clock.wall()}).encode()
        try:
            await asyncio.wait_for(session.publish(self._topics.state, payload, retain=True), timeout=5.0)
        except (MqttError, TimeoutError) as exc:
            _LOG.warning("uplink.offline_state_not_sent", error=str(exc))

    # -- one session -------------------------------------------------------------------------
    async def _serve(self, session: MqttSession) -> None:
        session.listener = self._wakeup.set
        await session.subscribe(self._topics.ack, qos=1)
        if self._on_command is not None:
            await session.subscribe(self._topics.cmd, qos=1)
        self._session = session
        self._connect_refused = None
        self._reconnect_now = False  # this session already uses the current identity
        self._connected_since = self._clock.wall()
        for sched in self._lanes.values():
            sched.new_session()
        _LOG.info("uplink.connected", broker=f"{self._config.broker_host}:{self._config.broker_port}")
        await self._publish_state(session)
        while not self._stopping.is_set():
            if session.closed:
                raise MqttDisconnected(session.close_reason)
            if self._reconnect_now:
                self._reconnect_now = False
                _LOG.info("uplink.reconnecting", reason="identity switched")
                return
            self._wakeup.clear()
            await self._handle_messages(session)
            await self._resend_due(session)
            await self._fill_windows(session)
            now = self._clock.monotonic()
            if now - self._last_state_at >= self._config.state_interval_s:
                await self._publish_state(session)
            await self._wait(now)

    async def _wait(self, now: float) -> None:
        timeout_s = self._config.idle_poll_s
        deadlines = [d for d in (s.next_deadline() for s in self._lanes.values()) if d is not None]
        if deadlines:
            timeout_s = min(timeout_s, max(0.0, min(deadlines) - now))
        if self._wakeup.is_set():
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=timeout_s)
        except TimeoutError:
            return

    async def _publish_state(self, session: MqttSession) -> None:
        self._last_state_at = self._clock.monotonic()
        state = {
            "state": "online",
            "ts": self._clock.wall(),
            "backlog": await self._store.backlog(),
            "seq": {lane.value: max(s.cursor, s.acked) for lane, s in self._lanes.items()},
        }
        future = session.publish(self._topics.state, json.dumps(state, default=str).encode(), retain=True)
        future.add_done_callback(lambda f: self._publish_done(f, None, 0))

    # -- acks --------------------------------------------------------------------------------
    async def _handle_messages(self, session: MqttSession) -> None:
        while True:
            try:
                message = session.messages.get_nowait()
            except asyncio.QueueEmpty:
                return
            if message.topic == self._topics.cmd and self._on_command is not None:
                self._on_command(message.payload)
                continue
            await self._handle_ack(session, message)

    async def _handle_ack(self, session: MqttSession, message: IncomingMessage) -> None:
        if message.topic != self._topics.ack:
            return
        try:
            signed = verify_ack(message.payload, keys=self._central_keys, gateway_id=self._config.gateway_id)
            self._freshness.check(signed)
        except EnvelopeError as exc:
            await self._reject_ack(exc, len(message.payload))
            return
        self._freshness.accept(signed)
        ack = signed.ack
        self._counters["acks"] += 1
        self._last_ack_wall[ack.lane] = self._clock.wall()
        sched = self._lanes[ack.lane]
        outcome = sched.on_ack(ack.acked, ack.missing, self._clock.monotonic())
        if outcome.advanced_to is not None:
            deleted = await self._store.acknowledge(ack.lane, outcome.advanced_to)
            self._counters["batches_deleted"] += deleted
            if ack.acked > sched.cursor:
                await self._advance_seq(ack.lane, ack.acked)
        if outcome.resend:
            await self._resend(session, ack.lane, outcome.resend)

    async def _reject_ack(self, exc: EnvelopeError, size: int) -> None:
        """Ignore it, count it; warn and report an event once per burst (a flood stays cheap)."""
        reason = exc.reason if exc.reason in self._rejected_acks else "malformed"
        self._rejected_acks[reason] += 1
        self._counters["bad_acks"] += 1
        if reason == "stale":
            # A replay of something central really signed: harmless, worth a note, not an alarm.
            _LOG.debug("uplink.ack_replayed", error=str(exc))
            return
        now = self._clock.monotonic()
        burst = self._ack_burst
        if burst is not None and now - burst[0] < _ACK_BURST_QUIET_S:
            self._ack_burst = (now, burst[1] + 1)
            return
        previous = burst[1] if burst is not None else 0
        self._ack_burst = (now, 1)
        _LOG.warning(
            "uplink.ack_rejected",
            reason=reason,
            error=str(exc),
            size=size,
            previous_burst=previous,
            rejected=dict(self._rejected_acks),
        )
        if self._on_event is not None:
            data = {"reason": reason, "detail": str(exc)[:200], "size": size, "topic": self._topics.ack}
            await self._on_event("system.ack_rejected", "uplink", data)

    async def _advance_seq(self, lane: Lane, acked: int) -> None:
        """Central has seen sequence numbers this gateway has not sent in this run (its outbox
        was restored or replaced): stores that can (``edge.outbox.Outbox.advance_seq``, an
        optional extra of the BatchStore protocol) must never reuse them, or the new batches
        would collide with central's old ones."""
        advance = getattr(self._store, "advance_seq", None)
        if advance is not None:
            await advance(lane, acked)

    # -- sending -----------------------------------------------------------------------------
    async def _resend_due(self, session: MqttSession) -> None:
        now = self._clock.monotonic()
        for lane in SEND_ORDER:
            due = self._lanes[lane].due_resends(now)
            if due:
                await self._resend(session, lane, due)

    @property
    def config(self) -> UplinkConfig:
        return self._config

    @property
    def central_keys(self) -> dict[str, Ed25519PublicKey]:
        """Central's pinned public keys by key id (loaded when the uplink starts)."""
        return dict(self._central_keys)

    async def resend_range(self, lane_name: str, first: int, last: int) -> int:
        """Send again the batches ``first`` … ``last`` of a lane that are still held (central's
        ``outbox.resend`` command); returns how many were queued. Needs a live session."""
        session = self._session
        if session is None or session.closed:
            raise LookupError("the uplink is not connected")
        lane = Lane(lane_name)
        batches = await self._store.pending(lane, after_seq=first - 1, limit=min(last - first + 1, 10_000))
        held = [b.seq for b in batches if b.seq <= last]
        if held:
            await self._resend(session, lane, held)
        return len(held)

    async def _resend(self, session: MqttSession, lane: Lane, seqs: tuple[int, ...] | list[int]) -> None:
        wanted = set(seqs)
        lo, hi = min(wanted), max(wanted)
        batches = await self._store.pending(lane, after_seq=lo - 1, limit=hi - lo + 1)
        found = {b.seq: b for b in batches if b.seq in wanted}
        for seq in sorted(wanted):
            batch = found.get(seq)
            if batch is None:
                continue  # deleted meanwhile (acknowledged); nothing to resend
            self._counters["resends"] += 1
            self._send(session, batch)
        _LOG.info("uplink.resent", lane=lane.value, count=len(found), first=lo, last=hi)

    async def _fill_windows(self, session: MqttSession) -> None:
        """Events before every telemetry batch; stop when both windows are full or nothing waits."""
        while not session.closed and not self._stopping.is_set():
            if await self._send_next(session, Lane.EVENT):
                continue
            if not await self._send_next(session, Lane.TELEMETRY):
                return

    async def _send_next(self, session: MqttSession, lane: Lane) -> bool:
        sched = self._lanes[lane]
        free = sched.free_slots()
        if free == 0:
            return False
        batches = await self._store.pending(lane, after_seq=sched.cursor, limit=free)
        if not batches:
            sealed = await self._seal(lane)
            if sealed is None:
                return False
            batches = [sealed]
        for batch in batches:
            if batch.seq > sched.acked:
                self._send(session, batch)
        return True

    async def _seal(self, lane: Lane) -> SealedBatch | None:
        assert self._sealer is not None
        now = self._clock.monotonic()
        # While a telemetry backlog drains, asking for LIVE rows before every batch costs a query
        # that mostly finds nothing. Once LIVE came back empty while BACKLOG had rows, LIVE is
        # asked again only after live_probe_interval_s: a live value waits at most that long
        # behind a backlog. When there is no backlog LIVE is always asked, so fresh rows are
        # never sealed as historical. Events are always asked LIVE first: few and urgent.
        skip_live = lane is Lane.TELEMETRY and now < self._live_probe_after
        if not skip_live:
            batch = await self._store.seal(
                lane, mode=SealMode.LIVE, max_records=self._config.batch_max_records, sealer=self._sealer
            )
            if batch is not None:
                return batch
        batch = await self._store.seal(
            lane, mode=SealMode.BACKLOG, max_records=self._config.batch_max_records, sealer=self._sealer
        )
        if lane is Lane.TELEMETRY:
            draining = batch is not None
            if draining and not skip_live:
                self._live_probe_after = now + self._config.live_probe_interval_s
            elif not draining:
                self._live_probe_after = float("-inf")
        return batch

    def _send(self, session: MqttSession, batch: SealedBatch) -> None:
        sched = self._lanes[batch.lane]
        sched.on_sent(batch.seq, self._clock.monotonic())
        self._counters["batches_sent"] += 1
        self._counters["records_sent"] += batch.record_count
        future = session.publish(self._topics.up(batch.lane), batch.payload, qos=1)
        future.add_done_callback(lambda f: self._publish_done(f, batch.lane, batch.seq))

    def _publish_done(self, future: asyncio.Future[None], lane: Lane | None, seq: int) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None or isinstance(exc, MqttDisconnected):
            return  # a lost session resends everything unacknowledged anyway
        if isinstance(exc, PublishRefused):
            self._counters["publish_refused"] += 1
            self._last_refusal = {
                "topic": exc.topic,
                "reason_code": exc.reason_code,
                "reason": exc.reason,
                "lane": lane.value if lane is not None else None,
                "seq": seq,
                "at": self._clock.wall(),
            }
            self._last_error = str(exc)
            if lane is not None:
                self._lanes[lane].on_refused(seq, self._clock.monotonic())
            _LOG.error("uplink.publish_refused", topic=exc.topic, reason_code=hex(exc.reason_code))
            return
        self._last_error = f"publish: {exc}"
        _LOG.error("uplink.publish_failed", error=str(exc))
