"""A TCP proxy between the gateway and the broker that can cut or slow the link.

The gateway's site file points its uplink at the proxy; the proxy forwards to the broker. TLS
passes through untouched (the proxy sees only ciphertext), so the gateway still verifies the
broker's certificate end to end.

* :meth:`LinkProxy.partition`: nothing passes in either direction and new connections hang, as
  when a cable or a WAN link is cut without anyone sending a reset; :meth:`heal` lets traffic
  through again (connections that outlived the cut resume; the peers decide whether they are
  still alive, by their keepalives).
* :meth:`LinkProxy.slow`: every chunk is delayed by ``latency_s`` and the bytes are paced to
  ``rate_bps`` in each direction, as on a congested mobile link.

The delays here model the link; they are not used to synchronise anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType

__all__ = ["LinkProxy"]

_CHUNK = 16_384


@dataclass
class _Shape:
    latency_s: float = 0.0
    rate_bps: float | None = None


class LinkProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self._open = asyncio.Event()
        self._open.set()
        self._shape = _Shape()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted so far
        self.bytes_up = 0
        self.bytes_down = 0

    # -- faults ------------------------------------------------------------------------------
    def partition(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def slow(self, *, latency_s: float, rate_bps: float | None) -> None:
        self._shape = _Shape(latency_s, rate_bps)

    def fast(self) -> None:
        self._shape = _Shape()

    @property
    def cut(self) -> bool:
        return not self._open.is_set()

    # -- plumbing ----------------------------------------------------------------------------
    async def __aenter__(self) -> LinkProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    def _spawn(self, coro: object, name: str) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._spawn(self._session(reader, writer), f"proxy-session-{self.connections}")

    async def _session(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            # During a cut a new connection hangs: the SYN was "answered" by no one useful.
            await self._open.wait()
            try:
                up_r, up_w = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(client_r, up_w, up=True), name="proxy-up")
                    group.create_task(self._pump(up_r, client_w, up=False), name="proxy-down")
            except* (OSError, EOFError):
                pass
            finally:
                up_w.close()
        finally:
            client_w.close()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, up: bool) -> None:
        loop = asyncio.get_running_loop()
        next_free = loop.time()
        while True:
            data = await src.read(_CHUNK)
            if not data:
                # One side closed: close the other, which ends the sibling pump too.
                dst.close()
                raise EOFError
            await self._open.wait()
            shape = self._shape
            if shape.latency_s:
                await asyncio.sleep(shape.latency_s)
            if shape.rate_bps:
                next_free = max(next_free, loop.time()) + len(data) / shape.rate_bps
                await asyncio.sleep(max(0.0, next_free - loop.time()))
            # A cut that began while this chunk was on its way holds it too.
            await self._open.wait()
            dst.write(data)
            await dst.drain()
            if up:
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)
