"""The one interface both storage backends implement; ingest and the API use only this.

Methods are synchronous: ingest calls them from its worker threads and the API from FastAPI's
thread pool. The PostgreSQL backend runs asyncpg on an event loop of its own behind them.

One optional hook outside the protocol: a backend may have ``prepare_batches(batches)``, which
ingest calls from its decoding stage with each verified group before ``store_batches`` gets it
(PostgreSQL encodes the group's COPY there, overlapping the previous group's commit).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cloud_sync.central.config import RetentionConfig
from cloud_sync.ports import EventRow, Lane, TelemetryRow

if TYPE_CHECKING:
    from cloud_sync.central.store import BatchMeta, Rejection, StoreResult

__all__ = ["CentralStorage", "open_store"]


class CentralStorage(Protocol):
    @property
    def backend(self) -> str: ...

    def close(self) -> None: ...

    def store_batch(
        self,
        meta: BatchMeta,
        records: Sequence[TelemetryRow] | Sequence[EventRow],
        *,
        transport: str,
        received_at: float,
    ) -> StoreResult: ...

    def store_batches(
        self,
        batches: Sequence[tuple[BatchMeta, Sequence[TelemetryRow] | Sequence[EventRow]]],
        *,
        transport: str,
        received_at: float,
        audit: Sequence[Rejection] = (),
    ) -> list[StoreResult]: ...

    def record_rejection(self, **fields: Any) -> None: ...

    def record_rejections(self, rows: Sequence[Rejection]) -> None: ...

    def note_state(self, gateway_id: str, state: dict[str, Any], received_at: float) -> None: ...

    def ack_position(self, gateway_id: str, lane: Lane) -> tuple[int, tuple[tuple[int, int], ...]]: ...

    def count(self, table: str) -> int: ...

    def gateway_rows(self, ids: Collection[str] | None = None) -> list[dict[str, Any]]: ...

    def latest(
        self,
        *,
        gateways: Collection[str] | None,
        prefix: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int,
    ) -> list[dict[str, Any]]: ...

    def point_gateway(self, point_id: str) -> str | None: ...

    def history(self, point_id: str, start: float, end: float, limit: int) -> list[dict[str, Any]]: ...

    def history_buckets(
        self, point_id: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]: ...

    def events(
        self,
        *,
        gateways: Collection[str] | None,
        kind: str | None = None,
        start: float | None = None,
        end: float | None = None,
        after: tuple[float, int] | None = None,
        limit: int,
    ) -> list[dict[str, Any]]: ...

    def rejected(
        self,
        *,
        gateways: Collection[str] | None,
        reason: str | None = None,
        before: int | None = None,
        limit: int,
    ) -> tuple[dict[str, int], list[dict[str, Any]]]: ...

    def alarms(
        self,
        *,
        gateways: Collection[str] | None,
        alarm_class: str | None = None,
        priority: str | None = None,
        states: Collection[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        after: int | None = None,
        since_version: int | None = None,
        limit: int,
    ) -> list[dict[str, Any]]: ...

    def alarm_version(self) -> int: ...

    def alarm_counts(
        self, *, gateways: Collection[str] | None, start: float | None, end: float | None, by: str
    ) -> list[tuple[str, int]]: ...

    def apply_retention(self, retention: RetentionConfig, now: float) -> dict[str, int]: ...


def open_store(database: Path | str) -> CentralStorage:
    """The backend the configured ``database`` names: a SQLite file or a ``postgresql://`` URL."""
    if isinstance(database, Path):
        from cloud_sync.central.store import CentralStore

        return CentralStore(database)
    from cloud_sync.central.storage.postgres import PostgresStore

    store: CentralStorage = PostgresStore(database)
    return store
