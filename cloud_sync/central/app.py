"""``CentralService``: store + MQTT ingest + the HTTP(S) API, wired in one TaskGroup.

Central's signing key (``signing_key`` in central.yaml) is loaded here; every ack, over MQTT or
as an HTTPS answer, is signed with it. A small task writes waiting audit rows every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Literal

import structlog
import uvicorn
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from cloud_sync.central.api import create_api
from cloud_sync.central.commands import (
    COMMANDS_DB,
    CommandLedger,
    CommandService,
    IngestMqttPublisher,
    MqttCommandPublisher,
    command_router,
)
from cloud_sync.central.config import CentralConfig
from cloud_sync.central.console import console_data_dir, mount_console
from cloud_sync.central.ingest import KeyRegistry
from cloud_sync.central.metrics import MeteredIngestor
from cloud_sync.central.mqtt import CentralMqtt
from cloud_sync.central.ops import add_ops_routes
from cloud_sync.central.storage.interface import CentralStorage, open_store
from cloud_sync.central.trust import (
    TRUST_DB,
    TrustService,
    TrustStore,
    TrustWatcher,
    enrolment_router,
    trust_router,
)
from cloud_sync.downlink import DownlinkSigner
from cloud_sync.e2e import keys_by_id
from cloud_sync.errors import CentralStoreError, ServiceStartError
from cloud_sync.keys import load_private_key, load_x25519_private, parse_x25519_public

__all__ = ["CentralService", "Role"]

Role = Literal["all", "api", "ingest"]

_LOG = structlog.get_logger(__name__)

_AUDIT_FLUSH_S = 1.0
# Retention runs this long after start, then every hour (one process: the API's, or "all").
_RETENTION_FIRST_S = 60.0
_RETENTION_EVERY_S = 3600.0
# Central re-signs the CRL and rewrites the broker files this often (and on every change).
_BROKER_FILES_EVERY_S = 86400.0
# A revoked gateway that is offline at the time learns it from the broker's refusal instead.
_REVOKED_NOTICE_TTL_S = 3600.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's owner decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class CentralService:
    """Run central until the ``async with`` block ends.

    ``api_port`` is the port the API actually listens on (useful with ``port: 0`` in tests).
    """

    def __init__(
        self, config: CentralConfig, *, clock: Callable[[], float] = time.time, role: Role = "all"
    ) -> None:
        self.config = config
        # "all": API and MQTT ingest; "api": the API only (HTTPS ingest included); "ingest": MQTT
        # ingest only, no listening socket (``gatehouse central --workers N``).
        self.role = role
        # Loaded before the database opens: a missing key is a configuration error, not a crash later.
        self.signer = DownlinkSigner(
            load_private_key(config.signing_key), clock_us=lambda: time.time_ns() // 1000
        )
        # End-to-end encryption (docs/protocol.md §2.7): central's X25519 key(s) by key id.
        self.e2e_keys = (
            keys_by_id() if config.e2e_key is None else keys_by_id(load_x25519_private(config.e2e_key))
        )
        self.store: CentralStorage = open_store(config.database)
        self.registry = KeyRegistry.from_config(config.gateways)
        self._names = {gw.id: gw.name for gw in config.gateways if gw.name}
        self._e2e_public: dict[str, tuple[str, X25519PublicKey]] = {}
        # Gateways enrolled with tokens (cloud_sync.central.trust): trust.db beside console.db,
        # watched by every process so that enrolments and revocations reach ingest within ~1 s.
        self.trust: TrustService | None = None
        self.trust_watcher: TrustWatcher | None = None
        if config.trust is not None:
            trust_store = TrustStore(console_data_dir(config.database, config.signing_key) / TRUST_DB)
            self.trust_watcher = TrustWatcher(trust_store, self.registry)
            self.trust_watcher.check()
            if role != "ingest":
                self.trust = TrustService(config, trust_store)
        # The ingestor with its counters for /metrics (cloud_sync.central.metrics).
        self.ingestor = MeteredIngestor(self.store, self.registry, clock=clock, e2e_keys=self.e2e_keys)
        self.app = create_api(
            self.store,
            self.ingestor,
            config.api,
            signer=self.signer,
            enrolled=self.registry.knows,
            enrolled_ids=lambda: self.registry.gateway_ids,
            estate_of=self.estate_of,
            name_of=lambda gw: self._names.get(gw) or self.registry.name_of(gw),
        )
        add_ops_routes(self.app, self)  # /healthz and /metrics (cloud_sync.central.ops)
        # The fleet operator's web console at /console/, its accounts in console.db on this node.
        self.console = mount_console(
            self.app,
            data_dir=console_data_dir(config.database, config.signing_key),
            secure_cookies=config.api.tls is not None,
        )
        # Signed commands to the gateways (cloud_sync.central.commands), their ledger beside
        # console.db; the publisher is chosen in __aenter__, once the MQTT side is known.
        self.commands = CommandService(
            CommandLedger(console_data_dir(config.database, config.signing_key) / COMMANDS_DB),
            self.store,
            self.signer,
            None,
            e2e_key_of=self._gateway_e2e_key,
        )
        if self.trust is not None:
            self.trust.before_revoke.append(self._tell_revoked)
        self.app.include_router(
            command_router(
                self.commands,
                tokens=config.api.tokens,
                enrolled=self.registry.knows,
                estate_of=self.estate_of,
            )
        )
        if self.trust is not None and self.trust_watcher is not None:
            watcher = self.trust_watcher
            # The enrolment routes carry no bearer token; the admin routes need the trust scope.
            self.app.include_router(enrolment_router(self.trust, after_change=watcher.check))
            self.app.include_router(
                trust_router(self.trust, tokens=config.api.tokens, after_change=watcher.check)
            )
        self.mqtt: CentralMqtt | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: _Server | None = None
        self._socket: socket.socket | None = None

    def _gateway_e2e_key(self, gateway_id: str) -> X25519PublicKey | None:
        """The X25519 key commands to ``gateway_id`` are encrypted to: the one it enrolled with,
        when its enrolment turned encryption on (hand-enrolled gateways get commands in clear)."""
        if self.trust is None:
            return None
        row = self.trust.store.gateway(gateway_id)
        if row is None or row.encrypt == "off" or not row.e2e_key:
            return None
        cached = self._e2e_public.get(gateway_id)
        if cached is None or cached[0] != row.e2e_key:
            cached = (row.e2e_key, parse_x25519_public(row.e2e_key, origin=f"{gateway_id}'s e2e key"))
            self._e2e_public[gateway_id] = cached
        return cached[1]

    async def _tell_revoked(self, gateway_id: str, reason: str) -> None:
        """Sent while the gateway still has broker access, so its LAN dashboard can say why."""
        await self.commands.issue(
            gateway_id,
            "gateway.revoked",
            {"reason": reason[:500]},
            by="central",
            source="trust",
            ttl_s=_REVOKED_NOTICE_TTL_S,
        )

    def estate_of(self, gateway_id: str) -> str:
        """A token-enrolled gateway's estate from the trust store, else central.yaml's."""
        return self.registry.estate_of(gateway_id) or self.config.estate_of(gateway_id)

    @property
    def api_port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the API server is not running")
        port: int = self._socket.getsockname()[1]
        return port

    def _bind(self) -> socket.socket:
        """Bind here rather than in uvicorn, which calls ``sys.exit`` when the port is taken."""
        host, port = self.config.api.host, self.config.api.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            raise ServiceStartError(f"API cannot listen on {host}:{port}: {exc.strerror}") from exc
        return sock

    async def __aenter__(self) -> CentralService:
        if self.role == "ingest":
            return await self._enter_ingest_only()
        api = self.config.api
        uv_config = uvicorn.Config(
            self.app,
            host=api.host,
            port=api.port,
            ssl_certfile=str(api.tls.cert_file) if api.tls else None,
            ssl_keyfile=str(api.tls.key_file) if api.tls else None,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        try:
            uv_config.load()  # builds the TLS context now, so bad certificate files fail here
            self._socket = self._bind()
        except (OSError, ssl.SSLError, ServiceStartError) as exc:
            self.store.close()
            if isinstance(exc, ServiceStartError):
                raise
            raise ServiceStartError(f"API TLS files unusable: {exc}") from exc
        self._server = _Server(uv_config)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            if self.config.broker is not None and self.role == "all":
                self.mqtt = CentralMqtt(self.config.broker, self.ingestor, self.signer)
                await self.mqtt.__aenter__()
                self._tasks.append(self._tg.create_task(self.mqtt.run(), name="central-mqtt-ingest"))
                self.commands.publisher = IngestMqttPublisher(self.mqtt)
            elif self.config.broker is not None:
                # --role api: no ingest connection here, so commands get a small one of their own.
                self.commands.publisher = MqttCommandPublisher(self.config.broker)
            self._tasks.append(
                self._tg.create_task(self._server.serve(sockets=[self._socket]), name="central-api")
            )
            self._tasks.append(self._tg.create_task(self._flush_audit_forever(), name="central-audit"))
            self._tasks.append(self._tg.create_task(self._retention_forever(), name="central-retention"))
            self._start_trust_tasks()
            # No need to wait for uvicorn's start-up: the socket is already listening, so early
            # connections wait in the backlog until uvicorn accepts them.
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        _LOG.info("central running", api=f"{api.host}:{self.api_port}", mqtt=self.mqtt is not None)
        return self

    async def _enter_ingest_only(self) -> CentralService:
        if self.config.broker is None:
            self.store.close()
            raise ServiceStartError("an ingest-only central needs a broker: section")
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            self.mqtt = CentralMqtt(self.config.broker, self.ingestor, self.signer)
            await self.mqtt.__aenter__()
            self._tasks.append(self._tg.create_task(self.mqtt.run(), name="central-mqtt-ingest"))
            self._tasks.append(self._tg.create_task(self._flush_audit_forever(), name="central-audit"))
            self._start_trust_tasks()
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        _LOG.info("central ingest running", client_id=self.config.broker.client_id)
        return self

    def _start_trust_tasks(self) -> None:
        assert self._tg is not None
        if self.trust_watcher is not None:
            self._tasks.append(self._tg.create_task(self.trust_watcher.run(), name="central-trust-watch"))
        if self.trust is not None:
            # Central owns the broker files: bring them in step with trust.db at every start.
            self._tasks.append(self._tg.create_task(self._sync_broker_files(), name="central-trust-sync"))

    async def _sync_broker_files(self) -> None:
        """At start, then daily: the CRL carries a next-update time (30 days) after which
        OpenSSL refuses every client certificate, so it is re-signed long before that."""
        assert self.trust is not None
        while True:
            try:
                await asyncio.to_thread(self.trust.sync_broker)
            except OSError as exc:
                # Central keeps serving; the next change or the next day writes the files again.
                _LOG.error("broker access files not written", error=str(exc))
            await asyncio.sleep(_BROKER_FILES_EVERY_S)

    async def _retention_forever(self) -> None:
        await asyncio.sleep(_RETENTION_FIRST_S)
        while True:
            try:
                done = await asyncio.to_thread(self.store.apply_retention, self.config.retention, time.time())
                _LOG.info("retention applied", **done)
            except CentralStoreError as exc:
                _LOG.error("retention not applied", error=str(exc))
            await asyncio.sleep(_RETENTION_EVERY_S)

    async def _flush_audit_forever(self) -> None:
        while True:
            await asyncio.sleep(_AUDIT_FLUSH_S)
            try:
                await asyncio.to_thread(self.ingestor.flush_audit)
            except CentralStoreError as exc:
                # The rows stay buffered (bounded) and go with the next commit or flush.
                _LOG.error("audit rows not written", error=str(exc))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        try:
            if self.mqtt is not None:
                await self.mqtt.__aexit__(exc_type, exc, tb)
            await self.commands.close()
            for task in self._tasks:
                if task.get_name() in (
                    "central-mqtt-ingest",
                    "central-audit",
                    "central-retention",
                    "central-trust-watch",
                    "central-trust-sync",
                ):
                    task.cancel()
            if self._tg is not None:
                await self._tg.__aexit__(exc_type, exc, tb)
            self.ingestor.flush_audit()
        finally:
            if self._socket is not None:
                self._socket.close()
            self.store.close()
            self.console.close()
            if self.trust_watcher is not None:
                self.trust_watcher.store.close()
            _LOG.info("central stopped", counters=self.ingestor.counters)
