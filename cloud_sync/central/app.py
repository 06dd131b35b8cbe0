"""``CentralService``: store + MQTT ingest + the HTTP(S) API, wired in one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Final

import structlog
import uvicorn

from cloud_sync.central.api import create_api
from cloud_sync.central.config import CentralConfig
from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.mqtt import CentralMqtt
from cloud_sync.central.store import CentralStore

__all__ = ["CentralService"]

_LOG = structlog.get_logger(__name__)

_STARTUP_POLL_S: Final = 0.05


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service's owner decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class CentralService:
    """Run central until the ``async with`` block ends.

    ``api_port`` is the port the API actually listens on (useful with ``port: 0`` in tests).
    """

    def __init__(self, config: CentralConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = CentralStore(config.database)
        self.registry = KeyRegistry.from_config(config.gateways)
        self.ingestor = Ingestor(self.store, self.registry, clock=clock)
        self.app = create_api(self.store, self.ingestor, config.api, enrolled=self.registry.knows)
        self.mqtt: CentralMqtt | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._server: _Server | None = None

    @property
    def api_port(self) -> int:
        if self._server is None or not self._server.servers:
            raise RuntimeError("the API server is not running")
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    async def __aenter__(self) -> CentralService:
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
        self._server = _Server(uv_config)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        try:
            if self.config.broker is not None:
                self.mqtt = CentralMqtt(self.config.broker, self.ingestor)
                await self.mqtt.__aenter__()
                self._tasks.append(self._tg.create_task(self.mqtt.run(), name="central-mqtt-ingest"))
            self._tasks.append(self._tg.create_task(self._server.serve(), name="central-api"))
            # uvicorn offers a flag, not an event, for "listening".
            while not self._server.started:
                if self._tasks[-1].done():
                    break
                await asyncio.sleep(_STARTUP_POLL_S)
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        _LOG.info("central running", api=f"{api.host}:{self.api_port if self._server.started else '?'}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        try:
            if self.mqtt is not None:
                await self.mqtt.__aexit__(exc_type, exc, tb)
            for task in self._tasks:
                if task.get_name() == "central-mqtt-ingest":
                    task.cancel()
            if self._tg is not None:
                await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self.store.close()
            _LOG.info("central stopped", counters=self.ingestor.counters)
