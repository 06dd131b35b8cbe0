"""The gateway's live view: the latest sample of every point and each device's online state.

Fed by the point bus with every sample (not only the reported ones), read by the dashboard and
the health endpoints. Listeners are called synchronously and must not block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from core.model import Sample

__all__ = ["LiveState"]

Listener = Callable[[list[Sample]], None]


class LiveState:
    def __init__(self) -> None:
        self.latest: dict[str, Sample] = {}
        self.device_online: dict[str, bool | None] = {}
        self._listeners: list[Listener] = []

    def update(self, samples: Iterable[Sample]) -> None:
        batch = list(samples)
        latest = self.latest
        for sample in batch:
            latest[sample.point_id] = sample
        for listener in self._listeners:
            listener(batch)

    def set_online(self, device_id: str, online: bool | None) -> None:
        self.device_online[device_id] = online

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
