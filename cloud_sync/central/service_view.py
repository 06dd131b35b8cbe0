"""What the metrics and health routes read from a running central service, as a protocol.

``CentralService`` (``cloud_sync.central.app``) builds the metrics collector and the ops routes;
naming here the few attributes they read, instead of importing the service class, keeps every
import arrow in central pointing one way.
"""

from __future__ import annotations

from typing import Protocol

from cloud_sync.central.config import CentralConfig
from cloud_sync.central.ingest import Ingestor, KeyRegistry
from cloud_sync.central.mqtt import CentralMqtt
from cloud_sync.central.storage.interface import CentralStorage

__all__ = ["ServiceView"]


class ServiceView(Protocol):
    @property
    def config(self) -> CentralConfig: ...

    @property
    def store(self) -> CentralStorage: ...

    @property
    def registry(self) -> KeyRegistry: ...

    @property
    def ingestor(self) -> Ingestor: ...

    @property
    def mqtt(self) -> CentralMqtt | None: ...
