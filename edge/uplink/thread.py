"""The uplink on an event loop of its own, in a thread of its own.

Why: in the daemon's event loop the uplink is one task among one per device. With 1,500 devices
polled every second the loop always has work, and each step of the uplink (ask the outbox for a
batch, seal it, publish, handle an ack) waits behind a full turn of every coordinator. On a
machine short of CPU that left the uplink a few per cent of the process: it drained 15 % of the
poll rate while polling went on (issue 19). In a thread of its own the uplink competes for the
interpreter directly, so it gets about half of it whenever it has work; polling then slows
(backpressure into the outbox) instead of the backlog growing without bound.

What crosses threads, and how:

* the outbox (``BatchStore``): its calls already run on the outbox's database thread through an
  executor, which any event loop may use;
* events for the outbox's event lane (``on_event``) and central's commands (``on_command``) are
  handed to the daemon's loop (``run_coroutine_threadsafe`` / ``call_soon_threadsafe``);
* ``status()``, ``config`` and ``central_keys`` are read as they are (plain values, read whole);
  ``wake()``, ``resend_range()`` and ``switch_identity()`` are forwarded to the uplink's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.ports import BatchStore
from cloud_sync.uplink import EventSink, Uplink, UplinkConfig

__all__ = ["UplinkThread"]

_LOG = structlog.get_logger(__name__)


class UplinkThread:
    def __init__(
        self,
        config: UplinkConfig,
        *,
        store: BatchStore,
        on_event: EventSink | None = None,
        on_command: Callable[[bytes], None] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._on_event = on_event
        self._on_command = on_command
        self._uplink: Uplink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        # The identity's renewal task (edge.identity.renewal.Renewer) when the uplink runs on an
        # enrolled identity: its status() is shown with the uplink's.
        self.renewal: Any = None

    # -- lifecycle (called on the daemon's loop) -----------------------------------------------
    async def __aenter__(self) -> Self:
        main = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._thread_main, args=(main,), name=f"uplink:{self._config.gateway_id}", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(self._started)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            # The loop may be closing by itself (the uplink failed): then there is nothing to stop.
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass
        if thread is not None:
            await asyncio.to_thread(thread.join)

    # -- the uplink's thread -------------------------------------------------------------------
    def _thread_main(self, main: asyncio.AbstractEventLoop) -> None:
        try:
            asyncio.run(self._serve(main))
        except BaseException as exc:  # noqa: BLE001 - reported to the starter, or logged
            if not self._started.done():
                self._started.set_exception(exc)
            else:
                _LOG.exception("uplink thread ended by an error", error=str(exc))

    async def _serve(self, main: asyncio.AbstractEventLoop) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        uplink = Uplink(
            self._config,
            store=self._store,
            on_event=self._event_bridge(main),
            on_command=self._command_bridge(main),
        )
        async with uplink:
            self._uplink = uplink
            self._started.set_result(None)
            await self._stop.wait()

    def _event_bridge(self, main: asyncio.AbstractEventLoop) -> EventSink | None:
        sink = self._on_event
        if sink is None:
            return None

        async def deliver(kind: str, source: str, data: dict[str, Any]) -> None:
            await sink(kind, source, data)

        async def on_event(kind: str, source: str, data: dict[str, Any]) -> None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(deliver(kind, source, data), main))

        return on_event

    def _command_bridge(self, main: asyncio.AbstractEventLoop) -> Callable[[bytes], None] | None:
        handler = self._on_command
        if handler is None:
            return None

        def on_command(payload: bytes) -> None:
            main.call_soon_threadsafe(handler, payload)

        return on_command

    # -- what the daemon asks ------------------------------------------------------------------
    def _running(self) -> Uplink:
        if self._uplink is None:
            raise RuntimeError("the uplink is not running")
        return self._uplink

    @property
    def config(self) -> UplinkConfig:
        return self._config

    @property
    def central_keys(self) -> dict[str, Ed25519PublicKey]:
        return self._running().central_keys

    def status(self) -> dict[str, Any]:
        status = self._running().status()
        if self.renewal is not None:
            status["identity"] = self.renewal.status()
        return status

    async def switch_identity(self, config: UplinkConfig) -> None:
        """``Uplink.switch_identity`` on the uplink's loop; ``config`` is what ``config`` says after."""
        uplink, loop = self._running(), self._loop
        assert loop is not None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(uplink.switch_identity(config), loop))
        self._config = config

    def wake(self) -> None:
        uplink, loop = self._running(), self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(uplink.wake)

    async def resend_range(self, lane_name: str, first: int, last: int) -> int:
        uplink, loop = self._running(), self._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(uplink.resend_range(lane_name, first, last), loop)
        return await asyncio.wrap_future(future)
