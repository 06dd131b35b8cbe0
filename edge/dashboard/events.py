"""Fan-out of live changes to the browsers' server-sent event streams.

Every connected browser gets its own bounded queue. Producers (the point bus through
``LiveState.subscribe``, the rules runtime through ``AlarmService.subscribe``) only ever
``put_nowait``: a client whose queue is full is dropped (its stream ends; EventSource reconnects
and reloads), so a slow browser can never hold up the gateway. Point values are coalesced: the
latest sample of each point is kept and sent at most every ``values_interval_s`` (≥ 0.5 s), and
only while someone is listening. Device online changes are diffed on the same tick, because
``LiveState.set_online`` has no listener.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.model import Sample
from edge.live import LiveState

__all__ = ["Client", "EventHub", "clean", "dumps", "json_value", "sample_row"]

_LOG = structlog.get_logger(__name__)


def json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def clean(data: Any) -> Any:
    """``data`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(data, float):
        return json_value(data)
    if isinstance(data, dict):
        return {k: clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [clean(v) for v in data]
    return data


def dumps(data: Any) -> str:
    return json.dumps(clean(data), ensure_ascii=False, default=str, allow_nan=False)


def sample_row(sample: Sample) -> list[Any]:
    return [sample.point_id, json_value(sample.value), sample.quality.name.lower(), sample.receipt_ts]


@dataclass(eq=False)
class Client:
    """One browser's stream. ``queue`` holds ``(event, json text)``; ``None`` ends the stream."""

    username: str
    queue: asyncio.Queue[tuple[str, str] | None]
    dropped: bool = False
    sent: int = field(default=0)


class EventHub:
    def __init__(
        self,
        live: LiveState,
        alarms: Any = None,
        *,
        queue_size: int = 512,
        values_interval_s: float = 0.5,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._live = live
        self._alarms = alarms
        self._queue_size = queue_size
        self._interval_s = values_interval_s
        self._clients: set[Client] = set()
        self._pending: dict[str, Sample] = {}
        self._online: dict[str, bool | None] = dict(live.device_online)
        # when each device went offline (wall time), for "communication lost since hh:mm:ss"
        self.offline_since: dict[str, float] = {}
        self._wall = wall
        self._unsubscribe: list[Callable[[], None]] = []
        self.dropped_clients = 0
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe.append(self._live.subscribe(self._on_samples))
        if self._alarms is not None:
            self._unsubscribe.append(self._alarms.subscribe(self._on_alarm))

    async def run(self) -> None:
        """Flush coalesced values and online changes every interval, until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            self.flush()

    def close(self) -> None:
        """Unsubscribe and end every stream (the server is stopping)."""
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for client in list(self._clients):
            self._end(client)
        self._clients.clear()

    # -- clients -----------------------------------------------------------------------------

    @property
    def clients(self) -> int:
        return len(self._clients)

    def connect(self, username: str) -> Client:
        client = Client(username, asyncio.Queue(maxsize=self._queue_size))
        if self._closed:
            self._end(client)
            return client
        self._clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self._clients.discard(client)

    # -- producers ---------------------------------------------------------------------------

    def _on_samples(self, samples: list[Sample]) -> None:
        if not self._clients:
            return
        pending = self._pending
        for sample in samples:
            pending[sample.point_id] = sample

    def _on_alarm(self, update: dict[str, Any]) -> None:
        kind = update.get("type")
        if kind == "alarm":
            data = {
                "key": update.get("key"),
                "row": update.get("row"),
                "transition": update.get("transition"),
            }
            self.broadcast("alarm", data)
        elif kind == "linkage":
            self.broadcast("linkage", update.get("row"))
        elif kind == "drill":
            self.broadcast("drill", {})

    def flush(self) -> None:
        online = self._live.device_online
        if online != self._online:
            now = self._wall()
            for device_id, state in online.items():
                if self._online.get(device_id, "unset") != state:
                    if state is False:
                        self.offline_since.setdefault(device_id, now)
                    else:
                        self.offline_since.pop(device_id, None)
                    self.broadcast("device", {"id": device_id, "online": state})
            self._online = dict(online)
        if self._pending:
            rows = [sample_row(s) for s in self._pending.values()]
            self._pending = {}
            self.broadcast("values", {"points": rows})

    def broadcast(self, event: str, data: Any) -> None:
        if not self._clients:
            return
        text = dumps(data)
        for client in list(self._clients):
            try:
                client.queue.put_nowait((event, text))
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: Client) -> None:
        self._clients.discard(client)
        self.dropped_clients += 1
        _LOG.warning("dashboard.sse_client_dropped", user=client.username, queued=client.queue.qsize())
        self._end(client)

    @staticmethod
    def _end(client: Client) -> None:
        client.dropped = True
        # Make room for the end marker: what is lost the browser reloads on reconnect.
        while client.queue.full():
            client.queue.get_nowait()
        client.queue.put_nowait(None)
